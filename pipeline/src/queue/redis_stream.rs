//! [`Queue`] on Redis Streams with consumer groups.
//!
//! One stream per queue (`<prefix>:<name>`), one consumer group per stream, one dead-letter
//! stream beside it (`<prefix>:<name>:dead`). Commands used, and why:
//!
//! - `XGROUP CREATE … 0 MKSTREAM` on connect (and again if Redis lost the group, e.g. after a
//!   restart without persistence): start id `0` so jobs enqueued before any consumer existed
//!   are still processed; `BUSYGROUP` (the group exists) is fine.
//! - `XADD [MAXLEN ~ n]` to enqueue. The cap (`--queue-max-len`) is off by default because
//!   trimming drops the oldest entries whether or not they were processed.
//! - `XREADGROUP … >` for new jobs. A delivered job sits in the group's pending entries list
//!   (PEL) until acknowledged, so a consumer that dies holding it loses nothing.
//! - `XACK` + `XDEL` in one `MULTI` once the caller says the job's effect is durable. Deleting
//!   acknowledged entries keeps the stream as long as its backlog; it also means one group per
//!   stream (a second group would lose the entries the first one deleted).
//! - `XAUTOCLAIM` (min idle = visibility timeout) takes over jobs a consumer has held too long;
//!   `XPENDING` then gives each reclaimed job's delivery count, and past the limit the job goes
//!   to the dead-letter stream instead of to the caller.
//! - Dead-lettering is `XADD <stream>:dead` first and, only once that succeeded, `XACK` + `XDEL`
//!   on the stream. A crash in between leaves the job pending, so it is reclaimed and
//!   dead-lettered again: a duplicate dead letter at worst, never a job that vanished. (The
//!   other order could acknowledge a job whose dead letter was never written; and the two keys
//!   are not put in one `MULTI` so that they need not share a cluster slot.)
//!
//! Blocking reads use their own connection: a multiplexed connection runs its commands in
//! order, so a `BLOCK`ed read would hold up every ack behind it.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::streams::StreamInfoGroupsReply;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, Value};

use super::config::QueueConfig;
use super::envelope::{self, JOB_FIELD};
use super::redis_common::{self, connect_options, millis, now_ms, Counters, COMMAND_TIMEOUT};
use super::{Backlog, Delivery, Job, JobId, Queue, QueueCounters, QueueError};
use crate::redis_conn::{RedisConn, RedisTarget};
/// `XAUTOCLAIM` calls per reclaim at most: each scans a bounded slice of the pending list, and
/// a fetch should not stall on a huge one.
const MAX_CLAIM_ROUNDS: usize = 8;
/// Prefix of the original message's fields in a dead letter, so they cannot collide with the
/// dead letter's own fields.
const ORIGINAL_FIELD_PREFIX: &str = "original:";

/// Resets a pending entry's idle time, but only while `consumer` still owns it: a slow consumer
/// must not take back a job another consumer has already reclaimed.
/// KEYS[1] stream; ARGV group, consumer, id, idle ms to set.
const OWNED_RECLAIM_LUA: &str = include_str!("../lua/stream_owned_reclaim.lua");

/// A [`Queue`] of `J` jobs on one Redis stream. Cheap to clone; clones share connections,
/// consumer name and counters. Blocking fetches of one handle (and its clones) take turns on
/// its blocking connection: for fetches in parallel, connect one handle per fetching task,
/// each with its own consumer name.
pub struct RedisStreamQueue<J> {
    inner: Arc<Inner>,
    job: PhantomData<fn() -> J>,
}

impl<J> Clone for RedisStreamQueue<J> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            job: PhantomData,
        }
    }
}

impl<J> std::fmt::Debug for RedisStreamQueue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamQueue")
            .field("url", &self.inner.redacted_url)
            .field("stream", &self.inner.stream)
            .field("group", &self.inner.group)
            .field("consumer", &self.inner.consumer)
            .finish_non_exhaustive()
    }
}

