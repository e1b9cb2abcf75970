//! The worker's credit-account path: Rover candidates, several per tx (see [`crate::rover`]).
//!
//! Same job rules as the Red Bank path: the account is locked while its liquidation is decided
//! and sent; a recovered account is acknowledged quietly; the job is acknowledged only once the
//! outcome is recorded; a candidate that can never succeed is dead-lettered with the reason.
//! A worker has one credit-account tx in flight at a time, confirmed in the background while
//! its Red Bank liquidations go on. A liquidation funded by a borrow moves no coin of the wallet
//! but the fee; one no swap pool pays for is funded from the wallet (see [`Funding`]) when it
//! holds the debt coin, taken from the same balances the Red Bank liquidations are planned with.
//! What the tx sends and its fee stay reserved until it is recorded.

use redline_chain::Simulation;
use redline_pipeline::jobs::LiquidationPlan;

use super::*;
use crate::credit_account::{own_account, CreditAccountError, RoverContracts};
use crate::rebalance::pool_quote;
use crate::rover::{self, Funding, PoolRanking, Replanner, RoverExecuted, RoverOrder};

/// Contract refusals that mean the liquidation does not pay now (the swap returns too little,
/// or less than the borrow): acknowledged, the health checker queues the account again.
const UNPROFITABLE_MARKERS: &[&str] = &[
    "does not result in a profit",
    "min_receive",
    "maximum allowed loan-to-value",
];

/// A credit-account candidate, checked and locked.
struct RoverJob {
    delivery: Delivery<LiquidationCandidate>,
    lock: Lease,
    account_id: String,
    plan: LiquidationPlan,
    /// The account's plans, most profitable at oracle prices first: the order they are funded
    /// from the wallet in, when no swap pool pays.
    by_oracle: Vec<LiquidationPlan>,
    started_at: SystemTime,
}

/// The wallet's coins this step may spend, the same ledger the step's Red Bank liquidations are
/// planned with: what txs still unconfirmed will spend is already taken out.
pub(super) struct StepFunds<'a> {
    pub spendable: &'a BTreeMap<String, Uint128>,
    /// The fee denom this step's txs may spend on fees.
    pub fee_budget: &'a mut Uint128,
}

/// A liquidation simulated and ready to sign.
struct RoverReady {
    order: RoverOrder,
    /// With the `min_receive` sent.
    message: cosmrs::Any,
    /// With the stricter `min_receive` simulated: what the liquidations after it in the same tx
    /// are simulated on top of.
    strict_message: cosmrs::Any,
    /// The tx's gas with this liquidation and the ones before it.
    gas_used: u64,
    /// What the simulation says it does.
    expected: RoverExecuted,
}

/// Why a simulated liquidation is not sent.
enum NotSent {
    /// The chain refused it: the log.
    Refused(String),
    /// Its profit after the fee is under the floor.
    BelowMinProfit(Value),
    /// Its fee is more than the step has left for fees: `(fee, left)`.
    NoFeeFunds(Coin, Uint128),
    /// The swap's floor at the slippage allowed is below the debt it must repay.
    Thin { floor: Uint128, repaid: Uint128 },
    /// No swap pool repays a borrow, and the wallet holds less than the debt coin it would
    /// send instead: what it needs and what it holds.
    NoFunds { needs: Coin, held: Uint128 },
}

impl NotSent {
    /// The liquidation would not pay now (another of the account's may).
    fn does_not_pay(&self) -> bool {
        match self {
            NotSent::Refused(log) => {
                !is_race(log) && UNPROFITABLE_MARKERS.iter().any(|m| log.contains(m))
            }
            NotSent::BelowMinProfit(_) | NotSent::Thin { .. } => true,
            NotSent::NoFeeFunds(..) | NotSent::NoFunds { .. } => false,
        }
    }
}

/// How long a worker keeps a credit-account candidate for its next tx before handing it back
/// to the queue for any worker: well within the queue's visibility timeout, so that the job
/// is not handed out twice meanwhile.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// A credit-account candidate kept for the worker's next tx.
pub(super) struct Held {
    delivery: Delivery<LiquidationCandidate>,
    since: std::time::Instant,
}

impl Held {
    fn new(delivery: Delivery<LiquidationCandidate>) -> Self {
        Held {
            delivery,
            since: std::time::Instant::now(),
        }
    }
}

/// Liquidations of one credit account tried before its job is given up for this step: the
/// best pair's pool may not pay where another pair's still does.
const PLANS_TRIED: usize = 3;

/// Blocks during which a credit account's decline is recorded once: the health checker queues
/// an account its oracle prices call profitable every block, and while its pool says otherwise
/// the same decline would fill the attempts stream and CSV with one row a block. Its metric
/// still counts every one.
pub(super) const DECLINES_RECORDED_EVERY: u64 = 100;

/// A credit account's plans whose swaps are quoted by their pools before any is simulated.
const PLANS_QUOTED: usize = 8;

/// What a plan is prepared with.
struct PlanTry<'a> {
    own: &'a str,
    contracts: &'a RoverContracts,
    snapshot: &'a MarketSnapshot,
    /// The liquidations already in the tx.
    before: &'a [&'a RoverReady],
}

/// What became of a credit account's plans.
enum Attempt {
    Ready(Box<RoverReady>),
    /// The best plan's pool is in another worker's tx.
    PoolBusy,
    NotSent(NotSent),
    /// The chain could not be asked.
    Failed(SendError),
}

/// A credit-account tx broadcast and being confirmed.
pub(super) struct UnsettledCredit {
    batch: Vec<(RoverJob, RoverReady)>,
    pool_locks: Vec<Lease>,
    snapshot: Arc<MarketSnapshot>,
    fee: Coin,
    hash: TxHash,
    sequence: u64,
    confirmation: tokio::task::JoinHandle<Result<Sent, SendError>>,
}

/// An included tx, as one of its liquidations books it.
struct Included<'a> {
    tx: &'a SentTx,
    /// This liquidation's part of the tx's fee.
    fee_share: &'a Coin,
    /// Liquidations in the tx.
    size: usize,
}

