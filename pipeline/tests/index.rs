//! The position index against a real redis-server: round trips, atomic block updates, garbage
//! entries reported per account, snapshots, the denom table, and a bulk read figure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cosmwasm_std::{Decimal, Timestamp, Uint128};
use mars::msg::red_bank::{Collateral, Debt};
use mars::types::Market;
use redline_pipeline::index::{
    synthetic_account, write_synthetic_accounts, AccountChange, AccountPositions, BlockSnapshot,
    BlockUpdate, IndexNamespace, IndexedAccount, PositionIndex,
};
use redline_pipeline::jobs::ProtocolKind;
use redline_pipeline::redis_conn::{self, ConnectOptions, RedisConn};
use testkit::RedisServer;

async fn connect(server: &RedisServer) -> RedisConn {
    redis_conn::connect(&server.queue_config(), ConnectOptions::default())
        .await
        .unwrap()
}

fn namespace(chain: &str) -> IndexNamespace {
    IndexNamespace::new("test", chain, ProtocolKind::RedBank)
}

/// The index of `chain` on a new connection, created with `buckets` if it does not exist yet.
async fn open_index(server: &RedisServer, chain: &str, buckets: u32) -> PositionIndex {
    PositionIndex::create_or_open(connect(server).await, namespace(chain), buckets)
        .await
        .unwrap()
}

fn positions(address: &str, coll: u128, debt: u128) -> AccountPositions {
    let mut p = AccountPositions::new(address);
    p.collaterals.insert(
        "uatom".into(),
        Collateral {
            amount_scaled: Uint128::new(coll),
            enabled: true,
        },
    );
    p.collaterals.insert(
        "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2".into(),
        Collateral {
            amount_scaled: Uint128::new(coll / 2),
            enabled: false,
        },
    );
    p.debts.insert(
        "uusdc".into(),
        Debt {
            amount_scaled: Uint128::new(debt),
            uncollateralized: false,
        },
    );
    p
}

#[tokio::test]
async fn accounts_round_trip_through_buckets() {
    let server = RedisServer::start().unwrap();
    let index = open_index(&server, "a-1", 16).await;
    assert_eq!(index.buckets(), 16);
    assert_eq!(index.last_indexed_height().await.unwrap(), None);

    let mut written = Vec::new();
    for i in 0..500u128 {
        let p = positions(&format!("osmo1user{i:04}"), 1_000 + i, 500 + i);
        written.push(index.to_indexed(&p).await.unwrap());
    }
    index.put_accounts(&written).await.unwrap();
    assert_eq!(index.account_count().await.unwrap(), 500);
    let sizes = index.bucket_sizes().await.unwrap();
    assert_eq!(sizes.len(), 16);
    assert!(sizes.iter().all(|s| *s > 10), "{sizes:?}");

    let read = index.read_buckets(0..16).await.unwrap();
    assert!(read.errors.is_empty());
    assert_eq!(read.accounts.len(), 500);
    assert_eq!(read.denoms.len(), 3);
    let mut by_address: BTreeMap<_, _> = read
        .accounts
        .iter()
        .map(|a| (a.address.clone(), a.to_positions(&read.denoms).unwrap()))
        .collect();
    assert_eq!(
        by_address.remove("osmo1user0007").unwrap(),
        positions("osmo1user0007", 1_007, 507)
    );

    // A partial range reads only its buckets; the union of ranges is everything, once.
    let first = index.read_buckets(0..5).await.unwrap();
    let second = index.read_buckets(5..100).await.unwrap();
    assert_eq!(first.accounts.len() + second.accounts.len(), 500);
    assert_eq!(first.accounts.len() as u64, sizes[..5].iter().sum::<u64>());

    assert_eq!(
        index.account_positions("osmo1user0042").await.unwrap(),
        Some(positions("osmo1user0042", 1_042, 542))
    );
    assert!(index.remove_account("osmo1user0042").await.unwrap());
    assert!(!index.remove_account("osmo1user0042").await.unwrap());
    assert_eq!(index.account("osmo1user0042").await.unwrap(), None);

    // Opening again (another process) sees the same index and keeps its bucket count.
    let again = open_index(&server, "a-1", 1024).await;
    assert_eq!(again.buckets(), 16);
    assert_eq!(again.account_count().await.unwrap(), 499);
    // Another chain is another index.
    let other = open_index(&server, "b-2", 8).await;
    assert_eq!(other.account_count().await.unwrap(), 0);
}

