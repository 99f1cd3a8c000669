//! Command-line interface of `weft`: argument definitions and the pure step from input text to output text.
//! Reading files and writing to stdout/stderr happens in `src/bin/weft.rs`; `weft check` runs in
//! [`crate::check`].

use crate::{
    config::{ConfigError, ProxyArgs, ProxyConfig, DEFAULT_CLUSTER_NETWORKS},
    decision::Injector,
    manifest::{self, InjectMode, ManifestError, Processed},
    values,
};

/// The Weft service mesh's command line: inject and uninject manifests offline, and check an
/// installation in a cluster.
#[derive(Debug, clap::Parser)]
#[command(name = "weft", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mark workloads for injection (or, with --manual, add the Weft proxy now). Reads multi-document YAML and
    /// writes it to stdout; a report per object goes to stderr.
    Inject(Box<InjectArgs>),
    /// Remove what injection added. Reads multi-document YAML and writes it to stdout.
    Uninject(UninjectArgs),
    /// Check a Weft installation in the cluster of the current kubeconfig
    ///
    /// Checks the policy CRDs (installed and current), the webhook configurations and that their
    /// caBundle verifies the serving certificate, the controller Deployment (Available, all
    /// replicas ready), the certificate's expiry (a warning under 30 days) and the RBAC the
    /// controller needs. Prints one line per check, [ok], [warn] or [FAIL], with a fix under each
    /// problem.
    ///
    /// Exit status: 0 when no check failed (warnings do not fail), 1 when one did or the cluster
    /// cannot be reached, 2 for a usage error.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Kubeconfig file to use (default: $KUBECONFIG, else ~/.kube/config, else the in-cluster
    /// service account)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// Kubeconfig context to use (default: the current context)
    #[arg(long)]
    pub context: Option<String>,

    /// Namespace Weft is installed in
    #[arg(short = 'n', long, default_value = "weft")]
    pub namespace: String,

    /// Helm release name of the installation; object names derive from it as the chart's do
    /// (release `weft` -> `weft`, `weft-proxy-injector`, ...; release `mesh` -> `mesh-weft`, ...)
    #[arg(long, default_value = "weft")]
    pub release: String,

    /// The chart's `fullnameOverride`, if the installation set one: the prefix of every object
    /// name (wins over --release)
    #[arg(long, value_name = "NAME")]
    pub fullname: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// Add the proxy containers now, exactly as the webhook would (the namespace counts as enabled), instead of
    /// only adding the `weft.dev/inject: enabled` annotation
    #[arg(long)]
    pub manual: bool,

    /// Manifest file to read; `-` reads stdin
    #[arg(short = 'f', long = "file", default_value = "-")]
    pub file: String,

    /// Inbound policy of ports that no Server describes (the controller's --default-policy):
    /// all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated or deny
    #[arg(long, default_value = "all-unauthenticated")]
    pub default_policy: String,

    /// The cluster's pod and node networks, comma-separated CIDRs (the controller's --cluster-networks)
    #[arg(long, default_value = DEFAULT_CLUSTER_NETWORKS)]
    pub cluster_networks: String,

    #[command(flatten)]
    pub proxy: ProxyArgs,
}

impl InjectArgs {
    /// The proxy configuration: the proxy flags ([`ProxyArgs::load`], which reads the trust anchors file)
    /// and the two flags `weft-controller` shares with its policy index.
    pub fn config(&self) -> Result<ProxyConfig, ConfigError> {
        let mut config = self.proxy.load()?;
        config.default_inbound_policy = values::parse_inbound_policy(&self.default_policy)
            .map_err(|invalid| ConfigError {
                flag: "default-policy",
                invalid,
            })?;
        config.cluster_networks =
            values::parse_networks(&self.cluster_networks).map_err(|invalid| ConfigError {
                flag: "cluster-networks",
                invalid,
            })?;
        Ok(config)
    }
}

#[derive(Debug, clap::Args)]
pub struct UninjectArgs {
    /// Manifest file to read; `-` reads stdin
    #[arg(short = 'f', long = "file", default_value = "-")]
    pub file: String,
}

impl Command {
    /// The manifest file the command reads (`-` for stdin); `None` for `check`, which reads none.
    pub fn file(&self) -> Option<&str> {
        match self {
            Command::Inject(args) => Some(&args.file),
            Command::Uninject(args) => Some(&args.file),
            Command::Check(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("`weft check` reads no manifest: run it with weft_injector::check::fetch::run")]
    NotAManifestCommand,
    #[error("--identity-trust-anchors-file is required with --manual: the injected proxy cannot start without the mesh's trust anchors (PEM CA certificates; the chart keeps them in the ConfigMap <release>-identity-trust-anchors)")]
    NoTrustAnchors,
}

/// Runs a manifest command (`inject`, `uninject`) on the input text; nothing is written anywhere (the only
/// file read is the trust anchors file a flag names).
pub fn execute(command: &Command, input: &str) -> Result<Processed, CliError> {
    match command {
        Command::Inject(args) => {
            let config = args.config()?;
            if args.manual && config.trust_anchors.is_none() {
                return Err(CliError::NoTrustAnchors);
            }
            let injector = Injector::new(config);
            let mode = if args.manual {
                InjectMode::Manual
            } else {
                InjectMode::Annotate
            };
            Ok(manifest::inject(input, &injector, mode)?)
        }
        Command::Uninject(_) => Ok(manifest::uninject_manifest(input)?),
        Command::Check(_) => Err(CliError::NotAManifestCommand),
    }
}
