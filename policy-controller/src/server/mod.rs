//! The servers' common layer: the webhook's HTTPS server ([`tls`]) and the proxies' gRPC server
//! ([`grpc`]) accept connections under a [`connection_limit`], and every server shares one
//! graceful-shutdown path ([`shutdown`]): listeners close at SIGTERM, requests in flight are
//! answered, idle connections linger briefly, and the process exits once all have drained.

pub mod connection_limit;
pub mod grpc;
pub mod shutdown;
pub mod tls;
