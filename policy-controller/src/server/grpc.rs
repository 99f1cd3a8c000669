//! The controller's one gRPC server: every proxy API (identity, inbound policy, destination and
//! outbound policy) is a service in one [`tonic::service::Routes`], served over HTTP/2 on one
//! listener.
//!
//! The transport is TLS 1.3 (ALPN `h2`) with a certificate the controller issues to its own
//! identity from the identity issuer ([`ServingIdentity`]): the proxies verify it against their
//! trust anchors for the name they are configured with. It is renewed at two thirds of its
//! lifetime and whenever the issuer changes, and swapped in without a restart. Plaintext is
//! allowed only on a loopback address ([`plaintext_allowed`]).
//!
//! Shutdown goes through [`crate::server::shutdown::serve`] like every other server: new connections are
//! refused, each connection sends GOAWAY and finishes its requests. Long-lived streams must end
//! themselves: each request carries the server's [`shutdown::Stopping`] signal as an extension
//! (`request.extensions().get::<Stopping>()`), which completes when shutdown begins.

use crate::{
    identity::{Issued, Issuer, SignError},
    server::{cert::CurrentCert, shutdown},
};
use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    service::TowerToHyperService,
};
use parking_lot::RwLock;
use rcgen::KeyPair;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::{
    rustls::{self, sign::CertifiedKey, ServerConfig},
    TlsAcceptor,
};
use tower::ServiceExt;

pub use super::FIRST_REQUEST_TIMEOUT;
/// How often a connection is pinged (HTTP/2 PING), and how long the answer may take before the
/// connection is closed: a proxy that vanished without closing its connection (node lost,
/// network cut) does not hold it, and its watch streams, forever.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many streams one connection may have open at once. A proxy opens one (a watch) per port
/// it serves and per target it resolves, so well above hyper's default of 200.
pub const MAX_CONCURRENT_STREAMS: u32 = 1_000;
/// How many connections the server holds open at once; more are closed as soon as they are
/// accepted (see [`shutdown::ConnectionLimit`]). Each proxy holds one connection. The process's
/// open-files limit must be above it.
pub const MAX_CONNECTIONS: usize = 10_000;

/// The gRPC server's timeouts and limits; [`GrpcLimits::default`] is what the controller uses
/// (the constants above), tests shorten them. Connections have no idle timeout: a proxy's
/// connection carries long-lived watches, and keepalive finds the dead ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcLimits {
    pub first_request: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_connections: usize,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            first_request: FIRST_REQUEST_TIMEOUT,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            max_connections: MAX_CONNECTIONS,
        }
    }
}
/// How long to wait before retrying a renewal that failed.
const RENEW_RETRY: Duration = Duration::from_secs(10);

/// How the gRPC server speaks to its clients.
#[derive(Clone, Debug)]
pub enum GrpcTransport {
    Tls(Arc<ServingIdentity>),
    /// Only on loopback addresses (see [`plaintext_allowed`]).
    Plaintext,
}

/// Plaintext asked for on an address other clients could reach.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("plaintext gRPC is allowed only on a loopback address, and {0} is not one: proxies reach the controller over TLS")]
pub struct PlaintextNotLoopback(pub SocketAddr);

/// Whether a server on `addr` may be plaintext: only on loopback (`127.0.0.0/8`, `::1`), where
/// only the pod itself (tests, a local sidecar) can connect.
pub fn plaintext_allowed(addr: SocketAddr) -> Result<(), PlaintextNotLoopback> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(PlaintextNotLoopback(addr))
    }
}

