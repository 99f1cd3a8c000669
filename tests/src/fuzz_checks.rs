//! The checks of the fuzz targets in `tests/fuzz/` (cargo-fuzz, libFuzzer), one function per
//! target. Each takes the fuzzer's raw input, runs it through the code the controller or the CLI
//! runs on untrusted input, and panics only when a property is violated: a panic of the code under
//! test, or an answer that breaks what the function promises (an unapplicable patch, a second
//! proxy, ...). Errors for malformed input are the expected outcome, never a failure.
//!
//! The fuzz binaries are one-line calls of these functions; `tests/tests/fuzz_replay.rs` replays
//! every committed corpus and regression input through them on stable, so CI keeps every finding
//! fixed without libFuzzer.

use base64::Engine as _;
use k8s_openapi::api::{authentication::v1::TokenReviewStatus, core::v1::Pod};
use serde_json::{json, Value};
use std::{collections::BTreeMap, sync::LazyLock};
use weft_injector::{
    admission::{first_look, parse_review, respond, FirstLook, Outcome},
    config::ProxyArgs,
    manifest::{self, InjectMode},
    sidecar::PROXY_NAME,
    Injector,
};
use weft_policy_controller::{
    identity::{self, token::check_status, CsrError, AUDIENCE},
    inbound::Workload,
};
use weft_policy_k8s_api::validate::ReviewIn;

/// The fuzz targets, as named in `tests/fuzz/Cargo.toml` and under `tests/fuzz/corpus/`.
pub const TARGETS: [&str; 6] = [
    "admission_review",
    "inject_patch",
    "cli_yaml",
    "validate",
    "workload",
    "certify",
];

/// Runs the check of `target` on `data`.
///
/// # Panics
/// When `target` is not one of [`TARGETS`], or the check fails.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "admission_review" => admission_review(data),
        "inject_patch" => inject_patch(data),
        "cli_yaml" => cli_yaml(data),
        "validate" => validate(data),
        "workload" => workload(data),
        "certify" => certify(data),
        other => panic!("unknown fuzz target {other:?} (known: {TARGETS:?})"),
    }
}

/// An error message sent back to a client stays short whatever the input (the webhooks cut what
/// they repeat of it to `MAX_ECHO_BYTES`; escaping may grow that a few times).
const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// The injectors of the controller's flag configurations with test trust anchors:
/// `[plain, --native-sidecar]`.
static INJECTORS: LazyLock<[Injector; 2]> = LazyLock::new(|| {
    let trust_anchors = include_str!("../../injector/tests/trust-anchors.pem");
    [false, true].map(|native_sidecar| {
        let args = ProxyArgs {
            native_sidecar,
            ..ProxyArgs::default()
        };
        Injector::new(
            args.to_config(Some(trust_anchors))
                .expect("the default proxy flags with the test trust anchors are valid"),
        )
    })
});

/// The injector for an input: the input's length picks the configuration, so the fuzzer explores
/// both without running each input twice.
fn injector_for(data: &[u8]) -> &'static Injector {
    &INJECTORS[data.len() % 2]
}

/// The annotations of a namespace with injection enabled.
fn enabled_namespace() -> BTreeMap<String, String> {
    [(
        weft_injector::INJECT_ANNOTATION.to_string(),
        "enabled".to_string(),
    )]
    .into()
}

/// `admission_review`: the mutating webhook's request parser never panics, and its error is
/// short enough for an HTTP 400.
pub fn admission_review(data: &[u8]) {
    if let Err(error) = parse_review(data) {
        let message = error.to_string();
        assert!(
            message.len() <= MAX_ERROR_MESSAGE_BYTES,
            "an error message of {} bytes: {message:.300}",
            message.len()
        );
    }
}

/// `inject_patch`: the /inject webhook's whole path (parse, decide, patch, serialize) as the
/// controller runs it, the namespace enabled. A returned patch applies to the request's object;
/// on a valid pod the result is still a valid pod; an injected pod has exactly one proxy
/// container, and answering for the injected pod adds none.
pub fn inject_patch(data: &[u8]) {
    let Ok(request) = parse_review(data) else {
        return;
    };
    let injector = injector_for(data);
    let Some(patched) = answer_and_apply(injector, data) else {
        return;
    };
    assert_eq!(
        proxy_count(&patched),
        1,
        "an injected pod has one {PROXY_NAME} container"
    );

    // The API server may call the webhook again with the injected pod (reinvocation).
    let again = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": request.uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": request.namespace,
            "operation": "CREATE",
            "userInfo": {"username": "fuzz"},
            "object": patched,
        }
    });
    let again = serde_json::to_vec(&again).expect("a JSON value serializes");
    if let Some(twice) = answer_and_apply(injector, &again) {
        assert_eq!(
            proxy_count(&twice),
            1,
            "answering for an injected pod added a second {PROXY_NAME}"
        );
    }
}

