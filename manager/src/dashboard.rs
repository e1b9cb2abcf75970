//! The operators' web dashboard, served by the manager on `--dashboard-addr` (loopback by
//! default: it shows positions and wallet balances).
//!
//! - `GET /` — one server-rendered HTML page: the current block and its lag, a per-block
//!   chart of accounts checked and missed, workers per kind over the same blocks (inline SVG),
//!   the accounts closest to liquidation with their health factor, the recent liquidations
//!   with their profit, and the liquidator wallets' balances. A small vanilla script fetches
//!   the page again every few seconds and swaps its content in; no JavaScript builds anything.
//! - `GET /api/dashboard` — the same figures as JSON ([`Snapshot`]), for scripts and tests.
//!
//! Where the figures come from:
//!
//! | figure | source |
//! |---|---|
//! | current block, workers now, status | the manager's own `/health` report |
//! | per-block checked/missed, workers over time | the manager's block records, stream `<queue prefix>:manager:blocks` |
//! | near-liquidation accounts | the health checkers' set `<queue prefix>:<chain id>:red_bank:near` (score = HF) |
//! | liquidations and profit | the liquidators' attempts stream `<queue prefix>:liquidator:<chain id>:<name>` |
//! | wallet balances | the liquidators' hash `<queue prefix>:liquidator:<chain id>:wallets` |
//! | capital shortfalls | the liquidation queue's parked set and the liquidators' hash `<queue prefix>:liquidator:<chain id>:capital` |
//!
//! Liquidation totals are kept incrementally: each request reads only the attempts recorded
//! since the previous one, and sums profits exactly (18 decimals, no float).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use cosmwasm_std::SignedDecimal256;
use redis::aio::ConnectionLike;
use redline_service::metrics::HealthReport;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::ledger::{BlockRecord, BlockStatus};
use crate::watch::unix_ms;

/// Default of `--dashboard-addr`: loopback, on a port the OS picks (logged, and shown in the
/// manager's `/health` as `dashboard`), like `--metrics-addr`, so that several managers on one
/// machine (tests, several chains) never collide. `make run` serves it on 127.0.0.1:9300.
pub const DEFAULT_ADDR: &str = "127.0.0.1:0";
/// Attempts read from the stream per round trip.
const ATTEMPTS_PAGE: usize = 1_000;

/// `--dashboard-addr`: `off` disables the dashboard.
pub fn parse_addr(raw: &str) -> Result<Option<SocketAddr>, String> {
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    raw.trim()
        .parse()
        .map(Some)
        .map_err(|e| format!("--dashboard-addr: `{raw}` is not host:port or `off`: {e}"))
}

/// The near-liquidation set the health checkers write (see the health checker's `output`
/// module).
pub fn near_key(queue_prefix: &str, chain_id: &str) -> String {
    redline_pipeline::near::NearKeys::new(
        queue_prefix,
        chain_id,
        redline_pipeline::jobs::ProtocolKind::RedBank,
    )
    .all
}

/// The liquidators' wallet balances (see the liquidator's `balances` module).
pub fn wallets_key(queue_prefix: &str, chain_id: &str) -> String {
    format!("{queue_prefix}:liquidator:{chain_id}:wallets")
}

/// Where the dashboard reads, and how much it shows.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub chain_id: String,
    /// The manager's block records (`crate::control::blocks_stream_key`).
    pub blocks_key: String,
    /// The liquidators' attempts stream.
    pub attempts_key: String,
    pub near_key: String,
    pub wallets_key: String,
    /// The liquidators' capital reports.
    pub capital_key: String,
    /// The liquidation queue's set of candidates waiting for funds.
    pub parked_key: String,
    /// Decimals per denom (from the manifest), to show balances in whole units too.
    pub decimals: BTreeMap<String, u8>,
    /// Blocks in the charts.
    pub blocks_shown: usize,
    /// Near-liquidation accounts listed.
    pub near_shown: usize,
    /// Recent liquidations listed.
    pub liquidations_shown: usize,
    /// How often the page refreshes itself.
    pub refresh: Duration,
}

impl DashboardConfig {
    /// The keys of `chain_id` under `queue_prefix`, with the default amounts shown.
    pub fn new(queue_prefix: &str, chain_id: &str, attempts_key: String) -> Self {
        DashboardConfig {
            chain_id: chain_id.to_string(),
            blocks_key: crate::control::blocks_stream_key(queue_prefix),
            attempts_key,
            near_key: near_key(queue_prefix, chain_id),
            wallets_key: wallets_key(queue_prefix, chain_id),
            capital_key: redline_pipeline::capital::capital_key(queue_prefix, chain_id),
            parked_key: redline_pipeline::queue::PriorityKeys::new(
                queue_prefix,
                redline_pipeline::jobs::LIQUIDATION_QUEUE,
            )
            .parked,
            decimals: BTreeMap::new(),
            blocks_shown: 120,
            near_shown: 12,
            liquidations_shown: 15,
            refresh: Duration::from_secs(5),
        }
    }
}

/// Everything the page shows, as `/api/dashboard` answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub generated_at_ms: u64,
    pub chain_id: String,
    /// The manager's status (`starting`, `ok`, `alarm`).
    pub status: String,
    pub backend: String,
    pub current_block: Option<CurrentBlock>,
    /// The newest closed blocks, oldest first.
    pub blocks: Vec<BlockRecord>,
    pub block_summary: BlockSummary,
    /// Workers now, by kind (`health-checker`, `liquidator`).
    pub workers: BTreeMap<String, WorkersNow>,
    pub near_liquidation: NearLiquidation,
    pub liquidations: Liquidations,
    pub wallets: Vec<WalletBalances>,
    pub capital: Capital,
    /// Sources that could not be read (the rest is still shown).
    pub errors: Vec<String>,
}