/// Why the gRPC server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GrpcServeError {
    #[error(transparent)]
    Plaintext(#[from] PlaintextNotLoopback),
    #[error("the gRPC server's TLS configuration cannot be built: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the gRPC listener has no local address: {0}")]
    Addr(#[source] std::io::Error),
}

/// Why the serving certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error("cannot generate the controller's serving key: {0}")]
    Key(rcgen::Error),
    #[error("cannot issue the controller's serving certificate for `{name}`: {source}")]
    Sign {
        name: String,
        #[source]
        source: SignError,
    },
    #[error("rustls cannot use the controller's serving key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The controller's own certificate for its identity, issued from the identity issuer for a key
/// generated at start, and what TLS handshakes use (through [`CurrentCert`]).
pub struct ServingIdentity {
    name: String,
    key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    lifetime: Duration,
    cert: Arc<CurrentCert>,
    validity: RwLock<Validity>,
}

/// When the certificate in use was issued, and until when it is valid.
#[derive(Clone, Copy, Debug)]
struct Validity {
    issued_at: SystemTime,
    valid_until: SystemTime,
}

impl std::fmt::Debug for ServingIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingIdentity")
            .field("name", &self.name)
            .field("validity", &*self.validity.read())
            .finish_non_exhaustive()
    }
}