/// One entry of the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Entry id in the dead-letter stream.
    pub id: String,
    /// Id the job had in its queue.
    pub source_id: String,
    pub reason: String,
    /// Deliveries the job had when it was dead-lettered (0 if the entry does not say).
    pub deliveries: u64,
    /// Consumer that dead-lettered it.
    pub consumer: String,
    pub dead_lettered_at_ms: u64,
    /// The original message's fields, byte for byte.
    pub original_fields: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    /// Reads a dead-letter stream entry, `id` with its fields (either queue writes the same
    /// ones); a field it does not know is left out.
    pub(super) fn from_fields(
        id: String,
        fields: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Self {
        let mut letter = DeadLetter {
            id,
            source_id: String::new(),
            reason: String::new(),
            deliveries: 0,
            consumer: String::new(),
            dead_lettered_at_ms: 0,
            original_fields: Vec::new(),
        };
        for (name, value) in fields {
            if let Some(original) = name.strip_prefix(ORIGINAL_FIELD_PREFIX) {
                letter.original_fields.push((original.to_owned(), value));
                continue;
            }
            let text = String::from_utf8_lossy(&value).into_owned();
            match name.as_str() {
                "source_id" => letter.source_id = text,
                "reason" => letter.reason = text,
                "deliveries" => letter.deliveries = text.parse().unwrap_or(0),
                "consumer" => letter.consumer = text,
                "dead_lettered_at_ms" => letter.dead_lettered_at_ms = text.parse().unwrap_or(0),
                _ => {}
            }
        }
        letter
    }

    /// The original value of `field` (e.g. [`JOB_FIELD`]).
    pub fn original(&self, field: &str) -> Option<&[u8]> {
        self.original_fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_slice())
    }
}

struct Inner {
    target: RedisTarget,
    redacted_url: String,
    stream: String,
    dead_stream: String,
    group: String,
    consumer: String,
    visibility: Duration,
    max_deliveries: u64,
    max_len: Option<u64>,
    conn: RedisConn,
    /// Connection for `XREADGROUP … BLOCK`; dropped and rebuilt when a read outlives its
    /// deadline, since a connection that stopped answering would otherwise stay stuck.
    blocking: tokio::sync::Mutex<Option<RedisConn>>,
    /// Where the next `XAUTOCLAIM` scan of the pending list resumes.
    claim_cursor: Mutex<String>,
    owned_reclaim: redis::Script,
    counters: Counters,
}

/// The group (or the whole stream) is gone, typically because Redis restarted empty.
fn is_missing_group(error: &RedisError) -> bool {
    error.code() == Some("NOGROUP") || error.detail().is_some_and(|d| d.contains("no such key"))
}

impl<J: Job> RedisStreamQueue<J> {
    /// Connects to the queue `name` (stream `<prefix>:<name>`) and makes sure its consumer
    /// group exists. Validates `config` first.
    pub async fn connect(config: &QueueConfig, name: &str) -> Result<Self, QueueError> {
        let redis_common::Connection {
            redacted_url,
            target,
            conn,
        } = redis_common::connect(config, name, |_| false).await?;
        let stream = config.stream_key(name);
        let inner = Inner {
            target,
            redacted_url: redacted_url.clone(),
            dead_stream: format!("{stream}:dead"),
            stream,
            group: config.queue_group.clone(),
            consumer: config.consumer_name(),
            visibility: config.visibility_timeout(),
            max_deliveries: u64::from(config.queue_max_deliveries),
            max_len: config.queue_max_len,
            conn,
            blocking: tokio::sync::Mutex::new(None),
            claim_cursor: Mutex::new("0-0".to_owned()),
            owned_reclaim: redis::Script::new(OWNED_RECLAIM_LUA),
            counters: Counters::default(),
        };
        inner.ensure_group().await?;
        tracing::debug!(
            url = %redacted_url,
            stream = %inner.stream,
            group = %inner.group,
            consumer = %inner.consumer,
            "queue connected"
        );
        Ok(Self {
            inner: Arc::new(inner),
            job: PhantomData,
        })
    }

