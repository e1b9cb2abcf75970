//! Where a job's results go: liquidatable accounts to the liquidation priority queue, accounts
//! close to liquidation to the near-liquidation set the dashboard reads.
//!
//! # Near-liquidation set
//!
//! Keys (`<prefix>` is `--queue-prefix`, `N` = `<prefix>:<chain id>:<protocol>`):
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `N:near` | zset | every account whose liquidation HF < `--watch-threshold`, score = HF truncated to 6 decimals |
//! | `N:near:bucket:<b>` | zset | the same, for the accounts of index bucket `b` only |
//! | `N:near:heights` | hash | bucket → height of the job that last wrote it |
//!
//! A job covers whole buckets, so it knows which accounts of the set are its own: it reads its
//! buckets' zsets, adds the accounts now under the threshold and removes those that recovered
//! or left the index, in one `MULTI`. Accounts it had to skip (bad input) keep their previous
//! entry: an account is never dropped from the watch list because it could not be checked. A
//! bucket already written by a newer block's job is not overwritten by an older one.
//!
//! When an account that was liquidatable (score < 1) recovers or leaves the index, its
//! candidate still waiting in the liquidation queue is withdrawn (an older block's plan for a
//! healthy account is only a wasted transaction).

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use clap::Args;
use cosmwasm_std::Decimal;
use redline_pipeline::jobs::{LiquidationCandidate, ProtocolKind, LIQUIDATION_QUEUE};
use redline_pipeline::queue::{
    liquidation_dedup_key, DedupKey, EnqueueStatus, PriorityQueue, QueueConfig, QueueError,
};
use redline_pipeline::redis_conn::{ConnectOptions, RedisConn};

#[derive(Debug, Clone, Args)]
pub struct OutputConfig {
    /// Accounts whose liquidation health factor is below this go to the near-liquidation set
    /// (score = HF) for the dashboard. At least 1, so every liquidatable account is watched.
    #[arg(long, env = "WATCH_THRESHOLD", default_value = "1.05", value_parser = watch_threshold)]
    pub watch_threshold: Decimal,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            watch_threshold: Decimal::percent(105),
        }
    }
}

/// Parses `--watch-threshold`.
fn watch_threshold(text: &str) -> Result<Decimal, String> {
    let threshold: Decimal = text
        .parse()
        .map_err(|e| format!("`{text}` is not a decimal: {e}"))?;
    if threshold < Decimal::one() {
        return Err(format!(
            "{threshold} is below 1; liquidatable accounts (HF < 1) must stay in the \
             near-liquidation set"
        ));
    }
    Ok(threshold)
}

/// Digits of the health factor kept in the near-set score.
const SCORE_DECIMALS: u32 = 6;

/// The near-set score of a health factor: truncated to [`SCORE_DECIMALS`] digits, so that
/// `score < 1` exactly when `HF < 1`, and an account whose HF only moved in far decimals (a
/// block's interest) is not rewritten every block.
pub fn near_score(health_factor: Decimal) -> String {
    let unit = 10u128.pow(18 - SCORE_DECIMALS);
    let truncated = health_factor.atomics().u128() / unit * unit;
    Decimal::new(cosmwasm_std::Uint128::new(truncated)).to_string()
}

pub use redline_pipeline::near::NearKeys;

/// An account below the watch threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearEntry {
    pub account: String,
    pub bucket: u32,
    pub health_factor: Decimal,
}

/// Everything one job found.
#[derive(Debug, Clone)]
pub struct JobOutput {
    pub chain_id: String,
    pub protocol: ProtocolKind,
    pub height: u64,
    /// The index buckets the job covered.
    pub buckets: Range<u32>,
    pub candidates: Vec<LiquidationCandidate>,
    pub near: Vec<NearEntry>,
    /// Accounts that could not be checked: their near-set entries are left as they were.
    pub skipped: HashSet<String>,
}

/// What writing a job's output did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputSummary {
    /// Candidates now waiting in the liquidation queue (new or updated).
    pub queued: u64,
    /// Candidates dropped because a newer block's candidate for the account is queued.
    pub stale: u64,
    pub near_added: u64,
    pub near_updated: u64,
    pub near_removed: u64,
    /// Waiting candidates withdrawn because their account recovered.
    pub retracted: u64,
    /// Buckets not written because a newer block's job already wrote them.
    pub buckets_newer: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("liquidation queue: {0}")]
    Queue(#[from] QueueError),
    #[error("near-liquidation set ({what}): {source}")]
    Redis {
        what: &'static str,
        source: redis::RedisError,
    },
}

/// The health checker's outputs. Cheap to clone.
#[derive(Clone)]
pub struct Outputs {
    queue: PriorityQueue<LiquidationCandidate>,
    conn: RedisConn,
    prefix: String,
    threshold: Decimal,
}

