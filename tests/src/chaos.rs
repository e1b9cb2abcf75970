//! Shared helpers of the fault tests (`tests/tests/chaos_*.rs`, `tests/tests/secrets.rs`): a
//! whole pipeline run by the real `manager` binary (it starts the collector, the health
//! checkers and the liquidators as child processes or containers), a devnet in this process, a
//! real redis-server, and the checks that prove nothing was lost:
//!
//! - the manager's per-block records (`<prefix>:manager:blocks`), read as they come so that a
//!   Redis restart does not erase what was seen before it;
//! - who holds which job, straight from Redis (`XPENDING` of the health-check stream, the
//!   `owners` hash of the liquidation priority queue);
//! - a kill that is deterministic: the candidate victims are frozen (SIGSTOP, or `docker
//!   pause`) before Redis is asked what they hold, so what the test sees is what the victim
//!   holds when it dies; when none holds anything they are thawed and asked again a moment
//!   later;
//! - on chain: every `liquidate` event per block and account, read block by block as the chain
//!   grows ([`LiquidationWatch`]), and a wait for the liquidations to settle that uses no
//!   planning code (every expected account liquidated, the liquidation queue empty, then a
//!   quiet spell);
//! - after the pipeline is stopped, the capture oracle ([`crate::capture`], which shares no code
//!   with the planner) judges whether anything is left to liquidate at a profit
//!   ([`judge_capture`]);
//! - each test's figures, written as a JSON fragment ([`report`]) that `make reliability`
//!   renders into RELIABILITY.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use redis::aio::ConnectionManager;
use redline_chain::{ChainClient, ChainConfig, TendermintClient, Wallet};
use redline_liquidator::recheck::PositionReader;
use redline_protocol::RedBank;
use serde_json::Value;
use testkit::{free_port, RedisServer};

use crate::bench::devnet::{self, Devnet};
use crate::bench::liquidation::{profitable_plans, read_positions, FeeEstimate};
use crate::capture::{CaptureOracle, CaptureReport};
use testkit::http::http_get;

pub mod report;

/// Queue prefix every service of a fault test uses (the services' default, so that the
/// manager, which passes only the queue prefix on to its workers, and the workers agree on the
/// index prefix too).
pub const PREFIX: &str = "redline";
/// Health-check job stream and its consumer group.
pub const HEALTH_STREAM: &str = "redline:health-checks";
pub const GROUP: &str = "workers";
/// Base key of the liquidation priority queue.
pub const LIQUIDATION_BASE: &str = "redline:{liquidations}";
/// Visibility timeout of the fault tests: a dead worker's job comes back after it.
pub const VISIBILITY_MS: u64 = 3_000;

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to `pid`.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// Alive and not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Direct children of `pid` (from /proc), each with its command name.
pub fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after the last `)`.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let parent = rest.split_whitespace().nth(1);
        if parent.and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            let comm = head.split_once('(').map(|(_, c)| c).unwrap_or_default();
            children.push((child, comm.to_owned()));
        }
    }
    children
}

/// Live direct children of `pid` running `binary` (from /proc).
pub fn children_running(pid: u32, binary: &str) -> Vec<u32> {
    let mut children: Vec<u32> = children_of(pid)
        .into_iter()
        .filter(|(child, comm)| comm == binary && alive(*child))
        .map(|(child, _)| child)
        .collect();
    children.sort();
    children
}

/// Polls `condition` every 200 ms until it holds, or fails naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut condition: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match condition().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what}{}",
                last_error
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One record of the manager's per-block ledger.
#[derive(Debug, Clone)]
pub struct BlockRecord {
    pub height: u64,
    pub status: String,
    pub jobs: u64,
    pub accounts: u64,
    pub jobs_missed: u64,
    pub lag_ms: Option<u64>,
    pub health_checkers: u64,
    pub liquidators: u64,
    /// When this process read the record.
    pub seen: Instant,
}

impl BlockRecord {
    pub fn on_time(&self) -> bool {
        self.status == "on_time"
    }
    pub fn missed(&self) -> bool {
        self.status == "late" || self.status == "not_enqueued"
    }
}

/// Every block record the manager wrote, kept in this process (so a Redis restart that
/// empties the stream loses none of what was read before it).
pub struct BlockLog {
    key: String,
    last_id: String,
    pub all: Vec<BlockRecord>,
}

impl BlockLog {
    pub fn new() -> Self {
        Self::with_prefix(PREFIX)
    }

    /// The records of a manager whose queue prefix is `prefix`.
    pub fn with_prefix(prefix: &str) -> Self {
        BlockLog {
            key: format!("{prefix}:manager:blocks"),
            last_id: "0-0".into(),
            all: Vec::new(),
        }
    }