    /// Stream key of the queue.
    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    /// Stream key of the dead-letter stream.
    pub fn dead_letter_stream(&self) -> &str {
        &self.inner.dead_stream
    }

    pub fn group(&self) -> &str {
        &self.inner.group
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

    /// The oldest `max` entries of the dead-letter stream.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let inner = &self.inner;
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&inner.dead_stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(max);
        let value: Value = inner.run("XRANGE dead letters", &cmd).await?;
        let entries = parse_entry_list(value)
            .map_err(|detail| inner.reply_error("XRANGE dead letters", detail))?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| match entry {
                Ok(RawEntry {
                    id,
                    fields: Fields::Present(fields),
                }) => Some(DeadLetter::from_fields(
                    id,
                    fields
                        .into_iter()
                        .map(|(name, value)| (String::from_utf8_lossy(&name).into_owned(), value)),
                )),
                _ => None,
            })
            .collect())
    }

    /// New jobs, waiting up to `block` (`None`: not at all).
    async fn read_new(
        &self,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery<J>>, QueueError> {
        let inner = &self.inner;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&inner.group)
            .arg(&inner.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(millis(block).max(1));
        }
        cmd.arg("STREAMS").arg(&inner.stream).arg(">");
        let value = match block {
            Some(block) => inner.run_blocking("XREADGROUP", &cmd, block).await?,
            None => inner.run::<Value>("XREADGROUP", &cmd).await?,
        };
        let entries =
            parse_read_reply(value).map_err(|detail| inner.reply_error("XREADGROUP", detail))?;
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            // `>` only hands out entries never delivered before.
            if let Some(delivery) = self.accept(entry, 1).await {
                deliveries.push(delivery);
            }
        }
        Ok(deliveries)
    }

    /// Turns a raw entry into a delivery, or dead-letters it when it does not decode.
    async fn accept(
        &self,
        entry: Result<RawEntry, String>,
        deliveries: u64,
    ) -> Option<Delivery<J>> {
        let inner = &self.inner;
        let entry = match entry {
            Ok(entry) => entry,
            Err(problem) => {
                // Without an id there is nothing to acknowledge or move; Redis never sends this.
                tracing::error!(stream = %inner.stream, %problem, "unusable stream entry skipped");
                return None;
            }
        };
        let fields = match entry.fields {
            Fields::Present(fields) => fields,
            Fields::Deleted => {
                inner.note_vanished(&entry.id);
                return None;
            }
            Fields::Malformed(problem) => {
                inner
                    .dead_letter_logged(&entry.id, &[], &problem, deliveries, true)
                    .await;
                return None;
            }
        };
        match envelope::decode::<J>(&fields) {
            Ok(envelope) => {
                Counters::add(&inner.counters.delivered, 1);
                Some(
                    Delivery::new(
                        JobId::new(entry.id),
                        envelope.payload,
                        envelope.version,
                        envelope.enqueued_at_ms,
                        deliveries,
                    )
                    .with_original_fields(fields),
                )
            }
            Err(problem) => {
                inner
                    .dead_letter_logged(&entry.id, &fields, &problem.to_string(), deliveries, true)
                    .await;
                None
            }
        }
    }
}

impl Inner {
    fn redis_error(&self, operation: &'static str, source: RedisError) -> QueueError {
        QueueError::Redis {
            stream: self.stream.clone(),
            operation,
            source,
        }
    }

    fn reply_error(&self, operation: &'static str, detail: impl Into<String>) -> QueueError {
        QueueError::Reply {
            stream: self.stream.clone(),
            operation,
            detail: detail.into(),
        }
    }

    async fn ensure_group(&self) -> Result<(), QueueError> {
        let result: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match result {
            Ok(()) => {
                tracing::debug!(stream = %self.stream, group = %self.group, "consumer group created");
                Ok(())
            }
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            Err(error) => Err(self.redis_error("XGROUP CREATE", error)),
        }
    }

