//! The collector's Prometheus metrics (registered on the service's registry, served at
//! `/metrics` with the `redline_` prefix).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct CollectorMetrics {
    pub accounts_indexed: IntGauge,
    pub blocks_indexed: IntCounter,
    pub last_indexed_height: IntGauge,
    /// Chain tip minus last indexed height, as last seen.
    pub index_lag_blocks: IntGauge,
    /// Red Bank events applied, by action.
    pub events_applied: IntCounterVec,
    /// Red Bank events with an action this build does not know (their accounts are re-read).
    pub unknown_events: IntCounter,
    pub accounts_refreshed: IntCounter,
    /// Accounts whose re-read failed (kept as indexed; repaired by the next reconciliation).
    pub account_read_errors: IntCounter,
    /// Index entries repaired by reconciliation, by kind (missing, stale, extra, undecodable).
    pub drift_repaired: IntCounterVec,
    pub reconciliations: IntCounter,
    pub full_rescans: IntCounter,
    pub jobs_enqueued: IntCounter,
    /// Undecodable input, by source (debts_key, colls_value, index_entry, …).
    pub decode_errors: IntCounterVec,
    pub block_seconds: Histogram,
    pub scan_seconds: Histogram,
}

impl CollectorMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = CollectorMetrics {
            accounts_indexed: IntGauge::new(
                "collector_accounts_indexed",
                "Accounts with debt in the position index",
            )?,
            blocks_indexed: IntCounter::new(
                "collector_blocks_indexed_total",
                "Blocks whose changes were applied to the index",
            )?,
            last_indexed_height: IntGauge::new(
                "collector_last_indexed_height",
                "Last block height applied to the index",
            )?,
            index_lag_blocks: IntGauge::new(
                "collector_index_lag_blocks",
                "Chain tip height minus the last indexed height",
            )?,
            events_applied: IntCounterVec::new(
                Opts::new(
                    "collector_events_applied_total",
                    "Red Bank events applied to the index, by action",
                ),
                &["action"],
            )?,
            unknown_events: IntCounter::new(
                "collector_unknown_events_total",
                "Red Bank events with an action the collector does not know",
            )?,
            accounts_refreshed: IntCounter::new(
                "collector_accounts_refreshed_total",
                "Accounts re-read from the chain after an event touched them",
            )?,
            account_read_errors: IntCounter::new(
                "collector_account_read_errors_total",
                "Accounts whose re-read failed (left as indexed until reconciliation)",
            )?,
            drift_repaired: IntCounterVec::new(
                Opts::new(
                    "collector_drift_repaired_total",
                    "Index entries found wrong by reconciliation and repaired, by kind",
                ),
                &["kind"],
            )?,
            reconciliations: IntCounter::new(
                "collector_reconciliations_total",
                "Completed reconciliation scans",
            )?,
            full_rescans: IntCounter::new(
                "collector_full_rescans_total",
                "Full scans that rebuilt the index (discovery, history gap)",
            )?,
            jobs_enqueued: IntCounter::new(
                "collector_jobs_enqueued_total",
                "Health-check jobs enqueued",
            )?,
            decode_errors: IntCounterVec::new(
                Opts::new(
                    "collector_decode_errors_total",
                    "Undecodable chain state, events or index entries, by source",
                ),
                &["source"],
            )?,
            block_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "collector_block_seconds",
                    "Time to index one block (read, apply, snapshot, enqueue)",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            scan_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "collector_scan_seconds",
                    "Time of one full scan of the Red Bank's state",
                )
                .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0]),
            )?,
        };
        registry.register(Box::new(metrics.accounts_indexed.clone()))?;
        registry.register(Box::new(metrics.blocks_indexed.clone()))?;
        registry.register(Box::new(metrics.last_indexed_height.clone()))?;
        registry.register(Box::new(metrics.index_lag_blocks.clone()))?;
        registry.register(Box::new(metrics.events_applied.clone()))?;
        registry.register(Box::new(metrics.unknown_events.clone()))?;
        registry.register(Box::new(metrics.accounts_refreshed.clone()))?;
        registry.register(Box::new(metrics.account_read_errors.clone()))?;
        registry.register(Box::new(metrics.drift_repaired.clone()))?;
        registry.register(Box::new(metrics.reconciliations.clone()))?;
        registry.register(Box::new(metrics.full_rescans.clone()))?;
        registry.register(Box::new(metrics.jobs_enqueued.clone()))?;
        registry.register(Box::new(metrics.decode_errors.clone()))?;
        registry.register(Box::new(metrics.block_seconds.clone()))?;
        registry.register(Box::new(metrics.scan_seconds.clone()))?;
        Ok(metrics)
    }

    /// Metrics on a private registry (tests, tools).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("fresh registry accepts the metrics")
    }
}
