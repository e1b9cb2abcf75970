//! The worker's credit-account path: Rover candidates, one tx each (see [`crate::rover`]).
//!
//! Same job rules as the Red Bank path: the account is locked while its liquidation is decided
//! and sent; a recovered account is acknowledged quietly; the job is acknowledged only once the
//! outcome is recorded; a candidate that can never succeed is dead-lettered with the reason.
//! Each liquidation is confirmed before the next candidate is taken: it moves no coin of the
//! wallet but the fee, so nothing needs reserving for later steps.

use mars::msg::health::HealthValuesResponse;
use redline_pipeline::jobs::LiquidationPlan;

use super::*;
use crate::credit_account::{own_account, CreditAccountError, RoverContracts};
use crate::rover::{self, RoverExecuted, RoverOrder};

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
    started_at: SystemTime,
}

/// A liquidation simulated and ready to sign.
struct RoverReady {
    order: RoverOrder,
    message: cosmrs::Any,
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
}

/// Takes a liquidation's fee from what the step has left for fees. The wallet's Red Bank txs
/// still in the mempool repay debts in the fee denom, which CheckTx does not see (it runs no
/// messages): a fee beyond the budget would pass CheckTx and fail to be paid at delivery.
fn take_fee<C: ChainClient>(
    sender: &TxSender<C>,
    ready: RoverReady,
    fee_budget: &mut Uint128,
) -> Result<RoverReady, NotSent> {
    let fee = sender.fee_for_gas(ready.gas_used);
    let amount = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
    if amount > *fee_budget {
        return Err(NotSent::NoFeeFunds(fee, *fee_budget));
    }
    *fee_budget -= amount;
    Ok(ready)
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

    /// Liquidates the credit accounts of `deliveries`, one tx each, and settles every job.
    pub(super) async fn liquidate_credit_accounts(
        &mut self,
        deliveries: Vec<Delivery<LiquidationCandidate>>,
        snapshot: &MarketSnapshot,
        fee_budget: &mut Uint128,
        report: &mut StepReport,
    ) {
        for delivery in deliveries {
            let Some(job) = self.take_credit_account(delivery).await else {
                report.skipped += 1;
                continue;
            };
            let span = tracing::info_span!("credit_account", account = %job.delivery.job.account);
            self.liquidate_credit_account(job, snapshot, fee_budget, report)
                .instrument(span)
                .await;
        }
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
            started_at: SystemTime::now(),
        })
    }

    /// Re-checks, prepares, sends and records one credit-account liquidation; settles its job.
    async fn liquidate_credit_account(
        &mut self,
        job: RoverJob,
        snapshot: &MarketSnapshot,
        fee_budget: &mut Uint128,
        report: &mut StepReport,
    ) {
        let contracts = match self.rover_contracts().await {
            Ok(contracts) => contracts,
            Err(error) => return self.credit_account_error(&job, error, report).await,
        };
        let health = rover::liquidation_health(self.reader.client(), &contracts, &job.account_id);
        match health.await {
            Ok(HealthValuesResponse {
                liquidatable: true, ..
            }) => {}
            Ok(values) => {
                let health_factor = values.health.liquidation_health_factor;
                tracing::debug!(
                    ?health_factor,
                    "stale candidate dropped: the credit account is healthy"
                );
                self.metrics.job("healthy");
                report.skipped += 1;
                return self.finish(&job.delivery, &job.lock, Verdict::Ack).await;
            }
            Err(error) => return self.credit_account_error(&job, error, report).await,
        }
        let plan = match self.replan_credit_account(&job, &contracts, snapshot).await {
            Ok(Some(plan)) => plan,
            Ok(None) => {
                tracing::debug!(
                    "stale candidate dropped: no liquidation the credit manager accepts now"
                );
                self.metrics.job("no_plan");
                report.skipped += 1;
                return self.finish(&job.delivery, &job.lock, Verdict::Ack).await;
            }
            Err(error) => return self.credit_account_error(&job, error, report).await,
        };
        let own = match self.ensure_credit_account(&contracts, snapshot).await {
            Ok(own) => own,
            Err(error) => return self.credit_account_error(&job, error, report).await,
        };
        let order = RoverOrder::new(&own, &job.account_id, &plan);
        let prepared = self
            .prepare_credit_liquidation(order, &contracts, snapshot)
            .await
            .map(|ready| ready.and_then(|ready| take_fee(&self.sender, ready, fee_budget)));
        match prepared {
            Ok(Ok(ready)) => {
                self.send_credit_liquidation(job, ready, snapshot, report)
                    .await
            }
            Ok(Err(not_sent)) => {
                report.skipped += 1;
                self.credit_liquidation_not_sent(job, not_sent, snapshot)
                    .await
            }
            Err(error) => {
                tracing::warn!(%error, "cannot simulate the credit-account liquidation; job released");
                report.failed += 1;
                let mut record = self.rover_record(&job, snapshot);
                record.error = error.to_string();
                self.emit(record).await;
                self.finish(&job.delivery, &job.lock, Verdict::Release)
                    .await;
            }
        }
    }

    /// The candidate's plan worked out again from the account as it stands.
    async fn replan_credit_account(
        &self,
        job: &RoverJob,
        contracts: &RoverContracts,
        snapshot: &MarketSnapshot,
    ) -> Result<Option<LiquidationPlan>, CreditAccountError> {
        let AccountKey::CreditAccount(id) = job.delivery.job.account else {
            return Ok(None);
        };
        rover::replan(
            self.reader.client(),
            &self.reader.contracts().red_bank,
            &contracts.credit_manager,
            id,
            snapshot,
        )
        .await
    }

    /// The Rover contracts, read from the credit manager once.
    async fn rover_contracts(&mut self) -> Result<RoverContracts, CreditAccountError> {
        if let Some(contracts) = &self.rover {
            return Ok(contracts.clone());
        }
        let credit_manager = self.settings.credit_manager.as_deref().unwrap_or_default();
        let contracts = RoverContracts::discover(self.reader.client(), credit_manager).await?;
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
            let fee = snapshot
                .prices
                .value_of_coins(std::slice::from_ref(&tx.fee));
            let profit_value = -fee.unwrap_or_default();
            let record = AttemptRecord {
                started_at: tx.broadcast_at,
                height: tx.height(),
                worker_slot: self.slot,
                wallet: self.sender.address().to_string(),
                protocol: ProtocolKind::Rover,
                account: format!("credit account {}", own.id),
                tx_hash: tx.hash.to_string(),
                gas_wanted: tx.gas_limit,
                gas_used: tx.outcome.gas_used,
                fee: tx.fee.to_string(),
                profit_value,
                profit_usd: snapshot.prices.to_usd(profit_value),
                outcome: Outcome::CreditAccountOpened,
                detail: "the wallet's own credit account, to liquidate credit accounts from".into(),
                ..AttemptRecord::default()
            };
            self.emit(record).await;
        }
        self.own_credit_account = Some(own.id.clone());
        Ok(own.id)
    }

    /// Settles a job whose liquidation could not be decided for `error`.
    async fn credit_account_error(
        &self,
        job: &RoverJob,
        error: CreditAccountError,
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
    ) -> Result<Result<RoverReady, NotSent>, SendError> {
        let from = self.sender.wallet().address();
        let probe = order
            .message(from, &contracts.credit_manager)
            .map_err(SendError::Chain)?;
        let simulation = match self.sender.simulate_tx(&[probe]).await {
            Ok(simulation) => simulation,
            Err(SendError::Simulation(rejection)) => {
                return Ok(Err(NotSent::Refused(rejection.log.clone())))
            }
            Err(error) => return Err(error),
        };
        let Some(probed) =
            rover::read_events(&simulation.events, &order.own_account, &order.liquidatee)
        else {
            return Ok(Err(NotSent::Refused(
                "the simulation shows no liquidation event".into(),
            )));
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
        let simulation = match self.sender.simulate_tx(&[strict_message]).await {
            Ok(simulation) => simulation,
            Err(SendError::Simulation(rejection)) => {
                return Ok(Err(NotSent::Refused(rejection.log.clone())))
            }
            Err(error) => return Err(error),
        };
        let expected =
            rover::read_events(&simulation.events, &order.own_account, &order.liquidatee)
                .unwrap_or(probed);
        let fee = self.sender.fee_for_gas(simulation.gas_used);
        let profit = snapshot
            .prices
            .to_usd(rover::profit(&snapshot.prices, &expected, &fee));
        if profit < Value::from(self.settings.min_profit_usd) {
            return Ok(Err(NotSent::BelowMinProfit(profit)));
        }
        Ok(Ok(RoverReady {
            order,
            message,
            gas_used: simulation.gas_used,
            expected,
        }))
    }

    /// Records and settles a liquidation the simulation ruled out.
    async fn credit_liquidation_not_sent(
        &self,
        job: RoverJob,
        not_sent: NotSent,
        snapshot: &MarketSnapshot,
    ) {
        let mut record = self.rover_record(&job, snapshot);
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
        self.emit(record).await;
        self.finish(&job.delivery, &job.lock, verdict).await;
    }

    /// Broadcasts a simulated liquidation, waits for its block, records and settles it.
    async fn send_credit_liquidation(
        &mut self,
        job: RoverJob,
        ready: RoverReady,
        snapshot: &MarketSnapshot,
        report: &mut StepReport,
    ) {
        let memo = "redline credit-account liquidation";
        let send_timer = self.metrics.stage_timer("send");
        let sent = self
            .sender
            .send_simulated(vec![ready.message.clone()], memo, ready.gas_used)
            .await;
        send_timer.observe_duration();
        let mut record = self.rover_record(&job, snapshot);
        record.detail = detail(&ready.order, None);
        let verdict = match sent {
            Ok(Sent::Included(tx)) => {
                self.metrics.txs.with_label_values(&["included"]).inc();
                report.tx = Some(tx.hash.to_string());
                self.record_credit_liquidation(&mut record, &ready, &tx, snapshot);
                if record.outcome == Outcome::Liquidated {
                    report.liquidated += 1;
                    self.wake_due = true;
                }
                Verdict::Ack
            }
            Ok(Sent::DryRun(tx)) => {
                self.metrics.txs.with_label_values(&["dry_run"]).inc();
                tracing::info!(tx = %tx.hash, gas_limit = tx.gas_limit, fee = %tx.fee, detail = %record.detail, "dry run: would broadcast this credit-account liquidation");
                record.outcome = Outcome::DryRun;
                record.tx_hash = tx.hash.to_string();
                record.gas_wanted = tx.gas_limit;
                record.gas_used = tx.gas_used;
                Verdict::Ack
            }
            Err(error) => {
                report.failed += 1;
                self.metrics.txs.with_label_values(&[error.label()]).inc();
                return self.credit_send_failed(job, record, error, snapshot).await;
            }
        };
        self.emit(record).await;
        self.finish(&job.delivery, &job.lock, verdict).await;
    }

    /// Fills `record` from an included tx's events.
    fn record_credit_liquidation(
        &self,
        record: &mut AttemptRecord,
        ready: &RoverReady,
        tx: &SentTx,
        snapshot: &MarketSnapshot,
    ) {
        record.height = tx.height();
        record.tx_hash = tx.hash.to_string();
        record.batch_size = 1;
        record.gas_wanted = tx.gas_limit;
        record.gas_used = tx.outcome.gas_used;
        record.fee = tx.fee.to_string();
        let order = &ready.order;
        let Some(done) =
            rover::read_events(&tx.outcome.events, &order.own_account, &order.liquidatee)
        else {
            // Included with code 0 but without the credit manager's events: nothing to book
            // but the fee.
            tracing::error!(tx = %tx.hash, "credit-account liquidation tx without its liquidation event");
            record.outcome = Outcome::DeliverTxFailed;
            record.error = "included without a liquidation event".into();
            record.profit_value = -snapshot
                .prices
                .value_of_coins(std::slice::from_ref(&tx.fee))
                .unwrap_or_default();
            record.profit_usd = snapshot.prices.to_usd(record.profit_value);
            return;
        };
        record.outcome = Outcome::Liquidated;
        record.debt_repaid = done.debt_repaid;
        record.collateral_seized = done.collateral_seized;
        record.collateral_received = done.collateral_received();
        record.profit_value = rover::profit(&snapshot.prices, &done, &tx.fee);
        record.profit_usd = snapshot.prices.to_usd(record.profit_value);
        record.detail = detail(order, Some(&done));
        // The cap moves with interest and prices between the simulation and the block: expected.
        if done.debt_repaid < ready.expected.debt_repaid {
            tracing::debug!(expected = %ready.expected.debt_repaid, repaid = %done.debt_repaid, "the credit manager repaid less than simulated");
        }
        tracing::info!(
            height = tx.height(),
            tx = %tx.hash,
            debt = %format!("{}{}", done.debt_repaid, order.debt_denom),
            collateral = %format!("{}{}", record.collateral_received, order.collateral_denom),
            profit_usd = %record.profit_usd,
            "liquidated"
        );
    }

    /// Records and settles a liquidation whose send failed.
    async fn credit_send_failed(
        &self,
        job: RoverJob,
        mut record: AttemptRecord,
        error: SendError,
        snapshot: &MarketSnapshot,
    ) {
        record.error = error.to_string();
        record.outcome = match &error {
            SendError::CheckTx(_) => Outcome::CheckTxFailed,
            SendError::DeliverTx { .. } => Outcome::DeliverTxFailed,
            SendError::Unconfirmed { .. } => Outcome::Unconfirmed,
            _ => Outcome::NotSent,
        };
        if let SendError::DeliverTx { tx, .. } = &error {
            record.height = tx.height();
            record.tx_hash = tx.hash.to_string();
            record.fee = tx.fee.to_string();
            record.gas_used = tx.outcome.gas_used;
            let fee = snapshot
                .prices
                .value_of_coins(std::slice::from_ref(&tx.fee));
            record.profit_value = -fee.unwrap_or_default();
            record.profit_usd = snapshot.prices.to_usd(record.profit_value);
        }
        self.emit(record).await;
        if let SendError::Unconfirmed { hash, .. } = &error {
            // The account stays locked until the lock expires: the tx may still land, and
            // nobody should liquidate the account again meanwhile. The job comes back.
            tracing::warn!(tx = %hash, %error, "credit-account liquidation of unknown fate; job released, account left locked");
            return self.settle(&job.delivery, Verdict::Release).await;
        }
        let verdict = if error.code() == Some(TxErrorCode::InsufficientFunds) {
            let fee = self.sender.fee_for_gas(self.settings.fee_reserve_gas);
            let needs = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
            tracing::info!(wallet = %self.sender.address(), %error, "wallet without funds for the fee; job waits for funds");
            Verdict::Wait(Waiting {
                score: 0.0,
                needs: vec![(fee.denom, needs.u128())],
            })
        } else {
            tracing::warn!(%error, "credit-account liquidation tx failed; job released");
            Verdict::Release
        };
        self.finish(&job.delivery, &job.lock, verdict).await;
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
fn detail(order: &RoverOrder, done: Option<&RoverExecuted>) -> String {
    let request = if order.from_lend { "lend" } else { "deposit" };
    let mut detail = format!(
        "from credit account {}; borrowed {}{}; request {request} {}; min_receive {}{}",
        order.own_account,
        order.debt_to_repay,
        order.debt_denom,
        order.collateral_denom,
        order.min_receive,
        order.debt_denom
    );
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
