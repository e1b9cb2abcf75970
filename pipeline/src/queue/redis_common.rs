//! What the two Redis queues ([`RedisStreamQueue`](super::RedisStreamQueue) and
//! [`PriorityQueue`](super::PriorityQueue)) share: timeouts, how a handle connects, and the
//! counters behind [`Queue::counters`](super::Queue::counters).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::QueueConfig;
use super::{QueueCounters, QueueError};
use crate::redis_conn::{ConnectOptions, RedisConn, RedisTarget};

/// Answer time allowed for one ordinary command, pipeline or script.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn connect_options(response_timeout: Option<Duration>) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: CONNECT_TIMEOUT,
        response_timeout,
        max_reconnect_delay: Duration::from_secs(2),
    }
}

/// A queue handle's command connection, and what it was opened from.
pub(super) struct Connection {
    /// The Redis URL without its password, for logs and errors.
    pub redacted_url: String,
    /// Where further connections go (the stream queue's blocking reads).
    pub target: RedisTarget,
    pub conn: RedisConn,
}

/// Validates `config` and the queue `name` (no whitespace or control characters, nor any
/// character `forbidden` says no to), then opens the command connection.
pub(super) async fn connect(
    config: &QueueConfig,
    name: &str,
    forbidden: impl Fn(char) -> bool,
) -> Result<Connection, QueueError> {
    config.validate()?;
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || forbidden(c))
    {
        return Err(QueueError::InvalidName {
            name: name.to_owned(),
        });
    }
    let redacted_url = config.redacted_url();
    let connect_error = |source| QueueError::Connect {
        url: redacted_url.clone(),
        source,
    };
    let target = RedisTarget::from_config(config).map_err(connect_error)?;
    let conn = target
        .connect(connect_options(Some(COMMAND_TIMEOUT)))
        .await
        .map_err(connect_error)?;
    Ok(Connection {
        redacted_url,
        target,
        conn,
    })
}

/// What one queue handle (and its clones) did since it connected.
#[derive(Default)]
pub(super) struct Counters {
    pub enqueued: AtomicU64,
    pub delivered: AtomicU64,
    pub acked: AtomicU64,
    pub reclaimed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub malformed: AtomicU64,
    pub vanished: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> QueueCounters {
        QueueCounters {
            enqueued: self.enqueued.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            reclaimed: self.reclaimed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            vanished: self.vanished.load(Ordering::Relaxed),
        }
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
