//! The `process` backend: workers are child processes of the manager on this machine, started
//! from the service binaries in `--bin-dir` (by default the directory of the manager's own
//! binary, where `cargo build` puts them all).
//!
//! - **Environment**: a worker gets the manager's environment, then the manager's chain, queue
//!   and log settings ([`super::env::worker_env`]), then `METRICS_ADDR=127.0.0.1:0` (every
//!   worker serves its own metrics on a free port); `QUEUE_CONSUMER` is never inherited, so
//!   each worker is its own queue consumer (`<host>-<pid>`). Liquidators lease their wallet
//!   slot in Redis themselves, so parallel liquidators never share a wallet; with
//!   [`ProcessScaler::with_wallet_handoff`] an exited liquidator's slots are freed before its
//!   replacement starts, which then signs with the same (funded) wallet.
//! - **Logs**: every line a worker writes to stdout or stderr is printed on the manager's
//!   stderr, prefixed with `[<service>#<n>]`, `n` the worker's number (the lowest free one).
//! - **Counting**: [`Scaler::observe`] reaps exited workers (logging their exit status) and
//!   counts the live ones; the next [`Scaler::scale_to`] starts replacements. A service whose
//!   workers keep exiting within 10 s of their start is restarted with a backoff (0.5 s,
//!   doubling up to 30 s), so a broken binary or config does not spin.
//! - **Stopping**: the highest-numbered workers go first: SIGTERM (every service drains and
//!   exits on it), then SIGKILL after `--stop-grace-secs`. A stopping worker no longer counts.
//! - **Ctrl-C**: workers run in their own process group, so a Ctrl-C in the terminal reaches
//!   only the manager, which stops them in order ([`Scaler::shutdown`]) instead of having them
//!   die while it still replaces exited workers. Should the manager itself die, Linux sends
//!   each worker SIGTERM (parent-death signal), and a dropped scaler kills what it still holds.
//!
//! Besides the scaled kinds, [`ProcessScaler::scale_service`] runs any service by name; the
//! manager runs one `collector` this way.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use redline_pipeline::queue::consumer_name_of;

use super::env::{self, NOT_INHERITED};
use super::{Scaler, ScalerError, WorkerCount, WorkerKind};
use crate::handoff::WalletHandoff;

const BACKEND: &str = "process";

/// Settings of the process backend.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Directory of the service binaries (`health-checker`, `liquidator`, `collector`).
    pub bin_dir: PathBuf,
    /// Environment every worker gets on top of the manager's (see the module docs).
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments per service name.
    pub args: BTreeMap<String, Vec<String>>,
    /// Time between SIGTERM and SIGKILL when a worker is stopped.
    pub stop_grace: Duration,
}

impl ProcessConfig {
    /// The directory the running binary lives in (where cargo puts every service binary).
    pub fn own_bin_dir() -> Option<PathBuf> {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
    }

    /// Path of `service`'s binary.
    pub fn binary(&self, service: &str) -> PathBuf {
        self.bin_dir.join(service)
    }

