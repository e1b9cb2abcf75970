//! The worker loop: take a [`HealthCheckJob`] from the queue, compute the health of every account
//! in its buckets at its block, write the results, then acknowledge.
//!
//! Per job:
//!
//! 1. **Stale work.** A job for a height older than the newest indexed block by more than
//!    `--max-job-age-blocks` (default 1) is skipped — acknowledged and counted as
//!    `missed_stale` — because the collector cuts the same buckets into a job for every block,
//!    so a newer job already covers these accounts with fresher prices. Computing the old one
//!    would only delay the new one. Set a large value to process every block regardless.
//! 2. **Snapshot.** The block's [`BlockSnapshot`] (prices of the block's one `prices` query,
//!    markets, params, THF, block time) is loaded once per height and kept in memory for the
//!    last `--snapshot-cache-blocks` heights. A snapshot that is gone (expired) makes the job a
//!    `missed_no_snapshot`: there is nothing to compute it with, and a newer job follows.
//! 3. **Accounts** of buckets `[bucket_start, bucket_end)` are read from the index.
//! 4. **Health**, off-chain ([`BlockContext::evaluate`], on blocking threads, split across
//!    `--compute-threads`) or on-chain (`--health-source onchain`, [`crate::onchain`]).
//! 5. **Outputs** ([`Outputs::write`]): liquidatable accounts (liquidation HF < 1) with their
//!    best plan to the liquidation queue, accounts under the watch threshold to the
//!    near-liquidation set.
//! 6. **Ack** only now, when the results are in Redis. A worker that dies before leaves the job
//!    pending; another worker reclaims it after the visibility timeout (which a long job keeps
//!    extending while it runs).
//!
//! Bad accounts (undecodable entries, unknown denoms, missing or zero prices) are skipped, each
//! logged with its account and reason (the first few of each reason per job, then a count) and
//! counted by reason; they never stop a job and are never reported healthy.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use cosmwasm_std::Decimal;
use futures::{StreamExt, TryStreamExt};
use mars::types::Health;
use redline_chain::ChainClient;
use redline_pipeline::index::credit::CreditBook;
use redline_pipeline::index::{
    BlockSnapshot, BucketRead, IndexArgs, IndexError, IndexNamespace, IndexedAccount, PositionIndex,
};
use redline_pipeline::jobs::{
    AccountKey, HealthCheckJob, LiquidationCandidate, ProtocolKind, HEALTH_CHECK_QUEUE,
};
use redline_pipeline::queue::{Delivery, Queue, QueueConfig, QueueError, RedisStreamQueue};
use redline_pipeline::redis_conn::RedisConn;
use tokio::sync::{watch, OnceCell};
use tracing::{debug, error, info, warn};

use crate::compute::{BlockContext, Skip, SkipReason};
use crate::credit::{evaluate_credit_accounts, CreditContext};
use crate::metrics::{outcome, Metrics};
use crate::onchain::{self, OnchainConfig};
use crate::output::{JobOutput, NearEntry, OutputError, OutputSummary, Outputs};
use crate::profit::{self, ProfitConfig};

/// Skipped accounts logged one by one per reason and job; the rest are counted in one line.
const SKIP_LOG_LIMIT: usize = 10;
/// Below this many accounts a job is computed on one thread.
const PARALLEL_MIN_ACCOUNTS: usize = 4_096;

/// Where account health comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HealthSource {
    /// Computed here from the index and the block's snapshot (the contract's math).
    Offchain,
    /// One `user_position` query per account (the baseline).
    Onchain,
}

