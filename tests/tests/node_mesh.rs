//! The data plane for real: linkerd2-proxy, built here from source, injected by Weft's webhook,
//! certified by Weft's identity service and enforcing the inbound policy Weft serves it, in pods
//! the kubelet runs with containerd and runc. The proxy is the judge: nothing here imitates it.
//!
//! Clients are unmeshed: the host's `curl` run inside a plain pod's network namespace
//! (`nsenter -n`), so each request leaves from that pod's address as any pod's would.

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Api, DeleteParams, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use std::{
    process::Command,
    time::{Duration, Instant},
};
use weft_e2e::{node, resources};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "mesh::injected_pod_is_ready_with_an_identity_weft_issued",
        injected_pod_is_ready_with_an_identity_weft_issued,
    ),
    (
        "mesh::the_proxy_allows_and_refuses_as_the_policy_says",
        the_proxy_allows_and_refuses_as_the_policy_says,
    ),
];

/// The test app (BusyBox httpd on 8080) as a pod running as `service_account`, with a readiness
/// probe on `/healthz` (the kubelet's probes must pass whatever the policy: probe routes).
fn app_pod(name: &str, image: &str, service_account: &str, annotations: &[(&str, &str)]) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": name},
            "annotations": resources::to_map(annotations),
        },
        "spec": {
            "serviceAccountName": service_account,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app",
                "image": image,
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "periodSeconds": 1,
                },
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 65532,
                    "allowPrivilegeEscalation": false,
                },
            }],
        },
    }))
    .expect("the literal pod is a valid Pod")
}

async fn service_account(client: &kube::Client, namespace: &str, name: &str) -> Result<()> {
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await
        .with_context(|| format!("creating ServiceAccount {namespace}/{name}"))?;
    Ok(())
}

/// Creates `pod` and waits until all its containers are Ready; returns the stored pod. A pod
/// that does not get Ready fails with the proxy's log.
async fn run_pod(h: &Harness, client: &kube::Client, namespace: &str, pod: &Pod) -> Result<Pod> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let name = pod.metadata.name.clone().context("pod without a name")?;
    api.create(&PostParams::default(), pod).await?;
    let ready = node::wait_for(
        &format!("pod {namespace}/{name} Ready"),
        Duration::from_secs(120),
        || async {
            let pod = api.get(&name).await?;
            Ok(node::pod_ready(&pod).then_some(pod))
        },
    )
    .await;
    ready.map_err(|error| {
        let log = node::kubectl(
            &h.cluster,
            &[
                "-n",
                namespace,
                "logs",
                &name,
                "-c",
                "weft-proxy",
                "--tail=30",
            ],
        )
        .unwrap_or_else(|e| format!("(no proxy log: {e:#})"));
        error.context(format!("--- weft-proxy log of {namespace}/{name}:\n{log}"))
    })
}

fn pod_ip(pod: &Pod) -> Result<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("the pod has no IP")
}

/// The host pid of a container of `pod`, to enter its namespaces.
fn pid_of(h: &Harness, pod: &Pod, container: &str) -> Result<u32> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.iter().find(|c| c.name == container))
        .with_context(|| format!("no status for container {container}"))?;
    let id = status
        .container_id
        .as_deref()
        .with_context(|| format!("container {container} has no id"))?;
    node::container_pid(&h.cluster, id)
}

/// What an HTTP GET to `url` from inside the network namespace of `pid` got: the status code,
/// or `None` when no HTTP response came (connection refused, reset or timed out).
fn http_get_from(pid: u32, url: &str) -> Result<Option<u16>> {
    let output = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--"])
        .args([
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "3",
            "-w",
            "%{http_code}",
        ])
        .arg(url)
        .output()
        .context("running curl in the client pod's network namespace")?;
    let code = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(code.parse::<u16>().ok().filter(|c| *c != 0))
}

fn policy_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("policy.weft.dev", "v1beta1", kind))
}

async fn create_policy(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    value: serde_json::Value,
) -> Result<()> {
    let object: DynamicObject = serde_json::from_value(value)?;
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &policy_resource(kind))
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {kind}"))?;
    Ok(())
}

