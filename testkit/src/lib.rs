//! Helpers for tests that run real components: throwaway `redis-server` processes on free
//! loopback ports, free ports for other servers, and polling until a condition holds.
//!
//! Every [`RedisServer`] is its own process with its own port and directory, so tests can run
//! in parallel without sharing state. Servers keep nothing on disk (`--save ""`,
//! `--appendonly no`) and die with their [`RedisServer`] value.
//!
//! [`RedisOptions`] adds what production Redis has: a password (`requirepass`), an ACL user (the
//! default user then disabled), TLS with a CA made for the server at start, and
//! [`RedisCluster`] runs a cluster of such servers on loopback.
//!
//! Tests that need a Docker engine gate on [`docker_or_skip`], which applies the one skip
//! policy (see there): skip loudly on a machine without an engine, fail on CI.

pub mod devnet;
pub mod fake_chain;
pub mod fixtures;
pub use fake_chain::FakeChain;
pub mod fuzz;
pub mod http;
pub mod rover;

use redline_pipeline::queue::RedisArgs;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// How long a fresh `redis-server` may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried before giving up when another process keeps taking the free port first.
const START_ATTEMPTS: usize = 5;
/// Where servers keep their directories: `<tmp>/redline-testkit/redis-<test pid>-<n>`.
const BASE_DIR_NAME: &str = "redline-testkit";

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(
        "redis-server is not installed (looked on PATH and at /usr/bin/redis-server); \
         run `scripts/ensure-redis.sh` or `make deps` to install it"
    )]
    RedisMissing,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("redis-server on port {port} exited while starting ({status}); its log:\n{log}")]
    Exited {
        port: u16,
        status: String,
        log: String,
    },
    #[error("redis-server on port {port} did not answer within {waited:?}; its log:\n{log}")]
    NotReady {
        port: u16,
        waited: Duration,
        log: String,
    },
    #[error("condition not met within {0:?}")]
    Timeout(Duration),
    #[error("making the test TLS certificates: {0}")]
    Certificates(String),
    #[error("redis-cli {what}: {detail}")]
    Cli { what: String, detail: String },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestkitError {
    let what = what.into();
    move |source| TestkitError::Io { what, source }
}

/// The workspace's root directory: every crate, testkit included, sits directly below it.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ sits in the workspace")
}

/// A free TCP port on 127.0.0.1 (the OS picks it; it stays free until someone binds it, so a
/// server started on it may still lose a race and should retry with another port).
pub fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(io_error("binding 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("reading the address of a bound socket"))?
        .port();
    Ok(port)
}

/// Polls the async `check` (fast at first, then every 100 ms) until it returns `Some`, or fails
/// after `timeout`.
pub async fn poll<T, F, Fut>(mut check: F, timeout: Duration) -> Result<T, TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(TestkitError::Timeout(timeout));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// [`poll`] for a condition that holds or not.
pub async fn wait_for<F, Fut>(mut condition: F, timeout: Duration) -> Result<(), TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(
        || {
            let holds = condition();
            async move { holds.await.then_some(()) }
        },
        timeout,
    )
    .await
}

/// [`poll`] that panics on a timeout, naming `what` it waited for: for tests where waiting in
/// vain is the failure.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll(check, timeout).await {
        Ok(value) => value,
        Err(error) => panic!("waiting for {what}: {error}"),
    }
}

/// [`wait_for`] for a plain (blocking) condition.
pub fn wait_for_blocking(
    mut condition: impl FnMut() -> bool,
    timeout: Duration,
) -> Result<(), TestkitError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if condition() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TestkitError::Timeout(timeout));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Environment variable that makes the Docker tests mandatory outside CI too (`1` or `true`).
pub const REQUIRE_DOCKER_ENV: &str = "REDLINE_REQUIRE_DOCKER";

/// Whether tests that need Docker must run here: `CI` is `true` (or `1`; CI services set it)
/// or [`REQUIRE_DOCKER_ENV`] is `1` (or `true`). See [`docker_or_skip`] for the policy.
pub fn docker_required() -> bool {
    docker_required_by(
        std::env::var("CI").ok().as_deref(),
        std::env::var(REQUIRE_DOCKER_ENV).ok().as_deref(),
    )
}

