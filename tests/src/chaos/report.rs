//! The fault tests' figures as machine-readable report fragments, and RELIABILITY.md rendered
//! from them.
//!
//! Each fault test (`chaos_kill`, `chaos_redis`, `chaos_rpc`) writes one JSON [`Fragment`] per
//! case to `<dir>/<test>-<case>.json` once its checks passed (a skipped case writes one that
//! says why). `<dir>` is `$RELIABILITY_DIR`, else `target/reliability/` of the workspace. The
//! fragments land there under `make test` too, harmlessly: only `make reliability` (which
//! empties the directory, runs the three tests, then `tests/src/bin/reliability.rs`) turns them
//! into RELIABILITY.md with [`render`]. Every figure of that file comes from a fragment.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::capture::CaptureReport;
use crate::machine;

use super::LiquidationWatch;

/// The environment variable naming the fragments' directory.
pub const DIR_ENV: &str = "RELIABILITY_DIR";

/// The cases RELIABILITY.md is rendered from, as `(test, case)`.
pub const EXPECTED: [(&str, &str); 6] = [
    ("chaos_kill", "process"),
    ("chaos_kill", "docker"),
    ("chaos_redis", "restart"),
    ("chaos_rpc", "two-endpoints"),
    ("chaos_rpc", "hung-unhedged"),
    ("chaos_rpc", "one-endpoint"),
];

/// Where fragments go: `$RELIABILITY_DIR`, else `target/reliability` of the workspace.
pub fn dir() -> PathBuf {
    match std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => testkit::workspace_root().join("target").join("reliability"),
    }
}

/// When, on what and from which commit a fragment was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    pub unix_ms: u64,
    /// Short hash, with "(with uncommitted changes)" when the tree was dirty.
    pub commit: String,
    pub host: String,
    /// CPUs, CPU model, memory and kernel.
    pub machine: String,
    /// Build profile of the binaries under test (`debug`, `release`).
    pub profile: String,
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    machine::command_output(Some(testkit::workspace_root()), program, args)
}

impl RunInfo {
    /// This machine, now.
    pub fn now() -> Self {
        let cpu_model = machine::cpu_model().unwrap_or_else(|| "unknown CPU".into());
        let memory = machine::memory().unwrap_or_else(|| "unknown memory".into());
        let cpus = machine::cpus();
        let os = command("uname", &["-srm"]).unwrap_or_else(|| "unknown OS".into());
        let commit = machine::commit(Some(testkit::workspace_root()), &["--untracked-files=no"]);
        let profile = crate::bin_dir(&crate::SERVICES)
            .ok()
            .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "unknown".into());
        RunInfo {
            date: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".into()),
            unix_ms: super::unix_ms(),
            commit,
            host: command("hostname", &[]).unwrap_or_else(|| "unknown".into()),
            machine: format!("{cpus} CPUs ({cpu_model}), {memory} RAM, {os}"),
            profile,
        }
    }
}

/// How a run was set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// `process` or `docker`.
    pub backend: String,
    /// Seeded borrowers.
    pub accounts: usize,
    pub block_ms: u64,
    pub health_checkers: u32,
    pub liquidators: u32,
    /// Visibility timeout of the queues: a dead worker's job comes back after it.
    pub visibility_ms: u64,
    /// RPC endpoints in the services' manifest (0: the devnet's own).
    pub rpc_endpoints: usize,
    /// The test's extra manager flags (`--liquidator-arg=--account-lock-ttl-ms=8000`, …).
    pub manager_args: Vec<String>,
}

impl Setup {
    /// The value of flag `name` (`--account-lock-ttl-ms`) among the manager's flags, also when
    /// passed on to a worker (`--liquidator-arg=--account-lock-ttl-ms=8000`).
    pub fn flag(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.manager_args.iter().find_map(|arg| {
            let at = arg.find(&prefix)?;
            let before = &arg[..at];
            (before.is_empty() || before.ends_with('=')).then(|| &arg[at + prefix.len()..])
        })
    }

    fn flag_ms(&self, name: &str) -> Option<u64> {
        self.flag(name).and_then(|v| v.parse().ok())
    }
}

/// An oracle price moved at a height.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceDrop {
    pub denom: String,
    pub from: String,
    pub to: String,
    pub height: u64,
}

impl PriceDrop {
    /// `ATOM from 10 to 7 (−30 %)`.
    pub fn describe(&self) -> String {
        let name = self
            .denom
            .strip_prefix('u')
            .unwrap_or(&self.denom)
            .to_uppercase();
        let change = match (self.from.parse::<f64>(), self.to.parse::<f64>()) {
            (Ok(from), Ok(to)) if from > 0.0 => {
                format!(" ({:+.0} %)", (to - from) / from * 100.0).replace('-', "−")
            }
            _ => String::new(),
        };
        format!("{name} from {} to {}{change}", self.from, self.to)
    }
}

/// Blocks of a window, each classified. Missed: no record at all, late, not enqueued, or
/// `other` (recorded, but not as a full on-time block).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockWindow {
    pub from: u64,
    pub to: u64,
    /// Heights with a record.
    pub recorded: usize,
    pub on_time: usize,
    pub late: Vec<u64>,
    pub not_enqueued: Vec<u64>,
    pub no_record: Vec<u64>,
    pub other: Vec<OtherBlock>,
}

/// A recorded block that is neither a full on-time block nor late nor not enqueued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherBlock {
    pub height: u64,
    pub why: String,
}

impl BlockWindow {
    pub fn missed(&self) -> usize {
        self.late.len() + self.not_enqueued.len() + self.no_record.len() + self.other.len()
    }

    /// `6 missed (6 late: 6, 7, …; 0 not enqueued; 0 without a record)`.
    pub fn describe(&self) -> String {
        format!("{} missed ({})", self.missed(), self.breakdown())
    }

    /// `6 late: 6, 7, …; 0 not enqueued; 0 without a record`, with the heights of each kind
    /// when they are few.
    pub fn breakdown(&self) -> String {
        let heights = |hs: &[u64]| -> String {
            if hs.is_empty() || hs.len() > 12 {
                String::new()
            } else {
                format!(
                    ": {}",
                    hs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                )
            }
        };
        let mut parts = vec![
            format!("{} late{}", self.late.len(), heights(&self.late)),
            format!(
                "{} not enqueued{}",
                self.not_enqueued.len(),
                heights(&self.not_enqueued)
            ),
            format!(
                "{} without a record{}",
                self.no_record.len(),
                heights(&self.no_record)
            ),
        ];
        for other in &self.other {
            parts.push(format!("{}: {}", other.height, other.why));
        }
        parts.join("; ")
    }

    fn range(&self) -> String {
        format!("{}..={}", self.from, self.to)
    }
}

/// Entries of the dead-letter streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeadLetters {
    pub health_checks: usize,
    pub liquidations: usize,
}

