//! The `Server` resource: a port on the pods a selector picks, and the protocol spoken there.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{FieldError, LabelSelector, Port};

/// Describes a port of the selected pods: which protocol it speaks. Who may connect is given by
/// ServerAuthorizations that target this Server.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "policy.weft.dev",
    version = "v1beta1",
    kind = "Server",
    namespaced,
    shortname = "srv",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Port","type":"string","jsonPath":".spec.port"}"#,
    printcolumn = r#"{"name":"Protocol","type":"string","jsonPath":".spec.proxyProtocol"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Selects the pods in this namespace the Server applies to.
    pub pod_selector: LabelSelector,
    /// A port number (1-65535) or the name of a container port (containers and init containers).
    pub port: Port,
    /// The protocol on the port; `unknown` lets the proxy detect it.
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
}

/// The protocol a Server's port speaks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum ProxyProtocol {
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
    #[serde(rename = "HTTP/1")]
    Http1,
    #[serde(rename = "HTTP/2")]
    Http2,
    #[serde(rename = "gRPC")]
    Grpc,
    #[serde(rename = "opaque")]
    Opaque,
    #[serde(rename = "TLS")]
    Tls,
}

impl ServerSpec {
    /// Checks what the types alone cannot; field names are rooted at `spec`.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.pod_selector.validate("spec.podSelector")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn protocol_defaults_to_unknown() {
        let spec: ServerSpec =
            serde_json::from_value(json!({"podSelector": {}, "port": "http"})).unwrap();
        assert_eq!(spec.proxy_protocol, ProxyProtocol::Unknown);
    }

    #[test]
    fn protocol_spellings() {
        for (text, proto) in [
            ("unknown", ProxyProtocol::Unknown),
            ("HTTP/1", ProxyProtocol::Http1),
            ("HTTP/2", ProxyProtocol::Http2),
            ("gRPC", ProxyProtocol::Grpc),
            ("opaque", ProxyProtocol::Opaque),
            ("TLS", ProxyProtocol::Tls),
        ] {
            assert_eq!(
                serde_json::from_value::<ProxyProtocol>(json!(text)).unwrap(),
                proto
            );
            assert_eq!(serde_json::to_value(proto).unwrap(), json!(text));
        }
        assert!(serde_json::from_value::<ProxyProtocol>(json!("http/1")).is_err());
    }
}
