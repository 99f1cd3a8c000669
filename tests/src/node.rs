//! What the node suite needs besides the API: the command-line tools (kubectl, helm, bin/images,
//! containerd's ctr), the chart install, and waiting for workloads the real node runs.

use crate::cluster::Cluster;
use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::api::{Api, ListParams};
use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

/// The release the suite installs: name and namespace `weft`, so object names are the chart's
/// defaults (`weft`, `weft-webhook-tls`, `weft-proxy-injector`, `weft-policy-validator`).
pub const RELEASE: &str = "weft";
pub const RELEASE_NAMESPACE: &str = "weft";
/// The fixed ClusterIP of the controller's Service: the local cluster has no DNS, so injected
/// proxies dial the control plane by this address (and verify its identity over TLS).
pub const CONTROL_PLANE_IP: &str = "10.96.0.20";
/// The host's address on the pod network (`NODE_IP` in `bin/_node`): the source of the kubelet's
/// probes and of the tests' metric scrapes.
pub const HOST_POD_NETWORK_IP: &str = "10.251.0.1";

/// Images pushed to the node's registry by `bin/images`.
#[derive(Clone, Debug)]
pub struct Images {
    pub registry: String,
    pub controller: String,
    pub test_app: String,
    /// linkerd2-proxy with its identity wrapper and proxy-init (`bin/proxy-image`).
    pub proxy: String,
}

impl Images {
    /// Builds and pushes the images (`bin/images`), returning their references.
    pub fn build(cluster: &Cluster) -> Result<Self> {
        let env = cluster.command(&["env"])?;
        let registry = env
            .lines()
            .find_map(|line| line.strip_prefix("export WEFT_REGISTRY="))
            .map(|v| v.trim_matches(['"', '\'']).to_string())
            .context("bin/cluster env printed no WEFT_REGISTRY: the cluster has no node")?;
        // The debug build the other suites already made (the same code; a release build of a
        // fresh target dir costs CI ten minutes); WEFT_IMAGES_PROFILE=release for the release one.
        let profile = std::env::var("WEFT_IMAGES_PROFILE").unwrap_or_else(|_| "debug".to_string());
        let output = run(Command::new(crate::repo_root().join("bin/images")).args([
            "--registry",
            &registry,
            "--profile",
            &profile,
        ]))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let find = |name: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
                .with_context(|| format!("bin/images printed no {name}= line:\n{stdout}"))
        };
        let output = run(
            Command::new(crate::repo_root().join("bin/proxy-image")).args([
                "push",
                "--registry",
                &registry,
            ]),
        )?;
        let proxy = String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("linkerd-proxy="))
            .map(str::to_string)
            .context("bin/proxy-image printed no linkerd-proxy= line")?;
        Ok(Self {
            controller: find("weft-controller")?,
            test_app: find("test-app")?,
            proxy,
            registry,
        })
    }
}

/// Splits `host:port/name:tag` into repository and tag.
pub fn repository_and_tag(reference: &str) -> Result<(&str, &str)> {
    let slash = reference.rfind('/').unwrap_or(0);
    let colon = reference[slash..]
        .rfind(':')
        .map(|i| slash + i)
        .with_context(|| format!("image reference {reference} has no tag"))?;
    Ok((&reference[..colon], &reference[colon + 1..]))
}

/// The directory of the Kubernetes tools (kubectl, helm) built by bin/k8s-tools.
pub fn tools_dir() -> Result<PathBuf> {
    let output = run(Command::new(crate::repo_root().join("bin/k8s-tools")).arg("path"))?;
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    ))
}

/// The directory of the node tools (bin/ holds ctr) built by bin/node-tools.
pub fn node_tools_dir() -> Result<PathBuf> {
    let output = run(Command::new(crate::repo_root().join("bin/node-tools")).arg("path"))?;
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    ))
}

/// Runs a command; fails with its output when it exits non-zero.
pub fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// `kubectl ARGS` against the cluster; stdout on success.
pub fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<String> {
    let output = run(Command::new(tools_dir()?.join("kubectl"))
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(args))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Installs (or upgrades to) the chart with the locally built controller image and `extra`
/// `--set`/`-f` arguments, and waits until its Deployment is available. The Gateway API CRDs the
/// controller watches are installed first (the chart's `crds/` holds only Weft's own).
pub fn install_chart(cluster: &Cluster, images: &Images, extra: &[&str]) -> Result<()> {
    on_own_thread(|| async {
        crate::resources::install_gateway_api_crds(&cluster.client().await?).await
    })
    .context("installing the Gateway API CRDs before the chart")?;
    install_chart_only(cluster, images, extra)
}

/// Runs `future()` to completion on a thread and runtime of its own: the caller may be inside a
/// runtime, where another cannot block.
fn on_own_thread<F, Fut>(future: F) -> Result<()>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<()>>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| crate::suite::block_on(future()))
            .join()
            .unwrap_or_else(|_| bail!("the thread panicked"))
    })
}

