//! `Destination.GetProfile`: what a path names, and the profile of a target. Pure, no I/O.
//!
//! Weft serves no ServiceProfile routes: every profile has no `routes`, no `retry_budget` and no
//! `dst_overrides`. What the proxy (linkerd2-proxy v2.366) does with the rest:
//! - A profile with neither routes nor overrides never replaces the outbound policy's routing
//!   (`should_override_policy` in `app/outbound/src/http/logical/profile.rs`).
//! - `opaque_protocol: true` makes the connection opaque TCP whatever the policy says
//!   (`impl Param<Protocol> for Sidecar`, `app/outbound/src/sidecar.rs`).
//! - `endpoint` is used only when `OutboundPolicies` answers `NotFound`: the proxy then forwards to
//!   that endpoint with its metadata (mTLS for a meshed pod), else to the original destination
//!   with no metadata (`discover.rs`). So an address the index does not know gets the default
//!   (empty) profile and is forwarded as is, exactly as without a control plane.
//! - `fully_qualified_name` names the logical service in the client's metrics; empty for
//!   anything but a Service.

use linkerd2_proxy_api::destination::DestinationProfile;
use std::net::SocketAddr;
use weft_endpoints_index::{parse_authority, InvalidAuthority, OutboundTarget, ServicePort};

use super::endpoint::weighted_addr;

/// What a `GetProfile` path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfilePath {
    /// `ip:port` (`[ip]:port` for IPv6): the address a client connects to.
    Addr(SocketAddr),
    /// A Service authority, `<name>.<namespace>.svc.<cluster-domain>:<port>`.
    Service(ServicePort),
}

/// Parses a `GetProfile` path: an `ip:port`, or a Service authority.
pub fn parse_profile_path(
    path: &str,
    cluster_domain: &str,
) -> Result<ProfilePath, InvalidAuthority> {
    if let Ok(addr) = path.parse::<SocketAddr>() {
        return Ok(ProfilePath::Addr(addr));
    }
    parse_authority(path, cluster_domain).map(ProfilePath::Service)
}

/// The profile of what an address is.
pub fn target_profile(target: &OutboundTarget, cluster_domain: &str) -> DestinationProfile {
    match target {
        OutboundTarget::Unknown => DestinationProfile::default(),
        OutboundTarget::Service { service, opaque } => {
            service_profile(service, *opaque, cluster_domain)
        }
        OutboundTarget::Pod(endpoint) => DestinationProfile {
            opaque_protocol: endpoint.opaque,
            endpoint: Some(weighted_addr(endpoint)),
            ..DestinationProfile::default()
        },
    }
}

/// The profile of a Service port: its name, and whether it is opaque.
pub fn service_profile(
    service: &ServicePort,
    opaque: bool,
    cluster_domain: &str,
) -> DestinationProfile {
    DestinationProfile {
        fully_qualified_name: service_host(service, cluster_domain),
        opaque_protocol: opaque,
        ..DestinationProfile::default()
    }
}

/// `<name>.<namespace>.svc.<cluster-domain>`: the host of the Service's authority.
pub fn service_host(service: &ServicePort, cluster_domain: &str) -> String {
    format!(
        "{}.{}.svc.{cluster_domain}",
        service.name, service.namespace
    )
}
