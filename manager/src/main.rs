//! redline manager: follows blocks, checks each block's health checks finish within the
//! deadline, and scales the health checkers and liquidators on one backend (child processes,
//! Docker containers or ECS Fargate services). With the process backend it also runs the
//! collector. Ctrl-C (SIGINT) or SIGTERM stops it and every worker it started.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use redline_chain::ChainClient;
use redline_manager::config::{BackendKind, Cli};
use redline_manager::control::{self, Manager, Settings};
use redline_manager::dashboard::{self, Dashboard, DashboardConfig};
use redline_manager::metrics::ManagerMetrics;
use redline_manager::scaler::docker::DockerScaler;
use redline_manager::scaler::ecs::EcsScaler;
use redline_manager::scaler::env::worker_env;
use redline_manager::scaler::process::{ProcessConfig, ProcessScaler};
use redline_manager::scaler::{Scaler, WorkerKind};
use redline_manager::watch::attempts_stream_key;
use redline_pipeline::jobs::ProtocolKind;
use redline_service::notify::Notifier;
use redline_service::service::{shutdown_signal, ServiceContext};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.manager.validate().map_err(anyhow::Error::msg)?;
    let context = ServiceContext::start("manager", &cli.service)
        .await
        .context("starting manager")?;
    let metrics = ManagerMetrics::register(&context.registry)?;
    let notifier = cli.notify.start()?;
    notifier
        .register_metrics(&context.registry)
        .context("registering the notification metrics")?;
    let block_time = Duration::from_millis(context.manifest.block_time_ms.max(1));
    let args = &cli.manager;
    let settings = Settings {
        queue: context.queue.clone(),
        index: cli
            .index
            .namespace(&context.manifest.chain_id, ProtocolKind::RedBank),
        block_time,
        deadline_blocks: args.deadline_blocks,
        poll: args.poll_interval(),
        block_alarm: args.block_alarm(),
        blocks_stream_max_len: args.blocks_stream_max_len,
        backlog_scan_cap: args.backlog_scan_cap,
        attempts_stream: attempts_stream_key(
            &context.queue.queue_prefix,
            &context.manifest.chain_id,
            &args.attempts_stream,
        ),
        capital_key: redline_pipeline::capital::capital_key(
            &context.queue.queue_prefix,
            &context.manifest.chain_id,
        ),
        print_liquidations: !args.quiet_liquidations,
        health_checker_policy: args.scaling.policy(
            WorkerKind::HealthChecker,
            args.deadline_blocks,
            block_time,
        )?,
        liquidator_policy: args.scaling.policy(
            WorkerKind::Liquidator,
            args.deadline_blocks,
            block_time,
        )?,
    };
    let mut env = worker_env(&cli.service);
    env.push(("INDEX_PREFIX".into(), cli.index.index_prefix.clone()));
    env.extend(cli.notify.worker_env());
    if let Some(level) = &args.worker_log_level {
        env.retain(|(key, _)| key != "RUST_LOG");
        env.push(("RUST_LOG".into(), level.clone()));
    }
    {
        let mut health = context.health.write().await;
        health["backend"] = args.backend.as_str().into();
        health["status"] = "starting".into();
    }
    let _dashboard =
        match dashboard::parse_addr(&args.dashboard_addr).map_err(anyhow::Error::msg)? {
            Some(addr) => {
                let mut config = DashboardConfig::new(
                    &context.queue.queue_prefix,
                    &context.manifest.chain_id,
                    settings.attempts_stream.clone(),
                );
                config.decimals = context
                    .manifest
                    .denoms
                    .iter()
                    .map(|d| (d.denom.clone(), d.decimals))
                    .collect();
                let board = Arc::new(Dashboard::new(
                    config,
                    context.redis.clone(),
                    context.health.clone(),
                ));
                let (bound, task) = dashboard::serve(addr, board)
                    .await
                    .with_context(|| format!("--dashboard-addr {addr}: cannot listen"))?;
                tracing::info!(url = %format!("http://{bound}/"), "dashboard");
                context.health.write().await["dashboard"] = format!("http://{bound}/").into();
                Some(task)
            }
            None => None,
        };

    match args.backend {
        BackendKind::Process => {
            let bin_dir = match &args.process.bin_dir {
                Some(dir) => dir.clone(),
                None => ProcessConfig::own_bin_dir()
                    .context("--bin-dir: cannot tell the manager's own directory; give it")?,
            };
            let mut worker_args = BTreeMap::new();
            worker_args.insert("collector".into(), args.process.collector_args.clone());
            worker_args.insert(
                WorkerKind::HealthChecker.service().into(),
                args.process.health_checker_args.clone(),
            );
            worker_args.insert(
                WorkerKind::Liquidator.service().into(),
                args.process.liquidator_args.clone(),
            );
            let config = ProcessConfig {
                bin_dir,
                env,
                args: worker_args,
                stop_grace: Duration::from_secs(args.process.stop_grace_secs),
            };
            let mut services = vec![
                WorkerKind::HealthChecker.service(),
                WorkerKind::Liquidator.service(),
            ];
            if !args.process.no_collector {
                services.push("collector");
            }
            config.validate(&services)?;
            let scaler = Arc::new(ProcessScaler::new(config));
            let (stop_collector, stop) = tokio::sync::watch::channel(false);
            let collector = (!args.process.no_collector)
                .then(|| control::supervise_collector(scaler.clone(), stop, notifier.clone()));
            let shutdown = async move {
                shutdown_signal().await;
                let _ = stop_collector.send(true);
            };
            run(&context, settings, scaler, metrics, &notifier, shutdown).await?;
            if let Some(collector) = collector {
                collector.abort();
            }
        }
        BackendKind::Docker => {
            let scaler = DockerScaler::connect(cli.docker, env).await?;
            run(
                &context,
                settings,
                Arc::new(scaler),
                metrics,
                &notifier,
                shutdown_signal(),
            )
            .await?;
        }
        BackendKind::Ecs => {
            let scaler = EcsScaler::connect(cli.ecs, env).await?;
            run(
                &context,
                settings,
                Arc::new(scaler),
                metrics,
                &notifier,
                shutdown_signal(),
            )
            .await?;
        }
    }
    // Errors queued for the operator still go out before the process ends.
    notifier.flush(Duration::from_secs(10)).await;
    Ok(())
}

async fn run<S: Scaler + 'static>(
    context: &ServiceContext,
    settings: Settings,
    scaler: Arc<S>,
    metrics: ManagerMetrics,
    notifier: &Notifier,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let manager = Manager::start_notifying(
        settings,
        scaler,
        metrics,
        context.health.clone(),
        notifier.clone(),
    )
    .await
    .context("starting the control loop")?;
    let summary = manager
        .run(context.client.subscribe_blocks(), shutdown)
        .await
        .context("control loop")?;
    tracing::info!(
        blocks = summary.blocks,
        on_time = summary.on_time,
        late = summary.late,
        not_enqueued = summary.not_enqueued,
        liquidations = summary.liquidations_done,
        "manager stopped"
    );
    Ok(())
}
