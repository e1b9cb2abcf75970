//! The manager's per-block control loop.
//!
//! Between blocks it samples the queues every `--poll-ms`: the oldest health-check job still
//! queued (which tells when a block's work is done), how many jobs are queued (busy time of the
//! health checkers), the liquidation queue's backlog, and new liquidator attempts (printed as
//! they land). A background reader tails the health-check stream to see every enqueue with its
//! block height (see [`crate::watch`]).
//!
//! At each block `h` it
//! 1. closes the blocks whose deadline has passed (`h − D`): on time, late (jobs still queued,
//!    counted as missed jobs) or never enqueued, with the accounts checked in time, the lag
//!    from block arrival to the last job done, and the liquidations queued and landed while the
//!    block was the newest; each record goes to the capped stream `<queue prefix>:manager:blocks`
//!    (one JSON field `record`), to the metrics and to the log;
//! 2. scans the health-check backlog per block, and decides per worker kind how many workers
//!    are needed ([`crate::autoscale`]) from the work of the new block, what is left over, the
//!    measured per-worker throughput and the measured block time; a scaling task per kind
//!    makes the backend follow (and replaces workers that died).
//!
//! When no block arrives for `--block-alarm-secs` it raises the alarm: an error log line
//! (repeated every as many seconds), `redline_manager_block_alarm` = 1 and `/health` status
//! `alarm`; the block feed meanwhile keeps reconnecting on its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use redline_chain::NewBlock;
use redline_pipeline::index::IndexNamespace;
use redline_pipeline::queue::QueueConfig;
use redline_pipeline::redis_conn::RedisConn;
use redline_service::metrics::HealthReport;
use redline_service::notify::Notifier;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::autoscale::{Autoscaler, Decision, Observation, Reason, ScalingPolicy};
use crate::ledger::{BlockLedger, BlockRecord, BlockStatus};
use crate::metrics::ManagerMetrics;
use crate::scaler::process::ProcessScaler;
use crate::scaler::{Scaler, WorkerCount, WorkerKind};
use crate::watch::{
    connect as connect_redis, plain, unix_ms, Attempt, AttemptsTail, Enqueued, HealthCheckWatch,
    LiquidationWatch, WatchError,
};

/// How often a scaling task re-applies the desired count (replacing dead workers) and reads
/// the backend's count.
const SCALING_TICK: Duration = Duration::from_millis(500);
/// Attempt records read per poll at most.
const ATTEMPTS_PER_POLL: usize = 1_000;

/// Everything the loop needs besides its connections.
#[derive(Debug, Clone)]
pub struct Settings {
    pub queue: QueueConfig,
    /// Where the collector writes block snapshots (`N:block:<height>`).
    pub index: IndexNamespace,
    /// The chain's configured block time (the block-time estimate starts here).
    pub block_time: Duration,
    pub deadline_blocks: u32,
    pub poll: Duration,
    pub block_alarm: Duration,
    pub blocks_stream_max_len: u64,
    pub backlog_scan_cap: usize,
    /// Full key of the liquidator's attempts stream.
    pub attempts_stream: String,
    /// The liquidators' capital reports (`redline_pipeline::capital::capital_key`).
    pub capital_key: String,
    pub print_liquidations: bool,
    pub health_checker_policy: ScalingPolicy,
    pub liquidator_policy: ScalingPolicy,
}

/// The stream the manager writes one record per block to.
pub fn blocks_stream_key(queue_prefix: &str) -> String {
    format!("{queue_prefix}:manager:blocks")
}

/// Totals of one run, for the final log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub blocks: u64,
    pub on_time: u64,
    pub late: u64,
    pub not_enqueued: u64,
    pub warming_up: u64,
    pub jobs_missed: u64,
    pub liquidations_done: u64,
    pub scale_ups: u64,
    pub scale_downs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("the block feed ended")]
    FeedEnded,
}

/// The backend follows one kind's desired count.
struct ScalingTask {
    desired: watch::Sender<u32>,
    observed: watch::Receiver<WorkerCount>,
    handle: JoinHandle<()>,
}

