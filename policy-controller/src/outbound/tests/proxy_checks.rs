//! What linkerd2-proxy v2.366 requires of an `OutboundPolicy`, written from its
//! `ClientPolicy::try_from` (`linkerd/proxy/client-policy/src/{lib,http,opaq}.rs`) and
//! `to_addr_meta` (`linkerd/proxy/api-resolve/src/pb.rs`); the proxy crate is not a dependency.
//! A policy failing any check here is one the proxy replaces with an invalid policy ("Client
//! policy misconfigured"): every request through it fails.

use linkerd2_proxy_api::{
    destination::{tls_identity::Strategy, WeightedAddr},
    meta::{metadata, Metadata},
    outbound::{
        backend::{self, balance_p2c},
        http_route, opaque_route, proxy_protocol, Backend, HttpRoute, OutboundPolicy,
    },
};

type Check = Result<(), String>;

fn required<'a, T>(value: &'a Option<T>, what: &str) -> Result<&'a T, String> {
    value.as_ref().ok_or_else(|| format!("missing {what}"))
}

fn duration(value: &Option<prost_types::Duration>, what: &str) -> Check {
    let value = required(value, what)?;
    std::time::Duration::try_from(*value)
        .map(|_| ())
        .map_err(|e| format!("invalid {what}: {e}"))
}

/// `ClientPolicy::try_from`.
pub(super) fn check_policy(policy: &OutboundPolicy) -> Check {
    check_meta(required(&policy.metadata, "metadata")?)?;
    let protocol = required(&policy.protocol, "protocol")?;
    match required(&protocol.kind, "protocol kind")? {
        proxy_protocol::Kind::Detect(detect) => {
            duration(&detect.timeout, "Detect timeout")?;
            check_http_routes(&required(&detect.http1, "Detect HTTP/1")?.routes)?;
            check_http_routes(&required(&detect.http2, "Detect HTTP/2")?.routes)?;
            check_opaque(required(&detect.opaque, "Detect opaque")?)
        }
        proxy_protocol::Kind::Opaque(opaque) => check_opaque(opaque),
        proxy_protocol::Kind::Http1(http) => check_http_routes(&http.routes),
        proxy_protocol::Kind::Http2(http) => check_http_routes(&http.routes),
        other => Err(format!("Weft sends no {other:?}: not checked")),
    }
}

/// `impl TryFrom<meta::Metadata> for Meta`.
pub(super) fn check_meta(meta: &Metadata) -> Check {
    match required(&meta.kind, "metadata kind")? {
        metadata::Kind::Default(_) => Ok(()),
        metadata::Kind::Resource(r) => {
            for (field, value) in [
                ("group", &r.group),
                ("kind", &r.kind),
                ("name", &r.name),
                ("namespace", &r.namespace),
            ] {
                if value.is_empty() {
                    return Err(format!("resource {field} must not be empty"));
                }
            }
            Ok(())
        }
    }
}

