//! Durable job queues between the redline services.
//!
//! redline's old pipeline moved work through Redis lists (`RPUSH`/`LPOP`): a worker that died
//! between popping a job and finishing it lost the job. These queues never hand a job over for
//! good: a job stays pending until its consumer acknowledges it *after* the job's effect is
//! durable, a crashed consumer's jobs are reclaimed by live consumers after a visibility timeout,
//! and a job that keeps failing (or cannot be decoded at all) is parked in a dead-letter stream
//! with the reason instead of looping forever or stalling a worker.
//!
//! The seam is the [`Queue`] trait; [`RedisStreamQueue`] implements it on Redis Streams with
//! consumer groups. Delivery is *at least once*: a consumer that outlives its visibility timeout
//! without acknowledging (or extending it) can see its job handed to another consumer, so job
//! effects must tolerate a rare repeat (a liquidation of an already-healthy position is simply
//! rejected by the chain).
//!
//! The life of a job:
//!
//! ```text
//! enqueue ──► stream ──fetch──► Delivery ──work──► effect durable ──► ack
//!                ▲                  │ consumer dies / no ack within visibility timeout
//!                └──── reclaim ◄────┘ (delivery count + 1)
//!                          │ count > max deliveries, or undecodable
//!                          ▼
//!                  `<stream>:dead` (reason + original fields)
//! ```

mod config;
mod doorbell;
mod envelope;
mod priority;
mod redis_common;
mod redis_stream;

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub(crate) use config::redact_url;
pub use config::{consumer_name_of, QueueConfig, QueueConfigError, RedisArgs};
pub use envelope::{DecodeError, Envelope, JOB_FIELD};
pub use priority::{
    decimal_to_f64, liquidation_dedup_key, DedupKey, EnqueueStatus, Enqueued, PriorityJob,
    PriorityKeys, PriorityQueue, Waiting,
};
pub use redis_stream::{DeadLetter, RedisStreamQueue};

/// A type that travels through a queue as the payload of an [`Envelope`].
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Names the job type in the envelope (e.g. `health-check`). A consumer dead-letters
    /// messages of another kind instead of misreading them.
    const KIND: &'static str;
    /// Schema version of the payload. Bump it on an incompatible change: consumers dead-letter
    /// messages newer than the version they were built with, and still try to decode older ones
    /// (serde defaults keep additive changes readable).
    const VERSION: u32 = 1;
}

/// Identifier of one queued job: the Redis stream entry id, e.g. `1718000000000-0`. Ids order
/// as the stream does (by milliseconds, then sequence number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(milliseconds, sequence)` of a stream id; `None` for ids of another shape.
    fn parts(&self) -> Option<(u64, u64)> {
        let (ms, seq) = self.0.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl Ord for JobId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Numerically: as text, `9-0` would sort after `10-0`.
        match (self.parts(), other.parts()) {
            (Some(a), Some(b)) => a.cmp(&b).then_with(|| self.0.cmp(&other.0)),
            _ => self.0.cmp(&other.0),
        }
    }
}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job handed to one consumer. It stays pending (and is reclaimed by another consumer after
/// the visibility timeout) until the consumer passes it back to [`Queue::ack`] once the job's
/// effect is durable, or to [`Queue::dead_letter`] when it can never succeed.
#[derive(Debug, Clone)]
pub struct Delivery<J> {
    /// Queue entry id; what [`Queue::ack`] acknowledges.
    pub id: JobId,
    pub job: J,
    /// Schema version the producer wrote (≤ [`Job::VERSION`]).
    pub version: u32,
    /// When the producer enqueued the job, in Unix milliseconds.
    pub enqueued_at_ms: u64,
    /// How many times the job has been handed to a consumer, this delivery included (1 on the
    /// first delivery). A value above 1 means an earlier consumer died or gave up.
    pub deliveries: u64,
    /// The message's original fields, kept so a dead-lettered job carries its exact bytes.
    original_fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<J> Delivery<J> {
    /// Builds a delivery; for [`Queue`] implementations other than [`RedisStreamQueue`].
    pub fn new(id: JobId, job: J, version: u32, enqueued_at_ms: u64, deliveries: u64) -> Self {
        Self {
            id,
            job,
            version,
            enqueued_at_ms,
            deliveries,
            original_fields: Vec::new(),
        }
    }

    /// How long the job waited between enqueue and `now_ms` (Unix milliseconds).
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.enqueued_at_ms)
    }

    pub(crate) fn with_original_fields(mut self, fields: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        self.original_fields = fields;
        self
    }

    pub(crate) fn original_fields(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.original_fields
    }
}

