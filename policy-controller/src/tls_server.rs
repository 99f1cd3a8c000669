//! An HTTPS server for the admission webhooks that parses its key and certificates once and again only when
//! the files change.
//!
//! kubert's server reads and parses the PEM files for every new connection, so rotated certificates need no
//! restart; this server keeps that property at a fraction of the cost. Before each TLS handshake it compares
//! the files' metadata (inode, device, length, modification and change times: two `stat` calls) with the
//! loaded ones, reloading when they differ, and at most once per [`CONTENT_RECHECK`] it also compares the
//! files' bytes, which catches a rewrite that left the metadata unchanged. A rotation that leaves unusable
//! files (a key that does not match its certificate, say, while a Secret is half updated) keeps the previous
//! credentials in use and is retried.
//!
//! HTTP/1.1 and HTTP/2 are both served, as ALPN chose (`h2`, else HTTP/1.1); kube-apiserver uses HTTP/1.1.

use crate::shutdown;
use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use parking_lot::Mutex;
use std::{
    future::Future,
    io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        ServerConfig,
    },
    TlsAcceptor,
};

/// How often the files' bytes are compared even when their metadata is unchanged.
pub const CONTENT_RECHECK: Duration = Duration::from_secs(1);
/// How long a client may take from the TCP connection to the end of its first request's headers
/// (TLS handshake included; for HTTP/2 also the connection preface). A client that connects and
/// sends nothing, or half a handshake, is dropped then.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
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

/// What the filesystem says about a file; a rename over it or a write to it changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The credentials in use and what they were loaded from.
#[derive(Debug)]
struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Option<[FileStamp; 2]>,
    contents: [Vec<u8>; 2],
    verified_at: Instant,
}

/// A key file and a certificate chain file, parsed into a rustls `ServerConfig` that is reused until the
/// files change.
#[derive(Debug)]
pub struct TlsCredentials {
    key: PathBuf,
    certs: PathBuf,
    loaded: Mutex<Loaded>,
}

impl TlsCredentials {
    /// Loads the key (PKCS#8, PKCS#1 or SEC1 PEM) and the certificate chain (PEM, leaf first).
    pub fn load(key: PathBuf, certs: PathBuf) -> Result<Self, TlsError> {
        let stamps = Self::stamps(&key, &certs);
        let contents = [read(&key)?, read(&certs)?];
        let config = server_config(&key, &certs, &contents)?;
        Ok(Self {
            key,
            certs,
            loaded: Mutex::new(Loaded {
                config,
                stamps,
                contents,
                verified_at: Instant::now(),
            }),
        })
    }

    fn stamps(key: &Path, certs: &Path) -> Option<[FileStamp; 2]> {
        Some([FileStamp::of(key).ok()?, FileStamp::of(certs).ok()?])
    }

    /// The configuration for a new connection at `now`, reloaded first if the files changed. When changed
    /// files cannot be used, the previous configuration stays in use (and the error is logged).
    pub fn current(&self, now: Instant) -> Arc<ServerConfig> {
        let stamps = Self::stamps(&self.key, &self.certs);
        let mut loaded = self.loaded.lock();
        // Files that are missing now and were missing at the last check count as unchanged too, so a missing
        // file is looked for at most once per CONTENT_RECHECK.
        let unchanged = stamps == loaded.stamps;
        if unchanged && now.saturating_duration_since(loaded.verified_at) < CONTENT_RECHECK {
            return loaded.config.clone();
        }
        let contents = match (read(&self.key), read(&self.certs)) {
            (Ok(key), Ok(certs)) => [key, certs],
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "Keeping the loaded TLS credentials");
                loaded.stamps = stamps;
                loaded.verified_at = now;
                return loaded.config.clone();
            }
        };
        if contents != loaded.contents {
            match server_config(&self.key, &self.certs, &contents) {
                Ok(config) => {
                    tracing::info!(key = %self.key.display(), certs = %self.certs.display(), "Loaded new TLS credentials");
                    loaded.config = config;
                    loaded.contents = contents;
                }
                Err(error) => {
                    tracing::warn!(%error, "The TLS files changed but cannot be used; keeping the loaded credentials");
                }
            }
        }
        loaded.stamps = stamps;
        loaded.verified_at = now;
        loaded.config.clone()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses PEM contents (`[key, certs]`) into a server configuration with the ring provider.
