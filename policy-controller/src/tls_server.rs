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
use tokio::net::TcpListener;
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
/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1 client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

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
    shutdown::serve("webhook", listener, shutdown, move |socket, stopping| {
        let acceptor = TlsAcceptor::from(credentials.current(Instant::now()));
        let service = service.clone();
        async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
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
            let builder = auto::Builder::new(TokioExecutor::new());
            let mut builder = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                builder.http2_only()
            } else {
                builder.http1_only()
            };
            builder
                .http1()
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .timer(TokioTimer::new());
            let service = TowerToHyperService::new(service);
            let connect = |io| builder.serve_connection(io, service);
            if let Err(error) = stopping.serve(tls, connect).await {
                tracing::debug!(%error, "Connection closed with an error");
            }
        }
    })
    .await;
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
}
