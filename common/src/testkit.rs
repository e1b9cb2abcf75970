//! Helpers for tests that run real components: throwaway `redis-server` processes on free
//! loopback ports, free ports for other servers, and polling until a condition holds.
//!
//! Every [`RedisServer`] is its own process with its own port and directory, so tests can run
//! in parallel without sharing state. Servers keep nothing on disk (`--save ""`,
//! `--appendonly no`) and die with their [`RedisServer`] value.

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
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestkitError {
    let what = what.into();
    move |source| TestkitError::Io { what, source }
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

/// Polls the async `condition` (fast at first, then every 100 ms) until it returns `true`, or
/// fails after `timeout`.
pub async fn wait_for<F, Fut>(mut condition: F, timeout: Duration) -> Result<(), TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if condition().await {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(TestkitError::Timeout(timeout));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(100));
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

/// A `redis-server` process of our own on a free loopback port, killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers. Blocks for the few
    /// milliseconds that takes, so it can be called from sync and async tests alike.
    pub fn start() -> Result<Self, TestkitError> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_orphans);

        let binary = find_redis_server()?;
        let dir = make_server_dir()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match spawn_server(&binary, port, &dir) {
                Ok(child) => {
                    return Ok(Self {
                        binary,
                        port,
                        dir,
                        child: Some(child),
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

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
            match spawn_server(&self.binary, self.port, &self.dir) {
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

fn spawn_server(binary: &Path, port: u16, dir: &Path) -> Result<Child, TestkitError> {
    let log = dir.join("redis.log");
    // A fresh log per start, so errors quote this start only.
    let _ = std::fs::remove_file(&log);
    let mut child = Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "yes"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
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
        if answering_pid(port) == Some(child.id()) {
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

/// Sends `PING` and `INFO server`; the process id of the server that answered `+PONG`.
fn answering_pid(port: u16) -> Option<u32> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    stream
        .write_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&reply);
        let Some(info) = text.strip_prefix("+PONG\r\n$") else {
            if reply.len() >= 7 && !text.starts_with("+PONG") {
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
