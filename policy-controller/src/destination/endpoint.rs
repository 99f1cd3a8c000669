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
//! - `opaque_transport { inbound_port }` is set on a meshed endpoint's opaque port, always with
//!   the proxy's inbound port (4143, fixed by Weft's injector). It is the only way a meshed client
//!   reaches an opaque port over mutual TLS. The server proxy does not look for TLS on an opaque
//!   port (`detect.rs` in `app/inbound`: the connection is `tls=None(PortSkipped)`, so an
//!   identity-based authorization refuses it). With the hint, the client dials
//!   `<pod IP>:<inbound_port>` instead, with TLS and the ALPN protocol `transport.l5d.io/v1`, and
//!   sends a transport header naming the endpoint's port (`tagged_transport_port` in
//!   `proxy/api-resolve/src/pb.rs`; `PortOverride` and the ALPN in `app/outbound/src/opaq/concrete.rs`
//!   and `http/concrete.rs`). The server proxy's direct stack terminates the TLS, reads the header
//!   and authorizes the connection with the policy of that port and the client's identity
//!   (`app/inbound/src/direct.rs`), then forwards it to the app.
//! - `metric_labels` become labels of the client's endpoint metrics.

use linkerd2_proxy_api::{
    destination::{
        protocol_hint::{self, OpaqueTransport, Protocol},
        tls_identity::{DnsLikeIdentity, Strategy},
        ProtocolHint, TlsIdentity, WeightedAddr,
    },
    net::TcpAddress,
};
use std::{collections::HashMap, net::SocketAddr};
use weft_core::names::PROXY_INBOUND_PORT;
use weft_endpoints_index::Endpoint;

/// Every endpoint weighs the same (Linkerd's default weight).
pub const ENDPOINT_WEIGHT: u32 = 10_000;

/// An address as the proxy API encodes it: IPv4 as one big-endian `u32`, IPv6 as two big-endian
/// `u64` halves (`first`, `last`).
pub fn tcp_address(addr: SocketAddr) -> TcpAddress {
    TcpAddress::from(addr)
}

/// The `WeightedAddr` of one endpoint: labelled with its pod, service account and zone when
/// known; with the mesh identity to require and the protocol hint when it is meshed (and, on an
/// opaque port, the inbound port to carry the connection to).
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
            Some(if endpoint.opaque {
                ProtocolHint {
                    protocol: Some(Protocol::Opaque(protocol_hint::Opaque {})),
                    opaque_transport: Some(OpaqueTransport {
                        inbound_port: u32::from(PROXY_INBOUND_PORT),
                    }),
                }
            } else {
                ProtocolHint {
                    protocol: Some(Protocol::H2(protocol_hint::H2 {})),
                    opaque_transport: None,
                }
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
