//! [`Queue`] that hands out the highest-priority job first, on Redis, without losing any.
//!
//! Redis Streams are first-in first-out, but a liquidator must take the most profitable
//! liquidation first. This queue keeps the same guarantees as [`RedisStreamQueue`](super::RedisStreamQueue)
//! (a job stays until its consumer acknowledges it after the effect is durable; a dead consumer's
//! job comes back after the visibility timeout; a job that keeps failing or cannot be decoded is
//! parked in a dead-letter stream with the reason) and adds priority order and deduplication.
//!
//! # Keys
//!
//! All keys of the queue `name` share the base `<prefix>:{<name>}`. The braces are a Redis
//! Cluster hash tag, so every script touches one slot; on a cluster `--queue-prefix` carries a
//! tag too (e.g. `{redline}`), and as Redis hashes the first tag of a key, the whole deployment
//! then shares that slot (see [`crate::redis_conn`]):
//!
//! | key                      | type   | holds                                                   |
//! |--------------------------|--------|---------------------------------------------------------|
//! | `<base>:ready`           | zset   | waiting job ids, score = priority (highest first)       |
//! | `<base>:inflight`        | zset   | claimed job ids, score = claim deadline (Unix ms)       |
//! | `<base>:payloads`        | hash   | job id → envelope JSON (see [`Envelope`](super::Envelope)) |
//! | `<base>:priorities`      | hash   | job id → priority (to put a reclaimed job back)          |
//! | `<base>:deliveries`      | hash   | job id → times handed to a consumer                      |
//! | `<base>:owners`          | hash   | job id → consumer holding it                             |
//! | `<base>:latest`          | hash   | dedup key → id of the newest job for that key            |
//! | `<base>:seq`             | string | counter for ids of jobs without a dedup key              |
//! | `<base>:dead`            | stream | dead letters: reason, source id, deliveries, original job |
//! | `<base>:parked`          | zset   | jobs waiting for a resource, score = wait order (highest first) |
//! | `<base>:parked_needs`    | hash   | parked job id → what it waits for (`denom=amount,…`)    |
//! | `<base>:doorbell`        | stream | one entry each time jobs became ready (its last ~100)   |
//!
//! # Job ids and deduplication
//!
//! A job with a [`DedupKey`] `{key, generation}` gets the id `<key>@<generation>`; for a
//! liquidation candidate that is `<chain id>/<protocol>/<account>@<height>`. Enqueueing:
//!
//! - a newer generation for a key whose older job is still waiting replaces it (the older one
//!   leaves the queue); an older job that is in flight is left to finish;
//! - the same key and generation again updates the waiting job's payload and priority (a
//!   repeated health check of one block), or does nothing while that job is in flight;
//! - an older generation than the key's newest is dropped as stale.
//!
//! Jobs without a dedup key get `seq:<n>` and are never merged.
//!
//! # Life of a job
//!
//! Every step is one Lua script, so it is atomic with respect to other consumers, and uses the
//! Redis server's clock (`TIME`), so consumers with skewed clocks agree on deadlines:
//!
//! - claim: pop the highest score from `ready`, add to `inflight` with deadline now +
//!   visibility timeout, delivery count + 1; a job claimed more than `max deliveries` times
//!   goes to the dead-letter stream instead;
//! - ack: delete the job everywhere (also from `ready` when it was reclaimed meanwhile: its
//!   work is done);
//! - reclaim: jobs in `inflight` past their deadline go back to `ready` with their priority, or
//!   to the dead-letter stream once they were delivered `max deliveries` times, or are dropped
//!   when a newer job for the same dedup key is queued (it covers them);
//! - release: a consumer hands a claimed job back at once (back to `ready`, the delivery
//!   counted), or drops it when a newer job for its dedup key is queued, as reclaim does: a
//!   candidate held across several blocks is not retried once per block's generation;
//! - dead-letter: `XADD <base>:dead` with the reason and the original payload, then delete.
//!   A payload that does not decode is dead-lettered as soon as it is claimed;
//! - park: a claimed job that cannot run for want of something its consumer lacks (a
//!   liquidator's funds) leaves `inflight` for `parked`, its delivery not counted; a newer
//!   generation of its dedup key replaces it there (it does not go back to `ready` and spin);
//! - wake: the best-scored parked jobs go back to `ready` with their priority, when the
//!   resource they wait for may have come: those whose needs the waking consumer holds at
//!   least a tenth of (see [`Parking`](super::Parking)).
//!
//! Delivery is at least once, as with the stream queue.
//!
//! # Waiting for jobs
//!
//! An idle fetch polls (every 5 ms at first, backing off to 100 ms) and wakes at once when the
//! enqueue, release or wake script rings the doorbell (see [`super::doorbell`]): a liquidation
//! found after a quiet spell is not left waiting for the poll.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmwasm_std::Decimal;
use redis::{FromRedisValue, RedisError, Script, Value};

use super::config::QueueConfig;
use super::doorbell::Doorbell;
use super::envelope::{self, JOB_FIELD};
use super::redis_common::{self, millis, now_ms, Counters};
use super::redis_stream::DeadLetter;
use super::{Backlog, Delivery, Job, JobId, Parking, Queue, QueueCounters, QueueError};
use crate::jobs::{LiquidationCandidate, ProtocolKind};
use crate::redis_conn::RedisConn;

/// Expired in-flight jobs moved per reclaim script call (bounds the script's run time).
const RECLAIM_BATCH: usize = 1_000;
/// Polling interval bounds while a fetch waits for jobs (the doorbell wakes it sooner).
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(100);

/// Groups jobs that replace one another: for one `key`, only the highest `generation` is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupKey {
    /// What the jobs are about, e.g. `<chain id>/<protocol>/<account>`. Any text; the id of the
    /// job is `<key>@<generation>`.
    pub key: String,
    /// Orders versions of the same key, e.g. the block height the job was computed at.
    pub generation: u64,
}

/// A job that a [`PriorityQueue`] can order and deduplicate.
pub trait PriorityJob: Job {
    /// Higher is served first. Only used for ordering (a Redis sorted-set score, a double), so
    /// rounding of nearly equal priorities is harmless; non-finite values count as 0.
    fn priority(&self) -> f64;

    /// Jobs with the same key replace one another (newest generation wins); `None` never merges.
    fn dedup_key(&self) -> Option<DedupKey> {
        None
    }
}

/// Liquidation candidates: the most profitable first; one per account, the latest block wins.
impl PriorityJob for LiquidationCandidate {
    fn priority(&self) -> f64 {
        decimal_to_f64(self.priority())
    }

    fn dedup_key(&self) -> Option<DedupKey> {
        Some(DedupKey {
            key: liquidation_dedup_key(&self.chain_id, self.protocol, &self.account.as_string()),
            generation: self.height,
        })
    }
}

/// The dedup key of an account's liquidation candidates: `<chain id>/<protocol>/<account>`.
pub fn liquidation_dedup_key(chain_id: &str, protocol: ProtocolKind, account: &str) -> String {
    format!("{chain_id}/{protocol}/{account}")
}

