//! What the manager reads from Redis: the health-check queue (jobs enqueued, the oldest job
//! outstanding, the backlog per block), the liquidation queue's backlog, and the liquidator's
//! attempt records.
//!
//! The health-check stream only holds jobs not yet acknowledged (acknowledged jobs are
//! deleted), so fast health checkers can take a block's jobs out before a periodic scan ever
//! sees them. The manager therefore *tails* the stream with a blocking `XREAD`: Redis serves a
//! blocked reader right after the command that added the entries, before any consumer can
//! acknowledge and delete them, so every enqueue is seen with its block height and account
//! count.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::Value;
use redline_pipeline::jobs::{HealthCheckJob, LiquidationCandidate, LIQUIDATION_QUEUE};
use redline_pipeline::queue::{
    Envelope, Parking, PriorityQueue, Queue, QueueConfig, QueueError, JOB_FIELD,
};
use redline_pipeline::redis_conn::{ConnectOptions, RedisConn, RedisTarget};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::ledger::Outstanding;

/// Answer time allowed for one command (a full scan of a long backlog included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries per `XRANGE` page of a backlog scan.
const SCAN_PAGE: usize = 1_000;
/// How long one tailing `XREAD` blocks before it is issued again.
const TAIL_BLOCK: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("Redis {url}: {source}")]
    Connect {
        url: String,
        source: redis::RedisError,
    },
    #[error("{operation} on `{key}`: {source}")]
    Redis {
        operation: &'static str,
        key: String,
        source: redis::RedisError,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A connection (standalone or cluster, as the flags say) with a response timeout fit for
/// scans.
pub async fn connect(queue: &QueueConfig) -> Result<RedisConn, WatchError> {
    let connect_error = |source| WatchError::Connect {
        url: queue.redacted_url(),
        source,
    };
    RedisTarget::from_config(queue)
        .map_err(connect_error)?
        .connect(ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Some(COMMAND_TIMEOUT),
            max_reconnect_delay: Duration::from_secs(2),
        })
        .await
        .map_err(connect_error)
}

/// The height and account count of a queued health-check job.
fn job_of(entry: &StreamId) -> Option<(u64, u64)> {
    let Some(Value::BulkString(raw)) = entry.map.get(JOB_FIELD) else {
        return None;
    };
    let envelope: Envelope<HealthCheckJob> = serde_json::from_slice(raw).ok()?;
    Some((envelope.payload.height, envelope.payload.accounts))
}

/// Jobs seen enqueued for one block, in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub height: u64,
    pub jobs: u64,
    pub accounts: u64,
    /// When the manager received them.
    pub seen_at: Instant,
}

/// What a backlog scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    pub by_height: BTreeMap<u64, Outstanding>,
    pub jobs: u64,
    pub accounts: u64,
    /// The scan stopped at its cap: the figures cover only the oldest part.
    pub truncated: bool,
}

impl Backlog {
    /// What is outstanding of blocks up to and including `height`.
    pub fn up_to(&self, height: u64) -> Outstanding {
        self.by_height
            .range(..=height)
            .fold(Outstanding::default(), |sum, (_, o)| Outstanding {
                jobs: sum.jobs + o.jobs,
                accounts: sum.accounts + o.accounts,
            })
    }

    pub fn of(&self, height: u64) -> Outstanding {
        self.by_height.get(&height).copied().unwrap_or_default()
    }
}

/// The health-check job stream, read without consuming.
#[derive(Clone)]
pub struct HealthCheckWatch {
    conn: RedisConn,
    stream: String,
    scan_cap: usize,
}

