//! One measured run of the health-check pipeline: a block's jobs are enqueued on the job queue,
//! a [`HealthChecker`] (running in this process, its workers already waiting) reads the index,
//! computes health (off-chain or on-chain) and writes the liquidation queue and near-liquidation
//! set, and the clock stops when the last job is acknowledged. That is the end-to-end figure:
//! Redis read → health → liquidation queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redline_chain::TendermintClient;
use redline_health_checker::metrics::{outcome, Metrics};
use redline_health_checker::{
    HealthChecker, HealthSource, OnchainSource, OutputConfig, Outputs, ProfitConfig, WorkerConfig,
};
use redline_pipeline::index::{BlockSnapshot, IndexArgs, PositionIndex};
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind, HEALTH_CHECK_QUEUE};
use redline_pipeline::queue::{Queue, QueueConfig, RedisStreamQueue};

/// Snapshots live long enough for any run.
const SNAPSHOT_TTL: Duration = Duration::from_secs(3_600);

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub source: HealthSource,
    pub jobs: usize,
    pub accounts: u64,
    pub liquidatable: u64,
    pub skipped: u64,
    pub elapsed: Duration,
    /// Seconds summed over jobs (jobs overlap) in the read, health and output phases.
    pub phases: [f64; 3],
}

impl RunResult {
    pub fn per_second(&self) -> f64 {
        self.accounts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Contiguous bucket ranges of about `job_size` accounts each, covering `bucket_sizes` (as the
/// collector cuts a block's work).
pub fn plan_jobs(
    chain_id: &str,
    height: u64,
    bucket_sizes: &[u64],
    job_size: u64,
) -> Vec<HealthCheckJob> {
    let mut jobs = Vec::new();
    let mut start = 0usize;
    let mut accounts = 0u64;
    for (bucket, size) in bucket_sizes.iter().enumerate() {
        accounts += size;
        if accounts >= job_size.max(1) || bucket + 1 == bucket_sizes.len() {
            jobs.push(HealthCheckJob {
                chain_id: chain_id.to_string(),
                protocol: ProtocolKind::RedBank,
                height,
                bucket_start: start as u32,
                bucket_end: bucket as u32 + 1,
                accounts,
            });
            start = bucket + 1;
            accounts = 0;
        }
    }
    jobs
}

/// The jobs over the first buckets holding at least `sample` accounts (for sampled runs).
pub fn sample_jobs(
    chain_id: &str,
    height: u64,
    bucket_sizes: &[u64],
    job_size: u64,
    sample: u64,
) -> Vec<HealthCheckJob> {
    let mut total = 0;
    let mut end = 0;
    while end < bucket_sizes.len() && total < sample {
        total += bucket_sizes[end];
        end += 1;
    }
    plan_jobs(chain_id, height, &bucket_sizes[..end], job_size)
}

/// Where runs happen: a Redis and an index in it.
pub struct Bench {
    pub redis_url: String,
    pub index: PositionIndex,
    pub chain_id: String,
    /// Workers and compute threads of the health checker.
    pub workers: usize,
    pub compute_threads: usize,
}

impl Bench {
    fn queue_config(&self, consumer: &str) -> QueueConfig {
        QueueConfig {
            queue_consumer: Some(consumer.to_string()),
            queue_block_ms: 20,
            ..QueueConfig::with_url(self.redis_url.clone())
        }
    }

    /// Stores `snapshot` and marks its height as the newest indexed block.
    pub async fn publish_snapshot(&self, snapshot: &BlockSnapshot) -> anyhow::Result<()> {
        self.index
            .write_block_snapshot(snapshot, SNAPSHOT_TTL)
            .await?;
        self.index
            .set_last_indexed(snapshot.height, Some(snapshot.time))
            .await?;
        Ok(())
    }

    /// Starts a health checker on this bench's Redis, as a long-running service: its workers
    /// connect and wait for jobs.
    pub async fn start(
        &self,
        source: HealthSource,
        onchain: Option<OnchainSource<TendermintClient>>,
    ) -> anyhow::Result<Running> {
        let queue = self.queue_config("bench");
        let redis = redline_pipeline::redis_conn::connect(
            &queue,
            redline_pipeline::redis_conn::ConnectOptions::default(),
        )
        .await
        .context("connecting to Redis")?;
        let outputs = Outputs::connect(&queue, &OutputConfig::default()).await?;
        let metrics = Metrics::unregistered();
        let checker = Arc::new(HealthChecker::new(
            WorkerConfig {
                health_source: source,
                workers: Some(self.workers),
                compute_threads: Some(self.compute_threads),
                // Every job of a block is for the newest block.
                max_job_age_blocks: 1,
                snapshot_cache_blocks: 4,
            },
            ProfitConfig::default(),
            IndexArgs::default(),
            redis,
            outputs,
            metrics.clone(),
            onchain,
        )?);
        let producer: RedisStreamQueue<HealthCheckJob> =
            RedisStreamQueue::connect(&self.queue_config("producer"), HEALTH_CHECK_QUEUE).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let checker = checker.clone();
            let config = self.queue_config(&format!("checker-{}", source.as_str()));
            async move { checker.run(&config, stopped).await }
        });
        // Let every worker connect and start waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Running {
            source,
            metrics,
            producer,
            stop,
            task,
        })
    }
}

