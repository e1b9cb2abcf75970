//! Workers against a real devnet and a real Redis: batches, races, stale and locked
//! candidates, dry runs, bad candidates, the strategy and after-liquidation seams.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128};
use futures::future::BoxFuture;
use mars::types::AccountKey;
use mars::value::Value;
use redline_chain::{ChainClient, TendermintClient};
use redline_liquidator::execute::{self, Dropped};
use redline_liquidator::record::Outcome;
use redline_liquidator::strategy::{
    AfterLiquidation, BatchReport, Decision, Opportunity, Strategy,
};
use redline_liquidator::tx_sender::{SendOptions, TxSender};
use redline_liquidator::worker::{Worker, WorkerSettings};
use redline_pipeline::queue::Queue as _;
use support::Harness;

/// Steps `worker` until a step liquidates something (at most 5 steps); how many it liquidated.
async fn step_until_liquidated(worker: &mut Worker<TendermintClient, support::Queue>) -> usize {
    for _ in 0..5 {
        let liquidated = worker.step().await.unwrap().liquidated;
        if liquidated > 0 {
            return liquidated;
        }
    }
    0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_liquidates_a_batch_exactly_and_records_it() {
    let h = Harness::start(300, 11, 3).await.unwrap();
    let (drop_height, plans) = h.drop_atom().await.unwrap();
    assert!(
        plans.len() >= 3,
        "only {} liquidatable accounts",
        plans.len()
    );
    let chosen: Vec<_> = plans.iter().take(6).collect();
    let candidates: Vec<_> = chosen
        .iter()
        .map(|p| h.candidate(&p.account, drop_height, h.reader_usd(p.expected_profit)))
        .collect();
    let queue = h.enqueue(&candidates).await.unwrap();

    let mut worker = h.default_worker(1).await.unwrap();
    let wallet = worker.sender().address().to_string();
    let before = h.balances(&wallet).await;
    let accounts: Vec<String> = chosen.iter().map(|p| p.account.clone()).collect();
    // As the health checker does every block: an account still liquidatable after a
    // liquidation (e.g. one of two collaterals seized) is queued again.
    for round in 0..10 {
        for _ in 0..10 {
            let report = worker.step().await.unwrap();
            if queue.backlog().await.unwrap().lag == 0 && report.taken == 0 {
                break;
            }
        }
        let left: Vec<_> = h
            .liquidatable()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| accounts.contains(&p.account))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(round < 9, "still liquidatable: {left:?}");
        let height = h.client.latest_height().await.unwrap();
        let again: Vec<_> = left
            .iter()
            .map(|p| h.candidate(&p.account, height, h.reader_usd(p.expected_profit)))
            .collect();
        queue.push(&again).await.unwrap();
    }
    let after = h.balances(&wallet).await;

    let records = h.records().await.unwrap();
    let done: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Liquidated)
        .collect();
    assert!(done.len() >= chosen.len(), "{records:#?}");
    for account in &accounts {
        assert!(
            done.iter().any(|r| &r.account == account),
            "{account} never liquidated"
        );
    }
    // Batches of at most 4, each account once.
    let mut per_tx: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &done {
        *per_tx.entry(record.tx_hash.as_str()).or_default() += 1;
        assert_eq!(
            record.debt_repaid, record.debt_sent,
            "no refund: {record:?}"
        );
        assert!(record.collateral_received > Uint128::zero());
        assert!(record.profit_value > Value::zero(), "{record:?}");
        assert!(record.job_to_broadcast_ms.is_some());
        assert!(record.height > drop_height);
    }
    assert!(per_tx.values().all(|n| *n <= 4), "{per_tx:?}");
    assert!(per_tx.len() >= 2);
    // The recorded profits are the wallet's balance change, to the last digit.
    let recorded: Value = records
        .iter()
        .map(|r| r.profit_value)
        .fold(Value::zero(), |a, b| a + b);
    assert_eq!(recorded, h.value_change(&before, &after).await);
    // Nothing left deposited in the Red Bank: the collateral was withdrawn in the same tx.
    let own = h
        .reader
        .read_account(&AccountKey::Address(wallet.clone()), 0)
        .await
        .unwrap();
    assert!(
        own.collaterals.iter().all(|c| c.amount.is_zero()),
        "{own:?}"
    );
    // Every liquidation left its account healthier, and none is liquidatable any more.
    for record in &done {
        assert!(record.debt_repaid > Uint128::zero());
    }
    assert!(h.metric("liquidator_attempts_total").contains("liquidated"));
    assert_eq!(
        h.metric("liquidator_refunds_total"),
        "liquidator_refunds_total 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_locked_and_foreign_candidates_are_settled_without_a_tx() {
    let h = Harness::start(200, 12, 2).await.unwrap();
    let height = h.client.latest_height().await.unwrap();
    let healthy = h.borrowers[0].clone();
    // Healthy (no price move): stale.
    let queue = h
        .enqueue(&[h.candidate(&healthy, height, Decimal::percent(500))])
        .await
        .unwrap();
    let mut worker = h.default_worker(1).await.unwrap();
    let report = worker.step().await.unwrap();
    assert_eq!((report.taken, report.liquidated, report.skipped), (1, 0, 1));
    assert!(report.tx.is_none());
    assert_eq!(queue.backlog().await.unwrap().pending, 0);
    assert!(
        h.metric("liquidator_jobs_total").contains("healthy"),
        "{}",
        h.metric("liquidator_jobs_total")
    );

    // Locked by another worker: acknowledged without reading it.
    let lock = h
        .leases
        .try_acquire(
            &h.keys.account_lock("red_bank", &healthy),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .unwrap();
    queue
        .push(&[h.candidate(&healthy, height + 1, Decimal::percent(500))])
        .await
        .unwrap();
    let report = worker.step().await.unwrap();
    assert_eq!(report.taken, 1);
    assert!(h.metric("liquidator_jobs_total").contains("locked"));
    assert!(
        h.leases.release(&lock).await.unwrap(),
        "the worker must not touch another's lock"
    );

    // Another chain: dead-lettered with the reason.
    let mut foreign = h.candidate(&healthy, height + 2, Decimal::percent(500));
    foreign.chain_id = "osmosis-1".into();
    queue.push(&[foreign]).await.unwrap();
    worker.step().await.unwrap();
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("osmosis-1"), "{}", dead[0].reason);
    assert!(
        h.records().await.unwrap().is_empty(),
        "stale work is not an attempt"
    );
}