/// Answers the review `body` as the controller does and checks the response. Returns the
/// request's object with the returned patch applied, when the pod was injected.
fn answer_and_apply(injector: &Injector, body: &[u8]) -> Option<Value> {
    let request = parse_review(body).ok()?;
    // As the webhook: the namespace (enabled) only when the first look asks for it.
    let (reviewed, namespace_annotations) = match first_look(injector, request.clone()) {
        FirstLook::Answered(reviewed) => (reviewed, None),
        FirstLook::NeedsNamespace(pending) => {
            let annotations = pending
                .request()
                .namespace
                .is_some()
                .then(enabled_namespace);
            (pending.respond(injector, annotations.as_ref()), annotations)
        }
    };
    let one_step = respond(injector, &request, namespace_annotations.as_ref());
    assert_eq!(
        reviewed.review, one_step.review,
        "the webhook's two steps and the one-step answer differ"
    );
    let review: Value =
        serde_json::from_slice(&reviewed.review).expect("the webhook answers with JSON");
    let response = &review["response"];
    assert_eq!(response["uid"].as_str(), Some(request.uid.as_str()));
    let Some(encoded) = response.get("patch") else {
        assert!(
            !matches!(reviewed.outcome, Outcome::Injected),
            "an injection without a patch"
        );
        return None;
    };
    assert!(
        matches!(reviewed.outcome, Outcome::Injected),
        "a patch with the outcome {:?}",
        reviewed.outcome
    );
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().expect("the patch is a base64 string"))
        .expect("the patch is valid base64");
    let patch: json_patch::Patch =
        serde_json::from_slice(&bytes).expect("the patch is a JSON patch");

    // The webhook reads the body with a pruning parser that skips what it does not need; a body
    // it accepts may still be beyond what `Value` takes (a number out of f64's range, nesting
    // deeper than serde_json's recursion limit). The API server sends neither.
    let Ok(original) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let mut object = original["request"]["object"].clone();
    let was_a_pod = serde_json::from_value::<Pod>(object.clone()).is_ok();
    if let Err(error) = json_patch::patch(&mut object, &patch) {
        panic!(
            "the patch does not apply: {error}\npatch: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    if was_a_pod {
        if let Err(error) = serde_json::from_value::<Pod>(object.clone()) {
            panic!("the patched pod is no longer a Pod: {error}");
        }
    }
    Some(object)
}

/// How many containers and init containers are the proxy.
fn proxy_count(pod: &Value) -> usize {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod["spec"][list].as_array())
        .flatten()
        .filter(|container| container["name"] == PROXY_NAME)
        .count()
}

/// `cli_yaml`: `weft inject` (both modes) and `weft uninject` on any UTF-8 text never panic;
/// `weft inject --manual` is idempotent: its output injected again is the same.
pub fn cli_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let injector = injector_for(data);
    let _ = manifest::uninject_manifest(text);
    let _ = manifest::inject(text, injector, InjectMode::Annotate);
    let Ok(injected) = manifest::inject(text, injector, InjectMode::Manual) else {
        return;
    };
    match manifest::inject(&injected.yaml, injector, InjectMode::Manual) {
        Ok(again) => assert_eq!(
            again.yaml, injected.yaml,
            "injecting the output of weft inject --manual changed it"
        ),
        Err(error) => panic!("the output of weft inject --manual is refused: {error}"),
    }
}

/// `validate`: the validating webhook's pure path (typed parse, `review`) never panics, and its
/// answer serializes; a denial says why.
pub fn validate(data: &[u8]) {
    let Ok(review) = serde_json::from_slice::<ReviewIn<'_>>(data) else {
        return;
    };
    if weft_injector::admission::check_review_type(&review.api_version, &review.kind).is_err() {
        return;
    }
    let Some(request) = &review.request else {
        return;
    };
    let response = weft_policy_k8s_api::validate::review(request);
    assert_eq!(response.uid, request.uid);
    assert!(
        response.allowed || !response.result.message.is_empty(),
        "a denial without a message"
    );
    serde_json::to_vec(&response.into_review()).expect("the validation answer serializes");
}

