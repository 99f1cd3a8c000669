//! The `ServerAuthorization` resource: which clients may connect to the targeted Servers.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{FieldError, LabelSelector, Network};

/// Authorizes clients to connect to the Servers it targets (by name or by Server labels).
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "policy.weft.dev",
    version = "v1beta1",
    kind = "ServerAuthorization",
    namespaced,
    shortname = "saz",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ServerAuthorizationSpec {
    /// The Servers (in this namespace) this authorization applies to.
    pub server: ServerTarget,
    /// The clients that are authorized.
    pub client: Client,
}

/// Targets one Server by `name`, or Servers by `selector` over their labels (exactly one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Authorized clients: `unauthenticated: true` or `meshTLS`, optionally limited to `networks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    /// Clients need no authentication at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unauthenticated: bool,
    /// Clients must connect over mesh TLS.
    #[serde(default, rename = "meshTLS", skip_serializing_if = "Option::is_none")]
    pub mesh_tls: Option<MeshTls>,
    /// Client networks; when omitted, all networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<Network>>,
}

/// Mesh TLS clients: by service account, by identity, or any TLS client (`unauthenticatedTLS`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshTls {
    /// Any client that connects over TLS, without checking its identity.
    #[serde(
        default,
        rename = "unauthenticatedTLS",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub unauthenticated_tls: bool,
    /// Client identities; `*` matches any identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<String>>,
    /// Client service accounts; `namespace` defaults to the authorization's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Vec<ServiceAccountRef>>,
}

#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
pub struct ServiceAccountRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ServerAuthorizationSpec {
    /// Checks what the types alone cannot; field names are rooted at `spec`.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.server.validate()?;
        self.client.validate()
    }
}

impl ServerTarget {
    fn validate(&self) -> Result<(), FieldError> {
        match (&self.name, &self.selector) {
            (Some(_), Some(_)) => Err(FieldError::new(
                "spec.server",
                "set either name or selector, not both",
            )),
            (None, None) => Err(FieldError::new(
                "spec.server",
                "set name (a Server's name) or selector (over Server labels)",
            )),
            (Some(name), None) if name.is_empty() => {
                Err(FieldError::new("spec.server.name", "must not be empty"))
            }
            (Some(_), None) => Ok(()),
            (None, Some(selector)) => selector.validate("spec.server.selector"),
        }
    }
}

impl Client {
    fn validate(&self) -> Result<(), FieldError> {
        match (&self.mesh_tls, self.unauthenticated) {
            (Some(_), true) => {
                return Err(FieldError::new(
                    "spec.client",
                    "unauthenticated: true cannot be combined with meshTLS",
                ))
            }
            (None, false) => {
                return Err(FieldError::new(
                    "spec.client",
                    "set unauthenticated: true or meshTLS",
                ))
            }
            (Some(mesh_tls), false) => mesh_tls.validate()?,
            (None, true) => {}
        }
        if let Some(networks) = &self.networks {
            if networks.is_empty() {
                return Err(FieldError::new(
                    "spec.client.networks",
                    "must not be empty (omit it to allow all networks)",
                ));
            }
            for (i, network) in networks.iter().enumerate() {
                network.validate(&format!("spec.client.networks[{i}]"))?;
            }
        }
        Ok(())
    }
}

impl MeshTls {
    fn validate(&self) -> Result<(), FieldError> {
        const AT: &str = "spec.client.meshTLS";
        if let Some(identities) = &self.identities {
            if identities.is_empty() {
                return Err(FieldError::new(
                    format!("{AT}.identities"),
                    "must not be empty (use [\"*\"] for any identity)",
                ));
            }
            if let Some(i) = identities.iter().position(|id| id.trim().is_empty()) {
                return Err(FieldError::new(
                    format!("{AT}.identities[{i}]"),
                    "must not be empty",
                ));
            }
        }
        if let Some(accounts) = &self.service_accounts {
            if accounts.is_empty() {
                return Err(FieldError::new(
                    format!("{AT}.serviceAccounts"),
                    "must not be empty",
                ));
            }
            if let Some(i) = accounts.iter().position(|sa| sa.name.is_empty()) {
                return Err(FieldError::new(
                    format!("{AT}.serviceAccounts[{i}].name"),
                    "must not be empty",
                ));
            }
        }
        let names_clients = self.identities.is_some() || self.service_accounts.is_some();
        match (self.unauthenticated_tls, names_clients) {
            (true, true) => Err(FieldError::new(
                AT,
                "unauthenticatedTLS: true cannot be combined with identities or serviceAccounts",
            )),
            (false, false) => Err(FieldError::new(
                AT,
                "set identities, serviceAccounts or unauthenticatedTLS: true",
            )),
            _ => Ok(()),
        }
    }
}
