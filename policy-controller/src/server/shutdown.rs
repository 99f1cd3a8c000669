//! One shutdown path for every server the controller runs (the webhook's HTTPS server and the
//! policy API; the admin server is kubert's).
//!
//! [`serve`] accepts connections until shutdown begins, then closes its listener (new connections
//! are refused at once), tells every open connection to finish ([`Stopping`]), and waits for them
//! for up to [`GRACE`]; what is still open then is cut. A connection finishes this way:
//! - one that has served requests waits up to [`IDLE_LINGER`] for its client's next bytes, then
//!   shuts down gracefully: an HTTP/1 connection answers the request in flight with
//!   `Connection: close` and closes (an idle one closes), HTTP/2 sends GOAWAY and finishes its
//!   streams. The wait is for HTTP/1 clients such as kube-apiserver's, which may be writing a
//!   request on an idle keep-alive connection at the moment it is closed: a POST that fails so is
//!   not retried, and with `failurePolicy: Fail` that is a refused pod;
//! - one accepted but not yet read from gets up to [`FIRST_REQUEST_WAIT`] for its first request;
//! - a policy watch stream ends at once, so the proxy reconnects elsewhere.
//!
//! The shutdown future yields a guard that `serve` holds until the connections are drained: with
//! kubert's `shutdown_handle().signaled()` the guard is the handle that keeps `Runtime::run` (and
//! so the process) from returning. Dropping it as soon as the signal arrives would let the process
//! exit while requests are in flight. A second signal still ends the process at once (kubert
//! aborts the drain).
//!
//! The servers' connection limits live here too, as they shape the same connection lifecycle:
//! [`ConnectionLimit`] (in `connection_limit.rs`) bounds how many connections a server holds, and [`Activity`] (fed by
//! [`OnRead`] and [`TrackRequests`], ended through [`Stopping::serve_until`]) closes a
//! connection that missed its first-request, header or idle deadline ([`Deadlines`]).

pub use crate::server::connection_limit::ConnectionLimit;
use hyper_util::{rt::TokioIo, server::graceful::GracefulConnection};
use parking_lot::Mutex;
use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify},
    task::JoinSet,
    time::Instant,
};

/// How long open connections may take to finish after shutdown begins before they are cut. Within
/// Kubernetes' default termination grace period (30 s), and as long as the webhooks' body timeout.
pub const GRACE: Duration = Duration::from_secs(10);

/// How long a connection that has not sent anything yet when shutdown begins may take to send its
/// first request (which is then answered).
pub const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// How long a connection that has served requests stays open once shutdown begins, waiting for its
/// client's next request (answered with `Connection: close` on HTTP/1) instead of closing under a
/// client that may be sending one. Half of [`GRACE`], so the request still has time to finish.
pub const IDLE_LINGER: Duration = Duration::from_secs(5);

/// Tells a connection (and anything it serves, like a watch stream) that the server is stopping.
#[derive(Clone, Debug)]
pub struct Stopping {
    stopping: watch::Receiver<bool>,
    /// [`IDLE_LINGER`], or less for a server with a shorter grace period.
    linger: Duration,
}

