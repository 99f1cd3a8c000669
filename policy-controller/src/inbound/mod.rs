//! The inbound policy API of the proxies: `io.linkerd.proxy.inbound.InboundServerPolicies`
//! (`GetPort`, `WatchPort`) from `linkerd2-proxy-api`, served from Weft's policy index.
//!
//! The mapping from index results to the proxy's messages is pure ([`mapping`]); the service
//! only connects the index's watch channels to gRPC streams ([`service`]). The index is reached
//! through [`PolicySource`], which the tests implement with channels of their own.

pub mod mapping;
mod metrics;
mod routes;
mod service;
mod source;
mod workload;

#[cfg(test)]
mod tests;

pub use self::{
    mapping::{to_server, InboundSettings, InvalidSettings, DEFAULT_DETECT_TIMEOUT, POLICY_GROUP},
    metrics::{InboundPolicyMetrics, Rpc},
    service::{InboundPolicyService, WatchPortStream},
    source::PolicySource,
    workload::{InvalidWorkload, Workload, ACCEPTED_FORMS},
};
