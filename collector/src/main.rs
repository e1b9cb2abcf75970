//! redline collector: Finds every account with debt and keeps the index current block by block.
//!
//! In this release the service starts, validates its configuration, connects to the chain and
//! to Redis, and follows blocks; its work loop lands with its own issue.

use anyhow::Context as _;
use clap::Parser;
use redline_common::service::{ServiceArgs, ServiceContext};

#[derive(Debug, Parser)]
#[command(
    name = "collector",
    version,
    about = "Finds every account with debt and keeps the index current block by block"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let context = ServiceContext::start("collector", &cli.service)
        .await
        .context("starting collector")?;
    context.follow_blocks_until_shutdown().await;
    Ok(())
}
