//! Weft end-to-end tests against a real kube-apiserver.
//!
//! One controller serves every test; the tests run one at a time because some of them stop the
//! API server. Run with `cargo test -p weft-e2e` (see the README); the harness starts the local
//! cluster from `bin/cluster` unless `WEFT_E2E_KUBECONFIG` names another one.

mod check;
mod inject;
mod policy;
mod resilience;
mod shutdown;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::{future::Future, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};
use weft_e2e::{cluster::Cluster, controller::Controller, resources, webhooks};

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

    fn teardown(&self) {
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

pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building a tokio runtime")?
        .block_on(future)
}

type TestFn = fn(&Harness) -> Result<()>;

fn trial(harness: &Arc<Harness>, name: &'static str, test: TestFn) -> Trial {
    let harness = harness.clone();
    Trial::test(name, move || {
        test(&harness)
            .map_err(|error| Failed::from(format!("{error:#}\n{}", harness.controller.log_tail())))
    })
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Some tests stop the API server: run the tests one at a time.
    args.test_threads = Some(1);

    let tests: Vec<(&'static str, TestFn)> = [
        inject::TESTS,
        policy::TESTS,
        check::TESTS,
        resilience::TESTS,
        shutdown::TESTS,
    ]
    .concat();
    if args.list {
        let trials = tests
            .into_iter()
            .map(|(name, _)| Trial::test(name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let harness = match Harness::setup() {
        Ok(harness) => Arc::new(harness),
        Err(error) => {
            eprintln!("e2e: setting up the cluster and the controller failed: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let trials = tests
        .into_iter()
        .map(|(name, test)| trial(&harness, name, test))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    harness.teardown();
    drop(harness);
    conclusion.exit_code()
}
