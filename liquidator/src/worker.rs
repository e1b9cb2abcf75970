//! The worker: candidates in, liquidations out.
//!
//! One [`Worker`] owns one wallet (through its [`TxSender`]) and runs one batch at a time:
//!
//! 1. take up to `--fetch-batch` candidates from the queue (most profitable first);
//! 2. lock each account (`SET NX PX`): a locked account is being liquidated by another worker,
//!    whose tx lands first; the candidate is acknowledged (the health checker queues the
//!    account again next block if it is still liquidatable);
//! 3. re-read each position at the latest height and plan it ([`crate::plan`]) against the
//!    wallet's spendable balances; stale candidates are acknowledged quietly;
//! 4. ask the [`Strategy`] (go / max repay);
//! 5. in txs of up to `--max-liquidations-per-tx` accounts, simulate,
//!    dropping failing liquidations, then sign and broadcast each tx right after the one before
//!    (sequences N, N + 1, ... all wait in the mempool for the next block, up to the sender's
//!    in-flight limit); each is confirmed in the background while the worker goes on with
//!    the next candidates (its wallet's coins those txs spend are held back from planning);
//! 6. record every attempt, settle each job (ack, release for retry, or dead-letter), release
//!    the locks, and hand confirmed liquidations to the [`AfterLiquidation`] hook.
//!
//! Credit-account (Rover) candidates take their own path ([`rover`]): one tx each, from the
//! worker's own credit account, under the same locks and job rules.
//!
//! Locks are held until the liquidation's block is committed (or its failure known), so no two
//! workers ever liquidate one account in the same block. A tx whose inclusion was not seen keeps
//! its accounts locked (renewed) until the [`TxSender`] settles it.
//!
//! Job rules: acknowledged when done or pointless to retry (liquidated, stale, locked elsewhere,
//! unprofitable, declined, dry run); released for another delivery when the failure may pass
//! (RPC or Redis trouble, a refused or failed tx); set aside to wait, uncounted, when the
//! wallet lacks the debt coin or the fee (parked in the queue, ordered by profit per unit of
//! capital, woken when a wallet's funds change: see [`crate::capital`]); dead-lettered with the
//! reason when it can never succeed (another chain or protocol, the contract refusing this
//! liquidation for a reason other than a race, undecodable account state).

mod rover;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cosmwasm_std::{Coin, Decimal, Uint128};
use futures::future::join_all;
use futures::StreamExt as _;
use redline_chain::{ChainClient, TxErrorCode, TxHash};
use redline_pipeline::jobs::{AccountKey, LiquidationCandidate, ProtocolKind};
use redline_pipeline::queue::{Delivery, Parking};
use tracing::Instrument;

use crate::bid::{BidInput, BidPolicy, Competition};
use crate::capital::{CapitalBoard, Shortages};
use crate::execute::{self, Dropped, Executed, PreparedBatch};
use crate::locks::{KeySpace, Lease, Leases, LockKeeper};
use crate::metrics::LiquidatorMetrics;
use crate::plan::{NoPlan, Plan, PlanContext, Shortfall};
use crate::recheck::{inclusion_window, MarketSnapshot, PositionReader, ReadError};
use crate::record::{unix_ms, AttemptRecord, Outcome, Recorder};
use crate::shutdown::Shutdown;
use crate::strategy::{AfterLiquidation, BatchReport, ConfirmedLiquidation, Opportunity, Strategy};
use crate::tx_sender::{Broadcast, Resolution, SendError, Sent, SentTx, TxSender};
use mars::value::Value;

/// Races lost within this many blocks count as competition seen (see [`crate::bid`]).
const COMPETITION_WINDOW_BLOCKS: u64 = 20;

/// Contract errors that mean someone else got there first (or the account recovered): expected
/// races, logged quietly.
const RACE_MARKERS: &[&str] = &[
    "cannot be liquidated",
    "no balance in specified collateral",
    "no debt balance",
    "Cannot liquidate when no debt",
    "not less than 1",
    // The credit manager's.
    "is not a liquidatable credit account",
    "is not an available coin to request",
    "Nothing lent to reclaim",
    "No debt to repay",
];

/// The record's detail for a candidate the liquidator armed (see [`crate::armed`]).
pub const ARMED_DETAIL: &str = "armed: queued by the liquidator as its block came";

/// Ends a below-the-floor record's error when the wallet's funds, not the contract, kept the
/// liquidation small (the job waits for funds).
pub const CAPPED_BY_FUNDS: &str = "; capped by the wallet's funds, waiting for more";

/// A step's batch simulations in flight at once (a node answers them side by side).
const SIMULATIONS_IN_FLIGHT: usize = 8;

/// Whether a contract's refusal is an expected race rather than a problem.
pub fn is_race(log: &str) -> bool {
    RACE_MARKERS.iter().any(|m| log.contains(m))
}

/// What a worker is told at start.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub chain_id: String,
    pub red_bank: String,
    pub max_liquidations_per_tx: usize,
    /// Candidates taken from the queue per step (planned together, sent in txs of at most
    /// `max_liquidations_per_tx`): larger than a tx so that stale candidates cost no step.
    pub fetch_batch: usize,
    /// Profit floor after fees, in USD.
    pub min_profit_usd: Decimal,
    /// How long an account lock lives if its holder dies.
    pub lock_ttl: Duration,
    /// The chain's block interval (inclusion window, back-off).
    pub block_interval: Duration,
    /// How long a fetch waits for candidates.
    pub fetch_wait: Duration,
    /// Gas kept in reserve (not spent on repayments) when the fee denom is also a debt denom.
    pub fee_reserve_gas: u64,
    /// Rover's credit manager: credit-account candidates are dead-lettered without one.
    pub credit_manager: Option<String>,
    /// How the Rover health contract takes its queries (the manifest's).
    pub health_query: mars::msg::health::HealthQueryShape,
    /// Loss accepted when a credit-account liquidation swaps the seized collateral, against its
    /// value at oracle prices (`--max-slippage`).
    pub max_slippage: Decimal,
    /// How far a credit-account swap's pool may move before its tx lands (`--credit-swap-margin`).
    pub credit_swap_margin: Decimal,
    /// Whether a credit-account liquidation no swap pool pays for may be funded from the wallet.
    pub credit_wallet_funding: bool,
    /// How much of its profit a contested liquidation tx may bid in fees (`--max-fee-share`).
    pub bid: BidPolicy,
}

/// A candidate this worker has locked and planned.
struct Planned {
    delivery: Delivery<LiquidationCandidate>,
    lock: Lease,
    plan: Plan,
    started_at: SystemTime,
}

/// A broadcast batch whose confirmation runs in the background.
struct Unsettled {
    items: Vec<Planned>,
    prepared: PreparedBatch,
    snapshot: Arc<MarketSnapshot>,
    hash: TxHash,
    sequence: u64,
    confirmation: tokio::task::JoinHandle<Result<Sent, SendError>>,
}

/// A broadcast batch whose inclusion was not seen.
struct InDoubt {
    hash: TxHash,
    items: Vec<Planned>,
    /// The credit accounts the tx liquidates, locked like the items' accounts.
    credit_locks: Vec<Lease>,
    snapshot: Arc<MarketSnapshot>,
}

impl InDoubt {
    fn locks(&self) -> impl Iterator<Item = &Lease> {
        self.items
            .iter()
            .map(|item| &item.lock)
            .chain(&self.credit_locks)
    }
}

#[derive(Debug, Clone)]
enum Verdict {
    Ack,
    Release,
    /// Set aside until funds come.
    Wait(Waiting),
    DeadLetter(String),
}

/// How a job waits for funds: its order among the waiting (profit per unit of capital, highest
/// woken first) and what it needs (a wallet holding a tenth of it in some denom wakes it).
#[derive(Debug, Clone)]
struct Waiting {
    score: f64,
    needs: Vec<(String, u128)>,
}

impl Waiting {
    /// A job whose best liquidations lack what `short` says.
    fn for_shortfalls(short: &[Shortfall]) -> Self {
        Waiting {
            score: wait_score(short),
            needs: short
                .iter()
                .map(|s| (s.denom.clone(), s.wanted.saturating_sub(s.available).u128()))
                .collect(),
        }
    }