/// A Decimal as a double, for ordering only.
pub fn decimal_to_f64(value: Decimal) -> f64 {
    // 10^18 atomics per unit; u128 → f64 keeps ~16 significant digits, plenty for ordering.
    value.atomics().u128() as f64 / 1e18
}

/// What enqueueing did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnqueueStatus {
    /// A new job in the queue.
    Queued,
    /// The same key and generation was waiting: its payload and priority were updated.
    Replaced,
    /// An older generation of the key was waiting and was removed in favour of this job (or
    /// was in flight and is left to finish).
    Superseded,
    /// A newer generation of the key is already queued or in flight: this job was dropped.
    Stale,
    /// The same key and generation is being worked on: nothing changed.
    InFlight,
}

impl EnqueueStatus {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => Self::Queued,
            "replaced" => Self::Replaced,
            "superseded" => Self::Superseded,
            "stale" => Self::Stale,
            "in_flight" => Self::InFlight,
            _ => return None,
        })
    }

    /// Whether the job's payload is now in the queue.
    pub fn is_queued(self) -> bool {
        matches!(self, Self::Queued | Self::Replaced | Self::Superseded)
    }
}

/// One job's enqueue outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: JobId,
    pub status: EnqueueStatus,
}

/// One waiting job as [`PriorityQueue::peek`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting<J> {
    pub id: JobId,
    pub priority: f64,
    /// `None` when the payload does not decode (it will be dead-lettered when claimed).
    pub job: Option<J>,
}

// Shared Lua: removes a job from every structure; keeps `latest` unless it points to this job.
// KEYS order for every script: 1 ready, 2 inflight, 3 payloads, 4 priorities, 5 deliveries,
// 6 owners, 7 latest, 8 seq, 9 dead, 10 parked, 11 parked_needs, 12 doorbell.
const LUA_HELPERS: &str = include_str!("../lua/priority_helpers.lua");

/// ARGV: n, then n × (dedup key or '', generation, score, payload).
/// Returns n × (id, status).
const ENQUEUE_LUA: &str = include_str!("../lua/priority_enqueue.lua");

/// ARGV: max jobs, visibility ms, max deliveries, consumer, dead-letter max len ('' = none).
/// Returns a flat list of (id, payload or '', deliveries, state) with state 'ok', 'missing'
/// (payload gone) or 'dead' (over the delivery limit, already dead-lettered).
const CLAIM_LUA: &str = include_str!("../lua/priority_claim.lua");

/// ARGV: max deliveries, limit, consumer, dead-letter max len.
/// Returns {requeued, dead-lettered, dropped}.
const RECLAIM_LUA: &str = include_str!("../lua/priority_reclaim.lua");

/// ARGV: ids. Returns how many were still queued or in flight.
const ACK_LUA: &str = include_str!("../lua/priority_ack.lua");

/// ARGV: id, reason, consumer, fallback payload, dead-letter max len. Returns 1 if the job was
/// still known.
const DEAD_LETTER_LUA: &str = include_str!("../lua/priority_dead_letter.lua");

/// ARGV: n × (dedup key, generation). Removes each key's waiting job when it is of an older
/// generation. Returns how many were removed.
const RETRACT_LUA: &str = include_str!("../lua/priority_retract.lua");

/// ARGV: id, consumer. In flight → back to ready now (1), or gone when a newer job for its
/// dedup key is queued (2); 0 when it was not in flight.
const RELEASE_LUA: &str = include_str!("../lua/priority_release.lua");

/// ARGV: id, wait score, needs (`denom=amount,…`, '' = anything). In flight → parked, this
/// delivery not counted. Returns 1 if it was in flight.
const PARK_LUA: &str = include_str!("../lua/priority_park.lua");

/// ARGV: max, holdings (`denom=amount,…`; '' = wake regardless of needs). Up to `max` parked
/// jobs, best score first, whose needs the holdings meet a tenth of in some denom → ready with
/// their priority. Returns how many.
const WAKE_LUA: &str = include_str!("../lua/priority_wake.lua");

/// ARGV: id, visibility ms. Returns 1 if the job was in flight.
const EXTEND_LUA: &str = include_str!("../lua/priority_extend.lua");

/// ARGV: max jobs, visibility ms, max deliveries, consumer, dead-letter max len.
/// Takes over expired in-flight jobs directly (for [`Queue::reclaim_stale`]); same reply as claim.
const TAKE_EXPIRED_LUA: &str = include_str!("../lua/priority_take_expired.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{LUA_HELPERS}\n{body}"))
}

struct Scripts {
    enqueue: Script,
    claim: Script,
    reclaim: Script,
    take_expired: Script,
    ack: Script,
    retract: Script,
    dead_letter: Script,
    release: Script,
    extend: Script,
    park: Script,
    wake: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            enqueue: script(ENQUEUE_LUA),
            claim: script(CLAIM_LUA),
            reclaim: script(RECLAIM_LUA),
            take_expired: script(TAKE_EXPIRED_LUA),
            ack: script(ACK_LUA),
            retract: script(RETRACT_LUA),
            dead_letter: script(DEAD_LETTER_LUA),
            release: script(RELEASE_LUA),
            extend: script(EXTEND_LUA),
            park: script(PARK_LUA),
            wake: script(WAKE_LUA),
        }
    }
}

/// The keys of one priority queue (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityKeys {
    pub ready: String,
    pub inflight: String,
    pub payloads: String,
    pub priorities: String,
    pub deliveries: String,
    pub owners: String,
    pub latest: String,
    pub seq: String,
    pub dead: String,
    pub parked: String,
    pub parked_needs: String,
    pub doorbell: String,
}

impl PriorityKeys {
    /// Keys of queue `name` under `prefix`: `<prefix>:{<name>}:<part>`.
    pub fn new(prefix: &str, name: &str) -> Self {
        let base = format!("{prefix}:{{{name}}}");
        let key = |part: &str| format!("{base}:{part}");
        Self {
            ready: key("ready"),
            inflight: key("inflight"),
            payloads: key("payloads"),
            priorities: key("priorities"),
            deliveries: key("deliveries"),
            owners: key("owners"),
            latest: key("latest"),
            seq: key("seq"),
            dead: key("dead"),
            parked: key("parked"),
            parked_needs: key("parked_needs"),
            doorbell: key("doorbell"),
        }
    }

    fn in_order(&self) -> [&str; 12] {
        [
            &self.ready,
            &self.inflight,
            &self.payloads,
            &self.priorities,
            &self.deliveries,
            &self.owners,
            &self.latest,
            &self.seq,
            &self.dead,
            &self.parked,
            &self.parked_needs,
            &self.doorbell,
        ]
    }
}

struct Inner {
    redacted_url: String,
    keys: PriorityKeys,
    consumer: String,
    visibility: Duration,
    max_deliveries: u64,
    max_len: Option<u64>,
    conn: RedisConn,
    scripts: Scripts,
    counters: Counters,
    doorbell: Doorbell,
    poll: (Duration, Duration),
}

