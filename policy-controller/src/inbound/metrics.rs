//! The inbound policy API's metrics: `weft_policy_grpc_requests_total{rpc,result}`,
//! `weft_policy_grpc_open_watches` and `weft_policy_grpc_watch_updates_total` (see
//! [`crate::grpc_metrics`]).

use crate::grpc_metrics::{ApiMetricNames, ApiRpc, GrpcApiMetrics, SeriesName};

/// Requests by RPC and result, open WatchPort streams, and policies sent on them.
pub type InboundPolicyMetrics = GrpcApiMetrics<Rpc>;

/// The two RPCs of `io.linkerd.proxy.inbound.InboundServerPolicies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    GetPort,
    WatchPort,
}

impl ApiRpc for Rpc {
    const NAMES: ApiMetricNames = ApiMetricNames {
        prefix: "policy_grpc",
        requests_help: "Inbound policy requests from proxies, by RPC (GetPort, WatchPort) and result (ok, or the gRPC status code); a watch counts once, when it opens",
        code_label: "result",
        open_streams: SeriesName {
            name: "open_watches",
            help: "WatchPort streams currently open",
            by_rpc: false,
        },
        updates: SeriesName {
            name: "watch_updates",
            help: "Policies sent on WatchPort streams (the first one of each stream included)",
            by_rpc: false,
        },
    };

    fn as_str(self) -> &'static str {
        match self {
            Rpc::GetPort => "GetPort",
            Rpc::WatchPort => "WatchPort",
        }
    }
}