    /// A planned liquidation that could not be sent for want of `needs`.
    fn for_plan(plan: &Plan, snapshot: &MarketSnapshot, needs: (String, Uint128)) -> Self {
        Waiting {
            score: plan_wait_score(plan, snapshot),
            needs: vec![(needs.0, needs.1.u128())],
        }
    }
}

/// A value as a sorted-set score (ordering only, so a float is fine).
fn score_of(value: Value) -> f64 {
    value.to_string().parse().unwrap_or(0.0)
}

/// The wait order of a job whose best liquidations lack funds: their best profit per unit of
/// capital.
fn wait_score(short: &[Shortfall]) -> f64 {
    short
        .iter()
        .map(|s| score_of(s.profit_per_capital))
        .fold(0.0, f64::max)
}

/// The wait order of a planned liquidation that could not be sent for want of fees.
fn plan_wait_score(plan: &Plan, snapshot: &MarketSnapshot) -> f64 {
    let capital = snapshot
        .prices
        .value(&plan.debt_denom, plan.debt_to_send)
        .unwrap_or_default();
    if capital <= Value::zero() {
        return 0.0;
    }
    plan.expected_profit
        .checked_div(capital)
        .map(score_of)
        .unwrap_or(0.0)
}

/// Everything a [`Worker`] works with.
pub struct WorkerDeps<C, Q> {
    pub settings: Arc<WorkerSettings>,
    pub queue: Q,
    pub sender: Arc<TxSender<C>>,
    pub reader: Arc<PositionReader<C>>,
    pub leases: Leases,
    pub keys: KeySpace,
    pub recorder: Arc<Recorder>,
    pub metrics: LiquidatorMetrics,
    pub strategy: Arc<dyn Strategy>,
    pub after: Arc<dyn AfterLiquidation<C>>,
    pub capital: CapitalBoard,
}

/// What one [`Worker::step`] did, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    pub taken: usize,
    pub liquidated: usize,
    pub failed: usize,
    pub skipped: usize,
    pub tx: Option<String>,
}

/// One wallet's liquidation loop.
pub struct Worker<C, Q> {
    pub slot: u32,
    settings: Arc<WorkerSettings>,
    queue: Q,
    sender: Arc<TxSender<C>>,
    reader: Arc<PositionReader<C>>,
    leases: Leases,
    keys: KeySpace,
    recorder: Arc<Recorder>,
    metrics: LiquidatorMetrics,
    strategy: Arc<dyn Strategy>,
    after: Arc<dyn AfterLiquidation<C>>,
    capital: CapitalBoard,
    /// What this step set aside for want of funds.
    shortages: std::sync::Mutex<Shortages>,
    /// What the latest published step set aside (empty when it lacked nothing): its missing
    /// coins go to the rebalancer to recycle seized collateral into.
    reported: Shortages,
    /// When waiting jobs were last considered.
    wake_checked_at: Option<std::time::Instant>,
    /// One of this wallet's liquidations landed since: consider waiting jobs at the next step.
    wake_due: bool,
    /// The worker is settling what it sent before it stops: no new swaps after liquidations.
    stopping: bool,
    /// Broadcast batches whose inclusion was not seen, lowest sequence first.
    in_doubt: Vec<InDoubt>,
    /// Broadcast batches being confirmed, in broadcast order: their accounts stay locked, their
    /// jobs unsettled and their coins reserved until each is recorded.
    unsettled: Vec<Unsettled>,
    sweep_due: bool,
    /// The Rover contracts, read from the credit manager at the first credit-account candidate.
    rover: Option<crate::credit_account::RoverContracts>,
    /// The credit account this worker liquidates credit accounts from.
    own_credit_account: Option<String>,
    /// Credit-account candidates kept for the next step (see
    /// [`Worker::liquidate_credit_accounts`]).
    held_credit: Vec<rover::Held>,
    /// The credit-account tx being confirmed.
    unsettled_credit: Option<rover::UnsettledCredit>,
    /// Per credit account, the last decline recorded (what, at which height): see
    /// [`rover::DECLINES_RECORDED_EVERY`].
    declined_credit: BTreeMap<String, (String, u64)>,
    /// Credit accounts skipped for their perps positions, each reported once.
    perps_reported: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Liquidations lost lately to someone who got there first: what fee bids answer.
    competition: std::sync::Mutex<Competition>,
    /// Renews the account and pool locks held while their batches wait for room.
    keeper: LockKeeper,
}

