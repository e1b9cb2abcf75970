//! redline health-checker: computes health factors and queues the liquidatable accounts.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use redline_health_checker::metrics::Metrics;
use redline_health_checker::onchain::OnchainConfig;
use redline_health_checker::{
    HealthChecker, HealthSource, OnchainSource, OutputConfig, Outputs, ProfitConfig, WorkerConfig,
};
use redline_pipeline::index::IndexArgs;
use redline_service::service::{shutdown_signal, ServiceArgs, ServiceContext};

#[derive(Debug, Parser)]
#[command(
    name = "health-checker",
    version,
    about = "Computes health factors and queues the liquidatable accounts"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    index: IndexArgs,
    #[command(flatten)]
    worker: WorkerConfig,
    #[command(flatten)]
    profit: ProfitConfig,
    #[command(flatten)]
    onchain: OnchainConfig,
    #[command(flatten)]
    output: OutputConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let context = ServiceContext::start("health-checker", &cli.service).await?;
    let metrics = Metrics::register(&context.registry).context("registering metrics")?;
    let outputs = Outputs::connect(&context.queue, &cli.output)
        .await
        .context("connecting the liquidation queue")?;
    let onchain = (cli.worker.health_source == HealthSource::Onchain).then(|| OnchainSource {
        client: context.client.clone(),
        red_bank: context.manifest.contracts.red_bank.clone(),
        config: cli.onchain.clone(),
    });
    let base_denom_decimals = match cli.profit.base_denom_decimals_override {
        Some(decimals) => decimals,
        None => redline_protocol::red_bank::base_decimals(&context.client, &context.manifest)
            .await
            .context("--base-denom-decimals")?,
    };
    let profit = ProfitConfig {
        liquidation_rule: context.manifest.liquidation_rule,
        base_denom_decimals,
        ..cli.profit.clone()
    };
    let checker = Arc::new(HealthChecker::new(
        cli.worker.clone(),
        profit,
        cli.index.clone(),
        context.redis.clone(),
        outputs,
        metrics,
        onchain,
    )?);
    {
        let mut health = context.health.write().await;
        health["health_source"] = cli.worker.health_source.as_str().into();
        health["workers"] = cli.worker.workers().into();
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    checker.run(&context.queue, stopped).await?;
    tracing::info!("health-checker stopped");
    Ok(())
}