/// Liquidations waiting for funds and what the wallets lack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capital {
    /// Candidates set aside in the liquidation queue until a wallet can pay for them.
    pub waiting: u64,
    /// The liquidators' fresh reports, summed.
    pub short: redline_pipeline::capital::CapitalTotal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurrentBlock {
    pub height: u64,
    pub arrived_at_ms: u64,
    /// Since the block arrived.
    pub age_ms: u64,
    /// The newest closed block: its height, status and lag (arrival → checks done).
    pub last_closed: Option<u64>,
    pub last_closed_status: Option<BlockStatus>,
    pub last_closed_lag_ms: Option<u64>,
}

/// Totals over the blocks shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    pub blocks: u64,
    pub on_time: u64,
    pub missed: u64,
    pub accounts_checked: u64,
    pub jobs_missed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkersNow {
    pub desired: u64,
    pub running: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearLiquidation {
    /// Accounts in the set.
    pub total: u64,
    /// Of which liquidatable now (HF < 1).
    pub liquidatable: u64,
    /// The lowest health factors first.
    pub accounts: Vec<NearAccount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearAccount {
    pub account: String,
    /// Liquidation health factor as the health checker stored it (6 decimals).
    pub health_factor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liquidations {
    /// Liquidations recorded as landed in the attempts stream.
    pub count: u64,
    /// Their profit after fees, in USD, exact.
    pub profit_usd: String,
    /// Newest first.
    pub recent: Vec<LiquidationRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquidationRow {
    pub height: u64,
    pub account: String,
    /// Debt repaid, in base units of `debt_denom`.
    pub debt_repaid: String,
    pub debt_denom: String,
    /// Collateral received, in base units of `collateral_denom`.
    pub collateral_received: String,
    pub collateral_denom: String,
    pub profit_usd: String,
    pub tx_hash: String,
    pub worker_slot: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalances {
    pub address: String,
    pub slot: u32,
    /// Denom → amount in base units.
    pub balances: BTreeMap<String, String>,
    pub height: u64,
    pub updated_at_ms: u64,
}

/// Running totals of the attempts stream.
#[derive(Debug, Default)]
struct Tally {
    last_id: Option<String>,
    count: u64,
    profit: SignedDecimal256,
    recent: VecDeque<LiquidationRow>,
}

/// The dashboard's data: read on each request from the manager's health report and Redis.
pub struct Dashboard<R> {
    config: DashboardConfig,
    redis: R,
    health: HealthReport,
    tally: Mutex<Tally>,
}

impl<R> Dashboard<R>
where
    R: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub fn new(config: DashboardConfig, redis: R, health: HealthReport) -> Self {
        Dashboard {
            config,
            redis,
            health,
            tally: Mutex::new(Tally::default()),
        }
    }

    pub fn config(&self) -> &DashboardConfig {
        &self.config
    }

    /// Reads every figure now. A source that fails is named in [`Snapshot::errors`]; the
    /// others are still filled.
    pub async fn snapshot(&self) -> Snapshot {
        let now = unix_ms();
        let mut snapshot = Snapshot {
            generated_at_ms: now,
            chain_id: self.config.chain_id.clone(),
            ..Snapshot::default()
        };
        let health = self.health.read().await.clone();
        snapshot.status = health["status"].as_str().unwrap_or("starting").to_string();
        snapshot.backend = health["backend"].as_str().unwrap_or_default().to_string();
        if let Some(workers) = health["workers"].as_object() {
            for (kind, counts) in workers {
                let count = |field: &str| counts[field].as_u64().unwrap_or(0);
                snapshot.workers.insert(
                    kind.clone(),
                    WorkersNow {
                        desired: count("desired"),
                        running: count("running"),
                        pending: count("pending"),
                    },
                );
            }
        }
        match self.blocks().await {
            Ok(blocks) => snapshot.blocks = blocks,
            Err(error) => snapshot.errors.push(format!(
                "block records ({}): {error}",
                self.config.blocks_key
            )),
        }
        for block in &snapshot.blocks {
            let summary = &mut snapshot.block_summary;
            summary.blocks += 1;
            if block.status == BlockStatus::OnTime {
                summary.on_time += 1;
            }
            if block.status.missed() {
                summary.missed += 1;
            }
            summary.accounts_checked += block.accounts_checked;
            summary.jobs_missed += block.jobs_missed;
        }
        if let Some(height) = health["last_block"]["height"].as_u64() {
            let arrived_at_ms = health["last_block"]["arrived_at_ms"]
                .as_u64()
                .unwrap_or(now);
            let last = snapshot.blocks.last();
            snapshot.current_block = Some(CurrentBlock {
                height,
                arrived_at_ms,
                age_ms: now.saturating_sub(arrived_at_ms),
                last_closed: last.map(|b| b.height),
                last_closed_status: last.map(|b| b.status),
                last_closed_lag_ms: last.and_then(|b| b.lag_ms),
            });
        }
        match self.near().await {
            Ok(near) => snapshot.near_liquidation = near,
            Err(error) => snapshot.errors.push(format!(
                "near-liquidation set ({}): {error}",
                self.config.near_key
            )),
        }
        match self.liquidations().await {
            Ok(liquidations) => snapshot.liquidations = liquidations,
            Err(error) => snapshot.errors.push(format!(
                "attempts stream ({}): {error}",
                self.config.attempts_key
            )),
        }
        match self.wallets().await {
            Ok(wallets) => snapshot.wallets = wallets,
            Err(error) => snapshot.errors.push(format!(
                "wallet balances ({}): {error}",
                self.config.wallets_key
            )),
        }
        match self.capital(now).await {
            Ok(capital) => snapshot.capital = capital,
            Err(error) => snapshot.errors.push(format!(
                "capital reports ({}): {error}",
                self.config.capital_key
            )),
        }
        snapshot
    }

    async fn capital(&self, now: u64) -> Result<Capital, redis::RedisError> {
        let waiting: u64 = redis::cmd("ZCARD")
            .arg(&self.config.parked_key)
            .query_async(&mut self.redis.clone())
            .await?;
        let raw: Vec<String> = redis::cmd("HVALS")
            .arg(&self.config.capital_key)
            .query_async(&mut self.redis.clone())
            .await?;
        let reports: Vec<redline_pipeline::capital::CapitalReport> = raw
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        // Reports older than a minute describe a step long gone.
        let short = redline_pipeline::capital::total(&reports, now, 60_000);
        Ok(Capital { waiting, short })
    }

    async fn blocks(&self) -> Result<Vec<BlockRecord>, redis::RedisError> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.config.blocks_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.config.blocks_shown)
            .query_async(&mut self.redis.clone())
            .await?;
        let mut blocks: Vec<BlockRecord> = reply
            .ids
            .iter()
            .filter_map(|entry| entry.get::<String>("record"))
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        blocks.reverse();
        Ok(blocks)
    }

    async fn near(&self) -> Result<NearLiquidation, redis::RedisError> {
        let mut redis = self.redis.clone();
        let key = &self.config.near_key;
        let total: u64 = redis::cmd("ZCARD").arg(key).query_async(&mut redis).await?;
        let liquidatable: u64 = redis::cmd("ZCOUNT")
            .arg(key)
            .arg("-inf")
            .arg("(1")
            .query_async(&mut redis)
            .await?;
        let accounts: Vec<(String, String)> = if self.config.near_shown == 0 {
            Vec::new()
        } else {
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(self.config.near_shown - 1)
                .arg("WITHSCORES")
                .query_async(&mut redis)
                .await?
        };
        Ok(NearLiquidation {
            total,
            liquidatable,
            accounts: accounts
                .into_iter()
                .map(|(account, score)| NearAccount {
                    account,
                    health_factor: health_factor_text(&score),
                })
                .collect(),
        })
    }

    /// Brings the tally up to date with the attempts recorded since the last call.
    async fn liquidations(&self) -> Result<Liquidations, redis::RedisError> {
        let mut tally = self.tally.lock().await;
        let mut redis = self.redis.clone();
        loop {
            let start = match &tally.last_id {
                Some(id) => format!("({id}"),
                None => "-".to_string(),
            };
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.config.attempts_key)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(ATTEMPTS_PAGE)
                .query_async(&mut redis)
                .await?;
            let read = reply.ids.len();
            for entry in reply.ids {
                tally.last_id = Some(entry.id.clone());
                let Some(json) = entry.get::<String>("record") else {
                    continue;
                };
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&json) else {
                    continue;
                };
                if record["outcome"] != "liquidated" {
                    continue;
                }
                let text = |field: &str| match &record[field] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                let profit = SignedDecimal256::from_str(&text("profit_usd")).unwrap_or_default();
                tally.count += 1;
                tally.profit = tally.profit.saturating_add(profit);
                tally.recent.push_front(LiquidationRow {
                    height: record["height"].as_u64().unwrap_or(0),
                    account: text("account"),
                    debt_repaid: text("debt_repaid"),
                    debt_denom: text("debt_denom"),
                    collateral_received: text("collateral_received"),
                    collateral_denom: text("collateral_denom"),
                    profit_usd: profit.to_string(),
                    tx_hash: text("tx_hash"),
                    worker_slot: record["worker_slot"].as_u64().unwrap_or(0),
                });
                tally.recent.truncate(self.config.liquidations_shown);
            }
            if read < ATTEMPTS_PAGE {
                break;
            }
        }
        Ok(Liquidations {
            count: tally.count,
            profit_usd: tally.profit.to_string(),
            recent: tally.recent.iter().cloned().collect(),
        })
    }

    async fn wallets(&self) -> Result<Vec<WalletBalances>, redis::RedisError> {
        let entries: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.config.wallets_key)
            .query_async(&mut self.redis.clone())
            .await?;
        let mut wallets: Vec<WalletBalances> = entries
            .values()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        wallets.sort_by(|a, b| (a.slot, &a.address).cmp(&(b.slot, &b.address)));
        Ok(wallets)
    }
}

