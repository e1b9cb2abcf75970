//! The manager's Prometheus metrics (served on `/metrics` with the `redline_` prefix).

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

use crate::ledger::BlockRecord;

#[derive(Clone)]
pub struct ManagerMetrics {
    /// Blocks closed, by status (`on_time`, `late`, `not_enqueued`, `warming_up`).
    pub blocks: IntCounterVec,
    /// Block arrival → its health checks done.
    pub block_lag_seconds: Histogram,
    pub jobs_missed: IntCounter,
    pub accounts_checked: IntCounter,
    pub liquidations_queued: IntCounter,
    pub liquidations_done: IntCounter,
    pub last_block_height: IntGauge,
    pub seconds_since_block: Gauge,
    /// 1 while no block has arrived for `--block-alarm-secs`.
    pub block_alarm: IntGauge,
    /// Liquidation candidates set aside until a liquidator has the funds for them.
    pub liquidations_waiting_for_funds: IntGauge,
    /// Workers by kind and state (`desired`, `running`, `pending`).
    pub workers: IntGaugeVec,
    /// Outstanding work units by kind (accounts, liquidation candidates).
    pub backlog: IntGaugeVec,
    /// Measured units per worker-second, by kind.
    pub throughput: GaugeVec,
    /// Changes of the desired count, by kind and direction.
    pub scale_events: IntCounterVec,
    /// Failed scaler calls, by kind.
    pub scaler_errors: IntCounterVec,
}

#[derive(Debug, thiserror::Error)]
#[error("registering manager metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl ManagerMetrics {
    pub fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let metrics = Self {
            blocks: IntCounterVec::new(
                Opts::new("manager_blocks_total", "Blocks closed, by status"),
                &["status"],
            )?,
            block_lag_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "manager_block_lag_seconds",
                    "Block arrival to its last health-check job acknowledged",
                )
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 6.0, 12.0, 30.0,
                ]),
            )?,
            jobs_missed: IntCounter::new(
                "manager_jobs_missed_total",
                "Health-check jobs still queued at their block's deadline",
            )?,
            accounts_checked: IntCounter::new(
                "manager_accounts_checked_total",
                "Accounts checked within their block's deadline",
            )?,
            liquidations_queued: IntCounter::new(
                "manager_liquidations_queued_total",
                "Liquidation candidates queued (estimated from the queue's backlog and the attempts)",
            )?,
            liquidations_done: IntCounter::new(
                "manager_liquidations_done_total",
                "Liquidations that landed on chain",
            )?,
            last_block_height: IntGauge::new(
                "manager_last_block_height",
                "Height of the newest block seen",
            )?,
            seconds_since_block: Gauge::new(
                "manager_seconds_since_block",
                "Seconds since the newest block arrived",
            )?,
            block_alarm: IntGauge::new(
                "manager_block_alarm",
                "1 while no block has arrived for --block-alarm-secs",
            )?,
            liquidations_waiting_for_funds: IntGauge::new(
                "manager_liquidations_waiting_for_funds",
                "Liquidation candidates set aside until a liquidator has the funds for them",
            )?,
            workers: IntGaugeVec::new(
                Opts::new("manager_workers", "Workers by kind and state"),
                &["kind", "state"],
            )?,
            backlog: IntGaugeVec::new(
                Opts::new("manager_backlog_units", "Outstanding work units by kind"),
                &["kind"],
            )?,
            throughput: GaugeVec::new(
                Opts::new(
                    "manager_throughput_per_worker_second",
                    "Measured work units per worker-second, by kind",
                ),
                &["kind"],
            )?,
            scale_events: IntCounterVec::new(
                Opts::new(
                    "manager_scale_events_total",
                    "Changes of the desired worker count",
                ),
                &["kind", "direction"],
            )?,
            scaler_errors: IntCounterVec::new(
                Opts::new("manager_scaler_errors_total", "Failed scaler calls"),
                &["kind"],
            )?,
        };
        registry.register(Box::new(metrics.blocks.clone()))?;
        registry.register(Box::new(metrics.block_lag_seconds.clone()))?;
        registry.register(Box::new(metrics.jobs_missed.clone()))?;
        registry.register(Box::new(metrics.accounts_checked.clone()))?;
        registry.register(Box::new(metrics.liquidations_queued.clone()))?;
        registry.register(Box::new(metrics.liquidations_done.clone()))?;
        registry.register(Box::new(metrics.last_block_height.clone()))?;
        registry.register(Box::new(metrics.seconds_since_block.clone()))?;
        registry.register(Box::new(metrics.block_alarm.clone()))?;
        registry.register(Box::new(metrics.liquidations_waiting_for_funds.clone()))?;
        registry.register(Box::new(metrics.workers.clone()))?;
        registry.register(Box::new(metrics.backlog.clone()))?;
        registry.register(Box::new(metrics.throughput.clone()))?;
        registry.register(Box::new(metrics.scale_events.clone()))?;
        registry.register(Box::new(metrics.scaler_errors.clone()))?;
        Ok(metrics)
    }

    /// Counts one closed block.
    pub fn record_block(&self, record: &BlockRecord) {
        self.blocks
            .with_label_values(&[record.status.as_str()])
            .inc();
        if let Some(lag) = record.lag_ms {
            self.block_lag_seconds.observe(lag as f64 / 1_000.0);
        }
        self.jobs_missed.inc_by(record.jobs_missed);
        self.accounts_checked.inc_by(record.accounts_checked);
        self.liquidations_queued.inc_by(record.liquidations_queued);
        self.liquidations_done.inc_by(record.liquidations_done);
    }
}