#[tokio::test]
async fn garbage_entries_are_reported_per_account_not_fatal() {
    let server = RedisServer::start().unwrap();
    let index = open_index(&server, "g-1", 4).await;
    let good: Vec<IndexedAccount> = {
        let mut v = Vec::new();
        for i in 0..20 {
            v.push(
                index
                    .to_indexed(&positions(&format!("osmo1good{i}"), 10, 5))
                    .await
                    .unwrap(),
            );
        }
        v
    };
    index.put_accounts(&good).await.unwrap();
    index
        .put_account_raw("osmo1garbage", b"\x01\xff\xff")
        .await
        .unwrap();
    index
        .put_account_raw("osmo1future", b"\x09anything")
        .await
        .unwrap();
    // A denom id beyond the table.
    let mut bad_denom = synthetic_account(1, &[redline_pipeline::index::DenomId(99)]);
    bad_denom.address = "osmo1baddenom".into();
    index.put_accounts(&[bad_denom]).await.unwrap();

    let read = index.read_buckets(0..4).await.unwrap();
    assert_eq!(read.accounts.len(), 20);
    let mut bad: Vec<_> = read.errors.iter().map(|e| e.address.as_str()).collect();
    bad.sort();
    assert_eq!(bad, vec!["osmo1baddenom", "osmo1future", "osmo1garbage"]);
    let future = read
        .errors
        .iter()
        .find(|e| e.address == "osmo1future")
        .unwrap();
    assert!(future.reason.contains("format version 9"), "{future}");
    assert!(index.account("osmo1garbage").await.is_err());
}