/// Polls the client's request until its answer satisfies `wanted` (a status code, or `None` for
/// no response); returns how long that took.
async fn wait_for_answer(
    pid: u32,
    url: &str,
    wanted: impl Fn(Option<u16>) -> bool,
    what: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(20) {
        let got = http_get_from(pid, url)?;
        if wanted(got) {
            return Ok(start.elapsed());
        }
        last = got;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{what}: {url} still answered {last:?} after 20s")
}

fn refused(answer: Option<u16>) -> bool {
    matches!(answer, None | Some(403))
}

fn injected_pod_is_ready_with_an_identity_weft_issued(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "mesh-identity",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        service_account(&client, &ns, "web").await?;
        let pod = run_pod(
            h,
            &client,
            &ns,
            &app_pod(
                "web",
                &h.images.test_app,
                "web",
                &[("config.weft.dev/proxy-log-level", "warn,linkerd=info")],
            ),
        )
        .await?;
        let (init, containers) = resources::container_names(&pod);
        ensure!(
            init == ["weft-init"] && containers.iter().any(|c| c == "weft-proxy"),
            "the pod must run weft-init and weft-proxy: init {init:?}, containers {containers:?}"
        );
        // Ready means certified: the proxy's /ready waits for its identity.
        let identity = format!("web.{ns}.serviceaccount.identity.weft.cluster.local");
        let logs = node::kubectl(&h.cluster, &["-n", &ns, "logs", "web", "-c", "weft-proxy"])?;
        ensure!(
            logs.contains("Certified identity") && logs.contains(&identity),
            "the proxy's log does not show the identity {identity} certified:\n{logs}"
        );
        // The init container's redirection is in the pod's network namespace.
        let pid = pid_of(h, &pod, "app")?;
        let rules = node::run(
            Command::new("nsenter")
                .args(["-t", &pid.to_string(), "-n", "--"])
                .args(["iptables-nft-save", "-t", "nat"]),
        )?;
        let rules = String::from_utf8_lossy(&rules.stdout);
        ensure!(
            rules.contains("PROXY_INIT_REDIRECT") && rules.contains("--to-ports 4143"),
            "the pod's nat table lacks the proxy-init redirection:\n{rules}"
        );
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}

fn the_proxy_allows_and_refuses_as_the_policy_says(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "mesh-policy",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        let plain = resources::namespace(&client, "mesh-client", &[], &[]).await?;
        service_account(&client, &ns, "web").await?;
        let server = run_pod(
            h,
            &client,
            &ns,
            &app_pod(
                "web",
                &h.images.test_app,
                "web",
                &[("config.weft.dev/default-inbound-policy", "deny")],
            ),
        )
        .await?;
        let client_pod = run_pod(
            h,
            &client,
            &plain,
            &app_pod("client", &h.images.test_app, "default", &[]),
        )
        .await?;
        let client_pid = pid_of(h, &client_pod, "app")?;
        let url = format!("http://{}:8080/", pod_ip(&server)?);

        // No Server selects the port and the default policy is deny: refused, although the
        // kubelet's probes of /healthz pass (the pod is Ready).
        let answer = http_get_from(client_pid, &url)?;
        ensure!(
            refused(answer),
            "under the deny default policy the request must be refused, got {answer:?}"
        );

        // A Server and a ServerAuthorization admitting unauthenticated clients of the pod
        // network: allowed.
        create_policy(
            &client,
            &ns,
            "Server",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "Server",
                "metadata": {"name": "web-http"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
            }),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "ServerAuthorization",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "ServerAuthorization",
                "metadata": {"name": "pod-network"},
                "spec": {
                    "server": {"name": "web-http"},
                    "client": {"unauthenticated": true, "networks": [{"cidr": "10.251.0.0/24"}]},
                },
            }),
        )
        .await?;
        let allowed_after =
            wait_for_answer(client_pid, &url, |a| a == Some(200), "authorized").await?;
        eprintln!("mesh: allowed {allowed_after:?} after the ServerAuthorization was created");

        // `weft policy` shows what the proxy got: it finds the controller, port-forwards to it
        // and verifies its identity against the trust anchors.
        let weft = weft_e2e::weft_cli::build()?;
        let kubeconfig = format!("--kubeconfig={}", h.cluster.kubeconfig.display());
        let shown =
            weft_e2e::weft_cli::policy(&weft, &[&format!("{ns}/web"), "8080", &kubeconfig])?;
        ensure!(
            shown.code == Some(0)
                && shown.stdout.contains("name: web-http")
                && shown.stdout.contains("pod-network")
                && shown.stdout.contains("10.251.0.0/24"),
            "weft policy must show the Server and its authorization (exit {:?}):\n{}{}",
            shown.code,
            shown.stdout,
            shown.stderr
        );

        // Deleting the authorization leaves the Server admitting nobody: refused again.
        let authorizations = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &ns,
            &policy_resource("ServerAuthorization"),
        );
        authorizations
            .delete("pod-network", &DeleteParams::default())
            .await?;
        let refused_after = wait_for_answer(
            client_pid,
            &url,
            refused,
            "the ServerAuthorization was deleted",
        )
        .await?;
        eprintln!("mesh: refused {refused_after:?} after the ServerAuthorization was deleted");

        let _ = resources::delete_namespace(&client, &ns).await;
        let _ = resources::delete_namespace(&client, &plain).await;
        Ok(())
    })
}