/// Work waiting in a queue, the figures the manager scales workers on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    /// Handed to a consumer, not yet acknowledged.
    pub pending: u64,
    /// Enqueued, not yet handed to any consumer.
    pub lag: u64,
    /// Parked in the dead-letter stream.
    pub dead_letters: u64,
}

/// What this queue handle has done since it was created (process-local counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounters {
    pub enqueued: u64,
    /// Deliveries handed to this consumer, reclaimed ones included.
    pub delivered: u64,
    pub acked: u64,
    /// Jobs taken over from consumers that exceeded the visibility timeout.
    pub reclaimed: u64,
    /// Jobs moved to the dead-letter stream (malformed ones included).
    pub dead_lettered: u64,
    /// Of `dead_lettered`, the messages that could not be decoded.
    pub malformed: u64,
    /// Pending jobs found deleted from the stream before they were acknowledged (trimmed by the
    /// `MAXLEN` cap or deleted by hand): lost work, worth an alert.
    pub vanished: u64,
}

/// Errors of queue operations. Each names the stream and the operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue config: {0}")]
    Config(#[from] QueueConfigError),
    #[error("queue name {name:?} must be non-empty and without whitespace")]
    InvalidName { name: String },
    #[error("connecting to redis at {url}: {source}")]
    Connect {
        /// The URL with any password replaced by `***`.
        url: String,
        source: redis::RedisError,
    },
    #[error("{operation} on stream `{stream}`: {source}")]
    Redis {
        stream: String,
        operation: &'static str,
        source: redis::RedisError,
    },
    #[error("{operation} on stream `{stream}`: no answer within {timeout:?}")]
    Timeout {
        stream: String,
        operation: &'static str,
        timeout: Duration,
    },
    #[error("{operation} on stream `{stream}`: unexpected reply: {detail}")]
    Reply {
        stream: String,
        operation: &'static str,
        detail: String,
    },
    #[error("encoding a `{kind}` job for stream `{stream}`: {source}")]
    Encode {
        stream: String,
        kind: &'static str,
        source: serde_json::Error,
    },
}

/// A durable job queue: the seam between producers/consumers and the transport.
///
/// Consumers follow one loop: [`fetch`](Queue::fetch) → do the work → make its effect durable
/// → [`ack`](Queue::ack). Anything short of `ack` (a crash, an error, a timeout) leaves the
/// job pending, and it is delivered again after the visibility timeout.
///
/// ```no_run
/// use redline_pipeline::queue::{Job, Queue, QueueConfig, RedisStreamQueue};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Check {
///     account: String,
/// }
/// impl Job for Check {
///     const KIND: &'static str = "check";
/// }
///
/// async fn work(check: &Check) -> Result<(), String> {
///     Ok(())
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = QueueConfig::default();
/// let queue: RedisStreamQueue<Check> = RedisStreamQueue::connect(&config, "checks").await?;
/// loop {
///     let deliveries = match queue.fetch(16, config.block_timeout()).await {
///         Ok(deliveries) => deliveries,
///         Err(error) => {
///             // Redis away: the connection reconnects by itself; back off and retry.
///             tracing::warn!(%error, "fetch failed");
///             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///             continue;
///         }
///     };
///     for delivery in deliveries {
///         match work(&delivery.job).await {
///             // The effect is durable: only now is the job done.
///             Ok(()) => {
///                 queue.ack(&delivery).await?;
///             }
///             // Transient failure: retry soon; after the delivery limit it is dead-lettered.
///             Err(_) => queue.release(&delivery).await?,
///         }
///     }
/// }
/// # }
/// ```
pub trait Queue: Send + Sync {
    type Job: Job;

    /// Appends one job; returns its id.
    fn enqueue(&self, job: &Self::Job) -> impl Future<Output = Result<JobId, QueueError>> + Send;

