//! The outbound policy API's metrics: `weft_outbound_policy_requests_total{rpc,code}`,
//! `weft_outbound_policy_open_watches` and `weft_outbound_policy_watch_updates_total` (see
//! [`crate::grpc_metrics`]).

use crate::grpc_metrics::{ApiMetricNames, ApiRpc, GrpcApiMetrics, SeriesName};

/// Requests by RPC and code, open Watch streams, and policies sent on them.
pub type OutboundPolicyMetrics = GrpcApiMetrics<OutboundRpc>;

/// The two RPCs of `io.linkerd.proxy.outbound.OutboundPolicies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundRpc {
    Get,
    Watch,
}

impl ApiRpc for OutboundRpc {
    const NAMES: ApiMetricNames = ApiMetricNames {
        prefix: "outbound_policy",
        requests_help: "Outbound policy requests from proxies, by RPC (Get, Watch) and code (ok, or the gRPC status code; not_found for addresses the mesh does not know); a watch counts once, when it opens",
        code_label: "code",
        open_streams: SeriesName {
            name: "open_watches",
            help: "Outbound policy Watch streams currently open",
            by_rpc: false,
        },
        updates: SeriesName {
            name: "watch_updates",
            help: "Policies sent on outbound policy Watch streams (the first one of each stream included)",
            by_rpc: false,
        },
    };

    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "Get",
            Self::Watch => "Watch",
        }
    }
}
