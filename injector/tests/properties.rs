//! Properties of injection over generated pods (proptest), the three entry points side by side:
//! - the library: [`Injector::inject`], its JSON patch applied to the pod;
//! - the webhook: an AdmissionReview answered by [`respond`], its base64 JSON patch applied to the pod;
//! - the CLI: `weft inject --manual`'s library path, [`manifest::inject`] on the pod as YAML.
//!
//! Generated pods have annotation and label keys with `/` and `~` (JSON-pointer escaping), existing init
//! containers and native sidecars, containers with ports, env and security contexts, volumes, and
//! Weft's own `weft.dev/` and `config.weft.dev/` annotations with valid values (invalid ones are a
//! property of their own). Properties:
//! 1. `uninject(inject(p)) == p`, to the byte of the serialized JSON (and through `weft uninject`);
//! 2. injecting an injected pod is a skip (`AlreadyInjected`) that changes nothing, on every path;
//! 3. the webhook's patch, the library's patch and the CLI give the same pod (or the same refusal);
//! 4. an injected pod deserializes as a `k8s_openapi` Pod, with unique container and volume names;
//! 5. an invalid override annotation refuses the pod on every path, with nothing patched.
//!
//! Properties 1-4 also hold for the output of `weft inject` (annotate mode), which carries a status record
//! of its own that injection must keep (this found the bug fixed in `patch::build`).
//!
//! 256 cases per property; failures are persisted under `tests/proptest-regressions/`.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use proptest::{prelude::*, sample::select, test_runner::FileFailurePersistence};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::{collections::BTreeMap, sync::LazyLock};
use weft_injector::{
    admission::{parse_review, respond, Outcome},
    config::ProxyArgs,
    manifest::{self, InjectMode},
    uninject::{uninject, Uninjected},
    Decision, Injector, SkipReason,
};

const CASES: u32 = 256;

/// The flag configuration with the test trust anchors: `[plain, --native-sidecar]`.
static INJECTORS: LazyLock<[Injector; 2]> = LazyLock::new(|| {
    let pem = include_str!("trust-anchors.pem");
    [false, true].map(|native_sidecar| {
        let args = ProxyArgs {
            native_sidecar: native_sidecar.into(),
            ..ProxyArgs::default()
        };
        Injector::new(args.to_config(Some(pem)).unwrap())
    })
});

/// The namespace as the CLI sees it: `weft inject` counts every namespace as enabled.
fn enabled() -> BTreeMap<String, String> {
    [("weft.dev/inject".to_string(), "enabled".to_string())].into()
}

// ---------------------------------------------------------------------------------------------------------
// Generators

/// A DNS label of at most 7 characters (so never one of Weft's own names).
fn dns_label() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,5}[a-z0-9])?"
}

/// A map key (annotation or label) that is not Weft's, with `/` and `~` where JSON pointers must escape them.
fn free_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z~.]{1,4}(/[a-z0-9~.-]{1,4}){0,2}",
        1 => select(&["~", "~0", "~1", "a~1b/c~0d", "/", "a/", "/a", "a//b", "x/y/z", "a.b/c~d"][..])
            .prop_map(str::to_string),
    ]
}

/// A string value, including ones YAML would read as something else if unquoted.
fn free_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,8}",
        1 => select(&["", "~", "null", "true", "no", "1", "0x1F", "1e3", "- a", "a: b", "#c", "é"][..])
            .prop_map(str::to_string),
    ]
}

