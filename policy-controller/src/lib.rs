//! The Weft controller, wired together on kubert's runtime ([`Args::run`]): the admission webhooks
//! ([`webhook`]), the watches that feed the indexes and hold readiness ([`watch`]), the proxies' APIs
//! ([`identity`], [`inbound`], [`outbound`], [`destination`], served by one gRPC server set up in
//! [`proxy_api`]), and the servers' common connection and shutdown layer ([`server`]).
//!
//! Pure logic lives elsewhere: the mesh's vocabulary in `weft-core`, injection in `weft-injector`,
//! policy indexing in `weft-policy-index`, endpoints in `weft-endpoints-index`, resource types and
//! validation in `weft-policy-k8s-api`. The modules here only connect pieces.

mod args;
pub mod destination;
#[cfg(feature = "fuzz-checks")]
pub mod fuzz_checks;
mod grpc_metrics;
pub mod identity;
pub mod inbound;
pub mod outbound;
mod proxy_api;
pub mod server;
pub mod watch;
pub mod webhook;

pub use self::{
    args::Args,
    webhook::{AdmissionService, MAX_BODY_BYTES, MAX_VALIDATE_BODY_BYTES},
};
