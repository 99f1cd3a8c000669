//! Every request in `../shared/admission-corpus/` (relative to the workspace root) is answered as its
//! `index.json` says. The test fails when the corpus is missing.
#![allow(clippy::unwrap_used)]

use kube::core::{admission::AdmissionRequest, DynamicObject};
use serde_json::{json, Value};
use std::{collections::BTreeMap, path::PathBuf};
use weft_injector::{
    admission::{first_look, parse_review, respond, FirstLook, Outcome},
    config::ProxyArgs,
    uninject::uninject,
    Injector, RejectReason, SkipReason,
};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/admission-corpus")
}

#[derive(Clone, Copy, Debug)]
enum Namespace {
    Enabled,
    NoAnnotation,
    Unknown,
}

impl Namespace {
    fn annotations(self) -> Option<BTreeMap<String, String>> {
        match self {
            Namespace::Enabled => {
                Some([("weft.dev/inject".to_string(), "enabled".to_string())].into())
            }
            Namespace::NoAnnotation => Some(BTreeMap::new()),
            Namespace::Unknown => None,
        }
    }
}

struct Answer {
    outcome: Outcome,
    response: Value,
    patched: Option<Value>,
    patch: Option<Value>,
}

/// Whether the webhook looks the namespace up for `request`.
fn needs_namespace(injector: &Injector, request: &AdmissionRequest<DynamicObject>) -> bool {
    matches!(
        first_look(injector, request.clone()),
        FirstLook::NeedsNamespace(_)
    )
}

fn answer(injector: &Injector, body: &[u8], ns: Namespace) -> Answer {
    let request = parse_review(body).unwrap();
    let annotations = ns.annotations();
    // Speed is measured by the benchmarks (BENCHMARKS.md), never asserted here.
    let reviewed = respond(injector, &request, annotations.as_ref());
    // The webhook's two steps give the same answer.
    let two_steps = match first_look(injector, request.clone()) {
        FirstLook::Answered(reviewed) => reviewed,
        FirstLook::NeedsNamespace(pending) => pending.respond(injector, annotations.as_ref()),
    };
    assert_eq!(two_steps.review, reviewed.review);
    let review: Value = serde_json::from_slice(&reviewed.review).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = review["response"].clone();
    assert_eq!(response["uid"].as_str().unwrap(), request.uid);
    let original: Value = serde_json::from_slice(body).unwrap();
    let (patched, patch) = match response.get("patch") {
        None => (None, None),
        Some(encoded) => {
            assert_eq!(response["patchType"], "JSONPatch");
            let bytes = patch_bytes(encoded);
            let patch_value: Value = serde_json::from_slice(&bytes).unwrap();
            let patch: json_patch::Patch = serde_json::from_value(patch_value.clone()).unwrap();
            let mut object = original["request"]["object"].clone();
            json_patch::patch(&mut object, &patch).unwrap();
            (Some(object), Some(patch_value))
        }
    };
    Answer {
        outcome: reviewed.outcome,
        response,
        patched,
        patch,
    }
}

/// The patch field is Go's `[]byte`: kube serializes it as an array of numbers; base64 is accepted too.
fn patch_bytes(encoded: &Value) -> Vec<u8> {
    match encoded {
        Value::Array(items) => items
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect(),
        Value::String(text) => base64_decode(text),
        other => panic!("patch is neither bytes nor base64: {other}"),
    }
}

/// Standard base64.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .expect("base64 alphabet") as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|a| a.iter().map(|c| c["name"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn env<'a>(container: &'a Value, name: &str) -> &'a str {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("env {name} missing"))
}

fn proxy(pod: &Value) -> &Value {
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["spec"]["initContainers"].as_array().unwrap())
        .find(|c| c["name"] == "weft-proxy")
        .expect("weft-proxy is present")
}

