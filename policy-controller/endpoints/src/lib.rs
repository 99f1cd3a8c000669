//! Weft's endpoints index: pure and synchronous, fed by kubert's index traits with Services,
//! EndpointSlices and Pods.
//!
//! It answers what a meshed proxy resolves when it connects out:
//! - by Service port ([`EndpointsIndex::service_endpoints`], for `Destination.Get`): the ready
//!   endpoints, each with the mesh identity of its pod when the pod is meshed;
//! - by address ([`EndpointsIndex::outbound_target`], for `OutboundPolicies` and
//!   `Destination.GetProfile`): whether an `ip:port` is a Service's cluster IP port, a pod's
//!   port, or unknown to the cluster.
//!
//! Both are `tokio::sync::watch` channels that change only when the answer does.

mod authority;
mod index;
mod metrics;
mod opaque;
mod pod;
mod resolve;
mod service;
mod slice;
mod types;
mod watches;

#[cfg(test)]
mod tests;

pub use self::{
    authority::{parse_authority, InvalidAuthority, ServicePort},
    index::{EndpointsIndex, SharedEndpointsIndex},
    metrics::EndpointsIndexMetrics,
    opaque::{InvalidOpaquePorts, OpaquePorts, OPAQUE_PORTS_ANNOTATION},
    pod::PROXY_CONTAINER_NAME,
    slice::SERVICE_NAME_LABEL,
    types::{Endpoint, EndpointSet, MeshSettings, OutboundTarget},
};
