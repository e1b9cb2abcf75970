//! redline liquidator: Liquidates unhealthy positions and swaps the collateral back.
//!
//! In this release the service starts, validates its configuration, connects to the chain and
//! to Redis, and follows blocks; its work loop lands with its own issue.

use anyhow::Context as _;
use clap::Parser;
use redline_common::service::{ServiceArgs, ServiceContext};

#[derive(Debug, Parser)]
#[command(
    name = "liquidator",
    version,
    about = "Liquidates unhealthy positions and swaps the collateral back"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let context = ServiceContext::start("liquidator", &cli.service)
        .await
        .context("starting liquidator")?;
    context.follow_blocks_until_shutdown().await;
    Ok(())
}