impl Stopping {
    /// A signal that fires when `stop` sends `true` (or is dropped).
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (stop, stopping) = watch::channel(false);
        (
            stop,
            Self {
                stopping,
                linger: IDLE_LINGER,
            },
        )
    }

    /// For a connection whose protocol ends gracefully by itself (HTTP/2's GOAWAY): once the
    /// server stops it finishes at once instead of waiting for its client's next request.
    pub fn without_linger(mut self) -> Self {
        self.linger = Duration::ZERO;
        self
    }

    /// True once the server has begun to stop.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Completes once the server stops.
    pub async fn stopped(&mut self) {
        let _ = self.stopping.wait_for(|stopping| *stopping).await;
    }

    /// Serves `io` with the hyper connection `connect` makes of it, to its end. Once the server
    /// stops, the connection waits for its client's next bytes (up to [`FIRST_REQUEST_WAIT`] if
    /// it has sent nothing yet, else up to [`IDLE_LINGER`]), then finishes what is in flight and
    /// closes. hyper closes a connection with no request in progress at once, which would fail a
    /// request the client was sending meanwhile.
    pub async fn serve<T, C>(
        self,
        io: T,
        connect: impl FnOnce(TokioIo<OnRead<T, watch::Sender<u64>>>) -> C,
    ) -> Result<(), C::Error>
    where
        C: GracefulConnection,
    {
        self.serve_until(io, connect, std::future::pending()).await
    }

    /// [`Stopping::serve`], and the connection also ends when `expired` completes: at once with
    /// [`Expiry::Now`], or with [`Expiry::Gracefully`] as at shutdown (an idle HTTP/1 connection
    /// closes, HTTP/2 sends GOAWAY and finishes its streams).
    pub async fn serve_until<T, C>(
        mut self,
        io: T,
        connect: impl FnOnce(TokioIo<OnRead<T, watch::Sender<u64>>>) -> C,
        expired: impl Future<Output = Expiry>,
    ) -> Result<(), C::Error>
    where
        C: GracefulConnection,
    {
        let (read, mut reads) = watch::channel(0u64);
        let connection = connect(TokioIo::new(OnRead::new(io, read)));
        tokio::pin!(connection);
        let linger = self.linger;
        let stopped = async {
            self.stopped().await;
            let wait = if *reads.borrow_and_update() == 0 {
                FIRST_REQUEST_WAIT
            } else {
                linger
            };
            let _ = tokio::time::timeout(wait, reads.changed()).await;
            Expiry::Gracefully
        };
        let end = async {
            tokio::select! {
                expiry = stopped => expiry,
                expiry = expired => expiry,
            }
        };
        tokio::select! {
            result = connection.as_mut() => return result,
            expiry = end => if expiry == Expiry::Now {
                return Ok(());
            },
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    }
}

/// An HTTP/1 service whose answers carry `Connection: close` once the server is stopping: the
/// client learns from the answer itself not to send another request on a connection that is about
/// to close (a request written to it meanwhile would fail).
#[derive(Clone, Debug)]
pub struct CloseWhenStopping<S> {
    inner: S,
    /// None for HTTP/2, where the header is not allowed (GOAWAY does this).
    stopping: Option<Stopping>,
}

impl<S> CloseWhenStopping<S> {
    pub fn new(inner: S, stopping: Option<Stopping>) -> Self {
        Self { inner, stopping }
    }
}

impl<S, R, B> hyper::service::Service<R> for CloseWhenStopping<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<B>, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        let response = self.inner.call(request);
        let stopping = self.stopping.clone();
        Box::pin(async move {
            let mut response = response.await?;
            if stopping.is_some_and(|s| s.is_stopping()) {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(response)
        })
    }
}

/// What a connection's transport tells each time a read returns data.
pub trait ReadObserver {
    fn data_read(&self);
}

/// Counts the reads, for [`Stopping::serve_until`]'s wait for a client's next bytes.
impl ReadObserver for watch::Sender<u64> {
    fn data_read(&self) {
        self.send_modify(|reads| *reads += 1);
    }
}

/// Feeds a connection's deadlines ([`Activity`]).
impl ReadObserver for Arc<Activity> {
    fn data_read(&self) {
        self.bytes_read();
    }
}

/// A connection's transport that tells its observer each time a read returns data; writes pass
/// through untouched (vectored ones included). (tokio-util's `InspectReader` does the same with a
/// closure, but a boxed `FnMut(&[u8])` in the servers' futures trips a rustc limitation on
/// higher-ranked `Send`.)
#[derive(Debug)]
pub struct OnRead<T, O> {
    io: T,
    observer: O,
}

impl<T, O> OnRead<T, O> {
    pub fn new(io: T, observer: O) -> Self {
        Self { io, observer }
    }
}

impl<T: AsyncRead + Unpin, O: ReadObserver + Unpin> AsyncRead for OnRead<T, O> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.observer.data_read();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin, O: Unpin> AsyncWrite for OnRead<T, O> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How a connection that ran past one of its deadlines ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Dropped: nothing is in flight that could be answered (no request yet, or headers that
    /// never finished).
    Now,
    /// As at shutdown: an idle HTTP/1 connection closes, HTTP/2 sends GOAWAY first.
    Gracefully,
}

