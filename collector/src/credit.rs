//! Credit accounts beside the Red Bank: the credit book follows the same blocks as the
//! position index. A block's credit-manager events name the accounts it touched; those are
//! re-read whole (stored form) and written with the block's height. The book is rebuilt by a
//! full discovery when this process starts, after any gap (a block it did not apply) and every
//! `--credit-rediscover-blocks` blocks; at the tip the block's credit snapshot is written and
//! one health-check job covers every credit account.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use clap::Args;
use mars::types::StoredCreditAccount;
use redline_chain::{BlockResults, ChainClient};
use redline_pipeline::index::credit::{CreditBook, CreditSnapshot};
use redline_pipeline::index::BlockSnapshot;
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind};
use redline_pipeline::queue::Queue as _;
use redline_protocol::rover::Rover;
use redline_protocol::{AccountKey, Protocol as _, ScanSettings};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::service::Collector;

#[derive(Debug, Clone, Args)]
#[group(id = "credit")]
pub struct Config {
    /// Rebuild the credit-account book from a full scan every this many blocks (it follows
    /// the credit manager's events in between).
    #[arg(long, env = "CREDIT_REDISCOVER_BLOCKS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub credit_rediscover_blocks: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            credit_rediscover_blocks: 600,
        }
    }
}

/// How a periodic rediscovery's scan differed from the book the events had kept (the accounts
/// the block itself touched left out: they were re-read with it). Anything here is an event the
/// book missed, repaired by the rediscovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditDrift {
    /// Credit accounts with debt on chain the book lacked.
    pub missing: usize,
    /// In the book with another stored form than on chain.
    pub stale: usize,
    /// In the book but without debt on chain.
    pub extra: usize,
}

impl CreditDrift {
    /// `book` against `scanned`, leaving out `touched`.
    pub fn between(
        book: &[StoredCreditAccount],
        scanned: &[StoredCreditAccount],
        touched: &BTreeSet<u64>,
    ) -> Self {
        let book: BTreeMap<u64, &StoredCreditAccount> =
            book.iter().map(|a| (a.account_id, a)).collect();
        let scanned: BTreeMap<u64, &StoredCreditAccount> =
            scanned.iter().map(|a| (a.account_id, a)).collect();
        let mut drift = CreditDrift::default();
        for (id, account) in &scanned {
            match book.get(id) {
                _ if touched.contains(id) => {}
                None => drift.missing += 1,
                Some(kept) if kept != account => drift.stale += 1,
                Some(_) => {}
            }
        }
        drift.extra = book
            .keys()
            .filter(|id| !scanned.contains_key(id) && !touched.contains(id))
            .count();
        drift
    }

    pub fn total(&self) -> usize {
        self.missing + self.stale + self.extra
    }
}

/// The credit manager read through `rover`, written to `book`.
pub(crate) struct CreditIndexer<C> {
    pub rover: Rover<C>,
    pub book: CreditBook,
    /// The last block applied and the last full discovery, by this process.
    synced: Mutex<Option<(u64, u64)>>,
}

impl<C: ChainClient> CreditIndexer<C> {
    pub fn new(rover: Rover<C>, book: CreditBook) -> Self {
        CreditIndexer {
            rover,
            book,
            synced: Mutex::new(None),
        }
    }

    /// The book brought to block `height`: the accounts `touched` re-read when the book is at
    /// `height − 1`, a full discovery otherwise (or when one is due). A discovery that replaces a
    /// book followed up to the block before returns how the two differed.
    pub async fn apply_block(
        &self,
        height: u64,
        touched: &BTreeSet<u64>,
        config: &Config,
        settings: ScanSettings,
    ) -> anyhow::Result<Option<CreditDrift>> {
        let mut synced = self.synced.lock().await;
        let followed = matches!(*synced, Some((last, _)) if last + 1 == height);
        let follows = match *synced {
            Some((last, discovered)) if last + 1 == height => {
                height - discovered < config.credit_rediscover_blocks
            }
            Some((last, _)) if last == height => return Ok(None),
            _ => false,
        };
        if !follows {
            let found = self
                .rover
                .discover(settings, &|message| tracing::debug!("{message}"))
                .await
                .context("scanning the credit manager for credit accounts with debt")?;
            let accounts: Vec<_> = found.accounts.into_values().collect();
            let drift = if followed {
                let (kept, _) = self.book.accounts().await?;
                Some(CreditDrift::between(&kept, &accounts, touched))
            } else {
                None
            };
            self.book.replace(height, &accounts).await?;
            if synced.is_none() {
                info!(
                    accounts = accounts.len(),
                    height, "credit accounts discovered"
                );
            }
            *synced = Some((height, height));
            return Ok(drift);
        }
        let (mut put, mut removed) = (Vec::new(), Vec::new());
        for id in touched {
            let key = AccountKey::CreditAccount(*id);
            match self.rover.read_position(&key, None).await {
                Ok(Some(account)) if account.has_debt() => put.push(account),
                Ok(_) => removed.push(*id),
                Err(e) if e.is_transient() => {
                    return Err(
                        anyhow::Error::new(e).context(format!("re-reading credit account {id}"))
                    )
                }
                Err(e) => {
                    warn!(account = id, error = %e, "cannot re-read a credit account named in a credit-manager event");
                }
            }
        }
        self.book.apply(height, &put, &removed).await?;
        *synced = synced.map(|(_, discovered)| (height, discovered));
        Ok(None)
    }