/// [`docker_required`] for given values of `CI` and [`REQUIRE_DOCKER_ENV`].
fn docker_required_by(ci: Option<&str>, require_docker: Option<&str>) -> bool {
    let set = |value: Option<&str>| {
        value.is_some_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"))
    };
    set(ci) || set(require_docker)
}

/// The version of the Docker engine the `docker` CLI reaches (`docker version`), or why none
/// answers (CLI missing, daemon down, no permission on the socket …).
pub fn docker_engine() -> Result<String, String> {
    let output = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run the docker CLI: {error}"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || version.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.trim().lines().last().unwrap_or("no server version");
        return Err(format!("`docker version` {}: {reason}", output.status));
    }
    Ok(version)
}

/// Makes the images `redline/<service>:latest` of `services` current: runs `docker/build.sh`
/// (what `make docker_build` runs: static release binaries, images `FROM scratch`, nothing
/// pulled), which rebuilds only what changed — cargo's incremental build, then an image only
/// when its binary's digest differs from the image's label — so a test never runs an image
/// left from older sources. Seconds when nothing changed; a cold build takes minutes. Calls in
/// one process are serialised.
pub fn docker_images(services: &[&str]) -> Result<(), String> {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("docker images {services:?}: docker/build.sh rebuilds what changed");
    let status = Command::new("bash")
        .arg("docker/build.sh")
        .env("SERVICES", services.join(" "))
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running docker/build.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("docker/build.sh failed: {status}"))
    }
}

/// The gate of every test that needs a Docker engine: `true` when one answers (the test runs);
/// otherwise the policy decides.
///
/// Policy: a test that needs Docker never passes silently without it.
/// - No engine and Docker not required (a laptop without Docker): a loud
///   `*** SKIPPED <test>: … ***` line on stderr, and `false`: the test returns early and passes.
/// - No engine and Docker required ([`docker_required`]: `CI=true`, as CI services set it, or
///   `REDLINE_REQUIRE_DOCKER=1`): a panic naming the test and the reason, so CI cannot go
///   green without the Docker tests having run.
/// - An engine answers: the test runs and must pass, wherever it runs.
///
/// The probe is the `docker` CLI ([`docker_engine`]), which these tests use anyway (image
/// builds with `docker/build.sh`, cleanup); a test that then talks to the engine through an
/// API client treats a failure there as a test failure, not a reason to skip.
pub fn docker_or_skip(test: &str) -> bool {
    match docker_engine() {
        Ok(_) => true,
        Err(reason) if docker_required() => panic!(
            "{test} needs Docker and no engine answers here ({reason}); CI=true or \
             {REQUIRE_DOCKER_ENV}=1 makes the Docker tests mandatory"
        ),
        Err(reason) => {
            eprintln!(
                "\n*** SKIPPED {test}: no Docker engine answers here ({reason}); \
                 {REQUIRE_DOCKER_ENV}=1 makes this a failure ***\n"
            );
            false
        }
    }
}

/// How a [`RedisServer`] is secured and whether it is a cluster node.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`: the default user's password.
    pub password: Option<String>,
    /// An ACL user `(name, password)` with every right; the default user is disabled, so
    /// only this user gets in.
    pub acl_user: Option<(String, String)>,
    /// Serve TLS on a second port, with a server certificate for `127.0.0.1` signed by a CA
    /// made at start ([`RedisServer::ca_cert`]). Clients use [`RedisServer::url`] (`rediss://`);
    /// the plain port stays for the testkit's own readiness checks.
    pub tls: bool,
    /// `cluster-enabled yes` (see [`RedisCluster`]).
    pub cluster: bool,
}

