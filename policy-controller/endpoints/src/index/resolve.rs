//! The answers, computed from the index's state: endpoint sets and outbound targets.

use std::net::SocketAddr;
use weft_core::ClusterSettings;

use super::State;
use crate::{
    key::ObjKey, pod::PodInfo, Endpoint, EndpointSet, OpaquePorts, OutboundTarget, ServicePort,
};

impl State {
    /// The ready endpoints of port `port` of the Service `key`.
    ///
    /// The Service port numbered `port` names the EndpointSlice ports to use (an unnamed port
    /// matches unnamed slice ports); each ready endpoint address of each slice of the Service
    /// with such a port is an endpoint at that slice port (the target port).
    pub(crate) fn endpoint_set(
        &self,
        cluster: &ClusterSettings,
        key: &ObjKey,
        port: u16,
    ) -> EndpointSet {
        let Some(service) = self.services.get(key) else {
            return EndpointSet::default();
        };
        let Some(port_name) = service.ports.get(&port) else {
            return EndpointSet::default();
        };
        let mut set = EndpointSet {
            service_exists: true,
            endpoints: Default::default(),
        };
        let slices = self
            .service_slices
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|name| self.slices.get(&ObjKey::new(&key.namespace, name.as_str())));
        for slice in slices {
            let target_ports = slice
                .ports
                .iter()
                .filter(|p| p.name == *port_name)
                .map(|p| p.port);
            for target_port in target_ports {
                for ep in &slice.endpoints {
                    let known = ep
                        .pod
                        .as_ref()
                        .and_then(|k| self.pods.get(k).map(|pod| (k, pod)));
                    let namespace = ep.pod.as_ref().unwrap_or(key).namespace.as_str();
                    for ip in &ep.addresses {
                        let addr = SocketAddr::new(*ip, target_port);
                        let endpoint = match known {
                            Some((pod_key, pod)) => pod_endpoint(cluster, pod_key, pod, addr),
                            None => Endpoint {
                                addr,
                                namespace: namespace.to_string(),
                                pod: ep.pod.as_ref().map(|k| k.name.clone()),
                                service_account: None,
                                identity: None,
                                opaque: is_opaque(None, cluster, target_port),
                                zone: None,
                            },
                        };
                        let endpoint = Endpoint {
                            zone: ep.zone.clone(),
                            ..endpoint
                        };
                        set.endpoints.insert(addr, endpoint);
                    }
                }
            }
        }
        set
    }

    /// What `addr` is: a TCP port of a Service's cluster IP, else a port of a pod that can be a
    /// target (not hostNetwork, not terminated), else unknown.
    pub(crate) fn outbound_target(
        &self,
        cluster: &ClusterSettings,
        addr: SocketAddr,
    ) -> OutboundTarget {
        let ip = addr.ip();
        let port = addr.port();
        if let Some(key) = self.cluster_ips.owner(&ip) {
            if let Some(service) = self.services.get(key) {
                if service.ports.contains_key(&port) {
                    return OutboundTarget::Service {
                        service: ServicePort {
                            namespace: key.namespace.clone(),
                            name: key.name.clone(),
                            port,
                        },
                        opaque: is_opaque(service.opaque.as_ref(), cluster, port),
                    };
                }
            }
        }
        if let Some(key) = self.pod_ips.owner(&ip) {
            if let Some(pod) = self.pods.get(key) {
                return OutboundTarget::Pod(pod_endpoint(cluster, key, pod, addr));
            }
        }
        OutboundTarget::Unknown
    }
}

fn pod_endpoint(
    cluster: &ClusterSettings,
    key: &ObjKey,
    pod: &PodInfo,
    addr: SocketAddr,
) -> Endpoint {
    Endpoint {
        addr,
        namespace: key.namespace.clone(),
        pod: Some(key.name.clone()),
        service_account: Some(pod.service_account.clone()),
        identity: pod.identity(cluster, &key.namespace),
        opaque: pod.is_opaque(cluster, addr.port()),
        zone: None,
    }
}

/// Whether `port` is opaque: by the object's own opaque ports when it has them, else by the
/// cluster's default (`--opaque-ports`).
fn is_opaque(own: Option<&OpaquePorts>, cluster: &ClusterSettings, port: u16) -> bool {
    match own {
        Some(ports) => ports.contains(port),
        None => cluster.default_opaque_ports.contains(port),
    }
}
