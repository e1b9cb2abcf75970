//! Shared pieces of the health checker's tests: a devnet running the default scenario in this
//! process, a throwaway Redis, the index filled from the chain's own answers, block snapshots
//! read from the chain, and a health checker wired to all of them.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::Uint128;
use futures::stream::{self, StreamExt};
use redline_chain::TendermintClient;
use redline_health_checker::metrics::Metrics;
use redline_health_checker::onchain::OnchainConfig;
use redline_health_checker::{
    HealthChecker, HealthSource, OnchainSource, OutputConfig, Outputs, ProfitConfig, WorkerConfig,
};
use redline_pipeline::index::{
    AccountPositions, BlockSnapshot, CollateralEntry, DebtEntry, DenomId, IndexArgs,
    IndexedAccount, PositionIndex,
};
use redline_pipeline::jobs::{HealthCheckJob, LiquidationCandidate, ProtocolKind};
use redline_pipeline::queue::QueueConfig;
use redline_pipeline::redis_conn::{ConnectOptions, RedisConn};
pub use testkit::devnet::Devnet;
use testkit::fixtures;
use testkit::RedisServer;

pub const BUCKETS: u32 = 32;
/// How long the tests keep a block snapshot in Redis: longer than any test runs.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(600);

/// A devnet with the default scenario and 2 liquidator wallets.
pub async fn start_devnet(accounts: usize, seed: u64, block_time: Duration) -> Devnet {
    Devnet::scenario(accounts, seed)
        .liquidator_wallets(2)
        .block_time(block_time)
        .start()
        .await
        .expect("the devnet starts")
}

/// Fills `index` with every borrower that has debt, read from the chain.
pub async fn fill_index(devnet: &Devnet, index: &PositionIndex) -> usize {
    let positions: Vec<AccountPositions> = stream::iter(devnet.borrowers.clone())
        .map(|account| async move { devnet.account_positions(&account).await.unwrap() })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut accounts: Vec<IndexedAccount> = Vec::new();
    for p in positions.iter().filter(|p| p.has_debt()) {
        accounts.push(index.to_indexed(p).await.unwrap());
    }
    index.put_accounts(&accounts).await.unwrap();
    accounts.len()
}

pub async fn redis_conn(server: &RedisServer) -> RedisConn {
    redline_pipeline::redis_conn::connect(&server.queue_config(), ConnectOptions::default())
        .await
        .unwrap()
}

pub fn queue_config(server: &RedisServer, consumer: &str) -> QueueConfig {
    QueueConfig {
        queue_consumer: Some(consumer.into()),
        queue_visibility_timeout_ms: 2_000,
        queue_block_ms: 100,
        ..QueueConfig::with_url(server.url())
    }
}

pub async fn create_index(server: &RedisServer, chain_id: &str) -> PositionIndex {
    let conn = redis_conn(server).await;
    PositionIndex::create_or_open(
        conn,
        IndexArgs::default().namespace(chain_id, ProtocolKind::RedBank),
        BUCKETS,
    )
    .await
    .unwrap()
}

/// Writes `snapshot` to `index` and marks its block the last indexed, as the collector does.
pub async fn index_snapshot(index: &PositionIndex, snapshot: &BlockSnapshot) {
    index
        .write_block_snapshot(snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    index
        .set_last_indexed(snapshot.height, Some(snapshot.time))
        .await
        .unwrap();
}

/// An indexed account: `collaterals` as (denom, scaled amount, enabled), `debts` as (denom,
/// scaled amount), none of them uncollateralized.
pub fn account(
    address: &str,
    collaterals: &[(DenomId, u128, bool)],
    debts: &[(DenomId, u128)],
) -> IndexedAccount {
    IndexedAccount {
        address: address.into(),
        collaterals: collaterals
            .iter()
            .map(|&(denom, amount, enabled)| CollateralEntry {
                denom,
                amount_scaled: Uint128::new(amount),
                enabled,
            })
            .collect(),
        debts: debts
            .iter()
            .map(|&(denom, amount)| DebtEntry {
                denom,
                amount_scaled: Uint128::new(amount),
                uncollateralized: false,
            })
            .collect(),
    }
}

/// A health checker on `server`, with the given source (on-chain needs `devnet`).
pub async fn checker(
    server: &RedisServer,
    source: HealthSource,
    devnet: Option<&Devnet>,
    max_job_age_blocks: u64,
) -> Arc<HealthChecker<TendermintClient>> {
    let queue = queue_config(server, "checker");
    let outputs = Outputs::connect(&queue, &OutputConfig::default())
        .await
        .unwrap();
    let onchain = devnet.map(|d| OnchainSource {
        client: d.client.clone(),
        red_bank: d.red_bank().to_string(),
        config: OnchainConfig {
            onchain_concurrency: 16,
        },
    });
    Arc::new(
        HealthChecker::new(
            WorkerConfig {
                health_source: source,
                workers: Some(2),
                compute_threads: Some(2),
                max_job_age_blocks,
                snapshot_cache_blocks: 4,
            },
            ProfitConfig::default(),
            IndexArgs::default(),
            redis_conn(server).await,
            outputs,
            Metrics::unregistered(),
            onchain,
        )
        .unwrap(),
    )
}

/// The first `max` candidates waiting in `checker`'s liquidation queue, highest priority first.
pub async fn queued_candidates(
    checker: &HealthChecker<TendermintClient>,
    max: usize,
) -> Vec<LiquidationCandidate> {
    checker
        .outputs()
        .liquidation_queue()
        .peek(max)
        .await
        .unwrap()
        .into_iter()
        .map(|waiting| waiting.job.expect("a readable candidate"))
        .collect()
}

/// The first `max` accounts of `checker`'s near-liquidation set of the Red Bank on `chain_id`,
/// lowest health factor first.
pub async fn near_accounts(
    checker: &HealthChecker<TendermintClient>,
    chain_id: &str,
    max: usize,
) -> Vec<String> {
    checker
        .outputs()
        .near_liquidation(chain_id, ProtocolKind::RedBank, max)
        .await
        .unwrap()
        .into_iter()
        .map(|(account, _)| account)
        .collect()
}

/// One job over every bucket at `height`.
pub fn whole_index_job(chain_id: &str, height: u64) -> HealthCheckJob {
    HealthCheckJob {
        chain_id: chain_id.into(),
        protocol: ProtocolKind::RedBank,
        height,
        bucket_start: 0,
        bucket_end: BUCKETS,
        accounts: 0,
    }
}

/// A hand-made snapshot: `prices` (denom, price), markets and params for `markets`.
pub fn synthetic_snapshot(
    chain_id: &str,
    height: u64,
    prices: &[(&str, &str)],
    markets: &[&str],
    params: &[&str],
) -> BlockSnapshot {
    let time = 1_700_000_000u64 + height * 6;
    BlockSnapshot {
        prices: fixtures::prices(prices),
        markets: markets
            .iter()
            .map(|d| fixtures::market(d, time - 86_400))
            .collect(),
        params: params
            .iter()
            .map(|d| fixtures::asset_params(d, "0.85", "0.89"))
            .collect(),
        ..fixtures::snapshot(chain_id, height, time)
    }
}