/// A reliable priority queue of `J` jobs on Redis. Cheap to clone; clones share the connection,
/// consumer name and counters.
pub struct PriorityQueue<J> {
    inner: Arc<Inner>,
    job: PhantomData<fn() -> J>,
}

impl<J> Clone for PriorityQueue<J> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            job: PhantomData,
        }
    }
}

impl<J> std::fmt::Debug for PriorityQueue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("url", &self.inner.redacted_url)
            .field("ready", &self.inner.keys.ready)
            .field("consumer", &self.inner.consumer)
            .finish_non_exhaustive()
    }
}

/// One entry of a claim script's reply.
struct Claimed {
    id: String,
    payload: Vec<u8>,
    deliveries: u64,
    state: ClaimState,
}

enum ClaimState {
    Ok,
    Missing,
    Dead,
}

impl<J: PriorityJob> PriorityQueue<J> {
    /// Connects to the priority queue `name` under `config`'s prefix. Validates `config` first;
    /// uses its URL, prefix, consumer name, visibility timeout, delivery limit and max length
    /// (for the dead-letter stream).
    pub async fn connect(config: &QueueConfig, name: &str) -> Result<Self, QueueError> {
        // Braces would end the hash tag that keeps the queue's keys in one cluster slot.
        let redis_common::Connection {
            redacted_url,
            conn,
            target,
        } = redis_common::connect(config, name, |c| c == '{' || c == '}').await?;
        let keys = PriorityKeys::new(&config.queue_prefix, name);
        let inner = Inner {
            redacted_url,
            doorbell: Doorbell::new(target, keys.doorbell.clone()),
            poll: (POLL_MIN, POLL_MAX),
            keys,
            consumer: config.consumer_name(),
            visibility: config.visibility_timeout(),
            max_deliveries: u64::from(config.queue_max_deliveries),
            max_len: config.queue_max_len,
            conn,
            scripts: Scripts::new(),
            counters: Counters::default(),
        };
        Ok(Self {
            inner: Arc::new(inner),
            job: PhantomData,
        })
    }

    /// Sets how often an idle fetch polls, from `min` backing off to `max` (5 ms to 100 ms by
    /// default), besides waking at the doorbell. Call it on a handle not yet cloned; on a shared
    /// one it changes nothing.
    pub fn with_idle_poll(mut self, min: Duration, max: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.poll = (min, max.max(min));
        }
        self
    }

    pub fn keys(&self) -> &PriorityKeys {
        &self.inner.keys
    }

    pub fn consumer(&self) -> &str {
        &self.inner.consumer
    }

    pub fn visibility_timeout(&self) -> Duration {
        self.inner.visibility
    }

    pub fn max_deliveries(&self) -> u64 {
        self.inner.max_deliveries
    }

    /// Enqueues `jobs` in one atomic script and says what happened to each (see
    /// [`EnqueueStatus`]).
    pub async fn push(&self, jobs: &[J]) -> Result<Vec<Enqueued>, QueueError> {
        let inner = &self.inner;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let at = now_ms();
        let mut invocation = inner.invocation(&inner.scripts.enqueue);
        invocation.arg(jobs.len());
        for job in jobs {
            let payload = envelope::encode(job, at).map_err(|source| QueueError::Encode {
                stream: inner.keys.ready.clone(),
                kind: J::KIND,
                source,
            })?;
            let (key, generation) = match job.dedup_key() {
                Some(dedup) => (dedup.key, dedup.generation),
                None => (String::new(), 0),
            };
            let priority = job.priority();
            let score = if priority.is_finite() { priority } else { 0.0 };
            invocation
                .arg(key)
                .arg(generation)
                .arg(score.to_string())
                .arg(payload);
        }
        let reply: Vec<String> = inner.invoke("enqueue", &invocation).await?;
        if reply.len() != jobs.len() * 2 {
            return Err(inner.reply_error(
                "enqueue",
                format!("{} reply items for {} jobs", reply.len(), jobs.len()),
            ));
        }
        let mut outcomes = Vec::with_capacity(jobs.len());
        for pair in reply.chunks(2) {
            let status = EnqueueStatus::parse(&pair[1]).ok_or_else(|| {
                inner.reply_error("enqueue", format!("unknown status {:?}", pair[1]))
            })?;
            outcomes.push(Enqueued {
                id: JobId::new(pair[0].clone()),
                status,
            });
        }
        let queued = outcomes.iter().filter(|o| o.status.is_queued()).count();
        Counters::add(&inner.counters.enqueued, queued as u64);
        Ok(outcomes)
    }

    /// Claims up to `max` jobs, highest priority first, without waiting.
    pub async fn claim(&self, max: usize) -> Result<Vec<Delivery<J>>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let claimed = self
            .run_claim_script(&self.inner.scripts.claim, "claim", max)
            .await?;
        Ok(self.accept_all(claimed).await)
    }

    /// Runs one of the scripts that hand jobs to this consumer (`claim`, `take_expired`):
    /// they share their keys, arguments and reply shape.
    async fn run_claim_script(
        &self,
        script: &Script,
        operation: &'static str,
        max: usize,
    ) -> Result<Vec<Claimed>, QueueError> {
        let inner = &self.inner;
        let mut invocation = inner.invocation(script);
        invocation
            .arg(max)
            .arg(millis(inner.visibility))
            .arg(inner.max_deliveries)
            .arg(&inner.consumer)
            .arg(inner.max_len_arg());
        let reply: Value = inner.invoke(operation, &invocation).await?;
        parse_claimed(reply).map_err(|detail| inner.reply_error(operation, detail))
    }

    /// Moves in-flight jobs past their deadline back into the queue (or to the dead-letter
    /// stream past the delivery limit, or drops them when a newer job for the same key is
    /// queued). Returns how many went back.
    pub async fn requeue_expired(&self) -> Result<u64, QueueError> {
        let inner = &self.inner;
        let mut requeued_total = 0;
        loop {
            let mut invocation = inner.invocation(&inner.scripts.reclaim);
            invocation
                .arg(inner.max_deliveries)
                .arg(RECLAIM_BATCH)
                .arg(&inner.consumer)
                .arg(inner.max_len_arg());
            let (requeued, buried, dropped): (u64, u64, u64) =
                inner.invoke("reclaim", &invocation).await?;
            if requeued + buried + dropped > 0 {
                tracing::info!(
                    queue = %inner.keys.ready,
                    requeued,
                    dead_lettered = buried,
                    superseded = dropped,
                    "reclaimed jobs held past the visibility timeout"
                );
            }
            Counters::add(&inner.counters.reclaimed, requeued);
            Counters::add(&inner.counters.dead_lettered, buried);
            requeued_total += requeued;
            if ((requeued + buried + dropped) as usize) < RECLAIM_BATCH {
                return Ok(requeued_total);
            }
        }
    }

    /// Withdraws waiting jobs that became moot: for each `(key, generation)`, the key's waiting
    /// job is removed if it is of an older generation (e.g. an account found healthy again at a
    /// later block). Jobs in flight are left alone. Returns how many were removed.
    pub async fn retract(&self, keys: &[DedupKey]) -> Result<u64, QueueError> {
        let inner = &self.inner;
        let mut removed = 0;
        for chunk in keys.chunks(1_000) {
            let mut invocation = inner.invocation(&inner.scripts.retract);
            for key in chunk {
                invocation.arg(&key.key).arg(key.generation);
            }
            let n: u64 = inner.invoke("retract", &invocation).await?;
            removed += n;
        }
        Ok(removed)
    }

    /// The `max` highest-priority waiting jobs, without claiming them.
    pub async fn peek(&self, max: usize) -> Result<Vec<Waiting<J>>, QueueError> {
        let inner = &self.inner;
        if max == 0 {
            return Ok(Vec::new());
        }
        let ranked: Vec<(String, f64)> = inner
            .query(
                "ZREVRANGE",
                redis::cmd("ZREVRANGE")
                    .arg(&inner.keys.ready)
                    .arg(0)
                    .arg(max - 1)
                    .arg("WITHSCORES"),
            )
            .await?;
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
        let payloads: Vec<Option<Vec<u8>>> = inner
            .query(
                "HMGET payloads",
                redis::cmd("HMGET").arg(&inner.keys.payloads).arg(&ids),
            )
            .await?;
        Ok(ranked
            .into_iter()
            .zip(payloads)
            .map(|((id, priority), payload)| Waiting {
                id: JobId::new(id),
                priority,
                job: payload.and_then(|raw| {
                    envelope::decode::<J>(&[(JOB_FIELD.as_bytes().to_vec(), raw)])
                        .ok()
                        .map(|e| e.payload)
                }),
            })
            .collect())
    }

    /// The oldest `max` dead letters.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let inner = &self.inner;
        let entries: redis::streams::StreamRangeReply = inner
            .query(
                "XRANGE dead letters",
                redis::cmd("XRANGE")
                    .arg(&inner.keys.dead)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(max),
            )
            .await?;
        Ok(entries
            .ids
            .into_iter()
            .map(|entry| {
                let fields = entry
                    .map
                    .into_iter()
                    .filter_map(|(name, value)| match value {
                        Value::BulkString(bytes) => Some((name, bytes)),
                        Value::SimpleString(text) => Some((name, text.into_bytes())),
                        _ => None,
                    });
                DeadLetter::from_fields(entry.id, fields)
            })
            .collect())
    }

    /// Decodes claimed entries; dead-letters the undecodable ones.
    async fn accept_all(&self, claimed: Vec<Claimed>) -> Vec<Delivery<J>> {
        let inner = &self.inner;
        let mut deliveries = Vec::with_capacity(claimed.len());
        for entry in claimed {
            match entry.state {
                ClaimState::Dead => {
                    Counters::add(&inner.counters.dead_lettered, 1);
                    tracing::warn!(
                        queue = %inner.keys.ready,
                        id = %entry.id,
                        deliveries = entry.deliveries,
                        "job over the delivery limit moved to the dead-letter stream"
                    );
                }
                ClaimState::Missing => {
                    Counters::add(&inner.counters.vanished, 1);
                    inner
                        .bury_logged(
                            &entry.id,
                            "payload missing from the payload hash",
                            b"",
                            true,
                        )
                        .await;
                }
                ClaimState::Ok => {
                    let fields = vec![(JOB_FIELD.as_bytes().to_vec(), entry.payload)];
                    match envelope::decode::<J>(&fields) {
                        Ok(envelope) => {
                            Counters::add(&inner.counters.delivered, 1);
                            deliveries.push(
                                Delivery::new(
                                    JobId::new(entry.id),
                                    envelope.payload,
                                    envelope.version,
                                    envelope.enqueued_at_ms,
                                    entry.deliveries,
                                )
                                .with_original_fields(fields),
                            );
                        }
                        Err(problem) => {
                            inner
                                .bury_logged(&entry.id, &problem.to_string(), &fields[0].1, true)
                                .await;
                        }
                    }
                }
            }
        }
        deliveries
    }
}

