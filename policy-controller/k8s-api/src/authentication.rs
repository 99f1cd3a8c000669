//! The authentications an `AuthorizationPolicy` can require: `MeshTLSAuthentication` (who the
//! client is, from its mesh TLS identity) and `NetworkAuthentication` (where it connects from).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{FieldError, Network};

/// Clients connecting over mesh TLS with one of these identities.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "policy.weft.dev",
    version = "v1beta1",
    kind = "MeshTLSAuthentication",
    namespaced,
    shortname = "meshtlsauthn",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct MeshTlsAuthenticationSpec {
    /// Mesh identities; `*` matches any identity, `*.<suffix>` any identity ending in the suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<String>>,
    /// The identities of Kubernetes objects: a `ServiceAccount` (name `*`: every service account
    /// of the namespace) or a `Namespace` (every service account in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_refs: Option<Vec<IdentityRef>>,
}

/// A ServiceAccount or a Namespace whose service accounts are authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct IdentityRef {
    /// `""` (the core group) or omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ServiceAccount` or `Namespace`.
    pub kind: String,
    /// The object's name; for a ServiceAccount, `*` means all of its namespace.
    pub name: String,
    /// A ServiceAccount's namespace; defaults to the authentication's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Clients connecting from these networks.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "policy.weft.dev",
    version = "v1beta1",
    kind = "NetworkAuthentication",
    namespaced,
    shortname = "netauthn",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAuthenticationSpec {
    /// Client networks: a CIDR, minus optional `except` CIDRs inside it.
    pub networks: Vec<Network>,
}

/// A service account a mesh identity is derived from; `name` `*` stands for all service accounts
/// of `namespace`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceAccountIdentity {
    pub name: String,
    pub namespace: String,
}

/// What a valid MeshTLSAuthentication authenticates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeshTlsClients {
    pub identities: Vec<String>,
    pub service_accounts: Vec<ServiceAccountIdentity>,
}

impl MeshTlsAuthenticationSpec {
    /// Checks the spec and returns the clients it authenticates, service account namespaces
    /// defaulted to `namespace` (the authentication's).
    pub fn clients(&self, namespace: &str) -> Result<MeshTlsClients, FieldError> {
        let identities = self.identities.clone().unwrap_or_default();
        let refs = self.identity_refs.as_deref().unwrap_or_default();
        if identities.is_empty() && refs.is_empty() {
            return Err(FieldError::new(
                "spec",
                "set identities (mesh identities, `*` for any) or identityRefs (ServiceAccounts \
                 or Namespaces); an authentication with neither authenticates nobody",
            ));
        }
        if let Some(i) = identities.iter().position(|id| id.trim().is_empty()) {
            return Err(FieldError::new(
                format!("spec.identities[{i}]"),
                "must not be empty",
            ));
        }
        let mut service_accounts = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            let at = format!("spec.identityRefs[{i}]");
            if r.group.as_deref().is_some_and(|g| !g.is_empty()) {
                return Err(FieldError::new(
                    format!("{at}.group"),
                    "must be \"\" (the core group) or omitted",
                ));
            }
            if r.name.is_empty() {
                return Err(FieldError::new(format!("{at}.name"), "must not be empty"));
            }
            match r.kind.as_str() {
                "ServiceAccount" => service_accounts.push(ServiceAccountIdentity {
                    name: r.name.clone(),
                    namespace: r.namespace.clone().unwrap_or_else(|| namespace.to_string()),
                }),
                "Namespace" => {
                    if r.namespace.is_some() {
                        return Err(FieldError::new(
                            format!("{at}.namespace"),
                            "must be omitted for a Namespace (its name is the namespace)",
                        ));
                    }
                    service_accounts.push(ServiceAccountIdentity {
                        name: "*".to_string(),
                        namespace: r.name.clone(),
                    });
                }
                other => {
                    return Err(FieldError::new(
                        format!("{at}.kind"),
                        format!("{other:?} is not ServiceAccount or Namespace"),
                    ))
                }
            }
        }
        Ok(MeshTlsClients {
            identities,
            service_accounts,
        })
    }
}

