//! Identity names: `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`, the DNS
//! name a proxy's certificate carries, and how one is derived from an authenticated service
//! account.

/// The part of every identity name that the control plane fixes: its namespace and the trust
/// domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityDomain {
    control_plane_ns: String,
    trust_domain: String,
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

impl IdentityDomain {
    /// `control_plane_ns` is the namespace the controller runs in; `trust_domain` is e.g.
    /// `cluster.local`.
    pub fn new(control_plane_ns: impl Into<String>, trust_domain: impl Into<String>) -> Self {
        Self {
            control_plane_ns: control_plane_ns.into(),
            trust_domain: trust_domain.into(),
        }
    }

    /// The identity of service account `sa` in namespace `ns`.
    pub fn identity(&self, ns: &str, sa: &str) -> String {
        format!(
            "{sa}.{ns}.serviceaccount.identity.{}.{}",
            self.control_plane_ns, self.trust_domain
        )
    }

    /// The identity of the Kubernetes user `user`, which must be a service account
    /// (`system:serviceaccount:<ns>:<sa>`, as a TokenReview reports it).
    pub fn identity_of_user(&self, user: &str) -> Result<String, NameError> {
        let not_sa = || NameError::NotAServiceAccount(user.to_string());
        let rest = user
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .ok_or_else(not_sa)?;
        let (ns, sa) = rest.split_once(':').ok_or_else(not_sa)?;
        for label in [ns, sa] {
            if !is_dns_label(label) {
                return Err(NameError::InvalidLabel(label.to_string()));
            }
        }
        Ok(self.identity(ns, sa))
    }

    pub fn control_plane_ns(&self) -> &str {
        &self.control_plane_ns
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }
}

/// An RFC 1123 label: 1–63 of `a-z`, `0-9`, `-`, starting and ending alphanumeric. Namespaces and
/// service account names are validated as such by the API server (service accounts as DNS
/// subdomains, so a dot is refused here: it would make the identity ambiguous).
fn is_dns_label(s: &str) -> bool {
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

    #[test]
    fn identity_of_a_service_account() {
        let domain = IdentityDomain::new("weft", "cluster.local");
        assert_eq!(
            domain.identity_of_user("system:serviceaccount:emojivoto:web"),
            Ok("web.emojivoto.serviceaccount.identity.weft.cluster.local".to_string())
        );
        assert_eq!(
            domain.identity("weft", "weft-controller"),
            "weft-controller.weft.serviceaccount.identity.weft.cluster.local"
        );
    }

    #[test]
    fn users_that_are_not_service_accounts_are_refused() {
        let domain = IdentityDomain::new("weft", "cluster.local");
        for user in [
            "kubernetes-admin",
            "system:serviceaccount:",
            "system:serviceaccount:ns",
            "system:node:node-1",
        ] {
            let error = domain.identity_of_user(user).unwrap_err();
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
                domain.identity_of_user(user),
                Err(NameError::InvalidLabel(label.to_string())),
                "{user}"
            );
        }
    }
}
