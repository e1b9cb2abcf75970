//! Restarts: a collector stopped while transactions happen catches up block by block from the
//! height it recorded; one that was away longer than the node's block history rebuilds the
//! index with a full rescan. Either way the index ends equal to the chain.

mod support;

use std::time::Duration;

use cosmwasm_std::Uint128;
use redline_chain::ChainClient;
use support::{
    assert_same_accounts, borrow, coin, deposit, index_contents, repay_on_behalf, shutdown,
    smart_walk, start_devnet, start_following, test_config, Devnet, Harness, Running,
};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(60);

/// Every account the test may have touched: the seeded ones and the scenario wallets.
fn all_users(devnet: &Devnet) -> Vec<String> {
    let mut users = devnet.seeded_users().clone();
    users.extend((0..4).map(|i| devnet.liquidator(i).address().to_string()));
    users
}

/// Transactions while the collector is down: a new borrower, and a seeded debtor repaid in
/// full on its behalf (it must leave the index).
async fn change_positions(devnet: &Devnet, repaid: &str, repaid_denom: &str, amount: Uint128) {
    let borrower = devnet.liquidator(3);
    deposit(devnet, &borrower, coin(5_000_000, "uatom")).await;
    borrow(devnet, &borrower, "uosmo", 20_000_000).await;
    let funds = coin(amount.u128() * 2 + 1_000_000, repaid_denom);
    repay_on_behalf(devnet, &devnet.liquidator(0), repaid, funds).await;
}

/// A seeded debtor with exactly one debt that wallet 0 can repay twice over, with about what it
/// owes (scaled amounts carry Mars's 10^6 scaling factor; the repay sends double and the
/// excess is refunded).
async fn single_debt_debtor(devnet: &Devnet) -> (String, String, Uint128) {
    let client = devnet.client.clone();
    let balances = client
        .balances(devnet.liquidator(0).address().as_ref())
        .await
        .unwrap();
    let balance = |denom: &str| {
        balances
            .iter()
            .find(|c| c.denom == denom)
            .map(|c| Uint128::try_from(c.amount).unwrap())
            .unwrap_or_default()
    };
    let walked = smart_walk(devnet, &devnet.seeded_users()).await;
    walked
        .iter()
        .filter(|(_, p)| p.debts.len() == 1)
        .map(|(address, p)| {
            let (denom, debt) = p.debts.iter().next().unwrap();
            let owed = debt.amount_scaled.u128() / 1_000_000 + 1;
            (address.clone(), denom.clone(), Uint128::new(owed))
        })
        .find(|(_, denom, amount)| amount.u128() * 2 + 1_000_000 <= balance(denom).u128())
        .expect("a debtor with one debt denom that wallet 0 can repay")
}

/// A collector that reached the tip and stopped, then positions changed behind its back: returns
/// the harness to restart it with, the height it had reached and the debtor repaid meanwhile.
async fn stop_then_change_positions(devnet: &Devnet) -> (Harness, u64, String) {
    let (harness, running) = start_following(devnet, test_config(16)).await;
    let first = running.wait_until_at_tip(devnet, 2, WAIT).await;
    running.stop().await;
    let (repaid, denom, amount) = single_debt_debtor(devnet).await;
    change_positions(devnet, &repaid, &denom, amount).await;
    (harness, first, repaid)
}

async fn assert_index_matches_chain(devnet: &Devnet, running: &Running) {
    let walked = smart_walk(devnet, &all_users(devnet)).await;
    let indexed = index_contents(&running.collector).await;
    assert_same_accounts(&indexed, &walked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_catches_up_from_the_recorded_height() {
    let devnet = start_devnet(300, 21, 10_000).await;
    let (mut harness, first, repaid) = stop_then_change_positions(&devnet).await;
    let client = devnet.client.clone();
    // The restarted collector must have several blocks to replay, however quickly the three
    // txs above landed.
    let changed_at = eventually("the chain to move 4 blocks past the stop", WAIT, || async {
        let tip = client.latest_height().await.ok()?;
        (tip > first + 3).then_some(tip)
    })
    .await;

    let collector = harness.collector(&devnet, test_config(16)).await;
    let recorded = collector
        .index()
        .last_indexed_height()
        .await
        .unwrap()
        .unwrap();
    assert!(
        recorded >= first,
        "the stopped collector recorded {recorded}"
    );
    let running = Running::start(collector);
    running.wait_until_at_tip(&devnet, changed_at, WAIT).await;
    let metrics = running.collector.metrics();
    assert_eq!(metrics.full_rescans.get(), 0, "caught up without a rescan");
    assert!(
        metrics.blocks_indexed.get() >= changed_at - recorded,
        "replayed {} blocks from {recorded} to {changed_at}",
        metrics.blocks_indexed.get()
    );
    assert_eq!(running.account(&repaid).await, None);
    assert!(running
        .account(devnet.liquidator(3).address().as_ref())
        .await
        .is_some());
    assert_index_matches_chain(&devnet, &running).await;
    shutdown(running, devnet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_beyond_the_node_history_triggers_a_full_rescan() {
    // The node keeps 10 blocks (2 s).
    let devnet = start_devnet(200, 22, 10).await;
    let (mut harness, first, repaid) = stop_then_change_positions(&devnet).await;
    let client = devnet.client.clone();
    eventually(
        "the node to forget the collector's next block",
        WAIT,
        || async { (client.earliest_height().await.ok()? > first + 1).then_some(()) },
    )
    .await;

    let running = Running::start(harness.collector(&devnet, test_config(16)).await);
    let tip = client.latest_height().await.unwrap();
    running.wait_until_at_tip(&devnet, tip, WAIT).await;
    assert_eq!(running.collector.metrics().full_rescans.get(), 1);
    assert_eq!(running.account(&repaid).await, None);
    assert_index_matches_chain(&devnet, &running).await;
    shutdown(running, devnet).await;
}