impl Inner {
    fn redis_error(&self, operation: &'static str, source: RedisError) -> QueueError {
        QueueError::Redis {
            stream: self.keys.ready.clone(),
            operation,
            source,
        }
    }

    fn reply_error(&self, operation: &'static str, detail: impl Into<String>) -> QueueError {
        QueueError::Reply {
            stream: self.keys.ready.clone(),
            operation,
            detail: detail.into(),
        }
    }

    /// An invocation of `script` with the queue's keys, in the order every script takes them;
    /// the caller adds the arguments.
    fn invocation<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.keys.in_order() {
            invocation.key(key);
        }
        invocation
    }

    /// Runs a script invocation on a clone of the connection; errors name `operation`.
    async fn invoke<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.redis_error(operation, e))
    }

    /// Runs one command on a clone of the connection; errors name `operation`.
    async fn query<T: FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, QueueError> {
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.redis_error(operation, e))
    }

    fn max_len_arg(&self) -> String {
        self.max_len.map(|n| n.to_string()).unwrap_or_default()
    }

    async fn bury(
        &self,
        id: &str,
        reason: &str,
        fallback_payload: &[u8],
        malformed: bool,
    ) -> Result<bool, QueueError> {
        let mut invocation = self.invocation(&self.scripts.dead_letter);
        invocation
            .arg(id)
            .arg(reason)
            .arg(&self.consumer)
            .arg(fallback_payload)
            .arg(self.max_len_arg());
        let known: i64 = self.invoke("dead-letter", &invocation).await?;
        Counters::add(&self.counters.dead_lettered, 1);
        if malformed {
            Counters::add(&self.counters.malformed, 1);
        }
        tracing::warn!(
            queue = %self.keys.ready,
            dead_letter_stream = %self.keys.dead,
            id,
            reason,
            "job moved to the dead-letter stream"
        );
        Ok(known == 1)
    }

    /// [`bury`](Self::bury) on the claim path: a failure is logged; the job stays in flight and
    /// is reclaimed (and dead-lettered) later.
    async fn bury_logged(&self, id: &str, reason: &str, fallback_payload: &[u8], malformed: bool) {
        if let Err(error) = self.bury(id, reason, fallback_payload, malformed).await {
            tracing::error!(
                queue = %self.keys.ready,
                id,
                reason,
                %error,
                "could not dead-letter a job; it stays in flight and will be retried"
            );
        }
    }
}

fn value_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