impl Outputs {
    pub async fn connect(
        queue_config: &QueueConfig,
        config: &OutputConfig,
    ) -> anyhow::Result<Self> {
        let queue = PriorityQueue::connect(queue_config, LIQUIDATION_QUEUE).await?;
        let conn =
            redline_pipeline::redis_conn::connect(queue_config, ConnectOptions::default()).await?;
        Ok(Self {
            queue,
            conn,
            prefix: queue_config.queue_prefix.clone(),
            threshold: config.watch_threshold,
        })
    }

    pub fn watch_threshold(&self) -> Decimal {
        self.threshold
    }

    pub fn liquidation_queue(&self) -> &PriorityQueue<LiquidationCandidate> {
        &self.queue
    }

    pub fn near_keys(&self, chain_id: &str, protocol: ProtocolKind) -> NearKeys {
        NearKeys::new(&self.prefix, chain_id, protocol)
    }

    /// The `max` accounts closest to liquidation (lowest HF first), as the dashboard shows them.
    pub async fn near_liquidation(
        &self,
        chain_id: &str,
        protocol: ProtocolKind,
        max: usize,
    ) -> Result<Vec<(String, f64)>, OutputError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        redis::cmd("ZRANGE")
            .arg(self.near_keys(chain_id, protocol).all)
            .arg(0)
            .arg(max - 1)
            .arg("WITHSCORES")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|source| OutputError::Redis {
                what: "ZRANGE",
                source,
            })
    }

    /// Writes one job's results: candidates first (highest profit first), then the
    /// near-liquidation set. Returns once everything is in Redis.
    pub async fn write(&self, output: JobOutput) -> Result<OutputSummary, OutputError> {
        let mut summary = OutputSummary::default();
        let JobOutput {
            chain_id,
            protocol,
            height,
            buckets,
            mut candidates,
            near,
            skipped,
        } = output;
        self.push_candidates(&mut candidates, &mut summary).await?;

        let keys = self.near_keys(&chain_id, protocol);
        let mut conn = self.conn.clone();
        let bucket_list: Vec<u32> = buckets.collect();
        if bucket_list.is_empty() {
            return Ok(summary);
        }
        let before = read_near_before(&mut conn, &keys, &bucket_list, height, &mut summary).await?;
        let mut write = NearWrite::new(&keys, &chain_id, protocol, height);
        let now_near = write.stage_near(&near, &before, &mut summary);
        write.stage_gone(&before, &now_near, &skipped, &mut summary);
        write.stage_heights(before.writable);
        let recovered = write.commit(&mut conn).await?;
        if !recovered.is_empty() {
            summary.retracted = self.queue.retract(&recovered).await?;
        }
        Ok(summary)
    }

    /// Queues `candidates`, most profitable first.
    async fn push_candidates(
        &self,
        candidates: &mut [LiquidationCandidate],
        summary: &mut OutputSummary,
    ) -> Result<(), OutputError> {
        candidates.sort_by_key(|c| std::cmp::Reverse(c.priority()));
        for outcome in self.queue.push(candidates).await? {
            match outcome.status {
                EnqueueStatus::Stale => summary.stale += 1,
                EnqueueStatus::InFlight => {}
                _ => summary.queued += 1,
            }
        }
        Ok(())
    }
}

/// The near-set entries of a job's buckets before the job writes them.
struct NearBefore {
    /// The buckets no newer block's job wrote: the ones this job writes.
    writable: HashSet<u32>,
    /// `account → (bucket, score)` of every entry of the writable buckets.
    previous: HashMap<String, (u32, f64)>,
}

/// Reads which of `buckets` a job at `height` may write, and their current entries (one round
/// trip). Buckets a newer job wrote are counted in `summary`.
async fn read_near_before(
    conn: &mut RedisConn,
    keys: &NearKeys,
    buckets: &[u32],
    height: u64,
    summary: &mut OutputSummary,
) -> Result<NearBefore, OutputError> {
    let mut read = redis::pipe();
    read.cmd("HMGET").arg(&keys.heights).arg(buckets);
    for bucket in buckets {
        read.cmd("ZRANGE")
            .arg(keys.bucket(*bucket))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
    }
    let mut replies: Vec<redis::Value> =
        read.query_async(conn)
            .await
            .map_err(|source| OutputError::Redis {
                what: "reading the buckets' near sets",
                source,
            })?;
    let written_heights: Vec<Option<u64>> =
        redis::from_redis_value(replies.remove(0)).map_err(|source| OutputError::Redis {
            what: "near set heights",
            source: source.into(),
        })?;
    let mut before = NearBefore {
        writable: HashSet::new(),
        previous: HashMap::new(),
    };
    for ((bucket, written), members) in buckets.iter().zip(written_heights).zip(replies) {
        if written.is_some_and(|w| w > height) {
            summary.buckets_newer += 1;
            continue;
        }
        before.writable.insert(*bucket);
        let members: Vec<(String, f64)> =
            redis::from_redis_value(members).map_err(|source| OutputError::Redis {
                what: "near set members",
                source: source.into(),
            })?;
        for (account, score) in members {
            before.previous.insert(account, (*bucket, score));
        }
    }
    Ok(before)
}

