//! Mutual TLS between meshed pods, for real: a meshed client's linkerd2-proxy resolves a Service
//! through Weft's OutboundPolicies and Destination APIs, dials the meshed server's proxy with the
//! identity Weft says to expect, and the server's proxy authorizes the client by the service
//! account of its certificate. The proxies are the judges; the evidence is their answers and
//! their own metrics.
//!
//! Requests are the host's `curl` run inside a pod's network namespace (`nsenter -n`): in a meshed
//! pod, the pod's iptables rules send it through the pod's proxy like any of its processes.

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod, discovery::v1::EndpointSlice};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use weft_e2e::{
    mesh::{
        app_pod, authorize, create_server, create_service, http_get_from, https_answers_from,
        pid_of, pod_ip, proxy_metrics, refused, run_app, service, service_account, wait_for_answer,
    },
    node, resources,
};

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "mtls::meshed_pods_talk_over_mtls_and_authorize_by_service_account",
    meshed_pods_talk_over_mtls_and_authorize_by_service_account,
)];

/// A Deployment of the test app named `name`, running as `service_account`.
fn deployment(name: &str, image: &str, service_account: &str, replicas: i32) -> Deployment {
    let pod = app_pod(name, image, service_account, &[]);
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": pod.spec,
            },
        },
    }))
    .expect("the literal Deployment is a valid Deployment")
}

/// The ready endpoints of Service `name` in `namespace`, from its EndpointSlices.
async fn ready_endpoints(client: &kube::Client, namespace: &str, name: &str) -> Result<usize> {
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
        .await?;
    Ok(slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .count())
}

