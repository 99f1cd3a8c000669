//! The default inbound policy: what a port that no Server describes allows. The names are
//! linkerd2-proxy's own (`LINKERD2_PROXY_INBOUND_DEFAULT_POLICY`) and Linkerd's, so the value is
//! passed to the proxy unchanged.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

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

/// The accepted values, for messages.
pub const ACCEPTED: &str =
    "all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny";

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

    /// The same policy for meshed (mTLS) clients only: `*-unauthenticated` becomes
    /// `*-authenticated`; the others stay.
    pub fn authenticated(self) -> Self {
        match self {
            DefaultPolicy::AllUnauthenticated => DefaultPolicy::AllAuthenticated,
            DefaultPolicy::ClusterUnauthenticated => DefaultPolicy::ClusterAuthenticated,
            other => other,
        }
    }

    /// The `cluster-*` policies, which the proxy accepts only with cluster networks.
    pub fn needs_cluster_networks(self) -> bool {
        matches!(
            self,
            DefaultPolicy::ClusterUnauthenticated | DefaultPolicy::ClusterAuthenticated
        )
    }
}

impl fmt::Display for DefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A default policy name that is not one of the accepted values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a default inbound policy; expected one of: {ACCEPTED}")]
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_every_value_and_names_them_on_error() {
        for p in DefaultPolicy::ALL {
            assert_eq!(p.as_str().parse::<DefaultPolicy>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert_eq!(
                p.needs_cluster_networks(),
                p.as_str().starts_with("cluster-")
            );
        }
        assert_eq!(
            "allow".parse::<DefaultPolicy>().unwrap_err().to_string(),
            "\"allow\" is not a default inbound policy; expected one of: all-unauthenticated, \
             all-authenticated, cluster-unauthenticated, cluster-authenticated, deny"
        );
    }
}
