#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{json, Value};

fn spec(value: Value) -> HTTPRouteSpec {
    serde_json::from_value(value).unwrap()
}

fn server_parent() -> Value {
    json!([{"group": "policy.weft.dev", "kind": "Server", "name": "web"}])
}

fn route(rules: Value) -> Result<ServerRoute, String> {
    server_route(
        &spec(json!({"parentRefs": server_parent(), "rules": rules})),
        "shop",
    )
    .map_err(|e| e.to_string())
}

#[test]
fn server_parents_are_weft_servers_in_the_namespace() {
    let s = spec(json!({"parentRefs": [
        {"group": "policy.weft.dev", "kind": "Server", "name": "web"},
        {"group": "policy.weft.dev", "kind": "Server", "name": "api", "namespace": "shop"},
        {"group": "policy.weft.dev", "kind": "Server", "name": "web"},
        {"group": "policy.weft.dev", "kind": "Server", "name": "elsewhere", "namespace": "ops"},
        {"name": "public-gateway"},
        {"group": "", "kind": "Service", "name": "web"},
        {"kind": "Server", "name": "no-group"},
    ]}));
    assert_eq!(server_parents(&s, "shop"), ["api", "web"]);
    assert!(server_parents(&spec(json!({})), "shop").is_empty());
}

#[test]
fn no_rules_or_matches_match_everything() {
    let all = RouteRule {
        matches: vec![match_all()],
        filters: vec![],
    };
    assert_eq!(route(json!([])).unwrap().rules, vec![all.clone()]);
    assert_eq!(route(json!([{}])).unwrap().rules, vec![all.clone()]);
    assert_eq!(route(json!([{"matches": [{}]}])).unwrap().rules, vec![all]);
}

#[test]
fn matches_table() {
    let got = route(json!([{"matches": [
        {"path": {"type": "Exact", "value": "/health"}, "method": "GET"},
        {"path": {"type": "PathPrefix", "value": "/refunds"}, "method": "POST",
         "headers": [{"name": "x-tenant", "value": "a"}, {"type": "RegularExpression", "name": "x-v", "value": "v[0-9]+"}],
         "queryParams": [{"name": "dry", "value": "1"}]},
        {"path": {"type": "RegularExpression", "value": "/items/[0-9]+"}},
    ]}]))
    .unwrap();
    let matches = &got.rules[0].matches;
    assert_eq!(
        matches[0],
        RouteMatch {
            path: PathMatch::Exact("/health".into()),
            headers: vec![],
            query_params: vec![],
            method: Some("GET".into()),
        }
    );
    assert_eq!(
        matches[1],
        RouteMatch {
            path: PathMatch::Prefix("/refunds".into()),
            headers: vec![
                NamedMatch {
                    name: "x-tenant".into(),
                    value: ValueMatch::Exact("a".into())
                },
                NamedMatch {
                    name: "x-v".into(),
                    value: ValueMatch::Regex("v[0-9]+".into())
                },
            ],
            query_params: vec![NamedMatch {
                name: "dry".into(),
                value: ValueMatch::Exact("1".into())
            }],
            method: Some("POST".into()),
        }
    );
    assert_eq!(matches[2].path, PathMatch::Regex("/items/[0-9]+".into()));
}

