//! What an `OutboundPolicies` request names: an `ip:port`, or a Service by authority.

use linkerd2_proxy_api::outbound::{traffic_spec::Target, TrafficSpec};
use std::net::{IpAddr, SocketAddr};
use weft_endpoints_index::{parse_authority, ServicePort};

/// A request's target, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// The address a client connects to (sidecar proxies always ask by address).
    Addr(SocketAddr),
    /// A Service port named by its authority (proxies in ingress mode ask by name).
    Service(ServicePort),
}

/// Why a request names nothing the policy API serves.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The request is malformed: `InvalidArgument`, which the proxy does not retry.
    #[error("{0}")]
    Invalid(String),
    /// A well-formed name that is not a Service authority of this cluster (an external host,
    /// say): `NotFound`, after which the proxy forwards as it would without a policy. Answering
    /// `InvalidArgument` here would fail the client's connection.
    #[error("{0}")]
    NotAService(String),
}

impl From<TargetError> for tonic::Status {
    fn from(error: TargetError) -> Self {
        match error {
            TargetError::Invalid(message) => tonic::Status::invalid_argument(message),
            TargetError::NotAService(message) => tonic::Status::not_found(message),
        }
    }
}

/// Parses the target of `spec`. The source workload is not read: Weft's outbound policy is the
/// same for every client.
pub fn parse_target(spec: &TrafficSpec, cluster_domain: &str) -> Result<TargetSpec, TargetError> {
    match &spec.target {
        None => Err(TargetError::Invalid("the request names no target".into())),
        Some(Target::Addr(addr)) => {
            let port = u16::try_from(addr.port)
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| {
                    TargetError::Invalid(format!(
                        "port {} is not a port number (1-65535)",
                        addr.port
                    ))
                })?;
            let ip = addr
                .ip
                .and_then(|ip| IpAddr::try_from(ip).ok())
                .ok_or_else(|| TargetError::Invalid("the target address has no IP".into()))?;
            Ok(TargetSpec::Addr(SocketAddr::new(ip, port)))
        }
        Some(Target::Authority(authority)) => {
            if authority.parse::<http::uri::Authority>().is_err() {
                return Err(TargetError::Invalid(format!(
                    "{authority:?} is not an authority (host:port)"
                )));
            }
            parse_authority(authority, cluster_domain)
                .map(TargetSpec::Service)
                .map_err(|error| TargetError::NotAService(error.to_string()))
        }
    }
}
