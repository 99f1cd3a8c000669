//! An `InboundServer` message as a readable YAML document: pure functions, no I/O.
//!
//! The shape follows what a proxy does with the message rather than the protobuf's nesting:
//!
//! ```yaml
//! server: {group: policy.weft.dev, kind: server, name: web-http}   # the Server's labels
//! protocol:
//!   kind: http2                  # detect (with timeout) | http1 | http2 | grpc | opaque | tls
//!   routes:
//!   - metadata: {kind: default, name: default}
//!     authorizations: []         # the route's own
//!     allowedBy: [serverauthorization/web-clients]   # its own and the Server's, as the proxy applies them
//!     rules:
//!     - matches:
//!       - path: {prefix: /}
//! authorizations:
//! - labels: {group: policy.weft.dev, kind: serverauthorization, name: web-clients}
//!   networks:
//!   - cidr: 10.0.0.0/8
//!     except: [10.0.1.0/24]
//!   authentication:
//!     meshTLS:
//!       identities: [web.emojivoto.serviceaccount.identity.weft.cluster.local]
//!       suffixes: ['*.emojivoto.serviceaccount.identity.weft.cluster.local']
//! ```
//!
//! Labels are sorted by key, and fields a message leaves empty are left out, so the output of two
//! calls can be compared with `diff`. Something the proxy would refuse (a missing protocol or
//! authentication) is shown as `unset`, not hidden.

