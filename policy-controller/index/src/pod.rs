//! Pods in the index: what of a pod matters for policy, and the watches of its ports.

use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, Pod},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::ResourceExt;
use kubert::index::IndexNamespacedResource;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::sync::watch;

use crate::{defaults::PolicyOverride, InboundPolicy, Index, DEFAULT_POLICY_ANNOTATION};
use weft_core::{
    linkerd,
    names::{
        OPAQUE_PORTS_ANNOTATION, PROXY_CONTAINER, PROXY_OPAQUE_PORTS_ENV,
        REQUIRE_IDENTITY_PORTS_ANNOTATION,
    },
    ClusterSettings, PortList,
};

/// A pod's policy-relevant facts and its port watches.
#[derive(Debug)]
pub(crate) struct PodIndex {
    pub(crate) meta: PodMeta,
    /// Behind a mutex only so that lookups through `&Index` can add a watch for a new port;
    /// updates hold `&mut Index` and use `get_mut` without locking.
    pub(crate) ports: Mutex<HashMap<u16, PortWatch>>,
}

/// The parts of a pod that decide its ports' policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodMeta {
    pub(crate) labels: BTreeMap<String, String>,
    /// Port names of containers and init containers; one name may stand for several ports.
    pub(crate) named_ports: HashMap<String, BTreeSet<u16>>,
    /// TCP ports declared by containers and init containers.
    pub(crate) declared_ports: BTreeSet<u16>,
    /// The paths of the HTTP probes (liveness, readiness, startup) of containers and init
    /// containers, by port: what the kubelet requests, so default policies can let it through.
    pub(crate) probe_paths: HashMap<u16, BTreeSet<String>>,
    pub(crate) override_annotation: Option<String>,
    pub(crate) default_override: PolicyOverride,
    /// The ports without protocol detection when no Server describes them: for a meshed pod,
    /// those its proxy was injected with; else the pod's opaque-ports annotation; `None` when
    /// neither says (the cluster's default applies).
    pub(crate) opaque_ports: Option<PortList>,
    /// Ports whose default policy admits only meshed clients
    /// ([`REQUIRE_IDENTITY_PORTS_ANNOTATION`], either spelling; malformed: none, with a warning).
    pub(crate) require_identity_ports: PortList,
}

/// The published policy of one pod port, and which Servers lost a conflict over it.
#[derive(Debug)]
pub(crate) struct PortWatch {
    pub(crate) tx: watch::Sender<InboundPolicy>,
    pub(crate) losers: Vec<String>,
}

impl PortWatch {
    pub(crate) fn subscribe(&self) -> watch::Receiver<InboundPolicy> {
        self.tx.subscribe()
    }
}

impl PodMeta {
    /// Extracts the policy facts of `pod`. `previous` avoids re-parsing (and re-logging) an
    /// unchanged override annotation.
    pub(crate) fn from_pod(pod: &Pod, previous: Option<&PodMeta>) -> Self {
        let mut named_ports: HashMap<String, BTreeSet<u16>> = HashMap::new();
        let mut declared_ports = BTreeSet::new();
        let mut probe_paths: HashMap<u16, BTreeSet<String>> = HashMap::new();
        if let Some(spec) = &pod.spec {
            let containers = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten());
            for (port, path) in containers.flat_map(http_probes) {
                probe_paths.entry(port).or_default().insert(path);
            }
            let containers = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten());
            for port in containers.flat_map(|c| c.ports.iter().flatten()) {
                let Some(number) = tcp_port(port) else {
                    continue;
                };
                declared_ports.insert(number);
                if let Some(name) = &port.name {
                    named_ports.entry(name.clone()).or_default().insert(number);
                }
            }
        }
        let override_annotation =
            weft_core::linkerd::value(pod.annotations(), DEFAULT_POLICY_ANNOTATION)
                .map(str::to_string);
        let default_override = match previous {
            Some(prev) if prev.override_annotation == override_annotation => {
                prev.default_override.clone()
            }
            _ => PolicyOverride::parse(
                override_annotation.as_deref(),
                &format_args!(
                    "pod {}/{}",
                    pod.namespace().unwrap_or_default(),
                    pod.name_any()
                ),
            ),
        };
        let describe = || {
            format!(
                "pod {}/{}",
                pod.namespace().unwrap_or_default(),
                pod.name_any()
            )
        };
        let require_identity_ports =
            ports_annotation(pod, REQUIRE_IDENTITY_PORTS_ANNOTATION, &describe);
        let opaque_ports = injected_opaque_ports(pod).or_else(|| {
            linkerd::value(pod.annotations(), OPAQUE_PORTS_ANNOTATION)
                .map(|_| ports_annotation(pod, OPAQUE_PORTS_ANNOTATION, &describe))
        });
        PodMeta {
            labels: pod.labels().clone(),
            named_ports,
            declared_ports,
            probe_paths,
            override_annotation,
            default_override,
            opaque_ports,
            require_identity_ports,
        }
    }

    /// Whether `port` is opaque when no Server describes it.
    pub(crate) fn default_opaque(&self, port: u16, cluster: &ClusterSettings) -> bool {
        self.opaque_ports
            .as_ref()
            .unwrap_or(&cluster.default_opaque_ports)
            .contains(port)
    }
}

