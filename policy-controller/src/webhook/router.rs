//! The HTTPS admission service: routes `POST /inject` (mutating, pods; see `inject.rs`) and
//! `POST /validate` (validating, policy resources; see `validate.rs`), reads bounded bodies and
//! writes plain-text errors.

use crate::{
    watch::SharedNamespaces,
    webhook::metrics::{AdmissionMetrics, Webhook},
};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::{convert::Infallible, sync::Arc, time::Duration};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use weft_injector::Injector;

/// The largest injection request body accepted; larger bodies get `413 Payload Too Large`.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The largest validation request body accepted. A policy object is small; the API server refuses
/// requests over 3 MiB and etcd objects over 1.5 MiB, and an UPDATE review carries the object
/// twice (`object`, `oldObject`), so a real review fits with room to spare.
pub const MAX_VALIDATE_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How long a client may take to send a request body before it gets `408 Request Timeout`.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Bodies larger than this are parsed and answered on threads of their own, at most
/// [`LARGE_REVIEWS_AT_ONCE`] at a time and at a lower scheduling priority: parsing a body of several
/// MiB takes a good part of a second, which on an async worker would stall every other connection
/// it serves (probes included), and without a bound a few clients could run as many parses, and
/// hold as much memory, as they like. Real pod reviews are a few KiB and stay inline.
pub(crate) const LARGE_BODY_BYTES: usize = 64 * 1024;

/// How many large reviews are read and parsed at once; the others wait for their turn. One: in the
/// hostile-client test (6 clients sending 9 MiB reviews without pause, 2 CPUs) two at once kept
/// both CPUs busy with large bodies and a probe's p99 was 14 ms (median of 5 runs); with one, the
/// other CPU stays free for everything else and the p99 was 8.4 ms. Real pod reviews that large
/// are rare, and one takes a few milliseconds.
pub(crate) const LARGE_REVIEWS_AT_ONCE: usize = 1;

/// How long a large review may wait for its turn before it gets `503 Service Unavailable`; the API
/// server's own webhook timeout is 10 s by default.
const LARGE_REVIEW_WAIT: Duration = Duration::from_secs(5);

/// Answers admission reviews; cheap to clone (one per connection).
#[derive(Clone, Debug)]
pub struct AdmissionService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Set once the injection configuration is complete: at once, or, with
    /// `--native-sidecar=auto`, once the API server's version is known (see [`InjectorSlot`]).
    pub(crate) injector: InjectorSlot,
    pub(crate) namespaces: SharedNamespaces,
    pub(crate) client: Option<kube::Client>,
    pub(crate) metrics: AdmissionMetrics,
    /// One permit per large review being parsed or answered (see [`LARGE_BODY_BYTES`]).
    pub(crate) large_reviews: Arc<Semaphore>,
}

pub(crate) type Body = Full<Bytes>;

