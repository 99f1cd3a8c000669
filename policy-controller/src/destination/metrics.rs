//! The Destination API's metrics: `weft_destination_requests_total{rpc,code}`,
//! `weft_destination_open_streams{rpc}` and `weft_destination_updates_total{rpc}` (see
//! [`crate::grpc_metrics`]).

use crate::grpc_metrics::{ApiMetricNames, ApiRpc, GrpcApiMetrics, SeriesName};

/// Requests by RPC and code, open streams and messages sent, by RPC.
pub type DestinationMetrics = GrpcApiMetrics<DestinationRpc>;

/// The two RPCs of `io.linkerd.proxy.destination.Destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationRpc {
    Get,
    GetProfile,
}

impl ApiRpc for DestinationRpc {
    const NAMES: ApiMetricNames = ApiMetricNames {
        prefix: "destination",
        requests_help: "Destination requests from proxies, by RPC (Get, GetProfile) and code (ok, or the gRPC status code); a stream counts once, when it opens",
        code_label: "code",
        open_streams: SeriesName {
            name: "open_streams",
            help: "Destination streams currently open, by RPC",
            by_rpc: true,
        },
        updates: SeriesName {
            name: "updates",
            help: "Messages sent on Destination streams, by RPC (the first one of each stream included)",
            by_rpc: true,
        },
    };

    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "Get",
            Self::GetProfile => "GetProfile",
        }
    }
}
