//! The harness of Weft's end-to-end tests: a real kube-apiserver (from `bin/cluster`, or any
//! cluster named by `WEFT_E2E_KUBECONFIG`), the real `weft-controller` binary as a child process,
//! and webhook registrations that point the API server at it.

pub mod cluster;
pub mod controller;
pub mod extra_webhook;
pub mod gate_proxy;
pub mod node;
pub mod pki;
pub mod resources;
pub mod webhooks;
pub mod weft_cli;

/// The repository root (the parent of this crate).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives one level below the repository root")
        .to_path_buf()
}

/// A short random suffix for names that must not collide across runs on a reused cluster.
pub fn unique_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(7))
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id() & 0xfff)
}