impl Inner {
    /// The injector; callers check first that it is set (`/inject` answers 503 until then).
    pub(crate) fn injector(&self) -> &Injector {
        self.injector
            .get()
            .expect("/inject runs only once the injector is set")
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionService")
            .field("injector", &self.injector)
            .field("namespaces", &self.namespaces.read().len())
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// The injector the webhook uses, which may be set after the server starts: with
/// `--native-sidecar=auto`, the layout depends on the API server's version, learned in the
/// background so that the controller starts (and answers `/live`) without the API server.
#[derive(Clone, Debug, Default)]
pub struct InjectorSlot(Arc<std::sync::OnceLock<Injector>>);

impl InjectorSlot {
    /// A slot holding `injector` already.
    pub fn set(injector: Injector) -> Self {
        let slot = Self::default();
        slot.fill(injector);
        slot
    }

    /// Sets the injector; a second call is ignored (the first injector stays).
    pub fn fill(&self, injector: Injector) {
        let _ = self.0.set(injector);
    }

    pub fn get(&self) -> Option<&Injector> {
        self.0.get()
    }
}

// === impl AdmissionService ===

impl AdmissionService {
    /// `client` is used only to fetch a namespace the index does not know yet; without one such a
    /// namespace counts as not enabled.
    pub fn new(
        injector: Injector,
        namespaces: SharedNamespaces,
        client: Option<kube::Client>,
        metrics: AdmissionMetrics,
    ) -> Self {
        Self::with_slot(InjectorSlot::set(injector), namespaces, client, metrics)
    }

    /// As [`Self::new`], with an injector that may come later: until it is set, `/inject`
    /// answers `503 Service Unavailable`.
    pub fn with_slot(
        injector: InjectorSlot,
        namespaces: SharedNamespaces,
        client: Option<kube::Client>,
        metrics: AdmissionMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                injector,
                namespaces,
                client,
                metrics,
                large_reviews: Arc::new(Semaphore::new(LARGE_REVIEWS_AT_ONCE)),
            }),
        }
    }

    /// A `tower::Service` for kubert's server.
    pub fn into_service(
        self,
    ) -> impl tower::Service<
        Request<hyper::body::Incoming>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
           + Send
           + 'static {
        tower::service_fn(move |req| {
            let this = self.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        })
    }

    /// Routes one HTTP request.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let webhook = match req.uri().path() {
            "/inject" => Webhook::Inject,
            "/validate" => Webhook::Validate,
            path => {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!("no webhook at {path}; Weft serves POST /inject and POST /validate"),
                )
            }
        };
        if req.method() != Method::POST {
            let mut rsp = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} accepts only POST", req.uri().path()),
            );
            rsp.headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
            return rsp;
        }

        let start = Instant::now();
        let limit = match webhook {
            Webhook::Inject => MAX_BODY_BYTES,
            Webhook::Validate => MAX_VALIDATE_BODY_BYTES,
        };
        // A body declared large waits for its turn before it is read: its client is held back by
        // TCP meanwhile, so large transfers (and their TLS decryption) take no more than their
        // share of the CPU either. A body that turns out large without declaring it (chunked)
        // waits once it is read.
        // (One declared over the limit gets its 413 at once.)
        let declared_large = declared_length(&req)
            .is_some_and(|len| len > LARGE_BODY_BYTES as u64 && len <= limit as u64);
        let mut turn = None;
        if declared_large {
            match self.large_review_turn(webhook, start).await {
                Ok(permit) => turn = Some(permit),
                Err(rsp) => return rsp,
            }
        }
        let body = match read_body(req, limit).await {
            Ok(body) => body,
            Err(rsp) => {
                self.inner
                    .metrics
                    .record(webhook, "error", "bad_request", start.elapsed());
                return rsp;
            }
        };
        let lane = match turn {
            Some(permit) => Lane::Blocking(permit),
            None if body.len() <= LARGE_BODY_BYTES => Lane::Inline,
            None => match self.large_review_turn(webhook, start).await {
                Ok(permit) => Lane::Blocking(permit),
                Err(rsp) => return rsp,
            },
        };
        let answered = match webhook {
            Webhook::Inject => self.inject(body, start, lane).await,
            Webhook::Validate => {
                let this = self.clone();
                lane.run(move || this.validate(&body, start))
                    .await
                    .map(|(response, _lane)| response)
            }
        };
        answered.unwrap_or_else(|error| {
            self.inner
                .metrics
                .record(webhook, "error", "internal", start.elapsed());
            tracing::error!(%error, ?webhook, "Answering an admission review panicked");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "answering the review failed; the controller's log has the cause".to_string(),
            )
        })
    }
}

impl AdmissionService {
    /// One of the [`LARGE_REVIEWS_AT_ONCE`] turns, or `503` after [`LARGE_REVIEW_WAIT`].
    async fn large_review_turn(
        &self,
        webhook: Webhook,
        start: Instant,
    ) -> Result<OwnedSemaphorePermit, Response<Body>> {
        let turn = self.inner.large_reviews.clone().acquire_owned();
        match tokio::time::timeout(LARGE_REVIEW_WAIT, turn).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => {
                self.inner
                    .metrics
                    .record(webhook, "error", "busy", start.elapsed());
                Err(plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "reviews larger than {LARGE_BODY_BYTES} bytes are answered {LARGE_REVIEWS_AT_ONCE} at a time and this one waited {}s for its turn; try again",
                        LARGE_REVIEW_WAIT.as_secs()
                    ),
                ))
            }
        }
    }
}

