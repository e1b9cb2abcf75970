//! Reconciliation: deliberately corrupted index entries (wrong amounts, a missing debtor, an
//! extra account, garbage bytes) are reported by kind and repaired, while blocks keep being
//! indexed; garbage never stops the collector. The periodic schedule runs it by itself.

mod support;

use std::time::Duration;

use cosmwasm_std::Uint128;
use redline_chain::ChainClient;
use redline_pipeline::index::synthetic_account;
use support::{index_contents, shutdown, smart_walk, start_devnet, start_following, test_config};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_reports_and_repairs_drift() {
    let devnet = start_devnet(400, 31, 10_000).await;
    let (_harness, running) = start_following(&devnet, test_config(16)).await;
    running.discovered(WAIT).await;
    let index = running.collector.index().clone();
    let truth = smart_walk(&devnet, &devnet.seeded_users()).await;
    let debtors: Vec<&String> = truth.keys().collect();

    // Stale: one debt amount off by one.
    let stale = debtors[0].clone();
    let mut account = index.account(&stale).await.unwrap().unwrap();
    account.debts[0].amount_scaled += Uint128::one();
    index.put_accounts(&[account]).await.unwrap();
    // Missing: a debtor removed.
    let missing = debtors[1].clone();
    assert!(index.remove_account(&missing).await.unwrap());
    // Undecodable: a debtor's bytes replaced by garbage, and garbage under a non-debtor.
    let garbled = debtors[2].clone();
    index
        .put_account_raw(&garbled, b"\x01\x05garbage")
        .await
        .unwrap();
    index
        .put_account_raw("osmo1notadebtorgarbage", b"\xff\xff")
        .await
        .unwrap();
    // Extra: an account the chain does not know.
    let ids = index.denom_ids(&["uatom", "uusdc"]).await.unwrap();
    let mut fake = synthetic_account(42, &ids);
    fake.address = "osmo1fakeaccountnotonchain".into();
    index.put_accounts(&[fake]).await.unwrap();

    // The collector keeps indexing and publishing with garbage in its buckets.
    let before = running.collector.last_indexed().await.unwrap();
    eventually("blocks indexed despite garbage", WAIT, || async {
        (running.collector.last_indexed().await? > before + 2).then_some(())
    })
    .await;

    let report = running.collector.reconcile().await.unwrap();
    assert_eq!(report.stale, vec![stale.clone()]);
    assert_eq!(report.missing, vec![missing.clone()]);
    let mut undecodable = report.undecodable.clone();
    undecodable.sort();
    assert_eq!(
        undecodable,
        vec![garbled.clone(), "osmo1notadebtorgarbage".to_string()]
    );
    assert_eq!(report.extra, vec!["osmo1fakeaccountnotonchain".to_string()]);
    assert_eq!(report.scanned_accounts, truth.len());
    let metrics = running.collector.metrics();
    for (kind, count) in [
        ("stale", 1),
        ("missing", 1),
        ("extra", 1),
        ("undecodable", 2),
    ] {
        assert_eq!(
            metrics.drift_repaired.with_label_values(&[kind]).get(),
            count,
            "{kind}"
        );
    }
    assert!(
        metrics
            .decode_errors
            .with_label_values(&["index_entry"])
            .get()
            >= 2
    );

    let indexed = index_contents(&running.collector).await;
    assert_eq!(indexed, truth, "the index equals the chain after repair");
    // A second pass finds nothing.
    let again = running.collector.reconcile().await.unwrap();
    assert_eq!(again.drift(), 0, "{again:?}");
    shutdown(running, devnet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_reconciliation_runs_beside_block_following() {
    let devnet = start_devnet(200, 32, 10_000).await;
    let mut config = test_config(8);
    config.reconcile.reconcile_every_blocks = 5;
    let (_harness, running) = start_following(&devnet, config).await;
    running.discovered(WAIT).await;
    let index = running.collector.index().clone();
    let truth = smart_walk(&devnet, &devnet.seeded_users()).await;
    let victim = truth.keys().next().unwrap().clone();
    index.remove_account(&victim).await.unwrap();

    eventually(
        "the periodic reconciliation to restore the account",
        WAIT,
        || async { index.account(&victim).await.unwrap().map(|_| ()) },
    )
    .await;
    assert!(running.collector.metrics().reconciliations.get() >= 1);
    let meta = index.meta().await.unwrap();
    assert!(meta.last_reconciled_height.unwrap() > 0);
    let tip = devnet.client.latest_height().await.unwrap();
    assert!(meta.last_indexed_height.unwrap() + 5 >= tip);
    shutdown(running, devnet).await;
}