    /// Runs `cmd`; recreates the group once if Redis lost it.
    async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &Cmd,
    ) -> Result<T, QueueError> {
        self.with_group(operation, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// [`run`](Self::run) for a pipeline.
    async fn run_pipe<T: FromRedisValue>(
        &self,
        operation: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, QueueError> {
        self.with_group(operation, |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
    }

    /// Runs `query` on a clone of the command connection; when Redis lost the group, recreates
    /// it and runs `query` once more.
    async fn with_group<T, Run, Answer>(
        &self,
        operation: &'static str,
        query: Run,
    ) -> Result<T, QueueError>
    where
        Run: Fn(RedisConn) -> Answer,
        Answer: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match query(self.conn.clone()).await {
            Err(error) if is_missing_group(&error) => {
                self.ensure_group().await?;
                query(self.conn.clone())
                    .await
                    .map_err(|e| self.redis_error(operation, e))
            }
            result => result.map_err(|e| self.redis_error(operation, e)),
        }
    }

    /// Runs a blocking read on the blocking connection, with a deadline of `block` plus the
    /// usual command timeout.
    async fn run_blocking(
        &self,
        operation: &'static str,
        cmd: &Cmd,
        block: Duration,
    ) -> Result<Value, QueueError> {
        // Held for the whole read: blocked reads queued behind one another on one connection
        // would each eat into the next one's deadline.
        let mut slot = self.blocking.lock().await;
        let deadline = block + COMMAND_TIMEOUT;
        for attempt in 0..2 {
            let mut conn = match slot.as_ref() {
                Some(conn) => conn.clone(),
                None => {
                    // Its own connection: on a multiplexed one (standalone or cluster) a
                    // blocked read would hold up every command queued behind it.
                    let conn =
                        self.target
                            .connect(connect_options(None))
                            .await
                            .map_err(|source| QueueError::Connect {
                                url: self.redacted_url.clone(),
                                source,
                            })?;
                    *slot = Some(conn.clone());
                    conn
                }
            };
            match tokio::time::timeout(deadline, cmd.query_async::<Value>(&mut conn)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if attempt == 0 && is_missing_group(&error) => {
                    self.ensure_group().await?;
                }
                Ok(Err(error)) => return Err(self.redis_error(operation, error)),
                Err(_elapsed) => {
                    *slot = None;
                    return Err(QueueError::Timeout {
                        stream: self.stream.clone(),
                        operation,
                        timeout: deadline,
                    });
                }
            }
        }
        Err(self.reply_error(operation, "consumer group missing after re-creating it"))
    }

    fn xadd(&self, stream: &str, fields: &[(&[u8], &[u8])]) -> Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream);
        if let Some(max_len) = self.max_len {
            cmd.arg("MAXLEN").arg("~").arg(max_len);
        }
        cmd.arg("*");
        for (name, value) in fields {
            cmd.arg(*name).arg(*value);
        }
        cmd
    }

    fn note_vanished(&self, id: &str) {
        Counters::add(&self.counters.vanished, 1);
        tracing::warn!(
            stream = %self.stream,
            id,
            "pending job was deleted from the stream before it was acknowledged (trimmed by the \
             length cap?); its work is lost"
        );
    }

    /// Moves one entry to the dead-letter stream: `XADD` there first, then `XACK` + `XDEL`
    /// here (see the module docs for why in this order).
    async fn dead_letter(
        &self,
        id: &str,
        original_fields: &[(Vec<u8>, Vec<u8>)],
        reason: &str,
        deliveries: u64,
        malformed: bool,
    ) -> Result<(), QueueError> {
        let deliveries_text = deliveries.to_string();
        let at_text = now_ms().to_string();
        let mut fields: Vec<(Vec<u8>, &[u8])> = vec![
            (b"reason".to_vec(), reason.as_bytes()),
            (b"source_stream".to_vec(), self.stream.as_bytes()),
            (b"source_id".to_vec(), id.as_bytes()),
            (b"group".to_vec(), self.group.as_bytes()),
            (b"consumer".to_vec(), self.consumer.as_bytes()),
            (b"deliveries".to_vec(), deliveries_text.as_bytes()),
            (b"dead_lettered_at_ms".to_vec(), at_text.as_bytes()),
        ];
        for (name, value) in original_fields {
            let mut prefixed = ORIGINAL_FIELD_PREFIX.as_bytes().to_vec();
            prefixed.extend_from_slice(name);
            fields.push((prefixed, value));
        }
        let borrowed: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(name, value)| (name.as_slice(), *value))
            .collect();
        let add = self.xadd(&self.dead_stream, &borrowed);
        let _: String = add
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.redis_error("XADD dead letter", e))?;

        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(id)
            .ignore();
        let () = self.run_pipe("XACK dead-lettered job", &pipe).await?;

        Counters::add(&self.counters.dead_lettered, 1);
        if malformed {
            Counters::add(&self.counters.malformed, 1);
        }
        tracing::warn!(
            stream = %self.stream,
            dead_letter_stream = %self.dead_stream,
            id,
            deliveries,
            reason,
            "job moved to the dead-letter stream"
        );
        Ok(())
    }

    /// [`dead_letter`](Self::dead_letter) on the fetch path: a failure is logged, not
    /// returned, so one bad message never stops a fetch. The job stays pending and is
    /// reclaimed, and dead-lettered, later.
    async fn dead_letter_logged(
        &self,
        id: &str,
        original_fields: &[(Vec<u8>, Vec<u8>)],
        reason: &str,
        deliveries: u64,
        malformed: bool,
    ) {
        if let Err(error) = self
            .dead_letter(id, original_fields, reason, deliveries, malformed)
            .await
        {
            tracing::error!(
                stream = %self.stream,
                id,
                reason,
                %error,
                "could not dead-letter a job; it stays pending and will be retried"
            );
        }
    }

    /// Runs the owner-checked `XCLAIM` that sets the entry's idle time to `idle`.
    async fn set_idle_if_owned(
        &self,
        operation: &'static str,
        id: &JobId,
        idle: Duration,
    ) -> Result<bool, QueueError> {
        let owned: i64 = self
            .owned_reclaim
            .key(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(id.as_str())
            .arg(millis(idle))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.redis_error(operation, e))?;
        Ok(owned == 1)
    }
}

