//! The servers' common layer: the webhook's HTTPS server ([`tls`]) and the proxies' gRPC server
//! ([`grpc`]) accept connections under a [`connection_limit`], and every server shares one
//! graceful-shutdown path ([`shutdown`]): listeners close at SIGTERM, requests in flight are
//! answered, idle connections linger briefly, and the process exits once all have drained.

pub mod cert;
pub mod connection_limit;
pub mod grpc;
pub mod shutdown;
pub mod tls;

use std::time::Duration;

/// How long a client of either server may take from the TCP connection to its first request's
/// headers (TLS handshake included; for HTTP/2 also the connection preface). A client that
/// connects and sends nothing, or half a handshake or preface, is dropped then.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
