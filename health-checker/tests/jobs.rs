//! The worker's handling of jobs and bad input, on a hand-made index in a real Redis: bad
//! accounts are counted and skipped (never reported healthy), stale and snapshot-less jobs are
//! acknowledged as missed, unprocessable jobs are dead-lettered, and the job of a worker that
//! died is reclaimed and processed once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::Decimal;
use redline_chain::TendermintClient;
use redline_health_checker::metrics::outcome;
use redline_health_checker::{HealthChecker, HealthSource, JobOutcome, SkipReason};
use redline_pipeline::index::{write_synthetic_accounts, DenomId, IndexedAccount, PositionIndex};
use redline_pipeline::jobs::{AccountKey, HealthCheckJob, ProtocolKind, HEALTH_CHECK_QUEUE};
use redline_pipeline::queue::{Queue, QueueConfig, RedisStreamQueue};
use support::*;
use testkit::{wait_for, RedisServer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const CHAIN: &str = "devnet-1";

const GOOD_PRICES: [(&str, &str); 5] = [
    ("uatom", "10"),
    ("uusdc", "1"),
    ("uosmo", "0.5"),
    ("ufree", "2"),
    ("unoparams", "1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_accounts_are_counted_and_skipped_never_healthy() {
    let redis = RedisServer::start().unwrap();
    let index = create_index(&redis, CHAIN).await;
    let ids = index
        .denom_ids(&["uatom", "uusdc", "uosmo", "ufree", "ughost", "unoparams"])
        .await
        .unwrap();
    let [atom, usdc, osmo, free, ghost, noparams] = ids[..] else {
        unreachable!()
    };
    let m = 1_000_000u128;
    index
        .put_accounts(&[
            // HF = 10,000·10·0.89 / 95,000 ≈ 0.94: liquidatable.
            account(
                "osmo1liquidatable",
                &[(atom, 10_000 * m, true)],
                &[(usdc, 95_000 * m)],
            ),
            // HF ≈ 1.2: healthy.
            account(
                "osmo1healthy",
                &[(atom, 10_000 * m, true)],
                &[(usdc, 74_000 * m)],
            ),
            // Near at first (HF ≈ 1.02), then its collateral loses its price.
            account(
                "osmo1osmo",
                &[(osmo, 200_000 * m, true)],
                &[(usdc, 87_000 * m)],
            ),
            account(
                "osmo1zero",
                &[(atom, 1_000 * m, true)],
                &[(free, 1_000 * m)],
            ),
            account(
                "osmo1ghost",
                &[(ghost, 1_000 * m, true)],
                &[(usdc, 1_000 * m)],
            ),
            // Disabled collateral without params still breaks the account, as on chain.
            account(
                "osmo1noparams",
                &[(atom, 1_000 * m, true), (noparams, 5 * m, false)],
                &[(usdc, 1_000 * m)],
            ),
            account(
                "osmo1unknownid",
                &[(DenomId(99), 1_000 * m, true)],
                &[(usdc, 1_000 * m)],
            ),
        ])
        .await
        .unwrap();
    index
        .put_account_raw("osmo1garbage", b"\x07not an account")
        .await
        .unwrap();

    let checker = checker(&redis, HealthSource::Offchain, None, 1_000).await;

    // Block 10: every price there; osmo1osmo is near liquidation.
    let all_markets = ["uatom", "uusdc", "uosmo", "ufree", "unoparams"];
    let all_params = ["uatom", "uusdc", "uosmo", "ufree"];
    let snapshot = synthetic_snapshot(CHAIN, 10, &GOOD_PRICES, &all_markets, &all_params);
    index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    let first = checker.process(&whole_index_job(CHAIN, 10)).await.unwrap();
    assert_eq!(first.outcome, JobOutcome::Done);
    // liquidatable, healthy, osmo, zero (ufree priced 2 here).
    assert_eq!(first.checked, 4, "{first:?}");
    assert_eq!(first.liquidatable, 1);
    assert_eq!(first.skipped, 4); // ghost, noparams, unknown id, garbage
    assert_eq!(
        near_accounts(&checker, CHAIN, 100).await,
        ["osmo1liquidatable", "osmo1osmo"]
    );

    // Block 11: uosmo has no price and ufree is priced at zero.
    let mut prices = GOOD_PRICES.to_vec();
    prices.retain(|(d, _)| *d != "uosmo");
    prices.iter_mut().find(|(d, _)| *d == "ufree").unwrap().1 = "0";
    let snapshot = synthetic_snapshot(CHAIN, 11, &prices, &all_markets, &all_params);
    index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    let second = checker.process(&whole_index_job(CHAIN, 11)).await.unwrap();
    assert_eq!(second.checked, 2);
    assert_eq!(second.skipped, 6);
    let metrics = checker.metrics();
    assert_eq!(metrics.skipped(SkipReason::MissingPrice), 1);
    assert_eq!(metrics.skipped(SkipReason::ZeroPrice), 1);
    assert_eq!(metrics.skipped(SkipReason::UnknownDenom), 2);
    assert_eq!(metrics.skipped(SkipReason::MissingParams), 2);
    assert_eq!(metrics.skipped(SkipReason::Undecodable), 4);
    assert_eq!(
        metrics.jobs_with(outcome::DONE),
        0,
        "only `handle` counts jobs"
    );
    // The account that could not be checked keeps its place in the near set.
    assert_eq!(
        near_accounts(&checker, CHAIN, 100).await,
        ["osmo1liquidatable", "osmo1osmo"]
    );
    // Only the liquidatable account is queued; no skipped account produced a verdict.
    let queued = queued_candidates(&checker, 10).await;
    assert_eq!(queued.len(), 1);
    let candidate = queued[0].clone();
    assert_eq!(
        candidate.account,
        AccountKey::Address("osmo1liquidatable".into())
    );
    assert_eq!(candidate.height, 11);
    let plan = candidate.plan.unwrap();
    assert_eq!(
        (plan.debt_denom.as_str(), plan.collateral_denom.as_str()),
        ("uusdc", "uatom")
    );
    assert!(plan.expected_profit_usd > Decimal::zero());
}

async fn synthetic_index(redis: &RedisServer, accounts: u64, height: u64) -> PositionIndex {
    let index = create_index(redis, CHAIN).await;
    write_synthetic_accounts(&index, &["uatom", "uusdc", "uosmo"], 0, accounts)
        .await
        .unwrap();
    // Equal prices: HF = 0.89 · collateral / debt, debt 30–90% of collateral.
    let snapshot = synthetic_snapshot(
        CHAIN,
        height,
        &[("uatom", "1"), ("uusdc", "1"), ("uosmo", "1")],
        &["uatom", "uusdc", "uosmo"],
        &["uatom", "uusdc", "uosmo"],
    );
    index_snapshot(&index, &snapshot).await;
    index
}

fn fast_queue(redis: &RedisServer, consumer: &str) -> QueueConfig {
    QueueConfig {
        queue_consumer: Some(consumer.into()),
        queue_visibility_timeout_ms: 400,
        queue_block_ms: 50,
        ..QueueConfig::with_url(redis.url())
    }
}

/// The health-check queue as `consumer` sees it.
async fn job_queue(redis: &RedisServer, consumer: &str) -> RedisStreamQueue<HealthCheckJob> {
    RedisStreamQueue::connect(&fast_queue(redis, consumer), HEALTH_CHECK_QUEUE)
        .await
        .unwrap()
}

/// An off-chain health checker running in a task as the service runs it, taking jobs from the
/// health-check queue until it is stopped.
struct LiveChecker {
    checker: Arc<HealthChecker<TendermintClient>>,
    stop: watch::Sender<bool>,
    running: JoinHandle<anyhow::Result<()>>,
}

impl LiveChecker {
    async fn start(redis: &RedisServer) -> Self {
        let checker = checker(redis, HealthSource::Offchain, None, 1).await;
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn({
            let checker = checker.clone();
            let config = fast_queue(redis, "live");
            async move { checker.run(&config, stopped).await }
        });
        LiveChecker {
            checker,
            stop,
            running,
        }
    }

    /// Stops the checker and checks that it stopped without an error.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.running.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_job_is_reclaimed_and_processed_once() {
    let redis = RedisServer::start().unwrap();
    let index = synthetic_index(&redis, 5_000, 20).await;
    let producer = job_queue(&redis, "collector").await;
    producer.enqueue(&whole_index_job(CHAIN, 20)).await.unwrap();

    // A worker takes the job and dies without acknowledging it.
    {
        let dying = job_queue(&redis, "dying").await;
        let taken = dying.fetch(1, Duration::from_millis(500)).await.unwrap();
        assert_eq!(taken.len(), 1);
    }

    let live = LiveChecker::start(&redis).await;
    let metrics = live.checker.metrics().clone();
    wait_for(
        || {
            let metrics = metrics.clone();
            async move { metrics.jobs_with(outcome::DONE) == 1 }
        },
        Duration::from_secs(30),
    )
    .await
    .expect("the reclaimed job is processed");
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(metrics.jobs_with(outcome::DONE), 1);
    let checked = metrics
        .accounts_checked
        .with_label_values(&["offchain"])
        .get();
    assert_eq!(checked, 5_000);
    let backlog = producer.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.lag), (0, 0));
    let found = metrics.liquidatable_found.get();
    assert!(found > 0);
    assert_eq!(
        live.checker
            .outputs()
            .liquidation_queue()
            .lag()
            .await
            .unwrap(),
        found
    );
    live.stop().await;
    drop(index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_snapshotless_and_unprocessable_jobs() {
    let redis = RedisServer::start().unwrap();
    let _index = synthetic_index(&redis, 100, 30).await;
    let producer = job_queue(&redis, "collector").await;
    // A credit-account job whose credit snapshot was never written.
    let rover = HealthCheckJob {
        protocol: ProtocolKind::Rover,
        ..whole_index_job(CHAIN, 30)
    };
    let reversed = HealthCheckJob {
        bucket_start: 5,
        bucket_end: 2,
        ..whole_index_job(CHAIN, 30)
    };
    producer
        .enqueue_batch(&[
            // Two blocks behind the newest (30): skipped.
            whole_index_job(CHAIN, 28),
            // Current, but its snapshot was never written.
            whole_index_job(CHAIN, 31),
            rover,
            reversed,
            whole_index_job(CHAIN, 30),
        ])
        .await
        .unwrap();
    let live = LiveChecker::start(&redis).await;
    let metrics = live.checker.metrics().clone();
    wait_for(
        || {
            let metrics = metrics.clone();
            async move {
                metrics.jobs_with(outcome::DONE)
                    + metrics.jobs_with(outcome::MISSED_STALE)
                    + metrics.jobs_with(outcome::MISSED_NO_SNAPSHOT)
                    + metrics.jobs_with(outcome::DEAD_LETTERED)
                    == 5
            }
        },
        Duration::from_secs(30),
    )
    .await
    .expect("every job is settled");
    assert_eq!(metrics.jobs_with(outcome::DONE), 1);
    assert_eq!(metrics.jobs_with(outcome::MISSED_STALE), 1);
    assert_eq!(metrics.jobs_with(outcome::MISSED_NO_SNAPSHOT), 2);
    assert_eq!(metrics.jobs_with(outcome::DEAD_LETTERED), 1);
    let backlog = producer.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.lag, backlog.dead_letters),
        (0, 0, 1)
    );
    let dead = producer.dead_letters(10).await.unwrap();
    assert!(dead[0].reason.contains("reversed"), "{}", dead[0].reason);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bucket_reads_equal_one_read() {
    let redis = RedisServer::start().unwrap();
    let index = synthetic_index(&redis, 3_000, 5).await;
    index
        .put_account_raw("osmo1garbage", b"\x07not an account")
        .await
        .unwrap();
    let whole = index.read_buckets(0..BUCKETS).await.unwrap();
    let split = redline_health_checker::worker::read_buckets_concurrently(&index, 0..BUCKETS)
        .await
        .unwrap();
    let names = |accounts: &[IndexedAccount]| {
        let mut names: Vec<String> = accounts.iter().map(|a| a.address.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(split.accounts.len(), 3_000);
    assert_eq!(names(&split.accounts), names(&whole.accounts));
    assert_eq!(split.errors, whole.errors);
    assert_eq!(split.denoms, whole.denoms);
    let part = redline_health_checker::worker::read_buckets_concurrently(&index, 3..29)
        .await
        .unwrap();
    assert_eq!(
        names(&part.accounts),
        names(&index.read_buckets(3..29).await.unwrap().accounts)
    );
}