impl<J: Job> Queue for RedisStreamQueue<J> {
    type Job = J;

    async fn enqueue(&self, job: &J) -> Result<JobId, QueueError> {
        let inner = &self.inner;
        let payload = envelope::encode(job, now_ms()).map_err(|source| QueueError::Encode {
            stream: inner.stream.clone(),
            kind: J::KIND,
            source,
        })?;
        let cmd = inner.xadd(&inner.stream, &[(JOB_FIELD.as_bytes(), &payload)]);
        let id: String = cmd
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(|e| inner.redis_error("XADD", e))?;
        Counters::add(&inner.counters.enqueued, 1);
        Ok(JobId::new(id))
    }

    async fn enqueue_batch(&self, jobs: &[J]) -> Result<Vec<JobId>, QueueError> {
        let inner = &self.inner;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let at = now_ms();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for job in jobs {
            let payload = envelope::encode(job, at).map_err(|source| QueueError::Encode {
                stream: inner.stream.clone(),
                kind: J::KIND,
                source,
            })?;
            pipe.add_command(inner.xadd(&inner.stream, &[(JOB_FIELD.as_bytes(), &payload)]));
        }
        let ids: Vec<String> = pipe
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(|e| inner.redis_error("XADD batch", e))?;
        if ids.len() != jobs.len() {
            return Err(inner.reply_error(
                "XADD batch",
                format!("{} ids for {} jobs", ids.len(), jobs.len()),
            ));
        }
        Counters::add(&inner.counters.enqueued, jobs.len() as u64);
        Ok(ids.into_iter().map(JobId::new).collect())
    }

