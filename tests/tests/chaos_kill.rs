//! Fault test: `kill -9` a health checker and a liquidator in the middle of a job, and prove
//! nothing is lost.
//!
//! The real `manager` runs the pipeline (collector, 2 health checkers, 2 liquidators) against
//! an in-process devnet (300 accounts, 500 ms blocks) and a real redis-server. Then:
//!
//! 1. a health checker is frozen, Redis is asked which health-check jobs its consumer holds
//!    (`XPENDING`), and when it holds one it gets SIGKILL (thawed and asked again otherwise), so
//!    the kill always lands on a job in hand. Those jobs must come back after the visibility
//!    timeout and be done exactly once by another health checker (one "job done" for that
//!    block and bucket range in all the logs, the entry acknowledged, nothing dead-lettered),
//!    the manager must replace the worker, and every block record from the kill on must show
//!    the block's work done (on time or late, never "not enqueued");
//! 2. ATOM falls 30 %; a liquidator is killed the same way while it holds candidates (the
//!    queue's `owners` hash) of accounts still liquidatable at a profit (read from the chain
//!    while it is frozen, by the liquidator's own planning code: it only picks the moment).
//!    The accounts it held must be liquidated on chain, its candidates must leave the queue
//!    without a dead letter, and no account may be liquidated twice in one block. Once the
//!    liquidations have settled (no planning code: the held accounts liquidated, the liquidation
//!    queue empty, then a quiet spell) the pipeline is stopped and the capture oracle (`redline_tests::capture`) must find
//!    no borrower left liquidatable at a profit, nor any refused for an unexplained reason.
//!
//! The docker variant does the same with the `docker` backend: the victims are containers,
//! frozen with `docker pause` and killed with `docker kill --signal KILL`. It needs the images
//! `redline/{collector,health-checker,liquidator}:latest` and builds the missing ones with
//! `docker/build.sh` (as `manager/tests/docker.rs` does). It gates on
//! `testkit::docker_or_skip`: without a Docker engine it prints a loud SKIPPED
//! line and passes, unless `CI=true` or `REDLINE_REQUIRE_DOCKER=1`, where it fails.
//!
//! Each case writes its figures to a report fragment (`chaos_kill-process.json`,
//! `chaos_kill-docker.json`; see `redline_tests::chaos::report`), from which
//! `make reliability` renders RELIABILITY.md. Run with `-- --nocapture` to see them as they come.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use redline_pipeline::jobs::HealthCheckJob;
use redline_pipeline::queue::Envelope;
use redline_tests::chaos::report::{
    self, Fragment, HealthCheckerKill, HeldCandidate, HeldJob, KillFigures, Liquidations,
    LiquidatorKill,
};
use redline_tests::chaos::{
    self, kill_one_holding, liquidation_queued, liquidations_in_flight, pending_health_checks,
    stream_all, stream_entry, stream_holds, Backend, BlockRecord, LiquidationWatch, Pipeline,
    PipelineOptions, Victim, HEALTH_STREAM, LIQUIDATION_BASE,
};

