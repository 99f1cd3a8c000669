//! The shared admission corpus (`../shared/admission-corpus/` from the workspace root), loaded for the
//! benchmarks. Every request is answered as if its namespace had `weft.dev/inject: enabled`, as in a cluster
//! where the corpus namespaces opted in.

use std::{collections::BTreeMap, path::PathBuf};
use weft_injector::{admission, config::ProxyConfig, Injector};

pub struct Case {
    /// The file name without `.json`, e.g. `03-web-deployment`.
    pub name: String,
    pub body: Vec<u8>,
}

pub fn dir() -> PathBuf {
    std::env::var_os("WEFT_ADMISSION_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/admission-corpus")
        })
}

/// Every corpus request, in file-name order. Panics with the directory when the corpus is missing: a
/// benchmark without its inputs must not report anything.
pub fn load() -> Vec<Case> {
    let dir = dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the admission corpus at {} is not readable ({e}); set WEFT_ADMISSION_CORPUS",
            dir.display()
        )
    });
    let mut cases: Vec<Case> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "json")
                && path.file_name().is_some_and(|n| n != "index.json")
        })
        .map(|path| Case {
            name: path
                .file_stem()
                .expect("a .json file has a stem")
                .to_string_lossy()
                .into_owned(),
            body: std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{} is not readable: {e}", path.display())),
        })
        .collect();
    assert!(!cases.is_empty(), "no requests in {}", dir.display());
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

pub fn enabled_namespace() -> BTreeMap<String, String> {
    [("weft.dev/inject".to_string(), "enabled".to_string())].into()
}

pub fn injector() -> Injector {
    Injector::new(ProxyConfig::default())
}

/// What the webhook does per request, minus HTTP: parse, decide, build the patch, serialize the answer.
/// Returns the length of the answer so the work cannot be optimized away.
pub fn answer(injector: &Injector, body: &[u8], namespace: &BTreeMap<String, String>) -> usize {
    let request = admission::parse_review(body).expect("every corpus body is an AdmissionReview");
    match admission::first_look(injector, request) {
        admission::FirstLook::Answered(reviewed) => reviewed.review.len(),
        admission::FirstLook::NeedsNamespace(pending) => {
            pending.respond(injector, Some(namespace)).review.len()
        }
    }
}
