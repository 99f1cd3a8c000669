//! The `AuthorizationPolicy` resource: the clients allowed to reach a Server, every Server of the
//! namespace, or one HTTPRoute, by the authentications they must all pass.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{FieldError, ServiceAccountIdentity, GROUP};

/// The API group of Gateway API routes.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Authorizes the clients that pass every required authentication to reach its target.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "policy.weft.dev",
    version = "v1beta1",
    kind = "AuthorizationPolicy",
    namespaced,
    shortname = "authzpolicy",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// What the policy applies to, in its namespace: a `Server` (group `policy.weft.dev`), an
    /// `HTTPRoute` (group `gateway.networking.k8s.io`), or the `Namespace` itself (group `""`,
    /// name: the policy's namespace), which means every Server in it.
    pub target_ref: TargetRef,
    /// The authentications a client must all pass: at most one `MeshTLSAuthentication` or any
    /// number of `ServiceAccount`s (who), and at most one `NetworkAuthentication` (from where).
    /// Empty: every client, from anywhere, authenticated or not.
    #[serde(default)]
    pub required_authentication_refs: Vec<AuthenticationRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct TargetRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct AuthenticationRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `MeshTLSAuthentication`, `NetworkAuthentication` (group `policy.weft.dev`, in the
    /// policy's namespace) or `ServiceAccount` (group `""`).
    pub kind: String,
    pub name: String,
    /// Only for a ServiceAccount: its namespace, by default the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a valid policy targets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PolicyTarget {
    Server(String),
    HttpRoute(String),
    /// Every Server of the policy's namespace.
    Namespace,
}

/// The authentications a valid policy requires, by name in its namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequiredAuthentications {
    pub mesh_tls: Option<String>,
    pub service_accounts: Vec<ServiceAccountIdentity>,
    pub network: Option<String>,
}

const TARGET_FORMS: &str = "accepted: {group: policy.weft.dev, kind: Server}, \
    {group: gateway.networking.k8s.io, kind: HTTPRoute} or {group: \"\", kind: Namespace}";

const AUTHN_FORMS: &str = "accepted: {group: policy.weft.dev, kind: MeshTLSAuthentication}, \
    {group: policy.weft.dev, kind: NetworkAuthentication} or {group: \"\", kind: ServiceAccount}";

impl AuthorizationPolicySpec {
    /// The policy's target, checked. `namespace` is the policy's own: a Namespace target must
    /// name it.
    pub fn target(&self, namespace: &str) -> Result<PolicyTarget, FieldError> {
        let TargetRef { group, kind, name } = &self.target_ref;
        if name.is_empty() {
            return Err(FieldError::new("spec.targetRef.name", "must not be empty"));
        }
        let group = group.as_deref().unwrap_or("");
        match (group, kind.as_str()) {
            (GROUP, "Server") => Ok(PolicyTarget::Server(name.clone())),
            (GATEWAY_GROUP, "HTTPRoute") => Ok(PolicyTarget::HttpRoute(name.clone())),
            ("", "Namespace") if name == namespace => Ok(PolicyTarget::Namespace),
            ("", "Namespace") => Err(FieldError::new(
                "spec.targetRef.name",
                format!("a policy can target only its own namespace ({namespace:?}), not {name:?}"),
            )),
            (group, kind) => Err(FieldError::new(
                "spec.targetRef",
                format!("{kind:?} in group {group:?} is not a target Weft knows; {TARGET_FORMS}"),
            )),
        }
    }

    /// The required authentications, checked; ServiceAccount namespaces default to `namespace`.
    pub fn authentications(&self, namespace: &str) -> Result<RequiredAuthentications, FieldError> {
        let mut required = RequiredAuthentications::default();
        for (i, r) in self.required_authentication_refs.iter().enumerate() {
            let at = format!("spec.requiredAuthenticationRefs[{i}]");
            if r.name.is_empty() {
                return Err(FieldError::new(format!("{at}.name"), "must not be empty"));
            }
            let group = r.group.as_deref().unwrap_or("");
            let kind = r.kind.as_str();
            if kind != "ServiceAccount" && r.namespace.is_some() {
                return Err(FieldError::new(
                    format!("{at}.namespace"),
                    "must be omitted: authentications are looked up in the policy's namespace",
                ));
            }
            match (group, kind) {
                (GROUP, "MeshTLSAuthentication") => {
                    if required.mesh_tls.is_some() {
                        return Err(FieldError::new(
                            at,
                            "a policy can require at most one MeshTLSAuthentication",
                        ));
                    }
                    required.mesh_tls = Some(r.name.clone());
                }
                (GROUP, "NetworkAuthentication") => {
                    if required.network.is_some() {
                        return Err(FieldError::new(
                            at,
                            "a policy can require at most one NetworkAuthentication",
                        ));
                    }
                    required.network = Some(r.name.clone());
                }
                ("", "ServiceAccount") => required.service_accounts.push(ServiceAccountIdentity {
                    name: r.name.clone(),
                    namespace: r.namespace.clone().unwrap_or_else(|| namespace.to_string()),
                }),
                (group, kind) => {
                    return Err(FieldError::new(
                        at,
                        format!(
                            "{kind:?} in group {group:?} is not an authentication Weft knows; \
                             {AUTHN_FORMS}"
                        ),
                    ))
                }
            }
        }
        if required.mesh_tls.is_some() && !required.service_accounts.is_empty() {
            return Err(FieldError::new(
                "spec.requiredAuthenticationRefs",
                "require either a MeshTLSAuthentication or ServiceAccounts, not both (list the \
                 service accounts in the MeshTLSAuthentication's identityRefs)",
            ));
        }
        Ok(required)
    }

