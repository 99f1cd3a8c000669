//! Index results → the proxy's `InboundServer` message: pure functions, no I/O.
//!
//! What the proxy (linkerd2-proxy v2.366's `server-policy` crate) requires of each message, and
//! what it does otherwise:
//! - the Server's `labels` must hold `name` (else every request on the port fails); `group` and
//!   `kind` become its `srv_group`/`srv_kind` metric labels (`group: ""` with `kind: default`
//!   makes it a default policy);
//! - `detect` must carry a `timeout` (else every request on the port fails);
//! - every authorization must list at least one network (else every request on the port fails);
//! - the authorizations of an HTTP or gRPC route are the route's own followed by the Server's
//!   (the proxy appends them), and a proxy-side localhost authorization is always added. So the
//!   default route (path prefix `/`) carries no authorizations of its own: the port's apply to it,
//!   as in Linkerd. A Server with HTTPRoutes gets those instead of the default route, each with
//!   the authorizations of the AuthorizationPolicies targeting it; a request matching no route is
//!   refused by the proxy (404).

use ipnet::IpNet;
use linkerd2_proxy_api::{
    grpc_route::{GrpcRouteMatch, GrpcRpcMatch},
    http_route::{path_match, HttpRouteMatch, PathMatch},
    inbound::{
        self as proto, authn::permit_mesh_tls::Clients, authn::Permit, proxy_protocol::Kind,
    },
    meta::{metadata, Metadata, Resource},
};
use std::{collections::HashMap, time::Duration};
use weft_policy_index::{
    Authentication, Authorization, InboundPolicy, NetworkMatch, ServerRef, ServiceAccount,
};
use weft_policy_k8s_api::ProxyProtocol;

/// The API group of Weft's policy resources, as the proxy reports it in metrics (`srv_group`,
/// `authz_group`).
pub const POLICY_GROUP: &str = "policy.weft.dev";

/// How long the proxy waits for a client's first bytes to detect the protocol when the default
/// is not overridden (Linkerd's default too).
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster facts the mapping needs beyond the index's policy.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundSettings {
    cluster_networks: Vec<IpNet>,
    mesh: weft_core::Mesh,
    detect_timeout: prost_types::Duration,
}

/// Settings the mapping cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSettings {
    #[error("the cluster networks must not be empty: authorizations without networks fall back to them, and the proxy refuses an authorization without networks")]
    NoClusterNetworks,
    #[error("the protocol detection timeout must be between 1ms and 1h, not {0:?}")]
    DetectTimeout(Duration),
    #[error("the control-plane namespace and the trust domain must not be empty: they make the identities of service accounts")]
    EmptyIdentityPart,
}

impl InboundSettings {
    /// From the cluster settings: its networks stand in for an authorization's networks when
    /// it has none; service accounts become the identities of its mesh,
    /// `<sa>.<ns>.serviceaccount.identity.<control_plane_namespace>.<trust_domain>`. The
    /// detection timeout is [`DEFAULT_DETECT_TIMEOUT`] unless set with
    /// [`with_detect_timeout`](Self::with_detect_timeout).
    pub fn new(cluster: &weft_core::ClusterSettings) -> Result<Self, InvalidSettings> {
        let (cluster_networks, mesh) = (cluster.cluster_networks.clone(), cluster.mesh.clone());
        if cluster_networks.is_empty() {
            return Err(InvalidSettings::NoClusterNetworks);
        }
        if mesh.control_plane_namespace().is_empty() || mesh.trust_domain().is_empty() {
            return Err(InvalidSettings::EmptyIdentityPart);
        }
        Self {
            cluster_networks,
            mesh,
            detect_timeout: prost_types::Duration::default(),
        }
        .with_detect_timeout(DEFAULT_DETECT_TIMEOUT)
    }

    /// Sets how long the proxy waits to detect the protocol of a port whose protocol is unknown.
    pub fn with_detect_timeout(mut self, timeout: Duration) -> Result<Self, InvalidSettings> {
        if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(3600) {
            return Err(InvalidSettings::DetectTimeout(timeout));
        }
        self.detect_timeout = prost_types::Duration::try_from(timeout)
            .map_err(|_| InvalidSettings::DetectTimeout(timeout))?;
        Ok(self)
    }

    /// The mesh identity of a service account.
    pub fn identity_of(&self, sa: &ServiceAccount) -> String {
        self.mesh.identity(weft_core::ServiceAccountRef {
            namespace: &sa.namespace,
            name: &sa.name,
        })
    }
}

