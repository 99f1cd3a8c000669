//! Weft policy resources (`policy.weft.dev/v1beta1`): [`Server`], [`ServerAuthorization`],
//! [`AuthorizationPolicy`], [`MeshTLSAuthentication`] and [`NetworkAuthentication`]; the Gateway
//! API [`HTTPRoute`]s attached to Servers; their validation, label selector matching, and CRD
//! generation.

mod authentication;
mod authorization;
mod authorization_policy;
pub mod crdgen;
pub mod http_route;
mod network;
mod port;
mod selector;
mod server;
pub mod validate;

pub use self::{
    authentication::{
        IdentityRef, MeshTLSAuthentication, MeshTlsAuthenticationSpec, MeshTlsClients,
        NetworkAuthentication, NetworkAuthenticationSpec, ServiceAccountIdentity,
    },
    authorization::{
        Client, MeshTls, ServerAuthorization, ServerAuthorizationSpec, ServerTarget,
        ServiceAccountRef,
    },
    authorization_policy::{
        AuthenticationRef, AuthorizationPolicy, AuthorizationPolicySpec, PolicyTarget,
        RequiredAuthentications, TargetRef, GATEWAY_GROUP,
    },
    http_route::HTTPRoute,
    network::{Cidr, Network},
    port::{invalid_port_name, Port, PORT_FORMS},
    selector::{LabelSelector, LabelSelectorRequirement, SelectorOperator},
    server::{ProxyProtocol, Server, ServerSpec},
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of Weft's policy resources.
pub const GROUP: &str = "policy.weft.dev";

/// The plural names of Weft's policy resources, as the API server serves them (and as RBAC names
/// them), in the order of [`crds`].
pub const RESOURCES: [&str; 5] = [
    "servers",
    "serverauthorizations",
    "authorizationpolicies",
    "meshtlsauthentications",
    "networkauthentications",
];

/// The CustomResourceDefinitions of all Weft policy resources.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        Server::crd(),
        ServerAuthorization::crd(),
        AuthorizationPolicy::crd(),
        MeshTLSAuthentication::crd(),
        NetworkAuthentication::crd(),
    ]
}

/// An invalid field: `field` is its path in the object (e.g. `spec.port`), `message` says what is
/// wrong and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod resource_names_tests {
    #[test]
    fn resources_are_the_crds_plural_names() {
        let plurals: Vec<String> = super::crds()
            .into_iter()
            .map(|crd| crd.spec.names.plural)
            .collect();
        assert_eq!(plurals, super::RESOURCES);
        assert!(super::crds()
            .iter()
            .all(|crd| crd.spec.group == super::GROUP));
    }
}
