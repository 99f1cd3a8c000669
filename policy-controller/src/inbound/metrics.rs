//! Prometheus metrics of the inbound policy gRPC API.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Requests by RPC and result, open watch streams, and updates sent. Cloning shares the
/// underlying metrics.
#[derive(Clone, Debug, Default)]
pub struct InboundPolicyMetrics {
    requests: Family<RequestLabels, Counter>,
    open_watches: Gauge,
    updates: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    rpc: &'static str,
    result: &'static str,
}

/// The two RPCs of `io.linkerd.proxy.inbound.InboundServerPolicies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    GetPort,
    WatchPort,
}

impl Rpc {
    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::GetPort => "GetPort",
            Rpc::WatchPort => "WatchPort",
        }
    }
}

impl InboundPolicyMetrics {
    /// Registers `policy_grpc_requests_total`, `policy_grpc_open_watches` and
    /// `policy_grpc_watch_updates_total` in `registry`. Pass the controller's `weft`
    /// sub-registry so they are exported as `weft_policy_grpc_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let reg = registry.sub_registry_with_prefix("policy_grpc");
        reg.register(
            "requests",
            "Inbound policy requests from proxies, by RPC (GetPort, WatchPort) and result (ok, or the gRPC status code); a watch counts once, when it opens",
            metrics.requests.clone(),
        );
        reg.register(
            "open_watches",
            "WatchPort streams currently open",
            metrics.open_watches.clone(),
        );
        reg.register(
            "watch_updates",
            "Policies sent on WatchPort streams (the first one of each stream included)",
            metrics.updates.clone(),
        );
        metrics
    }

    pub(crate) fn request(&self, rpc: Rpc, code: tonic::Code) {
        self.requests
            .get_or_create(&RequestLabels {
                rpc: rpc.as_str(),
                result: crate::server::grpc::code_label(code),
            })
            .inc();
    }

    pub(crate) fn update_sent(&self) {
        self.updates.inc();
    }

    /// Counts an open watch until the returned guard is dropped.
    pub(crate) fn watch_opened(&self) -> OpenWatch {
        self.open_watches.inc();
        OpenWatch(self.open_watches.clone())
    }

    /// Requests of `rpc` answered with `code` (a watch counts when it opens).
    pub fn requests(&self, rpc: Rpc, code: tonic::Code) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                rpc: rpc.as_str(),
                result: crate::server::grpc::code_label(code),
            })
            .get()
    }

    /// WatchPort streams currently open.
    pub fn open_watches(&self) -> i64 {
        self.open_watches.get()
    }

    /// Policies sent on watch streams so far.
    pub fn watch_updates(&self) -> u64 {
        self.updates.get()
    }
}

/// Decrements the open-watch gauge when dropped.
#[derive(Debug)]
pub(crate) struct OpenWatch(Gauge);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.dec();
    }
}
