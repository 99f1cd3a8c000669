//! The webhook path, pure: an AdmissionReview body in, a serialized AdmissionReview response out.
//!
//! Only CREATE of `pods` (no subresource) is mutated; any other operation, kind or subresource is allowed
//! unchanged. dryRun requests get the same answer as real ones. A rejection is `allowed: false` with
//! `status.code: 400` and a message naming the annotation or port.

use crate::{
    decision::{precheck, Planned, Precheck, RejectReason, SkipReason},
    pod_view::PodView,
    Injector,
};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject, Status,
};
use std::collections::BTreeMap;

mod wire;

/// A body that is not an AdmissionReview with a request. `Display` is one plain line, fit for an HTTP 400.
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    #[error("the body is not an AdmissionReview: {0}")]
    NotAReview(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// What the webhook did with one request (for logs and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Injected,
    Skipped(SkipReason),
    /// Not a pod CREATE (another operation, kind or a subresource): allowed unchanged.
    Allowed,
    Rejected(RejectReason),
}

impl Outcome {
    /// `injected`, `skipped`, `allowed` or `rejected`.
    pub fn result(&self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Skipped(_) => "skipped",
            Outcome::Allowed => "allowed",
            Outcome::Rejected(_) => "rejected",
        }
    }

    /// The skip or reject reason (snake_case), or the empty string when there is none.
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Skipped(r) => r.as_str(),
            Outcome::Rejected(r) => r.as_str(),
            Outcome::Injected | Outcome::Allowed => "",
        }
    }
}

/// A serialized AdmissionReview v1 response and what it decided.
#[derive(Debug)]
pub struct Reviewed {
    pub review: Vec<u8>,
    pub outcome: Outcome,
    /// The warnings sent back to the user (also worth logging).
    pub warnings: Vec<String>,
}

/// Parses a request body.
///
/// The request's `object` keeps only what injection reads: its type, its metadata's name, generateName,
/// namespace, uid, annotations and labels, and in `data` the pod's `spec.hostNetwork` and the names, ports and
/// restart policies of its containers, init containers and the names of its volumes. Everything else in the
/// pod is skipped while parsing, so a large pod costs the scan over its bytes only. `old_object` is not read
/// (only CREATE is mutated) and is always `None`.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, BadReview> {
    let review: wire::ReviewIn = serde_json::from_slice(body).map_err(|e| {
        let mut msg = e.to_string();
        truncate_at_char_boundary(&mut msg, 200);
        BadReview::NotAReview(msg)
    })?;
    review.into_request().ok_or(BadReview::NoRequest)
}

fn truncate_at_char_boundary(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

fn is_pod_create(request: &AdmissionRequest<DynamicObject>) -> bool {
    matches!(request.operation, Operation::Create)
        && request.resource.group.is_empty()
        && request.resource.resource == "pods"
        && request.sub_resource.as_deref().is_none_or(str::is_empty)
}

fn namespace_of(request: &AdmissionRequest<DynamicObject>) -> &str {
    request
        .namespace
        .as_deref()
        .or_else(|| {
            request
                .object
                .as_ref()
                .and_then(|o| o.metadata.namespace.as_deref())
        })
        .unwrap_or("default")
}

fn view(object: &DynamicObject) -> PodView<'_> {
    PodView::from_parts(
        object.metadata.annotations.as_ref(),
        object.metadata.labels.as_ref(),
        &object.data,
    )
}

/// False when the answer cannot depend on the namespace's annotations (not a pod CREATE, a system namespace,
/// or the pod decides by itself: disabled, invalid, already injected, host network), so the namespace need
/// not be looked up.
pub fn uses_namespace(request: &AdmissionRequest<DynamicObject>) -> bool {
    if !is_pod_create(request) {
        return false;
    }
    let Some(object) = request.object.as_ref() else {
        return false;
    };
    matches!(
        precheck(&view(object), namespace_of(request), None),
        Ok(Precheck::Continue { .. })
    )
}

/// Answers one admission request.
pub fn respond(
    injector: &Injector,
    request: &AdmissionRequest<DynamicObject>,
    namespace_annotations: Option<&BTreeMap<String, String>>,
) -> Reviewed {
    let response = AdmissionResponse::from(request);
    let object = match request.object.as_ref() {
        Some(object) if is_pod_create(request) => object,
        _ => return finish(response, Outcome::Allowed, Vec::new()),
    };
    match injector.plan(&view(object), namespace_of(request), namespace_annotations) {
        Ok(Planned::Inject { plan, warnings }) => {
            let mut patch = Vec::with_capacity(4096);
            plan.write_json(&mut patch, injector.rendered());
            let mut response = response;
            // `finish` writes `patchType: JSONPatch` with every patch.
            response.patch = Some(patch);
            finish(response, Outcome::Injected, warnings)
        }
        Ok(Planned::Skip { reason, warnings }) => {
            finish(response, Outcome::Skipped(reason), warnings)
        }
        Err(rejection) => {
            let mut response = response.deny(&rejection.message);
            response.result = Status::failure(&rejection.message, "BadRequest").with_code(400);
            finish(response, Outcome::Rejected(rejection.reason), Vec::new())
        }
    }
}

fn finish(mut response: AdmissionResponse, outcome: Outcome, warnings: Vec<String>) -> Reviewed {
    if !warnings.is_empty() {
        response.warnings = Some(warnings.clone());
    }
    Reviewed {
        review: wire::review_bytes(&response),
        outcome,
        warnings,
    }
}
