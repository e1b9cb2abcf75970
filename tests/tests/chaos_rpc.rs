//! Fault tests: an RPC endpoint goes down or hangs.
//!
//! Every service (collector, health checker, liquidator, manager) reads its endpoints from the
//! manifest the test writes; the endpoints are [`TcpProxy`]s in front of one in-process devnet
//! (300 accounts, 500 ms blocks), so the test decides what each endpoint does: forward, close
//! every connection at once (down), or accept and never answer (hung).
//!
//! - **Several endpoints**: the preferred endpoint first hangs, then comes back while the
//!   other goes down. Blocks must stay on time after each switch (the services moved to the
//!   working endpoint), every service process must be the one that started (no crash), the
//!   working endpoint must get new connections, and after a 30 % ATOM drop every account the
//!   liquidator's planning finds liquidatable at a profit is liquidated, none twice in one
//!   block.
//! - **One endpoint**: it goes down for ten blocks, then comes back. Every service must keep
//!   running through the outage (same processes) without spinning (its log stays short), and
//!   after the endpoint returns blocks are on time again and the liquidations land.
//!
//! A block with no record at all counts as missed, besides late and not-enqueued ones. Once the
//! liquidations have settled the pipeline is stopped and the capture oracle
//! (`redline_tests::capture`) must find no borrower left liquidatable at a profit, nor any
//! refused for an unexplained reason. Each case writes its figures to a report fragment
//! (`chaos_rpc-two-endpoints.json`, `chaos_rpc-one-endpoint.json`; see
//! `redline_tests::chaos::report`), from which `make reliability` renders RELIABILITY.md. Run
//! with `-- --nocapture` to see them as they come.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redline_tests::bench::devnet::{self, Devnet};
use redline_tests::chaos::report::{
    self, BlockWindow, Fragment, RpcOneFigures, RpcPhase, RpcTwoFigures,
};
use redline_tests::chaos::{self, BlockRecord, ChainCheck, Pipeline, PipelineOptions};
use redline_tests::{ProxyMode, TcpProxy};

const SERVICES: [&str; 3] = ["collector", "health-checker", "liquidator"];

/// On-time blocks in a row that count as recovered.
const ON_TIME_RUN: usize = 4;

/// No liquidation for this long (after the expected accounts were liquidated) and the
/// liquidations count as settled.
const QUIET: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_endpoints_every_service_fails_over_when_one_hangs_or_goes_down(
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("chaos-rpc-two").tempdir()?;
    let result = two_endpoints(dir.path()).await;
    keep_on_failure(dir, &result);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hedging_a_hung_endpoint_costs_request_timeouts() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("chaos-rpc-unhedged")
        .tempdir()?;
    let result = hung_unhedged(dir.path()).await;
    keep_on_failure(dir, &result);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_endpoint_every_service_waits_out_the_outage_and_recovers() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("chaos-rpc-one").tempdir()?;
    let result = one_endpoint(dir.path()).await;
    keep_on_failure(dir, &result);
    result
}

fn keep_on_failure(dir: tempfile::TempDir, result: &anyhow::Result<()>) {
    if result.is_err() {
        let log_path = dir.path().join("manager.log");
        chaos::keep_for_a_look(dir, &log_path, 80);
    }
}

/// The devnet and `n` proxies in front of its RPC port.
async fn devnet_behind_proxies(n: usize) -> anyhow::Result<(Devnet, Vec<TcpProxy>)> {
    let defaults = PipelineOptions::default();
    let devnet = devnet::start(defaults.accounts, defaults.seed, defaults.block_time).await?;
    let target: SocketAddr = devnet
        .node
        .rpc_http_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    let mut proxies = Vec::new();
    for _ in 0..n {
        proxies.push(TcpProxy::start(target).await?);
    }
    Ok((devnet, proxies))
}

fn url(proxy: &TcpProxy) -> String {
    format!("http://{}", proxy.addr())
}

/// The worker processes by service, to compare before and after.
fn processes(p: &Pipeline) -> Processes {
    SERVICES.iter().map(|s| (*s, p.workers(s))).collect()
}

