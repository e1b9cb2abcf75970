//! Command-line/env configuration of a queue connection, shared by every service that produces
//! or consumes jobs (flatten [`QueueConfig`] into the service's clap arguments).

use std::path::PathBuf;
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

/// Where Redis is and how to reach it: the same flags for every service, whatever it keeps
/// there.
#[derive(Clone, Args)]
pub struct RedisArgs {
    /// Redis URL: `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS. The user
    /// is an ACL user (`AUTH user password`); a password alone is `redis://:password@host`.
    /// With `--redis-cluster`: one or more seed nodes of the cluster, comma-separated.
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// `--redis-url` names Redis Cluster seed nodes: commands follow the cluster's slot map.
    /// Needs `--queue-prefix` (and `--index-prefix`) with a hash tag, e.g. `{redline}`, so every
    /// multi-key script and transaction stays in one slot.
    #[arg(long, env = "REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// File holding the Redis password (or ACL user's password); a trailing newline is ignored.
    /// Overrides a password in `--redis-url`, so the URL can stay free of secrets.
    #[arg(long, env = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,
    /// PEM file of the CA that signed the Redis server's certificate, for `rediss://` servers
    /// whose certificate is not signed by a public CA (the bundled Mozilla roots are used
    /// otherwise).
    #[arg(long, env = "REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,
}

impl Default for RedisArgs {
    fn default() -> Self {
        Self {
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            redis_cluster: false,
            redis_password_file: None,
            redis_ca_cert: None,
        }
    }
}

impl RedisArgs {
    /// The default connection flags with another URL.
    pub fn with_url(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            ..Self::default()
        }
    }

    /// Checks the connection flags; the error names the first bad one.
    pub fn validate(&self) -> Result<(), QueueConfigError> {
        let urls = self.redis_urls();
        if urls.len() > 1 && !self.redis_cluster {
            return Err(flag_error(
                "--redis-url",
                format!(
                    "{} URLs given: several (comma-separated) URLs are the seed nodes of a \
                     cluster and need --redis-cluster",
                    urls.len()
                ),
            ));
        }
        for url in &urls {
            validate_redis_url(url)?;
            if self.redis_cluster && (url.starts_with("unix:") || url.starts_with("redis+unix:")) {
                return Err(flag_error(
                    "--redis-url",
                    "a cluster is reached over TCP, not a unix socket",
                ));
            }
        }
        for (flag, path) in [
            ("--redis-password-file", &self.redis_password_file),
            ("--redis-ca-cert", &self.redis_ca_cert),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return Err(flag_error(
                        flag,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        if self.redis_ca_cert.is_some() && !urls.iter().all(|url| url.starts_with("rediss://")) {
            return Err(flag_error(
                "--redis-ca-cert",
                "is only used with TLS: --redis-url must be rediss://",
            ));
        }
        Ok(())
    }

    /// The Redis URL(s) with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        self.redis_urls()
            .into_iter()
            .map(redact_url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `--redis-url` split at commas: the one server, or the seed nodes of a cluster.
    pub fn redis_urls(&self) -> Vec<&str> {
        self.redis_url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect()
    }
}

/// Where the queues live and how consumers treat jobs.
#[derive(Clone, Args)]
pub struct QueueConfig {
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Prefix of every queue's stream key (`<prefix>:<queue>`), so several deployments can share
    /// one Redis. On a cluster it must contain a hash tag, e.g. `{redline}`.
    #[arg(long, env = "QUEUE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub queue_prefix: String,
    /// Consumer group: the consumers that share (split) one queue's jobs.
    #[arg(long, env = "QUEUE_GROUP", default_value = DEFAULT_GROUP)]
    pub queue_group: String,
    /// This consumer's name within the group (default: `ecs-<task id>` in an ECS task, else
    /// `<hostname>-<pid>`). Must be unique among live consumers.
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
            redis: RedisArgs::default(),
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
            .field("redis_cluster", &self.redis.redis_cluster)
            .field("redis_password_file", &self.redis.redis_password_file)
            .field("redis_ca_cert", &self.redis.redis_ca_cert)
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
            redis: RedisArgs::with_url(redis_url),
            ..Self::default()
        }
    }

    /// Checks every flag; the error names the first bad one.
    pub fn validate(&self) -> Result<(), QueueConfigError> {
        self.redis.validate()?;
        validate_name("--queue-prefix", &self.queue_prefix)?;
        if self.redis.redis_cluster {
            validate_cluster_prefix("--queue-prefix", &self.queue_prefix)?;
        }
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

    /// The Redis URL(s) with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        self.redis.redacted_url()
    }

    /// `--redis-url` split at commas: the one server, or the seed nodes of a cluster.
    pub fn redis_urls(&self) -> Vec<&str> {
        self.redis.redis_urls()
    }

    /// Stream key of the queue `name`: `<prefix>:<name>`.
    pub fn stream_key(&self, name: &str) -> String {
        format!("{}:{name}", self.queue_prefix)
    }

    /// `--queue-consumer`, or `ecs-<task id>` on ECS, else `<hostname>-<pid>`.
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

/// On a cluster every key of a deployment must hash to one slot (see `crate::redis_conn`).
fn validate_cluster_prefix(flag: &'static str, prefix: &str) -> Result<(), QueueConfigError> {
    if crate::redis_conn::has_hash_tag(prefix) {
        return Ok(());
    }
    Err(flag_error(
        flag,
        format!(
            "{prefix:?} has no hash tag: with --redis-cluster every key must hash to one slot, \
             so write the prefix in braces, e.g. {{{prefix}}}"
        ),
    ))
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

/// `ecs-<task id>` on ECS, so the manager can name a stopped task's worker; elsewhere
/// `<hostname>-<pid>`. Read once: the metadata endpoint is asked at most once per process.
fn default_consumer_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let Ok(uri) = std::env::var(crate::ecs_task::METADATA_ENV) else {
            return consumer_name_of(std::process::id());
        };
        match crate::ecs_task::task_arn(&uri) {
            Ok(arn) => crate::ecs_task::consumer_name(&arn),
            Err(error) => {
                tracing::warn!(%error, "cannot read this ECS task's ARN: naming the worker <host>-<pid>, so its wallet slots free only when their leases expire if it dies");
                consumer_name_of(std::process::id())
            }
        }
    })
    .clone()
}