fn parse_claimed(reply: Value) -> Result<Vec<Claimed>, String> {
    let items = match reply {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(format!("reply is {other:?}")),
    };
    if items.len() % 4 != 0 {
        return Err(format!("{} items, not groups of 4", items.len()));
    }
    let mut items = items.into_iter();
    let mut claimed = Vec::new();
    while let (Some(id), Some(payload), Some(count), Some(state)) =
        (items.next(), items.next(), items.next(), items.next())
    {
        let id = value_bytes(id)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("job id is not text")?;
        let payload = value_bytes(payload).ok_or("payload is not a string")?;
        let deliveries = match count {
            Value::Int(n) => u64::try_from(n).unwrap_or(0),
            other => value_bytes(other)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| t.parse().ok())
                .ok_or("delivery count is not a number")?,
        };
        let state = match value_bytes(state).as_deref() {
            Some(b"ok") => ClaimState::Ok,
            Some(b"missing") => ClaimState::Missing,
            Some(b"dead") => ClaimState::Dead,
            other => return Err(format!("unknown claim state {other:?}")),
        };
        claimed.push(Claimed {
            id,
            payload,
            deliveries,
            state,
        });
    }
    Ok(claimed)
}

impl<J: PriorityJob> Queue for PriorityQueue<J> {
    type Job = J;

    async fn enqueue(&self, job: &J) -> Result<JobId, QueueError> {
        let mut outcomes = self.push(std::slice::from_ref(job)).await?;
        outcomes
            .pop()
            .map(|o| o.id)
            .ok_or_else(|| self.inner.reply_error("enqueue", "no id in the reply"))
    }

    async fn enqueue_batch(&self, jobs: &[J]) -> Result<Vec<JobId>, QueueError> {
        Ok(self.push(jobs).await?.into_iter().map(|o| o.id).collect())
    }

    /// Requeues expired jobs (so they compete by priority with the rest), then claims the
    /// highest-priority ones; when there are none, polls until `block` has passed.
    async fn fetch(&self, max: usize, block: Duration) -> Result<Vec<Delivery<J>>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + block;
        let (poll_min, poll_max) = self.inner.poll;
        let mut pause = poll_min;
        loop {
            let ring = self.inner.doorbell.next_ring();
            tokio::pin!(ring);
            ring.as_mut().enable();
            self.requeue_expired().await?;
            let deliveries = self.claim(max).await?;
            let now = Instant::now();
            if !deliveries.is_empty() || now >= deadline {
                return Ok(deliveries);
            }
            tokio::select! {
                _ = ring => {}
                _ = tokio::time::sleep(pause.min(deadline - now)) => {
                    pause = (pause * 2).min(poll_max);
                }
            }
        }
    }

    /// Takes over up to `max` expired in-flight jobs directly (in deadline order, not by
    /// priority; [`fetch`](Queue::fetch) puts them back by priority instead).
    async fn reclaim_stale(&self, max: usize) -> Result<Vec<Delivery<J>>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let claimed = self
            .run_claim_script(&inner.scripts.take_expired, "reclaim", max)
            .await?;
        let ok = claimed
            .iter()
            .filter(|c| matches!(c.state, ClaimState::Ok))
            .count();
        Counters::add(&inner.counters.reclaimed, ok as u64);
        Ok(self.accept_all(claimed).await)
    }

    async fn ack(&self, delivery: &Delivery<J>) -> Result<bool, QueueError> {
        Ok(self.ack_many(std::slice::from_ref(delivery)).await? == 1)
    }

    async fn ack_many(&self, deliveries: &[Delivery<J>]) -> Result<u64, QueueError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let inner = &self.inner;
        let mut invocation = inner.invocation(&inner.scripts.ack);
        for delivery in deliveries {
            invocation.arg(delivery.id.as_str());
        }
        let acked: u64 = inner.invoke("ack", &invocation).await?;
        Counters::add(&inner.counters.acked, acked);
        Ok(acked)
    }

    async fn release(&self, delivery: &Delivery<J>) -> Result<(), QueueError> {
        let inner = &self.inner;
        let mut invocation = inner.invocation(&inner.scripts.release);
        invocation.arg(delivery.id.as_str()).arg(&inner.consumer);
        let released: i64 = inner.invoke("release", &invocation).await?;
        match released {
            0 => {
                tracing::debug!(queue = %inner.keys.ready, id = %delivery.id, "released job was no longer in flight")
            }
            2 => {
                tracing::debug!(queue = %inner.keys.ready, id = %delivery.id, "released job dropped: a newer job for its key is queued")
            }
            _ => {}
        }
        Ok(())
    }

    async fn extend_visibility(&self, delivery: &Delivery<J>) -> Result<bool, QueueError> {
        let inner = &self.inner;
        let mut invocation = inner.invocation(&inner.scripts.extend);
        invocation
            .arg(delivery.id.as_str())
            .arg(millis(inner.visibility));
        let extended: i64 = inner.invoke("extend visibility", &invocation).await?;
        Ok(extended == 1)
    }

    async fn dead_letter(&self, delivery: &Delivery<J>, reason: &str) -> Result<(), QueueError> {
        let fallback = delivery
            .original_fields()
            .first()
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.inner
            .bury(delivery.id.as_str(), reason, &fallback, false)
            .await?;
        Ok(())
    }

    async fn pending_count(&self) -> Result<u64, QueueError> {
        let inner = &self.inner;
        inner
            .query(
                "ZCARD inflight",
                redis::cmd("ZCARD").arg(&inner.keys.inflight),
            )
            .await
    }

    async fn lag(&self) -> Result<u64, QueueError> {
        let inner = &self.inner;
        inner
            .query("ZCARD ready", redis::cmd("ZCARD").arg(&inner.keys.ready))
            .await
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        let inner = &self.inner;
        let mut pipe = redis::pipe();
        pipe.cmd("ZCARD")
            .arg(&inner.keys.inflight)
            .cmd("ZCARD")
            .arg(&inner.keys.ready)
            .cmd("XLEN")
            .arg(&inner.keys.dead);
        let (pending, lag, dead_letters): (u64, u64, u64) = pipe
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(|e| inner.redis_error("backlog", e))?;
        Ok(Backlog {
            pending,
            lag,
            dead_letters,
        })
    }

    fn counters(&self) -> QueueCounters {
        self.inner.counters.snapshot()
    }
}

