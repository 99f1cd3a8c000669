#![allow(clippy::unwrap_used)]

use super::*;
use linkerd2_proxy_api::{
    grpc_route::GrpcRpcMatch,
    http_route::PathMatch,
    inbound::{authn, proxy_protocol},
    meta::Resource,
};

fn labels(group: &str, kind: &str, name: &str) -> HashMap<String, String> {
    HashMap::from([
        ("group".to_string(), group.to_string()),
        ("kind".to_string(), kind.to_string()),
        ("name".to_string(), name.to_string()),
    ])
}

fn default_meta(name: &str) -> Option<Metadata> {
    Some(Metadata {
        kind: Some(metadata::Kind::Default(name.to_string())),
    })
}

fn net(cidr: &str) -> Option<IpNetwork> {
    Some(cidr.parse::<ipnet::IpNet>().unwrap().into())
}

fn authz_with(permit: Permit) -> proto::Authz {
    proto::Authz {
        networks: vec![proto::Network {
            net: net("10.0.0.0/8"),
            except: vec![net("10.0.1.0/24").unwrap()],
        }],
        authentication: Some(proto::Authn {
            permit: Some(permit),
        }),
        labels: labels("policy.weft.dev", "serverauthorization", "web-clients"),
        metadata: Some(Metadata {
            kind: Some(metadata::Kind::Resource(Resource {
                group: "policy.weft.dev".into(),
                kind: "serverauthorization".into(),
                name: "web-clients".into(),
                ..Default::default()
            })),
        }),
    }
}

fn prefix_route() -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: default_meta("default"),
        hosts: vec![],
        authorizations: vec![],
        rules: vec![proto::http_route::Rule {
            matches: vec![HttpRouteMatch {
                path: Some(PathMatch {
                    kind: Some(path_match::Kind::Prefix("/".into())),
                }),
                ..Default::default()
            }],
            filters: vec![],
        }],
    }
}

fn server(kind: Kind, authorizations: Vec<proto::Authz>) -> proto::Server {
    proto::Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: vec![],
        authorizations,
        labels: labels("policy.weft.dev", "server", "web-http"),
    }
}

fn mesh_tls() -> Permit {
    Permit::MeshTls(authn::PermitMeshTls {
        clients: Some(Clients::Identities(
            authn::permit_mesh_tls::PermitClientIdentities {
                identities: vec![proto::Identity {
                    name: "web.emojivoto.serviceaccount.identity.weft.cluster.local".into(),
                }],
                suffixes: vec![
                    proto::IdentitySuffix {
                        parts: vec!["emojivoto".into(), "serviceaccount".into()],
                    },
                    proto::IdentitySuffix { parts: vec![] },
                ],
            },
        )),
    })
}

#[test]
fn an_http2_server_with_a_mesh_tls_authorization() {
    let msg = server(
        Kind::Http2(proxy_protocol::Http2 {
            routes: vec![prefix_route()],
            local_rate_limit: None,
        }),
        vec![authz_with(mesh_tls())],
    );
    let expected = r#"server:
  group: policy.weft.dev
  kind: server
  name: web-http
protocol:
  kind: http2
  routes:
  - metadata:
      kind: default
      name: default
    authorizations: []
    allowedBy:
    - serverauthorization/web-clients
    rules:
    - matches:
      - path:
          prefix: /
authorizations:
- labels:
    group: policy.weft.dev
    kind: serverauthorization
    name: web-clients
  metadata:
    group: policy.weft.dev
    kind: serverauthorization
    name: web-clients
  networks:
  - cidr: 10.0.0.0/8
    except:
    - 10.0.1.0/24
  authentication:
    meshTLS:
      identities:
      - web.emojivoto.serviceaccount.identity.weft.cluster.local
      suffixes:
      - '*.emojivoto.serviceaccount'
      - '*'
"#;
    assert_eq!(to_yaml(&msg), expected);
}

#[test]
fn each_protocol() {
    let detect = Kind::Detect(proxy_protocol::Detect {
        timeout: Some(prost_types::Duration {
            seconds: 10,
            nanos: 0,
        }),
        http_routes: vec![prefix_route()],
        http_local_rate_limit: None,
    });
    let grpc = Kind::Grpc(proxy_protocol::Grpc {
        routes: vec![proto::GrpcRoute {
            metadata: default_meta("default"),
            hosts: vec![],
            authorizations: vec![],
            rules: vec![proto::grpc_route::Rule {
                matches: vec![GrpcRouteMatch {
                    rpc: Some(GrpcRpcMatch {
                        service: "emoji.Emoji".into(),
                        method: String::new(),
                    }),
                    headers: vec![],
                }],
                filters: vec![],
            }],
        }],
    });
    let cases = [
        (
            detect,
            json!({"kind": "detect", "timeout": "10s", "httpRoutes": [{
                "metadata": {"kind": "default", "name": "default"},
                "authorizations": [],
                "allowedBy": [],
                "rules": [{"matches": [{"path": {"prefix": "/"}}]}],
            }]}),
        ),
        (
            Kind::Http1(proxy_protocol::Http1 {
                routes: vec![],
                local_rate_limit: None,
            }),
            json!({"kind": "http1", "routes": []}),
        ),
        (
            grpc,
            json!({"kind": "grpc", "routes": [{
                "metadata": {"kind": "default", "name": "default"},
                "authorizations": [],
                "allowedBy": [],
                "rules": [{"matches": [{"rpc": "emoji.Emoji/*"}]}],
            }]}),
        ),
        (
            Kind::Opaque(proxy_protocol::Opaque {}),
            json!({"kind": "opaque"}),
        ),
        (Kind::Tls(proxy_protocol::Tls {}), json!({"kind": "tls"})),
    ];
    for (kind, expected) in cases {
        let value = server_value(&server(kind, vec![]));
        assert_eq!(value["protocol"], expected);
    }
    // A timeout under a second, and a message without a protocol, which the proxy would refuse.
    let short = Kind::Detect(proxy_protocol::Detect {
        timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 250_000_000,
        }),
        http_routes: vec![],
        http_local_rate_limit: None,
    });
    assert_eq!(
        server_value(&server(short, vec![]))["protocol"]["timeout"],
        "250ms"
    );
    let mut unset = server(Kind::Tls(proxy_protocol::Tls {}), vec![]);
    unset.protocol = None;
    assert_eq!(server_value(&unset)["protocol"], json!({"kind": "unset"}));
}