/// Mars's old PR #48 problem: one account in a batch that can no longer be liquidated must not
/// sink the others. A plan for a healthy account is slipped into a batch of real ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liquidation_is_dropped_from_the_batch() {
    let h = Harness::start(300, 13, 2).await.unwrap();
    let (_, plans) = h.drop_atom().await.unwrap();
    assert!(plans.len() >= 2);
    let liquidatable: Vec<&str> = plans.iter().map(|p| p.account.as_str()).collect();
    let healthy = h
        .borrowers
        .iter()
        .find(|b| !liquidatable.contains(&b.as_str()))
        .unwrap();
    let mut doomed = plans[0].clone();
    doomed.account = healthy.clone();
    let batch = vec![plans[0].clone(), doomed, plans[1].clone()];
    let sender = h.sender(1, SendOptions::default()).await.unwrap();
    let snapshot = h.reader.latest().await.unwrap();
    let prepared = execute::prepare_batch(
        &sender,
        &h.manifest.contracts.red_bank,
        &batch,
        &snapshot.prices,
        Value::zero(),
    )
    .await
    .unwrap();
    assert_eq!(prepared.kept, vec![0, 2]);
    assert_eq!(prepared.dropped.len(), 1);
    let (index, Dropped::SimulationFailed(log)) = &prepared.dropped[0] else {
        panic!("{:?}", prepared.dropped)
    };
    assert_eq!(*index, 1);
    assert!(redline_liquidator::worker::is_race(log), "{log}");

    // A profit floor above what a plan makes drops it too.
    let floor = prepared_floor(&sender, &h, &batch[..1]).await;
    assert!(matches!(floor.dropped[0].1, Dropped::BelowMinProfit { .. }));
    assert!(floor.is_empty());

    // The rest goes through in one tx.
    let sent = sender
        .send_simulated(prepared.messages.clone(), "", prepared.gas_used)
        .await
        .unwrap();
    let redline_liquidator::tx_sender::Sent::Included(tx) = sent else {
        panic!("not a dry run")
    };
    let kept: Vec<_> = prepared.kept.iter().map(|&i| &batch[i]).collect();
    let executed = execute::read_outcome(
        &tx.outcome,
        &kept,
        sender.address(),
        Uint128::try_from(tx.fee.amount).unwrap(),
    );
    for (plan, done) in kept.iter().zip(&executed) {
        assert_eq!(done.debt_repaid, plan.debt_to_send);
        assert!(done.collateral_received > Uint128::zero());
    }
}

