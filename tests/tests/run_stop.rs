//! `make run` stops everything it started: `scripts/run.sh` (what `make run` execs) is started
//! for real, in a process group of its own as a terminal would, with a small devnet (200
//! accounts), a price drop after 5 s (so that liquidations happen), free ports and a temporary
//! `RUN_DIR`. Once a liquidation has landed and a health checker and a liquidator run, the
//! script is stopped
//!
//! - like a Ctrl-C in a terminal: SIGINT to its whole process group;
//! - like a supervisor or `timeout` would: SIGTERM to the script alone;
//!
//! and within a bounded time it must have exited (killed by that signal, as a shell expects),
//! the manager must have stopped in order ("manager stopped" in its log: it stopped its own
//! workers) and no process it started may be left: the devnet, redis-server, the manager, the
//! collector, the health checkers, the liquidators, the helpers. They are found by a scan of
//! `/proc`: every process whose environment carries this run's unique marker (everything the
//! script starts inherits it) or whose command line names this run's directory or ports. With
//! `BACKEND=docker` no container labelled `redline.deployment=run-<rpc port>` (the manager's
//! workers and the script's collector) may be left either.
//!
//! The docker cases need a Docker engine and the images `redline/{collector,health-checker,
//! liquidator}:latest` (`make docker_build`; `make test` builds them in
//! `manager_docker_e2e.rs`, which runs first). Without them they print a loud SKIPPED line and
//! pass, unless `CI=true` or `REDLINE_REQUIRE_DOCKER=1`: then a missing engine fails the test
//! (`testkit::docker_or_skip`) and missing images are built with `docker/build.sh` (the helper
//! `manager_docker_e2e.rs` uses).
//!
//! The binaries come from the workspace's target directory: `cargo build --workspace --bins`
//! first (`make test` does). The cases run one at a time.

mod manager_acceptance;

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use manager_acceptance::{docker, ensure_images, DockerCleanup};
use redline_tests::bin_dir;
use redline_tests::chaos::{alive, unix_ms};
use testkit::{docker_engine, docker_or_skip, free_port, wait_for_blocking};

/// The cases share the machine's 2 cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long the pipeline may take to land a liquidation with a health checker and a
/// liquidator running.
const WORKERS_UP: Duration = Duration::from_secs(240);
/// How long the script may take to stop everything after the signal (the manager's grace is
/// 30 s, its workers' 10 s within it; then the collector container, the devnet and Redis).
const STOPPED_WITHIN: Duration = Duration::from_secs(90);
/// The docker backend's labels (`manager/src/scaler/docker.rs`).
const LABEL_DEPLOYMENT: &str = "redline.deployment";
const LABEL_KIND: &str = "redline.kind";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Process,
    Docker,
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    /// Ctrl-C in a terminal: SIGINT to the foreground process group.
    CtrlC,
    /// A supervisor: SIGTERM to the script's process only.
    Term,
}

#[test]
fn process_backend_ctrl_c_stops_everything() -> anyhow::Result<()> {
    run_and_stop(Backend::Process, Stop::CtrlC)
}

#[test]
fn process_backend_sigterm_stops_everything() -> anyhow::Result<()> {
    run_and_stop(Backend::Process, Stop::Term)
}

#[test]
fn docker_backend_ctrl_c_stops_everything() -> anyhow::Result<()> {
    run_and_stop(Backend::Docker, Stop::CtrlC)
}

#[test]
fn docker_backend_sigterm_stops_everything() -> anyhow::Result<()> {
    run_and_stop(Backend::Docker, Stop::Term)
}

/// Whether the docker case can run here. The engine: `testkit::docker_or_skip` (a loud
/// SKIPPED line without one, a failure when `CI=true` or `REDLINE_REQUIRE_DOCKER=1`). The
/// images: made current with the sources (`testkit::docker_images`).
fn docker_ready(case: &str) -> anyhow::Result<bool> {
    const SERVICES: [&str; 3] = ["collector", "health-checker", "liquidator"];
    if !docker_or_skip(case) {
        return Ok(false);
    }
    ensure_images(&SERVICES).with_context(|| format!("{case}: building the images"))?;
    Ok(true)
}

