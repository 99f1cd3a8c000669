//! Helpers of the node tests that run meshed pods: the test app as a pod, waiting for it, entering
//! its network namespace to make requests as it would, and creating policy resources.

use crate::{cluster::Cluster, node, resources};
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Api, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use std::{
    process::Command,
    time::{Duration, Instant},
};

/// The test app (BusyBox httpd on 8080) as a pod running as `service_account`, with a readiness
/// probe on `/healthz` (the kubelet's probes must pass whatever the policy: probe routes).
pub fn app_pod(
    name: &str,
    image: &str,
    service_account: &str,
    annotations: &[(&str, &str)],
) -> Pod {
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

pub async fn service_account(client: &kube::Client, namespace: &str, name: &str) -> Result<()> {
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
pub async fn run_pod(
    cluster: &Cluster,
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
) -> Result<Pod> {
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
            cluster,
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

/// Runs the test app ([`app_pod`]) as pod `name` in `namespace`, running as `service_account`,
/// until it is Ready; returns the stored pod.
pub async fn run_app(
    cluster: &Cluster,
    client: &kube::Client,
    namespace: &str,
    image: &str,
    (name, service_account): (&str, &str),
    annotations: &[(&str, &str)],
) -> Result<Pod> {
    run_pod(
        cluster,
        client,
        namespace,
        &app_pod(name, image, service_account, annotations),
    )
    .await
}

/// Creates a namespace `{prefix}-<unique>` annotated `weft.dev/inject: enabled` with a service
/// account `web`, and runs the test app there as pod `web` (with `annotations`) until it is Ready;
/// returns the namespace and the stored pod.
pub async fn run_web_in_injected_namespace(
    cluster: &Cluster,
    client: &kube::Client,
    prefix: &str,
    image: &str,
    annotations: &[(&str, &str)],
) -> Result<(String, Pod)> {
    let ns = resources::namespace(client, prefix, &[("weft.dev/inject", "enabled")], &[]).await?;
    service_account(client, &ns, "web").await?;
    let pod = run_pod(
        cluster,
        client,
        &ns,
        &app_pod("web", image, "web", annotations),
    )
    .await?;
    Ok((ns, pod))
}

pub fn pod_ip(pod: &Pod) -> Result<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("the pod has no IP")
}

/// The host pid of a container of `pod`, to enter its namespaces.
pub fn pid_of(cluster: &Cluster, pod: &Pod, container: &str) -> Result<u32> {
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
    node::container_pid(cluster, id)
}

/// What an HTTP GET to `url` from inside the network namespace of `pid` got: the status code,
/// or `None` when no HTTP response came (connection refused, reset or timed out).
pub fn http_get_from(pid: u32, url: &str) -> Result<Option<u16>> {
    http_request_from(pid, "GET", url)
}

/// What an HTTP request with `method` (no body) to `url` from inside the network namespace of
/// `pid` got, as [`http_get_from`].
pub fn http_request_from(pid: u32, method: &str, url: &str) -> Result<Option<u16>> {
    let mut command = Command::new("nsenter");
    command.args(["-t", &pid.to_string(), "-n", "--"]);
    curl_status(command, method, url).context("running curl in the client pod's network namespace")
}

/// What an HTTP GET to `url` from the host's own network namespace got, as [`http_get_from`].
pub fn http_get_from_host(url: &str) -> Result<Option<u16>> {
    curl_status(Command::new("curl"), "GET", url).context("running curl on the host")
}

/// Runs `command` (curl itself, or a command that runs the rest of its arguments) with curl's
/// arguments for one request, and reads the status code it printed.
fn curl_status(mut command: Command, method: &str, url: &str) -> std::io::Result<Option<u16>> {
    if command.get_program() != "curl" {
        command.arg("curl");
    }
    let output = command
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "3",
            "-w",
            "%{http_code}",
            "-X",
            method,
        ])
        .arg(url)
        .output()?;
    let code = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(code.parse::<u16>().ok().filter(|c| *c != 0))
}

pub fn policy_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("policy.weft.dev", "v1beta1", kind))
}

pub async fn create_policy(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    value: serde_json::Value,
) -> Result<()> {
    create_object(client, namespace, &policy_resource(kind), value).await
}