    /// Reads the records written since the last poll.
    pub async fn poll(&mut self, conn: &mut impl redis::aio::ConnectionLike) -> anyhow::Result<()> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(format!("({}", self.last_id))
            .arg("+")
            .query_async(conn)
            .await?;
        for entry in reply.ids {
            self.last_id = entry.id.clone();
            let raw: String = entry
                .get("record")
                .context("a block record without `record`")?;
            let record: Value = serde_json::from_str(&raw)?;
            let number = |field: &str| record[field].as_u64().unwrap_or(0);
            self.all.push(BlockRecord {
                height: number("height"),
                status: record["status"].as_str().unwrap_or_default().to_owned(),
                jobs: number("jobs"),
                accounts: number("accounts"),
                jobs_missed: number("jobs_missed"),
                lag_ms: record["lag_ms"].as_u64(),
                health_checkers: number("health_checkers"),
                liquidators: number("liquidators"),
                seen: Instant::now(),
            });
        }
        Ok(())
    }

    /// Records of blocks above `height`.
    pub fn after(&self, height: u64) -> impl Iterator<Item = &BlockRecord> {
        self.all.iter().filter(move |b| b.height > height)
    }

    /// Whether the last `n` records above `height` are all on time.
    pub fn on_time_run(&self, height: u64, n: usize) -> bool {
        let recent: Vec<&BlockRecord> = self.after(height).collect();
        recent.len() >= n && recent[recent.len() - n..].iter().all(|b| b.on_time())
    }

    pub fn tail(&self, n: usize) -> String {
        self.all[self.all.len().saturating_sub(n)..]
            .iter()
            .map(|b| format!("{}:{}:{}jobs", b.height, b.status, b.jobs))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl BlockLog {
    /// The newest height recorded so far.
    pub fn newest(&self) -> Option<u64> {
        self.all.iter().map(|b| b.height).max()
    }

    /// Blocks `from..=to`, each classified. A block counts as missed when it has no record at
    /// all, when its record is late or not enqueued, or when no record of it passes `full` (an
    /// "on time" block over an index that a Redis restart emptied, say); pass
    /// [`BlockRecord::on_time`] when on time is enough. Call it once the manager has recorded
    /// past `to`, or the blocks it has not reached yet count as missed.
    pub fn window(
        &self,
        from: u64,
        to: u64,
        full: impl Fn(&BlockRecord) -> bool,
    ) -> report::BlockWindow {
        let mut window = report::BlockWindow {
            from,
            to,
            ..report::BlockWindow::default()
        };
        for height in from..=to {
            let records: Vec<&BlockRecord> =
                self.all.iter().filter(|b| b.height == height).collect();
            let Some(last) = records.last() else {
                window.no_record.push(height);
                continue;
            };
            window.recorded += 1;
            if records.iter().any(|b| b.on_time() && full(b)) {
                window.on_time += 1;
                continue;
            }
            match last.status.as_str() {
                "late" => window.late.push(height),
                "not_enqueued" => window.not_enqueued.push(height),
                "on_time" => window.other.push(report::OtherBlock {
                    height,
                    why: format!("on time with {} accounts", last.accounts),
                }),
                status => window.other.push(report::OtherBlock {
                    height,
                    why: status.replace('_', " "),
                }),
            }
        }
        window
    }
}

impl Default for BlockLog {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the manager runs its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Process,
    Docker,
}

/// How a pipeline run is set up.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub accounts: usize,
    pub seed: u64,
    pub block_time: Duration,
    pub backend: Backend,
    /// Fixed worker counts (min = max), so a killed worker is replaced rather than scaled.
    pub health_checkers: u32,
    pub liquidators: u32,
    /// Further manager flags (e.g. `--health-checker-arg=…`).
    pub manager_args: Vec<String>,
    /// Environment of the manager (its workers inherit it).
    pub env: Vec<(String, String)>,
    /// RPC endpoints written into the services' manifest instead of the devnet's own (e.g.
    /// proxies in front of it); websocket URLs follow them.
    pub rpc: Vec<String>,
    /// Flags of the collector the test runs itself (docker backend only).
    pub collector_args: Vec<String>,
    /// Leaves the liquidator mnemonic out of the manifest (it must then come from `MNEMONIC`
    /// or `MNEMONIC_FILE` in `env`).
    pub strip_mnemonic: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            accounts: 300,
            seed: 11,
            block_time: Duration::from_millis(500),
            backend: Backend::Process,
            health_checkers: 1,
            liquidators: 1,
            manager_args: Vec::new(),
            env: Vec::new(),
            rpc: Vec::new(),
            collector_args: Vec::new(),
            strip_mnemonic: false,
        }
    }
}

