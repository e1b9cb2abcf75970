//! Liquidations armed before the price moves.
//!
//! After a block moves prices, the pipeline's own path to the liquidation queue (the manager
//! hears the block, health checkers price the whole index, then queue) costs tens of
//! milliseconds. For the accounts already closest to liquidation (the lowest of the health
//! checkers' near-liquidation set, below `--armed-below-hf`) the liquidator reads positions
//! ahead, between blocks. When a block comes, it prices them at once against that block's
//! snapshot (the one its workers go on to use) and queues those now liquidatable. These
//! candidates come ahead of the health checkers' candidates for the same block, which the
//! queue merges into them.
//!
//! Red Bank accounts only: a credit account's liquidation is planned with swaps the worker
//! quotes when it takes the job.
//!
//! A candidate is only a candidate: the worker re-reads the account at the latest height and
//! simulates before sending, as for any other. So a position that changed since it was armed
//! (its owner repaid in the block that moved the price) costs a re-read, never a tx.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cosmwasm_std::{Decimal, Uint128};
use futures::{stream, FutureExt as _, StreamExt};
use mars::types::AccountKey;
use mars::value::Value;
use redline_chain::ChainClient;
use redline_pipeline::jobs::{LiquidationCandidate, LiquidationPlan, ProtocolKind};
use redline_pipeline::near::NearKeys;
use redline_pipeline::queue::PriorityQueue;
use redline_pipeline::redis_conn::RedisConn;
use redline_protocol::{AccountPosition, MarketSnapshot};

use crate::plan::PlanContext;
use crate::recheck::PositionReader;
use crate::shutdown::Shutdown;

/// An armed position is read again after this long: stored (scaled) amounts change only when
/// the account acts, and the worker re-reads every candidate anyway. In time, not blocks, so
/// that fast blocks do not multiply the reads.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(10);
/// Position reads in flight at once while arming.
const READS_IN_FLIGHT: usize = 8;

/// Which accounts to arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmedConfig {
    /// At most this many, the lowest health factors first; 0 arms none.
    pub accounts: usize,
    /// Only accounts the health checkers last found below this health factor.
    pub below_hf: Decimal,
}

struct ArmedPosition {
    position: AccountPosition,
    read_at: std::time::Instant,
}

/// What arming needs, connected.
pub struct Armory<C> {
    pub reader: Arc<PositionReader<C>>,
    pub queue: PriorityQueue<LiquidationCandidate>,
    pub redis: RedisConn,
    pub near: NearKeys,
    pub chain_id: String,
    pub config: ArmedConfig,
    /// How many positions are armed now.
    pub gauge: prometheus::IntGauge,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The armed positions, by account: the arming task writes them, the firing one reads them.
type Armed = Arc<std::sync::RwLock<HashMap<String, ArmedPosition>>>;

impl<C: ChainClient + 'static> Armory<C> {
    /// Follows blocks until `stop`: at each, fires what the block made liquidatable; beside
    /// that, re-arms (reading positions takes longer than firing, and must not delay it).
    pub async fn run(self, stop: Shutdown) {
        let armory = Arc::new(self);
        let armed: Armed = Arc::default();
        // Stopped with the firing, or when this task is aborted: a read in progress is of no use.
        let _arming = AbortOnDrop(tokio::spawn(
            armory.clone().keep_armed(armed.clone(), stop.clone()),
        ));
        armory.keep_firing(armed, stop).await;
    }