    /// Writes the credit snapshot of `block` (the Red Bank's snapshot of the same block plus the
    /// credit manager's debt totals) and returns its health-check job.
    pub async fn publish(
        &self,
        block: BlockSnapshot,
        ttl: std::time::Duration,
    ) -> anyhow::Result<HealthCheckJob> {
        let manager_debts = self
            .rover
            .read_snapshot(None)
            .await
            .context("reading the credit manager's debt totals")?;
        let accounts = self.book.account_count().await?;
        let job = HealthCheckJob {
            chain_id: block.chain_id.clone(),
            protocol: ProtocolKind::Rover,
            height: block.height,
            bucket_start: 0,
            bucket_end: 1,
            accounts,
        };
        let snapshot = CreditSnapshot {
            block: BlockSnapshot {
                protocol: ProtocolKind::Rover,
                accounts,
                ..block
            },
            manager_debts,
        };
        self.book.write_snapshot(&snapshot, ttl).await?;
        Ok(job)
    }
}

impl<C: ChainClient + Clone + 'static> Collector<C> {
    /// The credit accounts a block touched (none without a credit manager).
    pub(crate) fn credit_touches(&self, results: &BlockResults) -> BTreeSet<u64> {
        match &self.inner.credit {
            Some(credit) => credit.rover.touched(results),
            None => BTreeSet::new(),
        }
    }

    /// Brings the credit book to `height` (nothing without a credit manager).
    pub(crate) async fn apply_credit_block(
        &self,
        height: u64,
        touched: &BTreeSet<u64>,
    ) -> anyhow::Result<()> {
        let Some(credit) = &self.inner.credit else {
            return Ok(());
        };
        let config = &self.inner.config;
        let settings = config.discovery.scan_settings();
        let drift = credit
            .apply_block(height, touched, &config.credit, settings)
            .await?;
        if let Some(drift) = drift.filter(|d| d.total() > 0) {
            warn!(
                height,
                missing = drift.missing,
                stale = drift.stale,
                extra = drift.extra,
                "credit book drift: the rediscovery found accounts the block events had not kept current; repaired"
            );
            let counted = [
                ("credit_missing", drift.missing),
                ("credit_stale", drift.stale),
                ("credit_extra", drift.extra),
            ];
            for (kind, count) in counted {
                let counter = self.inner.metrics.drift_repaired.with_label_values(&[kind]);
                counter.inc_by(count as u64);
            }
        }
        Ok(())
    }

    /// Publishes the credit snapshot of `block` and enqueues its job (nothing without a credit
    /// manager); returns the jobs enqueued.
    pub(crate) async fn publish_credit(&self, block: &BlockSnapshot) -> anyhow::Result<usize> {
        let Some(credit) = &self.inner.credit else {
            return Ok(0);
        };
        self.apply_credit_block(block.height, &BTreeSet::new())
            .await?;
        let ttl = self.inner.config.enqueue.snapshot_ttl();
        let job = credit.publish(block.clone(), ttl).await?;
        self.inner
            .queue
            .enqueue_batch(&[job])
            .await
            .with_context(|| {
                format!(
                    "enqueueing the credit-account job of block {}",
                    block.height
                )
            })?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use cosmwasm_std::Uint128;
    use mars::msg::health::AccountKind;

    use super::*;

    fn account(id: u64, debt_shares: u128) -> StoredCreditAccount {
        StoredCreditAccount {
            account_id: id,
            kind: AccountKind::Default,
            coin_balances: BTreeMap::new(),
            debt_shares: BTreeMap::from([("uusdc".to_string(), Uint128::new(debt_shares))]),
            lends_scaled: BTreeMap::new(),
        }
    }

    /// Book {2, 3, 4, 6} against scan {2, 3', 5, 6'} with 6 touched by the block: 5 is missing,
    /// 3 stale, 4 extra, and 6 (re-read with the block) is not drift.
    #[test]
    fn drift_counts_what_the_book_missed_but_not_what_the_block_touched() {
        let book = [
            account(2, 10),
            account(3, 10),
            account(4, 10),
            account(6, 10),
        ];
        let scanned = [
            account(2, 10),
            account(3, 11),
            account(5, 10),
            account(6, 12),
        ];
        let touched = BTreeSet::from([6]);
        let drift = CreditDrift::between(&book, &scanned, &touched);
        assert_eq!(
            drift,
            CreditDrift {
                missing: 1,
                stale: 1,
                extra: 1
            }
        );
        assert_eq!(drift.total(), 3);
        assert_eq!(CreditDrift::between(&book, &book, &touched).total(), 0);
    }
}
