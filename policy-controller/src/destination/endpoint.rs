//! One endpoint → the proxy's `WeightedAddr`: what a client proxy needs to dial it.
//!
//! Shared by `Destination.Get` (the endpoints of a Service), `Destination.GetProfile` (the
//! endpoint of a pod address) and `OutboundPolicies` (the `Forward` backend of a pod address).
//!
//! What the proxy (linkerd2-proxy v2.366, `proxy/api-resolve/src/pb.rs`) does with each field:
//! - `addr` is required: an address without an IP is dropped from the update.
//! - `tls_identity` makes the client require that identity of the server (mTLS). The proxy takes
//!   the DNS-like identity as the server id and `server_name` as the SNI; an identity that does
//!   not parse as a DNS name is ignored (the endpoint is then dialed in plaintext), so only
//!   meshed endpoints, whose identity the index derives from their service account, carry one.
//! - `protocol_hint: H2` lets the client upgrade HTTP/1 requests to HTTP/2 between proxies
//!   (`l5d-orig-proto`): only a meshed endpoint's proxy undoes it. `Opaque` tells the client the
//!   server proxy treats the port as opaque TCP, so it sends no session protocol and no upgrade.
//! - `opaque_transport` (the inbound port of a tagged transport) is never set: Weft's proxies run
//!   no tagged-transport port, so clients connect to the endpoint's own port, with mTLS.
//! - `metric_labels` become labels of the client's endpoint metrics.

use linkerd2_proxy_api::{
    destination::{
        protocol_hint::{self, Protocol},
        tls_identity::{DnsLikeIdentity, Strategy},
        ProtocolHint, TlsIdentity, WeightedAddr,
    },
    net::TcpAddress,
};
use std::{collections::HashMap, net::SocketAddr};
use weft_endpoints_index::Endpoint;

/// Every endpoint weighs the same (Linkerd's default weight).
pub const ENDPOINT_WEIGHT: u32 = 10_000;

/// An address as the proxy API encodes it: IPv4 as one big-endian `u32`, IPv6 as two big-endian
/// `u64` halves (`first`, `last`).
pub fn tcp_address(addr: SocketAddr) -> TcpAddress {
    TcpAddress::from(addr)
}

/// The `WeightedAddr` of one endpoint: labelled with its pod, service account and zone when
/// known; with the mesh identity to require and the protocol hint when it is meshed.
pub fn weighted_addr(endpoint: &Endpoint) -> WeightedAddr {
    let mut metric_labels = HashMap::new();
    for (key, value) in [
        ("pod", &endpoint.pod),
        ("serviceaccount", &endpoint.service_account),
        ("zone", &endpoint.zone),
    ] {
        if let Some(value) = value {
            metric_labels.insert(key.to_string(), value.clone());
        }
    }
    let (tls_identity, protocol_hint) = match &endpoint.identity {
        Some(identity) => (
            Some(tls_identity(identity)),
            Some(ProtocolHint {
                protocol: Some(if endpoint.opaque {
                    Protocol::Opaque(protocol_hint::Opaque {})
                } else {
                    Protocol::H2(protocol_hint::H2 {})
                }),
                opaque_transport: None,
            }),
        ),
        None => (None, None),
    };
    WeightedAddr {
        addr: Some(tcp_address(endpoint.addr)),
        weight: ENDPOINT_WEIGHT,
        metric_labels,
        tls_identity,
        protocol_hint,
        authority_override: None,
        http2: None,
        resource_ref: None,
    }
}

/// The identity a client requires of a meshed endpoint; it is also the TLS server name (SNI).
fn tls_identity(identity: &str) -> TlsIdentity {
    TlsIdentity {
        strategy: Some(Strategy::DnsLikeIdentity(DnsLikeIdentity {
            name: identity.to_string(),
        })),
        server_name: Some(DnsLikeIdentity {
            name: identity.to_string(),
        }),
    }
}