impl NetworkAuthenticationSpec {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.networks.is_empty() {
            return Err(FieldError::new(
                "spec.networks",
                "must list at least one network (e.g. {cidr: 10.0.0.0/8})",
            ));
        }
        for (i, network) in self.networks.iter().enumerate() {
            network.validate(&format!("spec.networks[{i}]"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn mtls(spec: serde_json::Value) -> Result<MeshTlsClients, String> {
        let spec: MeshTlsAuthenticationSpec = serde_json::from_value(spec).unwrap();
        spec.clients("shop").map_err(|e| e.to_string())
    }

    #[test]
    fn mesh_tls_clients_table() {
        let sa = |name: &str, namespace: &str| ServiceAccountIdentity {
            name: name.into(),
            namespace: namespace.into(),
        };
        let cases: Vec<(serde_json::Value, Result<MeshTlsClients, &str>)> = vec![
            (
                json!({"identities": ["*"]}),
                Ok(MeshTlsClients {
                    identities: vec!["*".into()],
                    service_accounts: vec![],
                }),
            ),
            (
                json!({"identityRefs": [
                    {"kind": "ServiceAccount", "name": "billing"},
                    {"kind": "ServiceAccount", "name": "*", "namespace": "ops"},
                    {"kind": "Namespace", "name": "audit", "group": ""},
                ]}),
                Ok(MeshTlsClients {
                    identities: vec![],
                    service_accounts: vec![sa("billing", "shop"), sa("*", "ops"), sa("*", "audit")],
                }),
            ),
            (json!({}), Err("spec: set identities (mesh identities, `*` for any) or identityRefs (ServiceAccounts or Namespaces); an authentication with neither authenticates nobody")),
            (json!({"identities": [], "identityRefs": []}), Err("spec: set identities")),
            (json!({"identities": [" "]}), Err("spec.identities[0]: must not be empty")),
            (
                json!({"identityRefs": [{"kind": "Pod", "name": "x"}]}),
                Err("spec.identityRefs[0].kind: \"Pod\" is not ServiceAccount or Namespace"),
            ),
            (
                json!({"identityRefs": [{"kind": "ServiceAccount", "name": "x", "group": "apps"}]}),
                Err("spec.identityRefs[0].group: must be \"\" (the core group) or omitted"),
            ),
            (
                json!({"identityRefs": [{"kind": "ServiceAccount", "name": ""}]}),
                Err("spec.identityRefs[0].name: must not be empty"),
            ),
            (
                json!({"identityRefs": [{"kind": "Namespace", "name": "a", "namespace": "b"}]}),
                Err("spec.identityRefs[0].namespace: must be omitted for a Namespace"),
            ),
        ];
        for (spec, want) in cases {
            let got = mtls(spec.clone());
            match (&got, want) {
                (Ok(got), Ok(want)) => assert_eq!(*got, want, "{spec}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{spec}: {got}"),
                _ => panic!("{spec}: got {got:?}"),
            }
        }
    }

    #[test]
    fn network_authentication_table() {
        let check = |spec: serde_json::Value| {
            serde_json::from_value::<NetworkAuthenticationSpec>(spec)
                .unwrap()
                .validate()
                .map_err(|e| e.to_string())
        };
        check(json!({"networks": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]})).unwrap();
        assert_eq!(
            check(json!({"networks": []})).unwrap_err(),
            "spec.networks: must list at least one network (e.g. {cidr: 10.0.0.0/8})"
        );
        assert_eq!(
            check(json!({"networks": [{"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}]}))
                .unwrap_err(),
            "spec.networks[0].except[0]: 192.168.0.0/16 is not inside cidr 10.0.0.0/8"
        );
    }
}
