//! A devnet scenario, a throwaway Redis and the liquidator's parts wired as the service wires
//! them, for tests that drive workers step by step.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cosmrs::Any;
use cosmwasm_std::{Coin, Decimal, Uint128, Uint256};
use mars::manifest::Manifest;
use mars::value::Value;
use redline_chain::{bank_send_msg, ChainClient, ChainConfig, TendermintClient, Wallet};
use redline_devnet::rpc::NodeHandle;
use redline_liquidator::capital::{capital_key, CapitalBoard};
use redline_liquidator::locks::{KeySpace, Leases};
use redline_liquidator::metrics::LiquidatorMetrics;
use redline_liquidator::plan::{Plan, PlanContext};
use redline_liquidator::recheck::{inclusion_window, PositionReader};
use redline_liquidator::record::Recorder;
use redline_liquidator::strategy::{AfterLiquidation, AlwaysGo, NoRebalance, Strategy};
use redline_liquidator::tx_sender::{SendOptions, SigningPermit, TxSender};
use redline_liquidator::worker::{Worker, WorkerDeps, WorkerSettings};
use redline_pipeline::jobs::{
    LiquidationCandidate, LiquidationPlan, ProtocolKind, LIQUIDATION_QUEUE,
};
use redline_pipeline::queue::{PriorityQueue, QueueConfig};
use redline_pipeline::redis_conn::RedisConn;
use redline_protocol::{AccountKey, RedBank};
use redline_service::config::Secret;
use testkit::devnet::Devnet;
use testkit::{RedisCluster, RedisOptions, RedisServer};
use tokio::io::{AsyncRead, AsyncReadExt as _};

pub use testkit::devnet::BLOCK_TIME;

/// The `liquidator` binary of this package.
pub const BINARY: &str = env!("CARGO_BIN_EXE_liquidator");

pub type Queue = PriorityQueue<LiquidationCandidate>;

/// The Redis a harness runs on.
pub enum RedisSetup {
    /// One server, secured as the options say (password, ACL user, TLS).
    Server(RedisOptions),
    /// A 3-node cluster (with these options) and this queue prefix (it needs a hash tag).
    Cluster(RedisOptions, String),
}

pub struct Harness {
    pub node: NodeHandle,
    pub manifest: Manifest,
    pub borrowers: Vec<String>,
    pub redis_server: RedisServer,
    /// The other nodes when the harness runs on a cluster (`redis_server` is its first node).
    pub cluster_nodes: Vec<RedisServer>,
    pub redis: RedisConn,
    pub queue_config: QueueConfig,
    pub client: TendermintClient,
    pub chain: ChainConfig,
    pub reader: Arc<PositionReader<TendermintClient>>,
    pub keys: KeySpace,
    pub leases: Leases,
    pub recorder: Arc<Recorder>,
    pub metrics: LiquidatorMetrics,
    pub registry: prometheus::Registry,
    pub mnemonic: Secret,
}

impl Harness {
    /// A devnet with `accounts` seeded borrowers and `wallets` funded liquidator wallets
    /// (slots 0..wallets), and a fresh Redis.
    pub async fn start(accounts: usize, seed: u64, wallets: u32) -> anyhow::Result<Self> {
        Self::start_with_redis(
            accounts,
            seed,
            wallets,
            RedisSetup::Server(RedisOptions::default()),
        )
        .await
    }

    /// [`start`](Self::start) on another Redis: a secured server or a cluster.
    pub async fn start_with_redis(
        accounts: usize,
        seed: u64,
        wallets: u32,
        redis: RedisSetup,
    ) -> anyhow::Result<Self> {
        let devnet = Devnet::scenario(accounts, seed).liquidator_wallets(wallets);
        Self::start_devnet(devnet, redis).await
    }

