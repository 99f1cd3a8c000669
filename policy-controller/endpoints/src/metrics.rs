//! Prometheus metrics of the endpoints index (`weft_endpoints_index_*` when registered in the
//! controller's `weft` sub-registry).

use prometheus_client::registry::Registry;

/// SKELETON: sizes and skipped objects are added by the implementation.
#[derive(Clone, Debug, Default)]
pub struct EndpointsIndexMetrics {}

impl EndpointsIndexMetrics {
    /// Creates the metrics and registers them as `endpoints_index_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let _ = registry;
        Self::default()
    }
}
