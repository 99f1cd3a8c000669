//! The peak memory of one admission review, for hostile bodies of a few MiB, on both webhooks'
//! parse paths: what a webhook does not read costs nothing, what it reads a bounded multiple of its
//! size (or, for injection, a bounded number of values), where a generic value tree of the same
//! body costs tens of times the body. Each parse runs in a child process (this test binary again) that reads the
//! body from stdin and reports the growth of its peak RSS (`VmHWM`, reset through
//! `/proc/self/clear_refs`, so Linux only) over its RSS with the body read: a fresh heap, so freed
//! memory cannot hide an allocation.

#![allow(clippy::unwrap_used)]

use serde_json::json;
use std::{
    io::{Read, Write},
    process::{Command, Stdio},
};
use weft_injector::{admission as inject, config::ProxyConfig, Injector};
use weft_policy_k8s_api::validate::{review, ReviewIn};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

const CHILD_ENV: &str = "WEFT_REVIEW_MEMORY_CHILD";
const REPORT: &str = "peak-growth-bytes: ";

/// In the child: reads the body, parses it as `mode` says, and prints the peak RSS growth.
fn child(mode: &str) {
    let mut body = String::new();
    std::io::stdin().read_to_string(&mut body).unwrap();
    // Writing 5 resets VmHWM to the current RSS (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kib("VmRSS:");
    // The kernel's RSS counters are approximate (per-CPU) by a few MiB at most.
    assert!(status_kib("VmHWM:") <= before + 4096, "VmHWM was not reset");
    match mode {
        "typed" => {
            let parsed: ReviewIn<'_> = serde_json::from_str(&body).unwrap();
            let response = review(parsed.request.as_ref().unwrap());
            std::hint::black_box(&response);
        }
        "inject" => {
            // As /inject does it: parse, then decide and patch when the parse succeeds.
            let injector = Injector::new(ProxyConfig::default());
            let outcome = inject::parse_review(body.as_bytes())
                .map(|request| inject::respond(&injector, &request, None).review.len())
                .map_err(|error| error.to_string().len());
            std::hint::black_box(&outcome);
        }
        _ => {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            std::hint::black_box(&value);
        }
    }
    let growth = status_kib("VmHWM:").saturating_sub(before) * 1024;
    println!("{REPORT}{growth}");
}

/// The peak RSS growth of parsing `body` as `mode` says, in a child process running `test` (bytes).
fn peak_growth(test: &str, mode: &str, body: &str) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the {mode} child failed: {output:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once(REPORT).map(|(_, n)| n))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the {mode} child reported nothing: {stdout}"))
}

fn review_body(object: serde_json::Value, old_object: serde_json::Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "policy.weft.dev", "version": "v1beta1", "kind": "Server"},
            "resource": {"group": "policy.weft.dev", "version": "v1beta1", "resource": "servers"},
            "namespace": "shop",
            "operation": "UPDATE",
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old_object,
        }
    })
    .to_string()
}

fn server(spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec,
    })
}

#[test]
fn a_validation_review_costs_a_small_multiple_of_its_body() {
    const TEST: &str = "a_validation_review_costs_a_small_multiple_of_its_body";
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        return child(&mode);
    }
    let zeros = vec![0u8; 1_000_000];
    let short_strings = vec!["a"; 450_000];
    let cases = [
        (
            "an unknown spec field holding a million numbers, in object and oldObject",
            review_body(
                server(json!({"podSelector": {}, "port": 80, "padding": zeros})),
                server(json!({"podSelector": {}, "port": 80, "padding": zeros})),
            ),
        ),
        (
            "a selector with 450,000 values (a field validation really reads)",
            review_body(
                server(json!({"podSelector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": short_strings}]}, "port": 80})),
                json!(null),
            ),
        ),
    ];
    for (what, body) in cases {
        assert!(
            body.len() < 4 * 1024 * 1024,
            "{what}: over /validate's limit"
        );
        let allowed = {
            let parsed: ReviewIn<'_> = serde_json::from_str(&body).unwrap();
            review(parsed.request.as_ref().unwrap()).allowed
        };
        let typed = peak_growth(TEST, "typed", &body);
        let tree = peak_growth(TEST, "tree", &body);
        let len = body.len() as u64;
        eprintln!(
            "{what}: body {:.1} MiB; peak growth typed {:.1} MiB ({:.1}x), value tree {:.1} MiB ({:.1}x); allowed: {allowed}",
            len as f64 / 1048576.0,
            typed as f64 / 1048576.0,
            typed as f64 / len as f64,
            tree as f64 / 1048576.0,
            tree as f64 / len as f64,
        );
        // Fields validation does not read cost nothing; fields it reads cost their typed size,
        // at worst ~15x (bound: 20x) for a list of one-character strings (a 24-byte String and a minimal heap
        // block for each 4 input bytes). With the 4 MiB limit of /validate that bounds one
        // request near 60-80 MiB, where a value tree of a 10 MiB body cost ~800 MiB.
        assert!(
            typed <= 20 * len,
            "{what}: validating a {len} byte review grew the peak RSS by {typed} bytes (> 20x)"
        );
        assert!(
            typed < tree,
            "{what}: the typed parse ({typed} bytes) must cost less than the value tree ({tree} bytes)"
        );
    }
}