impl RedisOptions {
    /// `AUTH` arguments that get in, if any.
    fn auth(&self) -> Option<(Option<String>, String)> {
        match (&self.acl_user, &self.password) {
            (Some((user, password)), _) => Some((Some(user.clone()), password.clone())),
            (None, Some(password)) => Some((None, password.clone())),
            (None, None) => None,
        }
    }

    /// `user:password@` / `:password@` for URLs.
    fn url_credentials(&self) -> String {
        match self.auth() {
            Some((Some(user), password)) => format!("{user}:{password}@"),
            Some((None, password)) => format!(":{password}@"),
            None => String::new(),
        }
    }
}

/// Ports of one server besides its main (plain) port.
#[derive(Debug, Clone, Copy, Default)]
struct ExtraPorts {
    tls: Option<u16>,
    cluster_bus: Option<u16>,
}

/// A `redis-server` process of our own on a free loopback port, killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    options: RedisOptions,
    extra: ExtraPorts,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers. Blocks for the few
    /// milliseconds that takes, so it can be called from sync and async tests alike.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(RedisOptions::default())
    }

    /// [`start`](Self::start) with a password, an ACL user, TLS or cluster mode.
    pub fn start_with(options: RedisOptions) -> Result<Self, TestkitError> {
        Self::start_sharing_tls(options, None)
    }

    /// [`start_with`](Self::start_with); a TLS server takes its CA and certificate from
    /// `tls_files` (a directory [`write_tls_files`] wrote) instead of making its own, so the
    /// nodes of a cluster share one CA.
    fn start_sharing_tls(
        options: RedisOptions,
        tls_files: Option<&Path>,
    ) -> Result<Self, TestkitError> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_orphans);

        let binary = find_redis_server()?;
        let dir = make_server_dir()?;
        if options.tls {
            let written = match tls_files {
                Some(source) => copy_tls_files(source, &dir),
                None => write_tls_files(&dir),
            };
            if let Err(error) = written {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
        }
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let extra = ExtraPorts {
                tls: if options.tls {
                    Some(free_port()?)
                } else {
                    None
                },
                cluster_bus: if options.cluster {
                    Some(free_port()?)
                } else {
                    None
                },
            };
            match spawn_server(&binary, port, &dir, &options, extra) {
                Ok(child) => {
                    return Ok(Self {
                        binary,
                        port,
                        dir,
                        child: Some(child),
                        options,
                        extra,
                    })
                }
                // Someone bound the port between our probe and redis-server's bind.
                Err(error @ TestkitError::Exited { .. }) if is_port_taken(&error) => {
                    last_error = Some(error);
                }
                Err(error) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(error);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error.unwrap_or(TestkitError::Timeout(START_TIMEOUT)))
    }

    /// The URL clients use: `redis://127.0.0.1:<port>`, with the password or ACL user
    /// (`redis://user:password@…`) when the server has one, and `rediss://…:<tls port>` for
    /// a TLS server (whose CA is [`ca_cert`](Self::ca_cert)).
    pub fn url(&self) -> String {
        let credentials = self.options.url_credentials();
        match self.extra.tls {
            Some(tls_port) => format!("rediss://{credentials}127.0.0.1:{tls_port}"),
            None => format!("redis://{credentials}127.0.0.1:{}", self.port),
        }
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.options.tls.then(|| self.dir.join(CA_CERT_FILE))
    }

    /// A queue config that reaches this server: [`url`](Self::url), and the CA for TLS.
    pub fn queue_config(&self) -> redline_pipeline::queue::QueueConfig {
        redline_pipeline::queue::QueueConfig {
            redis: RedisArgs {
                redis_ca_cert: self.ca_cert(),
                ..RedisArgs::with_url(self.url())
            },
            ..Default::default()
        }
    }

    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's working directory (holds its log, `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to exit. Its data is
    /// gone (nothing is persisted). Does nothing if it is not running.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        if let Some(mut child) = self.child.take() {
            // Fails only when the process already exited, which is what we want anyway.
            let _ = child.kill();
            child.wait().map_err(io_error(format!(
                "waiting for redis-server on port {}",
                self.port
            )))?;
        }
        Ok(())
    }

    /// Kills the server if it runs and starts an empty one on the same port (clients with
    /// reconnect logic find it again at the same URL).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill()?;
        let mut last_error = None;
        // The old socket is closed by now; a short retry covers the rare slow release.
        for _ in 0..START_ATTEMPTS {
            match spawn_server(
                &self.binary,
                self.port,
                &self.dir,
                &self.options,
                self.extra,
            ) {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(error @ TestkitError::Exited { .. }) if is_port_taken(&error) => {
                    last_error = Some(error);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(TestkitError::Timeout(START_TIMEOUT)))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster on loopback: `n` primaries (no replicas), each a [`RedisServer`] with
/// `cluster-enabled`, the 16384 slots spread over them by `redis-cli --cluster create`.
/// Dropping it kills every node.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// How long a new cluster may take to agree that every slot is served.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisCluster {
    /// Starts `nodes` servers with `options` (password, ACL user, TLS: then one CA for all
    /// nodes, and the cluster bus on TLS too), joins them into a cluster and waits until every
    /// node reports `cluster_state:ok`.
    pub fn start(nodes: usize, options: RedisOptions) -> Result<Self, TestkitError> {
        let options = RedisOptions {
            cluster: true,
            ..options
        };
        let shared_tls = if options.tls {
            let dir = make_server_dir()?;
            if let Err(error) = write_tls_files(&dir) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
            Some(dir)
        } else {
            None
        };
        let started = (0..nodes)
            .map(|_| RedisServer::start_sharing_tls(options.clone(), shared_tls.as_deref()))
            .collect::<Result<Vec<_>, _>>();
        if let Some(dir) = shared_tls {
            let _ = std::fs::remove_dir_all(dir);
        }
        let nodes = started?;
        let cluster = Self { nodes };
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(
            cluster
                .nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port())),
        );
        create.extend([
            "--cluster-replicas".to_owned(),
            "0".to_owned(),
            "--cluster-yes".to_owned(),
        ]);
        let first = &cluster.nodes[0];
        first.cli(&create)?;
        for node in &cluster.nodes {
            wait_for_blocking(
                || {
                    node.cli(&["CLUSTER".to_owned(), "INFO".to_owned()])
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
                },
                CLUSTER_READY_TIMEOUT,
            )?;
        }
        Ok(cluster)
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, for a caller that keeps them alive its own way (each dies when dropped).
    pub fn into_nodes(self) -> Vec<RedisServer> {
        self.nodes
    }

    /// Every node's URL (with credentials), comma-separated: the seeds for `--redis-url`.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A queue config for this cluster: its seeds, `--redis-cluster`, and the queue prefix
    /// `prefix`, which must carry a hash tag (e.g. `{redline}`).
    pub fn queue_config(&self, prefix: &str) -> redline_pipeline::queue::QueueConfig {
        redline_pipeline::queue::QueueConfig {
            redis: RedisArgs {
                redis_cluster: true,
                redis_ca_cert: self.nodes[0].ca_cert(),
                ..RedisArgs::with_url(self.url())
            },
            queue_prefix: prefix.to_owned(),
            ..Default::default()
        }
    }
}

