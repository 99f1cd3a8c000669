//! Optional API groups: a cluster without the Gateway API CRDs still gets a ready controller that
//! injects and serves Server-level policy, and HTTPRoutes apply once the CRDs are installed,
//! without a restart — also in a controller whose running watch saw the CRD deleted.

use crate::{block_on, Harness};
use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::{
    api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use kube::{
    api::{Api, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use linkerd2_proxy_api::inbound;
use std::time::{Duration, Instant};
use weft_e2e::{controller::Controller, resources, webhooks, weft_cli};

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "optional_crds::without_the_gateway_api_ready_injecting_and_serving_then_routes_apply",
    without_the_gateway_api_ready_injecting_and_serving_then_routes_apply,
)];

const HTTPROUTE_CRD: &str = "httproutes.gateway.networking.k8s.io";

fn dynamic_api(
    client: &kube::Client,
    namespace: &str,
    (group, version, kind): (&str, &str, &str),
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

fn object(value: serde_json::Value) -> Result<DynamicObject> {
    Ok(serde_json::from_value(value)?)
}

/// The next policy of a `WatchPort` stream within `wait`.
async fn next_policy(
    stream: &mut tonic::Streaming<inbound::Server>,
    wait: Duration,
) -> Result<inbound::Server> {
    match tokio::time::timeout(wait, stream.message()).await {
        Err(_) => bail!("no policy within {wait:?}"),
        Ok(message) => message?.context("the watch ended"),
    }
}

fn without_the_gateway_api_ready_injecting_and_serving_then_routes_apply(
    h: &Harness,
) -> Result<()> {
    if !h.cluster.local {
        eprintln!(
            "skipped: the test deletes the Gateway API CRDs, which it does only on its own cluster"
        );
        return Ok(());
    }
    block_on(async {
        let client = h.cluster.client().await?;
        resources::delete_gateway_api_crds(&client).await?;
        let webhook = format!("weft-e2e-no-gateway-api-{}", weft_e2e::unique_suffix());
        let result = without_gateway_api(h, &client, &webhook).await;
        webhooks::delete::<MutatingWebhookConfiguration>(&client, &webhook).await;
        // The CRDs come back whatever happened, for the tests that follow.
        let reinstalled = resources::install_gateway_api_crds(&client).await;
        result.and(reinstalled)
    })
}

async fn without_gateway_api(h: &Harness, client: &kube::Client, webhook: &str) -> Result<()> {
    let controller = Controller::start(&h.controller_bin, &h.cluster.kubeconfig, &[])?;
    let started = Instant::now();
    controller
        .wait_ready(Duration::from_secs(30))
        .await
        .context("without the Gateway API CRDs the controller must still become ready")?;
    eprintln!(
        "ready {:?} after the controller listened, without the Gateway API CRDs",
        started.elapsed()
    );
    let missing = controller.log_lines(&[
        "ERROR",
        &format!("The CRD {HTTPROUTE_CRD} is not installed"),
    ])?;
    ensure!(
        missing.len() == 1 && missing[0].contains("per-route policy does not apply"),
        "the controller must say once that the CRD is missing and what that means, got:\n{}",
        missing.join("\n")
    );

    // `weft check` warns about the CRD and does not fail on it.
    let check = weft_cli::check(&weft_cli::build()?, &h.cluster.kubeconfig, &[])?;
    ensure!(
        check.has_line(
            "[warn]",
            &format!("CRD {HTTPROUTE_CRD} (Gateway API) is not installed")
        ) && !check.has_line("[FAIL]", &format!("CRD {HTTPROUTE_CRD}")),
        "weft check must warn, not fail, about the missing Gateway API CRD:\n{}",
        check.stdout
    );

    // The API server calls this controller's webhook for a namespace of the test's own (the
    // harness's webhooks skip it), and stores the pod injected.
    let selector_label = ("weft-e2e/webhook", webhook);
    let ns = resources::namespace(
        client,
        "e2e-no-gateway-api",
        &[("weft.dev/inject", "enabled")],
        &[("weft.dev/admission-webhooks", "disabled"), selector_label],
    )
    .await?;
    let selector = LabelSelector {
        match_labels: Some(resources::to_map(&[selector_label])),
        ..Default::default()
    };
    webhooks::apply(
        client,
        &webhooks::inject_configuration_for(
            webhook,
            controller.server_addr,
            controller.pki.ca_bundle(),
            selector,
        ),
    )
    .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &resources::pod("web", &[]))
        .await
        .context("creating a pod through this controller's webhook")?;
    resources::ensure_injected_natively(&pods.get("web").await?)?;
    let (_, metrics) = controller.admin_get("/metrics").await?;
    ensure!(
        metrics
            .lines()
            .any(|l| l.starts_with("weft_admission_requests_total{")
                && l.contains("webhook=\"inject\"")
                && l.contains("result=\"injected\"")
                && l.ends_with(" 1")),
        "this controller must have injected the pod:\n{metrics}"
    );

    // Server-level policy reaches a WatchPort stream.
    let server = ("policy.weft.dev", "v1beta1", "Server");
    dynamic_api(client, &ns, server)
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "Server",
                "metadata": {"name": "web-http"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "port": "http",
                    "proxyProtocol": "HTTP/1",
                },
            }))?,
        )
        .await?;
    let mut policies = controller.policy_client().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut stream, first) = loop {
        match policies
            .watch_port(weft_e2e::controller::port_spec(&ns, "web", 8080))
            .await
        {
            Ok(response) => {
                let mut stream = response.into_inner();
                let first = next_policy(&mut stream, Duration::from_secs(5)).await?;
                if first.labels.get("name").map(String::as_str) == Some("web-http") {
                    break (stream, first);
                }
            }
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => bail!("WatchPort refused: {status}"),
        }
        ensure!(
            Instant::now() < deadline,
            "the pod's port was never served its Server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        !format!("{first:?}").contains("HTTPRoute"),
        "no HTTPRoute can apply yet: {first:?}"
    );

    // The CRDs are installed; an HTTPRoute on the Server reaches the open stream.
    resources::install_gateway_api_crds(client).await?;
    let installed = Instant::now();
    dynamic_api(
        client,
        &ns,
        ("gateway.networking.k8s.io", "v1", "HTTPRoute"),
    )
    .create(
        &PostParams::default(),
        &object(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web-api"},
            "spec": {
                "parentRefs": [{"group": "policy.weft.dev", "kind": "Server", "name": "web-http"}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}]}],
            },
        }))?,
    )
    .await?;
    let deadline = installed + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        ensure!(
            !left.is_zero(),
            "the HTTPRoute did not reach the stream within 30s of installing the CRDs"
        );
        let policy = next_policy(&mut stream, left)
            .await
            .context("waiting for the HTTPRoute on the stream")?;
        let debug = format!("{policy:?}");
        if debug.contains("HTTPRoute") && debug.contains("web-api") {
            break;
        }
    }
    eprintln!(
        "the HTTPRoute reached the stream {:?} after the CRDs were installed",
        installed.elapsed()
    );
    ensure!(
        !controller
            .log_lines(&[&format!("The CRD {HTTPROUTE_CRD} is installed now")])?
            .is_empty(),
        "the controller must say the CRD is installed now"
    );
    // The harness's controller had the CRD deleted under its running watch: it lists again after
    // its delay and applies the route too, without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let policy = h.controller.inbound_policy(&ns, "web", 8080).await?;
        if policy.is_ok_and(|p| format!("{p:?}").contains("web-api")) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "a controller whose HTTPRoute CRD was deleted and installed again must apply routes \
             within 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "the harness's controller (CRD deleted under its watch) applied the route {:?} after \
         the CRDs were installed",
        installed.elapsed()
    );
    let (ready, _) = controller.admin_get("/ready").await?;
    ensure!(ready == 200, "/ready must stay 200, got {ready}");
    let stray = controller.log_lines(&["404 page not found"])?;
    ensure!(
        stray.is_empty(),
        "no stream of 404s while the CRD was missing, got:\n{}",
        stray.join("\n")
    );
    resources::delete_namespace(client, &ns).await
}
