//! Linkerd's spelling of each annotation Weft reads gives the same injection as Weft's: on the pod
//! and on the namespace, setting by setting, on both proxy layouts (plain and native sidecar).
//! Where both spellings are set Weft's wins, and differing values are reported as warnings.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use weft_core::linkerd::SPELLINGS;
use weft_injector::{config::ProxyArgs, Decision, Injector, SkipReason};

/// A valid value of each setting that differs from the controller's (whose `--native-sidecar` is
/// `native`), so that a spelling Weft did not read would show in the result.
fn sample_value(weft_key: &str, native: bool) -> &'static str {
    match weft_key {
        "weft.dev/inject" => "enabled",
        "config.weft.dev/proxy-image" => "registry.example.com/mesh/proxy",
        "config.weft.dev/proxy-version" => "v9.9.9",
        "config.weft.dev/proxy-log-level" => "debug,weft=trace",
        "config.weft.dev/proxy-cpu-request" => "250m",
        "config.weft.dev/proxy-cpu-limit" => "3",
        "config.weft.dev/proxy-memory-request" => "64Mi",
        "config.weft.dev/proxy-memory-limit" => "3Gi",
        "config.weft.dev/proxy-uid" => "3000",
        "config.weft.dev/skip-inbound-ports" => "25,8000-8010",
        "config.weft.dev/skip-outbound-ports" => "3306,6379",
        "config.weft.dev/opaque-ports" => "5432",
        "config.weft.dev/default-inbound-policy" => "all-authenticated",
        "config.weft.dev/proxy-log-format" => "json",
        "config.weft.dev/image-pull-policy" => "Always",
        "config.weft.dev/proxy-gid" => "2103",
        "config.weft.dev/proxy-ephemeral-storage-request" => "10Mi",
        "config.weft.dev/proxy-ephemeral-storage-limit" => "1Gi",
        "config.weft.dev/skip-subnets" => "172.17.0.0/16,10.99.0.0/24",
        "config.weft.dev/proxy-inbound-connect-timeout" => "250ms",
        "config.weft.dev/proxy-outbound-connect-timeout" => "1.5s",
        "config.weft.dev/proxy-inbound-discovery-cache-unused-timeout" => "90s",
        "config.weft.dev/proxy-outbound-discovery-cache-unused-timeout" => "2m",
        "config.weft.dev/proxy-disable-inbound-protocol-detect-timeout" => "true",
        "config.weft.dev/proxy-disable-outbound-protocol-detect-timeout" => "true",
        "config.weft.dev/access-log" => "apache",
        "config.weft.dev/shutdown-grace-period" => "45s",
        "config.weft.dev/proxy-admin-shutdown" => "enabled",
        "config.weft.dev/proxy-metrics-hostname-labels" => "true",
        "config.weft.dev/proxy-require-identity-inbound-ports" => "8080",
        "config.weft.dev/proxy-log-http-headers" => "insecure",
        "config.weft.dev/proxy-additional-env" => r#"[{"name":"LINKERD2_PROXY_X","value":"1"}]"#,
        "config.weft.dev/native-sidecar" if native => "false",
        "config.weft.dev/native-sidecar" => "true",
        other => panic!("no sample value for {other}: add one"),
    }
}

fn injectors() -> [Injector; 2] {
    let pem = include_str!("trust-anchors.pem");
    [false, true].map(|native_sidecar| {
        let args = ProxyArgs {
            native_sidecar: native_sidecar.into(),
            ..ProxyArgs::default()
        };
        Injector::new(args.to_config(Some(pem)).unwrap())
    })
}

fn pod(annotations: &[(&str, &str)]) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [{
            "name": "app",
            "image": "example.com/app:1",
            "ports": [{"containerPort": 8080, "name": "http"}],
        }]},
    })
}