/// The body length a request declares (`content-length`), if it does.
fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The nice value of the threads that parse large reviews: the kernel then gives the async workers
/// (small reviews, probes, TLS handshakes) most of a busy CPU.
const LARGE_REVIEW_NICE: i32 = 10;

/// A large review's work panicked, or no thread could be started for it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct LaneFailed(String);

/// Where a review's CPU work runs: inline on the async worker for a small body; for a large one on
/// a thread of its own at [`LARGE_REVIEW_NICE`], holding one of the [`LARGE_REVIEWS_AT_ONCE`]
/// permits until the work ends, even if the client has gone meanwhile.
#[derive(Debug)]
pub(crate) enum Lane {
    Inline,
    Blocking(OwnedSemaphorePermit),
}

impl Lane {
    /// Runs `work` in this lane and gives the lane back for the next step. The error is a panic
    /// of `work` on its thread (inline, a panic unwinds as anywhere else).
    pub(crate) async fn run<T, F>(self, work: F) -> Result<(T, Lane), LaneFailed>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = match self {
            Lane::Inline => return Ok((work(), Lane::Inline)),
            Lane::Blocking(permit) => permit,
        };
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("weft-large-review".into())
            .spawn(move || {
                // Best effort: where the kernel refuses, the work runs at the normal priority.
                let _ = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    LARGE_REVIEW_NICE,
                );
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                let _ = done.send(outcome.map(|value| (value, Lane::Blocking(permit))));
            })
            .map_err(|error| {
                LaneFailed(format!("starting a thread for a large review: {error}"))
            })?;
        match result.await {
            Ok(Ok(answered)) => Ok(answered),
            Ok(Err(panic)) => Err(LaneFailed(format!(
                "a large review's work panicked: {}",
                panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(no message)")
            ))),
            Err(_) => Err(LaneFailed(
                "a large review's thread ended without an answer".into(),
            )),
        }
    }
}

