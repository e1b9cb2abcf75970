//! The per-block deadline bookkeeping, as a pure state machine the control loop feeds with what
//! it observes: blocks arriving, health-check jobs being enqueued, and the oldest job still
//! outstanding in the queue.
//!
//! A block's health-check work is **on time** when every job of that block has left the queue
//! (acknowledged by a health checker) before block `h + D` arrives (`D` = `--deadline-blocks`,
//! default 1: before the next block). It is **late** when some of its jobs are still queued at
//! that moment, and **not enqueued** when the collector never queued the block's work by then
//! (it fell behind or is down). Until the collector has enqueued anything at all since the
//! manager started, blocks without work are **warming up** (the collector is still discovering
//! accounts) and do not count as missed.
//!
//! Finishing is observed from the queue: jobs are enqueued in block order (one collector, one
//! atomic batch per block) and deleted when acknowledged, so when the oldest job left in the
//! stream belongs to a block above `h` (or the stream is empty), every job of `h` and of the
//! blocks before it is done. An observation only counts for blocks whose enqueue was seen
//! before the observation was made, so a block is never declared done before its jobs exist.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What became of one block's health-check work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockStatus {
    OnTime,
    Late,
    NotEnqueued,
    WarmingUp,
}

impl BlockStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            BlockStatus::OnTime => "on_time",
            BlockStatus::Late => "late",
            BlockStatus::NotEnqueued => "not_enqueued",
            BlockStatus::WarmingUp => "warming_up",
        }
    }

    /// Whether the block counts as missed (late, or its work never queued).
    pub fn missed(&self) -> bool {
        matches!(self, BlockStatus::Late | BlockStatus::NotEnqueued)
    }
}

/// The manager's record of one block, written once its deadline has passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub height: u64,
    /// Unix milliseconds when the manager saw the block.
    pub arrived_at_ms: u64,
    /// Milliseconds since the previous block arrived.
    pub interval_ms: Option<u64>,
    pub status: BlockStatus,
    /// Health-check jobs and accounts enqueued for the block.
    pub jobs: u64,
    pub accounts: u64,
    /// Accounts whose check finished within the deadline.
    pub accounts_checked: u64,
    /// Jobs of the block still queued at the deadline.
    pub jobs_missed: u64,
    /// Block arrival → its last job acknowledged, when that was seen.
    pub lag_ms: Option<u64>,
    /// Liquidation candidates queued while this block was the newest.
    pub liquidations_queued: u64,
    /// Liquidations that landed on chain while this block was the newest.
    pub liquidations_done: u64,
    /// Workers running when the record was closed.
    pub health_checkers: u32,
    pub liquidators: u32,
}

/// Jobs and accounts of one block left in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outstanding {
    pub jobs: u64,
    pub accounts: u64,
}

#[derive(Debug, Clone, Default)]
struct Tracked {
    arrived: Option<(Instant, u64)>,
    interval_ms: Option<u64>,
    enqueued_at: Option<Instant>,
    jobs: u64,
    accounts: u64,
    finished_at: Option<Instant>,
    liquidations_queued: u64,
    liquidations_done: u64,
}

/// Blocks tracked beyond the deadline window are dropped past this many (a stalled feed must
/// not grow the map without end).
const MAX_TRACKED: usize = 10_000;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct BlockLedger {
    deadline_blocks: u64,
    blocks: BTreeMap<u64, Tracked>,
    newest: Option<u64>,
    collector_seen: bool,
    /// The newest block whose enqueue was seen, with its accounts so far (kept after the block
    /// is closed: the next block most likely brings as many).
    latest_enqueued: Option<(u64, u64)>,
}

impl BlockLedger {
    pub fn new(deadline_blocks: u32) -> Self {
        Self {
            deadline_blocks: u64::from(deadline_blocks.max(1)),
            blocks: BTreeMap::new(),
            newest: None,
            collector_seen: false,
            latest_enqueued: None,
        }
    }

    /// The newest block seen.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// Whether the collector has enqueued any work since the manager started.
    pub fn collector_seen(&self) -> bool {
        self.collector_seen
    }

