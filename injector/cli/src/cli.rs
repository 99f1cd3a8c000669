//! Command-line interface of `weft`: the commands, the `inject`/`uninject` arguments and the pure step
//! from input text to output text. Each other command owns its arguments: [`crate::check::CheckArgs`],
//! [`crate::policy_cli::PolicyArgs`], [`crate::endpoints_cli::EndpointsArgs`] (with
//! [`crate::grpc_client::ConnectArgs`]). Reading files and writing to stdout/stderr happens in `src/main.rs`.

use crate::{check::CheckArgs, endpoints_cli::EndpointsArgs, policy_cli::PolicyArgs};
use weft_injector::{
    config::{ConfigError, ProxyArgs, ProxyConfig},
    manifest::{self, InjectMode, ManifestError, Processed},
    Injector,
};

/// The Weft service mesh's command line: inject and uninject manifests offline, check an
/// installation in a cluster, and print the inbound policy and the endpoints a proxy gets.
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
    /// Print the inbound policy the controller gives a pod's proxy for a port
    ///
    /// Asks the controller's gRPC API (`InboundServerPolicies`, the API the proxies use) for the
    /// policy of PORT on pod NS/POD and prints it as YAML: the Server (its labels), the protocol
    /// (detect with its timeout, http1, http2, grpc, opaque or tls) with its routes, and each
    /// authorization with its networks and authentication. With --watch, prints a YAML document
    /// (after `---`) for the current policy and one more each time it changes, until the stream
    /// ends or Ctrl-C.
    ///
    /// Without --addr, finds the installation as `weft check` does (--namespace, --release),
    /// port-forwards to a ready controller pod and speaks TLS, verifying the controller's
    /// certificate against the mesh's trust anchors (ConfigMap <fullname>-identity-trust-anchors)
    /// for its identity (from the Deployment's --service-account, --control-plane-namespace and
    /// --identity-trust-domain). With --addr, dials that address instead; --trust-anchors and
    /// --server-name then spare the cluster lookups.
    ///
    /// Exit status: 0 when the policy was printed, 1 on any error (nothing on stdout), 2 for a
    /// usage error (a malformed NS/POD, a port out of range).
    ///
    /// Example: weft policy emojivoto/web-5d8f7c-x2x9k 8080 --watch
    Policy(Box<PolicyArgs>),
    /// Print the endpoints a meshed proxy would resolve for a Service port
    ///
    /// Asks the controller's Destination API (`Destination/Get`, the API the proxies use) for
    /// SVC.NS:PORT, as `linkerd diagnostics endpoints` does, and prints one line per endpoint,
    /// sorted by address: ADDRESS, POD, SERVICEACCOUNT, IDENTITY (the TLS identity the proxy
    /// requires; `- (not meshed)` when the endpoint has none) and HINT (h2 or opaque). Absent
    /// values are `-`. When there are none, says whether the Service exists. With --watch, prints
    /// the current endpoints, then one line per change (`+ ADDRESS ...` for a new or changed
    /// endpoint, `- ADDRESS` for a removed one) until the stream ends or Ctrl-C.
    ///
    /// The argument is SVC.NS:PORT (the path asked for is SVC.NS.svc.<--cluster-domain>:PORT)
    /// or a full authority SVC.NS.svc.DOMAIN:PORT (asked for as is).
    ///
    /// Connects as `weft policy` does: without --addr, port-forwards to a ready controller pod
    /// of the installation (--namespace, --release) and speaks TLS verified against the mesh's
    /// trust anchors for the controller's identity; with --addr, dials that address instead
    /// (--trust-anchors and --server-name spare the cluster lookups; --plaintext only on
    /// loopback).
    ///
    /// Exit status: 0 when the endpoints were printed, 1 on any error (nothing on stdout), 2 for
    /// a usage error (an argument of neither form, a port out of range).
    ///
    /// Example: weft endpoints web.emojivoto:80 --watch
    Endpoints(Box<EndpointsArgs>),
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

    #[command(flatten)]
    pub proxy: ProxyArgs,
}

impl InjectArgs {
    /// The proxy configuration: the flags `weft-controller` takes too ([`ProxyArgs::load`], which
    /// reads the trust anchors file).
    pub fn config(&self) -> Result<ProxyConfig, ConfigError> {
        self.proxy.load()
    }
}

#[derive(Debug, clap::Args)]
pub struct UninjectArgs {
    /// Manifest file to read; `-` reads stdin
    #[arg(short = 'f', long = "file", default_value = "-")]
    pub file: String,
}

impl Command {
    /// The manifest file the command reads (`-` for stdin); `None` for the commands that read none.
    pub fn file(&self) -> Option<&str> {
        match self {
            Command::Inject(args) => Some(&args.file),
            Command::Uninject(args) => Some(&args.file),
            Command::Check(_) | Command::Policy(_) | Command::Endpoints(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("`weft check`, `weft policy` and `weft endpoints` read no manifest: run them with weft_cli::check::fetch::run, weft_cli::policy_cli::client::run and weft_cli::endpoints_cli::client::run")]
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
        Command::Check(_) | Command::Policy(_) | Command::Endpoints(_) => {
            Err(CliError::NotAManifestCommand)
        }
    }
}
