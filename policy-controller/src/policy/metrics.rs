//! Prometheus metrics of the policy API.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Requests by status and open watch streams. Cloning shares the underlying metrics.
#[derive(Clone, Debug, Default)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    active_watches: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status: u16,
    watch: bool,
}

impl ApiMetrics {
    /// Registers `policy_api_requests_total` and `policy_api_active_watches` in `registry`. Pass
    /// the controller's `weft` sub-registry so they are exported as `weft_policy_api_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let reg = registry.sub_registry_with_prefix("policy_api");
        reg.register(
            "requests",
            "Policy API requests answered, by HTTP status and whether they asked to watch",
            metrics.requests.clone(),
        );
        reg.register(
            "active_watches",
            "Policy watch streams currently open",
            metrics.active_watches.clone(),
        );
        metrics
    }

    pub(crate) fn request(&self, status: http::StatusCode, watch: bool) {
        self.requests
            .get_or_create(&RequestLabels {
                status: status.as_u16(),
                watch,
            })
            .inc();
    }

    /// Counts an open watch until the returned guard is dropped.
    pub(crate) fn watch_opened(&self) -> ActiveWatch {
        self.active_watches.inc();
        ActiveWatch(self.active_watches.clone())
    }

    /// Policy watch streams currently open.
    pub fn active_watches(&self) -> i64 {
        self.active_watches.get()
    }

    /// Requests answered with `status`.
    pub fn requests(&self, status: u16, watch: bool) -> u64 {
        self.requests
            .get_or_create(&RequestLabels { status, watch })
            .get()
    }
}

/// Decrements the active-watch gauge when dropped.
#[derive(Debug)]
pub(crate) struct ActiveWatch(Gauge);

impl Drop for ActiveWatch {
    fn drop(&mut self) {
        self.0.dec();
    }
}
