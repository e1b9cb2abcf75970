//! Issue 5's acceptance scenario, shared by the `process` backend test (`manager_e2e.rs`) and
//! the `docker` backend test (`manager_docker_e2e.rs`): a real redis-server, a devnet (3 s
//! blocks, 1,000 seeded accounts) and the real `manager` binary with no workers; then
//!
//! 1. **baseline**: the manager runs without any health checker until the first health-check
//!    job exists, then that work wakes one; every block in time. The test watches this from
//!    outside the manager (the process list or the engine's containers, and the health-check
//!    stream in Redis) from the moment it starts it, and must see it up without work first
//!    (with Docker the test holds the collector back for two block times to make sure);
//! 2. **load**: healthy synthetic accounts are written into the position index (the collector
//!    cuts them into every block's jobs like real ones): a 100,000-account probe lets the
//!    manager measure a health checker's real throughput, then the load grows to 1.4 blocks
//!    of one health checker's work per block. The manager must scale the health checkers up,
//!    and once it has settled (6 blocks in time in a row), 6 further blocks must all be in
//!    time too;
//! 3. **load gone**: the synthetic accounts are removed; the manager must scale back to one;
//! 4. **price drop**: ATOM falls 30 %; the manager scales liquidators up from none, and every
//!    account a liquidator could liquidate at a profit is liquidated (none left);
//! 5. **SIGTERM**: the manager stops, and every worker it started with it.
//!
//! What differs per backend is in [`Backend`]: how the manager is started, who runs the
//! collector (the process backend's manager supervises one; with Docker it is a container of
//! its own, as `make run BACKEND=docker` does), which log line says a second health checker
//! runs, and how "every worker stopped" is checked (child processes, or labelled containers).
//!
//! The figures the issue asks for (blocks missed before and after scaling, how long scale-up
//! took) are printed: run with `-- --nocapture`.

// Each of the two test binaries uses only its backend's part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use cosmwasm_std::Uint128;
use redline_chain::ChainClient;
use redline_pipeline::index::{
    CollateralEntry, DebtEntry, IndexNamespace, IndexedAccount, PositionIndex,
};
use redline_pipeline::jobs::ProtocolKind;
use redline_pipeline::redis_conn::RedisConn;
use redline_tests::bench::devnet;
use redline_tests::chaos::{self, alive, unix_ms, BlockLog, BlockRecord, ChainCheck};
use redline_tests::{bin_dir, SERVICES};
use serde_json::Value;
use testkit::http::http_get_json;
use testkit::{free_port, RedisServer};

const ACCOUNTS: usize = 1_000;
const BLOCK_TIME: Duration = Duration::from_secs(3);
const QUEUE_PREFIX: &str = "e2e";
const MAX_HEALTH_CHECKERS: u32 = 4;
const MAX_LIQUIDATORS: u32 = 2;
/// Consecutive on-time blocks that show a phase has settled.
const SETTLED_BLOCKS: usize = 6;
/// Healthy accounts of the throughput probe, and the most the load adds.
const PROBE_LOAD: u64 = 100_000;
const MAX_LOAD: u64 = 600_000;
/// Blocks of work per block the load gives one health checker.
const LOAD_BLOCKS: f64 = 1.4;
/// Blocks after settling that must all be in time.
const HOLD_BLOCKS: usize = 6;
/// Seconds a stopped worker gets to finish its jobs before it is killed.
const STOP_GRACE_SECS: &str = "10";
/// Docker labels the docker backend puts on its containers (`manager/src/scaler/docker.rs`).
const LABEL_MANAGED: &str = "redline.managed";
const LABEL_DEPLOYMENT: &str = "redline.deployment";
const LABEL_KIND: &str = "redline.kind";

/// Where the manager runs its workers.
pub enum Backend {
    /// Child processes of the manager, from the workspace's debug binaries.
    Process,
    /// Containers of the `redline/<service>:latest` images on this machine's Docker engine,
    /// on the host network (so they reach this test's Redis and devnet on 127.0.0.1).
    Docker {
        /// Names this run's containers (their `redline.deployment` label): the test's
        /// [`DockerCleanup`] removes them all.
        deployment: String,
        /// CPU limit of each worker container: a health checker's capacity comes from its
        /// container, which is what the manager scales (as `--compute-threads=1` does for a
        /// process).
        cpus: &'static str,
    },
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker { .. } => "docker",
        }
    }
}