    async fn fetch(&self, max: usize, block: Duration) -> Result<Vec<Delivery<J>>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut deliveries = self.reclaim_stale(max).await?;
        if deliveries.len() < max {
            // Wait for new jobs only when there is nothing else to hand out.
            let wait = (deliveries.is_empty() && !block.is_zero()).then_some(block);
            deliveries.extend(self.read_new(max - deliveries.len(), wait).await?);
        }
        Ok(deliveries)
    }

    async fn reclaim_stale(&self, max: usize) -> Result<Vec<Delivery<J>>, QueueError> {
        let inner = &self.inner;
        let mut claimed = Vec::new();
        for _ in 0..MAX_CLAIM_ROUNDS {
            if claimed.len() >= max {
                break;
            }
            let start = inner
                .claim_cursor
                .lock()
                .map(|cursor| cursor.clone())
                .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&inner.stream)
                .arg(&inner.group)
                .arg(&inner.consumer)
                .arg(millis(inner.visibility))
                .arg(&start)
                .arg("COUNT")
                .arg(max - claimed.len());
            let value: Value = inner.run("XAUTOCLAIM", &cmd).await?;
            let reply =
                parse_autoclaim(value).map_err(|detail| inner.reply_error("XAUTOCLAIM", detail))?;
            match inner.claim_cursor.lock() {
                Ok(mut cursor) => cursor.clone_from(&reply.next_start),
                Err(poisoned) => poisoned.into_inner().clone_from(&reply.next_start),
            }
            for id in &reply.deleted {
                inner.note_vanished(id);
            }
            claimed.extend(reply.entries);
            if reply.next_start == "0-0" {
                break;
            }
        }
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        Counters::add(&inner.counters.reclaimed, claimed.len() as u64);

        // XAUTOCLAIM has just counted this delivery; XPENDING tells how many there were.
        let mut pipe = redis::pipe();
        for entry in &claimed {
            let id = match entry {
                Ok(entry) => entry.id.as_str(),
                Err(_) => "0-0",
            };
            pipe.cmd("XPENDING")
                .arg(&inner.stream)
                .arg(&inner.group)
                .arg(id)
                .arg(id)
                .arg(1);
        }
        let pending: Vec<Value> = inner.run_pipe("XPENDING", &pipe).await?;

        let mut deliveries = Vec::with_capacity(claimed.len());
        for (entry, pending) in claimed.into_iter().zip(pending) {
            let Some((owner, count)) = parse_pending_entry(pending) else {
                // Acknowledged in the meantime by its slow previous owner: nothing to do.
                continue;
            };
            if owner != inner.consumer {
                continue;
            }
            if let Ok(raw) = &entry {
                tracing::info!(
                    stream = %inner.stream,
                    id = %raw.id,
                    deliveries = count,
                    "reclaimed a job its consumer held past the visibility timeout"
                );
                if count > inner.max_deliveries {
                    let reason = format!(
                        "not acknowledged after {} deliveries (limit {})",
                        count - 1,
                        inner.max_deliveries
                    );
                    let fields = match &raw.fields {
                        Fields::Present(fields) => fields.as_slice(),
                        _ => &[],
                    };
                    inner
                        .dead_letter_logged(&raw.id, fields, &reason, count, false)
                        .await;
                    continue;
                }
            }
            if let Some(delivery) = self.accept(entry, count).await {
                deliveries.push(delivery);
            }
        }
        Ok(deliveries)
    }

    async fn ack(&self, delivery: &Delivery<J>) -> Result<bool, QueueError> {
        let acked = self.ack_many(std::slice::from_ref(delivery)).await?;
        Ok(acked == 1)
    }

    async fn ack_many(&self, deliveries: &[Delivery<J>]) -> Result<u64, QueueError> {
        let inner = &self.inner;
        if deliveries.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XACK")
            .arg(&inner.stream)
            .arg(&inner.group)
            .arg(&ids)
            .cmd("XDEL")
            .arg(&inner.stream)
            .arg(&ids)
            .ignore();
        let (acked,): (u64,) = pipe
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(|e| inner.redis_error("XACK", e))?;
        Counters::add(&inner.counters.acked, acked);
        if acked < ids.len() as u64 {
            tracing::debug!(
                stream = %inner.stream,
                acked,
                requested = ids.len(),
                "some jobs were no longer pending (finished by a consumer that reclaimed them)"
            );
        }
        Ok(acked)
    }

    async fn release(&self, delivery: &Delivery<J>) -> Result<(), QueueError> {
        let inner = &self.inner;
        let owned = inner
            .set_idle_if_owned("XCLAIM release", &delivery.id, inner.visibility)
            .await?;
        if !owned {
            tracing::debug!(stream = %inner.stream, id = %delivery.id, "released job was no longer ours");
        }
        Ok(())
    }

    async fn extend_visibility(&self, delivery: &Delivery<J>) -> Result<bool, QueueError> {
        self.inner
            .set_idle_if_owned("XCLAIM extend", &delivery.id, Duration::ZERO)
            .await
    }

    async fn dead_letter(&self, delivery: &Delivery<J>, reason: &str) -> Result<(), QueueError> {
        self.inner
            .dead_letter(
                delivery.id.as_str(),
                delivery.original_fields(),
                reason,
                delivery.deliveries,
                false,
            )
            .await
    }

    async fn pending_count(&self) -> Result<u64, QueueError> {
        let inner = &self.inner;
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&inner.stream).arg(&inner.group);
        let value: Value = inner.run("XPENDING", &cmd).await?;
        match value {
            Value::Array(items) => match items.first() {
                Some(Value::Int(count)) => Ok(u64::try_from(*count).unwrap_or(0)),
                other => Err(inner.reply_error("XPENDING", format!("count is {other:?}"))),
            },
            other => Err(inner.reply_error("XPENDING", format!("{other:?}"))),
        }
    }

    async fn lag(&self) -> Result<u64, QueueError> {
        Ok(self.backlog().await?.lag)
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        let inner = &self.inner;
        let mut pipe = redis::pipe();
        pipe.cmd("XINFO")
            .arg("GROUPS")
            .arg(&inner.stream)
            .cmd("XLEN")
            .arg(&inner.stream)
            .cmd("XLEN")
            .arg(&inner.dead_stream);
        let (groups, length, dead_letters): (StreamInfoGroupsReply, u64, u64) =
            inner.run_pipe("XINFO GROUPS", &pipe).await?;
        let Some(group) = groups.groups.iter().find(|g| g.name == inner.group) else {
            return Ok(Backlog {
                pending: 0,
                lag: length,
                dead_letters,
            });
        };
        let pending = group.pending as u64;
        // Redis reports no lag when deleted entries make its counter uncertain. Acknowledged
        // entries are deleted, so the stream holds exactly the pending and the unread ones.
        let lag = group
            .lag
            .map(|lag| lag as u64)
            .unwrap_or_else(|| length.saturating_sub(pending));
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

// ---- Parsing stream replies by hand, so that one odd entry can never make a whole reply (and
// with it every later fetch) unreadable.

enum Fields {
    Present(Vec<(Vec<u8>, Vec<u8>)>),
    /// The entry is in the pending list but no longer in the stream.
    Deleted,
    /// The entry exists but its fields cannot be read; the text says why.
    Malformed(String),
}

struct RawEntry {
    id: String,
    fields: Fields,
}

struct AutoClaim {
    next_start: String,
    entries: Vec<Result<RawEntry, String>>,
    deleted: Vec<String>,
}

fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn into_string(value: Value) -> Option<String> {
    into_bytes(value).and_then(|bytes| String::from_utf8(bytes).ok())
}

fn parse_fields(value: Value) -> Fields {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Nil => return Fields::Deleted,
        Value::Map(pairs) => pairs,
        Value::Array(flat) => {
            if flat.len() % 2 != 0 {
                return Fields::Malformed(format!(
                    "entry has {} field names and values, not pairs",
                    flat.len()
                ));
            }
            let mut flat = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((name, value));
            }
            pairs
        }
        other => return Fields::Malformed(format!("entry fields are {other:?}")),
    };
    let mut fields = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match (into_bytes(name), into_bytes(value)) {
            (Some(name), Some(value)) => fields.push((name, value)),
            _ => return Fields::Malformed("entry field is not a string".to_owned()),
        }
    }
    Fields::Present(fields)
}

