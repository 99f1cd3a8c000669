//! The I/O of `weft endpoints`: connects to the controller's gRPC API ([`crate::grpc_client`],
//! as `weft policy` does) and calls `Destination/Get`.

use super::EndpointsArgs;
use super::{describe_status, render};
use crate::grpc_client::{connection, REQUEST_TIMEOUT};
use anyhow::{anyhow, Result};
use linkerd2_proxy_api::destination::{destination_client::DestinationClient, GetDestination};

/// Runs `weft endpoints`: gives `print` the table of the first message, then (with `--watch`)
/// the change lines of each later one, until the stream ends or Ctrl-C. Each text ends with a
/// newline.
pub async fn run(args: &EndpointsArgs, mut print: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let connection = connection(&args.connect).await?;
    let channel = connection.channel("destination API").await?;
    let mut client = DestinationClient::new(channel);
    let path = args.target.path(&args.cluster_domain);
    let service = args.target.to_string();
    let port = args.target.port;
    let request = GetDestination {
        scheme: "k8s".into(),
        path: path.clone(),
        context_token: String::new(),
    };
    let refused = |status: tonic::Status| {
        anyhow!(
            "{} (controller at {})",
            describe_status(&status, &path),
            connection.describe()
        )
    };
    let ended = || {
        anyhow!(
            "the controller at {} ended the stream for {path} before sending its endpoints",
            connection.describe()
        )
    };
    let invalid = |e: render::InvalidUpdate| anyhow!("{e} (for {path})");

    // The call and its first message, which is the current state.
    let opened = async {
        let mut stream = client.get(request).await.map_err(refused)?.into_inner();
        let update = stream.message().await.map_err(refused)?.ok_or_else(ended)?;
        Ok::<_, anyhow::Error>((stream, update))
    };
    let (mut stream, update) = tokio::time::timeout(REQUEST_TIMEOUT, opened)
        .await
        .map_err(|_| {
            anyhow!(
                "the controller at {} did not answer for {path} within {REQUEST_TIMEOUT:?}",
                connection.describe()
            )
        })??;
    let mut resolution = render::first(update, &service, port).map_err(invalid)?;
    print(&resolution.table(&service, port))?;
    if !args.watch {
        return Ok(());
    }

    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            message = stream.message() => match message.map_err(refused)? {
                Some(update) => {
                    let lines = resolution.apply(update, &service, port).map_err(invalid)?;
                    if !lines.is_empty() {
                        print(&format!("{}\n", lines.join("\n")))?;
                    }
                }
                None => {
                    eprintln!("weft endpoints: the controller ended the watch (it may be stopping)");
                    return Ok(());
                }
            },
            _ = &mut interrupted => return Ok(()),
        }
    }
}
