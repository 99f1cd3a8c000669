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

/// Parses a `Destination.Get` path into the Service port it names.
///
/// Accepted (the domain case-insensitively, with an optional trailing dot on the host):
/// `<service>.<namespace>.svc.<cluster-domain>:<port>` and `<service>.<namespace>.svc:<port>`.
/// The Service and namespace are returned in lower case. Refused, each with its own `reason`: no
/// port, a port outside 1-65535, a host not under `.svc.<cluster-domain>`, an empty Service or
/// namespace, one that is not a DNS label, and extra labels (`<pod>.<service>.<namespace>.svc...`:
/// pod names of headless Services are not supported).
pub fn parse_authority(path: &str, cluster_domain: &str) -> Result<ServicePort, InvalidAuthority> {
    let invalid = |reason| InvalidAuthority {
        path: path.to_string(),
        reason,
        cluster_domain: cluster_domain.to_string(),
    };
    let (host, port) = path
        .rsplit_once(':')
        .ok_or_else(|| invalid("has no port"))?;
    if port.is_empty() {
        return Err(invalid("has no port"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| invalid("has a port that is not a number from 1 to 65535"))?;

    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let domain = cluster_domain.trim_matches('.').to_ascii_lowercase();
    let rest = host
        .strip_suffix(&format!(".svc.{domain}"))
        .filter(|_| !domain.is_empty())
        .or_else(|| host.strip_suffix(".svc"))
        .ok_or_else(|| invalid("is not a name under .svc.<cluster-domain>"))?;
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err(invalid("has an empty Service or namespace name"));
    }
    let (name, namespace) = match labels.as_slice() {
        [name, namespace] => (*name, *namespace),
        [_] => return Err(invalid("names no namespace")),
        _ => {
            return Err(invalid(
                "has labels before <service>.<namespace> (pod names of headless Services are not supported)",
            ))
        }
    };
    if !is_dns_label(name) || !is_dns_label(namespace) {
        return Err(invalid(
            "has a Service or namespace name that is not a DNS label",
        ));
    }
    Ok(ServicePort {
        namespace: namespace.to_string(),
        name: name.to_string(),
        port,
    })
}

/// An RFC 1123 label, as Kubernetes requires of Service and namespace names: 1-63 lower-case
/// letters, digits and `-`, starting and ending with a letter or digit.
fn is_dns_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| alnum(b) || b == b'-')
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}
