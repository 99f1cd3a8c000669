//! The webhook path on hand-made requests: what is mutated, what is allowed unchanged, bad bodies, warnings.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use weft_injector::{
    admission::{first_look, parse_review, respond, BadReview, FirstLook, Outcome},
    config::ProxyConfig,
    Injector, RejectReason, SkipReason,
};

fn review(
    operation: &str,
    resource: &str,
    sub_resource: Option<&str>,
    namespace: &str,
    object: Value,
) -> Vec<u8> {
    let mut request = json!({
        "uid": "0b5c7e2a-0000-4000-8000-000000000001",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": resource},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "tester"},
        "object": object,
        "oldObject": null,
        "dryRun": false,
    });
    if let Some(sub) = sub_resource {
        request["subResource"] = sub.into();
    }
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
    .unwrap()
}

fn pod(annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}]}]},
    })
}

fn ns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Answers as the webhook does (the namespace-independent checks first, the namespace only when
/// they ask for it), and checks that the one-step `respond` gives the same bytes.
fn run(body: &[u8], namespace: Option<&BTreeMap<String, String>>) -> (Outcome, Value, Vec<String>) {
    let injector = Injector::new(ProxyConfig::default());
    let request = parse_review(body).unwrap();
    let one_step = respond(&injector, &request, namespace);
    let reviewed = match first_look(&injector, request) {
        FirstLook::Answered(reviewed) => reviewed,
        FirstLook::NeedsNamespace(pending) => pending.respond(&injector, namespace),
    };
    assert_eq!(reviewed.review, one_step.review);
    let review: Value = serde_json::from_slice(&reviewed.review).unwrap();
    (
        reviewed.outcome,
        review["response"].clone(),
        reviewed.warnings,
    )
}

/// Whether the webhook looks the namespace up for `body`.
fn needs_namespace(body: &[u8]) -> bool {
    let injector = Injector::new(ProxyConfig::default());
    matches!(
        first_look(&injector, parse_review(body).unwrap()),
        FirstLook::NeedsNamespace(_)
    )
}

#[test]
fn bad_bodies_are_plain_errors() {
    for body in [&b""[..], b"not json", b"[]", b"{\"kind\": 3}"] {
        let err = parse_review(body).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(matches!(err, BadReview::NotAReview(_)), "{text}");
    }
    let err = parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
        .unwrap_err();
    assert!(matches!(err, BadReview::NoRequest), "{err}");
}

#[test]
fn only_v1_admission_reviews_are_parsed() {
    let body = review("CREATE", "pods", None, "shop", pod(json!({})));
    let mut review: Value = serde_json::from_slice(&body).unwrap();
    for (field, value, needle) in [
        (
            "apiVersion",
            "admission.k8s.io/v1beta1",
            r#"the accepted apiVersion is "admission.k8s.io/v1""#,
        ),
        ("kind", "Foo", r#"the accepted kind is "AdmissionReview""#),
    ] {
        let original = review[field].clone();
        review[field] = value.into();
        let err = parse_review(&serde_json::to_vec(&review).unwrap()).unwrap_err();
        assert!(
            matches!(err, BadReview::UnsupportedType { field: f, .. } if f == field),
            "{err}"
        );
        assert!(err.to_string().contains(needle), "{err}");
        review[field] = original;
    }
    assert!(parse_review(&serde_json::to_vec(&review).unwrap()).is_ok());
}

#[test]
fn parse_errors_repeat_at_most_200_bytes_of_the_input_and_keep_what_was_expected() {
    let huge = "z".repeat(5_000_000);
    let body = review("CREATE", "pods", None, "shop", pod(json!({})));
    let review: Value = serde_json::from_slice(&body).unwrap();
    for (pointer, expected) in [
        ("/request/operation", "expected one of `CREATE`"),
        ("/request/dryRun", "expected a boolean"),
        (
            "/apiVersion",
            r#"the accepted apiVersion is "admission.k8s.io/v1""#,
        ),
    ] {
        let mut review = review.clone();
        *review.pointer_mut(pointer).unwrap() = huge.clone().into();
        let text = parse_review(&serde_json::to_vec(&review).unwrap())
            .unwrap_err()
            .to_string();
        let echoed = text.matches('z').count();
        assert!(
            text.len() < 400 && echoed > 100 && echoed <= 200,
            "{pointer}: a {} byte message repeating {echoed} bytes",
            text.len()
        );
        assert!(text.contains("bytes left out"), "{pointer}: {text}");
        assert!(text.contains(expected), "{pointer}: {text}");
        if pointer.starts_with("/request") {
            // A parse error still says where it happened.
            assert!(text.contains(" at line 1 column "), "{pointer}: {text}");
        }
    }
}

#[test]
fn only_pod_creates_are_mutated() {
    let enabled = pod(json!({"weft.dev/inject": "enabled"}));
    let (outcome, response, _) = run(
        &review("CREATE", "pods", None, "shop", enabled.clone()),
        None,
    );
    assert_eq!(outcome, Outcome::Injected);
    assert!(response["patch"].is_string(), "patch is base64: {response}");
    for (op, resource, sub) in [
        ("UPDATE", "pods", None),
        ("DELETE", "pods", None),
        ("CREATE", "pods", Some("ephemeralcontainers")),
        ("CREATE", "pods", Some("binding")),
        ("CREATE", "deployments", None),
    ] {
        let body = review(op, resource, sub, "shop", enabled.clone());
        let (outcome, response, _) = run(&body, None);
        assert_eq!(outcome, Outcome::Allowed, "{op} {resource} {sub:?}");
        assert_eq!(response["allowed"], true);
        assert!(response.get("patch").is_none());
        assert_eq!(response["uid"], "0b5c7e2a-0000-4000-8000-000000000001");
        assert!(!needs_namespace(&body));
    }
}

#[test]
fn rejections_are_400_with_the_message() {
    let body = review(
        "CREATE",
        "pods",
        None,
        "shop",
        pod(json!({"weft.dev/inject": "enabled", "config.weft.dev/skip-inbound-ports": "80-20"})),
    );
    let (outcome, response, _) = run(&body, None);
    assert_eq!(outcome, Outcome::Rejected(RejectReason::InvalidAnnotation));
    assert_eq!(outcome.result(), "rejected");
    assert_eq!(outcome.reason(), "invalid_annotation");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    assert_eq!(response["status"]["status"], "Failure");
    assert_eq!(response["status"]["reason"], "BadRequest");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("config.weft.dev/skip-inbound-ports: \"80-20\""),
        "{message}"
    );
    assert!(response.get("patch").is_none());
}

#[test]
fn invalid_namespace_values_warn_instead_of_blocking() {
    let plain = review("CREATE", "pods", None, "shop", pod(json!({})));
    let bad_inject = ns(&[("weft.dev/inject", "yes")]);
    let (outcome, response, warnings) = run(&plain, Some(&bad_inject));
    assert_eq!(outcome, Outcome::Skipped(SkipReason::NotEnabled));
    assert_eq!(outcome.reason(), "not_enabled");
    assert_eq!(response["allowed"], true);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("weft.dev/inject") && warnings[0].contains("\"yes\""),
        "{warnings:?}"
    );
    assert_eq!(response["warnings"][0].as_str().unwrap(), warnings[0]);

    let bad_override = ns(&[
        ("weft.dev/inject", "enabled"),
        ("config.weft.dev/proxy-memory-limit", "much"),
        ("config.weft.dev/proxy-log-level", "debug"),
    ]);
    let (outcome, response, warnings) = run(&plain, Some(&bad_override));
    assert_eq!(outcome, Outcome::Injected);
    assert!(
        warnings[0].contains("config.weft.dev/proxy-memory-limit"),
        "{warnings:?}"
    );
    assert!(response["warnings"].is_array());
    // The valid namespace override still applies, the invalid one is ignored.
    let patch = patch_text(&response);
    assert!(
        patch.contains(r#""LINKERD2_PROXY_LOG","value":"debug,[{headers}]=off,[{request}]=off""#),
        "{patch}"
    );
    assert!(patch.contains(r#""memory":"250Mi""#), "{patch}");
}

#[test]
fn pod_overrides_beat_namespace_overrides() {
    let body = review(
        "CREATE",
        "pods",
        None,
        "shop",
        pod(json!({"config.weft.dev/proxy-log-level": "trace"})),
    );
    let namespace = ns(&[
        ("weft.dev/inject", "enabled"),
        ("config.weft.dev/proxy-log-level", "debug"),
    ]);
    let (outcome, response, _) = run(&body, Some(&namespace));
    assert_eq!(outcome, Outcome::Injected);
    let patch = patch_text(&response);
    assert!(
        patch.contains(r#""LINKERD2_PROXY_LOG","value":"trace,[{headers}]=off,[{request}]=off""#),
        "{patch}"
    );
}

#[test]
fn needs_the_namespace_only_when_it_can_matter() {
    let cases = [
        (json!({}), "shop", true),
        (json!({"weft.dev/inject": "enabled"}), "shop", true), // namespace overrides still apply
        (json!({"weft.dev/inject": "disabled"}), "shop", false),
        (json!({"weft.dev/inject": "bogus"}), "shop", false),
        (json!({}), "kube-system", false),
        (json!({"weft.dev/inject": "enabled"}), "weft", false), // the control plane's namespace
    ];
    for (annotations, namespace, expected) in cases {
        let body = review("CREATE", "pods", None, namespace, pod(annotations.clone()));
        assert_eq!(
            needs_namespace(&body),
            expected,
            "{annotations} in {namespace}"
        );
    }
}

#[test]
fn control_plane_namespace_is_never_injected() {
    let body = review(
        "CREATE",
        "pods",
        None,
        "weft",
        pod(json!({"weft.dev/inject": "enabled"})),
    );
    let (outcome, response, _) = run(&body, Some(&ns(&[("weft.dev/inject", "enabled")])));
    assert_eq!(outcome, Outcome::Skipped(SkipReason::ControlPlaneNamespace));
    assert!(response.get("patch").is_none());
}

/// The response's patch (a base64 string, as the API defines `[]byte`) as text.
fn patch_text(response: &Value) -> String {
    use base64::Engine as _;
    let encoded = response["patch"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn without_trust_anchors_pods_are_injected_with_a_warning() {
    let body = review("CREATE", "pods", None, "shop", pod(json!({})));
    let enabled = ns(&[("weft.dev/inject", "enabled")]);
    let (outcome, response, warnings) = run(&body, Some(&enabled));
    assert_eq!(outcome, Outcome::Injected);
    assert_eq!(warnings, [weft_injector::NO_TRUST_ANCHORS]);
    assert!(!patch_text(&response).contains("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"));

    let pem = include_str!("trust-anchors.pem");
    let config = weft_injector::config::ProxyArgs::default()
        .to_config(Some(pem))
        .unwrap();
    let request = parse_review(&body).unwrap();
    let reviewed = respond(&Injector::new(config), &request, Some(&enabled));
    assert_eq!(reviewed.outcome, Outcome::Injected);
    assert!(reviewed.warnings.is_empty(), "{:?}", reviewed.warnings);
    let review: Value = serde_json::from_slice(&reviewed.review).unwrap();
    let patch = patch_text(&review["response"]);
    let anchors = serde_json::to_string(pem).unwrap();
    assert!(
        patch.contains(&format!(
            r#"{{"name":"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS","value":{anchors}}}"#
        )),
        "{patch}"
    );
}
