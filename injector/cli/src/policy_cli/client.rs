//! The I/O of `weft policy`: connects to the controller's gRPC API ([`crate::grpc_client`]) and
//! calls `GetPort` or `WatchPort`.

use super::PolicyArgs;
use super::{describe_status, render, Target};
use crate::grpc_client::{connection, REQUEST_TIMEOUT};
use anyhow::{anyhow, Result};
use linkerd2_proxy_api::inbound::{
    inbound_server_policies_client::InboundServerPoliciesClient, PortSpec,
};

pub use crate::grpc_client::tls_config;

/// Runs `weft policy`: each policy message is given to `print` as a YAML document (with
/// `--watch`, every message until the stream ends or Ctrl-C).
pub async fn run(args: &PolicyArgs, mut print: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let connection = connection(&args.connect).await?;
    let channel = connection.channel("policy API").await?;
    let mut client = InboundServerPoliciesClient::new(channel);
    let target: &Target = &args.target;
    let spec = PortSpec {
        workload: target.workload(),
        port: u32::from(args.port),
    };
    let refused = |status: tonic::Status| {
        anyhow!(
            "{} (controller at {})",
            describe_status(&status, target, args.port),
            connection.describe()
        )
    };

    if !args.watch {
        let response = tokio::time::timeout(REQUEST_TIMEOUT, client.get_port(spec))
            .await
            .map_err(|_| {
                anyhow!(
                    "the controller at {} did not answer within {REQUEST_TIMEOUT:?}",
                    connection.describe()
                )
            })?
            .map_err(refused)?;
        return print(&render::to_yaml(&response.into_inner()));
    }

    let mut stream = client.watch_port(spec).await.map_err(refused)?.into_inner();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            message = stream.message() => match message.map_err(refused)? {
                Some(server) => print(&format!("---\n{}", render::to_yaml(&server)))?,
                None => {
                    eprintln!(
                        "weft policy: the controller ended the watch (the pod was deleted, or the controller is stopping)"
                    );
                    return Ok(());
                }
            },
            _ = &mut interrupted => return Ok(()),
        }
    }
}