impl HealthSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthSource::Offchain => "offchain",
            HealthSource::Onchain => "onchain",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Where health comes from: `offchain` (index + snapshot, the contract's math) or `onchain`
    /// (one `user_position` query per account, the baseline).
    #[arg(long, env = "HEALTH_SOURCE", value_enum, default_value = "offchain")]
    pub health_source: HealthSource,
    /// Jobs processed at once by this process (each with its own queue consumer). Default: the
    /// number of CPUs.
    #[arg(long, env = "HEALTH_WORKERS", value_parser = at_least_one())]
    pub workers: Option<usize>,
    /// Threads one off-chain job's accounts are split across. Default: the number of CPUs.
    #[arg(long, env = "COMPUTE_THREADS", value_parser = at_least_one())]
    pub compute_threads: Option<usize>,
    /// A job whose height is older than the newest indexed block by more than this is skipped
    /// (acknowledged, counted as missed): a newer job covers the same buckets.
    #[arg(long, env = "MAX_JOB_AGE_BLOCKS", default_value_t = 1)]
    pub max_job_age_blocks: u64,
    /// Block snapshots kept in memory (one per height).
    #[arg(long, env = "SNAPSHOT_CACHE_BLOCKS", default_value_t = 8, value_parser = at_least_one())]
    pub snapshot_cache_blocks: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            health_source: HealthSource::Offchain,
            workers: None,
            compute_threads: None,
            max_job_age_blocks: 1,
            snapshot_cache_blocks: 8,
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A count flag that must be at least 1.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

impl WorkerConfig {
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(cpus)
    }

    pub fn compute_threads(&self) -> usize {
        self.compute_threads.unwrap_or_else(cpus)
    }
}

/// The chain and contract the on-chain baseline queries.
#[derive(Debug, Clone)]
pub struct OnchainSource<C> {
    pub client: C,
    pub red_bank: String,
    pub config: OnchainConfig,
}

/// How one job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    MissedStale { newest: u64 },
    MissedNoSnapshot,
}

/// What one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub outcome: JobOutcome,
    pub checked: u64,
    pub liquidatable: u64,
    pub near: u64,
    pub skipped: u64,
    pub output: OutputSummary,
    pub duration: Duration,
}

impl JobReport {
    fn missed(outcome: JobOutcome, duration: Duration) -> Self {
        JobReport {
            outcome,
            checked: 0,
            liquidatable: 0,
            near: 0,
            skipped: 0,
            output: OutputSummary::default(),
            duration,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try (Redis or the chain away).
    #[error("index: {0}")]
    Index(#[from] IndexError),
    #[error("{0}")]
    Output(#[from] OutputError),
    #[error("compute task failed: {0}")]
    Task(String),
    /// Never processable by this worker: dead-letter it.
    #[error("{0}")]
    Unprocessable(String),
}

impl JobError {
    fn is_permanent(&self) -> bool {
        matches!(self, JobError::Unprocessable(_))
    }
}

/// The per-account verdicts of one job.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub checked: u64,
    /// `(account index, liquidation-priced health, plan)`.
    pub liquidatable: Vec<(
        usize,
        Health,
        Option<redline_pipeline::jobs::LiquidationPlan>,
    )>,
    /// `(account index, liquidation HF)` of accounts under the watch threshold.
    pub near: Vec<(usize, Decimal)>,
    pub skipped: Vec<Skip>,
}

impl Evaluation {
    fn merge(&mut self, other: Evaluation, offset: usize) {
        self.checked += other.checked;
        self.liquidatable.extend(
            other
                .liquidatable
                .into_iter()
                .map(|(i, h, p)| (i + offset, h, p)),
        );
        self.near
            .extend(other.near.into_iter().map(|(i, hf)| (i + offset, hf)));
        self.skipped.extend(other.skipped);
    }
}

/// Health of every account, on this thread.
pub fn evaluate_accounts(
    ctx: &BlockContext,
    accounts: &[IndexedAccount],
    watch_threshold: Decimal,
    profit: &ProfitConfig,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for (i, account) in accounts.iter().enumerate() {
        match ctx.evaluate(account) {
            Ok(health) => {
                evaluation.checked += 1;
                classify(
                    ctx,
                    &mut evaluation,
                    i,
                    &account.address,
                    health,
                    watch_threshold,
                    profit,
                );
            }
            Err(skip) => evaluation.skipped.push(skip),
        }
    }
    evaluation
}

fn classify(
    ctx: &BlockContext,
    evaluation: &mut Evaluation,
    i: usize,
    address: &str,
    health: crate::compute::AccountHealth,
    watch_threshold: Decimal,
    profit: &ProfitConfig,
) {
    let Some(hf) = health.liquidation_health.liquidation_health_factor else {
        return;
    };
    if hf < watch_threshold {
        evaluation.near.push((i, hf));
    }
    if hf < Decimal::one() {
        let plan = match profit::best_plan(ctx, &health.lines, &health.liquidation_health, profit) {
            Ok(plan) => plan,
            Err(error) => {
                // Still liquidatable: reported without a plan (priority 0), never dropped.
                warn!(account = address, %error, "no liquidation plan: the math failed");
                None
            }
        };
        evaluation
            .liquidatable
            .push((i, health.liquidation_health, plan));
    }
}

/// [`evaluate_accounts`] split across `threads` OS threads.
pub fn evaluate_parallel(
    ctx: &BlockContext,
    accounts: &[IndexedAccount],
    watch_threshold: Decimal,
    profit: &ProfitConfig,
    threads: usize,
) -> Evaluation {
    if threads <= 1 || accounts.len() < PARALLEL_MIN_ACCOUNTS {
        return evaluate_accounts(ctx, accounts, watch_threshold, profit);
    }
    let chunk = accounts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = accounts
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                (
                    n * chunk,
                    scope.spawn(move || evaluate_accounts(ctx, part, watch_threshold, profit)),
                )
            })
            .collect();
        let mut all = Evaluation::default();
        for (offset, handle) in handles {
            match handle.join() {
                Ok(part) => all.merge(part, offset),
                // The math never panics by design; if it did, the chunk's accounts are
                // reported as skipped rather than silently healthy.
                Err(_) => {
                    for account in &accounts[offset..(offset + chunk).min(accounts.len())] {
                        all.skipped.push(Skip {
                            account: account.address.clone(),
                            reason: SkipReason::Math,
                            detail: "the health computation panicked".into(),
                        });
                    }
                }
            }
        }
        all
    })
}