/// Checks shared by every injected pod: Weft's objects are there, a second pass is a no-op, uninject restores.
fn check_injected(injector: &Injector, body: &[u8], answer: &Answer, file: &str) {
    let original: Value = serde_json::from_slice(body).unwrap();
    let input = &original["request"]["object"];
    let pod = answer.patched.as_ref().unwrap();
    let init = &pod["spec"]["initContainers"];
    assert_eq!(names(init)[0], "weft-init", "{file}");
    assert!(
        names(&pod["spec"]["volumes"]).contains(&"weft-identity-token"),
        "{file}"
    );
    assert_eq!(
        pod["metadata"]["labels"]["weft.dev/control-plane-ns"],
        "weft"
    );
    assert!(pod["metadata"]["annotations"]["weft.dev/inject-status"].is_string());
    assert!(pod["metadata"]["annotations"]["weft.dev/created-by"]
        .as_str()
        .unwrap()
        .starts_with("weft-controller "));
    // Every original annotation and label survives, whatever its key.
    for field in ["annotations", "labels"] {
        if let Some(map) = input["metadata"][field].as_object() {
            for (k, v) in map {
                assert_eq!(&pod["metadata"][field][k], v, "{file}: {field} {k}");
            }
        }
    }
    // The app containers are unchanged and keep their order.
    let app: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] != "weft-proxy")
        .collect();
    let app_in: Vec<&Value> = input["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(app, app_in, "{file}");
    // The patch is small: it grows with what is added, not with the pod.
    let patch_len = serde_json::to_vec(answer.patch.as_ref().unwrap())
        .unwrap()
        .len();
    assert!(patch_len < 8_000, "{file}: patch of {patch_len} bytes");
    // A second pass yields no patch.
    let mut again = original.clone();
    again["request"]["object"] = pod.clone();
    let second = self::answer(
        injector,
        &serde_json::to_vec(&again).unwrap(),
        Namespace::Enabled,
    );
    assert_eq!(
        second.outcome,
        Outcome::Skipped(SkipReason::AlreadyInjected),
        "{file}"
    );
    assert!(second.patch.is_none(), "{file}");
    // Uninject restores the input exactly.
    let mut restored = pod.clone();
    uninject(&mut restored).unwrap();
    assert_eq!(&restored, input, "{file}: uninject(inject(x)) != x");
}