/// A near-set score as the health checker wrote it: 6 decimals, without trailing zeros. Redis
/// answers a score as the nearest double (`1.0099990000000001`); the health checker truncated
/// the HF to 6 decimals before storing it, so rounding the double to 6 gives it back exactly.
pub fn health_factor_text(score: &str) -> String {
    let Ok(value) = score.trim().parse::<f64>() else {
        return score.to_string();
    };
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Serves `/` and `/api/dashboard` on `addr` until the task is dropped; returns the bound
/// address (useful with port 0).
pub async fn serve<R>(
    addr: SocketAddr,
    dashboard: Arc<Dashboard<R>>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    R: ConnectionLike + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/", get(page::<R>))
        .route("/api/dashboard", get(api::<R>))
        .with_state(dashboard);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "dashboard stopped");
        }
    });
    Ok((bound, task))
}

async fn page<R>(State(dashboard): State<Arc<Dashboard<R>>>) -> impl IntoResponse
where
    R: ConnectionLike + Clone + Send + Sync + 'static,
{
    let snapshot = dashboard.snapshot().await;
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(render(&snapshot, dashboard.config())),
    )
}

async fn api<R>(State(dashboard): State<Arc<Dashboard<R>>>) -> impl IntoResponse
where
    R: ConnectionLike + Clone + Send + Sync + 'static,
{
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(dashboard.snapshot().await),
    )
}