/// A health checker running in this process, fed one block's jobs at a time.
pub struct Running {
    source: HealthSource,
    metrics: Metrics,
    producer: RedisStreamQueue<HealthCheckJob>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Cumulative counters of a running checker, to take differences.
#[derive(Debug, Clone, Copy)]
struct Totals {
    done: u64,
    settled: u64,
    checked: u64,
    liquidatable: u64,
    skipped: u64,
    phases: [f64; 3],
}

impl Running {
    fn totals(&self) -> Totals {
        let m = &self.metrics;
        let done = m.jobs_with(outcome::DONE);
        Totals {
            done,
            settled: done
                + m.jobs_with(outcome::MISSED_STALE)
                + m.jobs_with(outcome::MISSED_NO_SNAPSHOT)
                + m.jobs_with(outcome::DEAD_LETTERED),
            checked: m
                .accounts_checked
                .with_label_values(&[self.source.as_str()])
                .get(),
            liquidatable: m.liquidatable_found.get(),
            skipped: redline_health_checker::SkipReason::ALL
                .iter()
                .map(|r| m.skipped(*r))
                .sum(),
            phases: [
                m.phase_seconds("read"),
                m.phase_seconds("health"),
                m.phase_seconds("output"),
            ],
        }
    }

    /// Enqueues one block's `jobs` and times them from the enqueue to the last acknowledgement.
    pub async fn block(&self, jobs: Vec<HealthCheckJob>) -> anyhow::Result<RunResult> {
        let before = self.totals();
        let n = jobs.len() as u64;
        let started = Instant::now();
        self.producer.enqueue_batch(&jobs).await?;
        loop {
            if self.totals().settled - before.settled >= n {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(900),
                "the block's jobs did not finish within 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let after = self.totals();
        anyhow::ensure!(
            after.done - before.done == n,
            "only {} of {n} jobs were processed (the rest missed or dead-lettered)",
            after.done - before.done
        );
        Ok(RunResult {
            source: self.source,
            jobs: jobs.len(),
            accounts: after.checked - before.checked,
            liquidatable: after.liquidatable - before.liquidatable,
            skipped: after.skipped - before.skipped,
            elapsed,
            phases: [
                after.phases[0] - before.phases[0],
                after.phases[1] - before.phases[1],
                after.phases[2] - before.phases[2],
            ],
        })
    }

    /// Stops the workers (each finishes its job in hand).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await??;
        Ok(())
    }
}
