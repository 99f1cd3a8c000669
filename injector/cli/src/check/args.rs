//! The arguments of `weft check`, and which installation a command looks at ([`ClusterArgs`],
//! shared with `weft policy` and `weft endpoints` through [`crate::grpc_client::ConnectArgs`]).

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Instead of checking a Weft installation, list what in this cluster (which runs Linkerd)
    /// Weft would serve differently: pods its webhook would refuse or configure otherwise,
    /// annotations it ignores, and Linkerd resources it does not read. Exits 1 when switching
    /// would change who may connect or which pods are created
    #[arg(long)]
    pub linkerd: bool,
}

/// Which cluster, and which Weft installation in it: shared by `weft check` and `weft policy`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
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

impl ClusterArgs {
    /// The names of the installation's objects.
    pub fn installation(&self) -> super::Installation {
        super::Installation::new(&self.namespace, &self.release, self.fullname.as_deref())
    }
}