impl DeadLetters {
    pub fn total(&self) -> usize {
        self.health_checks + self.liquidations
    }

    fn describe(&self) -> String {
        if self.total() == 0 {
            "0".into()
        } else {
            format!(
                "{} ({} health checks, {} liquidations)",
                self.total(),
                self.health_checks,
                self.liquidations
            )
        }
    }
}

/// What landed on chain after a price drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Liquidations {
    pub drop: PriceDrop,
    /// Accounts the liquidator's planning code found liquidatable at a profit just after the
    /// drop: the accounts the test expects liquidated (none when the test did not ask).
    pub expected: Option<usize>,
    /// Liquidations on chain, and the accounts they were of.
    pub total: usize,
    pub accounts: usize,
    /// `(height, account, times)`: liquidated more than once in one block.
    pub twice_in_a_block: Vec<(u64, String, usize)>,
    pub first_height: Option<u64>,
    pub last_height: Option<u64>,
    /// Blocks without a liquidation the test waited for before calling them settled.
    pub quiet_blocks: u64,
    /// The chain's height when they had settled, and the seconds from the drop to then.
    pub settled_height: u64,
    pub settled_after_s: f64,
}

impl Liquidations {
    pub fn of(
        drop: PriceDrop,
        expected: Option<usize>,
        watch: &LiquidationWatch,
        quiet_blocks: u64,
        settled_height: u64,
        settled_after_s: f64,
    ) -> Self {
        let tally = watch.tally();
        Liquidations {
            drop,
            expected,
            total: tally.total,
            accounts: tally.accounts.len(),
            twice_in_a_block: tally.twice_in_a_block,
            first_height: watch.events.keys().map(|(h, _)| *h).min(),
            last_height: watch.last_height(),
            quiet_blocks,
            settled_height,
            settled_after_s,
        }
    }

    fn describe(&self) -> String {
        format!("{} on chain for {} accounts", self.total, self.accounts)
    }
}

/// The capture oracle's breakdown of the accounts left after a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// Accounts judged (every seeded borrower).
    pub accounts: usize,
    /// Those with a health factor at liquidation prices below 1, split into the four below.
    pub below_one: usize,
    pub no_collateral: usize,
    pub unprofitable: usize,
    /// The best profit after the fee among the unprofitable ones, in base units.
    pub best_unprofitable: Option<String>,
    /// `(account, pair and profit)`.
    pub profitable: Vec<(String, String)>,
    /// `(account, why every pair was refused)`.
    pub other: Vec<(String, String)>,
    pub simulations: usize,
}

impl From<&CaptureReport> for Capture {
    fn from(report: &CaptureReport) -> Self {
        Capture {
            accounts: report.accounts,
            below_one: report.below_one,
            no_collateral: report.no_collateral.len(),
            unprofitable: report.unprofitable.len(),
            best_unprofitable: report.best_unprofitable().map(|p| p.to_string()),
            profitable: report.profitable.clone(),
            other: report.other.clone(),
            simulations: report.simulations,
        }
    }
}

impl Capture {
    fn clean(&self) -> bool {
        self.profitable.is_empty() && self.other.is_empty()
    }

    /// `0 (of 5 left below HF 1: 5 only at a loss)`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.unprofitable > 0 {
            parts.push(format!("{} only at a loss", self.unprofitable));
        }
        if self.no_collateral > 0 {
            parts.push(format!("{} without collateral", self.no_collateral));
        }
        if !self.other.is_empty() {
            parts.push(format!("{} other", self.other.len()));
        }
        let rest = if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join(", "))
        };
        format!(
            "{} (of {} left below HF 1{rest})",
            self.profitable.len(),
            self.below_one
        )
    }
}

/// A health-check job a killed health checker held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldJob {
    pub id: String,
    pub height: u64,
    pub buckets: String,
    /// "job done" lines for its block and buckets in all logs.
    pub done: usize,
}

