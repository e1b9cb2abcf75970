//! Shared pieces of the health checker's tests: a devnet running the default scenario in this
//! process, a throwaway Redis, the index filled from the chain's own answers, block snapshots
//! read from the chain, and a health checker wired to all of them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::Decimal;
use futures::stream::{self, StreamExt};
use mars::manifest::Manifest;
use mars::msg::oracle::{self, ActionKind, PriceResponse};
use mars::msg::params;
use mars::msg::red_bank::{Collateral, Debt, QueryMsg, UserCollateralResponse, UserDebtResponse};
use mars::types::{AssetParams, Market};
use redline_chain::{ChainClient, ChainConfig, TendermintClient};
use redline_devnet::rpc::{NodeConfig, NodeHandle};
use redline_devnet::scenario::{self, ScenarioConfig};
use redline_health_checker::metrics::Metrics;
use redline_health_checker::onchain::OnchainConfig;
use redline_health_checker::{
    HealthChecker, HealthSource, OnchainSource, OutputConfig, Outputs, ProfitConfig, WorkerConfig,
};
use redline_pipeline::index::{
    AccountPositions, BlockSnapshot, IndexArgs, IndexedAccount, PositionIndex,
};
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind};
use redline_pipeline::queue::QueueConfig;
use redline_pipeline::redis_conn::{ConnectOptions, RedisConn};
use testkit::RedisServer;

pub const BUCKETS: u32 = 32;

/// A devnet with the default scenario.
pub struct Devnet {
    pub node: NodeHandle,
    pub manifest: Manifest,
    pub borrowers: Vec<String>,
    pub client: TendermintClient,
}

impl Devnet {
    pub async fn start(accounts: usize, seed: u64, block_time: Duration) -> Devnet {
        let cfg = ScenarioConfig {
            accounts,
            seed,
            liquidator_wallets: 2,
            ..ScenarioConfig::default()
        };
        let node_config = NodeConfig {
            chain: redline_devnet::chain::ChainConfig {
                block_time,
                ..Default::default()
            },
            port: 0,
            ..NodeConfig::default()
        };
        let genesis_cfg = cfg.clone();
        let (node, (info, borrowers)) = redline_devnet::rpc::start(node_config, move |state| {
            let info = scenario::genesis(state, &genesis_cfg)?;
            let positions = scenario::generate_positions(
                state,
                &scenario::markets(),
                genesis_cfg.accounts,
                genesis_cfg.seed,
            )?;
            let borrowers: Vec<String> = positions
                .iter()
                .take(genesis_cfg.accounts)
                .map(|p| p.user.to_string())
                .collect();
            Ok((info, borrowers))
        })
        .await
        .expect("the devnet starts");
        let manifest = scenario::manifest(&node, &info, &cfg);
        let client = TendermintClient::new(ChainConfig::from_manifest(&manifest).unwrap()).unwrap();
        Devnet {
            node,
            manifest,
            borrowers,
            client,
        }
    }

    pub fn red_bank(&self) -> &str {
        &self.manifest.contracts.red_bank
    }

