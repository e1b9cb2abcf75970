//! What the manager's integration tests share: idle worker binaries for the process backend,
//! health-check jobs, and a control loop on a test-driven block feed.

// Each test crate compiles this module and uses only its own part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redline_chain::{BlockStream, NewBlock};
use redline_manager::autoscale::ScalingPolicy;
use redline_manager::control::{ControlError, Manager, RunSummary, Settings};
use redline_manager::metrics::ManagerMetrics;
use redline_manager::scaler::process::{ProcessConfig, ProcessScaler};
use redline_pipeline::index::IndexNamespace;
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind};
use redline_pipeline::queue::QueueConfig;
use redline_service::metrics::HealthReport;
use redline_service::notify::Notifier;
use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A worker that idles until SIGTERM.
const IDLE_WORKER: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile true; do sleep 0.05; done\n";

/// A process backend, with no extra environment or arguments, whose binaries are idle workers
/// for `services`: a service left out has no binary, so its workers fail to start. The binaries
/// live as long as the returned directory.
pub fn idle_process_backend(services: &[&str]) -> (TempDir, Arc<ProcessScaler>) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    for service in services {
        let path = dir.path().join(service);
        std::fs::write(&path, IDLE_WORKER).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let scaler = Arc::new(ProcessScaler::new(ProcessConfig {
        bin_dir: dir.path().to_path_buf(),
        env: Vec::new(),
        args: BTreeMap::new(),
        stop_grace: Duration::from_secs(5),
    }));
    (dir, scaler)
}

pub fn job(height: u64, bucket: u32, accounts: u64) -> HealthCheckJob {
    HealthCheckJob {
        chain_id: "test-1".into(),
        protocol: ProtocolKind::RedBank,
        height,
        bucket_start: bucket,
        bucket_end: bucket + 1,
        accounts,
    }
}

/// A policy for 400 ms blocks.
pub fn policy(min: u32, max: u32) -> ScalingPolicy {
    ScalingPolicy {
        min_workers: min,
        max_workers: max,
        initial_block_time_s: 0.4,
        ..ScalingPolicy::default()
    }
}

/// Settings of a fast control loop on `queue` (chain `test-1`, 400 ms blocks, 20 ms polls,
/// the alarm after a second without a block).
pub fn settings(
    queue: &QueueConfig,
    health_checkers: ScalingPolicy,
    liquidators: ScalingPolicy,
) -> Settings {
    Settings {
        queue: queue.clone(),
        index: IndexNamespace::new("redline", "test-1", ProtocolKind::RedBank),
        block_time: Duration::from_millis(400),
        deadline_blocks: 1,
        poll: Duration::from_millis(20),
        block_alarm: Duration::from_secs(1),
        blocks_stream_max_len: 1_000,
        backlog_scan_cap: 10_000,
        attempts_stream: "redline:liquidator:test-1:attempts".into(),
        capital_key: "redline:liquidator:test-1:capital".into(),
        print_liquidations: true,
        health_checker_policy: health_checkers,
        liquidator_policy: liquidators,
    }
}

/// A control loop the test feeds blocks to and stops.
pub struct Running {
    pub metrics: ManagerMetrics,
    pub health: HealthReport,
    pub blocks: mpsc::Sender<NewBlock>,
    pub stop: oneshot::Sender<()>,
    pub run: JoinHandle<Result<RunSummary, ControlError>>,
}

/// Starts the control loop on `scaler` and runs it on a block feed the test drives.
pub async fn run_manager(
    settings: Settings,
    scaler: Arc<ProcessScaler>,
    notifier: Notifier,
) -> Running {
    let registry = prometheus::Registry::new();
    let metrics = ManagerMetrics::register(&registry).unwrap();
    let health: HealthReport = Arc::new(tokio::sync::RwLock::new(serde_json::json!({})));
    let manager =
        Manager::start_notifying(settings, scaler, metrics.clone(), health.clone(), notifier)
            .await
            .unwrap();
    let (blocks, blocks_rx) = mpsc::channel(16);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let run = tokio::spawn(
        manager.run(BlockStream::from_channel(blocks_rx, None), async move {
            let _ = stop_rx.await;
        }),
    );
    Running {
        metrics,
        health,
        blocks,
        stop,
        run,
    }
}