/// `http::proto::try_route` and `try_rule`, for what Weft sends (no hosts, filters, retries,
/// timeouts or failure accrual; any of those is reported as unchecked).
fn check_http_routes(routes: &[HttpRoute]) -> Check {
    for route in routes {
        check_meta(required(&route.metadata, "HTTP route metadata")?)?;
        if !route.hosts.is_empty() {
            return Err("HTTP route hosts: not checked".into());
        }
        for rule in &route.rules {
            for m in &rule.matches {
                if let Some(path) = &m.path {
                    required(&path.kind, "path match kind")?;
                }
                if !m.headers.is_empty() || !m.query_params.is_empty() || m.method.is_some() {
                    return Err("header, query or method matches: not checked".into());
                }
            }
            if !rule.filters.is_empty() || rule.retry.is_some() || rule.timeouts.is_some() {
                return Err("HTTP filters, retries, timeouts: not checked".into());
            }
            let backends = required(&rule.backends, "HTTP rule distribution")?;
            use http_route::distribution::Kind;
            match required(&backends.kind, "HTTP distribution kind")? {
                Kind::Empty(_) => {}
                Kind::FirstAvailable(first) => {
                    if first.backends.is_empty() {
                        return Err("a FirstAvailable distribution may not be empty".into());
                    }
                    for b in &first.backends {
                        if !b.filters.is_empty() {
                            return Err("HTTP backend filters: not checked".into());
                        }
                        check_backend(required(&b.backend, "HTTP route backend")?)?;
                    }
                }
                Kind::RandomAvailable(random) => {
                    if random.backends.is_empty() {
                        return Err("a RandomAvailable distribution may not be empty".into());
                    }
                    for b in &random.backends {
                        let b = required(&b.backend, "weighted route backend")?;
                        check_backend(required(&b.backend, "HTTP route backend")?)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `impl TryFrom<proxy_protocol::Opaque> for Opaque` and `opaq::proto::try_route`.
fn check_opaque(opaque: &proxy_protocol::Opaque) -> Check {
    if opaque.routes.len() > 1 {
        return Err(format!(
            "an Opaque protocol has at most one route, not {}",
            opaque.routes.len()
        ));
    }
    for route in &opaque.routes {
        check_meta(required(&route.metadata, "opaque route metadata")?)?;
        if route.rules.len() != 1 {
            return Err(format!(
                "an opaque route must have exactly one rule, not {}",
                route.rules.len()
            ));
        }
        let rule = &route.rules[0];
        for filter in &rule.filters {
            required(&filter.kind, "opaque filter kind")?;
        }
        let backends = required(&rule.backends, "opaque rule distribution")?;
        use opaque_route::distribution::Kind;
        match required(&backends.kind, "opaque distribution kind")? {
            Kind::Empty(_) => {}
            Kind::FirstAvailable(first) => {
                if first.backends.is_empty() {
                    return Err("a FirstAvailable distribution may not be empty".into());
                }
                for b in &first.backends {
                    for filter in &b.filters {
                        required(&filter.kind, "opaque filter kind")?;
                    }
                    check_backend(required(&b.backend, "opaque route backend")?)?;
                }
            }
            Kind::RandomAvailable(random) => {
                if random.backends.is_empty() {
                    return Err("a RandomAvailable distribution may not be empty".into());
                }
                for b in &random.backends {
                    let b = required(&b.backend, "weighted route backend")?;
                    check_backend(required(&b.backend, "opaque route backend")?)?;
                }
            }
        }
    }
    Ok(())
}

/// `impl TryFrom<outbound::Backend> for Backend`. A backend without a kind is accepted by the
/// proxy but fails every request sent to it, so it fails the check too.
pub(super) fn check_backend(b: &Backend) -> Check {
    check_meta(required(&b.metadata, "backend metadata")?)?;
    match required(&b.kind, "backend kind (else every request to it fails)")? {
        backend::Kind::Balancer(balancer) => {
            let discovery = required(&balancer.discovery, "balancer discovery")?;
            required(&discovery.kind, "discovery kind")?;
            match required(&balancer.load, "balancer load")? {
                balance_p2c::Load::PeakEwma(ewma) => {
                    duration(&ewma.default_rtt, "peak EWMA default RTT")?;
                    duration(&ewma.decay, "peak EWMA decay")?;
                }
                balance_p2c::Load::PenaltyPeakEwma(_) => {}
            }
        }
        backend::Kind::Forward(addr) => check_forward(addr)?,
    }
    let queue = required(&b.queue, "queue")?;
    duration(&queue.failfast_timeout, "queue failfast timeout")
}

/// `to_addr_meta`: the address must have an IP. An identity that is not a DNS-like name is
/// silently dropped (the endpoint would be dialed without mTLS): also a failure here.
pub(super) fn check_forward(addr: &WeightedAddr) -> Check {
    let tcp = required(&addr.addr, "forward address")?;
    required(&required(&tcp.ip, "forward IP")?.ip, "forward IP kind")?;
    if let Some(tls) = &addr.tls_identity {
        match required(&tls.strategy, "identity strategy")? {
            Strategy::DnsLikeIdentity(id) => check_dns_name(&id.name)?,
            Strategy::UriLikeIdentity(_) => return Err("URI identities: not checked".into()),
        }
        if let Some(name) = &tls.server_name {
            check_dns_name(&name.name)?;
        }
    }
    Ok(())
}

fn check_dns_name(name: &str) -> Check {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a DNS name"))
    }
}