/// One run of the script and everything that identifies what it started.
struct Run {
    child: Child,
    dir: tempfile::TempDir,
    marker: String,
    rpc_port: u16,
    redis_port: u16,
    deployment: String,
}

impl Run {
    /// Starts the script on `chains` (its `CHAINS`).
    fn start(backend: Backend, chains: &str) -> anyhow::Result<Self> {
        let bin = bin_dir(&[
            "devnet",
            "manager",
            "collector",
            "health-checker",
            "liquidator",
        ])?;
        let dir = tempfile::Builder::new()
            .prefix("redline-run-stop-")
            .tempdir()?;
        let rpc_port = free_port()?;
        let redis_port = free_port()?;
        let marker = format!("{}-{}-{rpc_port}", std::process::id(), unix_ms());
        let out = File::create(dir.path().join("run.out"))?;
        let child = Command::new("bash")
            .arg("scripts/run.sh")
            .current_dir(testkit::workspace_root())
            .env("BIN", &bin)
            .env(
                "BACKEND",
                match backend {
                    Backend::Process => "process",
                    Backend::Docker => "docker",
                },
            )
            .env("CHAINS", chains)
            .env("ACCOUNTS", "200")
            .env("SEED", "3")
            .env("RPC_PORT", rpc_port.to_string())
            .env("REDIS_PORT", redis_port.to_string())
            .env("RUN_DIR", dir.path())
            .env("PRICE_DROP_AFTER", "5")
            .env("PRICE_DROP", "uatom=7")
            .env("MAX_HEALTH_CHECKERS", "2")
            .env("MAX_LIQUIDATORS", "2")
            .env("DASHBOARD_ADDR", "off")
            .env("REDLINE_RUN_STOP_TEST", &marker)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // A process group of its own, as a shell gives a foreground job: pid = pgid.
            .process_group(0)
            .spawn()
            .context("starting bash scripts/run.sh")?;
        Ok(Run {
            child,
            dir,
            marker: format!("REDLINE_RUN_STOP_TEST={marker}"),
            rpc_port,
            redis_port,
            deployment: format!("run-{rpc_port}"),
        })
    }

    fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Live processes this run started: its marker in their environment, or its directory or
    /// ports on their command line. `(pid, command line)`.
    fn processes(&self) -> Vec<(u32, String)> {
        let own = std::process::id();
        let run_dir = self.run_dir().to_string_lossy().into_owned();
        let needles = [
            run_dir,
            format!(":{}", self.redis_port),
            format!(":{}", self.rpc_port),
            format!("--port {}", self.redis_port),
            format!("--port {}", self.rpc_port),
        ];
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == own {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    String::from_utf8_lossy(&raw)
                        .trim_end_matches('\0')
                        .replace('\0', " ")
                })
                .unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let marked = environ
                .split(|b| *b == 0)
                .any(|var| var == self.marker.as_bytes());
            let named = needles.iter().any(|n| cmdline.contains(n.as_str()));
            if (marked || named) && alive(pid) {
                found.push((pid, cmdline));
            }
        }
        found.sort();
        found
    }

    /// Live processes of this run whose executable is `name`.
    fn running(&self, name: &str) -> usize {
        self.processes()
            .iter()
            .filter(|(pid, _)| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end() == name)
            })
            .count()
    }

    /// Containers (any state) labelled with this run's deployment, of `kind` when given.
    fn containers(&self, kind: Option<&str>) -> anyhow::Result<Vec<String>> {
        let deployment = format!("label={LABEL_DEPLOYMENT}={}", self.deployment);
        let kind = kind.map(|k| format!("label={LABEL_KIND}={k}"));
        let mut args = vec!["ps", "-aq", "--filter", &deployment];
        if let Some(kind) = &kind {
            args.extend(["--filter", kind.as_str()]);
        }
        Ok(docker(&args)?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// The pipeline is at work: the manager has seen a liquidation land (after the price
    /// drop) and a health checker and a liquidator run.
    fn workers_up(&mut self, backend: Backend) -> anyhow::Result<bool> {
        if let Some(status) = self.child.try_wait()? {
            bail!("scripts/run.sh exited early ({status}):\n{}", self.report());
        }
        if !self.read("manager.log").contains("liquidation landed") {
            return Ok(false);
        }
        Ok(match backend {
            Backend::Process => {
                self.running("health-checker") > 0 && self.running("liquidator") > 0
            }
            Backend::Docker => {
                !self.containers(Some("health-checker"))?.is_empty()
                    && !self.containers(Some("liquidator"))?.is_empty()
            }
        })
    }

    fn signal(&self, stop: Stop) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let (signal, target) = match stop {
            Stop::CtrlC => ("-INT", format!("-{pid}")),
            Stop::Term => ("-TERM", pid),
        };
        let status = Command::new("kill")
            .args([signal, "--", &target])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill {signal} -- {target} failed");
        Ok(())
    }

    fn wait_exit(&mut self, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.run_dir().join(file)).unwrap_or_default()
    }

    /// The script's output and the tail of the manager's log, for failure messages.
    fn report(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "--- scripts/run.sh output ---\n{}",
            tail(&self.read("run.out"), 60)
        );
        let _ = writeln!(
            text,
            "--- manager.log (tail) ---\n{}",
            tail(&self.read("manager.log"), 40)
        );
        text
    }
}

