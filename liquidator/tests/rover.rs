//! Credit-account (Rover) liquidations through the worker, against a devnet running Mars's
//! credit manager, account NFT and health contracts, and a real Redis. Every expected figure
//! comes from the chain: the tx's events, bank balances, `positions`, `health_values` and the
//! account NFT's `tokens`.

mod support;

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Uint128, Uint256};
use mars::msg::credit_manager::Positions;
use mars::types::AccountKey;
use mars::value::Value;
use redline_chain::{ChainClient, TendermintClient, TxEvent, TxOutcome};
use redline_liquidator::record::{AttemptRecord, Outcome};
use redline_liquidator::tx_sender::SendOptions;
use redline_liquidator::worker::{Worker, WorkerSettings};
use redline_pipeline::jobs::{LiquidationCandidate, LiquidationPlan, ProtocolKind};
use redline_pipeline::queue::Queue as _;
use support::Harness;
use testkit::rover::RoverQueries;

const ATOM: &str = "uatom";

/// The devnet's Rover contracts, with the picks these tests make among the seeded accounts.
struct Rover {
    queries: RoverQueries<TendermintClient>,
}

impl std::ops::Deref for Rover {
    type Target = RoverQueries<TendermintClient>;

    fn deref(&self) -> &Self::Target {
        &self.queries
    }
}

impl Rover {
    async fn of(h: &Harness) -> Rover {
        let credit_manager = h
            .manifest
            .contracts
            .credit_manager
            .clone()
            .expect("the devnet runs a credit manager");
        Rover {
            queries: RoverQueries::of(h.client.clone(), &credit_manager).await,
        }
    }

    /// The first seeded account `wanted` accepts, with its positions: the account, its largest
    /// debt's denom and a collateral denom other than it (a lend when `lend`).
    async fn pick(
        &self,
        liquidatable: bool,
        lend: bool,
    ) -> Option<(String, Positions, String, String)> {
        self.pick_many(liquidatable, lend, 1).await.pop()
    }

    /// Up to `count` accounts as [`Rover::pick`] picks one.
    async fn pick_many(
        &self,
        liquidatable: bool,
        lend: bool,
        count: usize,
    ) -> Vec<(String, Positions, String, String)> {
        let mut picked = Vec::new();
        for id in self.seeded_ids().await.iter().map(u64::to_string) {
            if picked.len() == count {
                break;
            }
            if self.liquidation_health(&id).await.liquidatable != liquidatable {
                continue;
            }
            let positions = self.positions(&id, None).await;
            let Some(debt) = positions.debts.iter().max_by_key(|d| d.amount) else {
                continue;
            };
            let collaterals = if lend {
                // Lends only, so that a lend is what the worker's plans can seize.
                let deposits = positions.deposits.iter().filter(|c| !c.amount.is_zero());
                if deposits.count() > 0 {
                    continue;
                }
                &positions.lends
            } else {
                &positions.deposits
            };
            // ATOM first: its price is the one that fell.
            let mut candidates: Vec<_> = collaterals
                .iter()
                .filter(|c| c.denom != debt.denom && !c.amount.is_zero())
                .collect();
            candidates.sort_by_key(|c| c.denom != ATOM);
            if let Some(collateral) = candidates.first() {
                let (debt, collateral) = (debt.denom.clone(), collateral.denom.clone());
                picked.push((id, positions, debt, collateral));
            }
        }
        picked
    }
}

fn debt_of(positions: &Positions, denom: &str) -> (Uint128, Uint128) {
    positions
        .debts
        .iter()
        .find(|d| d.denom == denom)
        .map(|d| (d.amount, d.shares))
        .unwrap_or_default()
}

fn coin_amount(positions: &[cosmwasm_std::Coin], denom: &str) -> Uint128 {
    positions
        .iter()
        .filter(|c| c.denom == denom)
        .map(|c| Uint128::try_from(c.amount).unwrap())
        .sum()
}