use linkerd2_proxy_api::{
    grpc_route::GrpcRouteMatch,
    http_route::{
        header_match, host_match, path_match, path_modifier, query_param_match, HeaderMatch,
        HostMatch, HttpRouteMatch,
    },
    http_types::{http_method, HttpMethod},
    inbound::{
        self as proto,
        authn::{permit_mesh_tls::Clients, Permit},
        proxy_protocol::Kind,
    },
    meta::{metadata, Metadata},
    net::IpNetwork,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// What a missing required field is shown as.
const UNSET: &str = "unset";

/// The message as one YAML document (no leading `---`), ending in a newline.
pub fn to_yaml(server: &proto::Server) -> String {
    // A `serde_json::Value` always serializes.
    serde_norway::to_string(&server_value(server)).unwrap_or_else(|e| format!("# {e}\n"))
}

/// The message as a JSON value in the documented shape.
pub fn server_value(server: &proto::Server) -> Value {
    let mut out = Map::new();
    out.insert("server".into(), labels(&server.labels));
    out.insert(
        "protocol".into(),
        server
            .protocol
            .as_ref()
            .and_then(|p| p.kind.as_ref())
            .map_or_else(
                || json!({ "kind": UNSET }),
                |kind| protocol(kind, &server.authorizations),
            ),
    );
    out.insert(
        "authorizations".into(),
        server.authorizations.iter().map(authz).collect(),
    );
    if !server.server_ips.is_empty() {
        let ips = server
            .server_ips
            .iter()
            .map(|ip| match std::net::IpAddr::try_from(*ip) {
                Ok(ip) => Value::from(ip.to_string()),
                Err(_) => Value::from("invalid address"),
            })
            .collect();
        out.insert("serverIPs".into(), ips);
    }
    Value::Object(out)
}

fn labels(labels: &HashMap<String, String>) -> Value {
    let sorted: BTreeMap<_, _> = labels.iter().collect();
    json!(sorted)
}

/// `kind/name` of an authorization, from its labels, as `allowedBy` lists them.
fn authz_name(authz: &proto::Authz) -> Value {
    let label = |key: &str| authz.labels.get(key).map_or(UNSET, String::as_str);
    format!("{}/{}", label("kind"), label("name")).into()
}

/// `server_authzs` apply on every route after the route's own (the proxy appends them).
fn protocol(kind: &Kind, server_authzs: &[proto::Authz]) -> Value {
    let http_route = |route: &proto::HttpRoute| http_route(route, server_authzs);
    let grpc_route = |route: &proto::GrpcRoute| grpc_route(route, server_authzs);
    let http = |name: &str, routes: &[proto::HttpRoute], limit| {
        let mut out = Map::new();
        out.insert("kind".into(), name.into());
        out.insert("routes".into(), routes.iter().map(http_route).collect());
        if let Some(limit) = limit {
            out.insert("localRateLimit".into(), rate_limit(limit));
        }
        Value::Object(out)
    };
    match kind {
        Kind::Detect(detect) => {
            let mut out = Map::new();
            out.insert("kind".into(), "detect".into());
            out.insert(
                "timeout".into(),
                detect.timeout.as_ref().map_or(UNSET.into(), duration),
            );
            out.insert(
                "httpRoutes".into(),
                detect.http_routes.iter().map(http_route).collect(),
            );
            if let Some(limit) = &detect.http_local_rate_limit {
                out.insert("httpLocalRateLimit".into(), rate_limit(limit));
            }
            Value::Object(out)
        }
        Kind::Http1(h) => http("http1", &h.routes, h.local_rate_limit.as_ref()),
        Kind::Http2(h) => http("http2", &h.routes, h.local_rate_limit.as_ref()),
        Kind::Grpc(g) => json!({
            "kind": "grpc",
            "routes": g.routes.iter().map(grpc_route).collect::<Vec<_>>(),
        }),
        Kind::Opaque(_) => json!({ "kind": "opaque" }),
        Kind::Tls(_) => json!({ "kind": "tls" }),
    }
}

/// `10s`, `1.5s`, `250ms`; a negative or out-of-range duration as its raw fields.
fn duration(d: &prost_types::Duration) -> Value {
    match std::time::Duration::try_from(*d) {
        Ok(d) => format!("{d:?}").into(),
        Err(_) => format!("invalid ({}s {}ns)", d.seconds, d.nanos).into(),
    }
}

fn rate_limit(limit: &proto::HttpLocalRateLimit) -> Value {
    let rps = |l: &Option<proto::http_local_rate_limit::Limit>| {
        l.as_ref().map(|l| Value::from(l.requests_per_second))
    };
    let mut out = Map::new();
    if let Some(meta) = &limit.metadata {
        out.insert("metadata".into(), metadata(meta));
    }
    if let Some(total) = rps(&limit.total) {
        out.insert("totalRequestsPerSecond".into(), total);
    }
    if let Some(identity) = rps(&limit.identity) {
        out.insert("identityRequestsPerSecond".into(), identity);
    }
    if !limit.overrides.is_empty() {
        let overrides = limit
            .overrides
            .iter()
            .map(|o| {
                let identities: Vec<_> = o
                    .clients
                    .iter()
                    .flat_map(|c| &c.identities)
                    .map(|i| i.name.clone())
                    .collect();
                json!({ "requestsPerSecond": rps(&o.limit), "identities": identities })
            })
            .collect();
        out.insert("overrides".into(), overrides);
    }
    Value::Object(out)
}

fn metadata(meta: &Metadata) -> Value {
    match &meta.kind {
        Some(metadata::Kind::Default(name)) => json!({ "kind": "default", "name": name }),
        Some(metadata::Kind::Resource(r)) => {
            let mut out = Map::new();
            out.insert("group".into(), r.group.clone().into());
            out.insert("kind".into(), r.kind.clone().into());
            out.insert("name".into(), r.name.clone().into());
            if !r.namespace.is_empty() {
                out.insert("namespace".into(), r.namespace.clone().into());
            }
            if !r.section.is_empty() {
                out.insert("section".into(), r.section.clone().into());
            }
            if r.port != 0 {
                out.insert("port".into(), r.port.into());
            }
            Value::Object(out)
        }
        None => UNSET.into(),
    }
}

fn authz(authz: &proto::Authz) -> Value {
    let mut out = Map::new();
    out.insert("labels".into(), labels(&authz.labels));
    if let Some(meta) = &authz.metadata {
        out.insert("metadata".into(), metadata(meta));
    }
    out.insert(
        "networks".into(),
        authz.networks.iter().map(network).collect(),
    );
    out.insert(
        "authentication".into(),
        authz
            .authentication
            .as_ref()
            .and_then(|a| a.permit.as_ref())
            .map_or(UNSET.into(), authentication),
    );
    Value::Object(out)
}

fn cidr(net: &IpNetwork) -> Value {
    match ipnet::IpNet::try_from(*net) {
        Ok(net) => net.to_string().into(),
        Err(_) => "invalid network".into(),
    }
}

fn network(net: &proto::Network) -> Value {
    let mut out = Map::new();
    out.insert("cidr".into(), net.net.as_ref().map_or(UNSET.into(), cidr));
    if !net.except.is_empty() {
        out.insert("except".into(), net.except.iter().map(cidr).collect());
    }
    Value::Object(out)
}

/// `unauthenticated`, `tls-unauthenticated`, or the meshTLS identities and suffixes the
/// clients must have (a suffix as `*.<parts>`, and `*` for any identity).
fn authentication(permit: &Permit) -> Value {
    match permit {
        Permit::Unauthenticated(_) => "unauthenticated".into(),
        Permit::MeshTls(mtls) => match &mtls.clients {
            Some(Clients::Unauthenticated(_)) => "tls-unauthenticated".into(),
            Some(Clients::Identities(ids)) => {
                let identities: Vec<_> = ids.identities.iter().map(|i| i.name.clone()).collect();
                let suffixes: Vec<_> = ids
                    .suffixes
                    .iter()
                    .map(|s| {
                        if s.parts.is_empty() {
                            "*".to_string()
                        } else {
                            format!("*.{}", s.parts.join("."))
                        }
                    })
                    .collect();
                json!({ "meshTLS": { "identities": identities, "suffixes": suffixes } })
            }
            None => json!({ "meshTLS": UNSET }),
        },
    }
}

fn route_common(
    meta: Option<&Metadata>,
    hosts: &[HostMatch],
    authorizations: &[proto::Authz],
    server_authzs: &[proto::Authz],
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("metadata".into(), meta.map_or(UNSET.into(), metadata));
    if !hosts.is_empty() {
        out.insert("hosts".into(), hosts.iter().map(host).collect());
    }
    out.insert(
        "authorizations".into(),
        authorizations.iter().map(authz).collect(),
    );
    out.insert(
        "allowedBy".into(),
        authorizations
            .iter()
            .chain(server_authzs)
            .map(authz_name)
            .collect(),
    );
    out
}

fn http_route(route: &proto::HttpRoute, server_authzs: &[proto::Authz]) -> Value {
    let mut out = route_common(
        route.metadata.as_ref(),
        &route.hosts,
        &route.authorizations,
        server_authzs,
    );
    let rules = route.rules.iter().map(|rule| {
        rule_value(
            rule.matches.iter().map(http_match).collect(),
            rule.filters
                .iter()
                .map(|f| f.kind.as_ref().map_or(UNSET.into(), http_filter))
                .collect(),
        )
    });
    out.insert("rules".into(), rules.collect());
    Value::Object(out)
}

fn grpc_route(route: &proto::GrpcRoute, server_authzs: &[proto::Authz]) -> Value {
    let mut out = route_common(
        route.metadata.as_ref(),
        &route.hosts,
        &route.authorizations,
        server_authzs,
    );
    let rules = route.rules.iter().map(|rule| {
        rule_value(
            rule.matches.iter().map(grpc_match).collect(),
            rule.filters
                .iter()
                .map(|f| f.kind.as_ref().map_or(UNSET.into(), grpc_filter))
                .collect(),
        )
    });
    out.insert("rules".into(), rules.collect());
    Value::Object(out)
}

/// One rule of a route: its matches, and its filters when it has any.
fn rule_value(matches: Vec<Value>, filters: Vec<Value>) -> Value {
    let mut rule = Map::new();
    rule.insert("matches".into(), Value::Array(matches));
    if !filters.is_empty() {
        rule.insert("filters".into(), Value::Array(filters));
    }
    Value::Object(rule)
}

fn host(host: &HostMatch) -> Value {
    match &host.r#match {
        Some(host_match::Match::Exact(name)) => name.clone().into(),
        Some(host_match::Match::Suffix(s)) => {
            let mut labels = s.reverse_labels.clone();
            labels.reverse();
            format!("*.{}", labels.join(".")).into()
        }
        None => UNSET.into(),
    }
}

