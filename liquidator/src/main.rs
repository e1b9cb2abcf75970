//! redline liquidator: liquidates unhealthy Red Bank positions taken from the priority queue.
//!
//! This binary only wires: flags → connections (chain, Redis, metrics endpoint) → the
//! [`redline_liquidator::Liquidator`] until SIGINT/SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use redline_common::chain::ChainConfig;
use redline_common::config::MnemonicArgs;
use redline_common::service::{shutdown_signal, ServiceArgs, ServiceContext};
use redline_liquidator::config::LiquidatorArgs;
use redline_liquidator::Liquidator;

#[derive(Debug, Parser)]
#[command(
    name = "liquidator",
    version,
    about = "Liquidates unhealthy positions and swaps the collateral back"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    mnemonic: MnemonicArgs,
    #[command(flatten)]
    liquidator: LiquidatorArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Flags are checked before any connection is made, so a typo fails at once.
    let config = cli.liquidator.validate()?;
    let context = ServiceContext::start("liquidator", &cli.service)
        .await
        .context("starting liquidator")?;
    let mnemonic = cli.mnemonic.resolve(Some(&context.manifest))?;
    let chain = ChainConfig::from_manifest(&context.manifest)?;
    let liquidator = Liquidator::new(
        context.client.clone(),
        chain,
        context.manifest.clone(),
        context.queue.clone(),
        context.redis.clone(),
        context.registry.clone(),
        config,
        mnemonic,
    );
    let summary = liquidator.run(shutdown_signal()).await?;
    tracing::info!(slots = ?summary.worker_slots, "liquidator stopped");
    Ok(())
}