impl RedisServer {
    /// Runs `redis-cli` against this server's plain port (authenticated as clients are) and
    /// returns its output; an error when it fails or answers with an error.
    pub fn cli(&self, args: &[String]) -> Result<String, TestkitError> {
        let cli = self.binary.with_file_name("redis-cli");
        let cli = if is_executable(&cli) {
            cli
        } else {
            PathBuf::from("redis-cli")
        };
        let mut command = Command::new(&cli);
        command
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
        if let Some((user, password)) = self.options.auth() {
            if let Some(user) = user {
                command.args(["--user", &user]);
            }
            // Through the environment, so the password is not on the command line.
            command.env("REDISCLI_AUTH", password);
        }
        let what = args.join(" ");
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io_error(format!("running {} {what}", cli.display())))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success()
            || stdout.starts_with("ERR")
            || stdout.contains("[ERR]")
            || stdout.starts_with("NOAUTH")
        {
            return Err(TestkitError::Cli {
                what,
                detail: format!("{}: {stdout}{stderr}", output.status),
            });
        }
        Ok(stdout)
    }
}

fn find_redis_server() -> Result<PathBuf, TestkitError> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"));
    on_path
        .chain([
            PathBuf::from("/usr/bin/redis-server"),
            PathBuf::from("/usr/local/bin/redis-server"),
        ])
        .find(|candidate| is_executable(candidate))
        .ok_or(TestkitError::RedisMissing)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn base_dir() -> PathBuf {
    std::env::temp_dir().join(BASE_DIR_NAME)
}