fn server_config(
    key_path: &Path,
    certs_path: &Path,
    contents: &[Vec<u8>; 2],
) -> Result<Arc<ServerConfig>, TlsError> {
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
    let credentials = |source| TlsError::Credentials {
        key: key_path.to_path_buf(),
        certs: certs_path.to_path_buf(),
        source,
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(credentials)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(credentials)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let credentials = TlsCredentials::load(key, certs)?;
    serve_loaded(listener, credentials, service, shutdown).await;
    Ok(())
}

/// [`serve`] with credentials the caller has already loaded (e.g. to fail start-up early). Shuts down
/// as every server of the controller does (see [`crate::shutdown`]): the guard `shutdown` yields is
/// held until the connections have drained.
pub async fn serve_loaded<S, B, G>(
    listener: TcpListener,
    credentials: TlsCredentials,
    service: S,
    shutdown: impl Future<Output = G>,
) where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
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
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connections = shutdown::ConnectionLimit::new("webhook", limits.max_connections);
    shutdown::serve("webhook", listener, shutdown, move |socket, stopping| {
        // Refused: the socket is closed here, at once.
        let admitted = connections.admit().map(|permit| (permit, socket));
        let acceptor = TlsAcceptor::from(credentials.current(Instant::now()));
        let service = service.clone();
        async move {
            let Some((_permit, socket)) = admitted else {
                return;
            };
            serve_connection(socket, acceptor, service, stopping, limits).await;
        }
    })
    .await;
}