/// Weft's annotations with valid values: the opt-in, the annotations injection sets (whose previous value
/// uninject restores), and overrides.
fn weft_annotation() -> impl Strategy<Value = (String, String)> {
    let fixed: &[(&str, &str)] = &[
        ("weft.dev/inject", "enabled"),
        ("weft.dev/inject", "disabled"),
        ("config.weft.dev/proxy-log-level", "debug"),
        ("config.weft.dev/proxy-log-level", "warn,linkerd=info"),
        ("config.weft.dev/native-sidecar", "true"),
        ("config.weft.dev/native-sidecar", "false"),
        ("config.weft.dev/skip-inbound-ports", "8080"),
        ("config.weft.dev/skip-inbound-ports", "1-100,9090"),
        ("config.weft.dev/skip-outbound-ports", "3306"),
        ("config.weft.dev/opaque-ports", "5432,6379"),
        ("config.weft.dev/proxy-cpu-request", "10m"),
        ("config.weft.dev/proxy-cpu-limit", "2"),
        ("config.weft.dev/proxy-memory-limit", "300Mi"),
        ("config.weft.dev/proxy-uid", "1234"),
        ("config.weft.dev/proxy-version", "v2.1"),
        ("config.weft.dev/proxy-image", "example.com/proxy"),
        (
            "config.weft.dev/default-inbound-policy",
            "all-authenticated",
        ),
        (
            "config.weft.dev/default-inbound-policy",
            "cluster-unauthenticated",
        ),
        ("config.weft.dev/default-inbound-policy", "deny"),
        // Linkerd's spellings of the same settings.
        ("linkerd.io/inject", "enabled"),
        ("linkerd.io/inject", "disabled"),
        ("config.linkerd.io/proxy-log-level", "warn,linkerd=info"),
        ("config.linkerd.io/proxy-enable-native-sidecar", "true"),
        (
            "config.alpha.linkerd.io/proxy-enable-native-sidecar",
            "false",
        ),
        ("config.linkerd.io/skip-inbound-ports", "4190,9000-9010"),
        ("config.linkerd.io/skip-outbound-ports", "443"),
        ("config.linkerd.io/opaque-ports", "3306"),
        ("config.linkerd.io/proxy-cpu-request", "100m"),
        ("config.linkerd.io/proxy-memory-request", "20Mi"),
        ("config.linkerd.io/proxy-memory-limit", "250Mi"),
        ("config.linkerd.io/proxy-uid", "2102"),
        ("config.linkerd.io/proxy-version", "edge-26.8.3"),
        ("config.linkerd.io/proxy-image", "cr.l5d.io/linkerd/proxy"),
        (
            "config.linkerd.io/default-inbound-policy",
            "all-unauthenticated",
        ),
    ];
    prop_oneof![
        3 => select(fixed).prop_map(|(k, v)| (k.to_string(), v.to_string())),
        1 => (
            select(&["weft.dev/proxy-version", "weft.dev/created-by", "kubectl.kubernetes.io/default-container"][..]),
            free_value(),
        )
            .prop_map(|(k, v)| (k.to_string(), v)),
    ]
}

/// An override annotation (or opt-in) with a value injection must refuse.
fn invalid_annotation() -> impl Strategy<Value = (String, String)> {
    let fixed: &[(&str, &str)] = &[
        ("weft.dev/inject", "yes"),
        ("config.weft.dev/native-sidecar", "maybe"),
        ("config.weft.dev/skip-inbound-ports", "http"),
        ("config.weft.dev/opaque-ports", "70000"),
        ("config.weft.dev/proxy-uid", "0"),
        ("config.weft.dev/proxy-cpu-request", "lots"),
        ("config.weft.dev/proxy-memory-request", "1Gi"),
        ("config.weft.dev/proxy-log-level", ""),
        ("config.weft.dev/proxy-version", "v1 2"),
        ("config.weft.dev/default-inbound-policy", "allow"),
        ("linkerd.io/inject", "ingress"),
        ("linkerd.io/inject", "true"),
        ("config.linkerd.io/proxy-uid", "0"),
        ("config.linkerd.io/opaque-ports", "mysql"),
        ("config.linkerd.io/default-inbound-policy", "audit"),
        ("config.alpha.linkerd.io/proxy-enable-native-sidecar", "yes"),
    ];
    select(fixed).prop_map(|(k, v)| (k.to_string(), v.to_string()))
}

