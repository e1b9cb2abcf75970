//! redline liquidator: takes liquidation candidates from the priority queue and liquidates them
//! on chain, exactly, profitably and without sequence races.
//!
//! The pieces, in the order a candidate meets them:
//!
//! - [`worker`]: the [`worker::Worker`] loop (queue, per-account locks, batching, job rules);
//! - [`recheck`]: the position re-read at the latest height and the per-block market snapshot;
//! - [`plan`]: which debt to repay and which collateral to seize, and the exact amount to send;
//! - [`strategy`]: the [`strategy::Strategy`] consulted before sending and the
//!   [`strategy::AfterLiquidation`] hook run after confirmed liquidations (the seams for the
//!   external model and for rebalancing);
//! - [`execute`]: messages, batch simulation that drops failing liquidations, event parsing;
//! - [`rover`], [`credit_account`]: credit-account (Rover) liquidations, one tx each from the
//!   worker's own credit account;
//! - [`tx_sender`]: [`tx_sender::TxSender`], one wallet's sequence-safe send path (usable by
//!   any caller that needs to send messages from a worker's wallet);
//! - [`wallets`]: HD wallet slots leased in Redis, and the master wallet's top-ups;
//! - [`record`], [`metrics`]: every attempt to a Redis stream and CSV (and to the operator's
//!   `--notify-*` targets); Prometheus metrics;
//! - [`balances`]: each wallet's balances, published to Redis (the manager's dashboard), the
//!   `liquidator_wallet_balance` gauge and `/health`.
//!
//! [`Liquidator::run`] wires them into a running service.

pub mod armed;
pub mod balances;
pub mod bid;
pub mod capital;
pub mod config;
pub mod credit_account;
pub mod execute;
pub mod locks;
pub mod master;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod rebalance;
pub mod recheck;
pub mod record;
pub mod rover;
pub mod shutdown;
pub mod strategy;
pub mod tx_sender;
pub mod wallets;
pub mod worker;

/// The metrics registry type [`Liquidator`] takes, for embedders without their own dependency.
pub use prometheus;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use mars::manifest::Manifest;
use redline_chain::{ChainClient, ChainConfig, ChainError, Wallet};
use redline_pipeline::jobs::{LiquidationCandidate, ProtocolKind, LIQUIDATION_QUEUE};
use redline_pipeline::near::NearKeys;
use redline_pipeline::queue::{PriorityQueue, QueueConfig};
use redline_pipeline::redis_conn::RedisConn;
use redline_service::config::Secret;
use redline_service::metrics::HealthReport;
use redline_service::notify::Notifier;
use tokio::task::JoinHandle;

use crate::balances::{wallets_key, BalanceBook};
use crate::capital::{capital_key, CapitalBoard};
use crate::config::LiquidatorConfig;
use crate::locks::{KeySpace, Leases};
use crate::master::MasterDuty;
use crate::metrics::LiquidatorMetrics;
use crate::recheck::PositionReader;
use crate::record::Recorder;
use crate::shutdown::{shutdown_channel, Shutdown};
use crate::strategy::{AfterLiquidation, AlwaysGo, NoRebalance, Strategy};
use crate::tx_sender::{SendOptions, SigningPermit, TxSender};
use crate::wallets::{claim_slot, SlotError, SlotGuard};
use crate::worker::{Worker, WorkerDeps, WorkerSettings};
use redline_protocol::{RedBank, RedBankContracts};

/// Everything a running liquidator needs, connected.
pub struct Liquidator<C> {
    pub client: C,
    /// The chain's settings (fee denom, gas price, block time).
    pub chain: ChainConfig,
    pub manifest: Manifest,
    pub queue: QueueConfig,
    pub redis: RedisConn,
    pub registry: prometheus::Registry,
    pub config: LiquidatorConfig,
    pub mnemonic: Secret,
    pub strategy: Arc<dyn Strategy>,
    pub after: Arc<dyn AfterLiquidation<C>>,
    /// Liquidation attempts and errors go to the operator's targets.
    pub notifier: Notifier,
    /// The service's `/health` report: wallet balances are published into it.
    pub health: Option<HealthReport>,
}

/// What a run did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub worker_slots: Vec<u32>,
    pub ran_treasurer: bool,
}