    /// Checks the whole spec.
    pub fn validate(&self, namespace: &str) -> Result<(), FieldError> {
        self.target(namespace)?;
        self.authentications(namespace).map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn spec(target: serde_json::Value, authns: serde_json::Value) -> AuthorizationPolicySpec {
        serde_json::from_value(json!({"targetRef": target, "requiredAuthenticationRefs": authns}))
            .unwrap()
    }

    #[test]
    fn targets_table() {
        let cases = [
            (
                json!({"group": "policy.weft.dev", "kind": "Server", "name": "web"}),
                Ok(PolicyTarget::Server("web".into())),
            ),
            (
                json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}),
                Ok(PolicyTarget::HttpRoute("r".into())),
            ),
            (
                json!({"kind": "Namespace", "name": "shop"}),
                Ok(PolicyTarget::Namespace),
            ),
            (
                json!({"kind": "Namespace", "name": "other"}),
                Err("spec.targetRef.name: a policy can target only its own namespace (\"shop\"), not \"other\""),
            ),
            (
                json!({"kind": "Server", "name": "web"}),
                Err("spec.targetRef: \"Server\" in group \"\" is not a target Weft knows; accepted: {group: policy.weft.dev, kind: Server}"),
            ),
            (
                json!({"group": "policy.weft.dev", "kind": "Pod", "name": "web"}),
                Err("spec.targetRef: \"Pod\" in group \"policy.weft.dev\" is not a target"),
            ),
            (
                json!({"group": "policy.weft.dev", "kind": "Server", "name": ""}),
                Err("spec.targetRef.name: must not be empty"),
            ),
        ];
        for (target, want) in cases {
            let got = spec(target.clone(), json!([]))
                .target("shop")
                .map_err(|e| e.to_string());
            match (&got, want) {
                (Ok(got), Ok(want)) => assert_eq!(*got, want),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{target}: {got}"),
                _ => panic!("{target}: {got:?}"),
            }
        }
    }

    #[test]
    fn authentications_table() {
        let server = json!({"group": "policy.weft.dev", "kind": "Server", "name": "web"});
        let mtls = |name: &str| json!({"group": "policy.weft.dev", "kind": "MeshTLSAuthentication", "name": name});
        let net = |name: &str| json!({"group": "policy.weft.dev", "kind": "NetworkAuthentication", "name": name});
        let sa = |name: &str| json!({"kind": "ServiceAccount", "name": name});
        let ok = |authns: serde_json::Value| {
            spec(server.clone(), authns)
                .authentications("shop")
                .unwrap()
        };
        let err = |authns: serde_json::Value| {
            spec(server.clone(), authns)
                .authentications("shop")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(ok(json!([])), RequiredAuthentications::default());
        assert_eq!(
            ok(json!([mtls("billing"), net("cluster")])),
            RequiredAuthentications {
                mesh_tls: Some("billing".into()),
                service_accounts: vec![],
                network: Some("cluster".into()),
            }
        );
        assert_eq!(
            ok(json!([sa("a"), {"kind": "ServiceAccount", "name": "b", "namespace": "ops"}]))
                .service_accounts,
            vec![
                ServiceAccountIdentity {
                    name: "a".into(),
                    namespace: "shop".into()
                },
                ServiceAccountIdentity {
                    name: "b".into(),
                    namespace: "ops".into()
                },
            ]
        );
        assert_eq!(
            err(json!([mtls("a"), mtls("b")])),
            "spec.requiredAuthenticationRefs[1]: a policy can require at most one MeshTLSAuthentication"
        );
        assert_eq!(
            err(json!([net("a"), net("b")])),
            "spec.requiredAuthenticationRefs[1]: a policy can require at most one NetworkAuthentication"
        );
        assert!(err(json!([mtls("a"), sa("b")]))
            .starts_with("spec.requiredAuthenticationRefs: require either a MeshTLSAuthentication or ServiceAccounts"));
        assert!(err(json!([{"kind": "Secret", "name": "x"}])).starts_with(
            "spec.requiredAuthenticationRefs[0]: \"Secret\" in group \"\" is not an authentication Weft knows"
        ));
        assert_eq!(
            err(json!([{"group": "policy.weft.dev", "kind": "NetworkAuthentication", "name": "x", "namespace": "y"}])),
            "spec.requiredAuthenticationRefs[0].namespace: must be omitted: authentications are looked up in the policy's namespace"
        );
        assert_eq!(
            err(json!([sa("")])),
            "spec.requiredAuthenticationRefs[0].name: must not be empty"
        );
    }
}
