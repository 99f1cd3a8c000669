//! Servers in the index.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{core::DeserializeGuard, ResourceExt};
use kubert::index::IndexNamespacedResource;
use std::collections::{BTreeMap, BTreeSet, HashSet};
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
        let name = server.name.clone();
        let selector_unchanged = ns
            .servers
            .get(&name)
            .is_some_and(|old| old.pod_selector == server.pod_selector);
        let affected: Vec<String> = if selector_unchanged {
            // Only the port or protocol changed: the same pods, no scan.
            ns.selected
                .get(&name)
                .into_iter()
                .flatten()
                .cloned()
                .collect()
        } else {
            let now: HashSet<String> = ns
                .pods
                .iter()
                .filter(|(_, pod)| server.selects(&pod.meta))
                .map(|(pod_name, _)| pod_name.clone())
                .collect();
            let before = ns.selected.insert(name.clone(), now.clone());
            now.into_iter()
                .chain(before.into_iter().flatten())
                .collect()
        };
        if ns.servers.insert(name, server).is_none() {
            self.metrics.servers.inc();
        }
        self.update_pods(namespace, &affected);
    }

    fn remove_server(&mut self, namespace: &str, name: &str) {
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return;
        };
        if ns.servers.remove(name).is_none() {
            return;
        }
        let affected = ns.selected.remove(name).unwrap_or_default();
        self.metrics.servers.dec();
        self.update_pods(namespace, &affected);
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