fn check_specifics(file: &str, answer: &Answer) {
    let Some(pod) = answer.patched.as_ref() else {
        return;
    };
    let proxy = proxy(pod);
    let init = &pod["spec"]["initContainers"];
    match file {
        "04-pointer-escaping.json" => {
            let annotations = &pod["metadata"]["annotations"];
            assert_eq!(annotations["a/b/c"], "slashes");
            assert_eq!(annotations["tilde~0and~1"], "literal tildes");
            assert_eq!(annotations["example.com/owner~team"], "payments");
            let ops = answer.patch.as_ref().unwrap().to_string();
            assert!(
                ops.contains("weft.dev~1proxy-version"),
                "keys are escaped: {ops}"
            );
        }
        "05-statefulset-init-containers.json" => {
            let names = names(init);
            assert_eq!(names[0], "weft-init");
            assert!(names.len() > 2, "existing init containers stay: {names:?}");
        }
        "06-run-as-non-root.json" => {
            let sc = &init[0]["securityContext"];
            assert_eq!(sc["runAsUser"], 65534);
            assert_eq!(sc["runAsNonRoot"], true);
            assert_eq!(
                sc["capabilities"],
                json!({"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]})
            );
            assert_eq!(proxy["securityContext"]["runAsNonRoot"], true);
        }
        "15-overrides.json" => {
            assert_eq!(proxy["resources"]["requests"]["cpu"], "250m");
            assert_eq!(proxy["resources"]["limits"]["memory"], "1Gi");
            assert_eq!(
                env(proxy, "LINKERD2_PROXY_LOG"),
                "debug,[{headers}]=off,[{request}]=off"
            );
            assert_eq!(
                env(
                    proxy,
                    "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"
                ),
                "5432"
            );
            let args: Vec<&str> = init[0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
            assert_eq!(after("--inbound-ports-to-ignore"), "4190,4191,25,8000-8010");
            assert_eq!(after("--outbound-ports-to-ignore"), "3306,6379");
        }
        "19-native-sidecar.json" => {
            assert_eq!(names(init), ["weft-init", "weft-proxy", "migrate"]);
            assert_eq!(init[1]["restartPolicy"], "Always");
            assert_eq!(init[1]["startupProbe"]["httpGet"]["path"], "/ready");
            assert!(!names(&pod["spec"]["containers"]).contains(&"weft-proxy"));
        }
        "21-udp-and-other-sidecar.json" => {
            // The default layout: the proxy is a native sidecar, started before the app.
            assert_eq!(names(&pod["spec"]["containers"]), ["cache", "fluent-bit"]);
            assert_eq!(names(init)[..2], ["weft-init", "weft-proxy"]);
            assert_eq!(env(proxy, "LINKERD2_PROXY_INBOUND_PORTS"), "2020,5353");
        }
        _ => {}
    }
}

#[test]
fn every_corpus_request_is_answered_as_indexed() {
    let dir = corpus_dir();
    let index = std::fs::read(dir.join("index.json")).unwrap_or_else(|e| {
        panic!(
            "the admission corpus is missing: cannot read {}: {e}",
            dir.join("index.json").display()
        )
    });
    let index: Vec<Value> = serde_json::from_slice(&index).unwrap();
    assert!(index.len() >= 21, "corpus has {} entries", index.len());
    let anchors = include_str!("trust-anchors.pem");
    let injector = Injector::new(ProxyArgs::default().to_config(Some(anchors)).unwrap());
    let mut dry_run_patch = None;
    let mut real_patch_of_same_shape = None;
    for entry in &index {
        let file = entry["file"].as_str().unwrap();
        let expect = entry["expect"].as_str().unwrap();
        let body = std::fs::read(dir.join(file)).unwrap();
        let request = parse_review(&body).unwrap();
        let namespaces: &[Namespace] = match expect {
            "depends-on-namespace" => &[
                Namespace::Enabled,
                Namespace::NoAnnotation,
                Namespace::Unknown,
            ],
            _ => &[Namespace::Enabled, Namespace::NoAnnotation],
        };
        for &ns in namespaces {
            let answer = answer(&injector, &body, ns);
            let allowed = answer.response["allowed"].as_bool().unwrap();
            let ctx = format!("{file} ({expect}, namespace {ns:?}): {:?}", answer.outcome);
            match (expect, ns) {
                ("inject", _) | ("depends-on-namespace", Namespace::Enabled) => {
                    assert_eq!(answer.outcome, Outcome::Injected, "{ctx}");
                    assert!(allowed, "{ctx}");
                    check_injected(&injector, &body, &answer, file);
                    check_specifics(file, &answer);
                }
                ("depends-on-namespace", _) => {
                    assert_eq!(
                        answer.outcome,
                        Outcome::Skipped(SkipReason::NotEnabled),
                        "{ctx}"
                    );
                    assert!(allowed && answer.patch.is_none(), "{ctx}");
                }
                ("skip", _) => {
                    let reason = match file {
                        "07-host-network.json" => SkipReason::HostNetwork,
                        "08-disabled.json" => SkipReason::Disabled,
                        "09-already-injected.json" => SkipReason::AlreadyInjected,
                        "10-kube-system.json" => SkipReason::SystemNamespace,
                        other => panic!("unexpected skip case {other}"),
                    };
                    assert_eq!(answer.outcome, Outcome::Skipped(reason), "{ctx}");
                    assert!(allowed && answer.patch.is_none(), "{ctx}");
                    assert!(
                        !needs_namespace(&injector, &request),
                        "{ctx}: the answer does not depend on the namespace"
                    );
                }
                ("reject", _) => {
                    assert!(!allowed, "{ctx}");
                    assert_eq!(answer.response["status"]["code"], 400, "{ctx}");
                    let message = answer.response["status"]["message"].as_str().unwrap();
                    let (reason, must_name): (RejectReason, &[&str]) = match file {
                        "16-invalid-override.json" => (
                            RejectReason::InvalidAnnotation,
                            &[
                                "config.weft.dev/proxy-cpu-request",
                                "\"lots\"",
                                "Kubernetes quantity",
                                "100m",
                            ],
                        ),
                        "17-invalid-inject-value.json" => (
                            RejectReason::InvalidAnnotation,
                            &["weft.dev/inject", "\"true\"", "enabled", "disabled"],
                        ),
                        "18-port-conflict.json" => {
                            (RejectReason::PortConflict, &["4191", "\"app\""])
                        }
                        other => panic!("unexpected reject case {other}"),
                    };
                    assert_eq!(answer.outcome, Outcome::Rejected(reason), "{ctx}");
                    for needle in must_name {
                        assert!(
                            message.contains(needle),
                            "{ctx}: {message:?} lacks {needle:?}"
                        );
                    }
                }
                ("allow-unchanged", _) => {
                    assert_eq!(answer.outcome, Outcome::Allowed, "{ctx}");
                    assert!(allowed && answer.patch.is_none(), "{ctx}");
                    assert!(!needs_namespace(&injector, &request), "{ctx}");
                }
                (other, _) => panic!("{file}: unknown expectation {other:?}"),
            }
            if file == "13-dry-run.json" {
                assert!(request.dry_run);
                dry_run_patch = answer.patch.clone();
                // The same request as a real create gets the same patch.
                let mut real: Value = serde_json::from_slice(&body).unwrap();
                real["request"]["dryRun"] = false.into();
                let real = self::answer(&injector, &serde_json::to_vec(&real).unwrap(), ns);
                real_patch_of_same_shape = real.patch;
            }
        }
    }
    assert!(dry_run_patch.is_some(), "the corpus has a dry-run case");
    assert_eq!(dry_run_patch, real_patch_of_same_shape);
}