/// `denom=amount,…`; denoms with `,` or `=` are left out (no denom has them).
fn holdings_arg(coins: &[(String, u128)]) -> String {
    coins
        .iter()
        .filter(|(denom, _)| !denom.contains([',', '=']))
        .map(|(denom, amount)| format!("{denom}={amount}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl<J: PriorityJob> Parking for PriorityQueue<J> {
    async fn park(
        &self,
        delivery: &Delivery<J>,
        wait_score: f64,
        needs: &[(String, u128)],
    ) -> Result<bool, QueueError> {
        let inner = &self.inner;
        let score = if wait_score.is_finite() {
            wait_score
        } else {
            0.0
        };
        let mut invocation = inner.invocation(&inner.scripts.park);
        invocation
            .arg(delivery.id.as_str())
            .arg(score.to_string())
            .arg(holdings_arg(needs));
        let parked: i64 = inner.invoke("park", &invocation).await?;
        Ok(parked == 1)
    }

    async fn wake(
        &self,
        max: usize,
        holdings: Option<&[(String, u128)]>,
    ) -> Result<u64, QueueError> {
        let inner = &self.inner;
        if max == 0 {
            return Ok(0);
        }
        let mut invocation = inner.invocation(&inner.scripts.wake);
        invocation
            .arg(max)
            .arg(holdings.map(holdings_arg).unwrap_or_default());
        inner.invoke("wake", &invocation).await
    }

    async fn parked_count(&self) -> Result<u64, QueueError> {
        let inner = &self.inner;
        inner
            .query("ZCARD parked", redis::cmd("ZCARD").arg(&inner.keys.parked))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::jobs::{AccountKey, LiquidationPlan, ProtocolKind};
    use mars::types::Health;
    use testkit::RedisServer;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Bid {
        account: String,
        height: u64,
        profit: f64,
    }

    impl Job for Bid {
        const KIND: &'static str = "bid";
    }

    impl PriorityJob for Bid {
        fn priority(&self) -> f64 {
            self.profit
        }

        fn dedup_key(&self) -> Option<DedupKey> {
            Some(DedupKey {
                key: self.account.clone(),
                generation: self.height,
            })
        }
    }

    fn bid(account: &str, height: u64, profit: f64) -> Bid {
        Bid {
            account: account.into(),
            height,
            profit,
        }
    }

    const VISIBILITY_MS: u64 = 200;

    fn config(server: &RedisServer, consumer: &str, max_deliveries: u32) -> QueueConfig {
        QueueConfig {
            queue_consumer: Some(consumer.to_owned()),
            queue_visibility_timeout_ms: VISIBILITY_MS,
            queue_max_deliveries: max_deliveries,
            ..QueueConfig::with_url(server.url())
        }
    }

    async fn queue(server: &RedisServer, consumer: &str) -> PriorityQueue<Bid> {
        PriorityQueue::connect(&config(server, consumer, 3), "bids")
            .await
            .unwrap()
    }

    fn accounts(deliveries: &[Delivery<Bid>]) -> Vec<String> {
        deliveries.iter().map(|d| d.job.account.clone()).collect()
    }

    #[tokio::test]
    async fn priority_order_highest_first() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        let jobs = [
            bid("low", 1, 1.5),
            bid("top", 1, 900.0),
            bid("mid", 1, 42.0),
            bid("zero", 1, 0.0),
        ];
        q.enqueue_batch(&jobs).await.unwrap();
        q.enqueue(&bid("second", 1, 100.0)).await.unwrap();
        assert_eq!(q.lag().await.unwrap(), 5);
        let peeked = q.peek(2).await.unwrap();
        assert_eq!(peeked[0].job.as_ref().unwrap().account, "top");
        assert_eq!(peeked[1].priority, 100.0);

        let first = q.fetch(2, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&first), ["top", "second"]);
        assert_eq!(first[0].deliveries, 1);
        assert_eq!(first[0].id.as_str(), "top@1");
        let rest = q.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&rest), ["mid", "low", "zero"]);
        assert_eq!(q.pending_count().await.unwrap(), 5);
        assert_eq!(q.ack_many(&first).await.unwrap(), 2);
        assert_eq!(q.ack_many(&rest).await.unwrap(), 3);
        assert!(
            !q.ack(&rest[0]).await.unwrap(),
            "a second ack finds nothing"
        );
        let backlog = q.backlog().await.unwrap();
        assert_eq!(backlog, Backlog::default());
        // Nothing is left behind in any key.
        let mut conn = q.inner.conn.clone();
        for key in q.keys().in_order() {
            if key == q.keys().seq || key == q.keys().doorbell {
                continue;
            }
            let exists: u64 = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(exists, 0, "{key} still exists");
        }
    }

    #[tokio::test]
    async fn priority_idle_fetch_wakes_at_the_doorbell_not_at_its_poll() {
        let server = RedisServer::start().unwrap();
        // It polls once an hour: within its 30 s wait only the doorbell can wake it.
        let hour = Duration::from_secs(3_600);
        let consumer = queue(&server, "a").await.with_idle_poll(hour, hour);
        let producer = queue(&server, "b").await;
        let fetch = tokio::spawn(async move { consumer.fetch(1, Duration::from_secs(30)).await });
        // The consumer found the queue empty and its doorbell listener is blocked reading.
        let mut conn = producer.inner.conn.clone();
        testkit::wait_for(
            || {
                let mut conn = conn.clone();
                async move {
                    let clients: String = redis::cmd("CLIENT")
                        .arg("LIST")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    clients.contains("cmd=xread")
                }
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        producer.push(&[bid("alice", 1, 1.0)]).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .expect("the fetch woke within 10 s of the job")
            .unwrap()
            .unwrap();
        assert_eq!(accounts(&got), ["alice"]);
        let rings: u64 = redis::cmd("XLEN")
            .arg(&producer.keys().doorbell)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(rings, 1, "one enqueue, one ring");
    }

    #[tokio::test]
    async fn priority_newer_height_replaces_older() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        let first = q.push(&[bid("alice", 10, 5.0)]).await.unwrap();
        assert_eq!(first[0].status, EnqueueStatus::Queued);
        // Same block again (a repeated check): updated in place.
        let again = q.push(&[bid("alice", 10, 6.0)]).await.unwrap();
        assert_eq!(again[0].status, EnqueueStatus::Replaced);
        // A newer block replaces it.
        let newer = q.push(&[bid("alice", 12, 7.0)]).await.unwrap();
        assert_eq!(newer[0].status, EnqueueStatus::Superseded);
        assert_eq!(newer[0].id.as_str(), "alice@12");
        // An older block arriving late is dropped.
        let late = q.push(&[bid("alice", 11, 1000.0)]).await.unwrap();
        assert_eq!(late[0].status, EnqueueStatus::Stale);
        assert_eq!(q.lag().await.unwrap(), 1);
        let got = q.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job, bid("alice", 12, 7.0));
        // While it is in flight, the same block is not queued twice, a newer one is.
        let in_flight = q.push(&[bid("alice", 12, 7.0)]).await.unwrap();
        assert_eq!(in_flight[0].status, EnqueueStatus::InFlight);
        let next = q.push(&[bid("alice", 13, 8.0)]).await.unwrap();
        assert_eq!(next[0].status, EnqueueStatus::Superseded);
        assert!(q.ack(&got[0]).await.unwrap());
        let got = q.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(got[0].job.height, 13);
        q.ack(&got[0]).await.unwrap();
        assert_eq!(q.backlog().await.unwrap(), Backlog::default());
    }

    /// Jobs set aside for want of funds: never counted as deliveries (parking the same job more
    /// often than the delivery limit dead-letters nothing), not handed out until woken (best
    /// wait score first), kept parked when a newer generation of their key arrives, removed by
    /// retract and ack like waiting jobs.
    #[tokio::test]
    async fn priority_parked_jobs_wait_uncounted_until_woken() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        q.push(&[
            bid("alice", 10, 5.0),
            bid("bob", 10, 9.0),
            bid("carol", 10, 1.0),
        ])
        .await
        .unwrap();
        // Limit 3: park alice five times; each claim sees delivery 1.
        for _ in 0..5 {
            let got = q.fetch(3, Duration::ZERO).await.unwrap();
            let alice = got.iter().find(|d| d.job.account == "alice").unwrap();
            assert_eq!(alice.deliveries, 1);
            for d in &got {
                let score = if d.job.account == "alice" { 0.5 } else { 0.1 };
                assert!(q.park(d, score, &[]).await.unwrap());
            }
            assert_eq!(q.lag().await.unwrap(), 0, "parked jobs are not handed out");
            assert_eq!(q.pending_count().await.unwrap(), 0);
            assert_eq!(q.parked_count().await.unwrap(), 3);
            assert!(q.fetch(3, Duration::ZERO).await.unwrap().is_empty());
            assert_eq!(q.wake(10, None).await.unwrap(), 3);
        }
        assert!(q.dead_letters(10).await.unwrap().is_empty());
        let got = q.fetch(3, Duration::ZERO).await.unwrap();
        for d in &got {
            let score = match d.job.account.as_str() {
                "alice" => 0.5,
                "bob" => 0.1,
                _ => 0.9,
            };
            let needs = [(format!("u{}", d.job.account), 1_000u128)];
            q.park(d, score, &needs).await.unwrap();
        }
        // A newer generation of a parked key replaces it in the parked set, not in `ready`.
        let newer = q.push(&[bid("alice", 11, 50.0)]).await.unwrap();
        assert_eq!(newer[0].status, EnqueueStatus::Superseded);
        assert_eq!(q.lag().await.unwrap(), 0);
        assert_eq!(q.parked_count().await.unwrap(), 3);
        // A consumer holding none of what they wait for (or too little: less than a tenth)
        // wakes nothing.
        let dust = [
            ("ualice".to_string(), 99u128),
            ("ucarol".to_string(), 0u128),
        ];
        assert_eq!(q.wake(10, Some(&dust)).await.unwrap(), 0);
        // Woken by wait score among those the holdings meet: carol (0.9), then alice (0.5),
        // not bob; they go back with their priority.
        let holdings = [
            ("ualice".to_string(), 100u128),
            ("ucarol".to_string(), 5_000u128),
        ];
        assert_eq!(q.wake(10, Some(&holdings)).await.unwrap(), 2);
        let woken = q.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&woken), ["alice", "carol"]);
        assert_eq!(woken[0].job, bid("alice", 11, 50.0));
        q.ack_many(&woken).await.unwrap();
        // Retract reaches the parked set too.
        let key = DedupKey {
            key: "bob".into(),
            generation: 11,
        };
        assert_eq!(q.retract(&[key]).await.unwrap(), 1);
        assert_eq!(q.parked_count().await.unwrap(), 0);
        assert_eq!(q.backlog().await.unwrap(), Backlog::default());
    }

    #[tokio::test]
    async fn priority_retract_removes_only_older_waiting_jobs() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        q.push(&[
            bid("alice", 10, 5.0),
            bid("bob", 10, 6.0),
            bid("carol", 10, 1.0),
        ])
        .await
        .unwrap();
        let in_flight = q.fetch(1, Duration::ZERO).await.unwrap();
        assert_eq!(in_flight[0].job.account, "bob");
        let key = |k: &str, g: u64| DedupKey {
            key: k.into(),
            generation: g,
        };
        // alice healthy at 11: removed; bob is in flight: kept; carol at the same block: kept.
        let removed = q
            .retract(&[
                key("alice", 11),
                key("bob", 11),
                key("carol", 10),
                key("nobody", 99),
            ])
            .await
            .unwrap();
        assert_eq!(removed, 1);
        let rest = q.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&rest), ["carol"]);
        // alice can come back later.
        let again = q.push(&[bid("alice", 12, 5.0)]).await.unwrap();
        assert_eq!(again[0].status, EnqueueStatus::Queued);
    }

    #[tokio::test]
    async fn priority_unacked_job_comes_back_once() {
        let server = RedisServer::start().unwrap();
        let dying = queue(&server, "dying").await;
        let live = queue(&server, "live").await;
        dying
            .enqueue_batch(&[bid("a", 1, 3.0), bid("b", 1, 2.0)])
            .await
            .unwrap();
        // The dying consumer claims the best job and never acknowledges it.
        let lost = dying.fetch(1, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&lost), ["a"]);
        drop(dying);
        // Before the timeout only the other job is available.
        let other = live.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&other), ["b"]);
        live.ack(&other[0]).await.unwrap();
        assert!(live.fetch(10, Duration::ZERO).await.unwrap().is_empty());
        // After it, the job comes back, second delivery, and is processed once.
        let back = live
            .fetch(10, Duration::from_millis(VISIBILITY_MS * 5))
            .await
            .unwrap();
        assert_eq!(accounts(&back), ["a"]);
        assert_eq!(back[0].deliveries, 2);
        assert!(live.ack(&back[0]).await.unwrap());
        tokio::time::sleep(Duration::from_millis(VISIBILITY_MS * 2)).await;
        assert!(live.fetch(10, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(live.counters().reclaimed, 1);
        assert_eq!(live.backlog().await.unwrap(), Backlog::default());
    }

    #[tokio::test]
    async fn priority_extend_and_release() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        q.enqueue(&bid("a", 1, 1.0)).await.unwrap();
        let got = q.fetch(1, Duration::ZERO).await.unwrap();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(VISIBILITY_MS / 2)).await;
            assert!(q.extend_visibility(&got[0]).await.unwrap());
            assert_eq!(q.requeue_expired().await.unwrap(), 0);
        }
        q.release(&got[0]).await.unwrap();
        let again = q.fetch(1, Duration::ZERO).await.unwrap();
        assert_eq!(again[0].deliveries, 2);
        q.ack(&again[0]).await.unwrap();
        assert!(!q.extend_visibility(&again[0]).await.unwrap());
    }

    /// A job handed back after a newer generation of its key was queued is covered by it: it
    /// is dropped, not delivered again (nor dead-lettered after enough hand-backs).
    #[tokio::test]
    async fn a_released_job_with_a_newer_generation_queued_is_dropped() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        q.enqueue(&bid("a", 1, 1.0)).await.unwrap();
        let old = q.fetch(1, Duration::ZERO).await.unwrap();
        assert_eq!(old[0].id.as_str(), "a@1");
        q.enqueue(&bid("a", 2, 1.0)).await.unwrap();
        q.release(&old[0]).await.unwrap();
        let next = q.fetch(10, Duration::ZERO).await.unwrap();
        let ids: Vec<&str> = next.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a@2"]);
        assert_eq!(next[0].deliveries, 1);
        assert!(!q.ack(&old[0]).await.unwrap(), "a@1 is gone");
        assert!(q.ack(&next[0]).await.unwrap());
        assert_eq!(q.backlog().await.unwrap(), Backlog::default());
    }

    #[tokio::test]
    async fn priority_dead_letter_after_max_deliveries() {
        let server = RedisServer::start().unwrap();
        let q: PriorityQueue<Bid> = PriorityQueue::connect(&config(&server, "a", 2), "bids")
            .await
            .unwrap();
        q.enqueue(&bid("cursed", 7, 1.0)).await.unwrap();
        for delivery in 1..=2 {
            let got = q
                .fetch(1, Duration::from_millis(VISIBILITY_MS * 5))
                .await
                .unwrap();
            assert_eq!(got.len(), 1, "delivery {delivery}");
            assert_eq!(got[0].deliveries, delivery);
            // Never acknowledged.
        }
        tokio::time::sleep(Duration::from_millis(VISIBILITY_MS + 50)).await;
        assert!(q.fetch(1, Duration::ZERO).await.unwrap().is_empty());
        let dead = q.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].source_id, "cursed@7");
        assert_eq!(dead[0].deliveries, 2);
        assert!(
            dead[0].reason.contains("2 deliveries"),
            "{}",
            dead[0].reason
        );
        let original = dead[0].original(JOB_FIELD).unwrap();
        let decoded = envelope::decode::<Bid>(&[(JOB_FIELD.into(), original.to_vec())]).unwrap();
        assert_eq!(decoded.payload, bid("cursed", 7, 1.0));
        let backlog = q.backlog().await.unwrap();
        assert_eq!(
            (backlog.pending, backlog.lag, backlog.dead_letters),
            (0, 0, 1)
        );
        // The key is free again for a new candidate.
        let fresh = q.push(&[bid("cursed", 7, 1.0)]).await.unwrap();
        assert_eq!(fresh[0].status, EnqueueStatus::Queued);
    }

    #[tokio::test]
    async fn priority_malformed_payload_dead_lettered() {
        let server = RedisServer::start().unwrap();
        let q = queue(&server, "a").await;
        q.enqueue(&bid("fine", 1, 1.0)).await.unwrap();
        let mut conn = q.inner.conn.clone();
        let keys = q.keys().clone();
        let _: () = redis::pipe()
            .cmd("ZADD")
            .arg(&keys.ready)
            .arg(50)
            .arg("junk@1")
            .ignore()
            .cmd("HSET")
            .arg(&keys.payloads)
            .arg("junk@1")
            .arg("{not json")
            .ignore()
            .cmd("ZADD")
            .arg(&keys.ready)
            .arg(40)
            .arg("other-kind@1")
            .ignore()
            .cmd("HSET")
            .arg(&keys.payloads)
            .arg("other-kind@1")
            .arg(r#"{"kind":"other","version":1,"enqueued_at_ms":1,"payload":{}}"#)
            .ignore()
            .cmd("ZADD")
            .arg(&keys.ready)
            .arg(30)
            .arg("no-payload@1")
            .ignore()
            .query_async(&mut conn)
            .await
            .unwrap();
        let got = q.fetch(10, Duration::ZERO).await.unwrap();
        assert_eq!(accounts(&got), ["fine"], "only the good job is handed out");
        let dead = q.dead_letters(10).await.unwrap();
        let reasons: Vec<(&str, &str)> = dead
            .iter()
            .map(|d| (d.source_id.as_str(), d.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].0 == "junk@1" && reasons[0].1.contains("not a job envelope"));
        assert!(reasons[1].0 == "other-kind@1" && reasons[1].1.contains("kind `other`"));
        assert!(reasons[2].0 == "no-payload@1" && reasons[2].1.contains("payload missing"));
        assert_eq!(dead[0].original(JOB_FIELD).unwrap(), b"{not json");
        let counters = q.counters();
        assert_eq!(counters.malformed, 3);
        assert_eq!(counters.dead_lettered, 3);
        assert_eq!(q.pending_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn priority_concurrent_consumers_get_distinct_jobs() {
        let server = RedisServer::start().unwrap();
        let producer = queue(&server, "producer").await;
        let jobs: Vec<Bid> = (0..400)
            .map(|i| bid(&format!("acct{i}"), 1, f64::from(i)))
            .collect();
        producer.enqueue_batch(&jobs).await.unwrap();
        let mut tasks = Vec::new();
        for c in 0..4 {
            let q = queue(&server, &format!("consumer-{c}")).await;
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let got = q.fetch(7, Duration::from_millis(50)).await.unwrap();
                    if got.is_empty() {
                        return seen;
                    }
                    q.ack_many(&got).await.unwrap();
                    seen.extend(got.into_iter().map(|d| d.job.account));
                }
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let seen = task.await.unwrap();
            assert!(!seen.is_empty(), "every consumer got work");
            all.extend(seen);
        }
        assert_eq!(all.len(), 400, "no job handed out twice");
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 400);
    }

    #[tokio::test]
    async fn priority_liquidation_candidates_by_profit_one_per_account() {
        let server = RedisServer::start().unwrap();
        let q: PriorityQueue<LiquidationCandidate> =
            PriorityQueue::connect(&config(&server, "a", 3), crate::jobs::LIQUIDATION_QUEUE)
                .await
                .unwrap();
        let candidate = |account: &str, height: u64, profit: u64| LiquidationCandidate {
            chain_id: "devnet-1".into(),
            protocol: ProtocolKind::RedBank,
            account: AccountKey::Address(account.into()),
            height,
            found_at_ms: 0,
            health: Health::default(),
            plan: (profit > 0).then(|| LiquidationPlan {
                debt_denom: "uusdc".into(),
                collateral_denom: "uatom".into(),
                debt_to_repay: 1u128.into(),
                collateral_received: 1u128.into(),
                expected_profit_usd: Decimal::from_ratio(profit, 100u128),
                from_lend: false,
            }),
            armed: false,
        };
        q.push(&[
            candidate("osmo1a", 5, 150),
            candidate("osmo1b", 5, 99_999),
            candidate("osmo1c", 5, 0),
            candidate("osmo1a", 6, 151),
        ])
        .await
        .unwrap();
        let got = q.fetch(10, Duration::ZERO).await.unwrap();
        let order: Vec<(String, u64)> = got
            .iter()
            .map(|d| (d.job.account.as_string(), d.job.height))
            .collect();
        let expected = [("osmo1b", 5), ("osmo1a", 6), ("osmo1c", 5)];
        assert_eq!(order, expected.map(|(a, h)| (a.to_string(), h)));
        assert_eq!(got[1].id.as_str(), "devnet-1/red_bank/osmo1a@6");
        assert_eq!(q.keys().ready, "redline:{liquidations}:ready");
    }

    #[test]
    fn decimal_priority_conversion() {
        assert_eq!(decimal_to_f64(Decimal::percent(150)), 1.5);
        assert_eq!(decimal_to_f64(Decimal::zero()), 0.0);
        assert!(decimal_to_f64(Decimal::MAX) > 1e20);
    }
}