impl<C, Q> Worker<C, Q>
where
    C: ChainClient + Clone + 'static,
    Q: Parking<Job = LiquidationCandidate>,
{
    /// The credit account this worker liquidates from, once it has been found or opened.
    pub fn credit_account(&self) -> Option<&str> {
        self.own_credit_account.as_deref()
    }

    /// Liquidates the credit accounts of `deliveries` (with those held from earlier steps) in
    /// one tx of up to `--max-liquidations-per-tx`, broadcast without waiting for its block.
    /// While that tx is unsettled the deliveries are held: a tx simulated beside it would not see
    /// its swaps through the same pools, and could fail its `min_receive` at delivery.
    pub(super) async fn liquidate_credit_accounts(
        &mut self,
        deliveries: Vec<Delivery<LiquidationCandidate>>,
        snapshot: &Arc<MarketSnapshot>,
        funds: StepFunds<'_>,
        report: &mut StepReport,
    ) {
        self.held_credit
            .extend(deliveries.into_iter().map(Held::new));
        self.release_held_too_long().await;
        if self.unsettled_credit.is_some() || self.held_credit.is_empty() {
            return;
        }
        let deliveries = self.next_credit_deliveries().await;
        if deliveries.is_empty() {
            return;
        }
        let taken = join_all(
            deliveries
                .into_iter()
                .map(|delivery| self.take_credit_account(delivery)),
        )
        .await;
        let taken_count = taken.len();
        let jobs: Vec<RoverJob> = taken.into_iter().flatten().collect();
        report.skipped += taken_count - jobs.len();
        if jobs.is_empty() {
            return;
        }
        let contracts = match self.rover_contracts().await {
            Ok(contracts) => contracts,
            Err(error) => return self.credit_accounts_error(jobs, &error, report).await,
        };
        let replanner = Replanner::read(
            self.reader.client(),
            &self.reader.contracts().red_bank,
            &contracts.credit_manager,
        );
        let replanner = match replanner.await {
            Ok(replanner) => replanner,
            Err(error) => return self.credit_accounts_error(jobs, &error, report).await,
        };
        let checked = join_all(
            jobs.into_iter()
                .map(|job| self.check_credit_account(job, &contracts, &replanner, snapshot)),
        )
        .await;
        let mut liquidatable = Vec::new();
        for (job, check) in checked {
            match check {
                Ok(plans) if !plans.is_empty() => liquidatable.push((job, plans)),
                Ok(_) => {
                    report.skipped += 1;
                    self.finish(&job.delivery, &job.lock, Verdict::Ack).await;
                }
                Err(error) => self.credit_account_error(&job, &error, report).await,
            }
        }
        if liquidatable.is_empty() {
            return;
        }
        // Opened only when there is something to liquidate from it.
        let own = match self.ensure_credit_account(&contracts, snapshot).await {
            Ok(own) => own,
            Err(error) => {
                let jobs = liquidatable.into_iter().map(|(job, _)| job).collect();
                return self.credit_accounts_error(jobs, &error, report).await;
            }
        };
        let mut wallet_left = funds.spendable.clone();
        let (batch, pool_locks) = self
            .build_credit_batch(
                liquidatable,
                &own,
                (&contracts, snapshot),
                &mut wallet_left,
                report,
            )
            .await;
        if batch.is_empty() {
            return self.unlock_all(pool_locks).await;
        }
        self.broadcast_credit_batch(batch, pool_locks, snapshot, funds.fee_budget, report)
            .await;
    }

    /// The held deliveries to try now: enough for a full tx when some fail their re-check, in
    /// the queue's order (most profitable first), leaving held those whose swap pool another
    /// worker's tx is using.
    async fn next_credit_deliveries(&mut self) -> Vec<Delivery<LiquidationCandidate>> {
        let wanted = 2 * self.settings.max_liquidations_per_tx.max(1);
        let mut pool_in_use: BTreeMap<String, bool> = BTreeMap::new();
        let mut chosen = Vec::new();
        for (index, held) in self.held_credit.iter().enumerate() {
            let delivery = &held.delivery;
            if chosen.len() == wanted {
                break;
            }
            let Some(plan) = &delivery.job.plan else {
                chosen.push(index);
                continue;
            };
            let key = self
                .keys
                .swap_pool_lock((&plan.collateral_denom, &plan.debt_denom));
            let in_use = match pool_in_use.get(&key) {
                Some(in_use) => *in_use,
                None => {
                    let in_use = self.leases.is_held(&key).await.unwrap_or(false);
                    pool_in_use.insert(key, in_use);
                    in_use
                }
            };
            if !in_use {
                chosen.push(index);
            }
        }
        let mut next = Vec::with_capacity(chosen.len());
        for index in chosen.into_iter().rev() {
            next.push(self.held_credit.remove(index).delivery);
        }
        next.reverse();
        next
    }

    /// Validates a credit-account candidate and locks its account. `None` when the job was
    /// settled on the way.
    async fn take_credit_account(
        &self,
        delivery: Delivery<LiquidationCandidate>,
    ) -> Option<RoverJob> {
        if self.refuse_wrong_chain(&delivery).await {
            return None;
        }
        let candidate = &delivery.job;
        let checked = match (&self.settings.credit_manager, &candidate.account, &candidate.plan) {
            (Some(_), AccountKey::CreditAccount(id), Some(plan)) => {
                Ok((id.to_string(), plan.clone()))
            }
            (None, _, _) => Err("credit-account candidate, but this deployment runs no credit manager (the manifest's contracts.credit_manager)".to_string()),
            (_, AccountKey::Address(address), _) => Err(format!("credit-account candidate names an address ({address}), not a credit account id")),
            (_, _, None) => Err("credit-account candidate without a liquidation plan (which debt, which collateral)".to_string()),
        };
        let (account_id, plan) = match checked {
            Ok(checked) => checked,
            Err(reason) => {
                tracing::warn!(account = %candidate.account, %reason, "dead-lettering candidate");
                self.metrics.job("unsupported_protocol");
                self.settle(&delivery, Verdict::DeadLetter(reason)).await;
                return None;
            }
        };
        let lock = self.lock_account(&delivery).await?;
        Some(RoverJob {
            delivery,
            lock,
            account_id,
            plan,
            by_oracle: Vec::new(),
            started_at: SystemTime::now(),
        })
    }

    /// Settles every job of `jobs` for the same `error`.
    async fn credit_accounts_error(
        &self,
        jobs: Vec<RoverJob>,
        error: &CreditAccountError,
        report: &mut StepReport,
    ) {
        for job in jobs {
            self.credit_account_error(&job, error, report).await;
        }
    }

    /// Re-checks a candidate with the health contract and plans its liquidation again from the
    /// account as it stands. `Ok(None)`: nothing to liquidate now (the job is acknowledged).
    async fn check_credit_account(
        &self,
        job: RoverJob,
        contracts: &RoverContracts,
        replanner: &Replanner<C>,
        snapshot: &MarketSnapshot,
    ) -> (RoverJob, Result<Vec<LiquidationPlan>, CreditAccountError>) {
        let span = tracing::info_span!("credit_account", account = %job.delivery.job.account);
        let checked = async {
            let health =
                rover::liquidation_health(self.reader.client(), contracts, &job.account_id).await?;
            if !health.liquidatable {
                let health_factor = health.health.liquidation_health_factor;
                tracing::debug!(
                    ?health_factor,
                    "stale candidate dropped: the credit account is healthy"
                );
                self.metrics.job("healthy");
                return Ok(Vec::new());
            }
            if health.has_perps() {
                self.skip_for_perps(&job.account_id);
                return Ok(Vec::new());
            }
            let AccountKey::CreditAccount(id) = job.delivery.job.account else {
                return Ok(Vec::new());
            };
            let plans = replanner.replan(id, snapshot).await?;
            if plans.is_empty() {
                tracing::debug!(
                    "stale candidate dropped: no liquidation the credit manager accepts now"
                );
                self.metrics.job("no_plan");
            }
            Ok(plans)
        }
        .instrument(span)
        .await;
        (job, checked)
    }

    /// A liquidatable account with perps positions is left alone: the credit manager closes
    /// them first, settling their PnL, which redline does not plan for. Counted each time,
    /// reported once per account.
    fn skip_for_perps(&self, account_id: &str) {
        self.metrics.job("has_perps");
        let mut reported = self
            .perps_reported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if reported.insert(account_id.to_string()) {
            tracing::info!(
                account_id,
                "credit account skipped: it holds perps positions, which redline does not liquidate"
            );
        }
    }

    /// Simulates the liquidations one after the other inside one tx, each on top of the ones
    /// before it (so each swap meets the pool as the earlier ones leave it), up to
    /// `--max-liquidations-per-tx`. What does not fit is held for the next step; one refused
    /// only behind others is held too, to be tried alone.
    async fn build_credit_batch(
        &mut self,
        liquidatable: Vec<(RoverJob, Vec<LiquidationPlan>)>,
        own: &str,
        (contracts, snapshot): (&RoverContracts, &MarketSnapshot),
        wallet_left: &mut BTreeMap<String, Uint128>,
        report: &mut StepReport,
    ) -> (Vec<(RoverJob, RoverReady)>, Vec<Lease>) {
        let per_tx = self.settings.max_liquidations_per_tx.max(1);
        let mut batch: Vec<(RoverJob, RoverReady)> = Vec::new();
        let mut pool_locks: Vec<Lease> = Vec::new();
        for (mut job, plans) in liquidatable {
            if batch.len() == per_tx {
                self.hold_credit_job(job).await;
                continue;
            }
            let before: Vec<&RoverReady> = batch.iter().map(|(_, ready)| ready).collect();
            let span = tracing::info_span!("credit_account", account = %job.delivery.job.account);
            let tried = PlanTry {
                own,
                contracts,
                snapshot,
                before: &before,
            };
            let attempt = self
                .first_paying_plan(&mut job, plans, &tried, &mut pool_locks)
                .instrument(span.clone())
                .await;
            let attempt = match attempt {
                Attempt::NotSent(why)
                    if why.does_not_pay() && self.settings.credit_wallet_funding =>
                {
                    self.fund_from_wallet(&mut job, why, &tried, wallet_left)
                        .instrument(span)
                        .await
                }
                attempt => attempt,
            };
            match attempt {
                Attempt::Ready(ready) => batch.push((job, *ready)),
                Attempt::PoolBusy => self.hold_credit_job(job).await,
                Attempt::NotSent(NotSent::Refused(log)) if !batch.is_empty() && !is_race(&log) => {
                    tracing::debug!(%log, "refused behind this tx's other liquidations; held to be tried alone");
                    self.hold_credit_job(job).await;
                }
                Attempt::NotSent(not_sent) => {
                    report.skipped += 1;
                    self.credit_liquidation_not_sent(job, not_sent, snapshot)
                        .await;
                }
                Attempt::Failed(error) => {
                    tracing::warn!(account = %job.delivery.job.account, %error, "cannot simulate the credit-account liquidation; job released");
                    report.failed += 1;
                    let mut record = self.rover_record(&job, snapshot);
                    record.error = error.to_string();
                    self.emit(record).await;
                    self.finish(&job.delivery, &job.lock, Verdict::Release)
                        .await;
                }
            }
        }
        (batch, pool_locks)
    }

    /// Prepares the first of `plans` that pays through its swap pool, and makes it `job`'s
    /// plan: the plans are ranked by their pools' quotes (those whose swap would not repay the
    /// borrow left out), and at most [`PLANS_TRIED`] of them are simulated. A plan whose pool
    /// another worker's tx is using is passed over (the job is held when that is the best
    /// plan's).
    async fn first_paying_plan(
        &self,
        job: &mut RoverJob,
        plans: Vec<LiquidationPlan>,
        tried: &PlanTry<'_>,
        pool_locks: &mut Vec<Lease>,
    ) -> Attempt {
        job.by_oracle = plans.clone();
        let quoted = self.pool_quotes(plans, &tried.contracts.swapper).await;
        let plans = match rover::rank_by_pool(
            quoted,
            &tried.snapshot.prices,
            self.settings.credit_swap_margin,
        ) {
            PoolRanking::Ranked(plans) | PoolRanking::Unquoted(plans) => plans,
            PoolRanking::Thin { floor, repaid } => {
                return Attempt::NotSent(NotSent::Thin { floor, repaid })
            }
        };
        let mut last = Attempt::PoolBusy;
        for (rank, plan) in plans.into_iter().take(PLANS_TRIED).enumerate() {
            let pool = self
                .keys
                .swap_pool_lock((&plan.collateral_denom, &plan.debt_denom));
            if !pool_locks.iter().any(|lock| lock.key == pool)
                && !self.lock_swap_pool(&pool, pool_locks).await
            {
                if rank == 0 {
                    return Attempt::PoolBusy;
                }
                continue;
            }
            let order = rover::order_for(tried.own, &job.account_id, &plan, Funding::Borrow);
            let prepared = self
                .prepare_credit_liquidation(order, tried.contracts, tried.snapshot, tried.before)
                .await;
            job.plan = plan;
            last = match prepared {
                Ok(Ok(ready)) => return Attempt::Ready(Box::new(ready)),
                Ok(Err(not_sent)) if not_sent.does_not_pay() => Attempt::NotSent(not_sent),
                Ok(Err(not_sent)) => return Attempt::NotSent(not_sent),
                Err(error) => return Attempt::Failed(error),
            };
        }
        last
    }

    /// Prepares `job`'s liquidation funded from the wallet, after no swap pool paid for a
    /// borrow (`why`): its plans in the oracle's order, the first the wallet holds the debt coin
    /// for and that pays at oracle prices after the fee, at most [`PLANS_TRIED`]. The coins it
    /// sends come out of `wallet_left`. `why` stands when none pays that way either; a plan the
    /// wallet cannot fund makes the job wait for funds.
    async fn fund_from_wallet(
        &self,
        job: &mut RoverJob,
        why: NotSent,
        tried: &PlanTry<'_>,
        wallet_left: &mut BTreeMap<String, Uint128>,
    ) -> Attempt {
        let mut short = None;
        let plans = std::mem::take(&mut job.by_oracle);
        for plan in plans.into_iter().take(PLANS_TRIED) {
            let held = wallet_left
                .get(&plan.debt_denom)
                .copied()
                .unwrap_or_default();
            if held < plan.debt_to_repay {
                let needs = Coin::new(plan.debt_to_repay, plan.debt_denom.clone());
                short.get_or_insert(NotSent::NoFunds { needs, held });
                continue;
            }
            let order = rover::order_for(tried.own, &job.account_id, &plan, Funding::Wallet);
            let prepared = self.prepare_from_wallet(order, tried).await;
            let sent = plan.debt_to_repay;
            let denom = plan.debt_denom.clone();
            job.plan = plan;
            match prepared {
                Ok(Ok(ready)) => {
                    if let Some(left) = wallet_left.get_mut(&denom) {
                        *left = left.saturating_sub(sent);
                    }
                    return Attempt::Ready(Box::new(ready));
                }
                Ok(Err(not_sent)) if not_sent.does_not_pay() => {}
                Ok(Err(not_sent)) => return Attempt::NotSent(not_sent),
                Err(error) => return Attempt::Failed(error),
            }
        }
        Attempt::NotSent(short.unwrap_or(why))
    }

    /// Simulates a wallet-funded order on top of the tx's earlier liquidations; its profit is
    /// what the refund is worth at the snapshot's prices less the debt coin sent and the gas it
    /// adds. `Err` only when the chain cannot be asked.
    async fn prepare_from_wallet(
        &self,
        order: RoverOrder,
        tried: &PlanTry<'_>,
    ) -> Result<Result<RoverReady, NotSent>, SendError> {
        let from = self.sender.wallet().address();
        let message = order
            .message(from, &tried.contracts.credit_manager)
            .map_err(SendError::Chain)?;
        let (simulation, expected) = match self
            .simulate_liquidation(tried.before, message.clone(), &order)
            .await?
        {
            Ok(simulated) => simulated,
            Err(not_sent) => return Ok(Err(not_sent)),
        };
        let gas_before = tried.before.last().map_or(0, |ready| ready.gas_used);
        let fee = self
            .sender
            .fee_for_gas(simulation.gas_used.saturating_sub(gas_before));
        let prices = &tried.snapshot.prices;
        let profit = rover::profit(prices, &expected, order.deposited().as_ref(), &fee);
        let profit = prices.to_usd(profit);
        if profit < Value::from(self.settings.min_profit_usd) {
            return Ok(Err(NotSent::BelowMinProfit(profit)));
        }
        Ok(Ok(RoverReady {
            order,
            strict_message: message.clone(),
            message,
            gas_used: simulation.gas_used,
            expected,
        }))
    }

    /// The first [`PLANS_QUOTED`] of `plans`, each with what its pool returns now for the
    /// collateral it seizes (`None` when the swap contract does not answer).
    async fn pool_quotes(
        &self,
        plans: Vec<LiquidationPlan>,
        swapper: &str,
    ) -> Vec<(LiquidationPlan, Option<Uint128>)> {
        let client = self.sender.client();
        join_all(plans.into_iter().take(PLANS_QUOTED).map(|plan| async move {
            let offer = Coin::new(plan.collateral_received, plan.collateral_denom.clone());
            let quote = pool_quote(client, swapper, offer, &plan.debt_denom).await;
            if let Err(error) = &quote {
                tracing::debug!(%error, pair = %format!("{}/{}", plan.collateral_denom, plan.debt_denom), "no pool quote; plans keep the oracle's order");
            }
            (plan, quote.ok())
        }))
        .await
    }

    /// Takes the lock on a swap pool for this worker's next credit-account tx; `false` when
    /// another worker's tx swaps through it (or the lock cannot be asked for).
    async fn lock_swap_pool(&self, key: &str, locks: &mut Vec<Lease>) -> bool {
        match self.leases.try_acquire(key, self.settings.lock_ttl).await {
            Ok(Some(lock)) => {
                self.keeper.hold(&lock);
                locks.push(lock);
                true
            }
            Ok(None) => {
                tracing::debug!(pool = %key, "another worker's credit-account tx swaps through this pool; held");
                false
            }
            Err(error) => {
                tracing::warn!(pool = %key, %error, "cannot take the swap pool's lock; held");
                false
            }
        }
    }

    async fn unlock_all(&self, locks: Vec<Lease>) {
        for lock in locks {
            self.unlock(&lock).await;
        }
    }

    /// Keeps a job's delivery for the next step and unlocks its account meanwhile.
    async fn hold_credit_job(&mut self, job: RoverJob) {
        self.unlock(&job.lock).await;
        self.held_credit.push(Held::new(job.delivery));
    }

    /// Hands the held deliveries back to the queue (the worker is stopping).
    pub(super) async fn release_held_credit(&mut self) {
        for held in std::mem::take(&mut self.held_credit) {
            self.settle(&held.delivery, Verdict::Release).await;
        }
    }

    /// Hands back to the queue the candidates held longer than [`HOLD_LIMIT`].
    async fn release_held_too_long(&mut self) {
        let (expired, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held_credit)
            .into_iter()
            .partition(|held| held.since.elapsed() > HOLD_LIMIT);
        self.held_credit = kept;
        if !expired.is_empty() {
            tracing::debug!(
                released = expired.len(),
                "credit-account candidates held too long; handed back to the queue"
            );
        }
        for held in expired {
            self.settle(&held.delivery, Verdict::Release).await;
        }
    }

    /// Takes the batch's fee from the step's budget and broadcasts it; its confirmation runs in
    /// the background and a later step records it.
    async fn broadcast_credit_batch(
        &mut self,
        batch: Vec<(RoverJob, RoverReady)>,
        pool_locks: Vec<Lease>,
        snapshot: &Arc<MarketSnapshot>,
        fee_budget: &mut Uint128,
        report: &mut StepReport,
    ) {
        let gas_used = batch.last().map_or(0, |(_, ready)| ready.gas_used);
        let fee = self.sender.fee_for_gas(gas_used);
        let amount = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
        // The debt coins sent in the fee denom came out of the same balance as the budget.
        let sent_in_fee_denom = batch
            .iter()
            .filter_map(|(_, ready)| ready.order.deposited())
            .filter(|coin| coin.denom == fee.denom)
            .map(|coin| Uint128::try_from(coin.amount).unwrap_or(Uint128::MAX))
            .fold(Uint128::zero(), Uint128::saturating_add);
        *fee_budget = fee_budget.saturating_sub(sent_in_fee_denom);
        if amount > *fee_budget {
            for (job, _) in batch {
                report.skipped += 1;
                let not_sent = NotSent::NoFeeFunds(fee.clone(), *fee_budget);
                self.credit_liquidation_not_sent(job, not_sent, snapshot)
                    .await;
            }
            return self.unlock_all(pool_locks).await;
        }
        *fee_budget -= amount;
        let messages: Vec<cosmrs::Any> = batch.iter().map(|(_, r)| r.message.clone()).collect();
        let memo = format!(
            "redline credit-account liquidation ({} accounts)",
            batch.len()
        );
        let send_timer = self.metrics.stage_timer("send");
        let broadcast = self
            .sender
            .broadcast_simulated(messages, &memo, gas_used)
            .await;
        send_timer.observe_duration();
        match broadcast {
            Ok(broadcast) => {
                let (hash, sequence) = (broadcast.hash(), broadcast.sequence());
                let sender = self.sender.clone();
                let confirmation = tokio::spawn(async move { sender.confirm(broadcast).await });
                self.unsettled_credit = Some(UnsettledCredit {
                    batch,
                    pool_locks,
                    snapshot: snapshot.clone(),
                    fee,
                    hash,
                    sequence,
                    confirmation,
                });
            }
            Err(error) => {
                self.settle_credit_batch(batch, snapshot, Err(error), report)
                    .await;
                self.unlock_all(pool_locks).await;
            }
        }
    }

    /// Records and settles the broadcast credit-account tx once its confirmation is done (or,
    /// when `wait`, after waiting for it).
    pub(super) async fn settle_unsettled_credit(&mut self, wait: bool, report: &mut StepReport) {
        let finished = self
            .unsettled_credit
            .as_ref()
            .is_some_and(|pending| wait || pending.confirmation.is_finished());
        let Some(pending) = self.unsettled_credit.take_if(|_| finished) else {
            return;
        };
        let result = match pending.confirmation.await {
            Ok(result) => result,
            // The confirmation task died: the sender holds its tx as unresolved.
            Err(error) => Err(SendError::Unconfirmed {
                hash: pending.hash,
                sequence: pending.sequence,
                broadcast_at: SystemTime::now(),
                reason: format!("confirmation task failed: {error}"),
            }),
        };
        self.settle_credit_batch(pending.batch, &pending.snapshot, result, report)
            .await;
        // Released once the tx is in a block: the next simulation through the pool sees it.
        self.unlock_all(pending.pool_locks).await;
    }

    /// What the credit-account tx not yet settled spends from the wallet: its fee and the debt
    /// coins its wallet-funded liquidations send.
    pub(super) fn reserved_by_unsettled_credit(&self) -> Vec<Coin> {
        let Some(pending) = &self.unsettled_credit else {
            return Vec::new();
        };
        let sent = pending
            .batch
            .iter()
            .filter_map(|(_, ready)| ready.order.deposited());
        std::iter::once(pending.fee.clone()).chain(sent).collect()
    }

    /// Records and settles every liquidation of a credit-account tx after its send.
    async fn settle_credit_batch(
        &mut self,
        batch: Vec<(RoverJob, RoverReady)>,
        snapshot: &MarketSnapshot,
        result: Result<Sent, SendError>,
        report: &mut StepReport,
    ) {
        let size = batch.len();
        match result {
            Ok(Sent::Included(tx)) => {
                self.metrics.txs.with_label_values(&["included"]).inc();
                report.tx = Some(tx.hash.to_string());
                let shares = execute::fee_shares(&tx.fee, size);
                for ((job, ready), fee_share) in batch.into_iter().zip(shares) {
                    let mut record = self.rover_record(&job, snapshot);
                    let included = Included {
                        tx: &tx,
                        fee_share: &fee_share,
                        size,
                    };
                    self.record_credit_liquidation(&mut record, &ready, &included, snapshot);
                    if record.outcome == Outcome::Liquidated {
                        report.liquidated += 1;
                        self.wake_due = true;
                    }
                    self.emit(record).await;
                    self.finish(&job.delivery, &job.lock, Verdict::Ack).await;
                }
            }
            Ok(Sent::DryRun(tx)) => {
                self.metrics.txs.with_label_values(&["dry_run"]).inc();
                for (job, ready) in batch {
                    let mut record = self.rover_record(&job, snapshot);
                    record.detail = detail(&ready.order, None);
                    tracing::info!(tx = %tx.hash, gas_limit = tx.gas_limit, fee = %tx.fee, detail = %record.detail, "dry run: would broadcast this credit-account liquidation");
                    record.outcome = Outcome::DryRun;
                    record.tx_hash = tx.hash.to_string();
                    record.gas_wanted = tx.gas_limit;
                    record.gas_used = tx.gas_used;
                    record.batch_size = size as u32;
                    self.emit(record).await;
                    self.finish(&job.delivery, &job.lock, Verdict::Ack).await;
                }
            }
            Err(error) => {
                report.failed += size;
                self.metrics.txs.with_label_values(&[error.label()]).inc();
                self.credit_send_failed(batch, &error, snapshot).await;
            }
        }
    }

    /// The Rover contracts, read from the credit manager once.
    async fn rover_contracts(&mut self) -> Result<RoverContracts, CreditAccountError> {
        if let Some(contracts) = &self.rover {
            return Ok(contracts.clone());
        }
        let credit_manager = self.settings.credit_manager.as_deref().unwrap_or_default();
        let contracts = RoverContracts::discover(
            self.reader.client(),
            credit_manager,
            self.settings.health_query,
        )
        .await?;
        self.rover = Some(contracts.clone());
        Ok(contracts)
    }

    /// The worker's own credit account, found or opened (and the opening recorded) once.
    async fn ensure_credit_account(
        &mut self,
        contracts: &RoverContracts,
        snapshot: &MarketSnapshot,
    ) -> Result<String, CreditAccountError> {
        if let Some(own) = &self.own_credit_account {
            return Ok(own.clone());
        }
        let own = own_account(&self.sender, contracts).await?;
        if let Some(tx) = &own.opened_by {
            // Its fee is part of what the wallet spent: recorded, so that the records add up to
            // the wallet's balance change.
            let mut record = AttemptRecord {
                started_at: tx.broadcast_at,
                height: tx.height(),
                worker_slot: self.slot,
                wallet: self.sender.address().to_string(),
                protocol: ProtocolKind::Rover,
                account: format!("credit account {}", own.id),
                tx_hash: tx.hash.to_string(),
                gas_wanted: tx.gas_limit,
                gas_used: tx.outcome.gas_used,
                outcome: Outcome::CreditAccountOpened,
                detail: "the wallet's own credit account, to liquidate credit accounts from".into(),
                ..AttemptRecord::default()
            };
            record.book_fee_only(&tx.fee, &snapshot.prices);
            self.emit(record).await;
        }
        self.own_credit_account = Some(own.id.clone());
        Ok(own.id)
    }

    /// Settles a job whose liquidation could not be decided for `error`.
    async fn credit_account_error(
        &self,
        job: &RoverJob,
        error: &CreditAccountError,
        report: &mut StepReport,
    ) {
        let verdict = if error.is_transient() {
            tracing::warn!(%error, "credit-account liquidation not decided; job released");
            report.failed += 1;
            Verdict::Release
        } else if matches!(error, CreditAccountError::DryRun { .. }) {
            tracing::info!(%error, "dry run: credit-account candidate dropped");
            report.skipped += 1;
            Verdict::Ack
        } else {
            tracing::warn!(%error, "credit-account liquidation impossible; dead-lettering");
            report.failed += 1;
            Verdict::DeadLetter(error.to_string())
        };
        self.metrics.job("credit_account_error");
        self.finish(&job.delivery, &job.lock, verdict).await;
    }

    /// Simulates the order with a probe `min_receive`, sets the real one from the collateral the
    /// simulation received, and simulates that. `Err` only when the chain cannot be asked.
    async fn prepare_credit_liquidation(
        &self,
        mut order: RoverOrder,
        contracts: &RoverContracts,
        snapshot: &MarketSnapshot,
        before: &[&RoverReady],
    ) -> Result<Result<RoverReady, NotSent>, SendError> {
        let from = self.sender.wallet().address();
        let on_top = |message: cosmrs::Any| -> Vec<cosmrs::Any> {
            let mut messages: Vec<cosmrs::Any> =
                before.iter().map(|r| r.strict_message.clone()).collect();
            messages.push(message);
            messages
        };
        let gas_before = before.last().map_or(0, |ready| ready.gas_used);
        let probe = order
            .message(from, &contracts.credit_manager)
            .map_err(SendError::Chain)?;
        let probed = match self.simulate_liquidation(before, probe, &order).await? {
            Ok((_, probed)) => probed,
            Err(not_sent) => return Ok(Err(not_sent)),
        };
        // Simulated with half the slippage allowed and sent with all of it: other swaps through
        // the same pool in the same block then have room before the sent tx would fail.
        // The floor is the lower of the oracle's and the pool's quote (as rebalancing floors):
        // a large seizure moves a pool by more than the slippage allowed, and such a
        // liquidation is still taken when it pays, which the strict simulation's profit decides.
        // The probe's swap returned its refund of the debt denom plus the debt it repaid.
        let pool_quote = probed
            .refunded_of(&order.debt_denom)
            .saturating_add(probed.debt_repaid);
        let limit = |slippage: Decimal| {
            let oracle = rover::min_receive(
                &snapshot.prices,
                &order.collateral_denom,
                probed.collateral_received(),
                &order.debt_denom,
                slippage,
            )?;
            let pool = pool_quote.mul_floor(Decimal::one() - slippage.min(Decimal::one()));
            Some(oracle.min(pool))
        };
        let half = self.settings.max_slippage / Decimal::from_ratio(2u128, 1u128);
        let (Some(strict), Some(min_receive)) = (limit(half), limit(self.settings.max_slippage))
        else {
            return Ok(Err(NotSent::Refused(format!(
                "no oracle price for {} or {}",
                order.collateral_denom, order.debt_denom
            ))));
        };
        order.min_receive = strict.max(Uint128::one());
        let strict_message = order
            .message(from, &contracts.credit_manager)
            .map_err(SendError::Chain)?;
        order.min_receive = min_receive.max(Uint128::one());
        let message = order
            .message(from, &contracts.credit_manager)
            .map_err(SendError::Chain)?;
        let simulation = match self
            .sender
            .simulate_tx(&on_top(strict_message.clone()))
            .await
        {
            Ok(simulation) => simulation,
            Err(SendError::Simulation(rejection)) => {
                return Ok(Err(NotSent::Refused(rejection.log.clone())))
            }
            Err(error) => return Err(error),
        };
        let expected =
            rover::read_events(&simulation.events, &order.own_account, &order.liquidatee)
                .unwrap_or(probed);
        // This liquidation pays for the gas it adds to the tx.
        let fee = self
            .sender
            .fee_for_gas(simulation.gas_used.saturating_sub(gas_before));
        let profit = snapshot
            .prices
            .to_usd(rover::profit(&snapshot.prices, &expected, None, &fee));
        if profit < Value::from(self.settings.min_profit_usd) {
            return Ok(Err(NotSent::BelowMinProfit(profit)));
        }
        // The swap (the probe's proceeds) must still repay the borrow after the pool moves by
        // the margin kept: if it may return less, the tx would pass `min_receive` and then fail
        // the credit manager's LTV check on the liquidator's own account, fee burnt. No other
        // tx of redline's swaps through the pool in the same block (the pool lock), so what
        // moves it in between is the rest of the market.
        let proceeds_after_move =
            rover::proceeds_after_move(pool_quote, self.settings.credit_swap_margin);
        if proceeds_after_move < expected.debt_repaid {
            return Ok(Err(NotSent::Thin {
                floor: proceeds_after_move,
                repaid: expected.debt_repaid,
            }));
        }
        Ok(Ok(RoverReady {
            order,
            message,
            strict_message,
            gas_used: simulation.gas_used,
            expected,
        }))
    }

    /// Simulates `message` (the liquidation of `order`) on top of the tx's earlier liquidations
    /// (`before`, with their stricter `min_receive`) and reads what it did from its events.
    /// `Err` only when the chain cannot be asked.
    async fn simulate_liquidation(
        &self,
        before: &[&RoverReady],
        message: cosmrs::Any,
        order: &RoverOrder,
    ) -> Result<Result<(Simulation, RoverExecuted), NotSent>, SendError> {
        let mut messages: Vec<cosmrs::Any> =
            before.iter().map(|r| r.strict_message.clone()).collect();
        messages.push(message);
        let simulation = match self.sender.simulate_tx(&messages).await {
            Ok(simulation) => simulation,
            Err(SendError::Simulation(rejection)) => {
                return Ok(Err(NotSent::Refused(rejection.log.clone())))
            }
            Err(error) => return Err(error),
        };
        match rover::read_events(&simulation.events, &order.own_account, &order.liquidatee) {
            Some(executed) => Ok(Ok((simulation, executed))),
            None => Ok(Err(NotSent::Refused(
                "the simulation shows no liquidation event".into(),
            ))),
        }
    }

    /// Records and settles a liquidation the simulation ruled out.
    async fn credit_liquidation_not_sent(
        &mut self,
        job: RoverJob,
        not_sent: NotSent,
        snapshot: &MarketSnapshot,
    ) {
        let mut record = self.rover_record(&job, snapshot);
        // Waiting for the debt coin is a state, not an attempt (as on the Red Bank path): the
        // capital report and its gauges show it, no record does.
        let waits_for_coins = matches!(not_sent, NotSent::NoFunds { .. });
        let verdict = match not_sent {
            NotSent::Refused(log) if is_race(&log) => {
                tracing::debug!(%log, "credit-account liquidation raced (already liquidated or healthy)");
                record.outcome = Outcome::SimulationFailed;
                record.error = log;
                Verdict::Ack
            }
            NotSent::Refused(log) if UNPROFITABLE_MARKERS.iter().any(|m| log.contains(m)) => {
                tracing::debug!(%log, "credit-account liquidation does not pay now");
                record.outcome = Outcome::BelowMinProfit;
                record.error = log;
                Verdict::Ack
            }
            NotSent::Refused(log) => {
                tracing::warn!(%log, "the credit manager refuses this liquidation; dead-lettering");
                record.outcome = Outcome::SimulationFailed;
                record.error = log.clone();
                Verdict::DeadLetter(format!("liquidation refused in simulation: {log}"))
            }
            NotSent::NoFeeFunds(fee, left) => {
                tracing::debug!(%fee, %left, "the step's fee budget is spent; job waits for funds");
                record.outcome = Outcome::NotSent;
                record.error = format!(
                    "fee {fee} exceeds the {left}{} left for fees after this step's repayments",
                    fee.denom
                );
                let amount = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
                Verdict::Wait(Waiting {
                    score: 0.0,
                    needs: vec![(fee.denom, amount.saturating_sub(left).u128())],
                })
            }
            NotSent::NoFunds { needs, held } => {
                tracing::debug!(%needs, %held, "no swap pool repays a borrow and the wallet lacks the debt coin; job waits for funds");
                record.outcome = Outcome::NotSent;
                record.error = format!(
                    "no swap pool repays a borrow of {needs}, and the wallet holds {held}{} to send instead",
                    needs.denom
                );
                let amount = Uint128::try_from(needs.amount).unwrap_or(Uint128::MAX);
                Verdict::Wait(Waiting {
                    score: score_of(Value::from(job.plan.expected_profit_usd)),
                    needs: vec![(needs.denom, amount.saturating_sub(held).u128())],
                })
            }
            NotSent::Thin { floor, repaid } => {
                tracing::debug!(%floor, %repaid, "the swap may not repay the borrow within the slippage allowed");
                record.outcome = Outcome::BelowMinProfit;
                record.error = format!(
                    "the swap's proceeds {floor} after a move of --credit-swap-margin {} are below the {repaid} it must repay",
                    self.settings.credit_swap_margin
                );
                Verdict::Ack
            }
            NotSent::BelowMinProfit(profit_after_fee_usd) => {
                tracing::debug!(%profit_after_fee_usd, "below the profit floor");
                record.outcome = Outcome::BelowMinProfit;
                record.error = format!(
                    "profit after fee {profit_after_fee_usd} USD < --min-profit-usd {}",
                    self.settings.min_profit_usd
                );
                Verdict::Ack
            }
        };
        if waits_for_coins {
            self.metrics.job("no_funds");
        } else if self.is_repeated_decline(&record) {
            self.metrics
                .attempt(record.outcome.as_str(), record.profit_usd);
        } else {
            self.emit(record).await;
        }
        self.finish(&job.delivery, &job.lock, verdict).await;
    }

    /// Whether `record` declines what this worker already recorded declining for the same
    /// account and pair within [`DECLINES_RECORDED_EVERY`] blocks (and notes it when not).
    fn is_repeated_decline(&mut self, record: &AttemptRecord) -> bool {
        if record.outcome != Outcome::BelowMinProfit {
            return false;
        }
        let what = format!(
            "{} {}/{}",
            record.outcome, record.debt_denom, record.collateral_denom
        );
        let last = self.declined_credit.get(&record.account);
        if repeats(last, &what, record.height) {
            return true;
        }
        self.declined_credit
            .insert(record.account.clone(), (what, record.height));
        false
    }

    /// Fills `record` from an included tx's events.
    fn record_credit_liquidation(
        &self,
        record: &mut AttemptRecord,
        ready: &RoverReady,
        included: &Included<'_>,
        snapshot: &MarketSnapshot,
    ) {
        let Included {
            tx,
            fee_share,
            size,
        } = *included;
        record.height = tx.height();
        record.tx_hash = tx.hash.to_string();
        record.batch_size = size as u32;
        record.gas_wanted = tx.gas_limit;
        record.gas_used = tx.outcome.gas_used;
        record.fee = fee_share.to_string();
        record.detail = detail(&ready.order, None);
        let order = &ready.order;
        let Some(done) =
            rover::read_events(&tx.outcome.events, &order.own_account, &order.liquidatee)
        else {
            // Included with code 0 but without the credit manager's events: nothing to book
            // but the fee.
            tracing::error!(tx = %tx.hash, "credit-account liquidation tx without its liquidation event");
            record.outcome = Outcome::DeliverTxFailed;
            record.error = "included without a liquidation event".into();
            record.book_fee_only(fee_share, &snapshot.prices);
            return;
        };
        record.outcome = Outcome::Liquidated;
        record.debt_repaid = done.debt_repaid;
        record.collateral_seized = done.collateral_seized;
        record.collateral_received = done.collateral_received();
        record.profit_value = rover::profit(
            &snapshot.prices,
            &done,
            order.deposited().as_ref(),
            fee_share,
        );
        record.profit_usd = snapshot.prices.to_usd(record.profit_value);
        record.detail = detail(order, Some(&done));
        // The cap moves with interest and prices between the simulation and the block: expected.
        if done.debt_repaid < ready.expected.debt_repaid {
            tracing::debug!(expected = %ready.expected.debt_repaid, repaid = %done.debt_repaid, "the credit manager repaid less than simulated");
        }
        tracing::info!(
            account = %record.account,
            height = tx.height(),
            tx = %tx.hash,
            debt = %format!("{}{}", done.debt_repaid, order.debt_denom),
            collateral = %format!("{}{}", record.collateral_received, order.collateral_denom),
            profit_usd = %record.profit_usd,
            "liquidated"
        );
    }

    /// Records and settles the liquidations of a tx whose send failed. A tx that failed in its
    /// block paid its fee: each record carries its share.
    async fn credit_send_failed(
        &mut self,
        batch: Vec<(RoverJob, RoverReady)>,
        error: &SendError,
        snapshot: &MarketSnapshot,
    ) {
        let outcome = match error {
            // Refused for the wallet's funds: nothing paid, the jobs wait for funds.
            SendError::CheckTx(_) if error.code() == Some(TxErrorCode::InsufficientFunds) => {
                Outcome::NotSent
            }
            SendError::CheckTx(_)
            | SendError::InFlightDropped {
                refused: Some(_), ..
            } => Outcome::CheckTxFailed,
            SendError::DeliverTx { .. } => Outcome::DeliverTxFailed,
            SendError::Unconfirmed { .. } => Outcome::Unconfirmed,
            SendError::Expired { .. } => Outcome::Expired,
            _ => Outcome::NotSent,
        };
        let verdict = match error {
            // The accounts stay locked until the tx is settled: it may still land, and nobody
            // should liquidate them again meanwhile. The jobs come back.
            SendError::Expired { .. } => {
                tracing::info!(%error, "credit-account liquidation tx missed its blocks; jobs released");
                None
            }
            SendError::Unconfirmed { hash, .. } => {
                tracing::warn!(tx = %hash, %error, "credit-account liquidation of unknown fate; jobs released, accounts locked until it is settled");
                None
            }
            _ if error.code() == Some(TxErrorCode::InsufficientFunds) => {
                let fee = self.sender.fee_for_gas(self.settings.fee_reserve_gas);
                let needs = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
                tracing::info!(wallet = %self.sender.address(), %error, "wallet without funds for the fee; jobs wait for funds");
                Some(Verdict::Wait(Waiting {
                    score: 0.0,
                    needs: vec![(fee.denom, needs.u128())],
                }))
            }
            SendError::InFlightDropped { .. } => {
                tracing::debug!(%error, "credit-account jobs released");
                Some(Verdict::Release)
            }
            _ => {
                tracing::warn!(%error, "credit-account liquidation tx failed; jobs released");
                Some(Verdict::Release)
            }
        };
        let paid = match error {
            SendError::DeliverTx { tx, .. } => Some(tx),
            _ => None,
        };
        let shares = paid.map(|tx| execute::fee_shares(&tx.fee, batch.len()));
        let mut locked = Vec::new();
        for (index, (job, ready)) in batch.into_iter().enumerate() {
            let mut record = self.rover_record(&job, snapshot);
            record.detail = detail(&ready.order, None);
            record.error = error.to_string();
            record.outcome = outcome;
            if let Some(hash) = error.in_doubt().or(error.rejection().and_then(|r| r.hash)) {
                record.tx_hash = hash.to_string();
            }
            if let (Some(tx), Some(shares)) = (paid, &shares) {
                record.height = tx.height();
                record.tx_hash = tx.hash.to_string();
                record.gas_used = tx.outcome.gas_used;
                record.book_fee_only(&shares[index], &snapshot.prices);
            }
            self.emit(record).await;
            match &verdict {
                Some(verdict) => self.finish(&job.delivery, &job.lock, verdict.clone()).await,
                None => {
                    self.settle(&job.delivery, Verdict::Release).await;
                    locked.push(job.lock);
                }
            }
        }
        if let Some(hash) = error.in_doubt() {
            // Unlocked when the sender settles the tx (see `settle_in_doubt`).
            self.in_doubt.push(InDoubt {
                hash,
                items: Vec::new(),
                credit_locks: locked,
                snapshot: Arc::new(snapshot.clone()),
            });
        }
    }

    /// The attempt record of a credit-account job before anything was sent.
    fn rover_record(&self, job: &RoverJob, snapshot: &MarketSnapshot) -> AttemptRecord {
        let candidate = &job.delivery.job;
        AttemptRecord {
            started_at: job.started_at,
            height: snapshot.height,
            candidate_height: candidate.height,
            worker_slot: self.slot,
            wallet: self.sender.address().to_string(),
            protocol: candidate.protocol,
            account: candidate.account.to_string(),
            debt_denom: job.plan.debt_denom.clone(),
            collateral_denom: job.plan.collateral_denom.clone(),
            debt_sent: job.plan.debt_to_repay,
            expected_profit_usd: Value::from(job.plan.expected_profit_usd),
            ..AttemptRecord::default()
        }
    }
}