/// Reads at most `limit` bytes, within [`BODY_TIMEOUT`].
async fn read_body<B>(req: Request<B>, limit: usize) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_string();
    let too_large = || {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies of {path} are limited to {limit} bytes"),
        )
    };
    if declared_length(&req).is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(error)) => Err(plain(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {error}"),
        )),
        Err(_) => Err(plain(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

pub(crate) fn plain(status: StatusCode, message: String) -> Response<Body> {
    let mut rsp = Response::new(Full::new(Bytes::from(message + "\n")));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}

pub(crate) fn json(body: Vec<u8>) -> Response<Body> {
    let mut rsp = Response::new(Full::new(Bytes::from(body)));
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    rsp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::watch::{NamespaceIndex, NamespaceMetrics};
    use serde_json::{json, Value};

    fn service() -> AdmissionService {
        AdmissionService::new(
            Injector::new(weft_injector::config::ProxyConfig::default()),
            NamespaceIndex::shared(NamespaceMetrics::default()),
            None,
            AdmissionMetrics::default(),
        )
    }

    /// A review of a pod in `kube-system`: both webhooks allow it (200) without any lookup.
    fn review() -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "kube-system",
                "operation": "CREATE",
                "userInfo": {"username": "test"},
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "namespace": "kube-system"},
                    "spec": {"containers": [{"name": "app", "image": "app"}]}
                }
            }
        })
    }

    async fn post(path: &str, body: &Value) -> (StatusCode, String) {
        post_to(&service(), path, body).await
    }

    async fn post_to(service: &AdmissionService, path: &str, body: &Value) -> (StatusCode, String) {
        let request = Request::post(path)
            .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
            .unwrap();
        let response = service.handle(request).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn both_webhooks_answer_only_v1_admission_reviews() {
        // Under the smaller /validate limit, so both webhooks parse it.
        let huge = "x".repeat(3 * 1024 * 1024);
        let cases: [(&str, &str, &str, &[&str]); 5] = [
            ("apiVersion", "admission.k8s.io/v1", "200", &[]),
            (
                "apiVersion",
                "admission.k8s.io/v1beta1",
                "400",
                &[
                    r#"apiVersion is "admission.k8s.io/v1beta1""#,
                    r#"the accepted apiVersion is "admission.k8s.io/v1""#,
                ],
            ),
            (
                "kind",
                "Foo",
                "400",
                &[
                    r#"kind is "Foo""#,
                    r#"the accepted kind is "AdmissionReview""#,
                ],
            ),
            (
                "kind",
                "",
                "400",
                &[r#"kind is """#, r#"the accepted kind is "AdmissionReview""#],
            ),
            (
                "apiVersion",
                &huge,
                "400",
                &[
                    "apiVersion is \"xxx",
                    "bytes left out",
                    "admission.k8s.io/v1",
                ],
            ),
        ];
        for path in ["/inject", "/validate"] {
            for (field, value, status, needles) in &cases {
                let mut body = review();
                body[*field] = json!(value);
                let (got, message) = post(path, &body).await;
                let shown = short(value);
                assert_eq!(got.as_str(), *status, "{path} {field}={shown}: {message}");
                for needle in *needles {
                    assert!(
                        message.contains(needle),
                        "{path} {field}={shown}: {message:?} lacks {needle:?}"
                    );
                }
                assert!(
                    message.len() < 500,
                    "{path}: a {} byte answer",
                    message.len()
                );
            }
        }
    }

    #[tokio::test]
    async fn both_webhooks_repeat_at_most_200_bytes_of_bad_input() {
        // 3 MiB: under the smaller /validate limit, so both webhooks parse it.
        let huge = "é".repeat(3 * 512 * 1024);
        for path in ["/inject", "/validate"] {
            for (field, what) in [
                ("operation", "an unknown operation"),
                ("dryRun", "a string for a boolean"),
                ("userInfo", "a string for an object"),
            ] {
                let mut body = review();
                body["request"][field] = json!(huge);
                let (status, message) = post(path, &body).await;
                if field == "userInfo" || (path == "/validate" && field == "dryRun") {
                    // Neither webhook reads userInfo, nor validation dryRun: skipped unparsed,
                    // whatever they hold, and the review (of a pod in kube-system) is allowed.
                    assert_eq!(status, StatusCode::OK, "{path} {what}: {}", short(&message));
                    assert!(!message.contains('é'), "{path} {what}: echoes its input");
                    continue;
                }
                assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {what}: {message}");
                let echoed = message.matches('é').count() * 'é'.len_utf8();
                assert!(
                    echoed > 0 && echoed <= weft_injector::admission::MAX_ECHO_BYTES,
                    "{path} {what}: repeats {echoed} bytes of the input: {}",
                    short(&message)
                );
                assert!(
                    message.contains("bytes left out"),
                    "{path} {what}: {}",
                    short(&message)
                );
            }
        }
    }

    #[tokio::test]
    async fn validate_takes_a_smaller_body_than_inject() {
        let mut body = review();
        body["request"]["object"] = json!({"padding": "p".repeat(MAX_VALIDATE_BODY_BYTES)});
        let (status, message) = post("/validate", &body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", short(&message));
        assert_eq!(
            message.trim(),
            format!("request bodies of /validate are limited to {MAX_VALIDATE_BODY_BYTES} bytes")
        );
        // The same body is within /inject's limit (and answered, not refused for its size).
        let (status, message) = post("/inject", &body).await;
        assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", short(&message));
    }

    #[tokio::test]
    async fn validate_denials_repeat_at_most_200_bytes_of_bad_input() {
        let huge = "z".repeat(3_000_000);
        let server = |port: Value, selector: Value| {
            json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "Server",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"podSelector": selector, "port": port, "proxyProtocol": "HTTP/1"},
            })
        };
        for (what, object, field) in [
            ("a port name", server(json!(huge), json!({})), "spec.port"),
            (
                "a label value",
                server(json!(8080), json!({"matchLabels": {"app": huge}})),
                "spec.podSelector",
            ),
        ] {
            let mut body = review();
            body["request"]["kind"] =
                json!({"group": "policy.weft.dev", "version": "v1beta1", "kind": "Server"});
            body["request"]["resource"] =
                json!({"group": "policy.weft.dev", "version": "v1beta1", "resource": "servers"});
            body["request"]["namespace"] = json!("shop");
            body["request"]["object"] = object;
            let (status, answer) = post("/validate", &body).await;
            assert_eq!(status, StatusCode::OK, "{what}: {}", short(&answer));
            let review: Value = serde_json::from_str(&answer).unwrap();
            let message = review["response"]["status"]["message"]
                .as_str()
                .unwrap_or("");
            assert_eq!(review["response"]["allowed"], false, "{what}");
            assert!(message.starts_with(field), "{what}: {}", short(message));
            assert!(
                message.matches('z').count() <= weft_injector::admission::MAX_ECHO_BYTES,
                "{what}: a {} byte denial: {}",
                message.len(),
                short(message)
            );
        }
    }

    /// Every large-review turn, held until dropped.
    async fn take_all_turns(service: &AdmissionService) -> OwnedSemaphorePermit {
        service
            .inner
            .large_reviews
            .clone()
            .acquire_many_owned(LARGE_REVIEWS_AT_ONCE as u32)
            .await
            .unwrap()
    }

    /// A review over [`LARGE_BODY_BYTES`] (its pod carries padding injection skips).
    fn large_review() -> Value {
        let mut body = review();
        body["request"]["object"]["spec"]["padding"] = json!("p".repeat(LARGE_BODY_BYTES));
        body
    }

    #[tokio::test]
    async fn large_reviews_wait_for_their_turn_while_small_ones_are_answered() {
        let service = service();
        let all_turns = take_all_turns(&service).await;
        let waiting: Vec<_> = ["/inject", "/validate"]
            .into_iter()
            .map(|path| {
                let service = service.clone();
                tokio::spawn(async move { post_to(&service, path, &large_review()).await })
            })
            .collect();
        // Let both reach their wait for a turn.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        for path in ["/inject", "/validate"] {
            let (status, message) = post_to(&service, path, &review()).await;
            assert_eq!(status, StatusCode::OK, "{path}: {message}");
        }
        assert!(
            waiting.iter().all(|task| !task.is_finished()),
            "a large review was answered while every turn was taken"
        );
        drop(all_turns);
        for task in waiting {
            let (status, message) = task.await.unwrap();
            assert_eq!(status, StatusCode::OK, "{}", short(&message));
        }
        assert_eq!(
            service.inner.large_reviews.available_permits(),
            LARGE_REVIEWS_AT_ONCE,
            "every turn is given back"
        );
    }

    /// A body that records whether it was read.
    struct Watched {
        inner: Full<Bytes>,
        read: Arc<std::sync::atomic::AtomicBool>,
    }

    impl hyper::body::Body for Watched {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            self.read.store(true, std::sync::atomic::Ordering::SeqCst);
            std::pin::Pin::new(&mut self.inner).poll_frame(cx)
        }
    }

    #[tokio::test]
    async fn a_body_declared_large_is_read_only_in_its_turn() {
        let service = service();
        let all_turns = take_all_turns(&service).await;
        let body = Bytes::from(serde_json::to_vec(&large_review()).unwrap());
        let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let request = Request::post("/inject")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Watched {
                inner: Full::new(body),
                read: read.clone(),
            })
            .unwrap();
        let answer = tokio::spawn({
            let service = service.clone();
            async move { service.handle(request).await.status() }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !read.load(std::sync::atomic::Ordering::SeqCst),
            "the body was read while every turn was taken"
        );
        drop(all_turns);
        assert_eq!(answer.await.unwrap(), StatusCode::OK);
        assert!(read.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_review_that_waits_too_long_gets_503() {
        let service = service();
        let _all_turns = take_all_turns(&service).await;
        let (status, message) = post_to(&service, "/inject", &large_review()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
        assert!(
            message.contains("waited 5s for its turn; try again"),
            "{message}"
        );
    }

    /// The first characters of a long text, for assertion messages.
    fn short(text: &str) -> String {
        text.chars().take(300).collect()
    }
}
