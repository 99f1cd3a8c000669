//! The arguments of `weft endpoints`.

use crate::grpc_client::ConnectArgs;

#[derive(Debug, clap::Args)]
pub struct EndpointsArgs {
    /// The Service port, as SVC.NS:PORT (e.g. web.emojivoto:80) or SVC.NS.svc.DOMAIN:PORT
    #[arg(value_name = "SVC.NS:PORT")]
    pub target: super::ServicePort,

    /// Keep the stream open and print a line for each change of the endpoints
    #[arg(long)]
    pub watch: bool,

    /// The cluster's DNS domain, which completes SVC.NS:PORT into the path the proxy asks for
    #[arg(long, default_value = "cluster.local", value_parser = super::parse_cluster_domain)]
    pub cluster_domain: String,

    #[command(flatten)]
    pub connect: ConnectArgs,
}
