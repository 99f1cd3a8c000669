#![allow(clippy::unwrap_used)]
use super::*;
use crate::identity::{
    csr::tests::proxy_csr,
    service::tests::{fixture, request, Fixture, GOOD_TOKEN, ID},
    test_pki::{verify_leaf, TestPki, DAY},
};
use crate::server::test_support::{closed, HANG};
use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use rustls_pki_types::{CertificateDer, ServerName};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

const CONTROLLER: &str = "weft-controller.weft.serviceaccount.identity.weft.cluster.local";

#[test]
fn renewal_is_due_at_two_thirds_of_the_lifetime() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let h = Duration::from_secs(3600);
    assert_eq!(renew_in(t0, t0 + 3 * h, t0), 2 * h);
    assert_eq!(renew_in(t0, t0 + 3 * h, t0 + h), h);
    assert_eq!(renew_in(t0, t0 + 3 * h, t0 + 2 * h), Duration::ZERO);
    assert_eq!(renew_in(t0, t0 + 3 * h, t0 + 5 * h), Duration::ZERO);
    // Capped by the issuer: a short validity renews early.
    assert_eq!(
        renew_in(t0, t0 + 3 * 60 * Duration::from_secs(1), t0),
        2 * Duration::from_secs(60)
    );
}

#[test]
fn plaintext_only_on_loopback() {
    for addr in ["127.0.0.1:8090", "127.1.2.3:1", "[::1]:8090"] {
        assert_eq!(plaintext_allowed(addr.parse().unwrap()), Ok(()), "{addr}");
    }
    for addr in [
        "0.0.0.0:8090",
        "10.0.0.1:8090",
        "[::]:8090",
        "[fd00::1]:8090",
    ] {
        let error = plaintext_allowed(addr.parse().unwrap()).unwrap_err();
        assert!(error.to_string().contains(addr), "{error}");
        assert!(error.to_string().contains("loopback"), "{error}");
    }
}

/// An HTTP/2 connection as a tonic transport.
#[derive(Clone)]
struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tower::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = BoxFuture<'static, Result<Self::Response, hyper::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

