//! Discovery: a full scan of the Red Bank's state into the index, on start with an empty index
//! and whenever the index is too far behind for the node's block history.
//!
//! The scan reads the node's latest state while blocks keep coming, so it records the height
//! `H` *before* scanning and marks the index complete at `H`: the blocks after `H` are then
//! replayed as usual, and every account they touch is re-read — so an account that changed
//! during the scan ends up current either way.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::builder::RangedU64ValueParser;
use clap::Args;
use cosmwasm_std::Timestamp;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use redline_chain::{ChainClient, ScanOptions};
use redline_pipeline::index::{AccountChange, AccountPositions, BlockUpdate, IndexedAccount};
use redline_protocol::{Discovery, MarketInputs, ScanSettings};
use tracing::{info, info_span, warn, Instrument};

use crate::service::{Collector, IndexProgress};

#[derive(Debug, Clone, Args)]
#[group(id = "discovery")]
pub struct Config {
    /// Entries per AllContractState page in full scans.
    #[arg(long, env = "SCAN_PAGE_SIZE", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub scan_page_size: u32,
    /// AllContractState pages in flight at once in full scans.
    #[arg(long, env = "SCAN_CONCURRENCY", default_value_t = 8,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub scan_concurrency: usize,
    /// Smart queries in flight at once when re-reading accounts.
    #[arg(long, env = "QUERY_CONCURRENCY", default_value_t = 16,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub query_concurrency: usize,
    /// Never draw a progress bar (one is drawn during scans when stderr is a terminal;
    /// progress is logged either way).
    #[arg(long, env = "NO_PROGRESS_BAR")]
    pub no_progress_bar: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scan_page_size: 1_000,
            scan_concurrency: 8,
            query_concurrency: 16,
            no_progress_bar: false,
        }
    }
}

impl Config {
    pub fn scan_settings(&self) -> ScanSettings {
        ScanSettings {
            scan: ScanOptions {
                page_size: self.scan_page_size,
                concurrency: self.scan_concurrency,
                height: None,
            },
            query_concurrency: self.query_concurrency,
        }
    }
}

/// Progress of a long scan: a bar on a terminal, log lines always (phases, and every few
/// seconds while writing).
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Mutex<Instant>,
    what: &'static str,
}

impl Progress {
    pub fn new(what: &'static str, draw: bool) -> Self {
        let bar = (draw && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
            what,
        }
    }

    pub fn phase(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
        info!(
            scan = self.what,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "{message}"
        );
    }

    pub fn start_counting(&self, total: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {msg} {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
        self.phase(message);
    }

    pub fn advance(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            info!(scan = self.what, done, total, "writing accounts");
        }
    }

    pub fn finish(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        info!(
            scan = self.what,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "{message}"
        );
    }
}

/// What a full rescan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescanReport {
    /// The height the index was marked complete at.
    pub height: u64,
    pub accounts: usize,
    /// Index entries written or removed to match the chain.
    pub changes: usize,
    pub duration: Duration,
}

/// Accounts converted and written per step of a bulk load.
const BULK_STEP: usize = 10_000;

/// What a rescan reads besides the accounts: the state the index is marked complete with.
struct ScannedState {
    height: u64,
    time: Timestamp,
    inputs: MarketInputs,
}

impl ScannedState {
    /// The one atomic step that applies `accounts` and marks the index complete at the scan's
    /// height.
    fn block_update(self, accounts: Vec<AccountChange>) -> BlockUpdate {
        BlockUpdate {
            height: self.height,
            time: Some(self.time),
            accounts,
            markets: self.inputs.markets,
            params: self.inputs.params,
            target_health_factor: Some(self.inputs.target_health_factor),
            reconciled: true,
        }
    }
}

