//! Servers in the index.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{core::DeserializeGuard, ResourceExt};
use kubert::index::IndexNamespacedResource;
use std::collections::{BTreeMap, BTreeSet};
use weft_policy_k8s_api::{LabelSelector, Port, ProxyProtocol, Server};

use crate::{pod::PodMeta, Index};

/// What the index keeps of a valid Server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) pod_selector: LabelSelector,
    pub(crate) port: Port,
    pub(crate) protocol: ProxyProtocol,
    pub(crate) created: Option<Time>,
}

impl ServerInfo {
    fn from_resource(server: Server) -> Result<Self, String> {
        server.spec.validate().map_err(|e| e.to_string())?;
        Ok(Self {
            name: server.name_any(),
            labels: server.labels().clone(),
            created: server.metadata.creation_timestamp,
            pod_selector: server.spec.pod_selector,
            port: server.spec.port,
            protocol: server.spec.proxy_protocol,
        })
    }

    pub(crate) fn selects(&self, pod: &PodMeta) -> bool {
        self.pod_selector.matches(&pod.labels)
    }

    /// The pod ports this Server describes (assuming it selects the pod): its number, or every
    /// port its name stands for in the pod.
    pub(crate) fn ports_on<'p>(&self, pod: &'p PodMeta) -> PortsOn<'p> {
        match &self.port {
            Port::Number(n) => PortsOn::One(Some(n.get())),
            Port::Name(name) => PortsOn::Named(pod.named_ports.get(name).map(BTreeSet::iter)),
        }
    }

    /// Conflict order: the older Server wins (Servers without a timestamp count as newest), then
    /// the smaller name.
    pub(crate) fn precedence_key(&self) -> (bool, Option<&Time>, &str) {
        (self.created.is_none(), self.created.as_ref(), &self.name)
    }
}

/// Iterator over the ports a Server describes on a pod.
pub(crate) enum PortsOn<'p> {
    One(Option<u16>),
    Named(Option<std::collections::btree_set::Iter<'p, u16>>),
}

impl Iterator for PortsOn<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        match self {
            PortsOn::One(port) => port.take(),
            PortsOn::Named(iter) => iter.as_mut().and_then(|i| i.next().copied()),
        }
    }
}

impl Index {
    fn upsert_server(&mut self, namespace: &str, server: ServerInfo) {
        let ns = self.namespace_mut(namespace);
        if ns.servers.get(&server.name) == Some(&server) {
            return;
        }
        let new_selector = server.pod_selector.clone();
        let old = ns.servers.insert(server.name.clone(), server);
        if old.is_none() {
            self.metrics.servers.inc();
        }
        // When only the port or protocol changed, the selected pods are the same: scan once.
        let old_selector = old
            .map(|s| s.pod_selector)
            .filter(|old| *old != new_selector);
        self.update_pods_where(namespace, |pod| {
            new_selector.matches(&pod.meta.labels)
                || old_selector
                    .as_ref()
                    .is_some_and(|s| s.matches(&pod.meta.labels))
        });
    }

    fn remove_server(&mut self, namespace: &str, name: &str) {
        let Some(old) = self
            .namespaces
            .get_mut(namespace)
            .and_then(|ns| ns.servers.remove(name))
        else {
            return;
        };
        self.metrics.servers.dec();
        self.update_pods_where(namespace, |pod| old.selects(&pod.meta));
    }
}

impl IndexNamespacedResource<DeserializeGuard<Server>> for Index {
    fn apply(&mut self, guard: DeserializeGuard<Server>) {
        let namespace = guard.namespace().unwrap_or_default();
        let name = guard.name_any();
        let result = guard
            .0
            .map_err(|invalid| invalid.error)
            .and_then(ServerInfo::from_resource);
        match result {
            Ok(server) => self.upsert_server(&namespace, server),
            Err(error) => {
                tracing::warn!(%namespace, %name, %error, "skipping invalid Server");
                self.metrics.invalid_objects.inc();
                // The object's current version is unusable: it no longer describes any port.
                self.remove_server(&namespace, &name);
            }
        }
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.remove_server(&namespace, &name);
    }
}

impl IndexNamespacedResource<Server> for Index {
    fn apply(&mut self, server: Server) {
        IndexNamespacedResource::apply(self, DeserializeGuard(Ok(server)));
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.remove_server(&namespace, &name);
    }
}