/// `workload`: the inbound API's workload parser never panics; what it accepts has a non-empty
/// namespace and pod without `:` or `/`, and reads back the same in the JSON form.
pub fn workload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Workload>() {
        Ok(workload) => {
            for part in [&workload.namespace, &workload.pod] {
                assert!(
                    !part.is_empty() && !part.contains([':', '/']),
                    "accepted {text:?} as {workload:?}"
                );
            }
            // Back in the JSON form, which the proxy sends. (The `<ns>:<pod>` form is no round
            // trip for names starting with `{`, read as JSON; no Kubernetes name does.)
            let json = json!({"ns": workload.namespace, "pod": workload.pod}).to_string();
            assert_eq!(json.parse::<Workload>().as_ref(), Ok(&workload));
        }
        Err(error) => assert_eq!(error.value, text),
    }
}

/// The identity domain of the certify check (the controller's defaults).
static MESH: LazyLock<weft_core::Mesh> =
    LazyLock::new(|| weft_core::Mesh::new("weft", "cluster.local"));

/// The fields of a Certify request and of the TokenReview's answer for its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyInput<'a> {
    pub token: &'a [u8],
    pub identity: &'a [u8],
    /// A `TokenReviewStatus` as JSON, as the API server would answer for the token.
    pub token_review_status: &'a [u8],
    pub csr: &'a [u8],
}

impl<'a> CertifyInput<'a> {
    /// Splits fuzz input: `token`, `identity` and `token_review_status` each as a big-endian u16
    /// length and that many bytes, then the CSR (DER) as the rest. Input that ends early leaves
    /// the remaining fields short or empty, so every input is a request.
    pub fn split(mut data: &'a [u8]) -> Self {
        let mut field = || {
            let len = match data {
                [high, low, rest @ ..] => {
                    data = rest;
                    usize::from(u16::from_be_bytes([*high, *low]))
                }
                _ => std::mem::take(&mut data).len(),
            };
            let (taken, rest) = data.split_at(len.min(data.len()));
            data = rest;
            taken
        };
        let token = field();
        let identity = field();
        let token_review_status = field();
        Self {
            token,
            identity,
            token_review_status,
            csr: data,
        }
    }

    /// The bytes [`CertifyInput::split`] reads back as `self` (for seeds).
    ///
    /// # Panics
    /// When a field but the CSR is longer than `u16::MAX` bytes.
    pub fn join(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [self.token, self.identity, self.token_review_status] {
            let len = u16::try_from(field.len()).expect("a certify seed field fits a u16 length");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(self.csr);
        out
    }
}

/// What the certify check concluded (for the replay test's own checks of its seeds).
#[derive(Debug, PartialEq, Eq)]
pub enum Certified {
    /// Refused before the CSR was read (empty field, token, user or identity mismatch).
    Refused,
    /// The CSR was checked against the identity and refused.
    BadCsr(CsrError),
    /// Everything passed: the identity would be signed.
    Valid,
}

/// `certify`: the identity service's checks of a Certify request, in its order, with the
/// TokenReview's status from the input: the token is UTF-8, the status names an authenticated
/// user for the proxies' audience, the user is a service account whose identity is the requested
/// one, and the CSR is valid for it. Never panics; an accepted CSR is refused for any other
/// identity.
pub fn certify(data: &[u8]) {
    certify_outcome(data);
}

/// [`certify`], returning what it concluded.
pub fn certify_outcome(data: &[u8]) -> Certified {
    let input = CertifyInput::split(data);
    if input.identity.is_empty() || input.token.is_empty() || input.csr.is_empty() {
        return Certified::Refused;
    }
    let (Ok(_token), Ok(identity)) = (
        std::str::from_utf8(input.token),
        std::str::from_utf8(input.identity),
    ) else {
        return Certified::Refused;
    };
    let status = serde_json::from_slice::<TokenReviewStatus>(input.token_review_status).ok();
    let Ok(user) = check_status(status.as_ref(), AUDIENCE) else {
        return Certified::Refused;
    };
    assert!(!user.is_empty(), "an authenticated user without a name");
    let Ok(derived) = MESH.identity_of_user(&user) else {
        return Certified::Refused;
    };
    assert!(
        derived.ends_with(".serviceaccount.identity.weft.cluster.local"),
        "user {user:?} has identity {derived:?}"
    );
    // The service checks the CSR only once the identity matched; checking it against any
    // identity lets the fuzzer reach the CSR parser without deriving a matching name first.
    let checked = identity::validate_csr(input.csr, identity);
    if checked.is_ok() {
        let other = format!("x{identity}");
        assert!(
            matches!(
                identity::validate_csr(input.csr, &other),
                Err(CsrError::SanMismatch { .. })
            ),
            "a CSR accepted for {identity:?} is not refused for {other:?}"
        );
    }
    if derived != identity {
        return Certified::Refused;
    }
    match checked {
        Ok(_) => Certified::Valid,
        Err(error) => Certified::BadCsr(error),
    }
}
