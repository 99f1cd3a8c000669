//! The inbound policy of one pod port: what the controller's gRPC API turns into the proxy's
//! `InboundServer` message.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use weft_policy_k8s_api::{http_route::ServerRoute, Cidr, ProxyProtocol};

use crate::{ClusterSettings, DefaultPolicy};

/// Everything a proxy needs to decide about connections to one port.
///
/// A port described by a Server admits exactly the clients of the ServerAuthorizations and
/// AuthorizationPolicies that target the Server or its namespace (none: nobody), on every route;
/// a route's own AuthorizationPolicies admit more clients on that route only. A port without a
/// Server gets its default policy.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct InboundPolicy {
    /// What describes the port: a Server, or the default policy.
    pub server: ServerRef,
    /// The protocol on the port; `unknown` means the proxy detects it.
    pub protocol: ProxyProtocol,
    /// Who may connect; sorted by name. Empty means nobody.
    pub authorizations: Vec<Authorization>,
    /// The HTTPRoutes attached to the Server, sorted by name, when the port speaks HTTP (unknown,
    /// HTTP/1 or HTTP/2). None: one default route for every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_routes: Vec<HttpRoutePolicy>,
    /// The paths of the pod's HTTP probes on this port (sorted, without duplicates), so that
    /// the kubelet's probes can be let through whatever the policy is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_paths: Vec<String>,
}

/// An HTTPRoute on a Server, with the authorizations of the AuthorizationPolicies targeting it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct HttpRoutePolicy {
    pub name: String,
    /// Shared by all the pod ports the route applies to.
    #[serde(flatten)]
    pub route: Arc<ServerRoute>,
    /// Sorted by name; the Server's authorizations apply too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorizations: Vec<Authorization>,
}

/// The source of a port's policy.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
#[serde(tag = "kind")]
pub enum ServerRef {
    /// A `Server` in the pod's namespace.
    Server { name: String },
    /// No Server selects the port; this default policy applies.
    #[serde(rename = "default")]
    Default { policy: DefaultPolicy },
}

/// One rule admitting clients: from any of `networks`, with `authentication`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct Authorization {
    /// Where the rule comes from: `ServerAuthorization/<name>`, `AuthorizationPolicy/<name>` or
    /// `default/<policy>`.
    pub name: String,
    pub networks: Vec<NetworkMatch>,
    pub authentication: Authentication,
}

/// Clients whose address is in `cidr` but in none of `except`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct NetworkMatch {
    pub cidr: Cidr,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<Cidr>,
}

/// How clients must authenticate.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Authentication {
    /// No authentication: plaintext or TLS, any client.
    Unauthenticated,
    /// Any TLS client, identity not checked.
    TlsUnauthenticated,
    /// Mesh TLS with one of these identities (`*`: any) or service accounts (name `*`: every
    /// service account of the namespace).
    #[serde(rename_all = "camelCase")]
    MeshTls {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        identities: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        service_accounts: Vec<ServiceAccount>,
    },
}

/// A service account, its namespace always filled in.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ServiceAccount {
    pub name: String,
    pub namespace: String,
}

impl NetworkMatch {
    pub fn all() -> Vec<NetworkMatch> {
        [
            IpNet::V4(ipnet::Ipv4Net::default()),
            IpNet::V6(ipnet::Ipv6Net::default()),
        ]
        .into_iter()
        .map(|net| NetworkMatch {
            cidr: Cidr(net),
            except: Vec::new(),
        })
        .collect()
    }
}

impl InboundPolicy {
    /// The policy of a port no Server describes.
    pub fn default_for(policy: DefaultPolicy, cluster: &ClusterSettings) -> Self {
        let cluster_networks = || {
            cluster
                .cluster_networks
                .iter()
                .map(|net| NetworkMatch {
                    cidr: Cidr(*net),
                    except: Vec::new(),
                })
                .collect()
        };
        let any_identity = || Authentication::MeshTls {
            identities: vec!["*".to_string()],
            service_accounts: Vec::new(),
        };
        let rule = match policy {
            DefaultPolicy::AllUnauthenticated => {
                Some((NetworkMatch::all(), Authentication::Unauthenticated))
            }
            DefaultPolicy::AllAuthenticated => Some((NetworkMatch::all(), any_identity())),
            DefaultPolicy::ClusterUnauthenticated => {
                Some((cluster_networks(), Authentication::Unauthenticated))
            }
            DefaultPolicy::ClusterAuthenticated => Some((cluster_networks(), any_identity())),
            DefaultPolicy::Deny => None,
        };
        InboundPolicy {
            server: ServerRef::Default { policy },
            protocol: ProxyProtocol::Unknown,
            authorizations: rule
                .map(|(networks, authentication)| Authorization {
                    name: format!("default/{policy}"),
                    networks,
                    authentication,
                })
                .into_iter()
                .collect(),
            http_routes: Vec::new(),
            probe_paths: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn default_policy_json() {
        let cluster = ClusterSettings {
            mesh: weft_core::Mesh::new("weft", "cluster.local"),
            cluster_domain: "cluster.local".to_string(),
            default_opaque_ports: weft_core::PortList::default(),
            default_policy: DefaultPolicy::Deny,
            cluster_networks: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let policy = InboundPolicy::default_for(DefaultPolicy::ClusterAuthenticated, &cluster);
        assert_eq!(
            serde_json::to_value(&policy).unwrap(),
            json!({
                "server": {"kind": "default", "policy": "cluster-authenticated"},
                "protocol": "unknown",
                "authorizations": [{
                    "name": "default/cluster-authenticated",
                    "networks": [{"cidr": "10.0.0.0/8"}],
                    "authentication": {"kind": "mesh-tls", "identities": ["*"]},
                }],
            })
        );
        let deny = InboundPolicy::default_for(DefaultPolicy::Deny, &cluster);
        assert!(deny.authorizations.is_empty());
        let all = InboundPolicy::default_for(DefaultPolicy::AllUnauthenticated, &cluster);
        assert_eq!(
            serde_json::to_value(&all.authorizations[0]).unwrap(),
            json!({
                "name": "default/all-unauthenticated",
                "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}],
                "authentication": {"kind": "unauthenticated"},
            })
        );
    }

    #[test]
    fn round_trips_through_json() {
        let policy = InboundPolicy {
            server: ServerRef::Server { name: "web".into() },
            protocol: ProxyProtocol::Http2,
            authorizations: vec![Authorization {
                name: "ServerAuthorization/web-clients".into(),
                networks: NetworkMatch::all(),
                authentication: Authentication::MeshTls {
                    identities: vec![],
                    service_accounts: vec![ServiceAccount {
                        name: "api".into(),
                        namespace: "emojivoto".into(),
                    }],
                },
            }],
            http_routes: Vec::new(),
            probe_paths: vec!["/ready".into()],
        };
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(
            serde_json::from_str::<InboundPolicy>(&json).unwrap(),
            policy
        );
    }
}