/// `docker <args>`, its stdout; an error carries its stderr.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running the docker CLI")?;
    if !output.status.success() {
        bail!(
            "docker {}: {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether a Docker engine answers here: the shared probe, without the skip policy (for
/// cleanup decisions). A test decides whether it runs with `testkit::docker_or_skip`.
pub fn docker_available() -> bool {
    testkit::docker_engine().is_ok()
}

/// The images of `services`, current with the sources (see `testkit::docker_images`).
pub fn ensure_images(services: &[&str]) -> anyhow::Result<()> {
    testkit::docker_images(services).map_err(anyhow::Error::msg)
}

/// Removes every container labelled with a deployment when dropped: the manager's workers and
/// the test's collector, also when the test fails or panics half-way.
pub struct DockerCleanup(pub String);

/// Container ids of a deployment, of every state; `managed_only`: just the manager's workers
/// (the test's collector container carries the deployment label but is not one of them).
fn deployment_containers(deployment: &str, managed_only: bool) -> anyhow::Result<Vec<String>> {
    let deployment = format!("label={LABEL_DEPLOYMENT}={deployment}");
    let managed = format!("label={LABEL_MANAGED}=true");
    let mut args = vec!["ps", "-aq", "--filter", &deployment];
    if managed_only {
        args.extend(["--filter", &managed]);
    }
    Ok(docker(&args)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        if let Ok(ids) = deployment_containers(&self.0, false) {
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                if let Err(error) = docker(&args) {
                    eprintln!("cleanup of deployment {}: {error}", self.0);
                }
            }
        }
    }
}

/// The block records the manager wrote (`e2e:manager:blocks`), read as they come.
struct Records {
    conn: RedisConn,
    log: BlockLog,
}

impl Records {
    async fn poll(&mut self) -> anyhow::Result<()> {
        self.log.poll(&mut self.conn).await
    }

    /// Polls until `done` holds for the records so far, or fails after `timeout`.
    async fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&[BlockRecord]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll().await?;
            if done(&self.log.all) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail: Vec<String> = self
                    .log
                    .all
                    .iter()
                    .rev()
                    .take(12)
                    .map(|b| {
                        format!(
                            "{}:{}:{}acc:{:?}ms:{}hc",
                            b.height, b.status, b.accounts, b.lag_ms, b.health_checkers
                        )
                    })
                    .collect();
                bail!("timed out after {timeout:?} waiting for {what}; last blocks: {tail:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Where the manager's health checkers can be seen from outside it.
#[derive(Clone)]
enum WorkerPlace {
    /// Child processes of the manager with this pid.
    Children(u32),
    /// Containers of this deployment.
    Containers(String),
}

impl WorkerPlace {
    /// Health checkers that exist now: child processes running the `health-checker` binary, or
    /// containers labelled as health checkers (created, starting or running).
    async fn health_checkers(&self) -> anyhow::Result<usize> {
        match self {
            WorkerPlace::Children(pid) => Ok(children_of(*pid)
                .into_iter()
                .filter(|child| alive(*child) && runs_binary(*child, "health-checker"))
                .count()),
            WorkerPlace::Containers(deployment) => {
                let deployment = format!("label={LABEL_DEPLOYMENT}={deployment}");
                let kind = format!("label={LABEL_KIND}=health-checker");
                let ids = tokio::task::spawn_blocking(move || {
                    docker(&["ps", "-aq", "--filter", &deployment, "--filter", &kind])
                })
                .await??;
                Ok(ids.split_whitespace().count())
            }
        }
    }
}

/// Whether process `pid` runs the binary named `name` (its `argv[0]`).
fn runs_binary(pid: u32, name: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|cmdline| {
            let argv0 = cmdline.split(|b| *b == 0).next()?.to_vec();
            let argv0 = String::from_utf8(argv0).ok()?;
            Some(Path::new(&argv0).file_name()? == name)
        })
        .unwrap_or(false)
}

/// Whether any job was ever added to `stream`: its last generated id is not `0-0`. Acknowledged
/// jobs are deleted from the stream, the id stays.
async fn jobs_ever_added(conn: &mut RedisConn, stream: &str) -> anyhow::Result<bool> {
    let exists: bool = redis::cmd("EXISTS").arg(stream).query_async(conn).await?;
    if !exists {
        return Ok(false);
    }
    let info: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await?;
    let last_id: String = redis::from_redis_value(
        info.get("last-generated-id")
            .cloned()
            .context("XINFO STREAM without last-generated-id")?,
    )?;
    Ok(last_id != "0-0")
}

/// One look from outside at the manager's start.
#[derive(Debug, Clone, Copy)]
struct StartLook {
    /// Since the manager was started.
    at: Duration,
    /// The manager answered `/health` (it was up, running its loop).
    manager_up: bool,
    /// Health checkers that existed (looked at first).
    health_checkers: usize,
    /// Whether a health-check job had ever been queued (looked at after the health checkers).
    work: bool,
}

/// Looks every 50 ms, from the manager's start until a health checker exists (at most
/// `timeout`), at whether the manager is up, how many health checkers exist and whether any
/// health-check job was ever queued. The health checkers are looked at before the work: a look
/// with a health checker and no work means the health checker existed before any work did.
async fn watch_start(
    place: WorkerPlace,
    mut conn: RedisConn,
    metrics_addr: String,
    since: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<StartLook>> {
    let stream = format!(
        "{QUEUE_PREFIX}:{}",
        redline_pipeline::jobs::HEALTH_CHECK_QUEUE
    );
    let mut looks = Vec::new();
    loop {
        let manager_up = http_get_json(&metrics_addr, "/health").await.is_ok();
        let health_checkers = place.health_checkers().await?;
        let work = jobs_ever_added(&mut conn, &stream).await?;
        looks.push(StartLook {
            at: since.elapsed(),
            manager_up,
            health_checkers,
            work,
        });
        if health_checkers > 0 || since.elapsed() > timeout {
            return Ok(looks);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The checks of the manager's start on the looks of [`watch_start`]: it was seen up without
/// work, no health checker existed before the first health-check job, and one came after.
fn check_start(backend: &Backend, looks: &[StartLook]) -> anyhow::Result<()> {
    let early: Vec<&StartLook> = looks
        .iter()
        .filter(|look| look.health_checkers > 0 && !look.work)
        .collect();
    anyhow::ensure!(
        early.is_empty(),
        "health checkers existed before any health-check job was queued: {early:?}"
    );
    let idle: Vec<&StartLook> = looks
        .iter()
        .filter(|look| look.manager_up && !look.work)
        .collect();
    let last_looks = &looks[looks.len().saturating_sub(5)..];
    anyhow::ensure!(
        !idle.is_empty(),
        "the manager was never seen up before the first health-check job, so its start without \
         work was not observed ({} looks; the last: {last_looks:?})",
        looks.len()
    );
    let first_work = looks.iter().find(|look| look.work).map(|look| look.at);
    let first_worker = looks
        .iter()
        .find(|look| look.health_checkers > 0)
        .map(|look| look.at);
    let (Some(first_work), Some(first_worker)) = (first_work, first_worker) else {
        bail!(
            "no health checker appeared after the first health-check job ({} looks; the last: \
             {last_looks:?})",
            looks.len()
        );
    };
    eprintln!(
        "[{}] start: manager up without work for {:.1} s ({} looks, no health checker); first \
         job seen at {:.1} s, first health checker at {:.1} s after the manager started",
        backend.name(),
        idle.last()
            .map(|l| l.at)
            .unwrap_or_default()
            .saturating_sub(idle[0].at)
            .as_secs_f64(),
        idle.len(),
        first_work.as_secs_f64(),
        first_worker.as_secs_f64(),
    );
    Ok(())
}

/// The last `n` records all on time with at least `workers` health checkers.
fn settled(blocks: &[BlockRecord], since: usize, n: usize, workers: u64) -> bool {
    let recent = &blocks[since.min(blocks.len())..];
    recent.len() >= n
        && recent[recent.len() - n..]
            .iter()
            .all(|b| b.on_time() && b.health_checkers >= workers)
}

/// `count` accounts with a healthy uusdc-backed uusdc loan (HF 8): pure load, never a
/// liquidation candidate.
fn healthy_accounts(
    usdc: redline_pipeline::index::DenomId,
    first: u64,
    count: u64,
) -> Vec<IndexedAccount> {
    (first..first + count)
        .map(|i| IndexedAccount {
            address: format!("loadtest1{i:038x}"),
            collaterals: vec![CollateralEntry {
                denom: usdc,
                amount_scaled: Uint128::new(1_000_000_000),
                enabled: true,
            }],
            debts: vec![DebtEntry {
                denom: usdc,
                amount_scaled: Uint128::new(100_000_000),
                uncollateralized: false,
            }],
        })
        .collect()
}

async fn remove_accounts(
    conn: &mut RedisConn,
    index: &PositionIndex,
    accounts: &[IndexedAccount],
) -> anyhow::Result<()> {
    let mut by_bucket: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for account in accounts {
        by_bucket
            .entry(index.bucket_of(&account.address))
            .or_default()
            .push(&account.address);
    }
    // Small pipelines: one huge reply can outlast the connection's response timeout on a
    // loaded 2-core CI machine.
    let buckets: Vec<_> = by_bucket.into_iter().collect();
    for chunk in buckets.chunks(16) {
        let mut pipe = redis::pipe();
        for (bucket, addresses) in chunk {
            for addresses in addresses.chunks(5_000) {
                pipe.cmd("HDEL")
                    .arg(index.namespace().bucket(*bucket))
                    .arg(addresses)
                    .ignore();
            }
        }
        let () = pipe.query_async(conn).await?;
    }
    Ok(())
}

/// Unix milliseconds of the first JSON log line at or after `after_ms` whose fields match.
fn log_event_ms(log: &str, after_ms: u64, matches: impl Fn(&Value) -> bool) -> Option<u64> {
    log.lines()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| {
            let time = tendermint::Time::parse_from_rfc3339(entry["timestamp"].as_str()?).ok()?;
            let ms = (time.unix_timestamp_nanos() / 1_000_000) as u64;
            (ms >= after_ms && matches(&entry["fields"])).then_some(ms)
        })
        .next()
}

/// Direct children of `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    chaos::children_of(pid)
        .into_iter()
        .map(|(child, _)| child)
        .collect()
}

/// Runs the scenario on `backend` in a temp dir; on failure prints the manager's log (and,
/// with Docker, the collector's) and keeps the dir.
pub async fn run_acceptance(backend: Backend) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("manager-e2e-{}", backend.name()))
        .tempdir()?;
    let log_path = dir.path().join("manager.log");
    let result = run(&backend, dir.path(), &log_path).await;
    if result.is_err() {
        if let Backend::Docker { deployment, .. } = &backend {
            let collector = collector_container(deployment);
            if let Ok(log) = docker(&["logs", "--tail", "30", &collector]) {
                eprintln!("collector container {collector}, last lines:\n{log}");
            }
        }
        chaos::keep_for_a_look(dir, &log_path, 80);
    }
    result
}

fn collector_container(deployment: &str) -> String {
    format!("redline-{deployment}-collector")
}

/// The manager, with the flags of `backend`.
fn manager_command(
    backend: &Backend,
    bin: &Path,
    manifest: &Path,
    redis_url: &str,
    metrics_addr: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bin.join("manager"));
    command
        .args(["--manifest", &manifest.display().to_string()])
        .args(["--redis-url", redis_url])
        .args([
            "--queue-prefix",
            QUEUE_PREFIX,
            "--index-prefix",
            QUEUE_PREFIX,
        ])
        .args(["--backend", backend.name()])
        .args(["--min-health-checkers", "0", "--min-liquidators", "0"])
        .args(["--max-health-checkers", &MAX_HEALTH_CHECKERS.to_string()])
        .args(["--max-liquidators", &MAX_LIQUIDATORS.to_string()])
        .args(["--metrics-addr", metrics_addr, "--log-format", "json"])
        // The dashboard's default port is fixed; tests run side by side.
        .args(["--dashboard-addr", "off"])
        .args(["--worker-log-level", "warn"]);
    match backend {
        Backend::Process => {
            command
                .args(["--bin-dir", &bin.display().to_string()])
                .args(["--stop-grace-secs", STOP_GRACE_SECS])
                // One compute thread per health checker: capacity comes from processes, which
                // is what the manager scales.
                .args([
                    "--health-checker-arg=--workers=1",
                    "--health-checker-arg=--compute-threads=1",
                ])
                .args([
                    "--collector-arg=--reconcile-every-blocks=0",
                    "--collector-arg=--no-progress-bar",
                ]);
        }
        Backend::Docker { deployment, cpus } => {
            command
                .args(["--docker-manifest", &manifest.display().to_string()])
                .args(["--docker-deployment", deployment])
                .args(["--docker-network", "host"])
                .args(["--docker-stop-grace-secs", STOP_GRACE_SECS])
                .args(["--docker-cpus", cpus])
                // The health checker's `--workers` and `--compute-threads`, as their env twins
                // (every container gets them; the liquidator has no such flags).
                .args(["--docker-env", "HEALTH_WORKERS=1;COMPUTE_THREADS=1"]);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// The collector as a container of its own (the docker backend scales workers only), on the
/// host network, labelled with the deployment so the test's cleanup removes it.
fn start_collector_container(
    deployment: &str,
    manifest: &Path,
    redis_url: &str,
) -> anyhow::Result<()> {
    let name = collector_container(deployment);
    let mount = format!("{}:/etc/redline/manifest.json:ro", manifest.display());
    let labels = [
        format!("{LABEL_DEPLOYMENT}={deployment}"),
        format!("{LABEL_KIND}=collector"),
    ];
    let env = [
        "REDLINE_MANIFEST=/etc/redline/manifest.json".to_string(),
        format!("REDIS_URL={redis_url}"),
        format!("QUEUE_PREFIX={QUEUE_PREFIX}"),
        format!("INDEX_PREFIX={QUEUE_PREFIX}"),
        "LOG_FORMAT=json".into(),
        "RUST_LOG=warn".into(),
        "METRICS_ADDR=off".into(),
        "RECONCILE_EVERY_BLOCKS=0".into(),
        "NO_PROGRESS_BAR=true".into(),
        format!("QUEUE_CONSUMER={name}"),
    ];
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--init",
        "-v",
        &mount,
    ];
    for label in &labels {
        args.extend(["--label", label]);
    }
    for variable in &env {
        args.extend(["-e", variable]);
    }
    args.push("redline/collector:latest");
    docker(&args).context("starting the collector container")?;
    Ok(())
}

async fn run(backend: &Backend, dir: &Path, log_path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin = match backend {
        Backend::Process => bin_dir(&SERVICES)?,
        Backend::Docker { .. } => bin_dir(&["manager"])?,
    };
    let redis_server = RedisServer::start()?;
    let devnet = devnet::start(ACCOUNTS, 11, BLOCK_TIME).await?;
    let manifest_path = dir.join("manifest.json");
    devnet.manifest.write(&manifest_path)?;
    if let Backend::Docker { .. } = backend {
        // Mounted into the containers, whose binaries run as nobody.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&manifest_path, std::fs::Permissions::from_mode(0o644))?;
    }
    let metrics_addr = format!("127.0.0.1:{}", free_port()?);
    let mut command = manager_command(
        backend,
        &bin,
        &manifest_path,
        &redis_server.url(),
        &metrics_addr,
    );
    let mut manager = redline_tests::spawn_logged(&mut command, log_path, "the manager")?;
    let manager_pid = manager.id().context("manager pid")?;
    let manager_started = Instant::now();

    let client = redis::Client::open(redis_server.url())?;
    let conn = RedisConn::Standalone(client.get_connection_manager().await?);
    // Watched from outside from now on: the manager must run without health checkers until
    // the first health-check job exists.
    let place = match backend {
        Backend::Process => WorkerPlace::Children(manager_pid),
        Backend::Docker { deployment, .. } => WorkerPlace::Containers(deployment.clone()),
    };
    let start_watch = tokio::spawn(watch_start(
        place,
        conn.clone(),
        metrics_addr.clone(),
        manager_started,
        Duration::from_secs(180),
    ));
    let mut records = Records {
        conn: conn.clone(),
        log: BlockLog::with_prefix(QUEUE_PREFIX),
    };

    let health = loop {
        if let Ok(health) = http_get_json(&metrics_addr, "/health").await {
            break health;
        }
        if let Ok(Some(status)) = manager.try_wait() {
            bail!("the manager exited at start: {status}");
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the manager never served /health"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "[{}] manager up after {:.1} s: {health}",
        backend.name(),
        started.elapsed().as_secs_f64()
    );
    if let Backend::Docker { deployment, .. } = backend {
        // The work starts with the collector: the manager runs two blocks without it first.
        tokio::time::sleep(2 * BLOCK_TIME).await;
        start_collector_container(deployment, &manifest_path, &redis_server.url())?;
    }

    // 1. Baseline: no health checker before the first job, then one, every block in time.
    let looks = start_watch.await??;
    check_start(backend, &looks)?;
    records
        .wait_until("the baseline to settle", Duration::from_secs(120), |b| {
            settled(b, 0, SETTLED_BLOCKS, 1)
        })
        .await?;
    let health = http_get_json(&metrics_addr, "/health").await?;
    let throughput = health["workers"]["health-checker"]["throughput_per_worker_s"]
        .as_f64()
        .unwrap_or_default();
    let baseline_accounts = records.log.all.last().map(|b| b.accounts).unwrap_or(0);
    eprintln!(
        "baseline: {baseline_accounts} accounts per block with 1 health checker, measured {throughput:.0} accounts/worker-s"
    );

    // 2. Load. First a probe of PROBE_LOAD healthy accounts, big enough that the manager
    //    measures a health checker's real throughput (small jobs are mostly overhead); then,
    //    unless the probe already needed more workers, enough to give one health checker
    //    LOAD_BLOCKS blocks of work per block.
    let index = PositionIndex::open(
        conn.clone(),
        IndexNamespace::new(
            QUEUE_PREFIX,
            &devnet.manifest.chain_id,
            ProtocolKind::RedBank,
        ),
    )
    .await?;
    let usdc = index.denom_ids(&["uusdc"]).await?[0];
    let mut synthetic = healthy_accounts(usdc, 0, PROBE_LOAD);
    for chunk in synthetic.chunks(50_000) {
        index.put_accounts(chunk).await?;
    }
    let probe_start = records.log.all.len();
    // The probe's first blocks may briefly scale up on the throughput measured with tiny
    // jobs; wait until the manager has measured and is back to one health checker.
    records
        .wait_until(
            "blocks with the probe load on one health checker",
            Duration::from_secs(90),
            |b| {
                let probed = &b[probe_start..];
                probed.iter().filter(|b| b.accounts >= PROBE_LOAD).count() >= 4
                    && probed.len() >= 2
                    && probed[probed.len() - 2..]
                        .iter()
                        .all(|b| b.health_checkers == 1 && b.on_time())
            },
        )
        .await?;
    let health = http_get_json(&metrics_addr, "/health").await?;
    let measured = health["workers"]["health-checker"]["throughput_per_worker_s"]
        .as_f64()
        .unwrap_or_default();
    let load = ((measured * BLOCK_TIME.as_secs_f64() * LOAD_BLOCKS) as u64)
        .clamp(2 * PROBE_LOAD, MAX_LOAD);
    let more = healthy_accounts(usdc, PROBE_LOAD, load - PROBE_LOAD);
    for chunk in more.chunks(50_000) {
        index.put_accounts(chunk).await?;
    }
    synthetic.extend(more);
    let load_at = (Instant::now(), unix_ms());
    eprintln!(
        "load: {load} accounts per block (one health checker measured at {measured:.0} accounts/s) from {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (load_at, load_at_ms) = load_at;
    let before_load = records
        .log
        .all
        .iter()
        .position(|b| b.seen >= load_at)
        .unwrap_or(records.log.all.len());
    records
        .wait_until(
            "the health checkers to scale up",
            Duration::from_secs(60),
            |b| b[before_load..].iter().any(|b| b.health_checkers >= 2),
        )
        .await?;
    let scaled_at = records.log.all[before_load..]
        .iter()
        .find(|b| b.health_checkers >= 2)
        .map(|b| b.seen)
        .unwrap_or_else(Instant::now);
    // Settled: SETTLED_BLOCKS blocks in time in a row with the scaled-up count; then every
    // block of a further HOLD_BLOCKS must be in time too.
    records
        .wait_until(
            "every block in time after the scale-up",
            Duration::from_secs(120),
            |b| settled(b, before_load, SETTLED_BLOCKS, 2),
        )
        .await?;
    let settled_len = records.log.all.len();
    records
        .wait_until("the hold blocks", Duration::from_secs(60), |b| {
            b.len() >= settled_len + HOLD_BLOCKS
        })
        .await?;
    let loaded: Vec<BlockRecord> = records.log.all[before_load..].to_vec();
    let first_on_time_scaled = loaded
        .iter()
        .position(|b| b.health_checkers >= 2 && b.on_time())
        .unwrap_or(0);
    let missed_before = loaded[..first_on_time_scaled]
        .iter()
        .filter(|b| b.missed())
        .count();
    let jobs_missed_before: u64 = loaded[..first_on_time_scaled]
        .iter()
        .map(|b| b.jobs_missed)
        .sum();
    let missed_after = loaded[first_on_time_scaled..]
        .iter()
        .filter(|b| b.missed())
        .count();
    let peak = loaded.iter().map(|b| b.health_checkers).max().unwrap_or(0);
    let recovered_at = loaded[first_on_time_scaled].seen;
    let held = &records.log.all[settled_len - SETTLED_BLOCKS..];
    // From the manager's own log: when it decided, and when the second health checker ran
    // (the process backend logs each worker it starts; the docker backend each batch of
    // containers it started).
    let log = std::fs::read_to_string(log_path)?;
    let decided_ms = log_event_ms(&log, load_at_ms, |f| {
        f["message"] == "scaling up" && f["kind"] == "health-checker"
    });
    let started_ms = log_event_ms(&log, load_at_ms, |f| match backend {
        Backend::Process => {
            f["message"] == "worker started" && f["service"] == "health-checker" && f["worker"] == 1
        }
        Backend::Docker { .. } => {
            f["message"] == "scaled up"
                && f["kind"] == "health-checker"
                && f["to"].as_u64().is_some_and(|to| to >= 2)
        }
    });
    eprintln!(
        "[{}] scale-up: decided {} ms and the second health checker started {} ms after the load was written; \
         workers ≥ 2 in the block records after {:.1} s, first block in time with them after {:.1} s",
        backend.name(),
        decided_ms.map(|t| (t - load_at_ms).to_string()).unwrap_or("?".into()),
        started_ms.map(|t| (t - load_at_ms).to_string()).unwrap_or("?".into()),
        scaled_at.duration_since(load_at).as_secs_f64(),
        recovered_at.duration_since(load_at).as_secs_f64(),
    );
    eprintln!(
        "[{}] scaled up to {peak} health checkers; blocks missed before scaling {missed_before} ({jobs_missed_before} jobs), \
         after {missed_after}; lag of the {} blocks held: {:?} ms",
        backend.name(),
        held.len(),
        held.iter().map(|b| b.lag_ms.unwrap_or(0)).collect::<Vec<_>>(),
    );
    // Once scaled, every block's work finished within the block.
    anyhow::ensure!(
        held.iter().all(|b| b.on_time()),
        "blocks missed once scaled: {:?}",
        held.iter()
            .filter(|b| !b.on_time())
            .map(|b| (b.height, b.status.clone(), b.health_checkers))
            .collect::<Vec<_>>()
    );

    // 3. The load goes away: back down.
    remove_accounts(&mut conn.clone(), &index, &synthetic).await?;
    let unload_at = Instant::now();
    let before_unload = records.log.all.len();
    records
        .wait_until(
            "the health checkers to scale down",
            Duration::from_secs(90),
            |b| {
                b[before_unload..]
                    .iter()
                    .any(|b| b.health_checkers <= 1 && b.accounts < baseline_accounts + 100)
            },
        )
        .await?;
    eprintln!(
        "[{}] scaled down to 1 health checker {:.1} s after the load went",
        backend.name(),
        unload_at.elapsed().as_secs_f64()
    );

    // 4. The price drop: liquidators from none, every profitable liquidation made.
    let chain = ChainCheck::new(&devnet)?;
    let liquidators_before = records.log.all.last().map(|b| b.liquidators).unwrap_or(0);
    let drop_at = Instant::now();
    let drop_height = devnet.move_prices(&[("uatom", "7")]).await?;
    let liquidatable = chain.profitable_left(&devnet.borrowers).await?;
    eprintln!(
        "price drop at height {drop_height}: {} accounts liquidatable at a profit (liquidators running before: {liquidators_before})",
        liquidatable.len()
    );
    anyhow::ensure!(
        !liquidatable.is_empty(),
        "the drop made nothing liquidatable"
    );
    let deadline = Instant::now() + Duration::from_secs(150);
    let left = loop {
        let left = chain.profitable_left(&liquidatable).await?;
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(BLOCK_TIME).await;
    };
    records.poll().await?;
    let peak_liquidators = records
        .log
        .all
        .iter()
        .map(|b| b.liquidators)
        .max()
        .unwrap_or(0);
    let health = http_get_json(&metrics_addr, "/health").await?;
    let landed = health["totals"]["liquidations_done"].as_u64().unwrap_or(0);
    eprintln!(
        "[{}] liquidations: {landed} landed in {:.1} s, {} of {} still profitable, liquidators up to {peak_liquidators}",
        backend.name(),
        drop_at.elapsed().as_secs_f64(),
        left.len(),
        liquidatable.len()
    );
    anyhow::ensure!(left.is_empty(), "liquidatable accounts left: {left:?}");
    anyhow::ensure!(
        liquidators_before == 0,
        "liquidators ran before there was anything to liquidate"
    );
    anyhow::ensure!(peak_liquidators >= 1, "no liquidator was started");
    anyhow::ensure!(
        landed as usize >= liquidatable.len(),
        "the manager saw {landed} liquidations land for {} liquidatable accounts",
        liquidatable.len()
    );
    let latest = devnet.client.latest_height().await?;
    eprintln!("chain at height {latest}");

    // 5. SIGTERM: the manager stops, and so does everything it started.
    let workers = Workers::of(backend, manager_pid)?;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &manager_pid.to_string()])
        .status()?;
    anyhow::ensure!(killed.success(), "kill -TERM failed");
    let status = tokio::time::timeout(Duration::from_secs(40), manager.wait())
        .await
        .context("the manager did not stop within 40 s of SIGTERM")??;
    anyhow::ensure!(status.success(), "the manager exited with {status}");
    workers.check_gone()?;
    let log = std::fs::read_to_string(log_path)?;
    let clean_stop = match backend {
        Backend::Process => "every worker stopped",
        Backend::Docker { .. } => "stopping every worker container",
    };
    anyhow::ensure!(log.contains(clean_stop), "no clean stop in the log");
    eprintln!(
        "[{}] manager e2e done in {:.0} s",
        backend.name(),
        started.elapsed().as_secs_f64()
    );
    devnet.shutdown().await;
    drop(redis_server);
    Ok(())
}

/// The workers the manager runs just before it is stopped, to check none outlives it.
enum Workers {
    /// Its child processes (the collector and the workers).
    Processes(Vec<u32>),
    /// Its containers, by deployment.
    Containers(String),
}

impl Workers {
    fn of(backend: &Backend, manager_pid: u32) -> anyhow::Result<Self> {
        match backend {
            Backend::Process => {
                let children = children_of(manager_pid);
                anyhow::ensure!(
                    children.len() >= 2,
                    "expected the collector and workers as children, found {children:?}"
                );
                Ok(Workers::Processes(children))
            }
            Backend::Docker { deployment, .. } => {
                let containers = deployment_containers(deployment, true)?;
                anyhow::ensure!(
                    !containers.is_empty(),
                    "expected worker containers of deployment {deployment}, found none"
                );
                Ok(Workers::Containers(deployment.clone()))
            }
        }
    }

    fn check_gone(self) -> anyhow::Result<()> {
        let survivors = match self {
            Workers::Processes(children) => children
                .into_iter()
                .filter(|pid| alive(*pid))
                .map(|pid| pid.to_string())
                .collect(),
            Workers::Containers(deployment) => deployment_containers(&deployment, true)?,
        };
        anyhow::ensure!(
            survivors.is_empty(),
            "workers outlived the manager: {survivors:?}"
        );
        Ok(())
    }
}
