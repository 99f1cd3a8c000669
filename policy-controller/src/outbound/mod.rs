//! The proxies' outbound policy API: `io.linkerd.proxy.outbound.OutboundPolicies` (`Get`,
//! `Watch`) from `linkerd2-proxy-api`, served from Weft's endpoints index.
//!
//! A proxy asks it about every address its workload connects to. A Service port gets a policy
//! that balances over the Service's endpoints (which the proxy resolves with `Destination.Get`),
//! a pod port one that forwards to the pod with its mesh identity, and an address the mesh does
//! not know `NotFound`, so the proxy forwards to it as is ([`mapping`]). Weft has no outbound
//! routing resources: routes, retries, timeouts and circuit breaking are the proxy's defaults.
//!
//! The mapping is pure; the service only connects the index's watch channels to gRPC streams
//! ([`service`]).

pub mod mapping;
mod metrics;
mod service;
pub mod target;

#[cfg(test)]
mod tests;

pub use self::{
    mapping::{outbound_policy, DETECT_TIMEOUT},
    metrics::{OutboundPolicyMetrics, OutboundRpc},
    service::{OutboundPolicyService, WatchStream},
    target::{parse_target, TargetError, TargetSpec},
};