fn parse_entry(value: Value) -> Result<RawEntry, String> {
    let Value::Array(items) = value else {
        return Err(format!("entry is {value:?}"));
    };
    let mut items = items.into_iter();
    let id = items
        .next()
        .and_then(into_string)
        .ok_or_else(|| "entry has no id".to_owned())?;
    let fields = parse_fields(items.next().unwrap_or(Value::Nil));
    Ok(RawEntry { id, fields })
}

fn parse_entry_list(value: Value) -> Result<Vec<Result<RawEntry, String>>, String> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => Ok(entries.into_iter().map(parse_entry).collect()),
        other => Err(format!("entry list is {other:?}")),
    }
}

/// `XREADGROUP`: nil on timeout, else `[[stream, entries]]` (a map in RESP3).
fn parse_read_reply(value: Value) -> Result<Vec<Result<RawEntry, String>>, String> {
    let per_stream: Vec<Value> = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect(),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.pop().unwrap_or(Value::Nil)),
                other => Err(format!("stream reply is {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("reply is {other:?}")),
    };
    let mut entries = Vec::new();
    for list in per_stream {
        entries.extend(parse_entry_list(list)?);
    }
    Ok(entries)
}

/// `XAUTOCLAIM`: `[next start id, entries, deleted ids]` (the last since Redis 7).
fn parse_autoclaim(value: Value) -> Result<AutoClaim, String> {
    let Value::Array(items) = value else {
        return Err(format!("reply is {value:?}"));
    };
    let mut items = items.into_iter();
    let next_start = items
        .next()
        .and_then(into_string)
        .ok_or("reply has no next start id")?;
    let entries = parse_entry_list(items.next().unwrap_or(Value::Nil))?
        .into_iter()
        // Redis 6.2 lists entries deleted from the stream as nil: no id, nothing to claim.
        .filter(|entry| !matches!(entry, Err(problem) if problem == "entry is nil"))
        .collect();
    let deleted = match items.next() {
        Some(Value::Array(ids)) => ids.into_iter().filter_map(into_string).collect(),
        _ => Vec::new(),
    };
    Ok(AutoClaim {
        next_start,
        entries,
        deleted,
    })
}

