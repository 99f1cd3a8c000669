//! The checks of the injector's fuzz targets (`tests/fuzz/`: `admission_review`, `inject_patch`,
//! `cli_yaml`), one function per target. Each takes the fuzzer's raw input, runs it through the
//! code the webhook or `weft inject` runs on untrusted input, and panics only when a property is
//! violated: a panic of the code under test, or an answer that breaks what the function promises
//! (an unapplicable patch, a second proxy, ...). Errors for malformed input are the expected
//! outcome, never a failure.
//!
//! Built with the `fuzz-checks` feature only. The fuzz binaries are one-line calls of these
//! functions; `tests/tests/fuzz_replay.rs` replays every committed corpus and regression input
//! through them on stable, so CI keeps every finding fixed without libFuzzer.

use crate::{
    admission::{first_look, parse_review, respond, FirstLook, Outcome},
    config::ProxyArgs,
    manifest::{self, InjectMode},
    sidecar::PROXY_NAME,
    Injector,
};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use std::{collections::BTreeMap, sync::LazyLock};

/// An error message sent back to a client stays short whatever the input (the webhooks cut what
/// they repeat of it to `MAX_ECHO_BYTES`; escaping may grow that a few times).
const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// The injectors of the controller's flag configurations with test trust anchors:
/// `[plain, --native-sidecar]`.
static INJECTORS: LazyLock<[Injector; 2]> = LazyLock::new(|| {
    let trust_anchors = include_str!("../tests/trust-anchors.pem");
    [false, true].map(|native_sidecar| {
        let args = ProxyArgs {
            native_sidecar: native_sidecar.into(),
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
    [(crate::INJECT_ANNOTATION.to_string(), "enabled".to_string())].into()
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
