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
//!
//! What users of the API should know:
//! - Lookups never fail and take `&self` (a read lock): an unknown Service gives
//!   `service_exists: false`, an unknown address [`OutboundTarget::Unknown`]; the receiver
//!   changes when the object appears. Receivers do not close when objects go away.
//! - `service_exists` needs a TCP Service port with that number (not the target port); an
//!   `ExternalName` Service never exists for endpoints. Endpoints are not served without their
//!   Service.
//! - One watch per Service port and per `ip:port` is shared by all lookups; it is dropped once
//!   it has no receivers (when its key is next updated, on a resync, or by an amortized sweep
//!   during lookups), so keep the receiver for as long as you need updates.
//! - When several pods claim one IP, the one that claimed it last owns it (a new pod given a
//!   reused IP), and the previous claimant owns it again when that one lets go. hostNetwork
//!   and `Succeeded`/`Failed` pods never own an IP. Cluster IPs behave the same.
//! - A malformed `config.weft.dev/opaque-ports` annotation is logged, counted in
//!   `weft_endpoints_index_invalid_objects_total`, and treated as no opaque port.
//! - A meshed pod's port is opaque (clients reach it with the opaque transport) when a valid
//!   `policy.weft.dev` Server with `proxyProtocol: opaque` in its namespace selects it, as well
//!   as when its opaque-ports annotation (resolved into its proxy by the injector) lists it.
//!   An opaque Server's change rescans the pods of its namespace; other Servers cost nothing.
//! - `reset` (kubert's resync) replaces the state of that kind: objects not listed are removed.

mod authority;
mod index;
mod key;
mod metrics;
mod opaque;
mod pod;
mod server;
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
    types::{Endpoint, EndpointSet, OutboundTarget},
};
