//! The webhook path, pure: an AdmissionReview body in, a serialized AdmissionReview response out.
//!
//! Only CREATE of `pods` (no subresource) is mutated; any other operation, kind or subresource is allowed
//! unchanged. dryRun requests get the same answer as real ones. A rejection is `allowed: false` with
//! `status.code: 400` and a message naming the annotation or port.

use crate::{
    decision::{Injector, Planned, Precheck, SkipReason},
    pod_view::PodView,
    rejection::{RejectReason, Rejection},
};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject, Status,
};
use std::collections::BTreeMap;

mod wire;

/// The `apiVersion` of the only AdmissionReview accepted (the webhooks are registered with
/// `admissionReviewVersions: [v1]`).
pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
/// The `kind` of an AdmissionReview.
pub const REVIEW_KIND: &str = "AdmissionReview";
/// At most this many bytes of a client's input are repeated in an error message (see [`echo`]).
pub const MAX_ECHO_BYTES: usize = 200;

/// A body that is not an `admission.k8s.io/v1` AdmissionReview with a request. `Display` is one plain
/// line, fit for an HTTP 400, and repeats at most [`MAX_ECHO_BYTES`] of the client's input.
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    #[error("the body is not an AdmissionReview: {0}")]
    NotAReview(String),
    #[error("the AdmissionReview's {field} is {found:?}; the accepted {field} is {accepted:?}")]
    UnsupportedType {
        field: &'static str,
        found: String,
        accepted: &'static str,
    },
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

impl BadReview {
    /// A body that does not parse as an AdmissionReview. The parser's message is cut with [`echo`],
    /// keeping the position it names.
    pub fn not_a_review(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        Self::NotAReview(match message.strip_suffix(&position) {
            Some(what) if error.line() > 0 => echo(what) + &position,
            _ => echo(&message),
        })
    }
}

/// Checks a review's `apiVersion` and `kind`: only [`REVIEW_API_VERSION`] [`REVIEW_KIND`] is answered.
pub fn check_review_type(api_version: &str, kind: &str) -> Result<(), BadReview> {
    for (field, found, accepted) in [
        ("apiVersion", api_version, REVIEW_API_VERSION),
        ("kind", kind, REVIEW_KIND),
    ] {
        if found != accepted {
            return Err(BadReview::UnsupportedType {
                field,
                found: echo(found),
                accepted,
            });
        }
    }
    Ok(())
}