fn same_processes(
    p: &Pipeline,
    before: &[(&'static str, Vec<u32>)],
    when: &str,
) -> anyhow::Result<()> {
    for (service, pids) in before {
        let now = p.workers(service);
        anyhow::ensure!(
            &now == pids,
            "{service} processes were {pids:?} and are {now:?} {when} (one exited)"
        );
    }
    anyhow::ensure!(chaos::alive(p.manager_pid), "the manager died {when}");
    Ok(())
}

/// Each service's worker processes.
type Processes = Vec<(&'static str, Vec<u32>)>;

/// Starts the pipeline on `devnet` and waits for it to settle: the pipeline, its chain check,
/// and each service's processes (checked to be one each).
async fn start_settled(
    dir: &std::path::Path,
    options: PipelineOptions,
    devnet: Devnet,
    fragment: &mut Fragment,
) -> anyhow::Result<(Pipeline, ChainCheck, Processes)> {
    let mut p = Pipeline::start_on(dir, options, devnet).await?;
    fragment.setup = Some(p.setup());
    p.wait_on_time("the pipeline to settle", 0, 4, Duration::from_secs(180))
        .await?;
    let chain = p.chain()?;
    let before = processes(&p);
    for (service, pids) in &before {
        anyhow::ensure!(pids.len() == 1, "{} {service} processes", pids.len());
    }
    Ok((p, chain, before))
}

/// Blocks from `after + 1` to the newest recorded one (call it once blocks are on time again):
/// a block with no record counts as missed.
fn window_since(p: &Pipeline, after: u64) -> BlockWindow {
    let newest = p.blocks.newest().unwrap_or(after).max(after);
    p.blocks.window(after + 1, newest, BlockRecord::on_time)
}

/// One endpoint failing while another keeps working.
struct Failure<'a> {
    failing: &'a TcpProxy,
    mode: ProxyMode,
    working: &'a TcpProxy,
    /// The failure, for messages: "the first endpoint hung".
    what: &'static str,
    /// Where the services' connections must go, for messages: "to the second endpoint".
    moved: &'static str,
}

/// Sets off `failure` and waits until blocks are on time again: the phase's figures, once no
/// service restarted and the working endpoint gained connections.
async fn fail_over(
    p: &mut Pipeline,
    chain: &ChainCheck,
    before: &[(&'static str, Vec<u32>)],
    failure: Failure<'_>,
) -> anyhow::Result<RpcPhase> {
    let what = failure.what;
    let working_before = failure.working.connections();
    failure.failing.set_mode(failure.mode);
    let at_height = chain.height().await?;
    let t = Instant::now();
    p.wait_on_time(
        &format!("blocks on time with {what}"),
        at_height,
        ON_TIME_RUN,
        Duration::from_secs(180),
    )
    .await?;
    let recovery_s = t.elapsed().as_secs_f64();
    let window = window_since(p, at_height);
    same_processes(p, before, &format!("with {what}"))?;
    let connections_moved = failure.working.connections() - working_before;
    anyhow::ensure!(
        connections_moved > 0,
        "no connection moved {}",
        failure.moved
    );
    Ok(RpcPhase {
        at_height,
        connections_moved,
        on_time_run: ON_TIME_RUN,
        recovery_s,
        window,
    })
}

/// The pipeline on `first` then `second`, a request timing out after 2 s: 4 blocks of 500 ms
/// here (the default, 10 s, is under 2 blocks of a 6 s chain); hedged or not.
fn two_endpoint_options(first: &TcpProxy, second: &TcpProxy, hedged: bool) -> PipelineOptions {
    let mut manager_args = vec!["--rpc-timeout-ms=2000".to_owned()];
    if !hedged {
        manager_args.push("--rpc-hedge-after-ms=0".to_owned());
    }
    PipelineOptions {
        rpc: vec![url(first), url(second)],
        manager_args,
        ..PipelineOptions::default()
    }
}

/// The preferred endpoint hangs: its connections stay open, never answered.
fn first_hangs<'a>(first: &'a TcpProxy, second: &'a TcpProxy, what: &'static str) -> Failure<'a> {
    Failure {
        failing: first,
        mode: ProxyMode::Stalled,
        working: second,
        what,
        moved: "to the second endpoint",
    }
}

async fn two_endpoints(dir: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fragment = Fragment::new("chaos_rpc", "two-endpoints");
    let (devnet, proxies) = devnet_behind_proxies(2).await?;
    let (first, second) = (&proxies[0], &proxies[1]);
    let options = two_endpoint_options(first, second, true);
    let (mut p, chain, before) = start_settled(dir, options, devnet, &mut fragment).await?;
    let hung = first_hangs(first, second, "the first endpoint hung");
    let hung = fail_over(&mut p, &chain, &before, hung).await?;

    // It comes back, and the second one goes down (connections closed at once).
    first.set_mode(ProxyMode::Open);
    let down = Failure {
        failing: second,
        mode: ProxyMode::Down,
        working: first,
        what: "the second endpoint down",
        moved: "back to the first endpoint",
    };
    let down = fail_over(&mut p, &chain, &before, down).await?;

    let (liquidations, dead_letters) = chaos::liquidations_land(&p, QUIET).await?;
    same_processes(&p, &before, "after the liquidations")?;
    eprintln!(
        "two endpoints: first hung at height {}: {} connections to the second, {ON_TIME_RUN} blocks on time in a row after {:.1} s, \
         {} blocks missed ({}); second down at {}: {} connections back to the first, on time after {:.1} s, \
         {} missed ({}); then {:?} liquidatable accounts, {} liquidations, none twice in a block; \
         no service restarted; {:.0} s",
        hung.at_height,
        hung.connections_moved,
        hung.recovery_s,
        hung.window.missed(),
        hung.window.describe(),
        down.at_height,
        down.connections_moved,
        down.recovery_s,
        down.window.missed(),
        down.window.describe(),
        liquidations.expected,
        liquidations.total,
        started.elapsed().as_secs_f64()
    );
    let figures = report::Figures::RpcTwo(RpcTwoFigures { hung, down });
    let landed = (liquidations, dead_letters);
    chaos::stop_and_report(&mut p, &mut fragment, started, figures, landed).await?;
    Ok(())
}

/// The first phase of [`two_endpoints`] with hedging off (`--rpc-hedge-after-ms=0`): what a hung
/// endpoint costs when only a timed-out request moves to the next endpoint, the figure hedging
/// is measured against.
async fn hung_unhedged(dir: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fragment = Fragment::new("chaos_rpc", "hung-unhedged");
    let (devnet, proxies) = devnet_behind_proxies(2).await?;
    let (first, second) = (&proxies[0], &proxies[1]);
    let options = two_endpoint_options(first, second, false);
    let (mut p, chain, before) = start_settled(dir, options, devnet, &mut fragment).await?;
    let hung = first_hangs(first, second, "the first endpoint hung (no hedging)");
    let hung = fail_over(&mut p, &chain, &before, hung).await?;
    let (liquidations, dead_letters) = chaos::liquidations_land(&p, QUIET).await?;
    same_processes(&p, &before, "after the liquidations")?;
    eprintln!(
        "no hedging: first hung at height {}: {} connections to the second, on time after {:.1} s, \
         {} blocks missed ({}); {:.0} s",
        hung.at_height,
        hung.connections_moved,
        hung.recovery_s,
        hung.window.missed(),
        hung.window.describe(),
        started.elapsed().as_secs_f64()
    );
    let figures = report::Figures::RpcHungUnhedged(hung);
    let landed = (liquidations, dead_letters);
    chaos::stop_and_report(&mut p, &mut fragment, started, figures, landed).await?;
    Ok(())
}

async fn one_endpoint(dir: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fragment = Fragment::new("chaos_rpc", "one-endpoint");
    let (devnet, proxies) = devnet_behind_proxies(1).await?;
    let only = &proxies[0];
    let options = PipelineOptions {
        rpc: vec![url(only)],
        ..PipelineOptions::default()
    };
    let (mut p, chain, before) = start_settled(dir, options, devnet, &mut fragment).await?;

    // Down for ten blocks (the test's own client talks to the devnet directly).
    let log_before = p.log().lines().count();
    only.set_mode(ProxyMode::Down);
    let down_at = chain.height().await?;
    let outage_blocks = 10;
    chaos::wait_until(
        "ten blocks with the endpoint down",
        Duration::from_secs(60),
        || async { Ok(chain.height().await? >= down_at + outage_blocks) },
    )
    .await?;
    same_processes(&p, &before, "during the outage")?;
    let outage_lines = p.log().lines().count() - log_before;
    only.set_mode(ProxyMode::Open);
    let back_at = chain.height().await?;
    let t = Instant::now();
    p.wait_on_time(
        "blocks on time after the endpoint returned",
        back_at,
        ON_TIME_RUN,
        Duration::from_secs(180),
    )
    .await?;
    let recovery = t.elapsed();
    let _ = p.poll_blocks().await;
    let window = window_since(&p, down_at);
    let missed = window.missed();
    same_processes(&p, &before, "after the outage")?;
    // Backing off, not spinning: a few lines per service per second of outage at most.
    anyhow::ensure!(
        outage_lines < 2_000,
        "{outage_lines} log lines during a ten-block outage: a service is spinning"
    );
    let (liquidations, dead_letters) = chaos::liquidations_land(&p, QUIET).await?;
    eprintln!(
        "one endpoint: down at height {down_at} for {outage_blocks} blocks, back at {back_at}; {outage_lines} log lines during the outage; \
         {ON_TIME_RUN} blocks on time in a row {:.1} s after it returned; {missed} blocks missed ({}); then {:?} liquidatable accounts, \
         {} liquidations, none twice in a block; no service restarted; {:.0} s",
        recovery.as_secs_f64(),
        window.describe(),
        liquidations.expected,
        liquidations.total,
        started.elapsed().as_secs_f64()
    );
    let figures = report::Figures::RpcOne(RpcOneFigures {
        down_at,
        back_at,
        outage_blocks,
        outage_log_lines: outage_lines,
        on_time_run: ON_TIME_RUN,
        recovery_s: recovery.as_secs_f64(),
        window,
    });
    let landed = (liquidations, dead_letters);
    chaos::stop_and_report(&mut p, &mut fragment, started, figures, landed).await?;
    Ok(())
}