impl<C, Q> Worker<C, Q>
where
    C: ChainClient + Clone + 'static,
    Q: Parking<Job = LiquidationCandidate>,
{
    pub fn new(slot: u32, deps: WorkerDeps<C, Q>) -> Self {
        let keeper = LockKeeper::start(deps.leases.clone(), deps.settings.lock_ttl);
        Worker {
            slot,
            settings: deps.settings,
            queue: deps.queue,
            sender: deps.sender,
            reader: deps.reader,
            leases: deps.leases,
            keys: deps.keys,
            recorder: deps.recorder,
            metrics: deps.metrics,
            strategy: deps.strategy,
            after: deps.after,
            capital: deps.capital,
            shortages: Default::default(),
            reported: Shortages::default(),
            wake_checked_at: None,
            wake_due: true,
            stopping: false,
            in_doubt: Vec::new(),
            unsettled: Vec::new(),
            // Collateral left deposited by an earlier run is withdrawn first.
            sweep_due: true,
            rover: None,
            own_credit_account: None,
            held_credit: Vec::new(),
            unsettled_credit: None,
            declined_credit: BTreeMap::new(),
            perps_reported: Default::default(),
            competition: std::sync::Mutex::new(Competition::new(COMPETITION_WINDOW_BLOCKS)),
            keeper,
        }
    }

    pub fn sender(&self) -> &Arc<TxSender<C>> {
        &self.sender
    }

    /// Steps until `shutdown` is set. Steps overlap: the txs of one are confirmed (and then
    /// recorded) while the next takes and plans new candidates. A broadcast tx is always
    /// waited for and settled before the worker stops.
    pub async fn run(mut self, shutdown: Shutdown) -> Self {
        let span = tracing::info_span!("worker", slot = self.slot, wallet = %self.sender.address());
        async {
            tracing::info!("worker started");
            while !shutdown.is_requested() {
                let step = self.step_overlapping();
                match step.await {
                    Ok(_) => {}
                    Err(error) => {
                        if error
                            .downcast_ref::<ReadError>()
                            .is_some_and(ReadError::is_no_block_yet)
                        {
                            tracing::debug!(%error, "waiting for the chain's first block");
                        } else {
                            tracing::warn!(%error, "worker step failed; backing off");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(self.settings.block_interval) => {}
                            _ = shutdown.requested() => {}
                        }
                    }
                }
            }
            let mut report = StepReport::default();
            self.stopping = true;
            self.settle_unsettled(true, &mut report).await;
            self.release_held_credit().await;
            tracing::info!("worker stopping");
        }
        .instrument(span)
        .await;
        self
    }

    /// Records and settles the broadcast batches whose confirmation is done (all of them, in
    /// order, when `wait`), stopping at the first still running.
    async fn settle_unsettled(&mut self, wait: bool, report: &mut StepReport) {
        self.settle_unsettled_credit(wait, report).await;
        while let Some(first) = self.unsettled.first() {
            if !wait && !first.confirmation.is_finished() {
                return;
            }
            let Unsettled {
                items,
                prepared,
                snapshot,
                hash,
                sequence,
                confirmation,
            } = self.unsettled.remove(0);
            let result = match confirmation.await {
                Ok(result) => result,
                // The confirmation task died: its pending tx was dropped unconfirmed, so the
                // sender holds it as unresolved.
                Err(error) => Err(SendError::Unconfirmed {
                    hash,
                    sequence,
                    broadcast_at: SystemTime::now(),
                    reason: format!("confirmation task failed: {error}"),
                }),
            };
            self.settle_batch(items, &prepared, &snapshot, result, report)
                .await;
        }
    }

    /// Coins that broadcast batches not yet settled will spend (repayments and fees).
    fn reserved_by_unsettled(&self) -> BTreeMap<String, Uint128> {
        let mut reserved: BTreeMap<String, Uint128> = BTreeMap::new();
        for batch in &self.unsettled {
            for item in &batch.items {
                let entry = reserved.entry(item.plan.debt_denom.clone()).or_default();
                *entry = entry.saturating_add(item.plan.debt_to_send);
            }
            let fee = Uint128::try_from(batch.prepared.fee.amount).unwrap_or(Uint128::MAX);
            let entry = reserved
                .entry(batch.prepared.fee.denom.clone())
                .or_default();
            *entry = entry.saturating_add(fee);
        }
        for coin in self.reserved_by_unsettled_credit() {
            let amount = Uint128::try_from(coin.amount).unwrap_or(Uint128::MAX);
            let entry = reserved.entry(coin.denom).or_default();
            *entry = entry.saturating_add(amount);
        }
        reserved
    }

    /// One batch, recorded and settled before it returns (see [`Worker::step_overlapping`]).
    pub async fn step(&mut self) -> anyhow::Result<StepReport> {
        let mut report = self.step_overlapping().await?;
        self.settle_unsettled(true, &mut report).await;
        Ok(report)
    }

    /// Accounts this worker still holds locked for a tx of unknown fate.
    pub fn accounts_in_doubt(&self) -> Vec<String> {
        self.in_doubt
            .iter()
            .flat_map(|d| d.items.iter().map(|i| i.plan.account.clone()))
            .collect()
    }

    /// One batch: record what earlier steps' confirmations settled, settle what is in doubt,
    /// take candidates, plan and broadcast; the confirmations of this step's txs run on and
    /// are recorded by a later step.
    async fn step_overlapping(&mut self) -> anyhow::Result<StepReport> {
        let mut settled = StepReport::default();
        self.settle_unsettled(false, &mut settled).await;
        if !self.in_doubt.is_empty() && !self.settle_in_doubt().await? {
            tokio::time::sleep(self.settings.block_interval / 2).await;
            return Ok(StepReport::default());
        }
        if !self.sender.permit().is_granted() {
            tokio::time::sleep(self.settings.block_interval).await;
            return Ok(StepReport::default());
        }
        if self.sweep_due {
            self.sweep().await;
        }
        self.wake_waiting().await;
        // Credit-account candidates held from earlier steps count against the batch: a worker
        // holds no more jobs than it fetches.
        let per_tx = self.settings.max_liquidations_per_tx;
        let fetch = self
            .settings
            .fetch_batch
            .saturating_sub(self.held_credit.len())
            .max(per_tx);
        let deliveries = self.queue.fetch(fetch, self.settings.fetch_wait).await?;
        let credit_waiting = !self.held_credit.is_empty() && self.unsettled_credit.is_none();
        if deliveries.is_empty() && !credit_waiting {
            return Ok(settled);
        }
        let started_at = SystemTime::now();
        let mut report = StepReport {
            taken: deliveries.len(),
            ..settled
        };
        let recheck_timer = self.metrics.stage_timer("recheck");
        let (snapshot, spendable) = tokio::join!(self.reader.latest(), self.unreserved());
        let (snapshot, mut spendable) = match (snapshot, spendable) {
            (Ok(snapshot), Ok(spendable)) => (snapshot, spendable),
            (Err(error), _) => {
                self.settle_all(&deliveries, Verdict::Release).await;
                return Err(error.into());
            }
            (_, Err(error)) => {
                self.settle_all(&deliveries, Verdict::Release).await;
                return Err(error);
            }
        };
        let (credit_accounts, deliveries): (Vec<_>, Vec<_>) = deliveries
            .into_iter()
            .partition(|d| d.job.protocol == ProtocolKind::Rover);
        if !credit_accounts.is_empty() || credit_waiting {
            let mut fee_budget = self.fee_budget(&spendable);
            let funds = rover::StepFunds {
                spendable: &spendable,
                fee_budget: &mut fee_budget,
            };
            self.liquidate_credit_accounts(credit_accounts, &snapshot, funds, &mut report)
                .await;
            // That tx pays its fee (and opening the wallet's credit account paid one) from the
            // balances read above, and may send debt coins. Planned with the old balances, this step's Red Bank txs
            // would pass CheckTx (which runs no messages, so it does not see their repayments
            // of the fee denom) and the last ones would fail to pay their fee at delivery,
            // and with them every later tx of the wallet, on a wrong sequence.
            spendable = match self.unreserved().await {
                Ok(spendable) => spendable,
                Err(error) => {
                    self.settle_all(&deliveries, Verdict::Release).await;
                    return Err(error);
                }
            };
        }
        let taken = join_all(
            deliveries
                .into_iter()
                .map(|delivery| self.take(delivery, &snapshot)),
        )
        .await;
        recheck_timer.observe_duration();

        let mut planned = Vec::new();
        for (delivery, lock, position) in taken.into_iter().flatten() {
            let span = tracing::info_span!(
                "position",
                account = %delivery.job.account,
                candidate_height = delivery.job.height
            );
            let one = self
                .plan_one(delivery, lock, position, &snapshot, &spendable, started_at)
                .instrument(span)
                .await;
            match one {
                Some(item) => {
                    if let Some(left) = spendable.get_mut(&item.plan.debt_denom) {
                        *left = left.saturating_sub(item.plan.debt_to_send);
                    }
                    planned.push(item);
                }
                None => report.skipped += 1,
            }
        }
        if planned.is_empty() {
            self.publish_capital(snapshot.height).await;
            return Ok(report);
        }
        // The fee denom left after this step's repayments, reserve included: what the step's
        // txs may spend on fees. They are all in the mempool before the first is delivered, so
        // one whose fee the wallet could not pay at delivery would break the sequence of the
        // ones behind it.
        let fee_budget = self.fee_budget(&spendable);
        let height = snapshot.height;
        self.liquidate(planned, snapshot, fee_budget, &mut report)
            .await;
        self.publish_capital(height).await;
        Ok(report)
    }

    /// Publishes what this step set aside for want of funds (and, once, that nothing was).
    async fn publish_capital(&mut self, height: u64) {
        let step = std::mem::take(&mut *self.shortages.lock().unwrap_or_else(|e| e.into_inner()));
        if step.is_empty() && self.reported.is_empty() {
            return;
        }
        if !step.is_empty() {
            tracing::debug!(waiting = step.waiting, missing = ?step.missing, "liquidations wait for funds");
        }
        let report = step.report(self.sender.address(), self.slot, height);
        self.reported = step;
        self.capital.publish(&report).await;
    }

    /// When jobs wait for funds, puts back in the queue the best-placed of those this wallet
    /// may pay for (it holds at least a tenth of what they need in some denom): at once after
    /// one of its own liquidations landed (its coins moved), otherwise at most once a block
    /// (top-ups and swaps change its balances in between).
    async fn wake_waiting(&mut self) {
        let now = std::time::Instant::now();
        let due = std::mem::take(&mut self.wake_due);
        let checked_recently = self
            .wake_checked_at
            .is_some_and(|at| now.duration_since(at) < self.settings.block_interval);
        if !due && checked_recently {
            return;
        }
        self.wake_checked_at = Some(now);
        match self.queue.parked_count().await {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "cannot count the jobs waiting for funds");
                return;
            }
        }
        let Ok(funds) = self.spendable().await else {
            return;
        };
        let holdings: Vec<(String, u128)> = funds
            .into_iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|(denom, amount)| (denom, amount.u128()))
            .collect();
        if holdings.is_empty() {
            return;
        }
        let batch = self.settings.fetch_batch.max(1);
        match self.queue.wake(batch, Some(&holdings)).await {
            Ok(0) => {}
            Ok(woken) => tracing::debug!(woken, "jobs waiting for funds woken"),
            Err(error) => tracing::debug!(%error, "cannot wake the jobs waiting for funds"),
        }
    }

    /// Plans one locked candidate against the wallet's spendable balances and asks the
    /// strategy. `None` when the job was settled here (stale, unprofitable, declined, ...).
    async fn plan_one(
        &self,
        delivery: Delivery<LiquidationCandidate>,
        lock: Lease,
        position: crate::recheck::AccountPosition,
        snapshot: &MarketSnapshot,
        spendable: &BTreeMap<String, Uint128>,
        started_at: SystemTime,
    ) -> Option<Planned> {
        let (earliest, latest) = inclusion_window(snapshot, self.settings.block_interval);
        let outcome = PlanContext::new(snapshot, &position, earliest, latest)
            .and_then(|context| context.best_plan(spendable).map(|plan| (context, plan)));
        match outcome {
            Ok((context, plan)) => match self.consult(&delivery, snapshot, &context, plan).await {
                Some(plan) => Some(Planned {
                    delivery,
                    lock,
                    plan,
                    started_at,
                }),
                None => {
                    self.finish(&delivery, &lock, Verdict::Ack).await;
                    None
                }
            },
            Err(no_plan) => {
                if no_plan.is_settled() {
                    self.reader.remember_unliquidatable(
                        &delivery.job.account,
                        snapshot,
                        no_plan.label(),
                    );
                }
                let verdict = self.no_plan(&delivery.job.account, &no_plan);
                self.finish(&delivery, &lock, verdict).await;
                None
            }
        }
    }

    /// Validates a candidate, locks its account and reads its position. `None` when the job
    /// was settled on the way.
    async fn take(
        &self,
        delivery: Delivery<LiquidationCandidate>,
        snapshot: &MarketSnapshot,
    ) -> Option<(
        Delivery<LiquidationCandidate>,
        Lease,
        crate::recheck::AccountPosition,
    )> {
        if self.refuse_wrong_chain(&delivery).await {
            return None;
        }
        let candidate = &delivery.job;
        if let Err(unsupported) = self.reader.protocols().get(candidate.protocol) {
            let reason = unsupported.to_string();
            tracing::warn!(account = %candidate.account, %reason, "dead-lettering candidate");
            self.metrics.job("unsupported_protocol");
            self.settle(&delivery, Verdict::DeadLetter(reason)).await;
            return None;
        }
        if let Some(reason) = self
            .reader
            .known_unliquidatable(&candidate.account, snapshot)
        {
            tracing::debug!(account = %candidate.account, reason, "known to have no liquidation at these prices; skipping");
            self.metrics.job("known_unliquidatable");
            self.settle(&delivery, Verdict::Ack).await;
            return None;
        }
        let lock = self.lock_account(&delivery).await?;
        match self
            .reader
            .read_account(&candidate.account, snapshot.height)
            .await
        {
            Ok(position) => Some((delivery, lock, position)),
            Err(error) => {
                let verdict = if error.is_transient() {
                    tracing::warn!(account = %candidate.account, %error, "cannot read the position; job released");
                    Verdict::Release
                } else {
                    tracing::warn!(account = %candidate.account, %error, "position unreadable; dead-lettering");
                    Verdict::DeadLetter(error.to_string())
                };
                self.metrics.job("recheck_error");
                self.finish(&delivery, &lock, verdict).await;
                None
            }
        }
    }

    /// Dead-letters a candidate for another chain; whether it did.
    async fn refuse_wrong_chain(&self, delivery: &Delivery<LiquidationCandidate>) -> bool {
        let candidate = &delivery.job;
        if candidate.chain_id == self.settings.chain_id {
            return false;
        }
        let reason = format!(
            "candidate for chain `{}`; this liquidator serves `{}`",
            candidate.chain_id, self.settings.chain_id
        );
        tracing::warn!(account = %candidate.account, %reason, "dead-lettering candidate");
        self.metrics.job("wrong_chain");
        self.settle(delivery, Verdict::DeadLetter(reason)).await;
        true
    }

    /// Locks the candidate's account for this worker. `None` when the job was settled instead
    /// (locked by another worker, or Redis trouble).
    async fn lock_account(&self, delivery: &Delivery<LiquidationCandidate>) -> Option<Lease> {
        let candidate = &delivery.job;
        let key = self
            .keys
            .account_lock(candidate.protocol.as_str(), &candidate.account.as_string());
        match self.leases.try_acquire(&key, self.settings.lock_ttl).await {
            Ok(Some(lock)) => {
                self.keeper.hold(&lock);
                Some(lock)
            }
            Ok(None) => {
                tracing::debug!(account = %candidate.account, "account locked by another worker; skipping");
                self.metrics.job("locked");
                self.settle(delivery, Verdict::Ack).await;
                None
            }
            Err(error) => {
                tracing::warn!(account = %candidate.account, %error, "cannot take the account lock; job released");
                self.metrics.job("lock_error");
                self.settle(delivery, Verdict::Release).await;
                None
            }
        }
    }

    fn no_plan(&self, account: &AccountKey, no_plan: &NoPlan) -> Verdict {
        self.metrics.job(no_plan.label());
        match no_plan {
            NoPlan::NoDebt | NoPlan::Healthy { .. } => {
                tracing::debug!(%account, reason = %no_plan, "stale candidate dropped");
                Verdict::Ack
            }
            NoPlan::NoCollateral | NoPlan::Unprofitable { .. } => {
                tracing::debug!(%account, reason = %no_plan, "nothing worth liquidating");
                Verdict::Ack
            }
            NoPlan::NoFunds { short } => {
                tracing::debug!(%account, reason = %no_plan, "waiting for funds");
                Verdict::Wait(Waiting::for_shortfalls(short))
            }
            NoPlan::Math(reason) => {
                tracing::warn!(%account, %reason, "cannot compute a liquidation; dead-lettering");
                Verdict::DeadLetter(format!("cannot compute a liquidation: {reason}"))
            }
        }
    }

    /// Asks the strategy; applies its cap. `None` when declined (recorded).
    async fn consult(
        &self,
        delivery: &Delivery<LiquidationCandidate>,
        snapshot: &MarketSnapshot,
        context: &PlanContext<'_>,
        plan: Plan,
    ) -> Option<Plan> {
        let prices = &snapshot.prices;
        let opportunity = Opportunity {
            chain_id: self.settings.chain_id.clone(),
            protocol: delivery.job.protocol.to_string(),
            account: plan.account.clone(),
            height: snapshot.height,
            candidate_height: delivery.job.height,
            liquidation_health_factor: plan.health_before.liquidation_health_factor,
            debt_denom: plan.debt_denom.clone(),
            collateral_denom: plan.collateral_denom.clone(),
            debt_to_repay: plan.debt_to_send,
            collateral_to_receive: plan.amounts.collateral_amount_received_by_liquidator,
            liquidation_bonus: plan.amounts.liquidation_bonus,
            debt_price: prices.price(&plan.debt_denom).unwrap_or_default(),
            collateral_price: prices.price(&plan.collateral_denom).unwrap_or_default(),
            expected_profit_usd: prices.to_usd(plan.expected_profit),
            wallet: self.sender.address().to_string(),
        };
        let decision = self.strategy.decide(&opportunity).await;
        if !decision.go {
            let reason = decision.reason.unwrap_or_else(|| "strategy said no".into());
            tracing::info!(account = %plan.account, %reason, "liquidation declined by the strategy");
            let mut record = self.record_for(delivery, &plan, snapshot, SystemTime::now());
            record.outcome = Outcome::Declined;
            record.error = reason;
            self.emit(record).await;
            return None;
        }
        match decision.max_repay {
            Some(cap) if cap < plan.debt_to_send => {
                match context.plan_pair(&plan.debt_denom, &plan.collateral_denom, cap) {
                    Ok(capped) => Some(capped),
                    Err(why) => {
                        tracing::info!(account = %plan.account, %cap, reason = %why, "no liquidation within the strategy's cap");
                        None
                    }
                }
            }
            _ => Some(plan),
        }
    }

    /// The fee denom in `spendable`, reserve included: what this step's txs may spend on fees.
    fn fee_budget(&self, spendable: &BTreeMap<String, Uint128>) -> Uint128 {
        let reserve = self.sender.fee_for_gas(self.settings.fee_reserve_gas);
        spendable
            .get(&reserve.denom)
            .copied()
            .unwrap_or_default()
            .saturating_add(Uint128::try_from(reserve.amount).unwrap_or(Uint128::MAX))
    }

    /// [`Worker::spendable`] less what txs still being confirmed will spend: that is not this
    /// step's to plan with.
    async fn unreserved(&self) -> anyhow::Result<BTreeMap<String, Uint128>> {
        let mut spendable = self.spendable().await?;
        for (denom, amount) in self.reserved_by_unsettled() {
            if let Some(left) = spendable.get_mut(&denom) {
                *left = left.saturating_sub(amount);
            }
        }
        Ok(spendable)
    }

    /// The wallet's balances usable for repayments (fee reserve kept back).
    async fn spendable(&self) -> anyhow::Result<BTreeMap<String, Uint128>> {
        let balances = self.sender.client().balances(self.sender.address()).await?;
        let reserve = self.sender.fee_for_gas(self.settings.fee_reserve_gas);
        Ok(balances
            .into_iter()
            .map(|coin| {
                let mut amount = Uint128::try_from(coin.amount).unwrap_or(Uint128::MAX);
                if coin.denom == reserve.denom {
                    let keep = Uint128::try_from(reserve.amount).unwrap_or(Uint128::MAX);
                    amount = amount.saturating_sub(keep);
                }
                (coin.denom, amount)
            })
            .collect())
    }

    fn record_for(
        &self,
        delivery: &Delivery<LiquidationCandidate>,
        plan: &Plan,
        snapshot: &MarketSnapshot,
        started_at: SystemTime,
    ) -> AttemptRecord {
        AttemptRecord {
            started_at,
            height: snapshot.height,
            candidate_height: delivery.job.height,
            worker_slot: self.slot,
            wallet: self.sender.address().to_string(),
            account: plan.account.clone(),
            debt_denom: plan.debt_denom.clone(),
            collateral_denom: plan.collateral_denom.clone(),
            debt_sent: plan.debt_to_send,
            expected_profit_usd: snapshot.prices.to_usd(plan.expected_profit),
            detail: if delivery.job.armed {
                ARMED_DETAIL.to_owned()
            } else {
                String::new()
            },
            ..AttemptRecord::default()
        }
    }

    async fn emit(&self, record: AttemptRecord) {
        self.metrics
            .attempt(record.outcome.as_str(), record.profit_usd);
        self.recorder.record(&record).await;
    }

    /// Sends the planned liquidations in txs of up to `--max-liquidations-per-tx`, broadcast one
    /// after the other without waiting for inclusion (up to the sender's in-flight limit), so
    /// they all land in the next block, then confirmed together.
    async fn liquidate(
        &mut self,
        planned: Vec<Planned>,
        snapshot: Arc<MarketSnapshot>,
        mut fee_budget: Uint128,
        report: &mut StepReport,
    ) {
        let per_tx = self.settings.max_liquidations_per_tx.max(1);
        let mut batches: Vec<Vec<Planned>> = Vec::new();
        let mut planned = planned.into_iter().peekable();
        while planned.peek().is_some() {
            batches.push(planned.by_ref().take(per_tx).collect());
        }
        // When the wallet has nothing in flight (a block has just moved prices after a quiet
        // spell), the batches it has room for are simulated before any is broadcast, several at
        // once: each simulation signs with the sequence the chain expects now, and the last of
        // them does not wait for every simulation and broadcast before it, one after the other.
        // Otherwise each batch is simulated just before its broadcast: that simulation is also
        // what finds the wallet's earlier txs dropped at their timeout height (the chain then
        // expects an older sequence), before a tx is signed past them.
        let room = if self.sender.in_flight() == 0 {
            self.sender.window()
        } else {
            0
        };
        let ahead: Vec<_> = batches
            .iter()
            .take(room)
            .map(|batch| self.simulate_batch(batch, &snapshot))
            .collect();
        let mut simulated = futures::stream::iter(ahead)
            .buffered(SIMULATIONS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter();
        // Each tx is confirmed from the moment it is broadcast, beside the broadcasts of the
        // next ones (the sender holds a broadcast back while `max_in_flight` are unsettled);
        // the batches are recorded and settled as their confirmations finish.
        for batch in batches {
            let simulation = match simulated.next() {
                Some(simulation) => simulation,
                None => self.simulate_batch(&batch, &snapshot).await,
            };
            if let Some((items, prepared, broadcast)) = self
                .broadcast_batch(batch, simulation, snapshot.clone(), &mut fee_budget, report)
                .await
            {
                let (hash, sequence) = (broadcast.hash(), broadcast.sequence());
                let sender = self.sender.clone();
                let confirmation = tokio::spawn(async move { sender.confirm(broadcast).await });
                self.unsettled.push(Unsettled {
                    items,
                    prepared,
                    snapshot: snapshot.clone(),
                    hash,
                    sequence,
                    confirmation,
                });
            }
        }
    }

    /// Simulates and broadcasts one batch. `None` when nothing was broadcast (everything
    /// dropped, or the send failed: then the batch is already recorded and settled).
    async fn broadcast_batch(
        &mut self,
        planned: Vec<Planned>,
        simulation: Result<PreparedBatch, SendError>,
        snapshot: Arc<MarketSnapshot>,
        fee_budget: &mut Uint128,
        report: &mut StepReport,
    ) -> Option<(Vec<Planned>, PreparedBatch, Broadcast)> {
        let mut prepared = self
            .settle_unsimulated(&planned, simulation, &snapshot, report)
            .await?;
        let items = self
            .settle_dropped(planned, &prepared, &snapshot, report)
            .await;
        if prepared.is_empty() {
            return None;
        }
        if !prepared.left_deposited.is_empty() {
            tracing::warn!(withdrawals = ?prepared.left_deposited, "seized collateral cannot be withdrawn in the same tx; it stays deposited and is swept later");
            self.sweep_due = true;
        }
        let bid = self.bid_for(&items, &prepared, &snapshot);
        if let Some(fee) = bid {
            // What the tx may pay: reserved, and shared among its jobs in the records.
            prepared.fee.amount = fee.into();
        }
        if !self
            .take_fee(&items, &prepared, &snapshot, fee_budget, report)
            .await
        {
            return None;
        }
        let accounts: Vec<&str> = items.iter().map(|i| i.plan.account.as_str()).collect();
        tracing::debug!(
            ?accounts,
            gas = prepared.gas_used,
            ?bid,
            in_flight = self.sender.in_flight(),
            "broadcasting liquidation batch"
        );
        let memo = format!("redline liquidation ({} accounts)", items.len());
        let send_timer = self.metrics.stage_timer("send");
        let broadcast = self
            .sender
            .broadcast_bidding(prepared.messages.clone(), &memo, prepared.gas_used, bid)
            .await;
        send_timer.observe_duration();
        match broadcast {
            Ok(broadcast) => Some((items, prepared, broadcast)),
            Err(error) => {
                self.settle_batch(items, &prepared, &snapshot, Err(error), report)
                    .await;
                None
            }
        }
    }

    /// Simulates the batch, which drops the liquidations that fail or fall below the profit
    /// floor.
    fn simulate_batch(
        &self,
        planned: &[Planned],
        snapshot: &Arc<MarketSnapshot>,
    ) -> impl std::future::Future<Output = Result<PreparedBatch, SendError>> + Send + 'static {
        let plans: Vec<Plan> = planned.iter().map(|p| p.plan.clone()).collect();
        let (sender, snapshot) = (self.sender.clone(), snapshot.clone());
        let (red_bank, metrics) = (self.settings.red_bank.clone(), self.metrics.clone());
        let min_profit = Value::from(self.settings.min_profit_usd);
        async move {
            let simulate_timer = metrics.stage_timer("simulate");
            let prepared =
                execute::prepare_batch(&sender, &red_bank, &plans, &snapshot.prices, min_profit)
                    .await;
            simulate_timer.observe_duration();
            prepared
        }
    }

    /// The batch's simulation, or `None` when it failed: the jobs are then recorded and
    /// released.
    async fn settle_unsimulated(
        &self,
        planned: &[Planned],
        simulation: Result<PreparedBatch, SendError>,
        snapshot: &MarketSnapshot,
        report: &mut StepReport,
    ) -> Option<PreparedBatch> {
        match simulation {
            Ok(prepared) => Some(prepared),
            Err(error) => {
                tracing::warn!(%error, accounts = ?planned.iter().map(|p| &p.plan.account).collect::<Vec<_>>(), "cannot simulate the batch; jobs released");
                for item in planned {
                    self.record_unsent(item, snapshot, Outcome::NotSent, error.to_string())
                        .await;
                    self.finish(&item.delivery, &item.lock, Verdict::Release)
                        .await;
                }
                report.failed += planned.len();
                None
            }
        }
    }

    /// Records and settles the liquidations the simulation dropped; the kept ones, in the
    /// batch's order.
    async fn settle_dropped(
        &self,
        planned: Vec<Planned>,
        prepared: &PreparedBatch,
        snapshot: &MarketSnapshot,
        report: &mut StepReport,
    ) -> Vec<Planned> {
        let mut slots: Vec<Option<Planned>> = planned.into_iter().map(Some).collect();
        for (index, why) in &prepared.dropped {
            let item = slots[*index].take().expect("each plan dropped once");
            report.skipped += 1;
            let (outcome, error, verdict) = self.dropped_verdict(&item.plan, why, snapshot.height);
            self.record_unsent(&item, snapshot, outcome, error).await;
            self.finish(&item.delivery, &item.lock, verdict).await;
        }
        prepared
            .kept
            .iter()
            .map(|&i| slots[i].take().expect("kept plans are not dropped"))
            .collect()
    }

    /// What a liquidation the simulation dropped is recorded as, and what becomes of its job.
    fn dropped_verdict(
        &self,
        plan: &Plan,
        why: &Dropped,
        height: u64,
    ) -> (Outcome, String, Verdict) {
        match why {
            Dropped::SimulationFailed(log) => {
                let verdict = if is_race(log) {
                    tracing::debug!(account = %plan.account, %log, "liquidation raced (already liquidated or healthy)");
                    self.lost_race(height);
                    Verdict::Ack
                } else {
                    tracing::warn!(account = %plan.account, %log, "the contract refuses this liquidation; dead-lettering");
                    Verdict::DeadLetter(format!("liquidation refused in simulation: {log}"))
                };
                (Outcome::SimulationFailed, log.clone(), verdict)
            }
            Dropped::BelowMinProfit {
                profit_after_fee_usd,
            } => {
                let mut error = format!(
                    "profit after fee {profit_after_fee_usd} USD < --min-profit-usd {}",
                    self.settings.min_profit_usd
                );
                if plan.shortfall.is_some() {
                    error.push_str(CAPPED_BY_FUNDS);
                }
                tracing::debug!(account = %plan.account, %profit_after_fee_usd, "below the profit floor");
                let verdict = match &plan.shortfall {
                    // Only the wallet's balance kept it small: worth it once funds come.
                    Some(lacking) => {
                        Verdict::Wait(Waiting::for_shortfalls(std::slice::from_ref(lacking)))
                    }
                    None => Verdict::Ack,
                };
                (Outcome::BelowMinProfit, error, verdict)
            }
        }
    }

    /// Someone else liquidated an account this worker planned at `height`.
    fn lost_race(&self, height: u64) {
        self.competition
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost_race(height);
    }

    /// The fee this batch bids for its place in the block ([`crate::bid`]); `None` when it pays
    /// the market's price (bidding off, no competition seen, or no price to value it at).
    fn bid_for(
        &self,
        items: &[Planned],
        prepared: &PreparedBatch,
        snapshot: &MarketSnapshot,
    ) -> Option<Uint128> {
        let policy = self.settings.bid;
        if policy.max_fee_share.is_zero() {
            return None;
        }
        let races = self
            .competition
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent(snapshot.height);
        let retries = items
            .iter()
            .map(|item| item.delivery.deliveries.saturating_sub(1))
            .max()
            .unwrap_or(0);
        let pressure = races
            .saturating_add(u32::try_from(retries).unwrap_or(u32::MAX))
            .saturating_add(policy.assumed_competition);
        if pressure == 0 {
            return None;
        }
        let denom = prepared.fee.denom.as_str();
        let profit = items.iter().fold(Value::zero(), |sum, item| {
            sum.saturating_add(item.plan.expected_profit)
        });
        let floor = snapshot
            .prices
            .from_usd(self.settings.min_profit_usd)
            .saturating_mul(Value::from_ratio(items.len() as u128, 1u128));
        let market_fee = Uint128::try_from(prepared.fee.amount).ok()?;
        let fee = policy.fee(BidInput {
            market_fee,
            expected_profit: snapshot.prices.amount_worth(denom, profit)?,
            // Rounded up, so that the bid keeps the floor whole.
            profit_floor: snapshot.prices.amount_worth(denom, floor)? + Uint128::one(),
            pressure,
        });
        (fee > market_fee).then_some(fee)
    }

    /// Takes the batch's fee from what the step has left for fees; `false` when it does not
    /// fit: the batch's jobs then wait for funds (recorded and settled here).
    async fn take_fee(
        &self,
        items: &[Planned],
        prepared: &PreparedBatch,
        snapshot: &MarketSnapshot,
        fee_budget: &mut Uint128,
        report: &mut StepReport,
    ) -> bool {
        let fee = Uint128::try_from(prepared.fee.amount).unwrap_or(Uint128::MAX);
        if fee <= *fee_budget {
            *fee_budget -= fee;
            return true;
        }
        tracing::debug!(wallet = %self.sender.address(), fee = %prepared.fee, left = %fee_budget, "the step's fee budget is spent; jobs wait for funds");
        // The batch's jobs share the missing fee.
        let jobs = items.len().max(1) as u128;
        let share = Uint128::new(fee.saturating_sub(*fee_budget).u128().div_ceil(jobs));
        for item in items {
            let error = format!(
                "fee {} exceeds the {}{} left for fees after this step's repayments",
                prepared.fee, fee_budget, prepared.fee.denom
            );
            self.record_unsent(item, snapshot, Outcome::NotSent, error)
                .await;
            let needs = (prepared.fee.denom.clone(), share);
            let verdict = Verdict::Wait(Waiting::for_plan(&item.plan, snapshot, needs));
            self.finish(&item.delivery, &item.lock, verdict).await;
        }
        report.skipped += items.len();
        false
    }

    /// Records an attempt that ended before its tx was sent.
    async fn record_unsent(
        &self,
        item: &Planned,
        snapshot: &MarketSnapshot,
        outcome: Outcome,
        error: String,
    ) {
        let mut record = self.record_for(&item.delivery, &item.plan, snapshot, item.started_at);
        record.outcome = outcome;
        record.error = error;
        self.emit(record).await;
    }

    /// Records and settles a batch after its send.
    async fn settle_batch(
        &mut self,
        items: Vec<Planned>,
        prepared: &PreparedBatch,
        snapshot: &Arc<MarketSnapshot>,
        result: Result<Sent, SendError>,
        report: &mut StepReport,
    ) {
        match result {
            Ok(Sent::Included(tx)) => {
                report.tx = Some(tx.hash.to_string());
                self.metrics.txs.with_label_values(&["included"]).inc();
                self.observe_timing(&items, &tx);
                let confirmed = self.record_included(&items, snapshot, &tx).await;
                report.liquidated += confirmed.liquidations.len();
                for item in &items {
                    self.finish(&item.delivery, &item.lock, Verdict::Ack).await;
                }
                if !confirmed.liquidations.is_empty() {
                    // A stopping worker only settles: its swaps would outlast the grace an
                    // orchestrator gives it, and the next holder of its wallet rebalances.
                    if !self.stopping {
                        self.after
                            .after_liquidations(&self.sender, &confirmed)
                            .await;
                    }
                    self.wake_due = true;
                }
            }
            Ok(Sent::DryRun(tx)) => {
                self.metrics.txs.with_label_values(&["dry_run"]).inc();
                let messages: Vec<String> = items
                    .iter()
                    .map(|i| {
                        format!(
                            "liquidate {{user: {}, collateral_denom: {}}} with {}{}",
                            i.plan.account,
                            i.plan.collateral_denom,
                            i.plan.debt_to_send,
                            i.plan.debt_denom
                        )
                    })
                    .collect();
                tracing::info!(
                    tx = %tx.hash,
                    sequence = tx.sequence,
                    gas_limit = tx.gas_limit,
                    fee = %tx.fee,
                    withdrawals = ?prepared.withdrawals,
                    ?messages,
                    "dry run: would broadcast this liquidation tx"
                );
                for item in &items {
                    let mut record =
                        self.record_for(&item.delivery, &item.plan, snapshot, item.started_at);
                    record.outcome = Outcome::DryRun;
                    record.tx_hash = tx.hash.to_string();
                    record.gas_wanted = tx.gas_limit;
                    record.gas_used = tx.gas_used;
                    record.batch_size = items.len() as u32;
                    self.emit(record).await;
                    self.finish(&item.delivery, &item.lock, Verdict::Ack).await;
                }
            }
            Err(error) => {
                report.failed += items.len();
                self.metrics.txs.with_label_values(&[error.label()]).inc();
                self.record_failure(items, prepared, snapshot, error).await;
            }
        }
    }

    fn observe_timing(&self, items: &[Planned], tx: &SentTx) {
        let broadcast_ms = unix_ms(tx.broadcast_at);
        for item in items {
            let waited = broadcast_ms.saturating_sub(item.delivery.enqueued_at_ms);
            self.metrics
                .job_to_broadcast
                .observe(waited as f64 / 1_000.0);
            self.metrics
                .blocks_to_inclusion
                .observe(tx.height().saturating_sub(item.delivery.job.height) as f64);
        }
        if let Ok(elapsed) = SystemTime::now().duration_since(tx.broadcast_at) {
            self.metrics
                .broadcast_to_inclusion
                .observe(elapsed.as_secs_f64());
        }
        self.metrics.gas_used.observe(tx.outcome.gas_used as f64);
        self.metrics.batch_size.observe(items.len() as f64);
    }

    /// Records an included batch (success or DeliverTx failure) from its events.
    async fn record_included(
        &self,
        items: &[Planned],
        snapshot: &MarketSnapshot,
        tx: &SentTx,
    ) -> BatchReport {
        let plans: Vec<&Plan> = items.iter().map(|i| &i.plan).collect();
        let fee_amount = Uint128::try_from(tx.fee.amount).unwrap_or(Uint128::MAX);
        let executed =
            execute::read_outcome(&tx.outcome, &plans, self.sender.address(), fee_amount);
        let succeeded = tx.outcome.is_success();
        let mut liquidations = Vec::new();
        let mut received: BTreeMap<String, Uint128> = BTreeMap::new();
        let mut spent: BTreeMap<String, Uint128> = BTreeMap::new();
        *spent.entry(tx.fee.denom.clone()).or_default() += fee_amount;
        let broadcast_ms = unix_ms(tx.broadcast_at);
        for (item, done) in items.iter().zip(&executed) {
            let plan = &item.plan;
            let mut record = self.record_for(&item.delivery, plan, snapshot, item.started_at);
            record.height = tx.height();
            record.tx_hash = tx.hash.to_string();
            record.batch_size = items.len() as u32;
            record.gas_wanted = tx.gas_limit;
            record.gas_used = tx.outcome.gas_used;
            record.fee = Coin::new(done.fee_share, tx.fee.denom.clone()).to_string();
            record.job_to_broadcast_ms =
                Some(broadcast_ms.saturating_sub(item.delivery.enqueued_at_ms));
            record.found_to_broadcast_ms =
                Some(broadcast_ms.saturating_sub(item.delivery.job.found_at_ms));
            record.broadcast_at_ms = Some(broadcast_ms);
            record.profit_value = profit(snapshot, plan, done, &tx.fee.denom);
            record.profit_usd = snapshot.prices.to_usd(record.profit_value);
            if succeeded {
                record.outcome = Outcome::Liquidated;
                record.debt_repaid = done.debt_repaid;
                record.collateral_seized = done.collateral_seized;
                record.collateral_received = done.collateral_received;
                if done.debt_repaid < plan.debt_to_send {
                    self.metrics.refunds.inc();
                    tracing::warn!(account = %plan.account, sent = %plan.debt_to_send, repaid = %done.debt_repaid, "the contract refunded part of the debt sent");
                }
                tracing::info!(
                    account = %plan.account,
                    height = tx.height(),
                    tx = %tx.hash,
                    debt = %format!("{}{}", done.debt_repaid, plan.debt_denom),
                    collateral = %format!("{}{}", done.collateral_received, plan.collateral_denom),
                    profit_usd = %record.profit_usd,
                    "liquidated"
                );
                *received.entry(plan.collateral_denom.clone()).or_default() +=
                    done.collateral_received;
                *spent.entry(plan.debt_denom.clone()).or_default() += done.debt_repaid;
                liquidations.push(ConfirmedLiquidation {
                    account: plan.account.clone(),
                    debt_denom: plan.debt_denom.clone(),
                    debt_repaid: done.debt_repaid,
                    collateral_denom: plan.collateral_denom.clone(),
                    collateral_received: done.collateral_received,
                });
            } else {
                record.outcome = Outcome::DeliverTxFailed;
                record.error = format!(
                    "code {} ({}): {}",
                    tx.outcome.code, tx.outcome.codespace, tx.outcome.log
                );
            }
            self.emit(record).await;
        }
        let coins = |map: BTreeMap<String, Uint128>| {
            map.into_iter()
                .filter(|(_, a)| !a.is_zero())
                .map(|(d, a)| Coin::new(a, d))
                .collect()
        };
        BatchReport {
            height: tx.height(),
            tx_hash: tx.hash.to_string(),
            liquidations,
            received: coins(received),
            spent: coins(spent),
            short: coins(self.reported.missing.clone()),
        }
    }

    async fn record_failure(
        &mut self,
        items: Vec<Planned>,
        prepared: &PreparedBatch,
        snapshot: &Arc<MarketSnapshot>,
        error: SendError,
    ) {
        let accounts: Vec<&str> = items.iter().map(|i| i.plan.account.as_str()).collect();
        let code = error.code();
        // Wrong sequence or out of gas must never happen: they are errors, the rest warnings.
        // (A mempool that dropped the wallet's earlier txs refuses the next for its sequence:
        // that is the drop's, said where the drop is.)
        if matches!(error, SendError::InFlightDropped { .. }) {
            tracing::debug!(?accounts, %error, "jobs released");
        } else if matches!(
            code,
            Some(TxErrorCode::WrongSequence | TxErrorCode::OutOfGas)
        ) {
            tracing::error!(?accounts, %error, "liquidation tx failed");
        } else if code == Some(TxErrorCode::InsufficientFunds) {
            tracing::info!(?accounts, wallet = %self.sender.address(), %error, "wallet without funds for this tx; jobs wait for funds");
        } else if matches!(error, SendError::Expired { .. }) {
            // Full blocks or a risen fee market: the accounts are tried again at once.
            tracing::info!(?accounts, %error, "liquidation tx missed its blocks; jobs released");
        } else {
            tracing::warn!(?accounts, %error, "liquidation tx failed; jobs released");
        }
        if let SendError::DeliverTx { tx, rejection } = &error {
            if is_race(&rejection.log) {
                // Another bot's liquidation came first in the block.
                self.lost_race(snapshot.height);
            }
            // Included and failed: the fee is spent, recorded as a loss.
            self.record_included(&items, snapshot, tx).await;
            for item in &items {
                self.finish(&item.delivery, &item.lock, Verdict::Release)
                    .await;
            }
            return;
        }
        let outcome = match &error {
            // Refused for the wallet's funds: nothing paid, the jobs wait for funds.
            SendError::CheckTx(_) if code == Some(TxErrorCode::InsufficientFunds) => {
                Outcome::NotSent
            }
            SendError::CheckTx(_)
            | SendError::InFlightDropped {
                refused: Some(_), ..
            } => Outcome::CheckTxFailed,
            SendError::Unconfirmed { .. } => Outcome::Unconfirmed,
            SendError::Expired { .. } => Outcome::Expired,
            _ => Outcome::NotSent,
        };
        let refused = error.rejection().and_then(|r| r.hash);
        for item in &items {
            let mut record = self.record_for(&item.delivery, &item.plan, snapshot, item.started_at);
            record.outcome = outcome;
            record.error = error.to_string();
            record.batch_size = items.len() as u32;
            record.gas_used = prepared.gas_used;
            if let Some(hash) = error.in_doubt().or(refused) {
                record.tx_hash = hash.to_string();
            }
            self.emit(record).await;
        }
        match error.in_doubt() {
            Some(hash) => {
                // The jobs go back (a re-check will see whatever happened); the locks stay
                // until the tx is settled, so nobody liquidates these accounts meanwhile.
                for item in &items {
                    self.settle(&item.delivery, Verdict::Release).await;
                }
                self.in_doubt.push(InDoubt {
                    hash,
                    items,
                    credit_locks: Vec::new(),
                    snapshot: snapshot.clone(),
                });
            }
            None => {
                let short_of_funds = code == Some(TxErrorCode::InsufficientFunds);
                for item in &items {
                    let verdict = if short_of_funds {
                        let needs = (item.plan.debt_denom.clone(), item.plan.debt_to_send);
                        Verdict::Wait(Waiting::for_plan(&item.plan, snapshot, needs))
                    } else {
                        Verdict::Release
                    };
                    self.finish(&item.delivery, &item.lock, verdict).await;
                }
            }
        }
    }

    /// Tries to settle the batches in doubt; `true` when all are settled.
    async fn settle_in_doubt(&mut self) -> anyhow::Result<bool> {
        while let Some(resolution) = self.sender.resolve_unresolved().await? {
            let hash = match &resolution {
                Resolution::Included(tx) => tx.hash,
                Resolution::SequenceConsumed { hash, .. }
                | Resolution::Expired { hash, .. }
                | Resolution::PresumedDropped { hash, .. } => *hash,
            };
            let Some(at) = self.in_doubt.iter().position(|d| d.hash == hash) else {
                tracing::warn!(tx = %hash, resolution = ?resolution, "a tx of unknown fate settled that this worker does not hold");
                continue;
            };
            let in_doubt = self.in_doubt.remove(at);
            match &resolution {
                Resolution::Included(tx) => {
                    tracing::info!(tx = %tx.hash, height = tx.height(), "tx in doubt found in a block");
                    self.record_included(&in_doubt.items, &in_doubt.snapshot, tx)
                        .await;
                }
                Resolution::Expired { .. } => {
                    tracing::debug!(tx = %in_doubt.hash, "tx in doubt expired unincluded; its accounts are unlocked");
                }
                other => {
                    tracing::warn!(tx = %in_doubt.hash, resolution = ?other, "tx in doubt settled without its events");
                }
            }
            for lock in in_doubt.locks() {
                self.unlock(lock).await;
            }
        }
        if self.sender.has_unresolved().await {
            // Their locks stay held (the lock keeper renews them) until the tx is settled.
            return Ok(false);
        }
        // Settled by another caller of the sender (its outcome logged there).
        for in_doubt in std::mem::take(&mut self.in_doubt) {
            tracing::warn!(tx = %in_doubt.hash, "tx in doubt settled without its events");
            for lock in in_doubt.locks() {
                self.unlock(lock).await;
            }
        }
        Ok(true)
    }

    /// Withdraws any Red Bank deposit the wallet holds (collateral a liquidation left behind).
    async fn sweep(&mut self) {
        let snapshot = match self.reader.latest().await {
            Ok(snapshot) => snapshot,
            // Started before the chain's first block: the sweep stays due, checked next step.
            Err(error) if error.is_no_block_yet() => {
                tracing::debug!(%error, "deposits to sweep: waiting for the chain's first block");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot check for deposits to sweep");
                return;
            }
        };
        let own = match self
            .reader
            .read_account(
                &AccountKey::Address(self.sender.address().to_string()),
                snapshot.height,
            )
            .await
        {
            Ok(own) => own,
            Err(error) => {
                tracing::warn!(%error, "cannot check for deposits to sweep");
                return;
            }
        };
        let denoms: Vec<String> = own
            .collaterals
            .iter()
            .filter(|c| !c.amount.is_zero())
            .map(|c| c.denom.clone())
            .collect();
        if denoms.is_empty() {
            self.sweep_due = false;
            return;
        }
        let from = self.sender.wallet().address();
        let messages: Result<Vec<_>, _> = denoms
            .iter()
            .map(|denom| execute::withdraw_msg(from, &self.settings.red_bank, denom))
            .collect();
        let messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot build the sweep");
                return;
            }
        };
        let started_at = SystemTime::now();
        match self.sender.send(messages, "redline sweep").await {
            Ok(Sent::Included(tx)) => {
                self.sweep_due = false;
                let mut value = Value::zero();
                let mut detail = Vec::new();
                for event in tx.outcome.events_of("wasm") {
                    if event.attribute("action") != Some("withdraw") {
                        continue;
                    }
                    let (Some(denom), Some(amount)) = (
                        event.attribute("denom"),
                        event
                            .attribute("amount")
                            .and_then(|a| a.parse::<u128>().ok()),
                    ) else {
                        continue;
                    };
                    value += snapshot
                        .prices
                        .value(denom, Uint128::new(amount))
                        .unwrap_or_default();
                    detail.push(format!("{amount}{denom}"));
                }
                let fee = Uint128::try_from(tx.fee.amount).unwrap_or_default();
                value -= snapshot
                    .prices
                    .value(&tx.fee.denom, fee)
                    .unwrap_or_default();
                let record = AttemptRecord {
                    started_at,
                    height: tx.height(),
                    worker_slot: self.slot,
                    wallet: self.sender.address().to_string(),
                    tx_hash: tx.hash.to_string(),
                    gas_wanted: tx.gas_limit,
                    gas_used: tx.outcome.gas_used,
                    fee: tx.fee.to_string(),
                    profit_value: value,
                    profit_usd: snapshot.prices.to_usd(value),
                    outcome: Outcome::Sweep,
                    detail: detail.join(" "),
                    ..AttemptRecord::default()
                };
                tracing::info!(tx = %tx.hash, withdrawn = %record.detail, "swept deposits left by earlier liquidations");
                self.emit(record).await;
            }
            Ok(Sent::DryRun(_)) => {
                self.sweep_due = false;
                tracing::info!(?denoms, "dry run: would withdraw leftover deposits");
            }
            Err(error) => {
                tracing::warn!(%error, ?denoms, "sweeping leftover deposits failed; retried after the next batch");
            }
        }
    }

    async fn settle(&self, delivery: &Delivery<LiquidationCandidate>, verdict: Verdict) {
        let account = &delivery.job.account;
        let result = match &verdict {
            Verdict::Ack => self.queue.ack(delivery).await.map(|_| ()),
            Verdict::Release => self.queue.release(delivery).await,
            Verdict::Wait(waiting) => {
                // Every job set aside counts in this step's capital report, whatever set it aside.
                self.shortages
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .note(&waiting.needs);
                self.queue
                    .park(delivery, waiting.score, &waiting.needs)
                    .await
                    .map(|_| ())
            }
            Verdict::DeadLetter(reason) => self.queue.dead_letter(delivery, reason).await,
        };
        if let Err(error) = result {
            // The job stays pending and comes back after the visibility timeout.
            tracing::warn!(%account, job = %delivery.id, %error, "cannot settle the job in the queue");
        }
    }

    async fn settle_all(&self, deliveries: &[Delivery<LiquidationCandidate>], verdict: Verdict) {
        for delivery in deliveries {
            self.settle(delivery, verdict.clone()).await;
        }
    }

    async fn unlock(&self, lock: &Lease) {
        self.keeper.release(lock);
        if let Err(error) = self.leases.release(lock).await {
            tracing::warn!(key = %lock.key, %error, "cannot release an account lock; it expires by itself");
        }
    }

    /// Settles the job, then releases its account lock.
    async fn finish(
        &self,
        delivery: &Delivery<LiquidationCandidate>,
        lock: &Lease,
        verdict: Verdict,
    ) {
        self.settle(delivery, verdict).await;
        self.unlock(lock).await;
    }
}

