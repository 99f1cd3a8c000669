//! Outbound targets → the proxy's `OutboundPolicy`: pure functions, no I/O.
//!
//! Weft has no outbound routing resources, so every policy has the shape the proxy synthesizes
//! itself when it has no policy (`app/outbound/src/discover.rs`): one backend, reached through a
//! default HTTP route (path prefix `/`) for HTTP/1 and HTTP/2 and a default opaque route, behind
//! protocol detection; or only the opaque route when the port is opaque.
//!
//! - A Service port balances over the Service's endpoints (`Balancer` with peak EWMA, endpoints
//!   from `Destination.Get` on the Service's authority). The parent and the backend are the
//!   Service port (`core`/`Service` resource): the client labels its metrics with it.
//! - A pod port forwards to the pod (`Forward`) with the endpoint's identity and protocol hint,
//!   so a meshed client dials a meshed pod with mTLS. The parent and backend are `default`
//!   metadata named `endpoint`, as the proxy names the forward policy it synthesizes from a
//!   profile's endpoint; a pod may have no name the index knows, and a `Resource` needs one.
//! - An unknown address has no policy: the service answers `NotFound`, and the proxy forwards to
//!   the original destination, as without a control plane.
//!
//! What the proxy (linkerd2-proxy v2.366, `ClientPolicy::try_from` in
//! `proxy/client-policy/src/{lib,http,opaq}.rs`) requires of each message, else the whole policy
//! is "misconfigured" and every request through it fails:
//! - the policy: `metadata` with a kind, a `protocol` with a kind; a `Resource` with non-empty
//!   `group`, `kind`, `name` and `namespace`;
//! - `Detect`: `timeout`, `http1`, `http2` and `opaque`;
//! - an HTTP route: `metadata`; each rule a `backends` distribution; a path match a kind;
//! - an opaque protocol at most one route; an opaque route `metadata` and exactly one rule, with
//!   a `backends` distribution and no filters Weft would need;
//! - a `FirstAvailable` distribution at least one backend; each route backend a `backend`;
//! - a backend: `metadata`, `queue` with `failfast_timeout`; a balancer `discovery` (with a kind)
//!   and `load`; peak EWMA `default_rtt` and `decay`; a forward backend an `addr` with an IP.
//!   A backend with no kind fails every request sent to it.
//!
//! `failure_accrual` is left out (no circuit breaking), as are retries and timeouts.

use linkerd2_proxy_api::{
    http_route::{path_match, HttpRouteMatch, PathMatch},
    meta::{metadata, Metadata, Resource},
    outbound::{
        self as proto,
        backend::{self, balance_p2c, endpoint_discovery, BalanceP2c, EndpointDiscovery},
        http_route, opaque_route, proxy_protocol,
    },
};
use std::time::Duration;
use weft_endpoints_index::{Endpoint, OutboundTarget, ServicePort};

use crate::destination::endpoint::weighted_addr;

/// How long the proxy waits for a client's first bytes to detect its protocol (as inbound).
pub const DETECT_TIMEOUT: Duration = crate::inbound::DEFAULT_DETECT_TIMEOUT;
/// Requests a backend may queue while it is not ready (Linkerd's default).
pub const QUEUE_CAPACITY: u32 = 100;
/// How long a backend may stay unready before the requests queued for it fail (Linkerd's
/// default).
pub const QUEUE_FAILFAST_TIMEOUT: Duration = Duration::from_secs(3);
/// The latency peak EWMA assumes of an endpoint before it has measured one (Linkerd's default).
pub const BALANCER_DEFAULT_RTT: Duration = Duration::from_millis(30);
/// The window of peak EWMA's latency average (Linkerd's default).
pub const BALANCER_DECAY: Duration = Duration::from_secs(10);

/// The policy of what an address is; `None` for an address the index does not know.
pub fn outbound_policy(
    target: &OutboundTarget,
    cluster_domain: &str,
) -> Option<proto::OutboundPolicy> {
    match target {
        OutboundTarget::Unknown => None,
        OutboundTarget::Service { service, opaque } => {
            Some(service_policy(service, *opaque, cluster_domain))
        }
        OutboundTarget::Pod(endpoint) => Some(endpoint_policy(endpoint)),
    }
}

