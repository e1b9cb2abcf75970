//! Block by block: each block's Red Bank events name the accounts it touched; those are re-read
//! and written with the block's height in one atomic step. At the chain tip the block's snapshot
//! (prices, markets, params) is written and its health-check jobs are enqueued.
//!
//! The same path catches up after a restart (from the recorded height + 1), unless the node no
//! longer keeps those blocks: then a full rescan rebuilds the index.

use std::collections::BTreeSet;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use cosmwasm_std::Timestamp;
use futures::{FutureExt as _, StreamExt as _};
use mars::types::Market;
use redline_chain::{BlockStream, ChainClient, ChainError};
use redline_pipeline::index::{AccountChange, AccountPositions, BlockSnapshot, BlockUpdate};
use redline_pipeline::queue::Queue as _;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::enqueue::plan_jobs;
use crate::service::{Collector, IndexProgress, PROTOCOL};
use redline_protocol::red_bank::{read, BlockTouches};
use redline_protocol::{read_stored_positions, MarketInputs, Protocol as _, ReadError};

/// What a block snapshot holds besides the index.
#[derive(Debug, Clone)]
pub(crate) struct TipData {
    pub height: u64,
    pub time: Timestamp,
    pub inputs: MarketInputs,
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

/// What indexing a block reads from the chain.
struct BlockRead {
    time: Timestamp,
    touches: BlockTouches,
    /// The credit accounts the block's credit-manager events name.
    credit_touches: BTreeSet<u64>,
    /// The accounts the block's events name, re-read at the node's latest state.
    reads: Vec<(String, Result<AccountPositions, ReadError>)>,
    /// Fresh markets, when the block touched the Red Bank or is the tip.
    markets: Option<Vec<Market>>,
    /// The snapshot's data, at the tip.
    tip: Option<TipData>,
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

/// The node has committed no block yet (the collector started before the chain's first block).
/// A `ReadError` keeps its `ChainError` boxed, which the chain of causes does not show as one.
fn is_no_block_yet(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<ChainError>()
            .is_some_and(ChainError::is_no_block_yet)
            || cause
                .downcast_ref::<ReadError>()
                .is_some_and(ReadError::is_no_block_yet)
    })
}

