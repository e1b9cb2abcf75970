//! Discovery against a devnet scenario: the index holds exactly the debtors a smart-query walk
//! of every seeded account finds, with the same positions, plus markets, params and THF.

mod support;

use std::time::{Duration, Instant};

use redline_chain::ChainClient;
use support::{
    assert_same_accounts, index_contents, smart_walk, start_devnet, test_config, Harness,
};
use testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_exactly_the_debtors() {
    support::init_logs();
    let accounts: usize = std::env::var("DISCOVERY_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let started = Instant::now();
    let devnet = start_devnet(accounts, 7, 10_000).await;
    eprintln!(
        "devnet with {accounts} accounts up in {:?}",
        started.elapsed()
    );
    let mut harness = Harness::new();
    let collector = harness.collector(&devnet, test_config(64)).await;
    let client = devnet.client.clone();

    let tip = eventually("the first block", Duration::from_secs(10), || async {
        client.latest_height().await.ok().filter(|h| *h > 1)
    })
    .await;
    let started = Instant::now();
    collector.catch_up_to(tip).await.unwrap();
    let discovery = started.elapsed();
    eprintln!("discovery of {accounts} accounts (debug build): {discovery:?}");
    let indexed_at = collector.last_indexed().await.unwrap();
    assert!(indexed_at >= tip);

    let indexed = index_contents(&collector).await;
    let walked = smart_walk(&devnet, &devnet.seeded_users()).await;
    assert!(
        walked.len() > accounts / 2,
        "the scenario seeds mostly borrowers: {} of {accounts}",
        walked.len()
    );
    // No block moved a position meanwhile (nobody sends transactions), so both views agree.
    assert_same_accounts(&indexed, &walked);

    let index = collector.index();
    let markets = index.markets().await.unwrap();
    assert_eq!(
        markets.iter().map(|m| m.denom.as_str()).collect::<Vec<_>>(),
        vec!["uatom", "uosmo", "uusdc", "weth-wei"]
    );
    assert_eq!(index.params().await.unwrap().len(), 4);
    assert_eq!(index.thf().await.unwrap(), Some("1.05".parse().unwrap()));
    let meta = index.meta().await.unwrap();
    assert_eq!(meta.last_reconciled_height, meta.last_indexed_height);
    assert_eq!(
        collector.metrics().accounts_indexed.get() as usize,
        walked.len()
    );
    assert_eq!(collector.metrics().full_rescans.get(), 1);
    // The tip block got its snapshot.
    let snapshot = index
        .block_snapshot(indexed_at)
        .await
        .unwrap()
        .expect("snapshot of the last indexed block");
    assert_eq!(snapshot.prices.len(), 4);
    assert_eq!(snapshot.liquidation_prices.len(), 4);
    assert_eq!(snapshot.accounts as usize, walked.len());
    assert!(discovery < Duration::from_secs(300));
    devnet.shutdown().await;
}
