//! Tests of [`super`] (`tls_server.rs`).

#![allow(clippy::unwrap_used)]
use super::*;
use crate::server::test_support::{closed, HANG};
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
    let config = credentials.config();
    let first = credentials.current();
    assert!(!credentials.reload(), "same bytes: nothing parsed again");
    assert!(Arc::ptr_eq(&first, &credentials.current()));

    Pki::generate().write(dir.path());
    assert!(credentials.reload(), "a rotation is picked up");
    let rotated = credentials.current();
    assert!(!Arc::ptr_eq(&first, &rotated));
    assert!(!credentials.reload());
    assert!(Arc::ptr_eq(&rotated, &credentials.current()));
    assert!(
        Arc::ptr_eq(&config, &credentials.config()),
        "one configuration (and session cache) across rotations"
    );
}

#[test]
fn unusable_files_keep_the_previous_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (key, certs) = paths(dir.path());
    let pki = Pki::generate();
    pki.write(dir.path());
    let credentials = TlsCredentials::load(key.clone(), certs.clone()).unwrap();
    let first = credentials.current();

    replace(&key, "not a key\n");
    assert!(!credentials.reload());
    assert!(Arc::ptr_eq(&first, &credentials.current()));
    // A Secret half updated: a new key with the old certificate.
    replace(&key, &Pki::generate().key_pem);
    assert!(!credentials.reload());
    assert!(Arc::ptr_eq(&first, &credentials.current()));
    std::fs::remove_file(&certs).unwrap();
    assert!(!credentials.reload());
    assert!(Arc::ptr_eq(&first, &credentials.current()));

    Pki::generate().write(dir.path());
    assert!(credentials.reload());
    assert!(!Arc::ptr_eq(&first, &credentials.current()));
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
    // Served from the next reload on (every RELOAD_INTERVAL).
    let served = tokio::time::timeout(HANG, async {
        loop {
            match get(addr, &new.client()).await {
                Ok(status) => return status,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the rotated certificate is served within a few reload intervals");
    assert_eq!(served, "HTTP/1.1 200 OK");
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

#[tokio::test]
async fn at_the_limit_a_connection_that_sent_nothing_makes_room_for_a_new_one() {
    let limits = Limits {
        max_connections: 3,
        first_request: Duration::from_secs(60),
        idle: Duration::from_secs(60),
        ..TEST_LIMITS
    };
    let server = start_limited(limits).await;
    let client = server.pki.client();
    let mut used = connect_with(server.addr, client.clone()).await.unwrap();
    assert_eq!(exchange(&mut used).await.unwrap(), "HTTP/1.1 200 OK");
    // Two that never send a byte (not even a TLS hello), oldest first.
    let mut oldest_silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut newer_silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    // At the limit: a new client is served, in the place of the oldest silent connection.
    let mut newcomer = connect_with(server.addr, client.clone()).await.unwrap();
    assert_eq!(exchange(&mut newcomer).await.unwrap(), "HTTP/1.1 200 OK");
    assert!(
        closed(&mut oldest_silent).await,
        "the oldest connection that sent nothing is ended"
    );
    // The next one takes the newer silent one's place; then every connection has been used,
    // and a further one is closed at once while the others keep being served.
    let mut next = connect_with(server.addr, client.clone()).await.unwrap();
    assert_eq!(exchange(&mut next).await.unwrap(), "HTTP/1.1 200 OK");
    assert!(closed(&mut newer_silent).await);
    assert!(
        connect_with(server.addr, client.clone()).await.is_err(),
        "with every connection in use, a new one is closed"
    );
    for tls in [&mut used, &mut newcomer, &mut next] {
        assert_eq!(exchange(tls).await.unwrap(), "HTTP/1.1 200 OK");
    }
}