/// The proxy's description of one pod port.
pub fn to_server(policy: &InboundPolicy, settings: &InboundSettings) -> proto::Server {
    let authorizations = policy
        .authorizations
        .iter()
        .map(|authz| to_authz(authz, settings))
        .collect();
    let http_routes = || http_routes(policy, settings);
    let kind = match policy.protocol {
        ProxyProtocol::Unknown => Kind::Detect(proto::proxy_protocol::Detect {
            timeout: Some(settings.detect_timeout),
            http_routes: http_routes(),
            http_local_rate_limit: None,
        }),
        ProxyProtocol::Http1 => Kind::Http1(proto::proxy_protocol::Http1 {
            routes: http_routes(),
            local_rate_limit: None,
        }),
        ProxyProtocol::Http2 => Kind::Http2(proto::proxy_protocol::Http2 {
            routes: http_routes(),
            local_rate_limit: None,
        }),
        ProxyProtocol::Grpc => Kind::Grpc(proto::proxy_protocol::Grpc {
            routes: vec![default_grpc_route()],
        }),
        ProxyProtocol::Opaque => Kind::Opaque(proto::proxy_protocol::Opaque {}),
        ProxyProtocol::Tls => Kind::Tls(proto::proxy_protocol::Tls {}),
    };
    let labels = match &policy.server {
        ServerRef::Server { name } => labels(POLICY_GROUP, "server", name),
        ServerRef::Default { policy } => labels("", "default", policy.as_str()),
    };
    proto::Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: Vec::new(),
        authorizations,
        labels,
    }
}

fn labels(group: &str, kind: &str, name: &str) -> HashMap<String, String> {
    HashMap::from([
        ("group".to_string(), group.to_string()),
        ("kind".to_string(), kind.to_string()),
        ("name".to_string(), name.to_string()),
    ])
}

fn default_meta(name: &str) -> Metadata {
    Metadata {
        kind: Some(metadata::Kind::Default(name.to_string())),
    }
}

/// Where an index authorization comes from, from its `name` (`ServerAuthorization/<name>`,
/// `AuthorizationPolicy/<name>` or `default/<policy>`, the forms the index makes).
fn authz_source(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some(("default", policy)) => ("default", policy),
        Some(("AuthorizationPolicy", resource)) => ("authorizationpolicy", resource),
        Some((_, resource)) => ("serverauthorization", resource),
        // Not a form the index makes; still a valid, nameable resource for the proxy.
        None => ("serverauthorization", name),
    }
}

fn to_authz(authz: &Authorization, settings: &InboundSettings) -> proto::Authz {
    let (kind, name) = authz_source(&authz.name);
    let (metadata, labels) = if kind == "default" {
        (default_meta(name), labels("", "default", name))
    } else {
        let resource = Resource {
            group: POLICY_GROUP.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            ..Default::default()
        };
        (
            Metadata {
                kind: Some(metadata::Kind::Resource(resource)),
            },
            labels(POLICY_GROUP, kind, name),
        )
    };
    proto::Authz {
        networks: networks(&authz.networks, settings),
        authentication: Some(authentication(&authz.authentication, settings)),
        labels,
        metadata: Some(metadata),
    }
}

/// The proxy refuses an authorization without networks; none means the cluster's.
fn networks(networks: &[NetworkMatch], settings: &InboundSettings) -> Vec<proto::Network> {
    if networks.is_empty() {
        return settings
            .cluster_networks
            .iter()
            .map(|net| proto::Network {
                net: Some((*net).into()),
                except: Vec::new(),
            })
            .collect();
    }
    networks
        .iter()
        .map(|n| proto::Network {
            net: Some(n.cidr.0.into()),
            except: n.except.iter().map(|e| e.0.into()).collect(),
        })
        .collect()
}

