//! Wakes a priority queue's idle fetches as soon as a job becomes ready, instead of at their
//! next poll (up to [`POLL_MAX`](super::priority) later).
//!
//! The scripts that make jobs ready (enqueue, release, wake) append an entry to the queue's
//! `<base>:doorbell` stream. Each queue handle that fetches runs one listener: a blocking
//! `XREAD` on a connection of its own, which wakes every fetch of the handle (and of its clones)
//! that is waiting. A stream, because every process must hear every ring (a list would wake
//! one); not pub/sub, because the cluster connection has no subscriptions. Polling stays as the
//! fallback, so a listener that cannot reach Redis costs the poll interval, never a job.

use std::sync::OnceLock;
use std::time::Duration;

use redis::streams::{StreamRangeReply, StreamReadReply};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::redis_common::connect_options;
use crate::redis_conn::{RedisConn, RedisTarget};

/// How long one `XREAD` blocks; the listener's liveness, not the wake-up latency.
const BLOCK: Duration = Duration::from_secs(2);
/// Pause before reconnecting after an error.
const RETRY: Duration = Duration::from_secs(1);

pub(super) struct Doorbell {
    key: String,
    target: RedisTarget,
    rung: std::sync::Arc<Notify>,
    listener: OnceLock<JoinHandle<()>>,
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

impl Doorbell {
    pub fn new(target: RedisTarget, key: String) -> Self {
        Doorbell {
            key,
            target,
            rung: std::sync::Arc::new(Notify::new()),
            listener: OnceLock::new(),
        }
    }

    /// Completes at the first ring after it is enabled (pin it and call `enable` before looking
    /// at the queue, so a ring in between is not missed). Starts the listener on first use.
    pub fn next_ring(&self) -> Notified<'_> {
        self.listener.get_or_init(|| {
            tokio::spawn(listen(
                self.target.clone(),
                self.key.clone(),
                self.rung.clone(),
            ))
        });
        self.rung.notified()
    }
}

async fn listen(target: RedisTarget, key: String, rung: std::sync::Arc<Notify>) {
    let mut warned = false;
    loop {
        match listen_until_error(&target, &key, &rung).await {
            Ok(never) => match never {},
            Err(error) if !warned => {
                warned = true;
                tracing::warn!(%key, %error, "queue doorbell unavailable; idle consumers poll until it is back");
            }
            Err(error) => tracing::debug!(%key, %error, "queue doorbell unavailable"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

enum Never {}

async fn listen_until_error(
    target: &RedisTarget,
    key: &str,
    rung: &Notify,
) -> Result<Never, redis::RedisError> {
    let mut conn: RedisConn = target.connect(connect_options(None)).await?;
    // Start after the newest entry: rings from before the listener started are old news.
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await?;
    let mut last = newest
        .ids
        .first()
        .map_or_else(|| "0-0".to_owned(), |entry| entry.id.clone());
    loop {
        let mut command = redis::cmd("XREAD");
        command
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(key)
            .arg(&last);
        let read = command.query_async::<Option<StreamReadReply>>(&mut conn);
        let reply = tokio::time::timeout(BLOCK * 3, read).await.map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::Io, "XREAD on the doorbell timed out"))
        })??;
        if let Some(id) = reply.as_ref().and_then(last_id) {
            last = id;
            rung.notify_waiters();
        }
    }
}

fn last_id(reply: &StreamReadReply) -> Option<String> {
    reply
        .keys
        .iter()
        .flat_map(|k| k.ids.last())
        .map(|entry| entry.id.clone())
        .next_back()
}
