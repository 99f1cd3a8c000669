//! Weft end-to-end tests on a real node: kube-controller-manager, kube-scheduler, the kubelet with
//! containerd and runc, kube-proxy, and Weft installed by its Helm chart, running as a pod from an
//! image built here.
//!
//! Run with `cargo test -p weft-e2e --test node` as root (the kubelet needs it). The harness starts
//! the local cluster with its node (`bin/cluster up`) unless it runs, builds and pushes the images
//! (`bin/images`), installs `charts/weft` (without the Gateway API CRDs, which the tests that need
//! them install) and waits until the controller Deployment is available.

mod node_chart;
mod node_check;
mod node_linkerd;
mod node_mesh;
mod node_mtls;
mod node_opaque;
mod node_restart;
mod node_routes;
mod node_workloads;

use anyhow::Result;
use std::{process::ExitCode, time::Duration};
use weft_e2e::{
    cluster::Cluster,
    node::{self, Images},
    suite::{self, SuiteHarness},
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
        // First without the Gateway API CRDs, as on many clusters: `helm install --wait` must
        // succeed (chart::installs_and_meshes_without_the_gateway_api_crds); the tests that
        // need HTTPRoutes install them (node::ensure_gateway_api_watched).
        block_on(async {
            weft_e2e::resources::delete_gateway_api_crds(&cluster.client().await?).await
        })?;
        eprintln!(
            "node e2e: installing charts/weft with {}, without the Gateway API CRDs",
            images.controller
        );
        node::install_chart_only(&cluster, &images, &[])?;
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

pub use weft_e2e::suite::block_on;

type TestFn = fn(&Harness) -> Result<()>;

impl SuiteHarness for Harness {
    fn failure_context(&self) -> String {
        format!("--- controller logs:\n{}", self.controller_logs())
    }
}

fn main() -> ExitCode {
    let tests: Vec<(&'static str, TestFn)> = [
        node_chart::TESTS,
        node_workloads::TESTS,
        node_check::TESTS,
        node_mesh::TESTS,
        node_mtls::TESTS,
        node_opaque::TESTS,
        node_linkerd::TESTS,
        node_routes::TESTS,
        node_chart::LAST,
        node_restart::TESTS,
    ]
    .concat();
    suite::run("node e2e", tests, Harness::setup)
}
