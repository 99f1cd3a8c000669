//! One shutdown path for every server the controller runs (the webhook's HTTPS server and the
//! policy API; the admin server is kubert's).
//!
//! [`serve`] accepts connections until shutdown begins, then closes its listener (new connections
//! are refused at once), tells every open connection to finish ([`Stopping`]: an HTTP/1 connection
//! finishes the request in flight and closes, an idle one closes now, HTTP/2 sends GOAWAY and
//! finishes its streams, a policy watch stream ends so the proxy reconnects elsewhere), and waits
//! for them for up to [`GRACE`]; what is still open then is cut.
//!
//! The shutdown future yields a guard that `serve` holds until the connections are drained: with
//! kubert's `shutdown_handle().signaled()` the guard is the handle that keeps `Runtime::run` (and
//! so the process) from returning. Dropping it as soon as the signal arrives would let the process
//! exit while requests are in flight. A second signal still ends the process at once (kubert
//! aborts the drain).

use hyper_util::server::graceful::GracefulConnection;
use std::{future::Future, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

/// How long open connections may take to finish after shutdown begins before they are cut. Within
/// Kubernetes' default termination grace period (30 s), and as long as the webhooks' body timeout.
pub const GRACE: Duration = Duration::from_secs(10);

/// Tells a connection (and anything it serves, like a watch stream) that the server is stopping.
#[derive(Clone, Debug)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// A signal that fires when `stop` sends `true` (or is dropped).
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (stop, stopping) = watch::channel(false);
        (stop, Self(stopping))
    }

    /// Completes once the server stops.
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Drives a hyper connection to its end; once the server stops, lets it finish what is in
    /// flight and close.
    pub async fn serve<C: GracefulConnection>(mut self, connection: C) -> Result<(), C::Error> {
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => return result,
            () = self.stopped() => {}
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    }
}

/// Serves connections from `listener` until `shutdown` completes, each with `connection` on its
/// own task, then drains them (see the module) and only then drops the guard `shutdown` yielded.
/// `server` names the server in logs.
pub async fn serve<G, C, F>(
    server: &'static str,
    listener: TcpListener,
    shutdown: impl Future<Output = G>,
    connection: C,
) where
    C: FnMut(TcpStream, Stopping) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    serve_with_grace(server, listener, shutdown, connection, GRACE).await
}

async fn serve_with_grace<G, C, F>(
    server: &'static str,
    listener: TcpListener,
    shutdown: impl Future<Output = G>,
    mut connection: C,
    grace: Duration,
) where
    C: FnMut(TcpStream, Stopping) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopping) = Stopping::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    let guard = loop {
        tokio::select! {
            biased;
            guard = &mut shutdown => break guard,
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => {
                    if let Err(error) = socket.set_nodelay(true) {
                        tracing::debug!(%error, server, "Failed to set TCP_NODELAY");
                    }
                    connections.spawn(connection(socket, stopping.clone()));
                }
                Err(error) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(%error, server, "Failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    let _ = stop.send(true);
    tracing::info!(
        server,
        connections = connections.len(),
        "Shutting down: no new connections; draining open ones"
    );
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            server,
            connections = connections.len(),
            "Connections still open after the shutdown grace period are cut"
        );
        connections.shutdown().await;
    }
    tracing::info!(server, "Drained");
    drop(guard);
}

#[cfg(test)]
mod tests {
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
        task: tokio::task::JoinHandle<()>,
    }

    async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (trigger, triggered) = oneshot::channel::<()>();
        let (guard, released) = oneshot::channel::<()>();
        let (started, requests) = mpsc::unbounded_channel();
        let shutdown = async move {
            let _ = triggered.await;
            guard
        };
        let connection = move |socket, stopping: Stopping| {
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
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service);
            async move {
                let _ = stopping.serve(connection).await;
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
    async fn idle_keep_alive_connections_do_not_hold_shutdown_up() {
        let mut server = start().await;
        let (body, response) = post(&mut server).await;
        drop(body);
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();

        // The connection stays open (keep-alive) and idle.
        let start = tokio::time::Instant::now();
        server.trigger.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.task)
            .await
            .expect("serve returns")
            .unwrap();
        assert!(
            start.elapsed() < TEST_GRACE,
            "an idle connection is closed at once, not waited for: {:?}",
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
}