impl HealthCheckWatch {
    pub fn new(conn: RedisConn, stream: String, scan_cap: usize) -> Self {
        Self {
            conn,
            stream,
            scan_cap: scan_cap.max(SCAN_PAGE),
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn error(&self, operation: &'static str) -> impl FnOnce(redis::RedisError) -> WatchError + '_ {
        move |source| WatchError::Redis {
            operation,
            key: self.stream.clone(),
            source,
        }
    }

    /// The height of the oldest outstanding job (`None`: the stream is empty) and the number
    /// of outstanding jobs, in one round trip.
    pub async fn oldest(&self) -> Result<(Option<u64>, u64), WatchError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(&self.stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("XLEN")
            .arg(&self.stream);
        let (first, length): (StreamRangeReply, u64) = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(self.error("XRANGE oldest"))?;
        // An entry that does not decode holds up nothing (it will be dead-lettered): look at
        // the next one on the following poll once it is gone.
        Ok((first.ids.first().and_then(job_of).map(|(h, _)| h), length))
    }

    /// Every outstanding job, by block, up to the scan cap.
    pub async fn backlog(&self) -> Result<Backlog, WatchError> {
        let mut backlog = Backlog::default();
        let mut start = "-".to_owned();
        let mut scanned = 0usize;
        loop {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(SCAN_PAGE)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(self.error("XRANGE backlog"))?;
            let count = page.ids.len();
            for entry in &page.ids {
                if let Some((height, accounts)) = job_of(entry) {
                    let outstanding = backlog.by_height.entry(height).or_default();
                    outstanding.jobs += 1;
                    outstanding.accounts += accounts;
                    backlog.jobs += 1;
                    backlog.accounts += accounts;
                }
            }
            scanned += count;
            match page.ids.last() {
                Some(last) if count == SCAN_PAGE => start = format!("({}", last.id),
                _ => break,
            }
            if scanned >= self.scan_cap {
                backlog.truncated = true;
                break;
            }
        }
        Ok(backlog)
    }

    /// Tails the stream from now on, sending each batch of new jobs (grouped by block) to
    /// `sender`, until `sender` is closed. Reconnects on errors.
    pub fn spawn_tail(
        queue: &QueueConfig,
        stream: String,
        sender: mpsc::Sender<Enqueued>,
    ) -> Result<JoinHandle<()>, WatchError> {
        let target = RedisTarget::from_config(queue).map_err(|source| WatchError::Connect {
            url: queue.redacted_url(),
            source,
        })?;
        Ok(tokio::spawn(async move {
            tail(target, stream, sender).await;
        }))
    }
}

async fn tail(target: RedisTarget, stream: String, sender: mpsc::Sender<Enqueued>) {
    // A blocking read needs a connection of its own and a response timeout beyond its block.
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        response_timeout: Some(TAIL_BLOCK + COMMAND_TIMEOUT),
        max_reconnect_delay: Duration::from_secs(2),
    };
    let mut last_id = "$".to_owned();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut conn = match target.connect(options).await {
            Ok(conn) => conn,
            Err(error) => {
                warn!(%stream, %error, "cannot connect to tail the health-check stream; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if last_id == "$" {
            // Start after the newest entry (even one already deleted), so nothing enqueued
            // from here on is missed between reads.
            last_id = match last_generated_id(&mut conn, &stream).await {
                Ok(id) => id,
                Err(error) => {
                    warn!(%stream, %error, "cannot read where the health-check stream ends; retrying");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
        }
        backoff = Duration::from_millis(100);
        loop {
            let reply: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(SCAN_PAGE)
                .arg("BLOCK")
                .arg(TAIL_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&last_id)
                .query_async(&mut conn)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    warn!(%stream, %error, "tailing the health-check stream failed; reconnecting");
                    break;
                }
            };
            let seen_at = Instant::now();
            let Some(reply) = reply else { continue };
            let mut batch: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
            for key in reply.keys {
                for entry in key.ids {
                    if let Some((height, accounts)) = job_of(&entry) {
                        let slot = batch.entry(height).or_default();
                        slot.0 += 1;
                        slot.1 += accounts;
                    } else {
                        debug!(id = %entry.id, "an entry of the health-check stream is not a job");
                    }
                    last_id = entry.id;
                }
            }
            for (height, (jobs, accounts)) in batch {
                let event = Enqueued {
                    height,
                    jobs,
                    accounts,
                    seen_at,
                };
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// The id of the newest entry ever added to `stream` (even if deleted since); `0-0` when the
/// stream does not exist yet (every entry to come is new).
async fn last_generated_id(
    conn: &mut RedisConn,
    stream: &str,
) -> Result<String, redis::RedisError> {
    let exists: bool = redis::cmd("EXISTS").arg(stream).query_async(conn).await?;
    if !exists {
        return Ok("0-0".to_owned());
    }
    // Parsed by hand: the typed reply insists on first/last entries, which an empty stream
    // does not have.
    let info: Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await?;
    let pairs: Vec<(String, Value)> = match info {
        Value::Map(pairs) => pairs
            .into_iter()
            .filter_map(|(k, v)| redis::from_redis_value::<String>(k).ok().map(|k| (k, v)))
            .collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => redis::from_redis_value::<String>(k.clone())
                    .ok()
                    .map(|k| (k, v.clone())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .find(|(key, _)| key == "last-generated-id")
        .and_then(|(_, value)| redis::from_redis_value::<String>(value).ok())
        .ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "XINFO STREAM has no last-generated-id",
            ))
        })
}

/// The liquidation queue's backlog: candidates waiting plus those being worked on.
pub struct LiquidationWatch {
    queue: PriorityQueue<LiquidationCandidate>,
}

impl LiquidationWatch {
    pub async fn connect(config: &QueueConfig) -> Result<Self, WatchError> {
        Ok(Self {
            queue: PriorityQueue::connect(config, LIQUIDATION_QUEUE).await?,
        })
    }

    /// Candidates waiting or in flight.
    pub async fn outstanding(&self) -> Result<u64, WatchError> {
        let backlog = self.queue.backlog().await?;
        Ok(backlog.pending + backlog.lag)
    }

    /// Candidates set aside until a liquidator has the funds for them.
    pub async fn parked(&self) -> Result<u64, WatchError> {
        Ok(self.queue.parked_count().await?)
    }
}

/// The liquidator's attempts stream key: `<queue prefix>:liquidator:<chain id>:<name>`, as the
/// liquidator names it.
pub fn attempts_stream_key(queue_prefix: &str, chain_id: &str, name: &str) -> String {
    format!("{queue_prefix}:liquidator:{chain_id}:{name}")
}

/// The fields of a liquidator attempt record the manager reports on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Attempt {
    pub height: u64,
    pub candidate_height: u64,
    pub worker_slot: u32,
    pub account: String,
    pub debt_denom: String,
    pub collateral_denom: String,
    pub debt_repaid: serde_json::Value,
    pub collateral_received: serde_json::Value,
    pub tx_hash: String,
    pub profit_usd: serde_json::Value,
    pub outcome: String,
    pub error: String,
}

impl Attempt {
    /// A liquidation that landed.
    pub fn liquidated(&self) -> bool {
        self.outcome == "liquidated"
    }

    /// An attempt at a candidate (not wallet housekeeping): what liquidator throughput counts.
    pub fn is_candidate_attempt(&self) -> bool {
        !matches!(
            self.outcome.as_str(),
            "top_up" | "top_up_failed" | "sweep" | "credit_account_opened"
        )
    }
}

/// A JSON number or string as plain text.
pub fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Reads the attempts stream from where it left off (records are kept, so plain paging is
/// enough: nothing is deleted under the reader).
pub struct AttemptsTail {
    conn: RedisConn,
    stream: String,
    last_id: String,
}

impl AttemptsTail {
    /// Starts after the newest record now in the stream.
    pub async fn start(conn: RedisConn, stream: String) -> Result<Self, WatchError> {
        let newest: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn.clone())
            .await
            .map_err(|source| WatchError::Redis {
                operation: "XREVRANGE",
                key: stream.clone(),
                source,
            })?;
        let last_id = newest
            .ids
            .first()
            .map(|entry| entry.id.clone())
            .unwrap_or_else(|| "0-0".to_owned());
        Ok(Self {
            conn,
            stream,
            last_id,
        })
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Records added since the last call (at most `max`).
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Attempt>, WatchError> {
        let page: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.stream)
            .arg(format!("({}", self.last_id))
            .arg("+")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|source| WatchError::Redis {
                operation: "XRANGE attempts",
                key: self.stream.clone(),
                source,
            })?;
        let mut attempts = Vec::with_capacity(page.ids.len());
        for entry in page.ids {
            if let Some(Value::BulkString(raw)) = entry.map.get("record") {
                match serde_json::from_slice::<Attempt>(raw) {
                    Ok(attempt) => attempts.push(attempt),
                    Err(error) => {
                        debug!(id = %entry.id, %error, "an attempt record does not decode")
                    }
                }
            }
            self.last_id = entry.id;
        }
        Ok(attempts)
    }
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