    /// Appends many jobs in one round trip, all or none; ids in the order of `jobs`.
    fn enqueue_batch(
        &self,
        jobs: &[Self::Job],
    ) -> impl Future<Output = Result<Vec<JobId>, QueueError>> + Send;

    /// Up to `max` jobs for this consumer: first jobs reclaimed from consumers that exceeded the
    /// visibility timeout, then new ones, waiting up to `block` for new ones only when there is
    /// nothing to reclaim. Jobs past the delivery limit and undecodable messages are moved to
    /// the dead-letter stream on the way and never returned. An empty result means nothing
    /// arrived within `block`.
    fn fetch(
        &self,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery<Self::Job>>, QueueError>> + Send;

    /// Takes over up to `max` jobs whose consumer has held them longer than the visibility
    /// timeout ([`fetch`](Queue::fetch) does this first on every call).
    fn reclaim_stale(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery<Self::Job>>, QueueError>> + Send;

    /// Marks the job done. Call it only once the job's effect is durable. Returns `false` when
    /// the job was no longer pending (another consumer reclaimed and finished it meanwhile).
    fn ack(
        &self,
        delivery: &Delivery<Self::Job>,
    ) -> impl Future<Output = Result<bool, QueueError>> + Send;

    /// [`ack`](Queue::ack) for many deliveries in one round trip; returns how many were still
    /// pending.
    fn ack_many(
        &self,
        deliveries: &[Delivery<Self::Job>],
    ) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Hands the job back for another delivery now instead of after the visibility timeout
    /// (e.g. after a transient error). It counts towards the delivery limit.
    fn release(
        &self,
        delivery: &Delivery<Self::Job>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Restarts the job's visibility timeout, for work that may outlast it. Returns `false`
    /// when the job was no longer pending.
    fn extend_visibility(
        &self,
        delivery: &Delivery<Self::Job>,
    ) -> impl Future<Output = Result<bool, QueueError>> + Send;

    /// Parks a job that can never succeed in the dead-letter stream with `reason`.
    fn dead_letter(
        &self,
        delivery: &Delivery<Self::Job>,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Jobs handed to a consumer and not yet acknowledged, across all consumers.
    fn pending_count(&self) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Jobs enqueued and not yet handed to any consumer.
    fn lag(&self) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Pending, lag and dead-letter counts together.
    fn backlog(&self) -> impl Future<Output = Result<Backlog, QueueError>> + Send;

    /// What this handle has done so far.
    fn counters(&self) -> QueueCounters;
}

/// A queue whose consumers can set a job aside while they lack what it needs (a liquidator
/// short of the debt coin or of fees): the job waits, durable, and is never counted as a failed
/// delivery, until a consumer that may now have it wakes the waiting jobs.
pub trait Parking: Queue {
    /// Moves a claimed job to the waiting set, `wait_score` ordering it there (highest woken
    /// first), with what it waits for (`(denom, amount)`; empty: anything); its delivery is not
    /// counted. Returns `false` when it was no longer in flight.
    fn park(
        &self,
        delivery: &Delivery<Self::Job>,
        wait_score: f64,
        needs: &[(String, u128)],
    ) -> impl Future<Output = Result<bool, QueueError>> + Send;

    /// Puts up to `max` waiting jobs, best score first, back in the queue: with `holdings`,
    /// only those whose needs the holdings meet at least a tenth of in some denom (a wallet
    /// wakes the jobs it may pay for, not those waiting for a coin it lacks); with `None`, any.
    /// Returns how many.
    fn wake(
        &self,
        max: usize,
        holdings: Option<&[(String, u128)]>,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// How many jobs wait.
    fn parked_count(&self) -> impl Future<Output = Result<u64, QueueError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::JobId;

    #[test]
    fn job_ids_order_like_the_stream() {
        let mut ids: Vec<JobId> = ["10-0", "9-1", "9-0", "10-10", "10-2"]
            .into_iter()
            .map(JobId::new)
            .collect();
        ids.sort();
        let sorted: Vec<&str> = ids.iter().map(JobId::as_str).collect();
        assert_eq!(sorted, ["9-0", "9-1", "10-0", "10-2", "10-10"]);
    }
}
