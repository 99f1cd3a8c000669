//! Service authorities, as proxies name them in `Destination` requests.

use std::fmt;

/// A port of a Service, by name: what a `Destination.Get` path names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

impl ServicePort {
    /// The authority proxies resolve: `<name>.<namespace>.svc.<cluster-domain>:<port>`.
    pub fn authority(&self, cluster_domain: &str) -> String {
        format!(
            "{}.{}.svc.{cluster_domain}:{}",
            self.name, self.namespace, self.port
        )
    }
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// Why a `Destination` path is not a Service authority.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} {reason} (accepted: <service>.<namespace>.svc.{cluster_domain}:<port>)")]
pub struct InvalidAuthority {
    pub path: String,
    pub reason: &'static str,
    pub cluster_domain: String,
}

/// Parses a `Destination.Get` path: `<service>.<namespace>.svc.<cluster-domain>:<port>`.
/// SKELETON: the implementation also accepts what proxies send (a trailing dot, `svc` without
/// the cluster domain) and refuses the rest with a reason.
pub fn parse_authority(path: &str, cluster_domain: &str) -> Result<ServicePort, InvalidAuthority> {
    let invalid = |reason| InvalidAuthority {
        path: path.to_string(),
        reason,
        cluster_domain: cluster_domain.to_string(),
    };
    let (host, port) = path.rsplit_once(':').ok_or_else(|| invalid("has no port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("has no valid port"))?;
    let suffix = format!(".svc.{cluster_domain}");
    let rest = host
        .strip_suffix(&suffix)
        .ok_or_else(|| invalid("is not a Service name"))?;
    let (name, namespace) = rest
        .split_once('.')
        .ok_or_else(|| invalid("is not a Service name"))?;
    Ok(ServicePort {
        namespace: namespace.to_string(),
        name: name.to_string(),
        port,
    })
}