async fn prepared_floor(
    sender: &TxSender<TendermintClient>,
    h: &Harness,
    plans: &[redline_liquidator::plan::Plan],
) -> execute::PreparedBatch {
    let snapshot = h.reader.latest().await.unwrap();
    execute::prepare_batch(
        sender,
        &h.manifest.contracts.red_bank,
        plans,
        &snapshot.prices,
        Value::from(Decimal::percent(100_000_000)),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_does_everything_but_broadcast() {
    let h = Harness::start(200, 14, 2).await.unwrap();
    let (height, plans) = h.drop_atom().await.unwrap();
    assert!(!plans.is_empty());
    let queue = h
        .enqueue(&[h.candidate(&plans[0].account, height, Decimal::one())])
        .await
        .unwrap();
    let options = SendOptions {
        dry_run: true,
        ..SendOptions::default()
    };
    let mut worker = h.worker(1, h.settings(4), options).await.unwrap();
    let wallet = worker.sender().address().to_string();
    let before = h.balances(&wallet).await;
    let sequence = h.client.account(&wallet).await.unwrap().sequence;
    let report = worker.step().await.unwrap();
    assert_eq!(report.taken, 1);
    let records = h.records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::DryRun);
    assert!(!records[0].tx_hash.is_empty());
    assert!(records[0].gas_wanted > 0);
    tokio::time::sleep(support::BLOCK_TIME * 3).await;
    assert_eq!(h.balances(&wallet).await, before);
    assert_eq!(h.client.account(&wallet).await.unwrap().sequence, sequence);
    assert!(h.health_factor(&plans[0].account).await.unwrap().unwrap() < Decimal::one());
    assert_eq!(
        queue.backlog().await.unwrap().pending,
        0,
        "dry-run jobs are acknowledged"
    );
}

/// A strategy that declines one account and caps the repay of the others; an after-hook that
/// sees what was confirmed.
struct Picky {
    decline: String,
    cap: Uint128,
    seen: Mutex<Vec<String>>,
}

impl Strategy for Picky {
    fn decide<'a>(&'a self, opportunity: &'a Opportunity) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(opportunity.account.clone());
            if opportunity.account == self.decline {
                Decision::decline("model says no")
            } else {
                Decision {
                    go: true,
                    max_repay: Some(self.cap),
                    reason: None,
                }
            }
        })
    }
}

#[derive(Default)]
struct Watcher {
    reports: Mutex<Vec<BatchReport>>,
}

