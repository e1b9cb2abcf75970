//! The collector as one value: its connections, the index, the queue, the metrics, and the
//! in-memory view of how far the index got. `discovery`, `follow` and `reconcile` add the work.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use cosmwasm_std::Timestamp;
use redline_chain::ChainClient;
use redline_pipeline::index::credit::CreditBook;
use redline_pipeline::index::{IndexArgs, PositionIndex};
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind, HEALTH_CHECK_QUEUE};
use redline_pipeline::queue::{QueueConfig, RedisStreamQueue};
use redline_pipeline::redis_conn::RedisConn;
use redline_protocol::rover::Rover;
use redline_protocol::{Discovery, Protocol as _, RedBank, ScanSettings};
use redline_service::metrics::HealthReport;

use crate::credit::{self, CreditIndexer};
use crate::metrics::CollectorMetrics;
use crate::{discovery, enqueue, follow, reconcile};

/// The protocol this collector indexes.
pub const PROTOCOL: ProtocolKind = ProtocolKind::RedBank;

/// Every collector flag besides the shared service flags.
#[derive(Debug, Clone, Args)]
#[group(id = "collector")]
pub struct Config {
    #[command(flatten)]
    pub index: IndexArgs,
    /// Buckets of a new index (fixed at creation; an existing index keeps its own). More
    /// buckets make smaller jobs possible; each is one Redis hash.
    #[arg(long, env = "INDEX_BUCKETS", default_value_t = redline_pipeline::index::DEFAULT_BUCKETS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub index_buckets: u32,
    #[command(flatten, next_help_heading = "Discovery (full scans)")]
    pub discovery: discovery::Config,
    #[command(flatten, next_help_heading = "Block following")]
    pub follow: follow::Config,
    #[command(flatten, next_help_heading = "Reconciliation")]
    pub reconcile: reconcile::Config,
    #[command(flatten, next_help_heading = "Health-check jobs")]
    pub enqueue: enqueue::Config,
    #[command(flatten, next_help_heading = "Credit accounts")]
    pub credit: credit::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            index: IndexArgs::default(),
            index_buckets: redline_pipeline::index::DEFAULT_BUCKETS,
            discovery: discovery::Config::default(),
            follow: follow::Config::default(),
            reconcile: reconcile::Config::default(),
            enqueue: enqueue::Config::default(),
            credit: credit::Config::default(),
        }
    }
}

impl Config {
    /// Checks the flags clap cannot: `--index-prefix` belongs to the index's shared flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.index.index_prefix.is_empty() && !self.index.index_prefix.contains(' '),
            "--index-prefix must be a non-empty word, not `{}`",
            self.index.index_prefix
        );
        Ok(())
    }
}

/// What the collector runs on.
pub struct Connections<C> {
    pub client: C,
    pub chain_id: String,
    pub red_bank: RedBank<C>,
    /// The credit manager, when the chain runs one: its accounts are indexed too.
    pub rover: Option<Rover<C>>,
    pub redis: RedisConn,
    pub queue: QueueConfig,
    pub registry: prometheus::Registry,
    pub health: HealthReport,
}

/// How far the index got, as this process knows it (Redis holds the durable copy).
#[derive(Debug, Default)]
pub(crate) struct IndexProgress {
    /// `None` until discovery completed.
    pub last_indexed: Option<u64>,
    pub last_block_time: Option<Timestamp>,
    pub last_reconciled: Option<u64>,
    /// While a reconciliation runs: accounts re-read by blocks since it started (their index
    /// entries are newer than its scan).
    pub touched_since_scan: Option<BTreeSet<String>>,
}

pub(crate) struct Inner<C> {
    pub client: C,
    pub chain_id: String,
    pub red_bank: RedBank<C>,
    pub index: PositionIndex,
    pub credit: Option<CreditIndexer<C>>,
    pub queue: RedisStreamQueue<HealthCheckJob>,
    pub metrics: CollectorMetrics,
    pub health: HealthReport,
    pub config: Config,
    /// Held while the index is written: one block, one rescan or one repair at a time.
    pub progress: tokio::sync::Mutex<IndexProgress>,
    pub reconciling: AtomicBool,
}

/// The collector. Cheap to clone; clones share everything.
pub struct Collector<C> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C> Clone for Collector<C> {
    fn clone(&self) -> Self {
        Collector {
            inner: self.inner.clone(),
        }
    }
}

