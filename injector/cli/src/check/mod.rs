//! `weft check`: checks a Weft installation in a cluster, like `linkerd check`.
//!
//! The checks themselves are pure functions from the objects read from the API server to
//! [`Check`] lines (`crds`, `webhooks`, `certs`, `workload`, `rbac`), so they are tested with
//! small fixtures; [`fetch`] is the thin async layer that reads the objects and runs them. This is
//! the only part of the crate that does I/O.

mod args;
pub mod certs;
pub mod crds;
pub mod fetch;
pub mod linkerd;
pub mod linkerd_fetch;
pub mod rbac;
pub mod webhooks;
pub mod workload;

pub use self::args::{CheckArgs, ClusterArgs};
use std::fmt::Write as _;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Worth knowing, but the installation works; does not fail `weft check`.
    Warn,
    Fail,
}

/// One line of the report: what was checked and, when it is not fine, how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// A titled group of checks, printed together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub title: &'static str,
    pub checks: Vec<Check>,
}

/// An object read from the API server, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Fetched<T> {
    Found(T),
    /// The API server answered 404.
    NotFound,
    /// The request failed otherwise (forbidden, unreachable, ...): the message says why.
    Failed(String),
}

impl<T> Fetched<T> {
    /// The found object mapped with `f`; `NotFound` and `Failed` stay as they are.
    pub fn map<'a, U>(&'a self, f: impl FnOnce(&'a T) -> U) -> Fetched<U> {
        match self {
            Fetched::Found(t) => Fetched::Found(f(t)),
            Fetched::NotFound => Fetched::NotFound,
            Fetched::Failed(e) => Fetched::Failed(e.clone()),
        }
    }
}

/// The names of an installation's objects, derived from the Helm release as the chart's
/// `_helpers.tpl` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    pub namespace: String,
    /// `weft.fullname`: the prefix of every object name.
    pub fullname: String,
    /// The Helm release name, for the fix texts.
    pub release: String,
}

/// The chart's name (`charts/weft/Chart.yaml`).
const CHART_NAME: &str = "weft";

impl Installation {
    /// `fullname_override` is the chart's `fullnameOverride` value, if the installation set one.
    pub fn new(namespace: &str, release: &str, fullname_override: Option<&str>) -> Self {
        // weft.fullname: the override, else the release name when it contains the chart name,
        // else "<release>-<chart>"; truncated to 63 characters without a trailing '-'.
        let fullname = match fullname_override {
            Some(name) if !name.is_empty() => name.to_string(),
            _ if release.contains(CHART_NAME) => release.to_string(),
            _ => format!("{release}-{CHART_NAME}"),
        };
        let fullname: String = fullname.chars().take(63).collect();
        Self {
            namespace: namespace.to_string(),
            fullname: fullname.trim_end_matches('-').to_string(),
            release: release.to_string(),
        }
    }

    /// The controller's Deployment, Service, ServiceAccount and ClusterRole share this name.
    pub fn deployment(&self) -> &str {
        &self.fullname
    }

    pub fn service_account(&self) -> &str {
        &self.fullname
    }

    /// `weft.tlsSecretName`: the webhook serving certificate (`tls.crt`, `tls.key`, `ca.crt`).
    pub fn tls_secret(&self) -> String {
        format!("{}-webhook-tls", self.fullname)
    }

    /// `weft.trustAnchorsConfigMapName`: the mesh's trust anchors (key `ca-bundle.crt`).
    pub fn trust_anchors_config_map(&self) -> String {
        format!("{}-identity-trust-anchors", self.fullname)
    }

    pub fn mutating_webhook(&self) -> String {
        format!("{}-proxy-injector", self.fullname)
    }

    pub fn validating_webhook(&self) -> String {
        format!("{}-policy-validator", self.fullname)
    }

    /// The command that reinstalls the chart, for fix texts.
    pub fn helm_upgrade(&self) -> String {
        format!(
            "helm upgrade --install {} charts/weft --namespace {}",
            self.release, self.namespace
        )
    }
}

/// Renders the report: a title per group, then one line per check, with the fix under each
/// check that is not ok, and a summary line.
pub fn render(groups: &[Group]) -> String {
    let mut out = String::new();
    for group in groups {
        let _ = writeln!(out, "{}", group.title);
        let _ = writeln!(out, "{}", "-".repeat(group.title.chars().count()));
        for check in &group.checks {
            let mark = match check.status {
                Status::Ok => "[ok]  ",
                Status::Warn => "[warn]",
                Status::Fail => "[FAIL]",
            };
            let _ = writeln!(out, "{mark} {}", check.message);
            if let Some(fix) = &check.fix {
                let _ = writeln!(out, "       fix: {fix}");
            }
        }
        out.push('\n');
    }
    let count = |status| {
        groups
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| c.status == status)
            .count()
    };
    let (failed, warned) = (count(Status::Fail), count(Status::Warn));
    let _ = match (failed, warned) {
        (0, 0) => writeln!(out, "Status: all checks passed"),
        (0, w) => writeln!(out, "Status: all checks passed, {w} warning(s)"),
        (f, w) => writeln!(out, "Status: {f} check(s) failed, {w} warning(s)"),
    };
    out
}

/// The exit code of `weft check`: 1 when any check failed, else 0 (warnings do not fail).
pub fn exit_code(groups: &[Group]) -> u8 {
    let failed = groups
        .iter()
        .flat_map(|g| &g.checks)
        .any(|c| c.status == Status::Fail);
    u8::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_charts_helpers() {
        let default = Installation::new("weft", "weft", None);
        assert_eq!(default.fullname, "weft");
        assert_eq!(default.tls_secret(), "weft-webhook-tls");
        assert_eq!(default.mutating_webhook(), "weft-proxy-injector");
        assert_eq!(default.validating_webhook(), "weft-policy-validator");
        assert_eq!(
            default.trust_anchors_config_map(),
            "weft-identity-trust-anchors"
        );
        assert_eq!(Installation::new("ns", "mesh", None).fullname, "mesh-weft");
        assert_eq!(Installation::new("ns", "my-weft", None).fullname, "my-weft");
        assert_eq!(Installation::new("ns", "mesh", Some("x")).fullname, "x");
        assert_eq!(
            Installation::new("ns", "mesh", Some("")).fullname,
            "mesh-weft"
        );
        // "<62 a>-weft" is cut to 63 characters, and the trailing '-' goes.
        let long = "a".repeat(62);
        assert_eq!(Installation::new("ns", &long, None).fullname, long);
    }

    #[test]
    fn report_marks_each_line_and_fails_only_on_failures() {
        let groups = vec![Group {
            title: "Things",
            checks: vec![
                Check::ok("fine"),
                Check::warn("soon", "renew it"),
                Check::fail("broken", "repair it"),
            ],
        }];
        assert_eq!(
            render(&groups),
            "Things\n------\n[ok]   fine\n[warn] soon\n       fix: renew it\n[FAIL] broken\n       \
             fix: repair it\n\nStatus: 1 check(s) failed, 1 warning(s)\n"
        );
        assert_eq!(exit_code(&groups), 1);

        let warned = vec![Group {
            title: "Things",
            checks: vec![Check::ok("fine"), Check::warn("soon", "renew it")],
        }];
        assert_eq!(exit_code(&warned), 0);
        assert!(render(&warned).ends_with("Status: all checks passed, 1 warning(s)\n"));
    }
}
