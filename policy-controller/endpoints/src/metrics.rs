//! Prometheus metrics of the endpoints index (`weft_endpoints_index_*` when registered in the
//! controller's `weft` sub-registry).

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

/// Index sizes, open watches and skipped annotations. Cloning shares the underlying metrics.
#[derive(Clone, Debug, Default)]
pub struct EndpointsIndexMetrics {
    pub(crate) services: Gauge,
    pub(crate) endpoint_slices: Gauge,
    pub(crate) pods: Gauge,
    pub(crate) watched_service_ports: Gauge,
    pub(crate) watched_addresses: Gauge,
    pub(crate) invalid_objects: Counter,
}

impl EndpointsIndexMetrics {
    /// Creates the metrics and registers them as `endpoints_index_*` in `registry`. Pass the
    /// controller's `weft` sub-registry so they are exported as `weft_endpoints_index_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let reg = registry.sub_registry_with_prefix("endpoints_index");
        reg.register(
            "services",
            "Services known to the endpoints index (ExternalName Services included)",
            metrics.services.clone(),
        );
        reg.register(
            "endpoint_slices",
            "EndpointSlices of IPv4 or IPv6 addresses that name their Service, in the endpoints index",
            metrics.endpoint_slices.clone(),
        );
        reg.register(
            "pods",
            "Pods known to the endpoints index",
            metrics.pods.clone(),
        );
        reg.register(
            "watched_service_ports",
            "Service ports whose endpoints at least one proxy resolves right now",
            metrics.watched_service_ports.clone(),
        );
        reg.register(
            "watched_addresses",
            "IP:port addresses whose outbound target at least one proxy watches right now",
            metrics.watched_addresses.clone(),
        );
        reg.register(
            "invalid_objects",
            "Services and pods whose config.weft.dev/opaque-ports annotation was malformed and ignored (see the controller's warnings)",
            metrics.invalid_objects.clone(),
        );
        metrics
    }

    /// Current number of Services in the index.
    pub fn services(&self) -> i64 {
        self.services.get()
    }

    /// Current number of indexed EndpointSlices.
    pub fn endpoint_slices(&self) -> i64 {
        self.endpoint_slices.get()
    }

    /// Current number of pods in the index.
    pub fn pods(&self) -> i64 {
        self.pods.get()
    }

    /// Service ports with an open endpoints watch (counted until cleaned up).
    pub fn watched_service_ports(&self) -> i64 {
        self.watched_service_ports.get()
    }

    /// Addresses with an open outbound-target watch (counted until cleaned up).
    pub fn watched_addresses(&self) -> i64 {
        self.watched_addresses.get()
    }

    /// Total malformed annotations ignored.
    pub fn invalid_objects(&self) -> u64 {
        self.invalid_objects.get()
    }
}