/// A candidate as the health checker queues it for a credit account: repay half the debt.
fn candidate(
    h: &Harness,
    id: &str,
    height: u64,
    debt: (&str, Uint128),
    collateral: &str,
    from_lend: bool,
) -> LiquidationCandidate {
    let mut candidate = h.candidate("unused", height, Decimal::one());
    candidate.protocol = ProtocolKind::Rover;
    candidate.account = AccountKey::CreditAccount(id.parse().unwrap());
    candidate.plan = Some(LiquidationPlan {
        debt_denom: debt.0.to_string(),
        collateral_denom: collateral.to_string(),
        debt_to_repay: debt.1 / Uint128::new(2),
        collateral_received: Uint128::zero(),
        expected_profit_usd: Decimal::one(),
        from_lend,
    });
    candidate
}

/// Steps `worker` until a step liquidates something (at most 5 steps).
async fn step_until_liquidated(worker: &mut Worker<TendermintClient, support::Queue>) -> usize {
    for _ in 0..5 {
        let liquidated = worker.step().await.unwrap().liquidated;
        if liquidated > 0 {
            return liquidated;
        }
    }
    0
}

fn attr<'a>(event: &'a TxEvent, key: &str) -> Option<&'a str> {
    event.attribute(key)
}

/// `(amount, denom)` of a coin attribute such as `123uatom`.
fn coin_attr(event: &TxEvent, key: &str) -> (Uint128, String) {
    let text = attr(event, key).unwrap();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap();
    (text[..split].parse().unwrap(), text[split..].to_string())
}

/// The wasm event whose `action` is `action` and whose `key` is `value`.
fn wasm_event<'a>(tx: &'a TxOutcome, action: &str, key: &str, value: &str) -> &'a TxEvent {
    tx.events_of("wasm")
        .find(|e| attr(e, "action") == Some(action) && attr(e, key) == Some(value))
        .unwrap_or_else(|| panic!("no {action} event with {key} {value}: {:#?}", tx.events))
}

