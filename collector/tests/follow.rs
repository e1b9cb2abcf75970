//! Following blocks: signed deposit, borrow, collateral status, repay and liquidate
//! transactions made after start show up in the index within the next blocks; each published
//! block gets a snapshot and jobs covering every bucket once.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cosmwasm_std::Decimal;
use mars::msg::red_bank::ExecuteMsg;
use redline_chain::ChainClient;
use redline_pipeline::jobs::HealthCheckJob;
use redline_pipeline::queue::{Queue, QueueConfig, RedisStreamQueue};
use support::{
    borrow, coin, deposit, red_bank_tx, repay_on_behalf, shutdown, start_devnet, start_following,
    test_config, Devnet, Running,
};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

/// The index agrees with the chain about `user` (absent when it has no debt).
async fn wait_for_index_to_match(devnet: &Devnet, running: &Running, user: &str) {
    let client = devnet.client.clone();
    let red_bank = devnet.manifest.contracts.red_bank.clone();
    eventually(
        &format!("the index to match the chain for {user}"),
        WAIT,
        || {
            let client = client.clone();
            let red_bank = red_bank.clone();
            async move {
                let chain = testkit::devnet::account_positions(&client, &red_bank, user)
                    .await
                    .unwrap();
                let indexed = running.positions(user).await;
                let expected = chain.has_debt().then_some(chain);
                (indexed == expected).then_some(())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_after_start_reach_the_index() {
    let devnet = start_devnet(300, 11, 10_000).await;
    let (harness, running) = start_following(&devnet, test_config(32)).await;
    running.discovered(WAIT).await;
    let before = running.collector.index().account_count().await.unwrap();

    let borrower = devnet.liquidator(2);
    let borrower_addr = borrower.address().to_string();
    let liquidator = devnet.liquidator(1);
    assert_eq!(running.account(&borrower_addr).await, None);

    // Deposit alone: no debt, not indexed.
    deposit(&devnet, &borrower, coin(10_000_000, "uatom")).await;
    // Borrow: indexed.
    let borrowed = borrow(&devnet, &borrower, "uusdc", 65_000_000).await;
    wait_for_index_to_match(&devnet, &running, &borrower_addr).await;
    let indexed = running
        .positions(&borrower_addr)
        .await
        .expect("a borrower is indexed");
    assert!(indexed.collaterals.contains_key("uatom"));
    assert!(indexed.debts.contains_key("uusdc"));
    assert!(running.collector.last_indexed().await.unwrap() >= borrowed.height);
    assert_eq!(
        running.collector.index().account_count().await.unwrap(),
        before + 1
    );

    // A second collateral, disabled: the flag reaches the index.
    deposit(&devnet, &borrower, coin(1_000_000, "uosmo")).await;
    red_bank_tx(
        &devnet,
        &borrower,
        ExecuteMsg::UpdateAssetCollateralStatus {
            denom: "uosmo".into(),
            enable: false,
        },
        &[],
    )
    .await;
    wait_for_index_to_match(&devnet, &running, &borrower_addr).await;
    let indexed = running.positions(&borrower_addr).await.unwrap();
    assert!(!indexed.collaterals["uosmo"].enabled);

    // Liquidation: ATOM falls, a liquidator repays part of the debt.
    let moved_at = devnet
        .set_prices([("uatom".to_string(), Decimal::percent(750))].into())
        .await
        .unwrap();
    devnet.wait_for_height(moved_at).await.unwrap();
    let liquidated = red_bank_tx(
        &devnet,
        &liquidator,
        ExecuteMsg::Liquidate {
            user: borrower_addr.clone(),
            collateral_denom: "uatom".into(),
            recipient: None,
        },
        &[coin(30_000_000, "uusdc")],
    )
    .await;
    assert!(liquidated
        .events_of("wasm")
        .any(|e| e.attribute("action") == Some("liquidate")));
    wait_for_index_to_match(&devnet, &running, &borrower_addr).await;
    let after = running.positions(&borrower_addr).await.unwrap();
    assert!(after.debts["uusdc"].amount_scaled < indexed.debts["uusdc"].amount_scaled);
    assert!(after.collaterals["uatom"].amount_scaled < indexed.collaterals["uatom"].amount_scaled);
    assert!(
        running
            .collector
            .metrics()
            .events_applied
            .with_label_values(&["liquidate"])
            .get()
            >= 1
    );

    // Repay everything on behalf of the borrower (by another wallet): the account leaves the
    // index.
    repay_on_behalf(
        &devnet,
        &liquidator,
        &borrower_addr,
        coin(40_000_000, "uusdc"),
    )
    .await;
    wait_for_index_to_match(&devnet, &running, &borrower_addr).await;
    assert_eq!(running.account(&borrower_addr).await, None);

    // Snapshots and jobs of the latest published block.
    let height = running.collector.last_indexed().await.unwrap();
    let snapshot = eventually("a snapshot of a recent block", WAIT, || async {
        let last = running.collector.last_indexed().await?;
        running
            .collector
            .index()
            .block_snapshot(last)
            .await
            .unwrap()
    })
    .await;
    assert!(snapshot.height >= height);
    assert_eq!(
        snapshot.prices.get("uatom"),
        Some(&Decimal::percent(750)),
        "the snapshot carries the moved price"
    );
    assert_eq!(snapshot.markets.len(), 4);
    assert_eq!(snapshot.target_health_factor, Decimal::percent(105));

    running.stop().await;
    check_jobs(&harness.queue_config(), 32).await;
    devnet.shutdown().await;
}

/// Every block's jobs cover buckets `0..buckets` exactly once and carry the block height.
async fn check_jobs(config: &QueueConfig, buckets: u32) {
    let queue: RedisStreamQueue<HealthCheckJob> =
        RedisStreamQueue::connect(config, redline_pipeline::jobs::HEALTH_CHECK_QUEUE)
            .await
            .unwrap();
    let mut by_height: BTreeMap<u64, Vec<HealthCheckJob>> = BTreeMap::new();
    loop {
        let deliveries = queue.fetch(1_000, Duration::from_millis(50)).await.unwrap();
        if deliveries.is_empty() {
            break;
        }
        for delivery in &deliveries {
            by_height
                .entry(delivery.job.height)
                .or_default()
                .push(delivery.job.clone());
        }
        queue.ack_many(&deliveries).await.unwrap();
    }
    assert!(by_height.len() >= 5, "jobs for {} blocks", by_height.len());
    for (height, mut jobs) in by_height {
        jobs.sort_by_key(|j| j.bucket_start);
        let mut next = 0;
        for job in &jobs {
            assert_eq!(job.height, height);
            assert_eq!(job.bucket_start, next, "block {height}: {jobs:?}");
            assert!(job.bucket_end > job.bucket_start);
            next = job.bucket_end;
        }
        assert_eq!(next, buckets, "block {height}: {jobs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoint_and_metrics_show_progress() {
    let devnet = start_devnet(50, 3, 10_000).await;
    let (harness, running) = start_following(&devnet, test_config(8)).await;
    let client = devnet.client.clone();
    eventually("a few blocks indexed", WAIT, || async {
        let last = running.collector.last_indexed().await?;
        let tip = client.latest_height().await.ok()?;
        (last + 1 >= tip && running.collector.metrics().blocks_indexed.get() >= 3).then_some(())
    })
    .await;
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&harness.registry.gather())
        .unwrap();
    for name in [
        "collector_accounts_indexed",
        "collector_blocks_indexed_total",
        "collector_last_indexed_height",
        "collector_index_lag_blocks",
        "collector_jobs_enqueued_total",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let health = harness.health.read().await.clone();
    assert!(
        health["last_indexed_height"].as_u64().unwrap() >= 3,
        "{health}"
    );
    assert!(health["last_block_age_secs"].as_f64().is_some(), "{health}");
    assert!(health["accounts"].as_u64().unwrap() > 0, "{health}");
    shutdown(running, devnet).await;
}