/// How often a collector started before the chain's first block asks again.
const FIRST_BLOCK_POLL: Duration = Duration::from_millis(500);
/// The first wait after a failure; each further failure in a row doubles it.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);

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
            let block = self.read_block(height, at_tip).await?;
            let (changes, refreshed) = self.account_changes(block.reads).await?;
            let mut report = BlockReport {
                height,
                red_bank_events: block.touches.red_bank_events,
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
            let (params, thf) = match &block.tip {
                Some(tip) => (
                    tip.inputs.params.clone(),
                    Some(tip.inputs.target_health_factor),
                ),
                None => (Vec::new(), None),
            };
            self.inner
                .index
                .apply_block(&BlockUpdate {
                    height,
                    time: Some(block.time),
                    accounts: changes,
                    markets: block.markets.unwrap_or_default(),
                    params,
                    target_health_factor: thf,
                    reconciled: false,
                })
                .await?;
            self.apply_credit_block(height, &block.credit_touches)
                .await?;
            progress.last_indexed = Some(height);
            progress.last_block_time = Some(block.time);
            if let Some(touched) = progress.touched_since_scan.as_mut() {
                touched.extend(refreshed.iter().cloned());
            }
            self.record_block_indexed(height, refreshed.len(), &block.touches);

            if let Some(tip) = block.tip {
                report.jobs = self.publish_block(tip).await?;
            }
            self.inner
                .metrics
                .block_seconds
                .observe(started.elapsed().as_secs_f64());
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

    /// Block `height`'s Red Bank events, the accounts they name re-read, and what else the index
    /// needs from the chain: markets when the block touched the Red Bank, everything a snapshot
    /// needs at the tip.
    async fn read_block(&self, height: u64, at_tip: bool) -> anyhow::Result<BlockRead> {
        let inner = &self.inner;
        let results = inner
            .client
            .block_results(height)
            .await
            .with_context(|| format!("reading the results of block {height}"))?;
        let touches = inner.red_bank.touched(&results);
        let credit_touches = self.credit_touches(&results);
        for (tx, action) in &touches.unknown {
            warn!(%tx, action, "Red Bank event with an unknown action; re-reading the accounts it names");
            inner.metrics.unknown_events.inc();
        }

        let addresses: Vec<String> = touches.accounts.iter().cloned().collect();
        let (reads, fresh) = tokio::join!(self.read_accounts(&addresses), async {
            if at_tip {
                self.read_tip_data(height, results.time)
                    .await
                    .map(|tip| (Some(tip.inputs.markets.clone()), Some(tip)))
            } else if touches.touched_red_bank() {
                let red_bank = &inner.red_bank;
                read::markets(&red_bank.client, &red_bank.contracts, None)
                    .await
                    .context("reading the Red Bank markets")
                    .map(|markets| (Some(markets), None))
            } else {
                Ok((None, None))
            }
        },);
        let (markets, tip) = fresh?;
        Ok(BlockRead {
            time: results.time,
            touches,
            credit_touches,
            reads,
            markets,
            tip,
        })
    }

    /// The stored positions of `addresses` at the node's latest state, a bounded number at a
    /// time; results in input order.
    async fn read_accounts(
        &self,
        addresses: &[String],
    ) -> Vec<(String, Result<AccountPositions, ReadError>)> {
        let concurrency = self.inner.config.discovery.query_concurrency;
        read_stored_positions(&self.inner.red_bank, addresses, concurrency).await
    }

    /// The index changes of the re-read accounts, and the accounts they refresh.
    async fn account_changes(
        &self,
        reads: Vec<(String, Result<AccountPositions, ReadError>)>,
    ) -> anyhow::Result<(Vec<AccountChange>, Vec<String>)> {
        let inner = &self.inner;
        let mut changes = Vec::with_capacity(reads.len());
        let mut refreshed = Vec::with_capacity(reads.len());
        for (address, read) in reads {
            match read {
                Ok(positions) if positions.has_debt() => {
                    changes.push(AccountChange::Put(
                        inner.index.to_indexed(&positions).await?,
                    ));
                    refreshed.push(address);
                }
                Ok(_) => {
                    changes.push(AccountChange::Remove(address.clone()));
                    refreshed.push(address);
                }
                // The node is away: retry the block rather than index it half-read.
                Err(e) if e.is_transient() => {
                    return Err(anyhow::Error::new(e).context(format!("re-reading {address}")))
                }
                Err(e) => {
                    // A name in an event the Red Bank cannot answer for (not an address, say):
                    // nothing to index for it.
                    warn!(account = %address, error = %e, "cannot re-read an account named in a Red Bank event");
                    inner.metrics.account_read_errors.inc();
                }
            }
        }
        Ok((changes, refreshed))
    }

    fn record_block_indexed(&self, height: u64, refreshed: usize, touches: &BlockTouches) {
        let metrics = &self.inner.metrics;
        metrics.blocks_indexed.inc();
        metrics.last_indexed_height.set(height as i64);
        metrics.accounts_refreshed.inc_by(refreshed as u64);
        for (action, count) in &touches.actions {
            metrics
                .events_applied
                .with_label_values(&[action.as_str()])
                .inc_by(*count);
        }
    }

    /// Reads what a snapshot needs at the node's latest state (markets, params, THF, both
    /// price kinds).
    pub(crate) async fn read_tip_data(
        &self,
        height: u64,
        time: Timestamp,
    ) -> anyhow::Result<TipData> {
        let inner = &self.inner;
        let inputs = inner
            .red_bank
            .read_inputs(None)
            .await
            .context("reading the markets, params and prices")?;
        Ok(TipData {
            height,
            time,
            inputs,
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
            prices: tip.inputs.prices,
            liquidation_prices: tip.inputs.liquidation_prices,
            markets: tip.inputs.markets,
            params: tip.inputs.params,
            target_health_factor: tip.inputs.target_health_factor,
            accounts,
        };
        inner
            .index
            .write_block_snapshot(&snapshot, inner.config.enqueue.snapshot_ttl())
            .await?;
        let credit_jobs = self.publish_credit(&snapshot).await?;
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
        Ok(jobs.len() + credit_jobs)
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
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let inner = &self.inner;
        let mut following = Following {
            blocks: inner.client.subscribe_blocks(),
            tip: None,
            delay: FIRST_RETRY_DELAY,
            max_delay: Duration::from_millis(inner.config.follow.max_retry_delay_ms.max(100)),
            waiting_for_first_block: false,
            reconcile_task: None,
        };
        let health = self.spawn_health_reports();
        while self
            .follow_step(&mut following, &mut shutdown)
            .await
            .is_continue()
        {}
        health.abort();
        if let Some(task) = following.reconcile_task {
            task.abort();
        }
        info!("collector stopped");
        Ok(())
    }

    /// Refreshes `/health` every second, until aborted.
    fn spawn_health_reports(&self) -> tokio::task::JoinHandle<()> {
        let collector = self.clone();
        tokio::spawn(async move {
            loop {
                collector.report_health(None).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// One turn of [`Collector::run`]: index up to the tip, then wait for the next block.
    /// Breaks on shutdown.
    async fn follow_step<S: Future<Output = ()>>(
        &self,
        following: &mut Following,
        shutdown: &mut Pin<&mut S>,
    ) -> ControlFlow<()> {
        let Some(target) = self.follow_target(following, shutdown).await? else {
            return ControlFlow::Continue(());
        };
        if !self.follow_catch_up(following, target, shutdown).await? {
            return ControlFlow::Continue(());
        }
        self.report_health(Some(target)).await;
        if following
            .reconcile_task
            .as_ref()
            .is_none_or(|t| t.is_finished())
        {
            following.reconcile_task = self
                .maybe_spawn_reconcile()
                .await
                .or(following.reconcile_task.take());
        }
        self.await_next_block(following, target, shutdown).await
    }

    /// The height to index up to: the newest announced block, else the chain's latest height.
    /// `None` when there is none to go for yet (after a wait or a back-off: ask again).
    async fn follow_target<S: Future<Output = ()>>(
        &self,
        following: &mut Following,
        shutdown: &mut Pin<&mut S>,
    ) -> ControlFlow<(), Option<u64>> {
        if let Some(tip) = following.tip {
            return ControlFlow::Continue(Some(tip));
        }
        match unless_shutdown(shutdown, self.inner.client.latest_height()).await? {
            // Before the chain's first block a node may report height 1 (CometBFT and the
            // devnet do) without having it: wait for it quietly, before a discovery scan that
            // could not finish.
            Ok(height) if height == 1 && !self.has_block(height).await => {
                following.wait_for_first_block("", shutdown).await?;
                ControlFlow::Continue(None)
            }
            Ok(height) => {
                following.tip = Some(height);
                ControlFlow::Continue(Some(height))
            }
            Err(e) => {
                warn!(error = %e, "cannot read the chain height; retrying");
                following.back_off(shutdown).await?;
                ControlFlow::Continue(None)
            }
        }
    }

    /// Brings the index to `target`; `false` when that failed (after a wait or a back-off).
    async fn follow_catch_up<S: Future<Output = ()>>(
        &self,
        following: &mut Following,
        target: u64,
        shutdown: &mut Pin<&mut S>,
    ) -> ControlFlow<(), bool> {
        match unless_shutdown(shutdown, self.catch_up_to(target)).await? {
            Ok(()) => {
                following.delay = FIRST_RETRY_DELAY;
                ControlFlow::Continue(true)
            }
            // Not a failure: a quiet wait (one line), at a steady pace rather than a growing
            // back-off, so that indexing starts right after the first block.
            Err(e) if is_no_block_yet(&e) => {
                following
                    .wait_for_first_block(&format!("{e:#}"), shutdown)
                    .await?;
                ControlFlow::Continue(false)
            }
            Err(e) => {
                warn!(
                    target,
                    error = format!("{e:#}"),
                    retry_in_ms = following.delay.as_millis() as u64,
                    "indexing failed; retrying"
                );
                following.back_off(shutdown).await?;
                ControlFlow::Continue(false)
            }
        }
    }

    /// Waits for the next block, then skips to the newest one already announced.
    async fn await_next_block<S: Future<Output = ()>>(
        &self,
        following: &mut Following,
        target: u64,
        shutdown: &mut Pin<&mut S>,
    ) -> ControlFlow<()> {
        match unless_shutdown(shutdown, following.blocks.next()).await? {
            Some(block) => following.tip = Some(block.height.max(target)),
            None => {
                warn!("block feed ended; subscribing again");
                following.blocks = self.inner.client.subscribe_blocks();
                following.tip = None;
                return ControlFlow::Continue(());
            }
        }
        while let Some(Some(block)) = following.blocks.next().now_or_never() {
            following.tip = following.tip.max(Some(block.height));
        }
        if let Some(tip) = following.tip {
            let last = self.inner.progress.lock().await.last_indexed.unwrap_or(0);
            self.inner
                .metrics
                .index_lag_blocks
                .set(tip.saturating_sub(last) as i64);
        }
        ControlFlow::Continue(())
    }
}

/// Where [`Collector::run`] stands between its turns.
struct Following {
    blocks: BlockStream,
    /// The newest block announced (`None`: ask the chain).
    tip: Option<u64>,
    /// The next wait after a failure.
    delay: Duration,
    max_delay: Duration,
    waiting_for_first_block: bool,
    reconcile_task: Option<tokio::task::JoinHandle<()>>,
}

impl Following {
    /// Waits the current retry delay, then doubles it (up to the maximum).
    async fn back_off<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
    ) -> ControlFlow<()> {
        unless_shutdown(shutdown, tokio::time::sleep(self.delay)).await?;
        self.delay = (self.delay * 2).min(self.max_delay);
        ControlFlow::Continue(())
    }

    /// Waiting for the chain's first block is no failure: one INFO line the first time, debug
    /// after (with `detail` when there is one), and a steady poll rather than a growing back-off.
    async fn wait_for_first_block<S: Future<Output = ()>>(
        &mut self,
        detail: &str,
        shutdown: &mut Pin<&mut S>,
    ) -> ControlFlow<()> {
        if self.waiting_for_first_block {
            debug!(detail, "still no block on the chain");
        } else {
            info!("waiting for the chain's first block");
            self.waiting_for_first_block = true;
        }
        unless_shutdown(shutdown, tokio::time::sleep(FIRST_BLOCK_POLL)).await
    }
}

/// `work`'s output, unless `shutdown` resolves first.
async fn unless_shutdown<S: Future<Output = ()>, F: Future>(
    shutdown: &mut Pin<&mut S>,
    work: F,
) -> ControlFlow<(), F::Output> {
    tokio::select! {
        _ = shutdown.as_mut() => ControlFlow::Break(()),
        output = work => ControlFlow::Continue(output),
    }
}