/// One job's changes to the near set, staged for one `MULTI`, and the liquidatable accounts that
/// recovered (their waiting candidates are withdrawn once the set is written).
struct NearWrite<'a> {
    keys: &'a NearKeys,
    chain_id: &'a str,
    protocol: ProtocolKind,
    height: u64,
    pipe: redis::Pipeline,
    recovered: Vec<DedupKey>,
}

impl<'a> NearWrite<'a> {
    fn new(keys: &'a NearKeys, chain_id: &'a str, protocol: ProtocolKind, height: u64) -> Self {
        let mut pipe = redis::pipe();
        pipe.atomic();
        Self {
            keys,
            chain_id,
            protocol,
            height,
            pipe,
            recovered: Vec::new(),
        }
    }

    fn recover(&mut self, account: &str) {
        self.recovered.push(DedupKey {
            key: liquidation_dedup_key(self.chain_id, self.protocol, account),
            generation: self.height,
        });
    }

    /// Adds or updates the entries under the threshold in writable buckets; returns their
    /// accounts.
    fn stage_near<'n>(
        &mut self,
        near: &'n [NearEntry],
        before: &NearBefore,
        summary: &mut OutputSummary,
    ) -> HashSet<&'n str> {
        let mut now_near: HashSet<&str> = HashSet::with_capacity(near.len());
        for entry in near.iter().filter(|e| before.writable.contains(&e.bucket)) {
            now_near.insert(entry.account.as_str());
            let shown = near_score(entry.health_factor);
            let score: f64 = shown.parse().unwrap_or(0.0);
            match before.previous.get(&entry.account) {
                Some((_, old)) if *old == score => continue,
                Some((_, old)) => {
                    summary.near_updated += 1;
                    if *old < 1.0 && entry.health_factor >= Decimal::one() {
                        self.recover(&entry.account);
                    }
                }
                None => summary.near_added += 1,
            }
            let hf = shown;
            self.pipe
                .cmd("ZADD")
                .arg(&self.keys.all)
                .arg(&hf)
                .arg(&entry.account)
                .ignore()
                .cmd("ZADD")
                .arg(self.keys.bucket(entry.bucket))
                .arg(&hf)
                .arg(&entry.account)
                .ignore();
        }
        now_near
    }

    /// Removes the previous entries that are no longer near, except those of skipped accounts.
    fn stage_gone(
        &mut self,
        before: &NearBefore,
        now_near: &HashSet<&str>,
        skipped: &HashSet<String>,
        summary: &mut OutputSummary,
    ) {
        for (account, (bucket, score)) in &before.previous {
            if now_near.contains(account.as_str()) || skipped.contains(account) {
                continue;
            }
            summary.near_removed += 1;
            if *score < 1.0 {
                self.recover(account);
            }
            self.pipe
                .cmd("ZREM")
                .arg(&self.keys.all)
                .arg(account)
                .ignore()
                .cmd("ZREM")
                .arg(self.keys.bucket(*bucket))
                .arg(account)
                .ignore();
        }
    }

    /// Records the job's height as the last writer of `written`.
    fn stage_heights(&mut self, written: HashSet<u32>) {
        let mut written: Vec<u32> = written.into_iter().collect();
        written.sort_unstable();
        if !written.is_empty() {
            let cmd = self.pipe.cmd("HSET").arg(&self.keys.heights);
            for bucket in written {
                cmd.arg(bucket).arg(self.height);
            }
            cmd.ignore();
        }
    }

    /// Runs the staged `MULTI`; returns the recovered accounts' candidate keys.
    async fn commit(self, conn: &mut RedisConn) -> Result<Vec<DedupKey>, OutputError> {
        let () = self
            .pipe
            .query_async(conn)
            .await
            .map_err(|source| OutputError::Redis {
                what: "writing the near set",
                source,
            })?;
        Ok(self.recovered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_truncate_and_keep_the_liquidation_boundary() {
        let hf = |s: &str| near_score(s.parse().unwrap());
        assert_eq!(hf("0.999999999999999999"), "0.999999");
        assert_eq!(hf("1"), "1");
        assert_eq!(hf("1.0423456789"), "1.042345");
        assert_eq!(hf("0.0000001"), "0");
    }
}
