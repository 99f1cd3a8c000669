//! The exported series of the three APIs, by name and label, as the README documents them.

use crate::{
    destination::{DestinationMetrics, DestinationRpc},
    inbound::{InboundPolicyMetrics, Rpc},
    outbound::{OutboundPolicyMetrics, OutboundRpc},
};
use prometheus_client::{encoding::text::encode, registry::Registry};

/// The sample lines (no comments) of `registry` in the text exposition format, sorted.
fn samples(registry: &Registry) -> Vec<String> {
    let mut text = String::new();
    encode(&mut text, registry).expect("a registry encodes");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn each_api_exports_its_documented_series() {
    let mut registry = Registry::default();
    let weft = registry.sub_registry_with_prefix("weft");
    let inbound = InboundPolicyMetrics::register(weft);
    let outbound = OutboundPolicyMetrics::register(weft);
    let destination = DestinationMetrics::register(weft);

    inbound.request(Rpc::WatchPort, tonic::Code::Ok);
    let open = inbound.stream_opened(Rpc::WatchPort);
    inbound.update_sent(Rpc::WatchPort);
    outbound.request(OutboundRpc::Get, tonic::Code::NotFound);
    let _watch = outbound.stream_opened(OutboundRpc::Watch);
    outbound.update_sent(OutboundRpc::Watch);
    destination.request(DestinationRpc::GetProfile, tonic::Code::Ok);
    let _stream = destination.stream_opened(DestinationRpc::Get);
    destination.update_sent(DestinationRpc::Get);
    destination.update_sent(DestinationRpc::Get);

    assert_eq!(
        samples(&registry),
        [
            "weft_destination_open_streams{rpc=\"Get\"} 1",
            "weft_destination_requests_total{rpc=\"GetProfile\",code=\"ok\"} 1",
            "weft_destination_updates_total{rpc=\"Get\"} 2",
            "weft_outbound_policy_open_watches 1",
            "weft_outbound_policy_requests_total{rpc=\"Get\",code=\"not_found\"} 1",
            "weft_outbound_policy_watch_updates_total 1",
            "weft_policy_grpc_open_watches 1",
            "weft_policy_grpc_requests_total{rpc=\"WatchPort\",result=\"ok\"} 1",
            "weft_policy_grpc_watch_updates_total 1",
        ]
    );

    // The guard counts the stream only while it lives; the getters read what was exported.
    drop(open);
    assert_eq!(inbound.open_streams(Rpc::WatchPort), 0);
    assert_eq!(inbound.updates(Rpc::WatchPort), 1);
    assert_eq!(destination.updates(DestinationRpc::Get), 2);
    assert_eq!(destination.open_streams(DestinationRpc::GetProfile), 0);
    assert_eq!(
        outbound.requests(OutboundRpc::Get, tonic::Code::NotFound),
        1
    );
}