/// The deadlines of one connection (see [`Activity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// From accept to the first request's headers: the TLS handshake, HTTP/2's preface and the
    /// first request's headers must all arrive within it.
    pub first_request: Duration,
    /// HTTP/1 only: from the first byte of a later request to the end of its headers. (hyper's own
    /// `header_read_timeout` starts when the previous response is sent, so it also bounds the idle
    /// wait between requests.)
    pub header_read: Option<Duration>,
    /// How long a connection with no request in flight stays open.
    pub idle: Option<Duration>,
}

/// What one connection is doing, as far as its deadlines care: fed by [`OnRead`] (bytes
/// received) and [`TrackRequests`] (requests begun and answered), watched by
/// [`Activity::expired`].
#[derive(Debug)]
pub struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

#[derive(Debug)]
struct ActivityState {
    deadlines: Deadlines,
    /// Ended by the connection limit to make room, before it began a request.
    evicted: bool,
    accepted: Instant,
    requests: u64,
    in_flight: usize,
    idle_since: Instant,
    /// When the first byte of the next HTTP/1 request arrived, until its headers are read.
    head_started: Option<Instant>,
}

impl Activity {
    /// A connection accepted at `accepted`.
    pub fn new(deadlines: Deadlines, accepted: Instant) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ActivityState {
                deadlines,
                evicted: false,
                accepted,
                requests: 0,
                in_flight: 0,
                idle_since: accepted,
                head_started: None,
            }),
            changed: Notify::new(),
        })
    }

    /// The next deadline and what happens then; none while a request is in flight.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let state = self.state.lock();
        if state.in_flight > 0 {
            return None;
        }
        if state.requests == 0 {
            let at = if state.evicted {
                state.accepted
            } else {
                state.accepted + state.deadlines.first_request
            };
            return Some((at, Expiry::Now));
        }
        if let (Some(started), Some(header_read)) =
            (state.head_started, state.deadlines.header_read)
        {
            return Some((started + header_read, Expiry::Now));
        }
        let idle = state.deadlines.idle?;
        Some((state.idle_since + idle, Expiry::Gracefully))
    }

    /// Completes when the connection has run past a deadline.
    pub async fn expired(&self) -> Expiry {
        loop {
            let Some((at, _)) = self.deadline() else {
                self.changed.notified().await;
                continue;
            };
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = self.changed.notified() => continue,
            }
            // A request may have begun meanwhile, which moves the deadline.
            if let Some((at, expiry)) = self.deadline() {
                if at <= Instant::now() {
                    return expiry;
                }
            }
        }
    }

    /// Sets the HTTP/1 header deadline once the protocol is known (after the TLS handshake).
    pub fn set_header_read(&self, header_read: Option<Duration>) {
        self.state.lock().deadlines.header_read = header_read;
    }

    /// Ends the connection at once if it has not begun a request yet (as its first-request
    /// deadline would); false when it has, or was evicted already.
    pub fn evict_if_unused(&self) -> bool {
        let mut state = self.state.lock();
        if state.requests > 0 || state.evicted {
            return false;
        }
        state.evicted = true;
        drop(state);
        self.changed.notify_one();
        true
    }

    /// True until the connection begins its first request (or is evicted).
    pub fn unused(&self) -> bool {
        let state = self.state.lock();
        state.requests == 0 && !state.evicted
    }

    fn bytes_read(&self) {
        let mut state = self.state.lock();
        if state.deadlines.header_read.is_none() {
            return;
        }
        if state.requests > 0 && state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn request_begun(self: &Arc<Self>) -> InFlight {
        let mut state = self.state.lock();
        state.requests += 1;
        state.in_flight += 1;
        state.head_started = None;
        InFlight(self.clone())
    }
}

/// A request from its headers until its response is sent (or dropped).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            drop(state);
            self.0.changed.notify_one();
        }
    }
}

/// A service that tells its connection's [`Activity`] when a request begins and when its
/// response has been sent (its body is dropped).
#[derive(Clone, Debug)]
pub struct TrackRequests<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackRequests<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, R, B> tower::Service<R> for TrackRequests<S>
where
    S: tower::Service<R, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let in_flight = self.activity.request_begun();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                body: Box::pin(body),
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
#[derive(Debug)]
pub struct TrackedBody<B> {
    body: Pin<Box<B>>,
    _in_flight: InFlight,
}

impl<B: hyper::body::Body> hyper::body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        self.body.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
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
    let (stop, mut stopping) = Stopping::new();
    stopping.linger = IDLE_LINGER.min(grace / 2);
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
mod tests;