/// A devnet, a Redis and the manager with its workers.
pub struct Pipeline {
    pub dir: PathBuf,
    pub redis: RedisServer,
    pub devnet: Devnet,
    pub manifest_path: PathBuf,
    /// The manifest as written for the services.
    pub manifest: mars::manifest::Manifest,
    pub metrics_addr: String,
    pub log_path: PathBuf,
    pub manager: tokio::process::Child,
    pub manager_pid: u32,
    /// The collector this test runs itself with the docker backend (the manager runs one only
    /// with the process backend); its output goes to `collector.log`.
    pub collector: Option<tokio::process::Child>,
    pub conn: ConnectionManager,
    pub blocks: BlockLog,
    pub options: PipelineOptions,
}

impl Pipeline {
    /// Starts everything and waits for the manager's `/health`.
    pub async fn start(dir: &Path, options: PipelineOptions) -> anyhow::Result<Self> {
        let devnet = devnet::start(options.accounts, options.seed, options.block_time).await?;
        Self::start_on(dir, options, devnet).await
    }

    /// [`Pipeline::start`] on a devnet the caller started (`accounts`, `seed` and `block_time`
    /// of `options` are then unused).
    pub async fn start_on(
        dir: &Path,
        options: PipelineOptions,
        devnet: Devnet,
    ) -> anyhow::Result<Self> {
        let bin = crate::bin_dir(&crate::SERVICES)?;
        let redis = RedisServer::start()?;
        let mut manifest = devnet.manifest.clone();
        if !options.rpc.is_empty() {
            manifest.rpc_http = options.rpc.clone();
            manifest.rpc_ws = options
                .rpc
                .iter()
                .map(|url| redline_service::config::websocket_url_for(url))
                .collect();
        }
        if options.strip_mnemonic {
            manifest.liquidator_mnemonic = None;
        }
        let manifest_path = dir.join("manifest.json");
        manifest.write(&manifest_path)?;
        let metrics_addr = format!("127.0.0.1:{}", free_port()?);
        let log_path = dir.join("manager.log");
        let backend = match options.backend {
            Backend::Process => "process",
            Backend::Docker => "docker",
        };
        let counts = [
            format!("--min-health-checkers={}", options.health_checkers),
            format!("--max-health-checkers={}", options.health_checkers),
            format!("--min-liquidators={}", options.liquidators),
            format!("--max-liquidators={}", options.liquidators),
        ];
        let mut command = tokio::process::Command::new(bin.join("manager"));
        command
            .args(["--manifest", &manifest_path.display().to_string()])
            .args(["--redis-url", &redis.url()])
            .args(["--backend", backend])
            .args(counts)
            .args([
                "--queue-visibility-timeout-ms",
                &VISIBILITY_MS.to_string(),
                "--queue-block-ms",
                "500",
            ])
            .args(["--metrics-addr", &metrics_addr, "--log-format", "json"])
            .args(["--stop-grace-secs", "10"])
            .args([
                "--collector-arg=--reconcile-every-blocks=0",
                "--collector-arg=--no-progress-bar",
                "--health-checker-arg=--workers=1",
                "--health-checker-arg=--compute-threads=1",
            ])
            .args(&options.manager_args)
            .env_remove("RUST_LOG")
            .env_remove("MNEMONIC")
            .env_remove("MNEMONIC_FILE")
            .envs(options.env.iter().map(|(k, v)| (k, v)));
        if options.backend == Backend::Process {
            command.args(["--bin-dir", &bin.display().to_string()]);
        }
        let mut manager = crate::spawn_logged(&mut command, &log_path, "the manager")?;
        let collector = match options.backend {
            Backend::Process => None,
            Backend::Docker => {
                let mut command = tokio::process::Command::new(bin.join("collector"));
                command
                    .args(["--manifest", &manifest_path.display().to_string()])
                    .args(["--redis-url", &redis.url(), "--log-format", "json"])
                    .args(["--reconcile-every-blocks=0", "--no-progress-bar"])
                    .args(&options.collector_args)
                    .env_remove("RUST_LOG");
                let log_path = dir.join("collector.log");
                Some(crate::spawn_logged(
                    &mut command,
                    &log_path,
                    "the collector",
                )?)
            }
        };
        let manager_pid = manager.id().context("manager pid")?;
        let conn = redis::Client::open(redis.url())?
            .get_connection_manager()
            .await?;
        let started = Instant::now();
        loop {
            if http_get(&metrics_addr, "/health").await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = manager.try_wait() {
                bail!(
                    "the manager exited at start: {status}\n{}",
                    tail(&log_path, 40)
                );
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the manager never served /health"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Pipeline {
            dir: dir.to_path_buf(),
            redis,
            devnet,
            manifest_path,
            manifest,
            metrics_addr,
            log_path,
            manager,
            manager_pid,
            collector,
            conn,
            blocks: BlockLog::new(),
            options,
        })
    }

