//! Block by block: each block's Red Bank events name the accounts it touched; those are re-read
//! and written with the block's height in one atomic step. At the chain tip the block's snapshot
//! (prices, markets, params) is written and its health-check jobs are enqueued.
//!
//! The same path catches up after a restart (from the recorded height + 1), unless the node no
//! longer keeps those blocks: then a full rescan rebuilds the index.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use cosmwasm_std::{Decimal, Timestamp};
use futures::{FutureExt as _, StreamExt as _};
use mars::msg::oracle::ActionKind;
use mars::types::{AssetParams, Market};
use redline_chain::{ChainClient, ChainError};
use redline_pipeline::index::{AccountChange, BlockSnapshot, BlockUpdate};
use redline_pipeline::queue::Queue as _;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::enqueue::plan_jobs;
use crate::red_bank_scan;
use crate::service::{Collector, IndexProgress, PROTOCOL};
use redline_protocol::red_bank::events;

/// What a block snapshot holds besides the index.
#[derive(Debug, Clone)]
pub(crate) struct TipData {
    pub height: u64,
    pub time: Timestamp,
    pub markets: Vec<Market>,
    pub params: Vec<AssetParams>,
    pub target_health_factor: Decimal,
    pub prices: BTreeMap<String, Decimal>,
    pub liquidation_prices: BTreeMap<String, Decimal>,
}

#[derive(Debug, Clone, Args)]
#[group(id = "follow")]
pub struct Config {
    /// Catch up block by block over at most this many blocks; a longer gap is closed with a full
    /// rescan (as is any gap reaching below the node's oldest kept block).
    #[arg(long, env = "MAX_CATCH_UP_BLOCKS", default_value_t = 50_000)]
    pub max_catch_up_blocks: u64,
    /// Longest wait between retries after a failed block (RPC or Redis away), in milliseconds.
    #[arg(long, env = "MAX_RETRY_DELAY_MS", default_value_t = 30_000)]
    pub max_retry_delay_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_catch_up_blocks: 50_000,
            max_retry_delay_ms: 30_000,
        }
    }
}

/// What one block did to the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockReport {
    pub height: u64,
    pub red_bank_events: usize,
    pub accounts_put: usize,
    pub accounts_removed: usize,
    /// Jobs enqueued (0 for blocks indexed while catching up).
    pub jobs: usize,
}

fn is_transient(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref::<ChainError>(), Some(e) if e.is_transient()))
}

/// The node has committed no block yet (the collector started before the chain's first block).
fn is_no_block_yet(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref::<ChainError>(), Some(e) if e.is_no_block_yet()))
}

/// How often a collector started before the chain's first block asks again.
const FIRST_BLOCK_POLL: Duration = Duration::from_millis(500);