// ------------------------------------------------------------------------------- rendering

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A USD amount for display: cut (towards zero) to cents, thousands separated: `-1,234.56`.
pub fn usd(exact: &str) -> String {
    let (negative, digits) = match exact.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exact),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let cents: String = fraction.chars().chain("00".chars()).take(2).collect();
    let whole = group_thousands(if whole.is_empty() { "0" } else { whole });
    let zero = whole == "0" && cents == "00";
    format!(
        "{}{whole}.{cents}",
        if negative && !zero { "-" } else { "" }
    )
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `amount` base units with `decimals` decimals as whole units, exact, without trailing zeros:
/// `1234500000` with 6 → `1,234.5`.
pub fn whole_units(amount: &str, decimals: u8) -> String {
    let decimals = usize::from(decimals);
    if !amount.chars().all(|c| c.is_ascii_digit()) || amount.is_empty() {
        return amount.to_string();
    }
    let padded = format!("{amount:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let whole = match whole.trim_start_matches('0') {
        "" => "0".to_string(),
        digits => group_thousands(digits),
    };
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole
    } else {
        format!("{whole}.{fraction}")
    }
}

/// `osmo1r5v5srd…ns5tpd`: enough to tell wallets apart in a narrow column (the full address is
/// in the cell's title).
fn short_address(address: &str) -> String {
    let chars: Vec<char> = address.chars().collect();
    if chars.len() <= 20 {
        return address.to_string();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

fn ago(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else {
        format!("{} min", ms / 60_000)
    }
}

fn status_class(status: BlockStatus) -> &'static str {
    match status {
        BlockStatus::OnTime => "ok",
        BlockStatus::Late => "late",
        BlockStatus::NotEnqueued => "missing",
        BlockStatus::WarmingUp => "warming",
    }
}

const STYLE: &str = r#"
:root { --ok:#2e9d5b; --late:#d64545; --missing:#e08a1e; --warming:#9aa3ad; --hc:#2f6fd6; --liq:#8e44ad;
        --fg:#1d2430; --muted:#6b7480; --line:#e3e7ec; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:baseline; gap:16px; padding:14px 24px; background:#1d2430; color:#fff; }
header h1 { font-size:18px; margin:0; }
header .meta { color:#b8c0ca; font-size:13px; }
.badge { padding:2px 8px; border-radius:10px; font-size:12px; font-weight:600; background:var(--ok); color:#fff; }
.badge.alarm { background:var(--late); } .badge.starting { background:var(--warming); }
main { padding:16px 24px 32px; max-width:1280px; }
.tiles { display:grid; grid-template-columns:repeat(4,1fr); gap:12px; margin-bottom:16px; }
.tile { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.tile .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.tile .value { font-size:26px; font-weight:650; font-variant-numeric:tabular-nums; }
.tile .sub { color:var(--muted); font-size:12px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; margin-bottom:16px; }
section h2 { font-size:15px; margin:0 0 8px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
.grid2 section { margin-bottom:0; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:12px; }
td.num, th.num { text-align:right; }
.addr { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12px; }
.hf-low { color:var(--late); font-weight:650; } .hf-near { color:var(--missing); }
.legend { display:flex; gap:14px; font-size:12px; color:var(--muted); margin-bottom:4px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:-1px; }
.empty { color:var(--muted); font-style:italic; }
.errors { background:#fdecec; border-color:#f3b9b9; color:#8a1f1f; }
svg text { font-size:11px; fill:var(--muted); }
.muted { color:var(--muted); }
"#;

/// The page refreshes by fetching itself and swapping in the new `#dashboard`: the server
/// renders everything, the script only replaces.
const SCRIPT: &str = r#"
(function () {
  var every = Number(document.body.getAttribute('data-refresh-ms')) || 5000;
  function refresh() {
    fetch(window.location.pathname, { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, 'text/html').getElementById('dashboard');
        var current = document.getElementById('dashboard');
        if (next && current) { current.replaceWith(next); }
      })
      .catch(function () { /* keep the last figures; the next round retries */ })
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
"#;

/// The whole page.
pub fn render(snapshot: &Snapshot, config: &DashboardConfig) -> String {
    let mut html = String::with_capacity(32 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>redline · {chain}</title><style>{STYLE}</style></head>\
         <body data-refresh-ms=\"{refresh}\">",
        chain = esc(&snapshot.chain_id),
        refresh = config.refresh.as_millis(),
    );
    html.push_str("<div id=\"dashboard\">");
    render_header(&mut html, snapshot);
    html.push_str("<main>");
    if !snapshot.errors.is_empty() {
        html.push_str("<section class=\"errors\" id=\"errors\"><h2>Sources not read</h2><ul>");
        for error in &snapshot.errors {
            let _ = write!(html, "<li>{}</li>", esc(error));
        }
        html.push_str("</ul></section>");
    }
    render_tiles(&mut html, snapshot);
    render_blocks_chart(&mut html, snapshot);
    render_workers_chart(&mut html, snapshot);
    html.push_str("<div class=\"grid2\">");
    render_near(&mut html, snapshot);
    render_wallets(&mut html, snapshot, config);
    html.push_str("</div><div style=\"height:16px\"></div>");
    render_capital(&mut html, snapshot, config);
    render_liquidations(&mut html, snapshot, config);
    html.push_str("</main></div>");
    let _ = write!(html, "<script>{SCRIPT}</script></body></html>");
    html
}

fn render_header(html: &mut String, snapshot: &Snapshot) {
    let badge = match snapshot.status.as_str() {
        "ok" => "",
        "alarm" => " alarm",
        _ => " starting",
    };
    let _ = write!(
        html,
        "<header><h1>redline</h1><span class=\"meta\">chain <b id=\"chain-id\">{chain}</b> · backend {backend}</span>\
         <span class=\"badge{badge}\" id=\"status\">{status}</span>\
         <span class=\"meta\" style=\"margin-left:auto\">updated <span id=\"generated-at\" data-ms=\"{at}\">{at_text}</span></span></header>",
        chain = esc(&snapshot.chain_id),
        backend = esc(&snapshot.backend),
        status = esc(&snapshot.status),
        at = snapshot.generated_at_ms,
        at_text = esc(&utc_time(snapshot.generated_at_ms)),
    );
}

/// `HH:MM:SS UTC` of a Unix-milliseconds time.
fn utc_time(ms: u64) -> String {
    let secs = ms / 1_000;
    format!(
        "{:02}:{:02}:{:02} UTC",
        (secs / 3_600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

fn render_tiles(html: &mut String, snapshot: &Snapshot) {
    html.push_str("<div class=\"tiles\">");
    match &snapshot.current_block {
        Some(block) => {
            let _ = write!(
                html,
                "<div class=\"tile\"><div class=\"label\">Current block</div>\
                 <div class=\"value\" id=\"block-height\">{}</div>\
                 <div class=\"sub\">arrived <span id=\"block-age-ms\" data-ms=\"{}\">{}</span> ago</div></div>",
                block.height,
                block.age_ms,
                ago(block.age_ms)
            );
            let lag = block
                .last_closed_lag_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "–".into());
            let closed = match (block.last_closed, block.last_closed_status) {
                (Some(height), Some(status)) => format!(
                    "block {height}: <span class=\"{}\">{}</span>",
                    status_class(status),
                    status.as_str().replace('_', " ")
                ),
                _ => "no block closed yet".into(),
            };
            let _ = write!(
                html,
                "<div class=\"tile\"><div class=\"label\">Block lag (arrival → checked)</div>\
                 <div class=\"value\" id=\"block-lag\">{lag}</div><div class=\"sub\">{closed}</div></div>"
            );
        }
        None => html.push_str(
            "<div class=\"tile\"><div class=\"label\">Current block</div>\
             <div class=\"value\" id=\"block-height\">–</div><div class=\"sub\">no block yet</div></div>\
             <div class=\"tile\"><div class=\"label\">Block lag</div><div class=\"value\" id=\"block-lag\">–</div></div>",
        ),
    }
    let summary = &snapshot.block_summary;
    let _ = write!(
        html,
        "<div class=\"tile\"><div class=\"label\">Blocks on time / missed</div>\
         <div class=\"value\"><span id=\"blocks-on-time\">{}</span> / <span id=\"blocks-missed\">{}</span></div>\
         <div class=\"sub\">of the last {} closed · {} jobs missed</div></div>",
        summary.on_time, summary.missed, summary.blocks, summary.jobs_missed
    );
    let liquidations = &snapshot.liquidations;
    let _ = write!(
        html,
        "<div class=\"tile\"><div class=\"label\">Liquidations · profit</div>\
         <div class=\"value\"><span id=\"liquidations-count\">{}</span> · \
         $<span id=\"liquidations-profit\" data-exact=\"{}\">{}</span></div>\
         <div class=\"sub\">after fees, from the attempts stream</div></div>",
        liquidations.count,
        esc(&liquidations.profit_usd),
        esc(&usd(&liquidations.profit_usd)),
    );
    html.push_str("</div>");
}

/// Per-block bars: accounts checked in time (green) with what was missed stacked on top (red);
/// a block whose work was never queued is an orange stub, warming-up blocks a grey one.
fn render_blocks_chart(html: &mut String, snapshot: &Snapshot) {
    const W: f64 = 1200.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 20.0;
    html.push_str(
        "<section id=\"blocks-chart\"><h2>Accounts checked per block</h2><div class=\"legend\">\
         <span><i style=\"background:var(--ok)\"></i>checked in time</span>\
         <span><i style=\"background:var(--late)\"></i>missed (still queued at the deadline)</span>\
         <span><i style=\"background:var(--missing)\"></i>work never queued</span>\
         <span><i style=\"background:var(--warming)\"></i>warming up</span></div>",
    );
    let blocks = &snapshot.blocks;
    if blocks.is_empty() {
        html.push_str("<p class=\"empty\">No block closed yet.</p></section>");
        return;
    }
    let max = blocks.iter().map(|b| b.accounts).max().unwrap_or(0).max(1) as f64;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - 8.0;
    let slot = plot_w / blocks.len() as f64;
    let bar = (slot * 0.8).max(1.0);
    let _ = write!(
        html,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"accounts checked and missed per block\">"
    );
    for (fraction, label) in [
        (0.0, "0".to_string()),
        (0.5, format!("{:.0}", max / 2.0)),
        (1.0, format!("{max:.0}")),
    ] {
        grid_line(html, 8.0 + plot_h * (1.0 - fraction), LEFT, W - 8.0, label);
    }
    for (i, block) in blocks.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let base = 8.0 + plot_h;
        let title = format!(
            "block {}: {} · {} of {} accounts checked in time{}",
            block.height,
            block.status.as_str().replace('_', " "),
            block.accounts_checked,
            block.accounts,
            block
                .lag_ms
                .map(|ms| format!(" · lag {ms} ms"))
                .unwrap_or_default()
        );
        let _ = write!(
            html,
            "<g class=\"block {}\" data-height=\"{}\"><title>{}</title>",
            status_class(block.status),
            block.height,
            esc(&title)
        );
        match block.status {
            BlockStatus::NotEnqueued | BlockStatus::WarmingUp => {
                let color = if block.status == BlockStatus::NotEnqueued {
                    "var(--missing)"
                } else {
                    "var(--warming)"
                };
                let _ = write!(
                    html,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"6\" fill=\"{color}\"/>",
                    y = base - 6.0
                );
            }
            _ => {
                let checked_h = plot_h * block.accounts_checked as f64 / max;
                let missed = block.accounts.saturating_sub(block.accounts_checked);
                let mut missed_h = plot_h * missed as f64 / max;
                if block.status == BlockStatus::Late {
                    // A late block always shows, however few accounts it missed.
                    missed_h = missed_h.max(3.0);
                }
                let _ = write!(
                    html,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{checked_h:.1}\" fill=\"var(--ok)\"/>",
                    y = base - checked_h
                );
                if missed_h > 0.0 {
                    let _ = write!(
                        html,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{missed_h:.1}\" fill=\"var(--late)\"/>",
                        y = base - checked_h - missed_h
                    );
                }
            }
        }
        html.push_str("</g>");
    }
    axis_heights(html, blocks, LEFT, slot, H);
    html.push_str("</svg></section>");
}

/// A horizontal grid line of a chart at `y`, from `left` to `right`, labelled left of the plot.
fn grid_line(html: &mut String, y: f64, left: f64, right: f64, label: impl std::fmt::Display) {
    let _ = write!(
        html,
        "<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ec\"/>\
         <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text>",
        tx = left - 6.0,
        ty = y + 4.0,
    );
}

/// First and last block heights under a chart.
fn axis_heights(html: &mut String, blocks: &[BlockRecord], left: f64, slot: f64, h: f64) {
    if let (Some(first), Some(last)) = (blocks.first(), blocks.last()) {
        let _ = write!(
            html,
            "<text x=\"{left}\" y=\"{y}\">#{}</text><text x=\"{x}\" y=\"{y}\" text-anchor=\"end\">#{}</text>",
            first.height,
            last.height,
            y = h - 4.0,
            x = left + slot * blocks.len() as f64,
        );
    }
}

/// Running health checkers and liquidators at each closed block, as step lines.
fn render_workers_chart(html: &mut String, snapshot: &Snapshot) {
    const W: f64 = 1200.0;
    const H: f64 = 140.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 20.0;
    let now = |kind: &str| {
        snapshot
            .workers
            .get(kind)
            .map(|w| {
                format!(
                    "{} running, {} desired, {} starting",
                    w.running, w.desired, w.pending
                )
            })
            .unwrap_or_else(|| "–".into())
    };
    let _ = write!(
        html,
        "<section id=\"workers-chart\"><h2>Workers per kind</h2><div class=\"legend\">\
         <span><i style=\"background:var(--hc)\"></i>health checkers (now: <span id=\"workers-health-checker\">{}</span>)</span>\
         <span><i style=\"background:var(--liq)\"></i>liquidators (now: <span id=\"workers-liquidator\">{}</span>)</span></div>",
        esc(&now("health-checker")),
        esc(&now("liquidator")),
    );
    let blocks = &snapshot.blocks;
    if blocks.is_empty() {
        html.push_str("<p class=\"empty\">No block closed yet.</p></section>");
        return;
    }
    let max = blocks
        .iter()
        .map(|b| b.health_checkers.max(b.liquidators))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - 8.0;
    let slot = plot_w / blocks.len() as f64;
    let _ = write!(
        html,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"workers per kind over time\">"
    );
    let steps = max as u64;
    for value in 0..=steps {
        // At most 5 grid lines.
        if steps > 4 && value % steps.div_ceil(4) != 0 && value != steps {
            continue;
        }
        grid_line(
            html,
            8.0 + plot_h * (1.0 - value as f64 / max),
            LEFT,
            W - 8.0,
            value,
        );
    }
    // Health checkers drawn wide, liquidators dashed on top: equal counts stay visible.
    for (color, class, style, count) in [
        (
            "var(--hc)",
            "health-checkers",
            "stroke-width=\"4\" stroke-opacity=\"0.8\"",
            (|b: &BlockRecord| b.health_checkers) as fn(&BlockRecord) -> u32,
        ),
        (
            "var(--liq)",
            "liquidators",
            "stroke-width=\"2\" stroke-dasharray=\"6 4\"",
            |b: &BlockRecord| b.liquidators,
        ),
    ] {
        let mut points = String::new();
        for (i, block) in blocks.iter().enumerate() {
            let y = 8.0 + plot_h * (1.0 - f64::from(count(block)) / max);
            let x0 = LEFT + i as f64 * slot;
            let _ = write!(points, "{x0:.1},{y:.1} {:.1},{y:.1} ", x0 + slot);
        }
        let _ = write!(
            html,
            "<polyline class=\"{class}\" points=\"{}\" fill=\"none\" stroke=\"{color}\" {style}/>",
            points.trim_end()
        );
    }
    axis_heights(html, blocks, LEFT, slot, H);
    html.push_str("</svg></section>");
}

fn render_near(html: &mut String, snapshot: &Snapshot) {
    let near = &snapshot.near_liquidation;
    let _ = write!(
        html,
        "<section id=\"near\"><h2>Closest to liquidation · <span id=\"near-total\">{}</span> watched, \
         <span id=\"near-liquidatable\">{}</span> liquidatable now</h2>",
        near.total, near.liquidatable
    );
    if near.accounts.is_empty() {
        html.push_str("<p class=\"empty\">No account under the watch threshold.</p></section>");
        return;
    }
    html.push_str("<table><thead><tr><th>#</th><th>account</th><th class=\"num\">health factor</th></tr></thead><tbody>");
    for (i, account) in near.accounts.iter().enumerate() {
        let class = match account.health_factor.parse::<f64>() {
            Ok(hf) if hf < 1.0 => "hf-low",
            _ => "hf-near",
        };
        let _ = write!(
            html,
            "<tr class=\"near-account\" data-account=\"{account}\" data-hf=\"{hf}\"><td class=\"muted\">{n}</td>\
             <td class=\"addr\">{account}</td><td class=\"num {class}\">{hf}</td></tr>",
            n = i + 1,
            account = esc(&account.account),
            hf = esc(&account.health_factor),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn render_wallets(html: &mut String, snapshot: &Snapshot, config: &DashboardConfig) {
    html.push_str("<section id=\"wallets\"><h2>Liquidator wallets</h2>");
    if snapshot.wallets.is_empty() {
        html.push_str(
            "<p class=\"empty\">No liquidator has published its balances yet.</p></section>",
        );
        return;
    }
    html.push_str("<table><thead><tr><th>slot</th><th>wallet</th><th>denom</th><th class=\"num\">balance</th></tr></thead><tbody>");
    for wallet in &snapshot.wallets {
        let age = ago(snapshot
            .generated_at_ms
            .saturating_sub(wallet.updated_at_ms));
        let slot = if wallet.slot == 0 {
            "0 (master)".to_string()
        } else {
            wallet.slot.to_string()
        };
        let rows = wallet.balances.len().max(1);
        let _ = write!(
            html,
            "<tr class=\"wallet-head\"><td rowspan=\"{rows}\">{slot}</td>\
             <td rowspan=\"{rows}\" class=\"addr\" title=\"{address}, read at height {height}\">{short}<br><span class=\"muted\">{age} ago</span></td>",
            address = esc(&wallet.address),
            short = esc(&short_address(&wallet.address)),
            height = wallet.height,
        );
        if wallet.balances.is_empty() {
            html.push_str("<td colspan=\"2\" class=\"empty\">no coins</td></tr>");
            continue;
        }
        for (i, (denom, amount)) in wallet.balances.iter().enumerate() {
            if i > 0 {
                html.push_str("<tr>");
            }
            let whole = config
                .decimals
                .get(denom)
                .map(|d| whole_units(amount, *d))
                .unwrap_or_else(|| amount.clone());
            let _ = write!(
                html,
                "<td>{denom}</td><td class=\"num balance\" data-wallet=\"{address}\" data-denom=\"{denom}\" \
                 data-amount=\"{amount}\" title=\"{amount} {denom} (base units)\">{whole}</td></tr>",
                denom = esc(denom),
                whole = esc(&whole),
                address = esc(&wallet.address),
                amount = esc(amount),
            );
        }
    }
    html.push_str("</tbody></table></section>");
}

fn render_capital(html: &mut String, snapshot: &Snapshot, config: &DashboardConfig) {
    let capital = &snapshot.capital;
    html.push_str("<section id=\"capital\"><h2>Capital</h2>");
    if capital.waiting == 0 && capital.short.is_empty() {
        html.push_str("<p class=\"empty\">No liquidation waits for funds.</p></section>");
        return;
    }
    let _ = write!(
        html,
        "<p><span id=\"capital-waiting\">{waiting}</span> liquidations wait for funds; \
         {wallets} wallets reported lacking:</p>",
        waiting = capital.waiting,
        wallets = capital.short.wallets,
    );
    html.push_str(
        "<table><thead><tr><th>denom</th><th class=\"num\">missing</th></tr></thead><tbody>",
    );
    for (denom, amount) in &capital.short.missing {
        let _ = write!(
            html,
            "<tr class=\"short\"><td>{denom}</td>{cell}</tr>",
            denom = esc(denom),
            cell = coin_cell(&amount.to_string(), denom, config),
        );
    }
    html.push_str("</tbody></table></section>");
}

/// `amount` of `denom` in whole units when its decimals are known (`1,234.5 uusdc`), with the
/// base units in the title.
fn coin_cell(amount: &str, denom: &str, config: &DashboardConfig) -> String {
    let whole = config
        .decimals
        .get(denom)
        .map(|d| whole_units(amount, *d))
        .unwrap_or_else(|| amount.to_string());
    format!(
        "<td class=\"num\" title=\"{amount}{denom} (base units)\">{whole} <span class=\"muted\">{denom}</span></td>",
        amount = esc(amount),
        denom = esc(denom),
        whole = esc(&whole),
    )
}

fn render_liquidations(html: &mut String, snapshot: &Snapshot, config: &DashboardConfig) {
    let liquidations = &snapshot.liquidations;
    html.push_str("<section id=\"liquidations\"><h2>Recent liquidations</h2>");
    if liquidations.recent.is_empty() {
        html.push_str("<p class=\"empty\">No liquidation yet.</p></section>");
        return;
    }
    html.push_str("<table><thead><tr><th>height</th><th>account</th><th class=\"num\">repaid</th><th class=\"num\">received</th><th class=\"num\">profit (USD)</th><th>slot</th><th>tx</th></tr></thead><tbody>");
    for row in &liquidations.recent {
        let _ = write!(
            html,
            "<tr class=\"liquidation\" data-tx=\"{tx}\" data-account=\"{account}\" data-profit=\"{profit}\">\
             <td>{height}</td><td class=\"addr\">{account}</td>{debt}{collateral}\
             <td class=\"num\">{profit_text}</td><td>{slot}</td><td class=\"addr\" title=\"{tx}\">{tx_short}</td></tr>",
            tx = esc(&row.tx_hash),
            account = esc(&row.account),
            profit = esc(&row.profit_usd),
            height = row.height,
            debt = coin_cell(&row.debt_repaid, &row.debt_denom, config),
            collateral = coin_cell(&row.collateral_received, &row.collateral_denom, config),
            profit_text = esc(&usd(&row.profit_usd)),
            slot = row.worker_slot,
            tx_short = esc(&row.tx_hash.chars().take(12).collect::<String>()),
        );
    }
    html.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::Uint128;

    #[test]
    fn numbers_for_display() {
        assert_eq!(usd("1234.5678"), "1,234.56");
        assert_eq!(usd("-0.019"), "-0.01");
        assert_eq!(usd("-0.001"), "0.00");
        assert_eq!(usd("7"), "7.00");
        assert_eq!(usd("1000000"), "1,000,000.00");
        assert_eq!(whole_units("1234500000", 6), "1,234.5");
        assert_eq!(whole_units("5", 6), "0.000005");
        assert_eq!(whole_units("0", 6), "0");
        assert_eq!(whole_units("12", 0), "12");
        assert_eq!(health_factor_text("0.95"), "0.95");
        assert_eq!(health_factor_text("1.0099990000000001"), "1.009999");
        assert_eq!(health_factor_text("1.0339989999999999"), "1.033999");
        assert_eq!(health_factor_text("1"), "1");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(parse_addr("off").unwrap(), None);
        assert_eq!(
            parse_addr("127.0.0.1:9300").unwrap(),
            Some("127.0.0.1:9300".parse().unwrap())
        );
        assert!(parse_addr("localhost")
            .unwrap_err()
            .contains("--dashboard-addr"));
    }

    fn block(height: u64, status: BlockStatus, accounts: u64, checked: u64) -> BlockRecord {
        BlockRecord {
            height,
            arrived_at_ms: 0,
            interval_ms: None,
            status,
            jobs: 1,
            accounts,
            accounts_checked: checked,
            jobs_missed: u64::from(status == BlockStatus::Late),
            lag_ms: Some(120),
            liquidations_queued: 0,
            liquidations_done: 0,
            health_checkers: 2,
            liquidators: 1,
        }
    }

    #[test]
    fn the_page_shows_every_figure_escaped() {
        let snapshot = Snapshot {
            generated_at_ms: 1_700_000_000_000,
            chain_id: "devnet<1>".into(),
            status: "ok".into(),
            backend: "process".into(),
            current_block: Some(CurrentBlock {
                height: 42,
                arrived_at_ms: 1_699_999_999_000,
                age_ms: 1_000,
                last_closed: Some(41),
                last_closed_status: Some(BlockStatus::OnTime),
                last_closed_lag_ms: Some(120),
            }),
            blocks: vec![
                block(40, BlockStatus::Late, 100, 60),
                block(41, BlockStatus::OnTime, 100, 100),
            ],
            block_summary: BlockSummary {
                blocks: 2,
                on_time: 1,
                missed: 1,
                accounts_checked: 160,
                jobs_missed: 1,
            },
            near_liquidation: NearLiquidation {
                total: 3,
                liquidatable: 1,
                accounts: vec![NearAccount {
                    account: "osmo1<script>".into(),
                    health_factor: "0.95".into(),
                }],
            },
            liquidations: Liquidations {
                count: 2,
                profit_usd: "12.3456".into(),
                recent: vec![LiquidationRow {
                    height: 41,
                    account: "osmo1acc".into(),
                    debt_repaid: "100000000".into(),
                    debt_denom: "uusdc".into(),
                    collateral_received: "15".into(),
                    collateral_denom: "uatom".into(),
                    profit_usd: "6.1".into(),
                    tx_hash: "ABCDEF0123456789".into(),
                    worker_slot: 1,
                }],
            },
            wallets: vec![WalletBalances {
                address: "osmo1wallet".into(),
                slot: 1,
                balances: BTreeMap::from([("uusdc".into(), "2500000".into())]),
                height: 41,
                updated_at_ms: 1_699_999_998_000,
            }],
            capital: Capital {
                waiting: 7,
                short: redline_pipeline::capital::CapitalTotal {
                    wallets: 2,
                    waiting: 7,
                    missing: BTreeMap::from([("uusdc".into(), Uint128::new(1_500_000))]),
                },
            },
            ..Snapshot::default()
        };
        let mut config = DashboardConfig::new("redline", "devnet-1", "a".into());
        config.decimals.insert("uusdc".into(), 6);
        let html = render(&snapshot, &config);
        assert!(html.contains("<div class=\"value\" id=\"block-height\">42</div>"));
        assert!(html.contains("id=\"liquidations-count\">2<"));
        assert!(html.contains("data-exact=\"12.3456\">12.34<"));
        assert!(html.contains("id=\"blocks-missed\">1<"));
        assert!(html.contains("data-amount=\"2500000\""));
        assert_eq!(
            short_address("osmo1r5v5srda7xfth3hn2s26txvrcrntldjuns5tpd"),
            "osmo1r5v5srd…ns5tpd"
        );
        assert!(html.contains(">2.5</td>"));
        assert!(html.contains("<span id=\"capital-waiting\">7</span>"));
        assert!(html.contains("title=\"1500000uusdc (base units)\">1.5 "));
        assert!(html.contains("osmo1&lt;script&gt;"));
        assert!(!html.contains("osmo1<script>"));
        assert!(html.contains("devnet&lt;1&gt;"));
        assert!(html.contains("class=\"block late\" data-height=\"40\""));
        assert!(html.contains("class=\"health-checkers\""));
        assert!(html.contains("data-tx=\"ABCDEF0123456789\""));
        assert!(html.contains(">100 <span class=\"muted\">uusdc</span>"));
        assert!(html.contains(">15 <span class=\"muted\">uatom</span>"));
        let json = serde_json::to_string(&snapshot).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), snapshot);
    }
}
