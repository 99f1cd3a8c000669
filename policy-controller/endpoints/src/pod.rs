//! Pods in the index: their IPs, service account, whether they are meshed, opaque ports.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::{collections::BTreeMap, net::IpAddr};

use crate::{key::ObjKey, opaque::OpaquePorts, OPAQUE_PORTS_ANNOTATION};

/// The name of the proxy container Weft's injector adds to meshed pods. Kept here rather than
/// imported from the injector so this crate stays free of it; the two must agree.
pub use weft_core::names::PROXY_CONTAINER as PROXY_CONTAINER_NAME;

/// The injected proxy's list of opaque inbound ports (set by Weft's injector).
use weft_core::names::PROXY_OPAQUE_PORTS_ENV;

/// What the index keeps of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodInfo {
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) host_network: bool,
    /// `Succeeded` or `Failed`: the pod's IP may already belong to another pod.
    pub(crate) terminated: bool,
    pub(crate) service_account: String,
    /// Runs Weft's proxy (a container or init container named [`PROXY_CONTAINER_NAME`]).
    pub(crate) meshed: bool,
    /// For a meshed pod, the opaque ports its proxy was injected with; otherwise the pod's
    /// annotation; `None` when neither says (the default opaque ports apply).
    pub(crate) opaque: Option<OpaquePorts>,
    pub(crate) opaque_annotation: Option<String>,
    /// For a meshed pod, its labels and named TCP container ports (containers and init
    /// containers): what decides which opaque Servers select which of its ports. Empty for an
    /// unmeshed pod, which no Server affects.
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) named_ports: Vec<(String, u16)>,
    /// For a meshed pod, the ports that Servers with `proxyProtocol: opaque` select, sorted and
    /// without repeats. Set by the index, which knows the Servers.
    pub(crate) server_opaque: Vec<u16>,
}

impl PodInfo {
    /// Extracts what matters of `pod`. `previous` avoids re-parsing (and re-logging and
    /// re-counting) an unchanged malformed annotation; the flag tells whether the annotation was
    /// newly found malformed.
    pub(crate) fn from_pod(key: &ObjKey, pod: &Pod, previous: Option<&PodInfo>) -> (Self, bool) {
        let opaque_annotation =
            weft_core::linkerd::value(pod.annotations(), OPAQUE_PORTS_ANNOTATION)
                .map(str::to_string);
        let (opaque, invalid) = match previous {
            Some(prev) if prev.opaque_annotation == opaque_annotation => {
                (prev.opaque.clone(), false)
            }
            _ => OpaquePorts::from_optional_annotation(
                opaque_annotation.as_deref(),
                &format_args!("pod {key}"),
            ),
        };
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let mut ips: Vec<IpAddr> = Vec::new();
        let listed = status
            .and_then(|s| s.pod_ips.as_ref())
            .filter(|ips| !ips.is_empty());
        let strings: Vec<&str> = match listed {
            Some(list) => list.iter().map(|ip| ip.ip.as_str()).collect(),
            None => status
                .and_then(|s| s.pod_ip.as_deref())
                .into_iter()
                .collect(),
        };
        for ip in strings.into_iter().filter_map(|s| s.parse::<IpAddr>().ok()) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let proxy = spec.and_then(|spec| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == PROXY_CONTAINER_NAME)
        });
        let meshed = proxy.is_some();
        // What the injected proxy treats as opaque is the truth for a meshed pod: the injector
        // resolved the pod's and namespace's annotations and the controller's default into it.
        let injected_opaque = proxy
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find(|e| e.name == PROXY_OPAQUE_PORTS_ENV))
            .and_then(|e| OpaquePorts::parse(e.value.as_deref().unwrap_or_default()).ok());
        let opaque = injected_opaque.or(opaque);
        let (labels, named_ports) = match spec.filter(|_| meshed) {
            Some(spec) => (pod.labels().clone(), named_tcp_ports(spec)),
            None => (BTreeMap::new(), Vec::new()),
        };
        let info = PodInfo {
            ips,
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            terminated: matches!(
                status.and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            ),
            service_account: spec
                .and_then(|s| s.service_account_name.clone())
                .filter(|sa| !sa.is_empty())
                .unwrap_or_else(|| "default".to_string()),
            meshed,
            opaque,
            opaque_annotation,
            labels,
            named_ports,
            server_opaque: Vec::new(),
        };
        (info, invalid)
    }

    /// Whether `port` is opaque on this pod: a Server with `proxyProtocol: opaque` selects it
    /// (meshed pods only), or the pod's own opaque ports list it, or, when the pod has none, the
    /// cluster's default opaque ports do.
    pub(crate) fn is_opaque(&self, cluster: &weft_core::ClusterSettings, port: u16) -> bool {
        if self.server_opaque.binary_search(&port).is_ok() {
            return true;
        }
        match &self.opaque {
            Some(ports) => ports.contains(port),
            None => cluster.default_opaque_ports.contains(port),
        }
    }

    /// The identity clients must require of this pod: only when it is meshed.
    pub(crate) fn identity(
        &self,
        cluster: &weft_core::ClusterSettings,
        namespace: &str,
    ) -> Option<String> {
        self.meshed.then(|| {
            cluster.mesh.identity(weft_core::ServiceAccountRef {
                namespace,
                name: &self.service_account,
            })
        })
    }

    /// The IPs at which the pod is an outbound target: none for hostNetwork pods (their IP is
    /// the node's) and terminated pods (their IP may be reused).
    pub(crate) fn target_ips(&self) -> &[IpAddr] {
        if self.host_network || self.terminated {
            &[]
        } else {
            &self.ips
        }
    }
}

/// The named TCP ports of the pod's containers and init containers, as a Server's `port` by name
/// refers to them.
fn named_tcp_ports(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<(String, u16)> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        .filter_map(|p| {
            let number = u16::try_from(p.container_port).ok().filter(|n| *n != 0)?;
            Some((p.name.clone()?, number))
        })
        .collect()
}
