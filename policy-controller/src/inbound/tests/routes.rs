//! HTTPRoutes and AuthorizationPolicies in the proxy's messages.

use super::mapping::{
    assert_acceptable_to_the_proxy, authz, http_routes, net, permit, route_name, server_policy,
    settings,
};
use crate::inbound::mapping::to_server;
use linkerd2_proxy_api::{
    http_route::{
        header_match, host_match, path_match, path_modifier, query_param_match, HeaderMatch,
        HostMatch, QueryParamMatch,
    },
    http_types::{http_method, scheme},
    inbound::{
        authn::{permit_mesh_tls::Clients, Permit},
        http_route::filter,
    },
    meta::metadata,
};
use serde_json::json;
use weft_policy_index::{Authentication, HttpRoutePolicy, NetworkMatch, ServiceAccount};
use weft_policy_k8s_api::{http_route::ServerRoute, Cidr, ProxyProtocol};

fn route(name: &str, route: serde_json::Value) -> HttpRoutePolicy {
    HttpRoutePolicy {
        name: name.into(),
        route: serde_json::from_value::<ServerRoute>(route).unwrap().into(),
        authorizations: Vec::new(),
    }
}

#[test]
fn routes_replace_the_default_route_and_carry_their_authorizations() {
    let mut refunds = route(
        "refunds",
        json!({"rules": [{"matches": [{"path": {"prefix": "/refunds"}, "method": "POST"}]}]}),
    );
    refunds.authorizations = vec![authz(
        "AuthorizationPolicy/refunds-billing",
        NetworkMatch::all(),
        Authentication::MeshTls {
            identities: vec![],
            service_accounts: vec![ServiceAccount {
                name: "billing".into(),
                namespace: "shop".into(),
            }],
        },
    )];
    let mut policy = server_policy(ProxyProtocol::Http1, vec![]);
    policy.http_routes = vec![
        route(
            "health",
            json!({"rules": [{"matches": [{"path": {"exact": "/health"}, "method": "GET"}]}]}),
        ),
        refunds,
    ];
    policy.probe_paths = vec!["/ready".into()];
    let server = to_server(&policy, &settings());
    assert_acceptable_to_the_proxy(&server);
    let routes = http_routes(&server);
    let names: Vec<_> = routes.iter().map(route_name).collect();
    assert_eq!(names, ["health", "refunds", "probe"], "no default route");

    let metadata::Kind::Resource(resource) =
        routes[1].metadata.as_ref().unwrap().kind.as_ref().unwrap()
    else {
        panic!("an HTTPRoute is a resource in the proxy's metrics")
    };
    assert_eq!(
        (
            resource.group.as_str(),
            resource.kind.as_str(),
            resource.name.as_str()
        ),
        ("gateway.networking.k8s.io", "HTTPRoute", "refunds")
    );
    assert!(routes[0].authorizations.is_empty());
    let authz = &routes[1].authorizations[0];
    assert_eq!(authz.labels["kind"], "authorizationpolicy");
    assert_eq!(authz.labels["group"], "policy.weft.dev");
    assert_eq!(authz.labels["name"], "refunds-billing");
    let Permit::MeshTls(tls) = permit(authz) else {
        panic!("mesh TLS expected")
    };
    let Some(Clients::Identities(ids)) = &tls.clients else {
        panic!("identities expected")
    };
    assert_eq!(
        ids.identities[0].name,
        "billing.shop.serviceaccount.identity.weft.cluster.local"
    );

    let rule = &routes[1].rules[0];
    let m = &rule.matches[0];
    assert_eq!(
        m.path.as_ref().unwrap().kind,
        Some(path_match::Kind::Prefix("/refunds".into()))
    );
    assert_eq!(
        m.method.as_ref().unwrap().r#type,
        Some(http_method::Type::Registered(
            http_method::Registered::Post.into()
        ))
    );
}

