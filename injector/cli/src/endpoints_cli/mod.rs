//! `weft endpoints SVC.NS:PORT`: asks the controller's Destination API
//! (`io.linkerd.proxy.destination.Destination/Get`) what a meshed proxy would resolve for a
//! Service port, and prints the endpoints as a table, like `linkerd diagnostics endpoints`.
//!
//! The pure parts are here (the argument, the request path, what a refusal means) and in
//! [`render`] (messages → a table and change lines); [`client`] only calls the API over the
//! connection [`crate::grpc_client`] makes, the one `weft policy` uses.

mod args;
pub mod client;
pub mod render;

pub use self::args::EndpointsArgs;
use crate::grpc_client::parse_port;

/// The accepted forms of the argument, for usage errors and `--help`.
pub const FORMS: &str = "SVC.NS:PORT (e.g. web.emojivoto:80) or SVC.NS.svc.DOMAIN:PORT (e.g. \
                         web.emojivoto.svc.cluster.local:80)";

/// A Service port, as `SVC.NS:PORT` or `SVC.NS.svc.DOMAIN:PORT` on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub service: String,
    pub namespace: String,
    /// The cluster domain when the argument named one (the full form); the path is then the
    /// argument as given.
    pub domain: Option<String>,
    pub port: u16,
}

/// An argument that is neither accepted form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a Service port{reason}: expected {FORMS}")]
pub struct InvalidServicePort {
    pub value: String,
    /// Why, when more can be said than "not that form" (e.g. the port is out of range).
    pub reason: String,
}

/// A DNS label as Kubernetes names Services and namespaces: lowercase letters, digits and `-`,
/// neither first nor last.
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A cluster domain (`cluster.local`): dot-separated DNS labels (clap value parser for
/// `--cluster-domain`).
pub fn parse_cluster_domain(s: &str) -> Result<String, String> {
    if s.split('.').all(is_label) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a DNS domain (lowercase labels separated by dots, e.g. cluster.local)"
        ))
    }
}

impl std::str::FromStr for ServicePort {
    type Err = InvalidServicePort;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InvalidServicePort {
            value: s.to_string(),
            reason,
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid(" (no :PORT)".into()))?;
        let port = parse_port(port).map_err(|e| invalid(format!(" ({e})")))?;
        let labels: Vec<&str> = host.split('.').collect();
        if !labels.iter().copied().all(is_label) {
            return Err(invalid(String::new()));
        }
        let domain = match labels.as_slice() {
            [_, _] => None,
            [_, _, "svc", domain @ ..] if !domain.is_empty() => Some(domain.join(".")),
            _ => return Err(invalid(String::new())),
        };
        Ok(ServicePort {
            service: labels[0].to_string(),
            namespace: labels[1].to_string(),
            domain,
            port,
        })
    }
}

impl std::fmt::Display for ServicePort {
    /// `SVC.NS` (without the port or domain), as messages name the Service.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.service, self.namespace)
    }
}

impl ServicePort {
    /// The `path` of a `GetDestination`, as a proxy sends it:
    /// `<svc>.<ns>.svc.<domain>:<port>`, with the argument's domain, else `cluster_domain`.
    pub fn path(&self, cluster_domain: &str) -> String {
        let domain = self.domain.as_deref().unwrap_or(cluster_domain);
        format!(
            "{}.{}.svc.{domain}:{}",
            self.service, self.namespace, self.port
        )
    }
}