impl<C: ChainClient + Clone + 'static> Collector<C> {
    /// Brings the index to `target` (discovering first when it was never built). The last
    /// block it indexes gets a snapshot and jobs.
    pub async fn catch_up_to(&self, target: u64) -> anyhow::Result<()> {
        if target == 0 {
            // No block committed yet: nothing to index at.
            return Ok(());
        }
        let mut progress = self.inner.progress.lock().await;
        self.rebuild_if_index_lost(&mut progress).await?;
        let mut checked_history = false;
        loop {
            let Some(last) = progress.last_indexed else {
                self.rescan_and_publish(&mut progress, "discovery", target)
                    .await?;
                continue;
            };
            if last >= target {
                return Ok(());
            }
            let next = last + 1;
            if !checked_history && target - last > 1 {
                checked_history = true;
                let earliest = self
                    .inner
                    .client
                    .earliest_height()
                    .await
                    .context("reading the node's oldest kept block")?;
                let max = self.inner.config.follow.max_catch_up_blocks;
                if next < earliest || target - last > max {
                    warn!(
                        last_indexed = last,
                        target,
                        node_earliest = earliest,
                        max_catch_up_blocks = max,
                        "index too far behind to replay blocks; rebuilding it with a full rescan"
                    );
                    self.rescan_and_publish(&mut progress, "history gap", target)
                        .await?;
                    continue;
                }
                info!(from = next, to = target, "catching up");
            }
            match self.index_block(&mut progress, next, next == target).await {
                Ok(report) => {
                    self.inner
                        .metrics
                        .index_lag_blocks
                        .set((target - next) as i64);
                    debug!(?report, "block indexed");
                }
                Err(e) => {
                    // A block the node pruned meanwhile: nothing to replay, rebuild instead.
                    let earliest = self.inner.client.earliest_height().await.ok();
                    if earliest.is_some_and(|earliest| next < earliest) {
                        warn!(
                            height = next,
                            error = format!("{e:#}"),
                            "block no longer on the node; rebuilding the index"
                        );
                        self.rescan_and_publish(&mut progress, "history gap", target)
                            .await?;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Redis can lose the index under a running collector (restarted without persistence,
    /// failed over to an empty replica). Replaying block deltas onto nothing would leave an
    /// empty index that every later block confirms, so when the meta hash is gone (or records
    /// no indexed block) while this process remembers one, the meta is re-created and the next
    /// step is a full discovery rescan.
    async fn rebuild_if_index_lost(&self, progress: &mut IndexProgress) -> anyhow::Result<()> {
        let Some(remembered) = progress.last_indexed else {
            return Ok(());
        };
        let lost = match self.inner.index.meta().await {
            Err(redline_pipeline::index::IndexError::NotCreated(_)) => true,
            Ok(meta) => meta.last_indexed_height.is_none(),
            Err(error) => return Err(error).context("reading the index meta"),
        };
        if lost {
            warn!(
                last_indexed = remembered,
                "the index is gone from Redis (restarted empty?); rebuilding it with a full rescan"
            );
            self.inner
                .index
                .recreate_meta()
                .await
                .context("re-creating the lost index")?;
            progress.last_indexed = None;
            progress.last_reconciled = None;
        }
        Ok(())
    }

    /// A full rescan; when it lands at or past `target` (nothing left to replay), that height is
    /// published like a tip block, so health checks start right away.
    async fn rescan_and_publish(
        &self,
        progress: &mut IndexProgress,
        reason: &'static str,
        target: u64,
    ) -> anyhow::Result<()> {
        let report = self.full_rescan(progress, reason).await?;
        if report.height >= target {
            let time = progress
                .last_block_time
                .context("a rescan records its block time")?;
            let tip = self.read_tip_data(report.height, time).await?;
            self.publish_block(tip).await?;
        }
        Ok(())
    }

    /// Indexes block `height` (the next one), under the index lock.
    pub(crate) async fn index_block(
        &self,
        progress: &mut IndexProgress,
        height: u64,
        at_tip: bool,
    ) -> anyhow::Result<BlockReport> {
        let span = info_span!("block", height);
        async move {
            let started = Instant::now();
            let inner = &self.inner;
            let results = inner
                .client
                .block_results(height)
                .await
                .with_context(|| format!("reading the results of block {height}"))?;
            let touches = events::touches(&results, &inner.contracts.red_bank);
            for (tx, action) in &touches.unknown {
                warn!(%tx, action, "Red Bank event with an unknown action; re-reading the accounts it names");
                inner.metrics.unknown_events.inc();
            }

            let addresses: Vec<String> = touches.accounts.iter().cloned().collect();
            let (reads, fresh) = tokio::join!(
                red_bank_scan::read_accounts(
                    &inner.client,
                    &inner.contracts,
                    &addresses,
                    inner.config.discovery.query_concurrency,
                ),
                async {
                    if at_tip {
                        self.read_tip_data(height, results.time)
                            .await
                            .map(|tip| (Some(tip.markets.clone()), Some(tip)))
                    } else if touches.touched_red_bank() {
                        red_bank_scan::markets(&inner.client, &inner.contracts)
                            .await
                            .map(|markets| (Some(markets), None))
                    } else {
                        Ok((None, None))
                    }
                },
            );
            let (markets, tip_data) = fresh?;

            let mut changes = Vec::with_capacity(reads.len());
            let mut refreshed = Vec::with_capacity(reads.len());
            for (address, read) in reads {
                match read {
                    Ok(positions) if positions.has_debt() => {
                        changes.push(AccountChange::Put(inner.index.to_indexed(&positions).await?));
                        refreshed.push(address);
                    }
                    Ok(_) => {
                        changes.push(AccountChange::Remove(address.clone()));
                        refreshed.push(address);
                    }
                    // The node is away: retry the block rather than index it half-read.
                    Err(e) if is_transient(&e) => return Err(e),
                    Err(e) => {
                        // A name in an event the Red Bank cannot answer for (not an address,
                        // say): nothing to index for it.
                        warn!(account = %address, error = format!("{e:#}"), "cannot re-read an account named in a Red Bank event");
                        inner.metrics.account_read_errors.inc();
                    }
                }
            }
            let report = BlockReport {
                height,
                red_bank_events: touches.red_bank_events,
                accounts_put: changes
                    .iter()
                    .filter(|c| matches!(c, AccountChange::Put(_)))
                    .count(),
                accounts_removed: changes
                    .iter()
                    .filter(|c| matches!(c, AccountChange::Remove(_)))
                    .count(),
                jobs: 0,
            };
            let (params, thf) = match &tip_data {
                Some(tip) => (tip.params.clone(), Some(tip.target_health_factor)),
                None => (Vec::new(), None),
            };
            inner
                .index
                .apply_block(&BlockUpdate {
                    height,
                    time: Some(results.time),
                    accounts: changes,
                    markets: markets.unwrap_or_default(),
                    params,
                    target_health_factor: thf,
                    reconciled: false,
                })
                .await?;
            progress.last_indexed = Some(height);
            progress.last_block_time = Some(results.time);
            if let Some(touched) = progress.touched_since_scan.as_mut() {
                touched.extend(refreshed.iter().cloned());
            }
            let metrics = &inner.metrics;
            metrics.blocks_indexed.inc();
            metrics.last_indexed_height.set(height as i64);
            metrics.accounts_refreshed.inc_by(refreshed.len() as u64);
            for (action, count) in &touches.actions {
                metrics
                    .events_applied
                    .with_label_values(&[action.as_str()])
                    .inc_by(*count);
            }

            let mut report = report;
            if let Some(tip) = tip_data {
                report.jobs = self.publish_block(tip).await?;
            }
            metrics.block_seconds.observe(started.elapsed().as_secs_f64());
            if report.red_bank_events > 0 || report.jobs > 0 {
                debug!(
                    events = report.red_bank_events,
                    put = report.accounts_put,
                    removed = report.accounts_removed,
                    jobs = report.jobs,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "block indexed"
                );
            }
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Reads what a snapshot needs at the node's latest state (markets, params, THF, both
    /// price kinds).
    pub(crate) async fn read_tip_data(
        &self,
        height: u64,
        time: Timestamp,
    ) -> anyhow::Result<TipData> {
        let inner = &self.inner;
        let (markets, params, target_health_factor, prices, liquidation_prices) = futures::try_join!(
            red_bank_scan::markets(&inner.client, &inner.contracts),
            red_bank_scan::asset_params(&inner.client, &inner.contracts),
            red_bank_scan::target_health_factor(&inner.client, &inner.contracts),
            red_bank_scan::prices(&inner.client, &inner.contracts, ActionKind::Default),
            red_bank_scan::prices(&inner.client, &inner.contracts, ActionKind::Liquidation),
        )?;
        Ok(TipData {
            height,
            time,
            markets,
            params,
            target_health_factor,
            prices,
            liquidation_prices,
        })
    }

    /// Writes block `tip.height`'s snapshot, then enqueues its jobs (in that order: a job never
    /// refers to a missing snapshot). Returns the number of jobs.
    pub(crate) async fn publish_block(&self, tip: TipData) -> anyhow::Result<usize> {
        let inner = &self.inner;
        let height = tip.height;
        let sizes = inner.index.bucket_sizes().await?;
        let accounts: u64 = sizes.iter().sum();
        inner.metrics.accounts_indexed.set(accounts as i64);
        let snapshot = BlockSnapshot {
            chain_id: inner.chain_id.clone(),
            protocol: PROTOCOL,
            height,
            time: tip.time,
            prices: tip.prices,
            liquidation_prices: tip.liquidation_prices,
            markets: tip.markets,
            params: tip.params,
            target_health_factor: tip.target_health_factor,
            accounts,
        };
        inner
            .index
            .write_block_snapshot(&snapshot, inner.config.enqueue.snapshot_ttl())
            .await?;
        let jobs = plan_jobs(
            &inner.chain_id,
            PROTOCOL,
            height,
            &sizes,
            inner.config.enqueue.job_size,
        );
        inner
            .queue
            .enqueue_batch(&jobs)
            .await
            .with_context(|| format!("enqueueing the jobs of block {height}"))?;
        inner.metrics.jobs_enqueued.inc_by(jobs.len() as u64);
        Ok(jobs.len())
    }

    /// Whether the node has block `height` (false only when it says it has no block yet; other
    /// errors are left to the indexing that follows, with its warnings and back-off).
    async fn has_block(&self, height: u64) -> bool {
        match self.inner.client.block_time(height).await {
            Err(e) => !e.is_no_block_yet(),
            Ok(_) => true,
        }
    }

    /// Follows the chain until `shutdown` resolves: catch up, then index each new block;
    /// failures are logged and retried with backoff; reconciliations run beside it.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let inner = &self.inner;
        let max_delay = Duration::from_millis(inner.config.follow.max_retry_delay_ms.max(100));
        let mut delay = Duration::from_millis(100);
        let mut blocks = inner.client.subscribe_blocks();
        let mut tip: Option<u64> = None;
        let mut waiting_for_first_block = false;
        let mut reconcile_task: Option<tokio::task::JoinHandle<()>> = None;
        let health = {
            let collector = self.clone();
            tokio::spawn(async move {
                loop {
                    collector.report_health(None).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let outcome = loop {
            let target = match tip {
                Some(tip) => tip,
                None => {
                    let latest = tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        latest = inner.client.latest_height() => latest,
                    };
                    match latest {
                        // Before the chain's first block a node may report height 1 (CometBFT
                        // and the devnet do) without having it: wait for it quietly, before a
                        // discovery scan that could not finish.
                        Ok(height) if height == 1 && !self.has_block(height).await => {
                            log_waiting_for_first_block(&mut waiting_for_first_block, "");
                            tokio::select! {
                                _ = &mut shutdown => break Ok(()),
                                _ = tokio::time::sleep(FIRST_BLOCK_POLL) => {}
                            }
                            continue;
                        }
                        Ok(height) => {
                            tip = Some(height);
                            height
                        }
                        Err(e) => {
                            warn!(error = %e, "cannot read the chain height; retrying");
                            tokio::select! {
                                _ = &mut shutdown => break Ok(()),
                                _ = tokio::time::sleep(delay) => {}
                            }
                            delay = (delay * 2).min(max_delay);
                            continue;
                        }
                    }
                }
            };
            let caught_up = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                result = self.catch_up_to(target) => result,
            };
            match caught_up {
                Ok(()) => delay = Duration::from_millis(100),
                // Not a failure: a quiet wait (one line), at a steady pace rather than a
                // growing back-off, so that indexing starts right after the first block.
                Err(e) if is_no_block_yet(&e) => {
                    log_waiting_for_first_block(&mut waiting_for_first_block, &format!("{e:#}"));
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = tokio::time::sleep(FIRST_BLOCK_POLL) => {}
                    }
                    continue;
                }
                Err(e) => {
                    warn!(
                        target,
                        error = format!("{e:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "indexing failed; retrying"
                    );
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(max_delay);
                    continue;
                }
            }
            self.report_health(Some(target)).await;
            if reconcile_task.as_ref().is_none_or(|t| t.is_finished()) {
                reconcile_task = self.maybe_spawn_reconcile().await.or(reconcile_task);
            }
            // Wait for the next block, then skip to the newest one already announced.
            let next = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                next = blocks.next() => next,
            };
            match next {
                Some(block) => tip = Some(block.height.max(target)),
                None => {
                    warn!("block feed ended; subscribing again");
                    blocks = inner.client.subscribe_blocks();
                    tip = None;
                    continue;
                }
            }
            while let Some(Some(block)) = blocks.next().now_or_never() {
                tip = tip.max(Some(block.height));
            }
            if let Some(tip) = tip {
                let last = inner.progress.lock().await.last_indexed.unwrap_or(0);
                inner
                    .metrics
                    .index_lag_blocks
                    .set(tip.saturating_sub(last) as i64);
            }
        };
        health.abort();
        if let Some(task) = reconcile_task {
            task.abort();
        }
        info!("collector stopped");
        outcome
    }
}
/// Waiting for the chain's first block is no failure: one INFO line the first time, debug
/// after (with `detail` when there is one).
fn log_waiting_for_first_block(waiting: &mut bool, detail: &str) {
    if *waiting {
        debug!(detail, "still no block on the chain");
    } else {
        info!("waiting for the chain's first block");
        *waiting = true;
    }
}