/// The latest liquidation record of credit account `id`, and its tx as the chain reports it.
async fn liquidation_of(h: &Harness, id: &str) -> (AttemptRecord, TxOutcome) {
    let records = h.records().await.unwrap();
    let account = format!("credit account {id}");
    let done: Vec<_> = records
        .iter()
        .filter(|r| r.account == account && r.outcome == Outcome::Liquidated)
        .collect();
    let record = (*done.last().unwrap_or_else(|| panic!("{records:#?}"))).clone();
    assert_eq!(record.protocol, ProtocolKind::Rover);
    let hash = record.tx_hash.parse().unwrap();
    let tx = h
        .client
        .wait_for_tx(hash, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert!(tx.is_success());
    (record, tx)
}

/// What the liquidatee lost and the wallet won, checked against the tx's events and the chain's
/// answers after it.
async fn check_liquidation(
    h: &Harness,
    rover: &Rover,
    worker: &Worker<TendermintClient, support::Queue>,
    liquidated: (&str, &str, &str),
    before: &Positions,
    // The height the wallet's balances were read at, and the balances.
    wallet_before: &(u64, BTreeMap<String, Uint256>),
    lend: bool,
) -> AttemptRecord {
    let (id, debt_denom, collateral) = liquidated;
    let (record, tx) = liquidation_of(h, id).await;
    let own = worker
        .credit_account()
        .expect("the worker has a credit account");
    let action = if lend {
        "liquidate_lend"
    } else {
        "liquidate_deposit"
    };
    let liquidation = wasm_event(&tx, action, "liquidatee_account_id", id);
    assert_eq!(attr(liquidation, "account_id"), Some(own));
    let (repaid, repaid_denom) = coin_attr(liquidation, "coin_debt_repaid");
    let (seized, seized_denom) = coin_attr(liquidation, "coin_liquidated");
    let (fee, _) = coin_attr(liquidation, "protocol_fee_coin");
    assert_eq!(
        (repaid_denom.as_str(), seized_denom.as_str()),
        (debt_denom, collateral)
    );
    assert!(repaid > Uint128::zero() && seized > Uint128::zero());
    assert_eq!(record.debt_repaid, repaid);
    assert_eq!(record.collateral_seized, seized);
    assert_eq!(record.collateral_received, seized - fee);

    // The liquidatee's debt went down by the repayment: its shares by exactly what the repay
    // event burnt, its amount by the repayment (interest of the few blocks in between aside;
    // the devnet answers from its latest state only, so `before` was read before the step).
    let after = rover.positions(id, None).await;
    let repay = wasm_event(&tx, "repay", "account_id", id);
    let (repay_amount, _) = coin_attr(repay, "coin_repaid");
    assert_eq!(repay_amount, repaid);
    let shares_burnt: Uint128 = attr(repay, "debt_shares_repaid").unwrap().parse().unwrap();
    let (debt_before, shares_before) = debt_of(before, debt_denom);
    let (debt_after, shares_after) = debt_of(&after, debt_denom);
    if debt_after.is_zero() {
        // Repaid in full: the credit manager removes all of the account's shares, while its
        // event reports the shares the repaid amount is worth (`total shares · amount / total
        // debt`, rounded down), as Mars does: the two differ by the rounding of the account's
        // debt, less than a billionth of its shares.
        assert!(shares_after.is_zero(), "{after:?}");
        let gap = shares_burnt.abs_diff(shares_before);
        assert!(
            gap <= shares_before / Uint128::new(1_000_000_000) + Uint128::new(1_000_000),
            "{shares_burnt} burnt of {shares_before}"
        );
    } else {
        assert_eq!(shares_before - shares_after, shares_burnt);
    }
    assert!(
        debt_after + repaid >= debt_before,
        "{debt_before} → {debt_after}"
    );
    assert!(debt_after + repaid <= debt_before + repaid / Uint128::new(1_000) + Uint128::new(2));
    let held = |p: &Positions| {
        if lend {
            coin_amount(&p.lends, collateral)
        } else {
            coin_amount(&p.deposits, collateral)
        }
    };
    // A lend earns interest in between: it lost the seized amount less that (and one unit
    // more at most: the rest of the lend is scaled and read back rounded down).
    let lost = held(before) - held(&after);
    if lend {
        assert!(
            lost <= seized + Uint128::one()
                && lost + seized / Uint128::new(1_000) + Uint128::new(2) >= seized,
            "lost {lost}, seized {seized}: {before:?} → {after:?}"
        );
    } else {
        assert_eq!(lost, seized);
    }

    // The worker's own account ends empty: no debt, no coins, no lends.
    let own_after = rover.positions(own, None).await;
    assert!(own_after.debts.is_empty(), "{own_after:?}");
    assert!(own_after.deposits.is_empty(), "{own_after:?}");
    assert!(own_after.lends.is_empty(), "{own_after:?}");

    // The refund went to the wallet: its debt denom rose by it, less the fees the wallet paid
    // in that denom meanwhile (this tx's, and the opening of the credit account's, if any).
    let wallet = worker.sender().address().to_string();
    let refund = wasm_event(&tx, "callback/withdraw", "account_id", own);
    let (refunded, refunded_denom) = coin_attr(refund, "coin_withdrawn");
    assert_eq!(refunded_denom, debt_denom);
    let after_balances = h.balances(&wallet).await;
    let of = |b: &BTreeMap<String, Uint256>| b.get(debt_denom).copied().unwrap_or_default();
    let rise = of(&after_balances) - of(&wallet_before.1);
    let since: Vec<AttemptRecord> = h
        .records()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.wallet == wallet && r.height > wallet_before.0)
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Liquidated | Outcome::CreditAccountOpened
            )
        })
        .collect();
    let mut fees_in_debt_denom = Uint256::zero();
    for r in &since {
        let fee = tx_fee(h, &r.tx_hash).await;
        if fee.denom == debt_denom {
            fees_in_debt_denom += fee.amount;
        }
    }
    assert_eq!(rise + fees_in_debt_denom, Uint256::from(refunded));
    assert!(
        rise > Uint256::zero(),
        "the wallet's {debt_denom} did not rise"
    );

    // The liquidation's recorded profit is positive, and the records of the step (the opening
    // of the credit account included) add up to the wallet's balance change.
    assert!(record.profit_value > Value::zero(), "{record:?}");
    let recorded = since
        .iter()
        .map(|r| r.profit_value)
        .fold(Value::zero(), |a, b| a + b);
    assert_eq!(
        recorded,
        h.value_change(&wallet_before.1, &after_balances).await
    );
    record
}