fn http_match(m: &HttpRouteMatch) -> Value {
    let mut out = Map::new();
    if let Some(path) = m.path.as_ref().and_then(|p| p.kind.as_ref()) {
        let path = match path {
            path_match::Kind::Exact(p) => json!({ "exact": p }),
            path_match::Kind::Prefix(p) => json!({ "prefix": p }),
            path_match::Kind::Regex(p) => json!({ "regex": p }),
        };
        out.insert("path".into(), path);
    }
    if let Some(method) = &m.method {
        out.insert("method".into(), http_method(method));
    }
    if !m.headers.is_empty() {
        out.insert(
            "headers".into(),
            m.headers.iter().map(header_match).collect(),
        );
    }
    if !m.query_params.is_empty() {
        let params = m
            .query_params
            .iter()
            .map(|q| match &q.value {
                Some(query_param_match::Value::Exact(v)) => json!({ "name": q.name, "exact": v }),
                Some(query_param_match::Value::Regex(v)) => json!({ "name": q.name, "regex": v }),
                None => json!({ "name": q.name }),
            })
            .collect();
        out.insert("queryParams".into(), params);
    }
    Value::Object(out)
}

fn http_method(method: &HttpMethod) -> Value {
    match &method.r#type {
        Some(http_method::Type::Registered(code)) => http_method::Registered::try_from(*code)
            .map_or_else(
                |_| format!("unknown method {code}"),
                |m| m.as_str_name().to_string(),
            )
            .into(),
        Some(http_method::Type::Unregistered(name)) => name.clone().into(),
        None => UNSET.into(),
    }
}