impl<C: ChainClient + Clone + 'static> Collector<C> {
    /// Opens (or creates) the index, connects the job queue and registers the metrics.
    pub async fn new(connections: Connections<C>, config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let namespace = config.index.namespace(&connections.chain_id, PROTOCOL);
        let index = PositionIndex::create_or_open(
            connections.redis.clone(),
            namespace.clone(),
            config.index_buckets,
        )
        .await
        .with_context(|| format!("opening the position index {namespace}"))?;
        let meta = index.meta().await.context("reading the index meta")?;
        let queue = RedisStreamQueue::connect(&connections.queue, HEALTH_CHECK_QUEUE)
            .await
            .context("connecting the health-check queue")?;
        let metrics = CollectorMetrics::register(&connections.registry)
            .context("registering the collector metrics")?;
        if let Some(height) = meta.last_indexed_height {
            metrics.last_indexed_height.set(height as i64);
        }
        tracing::info!(
            index = %namespace,
            buckets = index.buckets(),
            last_indexed_height = ?meta.last_indexed_height,
            last_reconciled_height = ?meta.last_reconciled_height,
            "position index open"
        );
        let credit = connections.rover.map(|rover| {
            let namespace = config
                .index
                .namespace(&connections.chain_id, ProtocolKind::Rover);
            CreditIndexer::new(rover, CreditBook::new(connections.redis.clone(), namespace))
        });
        Ok(Collector {
            inner: Arc::new(Inner {
                client: connections.client,
                chain_id: connections.chain_id,
                red_bank: connections.red_bank,
                index,
                credit,
                queue,
                metrics,
                health: connections.health,
                config,
                progress: tokio::sync::Mutex::new(IndexProgress {
                    last_indexed: meta.last_indexed_height,
                    last_block_time: meta.last_indexed_time,
                    last_reconciled: meta.last_reconciled_height,
                    touched_since_scan: None,
                }),
                reconciling: AtomicBool::new(false),
            }),
        })
    }

    pub fn index(&self) -> &PositionIndex {
        &self.inner.index
    }

    pub fn metrics(&self) -> &CollectorMetrics {
        &self.inner.metrics
    }

    pub fn queue(&self) -> &RedisStreamQueue<HealthCheckJob> {
        &self.inner.queue
    }

    /// The last block applied to the index (`None` before discovery).
    pub async fn last_indexed(&self) -> Option<u64> {
        self.inner.progress.lock().await.last_indexed
    }

    /// Every debtor from a full scan of the chain's latest state; unreadable entries are counted.
    pub(crate) async fn discover(
        &self,
        progress: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<Discovery> {
        let settings: ScanSettings = self.inner.config.discovery.scan_settings();
        let found = self
            .inner
            .red_bank
            .discover(settings, progress)
            .await
            .context("scanning the Red Bank for debtors")?;
        for (what, count) in &found.decode_errors {
            self.inner
                .metrics
                .decode_errors
                .with_label_values(&[what])
                .inc_by(*count);
        }
        Ok(found)
    }

    /// Refreshes `/health` with the index's position.
    pub(crate) async fn report_health(&self, tip: Option<u64>) {
        let (last, time, reconciled) = {
            let progress = self.inner.progress.lock().await;
            (
                progress.last_indexed,
                progress.last_block_time,
                progress.last_reconciled,
            )
        };
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let age_secs = time.map(|t| now_ns.saturating_sub(t.nanos()) as f64 / 1e9);
        let mut health = self.inner.health.write().await;
        if !health.is_object() {
            *health = serde_json::json!({});
        }
        if let Some(map) = health.as_object_mut() {
            map.insert("index".into(), self.inner.index.namespace().as_str().into());
            map.insert("last_indexed_height".into(), last.into());
            map.insert("last_block_time".into(), time.map(|t| t.seconds()).into());
            map.insert("last_block_age_secs".into(), age_secs.into());
            map.insert("last_reconciled_height".into(), reconciled.into());
            map.insert(
                "accounts".into(),
                self.inner.metrics.accounts_indexed.get().into(),
            );
            if let Some(tip) = tip {
                map.insert("chain_tip".into(), tip.into());
            }
        }
    }
}
