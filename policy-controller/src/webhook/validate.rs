//! `POST /validate`: the validating webhook for Server and ServerAuthorization. The checks are the
//! pure `weft_policy_k8s_api::validate`; this only parses, counts and answers.

use crate::{
    webhook::metrics::Webhook,
    webhook::router::{json, plain, AdmissionService, Body},
};
use http::{Response, StatusCode};
use tokio::time::Instant;
use weft_injector::admission::{check_review_type, echo, BadReview};
use weft_policy_k8s_api::validate::ReviewIn;

impl AdmissionService {
    pub(crate) fn validate(&self, body: &[u8], start: Instant) -> Response<Body> {
        let metrics = &self.inner.metrics;
        // Typed and bounded: the object's spec is decoded into its kind's types, nothing else of
        // it is kept (see `weft_policy_k8s_api::validate`).
        let review = match parse_review(body) {
            Ok(review) => review,
            Err(error) => {
                metrics.record(Webhook::Validate, "error", "bad_request", start.elapsed());
                tracing::debug!(%error, "Rejected a body that is not an AdmissionReview");
                return plain(StatusCode::BAD_REQUEST, error.to_string());
            }
        };
        let Some(request) = &review.request else {
            metrics.record(Webhook::Validate, "error", "bad_request", start.elapsed());
            return plain(StatusCode::BAD_REQUEST, BadReview::NoRequest.to_string());
        };
        let mut response = weft_policy_k8s_api::validate::review(request);
        // A denial names the field and repeats its value: cut as the 400s are.
        response.result.message = echo(&response.result.message);
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
}

/// Parses an `admission.k8s.io/v1` AdmissionReview, its object kept as raw text; errors as the
/// injection webhook's (the same checks, the same cut of the client's input).
fn parse_review(body: &[u8]) -> Result<ReviewIn<'_>, BadReview> {
    let review: ReviewIn<'_> =
        serde_json::from_slice(body).map_err(|e| BadReview::not_a_review(&e))?;
    check_review_type(&review.api_version, &review.kind)?;
    Ok(review)
}
