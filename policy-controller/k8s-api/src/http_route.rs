//! Gateway API `HTTPRoute`s (`gateway.networking.k8s.io/v1`) attached to Weft Servers: which
//! Servers a route names as parents, and the route checked and reduced to what the proxy's
//! inbound routes carry (hostnames, matches, request header modifiers and redirects).
//!
//! A route without a Weft Server among its parents belongs to another implementation (a Gateway,
//! a Service mesh parent) and is left alone. For a route with one, everything the proxy could not
//! enforce is refused rather than silently dropped: a filter it does not have, an invalid regular
//! expression (the proxy would refuse the whole port's policy), a parent section or port.
//! `backendRefs` and `timeouts` do not apply to inbound traffic and are ignored.

use gateway_api::apis::standard::httproutes::{
    HTTPRouteRules, HTTPRouteRulesFilters, HTTPRouteRulesFiltersRequestRedirectPathType,
    HTTPRouteRulesFiltersRequestRedirectScheme, HTTPRouteRulesFiltersType, HTTPRouteRulesMatches,
    HTTPRouteRulesMatchesHeadersType, HTTPRouteRulesMatchesMethod, HTTPRouteRulesMatchesPathType,
    HTTPRouteRulesMatchesQueryParamsType, HTTPRouteSpec,
};
use serde::{Deserialize, Serialize};

use crate::{FieldError, GROUP};

pub use gateway_api::apis::standard::httproutes::HTTPRoute;

/// A route as a Server's proxy applies it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerRoute {
    /// Host names (`*.example.com` for a suffix); empty: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    pub rules: Vec<RouteRule>,
}

/// Requests matching any of `matches` get `filters` applied.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    pub matches: Vec<RouteMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<RouteFilter>,
}