impl<C: ChainClient + Clone + 'static> Liquidator<C> {
    /// A liquidator with the default seams: every profitable plan goes, nothing is rebalanced.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: C,
        chain: ChainConfig,
        manifest: Manifest,
        queue: QueueConfig,
        redis: RedisConn,
        registry: prometheus::Registry,
        config: LiquidatorConfig,
        mnemonic: Secret,
    ) -> Self {
        Liquidator {
            client,
            chain,
            manifest,
            queue,
            redis,
            registry,
            config,
            mnemonic,
            strategy: Arc::new(AlwaysGo),
            after: Arc::new(NoRebalance),
            notifier: Notifier::disabled(),
            health: None,
        }
    }

    /// Notifies liquidation attempts and errors (see [`redline_service::notify`]).
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// Publishes the wallets' balances into this `/health` report.
    pub fn with_health(mut self, health: HealthReport) -> Self {
        self.health = Some(health);
        self
    }

    pub fn with_strategy(mut self, strategy: Arc<dyn Strategy>) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn with_after_liquidation(mut self, after: Arc<dyn AfterLiquidation<C>>) -> Self {
        self.after = after;
        self
    }

    /// Decimals of the oracle's base denom: `--base-decimals`, else the manifest's entry for it.
    async fn base_decimals(&self) -> anyhow::Result<u32> {
        if let Some(decimals) = self.config.base_decimals {
            return Ok(decimals);
        }
        redline_protocol::red_bank::base_decimals(&self.client, &self.manifest)
            .await
            .context("--base-decimals")
    }

    /// Runs the workers (and, if this process leases the master slot, the top-ups) until
    /// `shutdown` resolves; then lets every worker finish its batch and gives the slots back.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<RunSummary> {
        let shared = self.share().await?;
        let (trigger, stop) = shutdown_channel();
        let armory = self.spawn_armory(&shared, &stop).await?;
        let balances = tokio::spawn(
            shared
                .balances
                .clone()
                .run(self.config.balance_interval, stop.requested()),
        );
        let treasurer = self.spawn_treasurer(&shared, &stop);
        let mut workers = Vec::new();
        for _ in 0..self.config.workers {
            workers.push(self.spawn_worker(&shared, &stop).await?);
        }
        let worker_slots: Vec<u32> = workers.iter().map(|w| w.guard.slot).collect();
        tracing::info!(slots = ?worker_slots, dry_run = self.config.dry_run, "liquidator workers running");

        shutdown.await;
        trigger.trigger();
        if let Some(armory) = armory {
            armory.abort();
        }
        let ran_treasurer = self.drain(&shared, workers, treasurer).await;
        // The last balances, read after every tx settled.
        if let Err(error) = balances.await {
            tracing::warn!(%error, "the balance publisher failed");
        }
        Ok(RunSummary {
            worker_slots,
            ran_treasurer,
        })
    }

    /// With `--armed-accounts` above 0, keeps the positions closest to liquidation read ahead
    /// and queues them as soon as a block makes them liquidatable (see [`armed`]).
    async fn spawn_armory(
        &self,
        shared: &Shared<C>,
        stop: &Shutdown,
    ) -> anyhow::Result<Option<JoinHandle<()>>> {
        let config = self.config.armed;
        if config.accounts == 0 {
            return Ok(None);
        }
        let queue = PriorityQueue::<LiquidationCandidate>::connect(&self.queue, LIQUIDATION_QUEUE)
            .await
            .context("connecting to the liquidation queue")?;
        let armory = armed::Armory {
            reader: shared.reader.clone(),
            queue,
            redis: self.redis.clone(),
            near: NearKeys::new(
                &self.queue.queue_prefix,
                &self.manifest.chain_id,
                ProtocolKind::RedBank,
            ),
            chain_id: self.manifest.chain_id.clone(),
            config,
            gauge: shared.metrics.armed.clone(),
        };
        Ok(Some(tokio::spawn(armory.run(stop.clone()))))
    }

    /// Builds what the workers and the master's duty share.
    async fn share(&self) -> anyhow::Result<Shared<C>> {
        let config = &self.config;
        let base_decimals = self.base_decimals().await?;
        let reader = Arc::new(PositionReader::new(RedBank::new(
            self.client.clone(),
            RedBankContracts::from_manifest(&self.manifest.contracts),
            self.manifest.liquidation_rule,
            base_decimals,
        )));
        let keys = KeySpace::new(&self.queue.queue_prefix, &self.manifest.chain_id);
        let metrics = LiquidatorMetrics::new();
        metrics
            .register(&self.registry)
            .context("registering the liquidator's metrics")?;
        let balances = Arc::new(BalanceBook::new(
            self.client.clone(),
            self.redis.clone(),
            wallets_key(&self.queue.queue_prefix, &self.manifest.chain_id),
            metrics.wallet_balance.clone(),
            self.health.clone(),
        ));
        let recorder = self.recorder(&keys, &balances)?;
        let capital = CapitalBoard::new(
            Some(self.redis.clone()),
            capital_key(&self.queue.queue_prefix, &self.manifest.chain_id),
            &metrics,
        );
        let consumer = self.queue.consumer_name();
        let chain = self
            .chain
            .clone()
            .with_gas_adjustment(config.gas_adjustment)
            .context("--gas-adjustment")?
            .with_gas_price_headroom(config.gas_price_headroom)
            .context("--gas-price-headroom")?;
        Ok(Shared {
            client: self.client.clone(),
            settings: Arc::new(self.worker_settings(&chain)),
            chain,
            options: SendOptions {
                inclusion_timeout: config.inclusion_timeout,
                unresolved_grace: config.unresolved_grace,
                dry_run: config.dry_run,
                max_in_flight: config.max_txs_in_flight,
                timeout_blocks: config.tx_timeout_blocks,
            },
            leases: Leases::new(self.redis.clone(), consumer.clone()),
            consumer,
            keys,
            reader,
            recorder,
            balances,
            capital,
            metrics,
            strategy: self.strategy.clone(),
            after: self.after.clone(),
            mnemonic: self.mnemonic.clone(),
            bech32_prefix: self.manifest.bech32_prefix.clone(),
        })
    }

    fn recorder(
        &self,
        keys: &KeySpace,
        balances: &BalanceBook<C>,
    ) -> anyhow::Result<Arc<Recorder>> {
        let config = &self.config;
        let recorder = Recorder::new(
            Some(self.redis.clone()),
            keys.attempts_stream(&config.attempts_stream),
            Some(config.attempts_stream_max_len),
            config.csv.as_deref(),
        )
        .with_context(|| {
            let csv = config.csv.as_deref().unwrap_or(std::path::Path::new(""));
            format!("--csv {}: cannot open for appending", csv.display())
        })?;
        Ok(Arc::new(
            recorder
                .with_notifier(self.notifier.clone(), &self.manifest.chain_id)
                .with_balance_trigger(balances.trigger()),
        ))
    }

    fn worker_settings(&self, chain: &ChainConfig) -> WorkerSettings {
        let config = &self.config;
        WorkerSettings {
            chain_id: self.manifest.chain_id.clone(),
            red_bank: self.manifest.contracts.red_bank.clone(),
            max_liquidations_per_tx: config.max_liquidations_per_tx,
            fetch_batch: config.fetch_batch,
            min_profit_usd: config.min_profit_usd,
            lock_ttl: config.account_lock_ttl,
            block_interval: chain.block_time,
            fetch_wait: self.queue.block_timeout(),
            fee_reserve_gas: config.fee_reserve_gas,
            credit_manager: self.manifest.contracts.credit_manager.clone(),
            health_query: self.manifest.health_query,
            max_slippage: config.max_slippage,
            credit_swap_margin: config.credit_swap_margin,
            credit_wallet_funding: config.credit_wallet_funding,
            bid: bid::BidPolicy {
                max_fee_share: config.max_fee_share,
                assumed_competition: config.assumed_competition,
            },
        }
    }

    /// With top-ups on, serves the master wallet's duty (see [`master`]) until `stop`; the
    /// task answers whether this process ran the top-ups.
    fn spawn_treasurer(&self, shared: &Shared<C>, stop: &Shutdown) -> Option<JoinHandle<bool>> {
        let policy = self.config.top_up.clone()?;
        let duty = MasterDuty {
            client: shared.client.clone(),
            chain: shared.chain.clone(),
            options: shared.options.clone(),
            leases: shared.leases.clone(),
            keys: shared.keys.clone(),
            mnemonic: shared.mnemonic.clone(),
            bech32_prefix: shared.bech32_prefix.clone(),
            slot_ttl: self.config.wallet_slot_ttl,
            max_worker_slots: self.config.max_worker_slots,
            policy,
            reader: shared.reader.clone(),
            recorder: shared.recorder.clone(),
            balances: shared.balances.clone(),
            notifier: self.notifier.clone(),
        };
        Some(tokio::spawn(duty.serve(stop.clone())))
    }

    /// Leases a free worker slot and starts a worker on its wallet and its own queue consumer.
    async fn spawn_worker(
        &self,
        shared: &Shared<C>,
        stop: &Shutdown,
    ) -> anyhow::Result<RunningWorker> {
        let slots = 1..=self.config.max_worker_slots;
        let slot = claim_slot(
            &shared.leases,
            &shared.keys,
            &shared.mnemonic,
            &shared.bech32_prefix,
            slots.clone(),
            self.config.wallet_slot_ttl,
        )
        .await?
        .ok_or(SlotError::AllTaken {
            first: *slots.start(),
            last: *slots.end(),
        })?;
        let (wallet, guard) = slot.into_parts();
        shared
            .balances
            .register(guard.slot, wallet.address().as_ref());
        let mut queue_config = self.queue.clone();
        queue_config.queue_consumer = Some(format!("{}-slot{}", shared.consumer, guard.slot));
        let queue =
            PriorityQueue::<LiquidationCandidate>::connect(&queue_config, LIQUIDATION_QUEUE)
                .await
                .context("connecting to the liquidation queue")?;
        let (slot, permit) = (guard.slot, guard.permit.clone());
        let (shared, stop) = (shared.clone(), stop.clone());
        shared.metrics.workers.inc();
        let task = tokio::spawn(async move {
            let Some(sender) = shared.worker_sender(slot, wallet, permit, &stop).await else {
                return;
            };
            let worker = Worker::new(slot, shared.worker_deps(queue, sender));
            worker.run(stop).await;
            shared.metrics.workers.dec();
        });
        Ok(RunningWorker { guard, task })
    }

    /// Lets every worker finish, then the master's duty, then gives the worker slots back;
    /// whether this process ran the top-ups.
    async fn drain(
        &self,
        shared: &Shared<C>,
        workers: Vec<RunningWorker>,
        treasurer: Option<JoinHandle<bool>>,
    ) -> bool {
        let mut guards = Vec::new();
        for RunningWorker { guard, task } in workers {
            guards.push(guard);
            if let Err(error) = task.await {
                tracing::error!(%error, "a worker task failed");
                self.notifier
                    .error("liquidator", format!("a worker task failed: {error}"))
                    .await;
            }
        }
        let ran_treasurer = match treasurer {
            Some(task) => task.await.unwrap_or(false),
            None => false,
        };
        for guard in guards {
            guard.release(&shared.leases).await;
        }
        ran_treasurer
    }
}