/// The opaque ports the pod's Weft proxy was injected with, if it runs one.
fn injected_opaque_ports(pod: &Pod) -> Option<PortList> {
    let spec = pod.spec.as_ref()?;
    let proxy = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == PROXY_CONTAINER)?;
    let value = proxy
        .env
        .iter()
        .flatten()
        .find(|e| e.name == PROXY_OPAQUE_PORTS_ENV)?
        .value
        .as_deref()
        .unwrap_or_default();
    PortList::parse(value).ok()
}

/// The port list of the annotation `key` (either spelling) of `pod`; none when absent, and none
/// with a warning when malformed.
fn ports_annotation(pod: &Pod, key: &str, describe: &dyn Fn() -> String) -> PortList {
    let Some(found) = linkerd::lookup(pod.annotations(), key) else {
        return PortList::default();
    };
    PortList::parse(found.value).unwrap_or_else(|error| {
        tracing::warn!(pod = %describe(), annotation = found.key, value = found.value, %error, "Ignoring a malformed port list");
        PortList::default()
    })
}

/// The `(port, path)` of each HTTP probe of a container. A named port is looked up among the
/// container's own ports, as the kubelet does; a probe whose port cannot be resolved is skipped
/// (the kubelet cannot run it either).
fn http_probes(container: &Container) -> impl Iterator<Item = (u16, String)> + '_ {
    let probes = [
        &container.liveness_probe,
        &container.readiness_probe,
        &container.startup_probe,
    ];
    probes.into_iter().flatten().filter_map(move |probe| {
        let http = probe.http_get.as_ref()?;
        let port = match &http.port {
            IntOrString::Int(n) => u16::try_from(*n).ok().filter(|n| *n != 0)?,
            IntOrString::String(name) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(tcp_port)?,
        };
        Some((port, request_path(http.path.as_deref())))
    })
}

/// The path the kubelet requests for a probe's `path`: without query or fragment, `/` when
/// empty, with a leading `/` added when missing (the kubelet joins it to `http://host:port`).
fn request_path(path: Option<&str>) -> String {
    let path = path.unwrap_or_default();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn tcp_port(port: &ContainerPort) -> Option<u16> {
    let tcp = port.protocol.as_deref().is_none_or(|p| p == "TCP");
    let number = u16::try_from(port.container_port).ok().filter(|n| *n != 0);
    number.filter(|_| tcp)
}

impl IndexNamespacedResource<Pod> for Index {
    fn apply(&mut self, pod: Pod) {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let ns = self.namespace_mut(&namespace);
        match ns.pods.get_mut(&name) {
            Some(existing) => {
                let meta = PodMeta::from_pod(&pod, Some(&existing.meta));
                if meta == existing.meta {
                    return; // e.g. a status update: nothing policy-relevant changed
                }
                existing.meta = meta;
            }
            None => {
                let meta = PodMeta::from_pod(&pod, None);
                ns.pods.insert(
                    name.clone(),
                    PodIndex {
                        meta,
                        ports: Mutex::new(HashMap::new()),
                    },
                );
                self.metrics.pods.inc();
            }
        }
        let ns = self.namespace_mut(&namespace);
        if let Some(pod) = ns.pods.get(&name) {
            for (server_name, server) in &ns.servers {
                if server.selects(&pod.meta) {
                    ns.selected
                        .entry(server_name.clone())
                        .or_default()
                        .insert(name.clone());
                } else if let Some(pods) = ns.selected.get_mut(server_name) {
                    pods.remove(&name);
                }
            }
        }
        self.update_pods(&namespace, [&name]);
    }

    fn delete(&mut self, namespace: String, name: String) {
        let Some(ns) = self.namespaces.get_mut(&namespace) else {
            return;
        };
        let Some(mut pod) = ns.pods.remove(&name) else {
            return;
        };
        for pods in ns.selected.values_mut() {
            pods.remove(&name);
        }
        self.metrics.pods.dec();
        let conflicted = pod
            .ports
            .get_mut()
            .values()
            .filter(|w| !w.losers.is_empty())
            .count();
        self.metrics
            .conflicted_ports
            .dec_by(i64::try_from(conflicted).unwrap_or(i64::MAX));
        // Dropping the pod drops its senders: every watcher sees its channel close.
        drop(pod);
    }
}
