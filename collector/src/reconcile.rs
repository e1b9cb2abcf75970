//! Periodic reconciliation: a full scan compared with the index, with every difference
//! reported (log + metric) and repaired.
//!
//! It runs beside block following. The scan reads the chain's latest state while blocks keep
//! coming, so accounts that any block touched since the scan started are left out of the
//! comparison (block processing re-read them after the scan, so their entries are newer than
//! the scan's). Every other account did not change on chain during the scan: any difference is
//! real drift.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use redline_chain::ChainClient;
use redline_pipeline::index::{AccountChange, AccountPositions, BlockUpdate};
use tracing::{info, info_span, warn, Instrument};

use crate::service::Collector;

#[derive(Debug, Clone, Args)]
#[group(id = "reconcile")]
pub struct Config {
    /// Blocks between reconciliation scans (full scan compared with the index, drift repaired);
    /// 0 turns reconciliation off.
    #[arg(long, env = "RECONCILE_EVERY_BLOCKS", default_value_t = 600)]
    pub reconcile_every_blocks: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reconcile_every_blocks: 600,
        }
    }
}

/// Differences between the chain and the index.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    /// Debtors on chain the index lacks.
    pub missing: Vec<String>,
    /// Indexed with other positions than on chain.
    pub stale: Vec<String>,
    /// Indexed but without debt on chain.
    pub extra: Vec<String>,
    /// Index entries that could not be decoded.
    pub undecodable: Vec<String>,
    /// The repairs.
    pub changes: Vec<AccountChange>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn total(&self) -> usize {
        self.missing.len() + self.stale.len() + self.extra.len() + self.undecodable.len()
    }
}

/// What one reconciliation found.
#[derive(Debug, Clone, Default)]
pub struct ReconcileReport {
    /// The index height the repair was applied at.
    pub height: u64,
    pub scanned_accounts: usize,
    /// Accounts left out because a block touched them during the scan.
    pub skipped_touched: usize,
    pub missing: Vec<String>,
    pub stale: Vec<String>,
    pub extra: Vec<String>,
    pub undecodable: Vec<String>,
}

impl ReconcileReport {
    pub fn drift(&self) -> usize {
        self.missing.len() + self.stale.len() + self.extra.len() + self.undecodable.len()
    }
}

/// Drifted accounts logged one by one (the rest are counted).
const LOGGED_DRIFT: usize = 100;