fn pod_review(pod: serde_json::Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": pod,
        }
    })
    .to_string()
}

#[test]
fn an_injection_review_keeps_a_bounded_number_of_values() {
    const TEST: &str = "an_injection_review_keeps_a_bounded_number_of_values";
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        return child(&mode);
    }
    let zeros = vec![0u8; 4_500_000];
    let env: Vec<_> = (0..120_000)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": "x"}))
        .collect();
    let mut annotations: serde_json::Map<_, _> = (0..20_000)
        .map(|i| (format!("example.com/a{i}"), json!("v".repeat(200))))
        .collect();
    annotations.insert("weft.dev/inject".into(), json!("enabled"));
    let pod = |container: serde_json::Value, annotations: serde_json::Value| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": {"containers": [container]},
        })
    };
    // (what, body, refused): each under /inject's 10 MiB limit. Only the last keeps much of its body,
    // and answers with a patch besides, so it alone may cost as much as a value tree.
    let cases = [
        (
            "a container's ports holding 4.5 million numbers (a field injection keeps)",
            pod_review(pod(
                json!({"name": "app", "image": "app", "ports": zeros}),
                json!({"weft.dev/inject": "enabled"}),
            )),
            true,
        ),
        (
            "120,000 env vars (a field injection skips)",
            pod_review(pod(
                json!({"name": "app", "image": "app", "env": env}),
                json!({"weft.dev/inject": "enabled"}),
            )),
            false,
        ),
        (
            "20,000 annotations of 200 bytes (kept, within the value budget)",
            pod_review(pod(
                json!({"name": "app", "image": "app"}),
                serde_json::Value::Object(annotations),
            )),
            false,
        ),
    ];
    for (i, (what, body, refused)) in cases.into_iter().enumerate() {
        assert!(
            body.len() < 10 * 1024 * 1024,
            "{what}: over /inject's limit"
        );
        let parsed = inject::parse_review(body.as_bytes());
        match &parsed {
            Err(error) => {
                assert!(refused, "{what}: refused: {error}");
                assert!(
                    error
                        .to_string()
                        .contains("more than 200000 values in the fields kept"),
                    "{what}: {error}"
                );
            }
            Ok(_) => assert!(!refused, "{what}: parsed, where it must be refused"),
        }
        drop(parsed);
        let kept = peak_growth(TEST, "inject", &body);
        let tree = peak_growth(TEST, "tree", &body);
        let len = body.len() as u64;
        eprintln!(
            "{what}: body {:.1} MiB; peak growth /inject {:.1} MiB ({:.1}x), value tree {:.1} MiB ({:.1}x); refused: {refused}",
            len as f64 / 1048576.0,
            kept as f64 / 1048576.0,
            kept as f64 / len as f64,
            tree as f64 / 1048576.0,
            tree as f64 / len as f64,
        );
        // Skipped fields cost nothing; kept ones at most 200,000 values (~100 bytes each) plus
        // their strings, which the body's size bounds: ~20 MiB + 2x the body, bound 3x + 32 MiB.
        assert!(
            kept <= 3 * len + 32 * 1024 * 1024,
            "{what}: /inject on a {len} byte review grew the peak RSS by {kept} bytes"
        );
        assert!(
            i == 2 || 4 * kept < tree,
            "{what}: /inject ({kept} bytes) must cost a fraction of the value tree ({tree} bytes)"
        );
    }
}