fn header_match(h: &HeaderMatch) -> Value {
    match &h.value {
        Some(header_match::Value::Exact(v)) => {
            json!({ "name": h.name, "exact": String::from_utf8_lossy(v) })
        }
        Some(header_match::Value::Regex(v)) => json!({ "name": h.name, "regex": v }),
        None => json!({ "name": h.name }),
    }
}

fn grpc_match(m: &GrpcRouteMatch) -> Value {
    let mut out = Map::new();
    if let Some(rpc) = &m.rpc {
        let part = |s: &str| {
            if s.is_empty() {
                "*".to_string()
            } else {
                s.to_string()
            }
        };
        out.insert(
            "rpc".into(),
            format!("{}/{}", part(&rpc.service), part(&rpc.method)).into(),
        );
    }
    if !m.headers.is_empty() {
        out.insert(
            "headers".into(),
            m.headers.iter().map(header_match).collect(),
        );
    }
    Value::Object(out)
}

fn headers(headers: Option<&linkerd2_proxy_api::http_types::Headers>) -> Value {
    let sorted: BTreeMap<_, _> = headers
        .into_iter()
        .flat_map(|h| &h.headers)
        .map(|h| {
            (
                h.name.clone(),
                String::from_utf8_lossy(&h.value).into_owned(),
            )
        })
        .collect();
    json!(sorted)
}

fn header_modifier(m: &linkerd2_proxy_api::http_route::RequestHeaderModifier) -> Value {
    json!({ "requestHeaderModifier": {
        "add": headers(m.add.as_ref()),
        "set": headers(m.set.as_ref()),
        "remove": m.remove,
    }})
}

fn ratio(r: Option<&linkerd2_proxy_api::http_route::Ratio>) -> Value {
    r.map_or(Value::Null, |r| {
        format!("{}/{}", r.numerator, r.denominator).into()
    })
}

fn http_filter(kind: &proto::http_route::filter::Kind) -> Value {
    use proto::http_route::filter::Kind as F;
    match kind {
        F::FailureInjector(f) => json!({ "failureInjector": {
            "status": f.status, "message": f.message, "ratio": ratio(f.ratio.as_ref()),
        }}),
        F::RequestHeaderModifier(m) => header_modifier(m),
        F::Redirect(r) => {
            let path = r
                .path
                .as_ref()
                .and_then(|p| p.replace.as_ref())
                .map(|p| match p {
                    path_modifier::Replace::Full(p) => json!({ "full": p }),
                    path_modifier::Replace::Prefix(p) => json!({ "prefix": p }),
                });
            json!({ "redirect": {
                "scheme": r.scheme.as_ref().map(|s| format!("{s:?}")),
                "host": r.host, "path": path, "port": r.port, "status": r.status,
            }})
        }
    }
}

fn grpc_filter(kind: &proto::grpc_route::filter::Kind) -> Value {
    use proto::grpc_route::filter::Kind as F;
    match kind {
        F::FailureInjector(f) => json!({ "failureInjector": {
            "code": f.code, "message": f.message, "ratio": ratio(f.ratio.as_ref()),
        }}),
        F::RequestHeaderModifier(m) => header_modifier(m),
    }
}

#[cfg(test)]
mod tests;
