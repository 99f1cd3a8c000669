//! Tests of [`super`] (`shutdown.rs`).

#![allow(clippy::unwrap_used)]
use super::*;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::{convert::Infallible, net::SocketAddr};
use tokio::sync::{mpsc, oneshot};

/// The shutdown grace period of the test servers.
const TEST_GRACE: Duration = Duration::from_millis(300);

/// A plain HTTP/1 server on [`serve_with_grace`] whose handler reads the whole request body
/// and answers 200 with its length.
struct TestServer {
    addr: SocketAddr,
    /// Begins the shutdown.
    trigger: oneshot::Sender<()>,
    /// Completes (with an error) when the shutdown guard is dropped.
    released: oneshot::Receiver<()>,
    /// One message per request the handler has started on.
    requests: mpsc::UnboundedReceiver<()>,
    /// One message per connection accepted.
    accepted: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, triggered) = oneshot::channel::<()>();
    let (guard, released) = oneshot::channel::<()>();
    let (started, requests) = mpsc::unbounded_channel();
    let (accept, accepted) = mpsc::unbounded_channel();
    let shutdown = async move {
        let _ = triggered.await;
        guard
    };
    let connection = move |socket, stopping: Stopping| {
        let _ = accept.send(());
        let started = started.clone();
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let _ = started.send(());
                async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    let length = Bytes::from(body.len().to_string());
                    Ok::<_, hyper::Error>(http::Response::new(Full::new(length)))
                }
            });
        async move {
            let service = CloseWhenStopping::new(service, Some(stopping.clone()));
            let _ = stopping
                .serve(socket, |io| {
                    hyper::server::conn::http1::Builder::new().serve_connection(io, service)
                })
                .await;
        }
    };
    let task = tokio::spawn(serve_with_grace(
        "test", listener, shutdown, connection, TEST_GRACE,
    ));
    TestServer {
        addr,
        trigger,
        released,
        requests,
        accepted,
        task,
    }
}

/// A request body fed through a channel.
type Chunks = futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>;

/// Starts a POST whose body is sent through the returned channel; returns once the server's
/// handler has the request.
async fn post(
    server: &mut TestServer,
) -> (
    mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<hyper::Result<http::Response<hyper::body::Incoming>>>,
) {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (body, rx) = mpsc::channel::<Bytes>(1);
    let chunks: Chunks = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok(Frame::data(chunk)), rx))
    })
    .boxed();
    let request = http::Request::post("/")
        .body(StreamBody::new(chunks))
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(request).await });
    server.requests.recv().await.unwrap();
    (body, response)
}

#[tokio::test]
async fn holds_the_guard_until_the_request_in_flight_is_answered() {
    let mut server = start().await;
    let (body, response) = post(&mut server).await;
    body.send(Bytes::from_static(b"first half,")).await.unwrap();

    server.trigger.send(()).unwrap();
    tokio::time::sleep(TEST_GRACE / 3).await;
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "new connections are refused once shutdown begins"
    );
    assert_eq!(
        server.released.try_recv(),
        Err(oneshot::error::TryRecvError::Empty),
        "the guard is held while a request is in flight"
    );

    body.send(Bytes::from_static(b" second half"))
        .await
        .unwrap();
    drop(body);
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let answered = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(answered, "23");

    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns once drained")
        .unwrap();
    assert_eq!(
        server.released.try_recv(),
        Err(oneshot::error::TryRecvError::Closed),
        "the guard is dropped once drained"
    );
}

#[tokio::test]
async fn a_request_sent_just_after_the_signal_on_a_new_connection_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = start().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    server.accepted.recv().await.unwrap();

    // Accepted before the signal, nothing read yet: as a request still on its way.
    server.trigger.send(()).unwrap();
    tokio::time::sleep(TEST_GRACE / 3).await;
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response:?}");
    assert!(response.ends_with("\r\n\r\n2"), "{response:?}");
}

/// A keep-alive connection that has answered one request `hi` and is idle.
async fn idle_keep_alive_connection(server: &mut TestServer) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n2") {
        let mut chunk = [0; 512];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the first response");
        response.extend_from_slice(&chunk[..n]);
    }
    tcp
}

#[tokio::test]
async fn a_request_on_an_idle_keep_alive_connection_after_the_signal_is_answered_then_it_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = start().await;
    let mut tcp = idle_keep_alive_connection(&mut server).await;

    // As kube-apiserver does: the next request on the idle connection, sent after shutdown began
    // (within the linger, TEST_GRACE / 2). Closing the connection under it would fail it.
    server.trigger.send(()).unwrap();
    tokio::time::sleep(TEST_GRACE / 6).await;
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response:?}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "the answer tells the client not to reuse the connection: {response:?}"
    );
    assert!(response.ends_with("\r\n\r\n3"), "{response:?}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns once drained")
        .unwrap();
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_linger() {
    use tokio::io::AsyncReadExt;
    let mut server = start().await;
    let mut tcp = idle_keep_alive_connection(&mut server).await;

    let start = tokio::time::Instant::now();
    server.trigger.send(()).unwrap();
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).await.unwrap();
    let closed = start.elapsed();
    assert!(rest.is_empty(), "nothing more is sent: {rest:?}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns")
        .unwrap();
    let linger = TEST_GRACE / 2;
    assert!(
        closed >= linger && start.elapsed() < TEST_GRACE,
        "an idle connection is closed after the linger ({linger:?}), before the grace period ends: closed after {closed:?}, drained after {:?}",
        start.elapsed()
    );
    assert!(server.released.await.is_err(), "the guard is dropped");
}

#[tokio::test]
async fn connections_still_open_after_the_grace_period_are_cut() {
    let mut server = start().await;
    let (body, response) = post(&mut server).await;
    body.send(Bytes::from_static(b"never finished"))
        .await
        .unwrap();

    let start = tokio::time::Instant::now();
    server.trigger.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns after the grace period")
        .unwrap();
    assert!(start.elapsed() >= TEST_GRACE, "the grace period is waited");
    assert!(server.released.await.is_err(), "the guard is dropped");
    assert!(
        response.await.unwrap().is_err(),
        "the request that never finished is cut"
    );
    drop(body);
}
