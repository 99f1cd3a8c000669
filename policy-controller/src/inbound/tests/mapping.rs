use super::super::mapping::*;
use ipnet::IpNet;
use linkerd2_proxy_api::{
    http_route::{path_match, PathMatch},
    inbound::{
        self as proto,
        authn::{permit_mesh_tls::Clients, Permit},
        proxy_protocol::Kind,
    },
    meta::{metadata, Metadata, Resource},
    net::IpNetwork,
};
use std::{collections::HashMap, time::Duration};
use weft_policy_index::{
    Authentication, Authorization, ClusterSettings, DefaultPolicy, InboundPolicy, NetworkMatch,
    ServerRef, ServiceAccount,
};
use weft_policy_k8s_api::{Cidr, ProxyProtocol};

pub(super) fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Cluster settings with `networks` and `mesh` (the rest does not matter to the mapping).
fn cluster_settings(networks: Vec<IpNet>, mesh: weft_core::Mesh) -> ClusterSettings {
    ClusterSettings {
        mesh,
        cluster_domain: "cluster.local".to_string(),
        default_opaque_ports: weft_core::PortList::default(),
        default_policy: DefaultPolicy::AllUnauthenticated,
        cluster_networks: networks,
    }
}

pub(super) fn settings() -> InboundSettings {
    InboundSettings::new(&cluster_settings(
        vec![net("10.0.0.0/8"), net("fd00::/8")],
        weft_core::Mesh::new("weft", "cluster.local"),
    ))
    .unwrap()
}