fn spawn_scaling_task<S: Scaler + 'static>(
    scaler: Arc<S>,
    kind: WorkerKind,
    initial: u32,
    metrics: ManagerMetrics,
    notifier: Notifier,
) -> ScalingTask {
    let (desired_tx, mut desired_rx) = watch::channel(initial);
    let (observed_tx, observed_rx) = watch::channel(WorkerCount {
        desired: initial,
        ..WorkerCount::default()
    });
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SCALING_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                changed = desired_rx.changed() => if changed.is_err() { break },
                _ = tick.tick() => {}
            }
            let desired = *desired_rx.borrow_and_update();
            let result = async {
                scaler.scale_to(kind, desired).await?;
                scaler.observe(kind).await
            }
            .await;
            match result {
                Ok(count) => {
                    if failing {
                        info!(%kind, "scaler answers again");
                        failing = false;
                    }
                    let _ = observed_tx.send(count);
                }
                Err(error) => {
                    metrics
                        .scaler_errors
                        .with_label_values(&[kind.service()])
                        .inc();
                    if !failing {
                        warn!(%kind, %error, "scaling failed; retrying");
                        notifier
                            .error(
                                "manager",
                                format!("scaling the {kind} workers fails: {error}"),
                            )
                            .await;
                        failing = true;
                    } else {
                        debug!(%kind, %error, "scaling still failing");
                    }
                }
            }
        }
    });
    ScalingTask {
        desired: desired_tx,
        observed: observed_rx,
        handle,
    }
}

/// Keeps one `collector` running under the process backend until `stop` turns true.
pub fn supervise_collector(
    scaler: Arc<ProcessScaler>,
    mut stop: watch::Receiver<bool>,
    notifier: Notifier,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            if *stop.borrow() {
                break;
            }
            match scaler.scale_service("collector", 1).await {
                Ok(()) => failing = false,
                Err(error) if !failing => {
                    error!(%error, "cannot run the collector; retrying");
                    notifier
                        .error("manager", format!("cannot run the collector: {error}"))
                        .await;
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(SCALING_TICK) => {}
            }
        }
    })
}

/// Per-kind state of the decision between two blocks.
struct KindState {
    kind: WorkerKind,
    autoscaler: Autoscaler,
    task: ScalingTask,
    /// Worker-seconds with work in hand since the last decision.
    busy_worker_seconds: f64,
    /// Units completed since the last decision (liquidators: attempts).
    completed: u64,
    /// `(arrived, backlog)` the last decision planned for.
    planned: (u64, u64),
    last_decision: Option<Decision>,
}

impl KindState {
    fn count(&self) -> WorkerCount {
        *self.task.observed.borrow()
    }
}

/// The control loop. Create with [`Manager::start`], drive with [`Manager::run`].
pub struct Manager<S: Scaler + 'static> {
    settings: Settings,
    scaler: Arc<S>,
    metrics: ManagerMetrics,
    health: HealthReport,
    /// Errors an operator must hear about (no blocks, scaling failing) go here.
    notifier: Notifier,
    conn: RedisConn,
    health_checks: HealthCheckWatch,
    liquidations: LiquidationWatch,
    attempts: AttemptsTail,
    enqueued: mpsc::Receiver<Enqueued>,
    tail: JoinHandle<()>,
    ledger: BlockLedger,
    health_checkers: KindState,
    liquidators: KindState,
    summary: RunSummary,
    // Between blocks.
    last_block_at: Instant,
    alarmed_at: Option<Instant>,
    last_poll: Option<Instant>,
    enqueued_accounts: u64,
    previous_backlog_accounts: u64,
    previous_liquidation_backlog: u64,
    liquidations_done: u64,
    previous_block_at: Option<Instant>,
    /// The capital line last printed, and the block it was printed at.
    capital_said: Option<(String, u64)>,
    /// Liquidations printed and summarised, per block of inclusion.
    printed: BTreeMap<u64, PrintedBlock>,
}

/// Liquidations printed one by one per block; the rest go into one summary line.
const LIQUIDATIONS_SHOWN_PER_BLOCK: usize = 10;

#[derive(Debug, Default)]
struct PrintedBlock {
    shown: usize,
    hidden: usize,
    hidden_profit_usd: cosmwasm_std::SignedDecimal256,
}