impl AfterLiquidation<TendermintClient> for Watcher {
    fn after_liquidations<'a>(
        &'a self,
        sender: &'a TxSender<TendermintClient>,
        report: &'a BatchReport,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            assert!(!sender.address().is_empty());
            self.reports.lock().unwrap().push(report.clone());
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strategy_and_after_hook_seams_are_used() {
    let h = Harness::start(300, 15, 2).await.unwrap();
    let (height, plans) = h.drop_atom().await.unwrap();
    assert!(plans.len() >= 2);
    let _queue = h
        .enqueue(&[
            h.candidate(&plans[0].account, height, Decimal::percent(200)),
            h.candidate(&plans[1].account, height, Decimal::percent(100)),
        ])
        .await
        .unwrap();
    let cap = plans[1].debt_to_send.multiply_ratio(1u128, 2u128);
    let strategy = Arc::new(Picky {
        decline: plans[0].account.clone(),
        cap,
        seen: Mutex::new(Vec::new()),
    });
    let watcher = Arc::new(Watcher::default());
    let mut worker = h
        .worker_with(
            1,
            h.settings(4),
            SendOptions::default(),
            strategy.clone(),
            watcher.clone(),
        )
        .await
        .unwrap();
    let report = worker.step().await.unwrap();
    assert_eq!(report.liquidated, 1);
    assert_eq!(strategy.seen.lock().unwrap().len(), 2);
    let records = h.records().await.unwrap();
    let declined = records
        .iter()
        .find(|r| r.outcome == Outcome::Declined)
        .unwrap();
    assert_eq!(declined.account, plans[0].account);
    assert_eq!(declined.error, "model says no");
    let done = records
        .iter()
        .find(|r| r.outcome == Outcome::Liquidated)
        .unwrap();
    assert_eq!(done.debt_repaid, cap);
    let reports = watcher.reports.lock().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].liquidations[0].account, plans[1].account);
    assert_eq!(reports[0].liquidations[0].debt_repaid, cap);
    assert!(!reports[0].received.is_empty());
}

impl Harness {
    fn reader_usd(&self, value: Value) -> Decimal {
        let usd = mars::value::to_usd(value, 6);
        usd.to_string().parse().unwrap_or_default()
    }
}

/// A wallet that holds the fee denom but none of the debt denom: the job waits in the queue's
/// parked set (not counted as a delivery, nothing sent or recorded), the wallet's capital report
/// says what it lacks, and once a top-up lands the same worker wakes the job and liquidates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_without_the_debt_denom_waits_for_funds_then_liquidates() {
    use redline_pipeline::capital::{capital_key, CapitalReport};
    use redline_pipeline::queue::Parking;

    let h = Harness::start(300, 16, 2).await.unwrap();
    let (height, plans) = h.drop_atom().await.unwrap();
    assert!(!plans.is_empty());
    // Slot 6 gets gas money only.
    let funder = h.sender(1, SendOptions::default()).await.unwrap();
    let poor = h.wallet(6).address().to_string();
    let send = |coin: cosmwasm_std::Coin| {
        redline_chain::bank_send_msg(funder.wallet().address(), &poor, &[coin]).unwrap()
    };
    funder
        .send(
            vec![send(cosmwasm_std::Coin::new(50_000_000u128, "uosmo"))],
            "",
        )
        .await
        .unwrap();
    let target = plans
        .iter()
        .find(|p| p.debt_denom != "uosmo")
        .expect("a debt in another denom than the fee's");
    let queue = h
        .enqueue(&[h.candidate(&target.account, height, Decimal::one())])
        .await
        .unwrap();
    let mut worker = h.default_worker(6).await.unwrap();
    let report = worker.step().await.unwrap();
    assert_eq!((report.taken, report.liquidated), (1, 0));
    assert!(report.tx.is_none());
    assert!(h.metric("liquidator_jobs_total").contains("no_funds"));
    let backlog = queue.backlog().await.unwrap();
    assert_eq!(
        backlog.lag + backlog.pending,
        0,
        "waiting, not queued: {backlog:?}"
    );
    assert_eq!(backlog.dead_letters, 0);
    assert_eq!(queue.parked_count().await.unwrap(), 1);
    assert!(h.records().await.unwrap().is_empty());
    // The account lock was released too: another worker can take it at once.
    assert!(!h
        .leases
        .is_held(&h.keys.account_lock("red_bank", &target.account))
        .await
        .unwrap());
    // The capital report names the denom and a shortfall of at least what the plan wanted.
    let mut redis = h.redis.clone();
    let json: String = redis::cmd("HGET")
        .arg(capital_key(
            &h.queue_config.queue_prefix,
            &h.manifest.chain_id,
        ))
        .arg(&poor)
        .query_async(&mut redis)
        .await
        .unwrap();
    let capital: CapitalReport = serde_json::from_str(&json).unwrap();
    assert_eq!(capital.waiting, 1);
    let missing: u128 = capital.missing[&target.debt_denom].parse().unwrap();
    assert!(missing > 0, "{capital:?}");
    let gauge = h.metric("liquidator_jobs_waiting_for_funds");
    assert!(gauge.contains(&poor) && gauge.ends_with(" 1"), "{gauge}");

    // A top-up of the debt denom: the next step wakes the job and liquidates it.
    funder
        .send(
            vec![send(cosmwasm_std::Coin::new(
                missing * 2,
                target.debt_denom.clone(),
            ))],
            "",
        )
        .await
        .unwrap();
    tokio::time::sleep(h.settings(4).block_interval * 2).await;
    let liquidated = step_until_liquidated(&mut worker).await;
    assert_eq!(liquidated, 1);
    assert_eq!(queue.parked_count().await.unwrap(), 0);
    let records = h.records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].account, target.account);
}

