//! `weft-controller`: the Weft control-plane binary.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_policy_controller::Args::parse().run().await
}