    /// Block `height` arrived at `at` (Unix `unix_ms`). Returns the heights whose deadline has
    /// now passed, oldest first: close each with [`BlockLedger::close`].
    pub fn block_arrived(&mut self, height: u64, at: Instant, unix_ms: u64) -> Vec<u64> {
        let interval_ms = self
            .newest
            .and_then(|newest| self.blocks.get(&newest))
            .and_then(|tracked| tracked.arrived)
            .map(|(previous, _)| at.saturating_duration_since(previous).as_millis() as u64);
        let tracked = self.blocks.entry(height).or_default();
        if tracked.arrived.is_none() {
            tracked.arrived = Some((at, unix_ms));
            tracked.interval_ms = interval_ms;
        }
        self.newest = Some(self.newest.map_or(height, |n| n.max(height)));
        while self.blocks.len() > MAX_TRACKED {
            self.blocks.pop_first();
        }
        let due_below = height.saturating_sub(self.deadline_blocks - 1);
        self.blocks
            .iter()
            .filter(|(h, t)| **h < due_below && t.arrived.is_some())
            .map(|(h, _)| *h)
            .collect()
    }

    /// `jobs` jobs covering `accounts` accounts of block `height` were seen enqueued at `at`
    /// (possibly before the block itself was seen: the collector can be quicker than the
    /// manager's feed).
    pub fn jobs_enqueued(&mut self, height: u64, jobs: u64, accounts: u64, at: Instant) {
        self.collector_seen = true;
        self.latest_enqueued = match self.latest_enqueued {
            Some((latest, sum)) if latest == height => Some((height, sum + accounts)),
            Some((latest, _)) if latest > height => self.latest_enqueued,
            _ => Some((height, accounts)),
        };
        if self
            .newest
            .is_some_and(|n| height + self.deadline_blocks <= n)
        {
            // Its deadline has passed already: nothing left to decide for it.
            return;
        }
        let tracked = self.blocks.entry(height).or_default();
        tracked.enqueued_at.get_or_insert(at);
        tracked.jobs += jobs;
        tracked.accounts += accounts;
    }

    /// The queue's oldest outstanding job belongs to `oldest` (`None`: the queue is empty), as
    /// observed by a query issued at `observed_at`.
    pub fn observe_oldest(&mut self, oldest: Option<u64>, observed_at: Instant) {
        for (height, tracked) in self.blocks.iter_mut() {
            if oldest.is_some_and(|o| o <= *height) {
                break;
            }
            let enqueued_before = tracked.enqueued_at.is_some_and(|at| at <= observed_at);
            if enqueued_before && tracked.finished_at.is_none() {
                tracked.finished_at = Some(observed_at);
            }
        }
    }

    /// Liquidation figures of the interval that started when block `height` arrived.
    pub fn add_liquidations(&mut self, height: u64, queued: u64, done: u64) {
        if let Some(tracked) = self.blocks.get_mut(&height) {
            tracked.liquidations_queued += queued;
            tracked.liquidations_done += done;
        }
    }

    /// Whether the enqueue of `height`'s jobs was seen.
    pub fn enqueue_seen(&self, height: u64) -> bool {
        self.blocks
            .get(&height)
            .is_some_and(|t| t.enqueued_at.is_some())
    }

    /// Accounts enqueued for `height`, when its enqueue was seen.
    pub fn accounts_of(&self, height: u64) -> Option<u64> {
        self.blocks
            .get(&height)
            .filter(|t| t.enqueued_at.is_some())
            .map(|t| t.accounts)
    }

    /// Accounts of the newest block whose work was seen enqueued (what the next block will
    /// most likely bring: the whole index is checked every block).
    pub fn latest_accounts(&self) -> Option<u64> {
        self.latest_enqueued.map(|(_, accounts)| accounts)
    }

