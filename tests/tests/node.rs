//! Weft end-to-end tests on a real node: kube-controller-manager, kube-scheduler, the kubelet with
//! containerd and runc, kube-proxy, and Weft installed by its Helm chart, running as a pod from an
//! image built here.
//!
//! Run with `cargo test -p weft-e2e --test node` as root (the kubelet needs it). The harness starts
//! the local cluster with its node (`bin/cluster up`) unless it runs, builds and pushes the images
//! (`bin/images`), installs `charts/weft` and waits until the controller Deployment is available.

mod node_chart;
mod node_check;
mod node_workloads;

use anyhow::{Context, Result};
use libtest_mimic::{Arguments, Failed, Trial};
use std::{future::Future, process::ExitCode, sync::Arc, time::Duration};
use weft_e2e::{
    cluster::Cluster,
    node::{self, Images},
};

#[derive(Debug)]
pub struct Harness {
    pub cluster: Cluster,
    pub images: Images,
}

impl Harness {
    fn setup() -> Result<Self> {
        let cluster = Cluster::start_with_node()?;
        eprintln!(
            "node e2e: building the images and pushing them to the node's registry (bin/images)"
        );
        let images = Images::build(&cluster)?;
        eprintln!(
            "node e2e: installing charts/weft with {}",
            images.controller
        );
        node::install_chart(&cluster, &images, &[])?;
        block_on(async {
            let client = cluster.client().await?;
            node::wait_deployment_available(
                &client,
                node::RELEASE_NAMESPACE,
                node::RELEASE,
                Duration::from_secs(120),
            )
            .await
        })?;
        Ok(Self { cluster, images })
    }

    /// The controller's logs, for a failing test's message.
    fn controller_logs(&self) -> String {
        node::kubectl(
            &self.cluster,
            &[
                "-n",
                node::RELEASE_NAMESPACE,
                "logs",
                "--tail=30",
                "--prefix",
                "-l",
                "app.kubernetes.io/component=controller",
            ],
        )
        .unwrap_or_else(|error| format!("(no controller logs: {error:#})"))
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

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // One node, one release: one test at a time (the HA test reinstalls the release).
    args.test_threads = Some(1);

    let tests: Vec<(&'static str, TestFn)> = [
        node_chart::TESTS,
        node_workloads::TESTS,
        node_check::TESTS,
        node_chart::LAST,
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
            eprintln!("node e2e: setting up the node, the images and the chart failed: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let harness = harness.clone();
            Trial::test(name, move || {
                test(&harness).map_err(|error| {
                    Failed::from(format!(
                        "{error:#}\n--- controller logs:\n{}",
                        harness.controller_logs()
                    ))
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(harness);
    conclusion.exit_code()
}
