//! Index tests: k8s-openapi objects are applied directly (or through kubert's event loop) and
//! the assertions are on the watch receivers. No cluster.
#![allow(clippy::unwrap_used)]

mod authority;
mod endpoints;
mod opaque;
mod outbound;
mod pods;
mod reset;
mod servers;
mod watches;

use crate::*;
use k8s_openapi::{
    api::{
        core::v1::{
            Container, ObjectReference, Pod, PodIP, PodSpec, PodStatus, Service,
            ServicePort as K8sServicePort, ServiceSpec,
        },
        discovery::v1::{Endpoint as K8sEndpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use kubert::index::IndexNamespacedResource;
use prometheus_client::registry::Registry;
use std::{net::SocketAddr, sync::Arc};
use tokio::sync::watch;

fn cluster() -> weft_core::ClusterSettings {
    weft_core::ClusterSettings {
        mesh: weft_core::Mesh::new("weft", "cluster.local"),
        cluster_domain: "cluster.local".to_string(),
        cluster_networks: vec!["10.0.0.0/8".parse().expect("the test network parses")],
        default_policy: weft_core::DefaultPolicy::AllUnauthenticated,
        default_opaque_ports: weft_core::PortList::parse("25,3306")
            .expect("the test default parses"),
    }
}

fn mk_index() -> EndpointsIndex {
    EndpointsIndex::new(
        cluster(),
        EndpointsIndexMetrics::register(&mut Registry::default()),
    )
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.to_string()),
        name: Some(name.to_string()),
        ..Default::default()
    }
}

fn annotate(meta: &mut ObjectMeta, key: &str, value: &str) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(key.to_string(), value.to_string());
}

/// A ClusterIP Service with `ports` as `(name, port, target port)`; `""` is unnamed.
fn mk_svc(ns: &str, name: &str, cluster_ip: &str, ports: &[(&str, i32, i32)]) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            cluster_ips: Some(vec![cluster_ip.to_string()]),
            ports: Some(
                ports
                    .iter()
                    .map(|(port_name, port, target)| K8sServicePort {
                        name: Some(port_name.to_string()).filter(|n| !n.is_empty()),
                        port: *port,
                        target_port: Some(IntOrString::Int(*target)),
                        protocol: Some("TCP".to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An endpoint of a slice: its address, its `ready` condition, and the pod it names.
fn ep(ip: &str, ready: Option<bool>, pod: Option<&str>) -> K8sEndpoint {
    K8sEndpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready,
            ..Default::default()
        }),
        target_ref: pod.map(|name| ObjectReference {
            kind: Some("Pod".to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        }),
        zone: Some("zone-a".to_string()),
        ..Default::default()
    }
}

/// An IPv4 EndpointSlice of Service `svc` with `ports` as `(name, port)` (`""` is unnamed).
fn mk_slice(
    ns: &str,
    name: &str,
    svc: &str,
    ports: &[(&str, i32)],
    endpoints: Vec<K8sEndpoint>,
) -> EndpointSlice {
    let mut metadata = meta(ns, name);
    metadata.labels = Some(
        [(SERVICE_NAME_LABEL.to_string(), svc.to_string())]
            .into_iter()
            .collect(),
    );
    EndpointSlice {
        metadata,
        address_type: "IPv4".to_string(),
        endpoints,
        ports: Some(
            ports
                .iter()
                .map(|(port_name, port)| EndpointPort {
                    name: Some(port_name.to_string()),
                    port: Some(*port),
                    protocol: Some("TCP".to_string()),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// A running pod at `ip`, running as `sa`, with Weft's proxy when `meshed`.
fn mk_pod(ns: &str, name: &str, ip: &str, sa: &str, meshed: bool) -> Pod {
    let mut containers = vec![Container {
        name: "app".to_string(),
        ..Default::default()
    }];
    if meshed {
        containers.push(Container {
            name: PROXY_CONTAINER_NAME.to_string(),
            ..Default::default()
        });
    }
    Pod {
        metadata: meta(ns, name),
        spec: Some(PodSpec {
            containers,
            service_account_name: Some(sa.to_string()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_string()),
            pod_ip: Some(ip.to_string()),
            pod_ips: Some(vec![PodIP { ip: ip.to_string() }]),
            ..Default::default()
        }),
    }
}

fn sp(ns: &str, name: &str, port: u16) -> ServicePort {
    ServicePort {
        namespace: ns.to_string(),
        name: name.to_string(),
        port,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn target(index: &EndpointsIndex, at: &str) -> OutboundTarget {
    index.outbound_target(addr(at)).borrow().clone()
}

fn apply_svc(index: &mut EndpointsIndex, svc: Service) {
    IndexNamespacedResource::<Service>::apply(index, svc);
}

fn apply_slice(index: &mut EndpointsIndex, slice: EndpointSlice) {
    IndexNamespacedResource::<EndpointSlice>::apply(index, slice);
}

fn apply_pod(index: &mut EndpointsIndex, pod: Pod) {
    IndexNamespacedResource::<Pod>::apply(index, pod);
}

/// The endpoint addresses of a set, sorted.
fn addrs(rx: &watch::Receiver<Arc<EndpointSet>>) -> Vec<String> {
    rx.borrow()
        .endpoints
        .keys()
        .map(ToString::to_string)
        .collect()
}

fn endpoint(rx: &watch::Receiver<Arc<EndpointSet>>, at: &str) -> Endpoint {
    rx.borrow().endpoints.get(&addr(at)).cloned().unwrap()
}