/// What the workers and the master's duty of one run share.
#[derive(Clone)]
struct Shared<C> {
    client: C,
    /// With the run's gas adjustment.
    chain: ChainConfig,
    options: SendOptions,
    settings: Arc<WorkerSettings>,
    /// This process's queue consumer name; each worker consumes as `<consumer>-slot<n>`.
    consumer: String,
    leases: Leases,
    keys: KeySpace,
    reader: Arc<PositionReader<C>>,
    recorder: Arc<Recorder>,
    balances: Arc<BalanceBook<C>>,
    capital: CapitalBoard,
    metrics: LiquidatorMetrics,
    strategy: Arc<dyn Strategy>,
    after: Arc<dyn AfterLiquidation<C>>,
    mnemonic: Secret,
    bech32_prefix: String,
}

/// A worker task and the lease on its wallet slot, given back once the task is done.
struct RunningWorker {
    guard: SlotGuard,
    task: JoinHandle<()>,
}

impl<C: ChainClient + Clone + 'static> Shared<C> {
    /// The worker's send path. A worker wallet nobody has funded yet does not exist on chain:
    /// waits for the master's top-up instead of failing. `None` when stopped first.
    async fn worker_sender(
        &self,
        slot: u32,
        wallet: Wallet,
        permit: SigningPermit,
        stop: &Shutdown,
    ) -> Option<TxSender<C>> {
        let address = wallet.address().to_string();
        let mut wallet = Some(wallet);
        loop {
            let derived = wallet.take().map_or_else(
                || Wallet::from_mnemonic(self.mnemonic.expose(), &self.bech32_prefix, slot),
                Ok,
            );
            let attempt = match derived {
                Ok(wallet) => {
                    let options = self.options.clone();
                    TxSender::new(
                        self.client.clone(),
                        &self.chain,
                        wallet,
                        options,
                        permit.clone(),
                    )
                    .await
                }
                Err(error) => Err(ChainError::Wallet(error)),
            };
            match attempt {
                Ok(sender) => return Some(sender),
                Err(ChainError::AccountNotFound { .. }) => {
                    tracing::warn!(slot, wallet = %address, "worker wallet has no account on chain (never funded); waiting for a top-up from the master wallet");
                }
                Err(error) => {
                    tracing::warn!(slot, wallet = %address, %error, "cannot load the worker wallet's account; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.chain.block_time * 5) => {}
                _ = stop.requested() => return None,
            }
        }
    }

    fn worker_deps(
        &self,
        queue: PriorityQueue<LiquidationCandidate>,
        sender: TxSender<C>,
    ) -> WorkerDeps<C, PriorityQueue<LiquidationCandidate>> {
        WorkerDeps {
            settings: self.settings.clone(),
            queue,
            sender: Arc::new(sender),
            reader: self.reader.clone(),
            leases: self.leases.clone(),
            keys: self.keys.clone(),
            recorder: self.recorder.clone(),
            metrics: self.metrics.clone(),
            strategy: self.strategy.clone(),
            after: self.after.clone(),
            capital: self.capital.clone(),
        }
    }
}