    /// The account's positions as the chain answers them (scaled amounts and flags).
    pub async fn positions(&self, account: &str) -> AccountPositions {
        let collaterals: Vec<UserCollateralResponse> = self
            .client
            .query_smart(
                self.red_bank(),
                &QueryMsg::UserCollaterals {
                    user: account.into(),
                    account_id: None,
                    start_after: None,
                    limit: Some(30),
                },
                None,
            )
            .await
            .unwrap();
        let debts: Vec<UserDebtResponse> = self
            .client
            .query_smart(
                self.red_bank(),
                &QueryMsg::UserDebts {
                    user: account.into(),
                    start_after: None,
                    limit: Some(30),
                },
                None,
            )
            .await
            .unwrap();
        AccountPositions {
            address: account.into(),
            collaterals: collaterals
                .into_iter()
                .map(|c| {
                    (
                        c.denom,
                        Collateral {
                            amount_scaled: c.amount_scaled,
                            enabled: c.enabled,
                        },
                    )
                })
                .collect(),
            debts: debts
                .into_iter()
                .map(|d| {
                    (
                        d.denom,
                        Debt {
                            amount_scaled: d.amount_scaled,
                            uncollateralized: d.uncollateralized,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Fills `index` with every borrower that has debt, read from the chain.
    pub async fn fill_index(&self, index: &PositionIndex) -> usize {
        let positions: Vec<AccountPositions> = stream::iter(self.borrowers.clone())
            .map(|account| async move { self.positions(&account).await })
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

    /// The snapshot of block `height` as the chain answers now (valid for `height` as long as
    /// no transaction or price move happened since).
    pub async fn snapshot(&self, height: u64) -> BlockSnapshot {
        let c = &self.manifest.contracts;
        let markets: Vec<Market> = self
            .client
            .query_smart(
                &c.red_bank,
                &QueryMsg::Markets {
                    start_after: None,
                    limit: Some(100),
                },
                None,
            )
            .await
            .unwrap();
        let prices = |kind| async move {
            let prices: Vec<PriceResponse> = self
                .client
                .query_smart(
                    &c.oracle,
                    &oracle::QueryMsg::Prices {
                        start_after: None,
                        limit: Some(100),
                        kind: Some(kind),
                    },
                    None,
                )
                .await
                .unwrap();
            prices
                .into_iter()
                .map(|p| (p.denom, p.price))
                .collect::<BTreeMap<String, Decimal>>()
        };
        let all_params: Vec<AssetParams> = self
            .client
            .query_smart(
                &c.params,
                &params::QueryMsg::AllAssetParams {
                    start_after: None,
                    limit: Some(100),
                },
                None,
            )
            .await
            .unwrap();
        let thf: Decimal = self
            .client
            .query_smart(&c.params, &params::QueryMsg::TargetHealthFactor {}, None)
            .await
            .unwrap();
        BlockSnapshot {
            chain_id: self.manifest.chain_id.clone(),
            protocol: ProtocolKind::RedBank,
            height,
            time: self.client.block_time(height).await.unwrap(),
            prices: prices(ActionKind::Default).await,
            liquidation_prices: prices(ActionKind::Liquidation).await,
            markets,
            params: all_params,
            target_health_factor: thf,
            accounts: 0,
        }
    }

    /// Moves prices and waits for the block that applied them; returns its height.
    pub async fn move_prices(&self, prices: &[(&str, &str)]) -> u64 {
        let prices: BTreeMap<String, Decimal> = prices
            .iter()
            .map(|(d, p)| (d.to_string(), p.parse().unwrap()))
            .collect();
        let height = self.node.chain().set_prices(prices).await.unwrap().unwrap();
        self.wait_for_height(height).await;
        height
    }

    pub async fn wait_for_height(&self, height: u64) {
        for _ in 0..400 {
            if self.client.latest_height().await.unwrap() >= height
                && self.client.block_time(height).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("height {height} never came");
    }
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

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Params like the devnet scenario's, with the given LTVs.
pub fn asset_params(denom: &str, max_ltv: &str, lt: &str) -> AssetParams {
    use mars::types::{CmSettings, LiquidationBonus, RedBankSettings};

    AssetParams {
        denom: denom.into(),
        credit_manager: CmSettings::default(),
        red_bank: RedBankSettings {
            deposit_enabled: true,
            borrow_enabled: true,
        },
        max_loan_to_value: dec(max_ltv),
        liquidation_threshold: dec(lt),
        liquidation_bonus: LiquidationBonus {
            starting_lb: dec("0.01"),
            slope: dec("2"),
            min_lb: dec("0.02"),
            max_lb: dec("0.1"),
        },
        protocol_liquidation_fee: dec("0.1"),
        deposit_cap: cosmwasm_std::Uint128::MAX,
        close_factor: None,
    }
}

/// A market with interest running since `updated` (seconds).
pub fn market(denom: &str, updated: u64) -> Market {
    Market {
        denom: denom.into(),
        reserve_factor: dec("0.1"),
        borrow_index: dec("1.01"),
        liquidity_index: dec("1.005"),
        borrow_rate: dec("0.12"),
        liquidity_rate: dec("0.08"),
        indexes_last_updated: updated,
        ..Market::default()
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
        chain_id: chain_id.into(),
        protocol: ProtocolKind::RedBank,
        height,
        time: cosmwasm_std::Timestamp::from_seconds(time),
        prices: prices
            .iter()
            .map(|(d, p)| (d.to_string(), dec(p)))
            .collect(),
        liquidation_prices: BTreeMap::new(),
        markets: markets.iter().map(|d| market(d, time - 86_400)).collect(),
        params: params
            .iter()
            .map(|d| asset_params(d, "0.85", "0.89"))
            .collect(),
        target_health_factor: dec("1.05"),
        accounts: 0,
    }
}
