//! redline manager: follows blocks, checks each block's health checks finish within the
//! deadline, and scales the health checkers and liquidators on one backend (child processes,
//! Docker containers or ECS Fargate services). With the process backend it also runs the
//! collector. Ctrl-C (SIGINT) or SIGTERM stops it and every worker it started.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use redline_common::chain::ChainClient;
use redline_common::index::IndexArgs;
use redline_common::jobs::ProtocolKind;
use redline_common::service::{shutdown_signal, ServiceArgs, ServiceContext};
use redline_manager::cli::{add_namespaced, extract_namespaced};
use redline_manager::config::{BackendKind, ManagerArgs};
use redline_manager::control::{self, Manager, Settings};
use redline_manager::metrics::ManagerMetrics;
use redline_manager::scaler::docker::{DockerConfig, DockerScaler};
use redline_manager::scaler::ecs::{EcsConfig, EcsScaler};
use redline_manager::scaler::env::worker_env;
use redline_manager::scaler::process::{ProcessConfig, ProcessScaler};
use redline_manager::scaler::{Scaler, WorkerKind};
use redline_manager::watch::attempts_stream_key;

#[derive(Debug, Parser)]
#[command(
    name = "manager",
    version,
    about = "Follows blocks, enforces the per-block deadline and scales the workers"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    index: IndexArgs,
    #[command(flatten, next_help_heading = "Manager")]
    manager: ManagerArgs,
}

/// The command line: the manager's flags, then each backend's (under their own ids, see
/// [`redline_manager::cli`]).
fn parse() -> anyhow::Result<(Cli, DockerConfig, EcsConfig)> {
    let command = add_namespaced::<DockerConfig>(Cli::command(), "docker", "Docker backend");
    let command = add_namespaced::<EcsConfig>(command, "ecs", "ECS backend");
    let matches = command.get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let docker = extract_namespaced(&matches, "docker").unwrap_or_else(|e| e.exit());
    let ecs = extract_namespaced(&matches, "ecs").unwrap_or_else(|e| e.exit());
    Ok((cli, docker, ecs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (cli, docker, ecs) = parse()?;
    cli.manager.validate().map_err(anyhow::Error::msg)?;
    let context = ServiceContext::start("manager", &cli.service)
        .await
        .context("starting manager")?;
    let metrics = ManagerMetrics::register(&context.registry)?;
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
    if let Some(level) = &args.worker_log_level {
        env.retain(|(key, _)| key != "RUST_LOG");
        env.push(("RUST_LOG".into(), level.clone()));
    }
    {
        let mut health = context.health.write().await;
        health["backend"] = args.backend.as_str().into();
        health["status"] = "starting".into();
    }

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
                .then(|| control::supervise_collector(scaler.clone(), stop));
            let shutdown = async move {
                shutdown_signal().await;
                let _ = stop_collector.send(true);
            };
            run(&context, settings, scaler, metrics, shutdown).await?;
            if let Some(collector) = collector {
                collector.abort();
            }
        }
        BackendKind::Docker => {
            let scaler = DockerScaler::connect(docker, env).await?;
            run(
                &context,
                settings,
                Arc::new(scaler),
                metrics,
                shutdown_signal(),
            )
            .await?;
        }
        BackendKind::Ecs => {
            let scaler = EcsScaler::connect(ecs, env).await?;
            run(
                &context,
                settings,
                Arc::new(scaler),
                metrics,
                shutdown_signal(),
            )
            .await?;
        }
    }
    Ok(())
}

async fn run<S: Scaler + 'static>(
    context: &ServiceContext,
    settings: Settings,
    scaler: Arc<S>,
    metrics: ManagerMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let manager = Manager::start(settings, scaler, metrics, context.health.clone())
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