/// A string map: absent (`None`), or up to `max` entries.
fn string_map(
    entry: impl Strategy<Value = (String, String)>,
    max: usize,
) -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop::option::weighted(
        0.8,
        prop::collection::vec(entry, 0..=max)
            .prop_map(|entries| entries.into_iter().map(|(k, v)| (k, v.into())).collect()),
    )
}

fn port() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        1 => select(&[4140u16, 4143, 4191][..]),
        12 => 1..=65535u16,
    ];
    let name = prop::option::of(prop_oneof![
        20 => "[a-z]{1,6}".boxed(),
        1 => select(&["weft-proxy", "weft-admin"][..]).prop_map(str::to_string).boxed(),
    ]);
    let protocol = prop::option::of(select(&["TCP", "UDP", "SCTP"][..]));
    (number, name, protocol).prop_map(|(number, name, protocol)| {
        let mut port = json!({"containerPort": number});
        if let Some(name) = name {
            port["name"] = name.into();
        }
        if let Some(protocol) = protocol {
            port["protocol"] = protocol.into();
        }
        port
    })
}

fn container(name: String, init: bool) -> impl Strategy<Value = Value> {
    let ports = prop::option::of(prop::collection::vec(port(), 0..=3));
    let env = prop::option::of(prop::collection::vec(
        ("[A-Z_]{1,6}", free_value()).prop_map(|(n, v)| json!({"name": n, "value": v})),
        0..=3,
    ));
    let security = prop::option::of(
        (any::<bool>(), 0..=70000i64)
            .prop_map(|(ro, uid)| json!({"readOnlyRootFilesystem": ro, "runAsUser": uid})),
    );
    let native = any::<bool>().prop_map(move |b| init && b);
    (ports, env, security, native).prop_map(move |(ports, env, security, native)| {
        let mut c = json!({"name": name, "image": "example.com/app:1"});
        for (field, value) in [("ports", ports), ("env", env)] {
            if let Some(items) = value {
                c[field] = items.into();
            }
        }
        if let Some(security) = security {
            c["securityContext"] = security;
        }
        if native {
            c["restartPolicy"] = "Always".into();
        }
        c
    })
}

/// The containers and init containers (`None`: the field is absent), names unique across both.
fn containers() -> impl Strategy<Value = (Vec<Value>, Option<Vec<Value>>)> {
    (1..=4usize, 0..=3usize, any::<bool>())
        .prop_flat_map(|(apps, inits, init_field)| {
            let names = prop::collection::btree_set(dns_label(), apps + inits)
                .prop_map(|s| s.into_iter().collect::<Vec<_>>())
                .prop_shuffle();
            // Rarely, one container already has one of Weft's names.
            let weft_name = prop::option::weighted(0.03, select(&["weft-proxy", "weft-init"][..]));
            (names, weft_name, Just((apps, init_field || inits > 0)))
        })
        .prop_flat_map(|(mut names, weft_name, (apps, init_field))| {
            if let Some(weft) = weft_name {
                names[0] = weft.to_string();
            }
            let inits = names.split_off(apps);
            let apps: Vec<_> = names.into_iter().map(|n| container(n, false)).collect();
            let inits: Vec<_> = inits.into_iter().map(|n| container(n, true)).collect();
            (apps, inits.prop_map(move |i| init_field.then_some(i)))
        })
}

fn volumes() -> impl Strategy<Value = Option<Vec<Value>>> {
    let name = prop_oneof![
        30 => dns_label().boxed(),
        1 => select(&["weft-identity", "weft-identity-token", "weft-xtables-lock"][..])
            .prop_map(str::to_string).boxed(),
    ];
    prop::option::of(prop::collection::btree_set(name, 0..=3).prop_map(|names| {
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| match i % 2 {
                0 => json!({"name": name, "emptyDir": {}}),
                _ => json!({"name": name, "configMap": {"name": "cm"}}),
            })
            .collect()
    }))
}

