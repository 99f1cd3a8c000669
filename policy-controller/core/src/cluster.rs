//! The cluster settings: what every part of Weft must agree on about the cluster and the mesh,
//! in one value that `weft-controller` and `weft inject` both build from the same flags.

use crate::{DefaultPolicy, Mesh, PortList};
use ipnet::IpNet;

/// The cluster and the mesh, as the flags describe them.
///
/// The injector writes these into the proxies it injects (as their identity, default policy,
/// cluster networks and opaque ports); the policy and endpoints indexes answer with the same
/// values, so a proxy and the controller never disagree about them. Namespaces and pods may
/// override the default policy and the opaque ports by annotation; the values here are the
/// cluster-wide defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    /// How identities are named: the control plane's namespace (`--control-plane-namespace`)
    /// and the trust domain (`--identity-trust-domain`).
    pub mesh: Mesh,
    /// The cluster's DNS domain (`--cluster-domain`, e.g. `cluster.local`): Services are
    /// `<name>.<namespace>.svc.<cluster-domain>`.
    pub cluster_domain: String,
    /// The pod and node networks (`--cluster-networks`): what `cluster-*` policies admit, and
    /// the networks of an authorization that names none. May be empty for `weft inject`; the
    /// controller refuses an empty list.
    pub cluster_networks: Vec<IpNet>,
    /// The inbound policy of ports no Server describes (`--default-policy`).
    pub default_policy: DefaultPolicy,
    /// The ports without protocol detection (`--opaque-ports`).
    pub default_opaque_ports: PortList,
}
