//! Command-line/env configuration of a queue connection, shared by every service that produces
//! or consumes jobs (flatten [`QueueConfig`] into the service's clap arguments).

use std::time::Duration;

use clap::Args;

/// A configuration problem; names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct QueueConfigError {
    pub flag: &'static str,
    pub problem: String,
}

fn flag_error(flag: &'static str, problem: impl Into<String>) -> QueueConfigError {
    QueueConfigError {
        flag,
        problem: problem.into(),
    }
}

pub(crate) const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_PREFIX: &str = "redline";
const DEFAULT_GROUP: &str = "workers";
const DEFAULT_VISIBILITY_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_DELIVERIES: u32 = 5;
const DEFAULT_BLOCK_MS: u64 = 2_000;

/// Where the queues live and how consumers treat jobs.
#[derive(Clone, Args)]
pub struct QueueConfig {
    /// Redis URL: `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS (needs a
    /// build with the redis crate's TLS feature).
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// Prefix of every queue's stream key (`<prefix>:<queue>`), so several deployments can share
    /// one Redis.
    #[arg(long, env = "QUEUE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub queue_prefix: String,
    /// Consumer group: the consumers that share (split) one queue's jobs.
    #[arg(long, env = "QUEUE_GROUP", default_value = DEFAULT_GROUP)]
    pub queue_group: String,
    /// This consumer's name within the group (default: `<hostname>-<pid>`). Must be unique
    /// among live consumers.
    #[arg(long, env = "QUEUE_CONSUMER")]
    pub queue_consumer: Option<String>,
    /// How long a consumer may hold a job without acknowledging it before another consumer
    /// reclaims it, in milliseconds.
    #[arg(long, env = "QUEUE_VISIBILITY_TIMEOUT_MS", default_value_t = DEFAULT_VISIBILITY_TIMEOUT_MS)]
    pub queue_visibility_timeout_ms: u64,
    /// Deliveries after which an unacknowledged job is moved to the dead-letter stream.
    #[arg(long, env = "QUEUE_MAX_DELIVERIES", default_value_t = DEFAULT_MAX_DELIVERIES)]
    pub queue_max_deliveries: u32,
    /// How long a fetch waits for new jobs when there are none, in milliseconds.
    #[arg(long, env = "QUEUE_BLOCK_MS", default_value_t = DEFAULT_BLOCK_MS)]
    pub queue_block_ms: u64,
    /// Approximate cap on each stream's length (`XADD MAXLEN ~`). Unset by default: acknowledged
    /// jobs are deleted, so a stream only holds its backlog. A cap bounds memory when consumers
    /// are gone for long, at the price of dropping the oldest jobs, processed or not. Applies
    /// to the dead-letter streams too.
    #[arg(long, env = "QUEUE_MAX_LEN")]
    pub queue_max_len: Option<u64>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            queue_prefix: DEFAULT_PREFIX.to_owned(),
            queue_group: DEFAULT_GROUP.to_owned(),
            queue_consumer: None,
            queue_visibility_timeout_ms: DEFAULT_VISIBILITY_TIMEOUT_MS,
            queue_max_deliveries: DEFAULT_MAX_DELIVERIES,
            queue_block_ms: DEFAULT_BLOCK_MS,
            queue_max_len: None,
        }
    }
}

impl std::fmt::Debug for QueueConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueConfig")
            .field("redis_url", &self.redacted_url())
            .field("queue_prefix", &self.queue_prefix)
            .field("queue_group", &self.queue_group)
            .field("queue_consumer", &self.queue_consumer)
            .field(
                "queue_visibility_timeout_ms",
                &self.queue_visibility_timeout_ms,
            )
            .field("queue_max_deliveries", &self.queue_max_deliveries)
            .field("queue_block_ms", &self.queue_block_ms)
            .field("queue_max_len", &self.queue_max_len)
            .finish()
    }
}