/// `text` as an error message may repeat it: unchanged up to [`MAX_ECHO_BYTES`]; longer, its first
/// and last bytes (at most [`MAX_ECHO_BYTES`] together, cut at character boundaries, the end kept
/// because a parser's message ends with what it expected) around how much was left out.
pub fn echo(text: &str) -> String {
    /// How much of the end is kept.
    const TAIL: usize = 80;
    if text.len() <= MAX_ECHO_BYTES {
        return text.to_string();
    }
    let mut head = MAX_ECHO_BYTES - TAIL;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - TAIL;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}… ({} bytes left out) …{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
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

/// Parses a request body: an `admission.k8s.io/v1` AdmissionReview with a request.
///
/// The request's `object` keeps only what injection reads: its type, its metadata's name, generateName,
/// namespace, uid, annotations and labels, and in `data` the pod's `spec.hostNetwork` and the names, ports and
/// restart policies of its containers, init containers and the names of its volumes. Everything else in the
/// pod is skipped while parsing, so a large pod costs the scan over its bytes only; what is kept is bounded
/// to 200,000 values (an error beyond). `old_object`, `user_info` and `options` are not read (only CREATE is
/// mutated): always `None` or empty. An object without `metadata` (never sent by the API server) is refused:
/// no patch could add annotations to it.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, BadReview> {
    let review: wire::ReviewIn =
        serde_json::from_slice(body).map_err(|e| BadReview::not_a_review(&e))?;
    let (api_version, kind) = review.types();
    check_review_type(api_version, kind)?;
    review.into_request().ok_or(BadReview::NoRequest)
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

/// A request after the checks that do not depend on its namespace (see [`first_look`]).
#[derive(Debug)]
pub enum FirstLook {
    /// Answered without the namespace: not a pod CREATE, a system or control-plane namespace, or
    /// the pod decides by itself (disabled, invalid, already injected, host network).
    Answered(Reviewed),
    /// A pod CREATE whose answer depends on its namespace's annotations.
    NeedsNamespace(PendingReview),
}

/// A pod CREATE that passed the namespace-independent checks; [`PendingReview::respond`] finishes
/// it without running them again.
#[derive(Debug)]
pub struct PendingReview {
    /// Boxed: a request is large beside an answered review.
    request: Box<AdmissionRequest<DynamicObject>>,
    pod_enabled: Option<bool>,
}

impl PendingReview {
    pub fn request(&self) -> &AdmissionRequest<DynamicObject> {
        &self.request
    }

    /// Answers with the namespace's annotations (`None`: unknown namespace, not enabled).
    pub fn respond(
        &self,
        injector: &Injector,
        namespace_annotations: Option<&BTreeMap<String, String>>,
    ) -> Reviewed {
        let object = self
            .request
            .object
            .as_ref()
            .expect("a pending review is a pod CREATE with an object (checked by first_look)");
        let planned = injector.plan_prechecked(
            &view(object),
            namespace_of(&self.request),
            self.pod_enabled,
            namespace_annotations,
        );
        answer(injector, &self.request, planned)
    }
}

/// Runs the checks that do not depend on the namespace, once: the webhook looks the namespace up
/// only for a [`FirstLook::NeedsNamespace`] request.
pub fn first_look(injector: &Injector, request: AdmissionRequest<DynamicObject>) -> FirstLook {
    let object = match request.object.as_ref() {
        Some(object) if is_pod_create(&request) => object,
        _ => {
            return FirstLook::Answered(finish(
                AdmissionResponse::from(&request),
                Outcome::Allowed,
                Vec::new(),
            ))
        }
    };
    match injector.precheck(&view(object), namespace_of(&request)) {
        Ok(Precheck::Continue { pod_enabled }) => FirstLook::NeedsNamespace(PendingReview {
            request: Box::new(request),
            pod_enabled,
        }),
        Ok(Precheck::Skip(reason)) => FirstLook::Answered(answer(
            injector,
            &request,
            Ok(Planned::Skip {
                reason,
                warnings: Vec::new(),
            }),
        )),
        Err(rejection) => FirstLook::Answered(answer(injector, &request, Err(rejection))),
    }
}

/// Answers one admission request in one step (the checks and the decision), for callers that
/// have the namespace's annotations at hand.
pub fn respond(
    injector: &Injector,
    request: &AdmissionRequest<DynamicObject>,
    namespace_annotations: Option<&BTreeMap<String, String>>,
) -> Reviewed {
    let object = match request.object.as_ref() {
        Some(object) if is_pod_create(request) => object,
        _ => {
            return finish(
                AdmissionResponse::from(request),
                Outcome::Allowed,
                Vec::new(),
            )
        }
    };
    let planned = injector.plan(&view(object), namespace_of(request), namespace_annotations);
    answer(injector, request, planned)
}

/// The review answering `request` with a decision.
fn answer(
    injector: &Injector,
    request: &AdmissionRequest<DynamicObject>,
    planned: Result<Planned, Rejection>,
) -> Reviewed {
    let response = AdmissionResponse::from(request);
    match planned {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_keeps_the_start_and_the_end_of_long_input() {
        let a200 = "a".repeat(200);
        let (head, tail) = ("h".repeat(120), "t".repeat(80));
        for (input, expected) in [
            (String::new(), String::new()),
            ("short".to_string(), "short".to_string()),
            (a200.clone(), a200.clone()),
            (
                format!("{head}m{tail}"),
                format!("{head}… (1 bytes left out) …{tail}"),
            ),
            (
                format!("{head}{}{tail}", "m".repeat(5_000_000)),
                format!("{head}… (5000000 bytes left out) …{tail}"),
            ),
            // Cuts inside a character move outwards from the kept parts: 119 + 79 bytes are kept.
            (
                format!("{}é{}é{}", "h".repeat(119), "m".repeat(10), "t".repeat(79)),
                format!(
                    "{}… (14 bytes left out) …{}",
                    "h".repeat(119),
                    "t".repeat(79)
                ),
            ),
        ] {
            let got = echo(&input);
            assert_eq!(got, expected, "input of {} bytes", input.len());
        }
    }

    #[test]
    fn review_types_other_than_v1_admission_review_are_refused() {
        let cases = [
            ("admission.k8s.io/v1", "AdmissionReview", None),
            (
                "admission.k8s.io/v1beta1",
                "AdmissionReview",
                Some(
                    r#"the AdmissionReview's apiVersion is "admission.k8s.io/v1beta1"; the accepted apiVersion is "admission.k8s.io/v1""#,
                ),
            ),
            (
                "admission.k8s.io/v1",
                "Foo",
                Some(
                    r#"the AdmissionReview's kind is "Foo"; the accepted kind is "AdmissionReview""#,
                ),
            ),
            (
                "v1",
                "Pod",
                Some(
                    r#"the AdmissionReview's apiVersion is "v1"; the accepted apiVersion is "admission.k8s.io/v1""#,
                ),
            ),
            (
                "",
                "",
                Some(
                    r#"the AdmissionReview's apiVersion is ""; the accepted apiVersion is "admission.k8s.io/v1""#,
                ),
            ),
        ];
        for (api_version, kind, expected) in cases {
            let got = check_review_type(api_version, kind)
                .err()
                .map(|e| e.to_string());
            assert_eq!(got.as_deref(), expected, "{api_version} {kind}");
        }
    }
}