/// The fee a tx paid, as the chain's `tx` event reports it.
async fn tx_fee(h: &Harness, hash: &str) -> cosmwasm_std::Coin {
    let tx = h
        .client
        .wait_for_tx(hash.parse().unwrap(), std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let fee = tx
        .attribute("tx", "fee")
        .unwrap_or_else(|| panic!("no fee in {:#?}", tx.events));
    fee.parse().unwrap()
}

/// Liquidates the first liquidatable credit account with a coin (or lent, when `lend`)
/// collateral through `worker`; checks it against the chain and returns its record.
async fn liquidate_one(
    h: &Harness,
    rover: &Rover,
    worker: &mut Worker<TendermintClient, support::Queue>,
    lend: bool,
) -> AttemptRecord {
    let (id, positions, debt_denom, collateral) = rover
        .pick(true, lend)
        .await
        .expect("a liquidatable credit account after the price drop");
    let (debt, _) = debt_of(&positions, &debt_denom);
    let height = h.client.latest_height().await.unwrap();
    let job = candidate(h, &id, height, (&debt_denom, debt), &collateral, lend);
    let queue = h.enqueue(&[job]).await.unwrap();
    let wallet = worker.sender().address().to_string();
    let before = (
        h.client.latest_height().await.unwrap(),
        h.balances(&wallet).await,
    );
    let liquidated = step_until_liquidated(worker).await;
    assert_eq!(liquidated, 1, "{:#?}", h.records().await.unwrap());
    assert_eq!(queue.backlog().await.unwrap().pending, 0);
    // The worker plans again from the account as it stands and takes the pair whose pool pays
    // most: what it did is checked against the chain, whichever pair that was.
    let (record, _) = liquidation_of(h, &id).await;
    let took_lend = record.detail.contains("request lend");
    let liquidated = (
        id.as_str(),
        record.debt_denom.as_str(),
        record.collateral_denom.as_str(),
    );
    check_liquidation(h, rover, worker, liquidated, &positions, &before, took_lend).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_account_is_liquidated_in_one_tx_from_the_workers_own_account() {
    let h = Harness::start_with_credit_accounts(20, 150, 3, 2)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    h.move_price(ATOM, 70).await.unwrap();
    let mut worker = h.default_worker(1).await.unwrap();
    let record = liquidate_one(&h, &rover, &mut worker, false).await;
    assert!(
        record.detail.contains("request deposit"),
        "{}",
        record.detail
    );
    let own = worker.credit_account().unwrap().to_string();
    let wallet = worker.sender().address().to_string();
    assert_eq!(rover.tokens(&wallet).await, vec![own]);
    assert!(h.metric("liquidator_attempts_total").contains("liquidated"));
}

/// A second worker on the same wallet (a restarted liquidator) goes on with the credit account
/// the first opened, and a lent collateral is liquidated with request `lend`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_finds_its_credit_account_and_liquidates_a_lend() {
    let h = Harness::start_with_credit_accounts(20, 150, 5, 2)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    h.move_price(ATOM, 70).await.unwrap();
    let mut first = h.default_worker(1).await.unwrap();
    liquidate_one(&h, &rover, &mut first, false).await;
    let own = first.credit_account().unwrap().to_string();
    let wallet = first.sender().address().to_string();
    drop(first);

    let mut second = h.default_worker(1).await.unwrap();
    let record = liquidate_one(&h, &rover, &mut second, true).await;
    assert_eq!(second.credit_account(), Some(own.as_str()));
    assert!(record.detail.contains("request lend"), "{}", record.detail);
    assert_eq!(rover.tokens(&wallet).await, vec![own]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_credit_account_is_acked_without_a_tx() {
    let h = Harness::start_with_credit_accounts(20, 60, 7, 2)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    let (id, positions, debt_denom, collateral) = rover
        .pick(false, false)
        .await
        .expect("a healthy credit account with debt");
    assert!(!rover.liquidation_health(&id).await.liquidatable);
    let (debt, _) = debt_of(&positions, &debt_denom);
    let height = h.client.latest_height().await.unwrap();
    let job = candidate(&h, &id, height, (&debt_denom, debt), &collateral, false);
    let queue = h.enqueue(&[job]).await.unwrap();

    let mut worker = h.default_worker(1).await.unwrap();
    let wallet = worker.sender().address().to_string();
    let sequence = h.client.account(&wallet).await.unwrap().sequence;
    let report = worker.step().await.unwrap();
    assert_eq!((report.taken, report.liquidated), (1, 0));
    assert!(report.tx.is_none());
    let backlog = queue.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.dead_letters), (0, 0));
    // Nothing signed: no liquidation, and no credit account opened for it.
    assert_eq!(h.client.account(&wallet).await.unwrap().sequence, sequence);
    assert!(rover.tokens(&wallet).await.is_empty());
    assert!(h.records().await.unwrap().is_empty());
    assert_eq!(positions, rover.positions(&id, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_account_candidates_are_dead_lettered_without_a_credit_manager() {
    let h = Harness::start(20, 9, 2).await.unwrap();
    assert_eq!(h.manifest.contracts.credit_manager, None);
    let height = h.client.latest_height().await.unwrap();
    let job = candidate(&h, "7", height, ("uusdc", Uint128::new(1_000)), ATOM, false);
    let queue = h.enqueue(&[job]).await.unwrap();
    let mut worker = h.default_worker(1).await.unwrap();
    let report = worker.step().await.unwrap();
    assert!(report.tx.is_none());
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("credit manager"),
        "{}",
        dead[0].reason
    );
}

/// Candidates for every seeded credit account the health contract says is liquidatable: its
/// largest debt against a deposit in another denom.
async fn every_liquidatable(h: &Harness, rover: &Rover, height: u64) -> Vec<LiquidationCandidate> {
    let mut candidates = Vec::new();
    for id in rover.seeded_ids().await.iter().map(u64::to_string) {
        if !rover.liquidation_health(&id).await.liquidatable {
            continue;
        }
        let positions = rover.positions(&id, None).await;
        let Some(debt) = positions.debts.iter().max_by_key(|d| d.amount) else {
            continue;
        };
        let Some(collateral) = positions.deposits.iter().find(|c| c.denom != debt.denom) else {
            continue;
        };
        let debt = (debt.denom.as_str(), debt.amount);
        candidates.push(candidate(h, &id, height, debt, &collateral.denom, false));
    }
    candidates
}

/// The credit accounts the liquidator wallets own, by wallet, with what each holds.
async fn own_accounts(h: &Harness, rover: &Rover, slots: u32) -> Vec<(String, Positions)> {
    let mut owned = Vec::new();
    for slot in 0..slots {
        let wallet = h.wallet(slot).address().to_string();
        for id in rover.tokens(&wallet).await {
            owned.push((wallet.clone(), rover.positions(&id, None).await));
        }
    }
    owned
}

/// `kill -9` of the liquidator binary in the middle of credit-account liquidations loses
/// nothing: its credit account never holds a debt (borrow and repay are one tx, which the chain
/// applies whole or not at all), no candidate is dead-lettered, and a restarted binary
/// liquidates every account left, each wallet keeping one credit account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_credit_account_liquidations_loses_nothing() {
    const SLOTS: u32 = 4;
    let h = Harness::start_with_credit_accounts(20, 200, 9, SLOTS)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    let height = h.move_price(ATOM, 70).await.unwrap();
    let candidates = every_liquidatable(&h, &rover, height).await;
    assert!(candidates.len() >= 3, "{} liquidatable", candidates.len());
    let queue = h.enqueue(&candidates).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        h.liquidator_command(dir.path())
            .args(["--redis-url", &h.redis_server.url()])
            .args(["--metrics-addr", "off"])
            .spawn()
            .unwrap()
    };

    // Killed as soon as its first credit-account liquidation is recorded: the next one is
    // being planned, simulated or sent.
    let mut first = spawn();
    testkit::wait_for(
        || async {
            h.records().await.is_ok_and(|records| {
                records
                    .iter()
                    .any(|r| r.protocol == ProtocolKind::Rover && r.outcome == Outcome::Liquidated)
            })
        },
        std::time::Duration::from_secs(90),
    )
    .await
    .unwrap();
    first.kill().await.unwrap();
    let owned = own_accounts(&h, &rover, SLOTS).await;
    assert!(!owned.is_empty());
    for (wallet, positions) in &owned {
        assert!(positions.debts.is_empty(), "{wallet}: {positions:?}");
    }

    // A restarted binary (on the next free wallet: the killed one's lease has not expired)
    // finishes the work.
    let mut second = spawn();
    testkit::wait_for(
        || async {
            let waiting = queue.lag().await.unwrap_or(1) + queue.pending_count().await.unwrap_or(1);
            waiting == 0
        },
        std::time::Duration::from_secs(120),
    )
    .await
    .unwrap();
    support::stop_with_sigterm(&mut second).await;

    // Every job was settled (none waits, none is held) and none dead-lettered; the accounts
    // still liquidatable are those with no liquidation the credit manager accepts at a profit
    // (the bench's capture oracle judges those by simulation).
    assert!(queue.dead_letters(100).await.unwrap().is_empty());
    let liquidated: std::collections::BTreeSet<String> = h
        .records()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol == ProtocolKind::Rover && r.outcome == Outcome::Liquidated)
        .map(|r| r.account)
        .collect();
    assert!(
        liquidated.len() * 2 >= candidates.len(),
        "{} of {} liquidated",
        liquidated.len(),
        candidates.len()
    );
    let owned = own_accounts(&h, &rover, SLOTS).await;
    let mut wallets: Vec<_> = owned.iter().map(|(wallet, _)| wallet.clone()).collect();
    wallets.dedup();
    assert_eq!(wallets.len(), owned.len(), "one credit account per wallet");
    for (wallet, positions) in &owned {
        assert!(positions.debts.is_empty(), "{wallet}: {positions:?}");
        assert!(positions.deposits.is_empty(), "{wallet}: {positions:?}");
    }
}

