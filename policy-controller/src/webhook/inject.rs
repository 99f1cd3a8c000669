//! `POST /inject`: the mutating webhook for pods. Plumbing around the pure injector: parse, look
//! the namespace up in the index (no API call per request; only a namespace the index does not
//! know yet is fetched once), decide and patch, count, answer.

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
use weft_injector::admission as inject;

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
        let (parsed, lane) = lane.run(move || inject::parse_review(&body)).await?;
        let request = match parsed {
            Ok(request) => request,
            Err(error) => {
                metrics.record(Webhook::Inject, "error", "bad_request", start.elapsed());
                tracing::debug!(%error, "Rejected a body that is not an AdmissionReview");
                return Ok(plain(StatusCode::BAD_REQUEST, error.to_string()));
            }
        };

        let namespace_annotations = match request.namespace.as_deref() {
            Some(ns) if inject::uses_namespace(&request) => self.namespace_annotations(ns).await,
            _ => None,
        };
        let uid = request.uid.clone();
        let namespace = request.namespace.clone().unwrap_or_default();
        let name = request.name.clone();
        let operation = format!("{:?}", request.operation);
        let inner = self.inner.clone();
        let (reviewed, _lane) = lane
            .run(move || {
                inject::respond(&inner.injector, &request, namespace_annotations.as_deref())
            })
            .await?;
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
