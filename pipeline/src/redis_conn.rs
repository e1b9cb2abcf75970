//! One Redis connection type for every service: a standalone server or a Redis Cluster, over
//! plain TCP or TLS, with or without a password or ACL user.
//!
//! [`RedisConn`] is what the queues, the index, the liquidator's locks and records and the
//! manager hold. It is cheap to clone (clones share one multiplexed connection) and implements
//! [`redis::aio::ConnectionLike`], so `cmd.query_async(&mut conn)`, pipelines and
//! `Script::invoke_async` work on it unchanged. It reconnects by itself after Redis restarts
//! (standalone: the connection manager; cluster: the cluster connection re-reads the topology).
//!
//! Where to connect comes from [`QueueConfig`] (`--redis-url`, `--redis-cluster`,
//! `--redis-password-file`, `--redis-ca-cert`); [`RedisTarget`] is the checked, ready form of
//! those flags, and never shows a password in `Debug` or errors.
//!
//! # Keys on a cluster
//!
//! Lua scripts, `MULTI`/`EXEC` and pipelines (the cluster client sends a pipeline to one node)
//! must have all their keys in one hash slot. redline puts every key of a deployment in one slot:
//! every key starts with `--queue-prefix` (or `--index-prefix` for the position index), and in
//! cluster mode both prefixes must contain a hash tag, e.g. `{redline}`, so Redis hashes only
//! `redline` for every key (`{redline}:health-checks`, `{redline}:{liquidations}:ready`,
//! `{redline}:devnet-1:red_bank:bucket:7`, …). One slot per deployment is what makes the
//! multi-key scripts (priority queue, denom ids), the `MULTI` blocks (index block updates, near
//! sets, stream acks) and the pipelines (a stream's backlog with its dead-letter stream) correct;
//! a cluster then gives failover rather than spreading one deployment's load (several
//! deployments with different tags do spread). Standalone servers take any prefix.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, RedisFuture, Value};

use crate::queue::QueueConfig;

/// A connection to a standalone Redis or to a Redis Cluster. Clone it freely: clones share
/// the connection.
#[derive(Clone)]
pub enum RedisConn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Standalone(_) => "RedisConn::Standalone",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Standalone(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Standalone(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl From<ConnectionManager> for RedisConn {
    fn from(conn: ConnectionManager) -> Self {
        RedisConn::Standalone(conn)
    }
}

impl From<ClusterConnection> for RedisConn {
    fn from(conn: ClusterConnection) -> Self {
        RedisConn::Cluster(conn)
    }
}

impl RedisConn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }

    /// Runs a command that names no key (`SCAN`, `DBSIZE`, …) on the node that holds
    /// `slot_key`'s hash slot; on a standalone server simply runs it. `SCAN … MATCH
    /// {tag}:*` must go to the tag's node: on any other node it finds nothing.
    pub async fn query_on_slot_of<T: redis::FromRedisValue>(
        &mut self,
        slot_key: &str,
        cmd: &Cmd,
    ) -> redis::RedisResult<T> {
        match self {
            RedisConn::Standalone(conn) => cmd.query_async(conn).await,
            RedisConn::Cluster(conn) => {
                let route = redis::cluster_routing::Route::new(
                    key_hash_slot(slot_key.as_bytes()),
                    redis::cluster_routing::SlotAddr::Master,
                );
                let value = conn
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                redis::from_redis_value(value).map_err(RedisError::from)
            }
        }
    }
}

/// Timeouts of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Per connection attempt (TCP + TLS + AUTH).
    pub connect_timeout: Duration,
    /// Per command; `None` for connections that run blocking reads (`XREADGROUP … BLOCK`),
    /// whose callers put their own deadline around each read.
    pub response_timeout: Option<Duration>,
    /// Longest pause between reconnection attempts (standalone).
    pub max_reconnect_delay: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Some(Duration::from_secs(10)),
            max_reconnect_delay: Duration::from_secs(2),
        }
    }
}

/// Where and how to connect, checked: the seed URL(s), the password from
/// `--redis-password-file`, the CA from `--redis-ca-cert`. `Debug` shows no password.
#[derive(Clone)]
pub struct RedisTarget {
    seeds: Vec<redis::ConnectionInfo>,
    redacted_url: String,
    cluster: bool,
    tls: bool,
    /// PEM of the CA that signs the server certificates, when not a public one.
    ca_cert: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.redacted_url)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("custom_ca", &self.ca_cert.is_some())
            .finish()
    }
}

