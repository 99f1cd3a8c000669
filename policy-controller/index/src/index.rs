//! The index itself: per-namespace state and the lookup used by the inbound policy gRPC API.

use parking_lot::RwLock;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};
use tokio::sync::watch;

use crate::{
    authorization::AuthorizationInfo, authz_policy::AuthzPolicies, defaults::PolicyOverride,
    pod::PodIndex, resolve::Resolver, routes::RouteInfo, server::ServerInfo, ClusterSettings,
    InboundPolicy, IndexMetrics,
};

/// The index shared between the kubert index tasks (writers) and the gRPC policy API (readers).
pub type SharedIndex = Arc<RwLock<Index>>;

/// Inbound policies of all pod ports, by namespace.
#[derive(Debug)]
pub struct Index {
    pub(crate) cluster: ClusterSettings,
    pub(crate) namespaces: HashMap<String, NamespaceIndex>,
    pub(crate) metrics: IndexMetrics,
}

/// Everything the index knows about one namespace.
#[derive(Debug, Default)]
pub(crate) struct NamespaceIndex {
    pub(crate) default_override: PolicyOverride,
    pub(crate) pods: HashMap<String, PodIndex>,
    pub(crate) servers: HashMap<String, ServerInfo>,
    /// For each Server, the pods its selector matches, so that a change to a Server (or to the
    /// authorizations of a Server) touches only those pods.
    pub(crate) selected: HashMap<String, HashSet<String>>,
    /// Sorted by name, so policies list authorizations in a stable order.
    pub(crate) authorizations: BTreeMap<String, AuthorizationInfo>,
    pub(crate) authz_policies: AuthzPolicies,
    /// HTTPRoutes with Weft Server parents, sorted by name.
    pub(crate) http_routes: BTreeMap<String, RouteInfo>,
}

/// Why a policy lookup failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("pod {namespace}/{pod} is not known to the policy index")]
    PodNotFound { namespace: String, pod: String },
    #[error("port 0 is not a port number (1-65535)")]
    InvalidPort,
    #[error(
        "pod {namespace}/{pod} already has {MAX_UNDECLARED_PORT_WATCHES} watched ports that it does \
         not declare; port {port} is refused (declare the port in the pod's containers)"
    )]
    TooManyUndeclaredPorts {
        namespace: String,
        pod: String,
        port: u16,
    },
}

/// How many ports that a pod's containers do not declare the index watches for it. A proxy asks
/// for the policy of every port a connection arrives on, so without a bound a client probing a
/// pod's ports (a port scan) would make the controller hold a watch per port it tried.
pub const MAX_UNDECLARED_PORT_WATCHES: usize = 128;

impl Index {
    pub fn new(cluster: ClusterSettings, metrics: IndexMetrics) -> Self {
        Self {
            cluster,
            namespaces: HashMap::new(),
            metrics,
        }
    }

    pub fn shared(cluster: ClusterSettings, metrics: IndexMetrics) -> SharedIndex {
        Arc::new(RwLock::new(Self::new(cluster, metrics)))
    }

    pub fn cluster(&self) -> &ClusterSettings {
        &self.cluster
    }

    pub fn metrics(&self) -> &IndexMetrics {
        &self.metrics
    }

    /// Subscribes to the policy of `port` on a pod. The receiver's current value is the policy
    /// now; it changes only when the policy does, and closes when the pod is deleted.
    pub fn pod_port_policy(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<watch::Receiver<InboundPolicy>, LookupError> {
        if port == 0 {
            return Err(LookupError::InvalidPort);
        }
        let not_found = || LookupError::PodNotFound {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
        };
        let ns = self.namespaces.get(namespace).ok_or_else(not_found)?;
        let pod_index = ns.pods.get(pod).ok_or_else(not_found)?;
        let mut ports = pod_index.ports.lock();
        if let Some(watch) = ports.get(&port) {
            return Ok(watch.subscribe());
        }
        // A port the pod does not declare and no Server names: watch it from now on, up to a
        // bound.
        let undeclared = ports
            .keys()
            .filter(|p| !pod_index.meta.declared_ports.contains(p))
            .count();
        if !pod_index.meta.declared_ports.contains(&port)
            && undeclared >= MAX_UNDECLARED_PORT_WATCHES
        {
            return Err(LookupError::TooManyUndeclaredPorts {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                port,
            });
        }
        let watch = ns
            .resolver(namespace, &self.cluster, &self.metrics)
            .new_watch(pod, &pod_index.meta, port);
        let rx = watch.subscribe();
        ports.insert(port, watch);
        Ok(rx)
    }

    pub(crate) fn namespace_mut(&mut self, namespace: &str) -> &mut NamespaceIndex {
        // Avoids allocating the key for the common case of a known namespace.
        if !self.namespaces.contains_key(namespace) {
            self.namespaces
                .insert(namespace.to_string(), NamespaceIndex::default());
        }
        self.namespaces
            .get_mut(namespace)
            .expect("the namespace entry was just ensured")
    }

    /// Recomputes the named pods of `namespace`; unknown names are ignored.
    pub(crate) fn update_pods<'n>(
        &mut self,
        namespace: &str,
        names: impl IntoIterator<Item = &'n String>,
    ) {
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let NamespaceIndex {
            default_override,
            pods,
            servers,
            authorizations,
            authz_policies,
            http_routes,
            ..
        } = ns;
        let resolver = Resolver {
            namespace,
            cluster: &self.cluster,
            metrics: &self.metrics,
            servers,
            authorizations,
            authz_policies,
            http_routes,
            namespace_override: default_override,
        };
        for name in names {
            if let Some(pod) = pods.get_mut(name) {
                resolver.update_pod(name, pod);
            }
        }
    }
}

impl NamespaceIndex {
    pub(crate) fn resolver<'a>(
        &'a self,
        namespace: &'a str,
        cluster: &'a ClusterSettings,
        metrics: &'a IndexMetrics,
    ) -> Resolver<'a> {
        Resolver {
            namespace,
            cluster,
            metrics,
            servers: &self.servers,
            authorizations: &self.authorizations,
            authz_policies: &self.authz_policies,
            http_routes: &self.http_routes,
            namespace_override: &self.default_override,
        }
    }
}