impl Drop for Run {
    /// Whatever the outcome, nothing of the run is left behind.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        for (pid, _) in self.processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        if docker_engine().is_ok() {
            drop(DockerCleanup(self.deployment.clone()));
        }
    }
}

/// `make run CHAINS=osmosis,neutron`: a devnet per flavor and a deployment per chain on the one
/// Redis. Each chain's manager sees its own liquidations land after the price drop, the
/// terminal shows them prefixed with their chain, each chain's manifest says its flavor's chain
/// and rule, and SIGTERM stops everything both started.
#[test]
fn two_chains_run_side_by_side_and_stop_together() -> anyhow::Result<()> {
    let case = "run_stop two chains";
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut run = Run::start(Backend::Process, "osmosis,neutron")?;
    // The terminal shows each manager's log through `tail | sed`, a moment after the log file
    // has the line, so the wait is on what the terminal shows.
    let shown = |run: &Run, chain: &str| {
        let prefix = format!("[{chain}] ");
        run.read("run.out")
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains("liquidation landed"))
    };
    let mut exited = None;
    let both = wait_for_blocking(
        || {
            exited = run.child.try_wait().ok().flatten();
            exited.is_some() || (shown(&run, "osmosis") && shown(&run, "neutron"))
        },
        WORKERS_UP,
    )
    .is_ok();
    if let Some(status) = exited {
        bail!(
            "{case}: scripts/run.sh exited early ({status}):\n{}",
            run.report()
        );
    }
    anyhow::ensure!(
        both,
        "{case}: liquidations were not shown, each with its chain, within {WORKERS_UP:?}:\n{}\n--- osmosis/manager.log\n{}\n--- neutron/manager.log\n{}",
        tail(&run.read("run.out"), 40),
        tail(&run.read("osmosis/manager.log"), 20),
        tail(&run.read("neutron/manager.log"), 20)
    );
    let manifest = |chain: &str| -> anyhow::Result<mars::manifest::Manifest> {
        Ok(serde_json::from_str(
            &run.read(&format!("{chain}/manifest.json")),
        )?)
    };
    let (osmosis, neutron) = (manifest("osmosis")?, manifest("neutron")?);
    assert_eq!(
        (osmosis.chain_id.as_str(), neutron.chain_id.as_str()),
        ("devnet-1", "neutron-devnet-1")
    );
    assert_eq!(
        neutron.liquidation_rule,
        mars::rule::LiquidationRule::CloseFactor
    );
    assert_eq!(neutron.fee.market, mars::manifest::FeeMarket::Feemarket);

    run.signal(Stop::Term)?;
    let Some(_) = run.wait_exit(STOPPED_WITHIN)? else {
        bail!("{case}: scripts/run.sh still runs {STOPPED_WITHIN:?} after SIGTERM");
    };
    let _ = wait_for_blocking(|| run.processes().is_empty(), Duration::from_secs(5));
    let left = run.processes();
    anyhow::ensure!(
        left.is_empty(),
        "{case}: processes of the run survived the stop: {left:#?}"
    );
    for chain in ["osmosis", "neutron"] {
        anyhow::ensure!(
            run.read(&format!("{chain}/manager.log"))
                .contains("manager stopped"),
            "{case}: the {chain} manager did not log its orderly stop"
        );
    }
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn run_and_stop(backend: Backend, stop: Stop) -> anyhow::Result<()> {
    let case = format!("run_stop {backend:?} {stop:?}");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if backend == Backend::Docker && !docker_ready(&case)? {
        return Ok(());
    }
    let mut run = Run::start(backend, "osmosis")?;
    let started = Instant::now();

    let mut up = Ok(false);
    let _ = wait_for_blocking(
        || {
            up = run.workers_up(backend);
            !matches!(up, Ok(false))
        },
        WORKERS_UP,
    );
    match up {
        Ok(true) => {}
        Ok(false) => bail!(
            "{case}: no liquidation landed with a health checker and a liquidator running \
             after {WORKERS_UP:?}:\n{}",
            run.report()
        ),
        Err(error) => return Err(error.context(case)),
    }
    eprintln!(
        "{case}: workers up after {:.1} s: {} processes of the run",
        started.elapsed().as_secs_f64(),
        run.processes().len()
    );

    run.signal(stop)?;
    let signalled = Instant::now();
    let Some(status) = run.wait_exit(STOPPED_WITHIN)? else {
        bail!(
            "{case}: scripts/run.sh still runs {STOPPED_WITHIN:?} after the signal:\n{}",
            run.report()
        );
    };
    eprintln!(
        "{case}: the script exited {:.1} s after the signal ({status})",
        signalled.elapsed().as_secs_f64()
    );
    // What the script started is gone (a process killed a moment ago may still be reaped).
    let _ = wait_for_blocking(|| run.processes().is_empty(), Duration::from_secs(5));
    let left = run.processes();
    anyhow::ensure!(
        left.is_empty(),
        "{case}: processes of the run survived the stop: {left:#?}\n{}",
        run.report()
    );
    if backend == Backend::Docker {
        let left = run.containers(None)?;
        anyhow::ensure!(
            left.is_empty(),
            "{case}: containers labelled {LABEL_DEPLOYMENT}={} survived the stop: {left:?}\n{}",
            run.deployment,
            run.report()
        );
    }
    // The manager stopped in order (it stops its own workers), not by the backstops.
    let manager_log = run.read("manager.log");
    anyhow::ensure!(
        manager_log.contains("manager stopped"),
        "{case}: the manager did not log its orderly stop:\n{}",
        run.report()
    );
    let output = run.read("run.out");
    anyhow::ensure!(
        output.contains("run: stopped;"),
        "{case}: the script did not finish its cleanup:\n{}",
        run.report()
    );
    anyhow::ensure!(
        !output.contains("the manager has not stopped") && !output.contains("the manager left"),
        "{case}: the manager had to be helped to stop:\n{}",
        run.report()
    );
    // Last: it ended the way a shell expects of a job stopped by that signal.
    let expected = match stop {
        Stop::CtrlC => 2,
        Stop::Term => 15,
    };
    anyhow::ensure!(
        status.signal() == Some(expected),
        "{case}: scripts/run.sh should end killed by signal {expected}, like a shell expects: {status}\n{}",
        run.report()
    );

    Ok(())
}