fn authentication(authn: &Authentication, settings: &InboundSettings) -> proto::Authn {
    let unauthenticated = proto::authn::PermitUnauthenticated {};
    let permit = match authn {
        Authentication::Unauthenticated => Permit::Unauthenticated(unauthenticated),
        Authentication::TlsUnauthenticated => Permit::MeshTls(proto::authn::PermitMeshTls {
            clients: Some(Clients::Unauthenticated(unauthenticated)),
        }),
        Authentication::MeshTls {
            identities,
            service_accounts,
        } => {
            let mut exact = Vec::new();
            let mut suffixes = Vec::new();
            for identity in identities {
                match identity_suffix(identity) {
                    Some(parts) => suffixes.push(proto::IdentitySuffix { parts }),
                    None => exact.push(proto::Identity {
                        name: identity.clone(),
                    }),
                }
            }
            for sa in service_accounts {
                // `*`: every service account of the namespace, an identity suffix.
                let identity = settings.identity_of(sa);
                match identity_suffix(&identity) {
                    Some(parts) if sa.name == "*" => suffixes.push(proto::IdentitySuffix { parts }),
                    _ => exact.push(proto::Identity { name: identity }),
                }
            }
            Permit::MeshTls(proto::authn::PermitMeshTls {
                clients: Some(Clients::Identities(
                    proto::authn::permit_mesh_tls::PermitClientIdentities {
                        identities: exact,
                        suffixes,
                    },
                )),
            })
        }
    };
    proto::Authn {
        permit: Some(permit),
    }
}

/// `*` matches every identity (a suffix of no parts); `*.a.b` every identity ending in `.a.b`.
/// Anything else is an exact identity.
fn identity_suffix(identity: &str) -> Option<Vec<String>> {
    if identity == "*" {
        return Some(Vec::new());
    }
    let rest = identity.strip_prefix("*.")?;
    Some(rest.split('.').map(str::to_string).collect())
}

/// The HTTP routes of a port: its HTTPRoutes, or without any the default route (every request;
/// the port's authorizations); and when the pod has HTTP probes on the port, a probe route
/// letting `GET` of exactly those paths through from anywhere without authentication, so the
/// kubelet's probes work whatever the policy (as Linkerd does with its default probe networks,
/// 0.0.0.0/0 and ::/0).
fn http_routes(policy: &InboundPolicy, settings: &InboundSettings) -> Vec<proto::HttpRoute> {
    let mut routes: Vec<proto::HttpRoute> = if policy.http_routes.is_empty() {
        vec![default_http_route()]
    } else {
        policy
            .http_routes
            .iter()
            .map(|route| {
                let authorizations = route
                    .authorizations
                    .iter()
                    .map(|authz| to_authz(authz, settings))
                    .collect();
                super::routes::to_http_route(route, authorizations)
            })
            .collect()
    };
    if !policy.probe_paths.is_empty() {
        routes.push(probe_route(&policy.probe_paths));
    }
    routes
}

fn default_http_route() -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: Some(default_meta("default")),
        hosts: Vec::new(),
        authorizations: Vec::new(),
        rules: vec![proto::http_route::Rule {
            matches: vec![HttpRouteMatch {
                path: Some(PathMatch {
                    kind: Some(path_match::Kind::Prefix("/".to_string())),
                }),
                headers: Vec::new(),
                query_params: Vec::new(),
                method: None,
            }],
            filters: Vec::new(),
        }],
    }
}

/// The name of the probe route and of its authorization in the proxy's metrics.
pub const PROBE: &str = "probe";

fn probe_route(paths: &[String]) -> proto::HttpRoute {
    let get = super::routes::method("GET");
    let matches = paths
        .iter()
        .map(|path| HttpRouteMatch {
            path: Some(PathMatch {
                kind: Some(path_match::Kind::Exact(path.clone())),
            }),
            headers: Vec::new(),
            query_params: Vec::new(),
            method: Some(get.clone()),
        })
        .collect();
    let anywhere = [
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpNet::V6(ipnet::Ipv6Net::default()),
    ];
    proto::HttpRoute {
        metadata: Some(default_meta(PROBE)),
        hosts: Vec::new(),
        authorizations: vec![proto::Authz {
            networks: anywhere
                .into_iter()
                .map(|net| proto::Network {
                    net: Some(net.into()),
                    except: Vec::new(),
                })
                .collect(),
            authentication: Some(proto::Authn {
                permit: Some(Permit::Unauthenticated(
                    proto::authn::PermitUnauthenticated {},
                )),
            }),
            labels: labels("", "default", PROBE),
            metadata: Some(default_meta(PROBE)),
        }],
        rules: vec![proto::http_route::Rule {
            matches,
            filters: Vec::new(),
        }],
    }
}

/// The gRPC route for every method; the port's authorizations apply to it.
fn default_grpc_route() -> proto::GrpcRoute {
    proto::GrpcRoute {
        metadata: Some(default_meta("default")),
        hosts: Vec::new(),
        authorizations: Vec::new(),
        rules: vec![proto::grpc_route::Rule {
            matches: vec![GrpcRouteMatch {
                rpc: Some(GrpcRpcMatch::default()),
                headers: Vec::new(),
            }],
            filters: Vec::new(),
        }],
    }
}
