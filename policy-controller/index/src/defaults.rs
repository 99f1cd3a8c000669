//! Cluster-wide facts and the default inbound policy for ports no Server describes.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// The annotation (on a namespace or a pod) that overrides the cluster's default policy.
pub const DEFAULT_POLICY_ANNOTATION: &str = "config.weft.dev/default-inbound-policy";

/// Cluster configuration the index needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The policy for ports without a Server, unless a namespace or pod overrides it.
    pub default_policy: DefaultPolicy,
    /// The networks that `cluster-*` policies admit (`--cluster-networks`).
    pub cluster_networks: Vec<IpNet>,
}

/// What a port without a Server allows.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultPolicy {
    /// Any client from any network.
    AllUnauthenticated,
    /// Mesh-TLS clients from any network.
    AllAuthenticated,
    /// Any client from the cluster networks.
    ClusterUnauthenticated,
    /// Mesh-TLS clients from the cluster networks.
    ClusterAuthenticated,
    /// Nobody.
    Deny,
}

impl DefaultPolicy {
    pub const ALL: [DefaultPolicy; 5] = [
        DefaultPolicy::AllUnauthenticated,
        DefaultPolicy::AllAuthenticated,
        DefaultPolicy::ClusterUnauthenticated,
        DefaultPolicy::ClusterAuthenticated,
        DefaultPolicy::Deny,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::AllUnauthenticated => "all-unauthenticated",
            DefaultPolicy::AllAuthenticated => "all-authenticated",
            DefaultPolicy::ClusterUnauthenticated => "cluster-unauthenticated",
            DefaultPolicy::ClusterAuthenticated => "cluster-authenticated",
            DefaultPolicy::Deny => "deny",
        }
    }
}

impl fmt::Display for DefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A default policy name that is not one of the accepted values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a default inbound policy; expected one of: all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny")]
pub struct InvalidDefaultPolicy {
    pub value: String,
}

impl FromStr for DefaultPolicy {
    type Err = InvalidDefaultPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DefaultPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| InvalidDefaultPolicy {
                value: s.to_string(),
            })
    }
}

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
                tracing::warn!(%error, "ignoring {DEFAULT_POLICY_ANNOTATION} on {what}; the cluster default applies");
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
    fn parses_every_value_and_names_them_on_error() {
        for p in DefaultPolicy::ALL {
            assert_eq!(p.as_str().parse::<DefaultPolicy>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(
            "allow".parse::<DefaultPolicy>().unwrap_err().to_string(),
            "\"allow\" is not a default inbound policy; expected one of: all-unauthenticated, \
             all-authenticated, cluster-unauthenticated, cluster-authenticated, deny"
        );
    }

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
