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
//! - [`tx_sender`]: [`tx_sender::TxSender`], one wallet's sequence-safe send path (usable by
//!   any caller that needs to send messages from a worker's wallet);
//! - [`wallets`]: HD wallet slots leased in Redis, and the master wallet's top-ups;
//! - [`record`], [`metrics`]: every attempt to a Redis stream and CSV (and to the operator's
//!   `--notify-*` targets); Prometheus metrics;
//! - [`balances`]: each wallet's balances, published to Redis (the manager's dashboard), the
//!   `liquidator_wallet_balance` gauge and `/health`.
//!
//! [`Liquidator::run`] wires them into a running service.

pub mod balances;
pub mod capital;
pub mod config;
pub mod execute;
pub mod locks;
pub mod master;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod rebalance;
pub mod recheck;
pub mod record;
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
use redline_chain::{ChainClient, ChainConfig, ChainError};
use redline_pipeline::jobs::{LiquidationCandidate, LIQUIDATION_QUEUE};
use redline_pipeline::queue::{PriorityQueue, QueueConfig};
use redline_pipeline::redis_conn::RedisConn;
use redline_service::config::Secret;
use redline_service::metrics::HealthReport;
use redline_service::notify::Notifier;

use crate::balances::{wallets_key, BalanceBook};
use crate::capital::{capital_key, CapitalBoard};
use crate::config::LiquidatorConfig;
use crate::locks::{KeySpace, Leases};
use crate::master::MasterDuty;
use crate::metrics::LiquidatorMetrics;
use crate::recheck::PositionReader;
use crate::record::Recorder;
use crate::strategy::{AfterLiquidation, AlwaysGo, NoRebalance, Strategy};
use crate::tx_sender::{SendOptions, TxSender};
use crate::wallets::{claim_slot, SlotError};
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
        let recorder = Arc::new(
            Recorder::new(
                Some(self.redis.clone()),
                keys.attempts_stream(&config.attempts_stream),
                Some(config.attempts_stream_max_len),
                config.csv.as_deref(),
            )
            .with_context(|| {
                format!(
                    "--csv {}: cannot open for appending",
                    config
                        .csv
                        .as_deref()
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                )
            })?
            .with_notifier(self.notifier.clone(), &self.manifest.chain_id)
            .with_balance_trigger(balances.trigger()),
        );
        let capital = CapitalBoard::new(
            Some(self.redis.clone()),
            capital_key(&self.queue.queue_prefix, &self.manifest.chain_id),
            &metrics,
        );
        let consumer = self.queue.consumer_name();
        let leases = Leases::new(self.redis.clone(), consumer.clone());
        let chain = self
            .chain
            .clone()
            .with_gas_adjustment(config.gas_adjustment)
            .context("--gas-adjustment")?;
        let options = SendOptions {
            inclusion_timeout: config.inclusion_timeout,
            unresolved_grace: config.unresolved_grace,
            dry_run: config.dry_run,
            max_in_flight: config.max_txs_in_flight,
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut summary = RunSummary::default();
        let balances_task = {
            let mut stop = stop_rx.clone();
            tokio::spawn(balances.clone().run(config.balance_interval, async move {
                let _ = stop.wait_for(|s| *s).await;
            }))
        };

        let treasurer_task = config.top_up.clone().map(|policy| {
            let duty = MasterDuty {
                client: self.client.clone(),
                chain: chain.clone(),
                options: options.clone(),
                leases: leases.clone(),
                keys: keys.clone(),
                mnemonic: self.mnemonic.clone(),
                bech32_prefix: self.manifest.bech32_prefix.clone(),
                slot_ttl: config.wallet_slot_ttl,
                max_worker_slots: config.max_worker_slots,
                policy,
                reader: reader.clone(),
                recorder: recorder.clone(),
                balances: balances.clone(),
                notifier: self.notifier.clone(),
            };
            tokio::spawn(duty.serve(stop_rx.clone()))
        });

        let settings = Arc::new(WorkerSettings {
            chain_id: self.manifest.chain_id.clone(),
            red_bank: self.manifest.contracts.red_bank.clone(),
            max_liquidations_per_tx: config.max_liquidations_per_tx,
            fetch_batch: config.fetch_batch,
            min_profit_usd: config.min_profit_usd,
            lock_ttl: config.account_lock_ttl,
            block_interval: chain.block_time,
            fetch_wait: self.queue.block_timeout(),
            fee_reserve_gas: config.fee_reserve_gas,
        });
        let mut workers = Vec::new();
        let mut guards = Vec::new();
        for _ in 0..config.workers {
            let slot = claim_slot(
                &leases,
                &keys,
                &self.mnemonic,
                &self.manifest.bech32_prefix,
                1..=config.max_worker_slots,
                config.wallet_slot_ttl,
            )
            .await?
            .ok_or(SlotError::AllTaken {
                first: 1,
                last: config.max_worker_slots,
            })?;
            let slot_number = slot.slot;
            summary.worker_slots.push(slot_number);
            let (wallet, guard) = slot.into_parts();
            balances.register(slot_number, wallet.address().as_ref());
            let permit = guard.permit.clone();
            guards.push(guard);
            let mut queue_config = self.queue.clone();
            queue_config.queue_consumer = Some(format!("{consumer}-slot{slot_number}"));
            let queue =
                PriorityQueue::<LiquidationCandidate>::connect(&queue_config, LIQUIDATION_QUEUE)
                    .await
                    .context("connecting to the liquidation queue")?;
            let client = self.client.clone();
            let chain = chain.clone();
            let options = options.clone();
            let settings = settings.clone();
            let reader = reader.clone();
            let leases = leases.clone();
            let keys = keys.clone();
            let recorder = recorder.clone();
            let capital = capital.clone();
            let metrics = metrics.clone();
            let strategy = self.strategy.clone();
            let after = self.after.clone();
            let mut stop = stop_rx.clone();
            let mnemonic = self.mnemonic.clone();
            let prefix = self.manifest.bech32_prefix.clone();
            metrics.workers.inc();
            workers.push(tokio::spawn(async move {
                let address = wallet.address().to_string();
                // A worker wallet nobody has funded yet does not exist on chain: wait for the
                // master's top-up instead of failing.
                let mut wallet = Some(wallet);
                let sender = loop {
                    let attempt = match wallet.take() {
                        Some(wallet) => TxSender::new(client.clone(), &chain, wallet, options.clone(), permit.clone()).await,
                        None => match redline_chain::Wallet::from_mnemonic(mnemonic.expose(), &prefix, slot_number) {
                            Ok(wallet) => TxSender::new(client.clone(), &chain, wallet, options.clone(), permit.clone()).await,
                            Err(error) => Err(ChainError::Wallet(error)),
                        },
                    };
                    match attempt {
                        Ok(sender) => break Some(sender),
                        Err(ChainError::AccountNotFound { .. }) => {
                            tracing::warn!(slot = slot_number, wallet = %address, "worker wallet has no account on chain (never funded); waiting for a top-up from the master wallet");
                        }
                        Err(error) => {
                            tracing::warn!(slot = slot_number, wallet = %address, %error, "cannot load the worker wallet's account; retrying");
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(chain.block_time * 5) => {}
                        _ = stop.wait_for(|s| *s) => break None,
                    }
                };
                let Some(sender) = sender else { return };
                let worker = Worker::new(
                    slot_number,
                    WorkerDeps {
                        settings,
                        queue,
                        sender: Arc::new(sender),
                        reader,
                        leases,
                        keys,
                        recorder,
                        metrics: metrics.clone(),
                        strategy,
                        after,
                        capital,
                    },
                );
                worker.run(stop).await;
                metrics.workers.dec();
            }));
        }
        tracing::info!(slots = ?summary.worker_slots, dry_run = config.dry_run, "liquidator workers running");

        shutdown.await;
        let _ = stop_tx.send(true);
        for worker in workers {
            if let Err(error) = worker.await {
                tracing::error!(%error, "a worker task failed");
                self.notifier
                    .error("liquidator", format!("a worker task failed: {error}"))
                    .await;
            }
        }
        if let Some(task) = treasurer_task {
            summary.ran_treasurer = task.await.unwrap_or(false);
        }
        for guard in guards {
            guard.release(&leases).await;
        }
        // The last balances, read after every tx settled.
        if let Err(error) = balances_task.await {
            tracing::warn!(%error, "the balance publisher failed");
        }
        Ok(summary)
    }
}
