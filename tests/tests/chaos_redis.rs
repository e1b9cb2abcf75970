//! Fault test: Redis dies in the middle of a run and comes back empty on the same port (the
//! testkit's redis-server keeps nothing on disk, like a cache node that was replaced).
//!
//! The real `manager` runs the pipeline (collector, one health checker, one liquidator) on an
//! in-process devnet (300 accounts, 500 ms blocks). Once blocks are on time, redis-server gets
//! SIGKILL; five blocks later it starts again on the same port, empty. Then:
//!
//! - every service process is the one that ran before (each reconnected; none crashed and was
//!   replaced), and the manager still answers `/health`;
//! - the position index is rebuilt: blocks after the restart carry as many accounts as before;
//! - blocks are on time again, and the blocks missed (no record, or recorded late / not
//!   enqueued) between the last good block before the kill and the first good one after are
//!   reported;
//! - after a 30 % ATOM drop every account the liquidator's planning finds liquidatable at a
//!   profit is liquidated, none twice in one block; once the liquidations have settled the
//!   pipeline is stopped and the capture oracle (`redline_tests::capture`) must find no
//!   borrower left liquidatable at a profit, nor any refused for an unexplained reason.
//!
//! The figures go to a report fragment (`chaos_redis-restart.json`; see
//! `redline_tests::chaos::report`), from which `make reliability` renders RELIABILITY.md. Run
//! with `-- --nocapture` to see them as they come.

use std::time::{Duration, Instant};

use redline_tests::chaos::report::{self, Fragment, RedisFigures};
use redline_tests::chaos::{self, Pipeline, PipelineOptions};

/// No liquidation for this long (after the expected accounts were liquidated) and the
/// liquidations count as settled.
const QUIET: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run_every_service_carries_on() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("chaos-redis").tempdir()?;
    let result = run(dir.path()).await;
    if result.is_err() {
        eprintln!(
            "manager log, last lines:\n{}",
            chaos::tail(&dir.path().join("manager.log"), 80)
        );
        eprintln!("kept {}", dir.keep().display());
    }
    result
}

async fn run(dir: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fragment = Fragment::new("chaos_redis", "restart");
    let mut p = Pipeline::start(dir, PipelineOptions::default()).await?;
    fragment.setup = Some(p.setup());
    p.wait_on_time("the pipeline to settle", 0, 4, Duration::from_secs(180))
        .await?;
    let chain = p.chain()?;
    let before: Vec<(String, Vec<u32>)> = ["collector", "health-checker", "liquidator"]
        .into_iter()
        .map(|s| (s.to_string(), p.workers(s)))
        .collect();
    for (service, pids) in &before {
        anyhow::ensure!(pids.len() == 1, "{} {service} processes", pids.len());
    }
    let accounts_before = p.blocks.all.last().map(|b| b.accounts).unwrap_or(0);
    let last_good = p
        .blocks
        .all
        .iter()
        .rev()
        .find(|b| b.on_time() && b.accounts == accounts_before)
        .map(|b| b.height)
        .unwrap_or(0);

    // Redis dies; five blocks pass; it comes back empty on the same port.
    p.redis.kill()?;
    let killed_height = chain.height().await?;
    let killed_at = Instant::now();
    chaos::wait_until(
        "five blocks without Redis",
        Duration::from_secs(60),
        || async { Ok(chain.height().await? >= killed_height + 5) },
    )
    .await?;
    p.redis.restart()?;
    let restart_height = chain.height().await?;
    let down_for = killed_at.elapsed();

    // Blocks count as good again once they are on time with every account checked (a block
    // over an empty index is "on time" with nothing to check).
    let full = |b: &chaos::BlockRecord| b.on_time() && b.accounts == accounts_before;
    let deadline = Instant::now() + Duration::from_secs(180);
    let rebuilt = loop {
        let _ = p.poll_blocks().await;
        if let Some(b) = p.blocks.after(restart_height).find(|b| full(b)) {
            break b.height;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no block with the {accounts_before} accounts on time after the restart; last blocks: {}",
            p.blocks.tail(12)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    p.wait_on_time(
        "blocks on time after the rebuild",
        rebuilt - 1,
        3,
        Duration::from_secs(120),
    )
    .await?;
    let recovered_at = killed_at.elapsed();
    // Missed: every block from the last full one before the kill to the first full one after
    // the rebuild that has no full record (no record at all, late, not enqueued, or on time
    // over the empty index).
    let first_good = rebuilt;
    let window = p.blocks.window(last_good + 1, first_good - 1, full);
    let missed = window.describe();
    let accounts_after = p
        .blocks
        .after(restart_height)
        .last()
        .map(|b| b.accounts)
        .unwrap_or(0);
    eprintln!(
        "Redis killed at height {killed_height}, back at {restart_height} ({:.1} s down); last block on time before: {last_good}, \
         first after: {first_good} ({:.1} s after the kill); blocks {}..={}: {missed}; \
         accounts per block before {accounts_before}, after {accounts_after}",
        down_for.as_secs_f64(),
        recovered_at.as_secs_f64(),
        window.from,
        window.to,
    );
    // Every service reconnected: the same processes run, none was replaced.
    for (service, pids) in &before {
        let now = p.workers(service);
        anyhow::ensure!(
            &now == pids,
            "{service} processes were {pids:?} before the Redis restart and are {now:?} after (one died)"
        );
    }
    anyhow::ensure!(
        accounts_after == accounts_before,
        "the index holds {accounts_after} accounts after the restart, {accounts_before} before"
    );
    let health = p.health().await?;
    eprintln!("manager /health after the restart: {health}");

    // Liquidations still land. The planner's view right after the drop says which accounts to
    // expect liquidated; the wait for them to settle uses no planning code.
    let (liquidations, dead_letters) = chaos::liquidations_land(&p, QUIET).await?;
    let figures = report::Figures::Redis(RedisFigures {
        killed_height,
        restart_height,
        down_s: down_for.as_secs_f64(),
        last_good,
        first_good,
        recovered_after_s: recovered_at.as_secs_f64(),
        window,
        accounts_before,
        accounts_after,
    });
    let landed = (liquidations, dead_letters);
    chaos::stop_and_report(&mut p, &mut fragment, started, figures, landed).await?;
    eprintln!("Redis restart test done in {:.0} s", fragment.runtime_s);
    p.devnet.shutdown().await;
    Ok(())
}