/// An account under water (its collateral worth less than its debt, at the Red Bank's own
/// `user_position`): the worker liquidates it, and the wallet's balances — read from the chain,
/// not from the planner — gain the bonus: collateral worth more than the debt repaid and the fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_underwater_account_is_liquidated_and_pays_the_bonus() {
    let h = Harness::start(300, 12, 2).await.unwrap();
    let height = h.move_price("uatom", 40).await.unwrap();
    let mut underwater = None;
    for account in &h.borrowers {
        let position = h.position(account).await.unwrap();
        if position.total_enabled_collateral < position.total_collateralized_debt
            && position.total_enabled_collateral > Uint128::new(1_000_000)
        {
            underwater = Some(account.clone());
            break;
        }
    }
    let account = underwater.expect("a 60% ATOM drop leaves some account under water");
    let _queue = h
        .enqueue(&[h.candidate(&account, height, Decimal::one())])
        .await
        .unwrap();
    let mut worker = h.default_worker(1).await.unwrap();
    let wallet = worker.sender().address().to_string();
    let before = h.balances(&wallet).await;
    let liquidated = step_until_liquidated(&mut worker).await;
    assert_eq!(liquidated, 1, "{:#?}", h.records().await.unwrap());
    let after = h.balances(&wallet).await;
    let gained = h.value_change(&before, &after).await;
    assert!(
        gained > Value::zero(),
        "the wallet's value fell by {gained}"
    );
    let records = h.records().await.unwrap();
    let record = records
        .iter()
        .find(|r| r.outcome == Outcome::Liquidated && r.account == account)
        .unwrap();
    assert_eq!(
        record.profit_value, gained,
        "recorded profit = balance change"
    );
}

/// A strategy that asks the worker to stop while it plans (as SIGTERM would mid-step) and lets
/// the liquidation go.
struct StopWhileDeciding {
    trigger: Mutex<Option<redline_liquidator::shutdown::ShutdownTrigger>>,
}

impl Strategy for StopWhileDeciding {
    fn decide<'a>(&'a self, _: &'a Opportunity) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            if let Some(trigger) = self.trigger.lock().unwrap().take() {
                trigger.trigger();
            }
            Decision {
                go: true,
                max_repay: None,
                reason: None,
            }
        })
    }
}

/// A worker told to stop while its batch is on the way still confirms and records the batch,
/// but runs no after-liquidation hook (no rebalancing swaps that would outlast the grace an
/// orchestrator gives it before SIGKILL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_settles_its_batch_without_the_after_hook() {
    let h = Harness::start(300, 17, 2).await.unwrap();
    let (height, plans) = h.drop_atom().await.unwrap();
    let queue = h
        .enqueue(&[h.candidate(&plans[0].account, height, Decimal::percent(100))])
        .await
        .unwrap();
    let (trigger, shutdown) = redline_liquidator::shutdown::shutdown_channel();
    let strategy = Arc::new(StopWhileDeciding {
        trigger: Mutex::new(Some(trigger)),
    });
    let watcher = Arc::new(Watcher::default());
    let worker = h
        .worker_with(
            1,
            h.settings(4),
            SendOptions::default(),
            strategy,
            watcher.clone(),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), worker.run(shutdown))
        .await
        .expect("the worker stops");
    let records = h.records().await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.account == plans[0].account && r.outcome == Outcome::Liquidated),
        "{records:?}"
    );
    assert!(watcher.reports.lock().unwrap().is_empty());
    assert_eq!(queue.backlog().await.unwrap().pending, 0);
}