/// An error of the client configuration (`InvalidClientConfig`), naming the flag.
fn config_error(flag: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, flag, detail))
}

impl RedisTarget {
    /// Reads the flags of `config` (and the files they name). The config should have passed
    /// [`QueueConfig::validate`]; errors here name the flag and never carry a password.
    pub fn from_config(config: &QueueConfig) -> Result<Self, RedisError> {
        let password = match &config.redis.redis_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    config_error("--redis-password-file", format!("{}: {e}", path.display()))
                })?;
                // Secret files usually end with a newline that is not part of the password.
                let password = text.trim_end_matches(['\r', '\n']).to_owned();
                if password.is_empty() {
                    return Err(config_error(
                        "--redis-password-file",
                        format!("{} is empty", path.display()),
                    ));
                }
                Some(password)
            }
            None => None,
        };
        let ca_cert = match &config.redis.redis_ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                config_error("--redis-ca-cert", format!("{}: {e}", path.display()))
            })?),
            None => None,
        };
        let mut seeds = Vec::new();
        for url in config.redis_urls() {
            let info = url.into_connection_info().map_err(|e| {
                // The redis crate's message may quote the URL: say only which one.
                config_error(
                    "--redis-url",
                    format!(
                        "{} is not a usable Redis URL ({:?})",
                        crate::queue::redact_url(url),
                        e.kind()
                    ),
                )
            })?;
            let info = match &password {
                Some(password) => {
                    let settings = info.redis_settings().clone().set_password(password);
                    info.set_redis_settings(settings)
                }
                None => info,
            };
            seeds.push(info);
        }
        if seeds.is_empty() {
            return Err(config_error("--redis-url", "no URL given".to_owned()));
        }
        let tls = seeds
            .iter()
            .any(|info| matches!(info.addr(), ConnectionAddr::TcpTls { .. }));
        if tls
            && !seeds
                .iter()
                .all(|info| matches!(info.addr(), ConnectionAddr::TcpTls { .. }))
        {
            return Err(config_error(
                "--redis-url",
                "mixes rediss:// and redis:// URLs".to_owned(),
            ));
        }
        if ca_cert.is_some() && !tls {
            return Err(config_error(
                "--redis-ca-cert",
                "is set but --redis-url is not rediss:// (TLS)".to_owned(),
            ));
        }
        Ok(Self {
            seeds,
            redacted_url: config.redacted_url(),
            cluster: config.redis.redis_cluster,
            tls,
            ca_cert,
        })
    }

    /// `--redis-url` with passwords replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    fn certificates(&self) -> Option<redis::TlsCertificates> {
        self.ca_cert.as_ref().map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    /// Connects, authenticates and (cluster) reads the slot map. Errors carry no password;
    /// wrap them with [`redacted_url`](Self::redacted_url) to say which Redis.
    pub async fn connect(&self, options: ConnectOptions) -> Result<RedisConn, RedisError> {
        if self.tls {
            install_crypto_provider();
        }
        if self.cluster {
            let mut builder = ClusterClientBuilder::new(self.seeds.clone())
                .connection_timeout(options.connect_timeout);
            if let Some(timeout) = options.response_timeout {
                builder = builder.response_timeout(timeout);
            }
            if let Some(certificates) = self.certificates() {
                builder = builder.certs(certificates);
            }
            let client = builder.build()?;
            // The first connection reads the topology from the seeds; bound it as a whole.
            let deadline = options.connect_timeout * 2;
            let conn = tokio::time::timeout(deadline, client.get_async_connection())
                .await
                .map_err(|_| {
                    RedisError::from((
                        ErrorKind::Io,
                        "no cluster connection",
                        format!("no answer within {deadline:?}"),
                    ))
                })??;
            return Ok(RedisConn::Cluster(conn));
        }
        let info = self.seeds[0].clone();
        let client = match self.certificates() {
            Some(certificates) => redis::Client::build_with_tls(info, certificates)?,
            None => redis::Client::open(info)?,
        };
        // One attempt first: a refused password will not get better with the manager's
        // retries, so it fails the start at once; a server that is not up yet (refused,
        // unreachable) is left to the retries.
        let probe = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.connect_timeout));
        if let Err(error) = client
            .get_multiplexed_async_connection_with_config(&probe)
            .await
        {
            if is_permanent(&error) {
                return Err(error);
            }
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(options.response_timeout)
            .set_max_delay(options.max_reconnect_delay);
        // The manager retries its first connection (6 times, backoff up to the max delay),
        // a refused password included: leave room for that before calling it unanswered.
        let deadline = options.connect_timeout * 3;
        let conn =
            tokio::time::timeout(deadline, client.get_connection_manager_with_config(config))
                .await
                .map_err(|_| {
                    RedisError::from((
                        ErrorKind::Io,
                        "no connection",
                        format!("no answer within {deadline:?}"),
                    ))
                })??;
        Ok(RedisConn::Standalone(conn))
    }
}