/// No liquidation for this long (after the held accounts were liquidated) and the liquidations
/// count as settled: longer than the account lock (8 s) a reclaimed candidate waits out.
const QUIET: Duration = Duration::from_secs(12);
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_health_checker_and_a_liquidator_loses_nothing_process_backend(
) -> anyhow::Result<()> {
    with_dir("chaos-kill", |dir| async move {
        run(Backend::Process, &dir, None).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_health_checker_and_a_liquidator_loses_nothing_docker_backend(
) -> anyhow::Result<()> {
    if !docker_ready("kill_9_of_a_health_checker_and_a_liquidator_loses_nothing_docker_backend")
        .await
    {
        let why = testkit::docker_engine()
            .err()
            .unwrap_or_else(|| "the Docker engine was not ready".into());
        Fragment::skipped(
            "chaos_kill",
            "docker",
            &format!("no Docker engine answers here ({why})"),
        )
        .write()?;
        return Ok(());
    }
    let deployment = format!("chaos-kill-{}", std::process::id());
    let result = with_dir("chaos-kill-docker", |dir| {
        let deployment = deployment.clone();
        async move { run(Backend::Docker, &dir, Some(&deployment)).await }
    })
    .await;
    // Whatever happened, no container of this test outlives it.
    remove_containers(&deployment);
    result
}

/// Runs `test` in a fresh directory; on failure the directory is kept and the manager log's
/// tail printed.
async fn with_dir<F, Fut>(prefix: &str, test: F) -> anyhow::Result<()>
where
    F: FnOnce(std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let path = dir.path().to_path_buf();
    let result = test(path.clone()).await;
    if result.is_err() {
        eprintln!(
            "manager log, last lines:\n{}",
            chaos::tail(&path.join("manager.log"), 60)
        );
        eprintln!("kept {}", dir.keep().display());
    }
    result
}

fn options(backend: Backend, deployment: Option<&str>, dir: &std::path::Path) -> PipelineOptions {
    let mut manager_args = vec![
        // Small jobs: several per block, so a health checker is often holding one.
        "--collector-arg=--job-size=50".to_string(),
        // A reclaimed job is computed (not skipped as stale), so "done once" can be counted.
        "--health-checker-arg=--max-job-age-blocks=1000".into(),
        "--liquidator-arg=--inclusion-timeout-ms=5000".into(),
        "--liquidator-arg=--account-lock-ttl-ms=8000".into(),
        // One liquidation per tx and two candidates per step: the liquidations after the drop
        // take several blocks, so there is time to catch a liquidator holding candidates.
        "--liquidator-arg=--fetch-batch=2".into(),
        "--liquidator-arg=--max-liquidations-per-tx=1".into(),
        // The second process's worker wallet is topped up at once, not after 10 s.
        "--liquidator-arg=--top-up-interval-ms=1000".into(),
        // The replacement of a killed liquidator leases a new slot (the dead one's lease lives
        // until its ttl), which only the master's top-ups fund (the devnet funds slots 0 and
        // 1): top up enough for whole liquidations, not the default 1,000 USD bites.
        "--liquidator-arg=--top-up-debt-below-usd=100000".into(),
        "--liquidator-arg=--top-up-debt-target-usd=1000000".into(),
        "--worker-log-level=info,redline_health_checker=debug".into(),
    ];
    let mut collector_args = Vec::new();
    if backend == Backend::Docker {
        let deployment = deployment.expect("a docker run names its deployment");
        manager_args.extend([
            format!("--docker-deployment={deployment}"),
            format!("--docker-manifest={}", dir.join("manifest.json").display()),
        ]);
        // The per-service flags above reach processes only; containers get the env twins.
        manager_args.extend(
            [
                "HEALTH_WORKERS=1",
                "COMPUTE_THREADS=1",
                "MAX_JOB_AGE_BLOCKS=1000",
                "INCLUSION_TIMEOUT_MS=5000",
                "ACCOUNT_LOCK_TTL_MS=8000",
                "FETCH_BATCH=2",
                "MAX_LIQUIDATIONS_PER_TX=1",
                "TOP_UP_INTERVAL_MS=1000",
                "TOP_UP_DEBT_BELOW_USD=100000",
                "TOP_UP_DEBT_TARGET_USD=1000000",
            ]
            .map(|env| format!("--docker-env={env}")),
        );
        collector_args.push("--job-size=50".to_string());
    }
    PipelineOptions {
        backend,
        collector_args,
        health_checkers: 2,
        liquidators: 2,
        manager_args,
        ..PipelineOptions::default()
    }
}

async fn run(
    backend: Backend,
    dir: &std::path::Path,
    deployment: Option<&str>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fragment = Fragment::new(
        "chaos_kill",
        match backend {
            Backend::Process => "process",
            Backend::Docker => "docker",
        },
    );
    let mut p = Pipeline::start(dir, options(backend, deployment, dir)).await?;
    fragment.setup = Some(p.setup());
    p.wait_on_time("the pipeline to settle", 0, 4, Duration::from_secs(180))
        .await?;
    let chain = p.chain()?;

    // 1. A health checker dies holding jobs.
    let victims = running_workers(&p, backend, deployment, "health-checker").await?;
    let mut conn = p.conn.clone();
    let (victim, held) = kill_one_holding(&victims, Duration::from_secs(60), || {
        let mut conn = conn.clone();
        async move {
            Ok(pending_health_checks(&mut conn)
                .await?
                .into_iter()
                .map(|(id, consumer, ..)| (consumer, id))
                .collect())
        }
    })
    .await?;
    let kill_height = chain.height().await?;
    let killed_at = Instant::now();
    // What the held jobs were: block and bucket range.
    let mut held_jobs = Vec::new();
    for id in &held {
        let fields = stream_entry(&mut conn, HEALTH_STREAM, id).await?;
        let envelope: Envelope<HealthCheckJob> = serde_json::from_str(
            fields
                .get("job")
                .context("a held job without its `job` field")?,
        )?;
        held_jobs.push((id.clone(), envelope.payload));
    }
    for (id, _) in &held_jobs {
        let id = id.clone();
        chaos::wait_until(
            &format!("held health-check job {id} to be done"),
            Duration::from_secs(90),
            || {
                let mut conn = conn.clone();
                let id = id.clone();
                async move { Ok(!stream_holds(&mut conn, HEALTH_STREAM, &id).await?) }
            },
        )
        .await?;
    }
    let reclaimed_after = killed_at.elapsed();
    let dead = stream_all(&mut conn, &format!("{HEALTH_STREAM}:dead")).await?;
    anyhow::ensure!(dead.is_empty(), "health-check jobs dead-lettered: {dead:?}");
    // Exactly one worker finished each held job ("job done" is logged after the ack, so the
    // frozen victim never logged it).
    let log = match backend {
        Backend::Process => p.log(),
        Backend::Docker => container_logs(deployment.expect("a docker run names its deployment")),
    };
    let mut jobs_report = Vec::new();
    for (id, job) in &held_jobs {
        let buckets = format!("{}..{}", job.bucket_start, job.bucket_end);
        let done = count_log(&log, |f| {
            f["message"] == "job done"
                && f["height"] == job.height
                && f["buckets"] == buckets.as_str()
        });
        eprintln!(
            "held job {id} (height {}, buckets {buckets}): done {done} time(s), gone from the queue {:.1} s after the kill",
            job.height,
            reclaimed_after.as_secs_f64()
        );
        anyhow::ensure!(done == 1, "held job {id} done {done} times, want once");
        jobs_report.push(HeldJob {
            id: id.clone(),
            height: job.height,
            buckets,
            done,
        });
    }
    // The manager replaces the dead worker, and every block's work since the kill got done.
    if backend == Backend::Process {
        let now = p.wait_workers("health-checker", 2).await?;
        anyhow::ensure!(
            !now.contains(&match victim {
                Victim::Process(pid) => pid,
                Victim::Container(_) => 0,
            }),
            "the killed health checker is still listed"
        );
    }
    let settled_height = chain.height().await?;
    p.wait_on_time(
        "blocks on time after the health checker's death",
        settled_height,
        3,
        Duration::from_secs(120),
    )
    .await?;
    // A block with no record at all counts as missed, besides late and not enqueued ones.
    let window = p
        .blocks
        .window(kill_height, settled_height, BlockRecord::on_time);
    eprintln!(
        "health checker killed at height {kill_height}: blocks {kill_height}..={settled_height}: {} recorded, {}",
        window.recorded,
        window.describe()
    );
    anyhow::ensure!(
        window.not_enqueued.is_empty(),
        "blocks whose work was never queued: {:?}",
        window.not_enqueued
    );
    let health_checker = HealthCheckerKill {
        victim: victim.describe(),
        height: kill_height,
        jobs: jobs_report,
        reclaimed_after_s: reclaimed_after.as_secs_f64(),
        replaced: (backend == Backend::Process).then_some(true),
        window,
    };

    // 2. Price drop, then a liquidator dies holding candidates of accounts that are still
    //    liquidatable at a profit (by the planner, while it is frozen: this picks the moment).
    let drop = p.price_drop("uatom", "7").await?;
    let drop_height = drop.height;
    let mut watch = LiquidationWatch::from(drop_height);
    let victims = running_workers(&p, backend, deployment, "liquidator").await?;
    let chain_ref = &chain;
    let (liquidator_victim, held) = kill_one_holding(&victims, Duration::from_secs(90), || {
        let mut conn = conn.clone();
        async move {
            let owned: Vec<(String, String)> = liquidations_in_flight(&mut conn)
                .await?
                .into_iter()
                .map(|(id, consumer)| (consumer, id))
                .collect();
            if owned.is_empty() {
                return Ok(owned);
            }
            let accounts: Vec<String> = owned
                .iter()
                .map(|(_, id)| account_of(id).to_string())
                .collect();
            let live = chain_ref.profitable_left(&accounts).await?;
            Ok(owned
                .into_iter()
                .filter(|(_, id)| live.iter().any(|a| a == account_of(id)))
                .collect())
        }
    })
    .await?;
    let killed_at = Instant::now();
    let kill_height = chain.height().await?;
    // The liquidations settle: every held account liquidated, the queue empty, then a quiet
    // spell (no planning code; what is left is the capture oracle's call, after the stop).
    let held_accounts: Vec<String> = held.iter().map(|id| account_of(id).to_string()).collect();
    let settled_height = chain
        .wait_settled(
            &mut watch,
            &p.conn,
            &held_accounts,
            QUIET,
            Duration::from_secs(240),
        )
        .await?;
    let all_done = killed_at.elapsed();
    for id in &held {
        let id = id.clone();
        chaos::wait_until(
            &format!("held candidate {id} to leave the queue"),
            Duration::from_secs(90),
            || {
                let mut conn = conn.clone();
                let id = id.clone();
                async move { Ok(!liquidation_queued(&mut conn, &id).await?) }
            },
        )
        .await?;
    }
    let dead = stream_all(&mut conn, &format!("{LIQUIDATION_BASE}:dead")).await?;
    let dead_held: Vec<_> = dead
        .iter()
        .filter(|d| d.get("source_id").is_some_and(|s| held.contains(s)))
        .collect();
    anyhow::ensure!(
        dead_held.is_empty(),
        "held candidates dead-lettered: {dead_held:?}"
    );
    // Count every liquidation on chain (the watch read every block up to the settled height).
    let last = watch.poll(&chain).await?;
    let tally = watch.tally();
    let held_landed: Vec<(u64, &str)> = watch
        .events
        .keys()
        .filter(|(_, a)| held_accounts.contains(a))
        .map(|(h, a)| (*h, a.as_str()))
        .collect();
    eprintln!(
        "liquidator killed at height {kill_height} holding {} candidate(s) of accounts liquidatable at a profit; \
         their liquidations on chain (height, account): {held_landed:?}; liquidations settled {:.1} s after the kill; \
         {} liquidations of {} accounts in blocks {drop_height}..={last}, twice in one block: {:?}; dead letters: {}",
        held.len(),
        all_done.as_secs_f64(),
        tally.total,
        tally.accounts.len(),
        tally.twice_in_a_block,
        dead.len()
    );
    anyhow::ensure!(
        tally.twice_in_a_block.is_empty(),
        "liquidated twice in one block: {:?}",
        tally.twice_in_a_block
    );
    for account in &held_accounts {
        anyhow::ensure!(
            tally.accounts.contains(account),
            "held account {account} was never liquidated"
        );
    }
    let dead_letters = p.dead_letters().await?;
    let liquidator = LiquidatorKill {
        victim: liquidator_victim.describe(),
        height: kill_height,
        candidates: held
            .iter()
            .map(|id| HeldCandidate {
                id: id.clone(),
                account: account_of(id).to_string(),
                liquidated_at: watch.heights_of(account_of(id)),
            })
            .collect(),
        dead_lettered: dead_held.len(),
        settled_after_s: all_done.as_secs_f64(),
    };
    let quiet_blocks = QUIET
        .as_millis()
        .div_ceil(u128::from(p.devnet.manifest.block_time_ms.max(1))) as u64;
    let drop_to_settled = chain.block_seconds(drop_height, settled_height).await?;
    let liquidations = Liquidations::of(
        drop,
        None,
        &watch,
        quiet_blocks,
        settled_height,
        drop_to_settled,
    );

    let figures = report::Figures::Kill(KillFigures {
        health_checker,
        liquidator,
    });
    let landed = (liquidations, dead_letters);
    chaos::stop_and_report(&mut p, &mut fragment, started, figures, landed).await?;
    eprintln!(
        "kill test ({backend:?}) done in {:.0} s",
        fragment.runtime_s
    );
    p.devnet.shutdown().await;
    Ok(())
}

/// The running workers of `service`: processes of the manager, or containers.
async fn running_workers(
    p: &Pipeline,
    backend: Backend,
    deployment: Option<&str>,
    service: &str,
) -> anyhow::Result<Vec<Victim>> {
    Ok(match backend {
        Backend::Process => p
            .wait_workers(service, 2)
            .await?
            .into_iter()
            .map(Victim::Process)
            .collect(),
        Backend::Docker => containers(
            deployment.expect("a docker run names its deployment"),
            service,
        )?
        .into_iter()
        .map(Victim::Container)
        .collect(),
    })
}

/// The account of a liquidation candidate id `<chain id>/<protocol>/<account>@<height>`.
fn account_of(id: &str) -> &str {
    let key = id.rsplit_once('@').map(|(key, _)| key).unwrap_or(id);
    key.rsplit('/').next().unwrap_or(key)
}

/// JSON log lines (the manager prefixes its workers' lines with `[service#n] `) whose fields
/// match.
fn count_log(log: &str, matches: impl Fn(&Value) -> bool) -> usize {
    log.lines()
        .filter_map(|line| line.find('{').map(|at| &line[at..]))
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .filter(|entry| matches(&entry["fields"]))
        .count()
}

/// Running containers of `kind` in `deployment`, by name.
fn containers(deployment: &str, kind: &str) -> anyhow::Result<Vec<String>> {
    let output = std::process::Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=redline.deployment={deployment}"),
            "--filter",
            &format!("label=redline.kind={kind}"),
            "--format",
            "{{.Names}}",
        ])
        .output()?;
    let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(
        !names.is_empty(),
        "no running {kind} container in {deployment}"
    );
    Ok(names)
}

/// The output of every container of `deployment` (the killed ones are removed by the manager,
/// but a killed worker never logs the jobs it held as done).
fn container_logs(deployment: &str) -> String {
    let mut logs = String::new();
    for id in all_containers(deployment) {
        if let Ok(output) = std::process::Command::new("docker")
            .args(["logs", &id])
            .output()
        {
            logs.push_str(&String::from_utf8_lossy(&output.stdout));
            logs.push_str(&String::from_utf8_lossy(&output.stderr));
        }
    }
    logs
}

/// The ids of every container of `deployment`, running or not (none when Docker fails).
fn all_containers(deployment: &str) -> Vec<String> {
    let Ok(output) = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=redline.deployment={deployment}"),
        ])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn remove_containers(deployment: &str) {
    let ids = all_containers(deployment);
    if !ids.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output();
    }
}

/// Whether the Docker test can run: an engine answers (else the shared skip policy of
/// `testkit::docker_or_skip`: a loud SKIPPED and `false`, or a failure on CI), and the worker
/// images are current with the sources (`testkit::docker_images`).
async fn docker_ready(test: &str) -> bool {
    if !testkit::docker_or_skip(test) {
        return false;
    }
    let services = ["collector", "health-checker", "liquidator"];
    let built = tokio::task::spawn_blocking(move || testkit::docker_images(&services))
        .await
        .expect("the image build task");
    if let Err(error) = built {
        panic!("{test}: {error}");
    }
    true
}