#[tokio::test]
async fn apply_block_is_atomic_for_readers() {
    let server = RedisServer::start().unwrap();
    let conn = connect(&server).await;
    let ns = namespace("atomic-1");
    let index = PositionIndex::create_or_open(conn.clone(), ns.clone(), 8)
        .await
        .unwrap();
    let accounts: Vec<String> = (0..200).map(|i| format!("osmo1atomic{i:03}")).collect();

    // A reader that, in one MULTI, reads the recorded height and every account: block `h`
    // writes debt `h` into every account, so it must always see exactly the height's debt.
    let reader_ns = ns.clone();
    let reader_accounts = accounts.clone();
    let reader_index = index.clone();
    let mut reader_conn = conn.clone();
    let reader = tokio::spawn(async move {
        let mut checks = 0u32;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("HGET")
                .arg(reader_ns.meta())
                .arg("last_indexed_height");
            for a in &reader_accounts {
                pipe.cmd("HGET")
                    .arg(reader_ns.bucket(reader_index.bucket_of(a)))
                    .arg(a);
            }
            let values: Vec<Option<Vec<u8>>> = pipe.query_async(&mut reader_conn).await.unwrap();
            let Some(height) = &values[0] else { continue };
            let height: u128 = std::str::from_utf8(height).unwrap().parse().unwrap();
            for (a, value) in reader_accounts.iter().zip(&values[1..]) {
                let account =
                    IndexedAccount::decode(a.clone(), value.as_ref().expect("present")).unwrap();
                assert_eq!(account.debts[0].amount_scaled.u128(), height, "{a}");
            }
            checks += 1;
        }
        checks
    });

    let denoms = index.denom_ids(&["uatom", "uusdc"]).await.unwrap();
    for height in 1..=150u64 {
        let changes = accounts
            .iter()
            .map(|a| {
                let mut account = synthetic_account(height, &denoms);
                account.address = a.clone();
                account.debts[0].amount_scaled = Uint128::new(height as u128);
                AccountChange::Put(account)
            })
            .collect();
        index
            .apply_block(&BlockUpdate {
                height,
                time: Some(Timestamp::from_seconds(height)),
                accounts: changes,
                markets: vec![Market {
                    denom: "uatom".into(),
                    indexes_last_updated: height,
                    ..Market::default()
                }],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let checks = reader.await.unwrap();
    assert!(checks > 10, "the reader ran {checks} times");
    let meta = index.meta().await.unwrap();
    assert_eq!(meta.last_indexed_height, Some(150));
    assert_eq!(meta.last_indexed_time, Some(Timestamp::from_seconds(150)));
    assert_eq!(index.markets().await.unwrap()[0].indexes_last_updated, 150);

    // Removals in a block.
    index
        .apply_block(&BlockUpdate {
            height: 151,
            accounts: vec![AccountChange::Remove(accounts[0].clone())],
            reconciled: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(index.account_count().await.unwrap(), 199);
    let meta = index.meta().await.unwrap();
    assert_eq!(meta.last_reconciled_height, Some(151));
    // Time not given: the previous block time stays.
    assert_eq!(meta.last_indexed_time, Some(Timestamp::from_seconds(150)));
}

#[tokio::test]
async fn snapshots_params_thf_and_destroy() {
    let server = RedisServer::start().unwrap();
    let index = open_index(&server, "s-1", 4).await;
    assert_eq!(index.thf().await.unwrap(), None);
    index.set_thf(Decimal::percent(105)).await.unwrap();
    assert_eq!(index.thf().await.unwrap(), Some(Decimal::percent(105)));
    let snapshot = BlockSnapshot {
        chain_id: "s-1".into(),
        protocol: ProtocolKind::RedBank,
        height: 42,
        time: Timestamp::from_seconds(1_700_000_000),
        prices: [("uatom".to_string(), Decimal::percent(1000))].into(),
        liquidation_prices: [("uatom".to_string(), Decimal::percent(990))].into(),
        markets: vec![Market {
            denom: "uatom".into(),
            ..Market::default()
        }],
        params: vec![],
        target_health_factor: Decimal::percent(105),
        accounts: 3,
    };
    index
        .write_block_snapshot(&snapshot, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(index.block_snapshot(42).await.unwrap(), Some(snapshot));
    assert_eq!(index.block_snapshot(43).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(index.block_snapshot(42).await.unwrap(), None, "expired");

    index.destroy().await.unwrap();
    assert!(
        PositionIndex::open(connect(&server).await, namespace("s-1"))
            .await
            .is_err()
    );
}

/// Not a benchmark (debug build, shared machine): a sanity figure for the bulk path the health
/// checker uses, printed with `--nocapture`.
#[tokio::test]
async fn bulk_write_and_read_of_synthetic_accounts() {
    let server = RedisServer::start().unwrap();
    let index = open_index(&server, "bulk-1", 64).await;
    let count = 50_000;
    let started = Instant::now();
    let ids = write_synthetic_accounts(&index, &["uatom", "uosmo", "uusdc", "weth-wei"], 0, count)
        .await
        .unwrap();
    let wrote = started.elapsed();
    let started = Instant::now();
    let read = index.read_buckets(0..64).await.unwrap();
    let took = started.elapsed();
    assert_eq!(read.accounts.len() as u64, count);
    assert!(read.errors.is_empty());
    let mut sample = read
        .accounts
        .iter()
        .find(|a| a.address == synthetic_account(777, &ids).address)
        .cloned()
        .unwrap();
    sample.collaterals.sort_by_key(|c| c.denom);
    let mut expected = synthetic_account(777, &ids);
    expected.collaterals.sort_by_key(|c| c.denom);
    assert_eq!(sample, expected);
    println!(
        "{count} synthetic accounts: write {:.0} ms, read+decode {:.0} ms ({:.0} accounts/s)",
        wrote.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3,
        count as f64 / took.as_secs_f64()
    );
}
