//! Readiness and recovery: the controller's view comes from real watches and must be complete
//! before it says ready, and correct again after it loses the API server.

use crate::{block_on, Harness};
use anyhow::{bail, ensure, Context, Result};
use std::time::{Duration, Instant};
use weft_e2e::{controller::Controller, gate_proxy::GateProxy, resources};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "resilience::not_ready_until_the_namespace_index_synced",
        not_ready_until_the_namespace_index_synced,
    ),
    (
        "resilience::relists_after_losing_the_api_server",
        relists_after_losing_the_api_server,
    ),
    (
        "resilience::survives_an_api_server_restart",
        survives_an_api_server_restart,
    ),
    (
        "resilience::says_clearly_when_a_crd_is_missing_and_waits_for_it",
        says_clearly_when_a_crd_is_missing_and_waits_for_it,
    ),
];

/// Whether the controller would inject a plain pod in `namespace`, i.e. its view of the
/// namespace's `weft.dev/inject` annotation.
async fn would_inject(controller: &Controller, namespace: &str) -> Result<bool> {
    let (status, body) = controller
        .post("/inject", resources::pod_review(namespace))
        .await?;
    ensure!(status == 200, "/inject answered {status}");
    let review: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(review["response"].get("patch").is_some())
}

/// How many namespaces the controller had to fetch from the API because its index did not know
/// them. The tests below assert it stays unchanged, so what they observe is the index itself.
async fn api_lookups(controller: &Controller) -> Result<u64> {
    let (_, metrics) = controller.admin_get("/metrics").await?;
    Ok(metrics
        .lines()
        .filter(|l| l.starts_with("weft_inject_namespace_api_lookups_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

async fn eventually(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn not_ready_until_the_namespace_index_synced(h: &Harness) -> Result<()> {
    block_on(async {
        let dir = tempfile::tempdir()?;
        // The controller reaches the API server only through a proxy that holds its connections.
        let gate = GateProxy::start(h.cluster.apiserver_addr()?, false).await?;
        let kubeconfig = h.cluster.kubeconfig_via(gate.addr, dir.path())?;
        let controller = Controller::start(&h.controller_bin, &kubeconfig, &[])?;

        tokio::time::sleep(Duration::from_secs(2)).await;
        let (live, _) = controller.admin_get("/live").await?;
        let (ready, _) = controller.admin_get("/ready").await?;
        ensure!(
            live == 200,
            "/live must answer 200 while the API is unreachable, got {live}"
        );
        ensure!(
            ready != 200,
            "/ready must not be 200 before the namespace index synced, got {ready}"
        );

        gate.open();
        controller.wait_ready(Duration::from_secs(30)).await?;
        Ok(())
    })
}

fn relists_after_losing_the_api_server(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let dir = tempfile::tempdir()?;
        let gate = GateProxy::start(h.cluster.apiserver_addr()?, true).await?;
        let kubeconfig = h.cluster.kubeconfig_via(gate.addr, dir.path())?;
        let mut controller = Controller::start(&h.controller_bin, &kubeconfig, &[])?;
        controller.wait_ready(Duration::from_secs(30)).await?;

        let changed = resources::namespace(
            &client,
            "e2e-relist",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let lookups = api_lookups(&controller).await?;
        eventually(
            "the controller sees the new enabled namespace",
            Duration::from_secs(10),
            async || would_inject(&controller, &changed).await,
        )
        .await?;

        // A pod whose port starts with the default policy.
        kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &changed)
            .create(&Default::default(), &resources::pod("web", &[]))
            .await?;
        eventually(
            "the controller indexed the pod",
            Duration::from_secs(10),
            async || {
                let policy = controller.inbound_policy(&changed, "web", 8080).await?;
                Ok(policy.is_ok_and(|p| p.labels.get("kind").is_some_and(|k| k == "default")))
            },
        )
        .await?;

        // Cut the controller off, change the namespace and add a Server behind its back, reconnect.
        gate.close();
        resources::annotate_namespace(&client, &changed, "weft.dev/inject", "disabled").await?;
        crate::policy::create_server(&client, &changed, "web-http", "http", "HTTP/1").await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        gate.open();

        eventually(
            "the re-listed policy index serves the new Server",
            Duration::from_secs(30),
            async || {
                let policy = controller.inbound_policy(&changed, "web", 8080).await?;
                Ok(policy.is_ok_and(|p| p.labels.get("name").is_some_and(|n| n == "web-http")))
            },
        )
        .await
        .context("after reconnecting")?;

        eventually(
            "the controller re-listed and sees the namespace disabled",
            Duration::from_secs(30),
            async || Ok(!would_inject(&controller, &changed).await?),
        )
        .await
        .context("after reconnecting")?;
        ensure!(
            controller.is_running(),
            "the controller must not have restarted"
        );
        ensure!(
            api_lookups(&controller).await? == lookups,
            "the answers must come from the index, not from API fallbacks"
        );
        Ok(())
    })
}

fn survives_an_api_server_restart(h: &Harness) -> Result<()> {
    if !h.cluster.local {
        eprintln!(
            "skipped: WEFT_E2E_KUBECONFIG names a cluster whose API server the tests cannot stop"
        );
        return Ok(());
    }
    // A namespace the controller has indexed (as not enabled) before the restart.
    let ns = block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "e2e-restart",
            &[("weft.dev/inject", "disabled")],
            &[],
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        ensure!(
            !would_inject(&h.controller, &ns).await?,
            "disabled namespace"
        );
        Ok(ns)
    })?;
    let lookups = block_on(api_lookups(&h.controller))?;

    h.cluster.stop_apiserver()?;
    let started = h.cluster.start_apiserver();
    started.context("restarting kube-apiserver")?;
    block_on(async {
        let client = h.cluster.client().await?;
        // The watch was re-established: a change made after the restart reaches the index.
        resources::annotate_namespace(&client, &ns, "weft.dev/inject", "enabled").await?;
        eventually(
            "the controller sees the annotation added after the restart",
            Duration::from_secs(30),
            async || would_inject(&h.controller, &ns).await,
        )
        .await?;
        // And the API server calls the webhook again: a pod comes back injected.
        use k8s_openapi::api::core::v1::Pod;
        let pods = kube::Api::<Pod>::namespaced(client, &ns);
        pods.create(&Default::default(), &resources::pod("after-restart", &[]))
            .await?;
        resources::ensure_injected_natively(&pods.get("after-restart").await?)?;
        ensure!(
            api_lookups(&h.controller).await? == lookups,
            "the answers must come from the index, not from API fallbacks"
        );
        Ok(())
    })
}

fn says_clearly_when_a_crd_is_missing_and_waits_for_it(h: &Harness) -> Result<()> {
    if !h.cluster.local {
        eprintln!(
            "skipped: the test deletes the policy CRDs, which it does only on its own cluster"
        );
        return Ok(());
    }
    block_on(async {
        let client = h.cluster.client().await?;
        resources::delete_crds(&client).await?;
        let result = async {
            let mut controller = Controller::start(&h.controller_bin, &h.cluster.kubeconfig, &[])?;
            // A second one is stopped while it waits: the wait must not hold shutdown up.
            let mut stopped = Controller::start(&h.controller_bin, &h.cluster.kubeconfig, &[])?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let status = stopped.terminate(Duration::from_secs(10))?;
            ensure!(
                status.success(),
                "a controller waiting for CRDs must shut down cleanly on SIGTERM, got {status}"
            );
            let (ready, _) = controller.admin_get("/ready").await?;
            ensure!(
                ready != 200,
                "/ready must not be 200 while the CRDs are missing"
            );
            for crd in [
                "servers.policy.weft.dev",
                "serverauthorizations.policy.weft.dev",
            ] {
                let errors = controller.log_lines(&[
                    "ERROR",
                    &format!("The CRD {crd} is not installed"),
                    "kubectl apply -f charts/weft/crds/",
                ])?;
                ensure!(
                    (1..=2).contains(&errors.len()),
                    "in 5s the controller must log the error about {crd} once (at most twice), \
                     got {} times",
                    errors.len()
                );
            }
            let retries = controller.log_lines(&["404 page not found"])?;
            ensure!(
                retries.is_empty(),
                "no stream of 404s while a CRD is missing, got:\n{}",
                retries.join("\n")
            );

            // `weft check` says the same, and fails.
            let run = weft_e2e::weft_cli::check(
                &weft_e2e::weft_cli::build()?,
                &h.cluster.kubeconfig,
                &[],
            )?;
            ensure!(
                run.code == Some(1)
                    && run.has_line("[FAIL]", "CRD servers.policy.weft.dev is not installed")
                    && run
                        .stdout
                        .contains("fix: kubectl apply -f charts/weft/crds/"),
                "weft check must fail on the missing CRD with the fix (exit {:?}):\n{}",
                run.code,
                run.stdout
            );

            resources::install_crds(&client).await?;
            controller.wait_ready(Duration::from_secs(30)).await?;
            ensure!(
                controller.is_running(),
                "the controller must not have restarted"
            );
            ensure!(
                !controller
                    .log_lines(&["The CRD servers.policy.weft.dev is installed now"])?
                    .is_empty(),
                "the controller must say the CRD is installed now"
            );
            Ok(())
        }
        .await;
        // The CRDs come back whatever happened, for the tests that follow.
        let reinstalled = resources::install_crds(&client).await;
        result.and(reinstalled)
    })
}