impl<C: ChainClient + Clone + 'static> Collector<C> {
    /// Scans the whole Red Bank and makes the index equal to it, complete at the height read
    /// before the scan. Runs with the index lock held (`progress`).
    pub(crate) async fn full_rescan(
        &self,
        progress: &mut IndexProgress,
        reason: &'static str,
    ) -> anyhow::Result<RescanReport> {
        let span = info_span!("full_rescan", reason);
        async move {
            let started = Instant::now();
            let inner = &self.inner;
            let shown = Progress::new(reason, !inner.config.discovery.no_progress_bar);
            let (scan, state) = self.scan_for_rescan(reason, &shown).await?;
            let (height, time) = (state.height, state.time);
            let indexed_before = inner.index.account_count().await?;
            let changes = if indexed_before == 0 {
                self.bulk_load(scan.accounts, state, &shown).await?
            } else {
                self.repair_index(&scan.accounts, state).await?
            };
            progress.last_indexed = Some(height);
            progress.last_block_time = Some(time);
            progress.last_reconciled = Some(height);
            self.finish_rescan(height, changes, started, &shown).await
        }
        .instrument(span)
        .await
    }

    /// Every debtor, and the state around them, as of the height read before the scan.
    async fn scan_for_rescan(
        &self,
        reason: &'static str,
        shown: &Progress,
    ) -> anyhow::Result<(Discovery, ScannedState)> {
        let inner = &self.inner;
        let height = inner
            .client
            .latest_height()
            .await
            .context("reading the chain height before the scan")?;
        anyhow::ensure!(height > 0, "the chain has not committed a block yet");
        shown.phase(&format!(
            "full scan of the Red Bank from height {height} ({reason})"
        ));
        let scan = self.discover(&|message| shown.phase(message)).await?;
        let (inputs, time) = futures::try_join!(
            async {
                inner
                    .red_bank
                    .read_inputs(None)
                    .await
                    .context("reading the markets, params and prices")
            },
            async {
                inner
                    .client
                    .block_time(height)
                    .await
                    .context("reading the scan height's block time")
            },
        )?;
        shown.phase(&format!(
            "scanned {} debt and {} collateral entries: {} debtors, {} markets",
            scan.debt_entries,
            scan.collateral_entries,
            scan.accounts.len(),
            inputs.markets.len()
        ));
        let state = ScannedState {
            height,
            time,
            inputs,
        };
        Ok((scan, state))
    }

    /// Fills an empty index: accounts in steps, then the completion mark in one atomic step.
    /// Returns the number of accounts written.
    async fn bulk_load(
        &self,
        accounts: BTreeMap<String, AccountPositions>,
        state: ScannedState,
        shown: &Progress,
    ) -> anyhow::Result<usize> {
        let index = &self.inner.index;
        let total = accounts.len();
        shown.start_counting(total as u64, "writing the index");
        let accounts: Vec<_> = accounts.into_values().collect();
        let mut written = 0usize;
        for chunk in accounts.chunks(BULK_STEP) {
            let mut indexed: Vec<IndexedAccount> = Vec::with_capacity(chunk.len());
            for account in chunk {
                indexed.push(index.to_indexed(account).await?);
            }
            index
                .put_accounts(&indexed)
                .await
                .context("writing discovered accounts")?;
            written += chunk.len();
            shown.advance(written as u64, total as u64);
        }
        index.apply_block(&state.block_update(Vec::new())).await?;
        Ok(total)
    }

    /// Entries exist (a rescan after a gap, or an interrupted discovery): repairs the
    /// differences in one atomic step. Returns the number of entries written or removed.
    async fn repair_index(
        &self,
        chain: &BTreeMap<String, AccountPositions>,
        state: ScannedState,
    ) -> anyhow::Result<usize> {
        let drift = self.diff_with_index(chain, &Default::default()).await?;
        if !drift.is_empty() {
            warn!(
                missing = drift.missing.len(),
                stale = drift.stale.len(),
                extra = drift.extra.len(),
                undecodable = drift.undecodable.len(),
                "full rescan found the index out of date"
            );
        }
        let count = drift.changes.len();
        self.inner
            .index
            .apply_block(&state.block_update(drift.changes))
            .await?;
        Ok(count)
    }

    /// The metrics, last log line and report of a rescan complete at `height`.
    async fn finish_rescan(
        &self,
        height: u64,
        changes: usize,
        started: Instant,
        shown: &Progress,
    ) -> anyhow::Result<RescanReport> {
        let inner = &self.inner;
        let accounts = inner.index.account_count().await?;
        inner.metrics.accounts_indexed.set(accounts as i64);
        inner.metrics.last_indexed_height.set(height as i64);
        inner.metrics.full_rescans.inc();
        inner
            .metrics
            .scan_seconds
            .observe(started.elapsed().as_secs_f64());
        let report = RescanReport {
            height,
            accounts: accounts as usize,
            changes,
            duration: started.elapsed(),
        };
        shown.finish(&format!(
            "index complete at height {height}: {accounts} accounts, {changes} written or removed, {:.1} s",
            report.duration.as_secs_f64()
        ));
        Ok(report)
    }
}