/// How many ready endpoints the client proxy's HTTP balancer of Service `namespace/name` holds,
/// from the proxy's own `outbound_http_balancer_endpoints` gauge (summed over its balancers).
fn balancer_endpoints(client_ip: &str, namespace: &str, name: &str) -> Result<u64> {
    let metrics = proxy_metrics(client_ip)?;
    let (ns_label, name_label) = (
        format!("parent_namespace=\"{namespace}\""),
        format!("parent_name=\"{name}\""),
    );
    Ok(metrics
        .lines()
        .filter(|l| l.starts_with("outbound_http_balancer_endpoints{"))
        .filter(|l| l.contains("endpoint_state=\"ready\""))
        .filter(|l| l.contains(&ns_label) && l.contains(&name_label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum())
}

/// Sends requests from `pid` to `url` back to back until `stop`; returns (sent, failed).
fn request_loop(pid: u32, url: String, stop: Arc<AtomicBool>) -> (u32, u32, Vec<Option<u16>>) {
    let (mut sent, mut failed, mut failures) = (0, 0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let answer = http_get_from(pid, &url).unwrap_or(None);
        sent += 1;
        if answer != Some(200) {
            failed += 1;
            failures.push(answer);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (sent, failed, failures)
}

/// The API server's own address (the endpoint of the `kubernetes` Service): neither a Service's
/// cluster IP nor a pod's.
async fn api_server_address(client: &kube::Client) -> Result<String> {
    let slice = Api::<EndpointSlice>::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await
        .context("reading the kubernetes Service's EndpointSlice")?;
    let ip = slice
        .endpoints
        .first()
        .and_then(|e| e.addresses.first())
        .context("the kubernetes EndpointSlice has no address")?;
    let port = slice
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .and_then(|p| p.port)
        .context("the kubernetes EndpointSlice has no port")?;
    Ok(format!("{ip}:{port}"))
}

async fn scale(client: &kube::Client, namespace: &str, name: &str, replicas: i32) -> Result<()> {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await
        .with_context(|| format!("scaling {namespace}/{name} to {replicas}"))?;
    Ok(())
}

/// Scales `web` to `replicas` while `client` sends requests; returns how long after the
/// EndpointSlices reached `replicas` ready endpoints the client's balancer did, and the
/// request tally.
async fn scale_under_load(
    client: &kube::Client,
    namespace: &str,
    client_pid: u32,
    client_ip: &str,
    url: &str,
    replicas: i32,
) -> Result<(Duration, (u32, u32, Vec<Option<u16>>))> {
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (url, stop) = (url.to_string(), stop.clone());
        std::thread::spawn(move || request_loop(client_pid, url, stop))
    };
    scale(client, namespace, "web", replicas).await?;
    let want = replicas as usize;
    let measured = async {
        node::wait_for(
            &format!("the web Service's EndpointSlices with {want} ready endpoints"),
            Duration::from_secs(120),
            || async {
                Ok((ready_endpoints(client, namespace, "web").await? == want).then_some(()))
            },
        )
        .await?;
        let sliced = Instant::now();
        node::wait_for(
            &format!("the client proxy's balancer with {want} endpoints"),
            Duration::from_secs(20),
            || async {
                let n = balancer_endpoints(client_ip, namespace, "web")?;
                Ok((n == want as u64).then_some(()))
            },
        )
        .await?;
        Ok::<_, anyhow::Error>(sliced.elapsed())
    }
    .await;
    // Let the old endpoints finish terminating under load too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let tally = load
        .join()
        .map_err(|_| anyhow::anyhow!("the request loop panicked"))?;
    Ok((measured?, tally))
}

fn meshed_pods_talk_over_mtls_and_authorize_by_service_account(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns =
            resources::namespace(&client, "mtls", &[("weft.dev/inject", "enabled")], &[]).await?;
        let plain = resources::namespace(&client, "mtls-plain", &[], &[]).await?;
        for sa in ["web", "client", "other"] {
            service_account(&client, &ns, sa).await?;
        }
        // The server: a Deployment behind a Service; no Server yet, default policy deny.
        let mut web = deployment("web", &h.images.test_app, "web", 1);
        if let Some(template) = web.spec.as_mut().map(|s| &mut s.template) {
            template.metadata.get_or_insert_default().annotations = Some(resources::to_map(&[(
                "config.weft.dev/default-inbound-policy",
                "deny",
            )]));
        }
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &web)
            .await?;
        let web_ip = create_service(&client, &ns, &service("web", 80)).await?;
        let url = format!("http://{web_ip}/");
        let image = &h.images.test_app;
        let meshed_client =
            run_app(&h.cluster, &client, &ns, image, ("client", "client"), &[]).await?;
        let other = run_app(&h.cluster, &client, &ns, image, ("other", "other"), &[]).await?;
        let unmeshed = run_app(
            &h.cluster,
            &client,
            &plain,
            image,
            ("plain", "default"),
            &[],
        )
        .await?;
        node::wait_deployment_available(&client, &ns, "web", Duration::from_secs(120)).await?;
        let (client_pid, other_pid, plain_pid) = (
            pid_of(&h.cluster, &meshed_client, "app")?,
            pid_of(&h.cluster, &other, "app")?,
            pid_of(&h.cluster, &unmeshed, "app")?,
        );
        let client_ip = pod_ip(&meshed_client)?;
        let plain_ip = pod_ip(&unmeshed)?;

        // A Server for the web pods' port and a ServerAuthorization for the `client` service
        // account only: meshTLS.serviceAccounts is decided on the identity of the client's
        // certificate, so the connection must be mutual TLS.
        create_server(&client, &ns, "web-http", ("web", json!("http")), None).await?;
        let client_sa = json!({"meshTLS": {"serviceAccounts": [{"name": "client"}]}});
        authorize(&client, &ns, "client-only", "web-http", client_sa).await?;
        // The proxy's admin port is under policy too (deny here): let the host scrape metrics.
        create_server(
            &client,
            &ns,
            "web-admin",
            ("web", json!("weft-admin")),
            None,
        )
        .await?;
        let host = format!("{}/32", node::HOST_POD_NETWORK_IP);
        let node_scrapes = json!({"unauthenticated": true, "networks": [{"cidr": host}]});
        authorize(&client, &ns, "node-scrapes", "web-admin", node_scrapes).await?;
        let allowed = wait_for_answer(client_pid, &url, |a| a == Some(200), "client SA").await?;
        eprintln!("mtls: the client's service account allowed {allowed:?} after the authorization");
        let answer = http_get_from(other_pid, &url)?;
        ensure!(
            refused(answer),
            "a meshed client running as another service account must be refused, got {answer:?}"
        );
        let answer = http_get_from(plain_pid, &url)?;
        ensure!(
            refused(answer),
            "an unmeshed client must be refused by a meshTLS authorization, got {answer:?}"
        );

        // The server proxy's own metrics: the client's requests arrived over TLS with the
        // client's identity.
        let web_pods = Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels("app=web"))
            .await?;
        let web_pod_ip = web_pods.items.first().map(pod_ip).context("no web pod")??;
        let client_id = format!("client.{ns}.serviceaccount.identity.weft.cluster.local");
        let metrics = node::wait_for(
            "the web proxy's metrics (Server web-admin)",
            Duration::from_secs(10),
            || async { Ok(proxy_metrics(&web_pod_ip).ok()) },
        )
        .await?;
        let evidence: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("inbound_http_authz_allow_total{"))
            .filter(|l| l.contains(&format!("client_id=\"{client_id}\"")))
            .filter(|l| l.contains("tls=\"true\"") && l.contains("authz_name=\"client-only\""))
            .collect();
        ensure!(
            !evidence.is_empty(),
            "the server proxy's metrics show no request authorized by client-only over TLS from \
             {client_id}:\n{}",
            metrics
                .lines()
                .filter(|l| l.starts_with("inbound_http_authz"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        eprintln!("mtls: server proxy: {}", evidence[0]);

        // `unauthenticated` from one network admits the unmeshed client there, and no one else.
        let plain_net =
            json!({"unauthenticated": true, "networks": [{"cidr": format!("{plain_ip}/32")}]});
        authorize(&client, &ns, "plain-pod", "web-http", plain_net).await?;
        wait_for_answer(plain_pid, &url, |a| a == Some(200), "unauthenticated /32").await?;
        let answer = http_get_from(other_pid, &url)?;
        ensure!(
            refused(answer),
            "the other service account is outside the unauthenticated network and must still be \
             refused, got {answer:?}"
        );

        // `weft endpoints` shows what the client's proxy resolves: the web pod, meshed, with the
        // identity the client requires of it.
        let weft = weft_e2e::weft_cli::build()?;
        let kubeconfig = format!("--kubeconfig={}", h.cluster.kubeconfig.display());
        let shown = weft_e2e::weft_cli::endpoints(&weft, &[&format!("web.{ns}:80"), &kubeconfig])?;
        let web_identity = format!("web.{ns}.serviceaccount.identity.weft.cluster.local");
        ensure!(
            shown.code == Some(0)
                && shown.stdout.contains(&format!("{web_pod_ip}:8080"))
                && shown.stdout.contains(&web_identity),
            "weft endpoints must show {web_pod_ip}:8080 with identity {web_identity} (exit {:?}):\n{}{}",
            shown.code,
            shown.stdout,
            shown.stderr
        );

        // Scaling the server: the client's balancer follows the EndpointSlices.
        let (up, (sent, failed, failures)) =
            scale_under_load(&client, &ns, client_pid, &client_ip, &url, 3).await?;
        eprintln!(
            "mtls: scale 1->3: the client's balancer had 3 endpoints {up:?} after the \
             EndpointSlices; {failed} of {sent} requests failed {failures:?}"
        );
        ensure!(
            failed == 0,
            "no request may fail while the server scales up: {failed} of {sent} failed {failures:?}"
        );
        ensure!(
            up < Duration::from_secs(1),
            "the client's resolution must follow a scale-up within a second, took {up:?}"
        );
        let (down, (sent, failed, failures)) =
            scale_under_load(&client, &ns, client_pid, &client_ip, &url, 1).await?;
        eprintln!(
            "mtls: scale 3->1: the client's balancer had 1 endpoint {down:?} after the \
             EndpointSlices; {failed} of {sent} requests failed {failures:?}"
        );
        ensure!(
            down < Duration::from_secs(1),
            "the client's resolution must follow a scale-down within a second, took {down:?}"
        );
        ensure!(
            failed * 10 <= sent.max(10),
            "at most a tenth of the requests may fail while the server scales down: {failed} of \
             {sent} failed {failures:?}"
        );

        // Targets Weft does not mesh stay reachable: an unmeshed pod behind a Service, and an
        // address that is no Service (the API server on the node's address).
        run_app(
            &h.cluster,
            &client,
            &plain,
            image,
            ("plain-web", "default"),
            &[],
        )
        .await?;
        let plain_web = create_service(&client, &plain, &service("plain-web", 80)).await?;
        wait_for_answer(
            client_pid,
            &format!("http://{plain_web}/"),
            |a| a == Some(200),
            "an unmeshed Service from a meshed client",
        )
        .await?;
        let api_server = api_server_address(&client).await?;
        let url = format!("https://{api_server}/livez");
        ensure!(
            https_answers_from(client_pid, &url)?,
            "a meshed client must reach an address outside the cluster's Services and pods (the \
             API server at {api_server})"
        );

        let _ = resources::delete_namespace(&client, &ns).await;
        let _ = resources::delete_namespace(&client, &plain).await;
        Ok(())
    })
}
