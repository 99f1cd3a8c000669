//! The HTTPS admission service served by kubert's server: `POST /inject` (mutating, pods) and
//! `POST /validate` (validating, policy resources).
//!
//! Everything here is plumbing: read a bounded body, hand it to the pure admission code, count the
//! outcome, write the answer. No API call is made per request; the namespace comes from the
//! namespace index, and only a namespace the index does not know yet is fetched once.

use crate::{
    metrics::{AdmissionMetrics, Webhook},
    namespaces::{Annotations, SharedNamespaces},
};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use k8s_openapi::api::core::v1::Namespace;
use std::{convert::Infallible, sync::Arc, time::Duration};
use tokio::time::Instant;
use weft_injector::{admission as inject, Injector};

/// The largest admission request body accepted; larger bodies get `413 Payload Too Large`.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// How long a client may take to send a request body before it gets `408 Request Timeout`.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a namespace the index does not know yet may take to fetch from the API.
const NAMESPACE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers admission reviews; cheap to clone (one per connection).
#[derive(Clone, Debug)]
pub struct AdmissionService {
    inner: Arc<Inner>,
}

struct Inner {
    injector: Injector,
    namespaces: SharedNamespaces,
    client: Option<kube::Client>,
    metrics: AdmissionMetrics,
}

type Body = Full<Bytes>;

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionService")
            .field("injector", &self.injector)
            .field("namespaces", &self.namespaces.read().len())
            .field("client", &self.client.is_some())
            .finish()
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
        Self {
            inner: Arc::new(Inner {
                injector,
                namespaces,
                client,
                metrics,
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
        let body = match read_body(req).await {
            Ok(body) => body,
            Err(rsp) => {
                self.inner
                    .metrics
                    .record(webhook, "error", "bad_request", start.elapsed());
                return rsp;
            }
        };
        match webhook {
            Webhook::Inject => self.inject(&body, start).await,
            Webhook::Validate => self.validate(&body, start),
        }
    }

    async fn inject(&self, body: &[u8], start: Instant) -> Response<Body> {
        let metrics = &self.inner.metrics;
        let request = match inject::parse_review(body) {
            Ok(request) => request,
            Err(error) => {
                metrics.record(Webhook::Inject, "error", "bad_request", start.elapsed());
                tracing::debug!(%error, "Rejected a body that is not an AdmissionReview");
                return plain(StatusCode::BAD_REQUEST, error.to_string());
            }
        };

        let namespace_annotations = match request.namespace.as_deref() {
            Some(ns) if inject::uses_namespace(&request) => self.namespace_annotations(ns).await,
            _ => None,
        };
        let reviewed = inject::respond(
            &self.inner.injector,
            &request,
            namespace_annotations.as_deref(),
        );
        let outcome = reviewed.outcome;
        if !reviewed.warnings.is_empty() {
            metrics.record_warnings(Webhook::Inject);
        }
        metrics.record(
            Webhook::Inject,
            outcome.result(),
            outcome.reason(),
            start.elapsed(),
        );
        tracing::debug!(
            uid = %request.uid,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            operation = ?request.operation,
            result = outcome.result(),
            reason = outcome.reason(),
            warnings = ?reviewed.warnings,
            "Answered injection review",
        );
        json(reviewed.review)
    }

    fn validate(&self, body: &[u8], start: Instant) -> Response<Body> {
        let metrics = &self.inner.metrics;
        // The whole object, not the injection webhook's pruned parse: validation reads all of it.
        let request = match parse_full_review(body) {
            Ok(request) => request,
            Err(message) => {
                metrics.record(Webhook::Validate, "error", "bad_request", start.elapsed());
                return plain(StatusCode::BAD_REQUEST, message);
            }
        };
        let response = weft_policy_k8s_api::validate::review(&request);
        let (result, reason) = if response.allowed {
            ("allowed", "")
        } else {
            ("denied", "invalid")
        };
        metrics.record(Webhook::Validate, result, reason, start.elapsed());
        tracing::debug!(
            uid = %request.uid,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            kind = %request.kind.kind,
            result,
            message = %response.result.message,
            "Answered validation review",
        );
        match serde_json::to_vec(&response.into_review()) {
            Ok(body) => json(body),
            Err(error) => {
                metrics.record(Webhook::Validate, "error", "serialize", start.elapsed());
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("could not serialize the admission response: {error}"),
                )
            }
        }
    }

    /// The namespace's annotations from the index; a namespace the index does not know yet (it was
    /// created moments ago) is fetched once from the API.
    async fn namespace_annotations(&self, namespace: &str) -> Option<Annotations> {
        if let Some(annotations) = self.inner.namespaces.read().annotations(namespace) {
            return Some(annotations);
        }
        let client = self.inner.client.clone()?;
        let api = kube::Api::<Namespace>::all(client);
        let metrics = &self.inner.metrics;
        match tokio::time::timeout(NAMESPACE_LOOKUP_TIMEOUT, api.get_opt(namespace)).await {
            Ok(Ok(Some(ns))) => {
                metrics.record_namespace_lookup("found");
                Some(Arc::new(ns.metadata.annotations.unwrap_or_default()))
            }
            Ok(Ok(None)) => {
                metrics.record_namespace_lookup("not_found");
                None
            }
            Ok(Err(error)) => {
                metrics.record_namespace_lookup("error");
                tracing::warn!(%namespace, %error, "Could not fetch a namespace the index does not know; its pods count as not enabled");
                None
            }
            Err(_) => {
                metrics.record_namespace_lookup("timeout");
                tracing::warn!(%namespace, "Timed out fetching a namespace the index does not know; its pods count as not enabled");
                None
            }
        }
    }
}

fn parse_full_review(
    body: &[u8],
) -> Result<kube::core::admission::AdmissionRequest<kube::core::DynamicObject>, String> {
    let review: kube::core::admission::AdmissionReview<kube::core::DynamicObject> =
        serde_json::from_slice(body)
            .map_err(|error| format!("the body is not an AdmissionReview: {error}"))?;
    review
        .try_into()
        .map_err(|_| "the AdmissionReview has no request".to_string())
}

/// Reads at most [`MAX_BODY_BYTES`], within [`BODY_TIMEOUT`].
async fn read_body<B>(req: Request<B>) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("admission request bodies are limited to {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
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

fn plain(status: StatusCode, message: String) -> Response<Body> {
    let mut rsp = Response::new(Full::new(Bytes::from(message + "\n")));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}

fn json(body: Vec<u8>) -> Response<Body> {
    let mut rsp = Response::new(Full::new(Bytes::from(body)));
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    rsp
}