#[test]
fn matches_hosts_and_filters_table() {
    let mut policy = server_policy(ProxyProtocol::Unknown, vec![]);
    policy.http_routes = vec![route(
        "r",
        json!({
            "hostnames": ["shop.example.com", "*.example.com"],
            "rules": [{
                "matches": [{
                    "path": {"regex": "/items/[0-9]+"},
                    "headers": [{"name": "x-a", "value": {"exact": "1"}}, {"name": "x-b", "value": {"regex": "v.*"}}],
                    "queryParams": [{"name": "q", "value": {"exact": "x"}}, {"name": "r", "value": {"regex": "y+"}}],
                    "method": "PURGE",
                }],
                "filters": [
                    {"requestHeaderModifier": {"add": [["x-add", "1"]], "remove": ["x-rm"]}},
                    {"requestRedirect": {"scheme": "https", "hostname": "new.example.com", "port": 8443,
                        "path": {"replacePrefixMatch": "/v2"}, "statusCode": 301}},
                ],
            }],
        }),
    )];
    let server = to_server(&policy, &settings());
    assert_acceptable_to_the_proxy(&server);
    let r = &http_routes(&server)[0];
    assert_eq!(
        r.hosts,
        [
            HostMatch {
                r#match: Some(host_match::Match::Exact("shop.example.com".into()))
            },
            HostMatch {
                r#match: Some(host_match::Match::Suffix(host_match::Suffix {
                    reverse_labels: vec!["com".into(), "example".into()]
                }))
            },
        ]
    );
    let m = &r.rules[0].matches[0];
    assert_eq!(
        m.path.as_ref().unwrap().kind,
        Some(path_match::Kind::Regex("/items/[0-9]+".into()))
    );
    assert_eq!(
        m.headers,
        [
            HeaderMatch {
                name: "x-a".into(),
                value: Some(header_match::Value::Exact(b"1".to_vec()))
            },
            HeaderMatch {
                name: "x-b".into(),
                value: Some(header_match::Value::Regex("v.*".into()))
            },
        ]
    );
    assert_eq!(
        m.query_params,
        [
            QueryParamMatch {
                name: "q".into(),
                value: Some(query_param_match::Value::Exact("x".into()))
            },
            QueryParamMatch {
                name: "r".into(),
                value: Some(query_param_match::Value::Regex("y+".into()))
            },
        ]
    );
    assert_eq!(
        m.method.as_ref().unwrap().r#type,
        Some(http_method::Type::Unregistered("PURGE".into()))
    );
    let filters = &r.rules[0].filters;
    let Some(filter::Kind::RequestHeaderModifier(modifier)) = &filters[0].kind else {
        panic!("header modifier expected")
    };
    assert_eq!(modifier.add.as_ref().unwrap().headers[0].name, "x-add");
    assert_eq!(modifier.add.as_ref().unwrap().headers[0].value, b"1");
    assert!(modifier.set.is_none());
    assert_eq!(modifier.remove, ["x-rm"]);
    let Some(filter::Kind::Redirect(redirect)) = &filters[1].kind else {
        panic!("redirect expected")
    };
    assert_eq!(
        redirect.scheme.as_ref().unwrap().r#type,
        Some(scheme::Type::Registered(scheme::Registered::Https.into()))
    );
    assert_eq!(redirect.host, "new.example.com");
    assert_eq!(redirect.port, 8443);
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.path.as_ref().unwrap().replace,
        Some(path_modifier::Replace::Prefix("/v2".into()))
    );
}

#[test]
fn routes_are_not_sent_for_grpc_or_opaque_ports() {
    for protocol in [
        ProxyProtocol::Grpc,
        ProxyProtocol::Opaque,
        ProxyProtocol::Tls,
    ] {
        let mut policy = server_policy(protocol, vec![]);
        // The index attaches routes only to HTTP Servers; even so the mapping has no place for
        // them on these protocols.
        policy.http_routes = vec![route("r", json!({"rules": []}))];
        let server = to_server(&policy, &settings());
        assert_acceptable_to_the_proxy(&server);
        assert!(http_routes(&server).is_empty(), "{protocol:?}");
    }
}

#[test]
fn a_namespace_wide_service_account_is_an_identity_suffix() {
    let policy = server_policy(
        ProxyProtocol::Http2,
        vec![authz(
            "AuthorizationPolicy/ops",
            vec![NetworkMatch {
                cidr: Cidr(net("10.0.0.0/8")),
                except: vec![],
            }],
            Authentication::MeshTls {
                identities: vec![],
                service_accounts: vec![
                    ServiceAccount {
                        name: "*".into(),
                        namespace: "ops".into(),
                    },
                    ServiceAccount {
                        name: "api".into(),
                        namespace: "shop".into(),
                    },
                ],
            },
        )],
    );
    let server = to_server(&policy, &settings());
    assert_acceptable_to_the_proxy(&server);
    let Permit::MeshTls(tls) = permit(&server.authorizations[0]) else {
        panic!("mesh TLS expected")
    };
    let Some(Clients::Identities(ids)) = &tls.clients else {
        panic!("identities expected")
    };
    assert_eq!(
        ids.suffixes[0].parts,
        [
            "ops",
            "serviceaccount",
            "identity",
            "weft",
            "cluster",
            "local"
        ]
    );
    assert_eq!(
        ids.identities[0].name,
        "api.shop.serviceaccount.identity.weft.cluster.local"
    );
    assert_eq!(
        server.authorizations[0].labels["kind"],
        "authorizationpolicy"
    );
}