/// A Pod. `plain`: never skipped by a check of its own (host network, Weft's names, a system or the
/// control plane's namespace, `weft.dev/inject: disabled`).
fn pod(plain: bool) -> impl Strategy<Value = Value> {
    let annotations = string_map(
        prop_oneof![3 => (free_key(), free_value()), 2 => weft_annotation()],
        5,
    );
    let labels = string_map(
        prop_oneof![
            4 => (free_key(), free_value()),
            1 => free_value().prop_map(|v| ("weft.dev/control-plane-ns".to_string(), v)),
        ],
        3,
    );
    let namespace = prop_oneof![
        8 => select(&["default", "shop"][..]),
        1 => select(&["kube-system", "weft"][..]),
    ];
    let security = prop::option::of(
        (0..=70000i64, 0..=70000i64).prop_map(|(u, g)| json!({"runAsUser": u, "fsGroup": g})),
    );
    let host_network = prop::option::weighted(0.1, any::<bool>());
    (
        dns_label(),
        namespace,
        annotations,
        labels,
        containers(),
        volumes(),
        security,
        host_network,
    )
        .prop_map(
            move |(
                name,
                namespace,
                annotations,
                labels,
                (apps, inits),
                volumes,
                security,
                host,
            )| {
                let mut metadata = json!({"name": name, "namespace": namespace});
                if let Some(map) = annotations {
                    metadata["annotations"] = Value::Object(map);
                }
                if let Some(map) = labels {
                    metadata["labels"] = Value::Object(map);
                }
                let mut spec = json!({"containers": apps});
                if let Some(inits) = inits {
                    spec["initContainers"] = inits.into();
                }
                if let Some(volumes) = volumes {
                    spec["volumes"] = volumes.into();
                }
                if let Some(security) = security {
                    spec["securityContext"] = security;
                }
                if let Some(host) = host {
                    spec["hostNetwork"] = host.into();
                }
                let mut pod =
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
                if plain {
                    make_plain(&mut pod);
                }
                pod
            },
        )
}

/// Removes whatever would make injection skip the pod by itself.
fn make_plain(pod: &mut Value) {
    pod["metadata"]["namespace"] = "default".into();
    // `get_mut`, not indexing, which would insert `null` for an absent key.
    if let Some(map) = pod["metadata"]
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        map.shift_remove("weft.dev/inject");
        map.shift_remove("linkerd.io/inject");
    }
    let spec = pod["spec"].as_object_mut().unwrap();
    spec.shift_remove("hostNetwork");
    for field in ["containers", "initContainers"] {
        for (i, c) in spec
            .get_mut(field)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if c["name"].as_str().unwrap().starts_with("weft-") {
                c["name"] = format!("{field}-{i}").to_lowercase().into();
            }
            for p in c
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if p.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("weft-"))
                {
                    p["name"] = "p".into();
                }
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        volumes.retain(|v| !v["name"].as_str().unwrap().starts_with("weft-"));
    }
}

// ---------------------------------------------------------------------------------------------------------
// The three paths

/// What one path did with a pod.
#[derive(Debug, PartialEq)]
enum Result3 {
    Injected(Value),
    Skipped(SkipReason),
    /// The message: the rejection's, or the CLI's error.
    Refused(String),
}

fn namespace(pod: &Value) -> &str {
    pod["metadata"]["namespace"].as_str().unwrap_or("default")
}

fn library(injector: &Injector, pod: &Value) -> Result3 {
    match injector.inject(pod, namespace(pod), Some(&enabled())) {
        Ok(Decision::Inject { patch, .. }) => {
            let mut patched = pod.clone();
            json_patch::patch(&mut patched, &patch).unwrap();
            Result3::Injected(patched)
        }
        Ok(Decision::Skip { reason, .. }) => Result3::Skipped(reason),
        Err(rejection) => Result3::Refused(rejection.message),
    }
}

