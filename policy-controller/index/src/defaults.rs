//! Cluster-wide facts and the default inbound policy for ports no Server describes.

use std::fmt;
pub use weft_core::{names::DEFAULT_POLICY_ANNOTATION, DefaultPolicy, InvalidDefaultPolicy};

/// A namespace's or pod's override annotation, parsed once when the object is applied.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) enum PolicyOverride {
    #[default]
    Unset,
    Valid(DefaultPolicy),
    /// Logged when parsed; the cluster default applies.
    Invalid,
}

impl PolicyOverride {
    /// Parses the annotation value, logging a warning naming `what` when it is invalid.
    pub(crate) fn parse(value: Option<&str>, what: &dyn fmt::Display) -> Self {
        match value.map(str::parse::<DefaultPolicy>) {
            None => PolicyOverride::Unset,
            Some(Ok(policy)) => PolicyOverride::Valid(policy),
            Some(Err(error)) => {
                tracing::warn!(%error, "ignoring {DEFAULT_POLICY_ANNOTATION} (or its Linkerd spelling) on {what}; the cluster default applies");
                PolicyOverride::Invalid
            }
        }
    }
}

/// The default policy of a pod: its own override, else its namespace's, else the cluster's. An
/// invalid override at either level yields the cluster default.
pub(crate) fn effective_default(
    cluster: DefaultPolicy,
    namespace: &PolicyOverride,
    pod: &PolicyOverride,
) -> DefaultPolicy {
    match (pod, namespace) {
        (PolicyOverride::Valid(p), _) => *p,
        (PolicyOverride::Invalid, _) => cluster,
        (PolicyOverride::Unset, PolicyOverride::Valid(p)) => *p,
        (PolicyOverride::Unset, _) => cluster,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn override_precedence() {
        use DefaultPolicy::*;
        use PolicyOverride::*;
        assert_eq!(effective_default(Deny, &Unset, &Unset), Deny);
        assert_eq!(
            effective_default(Deny, &Valid(AllAuthenticated), &Unset),
            AllAuthenticated
        );
        assert_eq!(
            effective_default(
                Deny,
                &Valid(AllAuthenticated),
                &Valid(ClusterUnauthenticated)
            ),
            ClusterUnauthenticated
        );
        assert_eq!(
            effective_default(Deny, &Valid(AllAuthenticated), &Invalid),
            Deny
        );
        assert_eq!(effective_default(Deny, &Invalid, &Unset), Deny);
    }
}