/// Three liquidatable credit accounts queued together land in one tx: one
/// `update_credit_account` each, every record booked from its own liquidation and refund
/// events, and the records adding up to the wallet's balance change (bank balances).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_credit_accounts_are_liquidated_in_one_tx() {
    let h = Harness::start_with_credit_accounts(20, 150, 3, 2)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    h.move_price(ATOM, 70).await.unwrap();
    let picked = rover.pick_many(true, false, 3).await;
    assert_eq!(picked.len(), 3, "three liquidatable credit accounts");
    let height = h.client.latest_height().await.unwrap();
    let jobs: Vec<_> = picked
        .iter()
        .map(|(id, positions, debt_denom, collateral)| {
            let (debt, _) = debt_of(positions, debt_denom);
            candidate(&h, id, height, (debt_denom, debt), collateral, false)
        })
        .collect();
    let queue = h.enqueue(&jobs).await.unwrap();
    let mut worker = h.default_worker(1).await.unwrap();
    let wallet = worker.sender().address().to_string();
    let before = h.balances(&wallet).await;

    assert_eq!(step_until_liquidated(&mut worker).await, 3);
    assert_eq!(queue.backlog().await.unwrap().pending, 0);
    let mut hashes = Vec::new();
    for (id, _, debt_denom, _) in &picked {
        let (record, tx) = liquidation_of(&h, id).await;
        assert_eq!(record.batch_size, 3);
        let liquidation = wasm_event(&tx, "liquidate_deposit", "liquidatee_account_id", id);
        assert_eq!(
            record.debt_repaid,
            coin_attr(liquidation, "coin_debt_repaid").0
        );
        assert_eq!(
            record.collateral_seized,
            coin_attr(liquidation, "coin_liquidated").0
        );
        assert_eq!(&record.debt_denom, debt_denom);
        hashes.push(record.tx_hash);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1, "one tx for the three: {hashes:?}");

    let own = worker.credit_account().unwrap().to_string();
    let own_after = rover.positions(&own, None).await;
    assert!(
        own_after.debts.is_empty() && own_after.deposits.is_empty(),
        "{own_after:?}"
    );
    let records = h.records().await.unwrap();
    let recorded = records
        .iter()
        .filter(|r| r.wallet == wallet)
        .map(|r| r.profit_value)
        .fold(Value::zero(), |a, b| a + b);
    let after = h.balances(&wallet).await;
    assert_eq!(
        recorded,
        h.value_change(&before, &after).await,
        "{records:#?}"
    );
    assert!(recorded > Value::zero());
}