fn webhook(injector: &Injector, pod: &Value) -> Result3 {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "c0ffee00-0000-4000-8000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace(pod),
            "operation": "CREATE",
            "userInfo": {"username": "proptest"},
            "object": pod,
        }
    });
    let request = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    let reviewed = respond(injector, &request, Some(&enabled()));
    let review: Value = serde_json::from_slice(&reviewed.review).unwrap();
    let response = &review["response"];
    let patch = response.get("patch").map(|encoded| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        serde_json::from_slice::<json_patch::Patch>(&bytes).unwrap()
    });
    match reviewed.outcome {
        Outcome::Injected => {
            assert_eq!(response["allowed"], true);
            let mut patched = pod.clone();
            json_patch::patch(&mut patched, &patch.expect("an injection has a patch")).unwrap();
            Result3::Injected(patched)
        }
        Outcome::Skipped(reason) => {
            assert_eq!(response["allowed"], true);
            assert!(patch.is_none(), "a skip has no patch");
            Result3::Skipped(reason)
        }
        Outcome::Rejected(_) => {
            assert_eq!(response["allowed"], false);
            assert_eq!(response["status"]["code"], 400);
            assert!(patch.is_none(), "a refusal has no patch");
            Result3::Refused(response["status"]["message"].as_str().unwrap().to_string())
        }
        Outcome::Allowed => panic!("a pod CREATE is never just allowed"),
    }
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// `weft inject --manual` on the pod as YAML. A skip is reported as such and must give the input back.
fn cli(injector: &Injector, pod: &Value) -> Result3 {
    let yaml = serde_norway::to_string(pod).unwrap();
    match manifest::inject(&yaml, injector, InjectMode::Manual) {
        Ok(processed) => {
            let mut docs = yaml_documents(&processed.yaml);
            assert_eq!(docs.len(), 1);
            let out = docs.remove(0);
            let last = processed.report.last().unwrap();
            if last.ends_with(": injected") {
                Result3::Injected(out)
            } else {
                assert!(last.contains(": skipped ("), "{last}");
                assert_eq!(&out, pod, "a skipped pod comes back unchanged through YAML");
                // The report has the reason's text only; the library's reason stands in for it.
                match library(injector, pod) {
                    Result3::Skipped(reason) => {
                        assert!(last.ends_with(&format!("({reason})")), "{last}");
                        Result3::Skipped(reason)
                    }
                    other => panic!("the CLI skipped, the library gave {other:?}"),
                }
            }
        }
        Err(e) => Result3::Refused(e.to_string()),
    }
}

/// Which paths run: all three, or (to save the YAML round trips, the bulk of the time) the library and the
/// webhook only.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Paths {
    All,
    NoCli,
}

/// Runs the paths and checks they agree; returns the common result.
fn all_paths(injector: &Injector, pod: &Value, paths: Paths) -> Result<Result3, TestCaseError> {
    let lib = library(injector, pod);
    let hook = webhook(injector, pod);
    prop_assert_eq!(&hook, &lib, "webhook vs library");
    if paths == Paths::NoCli {
        return Ok(lib);
    }
    match (cli(injector, pod), &lib) {
        // The CLI's error names the document and object before the rejection's message.
        (Result3::Refused(cli), Result3::Refused(message)) => {
            prop_assert!(cli.ends_with(&format!(": {message}")), "{cli} / {message}")
        }
        (cli, lib) => prop_assert_eq!(&cli, lib, "CLI vs library"),
    }
    Ok(lib)
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
}