#[test]
fn each_authentication() {
    let unauth = authn::PermitUnauthenticated {};
    let cases = [
        (Permit::Unauthenticated(unauth), json!("unauthenticated")),
        (
            Permit::MeshTls(authn::PermitMeshTls {
                clients: Some(Clients::Unauthenticated(unauth)),
            }),
            json!("tls-unauthenticated"),
        ),
        (
            mesh_tls(),
            json!({"meshTLS": {
                "identities": ["web.emojivoto.serviceaccount.identity.weft.cluster.local"],
                "suffixes": ["*.emojivoto.serviceaccount", "*"],
            }}),
        ),
    ];
    for (permit, expected) in cases {
        let value = server_value(&server(
            Kind::Opaque(proxy_protocol::Opaque {}),
            vec![authz_with(permit)],
        ));
        assert_eq!(value["authorizations"][0]["authentication"], expected);
        assert_eq!(
            value["authorizations"][0]["networks"],
            json!([{"cidr": "10.0.0.0/8", "except": ["10.0.1.0/24"]}])
        );
    }
    let mut missing = authz_with(mesh_tls());
    missing.authentication = None;
    missing.networks = vec![proto::Network {
        net: net("::/0"),
        except: vec![],
    }];
    let value = server_value(&server(
        Kind::Opaque(proxy_protocol::Opaque {}),
        vec![missing],
    ));
    assert_eq!(value["authorizations"][0]["authentication"], "unset");
    assert_eq!(
        value["authorizations"][0]["networks"],
        json!([{"cidr": "::/0"}])
    );
}

#[test]
fn a_probe_route_with_its_own_authorization() {
    let get = HttpMethod {
        r#type: Some(http_method::Type::Registered(
            http_method::Registered::Get.into(),
        )),
    };
    let mut probe_authz = authz_with(Permit::Unauthenticated(authn::PermitUnauthenticated {}));
    probe_authz.labels = labels("", "default", "probe");
    probe_authz.metadata = default_meta("probe");
    probe_authz.networks = vec![proto::Network {
        net: net("0.0.0.0/0"),
        except: vec![],
    }];
    let route = proto::HttpRoute {
        metadata: default_meta("probe"),
        hosts: vec![HostMatch {
            r#match: Some(host_match::Match::Suffix(host_match::Suffix {
                reverse_labels: vec!["local".into(), "cluster".into()],
            })),
        }],
        authorizations: vec![probe_authz],
        rules: vec![proto::http_route::Rule {
            matches: vec![HttpRouteMatch {
                path: Some(PathMatch {
                    kind: Some(path_match::Kind::Exact("/ready".into())),
                }),
                headers: vec![HeaderMatch {
                    name: "x-probe".into(),
                    value: Some(header_match::Value::Exact(b"1".to_vec())),
                }],
                query_params: vec![],
                method: Some(get),
            }],
            filters: vec![],
        }],
    };
    let value = server_value(&server(
        Kind::Http1(proxy_protocol::Http1 {
            routes: vec![route],
            local_rate_limit: None,
        }),
        vec![authz_with(mesh_tls())],
    ));
    let route = &value["protocol"]["routes"][0];
    assert_eq!(
        route["allowedBy"],
        json!(["default/probe", "serverauthorization/web-clients"]),
        "the route's own authorizations, then the Server's"
    );
    assert_eq!(
        route["metadata"],
        json!({"kind": "default", "name": "probe"})
    );
    assert_eq!(route["hosts"], json!(["*.cluster.local"]));
    assert_eq!(
        route["rules"][0]["matches"][0],
        json!({"path": {"exact": "/ready"}, "method": "GET", "headers": [{"name": "x-probe", "exact": "1"}]})
    );
    assert_eq!(
        route["authorizations"][0]["labels"],
        json!({"group": "", "kind": "default", "name": "probe"})
    );
    assert_eq!(
        route["authorizations"][0]["authentication"],
        "unauthenticated"
    );
}

#[test]
fn labels_are_sorted_and_server_ips_shown_when_set() {
    let mut msg = server(Kind::Opaque(proxy_protocol::Opaque {}), vec![]);
    msg.labels = HashMap::from([
        ("name".to_string(), "all-unauthenticated".to_string()),
        ("kind".to_string(), "default".to_string()),
        ("group".to_string(), String::new()),
    ]);
    msg.server_ips = vec![std::net::IpAddr::from([10, 0, 0, 7]).into()];
    let yaml = to_yaml(&msg);
    assert!(
        yaml.starts_with("server:\n  group: ''\n  kind: default\n  name: all-unauthenticated\n"),
        "{yaml}"
    );
    assert!(yaml.ends_with("serverIPs:\n- 10.0.0.7\n"), "{yaml}");
}
