//! The proxies' discovery API: `io.linkerd.proxy.destination.Destination` (`Get`, `GetProfile`)
//! from `linkerd2-proxy-api`, served from Weft's endpoints index.
//!
//! - `Get` resolves a Service authority (`<name>.<namespace>.svc.<cluster-domain>:<port>`, the
//!   path the outbound policy's balancer names) to its ready endpoints, each with the mesh
//!   identity the client must require when the endpoint is meshed ([`mapping`], [`endpoint`]).
//! - `GetProfile` answers what an `ip:port` is: a Service (its name, whether it is opaque), a pod
//!   (the endpoint to dial, with its identity), or nothing known (the default profile, so the
//!   proxy forwards to the original destination) ([`profile`]). Weft serves no ServiceProfile
//!   routes, retry budgets or traffic splits.
//!
//! The mapping is pure; the service only connects the index's watch channels to gRPC streams
//! ([`service`]). The index is reached through [`EndpointsSource`], which the outbound policy
//! API shares.

pub mod endpoint;
pub mod mapping;
mod metrics;
pub mod profile;
mod service;
mod source;

#[cfg(test)]
pub(crate) mod tests;

pub use self::{
    metrics::{DestinationMetrics, DestinationRpc},
    service::{DestinationService, GetProfileStream, GetStream},
    source::EndpointsSource,
};
