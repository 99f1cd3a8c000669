//! ServerAuthorizations in the index.

use kube::{core::DeserializeGuard, ResourceExt};
use kubert::index::IndexNamespacedResource;
use std::collections::BTreeSet;
use weft_policy_k8s_api::{LabelSelector, ServerAuthorization};

use crate::{
    server::ServerInfo, Authentication, Authorization, Index, NetworkMatch, ServiceAccount,
};

/// What the index keeps of a valid ServerAuthorization: its target and the ready-made rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthorizationInfo {
    pub(crate) target: Target,
    pub(crate) rule: Authorization,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Name(String),
    Selector(LabelSelector),
}

impl AuthorizationInfo {
    fn from_resource(authz: ServerAuthorization) -> Result<Self, String> {
        authz.spec.validate().map_err(|e| e.to_string())?;
        let namespace = authz.namespace().unwrap_or_default();
        let name = authz.name_any();
        let spec = authz.spec;
        let target = match (spec.server.name, spec.server.selector) {
            (Some(name), _) => Target::Name(name),
            (None, Some(selector)) => Target::Selector(selector),
            (None, None) => return Err("spec.server: set name or selector".to_string()),
        };
        let authentication = match spec.client.mesh_tls {
            None => Authentication::Unauthenticated,
            Some(tls) if tls.unauthenticated_tls => Authentication::TlsUnauthenticated,
            Some(tls) => {
                let identities: BTreeSet<String> = tls.identities.into_iter().flatten().collect();
                let service_accounts: BTreeSet<ServiceAccount> = tls
                    .service_accounts
                    .into_iter()
                    .flatten()
                    .map(|sa| ServiceAccount {
                        name: sa.name,
                        namespace: sa.namespace.unwrap_or_else(|| namespace.clone()),
                    })
                    .collect();
                Authentication::MeshTls {
                    identities: identities.into_iter().collect(),
                    service_accounts: service_accounts.into_iter().collect(),
                }
            }
        };
        let networks = match spec.client.networks {
            None => NetworkMatch::all(),
            Some(networks) => networks
                .into_iter()
                .map(|n| NetworkMatch {
                    cidr: n.cidr,
                    except: n.except.unwrap_or_default(),
                })
                .collect(),
        };
        Ok(Self {
            target,
            rule: Authorization {
                name: format!("ServerAuthorization/{name}"),
                networks,
                authentication,
            },
        })
    }

    pub(crate) fn targets(&self, server: &ServerInfo) -> bool {
        match &self.target {
            Target::Name(name) => *name == server.name,
            Target::Selector(selector) => selector.matches(&server.labels),
        }
    }
}

impl Index {
    fn upsert_authorization(&mut self, namespace: &str, name: String, authz: AuthorizationInfo) {
        let ns = self.namespace_mut(namespace);
        if ns.authorizations.get(&name) == Some(&authz) {
            return;
        }
        let old = ns.authorizations.insert(name, authz.clone());
        if old.is_none() {
            self.metrics.authorizations.inc();
        }
        self.update_servers_of(namespace, [Some(authz), old]);
    }

    fn remove_authorization(&mut self, namespace: &str, name: &str) {
        let Some(old) = self
            .namespaces
            .get_mut(namespace)
            .and_then(|ns| ns.authorizations.remove(name))
        else {
            return;
        };
        self.metrics.authorizations.dec();
        self.update_servers_of(namespace, [Some(old)]);
    }

    /// Recomputes the pods selected by any Server that any of `authzs` targets.
    fn update_servers_of<const N: usize>(
        &mut self,
        namespace: &str,
        authzs: [Option<AuthorizationInfo>; N],
    ) {
        let Some(ns) = self.namespaces.get(namespace) else {
            return;
        };
        let affected: BTreeSet<String> = ns
            .servers
            .values()
            .filter(|server| authzs.iter().flatten().any(|a| a.targets(server)))
            .flat_map(|server| ns.selected.get(&server.name).into_iter().flatten())
            .cloned()
            .collect();
        self.update_pods(namespace, &affected);
    }
}

impl IndexNamespacedResource<DeserializeGuard<ServerAuthorization>> for Index {
    fn apply(&mut self, guard: DeserializeGuard<ServerAuthorization>) {
        let namespace = guard.namespace().unwrap_or_default();
        let name = guard.name_any();
        let result = guard
            .0
            .map_err(|invalid| invalid.error)
            .and_then(AuthorizationInfo::from_resource);
        match result {
            Ok(authz) => self.upsert_authorization(&namespace, name, authz),
            Err(error) => {
                tracing::warn!(%namespace, %name, %error, "skipping invalid ServerAuthorization");
                self.metrics.invalid_objects.inc();
                self.remove_authorization(&namespace, &name);
            }
        }
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.remove_authorization(&namespace, &name);
    }
}

impl IndexNamespacedResource<ServerAuthorization> for Index {
    fn apply(&mut self, authz: ServerAuthorization) {
        IndexNamespacedResource::apply(self, DeserializeGuard(Ok(authz)));
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.remove_authorization(&namespace, &name);
    }
}