impl ServingIdentity {
    /// Generates a P-256 key and has `issuer` certify it for `name` for `lifetime`.
    pub fn issue(
        name: String,
        issuer: &Issuer,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<Self, ServingError> {
        let key = KeyPair::generate().map_err(ServingError::Key)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = rustls::crypto::ring::sign::any_ecdsa_type(&der)?;
        let issued =
            issuer
                .sign(&key, &name, lifetime, now)
                .map_err(|source| ServingError::Sign {
                    name: name.clone(),
                    source,
                })?;
        let (certified, validity) = current(issued, signing_key.clone(), now);
        Ok(Self {
            name,
            key,
            signing_key,
            lifetime,
            cert: Arc::new(CurrentCert::new(certified)),
            validity: RwLock::new(validity),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the certificate in use expires.
    pub fn valid_until(&self) -> SystemTime {
        self.validity.read().valid_until
    }

    /// Issues a new certificate from `issuer` and puts it in use.
    pub fn renew(&self, issuer: &Issuer, now: SystemTime) -> Result<(), ServingError> {
        let issued = issuer
            .sign(&self.key, &self.name, self.lifetime, now)
            .map_err(|source| ServingError::Sign {
                name: self.name.clone(),
                source,
            })?;
        let (certified, validity) = current(issued, self.signing_key.clone(), now);
        self.cert.set(certified);
        *self.validity.write() = validity;
        Ok(())
    }

    /// How long until the certificate in use should be renewed.
    fn renew_in(&self, now: SystemTime) -> Duration {
        let validity = *self.validity.read();
        renew_in(validity.issued_at, validity.valid_until, now)
    }

    /// Renews the certificate at two thirds of its lifetime and whenever `issuer` changes, until
    /// `shutdown` completes.
    pub async fn keep_renewed(
        self: Arc<Self>,
        mut issuer: watch::Receiver<Arc<Issuer>>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut wait = self.renew_in(SystemTime::now());
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = issuer.changed() => if changed.is_err() { return },
                () = &mut shutdown => return,
            }
            let current = issuer.borrow_and_update().clone();
            wait = match self.renew(&current, SystemTime::now()) {
                Ok(()) => {
                    tracing::info!(name = %self.name, valid_until = ?self.valid_until(), "Renewed the gRPC server's certificate");
                    self.renew_in(SystemTime::now())
                }
                Err(error) => {
                    tracing::error!(%error, "Cannot renew the gRPC server's certificate; retrying");
                    RENEW_RETRY
                }
            };
        }
    }

    /// A TLS 1.3-only server configuration (ALPN `h2`) that serves the current certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_cert_resolver(self.cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

fn current(
    issued: Issued,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    now: SystemTime,
) -> (Arc<CertifiedKey>, Validity) {
    let mut chain = vec![issued.leaf];
    chain.extend(issued.intermediates);
    (
        Arc::new(CertifiedKey::new(chain, signing_key)),
        Validity {
            issued_at: now,
            valid_until: issued.valid_until,
        },
    )
}

/// Two thirds into the validity `[issued_at, valid_until]`, from `now`; zero when that has passed.
pub fn renew_in(issued_at: SystemTime, valid_until: SystemTime, now: SystemTime) -> Duration {
    let lifetime = valid_until
        .duration_since(issued_at)
        .unwrap_or(Duration::ZERO);
    let at = issued_at + lifetime * 2 / 3;
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// Serves `routes` over HTTP/2 on `listener` until `shutdown` completes, then drains (see
/// [`crate::server::shutdown`]). Every request carries the server's [`shutdown::Stopping`] as an extension.
/// Fails at once, before accepting anything, when plaintext is asked for on a non-loopback
/// listener or TLS cannot be configured.
pub async fn serve<G>(
    listener: TcpListener,
    transport: GrpcTransport,
    routes: tonic::service::Routes,
    shutdown: impl Future<Output = G>,
) -> Result<(), GrpcServeError> {
    serve_limited(listener, transport, routes, shutdown, GrpcLimits::default()).await
}

/// [`serve`] with other [`GrpcLimits`].
pub async fn serve_limited<G>(
    listener: TcpListener,
    transport: GrpcTransport,
    routes: tonic::service::Routes,
    shutdown: impl Future<Output = G>,
    limits: GrpcLimits,
) -> Result<(), GrpcServeError> {
    let acceptor = match &transport {
        GrpcTransport::Tls(identity) => Some(TlsAcceptor::from(identity.server_config()?)),
        GrpcTransport::Plaintext => {
            plaintext_allowed(listener.local_addr().map_err(GrpcServeError::Addr)?)?;
            None
        }
    };
    let routes = routes.prepare();
    let connections = Arc::new(shutdown::ConnectionLimit::new(
        "grpc",
        limits.max_connections,
    ));
    shutdown::serve("grpc", listener, shutdown, move |socket, stopping| {
        // HTTP/2 only: GOAWAY ends a connection gracefully, no need to wait for a next request.
        let stopping = stopping.without_linger();
        let connections = connections.clone();
        let acceptor = acceptor.clone();
        let signal = stopping.clone();
        let routes =
            routes
                .clone()
                .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(signal.clone());
                    req
                });
        async move {
            let deadlines = shutdown::Deadlines {
                first_request: limits.first_request,
                header_read: None,
                idle: None,
            };
            let Some((activity, _permit)) = super::admit(&connections, deadlines).await else {
                return;
            };
            let service =
                TowerToHyperService::new(shutdown::TrackRequests::new(routes, activity.clone()));
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .keep_alive_interval(limits.keepalive_interval)
                .keep_alive_timeout(limits.keepalive_timeout)
                .max_concurrent_streams(limits.max_concurrent_streams);
            // Only requests matter to the deadline (no header or idle timeout): reads are not tracked.
            let result = match acceptor {
                None => {
                    let connect = |io| builder.serve_connection(io, service);
                    stopping
                        .serve_until(socket, connect, activity.expired())
                        .await
                }
                Some(acceptor) => {
                    let Some(tls) = super::handshake("grpc", &acceptor, socket, &activity).await
                    else {
                        return;
                    };
                    let connect = |io| builder.serve_connection(io, service);
                    stopping.serve_until(tls, connect, activity.expired()).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "gRPC connection closed with an error");
            }
        }
    })
    .await;
    Ok(())
}

/// The label value of a gRPC status code in the APIs' request metrics (`ok`, `not_found`, ...).
pub(crate) fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "ok",
        Cancelled => "cancelled",
        Unknown => "unknown",
        InvalidArgument => "invalid_argument",
        DeadlineExceeded => "deadline_exceeded",
        NotFound => "not_found",
        AlreadyExists => "already_exists",
        PermissionDenied => "permission_denied",
        ResourceExhausted => "resource_exhausted",
        FailedPrecondition => "failed_precondition",
        Aborted => "aborted",
        OutOfRange => "out_of_range",
        Unimplemented => "unimplemented",
        Internal => "internal",
        Unavailable => "unavailable",
        DataLoss => "data_loss",
        Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests;
