//! Weft end-to-end tests against a real kube-apiserver.
//!
//! One controller serves every test; the tests run one at a time because some of them stop the
//! API server. Run with `cargo test -p weft-e2e` (see the README); the harness starts the local
//! cluster from `bin/cluster` unless `WEFT_E2E_KUBECONFIG` names another one.

mod check;
mod identity;
mod inject;
mod optional_crds;
mod policy;
mod resilience;
mod shutdown;

use anyhow::Result;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use std::{path::PathBuf, process::ExitCode, time::Duration};
use weft_e2e::{
    cluster::Cluster,
    controller::Controller,
    resources,
    suite::{self, SuiteHarness},
    webhooks,
};

/// What every test shares: the cluster, the controller and its webhook registrations.
#[derive(Debug)]
pub struct Harness {
    pub cluster: Cluster,
    pub controller_bin: PathBuf,
    pub controller: Controller,
    pub inject_webhook: String,
    pub validate_webhook: String,
}

impl Harness {
    fn setup() -> Result<Self> {
        let cluster = Cluster::start()?;
        let controller_bin = weft_e2e::controller::build()?;
        let controller = Controller::start(&controller_bin, &cluster.kubeconfig, &[])?;
        let suffix = weft_e2e::unique_suffix();
        let harness = Self {
            inject_webhook: format!("weft-e2e-inject-{suffix}"),
            validate_webhook: format!("weft-e2e-validate-{suffix}"),
            cluster,
            controller_bin,
            controller,
        };
        block_on(async {
            let client = harness.cluster.client().await?;
            resources::install_crds(&client).await?;
            let ca = harness.controller.pki.ca_bundle();
            let addr = harness.controller.server_addr;
            webhooks::apply(
                &client,
                &webhooks::inject_configuration(&harness.inject_webhook, addr, ca.clone()),
            )
            .await?;
            webhooks::apply(
                &client,
                &webhooks::validate_configuration(&harness.validate_webhook, addr, ca),
            )
            .await?;
            harness.controller.wait_ready(Duration::from_secs(60)).await
        })?;
        Ok(harness)
    }

    fn remove_webhooks(&self) {
        let result = block_on(async {
            let client = self.cluster.client().await?;
            webhooks::delete::<MutatingWebhookConfiguration>(&client, &self.inject_webhook).await;
            webhooks::delete::<ValidatingWebhookConfiguration>(&client, &self.validate_webhook)
                .await;
            Ok(())
        });
        if let Err(error) = result {
            eprintln!("e2e: teardown could not remove the webhook registrations: {error:#}");
        }
    }
}

pub use weft_e2e::suite::block_on;

type TestFn = fn(&Harness) -> Result<()>;

impl SuiteHarness for Harness {
    fn failure_context(&self) -> String {
        self.controller.log_tail()
    }

    fn teardown(&self) {
        self.remove_webhooks();
    }
}

fn main() -> ExitCode {
    let tests: Vec<(&'static str, TestFn)> = [
        inject::TESTS,
        policy::TESTS,
        identity::TESTS,
        check::TESTS,
        resilience::TESTS,
        optional_crds::TESTS,
        shutdown::TESTS,
    ]
    .concat();
    suite::run("e2e", tests, Harness::setup)
}
