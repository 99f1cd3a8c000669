//! How a Server change reaches the index: only Servers with `proxyProtocol: opaque` matter, and
//! only to the meshed pods of their namespace.

use kube::core::DeserializeGuard;
use kubert::index::IndexNamespacedResource;
use std::collections::BTreeSet;
use weft_policy_k8s_api::Server;

use super::State;
use crate::{
    key::ObjKey,
    pod::PodInfo,
    server::{server_name, OpaqueServer},
    EndpointsIndex,
};

impl State {
    /// The ports of the meshed pod `pod` (in `namespace`) that opaque Servers select, sorted.
    pub(crate) fn server_opaque_ports(&self, namespace: &str, pod: &PodInfo) -> Vec<u16> {
        if !pod.meshed {
            return Vec::new();
        }
        let Some(servers) = self.opaque_servers.get(namespace) else {
            return Vec::new();
        };
        let ports: BTreeSet<u16> = servers
            .values()
            .flat_map(|server| server.opaque_ports_on(&pod.labels, &pod.named_ports))
            .collect();
        ports.into_iter().collect()
    }
}

impl EndpointsIndex {
    /// Records that the Server `namespace/name` is now `server` (`None`: absent, invalid or not
    /// opaque) and updates the pods whose opaque ports change.
    fn set_server(&mut self, namespace: &str, name: &str, server: Option<OpaqueServer>) {
        let servers = &mut self.state.opaque_servers;
        let unchanged = servers.get(namespace).and_then(|s| s.get(name)) == server.as_ref();
        if unchanged {
            return; // e.g. a Server that is not opaque and never was
        }
        match server {
            Some(server) => {
                servers
                    .entry(namespace.to_string())
                    .or_default()
                    .insert(name.to_string(), server);
            }
            None => {
                if let Some(in_namespace) = servers.get_mut(namespace) {
                    in_namespace.remove(name);
                    if in_namespace.is_empty() {
                        servers.remove(namespace);
                    }
                }
            }
        }
        let changed: Vec<(ObjKey, Vec<u16>)> = self
            .state
            .pods
            .iter()
            .filter(|(key, pod)| key.namespace == namespace && pod.meshed)
            .filter_map(|(key, pod)| {
                let ports = self.state.server_opaque_ports(namespace, pod);
                (ports != pod.server_opaque).then(|| (key.clone(), ports))
            })
            .collect();
        for (key, ports) in changed {
            let pod = self
                .state
                .pods
                .get_mut(&key)
                .expect("the pod was found in the index just above");
            let old = pod.clone();
            pod.server_opaque = ports;
            self.pod_changed(&key, Some(old));
        }
    }
}

impl IndexNamespacedResource<DeserializeGuard<Server>> for EndpointsIndex {
    fn apply(&mut self, guard: DeserializeGuard<Server>) {
        let (namespace, name) = server_name(&guard);
        self.set_server(&namespace, &name, OpaqueServer::from_guard(guard));
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_server(&namespace, &name, None);
    }
}

impl IndexNamespacedResource<Server> for EndpointsIndex {
    fn apply(&mut self, server: Server) {
        IndexNamespacedResource::apply(self, DeserializeGuard(Ok(server)));
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_server(&namespace, &name, None);
    }
}
