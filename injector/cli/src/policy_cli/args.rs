//! The arguments of `weft policy`.

use crate::grpc_client::ConnectArgs;

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The pod, as NAMESPACE/POD
    #[arg(value_name = "NS/POD")]
    pub target: super::Target,

    /// The pod's port (1-65535)
    #[arg(value_parser = super::parse_port)]
    pub port: u16,

    /// Keep the stream open and print the policy again each time it changes (WatchPort)
    #[arg(long)]
    pub watch: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}
