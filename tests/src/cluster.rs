//! The Kubernetes API server the tests run against.
//!
//! By default the local cluster of `bin/cluster` (etcd + kube-apiserver built from Go modules) is
//! started if it is not running, and stopped again at the end if the harness started it. Set
//! `WEFT_E2E_KUBECONFIG` to run the suite against any other cluster instead; tests that must stop
//! the API server are then skipped.

use anyhow::{bail, Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

#[derive(Debug)]
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// True when the API server is ours to stop and start (the local cluster of `bin/cluster`).
    pub local: bool,
    started_here: bool,
}

impl Cluster {
    pub fn start() -> Result<Self> {
        if let Some(path) = std::env::var_os("WEFT_E2E_KUBECONFIG") {
            return Ok(Self {
                kubeconfig: PathBuf::from(path),
                local: false,
                started_here: false,
            });
        }
        let was_up = cluster_cmd(&["status"]).is_ok();
        if !was_up {
            eprintln!("e2e: starting the local cluster with bin/cluster up (the first run builds kube-apiserver and etcd from Go modules)");
            cluster_cmd(&["up"]).context("bin/cluster up failed")?;
        }
        let env = cluster_cmd(&["env"])?;
        let kubeconfig = env
            .lines()
            .find_map(|line| line.strip_prefix("export KUBECONFIG="))
            .map(|v| PathBuf::from(v.trim_matches(['"', '\''])))
            .context("bin/cluster env printed no KUBECONFIG")?;
        Ok(Self {
            kubeconfig,
            local: true,
            started_here: !was_up && std::env::var_os("WEFT_E2E_KEEP_CLUSTER").is_none(),
        })
    }

    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig).await
    }

    pub fn stop_apiserver(&self) -> Result<()> {
        self.require_local()?;
        cluster_cmd(&["stop-apiserver"]).map(drop)
    }

    pub fn start_apiserver(&self) -> Result<()> {
        self.require_local()?;
        cluster_cmd(&["start-apiserver"]).map(drop)
    }

    fn require_local(&self) -> Result<()> {
        if !self.local {
            bail!("only the local cluster of bin/cluster can be stopped and started by the tests");
        }
        Ok(())
    }

    /// Writes a copy of the kubeconfig whose API server address is `addr` (a proxy in front of
    /// the real one). The API server's certificate is for 127.0.0.1, so a proxy there still
    /// verifies.
    pub fn kubeconfig_via(&self, addr: SocketAddr, dir: &Path) -> Result<PathBuf> {
        let mut config = Kubeconfig::read_from(&self.kubeconfig)?;
        for cluster in &mut config.clusters {
            if let Some(cluster) = cluster.cluster.as_mut() {
                cluster.server = Some(format!("https://{addr}"));
            }
        }
        let path = dir.join("kubeconfig-via-proxy");
        // JSON is YAML, and every kubeconfig reader accepts it.
        std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
        Ok(path)
    }

    /// The address of the API server in the kubeconfig's current context.
    pub fn apiserver_addr(&self) -> Result<SocketAddr> {
        let config = Kubeconfig::read_from(&self.kubeconfig)?;
        let server = config
            .clusters
            .iter()
            .find_map(|c| c.cluster.as_ref()?.server.clone())
            .context("the kubeconfig names no server")?;
        let hostport = server
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        hostport
            .parse()
            .with_context(|| format!("the API server address {server} is not IP:port"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started_here {
            eprintln!("e2e: stopping the local cluster this run started (keep it with WEFT_E2E_KEEP_CLUSTER=1)");
            if let Err(error) = cluster_cmd(&["down"]) {
                eprintln!("e2e: bin/cluster down failed: {error:#}");
            }
        }
    }
}

pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client> {
    let config = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

fn cluster_cmd(args: &[&str]) -> Result<String> {
    let script = crate::repo_root().join("bin/cluster");
    let output = Command::new(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "bin/cluster {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