/// What a credit-account liquidation asked for and, once included, what it did.
/// Whether declining `what` at `height` repeats `last` (what was recorded, at which height)
/// within [`DECLINES_RECORDED_EVERY`] blocks.
fn repeats(last: Option<&(String, u64)>, what: &str, height: u64) -> bool {
    last.is_some_and(|(last, at)| last == what && height < at + DECLINES_RECORDED_EVERY)
}

fn detail(order: &RoverOrder, done: Option<&RoverExecuted>) -> String {
    let request = if order.from_lend { "lend" } else { "deposit" };
    let debt = format!("{}{}", order.debt_to_repay, order.debt_denom);
    let mut detail = match order.funding {
        Funding::Borrow => format!(
            "from credit account {}; borrowed {debt}; request {request} {}; min_receive {}{}",
            order.own_account, order.collateral_denom, order.min_receive, order.debt_denom
        ),
        Funding::Wallet => format!(
            "from credit account {}; sent {debt} from the wallet (no swap pool repays a borrow); request {request} {}",
            order.own_account, order.collateral_denom
        ),
    };
    if let Some(done) = done {
        let refunded: Vec<String> = done.refunded.iter().map(ToString::to_string).collect();
        detail.push_str(&format!(
            "; protocol fee {}{}; refunded {}",
            done.protocol_fee,
            order.collateral_denom,
            if refunded.is_empty() {
                "nothing".to_string()
            } else {
                refunded.join(" ")
            }
        ));
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decline_is_recorded_again_after_a_hundred_blocks_or_when_it_changes() {
        let last = ("below_min_profit uosmo/uusdc".to_string(), 1_000);
        let same = "below_min_profit uosmo/uusdc";
        assert!(!repeats(None, same, 1_000));
        assert!(repeats(Some(&last), same, 1_000));
        assert!(repeats(Some(&last), same, 1_099));
        assert!(!repeats(Some(&last), same, 1_100));
        assert!(!repeats(Some(&last), "below_min_profit uosmo/uatom", 1_001));
    }
}
