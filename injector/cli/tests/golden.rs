//! Golden fixtures: `tests/golden/<case>/` holds
//! - `input.yaml`: the manifest (one or more documents);
//! - `case.yaml` (optional): settings, see [`Case`];
//! - `expected.yaml` (the output) or `expected-error.txt` (the error), and for CLI cases `expected-report.txt`
//!   (the per-object report `weft` prints on stderr).
//!
//! Outputs are compared structurally (as JSON values), never as text. Each case runs through the CLI path
//! (`weft inject`, in process) and, for a single Pod, through the webhook path (an AdmissionReview answered by
//! `respond`, its JSON patch applied to the input); both must give the same golden. Every injected output is
//! also checked to be a fixed point (a second pass changes nothing) and to uninject back to the input.
//!
//! A missing golden fails the test. Goldens are (re)written only by an explicit command:
//!
//! ```text
//! WEFT_BLESS=1 cargo test -p weft-cli --test golden
//! ```
#![allow(clippy::unwrap_used)]

use clap::Parser;
use serde::Deserialize;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use weft_cli::cli::{execute, Cli, CliError};
use weft_injector::{
    admission::{parse_review, respond, Outcome},
    manifest::uninject_manifest,
    Injector, SkipReason,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    /// `manual` (default: `weft inject --manual`), `annotate` (`weft inject`) or `uninject` (`weft uninject`).
    #[serde(default)]
    mode: Mode,
    /// Extra proxy flags, e.g. `["--native-sidecar"]`; used by the CLI and the webhook's configuration.
    #[serde(default)]
    flags: Vec<String>,
    /// Run the CLI path (default true).
    cli: Option<bool>,
    /// Run the webhook path (default: true for a single Pod in `manual` mode).
    webhook: Option<bool>,
    /// Namespace annotations the webhook sees (default: `weft.dev/inject: enabled`); `null` means unknown.
    #[serde(default = "enabled_namespace")]
    namespace_annotations: Option<BTreeMap<String, String>>,
}