/// Creates a `policy.weft.dev` Server `name` for the port `port` (a number or a name) of the pods
/// labelled `app: app`, with `proxy_protocol` when given.
pub async fn create_server(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    (app, port): (&str, serde_json::Value),
    proxy_protocol: Option<&str>,
) -> Result<()> {
    let mut spec = serde_json::json!({"podSelector": {"matchLabels": {"app": app}}, "port": port});
    if let Some(protocol) = proxy_protocol {
        spec["proxyProtocol"] = protocol.into();
    }
    create_policy(
        client,
        namespace,
        "Server",
        serde_json::json!({
            "apiVersion": "policy.weft.dev/v1beta1",
            "kind": "Server",
            "metadata": {"name": name},
            "spec": spec,
        }),
    )
    .await
}

/// Creates a ServerAuthorization `name` of the Server `server` for `clients` (its `client`
/// field, e.g. `{"meshTLS": {"serviceAccounts": [{"name": "client"}]}}`).
pub async fn authorize(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    server: &str,
    clients: serde_json::Value,
) -> Result<()> {
    create_policy(
        client,
        namespace,
        "ServerAuthorization",
        serde_json::json!({
            "apiVersion": "policy.weft.dev/v1beta1",
            "kind": "ServerAuthorization",
            "metadata": {"name": name},
            "spec": {"server": {"name": server}, "client": clients},
        }),
    )
    .await
}

/// The Gateway API's `HTTPRoute` (gateway.networking.k8s.io/v1).
pub fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
    ))
}

/// Creates an HTTPRoute in `namespace` from its JSON (`value`).
pub async fn create_http_route(
    client: &kube::Client,
    namespace: &str,
    value: serde_json::Value,
) -> Result<()> {
    create_object(client, namespace, &http_route_resource(), value).await
}

async fn create_object(
    client: &kube::Client,
    namespace: &str,
    resource: &ApiResource,
    value: serde_json::Value,
) -> Result<()> {
    let object: DynamicObject = serde_json::from_value(value)?;
    let name = object.metadata.name.clone().unwrap_or_default();
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource)
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {} {namespace}/{name}", resource.kind))?;
    Ok(())
}

/// Polls the client's request until its answer satisfies `wanted` (a status code, or `None` for
/// no response); returns how long that took.
pub async fn wait_for_answer(
    pid: u32,
    url: &str,
    wanted: impl Fn(Option<u16>) -> bool,
    what: &str,
) -> Result<Duration> {
    wait_for_request_answer(pid, "GET", url, wanted, what).await
}

/// [`wait_for_answer`] for a request with `method`.
pub async fn wait_for_request_answer(
    pid: u32,
    method: &str,
    url: &str,
    wanted: impl Fn(Option<u16>) -> bool,
    what: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(20) {
        let got = http_request_from(pid, method, url)?;
        if wanted(got) {
            return Ok(start.elapsed());
        }
        last = got;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{what}: {method} {url} still answered {last:?} after 20s")
}

pub fn refused(answer: Option<u16>) -> bool {
    matches!(answer, None | Some(403))
}

/// The Prometheus metrics of the proxy of the pod at `pod_ip`, from its admin port (4191, which
/// the proxy's iptables rules leave alone), fetched from the host.
pub fn proxy_metrics(pod_ip: &str) -> Result<String> {
    node::metrics_at(pod_ip, 4191)
}

/// Whether an HTTPS server answered `url` (any HTTP status; the certificate is not checked)
/// from inside the network namespace of `pid`.
pub fn https_answers_from(pid: u32, url: &str) -> Result<bool> {
    let output = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--"])
        .args([
            "curl",
            "-sk",
            "-o",
            "/dev/null",
            "-m",
            "5",
            "-w",
            "%{http_code}",
        ])
        .arg(url)
        .output()
        .context("running curl in the client pod's network namespace")?;
    let code = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(code.parse::<u16>().is_ok_and(|c| c != 0))
}

/// A Service `name` selecting `app: name` pods, port `port` to their `http` port.
pub fn service(name: &str, port: u16) -> k8s_openapi::api::core::v1::Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }))
    .expect("the literal Service is a valid Service")
}

/// Creates `service` and returns its cluster IP.
pub async fn create_service(
    client: &kube::Client,
    namespace: &str,
    service: &k8s_openapi::api::core::v1::Service,
) -> Result<String> {
    let created = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), service)
        .await
        .with_context(|| format!("creating a Service in {namespace}"))?;
    created
        .spec
        .and_then(|s| s.cluster_ip)
        .filter(|ip| !ip.is_empty() && ip != "None")
        .context("the Service got no cluster IP")
}
