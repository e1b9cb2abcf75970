//! redline health-checker: Computes health factors and queues the liquidatable accounts.
//!
//! In this release the service starts, validates its configuration, connects to the chain and
//! to Redis, and follows blocks; its work loop lands with its own issue.

use anyhow::Context as _;
use clap::Parser;
use redline_common::service::{ServiceArgs, ServiceContext};

#[derive(Debug, Parser)]
#[command(
    name = "health-checker",
    version,
    about = "Computes health factors and queues the liquidatable accounts"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let context = ServiceContext::start("health-checker", &cli.service)
        .await
        .context("starting health-checker")?;
    context.follow_blocks_until_shutdown().await;
    Ok(())
}