/// A fresh directory named after this process, so a later run can tell whether its owner is
/// still alive.
fn make_server_dir() -> Result<PathBuf, TestkitError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = base_dir();
    std::fs::create_dir_all(&base).map_err(io_error(format!("creating {}", base.display())))?;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("redis-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(format!("creating {}", dir.display()))(e)),
        }
    }
}

fn is_port_taken(error: &TestkitError) -> bool {
    matches!(error, TestkitError::Exited { log, .. } if log.contains("Address already in use"))
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

const CA_CERT_FILE: &str = "ca.pem";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server.key";

/// A fresh CA and a server certificate for 127.0.0.1 and localhost signed by it, as PEM files
/// in the server's directory.
fn write_tls_files(dir: &Path) -> Result<(), TestkitError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let error = |e: rcgen::Error| TestkitError::Certificates(e.to_string());
    let ca_key = KeyPair::generate().map_err(error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "redline test CA");
    let ca = ca_params.self_signed(&ca_key).map_err(error)?;
    let server_key = KeyPair::generate().map_err(error)?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(error)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "redline test redis");
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .map_err(error)?;
    for (name, pem) in [
        (CA_CERT_FILE, ca.pem()),
        (SERVER_CERT_FILE, server.pem()),
        (SERVER_KEY_FILE, server_key.serialize_pem()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(io_error(format!("writing {}", path.display())))?;
    }
    Ok(())
}

fn copy_tls_files(source: &Path, dir: &Path) -> Result<(), TestkitError> {
    for name in [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE] {
        std::fs::copy(source.join(name), dir.join(name))
            .map_err(io_error(format!("copying {name} to {}", dir.display())))?;
    }
    Ok(())
}

/// The `redis-server` arguments for `options`.
fn option_args(dir: &Path, options: &RedisOptions, extra: ExtraPorts) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(password) = &options.password {
        args.extend(["--requirepass".to_owned(), password.clone()]);
    }
    if let Some((user, password)) = &options.acl_user {
        // Each word its own argument: redis-server joins a directive's arguments itself.
        args.extend(
            [
                "--user",
                user,
                "on",
                &format!(">{password}"),
                "~*",
                "&*",
                "+@all",
            ]
            .map(str::to_owned),
        );
        args.extend(["--user", "default", "off"].map(str::to_owned));
    }
    if let Some(tls_port) = extra.tls {
        let file = |name: &str| dir.join(name).display().to_string();
        args.extend([
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            file(SERVER_CERT_FILE),
            "--tls-key-file".to_owned(),
            file(SERVER_KEY_FILE),
            "--tls-ca-cert-file".to_owned(),
            file(CA_CERT_FILE),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ]);
        if extra.cluster_bus.is_some() {
            // Nodes talk TLS to each other, and tell TLS clients their TLS ports.
            args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(str::to_owned));
        }
    }
    if let Some(bus_port) = extra.cluster_bus {
        args.extend([
            "--cluster-enabled".to_owned(),
            "yes".to_owned(),
            "--cluster-port".to_owned(),
            bus_port.to_string(),
            "--cluster-config-file".to_owned(),
            dir.join("nodes.conf").display().to_string(),
            "--cluster-node-timeout".to_owned(),
            "5000".to_owned(),
        ]);
    }
    args
}

