//! `weft policy NS/POD PORT`: asks the controller's inbound policy gRPC API
//! (`io.linkerd.proxy.inbound.InboundServerPolicies`) for the policy a proxy would get on a pod's
//! port, and prints it as YAML, like `linkerd diagnostics policy`.
//!
//! The pure parts are here and in [`render`] (the message as YAML) and
//! [`crate::grpc_client::discover`] (the controller's address and TLS name from its Deployment);
//! [`client`] only calls the API over
//! the connection [`crate::grpc_client`] makes (shared with `weft endpoints`): to `--addr`, or
//! through a port-forward to a ready controller pod, over TLS verified against the mesh's trust
//! anchors for the controller's identity.

mod args;
pub mod client;
pub mod render;

pub use self::args::PolicyArgs;
pub use crate::grpc_client::{is_loopback_host, parse_port, split_addr};

/// The pod a proxy would ask for: `NS/POD` on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
}

/// A `NS/POD` argument that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not NAMESPACE/POD: expected a namespace and a pod name separated by one `/`, e.g. emojivoto/web-5d8f7c")]
pub struct InvalidTarget {
    pub value: String,
}

impl std::str::FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidTarget {
            value: s.to_string(),
        };
        let (namespace, pod) = s.split_once('/').ok_or_else(invalid)?;
        // Kubernetes names are DNS labels or subdomains: no spaces, slashes or colons.
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        if valid(namespace) && valid(pod) {
            Ok(Target {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            })
        } else {
            Err(invalid())
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.pod)
    }
}

impl Target {
    /// The `workload` of a `PortSpec`, as the proxy sends it.
    pub fn workload(&self) -> String {
        serde_json::json!({ "ns": self.namespace, "pod": self.pod }).to_string()
    }
}

/// What to tell the user when the controller refuses a request for `target`'s `port`.
pub fn describe_status(status: &tonic::Status, target: &Target, port: u16) -> String {
    let message = status.message();
    match status.code() {
        tonic::Code::NotFound => format!(
            "pod {target} is not known to the policy index ({message}): check that the pod \
             exists (`kubectl get pod -n {} {}`); a pod created a moment ago may not be indexed yet",
            target.namespace, target.pod
        ),
        tonic::Code::InvalidArgument => {
            format!("the controller refused the request for {target} port {port}: {message}")
        }
        tonic::Code::Unavailable => format!(
            "the controller's policy API is unavailable ({message}): is the controller running \
             and ready?"
        ),
        code => format!(
            "the controller answered {code:?} for {target} port {port}: {message}",
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets() {
        let t: Target = "emojivoto/web-5d8f".parse().unwrap();
        assert_eq!(t.namespace, "emojivoto");
        assert_eq!(t.pod, "web-5d8f");
        assert_eq!(t.to_string(), "emojivoto/web-5d8f");
        assert_eq!(t.workload(), r#"{"ns":"emojivoto","pod":"web-5d8f"}"#);
        for bad in [
            "", "web", "/web", "ns/", "ns/web/x", "ns:web", "ns /web", "ns/we\"b", "/",
        ] {
            let err = bad.parse::<Target>().unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains("NAMESPACE/POD"), "{err}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("1"), Ok(1));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(
            parse_port("0"),
            Err("port 0 is out of range (1-65535)".into())
        );
        assert_eq!(
            parse_port("70000"),
            Err("port 70000 is out of range (1-65535)".into())
        );
        assert!(parse_port("http")
            .unwrap_err()
            .contains("not a port number"));
        assert!(parse_port("-1").unwrap_err().contains("not a port number"));
    }

    #[test]
    fn addresses_and_loopback() {
        assert_eq!(split_addr("127.0.0.1:8090"), Ok(("127.0.0.1", 8090)));
        assert_eq!(split_addr("[::1]:8090"), Ok(("[::1]", 8090)));
        assert_eq!(
            split_addr("weft.weft.svc.cluster.local:8090"),
            Ok(("weft.weft.svc.cluster.local", 8090))
        );
        for bad in ["127.0.0.1", ":8090", "::1:8090", "host:0", "host:x"] {
            assert!(split_addr(bad).is_err(), "{bad}");
        }
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "localhost",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1", "[::2]", "weft.weft.svc", "0.0.0.0"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn refusals_speak_to_the_user() {
        let t: Target = "ns/web".parse().unwrap();
        let not_found = describe_status(&tonic::Status::not_found("pod ns/web not found"), &t, 80);
        assert!(
            not_found.starts_with("pod ns/web is not known to the policy index"),
            "{not_found}"
        );
        assert!(
            not_found.contains("kubectl get pod -n ns web"),
            "{not_found}"
        );
        let invalid = describe_status(&tonic::Status::invalid_argument("bad"), &t, 80);
        assert_eq!(
            invalid,
            "the controller refused the request for ns/web port 80: bad"
        );
    }
}
