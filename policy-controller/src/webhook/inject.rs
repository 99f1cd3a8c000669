//! `POST /inject`: the mutating webhook for pods. Plumbing around the pure injector: parse and run
//! the checks that need no namespace (once), look the namespace up in the index only when the
//! answer depends on it (no API call per request; only a namespace the index does not know yet is
//! fetched once), decide and patch, count, answer.

use crate::{
    watch::Annotations,
    webhook::metrics::Webhook,
    webhook::router::{json, plain, AdmissionService, Body, Lane, LaneFailed},
};
use bytes::Bytes;
use http::{Response, StatusCode};
use k8s_openapi::api::core::v1::Namespace;
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;
use weft_injector::admission::{self as inject, FirstLook};

/// What the log line of an answered review names.
struct Summary {
    uid: String,
    namespace: String,
    name: String,
    operation: String,
}

impl Summary {
    fn of(request: &kube::core::admission::AdmissionRequest<kube::core::DynamicObject>) -> Self {
        Self {
            uid: request.uid.clone(),
            namespace: request.namespace.clone().unwrap_or_default(),
            name: request.name.clone(),
            operation: format!("{:?}", request.operation),
        }
    }
}

/// How long a namespace the index does not know yet may take to fetch from the API.
const NAMESPACE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

impl AdmissionService {
    /// Parses, looks the namespace up and answers; the parse and the answer run in `lane` (the
    /// request, which may be large, is dropped there too).
    pub(crate) async fn inject(
        &self,
        body: Bytes,
        start: Instant,
        lane: Lane,
    ) -> Result<Response<Body>, LaneFailed> {
        let metrics = &self.inner.metrics;
        if self.inner.injector.get().is_none() {
            metrics.record(Webhook::Inject, "error", "not_ready", start.elapsed());
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the controller is starting: it has not yet read the API server's version, which \
                 decides the proxy's layout (--native-sidecar=auto)"
                    .to_string(),
            ));
        }
        let inner = self.inner.clone();
        let (looked, lane) = lane
            .run(move || {
                inject::parse_review(&body).map(|request| {
                    let summary = Summary::of(&request);
                    (summary, inject::first_look(inner.injector(), request))
                })
            })
            .await?;
        let (summary, first_look) = match looked {
            Ok(looked) => looked,
            Err(error) => {
                metrics.record(Webhook::Inject, "error", "bad_request", start.elapsed());
                tracing::debug!(%error, "Rejected a body that is not an AdmissionReview");
                return Ok(plain(StatusCode::BAD_REQUEST, error.to_string()));
            }
        };
        let reviewed = match first_look {
            FirstLook::Answered(reviewed) => reviewed,
            FirstLook::NeedsNamespace(pending) => {
                let namespace_annotations = match pending.request().namespace.as_deref() {
                    Some(ns) => self.namespace_annotations(ns).await,
                    None => None,
                };
                let inner = self.inner.clone();
                let (reviewed, _lane) = lane
                    .run(move || {
                        pending.respond(inner.injector(), namespace_annotations.as_deref())
                    })
                    .await?;
                reviewed
            }
        };
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
        let Summary {
            uid,
            namespace,
            name,
            operation,
        } = summary;
        tracing::debug!(
            %uid,
            %namespace,
            %name,
            %operation,
            result = outcome.result(),
            reason = outcome.reason(),
            warnings = ?reviewed.warnings,
            "Answered injection review",
        );
        Ok(json(reviewed.review))
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