/// A liquidation candidate a killed liquidator held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldCandidate {
    pub id: String,
    pub account: String,
    /// Heights its account was liquidated at after the drop.
    pub liquidated_at: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckerKill {
    /// `process 1234` or `container <name>`.
    pub victim: String,
    pub height: u64,
    pub jobs: Vec<HeldJob>,
    /// Seconds from the kill until every held job had left the stream (acknowledged).
    pub reclaimed_after_s: f64,
    /// Whether the manager started a replacement (checked with the process backend).
    pub replaced: Option<bool>,
    /// Blocks from the kill to the height after which blocks were on time again.
    pub window: BlockWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiquidatorKill {
    pub victim: String,
    pub height: u64,
    pub candidates: Vec<HeldCandidate>,
    /// Held candidates that went to the dead-letter stream.
    pub dead_lettered: usize,
    /// Seconds from the kill until the liquidations had settled.
    pub settled_after_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillFigures {
    pub health_checker: HealthCheckerKill,
    pub liquidator: LiquidatorKill,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisFigures {
    pub killed_height: u64,
    pub restart_height: u64,
    pub down_s: f64,
    /// The last full on-time block before the kill, the first after the restart.
    pub last_good: u64,
    pub first_good: u64,
    /// Seconds from the kill until blocks were on time again (a run of full blocks).
    pub recovered_after_s: f64,
    /// Blocks between the last good one and the first good one.
    pub window: BlockWindow,
    pub accounts_before: u64,
    pub accounts_after: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcPhase {
    pub at_height: u64,
    /// New connections the endpoint still working got.
    pub connections_moved: usize,
    /// On-time blocks in a row the test waited for, and the seconds that took.
    pub on_time_run: usize,
    pub recovery_s: f64,
    pub window: BlockWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcTwoFigures {
    /// The first endpoint hangs.
    pub hung: RpcPhase,
    /// It comes back and the second goes down.
    pub down: RpcPhase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcOneFigures {
    pub down_at: u64,
    pub back_at: u64,
    pub outage_blocks: u64,
    /// Log lines of every service during the outage.
    pub outage_log_lines: usize,
    pub on_time_run: usize,
    pub recovery_s: f64,
    pub window: BlockWindow,
}

/// The test-specific figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Figures {
    Kill(KillFigures),
    Redis(RedisFigures),
    RpcTwo(RpcTwoFigures),
    /// The preferred of two endpoints hangs, with hedging off.
    RpcHungUnhedged(RpcPhase),
    RpcOne(RpcOneFigures),
}

/// One test case's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub test: String,
    pub case: String,
    pub run: RunInfo,
    /// Why the case did not run; the rest is then empty.
    #[serde(default)]
    pub skipped: Option<String>,
    #[serde(default)]
    pub runtime_s: f64,
    #[serde(default)]
    pub setup: Option<Setup>,
    #[serde(default)]
    pub figures: Option<Figures>,
    #[serde(default)]
    pub liquidations: Option<Liquidations>,
    #[serde(default)]
    pub dead_letters: Option<DeadLetters>,
    #[serde(default)]
    pub capture: Option<Capture>,
}

impl Fragment {
    pub fn new(test: &str, case: &str) -> Self {
        Fragment {
            test: test.into(),
            case: case.into(),
            run: RunInfo::now(),
            skipped: None,
            runtime_s: 0.0,
            setup: None,
            figures: None,
            liquidations: None,
            dead_letters: None,
            capture: None,
        }
    }

    /// A case that did not run, and why.
    pub fn skipped(test: &str, case: &str, why: &str) -> Self {
        Fragment {
            skipped: Some(why.into()),
            ..Fragment::new(test, case)
        }
    }

    pub fn file_name(test: &str, case: &str) -> String {
        format!("{test}-{case}.json")
    }

    /// Writes the fragment to [`dir`] and says where.
    pub fn write(&self) -> anyhow::Result<PathBuf> {
        let dir = dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(Self::file_name(&self.test, &self.case));
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report fragment: {}", path.display());
        Ok(path)
    }

    fn kill(&self) -> Option<&KillFigures> {
        match &self.figures {
            Some(Figures::Kill(f)) => Some(f),
            _ => None,
        }
    }
}

/// Every `*.json` fragment in `dir`, sorted by file name.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<Fragment>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        })
        .collect()
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn whole_secs(s: f64) -> String {
    format!("{s:.0} s")
}

/// `1`, `1 and 2`, `1, 2 and 3`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `18 ×4, 35 ×2, 40`.
fn heights_counted(heights: &[u64]) -> String {
    let mut sorted = heights.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let n = sorted[i..].iter().take_while(|h| **h == sorted[i]).count();
        out.push(if n > 1 {
            format!("{} ×{n}", sorted[i])
        } else {
            sorted[i].to_string()
        });
        i += n;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

/// The distinct values of `f` over the fragments that ran, joined by " or ".
fn distinct<T: ToString>(fragments: &[&Fragment], f: impl Fn(&Fragment) -> Option<T>) -> String {
    let mut seen = Vec::new();
    for fragment in fragments {
        if let Some(value) = f(fragment) {
            let value = value.to_string();
            if !seen.contains(&value) {
                seen.push(value);
            }
        }
    }
    if seen.is_empty() {
        "?".into()
    } else {
        seen.join(" or ")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// RELIABILITY.md from the fragments; `source` names where they were read (for the header).
/// Fails when an expected case has no fragment.
pub fn render(all: &[Fragment], source: &str) -> anyhow::Result<String> {
    let find = |test: &str, case: &str| all.iter().find(|f| f.test == test && f.case == case);
    let missing: Vec<String> = EXPECTED
        .iter()
        .filter(|(t, c)| find(t, c).is_none())
        .map(|(t, c)| Fragment::file_name(t, c))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "no fragment {} in {source}: run the fault tests first (make reliability)",
        missing.join(", ")
    );
    let get = |test: &str, case: &str| find(test, case).expect("checked above");
    let kill_process = get("chaos_kill", "process");
    let kill_docker = get("chaos_kill", "docker");
    let redis = get("chaos_redis", "restart");
    let rpc_two = get("chaos_rpc", "two-endpoints");
    let rpc_unhedged = get("chaos_rpc", "hung-unhedged");
    let rpc_one = get("chaos_rpc", "one-endpoint");
    let cases = [
        kill_process,
        kill_docker,
        redis,
        rpc_two,
        rpc_unhedged,
        rpc_one,
    ];
    let ran: Vec<&Fragment> = cases
        .iter()
        .copied()
        .filter(|f| f.skipped.is_none())
        .collect();
    for fragment in &ran {
        anyhow::ensure!(
            fragment.setup.is_some()
                && fragment.figures.is_some()
                && fragment.liquidations.is_some()
                && fragment.dead_letters.is_some()
                && fragment.capture.is_some(),
            "fragment {} lacks figures",
            Fragment::file_name(&fragment.test, &fragment.case)
        );
    }
    let setup = |f: &Fragment| f.setup.clone().expect("checked above");
    let liquidations = |f: &Fragment| f.liquidations.clone().expect("checked above");
    let capture = |f: &Fragment| f.capture.clone().expect("checked above");
    let dead = |f: &Fragment| f.dead_letters.expect("checked above");

    let mut md = String::new();
    let w = &mut md;

    // ---------------------------------------------------------------- header
    let mut dates: Vec<&Fragment> = cases.to_vec();
    dates.sort_by_key(|f| f.run.unix_ms);
    let first = dates.first().expect("five cases");
    let last = dates.last().expect("five cases");
    let when = if first.run.date == last.run.date {
        first.run.date.clone()
    } else {
        format!("{} to {}", first.run.date, last.run.date)
    };
    let commits: BTreeSet<&str> = cases.iter().map(|f| f.run.commit.as_str()).collect();
    let hosts: BTreeSet<&str> = cases.iter().map(|f| f.run.host.as_str()).collect();
    let machines: BTreeSet<&str> = cases.iter().map(|f| f.run.machine.as_str()).collect();
    let profiles: BTreeSet<&str> = cases.iter().map(|f| f.run.profile.as_str()).collect();
    let join = |set: &BTreeSet<&str>| set.iter().copied().collect::<Vec<_>>().join(" / ");
    let drop = |f: &Fragment| f.liquidations.as_ref().map(|l| l.drop.describe());

    let _ = writeln!(w, "# Reliability: fault tests\n");
    let _ = writeln!(
        w,
        "<!-- Written by `make reliability` from the report fragments the fault tests wrote \
         (tests/src/chaos/report.rs, tests/src/bin/reliability.rs). Do not edit by hand: change \
         the tests or the renderer and run `make reliability`. -->\n"
    );
    let _ = writeln!(
        w,
        "Every fault below is an automated test in `tests/tests/` and runs in `make test`. Each \
         test runs the real binaries: the `manager` starts the collector, the health checkers \
         and the liquidators as child processes (or as Docker containers), against a real \
         `redis-server` and an in-process devnet behind its real CometBFT RPC. The devnet has \
         {} seeded accounts and {} ms blocks. The price drop moves {}. The shared helpers are \
         in `tests/src/chaos.rs`.\n",
        distinct(&ran, |f| f.setup.as_ref().map(|s| s.accounts)),
        distinct(&ran, |f| f.setup.as_ref().map(|s| s.block_ms)),
        distinct(&ran, drop),
    );
    let _ = writeln!(
        w,
        "**This run.** {when}, commit `{}`, on `{}`: {}, {} builds. `make reliability` ran \
         `chaos_kill`, `chaos_redis` and `chaos_rpc`; each case wrote its figures to a JSON \
         fragment (`{source}/<test>-<case>.json`; `RELIABILITY_DIR` moves it), and this file \
         is rendered from those fragments: every figure below is from this run. The tests write \
         their fragments under `make test` too, but only `make reliability` rewrites this \
         file.\n",
        join(&commits),
        join(&hosts),
        join(&machines),
        join(&profiles),
    );
    let _ = writeln!(
        w,
        "Run one test with its figures:\n\
         `cargo build --workspace --bins && cargo test -p redline-tests --test chaos_kill -- --nocapture`.\n"
    );
    let quiet = distinct(&ran, |f| f.liquidations.as_ref().map(|l| l.quiet_blocks));
    let _ = writeln!(
        w,
        "How \"nothing is lost\" is checked, in every test:\n\n\
         - **Per-block records.** The manager writes a record for every block: on time, late, \
         or not enqueued, with the accounts checked. The test reads these records as they \
         arrive, so a Redis restart does not erase them. A block counts as **missed** when its \
         record is late or not enqueued, and also when it has **no record at all**.\n\
         - **Queue state, read from Redis.** For health-check jobs the test reads `XPENDING`; \
         for liquidation candidates it reads the priority queue's `owners` hash. It also reads \
         the dead-letter streams.\n\
         - **The chain.** The test reads every `liquidate` event per block and account; an \
         account liquidated more than once in one block is a duplicate. It waits for the \
         liquidations to settle without any planning code: every account it expects liquidated \
         has been, the liquidation queue is empty (no candidate waiting, parked for funds or \
         in flight), and a quiet spell of {quiet} blocks has passed without a liquidation.\n\
         - **Profitable left: the capture oracle.** After the pipeline is stopped, \
         `tests/src/capture.rs` judges every seeded borrower from the chain alone; it shares \
         no code with the health checker's or the liquidator's planning. For each account \
         whose health factor at liquidation prices is below 1 it simulates, from a wallet of \
         its own (funded by the master wallet), liquidating the whole debt for every (debt, \
         collateral) pair followed by a withdraw of what it received, and counts the profit at \
         the oracle's prices minus the transaction fee. Each such account is then without \
         enabled collateral, liquidatable only at a loss, profitable (a capture missed), or \
         \"other\" (every pair refused for an unexplained reason). The test fails when any \
         account is profitable or other.\n"
    );

    // ---------------------------------------------------------------- summary
    let _ = writeln!(w, "## Summary\n");
    let _ = writeln!(
        w,
        "| test | fault | blocks missed | jobs reclaimed | accounts liquidated (liquidations) | \
         twice in one block | dead letters | profitable left | runtime |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|");
    for fragment in cases {
        let name = format!("`{}` {}", fragment.test, fragment.case);
        if let Some(why) = &fragment.skipped {
            let _ = writeln!(w, "| {name} | **skipped**: {why} | | | | | | | |");
            continue;
        }
        let l = liquidations(fragment);
        let (fault, missed, reclaimed) = match fragment.figures.as_ref().expect("checked") {
            Figures::Kill(k) => (
                format!(
                    "SIGKILL of a health checker ({}) and of a liquidator ({}), each holding work",
                    k.health_checker.victim, k.liquidator.victim
                ),
                format!(
                    "{} of blocks {}",
                    k.health_checker.window.missed(),
                    k.health_checker.window.range()
                ),
                format!(
                    "{} and {}",
                    plural(
                        k.health_checker.jobs.len(),
                        "health-check job",
                        "health-check jobs"
                    ),
                    plural(
                        k.liquidator.candidates.len(),
                        "liquidation candidate",
                        "liquidation candidates"
                    )
                ),
            ),
            Figures::Redis(r) => (
                format!(
                    "SIGKILL of `redis-server` at height {}, back empty at {}",
                    r.killed_height, r.restart_height
                ),
                format!("{} of blocks {}", r.window.missed(), r.window.range()),
                "none held (no worker died; the restart emptied the queues)".into(),
            ),
            Figures::RpcTwo(t) => (
                "the preferred of two endpoints hangs, then the other goes down".into(),
                format!(
                    "{} while hung, {} while down",
                    t.hung.window.missed(),
                    t.down.window.missed()
                ),
                "none held (no worker died)".into(),
            ),
            Figures::RpcHungUnhedged(h) => (
                "the preferred of two endpoints hangs, hedging off".into(),
                format!("{} while hung", h.window.missed()),
                "none held (no worker died)".into(),
            ),
            Figures::RpcOne(o) => (
                format!("the only endpoint is down for {} blocks", o.outage_blocks),
                format!("{} of blocks {}", o.window.missed(), o.window.range()),
                "none held (no worker died)".into(),
            ),
        };
        let _ = writeln!(
            w,
            "| {name} | {fault} | {missed} | {reclaimed} | {} ({}) | {} | {} | {} | {} |",
            l.accounts,
            l.total,
            l.twice_in_a_block.len(),
            dead(fragment).describe(),
            capture(fragment).describe(),
            whole_secs(fragment.runtime_s),
        );
    }
    let _ = writeln!(w);

    // ---------------------------------------------------------------- 1. kill
    let ks = setup(kill_process);
    let visibility = secs(ks.visibility_ms as f64 / 1000.0);
    let _ = writeln!(
        w,
        "## 1. `kill -9` of a health checker and of a liquidator mid-job (`chaos_kill.rs`)\n"
    );
    let _ = writeln!(
        w,
        "**What is killed.** The setup is {} health checkers and {} liquidators, and the timing \
         of each kill is deterministic. All workers of one kind are frozen together (SIGSTOP, or \
         `docker pause` for containers). While they are frozen, the test asks Redis which jobs \
         each consumer holds. The worker that holds one gets SIGKILL (`docker kill --signal \
         KILL` for containers). If no worker holds a job, the test thaws them all and asks \
         again a moment later.\n",
        ks.health_checkers, ks.liquidators
    );
    let _ = writeln!(
        w,
        "A frozen worker can neither finish nor acknowledge its job. So the job the test saw is \
         exactly the job that dies with the worker. Before killing a liquidator, the test also \
         checks that the accounts it holds are still liquidatable at a profit (by the \
         liquidator's own planning code: this only picks the moment of the kill).\n"
    );
    let _ = writeln!(
        w,
        "**What is checked.**\n\n\
         - **Health checker.**\n  \
         - The held job comes back after the {visibility} visibility timeout.\n  \
         - It is done exactly once: \"job done\" for that block and bucket range appears \
         exactly once in all logs. That line is logged after the ack, so the frozen victim \
         could not have logged it.\n  \
         - Its stream entry is acknowledged, and nothing goes to the dead-letter stream.\n  \
         - The manager starts a replacement worker.\n  \
         - Every block from the kill onwards has its work done. Blocks may be late, but none \
         may be \"not enqueued\".\n\
         - **Liquidator.**\n  \
         - Every account the killed worker held is liquidated on chain.\n  \
         - The held candidates leave the queue without a dead letter.\n  \
         - No account is liquidated twice in one block.\n  \
         - After the stop, the capture oracle finds no borrower left profitable (or other).\n"
    );
    let _ = writeln!(
        w,
        "| backend | health checker killed holding | its job | blocks kill → recovery | \
         liquidator killed holding (still profitable) | those accounts liquidated at | \
         liquidations | twice in one block | dead letters | profitable left | runtime |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|");
    for fragment in [kill_process, kill_docker] {
        if let Some(why) = &fragment.skipped {
            let _ = writeln!(
                w,
                "| {} | **skipped**: {why} | | | | | | | | | |",
                fragment.case
            );
            continue;
        }
        let k = fragment
            .kill()
            .context("chaos_kill fragment without kill figures")?;
        let hc = &k.health_checker;
        let jobs: Vec<String> = hc
            .jobs
            .iter()
            .map(|j| format!("job of height {}, buckets {}", j.height, j.buckets))
            .collect();
        let done: Vec<String> = hc
            .jobs
            .iter()
            .map(|j| match j.done {
                1 => "done once".to_string(),
                n => format!("done {n} times"),
            })
            .collect();
        let landed: Vec<u64> = k
            .liquidator
            .candidates
            .iter()
            .flat_map(|c| c.liquidated_at.iter().copied())
            .collect();
        let l = liquidations(fragment);
        let _ = writeln!(
            w,
            "| {} | {} at height {} | {}, {} after the kill | {}: {} | {} at height {} | {} | \
             {} | {} | {} | {} | {} |",
            fragment.case,
            and_list(&jobs),
            hc.height,
            and_list(&done),
            secs(hc.reclaimed_after_s),
            hc.window.range(),
            hc.window.describe(),
            plural(k.liquidator.candidates.len(), "candidate", "candidates"),
            k.liquidator.height,
            heights_counted(&landed),
            l.describe(),
            l.twice_in_a_block.len(),
            dead(fragment).describe(),
            capture(fragment).describe(),
            whole_secs(fragment.runtime_s),
        );
    }
    let _ = writeln!(w);
    let kills: Vec<&Fragment> = [kill_process, kill_docker]
        .into_iter()
        .filter(|f| f.skipped.is_none())
        .collect();
    let lost_nothing = kills.iter().all(|f| {
        let k = f.kill().expect("checked");
        capture(f).clean()
            && liquidations(f).twice_in_a_block.is_empty()
            && k.liquidator.dead_lettered == 0
            && k.liquidator
                .candidates
                .iter()
                .all(|c| !c.liquidated_at.is_empty())
            && k.health_checker.jobs.iter().all(|j| j.done == 1)
            && k.health_checker.window.not_enqueued.is_empty()
    });
    let _ = writeln!(
        w,
        "**Lost: {}.**\n",
        if lost_nothing {
            "nothing"
        } else {
            "see the table"
        }
    );
    let late_blocks: Vec<String> = kills
        .iter()
        .map(|f| {
            let window = &f.kill().expect("checked").health_checker.window;
            format!(
                "{}: {} of blocks {} ({})",
                f.case,
                window.missed(),
                window.range(),
                window.breakdown()
            )
        })
        .collect();
    let _ = writeln!(
        w,
        "- **Missed blocks.** {}. Late blocks are the price of the {visibility} visibility \
         timeout: the dead worker's job waits that long before another worker takes it, so the \
         work of those blocks is done about that much late.",
        and_list(&late_blocks)
    );
    let lock = ks
        .flag_ms("--account-lock-ttl-ms")
        .map(|ms| format!(" ({} here)", secs(ms as f64 / 1000.0)))
        .unwrap_or_default();
    let others: Vec<String> = [redis, rpc_two, rpc_unhedged, rpc_one]
        .into_iter()
        .filter(|f| f.skipped.is_none())
        .map(|f| {
            let l = liquidations(f);
            format!(
                "{} for {} accounts (`{}` {})",
                l.total, l.accounts, f.test, f.case
            )
        })
        .collect();
    let _ = writeln!(
        w,
        "- **Repeat liquidations.** A killed liquidator's transaction that was already broadcast \
         still lands. The survivor takes the reclaimed candidate once the account lock \
         expires{lock}, re-checks the account at the latest state, and acknowledges it when \
         the account is healthy or liquidates again when it is still liquidatable. That is a \
         new decision on new state, not a replay. Repeat liquidations of one account in \
         different blocks also happen without any kill ({}): one liquidation is capped by the \
         close factor.",
        and_list(&others)
    );
    let _ = writeln!(
        w,
        "- **Docker specifics.** The docker variant needs the images \
         `redline/{{collector,health-checker,liquidator}}:latest`; missing ones are built with \
         `docker/build.sh`, as `manager/tests/docker.rs` does. Without a Docker engine it \
         prints a loud SKIPPED line (and fails instead when `CI=true` or \
         `REDLINE_REQUIRE_DOCKER=1`). The manager runs a collector only with the process \
         backend, so with Docker the test runs the collector itself. Worker flags reach the \
         containers through `--docker-env`.{}\n",
        match &kill_docker.skipped {
            Some(why) => format!(" **In this run the docker case was skipped:** {why}."),
            None => String::new(),
        }
    );
    let top_up = match (
        ks.flag("--top-up-debt-below-usd"),
        ks.flag("--top-up-debt-target-usd"),
    ) {
        (Some(below), Some(target)) => format!(
            " The test sets `--top-up-debt-below-usd {below} --top-up-debt-target-usd {target}`."
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        w,
        "**Operational note.** A replacement liquidator cannot take the killed worker's wallet \
         slot until that lease's TTL ends, so it leases a new slot, which only the master's \
         top-ups fund. The default top-ups let it liquidate only in small bites, and large \
         positions can stay profitable for minutes.{top_up} Operators who expect workers to be \
         replaced should fund worker slots or raise these targets.\n"
    );

    // ---------------------------------------------------------------- 2. redis
    let _ = writeln!(w, "## 2. Redis restarted mid-run (`chaos_redis.rs`)\n");
    if let Some(why) = &redis.skipped {
        let _ = writeln!(w, "**Skipped in this run:** {why}.\n");
    } else {
        let Some(Figures::Redis(r)) = &redis.figures else {
            anyhow::bail!("the chaos_redis fragment holds no Redis figures");
        };
        let s = setup(redis);
        let l = liquidations(redis);
        let c = capture(redis);
        let _ =
            writeln!(
            w,
            "**What is broken.** The setup is a collector, {} and {}. Once blocks are on time, \
             `redis-server` gets SIGKILL at height {}. At height {} ({} blocks later) it starts \
             again on the same port, empty: the testkit server keeps nothing on disk, like a \
             replaced cache node.\n",
            plural(s.health_checkers as usize, "health checker", "health checkers"),
            plural(s.liquidators as usize, "liquidator", "liquidators"),
            r.killed_height,
            r.restart_height,
            r.restart_height.saturating_sub(r.killed_height),
        );
        let _ = writeln!(
            w,
            "**What is checked.**\n\n\
             - Every service process is the same one as before the restart: each reconnected, \
             none crashed and was replaced.\n\
             - The position index is rebuilt: blocks after the restart carry all {} accounts \
             again.\n\
             - Blocks are on time again.\n\
             - After the drop, every account the liquidator's planning found liquidatable at a \
             profit is liquidated, none twice in one block, and after the stop the capture \
             oracle finds nothing profitable (or other) left.\n",
            r.accounts_before
        );
        let _ = writeln!(
            w,
            "**Result.**\n\n\
             - Redis was down for {}: killed at height {}, back at height {}.\n\
             - **Blocks missed: {}** of blocks {} ({}). A block on time over the emptied index \
             counts as missed too. The last full block before the kill was height {}; the first one \
             after, with all {} accounts checked, was height {}. Blocks were on time again {} \
             after the kill.\n\
             - After the restart: {} liquidatable at a profit, {} liquidations on chain for {} \
             accounts, {} twice in one block, {} dead letters (since the restart). Profitable \
             left: {}. The test takes {}.\n",
            secs(r.down_s),
            r.killed_height,
            r.restart_height,
            r.window.missed(),
            r.window.range(),
            r.window.breakdown(),
            r.last_good,
            r.accounts_before,
            r.first_good,
            secs(r.recovered_after_s),
            l.expected.map_or_else(|| "?".into(), |n| n.to_string()),
            l.total,
            l.accounts,
            l.twice_in_a_block.len(),
            dead(redis).describe(),
            c.describe(),
            whole_secs(redis.runtime_s),
        );
    }
    let _ = writeln!(
        w,
        "Two bugs showed up here, and both are fixed:\n\n\
         - **The collector kept an empty index forever.** It remembered its last indexed height \
         in memory and went on applying block deltas to the empty Redis. Every later block was \
         \"on time\" with 0 accounts, so nothing was health-checked again.\n  \
         - Fix: before each catch-up, the collector checks the index meta in Redis. If the meta \
         is gone (or records no indexed height) while the collector remembers one, it \
         re-creates the meta, reloads the denom table, and runs a full discovery rescan.\n  \
         - Code: `collector/src/follow.rs::rebuild_if_index_lost` and \
         `PositionIndex::recreate_meta`.\n\
         - **The liquidator stopped signing forever.** Its wallet-slot leases vanished with \
         Redis, and the renewal task revoked the signing permit and exited. The process stayed \
         up, so the manager never replaced it, and no liquidation would ever land again.\n  \
         - Fix: a lost lease is taken back with its own token when nobody holds the key (`SET \
         NX`), and signing resumes. A lease that another worker holds stays theirs.\n  \
         - Code: `Leases::retake` and `wallets.rs::keep_renewed`.\n"
    );

    // ---------------------------------------------------------------- 3. rpc
    let _ = writeln!(w, "## 3. RPC endpoint down or hung (`chaos_rpc.rs`)\n");
    let _ = writeln!(
        w,
        "The services read their endpoints from the manifest. The endpoints are `TcpProxy`s in \
         front of the devnet. Each proxy can forward, be down (close every connection at once), \
         or hang (accept connections and never answer).\n"
    );
    let _ = writeln!(w, "**Two endpoints.**\n");
    if let Some(why) = &rpc_two.skipped {
        let _ = writeln!(w, "Skipped in this run: {why}.\n");
    } else {
        let Some(Figures::RpcTwo(t)) = &rpc_two.figures else {
            anyhow::bail!("the chaos_rpc two-endpoints fragment holds no figures");
        };
        let s = setup(rpc_two);
        let l = liquidations(rpc_two);
        let timeout = match s.flag_ms("--rpc-timeout-ms") {
            Some(ms) => format!(
                "The test runs with `--rpc-timeout-ms={ms}` ({} blocks of {} ms). ",
                ms / s.block_ms.max(1),
                s.block_ms
            ),
            None => String::new(),
        };
        let _ = writeln!(
            w,
            "- **Phase 1.** The preferred endpoint hangs at height {}. {timeout}{} new \
             connections go to the second endpoint, and {} blocks in a row are on time {} \
             later. **{} blocks were missed** (of blocks {}: {}). Requests are hedged: one \
             unanswered for a quarter of a block also goes to the next endpoint, and the first \
             answer wins, so the hung endpoint costs a fraction of a block, not a request \
             timeout.\n\
             - **Phase 2.** The first endpoint comes back and the second goes down at height \
             {}. {} new connections go to the first endpoint, {} blocks in a row are on time \
             after {}, and **{} blocks were missed** (of blocks {}: {}).\n\
             - **Then the drop.** {} accounts liquidatable at a profit; {} liquidations for {} \
             accounts, {} twice in one block; dead letters: {}; profitable left: {}.\n\
             - No service process exited. The test takes {}.\n",
            t.hung.at_height,
            t.hung.connections_moved,
            t.hung.on_time_run,
            secs(t.hung.recovery_s),
            t.hung.window.missed(),
            t.hung.window.range(),
            t.hung.window.breakdown(),
            t.down.at_height,
            t.down.connections_moved,
            t.down.on_time_run,
            secs(t.down.recovery_s),
            t.down.window.missed(),
            t.down.window.range(),
            t.down.window.breakdown(),
            l.expected.map_or_else(|| "?".into(), |n| n.to_string()),
            l.total,
            l.accounts,
            l.twice_in_a_block.len(),
            dead(rpc_two).describe(),
            capture(rpc_two).describe(),
            whole_secs(rpc_two.runtime_s),
        );
    }
    let _ = writeln!(
        w,
        "**Two endpoints, hedging off (the figure hedging is measured against).**\n"
    );
    if let Some(why) = &rpc_unhedged.skipped {
        let _ = writeln!(w, "Skipped in this run: {why}.\n");
    } else {
        let Some(Figures::RpcHungUnhedged(h)) = &rpc_unhedged.figures else {
            anyhow::bail!("the chaos_rpc hung-unhedged fragment holds no figures");
        };
        let l = liquidations(rpc_unhedged);
        let _ = writeln!(
            w,
            "- The same first phase with `--rpc-hedge-after-ms=0`: only a request that times \
             out moves to the next endpoint. The preferred endpoint hangs at height {}; {} new \
             connections go to the second endpoint, and {} blocks in a row are on time {} \
             later. **{} blocks were missed** (of blocks {}: {}) while each service (and each \
             of its websocket and HTTP clients) waited out a request timeout on its own.\n\
             - Then {} liquidations for {} accounts, {} twice in one block; dead letters: {}; \
             profitable left: {}. The test takes {}.\n",
            h.at_height,
            h.connections_moved,
            h.on_time_run,
            secs(h.recovery_s),
            h.window.missed(),
            h.window.range(),
            h.window.breakdown(),
            l.total,
            l.accounts,
            l.twice_in_a_block.len(),
            dead(rpc_unhedged).describe(),
            capture(rpc_unhedged).describe(),
            whole_secs(rpc_unhedged.runtime_s),
        );
    }
    let _ = writeln!(w, "**One endpoint.**\n");
    if let Some(why) = &rpc_one.skipped {
        let _ = writeln!(w, "Skipped in this run: {why}.\n");
    } else {
        let Some(Figures::RpcOne(o)) = &rpc_one.figures else {
            anyhow::bail!("the chaos_rpc one-endpoint fragment holds no figures");
        };
        let l = liquidations(rpc_one);
        let _ = writeln!(
            w,
            "- The endpoint goes down at height {} for {} blocks. Every service keeps running \
             (same processes) and backs off: {} log lines in total during the outage.\n\
             - After it returns at height {}, {} blocks in a row are on time within {}. \
             **Blocks missed: {}** (of blocks {}: {}); the outage itself was {} blocks.\n\
             - Then {} accounts liquidatable at a profit; {} liquidations for {} accounts, {} \
             twice in one block; dead letters: {}; profitable left: {}. The test takes {}.\n",
            o.down_at,
            o.outage_blocks,
            o.outage_log_lines,
            o.back_at,
            o.on_time_run,
            secs(o.recovery_s),
            o.window.missed(),
            o.window.range(),
            o.window.breakdown(),
            o.outage_blocks,
            l.expected.map_or_else(|| "?".into(), |n| n.to_string()),
            l.total,
            l.accounts,
            l.twice_in_a_block.len(),
            dead(rpc_one).describe(),
            capture(rpc_one).describe(),
            whole_secs(rpc_one.runtime_s),
        );
    }
    let rpc_clean = [rpc_two, rpc_unhedged, rpc_one]
        .into_iter()
        .filter(|f| f.skipped.is_none())
        .all(|f| capture(f).clean() && liquidations(f).twice_in_a_block.is_empty());
    let _ = writeln!(
        w,
        "**Lost: {}. Cost: the blocks during the outage; for a hung endpoint, a fraction of a \
         block with hedging and about one request timeout without.**\n",
        if rpc_clean { "nothing" } else { "see above" }
    );
    let _ = writeln!(
        w,
        "Without hedging a hung endpoint costs request timeouts before fail-over. The timeout \
         is a flag, `--rpc-timeout-ms` (env `RPC_TIMEOUT_MS`; `--help` gives its default), and \
         so is the hedge, `--rpc-hedge-after-ms` (env `RPC_HEDGE_AFTER_MS`; default a quarter of \
         the block time, 0 turns it off); the manager passes both on to its workers.\n"
    );
    let _ = writeln!(
        w,
        "Fixed on the way: after its first `cut()`, `TcpProxy` closed every new connection at \
         once. A cloned `watch` receiver counted the earlier cut as unseen. The fix is in \
         `tests/src/lib.rs`.\n"
    );

    // ---------------------------------------------------------------- 4, 5: no fragments
    let _ = writeln!(w, "## 4. The node answers garbage (`fuzz_rpc.rs`)\n");
    let _ = writeln!(
        w,
        "Not part of `make reliability`: this test writes no report fragment, so this file \
         carries none of its figures (run it with `--nocapture` for them).\n\n\
         A proptest covers damaged replies: flipped or cut bytes, replaced or removed JSON \
         nodes, damaged protobuf inside `abci_query` values and transactions, and HTTP errors, \
         against every client call. Two tests add a node that answers garbage on purpose: \
         malformed JSON; an HTML 502 page; wrong protobuf inside otherwise valid replies; a \
         huge reply; deeply nested `[`.\n\n\
         **What is checked.**\n\n\
         - **Client calls.** status, block, balances, a smart query and a raw scan must each \
         fail with a short error that names the endpoint. There must be no panic and no hang.\n\
         - **A running service.** The real `collector` binary must keep running through each \
         kind of garbage and catch up each time the node answers properly again. Its warnings \
         must name the endpoint, and its log must stay small.\n\
         - **A service at start.** A `health-checker` started against a garbage node must exit \
         with an error naming the endpoint, not panic.\n\n\
         Bug found and fixed: decoders quote what they choke on, so a huge reply became an \
         error message of the same size, carried by every log line and error. The client now \
         cuts node-derived error messages short, with a \"… (N more bytes)\" note \
         (`common/src/chain/client.rs::bounded`).\n"
    );
    let _ = writeln!(w, "## 5. The mnemonic never leaks (`secrets.rs`)\n");
    let _ = writeln!(
        w,
        "Not part of `make reliability` either: no report fragment, no figures here.\n\n\
         **What runs.** A whole run, twice: devnet, manager, collector, health checker and \
         liquidator, with a price drop and liquidations. The mnemonic comes once from \
         `MNEMONIC` and once from `MNEMONIC_FILE`; the manifest carries none. The redline \
         crates log at debug level.\n\n\
         **What is searched.** stdout and stderr of every process; `/metrics` and `/health` of \
         the manager and of all three workers; every Redis key, read by type and as `DUMP` \
         bytes; the liquidations CSV; the workers' command lines.\n\n\
         **What counts as a leak.** The phrase; any three of its words in a row, whatever \
         separates them; the hex of the BIP-39 seed; the hex of the private keys of the first \
         wallets. Before searching, the test checks that the detector catches leaks planted in \
         several shapes.\n"
    );

    // ---------------------------------------------------------------- oracle breakdown
    let _ = writeln!(w, "## Profitable left, by the capture oracle\n");
    let _ = writeln!(
        w,
        "Every seeded borrower, judged after the pipeline stopped. \"Only at a loss\" gives the \
         best profit after the fee found among those accounts, in base units of the oracle's \
         prices (negative: a loss).\n"
    );
    let _ = writeln!(
        w,
        "| test | accounts judged | below HF 1 | no enabled collateral | only at a loss (best \
         profit after fee) | profitable | other | liquidations simulated |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for fragment in cases {
        let name = format!("`{}` {}", fragment.test, fragment.case);
        if fragment.skipped.is_some() {
            let _ = writeln!(w, "| {name} | skipped | | | | | | |");
            continue;
        }
        let c = capture(fragment);
        let listed = |items: &[(String, String)]| -> String {
            if items.is_empty() {
                "0".into()
            } else {
                format!(
                    "{}: {}",
                    items.len(),
                    items
                        .iter()
                        .take(5)
                        .map(|(a, why)| format!("{a} ({why})"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        };
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {}{} | {} | {} | {} |",
            c.accounts,
            c.below_one,
            c.no_collateral,
            c.unprofitable,
            c.best_unprofitable
                .as_ref()
                .map(|p| match p.parse::<f64>() {
                    Ok(v) => format!(" ({v:.2})"),
                    Err(_) => format!(" ({p})"),
                })
                .unwrap_or_default(),
            listed(&c.profitable),
            listed(&c.other),
            c.simulations,
        );
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: u64, to: u64, late: &[u64]) -> BlockWindow {
        BlockWindow {
            from,
            to,
            recorded: (to - from + 1) as usize,
            on_time: (to - from + 1) as usize - late.len(),
            late: late.to_vec(),
            ..BlockWindow::default()
        }
    }

    fn ran(test: &str, case: &str, figures: Figures) -> Fragment {
        let drop = PriceDrop {
            denom: "uatom".into(),
            from: "10".into(),
            to: "7".into(),
            height: 20,
        };
        Fragment {
            runtime_s: 23.4,
            setup: Some(Setup {
                backend: "process".into(),
                accounts: 300,
                block_ms: 500,
                health_checkers: 2,
                liquidators: 2,
                visibility_ms: 3000,
                rpc_endpoints: 0,
                manager_args: vec![
                    "--liquidator-arg=--account-lock-ttl-ms=8000".into(),
                    "--rpc-timeout-ms=2000".into(),
                ],
            }),
            figures: Some(figures),
            liquidations: Some(Liquidations {
                drop,
                expected: Some(22),
                total: 27,
                accounts: 22,
                twice_in_a_block: Vec::new(),
                first_height: Some(21),
                last_height: Some(40),
                quiet_blocks: 20,
                settled_height: 60,
                settled_after_s: 20.0,
            }),
            dead_letters: Some(DeadLetters::default()),
            capture: Some(Capture {
                accounts: 300,
                below_one: 5,
                unprofitable: 5,
                best_unprofitable: Some("-12.5".into()),
                simulations: 9,
                ..Capture::default()
            }),
            ..Fragment::new(test, case)
        }
    }

    /// The one-endpoint RPC case, as the test records it.
    fn rpc_one() -> Fragment {
        ran(
            "chaos_rpc",
            "one-endpoint",
            Figures::RpcOne(RpcOneFigures {
                down_at: 5,
                back_at: 15,
                outage_blocks: 10,
                outage_log_lines: 90,
                on_time_run: 4,
                recovery_s: 2.5,
                window: window(6, 20, &[]),
            }),
        )
    }

    #[test]
    fn setup_flags_are_found_also_when_passed_on_to_a_worker() {
        let fragment = rpc_one();
        let setup = fragment.setup.unwrap();
        assert_eq!(setup.flag("--account-lock-ttl-ms"), Some("8000"));
        assert_eq!(setup.flag("--rpc-timeout-ms"), Some("2000"));
        assert_eq!(setup.flag("--timeout-ms"), None);
    }

    #[test]
    fn a_block_without_a_record_counts_as_missed() {
        let mut w = window(6, 12, &[7]);
        w.no_record = vec![9];
        w.not_enqueued = vec![8];
        assert_eq!(w.missed(), 3);
        assert_eq!(
            w.describe(),
            "3 missed (1 late: 7; 1 not enqueued: 8; 1 without a record: 9)"
        );
    }

    #[test]
    fn renders_every_case_and_fails_without_one() {
        let kill = Figures::Kill(KillFigures {
            health_checker: HealthCheckerKill {
                victim: "process 42".into(),
                height: 6,
                jobs: vec![HeldJob {
                    id: "1-0".into(),
                    height: 6,
                    buckets: "385..572".into(),
                    done: 1,
                }],
                reclaimed_after_s: 3.04,
                replaced: Some(true),
                window: window(6, 12, &[6, 7, 8]),
            },
            liquidator: LiquidatorKill {
                victim: "process 43".into(),
                height: 17,
                candidates: vec![HeldCandidate {
                    id: "c".into(),
                    account: "mars1x".into(),
                    liquidated_at: vec![18, 35],
                }],
                dead_lettered: 0,
                settled_after_s: 10.6,
            },
        });
        let phase = RpcPhase {
            at_height: 8,
            connections_moved: 9,
            on_time_run: 4,
            recovery_s: 12.1,
            window: window(9, 30, &[10, 11]),
        };
        let mut fragments = vec![
            ran("chaos_kill", "process", kill),
            Fragment::skipped("chaos_kill", "docker", "no Docker engine answers here"),
            ran(
                "chaos_redis",
                "restart",
                Figures::Redis(RedisFigures {
                    killed_height: 5,
                    restart_height: 10,
                    down_s: 2.4,
                    last_good: 4,
                    first_good: 12,
                    recovered_after_s: 4.9,
                    window: window(5, 11, &[11]),
                    accounts_before: 269,
                    accounts_after: 269,
                }),
            ),
            ran(
                "chaos_rpc",
                "two-endpoints",
                Figures::RpcTwo(RpcTwoFigures {
                    hung: phase.clone(),
                    down: phase.clone(),
                }),
            ),
            ran(
                "chaos_rpc",
                "hung-unhedged",
                Figures::RpcHungUnhedged(RpcPhase {
                    window: window(9, 30, &[10, 11, 12, 13, 14]),
                    ..phase
                }),
            ),
        ];
        let error = render(&fragments, "target/reliability").unwrap_err();
        assert!(
            error.to_string().contains("chaos_rpc-one-endpoint.json"),
            "{error}"
        );
        fragments.push(rpc_one());
        let md = render(&fragments, "target/reliability").unwrap();
        for expected in [
            "job of height 6, buckets 385..572 at height 6",
            "done once, 3.0 s after the kill",
            "6..=12: 3 missed (3 late: 6, 7, 8; 0 not enqueued; 0 without a record)",
            "process: 3 of blocks 6..=12 (3 late: 6, 7, 8;",
            "5 (-12.50)",
            "18, 35",
            "ATOM from 10 to 7 (−30 %)",
            "| docker | **skipped**: no Docker engine answers here |",
            "--rpc-timeout-ms=2000` (4 blocks of 500 ms)",
            "0 (of 5 left below HF 1: 5 only at a loss)",
            "(8.0 s here)",
            "**Lost: nothing.**",
            "| the preferred of two endpoints hangs, hedging off | 5 while hung |",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in\n{md}");
        }
        assert!(!md.contains("lower their health"));
        // A fragment survives the trip through JSON.
        let json = serde_json::to_string(&fragments[0]).unwrap();
        assert_eq!(
            serde_json::from_str::<Fragment>(&json).unwrap(),
            fragments[0]
        );
    }
}