/// Buckets read per request when a job's range is split (a request is one pipelined round trip
/// of the index's reader).
const READ_CHUNK_BUCKETS: u32 = 16;
/// Bucket reads in flight at once for one job.
const READ_CONCURRENCY: usize = 16;

/// Every account of `range`, read in chunks of [`READ_CHUNK_BUCKETS`] buckets that are in flight
/// together: a job over many small buckets costs a few round trips instead of one per chunk.
/// The denom table is append-only, so the longest table read resolves every id of every chunk.
pub async fn read_buckets_concurrently(
    index: &PositionIndex,
    range: std::ops::Range<u32>,
) -> Result<BucketRead, IndexError> {
    if range.end.saturating_sub(range.start) <= READ_CHUNK_BUCKETS {
        return index.read_buckets(range).await;
    }
    let chunks: Vec<std::ops::Range<u32>> = (range.start..range.end)
        .step_by(READ_CHUNK_BUCKETS as usize)
        .map(|start| start..(start + READ_CHUNK_BUCKETS).min(range.end))
        .collect();
    let mut parts: Vec<(u32, BucketRead)> = futures::stream::iter(chunks)
        .map(|chunk| async move {
            let start = chunk.start;
            index.read_buckets(chunk).await.map(|read| (start, read))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    parts.sort_unstable_by_key(|(start, _)| *start);
    let mut all = BucketRead::default();
    for (_, part) in parts {
        all.accounts.extend(part.accounts);
        all.errors.extend(part.errors);
        if part.denoms.len() > all.denoms.len() {
            all.denoms = part.denoms;
        }
    }
    Ok(all)
}

/// Block snapshots by height, each loaded from Redis once.
struct SnapshotCache {
    capacity: usize,
    entries: Mutex<SnapshotEntries>,
}

type SnapshotCell = Arc<OnceCell<Option<Arc<BlockSnapshot>>>>;
type SnapshotKey = (IndexNamespace, u64);
/// The cells by key, and the keys in insertion order (for eviction).
type SnapshotEntries = (HashMap<SnapshotKey, SnapshotCell>, VecDeque<SnapshotKey>);

impl SnapshotCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    async fn get(
        &self,
        index: &PositionIndex,
        height: u64,
    ) -> Result<Option<Arc<BlockSnapshot>>, IndexError> {
        let key = (index.namespace().clone(), height);
        let cell = {
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let (map, order) = &mut *guard;
            if let Some(cell) = map.get(&key) {
                cell.clone()
            } else {
                let cell: SnapshotCell = Arc::default();
                map.insert(key.clone(), cell.clone());
                order.push_back(key.clone());
                while order.len() > self.capacity {
                    if let Some(old) = order.pop_front() {
                        map.remove(&old);
                    }
                }
                cell
            }
        };
        let loaded = cell
            .get_or_try_init(|| async {
                Ok::<_, IndexError>(index.block_snapshot(height).await?.map(Arc::new))
            })
            .await?;
        if loaded.is_none() {
            // Not cached as missing: the collector may write it a moment later.
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            guard.0.remove(&key);
        }
        Ok(loaded.clone())
    }
}

/// The health checker: shared by every worker loop of the process.
pub struct HealthChecker<C> {
    config: WorkerConfig,
    profit: ProfitConfig,
    index_args: IndexArgs,
    redis: RedisConn,
    indexes: tokio::sync::Mutex<HashMap<IndexNamespace, PositionIndex>>,
    snapshots: SnapshotCache,
    outputs: Outputs,
    metrics: Metrics,
    onchain: Option<OnchainSource<C>>,
    newest_seen: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a job writes: its liquidatable accounts as candidates, its near ones with their buckets,
/// and the accounts it could not check.
fn job_output(
    job: &HealthCheckJob,
    index: &PositionIndex,
    accounts: &[IndexedAccount],
    evaluation: &Evaluation,
) -> JobOutput {
    let found_at_ms = now_ms();
    let candidates = evaluation
        .liquidatable
        .iter()
        .map(|(i, health, plan)| LiquidationCandidate {
            chain_id: job.chain_id.clone(),
            protocol: job.protocol,
            account: AccountKey::Address(accounts[*i].address.clone()),
            height: job.height,
            found_at_ms,
            health: health.clone(),
            plan: plan.clone(),
            armed: false,
        })
        .collect();
    let near = evaluation
        .near
        .iter()
        .map(|(i, hf)| NearEntry {
            account: accounts[*i].address.clone(),
            bucket: index.bucket_of(&accounts[*i].address),
            health_factor: *hf,
        })
        .collect();
    JobOutput {
        chain_id: job.chain_id.clone(),
        protocol: job.protocol,
        height: job.height,
        buckets: job.bucket_start..job.bucket_end,
        candidates,
        near,
        skipped: evaluation
            .skipped
            .iter()
            .map(|s| s.account.clone())
            .collect::<HashSet<_>>(),
    }
}

impl<C: ChainClient + 'static> HealthChecker<C> {
    /// A health checker writing to `outputs`. `onchain` is required for
    /// `--health-source onchain`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: WorkerConfig,
        profit: ProfitConfig,
        index_args: IndexArgs,
        redis: RedisConn,
        outputs: Outputs,
        metrics: Metrics,
        onchain: Option<OnchainSource<C>>,
    ) -> anyhow::Result<Self> {
        if config.health_source == HealthSource::Onchain && onchain.is_none() {
            anyhow::bail!("--health-source onchain needs a chain client and the Red Bank address");
        }
        Ok(Self {
            snapshots: SnapshotCache::new(config.snapshot_cache_blocks),
            config,
            profit,
            index_args,
            redis,
            indexes: tokio::sync::Mutex::new(HashMap::new()),
            outputs,
            metrics,
            onchain,
            newest_seen: AtomicU64::new(0),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    async fn index(
        &self,
        chain_id: &str,
        protocol: ProtocolKind,
    ) -> Result<PositionIndex, IndexError> {
        let namespace = self.index_args.namespace(chain_id, protocol);
        let mut indexes = self.indexes.lock().await;
        if let Some(index) = indexes.get(&namespace) {
            return Ok(index.clone());
        }
        let index = PositionIndex::open(self.redis.clone(), namespace.clone()).await?;
        indexes.insert(namespace, index.clone());
        Ok(index)
    }

    /// Processes one job: everything but the acknowledgement.
    pub async fn process(&self, job: &HealthCheckJob) -> Result<JobReport, JobError> {
        if job.protocol == ProtocolKind::Rover {
            return self.process_credit(job).await;
        }
        let started = Instant::now();
        let index = self.job_index(job).await?;
        let snapshot = match self.job_snapshot(job, &index).await? {
            Ok(snapshot) => snapshot,
            Err(missed) => return Ok(JobReport::missed(missed, started.elapsed())),
        };
        let (accounts, evaluation) = self.compute(job, &index, &snapshot).await?;
        let output = job_output(job, &index, &accounts, &evaluation);
        self.report_skips(job, &evaluation.skipped);
        let liquidatable = output.candidates.len() as u64;
        let near = output.near.len() as u64;
        let phase = Instant::now();
        let output = self.outputs.write(output).await?;
        self.metrics.observe_phase("output", phase);

        let duration = started.elapsed();
        self.record_done(evaluation.checked, liquidatable, duration);
        Ok(JobReport {
            outcome: JobOutcome::Done,
            checked: evaluation.checked,
            liquidatable,
            near,
            skipped: evaluation.skipped.len() as u64,
            output,
            duration,
        })
    }

    /// A credit-account job: every account of the credit book at the job's block.
    async fn process_credit(&self, job: &HealthCheckJob) -> Result<JobReport, JobError> {
        let started = Instant::now();
        let namespace = self
            .index_args
            .namespace(&job.chain_id, ProtocolKind::Rover);
        let book = CreditBook::new(self.redis.clone(), namespace);
        if let Some(stale) = self.stale(job, book.last_indexed_height().await?) {
            return Ok(JobReport::missed(stale, started.elapsed()));
        }
        let Some(snapshot) = book.snapshot(job.height).await? else {
            let missed = JobOutcome::MissedNoSnapshot;
            return Ok(JobReport::missed(missed, started.elapsed()));
        };
        let (accounts, undecodable) = book.accounts().await?;
        let ctx = CreditContext::new(snapshot);
        let mut evaluation = evaluate_credit_accounts(&ctx, &accounts, &self.profit);
        evaluation
            .skipped
            .extend(undecodable.into_iter().map(|e| Skip {
                account: e.account,
                reason: SkipReason::Undecodable,
                detail: e.reason,
            }));
        self.report_skips(job, &evaluation.skipped);
        let found_at_ms = now_ms();
        let liquidatable = evaluation.liquidatable.len() as u64;
        // A credit account with no liquidation the credit manager accepts (dust, or only at a
        // loss) is no job for a liquidator: it is counted, not queued.
        let candidates: Vec<_> = evaluation
            .liquidatable
            .into_iter()
            .filter(|(_, _, plan)| plan.is_some())
            .map(|(id, health, plan)| LiquidationCandidate {
                chain_id: job.chain_id.clone(),
                protocol: ProtocolKind::Rover,
                account: AccountKey::CreditAccount(id),
                height: job.height,
                found_at_ms,
                health,
                plan,
                armed: false,
            })
            .collect();
        let output = self
            .outputs
            .write(JobOutput {
                chain_id: job.chain_id.clone(),
                protocol: ProtocolKind::Rover,
                height: job.height,
                buckets: 0..0,
                candidates,
                near: Vec::new(),
                skipped: HashSet::new(),
            })
            .await?;
        let duration = started.elapsed();
        self.record_done(evaluation.checked, liquidatable, duration);
        Ok(JobReport {
            outcome: JobOutcome::Done,
            checked: evaluation.checked,
            liquidatable,
            near: 0,
            skipped: evaluation.skipped.len() as u64,
            output,
            duration,
        })
    }

    /// The index a job refers to, once the job is known to fit it.
    async fn job_index(&self, job: &HealthCheckJob) -> Result<PositionIndex, JobError> {
        // One health computation per protocol: the Red Bank's from the index and snapshot.
        match job.protocol {
            ProtocolKind::RedBank => {}
            other => {
                return Err(JobError::Unprocessable(
                    redline_protocol::Unsupported(other).to_string(),
                ))
            }
        }
        if job.bucket_start > job.bucket_end {
            return Err(JobError::Unprocessable(format!(
                "bucket range {}..{} is reversed",
                job.bucket_start, job.bucket_end
            )));
        }
        let index = self.index(&job.chain_id, job.protocol).await?;
        if job.bucket_end > index.buckets() {
            return Err(JobError::Unprocessable(format!(
                "bucket range {}..{} exceeds the index's {} buckets",
                job.bucket_start,
                job.bucket_end,
                index.buckets()
            )));
        }
        Ok(index)
    }

    /// `MissedStale` when the job's block is further behind the newest block seen (indexed, or
    /// in any job) than `--max-job-age-blocks`.
    fn stale(&self, job: &HealthCheckJob, last_indexed: Option<u64>) -> Option<JobOutcome> {
        let newest = last_indexed
            .unwrap_or(0)
            .max(self.newest_seen.fetch_max(job.height, Ordering::Relaxed))
            .max(job.height);
        (newest - job.height > self.config.max_job_age_blocks)
            .then_some(JobOutcome::MissedStale { newest })
    }

    /// The snapshot of the job's block, or how the job is missed (stale, or its snapshot gone).
    async fn job_snapshot(
        &self,
        job: &HealthCheckJob,
        index: &PositionIndex,
    ) -> Result<Result<Arc<BlockSnapshot>, JobOutcome>, JobError> {
        if let Some(stale) = self.stale(job, index.last_indexed_height().await?) {
            return Ok(Err(stale));
        }
        let Some(snapshot) = self.snapshots.get(index, job.height).await? else {
            return Ok(Err(JobOutcome::MissedNoSnapshot));
        };
        if snapshot.chain_id != job.chain_id {
            return Err(JobError::Unprocessable(format!(
                "snapshot of block {} is for chain {}, the job for {}",
                job.height, snapshot.chain_id, job.chain_id
            )));
        }
        Ok(Ok(snapshot))
    }

    /// Reads the job's accounts and evaluates them; the evaluation's skips include the entries
    /// that could not be decoded (first) as well as the accounts that could not be evaluated.
    async fn compute(
        &self,
        job: &HealthCheckJob,
        index: &PositionIndex,
        snapshot: &BlockSnapshot,
    ) -> Result<(Arc<Vec<IndexedAccount>>, Evaluation), JobError> {
        let phase = Instant::now();
        let read = read_buckets_concurrently(index, job.bucket_start..job.bucket_end).await?;
        self.metrics.observe_phase("read", phase);
        let ctx = Arc::new(BlockContext::new(snapshot, &read.denoms));
        let mut skipped: Vec<Skip> = read
            .errors
            .iter()
            .map(|e| Skip {
                account: e.address.clone(),
                reason: SkipReason::Undecodable,
                detail: format!("bucket {}: {}", e.bucket, e.reason),
            })
            .collect();
        let accounts = Arc::new(read.accounts);

        let phase = Instant::now();
        let mut evaluation = self
            .evaluate(ctx, &read.denoms, accounts.clone(), job.height)
            .await?;
        self.metrics.observe_phase("health", phase);
        skipped.append(&mut evaluation.skipped);
        evaluation.skipped = skipped;
        Ok((accounts, evaluation))
    }

    /// Health of `accounts` from the configured source.
    async fn evaluate(
        &self,
        ctx: Arc<BlockContext>,
        denoms: &redline_pipeline::index::DenomTable,
        accounts: Arc<Vec<IndexedAccount>>,
        height: u64,
    ) -> Result<Evaluation, JobError> {
        let threshold = self.outputs.watch_threshold();
        match self.config.health_source {
            HealthSource::Offchain => {
                let profit = self.profit.clone();
                let threads = self.config.compute_threads();
                tokio::task::spawn_blocking(move || {
                    evaluate_parallel(&ctx, &accounts, threshold, &profit, threads)
                })
                .await
                .map_err(|e| JobError::Task(e.to_string()))
            }
            HealthSource::Onchain => Ok(self
                .evaluate_onchain(&ctx, denoms, &accounts, height, threshold)
                .await),
        }
    }

    /// The metrics of a job done in `duration`.
    fn record_done(&self, checked: u64, liquidatable: u64, duration: Duration) {
        let source = self.config.health_source.as_str();
        self.metrics
            .accounts_checked
            .with_label_values(&[source])
            .inc_by(checked);
        self.metrics.liquidatable_found.inc_by(liquidatable);
        self.metrics
            .job_duration
            .with_label_values(&[source])
            .observe(duration.as_secs_f64());
        if checked > 0 {
            self.metrics
                .positions_per_second
                .set(checked as f64 / duration.as_secs_f64().max(1e-9));
        }
    }

    async fn evaluate_onchain(
        &self,
        ctx: &BlockContext,
        denoms: &redline_pipeline::index::DenomTable,
        accounts: &[IndexedAccount],
        height: u64,
        threshold: Decimal,
    ) -> Evaluation {
        let Some(source) = &self.onchain else {
            // Refused at construction; kept total for the type system.
            return Evaluation::default();
        };
        let addresses: Vec<String> = accounts.iter().map(|a| a.address.clone()).collect();
        let healths = onchain::user_healths(
            &source.client,
            &source.red_bank,
            &addresses,
            height,
            !ctx.same_prices(),
            source.config.onchain_concurrency,
        )
        .await;
        let mut evaluation = Evaluation::default();
        for (i, answer) in healths.into_iter().enumerate() {
            let health = match answer {
                Ok(health) => health,
                Err(error) => {
                    evaluation.skipped.push(Skip {
                        account: addresses[i].clone(),
                        reason: SkipReason::QueryFailed,
                        detail: error.to_string(),
                    });
                    continue;
                }
            };
            evaluation.checked += 1;
            let Some(hf) = health.liquidation_health_factor else {
                continue;
            };
            if hf < threshold {
                evaluation.near.push((i, hf));
            }
            if hf < Decimal::one() {
                let plan = match onchain::account_lines(
                    &source.client,
                    &source.red_bank,
                    ctx,
                    denoms,
                    &addresses[i],
                    height,
                )
                .await
                {
                    Ok(lines) => profit::best_plan(ctx, &lines, &health, &self.profit)
                        .unwrap_or_else(|error| {
                            warn!(account = %addresses[i], %error, "no liquidation plan: the math failed");
                            None
                        }),
                    Err(error) => {
                        warn!(account = %addresses[i], %error, "no liquidation plan: positions unavailable");
                        None
                    }
                };
                evaluation.liquidatable.push((i, health, plan));
            }
        }
        evaluation
    }

    fn report_skips(&self, job: &HealthCheckJob, skipped: &[Skip]) {
        if skipped.is_empty() {
            return;
        }
        let mut by_reason: BTreeMap<SkipReason, usize> = BTreeMap::new();
        for skip in skipped {
            let seen = by_reason.entry(skip.reason).or_default();
            *seen += 1;
            if *seen <= SKIP_LOG_LIMIT {
                warn!(
                    height = job.height,
                    account = %skip.account,
                    reason = %skip.reason,
                    detail = %skip.detail,
                    "account skipped: its health cannot be computed"
                );
            }
        }
        for (reason, count) in by_reason {
            self.metrics
                .accounts_skipped
                .with_label_values(&[reason.as_str()])
                .inc_by(count as u64);
            if count > SKIP_LOG_LIMIT {
                warn!(
                    height = job.height,
                    %reason,
                    count,
                    logged = SKIP_LOG_LIMIT,
                    "accounts skipped in this job (only the first ones are logged one by one)"
                );
            }
        }
    }

    /// Processes one delivery and settles it with the queue: ack after the results are
    /// written (or the job was skipped as missed), dead-letter when it can never be processed,
    /// hand back for another try on a transient failure. While the job runs, its visibility
    /// timeout is extended so that no other worker takes it over.
    pub async fn handle(
        &self,
        queue: &RedisStreamQueue<HealthCheckJob>,
        delivery: &Delivery<HealthCheckJob>,
        visibility: Duration,
    ) -> Result<Option<JobReport>, QueueError> {
        let job = &delivery.job;
        let work = self.process(job);
        tokio::pin!(work);
        let mut heartbeat = tokio::time::interval((visibility / 3).max(Duration::from_millis(10)));
        heartbeat.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                _ = heartbeat.tick() => {
                    if let Err(error) = queue.extend_visibility(delivery).await {
                        warn!(%error, height = job.height, "could not extend the job's visibility");
                    }
                }
            }
        };
        match result {
            Ok(report) => {
                let label = match report.outcome {
                    JobOutcome::Done => outcome::DONE,
                    JobOutcome::MissedStale { newest } => {
                        info!(
                            height = job.height,
                            newest,
                            buckets = ?(job.bucket_start..job.bucket_end),
                            "stale job skipped: a newer block's job covers these buckets"
                        );
                        outcome::MISSED_STALE
                    }
                    JobOutcome::MissedNoSnapshot => {
                        warn!(
                            height = job.height,
                            "job skipped: the block's snapshot is gone (expired or never written)"
                        );
                        outcome::MISSED_NO_SNAPSHOT
                    }
                };
                queue.ack(delivery).await?;
                self.metrics.jobs.with_label_values(&[label]).inc();
                if report.outcome == JobOutcome::Done {
                    debug!(
                        height = job.height,
                        buckets = ?(job.bucket_start..job.bucket_end),
                        checked = report.checked,
                        liquidatable = report.liquidatable,
                        near = report.near,
                        skipped = report.skipped,
                        took_ms = report.duration.as_millis() as u64,
                        "job done"
                    );
                }
                Ok(Some(report))
            }
            Err(error) if error.is_permanent() => {
                error!(height = job.height, %error, "job cannot be processed; dead-lettered");
                queue.dead_letter(delivery, &error.to_string()).await?;
                self.metrics
                    .jobs
                    .with_label_values(&[outcome::DEAD_LETTERED])
                    .inc();
                Ok(None)
            }
            Err(error) => {
                warn!(height = job.height, deliveries = delivery.deliveries, %error, "job failed; handed back for another try");
                queue.release(delivery).await?;
                self.metrics
                    .jobs
                    .with_label_values(&[outcome::FAILED])
                    .inc();
                Ok(None)
            }
        }
    }

    /// Runs `workers` loops, each with its own queue consumer (`<consumer>-<i>`), until
    /// `shutdown` turns true. A loop finishes the job in hand before it stops.
    pub async fn run(
        self: Arc<Self>,
        queue_config: &QueueConfig,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let base = queue_config.consumer_name();
        let mut loops = Vec::new();
        for i in 0..self.config.workers() {
            let config = QueueConfig {
                queue_consumer: Some(format!("{base}-{i}")),
                ..queue_config.clone()
            };
            let queue: RedisStreamQueue<HealthCheckJob> =
                RedisStreamQueue::connect(&config, HEALTH_CHECK_QUEUE).await?;
            let checker = self.clone();
            let mut shutdown = shutdown.clone();
            let block = config.block_timeout();
            loops.push(tokio::spawn(async move {
                let visibility = queue.visibility_timeout();
                while !*shutdown.borrow() {
                    let deliveries = tokio::select! {
                        fetched = queue.fetch(1, block) => fetched,
                        _ = shutdown.changed() => break,
                    };
                    let deliveries = match deliveries {
                        Ok(deliveries) => deliveries,
                        Err(error) => {
                            warn!(%error, "fetching health-check jobs failed; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    for delivery in deliveries {
                        if let Err(error) = checker.handle(&queue, &delivery, visibility).await {
                            warn!(%error, height = delivery.job.height, "settling a job failed; it will be reclaimed");
                        }
                    }
                }
            }));
        }
        info!(
            workers = loops.len(),
            source = self.config.health_source.as_str(),
            watch_threshold = %self.outputs.watch_threshold(),
            "health checker running"
        );
        for handle in loops {
            handle.await?;
        }
        Ok(())
    }
}
