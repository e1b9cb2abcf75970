//! Helpers of the collector's tests: a devnet scenario in-process, a throwaway redis-server, a
//! collector running in the background, signed Red Bank transactions, and an independent
//! smart-query walk of the seeded accounts to compare the index with.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use cosmwasm_std::{Coin, Uint128};
use mars::msg::red_bank::ExecuteMsg;
use redline_chain::{ChainClient, TendermintClient, TxOutcome, Wallet};
use redline_collector::{Collector, Config, Connections};
use redline_pipeline::index::{AccountPositions, IndexedAccount};
use redline_pipeline::queue::QueueConfig;
use redline_protocol::RedBank;
pub use testkit::devnet::Devnet;
use testkit::RedisServer;

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

/// The default scenario with `accounts` borrowers, keeping `history_blocks` blocks (with logs
/// when `RUST_LOG` is set).
pub async fn start_devnet(accounts: usize, seed: u64, history_blocks: usize) -> Devnet {
    init_logs();
    Devnet::scenario(accounts, seed)
        .history_blocks(history_blocks)
        .start()
        .await
        .expect("the devnet scenario starts")
}

/// Signs and broadcasts one Red Bank message; panics unless it succeeds.
pub async fn red_bank_tx(
    devnet: &Devnet,
    wallet: &Wallet,
    msg: ExecuteMsg,
    funds: &[Coin],
) -> TxOutcome {
    devnet
        .execute(wallet, devnet.red_bank(), &msg, funds)
        .await
        .unwrap()
}

/// Deposits `funds` as collateral of `wallet`.
pub async fn deposit(devnet: &Devnet, wallet: &Wallet, funds: Coin) -> TxOutcome {
    let msg = ExecuteMsg::Deposit {
        account_id: None,
        on_behalf_of: None,
    };
    red_bank_tx(devnet, wallet, msg, &[funds]).await
}

/// Borrows `amount` of `denom` for `wallet`.
pub async fn borrow(devnet: &Devnet, wallet: &Wallet, denom: &str, amount: u128) -> TxOutcome {
    let msg = ExecuteMsg::Borrow {
        denom: denom.into(),
        amount: Uint128::new(amount),
        recipient: None,
    };
    red_bank_tx(devnet, wallet, msg, &[]).await
}

/// `wallet` repays `user`'s debt with `funds` (any excess is refunded).
pub async fn repay_on_behalf(
    devnet: &Devnet,
    wallet: &Wallet,
    user: &str,
    funds: Coin,
) -> TxOutcome {
    let msg = ExecuteMsg::Repay {
        on_behalf_of: Some(user.to_string()),
    };
    red_bank_tx(devnet, wallet, msg, &[funds]).await
}

/// The debtors among `users`, by smart queries to the devnet's Red Bank independent of the
/// collector's reader (16 at a time).
pub async fn smart_walk(devnet: &Devnet, users: &[String]) -> BTreeMap<String, AccountPositions> {
    use futures::StreamExt as _;
    let red_bank = devnet.manifest.contracts.red_bank.as_str();
    futures::stream::iter(users.iter().cloned())
        .map(|user| {
            let client = devnet.client.clone();
            async move {
                testkit::devnet::account_positions(&client, red_bank, &user)
                    .await
                    .unwrap()
            }
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

/// The index holds exactly the accounts of the smart-query walk, with the same positions.
pub fn assert_same_accounts(
    indexed: &BTreeMap<String, AccountPositions>,
    walked: &BTreeMap<String, AccountPositions>,
) {
    assert_eq!(indexed.len(), walked.len());
    for (address, positions) in walked {
        assert_eq!(indexed.get(address), Some(positions), "account {address}");
    }
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
                client: devnet.client.clone(),
                chain_id: devnet.manifest.chain_id.clone(),
                // The devnet's oracle quotes in 6-decimal units; the collector values nothing.
                red_bank: RedBank::from_manifest(devnet.client.clone(), &devnet.manifest, 6),
                rover: redline_protocol::rover::RoverContracts::from_manifest(
                    &devnet.manifest.contracts,
                )
                .map(|contracts| {
                    redline_protocol::rover::Rover::new(devnet.client.clone(), contracts)
                }),
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

/// A fresh harness and a collector on `devnet` following blocks in the background.
pub async fn start_following(devnet: &Devnet, config: Config) -> (Harness, Running) {
    let mut harness = Harness::new();
    let running = Running::start(harness.collector(devnet, config).await);
    (harness, running)
}

/// Stops the collector, then the devnet.
pub async fn shutdown(running: Running, devnet: Devnet) {
    running.stop().await;
    devnet.shutdown().await;
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

    /// Waits until discovery has indexed a block; returns that height.
    pub async fn discovered(&self, wait: Duration) -> u64 {
        testkit::eventually("discovery", wait, || async {
            self.collector.last_indexed().await
        })
        .await
    }

    /// Waits until the index has reached `at_least` and is within a block of the chain's tip;
    /// returns the last indexed height.
    pub async fn wait_until_at_tip(&self, devnet: &Devnet, at_least: u64, wait: Duration) -> u64 {
        testkit::eventually("the index to reach the tip", wait, || async {
            let last = self.collector.last_indexed().await?;
            let tip = devnet.client.latest_height().await.ok()?;
            (last >= at_least && last + 1 >= tip).then_some(last)
        })
        .await
    }

    /// The index entry of `user`, if any.
    pub async fn account(&self, user: &str) -> Option<IndexedAccount> {
        self.collector.index().account(user).await.unwrap()
    }

    /// The indexed positions of `user`, if any.
    pub async fn positions(&self, user: &str) -> Option<AccountPositions> {
        self.collector
            .index()
            .account_positions(user)
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

pub fn coin(amount: u128, denom: &str) -> Coin {
    Coin::new(Uint128::new(amount), denom)
}