    /// [`start`](Self::start) with `credit_accounts` Rover credit accounts seeded too (Rover is
    /// deployed only then).
    pub async fn start_with_credit_accounts(
        accounts: usize,
        credit_accounts: usize,
        seed: u64,
        wallets: u32,
    ) -> anyhow::Result<Self> {
        let devnet = Devnet::scenario(accounts, seed)
            .liquidator_wallets(wallets)
            .credit_accounts(credit_accounts);
        Self::start_devnet(devnet, RedisSetup::Server(RedisOptions::default())).await
    }

    /// A harness on a devnet built by the test (a flavor, a fee market) with a Redis server.
    pub async fn start_on(devnet: testkit::devnet::DevnetBuilder) -> anyhow::Result<Self> {
        Self::start_devnet(devnet, RedisSetup::Server(RedisOptions::default())).await
    }

    async fn start_devnet(
        devnet: testkit::devnet::DevnetBuilder,
        redis: RedisSetup,
    ) -> anyhow::Result<Self> {
        let devnet = devnet.start().await?;
        // CometBFT reports height 1 before the first block.
        devnet.wait_for_height(2).await?;
        let borrowers = devnet.debtors();
        let chain = devnet.chain_config();
        let (redis_server, cluster_nodes, base_config) = match redis {
            RedisSetup::Server(options) => {
                let server = RedisServer::start_with(options)?;
                let config = server.queue_config();
                (server, Vec::new(), config)
            }
            RedisSetup::Cluster(options, prefix) => {
                let cluster = RedisCluster::start(3, options)?;
                let config = cluster.queue_config(&prefix);
                let mut nodes = cluster.into_nodes();
                let first = nodes.remove(0);
                (first, nodes, config)
            }
        };
        let queue_config = QueueConfig {
            queue_block_ms: 100,
            ..base_config
        };
        let redis = redline_pipeline::redis_conn::connect(
            &queue_config,
            redline_pipeline::redis_conn::ConnectOptions::default(),
        )
        .await?;
        let reader = Arc::new(PositionReader::new(RedBank::from_manifest(
            devnet.client.clone(),
            &devnet.manifest,
            6,
        )));
        let keys = KeySpace::new(&queue_config.queue_prefix, &devnet.manifest.chain_id);
        let leases = Leases::new(redis.clone(), "test");
        let recorder = Arc::new(Recorder::new(
            Some(redis.clone()),
            keys.attempts_stream("attempts"),
            None,
            None,
        )?);
        let metrics = LiquidatorMetrics::new();
        let registry = prometheus::Registry::new();
        metrics.register(&registry)?;
        let mnemonic = Secret::new(
            devnet
                .manifest
                .liquidator_mnemonic
                .clone()
                .expect("devnet mnemonic"),
        );
        Ok(Harness {
            node: devnet.node,
            manifest: devnet.manifest,
            borrowers,
            redis_server,
            cluster_nodes,
            redis,
            queue_config,
            client: devnet.client,
            chain,
            reader,
            keys,
            leases,
            recorder,
            metrics,
            registry,
            mnemonic,
        })
    }

    pub fn wallet(&self, slot: u32) -> Wallet {
        Wallet::from_mnemonic(self.mnemonic.expose(), &self.manifest.bech32_prefix, slot).unwrap()
    }