fn labels(group: &str, kind: &str, name: &str) -> HashMap<String, String> {
    [("group", group), ("kind", kind), ("name", name)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn server_policy(
    protocol: ProxyProtocol,
    authorizations: Vec<Authorization>,
) -> InboundPolicy {
    InboundPolicy {
        server: ServerRef::Server { name: "web".into() },
        protocol,
        authorizations,
        http_routes: Vec::new(),
        probe_paths: Vec::new(),
    }
}

pub(super) fn authz(
    name: &str,
    networks: Vec<NetworkMatch>,
    authentication: Authentication,
) -> Authorization {
    Authorization {
        name: name.into(),
        networks,
        authentication,
    }
}

fn kind(server: &proto::Server) -> &Kind {
    server.protocol.as_ref().unwrap().kind.as_ref().unwrap()
}

pub(super) fn http_routes(server: &proto::Server) -> &[proto::HttpRoute] {
    match kind(server) {
        Kind::Detect(d) => &d.http_routes,
        Kind::Http1(h) => &h.routes,
        Kind::Http2(h) => &h.routes,
        _ => &[],
    }
}

pub(super) fn route_name(route: &proto::HttpRoute) -> &str {
    match route.metadata.as_ref().unwrap().kind.as_ref().unwrap() {
        metadata::Kind::Default(name) => name,
        metadata::Kind::Resource(r) => &r.name,
    }
}

fn ipnet(network: &IpNetwork) -> IpNet {
    IpNet::try_from(*network).unwrap()
}

fn nets(networks: &[proto::Network]) -> Vec<(IpNet, Vec<IpNet>)> {
    networks
        .iter()
        .map(|n| {
            (
                ipnet(n.net.as_ref().unwrap()),
                n.except.iter().map(ipnet).collect(),
            )
        })
        .collect()
}

pub(super) fn permit(authz: &proto::Authz) -> &Permit {
    authz
        .authentication
        .as_ref()
        .unwrap()
        .permit
        .as_ref()
        .unwrap()
}

/// The checks by which the proxy refuses a message and fails every request on the port.
pub(super) fn assert_acceptable_to_the_proxy(server: &proto::Server) {
    assert!(server.labels.contains_key("name"), "labels: {server:?}");
    if let Kind::Detect(d) = kind(server) {
        assert!(d.timeout.is_some(), "detect without timeout");
    }
    let route_authzs = http_routes(server).iter().flat_map(|r| {
        assert!(r.metadata.is_some(), "route without metadata");
        &r.authorizations
    });
    for authz in server.authorizations.iter().chain(route_authzs) {
        assert!(!authz.networks.is_empty(), "authorization without networks");
        assert!(authz.networks.iter().all(|n| n.net.is_some()));
        permit(authz);
        assert!(authz.labels.contains_key("name"));
    }
}

#[test]
fn server_labels_name_the_server_or_the_default_policy() {
    let server = to_server(&server_policy(ProxyProtocol::Http1, vec![]), &settings());
    assert_eq!(server.labels, labels("policy.weft.dev", "server", "web"));
    let cluster = ClusterSettings {
        mesh: weft_core::Mesh::new("weft", "cluster.local"),
        cluster_domain: "cluster.local".to_string(),
        default_opaque_ports: weft_core::PortList::default(),
        default_policy: DefaultPolicy::Deny,
        cluster_networks: vec![net("10.0.0.0/8")],
    };
    for policy in DefaultPolicy::ALL {
        let server = to_server(&InboundPolicy::default_for(policy, &cluster), &settings());
        assert_eq!(server.labels, labels("", "default", policy.as_str()));
        assert_acceptable_to_the_proxy(&server);
    }
}

#[test]
fn each_protocol() {
    let default_route = |server: &proto::Server| {
        let routes = http_routes(server);
        assert_eq!(routes.len(), 1);
        assert_eq!(route_name(&routes[0]), "default");
        assert!(
            routes[0].authorizations.is_empty(),
            "the proxy appends the port's authorizations to every route"
        );
        let rule = &routes[0].rules[0];
        assert_eq!(
            rule.matches[0].path,
            Some(PathMatch {
                kind: Some(path_match::Kind::Prefix("/".into()))
            })
        );
        assert_eq!(rule.matches[0].method, None);
    };
    let one_second = prost_types::Duration {
        seconds: 1,
        nanos: 0,
    };
    for (protocol, expected) in [
        (ProxyProtocol::Unknown, "detect"),
        (ProxyProtocol::Http1, "http1"),
        (ProxyProtocol::Http2, "http2"),
        (ProxyProtocol::Grpc, "grpc"),
        (ProxyProtocol::Opaque, "opaque"),
        (ProxyProtocol::Tls, "tls"),
    ] {
        let settings = settings()
            .with_detect_timeout(Duration::from_secs(1))
            .unwrap();
        let server = to_server(&server_policy(protocol, vec![]), &settings);
        assert_acceptable_to_the_proxy(&server);
        match (kind(&server), expected) {
            (Kind::Detect(d), "detect") => {
                assert_eq!(d.timeout, Some(one_second));
                assert_eq!(d.http_local_rate_limit, None);
                default_route(&server);
            }
            (Kind::Http1(_), "http1") | (Kind::Http2(_), "http2") => default_route(&server),
            (Kind::Grpc(g), "grpc") => {
                assert_eq!(g.routes.len(), 1);
                assert!(g.routes[0].authorizations.is_empty());
                let rule = &g.routes[0].rules[0];
                assert_eq!(
                    rule.matches[0].rpc,
                    Some(Default::default()),
                    "every method"
                );
            }
            (Kind::Opaque(_), "opaque") | (Kind::Tls(_), "tls") => {}
            (other, _) => panic!("{protocol:?} became {other:?}"),
        }
    }
}

#[test]
fn detect_timeout_defaults_to_ten_seconds_and_is_bounded() {
    let server = to_server(&server_policy(ProxyProtocol::Unknown, vec![]), &settings());
    let Kind::Detect(detect) = kind(&server) else {
        panic!("unknown protocol must be detected")
    };
    assert_eq!(detect.timeout.unwrap().seconds, 10);
    assert_eq!(DEFAULT_DETECT_TIMEOUT, Duration::from_secs(10));
    for bad in [Duration::ZERO, Duration::from_secs(3601)] {
        assert_eq!(
            settings().with_detect_timeout(bad),
            Err(InvalidSettings::DetectTimeout(bad))
        );
    }
    assert_eq!(
        InboundSettings::new(&cluster_settings(
            vec![],
            weft_core::Mesh::new("weft", "cluster.local")
        )),
        Err(InvalidSettings::NoClusterNetworks)
    );
    assert_eq!(
        InboundSettings::new(&cluster_settings(
            vec![net("10.0.0.0/8")],
            weft_core::Mesh::new("", "cluster.local")
        )),
        Err(InvalidSettings::EmptyIdentityPart)
    );
}

#[test]
fn each_authentication() {
    let sa = ServiceAccount {
        name: "api".into(),
        namespace: "emojivoto".into(),
    };
    let identities = |ids: &[&str], sas: Vec<ServiceAccount>| Authentication::MeshTls {
        identities: ids.iter().map(|s| s.to_string()).collect(),
        service_accounts: sas,
    };
    type Expected = (Vec<&'static str>, Vec<Vec<&'static str>>);
    let cases: Vec<(Authentication, Option<Expected>)> = vec![
        (Authentication::Unauthenticated, None),
        (Authentication::TlsUnauthenticated, None),
        (identities(&["*"], vec![]), Some((vec![], vec![vec![]]))),
        (
            identities(
                &["*.emojivoto.serviceaccount.identity.weft.cluster.local"],
                vec![],
            ),
            Some((
                vec![],
                vec![vec![
                    "emojivoto",
                    "serviceaccount",
                    "identity",
                    "weft",
                    "cluster",
                    "local",
                ]],
            )),
        ),
        (
            identities(
                &["web.emojivoto.serviceaccount.identity.weft.cluster.local"],
                vec![],
            ),
            Some((
                vec!["web.emojivoto.serviceaccount.identity.weft.cluster.local"],
                vec![],
            )),
        ),
        (
            identities(&[], vec![sa.clone()]),
            Some((
                vec!["api.emojivoto.serviceaccount.identity.weft.cluster.local"],
                vec![],
            )),
        ),
        (
            identities(
                &["*", "db.x.serviceaccount.identity.weft.cluster.local"],
                vec![sa],
            ),
            Some((
                vec![
                    "db.x.serviceaccount.identity.weft.cluster.local",
                    "api.emojivoto.serviceaccount.identity.weft.cluster.local",
                ],
                vec![vec![]],
            )),
        ),
    ];
    for (authentication, expected) in cases {
        let policy = server_policy(
            ProxyProtocol::Opaque,
            vec![authz(
                "ServerAuthorization/a",
                NetworkMatch::all(),
                authentication.clone(),
            )],
        );
        let server = to_server(&policy, &settings());
        assert_acceptable_to_the_proxy(&server);
        let permit = permit(&server.authorizations[0]);
        match (&authentication, permit, expected) {
            (Authentication::Unauthenticated, Permit::Unauthenticated(_), None) => {}
            (Authentication::TlsUnauthenticated, Permit::MeshTls(tls), None) => {
                assert!(matches!(tls.clients, Some(Clients::Unauthenticated(_))));
            }
            (Authentication::MeshTls { .. }, Permit::MeshTls(tls), Some((exact, suffixes))) => {
                let Some(Clients::Identities(ids)) = &tls.clients else {
                    panic!("{authentication:?}: {tls:?}")
                };
                let names: Vec<&str> = ids.identities.iter().map(|i| i.name.as_str()).collect();
                assert_eq!(names, exact, "{authentication:?}");
                let parts: Vec<Vec<&str>> = ids
                    .suffixes
                    .iter()
                    .map(|s| s.parts.iter().map(String::as_str).collect())
                    .collect();
                assert_eq!(parts, suffixes, "{authentication:?}");
            }
            (a, p, _) => panic!("{a:?} became {p:?}"),
        }
    }
}

#[test]
fn networks_present_absent_and_with_exceptions() {
    let with_except = vec![NetworkMatch {
        cidr: Cidr(net("192.168.0.0/16")),
        except: vec![Cidr(net("192.168.1.0/24")), Cidr(net("192.168.2.7/32"))],
    }];
    let policy = server_policy(
        ProxyProtocol::Http1,
        vec![
            authz(
                "ServerAuthorization/all",
                NetworkMatch::all(),
                Authentication::Unauthenticated,
            ),
            authz(
                "ServerAuthorization/except",
                with_except,
                Authentication::Unauthenticated,
            ),
            authz(
                "ServerAuthorization/none",
                vec![],
                Authentication::Unauthenticated,
            ),
        ],
    );
    let server = to_server(&policy, &settings());
    assert_acceptable_to_the_proxy(&server);
    let got: Vec<_> = server
        .authorizations
        .iter()
        .map(|a| nets(&a.networks))
        .collect();
    assert_eq!(
        got,
        [
            vec![(net("0.0.0.0/0"), vec![]), (net("::/0"), vec![])],
            vec![(
                net("192.168.0.0/16"),
                vec![net("192.168.1.0/24"), net("192.168.2.7/32")]
            )],
            // No networks: the cluster's, never an empty list the proxy would refuse.
            vec![(net("10.0.0.0/8"), vec![]), (net("fd00::/8"), vec![])],
        ]
    );
}

#[test]
fn authorization_labels_and_metadata() {
    let cluster = ClusterSettings {
        mesh: weft_core::Mesh::new("weft", "cluster.local"),
        cluster_domain: "cluster.local".to_string(),
        default_opaque_ports: weft_core::PortList::default(),
        default_policy: DefaultPolicy::Deny,
        cluster_networks: vec![net("10.0.0.0/8")],
    };
    let default = InboundPolicy::default_for(DefaultPolicy::ClusterAuthenticated, &cluster);
    let server = to_server(&default, &settings());
    let default_authz = &server.authorizations[0];
    assert_eq!(
        default_authz.labels,
        labels("", "default", "cluster-authenticated")
    );
    assert_eq!(
        default_authz.metadata,
        Some(Metadata {
            kind: Some(metadata::Kind::Default("cluster-authenticated".into()))
        })
    );
    assert_eq!(nets(&default_authz.networks), [(net("10.0.0.0/8"), vec![])]);

    let policy = server_policy(
        ProxyProtocol::Http2,
        vec![authz(
            "ServerAuthorization/web-clients",
            NetworkMatch::all(),
            Authentication::Unauthenticated,
        )],
    );
    let authz = &to_server(&policy, &settings()).authorizations[0];
    assert_eq!(
        authz.labels,
        labels("policy.weft.dev", "serverauthorization", "web-clients")
    );
    assert_eq!(
        authz.metadata,
        Some(Metadata {
            kind: Some(metadata::Kind::Resource(Resource {
                group: "policy.weft.dev".into(),
                kind: "serverauthorization".into(),
                name: "web-clients".into(),
                ..Default::default()
            }))
        })
    );
}

/// The probe route: `GET` of exactly `paths`, unauthenticated from anywhere.
fn assert_probe_route(route: &proto::HttpRoute, paths: &[&str]) {
    assert_eq!(route_name(route), "probe");
    let matches = &route.rules[0].matches;
    let got: Vec<&str> = matches
        .iter()
        .map(|m| match m.path.as_ref().unwrap().kind.as_ref().unwrap() {
            path_match::Kind::Exact(p) => p.as_str(),
            other => panic!("probe paths match exactly: {other:?}"),
        })
        .collect();
    assert_eq!(got, paths);
    for m in matches {
        let method = m.method.as_ref().unwrap();
        assert_eq!(
            method.r#type,
            Some(
                linkerd2_proxy_api::http_types::http_method::Type::Registered(
                    linkerd2_proxy_api::http_types::http_method::Registered::Get.into()
                )
            )
        );
    }
    let [authz] = route.authorizations.as_slice() else {
        panic!("one probe authorization: {:?}", route.authorizations)
    };
    assert_eq!(authz.labels, labels("", "default", "probe"));
    assert!(matches!(permit(authz), Permit::Unauthenticated(_)));
    assert_eq!(
        nets(&authz.networks),
        [(net("0.0.0.0/0"), vec![]), (net("::/0"), vec![])]
    );
}

#[test]
fn deny_with_and_without_probe_paths() {
    let cluster = ClusterSettings {
        mesh: weft_core::Mesh::new("weft", "cluster.local"),
        cluster_domain: "cluster.local".to_string(),
        default_opaque_ports: weft_core::PortList::default(),
        default_policy: DefaultPolicy::Deny,
        cluster_networks: vec![net("10.0.0.0/8")],
    };
    let deny = InboundPolicy::default_for(DefaultPolicy::Deny, &cluster);
    let server = to_server(&deny, &settings());
    assert_acceptable_to_the_proxy(&server);
    assert!(server.authorizations.is_empty(), "deny admits nobody");
    let routes = http_routes(&server);
    assert_eq!(routes.len(), 1, "no probes, no probe route");
    assert_eq!(route_name(&routes[0]), "default");

    let probed = InboundPolicy {
        probe_paths: vec!["/live".into(), "/ready".into()],
        ..deny
    };
    let server = to_server(&probed, &settings());
    assert_acceptable_to_the_proxy(&server);
    assert!(
        server.authorizations.is_empty(),
        "only the probes get through"
    );
    let routes = http_routes(&server);
    assert_eq!(routes.len(), 2);
    assert_eq!(route_name(&routes[0]), "default");
    assert_probe_route(&routes[1], &["/live", "/ready"]);
}

#[test]
fn servers_get_probe_routes_on_http_protocols_only() {
    for protocol in [
        ProxyProtocol::Unknown,
        ProxyProtocol::Http1,
        ProxyProtocol::Http2,
        ProxyProtocol::Grpc,
        ProxyProtocol::Opaque,
        ProxyProtocol::Tls,
    ] {
        let policy = InboundPolicy {
            probe_paths: vec!["/healthz".into()],
            ..server_policy(protocol, vec![])
        };
        let server = to_server(&policy, &settings());
        assert_acceptable_to_the_proxy(&server);
        let routes = http_routes(&server);
        match protocol {
            ProxyProtocol::Unknown | ProxyProtocol::Http1 | ProxyProtocol::Http2 => {
                assert_eq!(routes.len(), 2, "{protocol:?}");
                assert_probe_route(&routes[1], &["/healthz"]);
            }
            _ => assert!(routes.is_empty(), "{protocol:?}"),
        }
    }
}