impl<S: Scaler + 'static> Manager<S> {
    /// Connects the watches, reads what the backend already runs (a restarted manager adopts
    /// its fleet) and starts the scaling tasks at the policies' minimums or the adopted counts.
    pub async fn start(
        settings: Settings,
        scaler: Arc<S>,
        metrics: ManagerMetrics,
        health: HealthReport,
    ) -> Result<Self, ControlError> {
        Self::start_notifying(settings, scaler, metrics, health, Notifier::disabled()).await
    }

    /// [`Manager::start`], reporting errors an operator must act on (no new block, scaling
    /// or the collector failing) through `notifier`.
    pub async fn start_notifying(
        settings: Settings,
        scaler: Arc<S>,
        metrics: ManagerMetrics,
        health: HealthReport,
        notifier: Notifier,
    ) -> Result<Self, ControlError> {
        let conn = connect_redis(&settings.queue).await?;
        let stream = settings
            .queue
            .stream_key(redline_pipeline::jobs::HEALTH_CHECK_QUEUE);
        let health_checks =
            HealthCheckWatch::new(conn.clone(), stream.clone(), settings.backlog_scan_cap);
        let (enqueued_tx, enqueued) = mpsc::channel(4_096);
        let tail = HealthCheckWatch::spawn_tail(&settings.queue, stream, enqueued_tx)?;
        let liquidations = LiquidationWatch::connect(&settings.queue).await?;
        let attempts = AttemptsTail::start(conn.clone(), settings.attempts_stream.clone()).await?;
        let mut kinds = Vec::new();
        for (kind, policy) in [
            (WorkerKind::HealthChecker, &settings.health_checker_policy),
            (WorkerKind::Liquidator, &settings.liquidator_policy),
        ] {
            let running = match scaler.observe(kind).await {
                Ok(count) => count.desired.max(count.running),
                Err(error) => {
                    warn!(%kind, %error, "cannot read the running workers; starting from the minimum");
                    0
                }
            };
            let autoscaler = Autoscaler::new(policy.clone(), running);
            let initial = autoscaler.desired();
            info!(%kind, backend = scaler.backend(), found = running, starting_with = initial, min = policy.min_workers, max = policy.max_workers, "scaling");
            kinds.push(KindState {
                kind,
                task: spawn_scaling_task(
                    scaler.clone(),
                    kind,
                    initial,
                    metrics.clone(),
                    notifier.clone(),
                ),
                autoscaler,
                busy_worker_seconds: 0.0,
                completed: 0,
                planned: (0, 0),
                last_decision: None,
            });
        }
        let liquidators = kinds.pop().expect("two kinds");
        let health_checkers = kinds.pop().expect("two kinds");
        Ok(Self {
            ledger: BlockLedger::new(settings.deadline_blocks),
            settings,
            scaler,
            metrics,
            health,
            notifier,
            conn,
            health_checks,
            liquidations,
            attempts,
            enqueued,
            tail,
            health_checkers,
            liquidators,
            summary: RunSummary::default(),
            last_block_at: Instant::now(),
            alarmed_at: None,
            last_poll: None,
            enqueued_accounts: 0,
            previous_backlog_accounts: 0,
            previous_liquidation_backlog: 0,
            liquidations_done: 0,
            previous_block_at: None,
            capital_said: None,
            printed: BTreeMap::new(),
        })
    }

    /// Runs until `shutdown` resolves (or the block feed ends), then stops the scaling tasks
    /// and every worker through [`Scaler::shutdown`].
    pub async fn run(
        mut self,
        blocks: impl Stream<Item = NewBlock> + Unpin,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<RunSummary, ControlError> {
        let mut blocks = blocks;
        tokio::pin!(shutdown);
        let mut poll = tokio::time::interval(self.settings.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut alarm_check = tokio::time::interval(Duration::from_secs(1));
        alarm_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let outcome = loop {
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                block = blocks.next() => match block {
                    Some(block) => self.on_block(block).await,
                    None => break Err(ControlError::FeedEnded),
                },
                Some(event) = self.enqueued.recv() => {
                    self.enqueued_accounts += event.accounts;
                    self.ledger.jobs_enqueued(event.height, event.jobs, event.accounts, event.seen_at);
                    self.wake(WorkerKind::HealthChecker);
                    self.on_bigger_block(event.height);
                }
                _ = poll.tick() => self.on_poll().await,
                _ = alarm_check.tick() => self.check_alarm().await,
            }
        };
        self.stop().await;
        outcome.map(|()| self.summary.clone())
    }

    async fn stop(&mut self) {
        info!("stopping the workers");
        self.tail.abort();
        for state in [&self.health_checkers, &self.liquidators] {
            state.task.handle.abort();
        }
        if let Err(error) = self.scaler.shutdown().await {
            warn!(%error, "stopping the workers failed");
        }
        info!(summary = ?self.summary, "manager stopped");
    }

    async fn on_poll(&mut self) {
        let issued = Instant::now();
        let elapsed = self
            .last_poll
            .map(|last| issued.saturating_duration_since(last).as_secs_f64())
            .unwrap_or(0.0);
        self.last_poll = Some(issued);
        match self.health_checks.oldest().await {
            Ok((oldest, queued_jobs)) => {
                self.ledger.observe_oldest(oldest, issued);
                let running = self.health_checkers.count().running;
                self.health_checkers.busy_worker_seconds +=
                    elapsed * f64::from(running).min(queued_jobs as f64);
            }
            Err(error) => debug!(%error, "sampling the health-check queue failed"),
        }
        match self.liquidations.outstanding().await {
            Ok(outstanding) => {
                let running = self.liquidators.count().running;
                self.liquidators.busy_worker_seconds +=
                    elapsed * f64::from(running).min(outstanding as f64);
                if outstanding > 0 {
                    self.wake(WorkerKind::Liquidator);
                }
            }
            Err(error) => debug!(%error, "sampling the liquidation queue failed"),
        }
        match self.attempts.next_batch(ATTEMPTS_PER_POLL).await {
            Ok(attempts) => {
                for attempt in attempts {
                    self.on_attempt(&attempt);
                }
            }
            Err(error) => debug!(%error, "reading the liquidator's attempts failed"),
        }
    }

    fn on_attempt(&mut self, attempt: &Attempt) {
        if attempt.is_candidate_attempt() {
            self.liquidators.completed += 1;
        }
        if !attempt.liquidated() {
            return;
        }
        self.liquidations_done += 1;
        self.summary.liquidations_done += 1;
        if !self.settings.print_liquidations {
            return;
        }
        let block = self.printed.entry(attempt.height).or_default();
        if block.shown >= LIQUIDATIONS_SHOWN_PER_BLOCK {
            block.hidden += 1;
            let profit = plain(&attempt.profit_usd)
                .parse::<cosmwasm_std::SignedDecimal256>()
                .unwrap_or_default();
            block.hidden_profit_usd += profit;
            return;
        }
        block.shown += 1;
        info!(
            account = %attempt.account,
            height = attempt.height,
            found_at = attempt.candidate_height,
            repaid = format!("{}{}", plain(&attempt.debt_repaid), attempt.debt_denom),
            received = format!("{}{}", plain(&attempt.collateral_received), attempt.collateral_denom),
            profit_usd = %plain(&attempt.profit_usd),
            tx = %attempt.tx_hash,
            liquidator = attempt.worker_slot,
            "liquidation landed"
        );
    }

    /// One line for the liquidations of settled blocks that were not printed one by one.
    fn summarise_printed(&mut self, newest: u64) {
        let settled: Vec<u64> = self
            .printed
            .keys()
            .copied()
            .filter(|h| *h + 1 < newest)
            .collect();
        for height in settled {
            let Some(block) = self.printed.remove(&height) else {
                continue;
            };
            if block.hidden > 0 {
                info!(
                    height,
                    shown = block.shown,
                    more = block.hidden,
                    more_profit_usd = %block.hidden_profit_usd,
                    "more liquidations landed in this block (not printed one by one)"
                );
            }
        }
    }

    async fn check_alarm(&mut self) {
        let quiet = self.last_block_at.elapsed();
        self.metrics.seconds_since_block.set(quiet.as_secs_f64());
        if quiet < self.settings.block_alarm {
            return;
        }
        let repeat = self
            .alarmed_at
            .is_none_or(|at| at.elapsed() >= self.settings.block_alarm);
        if repeat {
            error!(
                seconds = quiet.as_secs(),
                last_height = ?self.ledger.newest(),
                "ALARM: no new block; the block feed keeps reconnecting"
            );
            self.alarmed_at = Some(Instant::now());
            self.metrics.block_alarm.set(1);
            // One text per stall (sent again only after a while, see `Notifier::error`).
            self.notifier
                .error(
                    "manager",
                    format!(
                        "ALARM: no new block after height {}; the block feed keeps reconnecting",
                        self.ledger
                            .newest()
                            .map_or_else(|| "none".to_string(), |h| h.to_string())
                    ),
                )
                .await;
            let mut health = self.health.write().await;
            health["status"] = "alarm".into();
            health["alarm"] = json!({
                "reason": "no new block",
                "seconds_since_block": quiet.as_secs(),
            });
        }
    }

    async fn on_block(&mut self, block: NewBlock) {
        let height = block.height;
        if self.ledger.newest().is_some_and(|newest| height <= newest) {
            return;
        }
        let now = Instant::now();
        let arrived_ms = unix_ms();
        if let Some(alarmed) = self.alarmed_at.take() {
            info!(
                height,
                quiet_secs = self.last_block_at.elapsed().as_secs(),
                alarmed_secs = alarmed.elapsed().as_secs(),
                "blocks arrive again"
            );
            self.metrics.block_alarm.set(0);
        }
        self.last_block_at = now;
        self.metrics.last_block_height.set(height as i64);
        self.metrics.seconds_since_block.set(0.0);

        // The interval that ends now belonged to the previous newest block.
        let liquidation_backlog = self
            .liquidations
            .outstanding()
            .await
            .unwrap_or_else(|error| {
                debug!(%error, "reading the liquidation backlog failed");
                self.previous_liquidation_backlog
            });
        let attempts = std::mem::take(&mut self.liquidators.completed);
        let queued =
            (liquidation_backlog + attempts).saturating_sub(self.previous_liquidation_backlog);
        if let Some(previous) = self.ledger.newest() {
            self.ledger.add_liquidations(
                previous,
                queued,
                std::mem::take(&mut self.liquidations_done),
            );
        }
        let due = self.ledger.block_arrived(height, now, arrived_ms);

        let backlog = match self.health_checks.backlog().await {
            Ok(backlog) => backlog,
            Err(error) => {
                warn!(%error, "scanning the health-check backlog failed; deciding without it");
                Default::default()
            }
        };
        let workers = (
            self.health_checkers.count().running,
            self.liquidators.count().running,
        );
        for closed in due {
            let snapshot_accounts = if self.ledger.enqueue_seen(closed) {
                None
            } else {
                self.snapshot_accounts(closed).await
            };
            if let Some(record) =
                self.ledger
                    .close(closed, backlog.of(closed), snapshot_accounts, workers)
            {
                self.publish(&record).await;
            }
        }

        // Health checkers: this block's work (seen already, or as big as the last block's)
        // on top of what is left from earlier blocks.
        let arrived = self
            .ledger
            .accounts_of(height)
            .or_else(|| self.ledger.latest_accounts())
            .unwrap_or(0);
        let left_over = backlog.up_to(height.saturating_sub(1)).accounts;
        let enqueued = std::mem::take(&mut self.enqueued_accounts);
        self.health_checkers.completed =
            (self.previous_backlog_accounts + enqueued).saturating_sub(backlog.accounts);
        self.previous_backlog_accounts = backlog.accounts;
        let block_interval_s = self
            .previous_block_at
            .replace(now)
            .map(|previous| now.saturating_duration_since(previous).as_secs_f64())
            .unwrap_or(0.0);
        self.decide(
            WorkerKind::HealthChecker,
            arrived,
            left_over,
            block_interval_s,
            true,
        );

        // Liquidators: candidates queued since the last block first, the rest as left over.
        let new_candidates = queued.min(liquidation_backlog);
        self.liquidators.completed = attempts;
        self.decide(
            WorkerKind::Liquidator,
            new_candidates,
            liquidation_backlog - new_candidates,
            block_interval_s,
            true,
        );
        self.previous_liquidation_backlog = liquidation_backlog;
        self.metrics
            .backlog
            .with_label_values(&[WorkerKind::HealthChecker.service()])
            .set(backlog.accounts as i64);
        self.metrics
            .backlog
            .with_label_values(&[WorkerKind::Liquidator.service()])
            .set(liquidation_backlog as i64);
        self.update_health(height).await;
        self.report_capital(height).await;
        self.summarise_printed(height);
    }

    /// One line per block at most while liquidations wait for funds: how many and what the
    /// wallets lack (repeated every 10 blocks while unchanged), and one when they no longer do.
    async fn report_capital(&mut self, height: u64) {
        let max_age_ms =
            u64::try_from(self.settings.block_time.as_millis() * 10).unwrap_or(u64::MAX);
        let total = match redline_pipeline::capital::read_total(
            &mut self.conn,
            &self.settings.capital_key,
            unix_ms(),
            max_age_ms.max(5_000),
        )
        .await
        {
            Ok(total) => total,
            Err(error) => {
                debug!(%error, "reading the liquidators' capital reports failed");
                return;
            }
        };
        let parked = self.liquidations.parked().await.unwrap_or(0);
        self.metrics
            .liquidations_waiting_for_funds
            .set(parked as i64);
        if total.is_empty() && parked == 0 {
            if self.capital_said.take().is_some() {
                info!(height, "capital: no liquidation waits for funds any more");
            }
            return;
        }
        let line = format!("{parked} waiting, short {}", total.missing_text());
        let repeat = match &self.capital_said {
            Some((said, at)) => said != &line || height >= at + 10,
            None => true,
        };
        if repeat {
            info!(
                height,
                waiting = parked,
                short = %total.missing_text(),
                wallets = total.wallets,
                "capital: liquidations wait for funds (top-ups and swaps of seized collateral refill the wallets)"
            );
            self.capital_said = Some((line, height));
        }
    }

    /// The block just enqueued brings clearly more work than the last decision planned for
    /// (beyond the hysteresis band): decide again now rather than at the next block, which
    /// would leave this block to the workers sized for less.
    fn on_bigger_block(&mut self, height: u64) {
        if self.ledger.newest().is_some_and(|newest| height < newest) {
            return;
        }
        let Some(accounts) = self.ledger.accounts_of(height) else {
            return;
        };
        let (planned, left_over) = self.health_checkers.planned;
        let band = 1.0 + self.settings.health_checker_policy.hysteresis;
        if accounts as f64 > planned as f64 * band {
            debug!(height, accounts, planned, "a bigger block: deciding now");
            self.decide(WorkerKind::HealthChecker, accounts, left_over, 0.0, false);
        }
    }

    /// Work arrived for a pool scaled to zero: one worker now, not at the next block.
    fn wake(&mut self, kind: WorkerKind) {
        let state = match kind {
            WorkerKind::HealthChecker => &mut self.health_checkers,
            WorkerKind::Liquidator => &mut self.liquidators,
        };
        if let Some(desired) = state.autoscaler.wake() {
            info!(%kind, to = desired, "work arrived with no worker running: scaling up now");
            self.metrics
                .scale_events
                .with_label_values(&[kind.service(), "up"])
                .inc();
            self.summary.scale_ups += 1;
            let _ = state.task.desired.send(desired);
        }
    }

    /// One decision for `kind`; the scaling task follows a changed count.
    /// `measured`: the decision at a block, which also feeds the throughput and block-time
    /// estimates with what was measured since the previous one; otherwise an early decision
    /// within a block ([`Autoscaler::decide_within_block`]: up only, nothing measured).
    fn decide(
        &mut self,
        kind: WorkerKind,
        arrived: u64,
        backlog: u64,
        block_interval_s: f64,
        measured: bool,
    ) {
        let metrics = self.metrics.clone();
        let state = match kind {
            WorkerKind::HealthChecker => &mut self.health_checkers,
            WorkerKind::Liquidator => &mut self.liquidators,
        };
        let count = state.count();
        let (completed, busy_worker_seconds) = if measured {
            (
                std::mem::take(&mut state.completed),
                std::mem::take(&mut state.busy_worker_seconds),
            )
        } else {
            (0, 0.0)
        };
        state.planned = (arrived, backlog);
        let observation = Observation {
            arrived,
            backlog,
            completed,
            busy_worker_seconds,
            block_interval_s,
            running: count.running,
            pending: count.pending,
        };
        let before = state.autoscaler.desired();
        let decision = if measured {
            state.autoscaler.decide(&observation)
        } else {
            state.autoscaler.decide_within_block(&observation)
        };
        let label = kind.service();
        metrics
            .throughput
            .with_label_values(&[label])
            .set(decision.throughput);
        for (worker_state, workers) in [
            ("desired", decision.desired),
            ("running", count.running),
            ("pending", count.pending),
        ] {
            metrics
                .workers
                .with_label_values(&[label, worker_state])
                .set(i64::from(workers));
        }
        if decision.desired != before {
            let direction = if decision.desired > before {
                "up"
            } else {
                "down"
            };
            metrics
                .scale_events
                .with_label_values(&[label, direction])
                .inc();
            if decision.desired > before {
                self.summary.scale_ups += 1;
            } else {
                self.summary.scale_downs += 1;
            }
            info!(
                %kind,
                from = before,
                to = decision.desired,
                reason = ?decision.reason,
                needed = decision.raw,
                arrived,
                backlog,
                throughput_per_worker_s = format!("{:.1}", decision.throughput),
                block_time_s = format!("{:.2}", decision.block_time_s),
                running = count.running,
                "scaling {direction}"
            );
            let _ = state.task.desired.send(decision.desired);
        } else if decision.reason == Reason::UpCooldown {
            debug!(%kind, needed = decision.raw, pending = count.pending, "more workers needed; waiting for the ones starting");
        }
        state.last_decision = Some(decision);
    }

    /// The account count of block `height`'s snapshot, if the collector wrote one.
    async fn snapshot_accounts(&self, height: u64) -> Option<u64> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.settings.index.block(height))
            .query_async(&mut self.conn.clone())
            .await
            .ok()?;
        let snapshot: serde_json::Value = serde_json::from_str(&raw?).ok()?;
        snapshot.get("accounts").and_then(serde_json::Value::as_u64)
    }

    /// Logs, counts and stores one closed block.
    async fn publish(&mut self, record: &BlockRecord) {
        self.metrics.record_block(record);
        let summary = &mut self.summary;
        summary.blocks += 1;
        summary.jobs_missed += record.jobs_missed;
        match record.status {
            BlockStatus::OnTime => summary.on_time += 1,
            BlockStatus::Late => summary.late += 1,
            BlockStatus::NotEnqueued => summary.not_enqueued += 1,
            BlockStatus::WarmingUp => summary.warming_up += 1,
        }
        match record.status {
            BlockStatus::OnTime => debug!(
                height = record.height,
                accounts = record.accounts,
                jobs = record.jobs,
                lag_ms = ?record.lag_ms,
                health_checkers = record.health_checkers,
                "block checked in time"
            ),
            BlockStatus::Late => warn!(
                height = record.height,
                accounts = record.accounts,
                checked = record.accounts_checked,
                jobs_missed = record.jobs_missed,
                health_checkers = record.health_checkers,
                "block missed: health checks still queued at the deadline"
            ),
            BlockStatus::NotEnqueued => warn!(
                height = record.height,
                "block missed: its health checks were never queued (is the collector behind?)"
            ),
            BlockStatus::WarmingUp => debug!(
                height = record.height,
                "no work queued yet: the collector is still starting"
            ),
        }
        let json = match serde_json::to_string(record) {
            Ok(json) => json,
            Err(error) => {
                warn!(%error, "cannot encode a block record");
                return;
            }
        };
        let key = blocks_stream_key(&self.settings.queue.queue_prefix);
        let added: Result<String, _> = redis::cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.settings.blocks_stream_max_len)
            .arg("*")
            .arg("record")
            .arg(json)
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(error) = added {
            debug!(%key, %error, "cannot store a block record");
        }
        let mut health = self.health.write().await;
        health["last_record"] = serde_json::to_value(record).unwrap_or_default();
    }

    async fn update_health(&mut self, height: u64) {
        let mut workers = BTreeMap::new();
        for state in [&self.health_checkers, &self.liquidators] {
            let count = state.count();
            let decision = state.last_decision;
            workers.insert(
                state.kind.service(),
                json!({
                    "desired": count.desired,
                    "running": count.running,
                    "pending": count.pending,
                    "needed": decision.map(|d| d.raw),
                    "throughput_per_worker_s": decision.map(|d| d.throughput),
                }),
            );
        }
        let mut health = self.health.write().await;
        health["status"] = "ok".into();
        if let Some(object) = health.as_object_mut() {
            object.remove("alarm");
        }
        health["backend"] = self.scaler.backend().into();
        health["last_block"] = json!({ "height": height, "arrived_at_ms": unix_ms() });
        health["workers"] = json!(workers);
        health["totals"] = serde_json::to_value(&self.summary).unwrap_or_default();
    }
}
