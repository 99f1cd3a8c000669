//! Restarting the controller while pods are created: the chart with three replicas on the node,
//! pods created through the API server at a steady rate (never scheduled, so only admission is
//! exercised), once through a `kubectl rollout restart` and once through a SIGKILL of one
//! replica. Every creation is counted, and every stored pod must be injected exactly once.

use crate::{block_on, Harness};
use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Pod};
use kube::api::{Api, ListParams, PostParams};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use weft_e2e::{
    node::{self, RELEASE, RELEASE_NAMESPACE},
    resources::{self, container_names},
};

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "restart::pods_created_through_a_rolling_restart_and_a_sigkill_are_injected_once",
    pods_created_through_a_rolling_restart_and_a_sigkill_are_injected_once,
)];

const CONTROLLER_SELECTOR: &str = "app.kubernetes.io/component=controller";
/// Pods created per second; at least [`PODS`] are created in each run.
const RATE: u32 = 20;
const PODS: usize = 1_000;
/// Creations in flight at most (a slow webhook holds each up to its timeout).
const IN_FLIGHT: usize = 64;

/// The outcome of creating pods until told to stop.
#[derive(Debug, Default)]
struct Creations {
    created: usize,
    /// (pod index, seconds since the load began, the API server's error)
    failed: Vec<(usize, f64, String)>,
}

/// A pod that is never scheduled: only the API server and its webhooks see it.
fn unscheduled_pod(name: &str) -> Pod {
    let mut pod = resources::pod(name, &[]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_selector = Some(resources::to_map(&[("weft.dev/e2e", "never-scheduled")]));
    }
    pod
}

/// Creates pods `{prefix}-N` at [`RATE`] per second until at least [`PODS`] exist and `stop` is
/// set; returns what the API server answered to each.
async fn create_pods(
    client: kube::Client,
    namespace: String,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Creations {
    let api = Api::<Pod>::namespaced(client, &namespace);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut n = 0;
    while n < PODS || !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let api = api.clone();
        let index = n;
        tasks.spawn(async move {
            let result = api
                .create(
                    &PostParams::default(),
                    &unscheduled_pod(&format!("load-{index}")),
                )
                .await;
            drop(slot);
            (index, started.elapsed().as_secs_f64(), result.err())
        });
        n += 1;
    }
    let mut creations = Creations::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, _, None)) => creations.created += 1,
            Ok((index, at, Some(error))) => creations.failed.push((index, at, error.to_string())),
            Err(error) => creations.failed.push((
                usize::MAX,
                0.0,
                format!("the creating task failed: {error}"),
            )),
        }
    }
    creations.failed.sort_by(|a, b| a.1.total_cmp(&b.1));
    creations
}