    async fn keep_firing(&self, armed: Armed, stop: Shutdown) {
        let mut liquidatable_before: HashSet<String> = HashSet::new();
        let mut blocks = self.reader.client().subscribe_blocks();
        let stopped = stop.requested();
        tokio::pin!(stopped);
        while let Some(height) = newest_block(&mut blocks, stopped.as_mut()).await {
            let positions: Vec<AccountPosition> = armed
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|a| a.position.clone())
                .collect();
            match self.fire(&positions, &liquidatable_before, height).await {
                Ok(now) => liquidatable_before = now,
                Err(error) => {
                    tracing::debug!(height, %error, "armed liquidations not checked at this block")
                }
            }
        }
    }

    async fn keep_armed(self: Arc<Self>, armed: Armed, stop: Shutdown) {
        let mut blocks = self.reader.client().subscribe_blocks();
        let stopped = stop.requested();
        tokio::pin!(stopped);
        while let Some(height) = newest_block(&mut blocks, stopped.as_mut()).await {
            if let Err(error) = self.arm(&armed, height).await {
                tracing::debug!(height, %error, "cannot re-arm");
            }
        }
    }

    /// Queues the armed accounts that block `height` made liquidatable; answers every armed
    /// account liquidatable at it. One still liquidatable since the block before (not yet
    /// liquidated, or not worth a tx) is left to the health checkers, which queue it again at
    /// each block: the armory is for the block that moves the price.
    async fn fire(
        &self,
        positions: &[AccountPosition],
        liquidatable_before: &HashSet<String>,
        height: u64,
    ) -> anyhow::Result<HashSet<String>> {
        if positions.is_empty() {
            return Ok(HashSet::new());
        }
        let snapshot = self.reader.snapshot_at_least(height).await?;
        let found_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let found = liquidatable(&snapshot, positions.iter(), &self.chain_id, found_at_ms);
        let mut now = HashSet::with_capacity(found.len());
        let mut candidates = Vec::new();
        for candidate in found {
            let account = candidate.account.as_string();
            if !liquidatable_before.contains(&account) {
                candidates.push(candidate);
            }
            now.insert(account);
        }
        if !candidates.is_empty() {
            self.queue.push(&candidates).await?;
            tracing::info!(
                height = snapshot.height,
                queued = candidates.len(),
                "armed liquidations queued as the block came"
            );
        }
        Ok(now)
    }

    /// Keeps `armed` to the lowest of the near set, reading the new ones and the stale ones.
    async fn arm(&self, armed: &Armed, height: u64) -> anyhow::Result<()> {
        if self.config.accounts == 0 {
            return Ok(());
        }
        let near: Vec<String> = redis::cmd("ZRANGE")
            .arg(&self.near.all)
            .arg("-inf")
            .arg(format!("({}", self.config.below_hf))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(self.config.accounts)
            .query_async(&mut self.redis.clone())
            .await?;
        let due: Vec<String> = {
            let mut armed = armed.write().unwrap_or_else(|p| p.into_inner());
            let listed: HashSet<&String> = near.iter().collect();
            armed.retain(|account, _| listed.contains(account));
            self.gauge.set(armed.len() as i64);
            near.iter()
                .filter(|account| {
                    armed
                        .get(*account)
                        .is_none_or(|a| a.read_at.elapsed() >= REFRESH)
                })
                .cloned()
                .collect()
        };
        let reads = stream::iter(due)
            .map(|account| async move {
                let key = AccountKey::Address(account.clone());
                (account, self.reader.read_account(&key, height).await)
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let mut armed = armed.write().unwrap_or_else(|p| p.into_inner());
        for (account, read) in reads {
            match read {
                Ok(position) => {
                    armed.insert(
                        account,
                        ArmedPosition {
                            position,
                            read_at: std::time::Instant::now(),
                        },
                    );
                }
                Err(error) => tracing::debug!(%account, %error, "cannot arm"),
            }
        }
        self.gauge.set(armed.len() as i64);
        Ok(())
    }
}

/// The height of the next block, or of the newest one when several came meanwhile (only the
/// newest block's prices matter); `None` once `stopped` resolves or the feed ends.
async fn newest_block(
    blocks: &mut redline_chain::BlockStream,
    stopped: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<u64> {
    let mut block = tokio::select! {
        block = blocks.next() => block?,
        () = stopped => return None,
    };
    while let Some(Some(newer)) = blocks.next().now_or_never() {
        block = newer;
    }
    Some(block.height)
}

/// The candidates, among `positions`, that `snapshot`'s prices make liquidatable, each with
/// the plan unlimited funds would make at the snapshot's block time (its profit is the queue's
/// priority; the worker plans again for its inclusion window and with its own funds). Priced at
/// that one time, a healthy position costs one health computation.
pub fn liquidatable<'a>(
    snapshot: &MarketSnapshot,
    positions: impl Iterator<Item = &'a AccountPosition>,
    chain_id: &str,
    found_at_ms: u64,
) -> Vec<LiquidationCandidate> {
    let unlimited: BTreeMap<String, Uint128> = snapshot
        .markets
        .keys()
        .map(|denom| (denom.clone(), Uint128::MAX))
        .collect();
    let at = snapshot.block_time_secs;
    positions
        .filter_map(|position| {
            let plan = PlanContext::new(snapshot, position, at, at)
                .and_then(|context| context.best_plan(&unlimited))
                .ok()?;
            let profit = snapshot.prices.to_usd(plan.expected_profit);
            Some(LiquidationCandidate {
                chain_id: chain_id.to_owned(),
                protocol: ProtocolKind::RedBank,
                account: AccountKey::Address(position.account.clone()),
                height: snapshot.height,
                found_at_ms,
                health: plan.health_before.clone(),
                plan: Some(LiquidationPlan {
                    debt_denom: plan.debt_denom,
                    collateral_denom: plan.collateral_denom,
                    debt_to_repay: plan.amounts.debt_amount_to_repay,
                    collateral_received: plan.amounts.collateral_amount_received_by_liquidator,
                    expected_profit_usd: Decimal::try_from(profit.max(Value::zero()))
                        .unwrap_or_default(),
                    from_lend: false,
                }),
                armed: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{position, snapshot};
    use testkit::fixtures::dec;

    #[test]
    fn a_price_that_crosses_the_line_fires_the_armed_position_and_no_other() {
        // 10,000 uatom at a liquidation threshold of 0.8 against 65,000 uusdc of debt:
        // HF = 10,000 × price × 0.8 / 65,000, so 1.23 at ATOM 10 and 0.923 at 7.5.
        let under_water = position(&[("uatom", 10_000)], &[("uusdc", 65_000)]);
        let mut safe = position(&[("uatom", 20_000)], &[("uusdc", 65_000)]);
        safe.account = "osmo1safe".into();
        let armed = [under_water, safe];

        let before = liquidatable(&snapshot("10"), armed.iter(), "devnet-1", 7);
        assert!(before.is_empty(), "{before:?}");

        // At 7.5 the second one still has HF 20,000 × 7.5 × 0.8 / 65,000 = 1.846.
        let after = liquidatable(&snapshot("7.5"), armed.iter(), "devnet-1", 7);
        assert_eq!(after.len(), 1, "{after:?}");
        let candidate = &after[0];
        assert_eq!(candidate.account, AccountKey::Address("osmo1user".into()));
        assert_eq!(candidate.height, 5);
        assert_eq!(candidate.found_at_ms, 7);
        assert_eq!(candidate.protocol, ProtocolKind::RedBank);
        assert!(candidate.armed);
        // 60,000 / 65,000 = 0.923076923076923076 (the contract's decimal, truncated).
        assert_eq!(
            candidate.health.liquidation_health_factor,
            Some(dec("0.923076923076923076"))
        );
        let plan = candidate.plan.as_ref().unwrap();
        assert_eq!(
            (plan.debt_denom.as_str(), plan.collateral_denom.as_str()),
            ("uusdc", "uatom")
        );
        // Repaid up to the target-health cap: more than the 30,000 measured on the contracts
        // for that amount, less than the whole debt; profitable.
        assert!(
            plan.debt_to_repay > Uint128::new(30_000) && plan.debt_to_repay < Uint128::new(65_000)
        );
        assert!(plan.expected_profit_usd > Decimal::zero());
    }
}
