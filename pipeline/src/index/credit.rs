//! The credit-account book: every credit account with debt, in its stored form, and per-block
//! snapshots for their health, in Redis under the Rover namespace (`<prefix>:<chain_id>:rover`).
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `N:meta` | hash | `last_indexed_height` |
//! | `N:accounts` | hash | field = account id, value = JSON [`StoredCreditAccount`] |
//! | `N:block:<height>` | string, TTL | JSON [`CreditSnapshot`] |
//!
//! Credit accounts number in the thousands, not millions: one hash read whole per job is enough
//! and keeps the book a plain JSON mirror of the contracts' storage.

use std::time::Duration;

use mars::types::{CreditManagerDebts, StoredCreditAccount};
use serde::{Deserialize, Serialize};

use super::{get_json, redis_error, set_json_expiring, BlockSnapshot, IndexError, IndexNamespace};
use crate::redis_conn::RedisConn;

/// What credit-account health needs at one block besides the accounts: the block's markets,
/// prices, params and time, and the credit manager's debt totals that turn shares into amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditSnapshot {
    pub block: BlockSnapshot,
    pub manager_debts: CreditManagerDebts,
}

/// A credit account entry that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditDecodeError {
    pub account: String,
    pub reason: String,
}

/// The credit-account book of one chain. Cheap to clone.
#[derive(Clone)]
pub struct CreditBook {
    conn: RedisConn,
    namespace: IndexNamespace,
}

impl CreditBook {
    pub fn new(conn: RedisConn, namespace: IndexNamespace) -> Self {
        CreditBook { conn, namespace }
    }

    pub fn namespace(&self) -> &IndexNamespace {
        &self.namespace
    }

    fn accounts_key(&self) -> String {
        format!("{}:accounts", self.namespace.as_str())
    }

    /// Replaces the whole book with `accounts` (a full discovery) at `height`, atomically.
    pub async fn replace(
        &self,
        height: u64,
        accounts: &[StoredCreditAccount],
    ) -> Result<(), IndexError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("DEL").arg(self.accounts_key()).ignore();
        self.stage_changes(&mut pipe, height, accounts, &[]);
        self.run(pipe, format!("replacing the credit accounts at {height}"))
            .await
    }

    /// One block's changes (accounts re-read with debt, accounts without debt any more) and
    /// `height` as indexed, atomically.
    pub async fn apply(
        &self,
        height: u64,
        put: &[StoredCreditAccount],
        removed: &[u64],
    ) -> Result<(), IndexError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.stage_changes(&mut pipe, height, put, removed);
        self.run(
            pipe,
            format!("applying block {height} to the credit accounts"),
        )
        .await
    }

    fn stage_changes(
        &self,
        pipe: &mut redis::Pipeline,
        height: u64,
        put: &[StoredCreditAccount],
        removed: &[u64],
    ) {
        for account in put {
            let json = serde_json::to_vec(account).expect("credit accounts always serialise");
            pipe.cmd("HSET")
                .arg(self.accounts_key())
                .arg(account.account_id)
                .arg(json)
                .ignore();
        }
        for id in removed {
            pipe.cmd("HDEL").arg(self.accounts_key()).arg(id).ignore();
        }
        pipe.cmd("HSET")
            .arg(self.namespace.meta())
            .arg("last_indexed_height")
            .arg(height)
            .ignore();
    }

    async fn run(&self, pipe: redis::Pipeline, what: String) -> Result<(), IndexError> {
        let () = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error(what))?;
        Ok(())
    }

    /// The last block applied; `None` before the first discovery.
    pub async fn last_indexed_height(&self) -> Result<Option<u64>, IndexError> {
        let value: Option<String> = redis::cmd("HGET")
            .arg(self.namespace.meta())
            .arg("last_indexed_height")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("reading the credit book's height"))?;
        value
            .map(|v| {
                v.parse().map_err(|_| IndexError::BadMeta {
                    namespace: self.namespace.clone(),
                    field: "last_indexed_height",
                    value: v,
                })
            })
            .transpose()
    }

    /// Every account in the book, and the entries that could not be read.
    pub async fn accounts(
        &self,
    ) -> Result<(Vec<StoredCreditAccount>, Vec<CreditDecodeError>), IndexError> {
        let entries: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(self.accounts_key())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("reading the credit accounts"))?;
        let mut accounts = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for (account, json) in entries {
            match serde_json::from_slice(&json) {
                Ok(stored) => accounts.push(stored),
                Err(e) => errors.push(CreditDecodeError {
                    account,
                    reason: e.to_string(),
                }),
            }
        }
        accounts.sort_by_key(|a: &StoredCreditAccount| a.account_id);
        Ok((accounts, errors))
    }

    pub async fn account_count(&self) -> Result<u64, IndexError> {
        redis::cmd("HLEN")
            .arg(self.accounts_key())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("counting the credit accounts"))
    }

    /// Stores the snapshot of `snapshot.block.height`, expiring after `ttl`.
    pub async fn write_snapshot(
        &self,
        snapshot: &CreditSnapshot,
        ttl: Duration,
    ) -> Result<(), IndexError> {
        let height = snapshot.block.height;
        let key = self.namespace.block(height);
        let what = format!("writing credit snapshot {height}");
        set_json_expiring(&mut self.conn.clone(), &key, snapshot, ttl, what).await
    }

    /// The snapshot of block `height`; `None` when never written or expired.
    pub async fn snapshot(&self, height: u64) -> Result<Option<CreditSnapshot>, IndexError> {
        let what = format!("reading credit snapshot {height}");
        get_json(&mut self.conn.clone(), &self.namespace.block(height), what).await
    }
}
