//! Index tests: resources are applied directly (or through kubert's event loop) and the
//! assertions are on the port watches. No cluster.
#![allow(clippy::unwrap_used)]

mod authorizations;
mod defaults;
mod probes;
mod reset;
mod routes;
mod servers;

use crate::*;
use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, Namespace, Pod, PodSpec},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    chrono::{TimeZone, Utc},
};
use kubert::index::{IndexClusterResource, IndexNamespacedResource};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::sync::watch;
use weft_policy_k8s_api::{ProxyProtocol, Server, ServerAuthorization};

fn cluster(default_policy: DefaultPolicy) -> ClusterSettings {
    ClusterSettings {
        mesh: weft_core::Mesh::new("weft", "cluster.local"),
        cluster_domain: "cluster.local".to_string(),
        default_opaque_ports: weft_core::PortList::default(),
        default_policy,
        cluster_networks: vec!["10.0.0.0/8".parse().unwrap()],
    }
}

fn mk_index(default_policy: DefaultPolicy) -> Index {
    Index::new(
        cluster(default_policy),
        IndexMetrics::register(&mut Registry::default()),
    )
}

fn meta(ns: &str, name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.to_string()),
        name: Some(name.to_string()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn container(name: &str, ports: &[(Option<&str>, i32)]) -> Container {
    Container {
        name: name.to_string(),
        ports: Some(
            ports
                .iter()
                .map(|(port_name, number)| ContainerPort {
                    name: port_name.map(str::to_string),
                    container_port: *number,
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// A pod with one container declaring `ports` as `(name, number)`.
fn mk_pod(ns: &str, name: &str, labels: &[(&str, &str)], ports: &[(Option<&str>, i32)]) -> Pod {
    Pod {
        metadata: meta(ns, name, labels),
        spec: Some(PodSpec {
            containers: vec![container("app", ports)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Server selecting pods by `labels`, on `port` (a number or a name), created `created`
/// seconds after the epoch.
fn mk_server(
    ns: &str,
    name: &str,
    labels: &[(&str, &str)],
    port: serde_json::Value,
    protocol: &str,
    created: i64,
) -> Server {
    let mut server: Server = serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"namespace": ns, "name": name},
        "spec": {
            "podSelector": {"matchLabels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
            "port": port,
            "proxyProtocol": protocol,
        }
    }))
    .unwrap();
    server.metadata.creation_timestamp = Some(Time(Utc.timestamp_opt(created, 0).unwrap()));
    server
}

fn mk_authz(ns: &str, name: &str, spec: serde_json::Value) -> ServerAuthorization {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "ServerAuthorization",
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn mk_namespace(name: &str, default_policy: Option<&str>) -> Namespace {
    let mut meta = meta("", name, &[]);
    meta.namespace = None;
    meta.annotations = default_policy.map(|p| {
        [(DEFAULT_POLICY_ANNOTATION.to_string(), p.to_string())]
            .into_iter()
            .collect()
    });
    Namespace {
        metadata: meta,
        ..Default::default()
    }
}

fn watch(index: &Index, ns: &str, pod: &str, port: u16) -> watch::Receiver<InboundPolicy> {
    index.pod_port_policy(ns, pod, port).unwrap()
}

fn server_of(rx: &watch::Receiver<InboundPolicy>) -> ServerRef {
    rx.borrow().server.clone()
}

fn named(name: &str) -> ServerRef {
    ServerRef::Server {
        name: name.to_string(),
    }
}

fn default_ref(policy: DefaultPolicy) -> ServerRef {
    ServerRef::Default { policy }
}

fn protocol(rx: &watch::Receiver<InboundPolicy>) -> ProxyProtocol {
    rx.borrow().protocol
}

fn apply_pod(index: &mut Index, pod: Pod) {
    IndexNamespacedResource::<Pod>::apply(index, pod);
}

fn apply_server(index: &mut Index, server: Server) {
    IndexNamespacedResource::<Server>::apply(index, server);
}

fn apply_authz(index: &mut Index, authz: ServerAuthorization) {
    IndexNamespacedResource::<ServerAuthorization>::apply(index, authz);
}

fn apply_namespace(index: &mut Index, ns: Namespace) {
    IndexClusterResource::<Namespace>::apply(index, ns);
}