/// The injected pod's spec (what the settings change), or the skip reason.
fn injected_spec(
    injector: &Injector,
    pod: &Value,
    namespace: &BTreeMap<String, String>,
) -> (Result<Value, SkipReason>, Vec<String>) {
    match injector.inject(pod, "shop", Some(namespace)).unwrap() {
        Decision::Inject { patch, warnings } => {
            let mut pod = pod.clone();
            json_patch::patch(&mut pod, &patch).unwrap();
            (Ok(pod["spec"].clone()), warnings)
        }
        Decision::Skip { reason, warnings } => (Err(reason), warnings),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn each_linkerd_spelling_injects_as_weft_spelling_does() {
    let enabled = map(&[("weft.dev/inject", "enabled")]);
    for (native, injector) in [false, true].iter().zip(&injectors()) {
        let (default, _) = injected_spec(injector, &pod(&[]), &enabled);
        for (weft, linkerd) in SPELLINGS {
            let value = sample_value(weft, *native);
            // On the pod.
            let (by_weft, warnings) = injected_spec(injector, &pod(&[(weft, value)]), &enabled);
            assert!(warnings.is_empty(), "{weft}: {warnings:?}");
            // The injection does not show the settings the policy index reads alone.
            let policy_only = ["config.weft.dev/proxy-require-identity-inbound-ports"];
            if *weft != "weft.dev/inject" && !policy_only.contains(weft) {
                assert_ne!(
                    by_weft, default,
                    "{weft}: {value} must change the injection"
                );
            }
            for key in *linkerd {
                let (by_linkerd, warnings) =
                    injected_spec(injector, &pod(&[(key, value)]), &enabled);
                assert_eq!(by_linkerd, by_weft, "{key} on the pod");
                assert!(warnings.is_empty(), "{key}: {warnings:?}");
            }
            // On the namespace (which opts in under Linkerd's spelling too).
            let (by_weft, _) = injected_spec(
                injector,
                &pod(&[]),
                &map(&[("linkerd.io/inject", "enabled"), (weft, value)]),
            );
            for key in *linkerd {
                let (by_linkerd, warnings) = injected_spec(
                    injector,
                    &pod(&[]),
                    &map(&[("linkerd.io/inject", "enabled"), (key, value)]),
                );
                assert_eq!(by_linkerd, by_weft, "{key} on the namespace");
                assert!(warnings.is_empty(), "{key}: {warnings:?}");
            }
        }
    }
}

#[test]
fn linkerd_inject_opts_pods_and_namespaces_in_and_out() {
    let [injector, _] = injectors();
    let none = BTreeMap::new();
    type Annotations<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Annotations<'_>, Annotations<'_>, Result<(), SkipReason>)] = &[
        (&[("linkerd.io/inject", "enabled")], &[], Ok(())),
        (&[], &[("linkerd.io/inject", "enabled")], Ok(())),
        (
            &[("linkerd.io/inject", "disabled")],
            &[("linkerd.io/inject", "enabled")],
            Err(SkipReason::Disabled),
        ),
        (
            &[],
            &[("linkerd.io/inject", "disabled")],
            Err(SkipReason::NotEnabled),
        ),
        (&[], &[], Err(SkipReason::NotEnabled)),
        // Weft's spelling wins over Linkerd's, on the pod and on the namespace.
        (
            &[
                ("linkerd.io/inject", "enabled"),
                ("weft.dev/inject", "disabled"),
            ],
            &[],
            Err(SkipReason::Disabled),
        ),
        (
            &[],
            &[
                ("linkerd.io/inject", "enabled"),
                ("weft.dev/inject", "disabled"),
            ],
            Err(SkipReason::NotEnabled),
        ),
    ];
    for (on_pod, on_namespace, expected) in cases {
        let namespace = if on_namespace.is_empty() {
            none.clone()
        } else {
            map(on_namespace)
        };
        let (got, _) = injected_spec(&injector, &pod(on_pod), &namespace);
        assert_eq!(
            got.map(|_| ()),
            *expected,
            "pod {on_pod:?}, namespace {on_namespace:?}"
        );
    }
}

