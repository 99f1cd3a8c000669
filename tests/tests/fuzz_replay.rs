//! Replays every committed fuzz input (`tests/fuzz/corpus/<target>/` and
//! `tests/fuzz/regressions/<target>/`) through its target's check, on stable and without
//! libFuzzer, so a fixed finding stays fixed. Needs no cluster. The checks live beside the code
//! they check: `weft_injector::fuzz_checks` and `weft_policy_controller::fuzz_checks` (feature
//! `fuzz-checks`).
#![allow(clippy::unwrap_used)]

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::PathBuf,
};
use weft_injector::fuzz_checks as injector_checks;
use weft_policy_controller::fuzz_checks::{self as controller_checks, Certified, CertifyInput};

/// The fuzz targets, as named in `tests/fuzz/Cargo.toml` and under `tests/fuzz/corpus/`.
const TARGETS: [&str; 6] = [
    "admission_review",
    "inject_patch",
    "cli_yaml",
    "validate",
    "workload",
    "certify",
];

/// Runs the check of `target` on `data` (the call its fuzz binary makes).
///
/// # Panics
/// When `target` is not one of [`TARGETS`], or the check fails.
fn check(target: &str, data: &[u8]) {
    match target {
        "admission_review" => injector_checks::admission_review(data),
        "inject_patch" => injector_checks::inject_patch(data),
        "cli_yaml" => injector_checks::cli_yaml(data),
        "validate" => controller_checks::validate(data),
        "workload" => controller_checks::workload(data),
        "certify" => controller_checks::certify(data),
        other => panic!("unknown fuzz target {other:?} (known: {TARGETS:?})"),
    }
}

fn fuzz_dir() -> PathBuf {
    weft_e2e::repo_root().join("tests/fuzz")
}

/// The committed inputs of `target`: its corpus and its regressions, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs every input of `target`; fails naming each input whose check panicked.
fn replay(target: &str) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus for fuzz target {target} under {}",
        fuzz_dir().display()
    );
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(target, &data)))
                .err()
                .map(|panic| format!("{}: {}", path.display(), panic_message(&*panic)))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".to_string())
}

#[test]
fn admission_review() {
    replay("admission_review");
}

#[test]
fn inject_patch() {
    replay("inject_patch");
}

#[test]
fn cli_yaml() {
    replay("cli_yaml");
}

#[test]
fn validate() {
    replay("validate");
}

#[test]
fn workload() {
    replay("workload");
}

#[test]
fn certify() {
    replay("certify");
}

/// Every target has a test above and a binary in the fuzz crate.
#[test]
fn every_target_is_replayed_and_built() {
    let this = include_str!("fuzz_replay.rs");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for target in TARGETS {
        assert!(
            this.contains(&format!("fn {target}() {{\n    replay(\"{target}\");")),
            "{target} is not replayed"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a [[bin]] of tests/fuzz/Cargo.toml"
        );
        assert!(
            fuzz_dir()
                .join(format!("fuzz_targets/{target}.rs"))
                .is_file(),
            "tests/fuzz/fuzz_targets/{target}.rs is missing"
        );
    }
}

/// The certify seeds get past the token and identity checks to a CSR that is accepted, so the
/// fuzzer starts from the deep end.
#[test]
fn certify_corpus_reaches_a_valid_csr() {
    let outcomes: Vec<Certified> = inputs("certify")
        .iter()
        .map(|path| controller_checks::certify_outcome(&std::fs::read(path).unwrap()))
        .collect();
    assert!(
        outcomes.contains(&Certified::Valid),
        "no certify seed is accepted: {outcomes:?}"
    );
}

/// Writes the certify seeds (`cargo test -p weft-e2e --test fuzz_replay -- --ignored`): Certify
/// requests whose CSRs are made by rcgen as the proxy makes them, with TokenReview answers.
#[test]
#[ignore = "rewrites tests/fuzz/corpus/certify/seed-*"]
fn write_certify_seeds() {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
    const USER: &str = "system:serviceaccount:emojivoto:web";
    const ID: &str = "web.emojivoto.serviceaccount.identity.weft.cluster.local";
    let csr = |key: &KeyPair, cn: Option<&str>, sans: Vec<SanType>| {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params.serialize_request(key).unwrap().der().to_vec()
    };
    let dns = |name: &str| SanType::DnsName(name.try_into().unwrap());
    let p256 = KeyPair::generate().unwrap();
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let status = |authenticated: bool, audience: &str, user: &str| {
        serde_json::json!({
            "authenticated": authenticated,
            "audiences": [audience],
            "user": {"username": user, "groups": ["system:serviceaccounts"]},
        })
        .to_string()
    };
    let good = status(true, weft_policy_controller::identity::AUDIENCE, USER);
    let proxy_csr = csr(&p256, Some(ID), vec![dns(ID)]);
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJhdWQiOlsiaWRlbnRpdHkubDVkLmlvIl19.c2ln";
    let seeds: Vec<(&str, String, Vec<u8>)> = vec![
        ("valid", good.clone(), proxy_csr.clone()),
        (
            "no-common-name",
            good.clone(),
            csr(&p256, None, vec![dns(ID)]),
        ),
        (
            "two-sans",
            good.clone(),
            csr(&p256, Some(ID), vec![dns(ID), dns("other.example")]),
        ),
        (
            "ip-san",
            good.clone(),
            csr(
                &p256,
                Some(ID),
                vec![SanType::IpAddress([10, 0, 0, 1].into())],
            ),
        ),
        ("p384", good.clone(), csr(&p384, Some(ID), vec![dns(ID)])),
        (
            "wrong-audience",
            status(true, "https://kubernetes.default.svc", USER),
            proxy_csr.clone(),
        ),
        (
            "not-authenticated",
            status(false, weft_policy_controller::identity::AUDIENCE, USER),
            proxy_csr.clone(),
        ),
        (
            "not-a-service-account",
            status(
                true,
                weft_policy_controller::identity::AUDIENCE,
                "kubernetes-admin",
            ),
            proxy_csr,
        ),
    ];
    let dir = fuzz_dir().join("corpus/certify");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, status, csr) in seeds {
        let input = CertifyInput {
            token: token.as_bytes(),
            identity: ID.as_bytes(),
            token_review_status: status.as_bytes(),
            csr: &csr,
        };
        let bytes = input.join();
        assert_eq!(CertifyInput::split(&bytes), input);
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}