/// Received value − repaid value − fee share value, exact, at the snapshot's default prices.
pub fn profit(snapshot: &MarketSnapshot, plan: &Plan, done: &Executed, fee_denom: &str) -> Value {
    let prices = &snapshot.prices;
    let received = prices
        .value(&plan.collateral_denom, done.collateral_received)
        .unwrap_or_default();
    let repaid = prices
        .value(&plan.debt_denom, done.debt_repaid)
        .unwrap_or_default();
    let fee = prices.value(fee_denom, done.fee_share).unwrap_or_default();
    received - repaid - fee
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_job_needs_what_its_shortfalls_lack() {
        let short = |denom: &str, wanted: u128, available: u128, per_capital: &str| Shortfall {
            denom: denom.into(),
            wanted: Uint128::new(wanted),
            available: Uint128::new(available),
            expected_profit: Value::zero(),
            profit_per_capital: per_capital.parse().unwrap(),
        };
        let waiting = Waiting::for_shortfalls(&[
            short("uusdc", 1_000, 300, "0.05"),
            short("uatom", 50, 0, "0.08"),
        ]);
        assert_eq!(
            waiting.needs,
            vec![("uusdc".to_string(), 700), ("uatom".to_string(), 50)]
        );
        assert_eq!(waiting.score, 0.08);
    }

    #[test]
    fn races_are_recognised() {
        assert!(is_race(
            "failed to execute message; message index: 0: User's health factor is not less than 1 and thus cannot be liquidated: execute wasm contract failed"
        ));
        assert!(is_race(
            "User has no balance in specified collateral asset to be liquidated"
        ));
        assert!(!is_race("Sent more than one denomination"));
    }
}
