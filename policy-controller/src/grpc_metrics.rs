//! The metrics of the proxies' gRPC APIs (inbound policy, outbound policy, destination), one
//! implementation for the three: requests by RPC and code, streams open, and messages sent on
//! them. Each API names its series ([`ApiMetricNames`]); the names and labels are those the
//! README documents, kept as they were when each API had its own module.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, TypedMetric},
    registry::{Metric, Registry},
};
use std::{fmt, marker::PhantomData};

/// The RPCs of one API, and how its metrics are named.
pub trait ApiRpc: Copy + fmt::Debug + Send + Sync + 'static {
    /// The API's metric names and help texts.
    const NAMES: ApiMetricNames;

    /// The RPC's name as the `rpc` label shows it (`WatchPort`, `Get`, ...).
    fn as_str(self) -> &'static str;
}

/// How one API's metrics are named under the controller's `weft_` prefix.
#[derive(Clone, Copy, Debug)]
pub struct ApiMetricNames {
    /// The sub-registry prefix, e.g. `destination` for `weft_destination_*`.
    pub prefix: &'static str,
    /// The help text of `<prefix>_requests_total{rpc,<code_label>}`.
    pub requests_help: &'static str,
    /// The label of the gRPC status (`ok`, or the code's snake_case name): `code`, or `result`
    /// for the inbound policy API.
    pub code_label: &'static str,
    /// The gauge of open streams.
    pub open_streams: SeriesName,
    /// The counter of messages sent on streams.
    pub updates: SeriesName,
}

/// One series: its name (after the prefix), help text, and whether it is labelled by RPC (or
/// one value for the API's only streaming RPC).
#[derive(Clone, Copy, Debug)]
pub struct SeriesName {
    pub name: &'static str,
    pub help: &'static str,
    pub by_rpc: bool,
}

type RequestLabels = [(&'static str, &'static str); 2];
type RpcLabels = [(&'static str, &'static str); 1];

/// A metric per RPC, or one for the API.
#[derive(Clone, Debug)]
enum PerRpc<M> {
    One(M),
    ByRpc(Family<RpcLabels, M>),
}

impl<M: Metric + TypedMetric + Clone + Default> PerRpc<M> {
    fn register(registry: &mut Registry, series: SeriesName) -> Self {
        if series.by_rpc {
            let family = Family::<RpcLabels, M>::default();
            registry.register(series.name, series.help, family.clone());
            Self::ByRpc(family)
        } else {
            let metric = M::default();
            registry.register(series.name, series.help, metric.clone());
            Self::One(metric)
        }
    }

    fn get(&self, rpc: &'static str) -> M {
        match self {
            Self::One(metric) => metric.clone(),
            Self::ByRpc(family) => family.get_or_create(&[("rpc", rpc)]).clone(),
        }
    }
}

/// The metrics of the API whose RPCs are `R`. Cloning shares the underlying metrics.
#[derive(Clone, Debug)]
pub struct GrpcApiMetrics<R> {
    requests: Family<RequestLabels, Counter>,
    open_streams: PerRpc<Gauge>,
    updates: PerRpc<Counter>,
    rpc: PhantomData<R>,
}

impl<R: ApiRpc> GrpcApiMetrics<R> {
    /// Registers the API's three series in `registry`. Pass the controller's `weft`
    /// sub-registry so they are exported as `weft_<prefix>_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let names = R::NAMES;
        let registry = registry.sub_registry_with_prefix(names.prefix);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", names.requests_help, requests.clone());
        Self {
            requests,
            open_streams: PerRpc::register(registry, names.open_streams),
            updates: PerRpc::register(registry, names.updates),
            rpc: PhantomData,
        }
    }

    fn request_labels(rpc: R, code: tonic::Code) -> RequestLabels {
        [
            ("rpc", rpc.as_str()),
            (R::NAMES.code_label, crate::server::grpc::code_label(code)),
        ]
    }

    /// Counts a request of `rpc` answered with `code` (a stream counts once, when it opens).
    pub(crate) fn request(&self, rpc: R, code: tonic::Code) {
        self.requests
            .get_or_create(&Self::request_labels(rpc, code))
            .inc();
    }

    /// Counts a message sent on a stream of `rpc`.
    pub(crate) fn update_sent(&self, rpc: R) {
        self.updates.get(rpc.as_str()).inc();
    }

    /// Counts an open stream of `rpc` until the returned guard is dropped.
    pub(crate) fn stream_opened(&self, rpc: R) -> OpenStream {
        OpenStream::new(self.open_streams.get(rpc.as_str()))
    }

    /// Requests of `rpc` answered with `code` so far.
    pub fn requests(&self, rpc: R, code: tonic::Code) -> u64 {
        self.requests
            .get_or_create(&Self::request_labels(rpc, code))
            .get()
    }

    /// Streams of `rpc` open now.
    pub fn open_streams(&self, rpc: R) -> i64 {
        self.open_streams.get(rpc.as_str()).get()
    }

    /// Messages sent on streams of `rpc` so far.
    pub fn updates(&self, rpc: R) -> u64 {
        self.updates.get(rpc.as_str()).get()
    }
}

/// Counts one open stream; decrements the gauge when dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(Gauge);

impl OpenStream {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
