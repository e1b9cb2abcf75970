//! The manager's pieces built from its command line and service context: the control loop's
//! settings, the workers' environment, the dashboard, and the run on one backend. `main` only
//! wires them together.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use redline_chain::ChainClient;
use redline_pipeline::jobs::ProtocolKind;
use redline_service::notify::Notifier;
use redline_service::service::{shutdown_signal, ServiceContext};
use tokio::task::JoinHandle;

use crate::config::{Cli, ProcessArgs};
use crate::control::{self, Manager, Settings};
use crate::dashboard::{self, Dashboard, DashboardConfig};
use crate::handoff::WalletHandoff;
use crate::metrics::ManagerMetrics;
use crate::scaler::env::worker_env;
use crate::scaler::process::{ProcessConfig, ProcessScaler};
use crate::scaler::{Scaler, WorkerKind};
use crate::watch::attempts_stream_key;

/// The control loop's settings from the flags and the chain's manifest; errors name the flag.
pub fn settings(cli: &Cli, context: &ServiceContext) -> anyhow::Result<Settings> {
    let args = &cli.manager;
    let (queue, chain_id) = (&context.queue, &context.manifest.chain_id);
    let block_time = Duration::from_millis(context.manifest.block_time_ms.max(1));
    let policy = |kind| args.scaling.policy(kind, args.deadline_blocks, block_time);
    Ok(Settings {
        queue: queue.clone(),
        index: cli.index.namespace(chain_id, ProtocolKind::RedBank),
        block_time,
        deadline_blocks: args.deadline_blocks,
        poll: args.poll_interval(),
        block_alarm: args.block_alarm(),
        blocks_stream_max_len: args.blocks_stream_max_len,
        backlog_scan_cap: args.backlog_scan_cap,
        attempts_stream: attempts_stream_key(&queue.queue_prefix, chain_id, &args.attempts_stream),
        capital_key: redline_pipeline::capital::capital_key(&queue.queue_prefix, chain_id),
        print_liquidations: !args.quiet_liquidations,
        health_checker_policy: policy(WorkerKind::HealthChecker)?,
        liquidator_policy: policy(WorkerKind::Liquidator)?,
    })
}

/// The environment every worker starts with: the manager's shared flags, its index prefix and
/// notification targets, and `--worker-log-level` in place of its own log level.
pub fn worker_environment(cli: &Cli) -> Vec<(String, String)> {
    let mut env = worker_env(&cli.service);
    env.push(("INDEX_PREFIX".into(), cli.index.index_prefix.clone()));
    env.extend(cli.notify.worker_env());
    if let Some(level) = &cli.manager.worker_log_level {
        env.retain(|(key, _)| key != "RUST_LOG");
        env.push(("RUST_LOG".into(), level.clone()));
    }
    env
}

/// The error notifier, its metrics registered with the service's.
pub fn start_notifier(cli: &Cli, context: &ServiceContext) -> anyhow::Result<Notifier> {
    let notifier = cli.notify.start()?;
    notifier
        .register_metrics(&context.registry)
        .context("registering the notification metrics")?;
    Ok(notifier)
}

/// Serves the dashboard on `--dashboard-addr` unless it is `off`; its URL is logged and shown
/// in `/health`.
pub async fn start_dashboard(
    addr: &str,
    context: &ServiceContext,
    attempts_stream: &str,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(addr) = dashboard::parse_addr(addr).map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let mut config = DashboardConfig::new(
        &context.queue.queue_prefix,
        &context.manifest.chain_id,
        attempts_stream.to_string(),
    );
    config.decimals = context
        .manifest
        .denoms
        .iter()
        .map(|d| (d.denom.clone(), d.decimals))
        .collect();
    let board = Dashboard::new(config, context.redis.clone(), context.health.clone());
    let (bound, task) = dashboard::serve(addr, Arc::new(board))
        .await
        .with_context(|| format!("--dashboard-addr {addr}: cannot listen"))?;
    tracing::info!(url = %format!("http://{bound}/"), "dashboard");
    context.health.write().await["dashboard"] = format!("http://{bound}/").into();
    Ok(Some(task))
}

/// The process backend's configuration, checked: every service it will start has a binary.
pub fn process_config(
    args: &ProcessArgs,
    env: Vec<(String, String)>,
) -> anyhow::Result<ProcessConfig> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => ProcessConfig::own_bin_dir()
            .context("--bin-dir: cannot tell the manager's own directory; give it")?,
    };
    let (health_checker, liquidator) = (WorkerKind::HealthChecker, WorkerKind::Liquidator);
    let worker_args = BTreeMap::from([
        ("collector".into(), args.collector_args.clone()),
        (
            health_checker.service().into(),
            args.health_checker_args.clone(),
        ),
        (liquidator.service().into(), args.liquidator_args.clone()),
    ]);
    let config = ProcessConfig {
        bin_dir,
        env,
        args: worker_args,
        stop_grace: Duration::from_secs(args.stop_grace_secs),
    };
    let mut services = vec![health_checker.service(), liquidator.service()];
    if !args.no_collector {
        services.push("collector");
    }
    config.validate(&services)?;
    Ok(config)
}

/// Frees exited liquidators' wallet slots for their replacements, on this deployment and chain.
pub fn wallet_handoff(context: &ServiceContext) -> WalletHandoff {
    WalletHandoff::new(
        context.redis.clone(),
        &context.queue.queue_prefix,
        &context.manifest.chain_id,
    )
}

/// What the control loop runs with, whatever the backend.
pub struct ManagerRun<'a> {
    pub context: &'a ServiceContext,
    pub settings: Settings,
    pub metrics: ManagerMetrics,
    pub notifier: Notifier,
}

impl ManagerRun<'_> {
    /// Runs the control loop on `scaler` until SIGINT or SIGTERM.
    pub async fn until_signal<S: Scaler + 'static>(self, scaler: S) -> anyhow::Result<()> {
        self.run(Arc::new(scaler), shutdown_signal()).await
    }

    /// Runs the control loop on child processes until SIGINT or SIGTERM and, unless
    /// `--no-collector` keeps a collector running beside the workers until then.
    pub async fn with_processes(
        self,
        args: &ProcessArgs,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        let scaler = Arc::new(
            ProcessScaler::new(process_config(args, env)?)
                .with_wallet_handoff(wallet_handoff(self.context)),
        );
        let (stop_collector, stop) = tokio::sync::watch::channel(false);
        let collector = (!args.no_collector)
            .then(|| control::supervise_collector(scaler.clone(), stop, self.notifier.clone()));
        let shutdown = async move {
            shutdown_signal().await;
            let _ = stop_collector.send(true);
        };
        self.run(scaler, shutdown).await?;
        if let Some(collector) = collector {
            collector.abort();
        }
        Ok(())
    }

    async fn run<S: Scaler + 'static>(
        self,
        scaler: Arc<S>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let health = self.context.health.clone();
        let manager =
            Manager::start_notifying(self.settings, scaler, self.metrics, health, self.notifier)
                .await
                .context("starting the control loop")?;
        let summary = manager
            .run(self.context.client.subscribe_blocks(), shutdown)
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
}
