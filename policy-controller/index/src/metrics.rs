//! Prometheus metrics of the policy index (`weft_policy_index_*` when registered in the
//! controller's `weft` sub-registry).

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

/// Index sizes, Server conflicts and skipped objects. Cloning shares the underlying metrics.
#[derive(Clone, Debug, Default)]
pub struct IndexMetrics {
    pub(crate) pods: Gauge,
    pub(crate) servers: Gauge,
    pub(crate) authorizations: Gauge,
    pub(crate) authorization_policies: Gauge,
    pub(crate) authentications: Gauge,
    pub(crate) http_routes: Gauge,
    pub(crate) conflicted_ports: Gauge,
    pub(crate) server_conflicts: Counter,
    pub(crate) invalid_objects: Counter,
}

impl IndexMetrics {
    /// Creates the metrics and registers them as `policy_index_*` in `registry`. Pass the
    /// controller's `weft` sub-registry so they are exported as `weft_policy_index_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let reg = registry.sub_registry_with_prefix("policy");
        reg.register(
            "index_pods",
            "Pods in the policy index",
            metrics.pods.clone(),
        );
        reg.register(
            "index_servers",
            "Valid Servers in the policy index",
            metrics.servers.clone(),
        );
        reg.register(
            "index_authorizations",
            "Valid ServerAuthorizations in the policy index",
            metrics.authorizations.clone(),
        );
        reg.register(
            "index_authorization_policies",
            "Valid AuthorizationPolicies in the policy index",
            metrics.authorization_policies.clone(),
        );
        reg.register(
            "index_authentications",
            "Valid MeshTLSAuthentications and NetworkAuthentications in the policy index",
            metrics.authentications.clone(),
        );
        reg.register(
            "index_http_routes",
            "Valid HTTPRoutes with Weft Server parents in the policy index",
            metrics.http_routes.clone(),
        );
        reg.register(
            "index_conflicted_ports",
            "Pod ports currently selected by more than one Server",
            metrics.conflicted_ports.clone(),
        );
        reg.register(
            "index_server_conflicts",
            "Times a pod port became selected by more than one Server (the older Server wins)",
            metrics.server_conflicts.clone(),
        );
        reg.register(
            "index_invalid_objects",
            "Policy objects (Servers, authorizations, authentications, HTTPRoutes) skipped because they were malformed or invalid",
            metrics.invalid_objects.clone(),
        );
        metrics
    }

    /// Current number of pods in the index.
    pub fn pods(&self) -> i64 {
        self.pods.get()
    }

    /// Current number of valid Servers in the index.
    pub fn servers(&self) -> i64 {
        self.servers.get()
    }

    /// Current number of valid ServerAuthorizations in the index.
    pub fn authorizations(&self) -> i64 {
        self.authorizations.get()
    }

    /// Current number of valid AuthorizationPolicies in the index.
    pub fn authorization_policies(&self) -> i64 {
        self.authorization_policies.get()
    }

    /// Current number of valid HTTPRoutes with Weft Server parents in the index.
    pub fn http_routes(&self) -> i64 {
        self.http_routes.get()
    }

    /// Pod ports currently selected by more than one Server.
    pub fn conflicted_ports(&self) -> i64 {
        self.conflicted_ports.get()
    }

    /// Total conflicts observed.
    pub fn server_conflicts(&self) -> u64 {
        self.server_conflicts.get()
    }

    /// Total malformed or invalid custom objects skipped.
    pub fn invalid_objects(&self) -> u64 {
        self.invalid_objects.get()
    }
}
