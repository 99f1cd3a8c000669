//! Prometheus metrics of the Destination gRPC API.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Requests by RPC and result, open streams and messages sent, by RPC. Cloning shares the
/// underlying metrics.
#[derive(Clone, Debug, Default)]
pub struct DestinationMetrics {
    requests: Family<RequestLabels, Counter>,
    open_streams: Family<RpcLabels, Gauge>,
    updates: Family<RpcLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    rpc: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RpcLabels {
    rpc: &'static str,
}

/// The two RPCs of `io.linkerd.proxy.destination.Destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationRpc {
    Get,
    GetProfile,
}

impl DestinationRpc {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "Get",
            Self::GetProfile => "GetProfile",
        }
    }
}

impl DestinationMetrics {
    /// Registers `destination_requests_total`, `destination_open_streams` and
    /// `destination_updates_total` in `registry`. Pass the controller's `weft` sub-registry so
    /// they are exported as `weft_destination_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let reg = registry.sub_registry_with_prefix("destination");
        reg.register(
            "requests",
            "Destination requests from proxies, by RPC (Get, GetProfile) and code (ok, or the gRPC status code); a stream counts once, when it opens",
            metrics.requests.clone(),
        );
        reg.register(
            "open_streams",
            "Destination streams currently open, by RPC",
            metrics.open_streams.clone(),
        );
        reg.register(
            "updates",
            "Messages sent on Destination streams, by RPC (the first one of each stream included)",
            metrics.updates.clone(),
        );
        metrics
    }

    pub(crate) fn request(&self, rpc: DestinationRpc, code: tonic::Code) {
        self.requests
            .get_or_create(&request_labels(rpc, code))
            .inc();
    }

    pub(crate) fn update_sent(&self, rpc: DestinationRpc) {
        self.updates.get_or_create(&rpc_labels(rpc)).inc();
    }

    /// Counts an open stream of `rpc` until the returned guard is dropped.
    pub(crate) fn stream_opened(&self, rpc: DestinationRpc) -> OpenStream {
        let gauge = self.open_streams.get_or_create(&rpc_labels(rpc)).clone();
        OpenStream::new(gauge)
    }

    /// Requests of `rpc` answered with `code` (a stream counts when it opens).
    pub fn requests(&self, rpc: DestinationRpc, code: tonic::Code) -> u64 {
        self.requests
            .get_or_create(&request_labels(rpc, code))
            .get()
    }

    /// Streams of `rpc` currently open.
    pub fn open_streams(&self, rpc: DestinationRpc) -> i64 {
        self.open_streams.get_or_create(&rpc_labels(rpc)).get()
    }

    /// Messages sent on streams of `rpc` so far.
    pub fn updates(&self, rpc: DestinationRpc) -> u64 {
        self.updates.get_or_create(&rpc_labels(rpc)).get()
    }
}

fn request_labels(rpc: DestinationRpc, code: tonic::Code) -> RequestLabels {
    RequestLabels {
        rpc: rpc.as_str(),
        code: crate::server::grpc::code_label(code),
    }
}

fn rpc_labels(rpc: DestinationRpc) -> RpcLabels {
    RpcLabels { rpc: rpc.as_str() }
}

/// Counts one open stream; decrements the gauge when dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(Gauge);

impl OpenStream {
    pub(crate) fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}
