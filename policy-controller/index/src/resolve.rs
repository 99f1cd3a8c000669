//! Computing the policy of pod ports from the Servers, ServerAuthorizations, AuthorizationPolicies
//! and HTTPRoutes of a namespace.

use std::collections::{hash_map::Entry, BTreeMap, HashMap};
use tokio::sync::watch;

use crate::{
    authorization::AuthorizationInfo,
    authz_policy::AuthzPolicies,
    defaults::{effective_default, PolicyOverride},
    pod::{PodIndex, PodMeta, PortWatch},
    routes::RouteInfo,
    server::ServerInfo,
    ClusterSettings, HttpRoutePolicy, InboundPolicy, IndexMetrics, ServerRef,
};
use weft_policy_k8s_api::{PolicyTarget, ProxyProtocol};

/// A read-only view of one namespace, able to compute and publish pod port policies.
pub(crate) struct Resolver<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) cluster: &'a ClusterSettings,
    pub(crate) metrics: &'a IndexMetrics,
    pub(crate) servers: &'a HashMap<String, ServerInfo>,
    pub(crate) authorizations: &'a BTreeMap<String, AuthorizationInfo>,
    pub(crate) authz_policies: &'a AuthzPolicies,
    pub(crate) http_routes: &'a BTreeMap<String, RouteInfo>,
    pub(crate) namespace_override: &'a PolicyOverride,
}

/// The Servers selecting each port of a pod.
type Candidates<'s> = HashMap<u16, Vec<&'s ServerInfo>>;

impl<'a> Resolver<'a> {
    /// Recomputes every watched port of `pod`, adding watches for its declared ports and for
    /// ports that Servers name; subscribers are woken only where the policy changed.
    pub(crate) fn update_pod(&self, pod_name: &str, pod: &mut PodIndex) {
        let candidates = self.candidates(&pod.meta);
        let servers_of = |port: u16| candidates.get(&port).map(Vec::as_slice).unwrap_or_default();
        let ports = pod.ports.get_mut();
        for (&port, watch) in ports.iter_mut() {
            let (policy, losers) = self.policy(&pod.meta, port, servers_of(port));
            self.record_conflict(pod_name, port, &mut watch.losers, losers, &policy);
            watch.tx.send_if_modified(|current| {
                if *current == policy {
                    return false;
                }
                *current = policy;
                true
            });
        }
        for &port in pod.meta.declared_ports.iter().chain(candidates.keys()) {
            if let Entry::Vacant(entry) = ports.entry(port) {
                let (policy, losers) = self.policy(&pod.meta, port, servers_of(port));
                entry.insert(self.watch_with(pod_name, port, policy, losers));
            }
        }
    }

    /// A watch for one port, holding its current policy.
    pub(crate) fn new_watch(&self, pod_name: &str, pod: &PodMeta, port: u16) -> PortWatch {
        let servers: Vec<&ServerInfo> = self
            .servers
            .values()
            .filter(|s| s.selects(pod) && s.ports_on(pod).any(|p| p == port))
            .collect();
        let (policy, losers) = self.policy(pod, port, &servers);
        self.watch_with(pod_name, port, policy, losers)
    }

    fn watch_with(
        &self,
        pod_name: &str,
        port: u16,
        policy: InboundPolicy,
        losers: Vec<String>,
    ) -> PortWatch {
        let mut current_losers = Vec::new();
        self.record_conflict(pod_name, port, &mut current_losers, losers, &policy);
        PortWatch {
            tx: watch::Sender::new(policy),
            losers: current_losers,
        }
    }

    fn candidates(&self, pod: &PodMeta) -> Candidates<'a> {
        let mut candidates: Candidates<'a> = HashMap::new();
        for server in self.servers.values().filter(|s| s.selects(pod)) {
            for port in server.ports_on(pod) {
                candidates.entry(port).or_default().push(server);
            }
        }
        candidates
    }

    /// The policy given the Servers selecting a port, and the names of Servers that lost.
    fn policy(
        &self,
        pod: &PodMeta,
        port: u16,
        servers: &[&ServerInfo],
    ) -> (InboundPolicy, Vec<String>) {
        let probe_paths = || {
            pod.probe_paths
                .get(&port)
                .map(|paths| paths.iter().cloned().collect())
                .unwrap_or_default()
        };
        let Some(winner) = servers
            .iter()
            .min_by(|a, b| a.precedence_key().cmp(&b.precedence_key()))
        else {
            let mut default = effective_default(
                self.cluster.default_policy,
                self.namespace_override,
                &pod.default_override,
            );
            if pod.require_identity_ports.contains(port) {
                default = default.authenticated();
            }
            let mut policy = InboundPolicy {
                probe_paths: probe_paths(),
                ..InboundPolicy::default_for(default, self.cluster)
            };
            if pod.default_opaque(port, self.cluster) {
                policy.protocol = ProxyProtocol::Opaque;
            }
            return (policy, Vec::new());
        };
        let mut losers: Vec<String> = servers
            .iter()
            .filter(|s| s.name != winner.name)
            .map(|s| s.name.clone())
            .collect();
        losers.sort();
        let policy = InboundPolicy {
            server: ServerRef::Server {
                name: winner.name.clone(),
            },
            protocol: winner.protocol,
            authorizations: self.server_authorizations(winner),
            http_routes: self.routes_of(winner),
            probe_paths: probe_paths(),
        };
        (policy, losers)
    }

    /// The ServerAuthorizations targeting `server`, then the AuthorizationPolicies targeting it or
    /// the namespace.
    fn server_authorizations(&self, server: &ServerInfo) -> Vec<crate::Authorization> {
        let target = PolicyTarget::Server(server.name.clone());
        self.authorizations
            .values()
            .filter(|a| a.targets(server))
            .map(|a| a.rule.clone())
            .chain(self.authz_policies.authorizations_for(&target))
            .collect()
    }

    /// The HTTPRoutes attached to `server`, when its protocol has HTTP routes.
    fn routes_of(&self, server: &ServerInfo) -> Vec<HttpRoutePolicy> {
        let http = matches!(
            server.protocol,
            ProxyProtocol::Unknown | ProxyProtocol::Http1 | ProxyProtocol::Http2
        );
        if !http {
            return Vec::new();
        }
        self.http_routes
            .iter()
            .filter(|(_, r)| r.servers.contains(&server.name))
            .map(|(name, r)| HttpRoutePolicy {
                name: name.clone(),
                route: r.route.clone(),
                authorizations: self
                    .authz_policies
                    .authorizations_for(&PolicyTarget::HttpRoute(name.clone())),
            })
            .collect()
    }

    /// Logs and counts a port's conflict when its set of losing Servers changes.
    fn record_conflict(
        &self,
        pod: &str,
        port: u16,
        current: &mut Vec<String>,
        losers: Vec<String>,
        policy: &InboundPolicy,
    ) {
        if *current == losers {
            return;
        }
        match (current.is_empty(), losers.is_empty()) {
            (true, false) => self.metrics.conflicted_ports.inc(),
            (false, true) => self.metrics.conflicted_ports.dec(),
            _ => 0,
        };
        if !losers.is_empty() {
            self.metrics.server_conflicts.inc();
            if let ServerRef::Server { name } = &policy.server {
                tracing::warn!(
                    namespace = %self.namespace, %pod, %port, winner = %name, ?losers,
                    "several Servers select this pod port; the oldest wins, the others are ignored for it"
                );
            }
        }
        *current = losers;
    }
}