fn spawn_server(
    binary: &Path,
    port: u16,
    dir: &Path,
    options: &RedisOptions,
    extra: ExtraPorts,
) -> Result<Child, TestkitError> {
    let log = dir.join("redis.log");
    // A fresh log per start, so errors quote this start only.
    let _ = std::fs::remove_file(&log);
    // A restarted cluster node starts empty, as a crashed one without persistence would.
    let _ = std::fs::remove_file(dir.join("nodes.conf"));
    let mut child = Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "yes"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .args(option_args(dir, options, extra))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_error(format!("starting {}", binary.display())))?;
    // For the sweep after a crashed test run (see `sweep_orphans`).
    let _ = std::fs::write(dir.join("server"), format!("{} {port}", child.id()));

    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(TestkitError::Exited {
                    port,
                    status: status.to_string(),
                    log: log_tail(dir),
                })
            }
            Ok(None) => {}
            Err(e) => return Err(io_error(format!("watching redis-server on port {port}"))(e)),
        }
        // Answering is not enough: it must be *our* process answering, not a server that
        // beat us to the port.
        if answering_pid(port, options.auth().as_ref()) == Some(child.id()) {
            return Ok(child);
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestkitError::NotReady {
                port,
                waited: START_TIMEOUT,
                log: log_tail(dir),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A command in the Redis protocol.
fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Sends `AUTH` (when `auth` is set), `PING` and `INFO server`; the process id of the server
/// that answered `+PONG`.
fn answering_pid(port: u16, auth: Option<&(Option<String>, String)>) -> Option<u32> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    let mut request = Vec::new();
    let mut expected = String::new();
    if let Some((user, password)) = auth {
        match user {
            Some(user) => request.extend(resp_command(&["AUTH", user, password])),
            None => request.extend(resp_command(&["AUTH", password])),
        }
        expected.push_str("+OK\r\n");
    }
    request.extend(resp_command(&["PING"]));
    request.extend(resp_command(&["INFO", "server"]));
    expected.push_str("+PONG\r\n$");
    stream.write_all(&request).ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&reply);
        let Some(info) = text.strip_prefix(expected.as_str()) else {
            if reply.len() >= expected.len() || !expected.starts_with(text.as_ref()) {
                return None;
            }
            continue;
        };
        let Some((len, body)) = info.split_once("\r\n") else {
            continue;
        };
        let len: usize = len.parse().ok()?;
        if body.len() < len {
            continue;
        }
        return body.lines().find_map(|line| {
            line.strip_prefix("process_id:")
                .and_then(|pid| pid.trim().parse().ok())
        });
    }
}

/// Kills servers left behind by test processes that died without dropping them (a killed
/// `cargo test`), and removes their directories. Only servers this module started qualify:
/// their directory names a dead owner, and the recorded process is still a `redis-server` on
/// the recorded port.
fn sweep_orphans() {
    let Ok(entries) = std::fs::read_dir(base_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("redis-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        if let Ok(record) = std::fs::read_to_string(dir.join("server")) {
            let mut parts = record.split_whitespace();
            if let (Some(pid), Some(port)) = (parts.next(), parts.next()) {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                    .unwrap_or_default();
                if cmdline.contains("redis-server") && cmdline.contains(&format!(":{port}")) {
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn docker_is_required_on_ci_or_when_asked() {
        assert!(!docker_required_by(None, None));
        assert!(!docker_required_by(Some("false"), Some("0")));
        assert!(!docker_required_by(Some(""), Some("")));
        assert!(docker_required_by(Some("true"), None));
        assert!(docker_required_by(Some("TRUE"), None));
        assert!(docker_required_by(Some("1"), None));
        assert!(docker_required_by(None, Some("1")));
        assert!(docker_required_by(Some("false"), Some("true")));
    }

    #[test]
    fn wait_for_blocking_times_out_and_succeeds() {
        let mut calls = 0;
        wait_for_blocking(
            || {
                calls += 1;
                calls == 3
            },
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(matches!(
            wait_for_blocking(|| false, Duration::from_millis(30)),
            Err(TestkitError::Timeout(_))
        ));
    }
}