#[test]
fn differing_values_are_reported_and_weft_wins() {
    let [injector, _] = injectors();
    let both = pod(&[
        ("config.weft.dev/proxy-uid", "3000"),
        ("config.linkerd.io/proxy-uid", "4000"),
        ("config.weft.dev/opaque-ports", "5432"),
        ("config.linkerd.io/opaque-ports", "5432"),
    ]);
    let namespace = map(&[
        ("linkerd.io/inject", "disabled"),
        ("weft.dev/inject", "enabled"),
    ]);
    let (spec, warnings) = injected_spec(&injector, &both, &namespace);
    let (weft_only, _) = injected_spec(
        &injector,
        &pod(&[
            ("config.weft.dev/proxy-uid", "3000"),
            ("config.weft.dev/opaque-ports", "5432"),
        ]),
        &map(&[("weft.dev/inject", "enabled")]),
    );
    assert_eq!(spec, weft_only);
    assert_eq!(
        warnings,
        [
            "namespace shop: ignored linkerd.io/inject: \"disabled\": weft.dev/inject is \"enabled\" and Weft's spelling wins",
            "pod: ignored config.linkerd.io/proxy-uid: \"4000\": config.weft.dev/proxy-uid is \"3000\" and Weft's spelling wins",
        ]
    );
}

#[test]
fn bad_values_under_linkerd_spelling_are_refused_naming_that_spelling() {
    let [injector, _] = injectors();
    let enabled = map(&[("weft.dev/inject", "enabled")]);
    let cases = [
        (
            "linkerd.io/inject",
            "ingress",
            "Linkerd's ingress mode) is not supported",
        ),
        (
            "linkerd.io/inject",
            "true",
            "is not valid (accepted: \"enabled\", \"disabled\")",
        ),
        (
            "config.linkerd.io/proxy-uid",
            "0",
            "config.linkerd.io/proxy-uid: ",
        ),
        (
            "config.linkerd.io/opaque-ports",
            "mysql",
            "config.linkerd.io/opaque-ports: ",
        ),
        (
            "config.linkerd.io/default-inbound-policy",
            "audit",
            "is not a default inbound policy",
        ),
        (
            "config.linkerd.io/proxy-outbound-connect-timeout",
            "1 second",
            "is not a duration",
        ),
        (
            "config.linkerd.io/image-pull-policy",
            "always",
            "is not an image pull policy",
        ),
        (
            "config.linkerd.io/skip-subnets",
            "10.0.0.0/33",
            "which is not a network",
        ),
        (
            "config.linkerd.io/access-log",
            "common",
            "is not an access log format",
        ),
        ("config.linkerd.io/proxy-gid", "-1", "is not a group id"),
        (
            "config.linkerd.io/proxy-require-identity-inbound-ports",
            "http",
            "config.linkerd.io/proxy-require-identity-inbound-ports: ",
        ),
    ];
    for (key, value, expected) in cases {
        let rejection = injector
            .inject(&pod(&[(key, value)]), "shop", Some(&enabled))
            .unwrap_err();
        assert!(
            rejection.message.contains(key) && rejection.message.contains(expected),
            "{key}: {value}: {}",
            rejection.message
        );
    }
}

#[test]
fn linkerd_annotations_weft_ignores_are_reported_not_refused() {
    let [injector, _] = injectors();
    let enabled = map(&[("weft.dev/inject", "enabled")]);
    for (key, _) in weft_core::linkerd::UNSUPPORTED {
        let (spec, warnings) = injected_spec(&injector, &pod(&[(key, "1")]), &enabled);
        assert!(spec.is_ok(), "{key}");
        assert_eq!(
            warnings.len(),
            1,
            "{key}: one warning expected, got {warnings:?}"
        );
        assert!(
            warnings[0].starts_with(&format!(
                "pod: {key} is not supported by Weft and is ignored: "
            )),
            "{warnings:?}"
        );
        let (_, warnings) = injected_spec(
            &injector,
            &pod(&[]),
            &map(&[("weft.dev/inject", "enabled"), (key, "1")]),
        );
        assert!(
            warnings[0].starts_with(&format!("namespace shop: {key} is not supported")),
            "{warnings:?}"
        );
    }
}