async fn serve_connection<S, B>(
    socket: TcpStream,
    acceptor: TlsAcceptor,
    service: S,
    stopping: shutdown::Stopping,
    limits: Limits,
) where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let accepted = tokio::time::Instant::now();
    let handshake = acceptor.accept(socket);
    let tls = match tokio::time::timeout_at(accepted + limits.first_request, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
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
    let deadlines = shutdown::Deadlines {
        first_request: limits.first_request,
        // HTTP/2 frames (pings, settings) arrive between requests: only requests count there.
        header_read: (!h2).then_some(limits.header_read),
        idle: Some(limits.idle),
    };
    let activity = shutdown::Activity::new(deadlines, accepted);
    let service = TowerToHyperService::new(shutdown::TrackRequests::new(service, activity.clone()));
    let io = shutdown::TrackReads::new(tls, activity.clone());
    let connect = |io| builder.serve_connection(io, service);
    if let Err(error) = stopping.serve_until(io, connect, activity.expired()).await {
        tracing::debug!(%error, "Connection closed with an error");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    use std::convert::Infallible;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::ServerName;

    /// A CA and a serving certificate for 127.0.0.1 signed by it.
    struct Pki {
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
    }

    impl Pki {
        fn generate() -> Self {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params
                .subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            Self {
                ca_pem: ca.pem(),
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        }

        /// Write-then-rename, as a Secret volume update does.
        fn write(&self, dir: &Path) {
            replace(&dir.join("tls.key"), &self.key_pem);
            replace(&dir.join("tls.crt"), &self.cert_pem);
        }

        fn client(&self) -> tokio_rustls::TlsConnector {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
                .unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(config))
        }
    }

    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn paths(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join("tls.key"), dir.join("tls.crt"))
    }

    #[test]
    fn credentials_are_parsed_once_and_reloaded_when_the_files_change() {
        let dir = tempfile::tempdir().unwrap();
        Pki::generate().write(dir.path());
        let (key, certs) = paths(dir.path());
        let credentials = TlsCredentials::load(key, certs).unwrap();
        let now = Instant::now();
        let first = credentials.current(now);
        assert!(Arc::ptr_eq(&first, &credentials.current(now)));
        // Also after the content recheck: same bytes, nothing parsed again.
        assert!(Arc::ptr_eq(
            &first,
            &credentials.current(now + CONTENT_RECHECK * 2)
        ));

        Pki::generate().write(dir.path());
        let rotated = credentials.current(now);
        assert!(!Arc::ptr_eq(&first, &rotated), "a rotation is picked up");
        assert!(Arc::ptr_eq(&rotated, &credentials.current(now)));
    }

    #[test]
    fn a_rewrite_with_unchanged_metadata_is_caught_by_the_content_check() {
        let dir = tempfile::tempdir().unwrap();
        Pki::generate().write(dir.path());
        let (key, certs) = paths(dir.path());
        let credentials = TlsCredentials::load(key.clone(), certs.clone()).unwrap();
        let start = Instant::now();
        let first = credentials.current(start);

        // Rewrite, then pretend the metadata did not change (a write within the same timestamp tick).
        Pki::generate().write(dir.path());
        credentials.loaded.lock().stamps = TlsCredentials::stamps(&key, &certs);
        assert!(Arc::ptr_eq(&first, &credentials.current(start)));
        let later = start + CONTENT_RECHECK;
        assert!(!Arc::ptr_eq(&first, &credentials.current(later)));
    }

    #[test]
    fn unusable_files_keep_the_previous_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let (key, certs) = paths(dir.path());
        Pki::generate().write(dir.path());
        let credentials = TlsCredentials::load(key.clone(), certs.clone()).unwrap();
        let now = Instant::now();
        let first = credentials.current(now);

        replace(&key, "not a key\n");
        assert!(Arc::ptr_eq(&first, &credentials.current(now)));
        std::fs::remove_file(&certs).unwrap();
        assert!(Arc::ptr_eq(&first, &credentials.current(now)));

        Pki::generate().write(dir.path());
        assert!(!Arc::ptr_eq(&first, &credentials.current(now)));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (key, certs) = paths(dir.path());
        let error = TlsCredentials::load(key.clone(), certs.clone()).unwrap_err();
        assert!(error.to_string().contains("tls.key"), "{error}");

        let pki = Pki::generate();
        pki.write(dir.path());
        replace(&certs, "garbage\n");
        let error = TlsCredentials::load(key.clone(), certs.clone()).unwrap_err();
        assert!(
            error.to_string().contains("tls.crt") && error.to_string().contains("no certificate"),
            "{error}"
        );

        replace(&certs, &pki.cert_pem);
        replace(
            &key,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let error = TlsCredentials::load(key, certs).unwrap_err();
        assert!(
            error.to_string().contains("tls.key") && error.to_string().contains("PKCS#8"),
            "{error}"
        );
    }

    /// GET / over a new TLS connection; the status line, or the handshake error.
    async fn get(
        addr: std::net::SocketAddr,
        client: &tokio_rustls::TlsConnector,
    ) -> io::Result<String> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = client.connect(name, tcp).await?;
        tls.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        tls.read_to_string(&mut response).await?;
        Ok(response.lines().next().unwrap_or("").to_string())
    }

    #[tokio::test]
    async fn serves_https_picks_up_a_rotated_certificate_and_shuts_down() {
        let dir = tempfile::tempdir().unwrap();
        let (key, certs) = paths(dir.path());
        let old = Pki::generate();
        old.write(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = tower::service_fn(|_: http::Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"ok"),
            )))
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, key, certs, service, async move {
            let _ = stopped.await;
        }));

        assert_eq!(get(addr, &old.client()).await.unwrap(), "HTTP/1.1 200 OK");

        let new = Pki::generate();
        new.write(dir.path());
        assert_eq!(get(addr, &new.client()).await.unwrap(), "HTTP/1.1 200 OK");
        assert!(
            get(addr, &old.client()).await.is_err(),
            "the old certificate is no longer served"
        );

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn serve_fails_at_once_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let (key, certs) = paths(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service = tower::service_fn(|_: http::Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::new(),
            )))
        });
        let error = serve(listener, key, certs, service, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(matches!(error, TlsError::Read { .. }), "{error}");
    }

    /// Bounds only to keep a broken test from hanging; no timing is asserted against them.
    const HANG: Duration = Duration::from_secs(5);

    /// Timeouts short enough for tests; the idle timeout longer than the header timeout, as in
    /// production.
    const TEST_LIMITS: Limits = Limits {
        first_request: Duration::from_millis(500),
        header_read: Duration::from_millis(200),
        idle: Duration::from_secs(1),
        h2_keepalive_interval: Duration::from_secs(30),
        h2_keepalive_timeout: Duration::from_secs(10),
        max_connections: 100,
    };

    struct Limited {
        addr: std::net::SocketAddr,
        pki: Pki,
        _dir: tempfile::TempDir,
    }

    /// A webhook server answering `ok` to everything, with `limits`; it runs until the test ends.
    async fn start_limited(limits: Limits) -> Limited {
        let dir = tempfile::tempdir().unwrap();
        let (key, certs) = paths(dir.path());
        let pki = Pki::generate();
        pki.write(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = tower::service_fn(|_: http::Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"ok"),
            )))
        });
        let credentials = TlsCredentials::load(key, certs).unwrap();
        tokio::spawn(serve_limited(
            listener,
            credentials,
            service,
            std::future::pending::<()>(),
            limits,
        ));
        Limited {
            addr,
            pki,
            _dir: dir,
        }
    }

    type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

    async fn connect_with(
        addr: std::net::SocketAddr,
        client: tokio_rustls::TlsConnector,
    ) -> io::Result<Tls> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        tokio::time::timeout(HANG, client.connect(name, tcp))
            .await
            .expect("the handshake ends")
    }

    fn h2_client(pki: &Pki) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// A keep-alive GET on `tls`; the status line.
    async fn exchange(tls: &mut Tls) -> io::Result<String> {
        tls.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !response.ends_with(b"\r\n\r\nok") {
            let n = tokio::time::timeout(HANG, tls.read(&mut buf))
                .await
                .expect("the response comes")?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            response.extend_from_slice(&buf[..n]);
        }
        let response = String::from_utf8(response).unwrap();
        Ok(response.lines().next().unwrap_or("").to_string())
    }

    /// Whether the server closes `io` (EOF or an error) within [`HANG`]; whatever it sends before
    /// (HTTP/2 settings, say) is ignored.
    async fn closed<T: tokio::io::AsyncRead + Unpin>(io: &mut T) -> bool {
        let mut buf = [0u8; 1024];
        let until_closed = async {
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(HANG, until_closed).await.is_ok()
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_outlives_the_header_timeout_until_the_idle_timeout() {
        let server = start_limited(TEST_LIMITS).await;
        let mut tls = connect_with(server.addr, server.pki.client())
            .await
            .unwrap();
        assert_eq!(exchange(&mut tls).await.unwrap(), "HTTP/1.1 200 OK");

        // Idle for three header timeouts (hyper's header timeout would have closed it).
        tokio::time::sleep(TEST_LIMITS.header_read * 3).await;
        assert_eq!(exchange(&mut tls).await.unwrap(), "HTTP/1.1 200 OK");

        let idle_from = tokio::time::Instant::now();
        assert!(closed(&mut tls).await, "closed after the idle timeout");
        assert!(
            idle_from.elapsed() >= TEST_LIMITS.idle / 2,
            "not before the idle timeout: {:?}",
            idle_from.elapsed()
        );
    }

    #[tokio::test]
    async fn headers_that_trickle_in_are_cut_at_the_header_timeout() {
        let limits = Limits {
            idle: Duration::from_secs(60),
            ..TEST_LIMITS
        };
        let server = start_limited(limits).await;
        let mut tls = connect_with(server.addr, server.pki.client())
            .await
            .unwrap();
        assert_eq!(exchange(&mut tls).await.unwrap(), "HTTP/1.1 200 OK");

        // A header line every 20 ms: bytes keep coming, the headers never end.
        let (mut read, mut write) = tokio::io::split(tls);
        let trickle = tokio::spawn(async move {
            write.write_all(b"GET / HTTP/1.1\r\n").await?;
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                write.write_all(b"x-slow: yes\r\n").await?;
                write.flush().await?;
            }
            #[allow(unreachable_code)]
            io::Result::Ok(())
        });
        assert!(
            closed(&mut read).await,
            "closed at the header timeout, long before the idle timeout"
        );
        trickle.abort();
    }

    #[tokio::test]
    async fn silent_connections_are_closed_at_the_first_request_deadline() {
        let limits = Limits {
            idle: Duration::from_secs(60),
            header_read: Duration::from_secs(60),
            ..TEST_LIMITS
        };
        let server = start_limited(limits).await;

        // No TLS handshake at all.
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        assert!(closed(&mut tcp).await, "no handshake");

        // TLS, then nothing.
        let mut tls = connect_with(server.addr, server.pki.client())
            .await
            .unwrap();
        assert!(closed(&mut tls).await, "nothing after TLS");

        // HTTP/1 headers that never end.
        let mut tls = connect_with(server.addr, server.pki.client())
            .await
            .unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n")
            .await
            .unwrap();
        assert!(closed(&mut tls).await, "unfinished first headers");

        // HTTP/2 chosen by ALPN, then half of the connection preface.
        let mut tls = connect_with(server.addr, h2_client(&server.pki))
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        tls.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        assert!(closed(&mut tls).await, "partial HTTP/2 preface");
    }

    #[tokio::test]
    async fn an_http2_connection_without_streams_is_closed_at_the_idle_timeout() {
        let server = start_limited(TEST_LIMITS).await;
        let tls = connect_with(server.addr, h2_client(&server.pki))
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        let request = http::Request::get("https://127.0.0.1/")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = send.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        drop(response);
        // Longer than the header timeout: HTTP/2 has none between requests.
        tokio::time::sleep(TEST_LIMITS.header_read * 3).await;
        let request = http::Request::get("https://127.0.0.1/")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        assert_eq!(send.send_request(request).await.unwrap().status(), 200);

        tokio::time::timeout(HANG, conn)
            .await
            .expect("the server closes the idle connection")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_closed_while_open_ones_are_served() {
        let limits = Limits {
            max_connections: 2,
            idle: Duration::from_secs(60),
            ..TEST_LIMITS
        };
        let server = start_limited(limits).await;
        let client = server.pki.client();
        let mut first = connect_with(server.addr, client.clone()).await.unwrap();
        assert_eq!(exchange(&mut first).await.unwrap(), "HTTP/1.1 200 OK");
        let mut second = connect_with(server.addr, client.clone()).await.unwrap();
        assert_eq!(exchange(&mut second).await.unwrap(), "HTTP/1.1 200 OK");

        assert!(
            connect_with(server.addr, client.clone()).await.is_err(),
            "a third connection is closed before its handshake"
        );
        assert_eq!(exchange(&mut first).await.unwrap(), "HTTP/1.1 200 OK");
        assert_eq!(exchange(&mut second).await.unwrap(), "HTTP/1.1 200 OK");

        // Once one closes (and the server has seen it), a new one is accepted.
        drop(second);
        let deadline = tokio::time::Instant::now() + HANG;
        let mut third = loop {
            if let Ok(mut tls) = connect_with(server.addr, client.clone()).await {
                if exchange(&mut tls).await.is_ok() {
                    break tls;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "a connection is accepted again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(exchange(&mut third).await.unwrap(), "HTTP/1.1 200 OK");
        assert_eq!(exchange(&mut first).await.unwrap(), "HTTP/1.1 200 OK");
    }
}
