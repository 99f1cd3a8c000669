//! The built `weft` binary: exit codes, stdout, stderr.
#![allow(clippy::unwrap_used)]

use serde::Deserialize;
use serde_json::Value;
use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

/// The trust anchors `--manual` needs (a fixed test CA).
const ANCHORS: &str = concat!(
    "--identity-trust-anchors-file=",
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/trust-anchors.pem"
);

fn golden(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
        .join(file)
}

fn weft(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn documents(text: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(text).unwrap();
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn manual_inject_from_a_file_matches_the_golden() {
    let input = golden("multi-document", "input.yaml");
    let out = weft(
        &["inject", "--manual", ANCHORS, "-f", input.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = std::fs::read(golden("multi-document", "expected.yaml")).unwrap();
    assert_eq!(documents(&out.stdout), documents(&expected));
    let report = std::fs::read_to_string(golden("multi-document", "expected-report.txt")).unwrap();
    assert_eq!(text(&out.stderr), report);
    assert!(
        text(&out.stdout).contains("\n---\n"),
        "documents are separated by ---"
    );
}

#[test]
fn stdin_is_the_default_and_uninject_round_trips() {
    let input = std::fs::read_to_string(golden("workload-deployment", "input.yaml")).unwrap();
    let injected = weft(&["inject", "--manual", ANCHORS], Some(&input));
    assert!(injected.status.success(), "{}", text(&injected.stderr));
    assert_eq!(text(&injected.stderr), "deployment/web: injected\n");
    let restored = weft(&["uninject", "-f", "-"], Some(text(&injected.stdout)));
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert_eq!(text(&restored.stderr), "deployment/web: uninjected\n");
    assert_eq!(documents(&restored.stdout), documents(input.as_bytes()));

    let annotated = weft(&["inject"], Some(&input));
    assert!(annotated.status.success());
    assert_eq!(
        text(&annotated.stderr),
        "deployment/web: injected (weft.dev/inject: enabled added)\n"
    );
    let doc = &documents(&annotated.stdout)[0];
    assert_eq!(
        doc["spec"]["template"]["metadata"]["annotations"]["weft.dev/inject"],
        "enabled"
    );
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn flags_reach_the_injection() {
    let input = std::fs::read_to_string(golden("pod-minimal", "input.yaml")).unwrap();
    let out = weft(
        &[
            "inject",
            "--manual",
            ANCHORS,
            "--native-sidecar",
            "--proxy-version",
            "v2.0.0",
        ],
        Some(&input),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pod = &documents(&out.stdout)[0];
    let init = &pod["spec"]["initContainers"];
    assert_eq!(init[1]["name"], "weft-proxy");
    assert_eq!(init[1]["image"], "cr.l5d.io/linkerd/proxy:v2.0.0");
    assert_eq!(init[0]["image"], "cr.l5d.io/linkerd/proxy:v2.0.0");
}

#[test]
fn rejection_fails_with_the_webhook_message_and_no_output() {
    let input = golden("error-rejection-in-second-document", "input.yaml");
    let out = weft(
        &["inject", "--manual", ANCHORS, "-f", input.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing partial on stdout");
    let expected = std::fs::read_to_string(golden(
        "error-rejection-in-second-document",
        "expected-error.txt",
    ))
    .unwrap();
    assert_eq!(text(&out.stderr), format!("error: {expected}"));
}

#[test]
fn invalid_input_names_the_document_and_field() {
    for case in [
        "error-invalid-yaml",
        "error-deployment-without-template",
        "error-document-without-kind",
    ] {
        let input = std::fs::read_to_string(golden(case, "input.yaml")).unwrap();
        for args in [
            &["inject"][..],
            &["inject", "--manual", ANCHORS],
            &["uninject"],
        ] {
            let out = weft(args, Some(&input));
            assert_eq!(out.status.code(), Some(1), "{case} {args:?}");
            assert!(out.stdout.is_empty(), "{case} {args:?}");
            assert!(
                text(&out.stderr).starts_with("error: document "),
                "{case}: {}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn bad_flags_and_files_fail_clearly() {
    let out = weft(&["inject", "--proxy-uid", "0"], Some(""));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--proxy-uid: \"0\""),
        "{}",
        text(&out.stderr)
    );

    let out = weft(&["inject", "-f", "/nonexistent/app.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read /nonexistent/app.yaml"),
        "{}",
        text(&out.stderr)
    );

    let out = weft(&["inject", "--manual"], Some(""));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .starts_with("error: --identity-trust-anchors-file is required with --manual"),
        "{}",
        text(&out.stderr)
    );
    let out = weft(
        &[
            "inject",
            "--identity-trust-anchors-file=/nonexistent/ca.pem",
        ],
        Some(""),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(
            "error: --identity-trust-anchors-file: \"/nonexistent/ca.pem\" cannot be read"
        ),
        "{}",
        text(&out.stderr)
    );

    let out = weft(&["inject", "--no-such-flag"], None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn empty_input_gives_empty_output() {
    let out = weft(&["inject", "--manual", ANCHORS], Some(""));
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn every_proxy_flag_has_help_text() {
    let out = weft(&["inject", "--help"], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--manual",
        "--file",
        "--proxy-image",
        "--proxy-version",
        "--proxy-init-image",
        "--proxy-log-level",
        "--proxy-cpu-request",
        "--proxy-cpu-limit",
        "--proxy-memory-request",
        "--proxy-memory-limit",
        "--proxy-uid",
        "--skip-inbound-ports",
        "--skip-outbound-ports",
        "--opaque-ports",
        "--native-sidecar",
        "--proxy-log-format",
        "--proxy-identity-addr",
        "--proxy-identity-name",
        "--proxy-policy-addr",
        "--proxy-policy-name",
        "--proxy-destination-addr",
        "--proxy-destination-name",
        "--control-plane-namespace",
        "--cluster-domain",
        "--identity-trust-domain",
        "--identity-trust-anchors-file",
        "--default-policy",
        "--cluster-networks",
    ] {
        let line = help
            .lines()
            .position(|l| l.trim_start().starts_with(flag) || l.contains(&format!(", {flag}")))
            .unwrap_or_else(|| panic!("{flag} missing from help:\n{help}"));
        // clap prints the description on the flag's line or the next one.
        let described = help.lines().nth(line).unwrap().len() > flag.len() + 20
            || help
                .lines()
                .nth(line + 1)
                .is_some_and(|l| !l.trim().is_empty());
        assert!(described, "{flag} has no help text:\n{help}");
    }
}

#[test]
fn policy_usage_and_connection_errors_exit_without_output() {
    // Usage errors: clap's exit code 2, the reason on stderr.
    for (args, reason) in [
        (
            &["policy", "web", "8080"][..],
            "\"web\" is not NAMESPACE/POD",
        ),
        (
            &["policy", "ns/web", "70000"][..],
            "port 70000 is out of range (1-65535)",
        ),
        (
            &["policy", "ns/web", "0"][..],
            "port 0 is out of range (1-65535)",
        ),
        (
            &["policy", "ns/web", "80", "--plaintext"][..],
            "--addr <HOST:PORT>",
        ),
    ] {
        let out = weft(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // Errors: exit 1, nothing on stdout, the reason naming the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    for (args, reason) in [
        (
            vec!["policy", "ns/web", "80", "--addr", "10.0.0.1:8090", "--plaintext"],
            "--plaintext is allowed only with a loopback --addr".to_string(),
        ),
        (
            vec!["policy", "ns/web", "80", "--addr", &addr, "--plaintext"],
            format!("cannot reach the controller's policy API at {addr} (plaintext): cannot connect to {addr}"),
        ),
        (
            vec!["policy", "ns/web", "80", "--addr", "nowhere", "--plaintext"],
            "--addr \"nowhere\" is not HOST:PORT".to_string(),
        ),
    ] {
        let out = weft(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(text(&out.stderr).contains(&reason), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn endpoints_help_documents_the_forms_and_exit_codes() {
    let out = weft(&["endpoints", "--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for documented in [
        "SVC.NS:PORT",
        "SVC.NS.svc.DOMAIN:PORT",
        "--cluster-domain",
        "[default: cluster.local]",
        "--watch",
        "--addr",
        "--plaintext",
        "--trust-anchors",
        "--server-name",
        "Exit status: 0 when the endpoints were printed, 1 on any error (nothing on stdout), 2 for",
        "Example: weft endpoints web.emojivoto:80 --watch",
    ] {
        assert!(help.contains(documented), "{documented}:\n{help}");
    }
}

#[test]
fn endpoints_usage_and_connection_errors_exit_without_output() {
    // Usage errors: exit 2, the accepted forms named.
    for (args, reason) in [
        (
            &["endpoints", "web:80"][..],
            "\"web:80\" is not a Service port",
        ),
        (
            &["endpoints", "web.emojivoto"][..],
            "\"web.emojivoto\" is not a Service port (no :PORT)",
        ),
        (
            &["endpoints", "web.emojivoto:70000"][..],
            "port 70000 is out of range (1-65535)",
        ),
        (
            &["endpoints", "emojivoto/web:80"][..],
            "is not a Service port",
        ),
    ] {
        let out = weft(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(
            stderr
                .contains("expected SVC.NS:PORT (e.g. web.emojivoto:80) or SVC.NS.svc.DOMAIN:PORT"),
            "{args:?}: {stderr}"
        );
    }
    for (args, reason) in [
        (
            &["endpoints", "web.ns:80", "--cluster-domain", "Bad..domain"][..],
            "is not a DNS domain",
        ),
        (
            &["endpoints", "web.ns:80", "--plaintext"][..],
            "--addr <HOST:PORT>",
        ),
    ] {
        let out = weft(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // Errors: exit 1, nothing on stdout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    for (args, reason) in [
        (
            vec!["endpoints", "web.ns:80", "--addr", "10.0.0.1:8090", "--plaintext"],
            "--plaintext is allowed only with a loopback --addr".to_string(),
        ),
        (
            vec!["endpoints", "web.ns:80", "--addr", &addr, "--plaintext"],
            format!("cannot reach the controller's destination API at {addr} (plaintext): cannot connect to {addr}"),
        ),
    ] {
        let out = weft(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(text(&out.stderr).contains(&reason), "{args:?}: {}", text(&out.stderr));
    }
}
