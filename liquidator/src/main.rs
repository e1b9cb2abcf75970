//! redline liquidator: liquidates unhealthy Red Bank positions taken from the priority queue.
//!
//! This binary only wires: flags → connections (chain, Redis, metrics endpoint) → the
//! [`redline_liquidator::Liquidator`] until SIGINT/SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use redline_liquidator::config::LiquidatorArgs;
use redline_liquidator::locks::{KeySpace, Leases, SwapPoolLocks};
use redline_liquidator::model::ModelArgs;
use redline_liquidator::rebalance::{RebalanceArgs, Rebalancer};
use redline_liquidator::Liquidator;
use redline_service::config::MnemonicArgs;
use redline_service::notify::{Notifier, NotifyArgs};
use redline_service::service::{shutdown_signal, ServiceArgs, ServiceContext};

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
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    rebalance: RebalanceArgs,
    #[command(flatten, next_help_heading = "Notifications")]
    notify: NotifyArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Flags are checked before any connection is made, so a typo fails at once.
    let mut config = cli.liquidator.validate()?;
    config.max_slippage = cli.rebalance.max_slippage()?;
    let model = cli.model.validate()?;
    let rebalance = cli.rebalance.validate()?;
    let notifier = cli.notify.start()?;
    let result = run(cli, config, model, rebalance, notifier.clone()).await;
    if let Err(error) = &result {
        tracing::error!(error = %format!("{error:#}"), "liquidator failed");
        notifier
            .error("liquidator", format!("stopped: {error:#}"))
            .await;
    }
    // What is queued still goes out before the process ends.
    notifier.flush(std::time::Duration::from_secs(10)).await;
    result
}

async fn run(
    cli: Cli,
    config: redline_liquidator::config::LiquidatorConfig,
    model: Option<redline_liquidator::model::ModelStrategy>,
    rebalance: Option<redline_liquidator::rebalance::RebalancePolicy>,
    notifier: Notifier,
) -> anyhow::Result<()> {
    let context = ServiceContext::start("liquidator", &cli.service).await?;
    notifier
        .register_metrics(&context.registry)
        .context("registering the notification metrics")?;
    let mnemonic = cli.mnemonic.resolve(Some(&context.manifest))?;
    let chain = cli.service.chain.chain_config(&context.manifest)?;
    let lock_ttl = config.account_lock_ttl;
    let mut liquidator = Liquidator::new(
        context.client.clone(),
        chain,
        context.manifest.clone(),
        context.queue.clone(),
        context.redis.clone(),
        context.registry.clone(),
        config,
        mnemonic,
    )
    .with_notifier(notifier)
    .with_health(context.health.clone());
    if let Some(model) = model {
        tracing::info!(model = %model.name(), "decisions come from the external model");
        liquidator = liquidator.with_strategy(std::sync::Arc::new(model));
    }
    match (rebalance, context.manifest.contracts.swapper.clone()) {
        (Some(policy), Some(swapper)) => {
            let pool_locks = SwapPoolLocks::new(
                Leases::new(context.redis.clone(), "rebalancer"),
                KeySpace::new(&context.queue.queue_prefix, &context.manifest.chain_id),
                lock_ttl,
            );
            let rebalancer = Rebalancer::new(
                policy,
                swapper,
                context.manifest.contracts.oracle.clone(),
                context.manifest.fee.denom.clone(),
            )
            .with_pool_locks(pool_locks);
            liquidator = liquidator.with_after_liquidation(std::sync::Arc::new(rebalancer));
        }
        (Some(policy), None) if !policy.targets.is_empty() => anyhow::bail!(
            "--target: the manifest names no swap contract (contracts.swapper) to rebalance through"
        ),
        (Some(_), None) => tracing::info!(
            "the manifest names no swap contract (contracts.swapper): seized collateral is kept"
        ),
        (None, _) => {}
    }
    let summary = liquidator.run(shutdown_signal()).await?;
    tracing::info!(slots = ?summary.worker_slots, "liquidator stopped");
    Ok(())
}