impl QueueConfig {
    /// Defaults with another Redis URL (tests, tools).
    pub fn with_url(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            ..Self::default()
        }
    }

    /// Checks every flag; the error names the first bad one.
    pub fn validate(&self) -> Result<(), QueueConfigError> {
        validate_redis_url(&self.redis_url)?;
        validate_name("--queue-prefix", &self.queue_prefix)?;
        validate_name("--queue-group", &self.queue_group)?;
        if let Some(consumer) = &self.queue_consumer {
            validate_name("--queue-consumer", consumer)?;
        }
        if self.queue_visibility_timeout_ms == 0 {
            return Err(flag_error(
                "--queue-visibility-timeout-ms",
                "must be above 0 (a zero timeout would let every consumer steal every job)",
            ));
        }
        if self.queue_max_deliveries == 0 {
            return Err(flag_error("--queue-max-deliveries", "must be at least 1"));
        }
        if self.queue_block_ms == 0 {
            return Err(flag_error(
                "--queue-block-ms",
                "must be above 0 (0 means wait forever to Redis)",
            ));
        }
        if self.queue_max_len == Some(0) {
            return Err(flag_error(
                "--queue-max-len",
                "must be above 0 when set (0 would drop every job)",
            ));
        }
        Ok(())
    }

    /// The Redis URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.redis_url)
    }

    /// Stream key of the queue `name`: `<prefix>:<name>`.
    pub fn stream_key(&self, name: &str) -> String {
        format!("{}:{name}", self.queue_prefix)
    }

    /// `--queue-consumer`, or `<hostname>-<pid>`.
    pub fn consumer_name(&self) -> String {
        self.queue_consumer
            .clone()
            .unwrap_or_else(default_consumer_name)
    }

    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_visibility_timeout_ms)
    }

    pub fn block_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_block_ms)
    }
}

fn validate_name(flag: &'static str, value: &str) -> Result<(), QueueConfigError> {
    if value.is_empty() {
        return Err(flag_error(flag, "must not be empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(flag_error(
            flag,
            format!("{value:?} contains whitespace or control characters"),
        ));
    }
    Ok(())
}

fn validate_redis_url(raw: &str) -> Result<(), QueueConfigError> {
    const FLAG: &str = "--redis-url";
    let url = url::Url::parse(raw)
        .map_err(|e| flag_error(FLAG, format!("{:?} is not a URL ({e})", redact_url(raw))))?;
    match url.scheme() {
        "redis" | "rediss" => {}
        "unix" | "redis+unix" => {
            if url.path().is_empty() || url.path() == "/" {
                return Err(flag_error(FLAG, "unix socket URL has no socket path"));
            }
            return Ok(());
        }
        other => {
            return Err(flag_error(
                FLAG,
                format!("scheme `{other}` is not redis:// or rediss://"),
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(flag_error(FLAG, format!("{} has no host", redact_url(raw))));
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(flag_error(
            FLAG,
            format!("database `{db}` in the path is not a number"),
        ));
    }
    Ok(())
}

pub(crate) fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Cannot fail: a URL that has a password can hold another one.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        // Unparseable: we cannot tell where a password would be, so show nothing of it.
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        queue: QueueConfig,
    }

    #[test]
    fn clap_defaults_match_default() {
        let parsed = Cli::try_parse_from(["test"]).unwrap().queue;
        let default = QueueConfig::default();
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
        parsed.validate().unwrap();
    }

    #[test]
    fn consumer_name_defaults_to_host_and_pid() {
        let name = QueueConfig::default().consumer_name();
        assert!(
            name.ends_with(&format!("-{}", std::process::id())),
            "{name}"
        );
    }

    #[test]
    fn password_is_redacted() {
        let config = QueueConfig::with_url("redis://:hunter2@db.internal:6380/2");
        config.validate().unwrap();
        assert_eq!(config.redacted_url(), "redis://:***@db.internal:6380/2");
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = QueueConfig::with_url("ftp://:hunter2@db")
            .validate()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
