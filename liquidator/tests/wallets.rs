//! Wallet slots leased in a real Redis, and the master wallet topping up an unfunded worker on
//! a real devnet.

mod support;

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128, Uint256};
use redline_chain::ChainClient;
use redline_liquidator::record::Outcome;
use redline_liquidator::tx_sender::SendOptions;
use redline_liquidator::wallets::{claim_slot, TopUpPolicy, Treasurer, WalletSlot};
use support::Harness;

/// The first free slot of `slots`, claimed as a worker claims it, on the harness's Redis and
/// mnemonic.
async fn claim(h: &Harness, slots: RangeInclusive<u32>, ttl: Duration) -> Option<WalletSlot> {
    claim_slot(
        &h.leases,
        &h.keys,
        &h.mnemonic,
        &h.manifest.bech32_prefix,
        slots,
        ttl,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_exclusive_and_a_lost_lease_stops_signing() {
    let h = Harness::start(10, 31, 2).await.unwrap();
    let ttl = Duration::from_millis(1_200);
    let first = claim(&h, 1..=3, ttl).await.unwrap();
    let second = claim(&h, 1..=3, ttl).await.unwrap();
    assert_eq!((first.slot, second.slot), (1, 2));
    assert_eq!(
        first.wallet.address().to_string(),
        h.wallet(1).address().to_string()
    );
    let third = claim(&h, 1..=3, ttl).await.unwrap();
    assert!(claim(&h, 1..=3, ttl).await.is_none());
    // Each claim notes its holder, for the manager to free the slot should the worker die.
    let holders: std::collections::BTreeMap<u32, String> = redis::cmd("HGETALL")
        .arg(format!("{}:slot-holders", h.keys.base()))
        .query_async(&mut h.redis.clone())
        .await
        .unwrap();
    let owner = h.leases.owner().to_string();
    assert_eq!(
        holders,
        std::collections::BTreeMap::from([(1, owner.clone()), (2, owner.clone()), (3, owner)])
    );

    // Renewals keep a lease alive well past its ttl.
    tokio::time::sleep(ttl * 2).await;
    assert!(first.permit.is_granted());
    assert!(h.leases.is_held(&h.keys.wallet_slot(1)).await.unwrap());

    // Another worker takes slot 2's key over: its worker stops signing (and stays stopped
    // while the other holds it).
    let mut redis = h.redis.clone();
    let _: () = redis::cmd("SET")
        .arg(h.keys.wallet_slot(2))
        .arg("another-worker")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut redis)
        .await
        .unwrap();
    let permit = second.permit.clone();
    testkit::wait_for(|| async { !permit.is_granted() }, Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(ttl).await;
    assert!(!second.permit.is_granted());

    // Slot 3's key vanishes (Redis restarted empty): nobody holds it, so its worker takes it
    // back and signs again.
    let _: () = redis::cmd("DEL")
        .arg(h.keys.wallet_slot(3))
        .query_async(&mut redis)
        .await
        .unwrap();
    let (leases, key, permit) = (
        h.leases.clone(),
        h.keys.wallet_slot(3),
        third.permit.clone(),
    );
    // Held again (only the retake can set the deleted key) and signing.
    testkit::wait_for(
        || async { leases.is_held(&key).await.unwrap_or(false) && permit.is_granted() },
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    // Released slots are free again.
    first.release(&h.leases).await;
    let again = claim(&h, 1..=3, ttl).await.unwrap();
    assert!(again.slot == 1 || again.slot == 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_tops_up_a_worker_wallet_that_runs_low() {
    // Slots 0 and 1 funded; slot 5 has nothing (not even an account on chain).
    let h = Harness::start(10, 32, 2).await.unwrap();
    let prefix = h.manifest.bech32_prefix.clone();
    let ttl = Duration::from_secs(10);
    let worker = claim(&h, 5..=5, ttl).await.unwrap();
    let address = worker.wallet.address().to_string();
    assert!(h.client.balances(&address).await.unwrap().is_empty());

    let master = claim(&h, 0..=0, ttl).await.unwrap();
    let (master_wallet, guard) = master.into_parts();
    let sender = Arc::new(
        redline_liquidator::tx_sender::TxSender::new(
            h.client.clone(),
            &h.chain,
            master_wallet,
            SendOptions::default(),
            guard.permit.clone(),
        )
        .await
        .unwrap(),
    );
    let policy = TopUpPolicy {
        fee_below: Uint128::new(1_000_000),
        fee_amount: Uint128::new(10_000_000),
        debt_below_usd: Decimal::percent(10_000),
        debt_target_usd: Decimal::percent(100_000),
        interval: Duration::from_secs(1),
    };
    let mut treasurer = Treasurer::new(
        sender,
        h.leases.clone(),
        h.keys.clone(),
        h.mnemonic.clone(),
        prefix,
        1..=8,
        policy,
        h.reader.clone(),
        h.recorder.clone(),
        "uosmo".into(),
    );
    let sent = treasurer.top_up_once().await.unwrap();
    // Slot 1 is not leased; only slot 5 is topped up.
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, address);
    let balances = h.balances(&address).await;
    let held = |denom: &str| balances.get(denom).copied().unwrap_or_default();
    // $1000 of each debt denom, plus gas money in uosmo.
    assert_eq!(held("uusdc"), Uint256::from(1_000_000_000u64));
    assert_eq!(held("uatom"), Uint256::from(100_000_000u64));
    assert_eq!(held("uosmo"), Uint256::from(2_000_000_000u64 + 10_000_000));
    assert!(held("weth-wei") > Uint256::zero());

    // Topped up: nothing more to do next round.
    assert!(treasurer.top_up_once().await.unwrap().is_empty());
    let records = h.records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::TopUp);
    assert!(
        records[0].profit_value < mars::value::Value::zero(),
        "the fee is a cost"
    );
    assert!(records[0].detail.contains(&address));

    // The worker can now send from its wallet.
    let worker_sender = redline_liquidator::tx_sender::TxSender::new(
        h.client.clone(),
        &h.chain,
        worker.wallet,
        SendOptions::default(),
        worker.permit.clone(),
    )
    .await
    .unwrap();
    assert_eq!(worker_sender.address(), address);
}

/// A master that died holding slot 0 (its lease no longer renewed): a running liquidator that
/// did not get the slot at start takes it over once the lease expires and runs the top-ups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_masters_slot_is_taken_over_by_a_running_liquidator() {
    use redline_liquidator::config::LiquidatorArgs;
    use redline_liquidator::locks::Leases;
    use redline_liquidator::Liquidator;

    let h = Harness::start(10, 32, 2).await.unwrap();
    let dead = Leases::new(h.redis.clone(), "a-killed-process".to_string());
    let held = dead
        .try_acquire(&h.keys.wallet_slot(0), Duration::from_millis(1_500))
        .await
        .unwrap();
    assert!(held.is_some(), "the dead master's lease");
    let args = LiquidatorArgs {
        workers: 1,
        max_worker_slots: 2,
        wallet_slot_ttl_ms: 1_000,
        top_up_interval_ms: 200,
        ..LiquidatorArgs::default()
    };
    let liquidator = Liquidator::new(
        h.client.clone(),
        h.chain.clone(),
        h.manifest.clone(),
        h.queue_config.clone(),
        h.redis.clone(),
        prometheus::Registry::new(),
        args.validate().unwrap(),
        h.mnemonic.clone(),
    );
    let summary = liquidator
        .run(tokio::time::sleep(Duration::from_secs(4)))
        .await
        .unwrap();
    assert!(
        summary.ran_treasurer,
        "the master slot was never taken over after its holder died"
    );
    // The slot is given back on stop: free to lease again.
    assert!(claim(&h, 0..=0, Duration::from_secs(1)).await.is_some());
}
