//! The harness of Weft's end-to-end tests: a real kube-apiserver (from `bin/cluster`, or any
//! cluster named by `WEFT_E2E_KUBECONFIG`), the real `weft-controller` binary as a child process,
//! and webhook registrations that point the API server at it.

pub mod cluster;
pub mod controller;
pub mod extra_webhook;
pub mod gate_proxy;
pub mod mesh;
pub mod node;
pub mod pki;
pub mod resources;
pub mod suite;
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

/// Builds `bin` of `package` with cargo (a no-op when it is up to date) and returns its path, or
/// the path in the environment variable `override_var` when it is set.
pub fn cargo_binary(
    package: &str,
    bin: &str,
    override_var: &str,
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::{bail, Context};
    if let Some(path) = std::env::var_os(override_var) {
        return Ok(std::path::PathBuf::from(path));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(repo_root())
        .status()
        .with_context(|| format!("running cargo build for {bin}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {bin} failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug").join(bin);
    if !path.exists() {
        bail!("{bin} was built but is not at {}", path.display());
    }
    Ok(path)
}