/// The default consumer name (`<hostname>-<pid>`) of process `pid` on this host: what a worker
/// started here without `--queue-consumer` calls itself.
pub fn consumer_name_of(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{pid}")
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
        if std::env::var_os(crate::ecs_task::METADATA_ENV).is_some() {
            eprintln!("skipped: this process runs in an ECS task, so it names itself after it");
            return;
        }
        let name = QueueConfig::default().consumer_name();
        assert!(
            name.ends_with(&format!("-{}", std::process::id())),
            "{name}"
        );
    }

    #[test]
    fn cluster_flags_are_checked() {
        let mut config = QueueConfig::with_url("redis://a:7000,redis://b:7001");
        let err = config.validate().unwrap_err();
        assert_eq!(err.flag, "--redis-url");
        config.redis.redis_cluster = true;
        let err = config.validate().unwrap_err();
        assert_eq!(err.flag, "--queue-prefix", "{err}");
        assert!(err.to_string().contains("{redline}"), "{err}");
        config.queue_prefix = "{redline}".into();
        config.validate().unwrap();
        assert_eq!(config.redis_urls(), ["redis://a:7000", "redis://b:7001"]);
        config.redis.redis_url = "redis://:pw@a:7000, redis://:pw@b:7001".into();
        assert_eq!(
            config.redacted_url(),
            "redis://:***@a:7000,redis://:***@b:7001"
        );
        config.redis.redis_url = "unix:///tmp/redis.sock".into();
        assert_eq!(config.validate().unwrap_err().flag, "--redis-url");
    }

    #[test]
    fn tls_and_secret_files_are_checked() {
        let mut config = QueueConfig::with_url("redis://127.0.0.1:6379");
        config.redis.redis_password_file = Some("/nonexistent/redis-password".into());
        assert_eq!(config.validate().unwrap_err().flag, "--redis-password-file");
        config.redis.redis_password_file = None;
        config.redis.redis_ca_cert = Some("/nonexistent/ca.pem".into());
        assert_eq!(config.validate().unwrap_err().flag, "--redis-ca-cert");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        config.redis.redis_ca_cert = Some(ca);
        let err = config.validate().unwrap_err();
        assert_eq!(err.flag, "--redis-ca-cert");
        assert!(err.to_string().contains("rediss://"), "{err}");
        config.redis.redis_url = "rediss://127.0.0.1:6380".into();
        config.validate().unwrap();
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
