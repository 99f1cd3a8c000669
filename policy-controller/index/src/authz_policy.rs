//! AuthorizationPolicies, MeshTLSAuthentications and NetworkAuthentications in the index.
//!
//! A policy becomes an [`Authorization`] when the Servers it reaches are resolved: its required
//! authentications are looked up by name in its namespace then. A policy requiring an
//! authentication that does not exist (yet) authorizes nobody, as a deny is the safe reading.

use kube::{core::DeserializeGuard, ResourceExt};
use kubert::index::IndexNamespacedResource;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use weft_policy_k8s_api::{
    AuthorizationPolicy, MeshTLSAuthentication, MeshTlsClients, NetworkAuthentication,
    PolicyTarget, RequiredAuthentications,
};

use crate::{Authentication, Authorization, Index, NetworkMatch, ServiceAccount};

/// A namespace's AuthorizationPolicies and the authentications they can require.
#[derive(Debug, Default)]
pub(crate) struct AuthzPolicies {
    /// Sorted by name, so policies list authorizations in a stable order.
    pub(crate) policies: BTreeMap<String, PolicyInfo>,
    pub(crate) mesh_tls: HashMap<String, MeshTlsClients>,
    pub(crate) networks: HashMap<String, Vec<NetworkMatch>>,
}

/// What the index keeps of a valid AuthorizationPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyInfo {
    pub(crate) target: PolicyTarget,
    pub(crate) required: RequiredAuthentications,
}

impl AuthzPolicies {
    /// The authorizations of the policies targeting `target` (or, for a Server, the namespace),
    /// skipping those whose required authentications do not exist.
    pub(crate) fn authorizations_for(&self, target: &PolicyTarget) -> Vec<Authorization> {
        self.policies
            .iter()
            .filter(|(_, p)| {
                p.target == *target
                    || (matches!(target, PolicyTarget::Server(_))
                        && p.target == PolicyTarget::Namespace)
            })
            .filter_map(|(name, p)| self.resolve(name, &p.required))
            .collect()
    }

    fn resolve(&self, name: &str, required: &RequiredAuthentications) -> Option<Authorization> {
        let account = |sa: &weft_policy_k8s_api::ServiceAccountIdentity| ServiceAccount {
            name: sa.name.clone(),
            namespace: sa.namespace.clone(),
        };
        let authentication = match &required.mesh_tls {
            Some(authn) => {
                let clients = self.mesh_tls.get(authn)?;
                Authentication::MeshTls {
                    identities: clients.identities.clone(),
                    service_accounts: clients.service_accounts.iter().map(account).collect(),
                }
            }
            None if !required.service_accounts.is_empty() => Authentication::MeshTls {
                identities: Vec::new(),
                service_accounts: required.service_accounts.iter().map(account).collect(),
            },
            None => Authentication::Unauthenticated,
        };
        let networks = match &required.network {
            Some(authn) => self.networks.get(authn)?.clone(),
            None => NetworkMatch::all(),
        };
        Some(Authorization {
            name: format!("AuthorizationPolicy/{name}"),
            networks,
            authentication,
        })
    }

    /// The targets of the policies that require the authentication `name` of `kind`.
    fn targets_requiring(&self, kind: AuthnKind, name: &str) -> Vec<PolicyTarget> {
        self.policies
            .values()
            .filter(|p| match kind {
                AuthnKind::MeshTls => p.required.mesh_tls.as_deref() == Some(name),
                AuthnKind::Network => p.required.network.as_deref() == Some(name),
            })
            .map(|p| p.target.clone())
            .collect()
    }
}

#[derive(Clone, Copy, Debug)]
enum AuthnKind {
    MeshTls,
    Network,
}

impl Index {
    /// Recomputes the pods selected by the Servers that any of `targets` reaches.
    pub(crate) fn update_targets(&mut self, namespace: &str, targets: &[PolicyTarget]) {
        let Some(ns) = self.namespaces.get(namespace) else {
            return;
        };
        let mut servers = BTreeSet::new();
        for target in targets {
            match target {
                PolicyTarget::Server(name) => {
                    servers.insert(name.clone());
                }
                PolicyTarget::Namespace => servers.extend(ns.servers.keys().cloned()),
                PolicyTarget::HttpRoute(route) => {
                    if let Some(route) = ns.http_routes.get(route) {
                        servers.extend(route.servers.iter().cloned());
                    }
                }
            }
        }
        let pods: BTreeSet<String> = servers
            .iter()
            .flat_map(|server| ns.selected.get(server).into_iter().flatten())
            .cloned()
            .collect();
        self.update_pods(namespace, &pods);
    }

    /// Logs and counts a malformed or invalid policy object, which is then not applied.
    pub(crate) fn skip_invalid(&mut self, kind: &str, namespace: &str, name: &str, error: &str) {
        tracing::warn!(%namespace, %name, %error, "skipping invalid {kind}");
        self.metrics.invalid_objects.inc();
    }

