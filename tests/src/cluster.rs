//! The Kubernetes API server the tests run against.
//!
//! By default the local cluster of `bin/cluster` is started if it is not running, and stopped
//! again at the end if the harness started it: control plane only (etcd + kube-apiserver, `up
//! --no-node`) for the API-level suite, with the node (kubelet, containerd, ...) for the node
//! suite. Set `WEFT_E2E_KUBECONFIG` to run the API-level suite against any other cluster instead;
//! tests that must stop the API server are then skipped.

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
    /// The state dir of the local cluster (`WEFT_CLUSTER_DIR`), when it is one.
    pub state_dir: Option<PathBuf>,
    started_here: bool,
}

impl Cluster {
    /// The API-level suite's cluster: `WEFT_E2E_KUBECONFIG`, or a control-plane-only local cluster
    /// in its own state dir (`WEFT_E2E_CLUSTER_DIR`, default `$TMPDIR/weft-e2e-cluster-<uid>`), so
    /// it runs next to a cluster with a node.
    pub fn start() -> Result<Self> {
        if let Some(path) = std::env::var_os("WEFT_E2E_KUBECONFIG") {
            return Ok(Self {
                kubeconfig: PathBuf::from(path),
                local: false,
                state_dir: None,
                started_here: false,
            });
        }
        let dir = std::env::var_os("WEFT_E2E_CLUSTER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_dir("weft-e2e-cluster"));
        Self::local(dir, &["up", "--no-node"])
    }

    /// The node suite's cluster: the local cluster with its node, in `WEFT_CLUSTER_DIR` (default
    /// `$TMPDIR/weft-cluster-<uid>`, the one `bin/cluster` and `bin/demo` use).
    pub fn start_with_node() -> Result<Self> {
        let dir = std::env::var_os("WEFT_CLUSTER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_dir("weft-cluster"));
        Self::local(dir, &["up"])
    }

    fn local(dir: PathBuf, up: &[&str]) -> Result<Self> {
        let was_up = cluster_cmd(&dir, &["status"]).is_ok();
        if !was_up {
            eprintln!(
                "e2e: starting the local cluster with bin/cluster {} in {} (the first run builds Kubernetes from Go modules)",
                up.join(" "),
                dir.display()
            );
            cluster_cmd(&dir, up).context("bin/cluster up failed")?;
        }
        let env = cluster_cmd(&dir, &["env"])?;
        let kubeconfig = env
            .lines()
            .find_map(|line| line.strip_prefix("export KUBECONFIG="))
            .map(|v| PathBuf::from(v.trim_matches(['"', '\''])))
            .context("bin/cluster env printed no KUBECONFIG")?;
        Ok(Self {
            kubeconfig,
            local: true,
            state_dir: Some(dir),
            started_here: !was_up && std::env::var_os("WEFT_E2E_KEEP_CLUSTER").is_none(),
        })
    }

    /// Runs `bin/cluster ARGS` against this cluster's state dir.
    pub fn command(&self, args: &[&str]) -> Result<String> {
        let dir = self
            .state_dir
            .as_deref()
            .context("not a local cluster of bin/cluster")?;
        cluster_cmd(dir, args)
    }

    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig).await
    }

    pub fn stop_apiserver(&self) -> Result<()> {
        self.require_local()?;
        self.command(&["stop-apiserver"]).map(drop)
    }

    pub fn start_apiserver(&self) -> Result<()> {
        self.require_local()?;
        self.command(&["start-apiserver"]).map(drop)
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
            if let Err(error) = self.command(&["down"]) {
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

fn default_dir(prefix: &str) -> PathBuf {
    let tmp = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    // The uid, as bin/cluster's default does, from the owner of our own /proc entry.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    tmp.join(format!("{prefix}-{uid}"))
}

fn cluster_cmd(dir: &Path, args: &[&str]) -> Result<String> {
    let script = crate::repo_root().join("bin/cluster");
    let output = Command::new(&script)
        .env("WEFT_CLUSTER_DIR", dir)
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