/// When no swap pool would repay a borrow, the worker sends the debt coin from its wallet: one
/// `update_credit_account` deposits it (sent with the message), liquidates and refunds the
/// seized collateral unsold. Here no pool qualifies because the worker is told pools may move
/// 99 % before its tx lands (`credit_swap_margin`). Without wallet funding the same candidate is
/// declined without a tx. Expected figures come from the chain: the liquidation event, the
/// wallet's bank balances and the own account's positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_account_no_pool_pays_for_is_liquidated_with_the_wallets_coins() {
    let h = Harness::start_with_credit_accounts(20, 150, 3, 2)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    h.move_price(ATOM, 70).await.unwrap();
    let (id, positions, debt_denom, collateral) = rover
        .pick(true, false)
        .await
        .expect("a liquidatable credit account after the price drop");
    let (debt, _) = debt_of(&positions, &debt_denom);
    let settings = |wallet_funding| WorkerSettings {
        credit_swap_margin: Decimal::percent(99),
        credit_wallet_funding: wallet_funding,
        ..h.settings(4)
    };
    let account = format!("credit account {id}");
    let job = |height| candidate(&h, &id, height, (&debt_denom, debt), &collateral, false);

    let height = h.client.latest_height().await.unwrap();
    let queue = h.enqueue(&[job(height)]).await.unwrap();
    let mut worker = h
        .worker(1, settings(false), SendOptions::default())
        .await
        .unwrap();
    assert_eq!(step_until_liquidated(&mut worker).await, 0);
    assert_eq!(queue.backlog().await.unwrap().pending, 0);
    let records = h.records().await.unwrap();
    let declined = records
        .iter()
        .find(|r| r.account == account)
        .unwrap_or_else(|| panic!("no record of the decline: {records:#?}"));
    assert_eq!(declined.outcome, Outcome::BelowMinProfit, "{declined:?}");
    assert!(
        declined.error.contains("--credit-swap-margin") && declined.tx_hash.is_empty(),
        "{declined:?}"
    );
    drop(worker);

    let height = h.client.latest_height().await.unwrap();
    let queue = h.enqueue(&[job(height)]).await.unwrap();
    let mut worker = h
        .worker(1, settings(true), SendOptions::default())
        .await
        .unwrap();
    let wallet = worker.sender().address().to_string();
    let before = h.balances(&wallet).await;
    assert_eq!(step_until_liquidated(&mut worker).await, 1);
    assert_eq!(queue.backlog().await.unwrap().pending, 0);
    let (record, tx) = liquidation_of(&h, &id).await;
    assert!(
        record.detail.contains("from the wallet"),
        "{}",
        record.detail
    );
    let actions: Vec<&str> = tx
        .events_of("wasm")
        .filter_map(|e| attr(e, "action"))
        .collect();
    assert!(
        !actions
            .iter()
            .any(|a| a.contains("borrow") || a.contains("swap")),
        "neither borrowed nor swapped: {actions:?}"
    );
    let liquidation = wasm_event(&tx, "liquidate_deposit", "liquidatee_account_id", &id);
    let (repaid, repaid_denom) = coin_attr(liquidation, "coin_debt_repaid");
    let (seized, seized_denom) = coin_attr(liquidation, "coin_liquidated");
    let (protocol_fee, _) = coin_attr(liquidation, "protocol_fee_coin");
    assert_eq!(
        (repaid_denom.as_str(), seized_denom.as_str()),
        (record.debt_denom.as_str(), record.collateral_denom.as_str())
    );
    assert_eq!(
        (record.debt_repaid, record.collateral_received),
        (repaid, seized - protocol_fee)
    );

    // The wallet paid exactly the repayment (what the liquidation did not use came back) and
    // holds the collateral received, unsold; the tx's fee aside.
    let after = h.balances(&wallet).await;
    let fee = tx_fee(&h, &record.tx_hash).await;
    let of = |b: &BTreeMap<String, Uint256>, denom: &str| b.get(denom).copied().unwrap_or_default();
    let fee_in = |denom: &str| {
        if fee.denom == denom {
            fee.amount
        } else {
            Uint256::zero()
        }
    };
    assert_eq!(
        of(&before, &repaid_denom) - of(&after, &repaid_denom),
        Uint256::from(repaid) + fee_in(&repaid_denom)
    );
    assert_eq!(
        of(&after, &seized_denom) + fee_in(&seized_denom),
        of(&before, &seized_denom) + Uint256::from(seized - protocol_fee)
    );
    let own = worker.credit_account().unwrap().to_string();
    let own_after = rover.positions(&own, None).await;
    assert!(
        own_after.debts.is_empty() && own_after.deposits.is_empty() && own_after.lends.is_empty(),
        "{own_after:?}"
    );
    assert!(record.profit_value > Value::zero(), "{record:?}");
    assert_eq!(record.profit_value, h.value_change(&before, &after).await);
}

