//! The real `weft` CLI binary, for `weft check` against the test cluster and `weft policy`
//! against the test controller.

use anyhow::{Context, Result};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Builds `weft` (a no-op when it is up to date) and returns its path.
pub fn build() -> Result<PathBuf> {
    crate::cargo_binary("weft-cli", "weft", "WEFT_CLI_BIN")
}

/// What `weft check` printed, and its exit code.
#[derive(Debug)]
pub struct CheckRun {
    pub code: Option<i32>,
    pub stdout: String,
}

impl CheckRun {
    /// Whether a line of the report starts with `mark` (`[ok]`, `[warn]`, `[FAIL]`) and contains
    /// `text`.
    pub fn has_line(&self, mark: &str, text: &str) -> bool {
        self.stdout
            .lines()
            .any(|line| line.starts_with(mark) && line.contains(text))
    }
}

/// Runs `weft check --kubeconfig <kubeconfig> <args>`.
pub fn check(binary: &Path, kubeconfig: &Path, args: &[&str]) -> Result<CheckRun> {
    let output = Command::new(binary)
        .arg("check")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .with_context(|| format!("running {} check", binary.display()))?;
    Ok(CheckRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

/// What a `weft` command printed, and its exit code.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `weft policy <args>`.
pub fn policy(binary: &Path, args: &[&str]) -> Result<Run> {
    run(binary, "policy", args)
}

/// Runs `weft endpoints <args>`.
pub fn endpoints(binary: &Path, args: &[&str]) -> Result<Run> {
    run(binary, "endpoints", args)
}

fn run(binary: &Path, command: &str, args: &[&str]) -> Result<Run> {
    let output = Command::new(binary)
        .arg(command)
        .args(args)
        .output()
        .with_context(|| format!("running {} {command}", binary.display()))?;
    Ok(Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