fn names<'a>(pod: &'a Value, fields: &[&str]) -> Vec<&'a str> {
    fields
        .iter()
        .flat_map(|f| pod["spec"][f].as_array().into_iter().flatten())
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn assert_unique(names: &[&str]) -> Result<(), TestCaseError> {
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    prop_assert_eq!(sorted.len(), names.len(), "duplicate names in {:?}", names);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Integration tests have no lib.rs beside them, so the default (`SourceParallel`) cannot place its file.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/properties.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// Properties 3 (the paths agree), then for an injected pod 4 (a valid Pod), 2 (idempotent) and 1 (uninject
/// restores it, byte for byte, in process and through `weft uninject`). Returns the common result.
fn check_pod(injector: &Injector, pod: &Value, paths: Paths) -> Result<Result3, TestCaseError> {
    let result = all_paths(injector, pod, paths)?;
    let Result3::Injected(injected) = &result else {
        return Ok(result);
    };

    let typed: Result<Pod, _> = serde_json::from_value(injected.clone());
    prop_assert!(typed.is_ok(), "not a Pod: {:?}", typed.err());
    assert_unique(&names(injected, &["containers", "initContainers"]))?;
    assert_unique(&names(injected, &["volumes"]))?;

    // A second pass is a skip on every path, and the CLI gives its input back.
    prop_assert_eq!(
        all_paths(injector, injected, paths)?,
        Result3::Skipped(SkipReason::AlreadyInjected)
    );

    let mut restored = injected.clone();
    prop_assert_eq!(uninject(&mut restored).unwrap(), Uninjected::Removed);
    prop_assert_eq!(json_text(&restored), json_text(pod));
    if paths == Paths::NoCli {
        return Ok(result);
    }
    let yaml = serde_norway::to_string(injected).unwrap();
    let processed = manifest::uninject_manifest(&yaml).unwrap();
    prop_assert_eq!(
        json_text(&yaml_documents(&processed.yaml)[0]),
        json_text(pod)
    );
    Ok(result)
}

proptest! {
    #![proptest_config(config())]

    /// Properties 1-4 on any generated pod, with the proxy as a container or as a native sidecar.
    #[test]
    fn inject_agrees_round_trips_is_idempotent_and_valid(pod in pod(false), native in any::<bool>()) {
        check_pod(&INJECTORS[usize::from(native)], &pod, Paths::All)?;
    }

    /// A pod that nothing skips is injected (unless it declares a port the proxy uses), and so is the output
    /// of `weft inject` for it (`weft.dev/inject: enabled` and a status record of its own), with properties 1-4.
    #[test]
    fn plain_pods_are_injected_also_after_weft_inject(pod in pod(true), native in any::<bool>()) {
        let injector = &INJECTORS[usize::from(native)];
        // The paths' agreement on such pods is the property above; here the library's word is enough.
        match library(injector, &pod) {
            Result3::Injected(_) => {}
            Result3::Refused(message) => {
                prop_assert!(message.contains("which the Weft proxy uses"), "{}", message);
                return Ok(());
            }
            other => prop_assert!(false, "a plain pod gave {:?}", other),
        }
        let yaml = serde_norway::to_string(&pod).unwrap();
        let processed = manifest::inject(&yaml, injector, InjectMode::Annotate).unwrap();
        let annotated = yaml_documents(&processed.yaml).remove(0);
        // The CLI's agreement with the others is the property above; here the library and the webhook.
        prop_assert!(matches!(
            check_pod(injector, &annotated, Paths::NoCli)?,
            Result3::Injected(_)
        ));
    }

    /// 5. An invalid override refuses the pod on every path, with the key in the message and no patch.
    #[test]
    fn invalid_overrides_are_refused(
        pod in pod(true),
        (key, value) in invalid_annotation(),
        native in any::<bool>(),
    ) {
        let mut pod = pod;
        let metadata = pod["metadata"].as_object_mut().unwrap();
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        // The other spellings of the setting, which could win over the invalid value.
        let spellings = weft_core::linkerd::SPELLINGS
            .iter()
            .find(|(weft, linkerd)| *weft == key || linkerd.contains(&key.as_str()))
            .map(|(weft, linkerd)| std::iter::once(*weft).chain(linkerd.iter().copied()).collect())
            .unwrap_or_else(Vec::new);
        for other in spellings {
            annotations.as_object_mut().unwrap().shift_remove(other);
        }
        annotations[key.as_str()] = value.into();
        let injector = &INJECTORS[usize::from(native)];
        match all_paths(injector, &pod, Paths::All)? {
            Result3::Refused(message) => prop_assert!(message.contains(&key), "{}", message),
            other => prop_assert!(false, "{key} gave {other:?}"),
        }
    }
}
