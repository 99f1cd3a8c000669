//! `weft check` against the chart installed on the node: every check passes, and a broken
//! installation (a CRD removed, a wrong caBundle) fails with the line that names it and exit 1.

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::{
    api::admissionregistration::v1::MutatingWebhookConfiguration,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use std::time::Duration;
use weft_e2e::{node, resources, weft_cli};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "check::chart_install_passes_every_check",
        chart_install_passes_every_check,
    ),
    (
        "check::removed_crd_and_wrong_ca_bundle_fail_with_a_fix",
        removed_crd_and_wrong_ca_bundle_fail_with_a_fix,
    ),
];

fn chart_install_passes_every_check(h: &Harness) -> Result<()> {
    block_on(node::ensure_gateway_api_watched(&h.cluster))?;
    let weft = weft_cli::build()?;
    let run = weft_cli::check(&weft, &h.cluster.kubeconfig, &[])?;
    let report = &run.stdout;
    ensure!(
        run.code == Some(0),
        "exit code {:?}, want 0:\n{report}",
        run.code
    );
    ensure!(
        !report.lines().any(|l| l.starts_with("[FAIL]")),
        "a check failed:\n{report}"
    );
    ensure!(
        !run.has_line("[warn]", "httproutes"),
        "the Gateway API CRD must not warn:\n{report}"
    );
    for what in [
        "CRD servers.policy.weft.dev",
        "CRD serverauthorizations.policy.weft.dev",
        "CRD authorizationpolicies.policy.weft.dev",
        "CRD meshtlsauthentications.policy.weft.dev",
        "CRD networkauthentications.policy.weft.dev",
        // Installed by node::ensure_gateway_api_watched (a prerequisite the chart lacks).
        "CRD httproutes.gateway.networking.k8s.io (Gateway API",
        "weft-proxy-injector",
        "weft-policy-validator",
        "Deployment weft/weft",
    ] {
        ensure!(
            run.has_line("[ok]", what),
            "no [ok] line for {what}:\n{report}"
        );
    }
    Ok(())
}

fn removed_crd_and_wrong_ca_bundle_fail_with_a_fix(h: &Harness) -> Result<()> {
    let weft = weft_cli::build()?;
    let result = block_on(async {
        let client = h.cluster.client().await?;

        // A caBundle that does not verify the serving certificate.
        let webhooks = Api::<MutatingWebhookConfiguration>::all(client.clone());
        let original = webhooks.get("weft-proxy-injector").await?;
        let other_ca = weft_e2e::pki::Pki::generate("not-weft")?.ca_bundle();
        let mut broken = original.webhooks.clone().context("no webhooks")?;
        for webhook in &mut broken {
            webhook.client_config.ca_bundle = Some(other_ca.clone());
        }
        webhooks
            .patch(
                "weft-proxy-injector",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "webhooks": broken })),
            )
            .await?;
        let run = weft_cli::check(&weft, &h.cluster.kubeconfig, &[])?;
        // Put it back before asserting: later tests need a working webhook.
        webhooks
            .patch(
                "weft-proxy-injector",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "webhooks": original.webhooks })),
            )
            .await?;
        ensure!(
            run.code == Some(1),
            "exit code {:?} with a wrong caBundle:\n{}",
            run.code,
            run.stdout
        );
        ensure!(
            run.has_line("[FAIL]", "proxy-injector.weft.dev: the serving certificate"),
            "no failure line for the wrong caBundle:\n{}",
            run.stdout
        );
        ensure!(run.stdout.contains("fix:"), "no fix given:\n{}", run.stdout);

        // A CRD removed.
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        crds.delete(
            "serverauthorizations.policy.weft.dev",
            &DeleteParams::default(),
        )
        .await?;
        node::wait_for("the CRD to be gone", Duration::from_secs(30), || async {
            Ok(crds
                .get_opt("serverauthorizations.policy.weft.dev")
                .await?
                .is_none()
                .then_some(()))
        })
        .await?;
        let run = weft_cli::check(&weft, &h.cluster.kubeconfig, &[])?;
        ensure!(
            run.code == Some(1),
            "exit code {:?} without a CRD:\n{}",
            run.code,
            run.stdout
        );
        ensure!(
            run.has_line("[FAIL]", "serverauthorizations.policy.weft.dev"),
            "no failure line for the removed CRD:\n{}",
            run.stdout
        );
        Ok(())
    });
    // The CRDs back, whatever happened.
    let restored = block_on(async { resources::install_crds(&h.cluster.client().await?).await });
    result.and(restored)
}