/// Errors no retry can fix: wrong credentials, a bad client configuration, or the server
/// refusing the handshake's commands (`NOAUTH`, `WRONGPASS`, `NOPERM`).
fn is_permanent(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig | ErrorKind::Server(_)
    )
}

/// rustls needs a process-wide crypto provider; redline builds rustls with ring only. Installing
/// it explicitly keeps TLS working should another dependency ever enable a second provider.
fn install_crypto_provider() {
    // Err means a provider is installed already, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Connects with the flags of `config` and checks the connection with a `PING`. The error
/// names the Redis URL without its password.
pub async fn connect(
    config: &QueueConfig,
    options: ConnectOptions,
) -> Result<RedisConn, RedisConnectError> {
    let url = config.redacted_url();
    let error = |source| RedisConnectError {
        url: url.clone(),
        source,
    };
    let target = RedisTarget::from_config(config).map_err(error)?;
    let mut conn = target.connect(options).await.map_err(error)?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(error)?;
    Ok(conn)
}

/// A failed connection, naming the Redis URL (password replaced by `***`).
#[derive(Debug, thiserror::Error)]
#[error("Redis {url}: {source}")]
pub struct RedisConnectError {
    pub url: String,
    pub source: RedisError,
}

/// The cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of the whole key when it
/// has none, modulo 16384, as Redis computes it.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Whether `prefix` contains a Redis Cluster hash tag (`{…}` with something inside), so that
/// every key starting with it hashes to one slot.
pub fn has_hash_tag(prefix: &str) -> bool {
    let Some(open) = prefix.find('{') else {
        return false;
    };
    match prefix[open + 1..].find('}') {
        Some(len) => len > 0,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_match_redis() {
        // `CLUSTER KEYSLOT foo` is 12182; 0x31C3 is CRC16/XMODEM's check value of "123456789".
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"123456789"), 0x31C3);
        assert_eq!(
            key_hash_slot(b"{user1000}.following"),
            key_hash_slot(b"user1000")
        );
        assert_eq!(key_hash_slot(b"x{foo}{bar}"), 12182, "the first tag counts");
        assert_ne!(key_hash_slot(b"{}foo"), 12182, "an empty tag is no tag");
    }

    #[test]
    fn hash_tags() {
        assert!(has_hash_tag("{redline}"));
        assert!(has_hash_tag("prod-{redline}"));
        assert!(!has_hash_tag("redline"));
        assert!(!has_hash_tag("{}redline"));
        assert!(!has_hash_tag("{redline"));
        assert!(!has_hash_tag("redline}"));
    }

    #[test]
    fn target_debug_hides_the_password() {
        let config = QueueConfig::with_url("redis://user:hunter2@127.0.0.1:6379");
        let target = RedisTarget::from_config(&config).unwrap();
        let shown = format!("{target:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    /// A plain-TCP config for a local Redis, and a file of `contents` in a directory that lives
    /// as long as the returned guard.
    fn config_and_file(contents: &str) -> (QueueConfig, std::path::PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, contents).unwrap();
        let config = QueueConfig::with_url("redis://127.0.0.1:6379");
        (config, file, dir)
    }

    #[test]
    fn ca_cert_needs_tls() {
        let (mut config, ca, _dir) = config_and_file("not used");
        config.redis.redis_ca_cert = Some(ca);
        let err = RedisTarget::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("--redis-ca-cert"), "{err}");
    }

    #[test]
    fn password_file_overrides_and_is_trimmed() {
        let (mut config, file, _dir) = config_and_file("s3cret\n");
        config.redis.redis_password_file = Some(file);
        let target = RedisTarget::from_config(&config).unwrap();
        assert_eq!(target.seeds[0].redis_settings().password(), Some("s3cret"));
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