    /// Closes `height` (its deadline has passed) and forgets it. `outstanding` is what of the
    /// block is still queued now; `snapshot_accounts` is the account count of the block's
    /// snapshot when one exists (evidence the work was queued even if its enqueue was not
    /// seen); `workers` the running health checkers and liquidators.
    pub fn close(
        &mut self,
        height: u64,
        outstanding: Outstanding,
        snapshot_accounts: Option<u64>,
        workers: (u32, u32),
    ) -> Option<BlockRecord> {
        let tracked = self.blocks.remove(&height)?;
        let (arrived_at, arrived_at_ms) = tracked.arrived?;
        let enqueue_seen = tracked.enqueued_at.is_some();
        let (jobs, accounts) = if enqueue_seen {
            (tracked.jobs, tracked.accounts)
        } else {
            (
                outstanding.jobs,
                snapshot_accounts.unwrap_or(outstanding.accounts),
            )
        };
        let enqueued = enqueue_seen || snapshot_accounts.is_some() || outstanding.jobs > 0;
        let status = if !enqueued {
            if self.collector_seen {
                BlockStatus::NotEnqueued
            } else {
                BlockStatus::WarmingUp
            }
        } else if outstanding.jobs == 0 && (tracked.finished_at.is_some() || !enqueue_seen) {
            BlockStatus::OnTime
        } else {
            BlockStatus::Late
        };
        let lag_ms = tracked
            .finished_at
            .map(|done| done.saturating_duration_since(arrived_at).as_millis() as u64);
        Some(BlockRecord {
            height,
            arrived_at_ms,
            interval_ms: tracked.interval_ms,
            status,
            jobs,
            accounts,
            accounts_checked: if status == BlockStatus::OnTime {
                accounts
            } else {
                accounts.saturating_sub(outstanding.accounts)
            },
            jobs_missed: if status == BlockStatus::Late {
                outstanding.jobs.max(1)
            } else {
                0
            },
            lag_ms,
            liquidations_queued: tracked.liquidations_queued,
            liquidations_done: tracked.liquidations_done,
            health_checkers: workers.0,
            liquidators: workers.1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_block_finished_before_the_next_is_on_time() {
        let t0 = Instant::now();
        let mut ledger = BlockLedger::new(1);
        assert!(ledger.block_arrived(10, at(t0, 0), 1_000).is_empty());
        ledger.jobs_enqueued(10, 4, 2_000, at(t0, 30));
        // The queue still holds block 10's jobs.
        ledger.observe_oldest(Some(10), at(t0, 200));
        // Empty at 450 ms.
        ledger.observe_oldest(None, at(t0, 450));
        let due = ledger.block_arrived(11, at(t0, 1_000), 2_000);
        assert_eq!(due, vec![10]);
        let record = ledger
            .close(10, Outstanding::default(), Some(2_000), (2, 1))
            .unwrap();
        assert_eq!(record.status, BlockStatus::OnTime);
        assert_eq!(record.lag_ms, Some(450));
        assert_eq!((record.jobs, record.accounts), (4, 2_000));
        assert_eq!(record.accounts_checked, 2_000);
        assert_eq!(record.jobs_missed, 0);
        assert_eq!(record.health_checkers, 2);
    }

    #[test]
    fn an_empty_queue_before_the_enqueue_proves_nothing() {
        let t0 = Instant::now();
        let mut ledger = BlockLedger::new(1);
        ledger.block_arrived(10, at(t0, 0), 0);
        // An empty queue observed before the jobs were enqueued.
        ledger.observe_oldest(None, at(t0, 10));
        ledger.jobs_enqueued(10, 2, 1_000, at(t0, 20));
        // Still queued at the next block.
        ledger.observe_oldest(Some(10), at(t0, 900));
        ledger.block_arrived(11, at(t0, 1_000), 1_000);
        let late = Outstanding {
            jobs: 1,
            accounts: 400,
        };
        let record = ledger.close(10, late, Some(1_000), (1, 1)).unwrap();
        assert_eq!(record.status, BlockStatus::Late);
        assert!(record.status.missed());
        assert_eq!(record.jobs_missed, 1);
        assert_eq!(record.accounts_checked, 600);
        assert_eq!(record.lag_ms, None);
    }

    #[test]
    fn an_older_block_in_the_queue_holds_back_newer_ones() {
        let t0 = Instant::now();
        let mut ledger = BlockLedger::new(2);
        ledger.block_arrived(10, at(t0, 0), 0);
        ledger.jobs_enqueued(10, 1, 10, at(t0, 5));
        ledger.block_arrived(11, at(t0, 1_000), 1_000);
        ledger.jobs_enqueued(11, 1, 10, at(t0, 1_005));
        ledger.observe_oldest(Some(10), at(t0, 1_500));
        // A 2-block deadline: block 10 is due when block 12 arrives, not before.
        assert!(ledger.block_arrived(11, at(t0, 1_000), 1_000).is_empty());
        ledger.observe_oldest(Some(11), at(t0, 1_800));
        assert_eq!(ledger.block_arrived(12, at(t0, 2_000), 2_000), vec![10]);
        let ten = ledger
            .close(10, Outstanding::default(), None, (1, 0))
            .unwrap();
        assert_eq!((ten.status, ten.lag_ms), (BlockStatus::OnTime, Some(1_800)));
        ledger.observe_oldest(None, at(t0, 2_500));
        assert_eq!(ledger.block_arrived(13, at(t0, 3_000), 3_000), vec![11]);
        let eleven = ledger
            .close(11, Outstanding::default(), None, (1, 0))
            .unwrap();
        assert_eq!(eleven.lag_ms, Some(1_500));
        assert_eq!(eleven.interval_ms, Some(1_000));
    }

    #[test]
    fn work_never_queued_is_missed_once_the_collector_runs() {
        let t0 = Instant::now();
        let mut ledger = BlockLedger::new(1);
        // The collector is still discovering: no work, not counted.
        ledger.block_arrived(1, at(t0, 0), 0);
        ledger.block_arrived(2, at(t0, 1_000), 0);
        let record = ledger
            .close(1, Outstanding::default(), None, (0, 0))
            .unwrap();
        assert_eq!(record.status, BlockStatus::WarmingUp);
        assert!(!record.status.missed());
        ledger.jobs_enqueued(2, 1, 5, at(t0, 1_100));
        ledger.observe_oldest(None, at(t0, 1_200));
        ledger.block_arrived(3, at(t0, 2_000), 0);
        assert_eq!(
            ledger
                .close(2, Outstanding::default(), None, (1, 0))
                .unwrap()
                .status,
            BlockStatus::OnTime
        );
        // Now the collector stalls: block 3 gets nothing.
        ledger.block_arrived(4, at(t0, 3_000), 0);
        let record = ledger
            .close(3, Outstanding::default(), None, (1, 0))
            .unwrap();
        assert_eq!(record.status, BlockStatus::NotEnqueued);
        assert!(record.status.missed());
    }

    #[test]
    fn an_unseen_enqueue_with_a_snapshot_and_an_empty_queue_counts_as_done() {
        let t0 = Instant::now();
        let mut ledger = BlockLedger::new(1);
        ledger.jobs_enqueued(1, 1, 1, at(t0, 0));
        ledger.block_arrived(5, at(t0, 0), 0);
        ledger.block_arrived(6, at(t0, 1_000), 0);
        let record = ledger
            .close(5, Outstanding::default(), Some(300), (1, 0))
            .unwrap();
        assert_eq!(record.status, BlockStatus::OnTime);
        assert_eq!(record.accounts, 300);
        assert_eq!(record.lag_ms, None);
    }

    #[test]
    fn enqueue_seen_before_the_block_and_liquidations() {
        let t0 = Instant::now();
        let mut ledger = BlockLedger::new(1);
        ledger.jobs_enqueued(7, 2, 50, at(t0, 0));
        ledger.observe_oldest(None, at(t0, 5));
        ledger.block_arrived(7, at(t0, 10), 0);
        ledger.add_liquidations(7, 3, 2);
        assert_eq!(ledger.latest_accounts(), Some(50));
        ledger.block_arrived(8, at(t0, 1_010), 0);
        let record = ledger
            .close(7, Outstanding::default(), None, (1, 2))
            .unwrap();
        // Still known once the block is closed.
        assert_eq!(ledger.latest_accounts(), Some(50));
        ledger.jobs_enqueued(8, 1, 20, at(t0, 1_020));
        ledger.jobs_enqueued(8, 1, 25, at(t0, 1_021));
        assert_eq!(ledger.latest_accounts(), Some(45));
        // Finished before the manager saw the block: no lag.
        assert_eq!(record.lag_ms, Some(0));
        assert_eq!(
            (record.liquidations_queued, record.liquidations_done),
            (3, 2)
        );
    }
}