/// A liquidation tried again bids for its place in the block: with one sign of competition (its
/// second delivery) its tx pays four times the market's fee (here far below the cap, half its
/// expected profit); a first try pays the market's price. The fees paid come from the chain
/// (the wallets' fee-denom balances); the market's fee is for the gas the tx used, its fee for
/// the gas it simulated at, hence the margins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liquidation_tried_again_bids_four_times_the_market_fee() {
    let h = Harness::start(300, 17, 4).await.unwrap();
    let (drop_height, plans) = h.drop_atom().await.unwrap();
    let fee_denom = h.manifest.fee.denom.clone();
    let mut untouched_fee_denom = plans
        .iter()
        .filter(|p| p.debt_denom != fee_denom && p.collateral_denom != fee_denom);
    let (retried, first) = (
        untouched_fee_denom.next().unwrap(),
        untouched_fee_denom.next().unwrap(),
    );
    let candidate = |plan: &redline_liquidator::plan::Plan| {
        h.candidate(
            &plan.account,
            drop_height,
            h.reader_usd(plan.expected_profit),
        )
    };

    // Another consumer takes the job and hands it back: the worker gets its second delivery.
    let queue = h.enqueue(&[candidate(retried)]).await.unwrap();
    let other = h.queue("other").await.unwrap();
    let taken = other.fetch(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(taken.len(), 1);
    other.release(&taken[0]).await.unwrap();
    let (paid, market) = liquidate_alone(&h, 1, retried, h.settings(1)).await;
    let snapshot = h.reader.latest().await.unwrap();
    let profit = snapshot
        .prices
        .amount_worth(&fee_denom, retried.expected_profit)
        .unwrap();
    let cap = profit.mul_floor(Decimal::percent(50));
    assert!(
        cap > market * Uint128::new(8),
        "a cap of {cap} leaves no room over {market}"
    );
    assert!(
        paid >= market.mul_floor(Decimal::percent(360))
            && paid <= market.mul_ceil(Decimal::percent(440)),
        "paid {paid}, cap {cap}, market fee {market}"
    );
    drop(queue);

    let queue = h.enqueue(&[candidate(first)]).await.unwrap();
    let (paid, market) = liquidate_alone(&h, 2, first, h.settings(1)).await;
    assert!(
        paid <= market.mul_ceil(Decimal::percent(110)),
        "a first try pays the market's price: paid {paid}, market fee {market}"
    );
    drop(queue);

    // Told to assume one sign of competition, a first try bids as after a race lost.
    let assumed = untouched_fee_denom.next().unwrap();
    let _queue = h.enqueue(&[candidate(assumed)]).await.unwrap();
    let mut settings = h.settings(1);
    settings.bid.assumed_competition = 1;
    let (paid, market) = liquidate_alone(&h, 3, assumed, settings).await;
    assert!(
        paid >= market.mul_floor(Decimal::percent(360))
            && paid <= market.mul_ceil(Decimal::percent(440)),
        "a first try assuming competition: paid {paid}, market fee {market}"
    );
}

/// A worker of wallet `slot` taking one candidate at a time liquidates `plan`'s account: the
/// fee its wallet paid (from the chain) and the fee the tx's gas costs at the market's price.
async fn liquidate_alone(
    h: &Harness,
    slot: u32,
    plan: &redline_liquidator::plan::Plan,
    settings: WorkerSettings,
) -> (Uint128, Uint128) {
    let fee_denom = &h.manifest.fee.denom;
    let mut worker = h
        .worker(slot, settings, SendOptions::default())
        .await
        .unwrap();
    let wallet = worker.sender().address().to_string();
    let before = h.balances(&wallet).await;
    assert_eq!(
        step_until_liquidated(&mut worker).await,
        1,
        "{}",
        plan.account
    );
    let after = h.balances(&wallet).await;
    let paid = Uint128::try_from(before[fee_denom] - after[fee_denom]).unwrap();
    let record = h
        .records()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.account == plan.account && r.outcome == Outcome::Liquidated)
        .unwrap();
    let market = Uint128::try_from(worker.sender().fee_for_gas(record.gas_used).amount).unwrap();
    (paid, market)
}
