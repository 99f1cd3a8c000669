//! Prometheus metrics of the outbound policy gRPC API.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::destination::OpenStream;

/// Requests by RPC and result, open watch streams, and policies sent on them. Cloning shares the
/// underlying metrics.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicyMetrics {
    requests: Family<RequestLabels, Counter>,
    open_watches: Gauge,
    updates: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    rpc: &'static str,
    code: &'static str,
}

/// The two RPCs of `io.linkerd.proxy.outbound.OutboundPolicies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundRpc {
    Get,
    Watch,
}

impl OutboundRpc {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "Get",
            Self::Watch => "Watch",
        }
    }
}

impl OutboundPolicyMetrics {
    /// Registers `outbound_policy_requests_total`, `outbound_policy_open_watches` and
    /// `outbound_policy_watch_updates_total` in `registry`. Pass the controller's `weft`
    /// sub-registry so they are exported as `weft_outbound_policy_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let reg = registry.sub_registry_with_prefix("outbound_policy");
        reg.register(
            "requests",
            "Outbound policy requests from proxies, by RPC (Get, Watch) and code (ok, or the gRPC status code; not_found for addresses the mesh does not know); a watch counts once, when it opens",
            metrics.requests.clone(),
        );
        reg.register(
            "open_watches",
            "Outbound policy Watch streams currently open",
            metrics.open_watches.clone(),
        );
        reg.register(
            "watch_updates",
            "Policies sent on outbound policy Watch streams (the first one of each stream included)",
            metrics.updates.clone(),
        );
        metrics
    }

    pub(crate) fn request(&self, rpc: OutboundRpc, code: tonic::Code) {
        self.requests.get_or_create(&labels(rpc, code)).inc();
    }

    pub(crate) fn update_sent(&self) {
        self.updates.inc();
    }

    /// Counts an open watch until the returned guard is dropped.
    pub(crate) fn watch_opened(&self) -> OpenStream {
        OpenStream::new(self.open_watches.clone())
    }

    /// Requests of `rpc` answered with `code` (a watch counts when it opens).
    pub fn requests(&self, rpc: OutboundRpc, code: tonic::Code) -> u64 {
        self.requests.get_or_create(&labels(rpc, code)).get()
    }

    /// Watch streams currently open.
    pub fn open_watches(&self) -> i64 {
        self.open_watches.get()
    }

    /// Policies sent on watch streams so far.
    pub fn watch_updates(&self) -> u64 {
        self.updates.get()
    }
}

fn labels(rpc: OutboundRpc, code: tonic::Code) -> RequestLabels {
    RequestLabels {
        rpc: rpc.as_str(),
        code: crate::server::grpc::code_label(code),
    }
}
