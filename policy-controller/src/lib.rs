//! The Weft controller: the proxy-injection webhook, the policy index and the proxies' inbound
//! policy gRPC API, and the admin server, wired together on kubert's runtime.
//!
//! Pure logic lives elsewhere: injection in `weft-injector`, policy indexing in `weft-policy-index`,
//! resource types and validation in `weft-policy-k8s-api`. The modules here only connect pieces.

pub mod admin;
mod admission;
mod args;
mod connection_limit;
pub mod destination;
pub mod grpc;
pub mod identity;
pub mod inbound;
pub mod index;
mod inject;
pub mod outbound;
pub mod proxy_api;
pub mod shutdown;
pub mod tls_server;
mod validate;

pub use self::{
    admission::{AdmissionService, MAX_BODY_BYTES, MAX_VALIDATE_BODY_BYTES},
    args::Args,
};
