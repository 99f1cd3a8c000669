//! Weft's inbound policy index: pure and synchronous, fed by kubert's index traits.
//!
//! For every pod port it keeps the effective [`InboundPolicy`] — the Server that describes the
//! port (or the default policy), its protocol, and the authorizations that apply — and publishes
//! it through a `tokio::sync::watch` channel that only wakes subscribers on a real change.

mod authorization;
mod authz_policy;
mod defaults;
mod index;
mod metrics;
mod namespace;
mod pod;
mod policy;
mod resolve;
mod routes;
mod server;

#[cfg(test)]
mod tests;

pub use weft_core::ClusterSettings;

pub use self::{
    defaults::{DefaultPolicy, InvalidDefaultPolicy, DEFAULT_POLICY_ANNOTATION},
    index::{Index, LookupError, SharedIndex, MAX_UNDECLARED_PORT_WATCHES},
    metrics::IndexMetrics,
    policy::{
        Authentication, Authorization, HttpRoutePolicy, InboundPolicy, NetworkMatch, ServerRef,
        ServiceAccount,
    },
};