    pub async fn poll_blocks(&mut self) -> anyhow::Result<()> {
        self.blocks.poll(&mut self.conn).await
    }

    /// Waits until `n` block records in a row above `height` are on time.
    pub async fn wait_on_time(
        &mut self,
        what: &str,
        height: u64,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // Redis may be down or just restarted: a failed read is retried.
            let _ = self.poll_blocks().await;
            if self.blocks.on_time_run(height, n) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.manager.try_wait() {
                bail!("the manager exited: {status}");
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {timeout:?} waiting for {what}; last blocks: {}",
                    self.blocks.tail(12)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The manager's process-backend workers running `binary`.
    pub fn workers(&self, binary: &str) -> Vec<u32> {
        children_running(self.manager_pid, binary)
    }

    /// Waits until `n` workers run `binary` (process backend), and returns their pids.
    pub async fn wait_workers(&self, binary: &str, n: usize) -> anyhow::Result<Vec<u32>> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let pids = self.workers(binary);
            if pids.len() == n {
                return Ok(pids);
            }
            if Instant::now() > deadline {
                bail!("{} {binary} workers after 120 s, want {n}", pids.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn health(&self) -> anyhow::Result<Value> {
        let (_, body) = http_get(&self.metrics_addr, "/health").await?;
        Ok(serde_json::from_str(&body)?)
    }

    /// SIGTERM to the manager; it stops every worker, then itself.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        signal(self.manager_pid, "TERM")?;
        let status = tokio::time::timeout(Duration::from_secs(60), self.manager.wait())
            .await
            .context("the manager did not stop within 60 s of SIGTERM")??;
        anyhow::ensure!(status.success(), "the manager exited with {status}");
        Ok(())
    }

    /// The chain checks for this pipeline's devnet.
    pub fn chain(&self) -> anyhow::Result<ChainCheck> {
        ChainCheck::new(&self.devnet)
    }

    /// How this run is set up, for its report fragment.
    pub fn setup(&self) -> report::Setup {
        let options = &self.options;
        report::Setup {
            backend: match options.backend {
                Backend::Process => "process",
                Backend::Docker => "docker",
            }
            .to_string(),
            accounts: self.devnet.borrowers.len(),
            block_ms: self.devnet.manifest.block_time_ms,
            health_checkers: options.health_checkers,
            liquidators: options.liquidators,
            visibility_ms: VISIBILITY_MS,
            rpc_endpoints: options.rpc.len(),
            manager_args: options.manager_args.clone(),
        }
    }

    /// Sets the oracle price of `denom` to `price` at the next block and waits for it; returns
    /// the drop as the report tells it (the price before is read from the oracle first).
    pub async fn price_drop(&self, denom: &str, price: &str) -> anyhow::Result<report::PriceDrop> {
        let before: Value = self
            .devnet
            .client
            .query_smart(
                &self.devnet.manifest.contracts.oracle,
                &serde_json::json!({"price": {"denom": denom}}),
                None,
            )
            .await
            .with_context(|| format!("the oracle price of {denom}"))?;
        let from = before["price"]
            .as_str()
            .with_context(|| format!("no price of {denom} in {before}"))?
            .to_string();
        let height = self.devnet.move_prices(&[(denom, price)]).await?;
        Ok(report::PriceDrop {
            denom: denom.to_string(),
            from,
            to: price.to_string(),
            height,
        })
    }

    /// Entries of the dead-letter streams of the health checks and of the liquidations.
    pub async fn dead_letters(&self) -> anyhow::Result<report::DeadLetters> {
        let mut conn = self.conn.clone();
        let health_checks: usize = redis::cmd("XLEN")
            .arg(format!("{HEALTH_STREAM}:dead"))
            .query_async(&mut conn)
            .await?;
        let liquidations: usize = redis::cmd("XLEN")
            .arg(format!("{LIQUIDATION_BASE}:dead"))
            .query_async(&mut conn)
            .await?;
        Ok(report::DeadLetters {
            health_checks,
            liquidations,
        })
    }
}

/// A 30 % ATOM drop; every account the liquidator's planning finds liquidatable at a profit
/// right after it must be liquidated, none twice in one block. Waits for the liquidations to
/// settle (no planning code) and reads the dead letters, with the pipeline still running; `quiet`: how long
/// no liquidation may land before they count as settled.
pub async fn liquidations_land(
    p: &Pipeline,
    quiet: Duration,
) -> anyhow::Result<(report::Liquidations, report::DeadLetters)> {
    let chain = p.chain()?;
    let drop = p.price_drop("uatom", "7").await?;
    let drop_height = drop.height;
    let mut watch = LiquidationWatch::from(drop_height);
    let liquidatable = chain.profitable_left(&p.devnet.borrowers).await?;
    anyhow::ensure!(
        !liquidatable.is_empty(),
        "the drop made nothing liquidatable"
    );
    let settled_height = chain
        .wait_settled(
            &mut watch,
            &p.conn,
            &liquidatable,
            quiet,
            Duration::from_secs(180),
        )
        .await?;
    let last = watch.poll(&chain).await?;
    let tally = watch.tally();
    eprintln!(
        "after the drop: {} accounts liquidatable at a profit, {} liquidations on chain of {} accounts in blocks {drop_height}..={last}, twice in one block: {:?}",
        liquidatable.len(),
        tally.total,
        tally.accounts.len(),
        tally.twice_in_a_block
    );
    anyhow::ensure!(
        tally.twice_in_a_block.is_empty(),
        "liquidated twice in one block: {:?}",
        tally.twice_in_a_block
    );
    let never: Vec<&String> = liquidatable
        .iter()
        .filter(|a| !tally.accounts.contains(*a))
        .collect();
    anyhow::ensure!(never.is_empty(), "never liquidated: {never:?}");
    let quiet_blocks = quiet
        .as_millis()
        .div_ceil(u128::from(p.devnet.manifest.block_time_ms.max(1))) as u64;
    let liquidations = report::Liquidations::of(
        drop,
        Some(liquidatable.len()),
        &watch,
        quiet_blocks,
        settled_height,
        chain.block_seconds(drop_height, settled_height).await?,
    );
    Ok((liquidations, p.dead_letters().await?))
}

/// Stops the pipeline, then the capture oracle judges every borrower (funding its wallet from
/// the master wallet, idle now): nothing may be left liquidatable at a profit, nor refused for
/// an unexplained reason.
pub async fn stop_and_judge(p: &mut Pipeline) -> anyhow::Result<report::Capture> {
    p.stop().await?;
    let capture = judge_capture(&p.devnet, &p.devnet.borrowers).await?;
    eprintln!("capture oracle after the stop: {}", capture.summary());
    anyhow::ensure!(
        capture.profitable.is_empty() && capture.other.is_empty(),
        "capture oracle: {}: {:?}",
        capture.summary(),
        capture.check().err()
    );
    Ok((&capture).into())
}

/// [`stop_and_judge`], then writes the case's report fragment: `figures`, the liquidations
/// that `landed` (with the dead letters), the capture and the runtime since `started`.
pub async fn stop_and_report(
    p: &mut Pipeline,
    fragment: &mut report::Fragment,
    started: Instant,
    figures: report::Figures,
    landed: (report::Liquidations, report::DeadLetters),
) -> anyhow::Result<()> {
    let capture = stop_and_judge(p).await?;
    let (liquidations, dead_letters) = landed;
    fragment.runtime_s = started.elapsed().as_secs_f64();
    fragment.figures = Some(figures);
    fragment.liquidations = Some(liquidations);
    fragment.dead_letters = Some(dead_letters);
    fragment.capture = Some(capture);
    fragment.write()?;
    Ok(())
}

/// The capture oracle's verdict ([`crate::capture`]) on `accounts`. Call it after the pipeline
/// is stopped: the oracle's wallet is funded by the master wallet (slot 0 of the manifest's
/// liquidator mnemonic), which the liquidators' treasurer must no longer be using.
pub async fn judge_capture(devnet: &Devnet, accounts: &[String]) -> anyhow::Result<CaptureReport> {
    let manifest = &devnet.manifest;
    let mnemonic = manifest
        .liquidator_mnemonic
        .as_deref()
        .context("the devnet manifest carries no liquidator mnemonic")?;
    let chain = ChainConfig::from_manifest(manifest)
        .map_err(|e| anyhow::anyhow!("the devnet manifest: {e}"))?;
    let master = Wallet::from_mnemonic(mnemonic, &manifest.bech32_prefix, 0)
        .map_err(|e| anyhow::anyhow!("the master wallet: {e}"))?;
    let block_time = Duration::from_millis(manifest.block_time_ms);
    let mut attempt = 0;
    let oracle = loop {
        attempt += 1;
        match CaptureOracle::prepare(
            devnet.client.clone(),
            &chain,
            (&manifest.contracts.red_bank, &manifest.contracts.oracle),
            mnemonic,
            &master,
            accounts,
        )
        .await
        {
            Ok(oracle) => break oracle,
            // A top-up the treasurer sent just before the stop may still be landing, with the
            // sequence the funding tx was signed with: try again a few blocks later.
            Err(error) if attempt < 3 => {
                eprintln!("preparing the capture oracle failed ({error:#}); trying again");
                tokio::time::sleep(block_time * 4).await;
            }
            Err(error) => return Err(error.context("preparing the capture oracle")),
        }
    };
    oracle.judge(accounts).await.context("the capture oracle")
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// After a failed run: prints the last `lines` lines of the manager's log at `log_path`, and
/// keeps `dir` (which holds it) for a look.
pub fn keep_for_a_look(dir: tempfile::TempDir, log_path: &Path, lines: usize) {
    eprintln!(
        "manager log ({}), last lines:\n{}",
        log_path.display(),
        tail(log_path, lines)
    );
    eprintln!("kept {}", dir.keep().display());
}

/// A worker to kill: a child process of the manager, or a Docker container.
#[derive(Debug, Clone)]
pub enum Victim {
    Process(u32),
    Container(String),
}

impl Victim {
    /// Whether a queue consumer name belongs to this victim. A process's consumers are named
    /// `<hostname>-<pid>[-suffix]`; the docker backend names a container's consumers after the
    /// container (`<name>[-suffix]`).
    pub fn owns(&self, consumer: &str) -> bool {
        match self {
            Victim::Process(pid) => {
                consumer.ends_with(&format!("-{pid}")) || consumer.contains(&format!("-{pid}-"))
            }
            Victim::Container(name) => {
                consumer == name || consumer.starts_with(&format!("{name}-"))
            }
        }
    }

    /// `process 1234` or `container <name>`, for reports.
    pub fn describe(&self) -> String {
        match self {
            Victim::Process(pid) => format!("process {pid}"),
            Victim::Container(name) => format!("container {name}"),
        }
    }

    fn freeze(&self) -> anyhow::Result<()> {
        match self {
            Victim::Process(pid) => signal(*pid, "STOP"),
            Victim::Container(id) => docker(&["pause", id]),
        }
    }

    fn thaw(&self) -> anyhow::Result<()> {
        match self {
            Victim::Process(pid) => signal(*pid, "CONT"),
            Victim::Container(id) => docker(&["unpause", id]),
        }
    }

    fn kill(&self) -> anyhow::Result<()> {
        match self {
            Victim::Process(pid) => signal(*pid, "KILL"),
            Victim::Container(id) => {
                // A paused container is thawed by the engine only to die: SIGKILL reaches a
                // frozen process (cgroup freezer), and nothing runs in between.
                docker(&["kill", "--signal", "KILL", id])
            }
        }
    }
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .context("running docker")?;
    anyhow::ensure!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Kills one of `victims` (SIGKILL / `docker kill --signal KILL`) at a moment it holds
/// unacknowledged jobs, and returns it with those jobs. Deterministic: every victim is frozen,
/// then `held` reads from Redis which jobs which consumer holds (`(consumer, job)` pairs); while
/// frozen a victim can neither finish nor acknowledge its jobs, so they are exactly what dies
/// with it. The others are thawed; when none holds anything, all are thawed and the look is
/// repeated 20 ms later.
pub async fn kill_one_holding<F, Fut>(
    victims: &[Victim],
    timeout: Duration,
    mut held: F,
) -> anyhow::Result<(Victim, Vec<String>)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<(String, String)>>>,
{
    anyhow::ensure!(!victims.is_empty(), "no victim to kill");
    let deadline = Instant::now() + timeout;
    let mut tries = 0u32;
    let thaw_all = |except: Option<&Victim>| -> anyhow::Result<()> {
        for victim in victims {
            if except.is_none_or(|e| !std::ptr::eq(e, victim)) {
                victim.thaw()?;
            }
        }
        Ok(())
    };
    loop {
        tries += 1;
        for victim in victims {
            victim.freeze()?;
        }
        // Commands a victim wrote before it froze (an ack on its way) reach Redis first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let jobs = match held().await {
            Ok(jobs) => jobs,
            Err(error) => {
                thaw_all(None)?;
                return Err(error);
            }
        };
        for victim in victims {
            let mine: Vec<String> = jobs
                .iter()
                .filter(|(consumer, _)| victim.owns(consumer))
                .map(|(_, job)| job.clone())
                .collect();
            if !mine.is_empty() {
                victim.kill()?;
                thaw_all(Some(victim))?;
                eprintln!("killed {victim:?} holding {mine:?} (look {tries})");
                return Ok((victim.clone(), mine));
            }
        }
        thaw_all(None)?;
        if Instant::now() > deadline {
            bail!("none of {victims:?} held a job in {tries} looks over {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One entry of a stream's pending list: id, consumer, idle ms, deliveries.
pub type Pending = (String, String, u64, u64);

/// The health-check jobs pending (delivered, unacknowledged), with their consumers.
pub async fn pending_health_checks(conn: &mut ConnectionManager) -> anyhow::Result<Vec<Pending>> {
    let reply: Vec<Pending> = redis::cmd("XPENDING")
        .arg(HEALTH_STREAM)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(10_000)
        .query_async(conn)
        .await?;
    Ok(reply)
}

/// The field maps of a stream's entries from `start` to `end` (ids, or `-` and `+`).
async fn stream_range(
    conn: &mut ConnectionManager,
    key: &str,
    start: &str,
    end: &str,
) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg(start)
        .arg(end)
        .query_async(conn)
        .await?;
    Ok(entries
        .into_iter()
        .map(|(_, fields)| fields.into_iter().collect())
        .collect())
}

/// Whether a stream still holds entry `id` (an acknowledged job is deleted).
pub async fn stream_holds(
    conn: &mut ConnectionManager,
    key: &str,
    id: &str,
) -> anyhow::Result<bool> {
    Ok(!stream_range(conn, key, id, id).await?.is_empty())
}

/// The fields of entry `id` of a stream (empty when it is gone).
pub async fn stream_entry(
    conn: &mut ConnectionManager,
    key: &str,
    id: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let entry = stream_range(conn, key, id, id).await?.into_iter().next();
    Ok(entry.unwrap_or_default())
}

/// Every field map of a stream.
pub async fn stream_all(
    conn: &mut ConnectionManager,
    key: &str,
) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    stream_range(conn, key, "-", "+").await
}

/// Liquidation candidates in flight (claimed, unacknowledged) with their consumers.
pub async fn liquidations_in_flight(
    conn: &mut ConnectionManager,
) -> anyhow::Result<BTreeMap<String, String>> {
    let owners: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{LIQUIDATION_BASE}:owners"))
        .query_async(conn)
        .await?;
    Ok(owners)
}

/// Whether a liquidation candidate id is still anywhere in the queue (waiting or in flight).
pub async fn liquidation_queued(conn: &mut ConnectionManager, id: &str) -> anyhow::Result<bool> {
    let payload: Option<String> = redis::cmd("HGET")
        .arg(format!("{LIQUIDATION_BASE}:payloads"))
        .arg(id)
        .query_async(conn)
        .await?;
    Ok(payload.is_some())
}

/// The chain-side checks: liquidations per block and account, and what is left to liquidate.
pub struct ChainCheck {
    pub client: TendermintClient,
    reader: PositionReader<TendermintClient>,
    fee: FeeEstimate,
    block_time: Duration,
}

impl ChainCheck {
    pub fn new(devnet: &Devnet) -> anyhow::Result<Self> {
        let manifest = &devnet.manifest;
        let reader =
            PositionReader::new(RedBank::from_manifest(devnet.client.clone(), manifest, 6));
        Ok(ChainCheck {
            client: devnet.client.clone(),
            reader,
            // A generous 1M-gas tx.
            fee: FeeEstimate::from_manifest(manifest, 1_000_000)?,
            block_time: Duration::from_millis(manifest.block_time_ms),
        })
    }

    /// Of `accounts`, those a liquidator could liquidate now at a profit (unlimited funds, the
    /// fee of a generous 1M-gas tx counted), by the liquidator's own planning code. The fault
    /// tests use it only to pick a moment (a liquidator holding live candidates) or the
    /// accounts to expect liquidated; whether anything profitable is left at the end is the
    /// capture oracle's call ([`judge_capture`]), which shares no code with the planner.
    pub async fn profitable_left(&self, accounts: &[String]) -> anyhow::Result<Vec<String>> {
        self.reader.invalidate().await;
        let snapshot = self.reader.latest().await?;
        let positions = read_positions(&self.reader, accounts, snapshot.height).await?;
        let plans = profitable_plans(&snapshot, &positions, self.block_time, &self.fee)?;
        let mut left: Vec<String> = plans.into_iter().map(|plan| plan.account).collect();
        left.sort();
        Ok(left)
    }

    /// Waits until none of `accounts` is left to liquidate at a profit.
    pub async fn wait_all_liquidated(
        &self,
        accounts: &[String],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.profitable_left(accounts).await?;
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {} accounts still liquidatable at a profit after {timeout:?}: {left:?}",
                    left.len(),
                    accounts.len()
                );
            }
            tokio::time::sleep(self.block_time * 2).await;
        }
    }

    /// Waits, without any planning code, for the liquidations watched by `watch` to settle:
    /// every account of `expected` liquidated at least once, the liquidation queue (read through
    /// `queue`) empty (no candidate waiting, parked for funds or in flight), and no liquidation
    /// landing for `quiet` (counted in blocks). Returns the chain's height when it settled.
    pub async fn wait_settled(
        &self,
        watch: &mut LiquidationWatch,
        queue: &ConnectionManager,
        expected: &[String],
        quiet: Duration,
        timeout: Duration,
    ) -> anyhow::Result<u64> {
        let block_ms = self.block_time.as_millis().max(1);
        let quiet_blocks = quiet.as_millis().div_ceil(block_ms) as u64;
        let deadline = Instant::now() + timeout;
        loop {
            let latest = watch.poll(self).await?;
            let missing: Vec<&String> = expected
                .iter()
                .filter(|account| !watch.liquidated(account))
                .collect();
            let since = watch.last_height().unwrap_or(watch.start);
            let queued: usize = redis::cmd("HLEN")
                .arg(format!("{LIQUIDATION_BASE}:payloads"))
                .query_async(&mut queue.clone())
                .await?;
            if missing.is_empty() && queued == 0 && latest >= since + quiet_blocks {
                return Ok(latest);
            }
            if Instant::now() > deadline {
                bail!(
                    "liquidations did not settle within {timeout:?}: {} of {} expected accounts \
                     never liquidated {missing:?}; {queued} candidates still queued; last \
                     liquidation at height {since}, chain at {latest} ({quiet_blocks} quiet blocks \
                     wanted)",
                    missing.len(),
                    expected.len()
                );
            }
            tokio::time::sleep(self.block_time).await;
        }
    }

    /// Successful `liquidate` events in blocks `from..=to`, counted per (height, account).
    pub async fn liquidations(
        &self,
        from: u64,
        to: u64,
    ) -> anyhow::Result<BTreeMap<(u64, String), usize>> {
        let mut on_chain: BTreeMap<(u64, String), usize> = BTreeMap::new();
        for h in from..=to {
            let block = self.client.block_results(h).await?;
            for tx in block.txs.iter().filter(|t| t.is_success()) {
                for event in tx.events_of("wasm") {
                    if event.attribute("action") == Some("liquidate") {
                        let user = event.attribute("user").unwrap_or_default().to_string();
                        *on_chain.entry((h, user)).or_default() += 1;
                    }
                }
            }
        }
        Ok(on_chain)
    }

    pub async fn height(&self) -> anyhow::Result<u64> {
        Ok(self.client.latest_height().await?)
    }

    /// Seconds between the header times of blocks `from` and `to`.
    pub async fn block_seconds(&self, from: u64, to: u64) -> anyhow::Result<f64> {
        let from = self.client.block_time(from).await?;
        let to = self.client.block_time(to).await?;
        Ok(to.nanos().saturating_sub(from.nanos()) as f64 / 1e9)
    }
}

/// Every successful `liquidate` event from a height on, read block by block as the chain grows.
#[derive(Debug, Clone)]
pub struct LiquidationWatch {
    /// The first height watched.
    pub start: u64,
    next: u64,
    /// Times liquidated, per (height, account).
    pub events: BTreeMap<(u64, String), usize>,
}

impl LiquidationWatch {
    /// Watches blocks from `height` on (the height of a price drop, say).
    pub fn from(height: u64) -> Self {
        LiquidationWatch {
            start: height,
            next: height,
            events: BTreeMap::new(),
        }
    }

    /// Reads the blocks that came since the last poll; returns the latest height.
    pub async fn poll(&mut self, chain: &ChainCheck) -> anyhow::Result<u64> {
        let latest = chain.height().await?;
        if latest >= self.next {
            self.events
                .extend(chain.liquidations(self.next, latest).await?);
            self.next = latest + 1;
        }
        Ok(latest)
    }

    /// The height of the last liquidation seen.
    pub fn last_height(&self) -> Option<u64> {
        self.events.keys().map(|(height, _)| *height).max()
    }

    pub fn liquidated(&self, account: &str) -> bool {
        self.events.keys().any(|(_, a)| a == account)
    }

    /// The heights `account` was liquidated at (once per liquidation).
    pub fn heights_of(&self, account: &str) -> Vec<u64> {
        self.events
            .iter()
            .filter(|((_, a), _)| a == account)
            .flat_map(|((height, _), times)| std::iter::repeat_n(*height, *times))
            .collect()
    }

    pub fn tally(&self) -> LiquidationTally {
        LiquidationTally::of(&self.events)
    }
}

/// What the chain says after a run: liquidations per account, and duplicates in one block.
#[derive(Debug, Default)]
pub struct LiquidationTally {
    pub total: usize,
    pub accounts: BTreeSet<String>,
    /// `(height, account, times)` liquidated more than once in one block.
    pub twice_in_a_block: Vec<(u64, String, usize)>,
}

impl LiquidationTally {
    pub fn of(events: &BTreeMap<(u64, String), usize>) -> Self {
        let mut tally = LiquidationTally::default();
        for ((height, account), times) in events {
            tally.total += times;
            tally.accounts.insert(account.clone());
            if *times > 1 {
                tally
                    .twice_in_a_block
                    .push((*height, account.clone(), *times));
            }
        }
        tally
    }
}