fn tls_client(anchor: &CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(anchor.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` verified for `name`, as an Identity client.
async fn connect(
    addr: SocketAddr,
    anchor: &CertificateDer<'static>,
    name: &str,
) -> std::io::Result<IdentityClient<H2>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let tls = tls_client(anchor).connect(server_name, tcp).await?;
    let (_, session) = tls.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let origin = format!("https://{name}").parse().unwrap();
    Ok(IdentityClient::with_origin(H2(send), origin))
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), GrpcServeError>>,
}

async fn start(f: &Fixture, serving: Arc<ServingIdentity>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = tonic::service::Routes::new(f.service.clone().into_server());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        GrpcTransport::Tls(serving),
        routes,
        async move {
            let _ = stopped.await;
        },
    ));
    Running { addr, stop, task }
}

fn serving(f: &Fixture) -> Arc<ServingIdentity> {
    Arc::new(
        ServingIdentity::issue(
            CONTROLLER.to_string(),
            &f.store.current(),
            DAY,
            SystemTime::now(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn certify_over_tls_with_the_controllers_identity() {
    let f = fixture();
    let server = start(&f, serving(&f)).await;
    let anchor = f.pki.root_der();
    let mut client = connect(server.addr, &anchor, CONTROLLER).await.unwrap();

    let (_, csr) = proxy_csr(ID);
    let response = client
        .certify(request(ID, GOOD_TOKEN, csr.clone()))
        .await
        .unwrap()
        .into_inner();
    let intermediates: Vec<CertificateDer<'_>> = response
        .intermediate_certificates
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    verify_leaf(
        &response.leaf_certificate.into(),
        &intermediates,
        &anchor,
        ID,
        SystemTime::now(),
    )
    .unwrap();

    let status = client
        .certify(request(ID, "stolen", csr.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status.message().contains("not authenticated"),
        "{}",
        status.message()
    );
    let status = client
        .certify(request(ID, "api-token", csr))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status
            .message()
            .contains("not for audience `identity.weft.dev`"),
        "{}",
        status.message()
    );

    // The certificate is for the controller's name only, and only this PKI's anchor trusts it.
    assert!(connect(server.addr, &anchor, ID).await.is_err());
    let other = TestPki::new(DAY).root_der();
    assert!(connect(server.addr, &other, CONTROLLER).await.is_err());

    server.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns once drained")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn plain_http2_without_tls_is_refused_by_the_tls_server() {
    let f = fixture();
    let server = start(&f, serving(&f)).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let result = hyper::client::conn::http2::handshake::<_, _, tonic::body::Body>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await;
    if let Ok((send, conn)) = result {
        tokio::spawn(conn);
        let mut client =
            IdentityClient::with_origin(H2(send), format!("http://{CONTROLLER}").parse().unwrap());
        let (_, csr) = proxy_csr(ID);
        assert!(client.certify(request(ID, GOOD_TOKEN, csr)).await.is_err());
    }
}

#[tokio::test]
async fn plaintext_serve_refuses_a_non_loopback_listener() {
    let f = fixture();
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let routes = tonic::service::Routes::new(f.service.clone().into_server());
    let error = serve(
        listener,
        GrpcTransport::Plaintext,
        routes,
        std::future::pending::<()>(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, GrpcServeError::Plaintext(_)), "{error}");
}

#[tokio::test]
async fn the_serving_certificate_is_renewed_after_an_issuer_rotation() {
    let f = fixture();
    let serving = serving(&f);
    let (stop_renewing, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        serving
            .clone()
            .keep_renewed(f.store.subscribe(), async move {
                let _ = stopped.await;
            }),
    );
    let server = start(&f, serving.clone()).await;
    assert!(connect(server.addr, &f.pki.root_der(), CONTROLLER)
        .await
        .is_ok());

    let rotated = TestPki::new(30 * DAY);
    rotated.write(f.dir());
    assert!(matches!(
        f.store.reload(SystemTime::now()),
        crate::identity::Reload::Loaded
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if connect(server.addr, &rotated.root_der(), CONTROLLER)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new issuer's certificate is served without a restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(connect(server.addr, &f.pki.root_der(), CONTROLLER)
        .await
        .is_err());
    let _ = stop_renewing.send(());
}

/// A gRPC-named service whose every request waits for the server's [`Stopping`] signal, as a
/// watch stream would, then answers.
#[derive(Clone)]
struct WaitsForStop;

impl tonic::server::NamedService for WaitsForStop {
    const NAME: &'static str = "test.WaitsForStop";
}

impl tower::Service<http::Request<tonic::body::Body>> for WaitsForStop {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let stopping = req
            .extensions()
            .get::<crate::server::shutdown::Stopping>()
            .cloned();
        Box::pin(async move {
            let Some(mut stopping) = stopping else {
                let mut missing = http::Response::new(tonic::body::Body::empty());
                *missing.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                return Ok(missing);
            };
            stopping.stopped().await;
            Ok(http::Response::new(tonic::body::Body::empty()))
        })
    }
}

#[tokio::test]
async fn requests_carry_the_stopping_signal_and_streams_end_at_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (guard, released) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        GrpcTransport::Plaintext,
        tonic::service::Routes::new(WaitsForStop),
        async move {
            let _ = stopped.await;
            guard
        },
    ));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(format!("http://{addr}/test.WaitsForStop/Watch"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tokio::spawn(send.send_request(req));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!response.is_finished(), "the request waits for shutdown");

    stop.send(()).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(2), response)
        .await
        .expect("the request ends once shutdown begins")
        .unwrap()
        .unwrap();
    assert_eq!(
        response.status(),
        http::StatusCode::OK,
        "Stopping was in the request"
    );
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once drained")
        .unwrap()
        .unwrap();
    assert!(
        released.await.is_err(),
        "the guard is dropped after draining"
    );
}

const TEST_LIMITS: GrpcLimits = GrpcLimits {
    first_request: Duration::from_millis(500),
    keepalive_interval: Duration::from_secs(30),
    keepalive_timeout: Duration::from_secs(10),
    max_concurrent_streams: MAX_CONCURRENT_STREAMS,
    max_connections: 100,
};

/// The Identity server over TLS with `limits`; it runs until the test ends.
async fn start_limited(f: &Fixture, limits: GrpcLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = tonic::service::Routes::new(f.service.clone().into_server());
    tokio::spawn(serve_limited(
        listener,
        GrpcTransport::Tls(serving(f)),
        routes,
        std::future::pending::<()>(),
        limits,
    ));
    addr
}

async fn certify(client: &mut IdentityClient<H2>) -> Result<(), tonic::Status> {
    let (_, csr) = proxy_csr(ID);
    client.certify(request(ID, GOOD_TOKEN, csr)).await?;
    Ok(())
}

#[tokio::test]
async fn silent_connections_and_partial_prefaces_are_closed_at_the_first_request_deadline() {
    use tokio::io::AsyncWriteExt;
    let f = fixture();
    let addr = start_limited(&f, TEST_LIMITS).await;
    let anchor = f.pki.root_der();
    let tls = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(CONTROLLER.to_string()).unwrap();
        tls_client(&anchor).connect(name, tcp).await.unwrap()
    };

    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut tcp).await, "no TLS handshake");

    let mut silent = tls().await;
    assert!(closed(&mut silent).await, "nothing after TLS");

    let mut partial = tls().await;
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed(&mut partial).await, "half an HTTP/2 preface");

    // A connection whose first request came in time is not closed at that deadline.
    let mut client = connect(addr, &anchor, CONTROLLER).await.unwrap();
    certify(&mut client).await.unwrap();
    tokio::time::sleep(TEST_LIMITS.first_request * 2).await;
    certify(&mut client).await.unwrap();
}

#[tokio::test]
async fn grpc_connections_past_the_limit_are_closed_while_open_ones_are_served() {
    let f = fixture();
    let limits = GrpcLimits {
        max_connections: 1,
        ..TEST_LIMITS
    };
    let addr = start_limited(&f, limits).await;
    let anchor = f.pki.root_der();
    let mut first = connect(addr, &anchor, CONTROLLER).await.unwrap();
    certify(&mut first).await.unwrap();

    let refused = tokio::time::timeout(HANG, connect(addr, &anchor, CONTROLLER))
        .await
        .expect("the refused connection ends");
    assert!(refused.is_err(), "a second connection is closed at once");
    certify(&mut first).await.unwrap();

    // Once it closes (and the server has seen it), a new one is accepted.
    drop(first);
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let attempt = tokio::time::timeout(HANG, connect(addr, &anchor, CONTROLLER)).await;
        if let Ok(Ok(mut client)) = attempt {
            if certify(&mut client).await.is_ok() {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a connection is accepted again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
