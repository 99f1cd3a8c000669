//! The servers' common layer: the webhook's HTTPS server ([`tls`]) and the proxies' gRPC server
//! ([`grpc`]) accept connections under a [`connection_limit`], and every server shares one
//! graceful-shutdown path ([`shutdown`]): listeners close at SIGTERM, requests in flight are
//! answered, idle connections linger briefly, and the process exits once all have drained.

pub mod cert;
pub mod connection_limit;
pub mod grpc;
pub mod shutdown;
pub mod tls;

#[cfg(test)]
mod test_support;

use std::{sync::Arc, time::Duration};
use tokio::net::TcpStream;
use tokio_rustls::{server::TlsStream, TlsAcceptor};

/// The start every connection of both servers shares: its deadlines run from `accepted`, and the
/// connection limit admits it (`None`: refused, the socket is closed at once). Hold the permit
/// as long as the connection.
pub async fn admit(
    connections: &connection_limit::ConnectionLimit,
    deadlines: shutdown::Deadlines,
) -> Option<(Arc<shutdown::Activity>, tokio::sync::OwnedSemaphorePermit)> {
    let activity = shutdown::Activity::new(deadlines, tokio::time::Instant::now());
    let permit = connections.admit(&activity).await?;
    Some((activity, permit))
}

/// The TLS handshake of an admitted connection, bounded by its first-request deadline or ended by
/// the connection limit to make room (`None`, logged at debug level with `server`'s name).
pub async fn handshake(
    server: &str,
    acceptor: &TlsAcceptor,
    socket: TcpStream,
    activity: &shutdown::Activity,
) -> Option<TlsStream<TcpStream>> {
    tokio::select! {
        handshake = acceptor.accept(socket) => match handshake {
            Ok(tls) => Some(tls),
            Err(error) => {
                tracing::debug!(server, %error, "TLS handshake failed");
                None
            }
        },
        _ = activity.expired() => {
            tracing::debug!(server, "TLS handshake not done by the first-request deadline, or evicted by the connection limit");
            None
        }
    }
}

/// How long a client of either server may take from the TCP connection to its first request's
/// headers (TLS handshake included; for HTTP/2 also the connection preface). A client that
/// connects and sends nothing, or half a handshake or preface, is dropped then.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
