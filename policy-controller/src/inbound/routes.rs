//! HTTPRoutes of the index → the proxy's inbound `HttpRoute` messages: pure functions.
//!
//! The proxy (v2.366 `server-policy` and `http-route` crates) needs, of each route: metadata (it
//! names the route in metrics: `route_group`, `route_kind`, `route_name`), host matches as exact
//! names or reversed suffix labels, path/header/query matches whose regular expressions compile
//! (the validation checks them), and filters among request header modifiers and redirects.

use linkerd2_proxy_api::{
    http_route::{
        header_match, host_match, path_match, path_modifier, query_param_match, HeaderMatch,
        HostMatch, HttpRouteMatch, PathMatch, PathModifier, QueryParamMatch, RequestHeaderModifier,
        RequestRedirect,
    },
    http_types::{headers::Header, http_method, scheme, Headers, HttpMethod, Scheme},
    inbound::{self as proto, http_route::filter},
    meta::{metadata, Metadata, Resource},
};
use weft_policy_index::HttpRoutePolicy;
use weft_policy_k8s_api::{
    http_route::{self as route, NamedMatch, RouteFilter, ValueMatch},
    GATEWAY_GROUP,
};

/// One HTTPRoute of a Server, with `authorizations` (already mapped) of its own.
pub(super) fn to_http_route(
    policy: &HttpRoutePolicy,
    authorizations: Vec<proto::Authz>,
) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(Metadata {
            kind: Some(metadata::Kind::Resource(Resource {
                group: GATEWAY_GROUP.to_string(),
                kind: "HTTPRoute".to_string(),
                name: policy.name.clone(),
                ..Default::default()
            })),
        }),
        hosts: policy.route.hostnames.iter().map(|h| host(h)).collect(),
        authorizations,
        rules: policy
            .route
            .rules
            .iter()
            .map(|rule| proto::http_route::Rule {
                matches: rule.matches.iter().map(route_match).collect(),
                filters: rule.filters.iter().map(route_filter).collect(),
            })
            .collect(),
    }
}

fn host(name: &str) -> HostMatch {
    let kind = match name.strip_prefix("*.") {
        Some(suffix) => host_match::Match::Suffix(host_match::Suffix {
            reverse_labels: suffix.rsplit('.').map(str::to_string).collect(),
        }),
        None => host_match::Match::Exact(name.to_string()),
    };
    HostMatch {
        r#match: Some(kind),
    }
}

fn route_match(m: &route::RouteMatch) -> HttpRouteMatch {
    let path = match &m.path {
        route::PathMatch::Exact(p) => path_match::Kind::Exact(p.clone()),
        route::PathMatch::Prefix(p) => path_match::Kind::Prefix(p.clone()),
        route::PathMatch::Regex(p) => path_match::Kind::Regex(p.clone()),
    };
    HttpRouteMatch {
        path: Some(PathMatch { kind: Some(path) }),
        headers: m.headers.iter().map(header_match).collect(),
        query_params: m.query_params.iter().map(query_param_match).collect(),
        method: m.method.as_deref().map(method),
    }
}

fn header_match(h: &NamedMatch) -> HeaderMatch {
    HeaderMatch {
        name: h.name.clone(),
        value: Some(match &h.value {
            ValueMatch::Exact(v) => header_match::Value::Exact(v.clone().into_bytes()),
            ValueMatch::Regex(v) => header_match::Value::Regex(v.clone()),
        }),
    }
}

fn query_param_match(q: &NamedMatch) -> QueryParamMatch {
    QueryParamMatch {
        name: q.name.clone(),
        value: Some(match &q.value {
            ValueMatch::Exact(v) => query_param_match::Value::Exact(v.clone()),
            ValueMatch::Regex(v) => query_param_match::Value::Regex(v.clone()),
        }),
    }
}

pub(super) fn method(name: &str) -> HttpMethod {
    use http_method::Registered as M;
    let registered = match name {
        "GET" => Some(M::Get),
        "POST" => Some(M::Post),
        "PUT" => Some(M::Put),
        "DELETE" => Some(M::Delete),
        "PATCH" => Some(M::Patch),
        "OPTIONS" => Some(M::Options),
        "CONNECT" => Some(M::Connect),
        "HEAD" => Some(M::Head),
        "TRACE" => Some(M::Trace),
        _ => None,
    };
    HttpMethod {
        r#type: Some(match registered {
            Some(m) => http_method::Type::Registered(m.into()),
            None => http_method::Type::Unregistered(name.to_string()),
        }),
    }
}

fn headers(pairs: &[(String, String)]) -> Option<Headers> {
    if pairs.is_empty() {
        return None;
    }
    Some(Headers {
        headers: pairs
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone().into_bytes(),
            })
            .collect(),
    })
}

fn route_filter(f: &RouteFilter) -> proto::http_route::Filter {
    let kind = match f {
        RouteFilter::RequestHeaderModifier { add, set, remove } => {
            filter::Kind::RequestHeaderModifier(RequestHeaderModifier {
                add: headers(add),
                set: headers(set),
                remove: remove.clone(),
            })
        }
        RouteFilter::RequestRedirect {
            scheme: redirect_scheme,
            hostname,
            path,
            port,
            status_code,
        } => filter::Kind::Redirect(RequestRedirect {
            scheme: redirect_scheme.as_deref().map(|s| Scheme {
                r#type: Some(match s {
                    "http" => scheme::Type::Registered(scheme::Registered::Http.into()),
                    "https" => scheme::Type::Registered(scheme::Registered::Https.into()),
                    other => scheme::Type::Unregistered(other.to_string()),
                }),
            }),
            host: hostname.clone().unwrap_or_default(),
            path: path.as_ref().map(|p| PathModifier {
                replace: Some(match p {
                    route::PathModifier::ReplaceFullPath(full) => {
                        path_modifier::Replace::Full(full.clone())
                    }
                    route::PathModifier::ReplacePrefixMatch(prefix) => {
                        path_modifier::Replace::Prefix(prefix.clone())
                    }
                }),
            }),
            port: port.map(u32::from).unwrap_or_default(),
            status: u32::from(*status_code),
        }),
    };
    proto::http_route::Filter { kind: Some(kind) }
}
