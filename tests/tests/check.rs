//! `weft check` against the local control plane. There is no node, so no controller Deployment
//! runs: these tests prove what can be proved without one (the CRD comparison against what the
//! API server stores, failure lines with fixes, the exit code). The check of a real chart install
//! needs the node.

use crate::Harness;
use anyhow::{ensure, Result};
use weft_e2e::weft_cli;

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "check::installed_crds_pass_and_a_missing_installation_fails",
    installed_crds_pass_and_a_missing_installation_fails,
)];

fn installed_crds_pass_and_a_missing_installation_fails(h: &Harness) -> Result<()> {
    let weft = weft_cli::build()?;
    // The harness installed the CRDs (Weft's and the Gateway API's); nothing else of a chart
    // install exists under these names.
    let name = format!("weft-e2e-check-{}", weft_e2e::unique_suffix());
    let run = weft_cli::check(
        &weft,
        &h.cluster.kubeconfig,
        &["--namespace", &name, "--fullname", &name],
    )?;
    let report = &run.stdout;
    ensure!(
        run.code == Some(1),
        "exit code {:?}, want 1:\n{report}",
        run.code
    );
    for crd in [
        "servers.policy.weft.dev",
        "serverauthorizations.policy.weft.dev",
        "authorizationpolicies.policy.weft.dev",
        "meshtlsauthentications.policy.weft.dev",
        "networkauthentications.policy.weft.dev",
    ] {
        ensure!(
            run.has_line("[ok]", &format!("CRD {crd} is installed and current")),
            "the CRD as the API server stores it must match the generated one:\n{report}"
        );
    }
    // The harness installed the Gateway API CRDs too (the pinned release, or a newer one found).
    ensure!(
        report.lines().any(|line| line.starts_with("[ok]")
            && line.contains("CRD httproutes.gateway.networking.k8s.io (Gateway API")
            && line.ends_with("is installed and serves v1")),
        "the Gateway API's HTTPRoute CRD must pass:\n{report}"
    );
    ensure!(
        !run.has_line("[warn]", "httproutes"),
        "no warning about the installed Gateway API CRD:\n{report}"
    );
    ensure!(
        run.has_line("[ok]", "connected to https://"),
        "the connection line:\n{report}"
    );
    for missing in [
        format!("MutatingWebhookConfiguration {name}-proxy-injector does not exist"),
        format!("ValidatingWebhookConfiguration {name}-policy-validator does not exist"),
        format!("Deployment {name}/{name} (the controller) does not exist"),
        format!(
            "Secret {name}/{name}-webhook-tls (the webhook's serving certificate) does not exist"
        ),
        format!("ServiceAccount {name}/{name} may not: get pods"),
    ] {
        ensure!(
            run.has_line("[FAIL]", &missing),
            "no failure line {missing:?}:\n{report}"
        );
    }
    ensure!(
        report.contains(&format!(
            "fix: helm upgrade --install weft charts/weft --namespace {name} installs it"
        )),
        "each failure has a fix:\n{report}"
    );
    Ok(())
}