/// Every pod stored in `namespace` has exactly one Weft init container and one proxy, and there
/// are as many as were created.
async fn check_injected_once(client: &kube::Client, namespace: &str, created: usize) -> Result<()> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    ensure!(
        pods.len() == created,
        "{created} creations succeeded but {} pods are stored in {namespace}",
        pods.len()
    );
    for pod in &pods {
        let (init, containers) = container_names(pod);
        let inits = init.iter().filter(|c| *c == "weft-init").count();
        let proxies = init
            .iter()
            .chain(&containers)
            .filter(|c| *c == "weft-proxy")
            .count();
        ensure!(
            inits == 1 && proxies == 1,
            "pod {namespace}/{} is not injected exactly once: init {init:?}, containers {containers:?}",
            pod.metadata.name.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

async fn controller_pods(client: &kube::Client) -> Result<Vec<Pod>> {
    Ok(Api::<Pod>::namespaced(client.clone(), RELEASE_NAMESPACE)
        .list(&ListParams::default().labels(CONTROLLER_SELECTOR))
        .await?
        .items)
}

/// Three controller pods, all ready, none terminating.
async fn wait_three_ready_replicas(client: &kube::Client, timeout: Duration) -> Result<Vec<Pod>> {
    node::wait_for(
        "three ready controller pods and none terminating",
        timeout,
        || async {
            let pods = controller_pods(client).await?;
            let settled = pods.len() == 3
                && pods
                    .iter()
                    .all(|p| p.metadata.deletion_timestamp.is_none() && node::pod_ready(p));
            Ok(settled.then_some(pods))
        },
    )
    .await
}

fn report(what: &str, creations: &Creations, disruption: Duration) {
    eprintln!(
        "restart: {what}: {} pods created, {} creations failed; the disruption lasted {:.1} s",
        creations.created,
        creations.failed.len(),
        disruption.as_secs_f64()
    );
    for (index, at, error) in creations.failed.iter().take(10) {
        eprintln!("restart:   load-{index} at {at:.2} s: {error}");
    }
}

fn pods_created_through_a_rolling_restart_and_a_sigkill_are_injected_once(
    h: &Harness,
) -> Result<()> {
    let values = weft_e2e::repo_root().join("charts/weft/values-ha.yaml");
    let values = values.display().to_string();
    // One node: the HA values' required anti-affinity becomes preferred.
    let result = node::install_chart(
        &h.cluster,
        &h.images,
        &["-f", &values, "--set", "podAntiAffinity=preferred"],
    )
    .and_then(|()| block_on(restart_runs(h)));
    // Back to the default values for the tests after this one, whatever happened.
    let restored = node::install_chart(&h.cluster, &h.images, &[]);
    result.and(restored)
}

/// Pods being created in a namespace of their own (injection enabled) since `started`.
struct PodLoad {
    namespace: String,
    stop: Arc<AtomicBool>,
    started: Instant,
    task: tokio::task::JoinHandle<Creations>,
}

impl PodLoad {
    /// Starts creating pods in a new namespace `{prefix}-…`, then waits 3 s so that the
    /// disruption comes while creations are under way.
    async fn start(client: &kube::Client, prefix: &str) -> Result<Self> {
        let namespace =
            resources::namespace(client, prefix, &[("weft.dev/inject", "enabled")], &[]).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let task = tokio::spawn(create_pods(
            client.clone(),
            namespace.clone(),
            stop.clone(),
            started,
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(Self {
            namespace,
            stop,
            started,
            task,
        })
    }

    /// Stops creating (once at least [`PODS`] were sent) and returns what was answered.
    async fn finish(self) -> Result<(String, Instant, Creations)> {
        self.stop.store(true, Ordering::Relaxed);
        Ok((self.namespace, self.started, self.task.await?))
    }
}

async fn restart_runs(h: &Harness) -> Result<()> {
    let client = h.cluster.client().await?;
    wait_three_ready_replicas(&client, Duration::from_secs(180)).await?;
    rolling_restart_fails_no_creation(h, &client).await?;
    sigkill_fails_only_webhook_calls_after_the_kill(h, &client).await
}

/// A rolling restart: no creation may fail.
async fn rolling_restart_fails_no_creation(h: &Harness, client: &kube::Client) -> Result<()> {
    let load = PodLoad::start(client, "restart").await?;
    let restart_began = Instant::now();
    // kubectl blocks this worker; the load runs on the runtime's other one.
    let kubectl = |args: &[&str]| tokio::task::block_in_place(|| node::kubectl(&h.cluster, args));
    let deployment = ["-n", RELEASE_NAMESPACE, "rollout"];
    kubectl(&[&deployment[..], &["restart", "deployment", RELEASE]].concat())?;
    kubectl(
        &[
            &deployment[..],
            &["status", "deployment", RELEASE, "--timeout=300s"],
        ]
        .concat(),
    )?;
    // The rollout is complete when the last old replica has finished draining, too.
    wait_three_ready_replicas(client, Duration::from_secs(120)).await?;
    let rollout = restart_began.elapsed();
    let (ns, _, rolled) = load.finish().await?;
    report("rolling restart", &rolled, rollout);
    ensure!(
        rolled.failed.is_empty(),
        "{} of {} pod creations failed during the rolling restart; first: {:?}",
        rolled.failed.len(),
        rolled.created + rolled.failed.len(),
        rolled.failed.first()
    );
    check_injected_once(client, &ns, rolled.created).await?;
    let _ = resources::delete_namespace(client, &ns).await;
    Ok(())
}

/// SIGKILL of one replica: the failures are counted and reported, never an uninjected pod.
async fn sigkill_fails_only_webhook_calls_after_the_kill(
    h: &Harness,
    client: &kube::Client,
) -> Result<()> {
    let timeout = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(&format!("{RELEASE}-proxy-injector"))
        .await?
        .webhooks
        .and_then(|w| w.first().and_then(|w| w.timeout_seconds))
        .context("the mutating webhook has no timeoutSeconds")?;
    let load = PodLoad::start(client, "sigkill").await?;
    let victim = controller_pods(client)
        .await?
        .into_iter()
        .next()
        .context("no controller pod to kill")?;
    let victim_name = victim.metadata.name.clone().unwrap_or_default();
    let container_id = victim
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .context("the controller pod has no container id")?;
    let pid = node::container_pid(&h.cluster, &container_id)?;
    let killed_at = Instant::now();
    node::run(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]))?;
    eprintln!(
        "restart: killed {victim_name} (pid {pid}) {:.1} s into the load",
        killed_at.duration_since(load.started).as_secs_f64()
    );
    // The kubelet restarts the container; the replica is back once it is ready again.
    node::wait_for(
        "the killed replica restarted and ready",
        Duration::from_secs(120),
        || async {
            let pod = Api::<Pod>::namespaced(client.clone(), RELEASE_NAMESPACE)
                .get(&victim_name)
                .await?;
            let restarted = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .is_some_and(|c| c.restart_count >= 1);
            Ok((restarted && node::pod_ready(&pod)).then_some(()))
        },
    )
    .await?;
    let recovery = killed_at.elapsed();
    let (ns, started, killed) = load.finish().await?;
    report("SIGKILL of one replica", &killed, recovery);
    let killed_offset = killed_at.duration_since(started).as_secs_f64();
    for (index, at, error) in &killed.failed {
        // Only the webhook may refuse, and only after the kill.
        if !error.contains("weft") || *at < killed_offset {
            bail!("load-{index} failed at {at:.2} s (the kill was at {killed_offset:.2} s) for another reason: {error}");
        }
    }
    match killed.failed.last() {
        Some(last) => eprintln!(
            "restart: the webhook's timeoutSeconds is {timeout}; failures came from {:.2} s to {:.2} s after the kill",
            killed.failed[0].1 - killed_offset,
            last.1 - killed_offset
        ),
        None => eprintln!("restart: the webhook's timeoutSeconds is {timeout}; no creation failed after the SIGKILL"),
    }
    check_injected_once(client, &ns, killed.created).await?;
    let _ = resources::delete_namespace(client, &ns).await;
    Ok(())
}