/// A wallet holding none of the debt coin, where no swap pool repays a borrow (pools may move
/// 99 %, the worker is told): the job waits in the queue's parked set, nothing sent and nothing
/// recorded; once the wallet is topped up the same worker wakes the job and liquidates it from
/// the wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_short_of_the_debt_coin_waits_then_funds_the_liquidation() {
    use redline_pipeline::queue::Parking as _;

    let h = Harness::start_with_credit_accounts(20, 150, 3, 2)
        .await
        .unwrap();
    let rover = Rover::of(&h).await;
    h.move_price(ATOM, 70).await.unwrap();
    let fee_denom = h.manifest.fee.denom.clone();
    let (id, positions, debt_denom, collateral) = rover
        .pick_many(true, false, 20)
        .await
        .into_iter()
        .find(|(_, p, _, _)| p.debts.iter().all(|d| d.denom != fee_denom))
        .expect("a liquidatable credit account owing nothing in the fee denom");
    // Slot 6 gets gas money only.
    let funder = h.sender(1, SendOptions::default()).await.unwrap();
    let poor = h.wallet(6).address().to_string();
    let send = |coins: &[cosmwasm_std::Coin]| {
        redline_chain::bank_send_msg(funder.wallet().address(), &poor, coins).unwrap()
    };
    let gas_money = cosmwasm_std::Coin::new(50_000_000u128, fee_denom.clone());
    funder.send(vec![send(&[gas_money])], "").await.unwrap();
    let settings = WorkerSettings {
        credit_swap_margin: Decimal::percent(99),
        ..h.settings(4)
    };
    let (debt, _) = debt_of(&positions, &debt_denom);
    let height = h.client.latest_height().await.unwrap();
    let job = candidate(&h, &id, height, (&debt_denom, debt), &collateral, false);
    let queue = h.enqueue(&[job]).await.unwrap();
    let mut worker = h
        .worker(6, settings.clone(), SendOptions::default())
        .await
        .unwrap();
    let report = worker.step().await.unwrap();
    assert_eq!(report.liquidated, 0);
    assert_eq!(queue.parked_count().await.unwrap(), 1);
    assert!(h.metric("liquidator_jobs_total").contains("no_funds"));
    let account = format!("credit account {id}");
    let records = h.records().await.unwrap();
    assert!(records.iter().all(|r| r.account != account), "{records:#?}");

    let mut debts: Vec<cosmwasm_std::Coin> = positions
        .debts
        .iter()
        .map(|d| cosmwasm_std::Coin::new(d.amount * Uint128::new(2), d.denom.clone()))
        .collect();
    debts.sort_by(|a, b| a.denom.cmp(&b.denom));
    funder.send(vec![send(&debts)], "").await.unwrap();
    tokio::time::sleep(settings.block_interval * 2).await;
    assert_eq!(step_until_liquidated(&mut worker).await, 1);
    assert_eq!(queue.parked_count().await.unwrap(), 0);
    let (record, _) = liquidation_of(&h, &id).await;
    assert!(
        record.detail.contains("from the wallet"),
        "{}",
        record.detail
    );
    assert_eq!(record.wallet, poor);
}
