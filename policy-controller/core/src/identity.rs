//! Identity names: `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`, the DNS
//! name a proxy's certificate carries (Linkerd's scheme, which linkerd2-proxy only compares as a
//! name), built and parsed here and nowhere else.

use std::fmt;

/// The part of every identity name the control plane fixes: its namespace and the trust domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mesh {
    control_plane_namespace: String,
    trust_domain: String,
}

/// A service account by namespace and name. Identity names are built from this, never from two
/// loose strings, so the two cannot be swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceAccountRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// A Kubernetes user name that is not a service account's, or one whose parts cannot be a DNS
/// label.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "the token belongs to `{0}`, not to a service account (expected `system:serviceaccount:<namespace>:<name>`)"
    )]
    NotAServiceAccount(String),
    #[error("`{0}` is not usable in an identity name (expected a DNS label: a-z, 0-9 and `-`)")]
    InvalidLabel(String),
}

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const SERVICE_ACCOUNT_INFIX: &str = ".serviceaccount.identity.";

impl Mesh {
    /// `control_plane_namespace` is the namespace the controller runs in; `trust_domain` is e.g.
    /// `cluster.local`.
    pub fn new(
        control_plane_namespace: impl Into<String>,
        trust_domain: impl Into<String>,
    ) -> Self {
        Self {
            control_plane_namespace: control_plane_namespace.into(),
            trust_domain: trust_domain.into(),
        }
    }

    pub fn control_plane_namespace(&self) -> &str {
        &self.control_plane_namespace
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The identity of a service account. The parts are used as given (the injector passes the
    /// proxy's `$(_pod_sa)`/`$(_pod_ns)` environment references).
    pub fn identity(&self, sa: ServiceAccountRef<'_>) -> String {
        format!(
            "{}.{}{SERVICE_ACCOUNT_INFIX}{}.{}",
            sa.name, sa.namespace, self.control_plane_namespace, self.trust_domain
        )
    }

    /// The suffix every identity of one namespace ends with, after `*` or the account name:
    /// `.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`.
    pub fn namespace_suffix(&self, namespace: &str) -> String {
        format!(
            ".{namespace}{SERVICE_ACCOUNT_INFIX}{}.{}",
            self.control_plane_namespace, self.trust_domain
        )
    }

    /// The service account an identity name of this mesh names, or `None` when the name is not
    /// one (another mesh, or not an identity name).
    pub fn service_account_of<'n>(&self, identity: &'n str) -> Option<ServiceAccountRef<'n>> {
        let mesh_suffix = format!(
            "{SERVICE_ACCOUNT_INFIX}{}.{}",
            self.control_plane_namespace, self.trust_domain
        );
        let account = identity.strip_suffix(&mesh_suffix)?;
        let (name, namespace) = account.split_once('.')?;
        (is_dns_label(name) && is_dns_label(namespace))
            .then_some(ServiceAccountRef { namespace, name })
    }

    /// The identity of the Kubernetes user `user`, which must be a service account
    /// (`system:serviceaccount:<ns>:<sa>`, as a TokenReview reports it).
    pub fn identity_of_user(&self, user: &str) -> Result<String, NameError> {
        let not_sa = || NameError::NotAServiceAccount(user.to_string());
        let rest = user
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .ok_or_else(not_sa)?;
        let (namespace, name) = rest.split_once(':').ok_or_else(not_sa)?;
        for label in [namespace, name] {
            if !is_dns_label(label) {
                return Err(NameError::InvalidLabel(label.to_string()));
            }
        }
        Ok(self.identity(ServiceAccountRef { namespace, name }))
    }
}

impl fmt::Display for ServiceAccountRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An RFC 1123 label: 1–63 of `a-z`, `0-9`, `-`, starting and ending alphanumeric. Namespaces and
/// service account names are validated as such by the API server (service accounts as DNS
/// subdomains, so a dot is refused here: it would make the identity ambiguous).
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sa<'a>(namespace: &'a str, name: &'a str) -> ServiceAccountRef<'a> {
        ServiceAccountRef { namespace, name }
    }

    #[test]
    fn identity_names_are_formatted_and_parsed_back() {
        let mesh = Mesh::new("weft", "cluster.local");
        let web = mesh.identity(sa("emojivoto", "web"));
        assert_eq!(
            web,
            "web.emojivoto.serviceaccount.identity.weft.cluster.local"
        );
        assert_eq!(mesh.service_account_of(&web), Some(sa("emojivoto", "web")));
        assert_eq!(
            mesh.namespace_suffix("emojivoto"),
            ".emojivoto.serviceaccount.identity.weft.cluster.local"
        );
        for other in [
            "web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
            "web.emojivoto.serviceaccount.identity.weft.example.org",
            "emojivoto.serviceaccount.identity.weft.cluster.local",
            "a.b.c.serviceaccount.identity.weft.cluster.local",
            "web.emojivoto.cluster.local",
        ] {
            assert_eq!(mesh.service_account_of(other), None, "{other}");
        }
        // The injector's environment references are used as given.
        assert_eq!(
            mesh.identity(sa("$(_pod_ns)", "$(_pod_sa)")),
            "$(_pod_sa).$(_pod_ns).serviceaccount.identity.weft.cluster.local"
        );
    }

    #[test]
    fn identity_of_a_service_account_user() {
        let mesh = Mesh::new("weft", "cluster.local");
        assert_eq!(
            mesh.identity_of_user("system:serviceaccount:emojivoto:web"),
            Ok("web.emojivoto.serviceaccount.identity.weft.cluster.local".to_string())
        );
    }

    #[test]
    fn users_that_are_not_service_accounts_are_refused() {
        let mesh = Mesh::new("weft", "cluster.local");
        for user in [
            "kubernetes-admin",
            "system:serviceaccount:",
            "system:serviceaccount:ns",
            "system:node:node-1",
        ] {
            let error = mesh.identity_of_user(user).unwrap_err();
            assert_eq!(error, NameError::NotAServiceAccount(user.to_string()));
            assert!(error.to_string().contains(user), "{error}");
        }
        for (user, label) in [
            ("system:serviceaccount:ns:a.b", "a.b"),
            ("system:serviceaccount::sa", ""),
            ("system:serviceaccount:ns:sa:x", "sa:x"),
            ("system:serviceaccount:NS:sa", "NS"),
        ] {
            assert_eq!(
                mesh.identity_of_user(user),
                Err(NameError::InvalidLabel(label.to_string())),
                "{user}"
            );
        }
    }
}