/// What to tell the user when the controller refuses the request for `path`.
pub fn describe_status(status: &tonic::Status, path: &str) -> String {
    let message = status.message();
    match status.code() {
        tonic::Code::InvalidArgument => {
            format!("the controller refused to resolve {path}: {message}")
        }
        tonic::Code::Unavailable => format!(
            "the controller's destination API is unavailable ({message}): is the controller \
             running and ready?"
        ),
        tonic::Code::Unimplemented => format!(
            "the controller does not serve the destination API ({message}): it is older than \
             this weft CLI; upgrade the installation"
        ),
        code => format!("the controller answered {code:?} for {path}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn service_ports() {
        for (arg, service, namespace, domain, port, path) in [
            (
                "web.emojivoto:80",
                "web",
                "emojivoto",
                None,
                80,
                "web.emojivoto.svc.cluster.local:80",
            ),
            (
                "web.emojivoto.svc.cluster.local:8080",
                "web",
                "emojivoto",
                Some("cluster.local"),
                8080,
                "web.emojivoto.svc.cluster.local:8080",
            ),
            (
                "db-1.prod-2.svc.corp:5432",
                "db-1",
                "prod-2",
                Some("corp"),
                5432,
                "db-1.prod-2.svc.corp:5432",
            ),
        ] {
            let parsed: ServicePort = arg.parse().unwrap();
            assert_eq!(parsed.service, service, "{arg}");
            assert_eq!(parsed.namespace, namespace, "{arg}");
            assert_eq!(parsed.domain.as_deref(), domain, "{arg}");
            assert_eq!(parsed.port, port, "{arg}");
            assert_eq!(parsed.path("cluster.local"), path, "{arg}");
            assert_eq!(parsed.to_string(), format!("{service}.{namespace}"));
        }
        // --cluster-domain shapes the short form only.
        let short: ServicePort = "web.emojivoto:80".parse().unwrap();
        assert_eq!(
            short.path("corp.example"),
            "web.emojivoto.svc.corp.example:80"
        );
        let full: ServicePort = "web.emojivoto.svc.cluster.local:80".parse().unwrap();
        assert_eq!(
            full.path("corp.example"),
            "web.emojivoto.svc.cluster.local:80"
        );
    }

    #[test]
    fn malformed_service_ports_name_the_forms() {
        for (bad, reason) in [
            ("web", " (no :PORT)"),
            ("web.emojivoto", " (no :PORT)"),
            ("web.emojivoto:0", " (port 0 is out of range (1-65535))"),
            (
                "web.emojivoto:http",
                " (\"http\" is not a port number (1-65535))",
            ),
            ("web:80", ""),
            ("web.emojivoto.svc:80", ""),
            ("web.emojivoto.cluster.local:80", ""),
            ("Web.emojivoto:80", ""),
            ("web..emojivoto:80", ""),
            ("-web.emojivoto:80", ""),
            ("web.emojivoto.svc.cluster.local.:80", ""),
            ("10.0.0.1:80", ""),
            ("[::1]:80", ""),
            (":80", ""),
            ("emojivoto/web:80", ""),
        ] {
            let err = bad.parse::<ServicePort>().unwrap_err();
            assert_eq!(err.value, bad);
            assert_eq!(err.reason, reason, "{bad}");
            let text = err.to_string();
            assert!(text.contains("SVC.NS:PORT") && text.contains("SVC.NS.svc.DOMAIN:PORT"));
        }
    }

    #[test]
    fn cluster_domains() {
        assert_eq!(
            parse_cluster_domain("cluster.local"),
            Ok("cluster.local".into())
        );
        assert_eq!(parse_cluster_domain("corp"), Ok("corp".into()));
        for bad in ["", ".local", "cluster.local.", "Cluster.local", "a b"] {
            assert!(parse_cluster_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_speak_to_the_user() {
        let path = "web.emojivoto.svc.cluster.local:80";
        assert_eq!(
            describe_status(&tonic::Status::invalid_argument("bad path"), path),
            "the controller refused to resolve web.emojivoto.svc.cluster.local:80: bad path"
        );
        assert!(describe_status(&tonic::Status::unavailable("down"), path)
            .ends_with("is the controller running and ready?"));
        assert!(describe_status(&tonic::Status::unimplemented("no"), path)
            .contains("older than this weft CLI"));
        assert_eq!(
            describe_status(&tonic::Status::internal("boom"), path),
            "the controller answered Internal for web.emojivoto.svc.cluster.local:80: boom"
        );
    }
}
