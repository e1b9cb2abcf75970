//! Helpers of the collector's tests: a devnet scenario in-process, a throwaway redis-server, a
//! collector running in the background, signed Red Bank transactions, and an independent
//! smart-query walk of the seeded accounts to compare the index with.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use cosmwasm_std::{Coin, Decimal, Uint128};
use mars::manifest::Manifest;
use mars::msg::red_bank::{
    Collateral, Debt, ExecuteMsg, QueryMsg, UserCollateralResponse, UserDebtResponse,
};
use redline_chain::{
    execute_contract_msg, sign_with_simulated_gas, ChainClient, ChainConfig, TendermintClient,
    TxBuilder, TxOutcome, Wallet,
};
use redline_collector::red_bank_scan::RedBankContracts;
use redline_collector::{Collector, Config, Connections};
use redline_devnet::rpc::{NodeConfig, NodeHandle};
use redline_devnet::scenario::{self, ScenarioConfig, DEFAULT_LIQUIDATOR_MNEMONIC};
use redline_pipeline::index::AccountPositions;
use redline_pipeline::queue::QueueConfig;
use testkit::RedisServer;

pub const BLOCK_TIME: Duration = Duration::from_millis(200);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    if let Ok(level) = std::env::var("RUST_LOG") {
        let args = redline_telemetry::LogArgs {
            log_level: level,
            ..Default::default()
        };
        let _ = redline_telemetry::init(&args);
    }
}

pub struct Devnet {
    pub node: NodeHandle,
    pub manifest: Manifest,
    /// Every seeded user (borrowers, then the lenders of each market).
    pub seeded_users: Vec<String>,
}

impl Devnet {
    /// The default scenario with `accounts` borrowers, keeping `history_blocks` blocks.
    pub async fn start(accounts: usize, seed: u64, history_blocks: usize) -> Devnet {
        let cfg = ScenarioConfig {
            accounts,
            seed,
            liquidator_wallets: 4,
            ..ScenarioConfig::default()
        };
        let node_config = NodeConfig {
            chain: redline_devnet::chain::ChainConfig {
                block_time: BLOCK_TIME,
                history_blocks,
                ..Default::default()
            },
            port: 0,
            ..NodeConfig::default()
        };
        let genesis_cfg = cfg.clone();
        let (node, (info, users)) = redline_devnet::rpc::start(node_config, move |state| {
            let info = scenario::genesis(state, &genesis_cfg)?;
            let positions = scenario::generate_positions(
                state,
                &scenario::markets(),
                genesis_cfg.accounts,
                genesis_cfg.seed,
            )?;
            let users = positions.iter().map(|p| p.user.to_string()).collect();
            Ok((info, users))
        })
        .await
        .expect("the devnet scenario starts");
        let manifest = scenario::manifest(&node, &info, &cfg);
        Devnet {
            node,
            manifest,
            seeded_users: users,
        }
    }

    pub fn client(&self) -> TendermintClient {
        TendermintClient::new(ChainConfig::from_manifest(&self.manifest).unwrap()).unwrap()
    }

    pub fn contracts(&self) -> RedBankContracts {
        RedBankContracts::from_manifest(&self.manifest.contracts)
    }

    /// Funded wallet `index` of the scenario's liquidator mnemonic ($10M of every denom).
    pub fn wallet(&self, index: u32) -> Wallet {
        Wallet::from_mnemonic(
            DEFAULT_LIQUIDATOR_MNEMONIC,
            &self.manifest.bech32_prefix,
            index,
        )
        .unwrap()
    }

    pub async fn set_price(&self, denom: &str, price: Decimal) -> u64 {
        self.node
            .chain()
            .set_prices([(denom.to_string(), price)].into())
            .await
            .unwrap()
            .unwrap()
    }

    /// Signs and broadcasts one Red Bank message; panics unless it succeeds.
    pub async fn red_bank(&self, wallet: &Wallet, msg: ExecuteMsg, funds: &[Coin]) -> TxOutcome {
        let client = self.client();
        let builder = TxBuilder::new(client.config());
        let account = client.account(wallet.address().as_ref()).await.unwrap();
        let msg = execute_contract_msg(
            wallet.address(),
            &self.manifest.contracts.red_bank,
            &msg,
            funds,
        )
        .unwrap();
        let signed = sign_with_simulated_gas(
            &client,
            &builder,
            wallet,
            account.account_number,
            account.sequence,
            vec![msg],
            "",
        )
        .await
        .unwrap();
        let hash = client.broadcast_sync(signed.bytes).await.unwrap();
        client
            .wait_for_tx(hash, Duration::from_secs(30))
            .await
            .unwrap()
            .into_result()
            .unwrap()
    }