/// One `XPENDING key group id id 1` reply: the owner and delivery count, or `None` when the
/// entry is no longer pending.
fn parse_pending_entry(value: Value) -> Option<(String, u64)> {
    let Value::Array(rows) = value else {
        return None;
    };
    let Value::Array(row) = rows.into_iter().next()? else {
        return None;
    };
    let mut row = row.into_iter();
    let _id = row.next();
    let owner = into_string(row.next()?)?;
    let _idle = row.next();
    let count = match row.next()? {
        Value::Int(n) => u64::try_from(n).ok()?,
        other => into_string(other)?.parse().ok()?,
    };
    Some((owner, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn odd_entries_do_not_spoil_a_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("q"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("job"), bulk("{}")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Array(vec![bulk("lonely")])]),
                Value::Array(vec![bulk("3-0"), Value::Nil]),
                Value::Int(7),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries.len(), 4);
        assert!(
            matches!(&entries[0], Ok(RawEntry { id, fields: Fields::Present(f) }) if id == "1-0" && f.len() == 1)
        );
        assert!(matches!(
            &entries[1],
            Ok(RawEntry {
                fields: Fields::Malformed(_),
                ..
            })
        ));
        assert!(matches!(
            &entries[2],
            Ok(RawEntry {
                fields: Fields::Deleted,
                ..
            })
        ));
        assert!(entries[3].is_err());
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn pending_entry_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            bulk("worker-1"),
            Value::Int(250),
            Value::Int(3),
        ])]);
        assert_eq!(parse_pending_entry(reply), Some(("worker-1".to_owned(), 3)));
        assert_eq!(parse_pending_entry(Value::Array(vec![])), None);
    }
}