fn enabled_namespace() -> Option<BTreeMap<String, String>> {
    Some([("weft.dev/inject".to_string(), "enabled".to_string())].into())
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
enum Mode {
    #[default]
    Manual,
    Annotate,
    Uninject,
}

fn bless() -> bool {
    std::env::var_os("WEFT_BLESS").is_some_and(|v| v == "1")
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn documents(text: &str) -> Vec<Value> {
    try_documents(text).unwrap()
}

fn try_documents(text: &str) -> Result<Vec<Value>, serde_norway::Error> {
    let mut docs = Vec::new();
    for d in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(d)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// The trust anchors every case injects with (`--identity-trust-anchors-file`), a fixed test CA.
fn trust_anchors_flag() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/trust-anchors.pem");
    format!("--identity-trust-anchors-file={}", path.display())
}

fn command(case: &Case, mode: Mode) -> Cli {
    let mut argv: Vec<String> = vec!["weft".into()];
    match mode {
        Mode::Manual => argv.extend(["inject".into(), "--manual".into()]),
        Mode::Annotate => argv.push("inject".into()),
        Mode::Uninject => argv.push("uninject".into()),
    }
    if mode != Mode::Uninject {
        argv.push(trust_anchors_flag());
        argv.extend(case.flags.iter().cloned());
    }
    Cli::try_parse_from(argv).unwrap()
}

/// The result of one path: the output documents and report lines, or an error message.
type Outcomes = Result<(Vec<Value>, Vec<String>), String>;

fn run_cli(case: &Case, mode: Mode, input: &str) -> Outcomes {
    match execute(&command(case, mode).command, input) {
        Ok(processed) => Ok((documents(&processed.yaml), processed.report)),
        Err(CliError::Config(e)) => panic!("invalid flags in case.yaml: {e}"),
        Err(e) => Err(e.to_string()),
    }
}

fn injector(case: &Case) -> Injector {
    let mut argv = vec![
        "weft".to_string(),
        "inject".to_string(),
        trust_anchors_flag(),
    ];
    argv.extend(case.flags.iter().cloned());
    let Cli {
        command: weft_cli::cli::Command::Inject(args),
    } = Cli::try_parse_from(argv).unwrap()
    else {
        unreachable!("parsed an inject command")
    };
    Injector::new(args.config().unwrap())
}

/// Answers an AdmissionReview for `pod`; returns the patched pod, or the denial message.
fn run_webhook(case: &Case, pod: &Value) -> (Result<Value, String>, Outcome) {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "c0ffee00-0000-4000-8000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "golden"},
            "object": pod,
            "dryRun": false,
        }
    });
    let request = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    let reviewed = respond(
        &injector(case),
        &request,
        case.namespace_annotations.as_ref(),
    );
    let review: Value = serde_json::from_slice(&reviewed.review).unwrap();
    let response = &review["response"];
    assert_eq!(response["uid"], "c0ffee00-0000-4000-8000-000000000000");
    if response["allowed"] == false {
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].as_str().unwrap().to_string();
        return (Err(message), reviewed.outcome);
    }
    let mut patched = pod.clone();
    if let Some(encoded) = response.get("patch") {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("the patch is a base64 string"))
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
    }
    (Ok(patched), reviewed.outcome)
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_norway::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Runs one case; returns a list of failures (empty when it passes).
fn check_case(dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |msg: String| failures.push(msg);
    let input = read(&dir.join("input.yaml"))
        .unwrap_or_else(|| panic!("{}: input.yaml missing", dir.display()));
    let case: Case = match read(&dir.join("case.yaml")) {
        Some(text) => serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: case.yaml: {e}", dir.display())),
        None => serde_norway::from_str("{}").unwrap(),
    };
    // Cases about invalid YAML have no input documents.
    let input_docs = try_documents(&input).unwrap_or_default();
    let single_pod = input_docs.len() == 1 && input_docs[0]["kind"] == "Pod";
    let cli = case.cli.unwrap_or(true);
    let webhook = case
        .webhook
        .unwrap_or(single_pod && case.mode == Mode::Manual);
    assert!(cli || webhook, "{}: neither path runs", dir.display());
    assert!(
        !webhook || single_pod,
        "{}: the webhook path takes a single Pod",
        dir.display()
    );

    let expected_path = dir.join("expected.yaml");
    let error_path = dir.join("expected-error.txt");
    let report_path = dir.join("expected-report.txt");

    let cli_result = cli.then(|| run_cli(&case, case.mode, &input));
    let webhook_result = webhook.then(|| run_webhook(&case, &input_docs[0]));

    if bless() {
        let (docs, error, report) = match (&cli_result, &webhook_result) {
            (Some(Ok((docs, report))), _) => (Some(docs.clone()), None, Some(report.clone())),
            (Some(Err(e)), _) => (None, Some(e.clone()), None),
            (None, Some((Ok(pod), _))) => (Some(vec![pod.clone()]), None, None),
            (None, Some((Err(e), _))) => (None, Some(e.clone()), None),
            (None, None) => unreachable!(),
        };
        let _ = std::fs::remove_file(&expected_path);
        let _ = std::fs::remove_file(&error_path);
        let _ = std::fs::remove_file(&report_path);
        if let Some(docs) = docs {
            std::fs::write(&expected_path, to_yaml(&docs)).unwrap();
        }
        if let Some(error) = error {
            std::fs::write(&error_path, format!("{error}\n")).unwrap();
        }
        if let Some(report) = report {
            std::fs::write(&report_path, report.join("\n") + "\n").unwrap();
        }
    }

    let expected = match (read(&expected_path), read(&error_path)) {
        (Some(yaml), None) => Ok(documents(&yaml)),
        (None, Some(error)) => Err(error.trim_end().to_string()),
        (Some(_), Some(_)) => {
            fail("both expected.yaml and expected-error.txt exist".into());
            return failures;
        }
        (None, None) => {
            fail(
                "no golden (expected.yaml or expected-error.txt); write it with WEFT_BLESS=1"
                    .into(),
            );
            return failures;
        }
    };

    if let Some(result) = &cli_result {
        match (result, &expected) {
            (Ok((docs, report)), Ok(want)) => {
                if docs != want {
                    fail(format!(
                        "CLI output differs from expected.yaml:\n{}",
                        to_yaml(docs)
                    ));
                }
                match read(&report_path) {
                    None => fail("expected-report.txt missing".into()),
                    Some(want) => {
                        let want: Vec<&str> = want.lines().collect();
                        if *report != want {
                            fail(format!("CLI report {report:#?} differs from {want:#?}"));
                        }
                    }
                }
                if case.mode != Mode::Uninject {
                    check_cli_round_trip(&case, &input_docs, docs, &mut fail);
                }
            }
            (Err(got), Err(want)) if got == want => {}
            (got, want) => fail(format!("CLI gave {got:?}, expected {want:?}")),
        }
    }

    if let Some((result, outcome)) = &webhook_result {
        let pod = &input_docs[0];
        match (result, &expected) {
            (Ok(patched), Ok(want)) => {
                if want.len() != 1 || patched != &want[0] {
                    fail(format!(
                        "webhook output differs from expected.yaml:\n{}",
                        to_yaml(std::slice::from_ref(patched))
                    ));
                }
                if *outcome == Outcome::Injected {
                    let (again, outcome) = run_webhook(&case, patched);
                    if outcome != Outcome::Skipped(SkipReason::AlreadyInjected)
                        || again.as_ref() != Ok(patched)
                    {
                        fail(format!("a second webhook pass is not a no-op: {outcome:?}"));
                    }
                    let mut restored = patched.clone();
                    weft_injector::uninject::uninject(&mut restored).unwrap();
                    if &restored != pod {
                        fail(format!(
                            "uninject(webhook(x)) != x:\n{}",
                            to_yaml(&[restored])
                        ));
                    }
                } else if patched != pod {
                    fail(format!("{outcome:?} but the pod changed"));
                }
            }
            // The CLI error names the document and object; the webhook message is its tail.
            (Err(got), Err(want)) if want.ends_with(got.as_str()) => {}
            (got, want) => fail(format!("webhook gave {got:?}, expected {want:?}")),
        }
    }
    failures
}

/// For injected CLI output: a second pass changes nothing and uninject restores the input.
fn check_cli_round_trip(
    case: &Case,
    input: &[Value],
    output: &[Value],
    fail: &mut impl FnMut(String),
) {
    let output_yaml = to_yaml(output);
    match run_cli(case, case.mode, &output_yaml) {
        Ok((again, _)) if again == output => {}
        other => fail(format!(
            "a second `weft inject` pass changed the output: {other:?}"
        )),
    }
    match uninject_manifest(&output_yaml) {
        Ok(processed) => {
            let restored = documents(&processed.yaml);
            if restored != input {
                fail(format!("uninject(inject(x)) != x:\n{}", processed.yaml));
            }
        }
        Err(e) => fail(format!("uninject failed: {e}")),
    }
}

#[test]
fn golden_cases() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "only {} golden cases", dirs.len());
    let mut report = Vec::new();
    for dir in &dirs {
        let failures = check_case(dir);
        if !failures.is_empty() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            report.push(format!("== {name}\n{}", failures.join("\n")));
        }
    }
    assert!(
        report.is_empty(),
        "{} golden case(s) failed:\n{}",
        report.len(),
        report.join("\n")
    );
}