    pub async fn shutdown(self) {
        self.node.shutdown().await
    }
}

/// One account's positions by smart queries written here (independent of the collector's
/// reader), paging by hand.
pub async fn smart_positions(
    client: &TendermintClient,
    red_bank: &str,
    user: &str,
) -> AccountPositions {
    let mut positions = AccountPositions::new(user);
    let mut start_after = None;
    loop {
        let page: Vec<UserCollateralResponse> = client
            .query_smart(
                red_bank,
                &QueryMsg::UserCollaterals {
                    user: user.into(),
                    account_id: None,
                    start_after: start_after.clone(),
                    limit: Some(5),
                },
                None,
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        start_after = Some(last.denom.clone());
        for c in page {
            positions.collaterals.insert(
                c.denom,
                Collateral {
                    amount_scaled: c.amount_scaled,
                    enabled: c.enabled,
                },
            );
        }
    }
    let mut start_after = None;
    loop {
        let page: Vec<UserDebtResponse> = client
            .query_smart(
                red_bank,
                &QueryMsg::UserDebts {
                    user: user.into(),
                    start_after: start_after.clone(),
                    limit: Some(5),
                },
                None,
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        start_after = Some(last.denom.clone());
        for d in page {
            positions.debts.insert(
                d.denom,
                Debt {
                    amount_scaled: d.amount_scaled,
                    uncollateralized: d.uncollateralized,
                },
            );
        }
    }
    positions
}

/// The debtors among `users`, by smart queries (16 at a time).
pub async fn smart_walk(
    client: &TendermintClient,
    red_bank: &str,
    users: &[String],
) -> BTreeMap<String, AccountPositions> {
    use futures::StreamExt as _;
    futures::stream::iter(users.iter().cloned())
        .map(|user| {
            let client = client.clone();
            async move { smart_positions(&client, red_bank, &user).await }
        })
        .buffer_unordered(16)
        .filter(|p| std::future::ready(p.has_debt()))
        .map(|p| (p.address.clone(), p))
        .collect()
        .await
}

/// Every account in the index, by denom names.
pub async fn index_contents<C: ChainClient + Clone + 'static>(
    collector: &Collector<C>,
) -> BTreeMap<String, AccountPositions> {
    let index = collector.index();
    let read = index.read_buckets(0..index.buckets()).await.unwrap();
    assert!(read.errors.is_empty(), "{:?}", read.errors);
    read.accounts
        .iter()
        .map(|a| (a.address.clone(), a.to_positions(&read.denoms).unwrap()))
        .collect()
}

pub fn test_config(buckets: u32) -> Config {
    let mut config = Config {
        index_buckets: buckets,
        ..Config::default()
    };
    config.discovery.no_progress_bar = true;
    config.reconcile.reconcile_every_blocks = 0;
    config.enqueue.job_size = 100;
    config.follow.max_retry_delay_ms = 500;
    config
}

pub struct Harness {
    pub redis: RedisServer,
    pub registry: prometheus::Registry,
    pub health: redline_service::metrics::HealthReport,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            redis: RedisServer::start().expect("redis-server starts"),
            registry: prometheus::Registry::new(),
            health: Default::default(),
        }
    }

    pub fn queue_config(&self) -> QueueConfig {
        QueueConfig::with_url(self.redis.url())
    }

    /// A collector on `devnet` with a fresh metrics registry (so it can be built again after a
    /// "restart").
    pub async fn collector(
        &mut self,
        devnet: &Devnet,
        config: Config,
    ) -> Collector<TendermintClient> {
        self.registry = prometheus::Registry::new();
        let redis = redline_pipeline::redis_conn::connect(
            &self.queue_config(),
            redline_pipeline::redis_conn::ConnectOptions::default(),
        )
        .await
        .unwrap();
        Collector::new(
            Connections {
                client: devnet.client(),
                chain_id: devnet.manifest.chain_id.clone(),
                contracts: devnet.contracts(),
                redis,
                queue: self.queue_config(),
                registry: self.registry.clone(),
                health: self.health.clone(),
            },
            config,
        )
        .await
        .unwrap()
    }
}

/// A collector following blocks in a background task.
pub struct Running {
    pub collector: Collector<TendermintClient>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn start(collector: Collector<TendermintClient>) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runner = collector.clone();
        let task = tokio::spawn(async move {
            runner
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Running {
            collector,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn coin(amount: u128, denom: &str) -> Coin {
    Coin::new(Uint128::new(amount), denom)
}