/// `helm upgrade --install --wait` of the chart (see [`install_chart`]) and nothing else: on a
/// cluster without the Gateway API CRDs, this is how a user without them installs Weft.
pub fn install_chart_only(cluster: &Cluster, images: &Images, extra: &[&str]) -> Result<()> {
    let (repository, tag) = repository_and_tag(&images.controller)?;
    let chart = crate::repo_root().join("charts/weft");
    let (proxy_repository, proxy_tag) = repository_and_tag(&images.proxy)?;
    let mut args = vec![
        "upgrade".to_string(),
        "--install".to_string(),
        RELEASE.to_string(),
        chart.display().to_string(),
        "--namespace".to_string(),
        RELEASE_NAMESPACE.to_string(),
        "--create-namespace".to_string(),
        "--set".to_string(),
        format!("image.repository={repository}"),
        "--set".to_string(),
        format!("image.tag={tag}"),
        "--set".to_string(),
        format!("proxy.image={proxy_repository}"),
        "--set".to_string(),
        format!("proxy.version={proxy_tag}"),
        // The local cluster has no DNS: proxies dial the controller's Service at a fixed address.
        "--set".to_string(),
        format!("service.clusterIP={CONTROL_PLANE_IP}"),
        "--set".to_string(),
        format!("proxy.controlPlaneAddress={CONTROL_PLANE_IP}:8090"),
        "--wait".to_string(),
        "--timeout".to_string(),
        "180s".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    if let Err(error) = run(Command::new(tools_dir()?.join("helm"))
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(&args))
    {
        eprintln!("{}", install_diagnostics(cluster));
        return Err(error.context("helm upgrade --install of charts/weft"));
    }
    Ok(())
}

/// What explains a chart that did not become ready: the release's pods, their events and logs,
/// and the last lines of the node's own logs. Best effort: each failure is printed in place.
fn install_diagnostics(cluster: &Cluster) -> String {
    let mut out = String::from("---- why the chart did not become ready:\n");
    let probes: [&[&str]; 5] = [
        &["get", "pods", "-A", "-o", "wide"],
        &["-n", RELEASE_NAMESPACE, "describe", "pods"],
        &[
            "-n",
            RELEASE_NAMESPACE,
            "logs",
            "--all-containers",
            "--prefix",
            "--tail=60",
            "-l",
            "app.kubernetes.io/name=weft",
        ],
        &[
            "-n",
            RELEASE_NAMESPACE,
            "logs",
            "--all-containers",
            "--prefix",
            "--previous",
            "--tail=60",
            "-l",
            "app.kubernetes.io/name=weft",
        ],
        &["get", "events", "-A", "--sort-by=.lastTimestamp"],
    ];
    for args in probes {
        out.push_str(&format!("---- kubectl {}\n", args.join(" ")));
        match kubectl(cluster, args) {
            Ok(text) => out.push_str(&text),
            Err(error) => out.push_str(&format!("{error:#}\n")),
        }
    }
    if let Some(dir) = &cluster.state_dir {
        for component in ["kubelet", "containerd", "registry"] {
            let path = dir.join("logs").join(format!("{component}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("{e}\n"));
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("---- last lines of {}\n", path.display()));
            for line in &lines[lines.len().saturating_sub(40)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Polls `check` every 200 ms until it returns `Ok(Some(_))` or `timeout` passes; the last error
/// or `None` explains a timeout.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last = format!("{error:#}"),
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?} ({last})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The controller pods of the release (not being deleted).
pub async fn controller_pods(client: &kube::Client) -> Result<Vec<Pod>> {
    let api = Api::<Pod>::namespaced(client.clone(), RELEASE_NAMESPACE);
    Ok(api
        .list(&ListParams::default().labels("app.kubernetes.io/component=controller"))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// The Prometheus text of `http://{ip}:{port}/metrics`, fetched from the host.
pub fn metrics_at(ip: &str, port: u16) -> Result<String> {
    let output =
        run(Command::new("curl").args(["-sf", "-m", "3", &format!("http://{ip}:{port}/metrics")]))
            .with_context(|| format!("fetching the metrics at {ip}:{port}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The Prometheus metrics of a controller pod, from its admin port (the chart's `ports.admin`,
/// 8080).
pub fn controller_metrics(pod: &Pod) -> Result<String> {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .context("the controller pod has no IP")?;
    metrics_at(ip, 8080)
}

/// Installs the Gateway API CRDs if they are missing (the suite's harness installs the chart
/// without them) and waits until every controller pod has listed HTTPRoutes (kubert's
/// `kube_watch_events_total{op="Restart",kind="HTTPRoute"}`), so routes created next apply at once.
pub async fn ensure_gateway_api_watched(cluster: &Cluster) -> Result<()> {
    let client = cluster.client().await?;
    crate::resources::install_gateway_api_crds(&client).await?;
    wait_for(
        "every controller pod to watch HTTPRoutes",
        Duration::from_secs(60),
        || async {
            let pods = controller_pods(&client).await?;
            for pod in &pods {
                let listed = controller_metrics(pod)?.lines().any(|line| {
                    line.starts_with("kube_watch_events_total{")
                        && line.contains("op=\"Restart\"")
                        && line.contains("kind=\"HTTPRoute\"")
                });
                if !listed {
                    return Ok(None);
                }
            }
            Ok((!pods.is_empty()).then_some(()))
        },
    )
    .await
}

/// Waits until the Deployment's replicas are all updated, ready and available.
pub async fn wait_deployment_available(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Deployment> {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    wait_for(
        &format!("Deployment {namespace}/{name} available"),
        timeout,
        || async {
            let d = api.get(name).await?;
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            let available = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            let ok = available
                && status.ready_replicas.unwrap_or(0) == want
                && status.updated_replicas.unwrap_or(0) == want
                && status.available_replicas.unwrap_or(0) == want
                && status.replicas.unwrap_or(0) == want;
            Ok(ok.then_some(d))
        },
    )
    .await
}

/// The pods matching `selector` in `namespace`, once there are `count` of them.
pub async fn wait_pods(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(selector);
    wait_for(
        &format!("{count} pods {selector} in {namespace}"),
        timeout,
        || async {
            let pods = api.list(&params).await?.items;
            Ok((pods.len() == count).then_some(pods))
        },
    )
    .await
}

pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The host pid of a running container, from containerd (`ctr tasks ls`) in the cluster's state
/// dir, given the `containerd://ID` of the pod's container status.
pub fn container_pid(cluster: &Cluster, container_id: &str) -> Result<u32> {
    let id = container_id
        .strip_prefix("containerd://")
        .with_context(|| format!("container id {container_id} is not containerd's"))?;
    let state = cluster
        .state_dir
        .as_deref()
        .context("not a local cluster")?;
    let socket = state.join("containerd/containerd.sock");
    let output = run(Command::new(node_tools_dir()?.join("bin/ctr"))
        .arg("-a")
        .arg(&socket)
        .args(["-n", "k8s.io", "tasks", "ls"]))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .with_context(|| format!("containerd has no task {id}:\n{stdout}"))?;
    let pid = line
        .split_whitespace()
        .nth(1)
        .context("ctr tasks ls printed no pid")?;
    pid.parse()
        .with_context(|| format!("ctr tasks ls printed pid {pid:?}"))
}

/// The real (not effective) uid and gid of a host process, from /proc.
pub fn process_ids(pid: u32) -> Result<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u32> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("/proc/{pid}/status has no {name}"))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .context("empty /proc status field")?;
        Ok(value.parse()?)
    };
    Ok((field("Uid:")?, field("Gid:")?))
}

/// True when the process's root filesystem is mounted read-only.
pub fn root_is_read_only(pid: u32) -> Result<bool> {
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    let root = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .with_context(|| format!("/proc/{pid}/mountinfo has no / mount"))?;
    let options = root.split_whitespace().nth(5).unwrap_or_default();
    Ok(options.split(',').any(|o| o == "ro"))
}

/// The file a pod's Secret volume holds for `key`, as the kubelet wrote it under its root dir.
pub fn secret_volume_file(
    cluster: &Cluster,
    pod_uid: &str,
    volume: &str,
    key: &str,
) -> Result<PathBuf> {
    let state = cluster
        .state_dir
        .as_deref()
        .context("not a local cluster")?;
    let path = state
        .join("kubelet/root/pods")
        .join(pod_uid)
        .join("volumes/kubernetes.io~secret")
        .join(volume)
        .join(key);
    ensure!(
        Path::new(&path).exists(),
        "the kubelet wrote no {}",
        path.display()
    );
    Ok(std::fs::canonicalize(&path)?)
}
