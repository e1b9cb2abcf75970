//! The health checker's Prometheus metrics (registered on the service's registry, so they are
//! served as `redline_health_…` on `/metrics`).

use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::compute::SkipReason;

/// Outcome labels of the jobs counter.
pub mod outcome {
    /// Results written, job acknowledged.
    pub const DONE: &str = "done";
    /// Older than the newest snapshot by more than `--max-job-age-blocks`: skipped (a newer
    /// job covers the same buckets).
    pub const MISSED_STALE: &str = "missed_stale";
    /// The block's snapshot expired or was never written: nothing to compute with.
    pub const MISSED_NO_SNAPSHOT: &str = "missed_no_snapshot";
    /// A job this worker can never process (another chain, a protocol without off-chain math).
    pub const DEAD_LETTERED: &str = "dead_lettered";
    /// A transient failure (Redis, RPC); the job is handed back for another try.
    pub const FAILED: &str = "failed";
}

#[derive(Clone)]
pub struct Metrics {
    /// Accounts whose health was computed, by source (`offchain`, `onchain`).
    pub accounts_checked: IntCounterVec,
    /// Accounts found with liquidation HF < 1.
    pub liquidatable_found: IntCounter,
    /// Accounts that could not be checked, by reason.
    pub accounts_skipped: IntCounterVec,
    /// Jobs by outcome.
    pub jobs: IntCounterVec,
    /// Wall time of a job (index read → health → outputs written), by source.
    pub job_duration: HistogramVec,
    /// Wall time of each phase of a job: `read` (index buckets from Redis), `health` (the
    /// computation, or the queries on-chain), `output` (liquidation queue and near set).
    pub job_phase: HistogramVec,
    /// Accounts checked per second in the last job, end to end.
    pub positions_per_second: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Metrics {
            accounts_checked: IntCounterVec::new(
                Opts::new(
                    "health_accounts_checked_total",
                    "Accounts whose health was computed",
                ),
                &["source"],
            )?,
            liquidatable_found: IntCounter::new(
                "health_liquidatable_found_total",
                "Accounts found with a liquidation health factor below 1",
            )?,
            accounts_skipped: IntCounterVec::new(
                Opts::new(
                    "health_accounts_skipped_total",
                    "Accounts that could not be checked (bad input), by reason",
                ),
                &["reason"],
            )?,
            jobs: IntCounterVec::new(
                Opts::new("health_jobs_total", "Health-check jobs by outcome"),
                &["outcome"],
            )?,
            job_duration: HistogramVec::new(
                HistogramOpts::new(
                    "health_job_duration_seconds",
                    "Wall time of one health-check job, index read to outputs written",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
                &["source"],
            )?,
            job_phase: HistogramVec::new(
                HistogramOpts::new(
                    "health_job_phase_seconds",
                    "Wall time of one phase (read, health, output) of a health-check job",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
                ]),
                &["phase"],
            )?,
            positions_per_second: Gauge::new(
                "health_positions_per_second",
                "Accounts checked per second in the last job, end to end",
            )?,
        };
        registry.register(Box::new(metrics.accounts_checked.clone()))?;
        registry.register(Box::new(metrics.liquidatable_found.clone()))?;
        registry.register(Box::new(metrics.accounts_skipped.clone()))?;
        registry.register(Box::new(metrics.jobs.clone()))?;
        registry.register(Box::new(metrics.job_duration.clone()))?;
        registry.register(Box::new(metrics.job_phase.clone()))?;
        registry.register(Box::new(metrics.positions_per_second.clone()))?;
        // Every reason shows up at 0 from the start, so alerts on rates work at once.
        for reason in SkipReason::ALL {
            metrics
                .accounts_skipped
                .with_label_values(&[reason.as_str()]);
        }
        Ok(metrics)
    }

    /// Unregistered metrics (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("fresh registry accepts the metrics")
    }

    pub fn observe_phase(&self, phase: &str, started: std::time::Instant) {
        self.job_phase
            .with_label_values(&[phase])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Total seconds spent in `phase` so far (summed over jobs, which overlap in time).
    pub fn phase_seconds(&self, phase: &str) -> f64 {
        self.job_phase.with_label_values(&[phase]).get_sample_sum()
    }

    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.accounts_skipped
            .with_label_values(&[reason.as_str()])
            .get()
    }

    pub fn jobs_with(&self, outcome: &str) -> u64 {
        self.jobs.with_label_values(&[outcome]).get()
    }
}