/// A request matches when all of its parts do.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    pub path: PathMatch,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<NamedMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<NamedMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// A header or query parameter `name` whose value matches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NamedMatch {
    pub name: String,
    pub value: ValueMatch,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ValueMatch {
    Exact(String),
    Regex(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RouteFilter {
    RequestHeaderModifier {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        set: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    RequestRedirect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheme: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostname: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathModifier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        /// 301 or 302.
        status_code: u16,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PathModifier {
    ReplaceFullPath(String),
    ReplacePrefixMatch(String),
}

/// The names of the Weft Servers (in the route's namespace) among a route's parents.
pub fn server_parents(spec: &HTTPRouteSpec, route_namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = spec
        .parent_refs
        .iter()
        .flatten()
        .filter(|p| is_server_parent(p.group.as_deref(), p.kind.as_deref()))
        .filter(|p| {
            p.namespace
                .as_deref()
                .is_none_or(|ns| ns == route_namespace)
        })
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn is_server_parent(group: Option<&str>, kind: Option<&str>) -> bool {
    group == Some(GROUP) && kind == Some("Server")
}

/// Checks a route that has a Weft Server among its parents and reduces it to what the proxy
/// applies. Field paths are rooted at `spec`.
pub fn server_route(
    spec: &HTTPRouteSpec,
    route_namespace: &str,
) -> Result<ServerRoute, FieldError> {
    for (i, parent) in spec.parent_refs.iter().flatten().enumerate() {
        if !is_server_parent(parent.group.as_deref(), parent.kind.as_deref()) {
            continue;
        }
        let at = format!("spec.parentRefs[{i}]");
        if parent.name.is_empty() {
            return Err(FieldError::new(format!("{at}.name"), "must not be empty"));
        }
        if parent
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != route_namespace)
        {
            return Err(FieldError::new(
                format!("{at}.namespace"),
                "a Server parent must be in the route's namespace (omit namespace)",
            ));
        }
        if parent.section_name.is_some() || parent.port.is_some() {
            return Err(FieldError::new(
                at,
                "sectionName and port are not supported for a Server parent: the route applies \
                 to every port the Server describes",
            ));
        }
    }
    let hostnames = spec.hostnames.clone().unwrap_or_default();
    for (i, host) in hostnames.iter().enumerate() {
        check_hostname(host).map_err(|m| FieldError::new(format!("spec.hostnames[{i}]"), m))?;
    }
    let rules = match spec.rules.as_deref() {
        None | Some([]) => vec![RouteRule {
            matches: vec![match_all()],
            filters: Vec::new(),
        }],
        Some(rules) => rules
            .iter()
            .enumerate()
            .map(|(i, rule)| route_rule(rule, &format!("spec.rules[{i}]")))
            .collect::<Result<_, _>>()?,
    };
    Ok(ServerRoute { hostnames, rules })
}

fn match_all() -> RouteMatch {
    RouteMatch {
        path: PathMatch::Prefix("/".to_string()),
        headers: Vec::new(),
        query_params: Vec::new(),
        method: None,
    }
}

fn route_rule(rule: &HTTPRouteRules, at: &str) -> Result<RouteRule, FieldError> {
    let matches = match rule.matches.as_deref() {
        None | Some([]) => vec![match_all()],
        Some(matches) => matches
            .iter()
            .enumerate()
            .map(|(i, m)| route_match(m, &format!("{at}.matches[{i}]")))
            .collect::<Result<_, _>>()?,
    };
    let filters = rule
        .filters
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, f)| route_filter(f, &format!("{at}.filters[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(RouteRule { matches, filters })
}

fn route_match(m: &HTTPRouteRulesMatches, at: &str) -> Result<RouteMatch, FieldError> {
    let path = match &m.path {
        None => PathMatch::Prefix("/".to_string()),
        Some(path) => {
            let value = path.value.clone().unwrap_or_else(|| "/".to_string());
            let field = || format!("{at}.path.value");
            match path
                .r#type
                .clone()
                .unwrap_or(HTTPRouteRulesMatchesPathType::PathPrefix)
            {
                HTTPRouteRulesMatchesPathType::Exact
                | HTTPRouteRulesMatchesPathType::PathPrefix
                    if !value.starts_with('/') =>
                {
                    return Err(FieldError::new(
                        field(),
                        format!("{value:?} is not a path: it must start with \"/\""),
                    ))
                }
                HTTPRouteRulesMatchesPathType::Exact => PathMatch::Exact(value),
                HTTPRouteRulesMatchesPathType::PathPrefix => PathMatch::Prefix(value),
                HTTPRouteRulesMatchesPathType::RegularExpression => {
                    check_regex(&value).map_err(|m| FieldError::new(field(), m))?;
                    PathMatch::Regex(value)
                }
            }
        }
    };
    let headers = m
        .headers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, h)| {
            let regex = matches!(
                h.r#type,
                Some(HTTPRouteRulesMatchesHeadersType::RegularExpression)
            );
            named_match(
                &h.name,
                &h.value,
                regex,
                &format!("{at}.headers[{i}]"),
                true,
            )
        })
        .collect::<Result<_, _>>()?;
    let query_params = m
        .query_params
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, q)| {
            let regex = matches!(
                q.r#type,
                Some(HTTPRouteRulesMatchesQueryParamsType::RegularExpression)
            );
            named_match(
                &q.name,
                &q.value,
                regex,
                &format!("{at}.queryParams[{i}]"),
                false,
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(RouteMatch {
        path,
        headers,
        query_params,
        method: m.method.as_ref().map(method_name),
    })
}

fn method_name(method: &HTTPRouteRulesMatchesMethod) -> String {
    use HTTPRouteRulesMatchesMethod::*;
    match method {
        Get => "GET",
        Head => "HEAD",
        Post => "POST",
        Put => "PUT",
        Delete => "DELETE",
        Connect => "CONNECT",
        Options => "OPTIONS",
        Trace => "TRACE",
        Patch => "PATCH",
    }
    .to_string()
}

fn named_match(
    name: &str,
    value: &str,
    regex: bool,
    at: &str,
    is_header: bool,
) -> Result<NamedMatch, FieldError> {
    if is_header {
        check_header_name(name).map_err(|m| FieldError::new(format!("{at}.name"), m))?;
    } else if name.is_empty() {
        return Err(FieldError::new(format!("{at}.name"), "must not be empty"));
    }
    let value = if regex {
        check_regex(value).map_err(|m| FieldError::new(format!("{at}.value"), m))?;
        ValueMatch::Regex(value.to_string())
    } else {
        ValueMatch::Exact(value.to_string())
    };
    Ok(NamedMatch {
        name: name.to_string(),
        value,
    })
}

fn route_filter(filter: &HTTPRouteRulesFilters, at: &str) -> Result<RouteFilter, FieldError> {
    let missing = |field: &str| {
        FieldError::new(
            format!("{at}.{field}"),
            format!("is required for type {:?}", filter.r#type),
        )
    };
    match filter.r#type {
        HTTPRouteRulesFiltersType::RequestHeaderModifier => {
            let m = filter
                .request_header_modifier
                .as_ref()
                .ok_or_else(|| missing("requestHeaderModifier"))?;
            let at = format!("{at}.requestHeaderModifier");
            let pairs = |field: &str, headers: Vec<(String, String)>| {
                for (i, (name, value)) in headers.iter().enumerate() {
                    let at = format!("{at}.{field}[{i}]");
                    check_header_name(name)
                        .map_err(|m| FieldError::new(format!("{at}.name"), m))?;
                    check_header_value(value)
                        .map_err(|m| FieldError::new(format!("{at}.value"), m))?;
                }
                Ok::<_, FieldError>(headers)
            };
            let add = pairs(
                "add",
                m.add
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            )?;
            let set = pairs(
                "set",
                m.set
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            )?;
            let remove = m.remove.clone().unwrap_or_default();
            for (i, name) in remove.iter().enumerate() {
                check_header_name(name)
                    .map_err(|m| FieldError::new(format!("{at}.remove[{i}]"), m))?;
            }
            Ok(RouteFilter::RequestHeaderModifier { add, set, remove })
        }
        HTTPRouteRulesFiltersType::RequestRedirect => {
            let r = filter
                .request_redirect
                .as_ref()
                .ok_or_else(|| missing("requestRedirect"))?;
            let at = format!("{at}.requestRedirect");
            let port = match r.port {
                None => None,
                Some(port) => Some(u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(
                    || {
                        FieldError::new(
                            format!("{at}.port"),
                            format!("{port} is not a port (1-65535)"),
                        )
                    },
                )?),
            };
            let status_code = match r.status_code.unwrap_or(302) {
                301 => 301,
                302 => 302,
                other => {
                    return Err(FieldError::new(
                        format!("{at}.statusCode"),
                        format!("{other} is not a redirect status Weft supports (301 or 302)"),
                    ))
                }
            };
            if let Some(host) = &r.hostname {
                check_hostname(host).map_err(|m| FieldError::new(format!("{at}.hostname"), m))?;
            }
            let path = match &r.path {
                None => None,
                Some(p) => {
                    let (value, field) = match p.r#type {
                        HTTPRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath => {
                            (p.replace_full_path.clone(), "replaceFullPath")
                        }
                        HTTPRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch => {
                            (p.replace_prefix_match.clone(), "replacePrefixMatch")
                        }
                    };
                    let value = value.ok_or_else(|| {
                        FieldError::new(
                            format!("{at}.path.{field}"),
                            format!("is required for type {:?}", p.r#type),
                        )
                    })?;
                    if !value.starts_with('/') {
                        return Err(FieldError::new(
                            format!("{at}.path.{field}"),
                            format!("{value:?} is not a path: it must start with \"/\""),
                        ));
                    }
                    Some(match p.r#type {
                        HTTPRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath => {
                            PathModifier::ReplaceFullPath(value)
                        }
                        HTTPRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch => {
                            PathModifier::ReplacePrefixMatch(value)
                        }
                    })
                }
            };
            Ok(RouteFilter::RequestRedirect {
                scheme: r.scheme.as_ref().map(|s| {
                    match s {
                        HTTPRouteRulesFiltersRequestRedirectScheme::Http => "http",
                        HTTPRouteRulesFiltersRequestRedirectScheme::Https => "https",
                    }
                    .to_string()
                }),
                hostname: r.hostname.clone(),
                path,
                port,
                status_code,
            })
        }
        ref other => Err(FieldError::new(
            format!("{at}.type"),
            format!(
                "{other:?} is not a filter the proxy applies to inbound requests (accepted: \
                 RequestHeaderModifier, RequestRedirect)"
            ),
        )),
    }
}

/// The proxy compiles route regular expressions with the `regex` crate, and refuses the whole
/// port's policy if one does not compile; so must we.
fn check_regex(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(drop)
        .map_err(|e| format!("{pattern:?} is not a valid regular expression: {e}"))
}

/// An HTTP header name: one or more token characters (RFC 9110).
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "{name:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    Ok(())
}

fn check_header_value(value: &str) -> Result<(), String> {
    if value
        .chars()
        .any(|c| (c.is_ascii_control() && c != '\t') || !c.is_ascii())
    {
        return Err(format!(
            "{value:?} is not an HTTP header value (visible ASCII, spaces and tabs)"
        ));
    }
    Ok(())
}

/// A DNS name, or `*.` followed by one (a suffix match); no IP addresses, no port.
fn check_hostname(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty()
        || name.len() > 253
        || !name.split('.').all(label_ok)
        || name.parse::<std::net::IpAddr>().is_ok()
    {
        return Err(format!(
            "{host:?} is not a host name (e.g. \"shop.example.com\" or \"*.example.com\")"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
