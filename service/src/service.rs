//! What every service does first: parse its shared flags, set up logging, resolve the chain,
//! connect to the RPC and to Redis, and later stop cleanly on SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use tracing::{info, info_span, warn, Instrument};

use crate::config::ChainArgs;
use crate::metrics::{HealthReport, MetricsArgs};
use mars::manifest::Manifest;
use redline_chain::{ChainClient, TendermintClient};
use redline_pipeline::queue::QueueConfig;
use redline_pipeline::redis_conn::{ConnectOptions, RedisConn};
use redline_telemetry::LogArgs;

/// Flags every service shares.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub queue: QueueConfig,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Log(#[from] redline_telemetry::TelemetryError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("chain settings: {0}")]
    ChainConfig(#[from] redline_chain::ChainConfigError),
    #[error("{0}")]
    Queue(#[from] redline_pipeline::queue::QueueConfigError),
    #[error("chain RPC {endpoint}: {source}")]
    Chain {
        endpoint: String,
        source: redline_chain::ChainError,
    },
    #[error("--metrics-addr {addr}: {source}")]
    Metrics {
        addr: String,
        source: std::io::Error,
    },
    #[error("Redis {url}: {source}")]
    Redis {
        url: String,
        source: redis::RedisError,
    },
    #[error("{0}")]
    Prefix(#[from] redline_pipeline::deployment::ClaimError),
}

/// A started service's connections.
pub struct ServiceContext {
    pub name: &'static str,
    pub manifest: Manifest,
    pub client: TendermintClient,
    pub redis: RedisConn,
    pub queue: QueueConfig,
    /// The service registers its metrics here; `/metrics` serves them.
    pub registry: prometheus::Registry,
    /// What `/health` answers; the service keeps it current.
    pub health: HealthReport,
    /// Where `/metrics` and `/health` listen, when enabled.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl ServiceContext {
    /// Logging, config validation, then one round trip to the chain and to Redis, so a
    /// misconfigured service fails at start with the flag or endpoint named; the error names
    /// the service too, since its binary's `main` returns it as is.
    pub async fn start(name: &'static str, args: &ServiceArgs) -> anyhow::Result<Self> {
        Self::connect(name, args)
            .await
            .with_context(|| format!("starting {name}"))
    }

    async fn connect(name: &'static str, args: &ServiceArgs) -> Result<Self, StartError> {
        redline_telemetry::init(&args.log)?;
        args.queue.validate()?;
        let manifest = args.chain.resolve()?;
        let client =
            TendermintClient::new(args.chain.chain_config(&manifest)?).map_err(|source| {
                StartError::Chain {
                    endpoint: manifest.rpc_http.join(","),
                    source,
                }
            })?;
        let height = client
            .latest_height()
            .await
            .map_err(|source| StartError::Chain {
                endpoint: manifest.rpc_http.join(","),
                source,
            })?;
        // Standalone or cluster, plain or TLS, as the --redis-* flags say; PINGs once.
        let redis = redline_pipeline::redis_conn::connect(
            &args.queue,
            ConnectOptions {
                connect_timeout: Duration::from_secs(5),
                ..ConnectOptions::default()
            },
        )
        .await
        .map_err(|error| StartError::Redis {
            url: error.url,
            source: error.source,
        })?;
        // One chain per queue prefix: another chain's deployment on the same keys would take
        // this one's jobs.
        redline_pipeline::deployment::claim_prefix(
            &redis,
            &args.queue.queue_prefix,
            &manifest.chain_id,
        )
        .await?;
        // Every metric carries the chain it is about: one Prometheus (and one dashboard, with
        // its chain selector) serves a deployment per chain.
        let chain_label =
            std::collections::HashMap::from([("chain_id".to_string(), manifest.chain_id.clone())]);
        let registry = prometheus::Registry::new_custom(Some("redline".into()), Some(chain_label))
            .expect("a static prefix and a chain id label are valid");
        let health: HealthReport = std::sync::Arc::new(tokio::sync::RwLock::new(
            serde_json::json!({"service": name, "chain_id": manifest.chain_id, "start_height": height}),
        ));
        let metrics_addr = match args.metrics.address()? {
            Some(addr) => {
                let (bound, _task) = crate::metrics::serve(addr, registry.clone(), health.clone())
                    .await
                    .map_err(|source| StartError::Metrics {
                        addr: addr.to_string(),
                        source,
                    })?;
                Some(bound)
            }
            None => None,
        };
        info!(
            service = name,
            metrics = ?metrics_addr,
            chain_id = %manifest.chain_id,
            rpc = %client.preferred_url(),
            height,
            redis = %args.queue.redacted_url(),
            "connected"
        );
        Ok(Self {
            name,
            manifest,
            client,
            redis,
            queue: args.queue.clone(),
            registry,
            health,
            metrics_addr,
        })
    }

    /// Follows new blocks, logging each, until SIGINT/SIGTERM.
    pub async fn follow_blocks_until_shutdown(&self) {
        let mut blocks = self.client.subscribe_blocks();
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                block = blocks.next() => match block {
                    Some(block) => {
                        let span = info_span!("block", height = block.height);
                        async { info!(txs = block.txs.len(), "new block") }.instrument(span).await;
                    }
                    None => {
                        warn!("block feed ended");
                        break;
                    }
                }
            }
        }
        info!(service = self.name, "stopped");
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (docker stop, ECS).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT: shutting down"),
        _ = term => info!("SIGTERM: shutting down"),
    }
}