    /// Every coin of `address` on chain: denom → amount.
    pub async fn balances(&self, address: &str) -> BTreeMap<String, Uint256> {
        self.client
            .balances(address)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.denom, c.amount))
            .collect()
    }

    /// What `address` holds of `denom` on chain (zero when none).
    pub async fn balance(&self, address: &str, denom: &str) -> Uint256 {
        self.balances(address)
            .await
            .remove(denom)
            .unwrap_or_default()
    }

    /// Moves `denom`'s price to `percent`% of what it is, and waits for the block that applies it.
    pub async fn move_price(&self, denom: &str, percent: u64) -> anyhow::Result<u64> {
        self.reader.invalidate().await;
        let snapshot = self.reader.latest().await?;
        let price = snapshot.prices.price(denom)? * Decimal::percent(percent);
        let height = self
            .node
            .chain()
            .set_prices(BTreeMap::from([(denom.to_string(), price)]))
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
        while self.client.latest_height().await? < height {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.reader.invalidate().await;
        Ok(height)
    }

    /// Drops ATOM by 30%, which makes many borrowers liquidatable; the block that applied the
    /// drop and the [`liquidatable`](Self::liquidatable) plans after it.
    pub async fn drop_atom(&self) -> anyhow::Result<(u64, Vec<Plan>)> {
        let height = self.move_price("uatom", 70).await?;
        Ok((height, self.liquidatable().await?))
    }

    /// Borrowers a liquidation plan exists for now (unlimited funds) that pays for a tx of
    /// 300k gas, most profitable first.
    pub async fn liquidatable(&self) -> anyhow::Result<Vec<Plan>> {
        let snapshot = self.reader.latest().await?;
        let (earliest, expected) = inclusion_window(&snapshot, BLOCK_TIME);
        let unlimited: BTreeMap<String, Uint128> = snapshot
            .markets
            .keys()
            .map(|d| (d.clone(), Uint128::new(u128::MAX / 4)))
            .collect();
        let fee = snapshot.prices.value(
            &self.chain.fee_denom,
            Uint128::new(300_000).mul_ceil(self.chain.gas_price),
        )?;
        let mut plans = Vec::new();
        for account in &self.borrowers {
            let key = AccountKey::Address(account.clone());
            let position = self.reader.read_account(&key, snapshot.height).await?;
            let Ok(context) = PlanContext::new(&snapshot, &position, earliest, expected) else {
                continue;
            };
            if let Ok(plan) = context.best_plan(&unlimited) {
                if plan.expected_profit > fee {
                    plans.push(plan);
                }
            }
        }
        plans.sort_by_key(|p| std::cmp::Reverse(p.expected_profit));
        Ok(plans)
    }

    pub fn candidate(
        &self,
        account: &str,
        height: u64,
        profit_usd: Decimal,
    ) -> LiquidationCandidate {
        LiquidationCandidate {
            chain_id: self.manifest.chain_id.clone(),
            protocol: ProtocolKind::RedBank,
            account: AccountKey::Address(account.to_string()),
            height,
            found_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            health: Default::default(),
            plan: Some(LiquidationPlan {
                debt_denom: String::new(),
                collateral_denom: String::new(),
                debt_to_repay: Uint128::zero(),
                collateral_received: Uint128::zero(),
                expected_profit_usd: profit_usd,
                from_lend: false,
            }),
            armed: false,
        }
    }

    /// Drops ATOM by 30%, queues the first liquidatable account as a candidate (as a health
    /// checker would) and waits until a running liquidator records it liquidated. Returns the
    /// account and the producer's queue handle.
    pub async fn liquidate_first_candidate(&self) -> anyhow::Result<(String, Queue)> {
        let (height, plans) = self.drop_atom().await?;
        let account = plans
            .first()
            .context("no account is liquidatable after the price drop")?
            .account
            .clone();
        let queue = self
            .enqueue(&[self.candidate(&account, height, Decimal::one())])
            .await?;
        testkit::wait_for(
            || async {
                self.records().await.is_ok_and(|records| {
                    records.iter().any(|r| {
                        r.outcome == redline_liquidator::record::Outcome::Liquidated
                            && r.account == account
                    })
                })
            },
            Duration::from_secs(60),
        )
        .await
        .with_context(|| format!("no liquidation of {account} recorded"))?;
        Ok((account, queue))
    }

    pub async fn queue(&self, consumer: &str) -> anyhow::Result<Queue> {
        let mut config = self.queue_config.clone();
        config.queue_consumer = Some(consumer.to_string());
        Ok(PriorityQueue::connect(&config, LIQUIDATION_QUEUE).await?)
    }

    /// Pushes `candidates` to the liquidation queue as a health checker would; returns that
    /// producer's handle on the queue.
    pub async fn enqueue(&self, candidates: &[LiquidationCandidate]) -> anyhow::Result<Queue> {
        let queue = self.queue("producer").await?;
        queue.push(candidates).await?;
        Ok(queue)
    }

    pub async fn sender(
        &self,
        slot: u32,
        options: SendOptions,
    ) -> anyhow::Result<TxSender<TendermintClient>> {
        Ok(TxSender::new(
            self.client.clone(),
            &self.chain,
            self.wallet(slot),
            options,
            SigningPermit::granted(),
        )
        .await?)
    }

    pub fn settings(&self, max_per_tx: usize) -> WorkerSettings {
        WorkerSettings {
            chain_id: self.manifest.chain_id.clone(),
            red_bank: self.manifest.contracts.red_bank.clone(),
            max_liquidations_per_tx: max_per_tx,
            fetch_batch: max_per_tx * 4,
            min_profit_usd: Decimal::zero(),
            lock_ttl: Duration::from_secs(20),
            block_interval: BLOCK_TIME,
            fetch_wait: Duration::from_millis(100),
            fee_reserve_gas: 5_000_000,
            credit_manager: self.manifest.contracts.credit_manager.clone(),
            health_query: self.manifest.health_query,
            max_slippage: Decimal::percent(1),
            credit_swap_margin: Decimal::permille(5),
            credit_wallet_funding: true,
            bid: redline_liquidator::bid::BidPolicy {
                max_fee_share: cosmwasm_std::Decimal::percent(50),
                assumed_competition: 0,
            },
        }
    }

    pub async fn worker(
        &self,
        slot: u32,
        settings: WorkerSettings,
        options: SendOptions,
    ) -> anyhow::Result<Worker<TendermintClient, Queue>> {
        self.worker_with(
            slot,
            settings,
            options,
            Arc::new(AlwaysGo),
            Arc::new(NoRebalance),
        )
        .await
    }

    /// A worker on `slot` with batches of up to 4 liquidations and the default send options.
    pub async fn default_worker(
        &self,
        slot: u32,
    ) -> anyhow::Result<Worker<TendermintClient, Queue>> {
        self.worker(slot, self.settings(4), SendOptions::default())
            .await
    }

    pub async fn worker_with(
        &self,
        slot: u32,
        settings: WorkerSettings,
        options: SendOptions,
        strategy: Arc<dyn Strategy>,
        after: Arc<dyn AfterLiquidation<TendermintClient>>,
    ) -> anyhow::Result<Worker<TendermintClient, Queue>> {
        Ok(Worker::new(
            slot,
            WorkerDeps {
                settings: Arc::new(settings),
                queue: self.queue(&format!("worker-{slot}")).await?,
                sender: Arc::new(self.sender(slot, options).await?),
                reader: self.reader.clone(),
                leases: self.leases.clone(),
                keys: self.keys.clone(),
                recorder: self.recorder.clone(),
                metrics: self.metrics.clone(),
                strategy,
                after,
                capital: CapitalBoard::new(
                    Some(self.redis.clone()),
                    capital_key(&self.queue_config.queue_prefix, &self.manifest.chain_id),
                    &self.metrics,
                ),
            },
        ))
    }

    pub async fn records(&self) -> anyhow::Result<Vec<redline_liquidator::record::AttemptRecord>> {
        let mut redis = self.redis.clone();
        Ok(redline_liquidator::record::read_records(
            &mut redis,
            &self.keys.attempts_stream("attempts"),
        )
        .await?)
    }

    /// The Red Bank's `user_position` of `account` at liquidation prices.
    pub async fn position(
        &self,
        account: &str,
    ) -> anyhow::Result<mars::msg::red_bank::UserPositionResponse> {
        use mars::msg::red_bank::QueryMsg;
        Ok(self
            .client
            .query_smart(
                &self.manifest.contracts.red_bank,
                &QueryMsg::UserPositionLiquidationPricing {
                    user: account.to_string(),
                    account_id: None,
                },
                None,
            )
            .await?)
    }

    pub async fn health_factor(&self, account: &str) -> anyhow::Result<Option<Decimal>> {
        use mars::types::UserHealthStatus;
        let answer = self.position(account).await?;
        Ok(match answer.health_status {
            UserHealthStatus::Borrowing {
                liq_threshold_hf, ..
            } => Some(liq_threshold_hf),
            UserHealthStatus::NotBorrowing => None,
        })
    }

    /// Starts `command` (a [`liquidator_command`](Self::liquidator_command)) and waits until it
    /// liquidates the first candidate (see
    /// [`liquidate_first_candidate`](Self::liquidate_first_candidate)); the running binary, the
    /// account and the producer's queue handle.
    pub async fn spawn_and_liquidate_first(
        &self,
        command: &mut tokio::process::Command,
    ) -> (tokio::process::Child, String, Queue) {
        let child = command.spawn().unwrap();
        let (account, queue) = self
            .liquidate_first_candidate()
            .await
            .expect("the binary liquidates the candidate");
        (child, account, queue)
    }

    /// Writes the manifest into `dir` as a file for the binary's `--manifest`; its path.
    pub fn write_manifest(&self, dir: &Path) -> PathBuf {
        let manifest = dir.join("manifest.json");
        self.manifest.write(&manifest).unwrap();
        manifest
    }

    /// The `liquidator` binary as the binary tests run it: the manifest (written into `dir`), one
    /// worker polling the queue every 100 ms, JSON logs on a piped stderr, stdout dropped, and
    /// killed if the test fails before it is stopped. Redis and the rest come as more flags.
    pub fn liquidator_command(&self, dir: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(BINARY);
        command
            .arg("--manifest")
            .arg(self.write_manifest(dir))
            .args(["--queue-block-ms", "100", "--workers", "1"])
            .args(["--log-format", "json"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Value of the change between two balance snapshots, at the current default prices
    /// (denoms whose balance did not change count for nothing, priced or not).
    pub async fn value_change(
        &self,
        before: &BTreeMap<String, Uint256>,
        after: &BTreeMap<String, Uint256>,
    ) -> Value {
        self.reader.invalidate().await;
        let snapshot = self.reader.latest().await.unwrap();
        let denoms: std::collections::BTreeSet<&String> =
            before.keys().chain(after.keys()).collect();
        denoms
            .into_iter()
            .map(|d| {
                let (b, a) = (
                    before.get(d).copied().unwrap_or_default(),
                    after.get(d).copied().unwrap_or_default(),
                );
                if a == b {
                    return Value::zero();
                }
                snapshot.prices.value_of_change(d, b, a).unwrap()
            })
            .fold(Value::zero(), |a, b| a + b)
    }

    pub fn metric(&self, name: &str) -> String {
        use prometheus::Encoder;
        let mut buffer = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .unwrap();
        String::from_utf8(buffer)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Send options that give up waiting for inclusion after 1 ms: what such a sender sends stays
/// of unknown fate until it settles it.
pub fn impatient() -> SendOptions {
    SendOptions {
        inclusion_timeout: Duration::from_millis(1),
        ..SendOptions::default()
    }
}

/// A bank send of `amount` uatom from `from`'s wallet to `to`.
pub fn send_uatom(from: &TxSender<TendermintClient>, to: &str, amount: u128) -> Any {
    bank_send_msg(from.wallet().address(), to, &[Coin::new(amount, "uatom")]).unwrap()
}

/// Stops a running binary with SIGTERM, as an orchestrator does, and checks that it exits
/// with 0 within 20 s.
pub async fn stop_with_sigterm(child: &mut tokio::process::Child) {
    let pid = child.id().unwrap() as i32;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// All that a child's piped stdout or stderr wrote, read until it closes.
pub async fn read_pipe(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    pipe.expect("the stream is piped")
        .read_to_string(&mut text)
        .await
        .unwrap();
    text
}
