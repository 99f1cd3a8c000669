//! An HTTPS server for the admission webhooks that parses its key and certificates once and again only when
//! the files change.
//!
//! kubert's server reads and parses the PEM files for every new connection, so rotated certificates need no
//! restart; this server keeps that property at a fraction of the cost, with nothing read or parsed on the
//! accept path. One rustls `ServerConfig` serves every connection; its certificate resolver hands out the
//! loaded key and chain, and a task reads the two files every [`RELOAD_INTERVAL`] and swaps in a changed
//! pair once it parses. A rotation that leaves unusable files (a key that does not match its certificate,
//! say, while a Secret is half updated) keeps the previous credentials in use and is retried. Because the
//! configuration itself never changes, TLS sessions resume across rotations.
//!
//! HTTP/1.1 and HTTP/2 are both served, as ALPN chose (`h2`, else HTTP/1.1); kube-apiserver uses HTTP/1.1.

use crate::server::{cert::CurrentCert, shutdown};
use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use parking_lot::RwLock;
use std::{
    convert::Infallible,
    future::Future,
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    rustls::{
        self,
        crypto::CryptoProvider,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        sign::CertifiedKey,
        ServerConfig,
    },
    TlsAcceptor,
};

/// How often the key and certificate files are read again: a rotation is served at most this long
/// after the files change.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
pub use super::FIRST_REQUEST_TIMEOUT;
/// How long an HTTP/1 client may take to send a later request's headers, from their first byte
/// (slowloris protection). The wait for that first byte is [`IDLE_TIMEOUT`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection with no request in flight stays open (HTTP/1 keep-alive, HTTP/2
/// without open streams). Longer than the idle timeout of kube-apiserver's Go HTTP client (90 s,
/// `IdleConnTimeout`) so the client, not the server, closes idle connections: a server closing
/// one while the client sends a webhook call on it fails the call (a POST is not retried), and
/// with `failurePolicy: Fail` the pod creation.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often an HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is closed (a peer that vanished).
pub const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many connections the webhook server holds open at once; more are closed as soon as they
/// are accepted (see [`shutdown::ConnectionLimit`]). kube-apiserver needs a handful per replica.
pub const MAX_CONNECTIONS: usize = 1_000;

/// The webhook server's timeouts and connection limit; [`Limits::default`] is what the
/// controller uses (the constants above), tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub first_request: Duration,
    pub header_read: Duration,
    pub idle: Duration,
    pub h2_keepalive_interval: Duration,
    pub h2_keepalive_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            first_request: FIRST_REQUEST_TIMEOUT,
            header_read: HEADER_READ_TIMEOUT,
            idle: IDLE_TIMEOUT,
            h2_keepalive_interval: H2_KEEPALIVE_INTERVAL,
            h2_keepalive_timeout: H2_KEEPALIVE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Credentials that cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("the key {key} and the certificates {certs} cannot be used together: {source}")]
    Credentials {
        key: PathBuf,
        certs: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// A key file and a certificate chain file, served through one rustls `ServerConfig` whose
/// certificate resolver hands out the loaded pair until [`TlsCredentials::reload`] finds the files
/// changed.
#[derive(Debug)]
pub struct TlsCredentials {
    key: PathBuf,
    certs: PathBuf,
    cert: Arc<CurrentCert>,
    /// The bytes of the key and certificate files the credentials in use were parsed from.
    contents: RwLock<[Vec<u8>; 2]>,
    config: Arc<ServerConfig>,
}

impl TlsCredentials {
    /// Loads the key (PKCS#8, PKCS#1 or SEC1 PEM) and the certificate chain (PEM, leaf first).
    pub fn load(key: PathBuf, certs: PathBuf) -> Result<Self, TlsError> {
        let contents = [read(&key)?, read(&certs)?];
        let certified = certified_key(&key, &certs, &contents)?;
        let cert = Arc::new(CurrentCert::new(certified));
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Credentials {
                key: key.clone(),
                certs: certs.clone(),
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            key,
            certs,
            cert,
            contents: RwLock::new(contents),
            config: Arc::new(config),
        })
    }

    /// The configuration every connection uses; it serves the credentials loaded last.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The key and chain new connections are served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.cert.get()
    }

    /// Reads the files and, when their bytes changed and they can be used, serves them from now on.
    /// True when new credentials were loaded. Files that cannot be read or used keep the loaded
    /// credentials in use (logged), and are tried again at the next call.
    pub fn reload(&self) -> bool {
        let contents = match (read(&self.key), read(&self.certs)) {
            (Ok(key), Ok(certs)) => [key, certs],
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "Keeping the loaded TLS credentials");
                return false;
            }
        };
        if contents == *self.contents.read() {
            return false;
        }
        match certified_key(&self.key, &self.certs, &contents) {
            Ok(certified) => {
                self.cert.set(certified);
                *self.contents.write() = contents;
                tracing::info!(key = %self.key.display(), certs = %self.certs.display(), "Loaded new TLS credentials");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "The TLS files changed but cannot be used; keeping the loaded credentials");
                false
            }
        }
    }

    /// Calls [`Self::reload`] every [`RELOAD_INTERVAL`], until dropped with the server.
    async fn reload_every_interval(&self) -> Infallible {
        let mut interval = tokio::time::interval(RELOAD_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.reload();
        }
    }
}

fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses PEM contents (`[key, certs]`) into a key and chain that belong together.
fn certified_key(
    key_path: &Path,
    certs_path: &Path,
    contents: &[Vec<u8>; 2],
) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem = |path: &Path, problem: String| TlsError::Pem {
        path: path.to_path_buf(),
        problem,
    };
    let key = PrivateKeyDer::from_pem_slice(&contents[0]).map_err(|e| {
        pem(
            key_path,
            format!("no usable private key (expected a PKCS#8, PKCS#1 or SEC1 PEM block): {e}"),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&contents[1])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(certs_path, format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(pem(
            certs_path,
            "no certificate (expected PEM CERTIFICATE blocks, leaf first)".to_string(),
        ));
    }
    CertifiedKey::from_der(certs, key, &crypto_provider())
        .map(Arc::new)
        .map_err(|source| TlsError::Credentials {
            key: key_path.to_path_buf(),
            certs: certs_path.to_path_buf(),
            source,
        })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the webhook server serves: an HTTP service, cloned for each connection, answering with
/// bodies of type `B`.
pub trait HttpService<B>:
    tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<B>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error: Into<BoxError>,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The body of a response of an [`HttpService`].
pub trait ResponseBody:
    hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

/// Serves `service` over HTTPS on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (for up to [`shutdown::GRACE`]). Fails at once, before accepting anything, when the credentials cannot be
/// loaded.
pub async fn serve<S, B, G>(
    listener: TcpListener,
    key: PathBuf,
    certs: PathBuf,
    service: S,
    shutdown: impl Future<Output = G>,
) -> Result<(), TlsError>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    let credentials = TlsCredentials::load(key, certs)?;
    serve_loaded(listener, credentials, service, shutdown).await;
    Ok(())
}

/// [`serve`] with credentials the caller has already loaded (e.g. to fail start-up early). Shuts down
/// as every server of the controller does (see [`crate::server::shutdown`]): the guard `shutdown` yields is
/// held until the connections have drained.
pub async fn serve_loaded<S, B, G>(
    listener: TcpListener,
    credentials: TlsCredentials,
    service: S,
    shutdown: impl Future<Output = G>,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    serve_limited(listener, credentials, service, shutdown, Limits::default()).await;
}

/// [`serve_loaded`] with other [`Limits`].
pub async fn serve_limited<S, B, G>(
    listener: TcpListener,
    credentials: TlsCredentials,
    service: S,
    shutdown: impl Future<Output = G>,
    limits: Limits,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    let connections = Arc::new(shutdown::ConnectionLimit::new(
        "webhook",
        limits.max_connections,
    ));
    let acceptor = TlsAcceptor::from(credentials.config());
    let serving = shutdown::serve("webhook", listener, shutdown, move |socket, stopping| {
        let connection = Connection {
            acceptor: acceptor.clone(),
            connections: connections.clone(),
            stopping,
            limits,
        };
        connection.serve(socket, service.clone())
    });
    // The reloads run as long as the server, in this task: they end when it has drained, or with it.
    tokio::select! {
        () = serving => {}
        never = credentials.reload_every_interval() => match never {},
    }
}

/// What one connection of the webhook server needs besides its socket and service.
struct Connection {
    acceptor: TlsAcceptor,
    connections: Arc<shutdown::ConnectionLimit>,
    stopping: shutdown::Stopping,
    limits: Limits,
}

impl Connection {
    async fn serve<S, B>(self, socket: TcpStream, service: S)
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let Self {
            acceptor,
            connections,
            stopping,
            limits,
        } = self;
        // The HTTP/1 header deadline is set once ALPN has chosen the protocol.
        let deadlines = shutdown::Deadlines {
            first_request: limits.first_request,
            header_read: None,
            idle: Some(limits.idle),
        };
        let Some((activity, _permit)) = super::admit(&connections, deadlines).await else {
            return;
        };
        let Some(tls) = super::handshake("webhook", &acceptor, socket, &activity).await else {
            return;
        };
        // The protocol is the one ALPN chose, not sniffed from the first bytes: a connection
        // still sniffing when shutdown begins is dropped unread, while an HTTP/1 connection
        // answers the request its client has already sent.
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let builder = auto::Builder::new(TokioExecutor::new());
        let mut builder = if h2 {
            builder.http2_only()
        } else {
            builder.http1_only()
        };
        // hyper's own header timeout is not used: it also runs while an idle keep-alive connection
        // waits for its next request (see [`shutdown::Deadlines::header_read`]).
        builder.http1().timer(TokioTimer::new());
        builder
            .http2()
            .keep_alive_interval(limits.h2_keepalive_interval)
            .keep_alive_timeout(limits.h2_keepalive_timeout)
            .timer(TokioTimer::new());
        // HTTP/2 frames (pings, settings) arrive between requests: only requests count there.
        activity.set_header_read((!h2).then_some(limits.header_read));
        let service =
            TowerToHyperService::new(shutdown::TrackRequests::new(service, activity.clone()));
        let io = shutdown::OnRead::new(tls, activity.clone());
        // HTTP/2 ends with GOAWAY, which clients retry on; HTTP/1 answers with `Connection: close`
        // once stopping, and lingers for a client's next request (see [`shutdown`]).
        let (service, stopping) = if h2 {
            let service = shutdown::CloseWhenStopping::new(service, None);
            (service, stopping.without_linger())
        } else {
            let service = shutdown::CloseWhenStopping::new(service, Some(stopping.clone()));
            (service, stopping)
        };
        let connect = |io| builder.serve_connection(io, service);
        if let Err(error) = stopping.serve_until(io, connect, activity.expired()).await {
            tracing::debug!(%error, "Connection closed with an error");
        }
    }
}

#[cfg(test)]
mod tests;