/// A Service port's policy: balance over its endpoints.
pub fn service_policy(
    service: &ServicePort,
    opaque: bool,
    cluster_domain: &str,
) -> proto::OutboundPolicy {
    let meta = service_meta(service);
    let backend = proto::Backend {
        metadata: Some(meta.clone()),
        queue: Some(queue()),
        kind: Some(backend::Kind::Balancer(BalanceP2c {
            discovery: Some(EndpointDiscovery {
                kind: Some(endpoint_discovery::Kind::Dst(
                    endpoint_discovery::DestinationGet {
                        path: service.authority(cluster_domain),
                    },
                )),
            }),
            load: Some(balance_p2c::Load::PeakEwma(balance_p2c::PeakEwma {
                default_rtt: Some(duration(BALANCER_DEFAULT_RTT)),
                decay: Some(duration(BALANCER_DECAY)),
            })),
        })),
    };
    policy(meta, backend, opaque)
}

/// A pod port's policy: forward to the pod, with its identity when it is meshed.
pub fn endpoint_policy(endpoint: &Endpoint) -> proto::OutboundPolicy {
    let meta = default_meta("endpoint");
    let backend = proto::Backend {
        metadata: Some(meta.clone()),
        queue: Some(queue()),
        kind: Some(backend::Kind::Forward(weighted_addr(endpoint))),
    };
    policy(meta, backend, endpoint.opaque)
}

/// The policy of `parent` whose every route leads to `backend`.
fn policy(parent: Metadata, backend: proto::Backend, opaque: bool) -> proto::OutboundPolicy {
    let opaque_routes = proxy_protocol::Opaque {
        routes: vec![opaque_route(backend.clone())],
    };
    let kind = if opaque {
        proxy_protocol::Kind::Opaque(opaque_routes)
    } else {
        let routes = vec![http_route(backend)];
        proxy_protocol::Kind::Detect(proxy_protocol::Detect {
            timeout: Some(duration(DETECT_TIMEOUT)),
            http1: Some(proxy_protocol::Http1 {
                routes: routes.clone(),
                failure_accrual: None,
            }),
            http2: Some(proxy_protocol::Http2 {
                routes,
                failure_accrual: None,
            }),
            opaque: Some(opaque_routes),
        })
    };
    proto::OutboundPolicy {
        metadata: Some(parent),
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
    }
}

/// The default HTTP route: every request (path prefix `/`) to `backend`.
fn http_route(backend: proto::Backend) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(default_meta("http")),
        hosts: Vec::new(),
        rules: vec![http_route::Rule {
            matches: vec![HttpRouteMatch {
                path: Some(PathMatch {
                    kind: Some(path_match::Kind::Prefix("/".to_string())),
                }),
                ..HttpRouteMatch::default()
            }],
            backends: Some(http_route::Distribution {
                kind: Some(http_route::distribution::Kind::FirstAvailable(
                    http_route::distribution::FirstAvailable {
                        backends: vec![http_route::RouteBackend {
                            backend: Some(backend),
                            ..http_route::RouteBackend::default()
                        }],
                    },
                )),
            }),
            ..http_route::Rule::default()
        }],
    }
}

/// The default opaque route: every connection to `backend`.
fn opaque_route(backend: proto::Backend) -> proto::OpaqueRoute {
    proto::OpaqueRoute {
        metadata: Some(default_meta("opaq")),
        rules: vec![opaque_route::Rule {
            backends: Some(opaque_route::Distribution {
                kind: Some(opaque_route::distribution::Kind::FirstAvailable(
                    opaque_route::distribution::FirstAvailable {
                        backends: vec![opaque_route::RouteBackend {
                            backend: Some(backend),
                            filters: Vec::new(),
                        }],
                    },
                )),
            }),
            filters: Vec::new(),
        }],
    }
}

/// The Service port as a resource: `core`/`Service`, by namespace and name, with its port.
pub fn service_meta(service: &ServicePort) -> Metadata {
    Metadata {
        kind: Some(metadata::Kind::Resource(Resource {
            group: "core".to_string(),
            kind: "Service".to_string(),
            name: service.name.clone(),
            namespace: service.namespace.clone(),
            section: String::new(),
            port: u32::from(service.port),
        })),
    }
}

fn default_meta(name: &str) -> Metadata {
    Metadata {
        kind: Some(metadata::Kind::Default(name.to_string())),
    }
}

fn queue() -> proto::Queue {
    proto::Queue {
        capacity: QUEUE_CAPACITY,
        failfast_timeout: Some(duration(QUEUE_FAILFAST_TIMEOUT)),
    }
}

/// A protobuf duration of one of the constants above, all well within its range.
fn duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(duration)
        .expect("the policy's durations are constants far below protobuf's maximum")
}