impl<C: ChainClient + Clone + 'static> Collector<C> {
    /// Compares `chain` (every debtor, from a scan) with the index, leaving out `skip`.
    pub(crate) async fn diff_with_index(
        &self,
        chain: &BTreeMap<String, AccountPositions>,
        skip: &BTreeSet<String>,
    ) -> anyhow::Result<Drift> {
        let index = &self.inner.index;
        let read = index
            .read_buckets(0..index.buckets())
            .await
            .context("reading the whole index")?;
        let mut drift = Drift::default();
        let mut indexed: HashMap<String, AccountPositions> =
            HashMap::with_capacity(read.accounts.len());
        let mut undecodable: BTreeSet<String> = read
            .errors
            .iter()
            .map(|e| {
                warn!(bucket = e.bucket, account = %e.address, reason = %e.reason, "undecodable index entry");
                e.address.clone()
            })
            .collect();
        self.inner
            .metrics
            .decode_errors
            .with_label_values(&["index_entry"])
            .inc_by(read.errors.len() as u64);
        for account in read.accounts {
            match account.to_positions(&read.denoms) {
                Ok(positions) => {
                    indexed.insert(account.address, positions);
                }
                Err(e) => {
                    warn!(account = %account.address, error = %e, "undecodable index entry");
                    undecodable.insert(account.address);
                }
            }
        }
        for address in &undecodable {
            if skip.contains(address) {
                continue;
            }
            drift.undecodable.push(address.clone());
            drift.changes.push(match chain.get(address) {
                Some(positions) => AccountChange::Put(index.to_indexed(positions).await?),
                None => AccountChange::Remove(address.clone()),
            });
        }
        for (address, positions) in chain {
            if skip.contains(address) || undecodable.contains(address) {
                continue;
            }
            match indexed.get(address) {
                Some(current) if current == positions => continue,
                Some(_) => drift.stale.push(address.clone()),
                None => drift.missing.push(address.clone()),
            }
            drift
                .changes
                .push(AccountChange::Put(index.to_indexed(positions).await?));
        }
        let mut extra: Vec<String> = indexed
            .into_keys()
            .filter(|a| !chain.contains_key(a) && !skip.contains(a))
            .collect();
        extra.sort();
        for address in extra {
            drift.changes.push(AccountChange::Remove(address.clone()));
            drift.extra.push(address);
        }
        Ok(drift)
    }

    /// One reconciliation: scan, catch the index up past the scan, compare the accounts no
    /// block touched meanwhile, repair. Safe to run while blocks are being followed.
    pub async fn reconcile(&self) -> anyhow::Result<ReconcileReport> {
        anyhow::ensure!(
            !self.inner.reconciling.swap(true, Ordering::SeqCst),
            "a reconciliation is already running"
        );
        let result = self.reconcile_claimed().await;
        self.inner.reconciling.store(false, Ordering::SeqCst);
        result
    }

    /// [`Collector::reconcile`] once this caller owns the `reconciling` flag.
    async fn reconcile_claimed(&self) -> anyhow::Result<ReconcileReport> {
        let inner = &self.inner;
        {
            let mut progress = inner.progress.lock().await;
            anyhow::ensure!(
                progress.last_indexed.is_some(),
                "reconciliation needs a discovered index"
            );
            progress.touched_since_scan = Some(BTreeSet::new());
        }
        let result = self
            .reconcile_inner()
            .instrument(info_span!("reconcile"))
            .await;
        if result.is_err() {
            inner.progress.lock().await.touched_since_scan = None;
        }
        result
    }

    async fn reconcile_inner(&self) -> anyhow::Result<ReconcileReport> {
        let inner = &self.inner;
        let started = Instant::now();
        info!("reconciliation scan started");
        let scan = self
            .discover(&|message| tracing::debug!("{message}"))
            .await?;
        // Blocks committed during the scan: index them first, so every account they touched
        // is current and known to be skipped.
        let tip = inner
            .client
            .latest_height()
            .await
            .context("reading the chain height after the scan")?;
        self.catch_up_to(tip).await?;

        let mut progress = inner.progress.lock().await;
        let touched = progress.touched_since_scan.take().unwrap_or_default();
        let height = progress
            .last_indexed
            .context("the index lost its height during reconciliation")?;
        let drift = self.diff_with_index(&scan.accounts, &touched).await?;
        let metrics = &inner.metrics;
        for (kind, accounts) in [
            ("missing", &drift.missing),
            ("stale", &drift.stale),
            ("extra", &drift.extra),
            ("undecodable", &drift.undecodable),
        ] {
            metrics
                .drift_repaired
                .with_label_values(&[kind])
                .inc_by(accounts.len() as u64);
            for account in accounts.iter().take(LOGGED_DRIFT) {
                warn!(%account, kind, height, "index drift repaired");
            }
            if accounts.len() > LOGGED_DRIFT {
                warn!(
                    kind,
                    more = accounts.len() - LOGGED_DRIFT,
                    "further drifted accounts repaired"
                );
            }
        }
        inner
            .index
            .apply_block(&BlockUpdate {
                height,
                accounts: drift.changes.clone(),
                reconciled: true,
                ..Default::default()
            })
            .await
            .context("repairing index drift")?;
        progress.last_reconciled = Some(height);
        let accounts = inner.index.account_count().await?;
        metrics.accounts_indexed.set(accounts as i64);
        metrics.reconciliations.inc();
        metrics
            .scan_seconds
            .observe(started.elapsed().as_secs_f64());
        let report = ReconcileReport {
            height,
            scanned_accounts: scan.accounts.len(),
            skipped_touched: touched.len(),
            missing: drift.missing,
            stale: drift.stale,
            extra: drift.extra,
            undecodable: drift.undecodable,
        };
        info!(
            height,
            scanned = report.scanned_accounts,
            skipped_touched = report.skipped_touched,
            drift = report.drift(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reconciliation done"
        );
        Ok(report)
    }

    /// Starts a reconciliation in the background when one is due and none is running.
    pub(crate) async fn maybe_spawn_reconcile(&self) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.inner.config.reconcile.reconcile_every_blocks;
        if every == 0 {
            return None;
        }
        let (last, reconciled) = {
            let progress = self.inner.progress.lock().await;
            (
                progress.last_indexed?,
                progress.last_reconciled.unwrap_or(0),
            )
        };
        if last.saturating_sub(reconciled) < every {
            return None;
        }
        if self.inner.reconciling.swap(true, Ordering::SeqCst) {
            return None;
        }
        let collector = self.clone();
        Some(tokio::spawn(async move {
            if let Err(e) = collector.reconcile_claimed().await {
                warn!(
                    error = format!("{e:#}"),
                    "reconciliation failed; retrying at the next interval"
                );
                // Try again a full interval later rather than on every block.
                let mut progress = collector.inner.progress.lock().await;
                progress.last_reconciled = progress.last_indexed;
            }
            collector.inner.reconciling.store(false, Ordering::SeqCst);
        }))
    }
}
