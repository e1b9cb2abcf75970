//! redline manager: Follows blocks, enforces the per-block deadline and scales the workers.
//!
//! In this release the service starts, validates its configuration, connects to the chain and
//! to Redis, and follows blocks; its work loop lands with its own issue.

use anyhow::Context as _;
use clap::Parser;
use redline_common::service::{ServiceArgs, ServiceContext};

#[derive(Debug, Parser)]
#[command(
    name = "manager",
    version,
    about = "Follows blocks, enforces the per-block deadline and scales the workers"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let context = ServiceContext::start("manager", &cli.service)
        .await
        .context("starting manager")?;
    context.follow_blocks_until_shutdown().await;
    Ok(())
}