    fn set_policy(&mut self, namespace: &str, name: &str, policy: Option<PolicyInfo>) {
        let ns = self.namespace_mut(namespace);
        let old = match &policy {
            Some(p) if ns.authz_policies.policies.get(name) == Some(p) => return,
            Some(p) => ns
                .authz_policies
                .policies
                .insert(name.to_string(), p.clone()),
            None => ns.authz_policies.policies.remove(name),
        };
        match (&old, &policy) {
            (None, Some(_)) => self.metrics.authorization_policies.inc(),
            (Some(_), None) => self.metrics.authorization_policies.dec(),
            _ => 0,
        };
        let targets: Vec<PolicyTarget> = [old, policy]
            .into_iter()
            .flatten()
            .map(|p| p.target)
            .collect();
        self.update_targets(namespace, &targets);
    }

    fn set_mesh_tls(&mut self, namespace: &str, name: &str, clients: Option<MeshTlsClients>) {
        self.set_authentication(namespace, name, AuthnKind::MeshTls, clients, |p| {
            &mut p.mesh_tls
        });
    }

    fn set_network(&mut self, namespace: &str, name: &str, networks: Option<Vec<NetworkMatch>>) {
        self.set_authentication(namespace, name, AuthnKind::Network, networks, |p| {
            &mut p.networks
        });
    }

    /// Stores (or with `None` removes) an authentication of `kind` in the map `map` selects, and
    /// recomputes the pods the policies requiring it reach, when it changed.
    fn set_authentication<T: PartialEq>(
        &mut self,
        namespace: &str,
        name: &str,
        kind: AuthnKind,
        value: Option<T>,
        map: fn(&mut AuthzPolicies) -> &mut HashMap<String, T>,
    ) {
        let map = map(&mut self.namespace_mut(namespace).authz_policies);
        if map.get(name) == value.as_ref() {
            return;
        }
        let present = value.is_some();
        let old = match value {
            Some(v) => map.insert(name.to_string(), v),
            None => map.remove(name),
        };
        self.count_authentication(old.is_some(), present);
        let targets = self
            .namespace_mut(namespace)
            .authz_policies
            .targets_requiring(kind, name);
        self.update_targets(namespace, &targets);
    }

    /// Keeps the authentications gauge: whether the object was there before and is after.
    fn count_authentication(&self, before: bool, after: bool) {
        match (before, after) {
            (false, true) => self.metrics.authentications.inc(),
            (true, false) => self.metrics.authentications.dec(),
            _ => 0,
        };
    }
}

impl IndexNamespacedResource<DeserializeGuard<AuthorizationPolicy>> for Index {
    fn apply(&mut self, guard: DeserializeGuard<AuthorizationPolicy>) {
        let namespace = guard.namespace().unwrap_or_default();
        let name = guard.name_any();
        let result = guard.0.map_err(|invalid| invalid.error).and_then(|policy| {
            let spec = &policy.spec;
            Ok(PolicyInfo {
                target: spec.target(&namespace).map_err(|e| e.to_string())?,
                required: spec
                    .authentications(&namespace)
                    .map_err(|e| e.to_string())?,
            })
        });
        match result {
            Ok(policy) => self.set_policy(&namespace, &name, Some(policy)),
            Err(error) => {
                self.skip_invalid("AuthorizationPolicy", &namespace, &name, &error);
                self.set_policy(&namespace, &name, None);
            }
        }
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_policy(&namespace, &name, None);
    }
}

impl IndexNamespacedResource<DeserializeGuard<MeshTLSAuthentication>> for Index {
    fn apply(&mut self, guard: DeserializeGuard<MeshTLSAuthentication>) {
        let namespace = guard.namespace().unwrap_or_default();
        let name = guard.name_any();
        let result = guard
            .0
            .map_err(|invalid| invalid.error)
            .and_then(|authn| authn.spec.clients(&namespace).map_err(|e| e.to_string()));
        match result {
            Ok(clients) => self.set_mesh_tls(&namespace, &name, Some(clients)),
            Err(error) => {
                self.skip_invalid("MeshTLSAuthentication", &namespace, &name, &error);
                self.set_mesh_tls(&namespace, &name, None);
            }
        }
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_mesh_tls(&namespace, &name, None);
    }
}

impl IndexNamespacedResource<DeserializeGuard<NetworkAuthentication>> for Index {
    fn apply(&mut self, guard: DeserializeGuard<NetworkAuthentication>) {
        let namespace = guard.namespace().unwrap_or_default();
        let name = guard.name_any();
        let result = guard.0.map_err(|invalid| invalid.error).and_then(|authn| {
            authn.spec.validate().map_err(|e| e.to_string())?;
            Ok(authn
                .spec
                .networks
                .into_iter()
                .map(|n| NetworkMatch {
                    cidr: n.cidr,
                    except: n.except.unwrap_or_default(),
                })
                .collect())
        });
        match result {
            Ok(networks) => self.set_network(&namespace, &name, Some(networks)),
            Err(error) => {
                self.skip_invalid("NetworkAuthentication", &namespace, &name, &error);
                self.set_network(&namespace, &name, None);
            }
        }
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_network(&namespace, &name, None);
    }
}