#[test]
fn refusals_table() {
    let cases = [
        (
            json!([{"matches": [{"path": {"type": "Exact", "value": "health"}}]}]),
            "spec.rules[0].matches[0].path.value: \"health\" is not a path: it must start with \"/\"",
        ),
        (
            json!([{"matches": [{"path": {"type": "RegularExpression", "value": "/a[("}}]}]),
            "spec.rules[0].matches[0].path.value: \"/a[(\" is not a valid regular expression",
        ),
        (
            json!([{}, {"matches": [{"headers": [{"name": "bad name", "value": "x"}]}]}]),
            "spec.rules[1].matches[0].headers[0].name: \"bad name\" is not an HTTP header name",
        ),
        (
            json!([{"matches": [{"queryParams": [{"type": "RegularExpression", "name": "q", "value": "("}]}]}]),
            "spec.rules[0].matches[0].queryParams[0].value: \"(\" is not a valid regular expression",
        ),
        (
            json!([{"filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]}]),
            "spec.rules[0].filters[0].type: UrlRewrite is not a filter the proxy applies to inbound requests (accepted: RequestHeaderModifier, RequestRedirect)",
        ),
        (
            json!([{"filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {}}]}]),
            "spec.rules[0].filters[0].type: ResponseHeaderModifier is not a filter",
        ),
        (
            json!([{"filters": [{"type": "RequestHeaderModifier"}]}]),
            "spec.rules[0].filters[0].requestHeaderModifier: is required for type RequestHeaderModifier",
        ),
        (
            json!([{"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "a\nb"}]}}]}]),
            "spec.rules[0].filters[0].requestHeaderModifier.set[0].value: \"a\\nb\" is not an HTTP header value",
        ),
        (
            json!([{"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}]}]),
            "spec.rules[0].filters[0].requestRedirect.statusCode: 307 is not a redirect status Weft supports (301 or 302)",
        ),
        (
            json!([{"filters": [{"type": "RequestRedirect", "requestRedirect": {"port": 70000}}]}]),
            "spec.rules[0].filters[0].requestRedirect.port: 70000 is not a port (1-65535)",
        ),
        (
            json!([{"filters": [{"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath"}}}]}]),
            "spec.rules[0].filters[0].requestRedirect.path.replaceFullPath: is required for type ReplaceFullPath",
        ),
    ];
    for (rules, want) in cases {
        let got = route(rules.clone()).unwrap_err();
        assert!(got.starts_with(want), "{rules}:\n got {got}\nwant {want}");
    }
}

#[test]
fn parent_and_hostname_refusals() {
    let check = |value: Value| server_route(&spec(value), "shop").map_err(|e| e.to_string());
    assert_eq!(
        check(json!({"parentRefs": [{"group": "policy.weft.dev", "kind": "Server", "name": "web", "port": 80}]}))
            .unwrap_err(),
        "spec.parentRefs[0]: sectionName and port are not supported for a Server parent: the route applies to every port the Server describes"
    );
    assert_eq!(
        check(json!({"parentRefs": [{"name": "gw", "port": 80}, {"group": "policy.weft.dev", "kind": "Server", "name": "web", "namespace": "ops"}]}))
            .unwrap_err(),
        "spec.parentRefs[1].namespace: a Server parent must be in the route's namespace (omit namespace)"
    );
    assert!(
        check(json!({"parentRefs": server_parent(), "hostnames": ["10.0.0.1"]}))
            .unwrap_err()
            .starts_with("spec.hostnames[0]: \"10.0.0.1\" is not a host name")
    );
    assert_eq!(
        check(json!({"parentRefs": server_parent(), "hostnames": ["*.example.com", "shop.example.com"]}))
            .unwrap()
            .hostnames,
        ["*.example.com", "shop.example.com"]
    );
}

#[test]
fn filters_table() {
    let got = route(json!([{"filters": [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "add": [{"name": "x-a", "value": "1"}], "set": [{"name": "x-s", "value": "2"}], "remove": ["x-r"]}},
        {"type": "RequestRedirect", "requestRedirect": {
            "scheme": "https", "hostname": "shop.example.com", "port": 8443, "statusCode": 301,
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
        {"type": "RequestRedirect", "requestRedirect": {}},
    ]}]))
    .unwrap();
    assert_eq!(
        got.rules[0].filters,
        vec![
            RouteFilter::RequestHeaderModifier {
                add: vec![("x-a".into(), "1".into())],
                set: vec![("x-s".into(), "2".into())],
                remove: vec!["x-r".into()],
            },
            RouteFilter::RequestRedirect {
                scheme: Some("https".into()),
                hostname: Some("shop.example.com".into()),
                path: Some(PathModifier::ReplacePrefixMatch("/v2".into())),
                port: Some(8443),
                status_code: 301,
            },
            RouteFilter::RequestRedirect {
                scheme: None,
                hostname: None,
                path: None,
                port: None,
                status_code: 302,
            },
        ]
    );
}