    /// Checks that the binary of each service in `services` exists and is executable.
    pub fn validate(&self, services: &[&str]) -> Result<(), ScalerError> {
        use std::os::unix::fs::PermissionsExt as _;
        if !self.bin_dir.is_dir() {
            return Err(ScalerError::config(
                BACKEND,
                "--bin-dir",
                format!("{} is not a directory", self.bin_dir.display()),
            ));
        }
        for service in services {
            let binary = self.binary(service);
            let executable = std::fs::metadata(&binary)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            if !executable {
                return Err(ScalerError::config(
                    BACKEND,
                    "--bin-dir",
                    format!(
                        "no executable `{service}` at {} (build it with `cargo build --bins`)",
                        binary.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

struct Worker {
    child: Child,
    pid: u32,
    started_at: Instant,
}

#[derive(Default)]
struct Group {
    desired: u32,
    /// Live workers by number.
    workers: BTreeMap<u32, Worker>,
    exited: u64,
    /// Pids of workers reaped since their wallet slots were last handed off.
    exited_pids: Vec<u32>,
    /// Workers in a row that exited soon after starting (a crash loop).
    quick_exits: u32,
    /// No replacement is started before this (crash-loop backoff).
    restart_at: Option<Instant>,
}

/// A worker that exits sooner than this after its start counts as crash-looping.
const QUICK_EXIT: Duration = Duration::from_secs(10);
const RESTART_BACKOFF_START: Duration = Duration::from_millis(500);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

fn restart_backoff(quick_exits: u32) -> Duration {
    let factor = 1u32 << quick_exits.saturating_sub(1).min(10);
    (RESTART_BACKOFF_START * factor).min(RESTART_BACKOFF_MAX)
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    /// Workers being stopped (SIGTERM sent, waiting for the exit or the grace period).
    stopping: Vec<JoinHandle<()>>,
    shut_down: bool,
}

/// Workers as child processes. See the module docs.
pub struct ProcessScaler {
    config: ProcessConfig,
    state: Mutex<State>,
    handoff: Option<WalletHandoff>,
}

impl std::fmt::Debug for ProcessScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessScaler")
            .field("bin_dir", &self.config.bin_dir)
            .field("env", &env::keys(&self.config.env))
            .finish_non_exhaustive()
    }
}

fn backend_error(operation: impl Into<String>, message: impl std::fmt::Display) -> ScalerError {
    ScalerError::backend(BACKEND, operation, message)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

impl ProcessScaler {
    pub fn new(config: ProcessConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            handoff: None,
        }
    }

    /// Frees an exited liquidator's wallet slots before its replacement starts.
    pub fn with_wallet_handoff(mut self, handoff: WalletHandoff) -> Self {
        self.handoff = Some(handoff);
        self
    }

    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// Runs exactly `desired` workers of `service` (any service binary, not only the scaled
    /// kinds), replacing exited ones.
    pub async fn scale_service(&self, service: &str, desired: u32) -> Result<(), ScalerError> {
        let mut state = self.state.lock().await;
        if state.shut_down && desired > 0 {
            return Err(backend_error(
                format!("starting {service}"),
                "the scaler has been shut down",
            ));
        }
        state.stopping.retain(|task| !task.is_finished());
        let group = state.groups.entry(service.to_owned()).or_default();
        group.desired = desired;
        reap(service, group);
        let exited = std::mem::take(&mut group.exited_pids);
        if let Some(handoff) = self
            .handoff
            .as_ref()
            .filter(|_| service == WorkerKind::Liquidator.service())
        {
            for pid in exited {
                handoff.worker_exited(&consumer_name_of(pid)).await;
            }
        }
        let group = state.groups.entry(service.to_owned()).or_default();
        let backing_off = group.restart_at.is_some_and(|at| Instant::now() < at);
        while !backing_off && (group.workers.len() as u32) < desired {
            let number = (0u32..)
                .find(|n| !group.workers.contains_key(n))
                .expect("fewer than u32::MAX workers");
            let worker = self.spawn(service, number)?;
            group.workers.insert(number, worker);
        }
        let mut stopped = Vec::new();
        while group.workers.len() as u32 > desired {
            let (number, worker) = group.workers.pop_last().expect("more workers than desired");
            stopped.push(stop(
                service.to_owned(),
                number,
                worker,
                self.config.stop_grace,
            ));
        }
        state.stopping.extend(stopped);
        Ok(())
    }

    /// Live and desired workers of `service`, after reaping the exited ones.
    pub async fn observe_service(&self, service: &str) -> WorkerCount {
        let mut state = self.state.lock().await;
        let Some(group) = state.groups.get_mut(service) else {
            return WorkerCount::default();
        };
        reap(service, group);
        WorkerCount {
            desired: group.desired,
            running: group.workers.len() as u32,
            pending: 0,
        }
    }

    /// Process ids of the live workers of `service`, by worker number.
    pub async fn pids(&self, service: &str) -> BTreeMap<u32, u32> {
        let state = self.state.lock().await;
        state
            .groups
            .get(service)
            .map(|group| {
                group
                    .workers
                    .iter()
                    .map(|(number, worker)| (*number, worker.pid))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Workers of `service` that exited without being asked to (since the scaler started).
    pub async fn unexpected_exits(&self, service: &str) -> u64 {
        let mut state = self.state.lock().await;
        match state.groups.get_mut(service) {
            Some(group) => {
                reap(service, group);
                group.exited
            }
            None => 0,
        }
    }

    fn spawn(&self, service: &str, number: u32) -> Result<Worker, ScalerError> {
        let binary = self.config.binary(service);
        let mut command = Command::new(&binary);
        command
            .args(self.config.args.get(service).into_iter().flatten())
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .env("METRICS_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for key in NOT_INHERITED {
            if *key != "METRICS_ADDR" {
                command.env_remove(key);
            }
        }
        // SAFETY: `prctl` is async-signal-safe and touches no memory of the parent; it runs in
        // the forked child before exec. The signal fires when the thread that forked exits:
        // spawns happen on tokio's runtime threads, which live as long as the manager.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            backend_error(
                format!("starting {service}#{number}"),
                format!("{}: {e}", binary.display()),
            )
        })?;
        let pid = child.id().unwrap_or(0);
        let prefix = format!("[{service}#{number}]");
        if let Some(stdout) = child.stdout.take() {
            forward_lines(prefix.clone(), stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            forward_lines(prefix, stderr);
        }
        info!(service, worker = number, pid, "worker started");
        Ok(Worker {
            child,
            pid,
            started_at: Instant::now(),
        })
    }
}

/// Drops exited workers from `group`, logging each.
fn reap(service: &str, group: &mut Group) {
    let mut exited = Vec::new();
    for (number, worker) in group.workers.iter_mut() {
        match worker.child.try_wait() {
            Ok(Some(status)) => {
                let ran = worker.started_at.elapsed();
                if ran < QUICK_EXIT {
                    group.quick_exits += 1;
                } else {
                    group.quick_exits = 0;
                }
                let delay = if group.quick_exits > 0 {
                    restart_backoff(group.quick_exits)
                } else {
                    Duration::ZERO
                };
                group.restart_at = Some(Instant::now() + delay);
                warn!(
                    service,
                    worker = *number,
                    pid = worker.pid,
                    status = describe(status),
                    ran_ms = ran.as_millis() as u64,
                    restart_in_ms = delay.as_millis() as u64,
                    "worker exited; it will be replaced"
                );
                exited.push(*number);
            }
            Ok(None) => {}
            Err(error) => {
                warn!(service, worker = *number, pid = worker.pid, %error, "cannot check a worker; dropping it");
                exited.push(*number);
            }
        }
    }
    for number in exited {
        if let Some(worker) = group.workers.remove(&number) {
            group.exited_pids.push(worker.pid);
        }
        group.exited += 1;
    }
}

/// SIGTERM now, SIGKILL after `grace`; the returned task ends when the worker is gone.
fn stop(service: String, number: u32, mut worker: Worker, grace: Duration) -> JoinHandle<()> {
    // The pid is ours until we reap it, so it cannot have been reused by another process.
    let pid = worker.pid as libc::pid_t;
    if pid > 0 {
        // SAFETY: plain syscall on a pid we own (not yet reaped).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    tokio::spawn(async move {
        match tokio::time::timeout(grace, worker.child.wait()).await {
            Ok(Ok(status)) => {
                info!(
                    service,
                    worker = number,
                    pid = worker.pid,
                    status = describe(status),
                    "worker stopped"
                )
            }
            Ok(Err(error)) => {
                warn!(service, worker = number, pid = worker.pid, %error, "waiting for a stopping worker failed")
            }
            Err(_) => {
                warn!(
                    service,
                    worker = number,
                    pid = worker.pid,
                    grace_ms = grace.as_millis() as u64,
                    "worker ignored SIGTERM; killing it"
                );
                if let Err(error) = worker.child.kill().await {
                    warn!(service, worker = number, pid = worker.pid, %error, "SIGKILL failed");
                }
            }
        }
    })
}

/// Prints each line of `stream` on the manager's stderr behind `prefix`.
fn forward_lines(prefix: String, stream: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{prefix} {line}");
        }
    });
}

impl Scaler for ProcessScaler {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn observe(&self, kind: WorkerKind) -> Result<WorkerCount, ScalerError> {
        Ok(self.observe_service(kind.service()).await)
    }

    async fn scale_to(&self, kind: WorkerKind, desired: u32) -> Result<(), ScalerError> {
        self.scale_service(kind.service(), desired).await
    }

    async fn shutdown(&self) -> Result<(), ScalerError> {
        let stopping = {
            let mut state = self.state.lock().await;
            state.shut_down = true;
            let grace = self.config.stop_grace;
            let mut tasks = std::mem::take(&mut state.stopping);
            for (service, group) in state.groups.iter_mut() {
                group.desired = 0;
                reap(service, group);
                while let Some((number, worker)) = group.workers.pop_last() {
                    tasks.push(stop(service.clone(), number, worker, grace));
                }
            }
            tasks
        };
        let count = stopping.len();
        for task in stopping {
            if let Err(error) = task.await {
                warn!(%error, "a worker's stop task failed");
            }
        }
        info!(stopped = count, "every worker stopped");
        Ok(())
    }
}
