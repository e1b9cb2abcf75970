//! The position index: every indexed account's scaled positions, plus the market, params and
//! per-block price data needed to compute health off-chain, in Redis.
//!
//! The collector is the only writer; health checkers read. Everything of one chain and one
//! protocol lives under a namespace `<prefix>:<chain_id>:<protocol>` (e.g.
//! `redline:devnet-1:red_bank`), so a second chain or Rover accounts get their own index. On a
//! Redis Cluster the prefix carries a hash tag (`{redline}:devnet-1:red_bank`), so that the
//! per-block `MULTI` and the denom script, which touch many keys, stay in one slot.
//!
//! # Key layout (`N` = namespace)
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `N:meta` | hash | `format` (1), `buckets`, `created_at_ms`, `last_indexed_height`, `last_indexed_time_ns`, `last_reconciled_height` |
//! | `N:bucket:<n>` | hash | field = account address, value = [`codec`] binary positions |
//! | `N:denoms` | list | denom table: element `i` is the denom of [`DenomId`]`(i)`; append-only |
//! | `N:denom_ids` | hash | denom → id (the reverse of `N:denoms`) |
//! | `N:markets` | hash | denom → JSON [`Market`] as the Red Bank stores it |
//! | `N:params` | hash | denom → JSON [`AssetParams`] |
//! | `N:thf` | string | target health factor (`Decimal` text) |
//! | `N:block:<height>` | string, TTL | JSON [`BlockSnapshot`] |
//!
//! An account lives in bucket [`codec::bucket_of`]`(address, buckets)` (FNV-1a of the address
//! bytes modulo the bucket count fixed at creation). Reading all accounts is one `HGETALL` per
//! bucket; values are a few bytes of varints, decoded without JSON.
//!
//! The denom table is append-only, so a reader that loads it *after* reading buckets can
//! resolve every id it read. Ids are assigned by a Lua script (atomic, idempotent).
//!
//! One block's writes (accounts, markets, params, THF, `last_indexed_height`) go through
//! [`PositionIndex::apply_block`] in one `MULTI`/`EXEC`: the index is never half a block ahead.

pub mod codec;
pub mod credit;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clap::Args;
use cosmwasm_std::{Decimal, Timestamp, Uint128};
use redis::{Pipeline, Value};
use serde::{Deserialize, Serialize};

use crate::jobs::ProtocolKind;
use crate::redis_conn::{has_hash_tag, RedisConn};
use mars::msg::red_bank::{Collateral, Debt};
use mars::types::{AssetParams, Market};

pub use codec::CodecError;
pub use mars::types::AccountPositions;

/// Default number of buckets of a new index.
pub const DEFAULT_BUCKETS: u32 = 1024;
/// Fields written per `HSET` when bulk loading.
const BULK_CHUNK: usize = 1_000;
/// Buckets read per pipelined round trip.
const READ_BUCKETS_PER_TRIP: u32 = 16;

const ASSIGN_DENOMS_LUA: &str = include_str!("../lua/index_assign_denoms.lua");

/// Flags shared by the index's writer and readers.
#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// First part of every index key (`<prefix>:<chain_id>:<protocol>:…`), so several
    /// deployments can share one Redis. On a cluster it must contain a hash tag, e.g.
    /// `{redline}`.
    #[arg(long, env = "INDEX_PREFIX", default_value = "redline")]
    pub index_prefix: String,
}

impl Default for IndexArgs {
    fn default() -> Self {
        IndexArgs {
            index_prefix: "redline".into(),
        }
    }
}

impl IndexArgs {
    pub fn namespace(&self, chain_id: &str, protocol: ProtocolKind) -> IndexNamespace {
        IndexNamespace::new(&self.index_prefix, chain_id, protocol)
    }
}

/// `<prefix>:<chain_id>:<protocol>`: where one index lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexNamespace(String);

impl IndexNamespace {
    pub fn new(prefix: &str, chain_id: &str, protocol: ProtocolKind) -> Self {
        IndexNamespace(format!("{prefix}:{chain_id}:{}", protocol.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn meta(&self) -> String {
        format!("{}:meta", self.0)
    }

    pub fn bucket(&self, bucket: u32) -> String {
        format!("{}:bucket:{bucket}", self.0)
    }

    pub fn denoms(&self) -> String {
        format!("{}:denoms", self.0)
    }

    pub fn denom_ids(&self) -> String {
        format!("{}:denom_ids", self.0)
    }

    pub fn markets(&self) -> String {
        format!("{}:markets", self.0)
    }

    pub fn params(&self) -> String {
        format!("{}:params", self.0)
    }

    pub fn thf(&self) -> String {
        format!("{}:thf", self.0)
    }

    pub fn block(&self, height: u64) -> String {
        format!("{}:block:{height}", self.0)
    }
}

impl std::fmt::Display for IndexNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("Redis ({what}): {source}")]
    Redis {
        what: String,
        source: redis::RedisError,
    },
    #[error("index {0} does not exist (no meta); the collector creates it")]
    NotCreated(IndexNamespace),
    #[error("index {namespace}: {field} in meta is `{value}`, not a number")]
    BadMeta {
        namespace: IndexNamespace,
        field: &'static str,
        value: String,
    },
    #[error("index {namespace}: format {found} is not the format {expected} this build reads")]
    Format {
        namespace: IndexNamespace,
        found: u32,
        expected: u32,
    },
    #[error("{key}: {message}")]
    Decode { key: String, message: String },
    #[error("denom id {0} is not in the denom table")]
    UnknownDenomId(u32),
    #[error("index bucket count must be at least 1")]
    ZeroBuckets,
    #[error(
        "index {0}: on a Redis Cluster --index-prefix needs a hash tag, e.g. {{redline}}, so \
         that all of the index's keys share one slot"
    )]
    NoHashTag(IndexNamespace),
}

/// `value` as JSON at `key`, expiring after `ttl`.
pub(crate) async fn set_json_expiring<T: Serialize>(
    conn: &mut RedisConn,
    key: &str,
    value: &T,
    ttl: Duration,
    what: String,
) -> Result<(), IndexError> {
    let json = serde_json::to_vec(value).expect("index values always serialise");
    let () = redis::cmd("SET")
        .arg(key)
        .arg(json)
        .arg("PX")
        .arg(ttl.as_millis().max(1) as u64)
        .query_async(conn)
        .await
        .map_err(redis_error(what))?;
    Ok(())
}

/// The JSON value at `key`; `None` when absent (never written, or expired).
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    conn: &mut RedisConn,
    key: &str,
    what: String,
) -> Result<Option<T>, IndexError> {
    let bytes: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .map_err(redis_error(what))?;
    bytes
        .map(|b| {
            serde_json::from_slice(&b).map_err(|e| IndexError::Decode {
                key: key.to_string(),
                message: e.to_string(),
            })
        })
        .transpose()
}

fn redis_error(what: impl Into<String>) -> impl FnOnce(redis::RedisError) -> IndexError {
    let what = what.into();
    move |source| IndexError::Redis { what, source }
}

/// A small integer standing for a denom in stored account values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DenomId(pub u32);

/// The index's denom table: `DenomId(i)` ↔ the `i`-th denom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenomTable {
    names: Vec<String>,
    ids: HashMap<String, DenomId>,
}

impl DenomTable {
    pub fn from_names(names: Vec<String>) -> Self {
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), DenomId(i as u32)))
            .collect();
        DenomTable { names, ids }
    }

    pub fn name(&self, id: DenomId) -> Option<&str> {
        self.names.get(id.0 as usize).map(String::as_str)
    }

    pub fn id(&self, name: &str) -> Option<DenomId> {
        self.ids.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `(id, denom)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (DenomId, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (DenomId(i as u32), n.as_str()))
    }
}

/// Scaled collateral of one account in one denom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollateralEntry {
    pub denom: DenomId,
    pub amount_scaled: Uint128,
    pub enabled: bool,
}

/// Scaled debt of one account in one denom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebtEntry {
    pub denom: DenomId,
    pub amount_scaled: Uint128,
    pub uncollateralized: bool,
}

/// One indexed account as stored: scaled amounts per denom id (resolve ids with the
/// [`DenomTable`] of the read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedAccount {
    pub address: String,
    pub collaterals: Vec<CollateralEntry>,
    pub debts: Vec<DebtEntry>,
}

impl IndexedAccount {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&self.collaterals, &self.debts)
    }

    pub fn decode(address: String, bytes: &[u8]) -> Result<Self, CodecError> {
        let (collaterals, debts) = codec::decode(bytes)?;
        Ok(IndexedAccount {
            address,
            collaterals,
            debts,
        })
    }

    /// The same positions keyed by denom name.
    pub fn to_positions(&self, denoms: &DenomTable) -> Result<AccountPositions, IndexError> {
        let name = |id: DenomId| {
            denoms
                .name(id)
                .map(str::to_string)
                .ok_or(IndexError::UnknownDenomId(id.0))
        };
        Ok(AccountPositions {
            address: self.address.clone(),
            collaterals: self
                .collaterals
                .iter()
                .map(|c| {
                    Ok((
                        name(c.denom)?,
                        Collateral {
                            amount_scaled: c.amount_scaled,
                            enabled: c.enabled,
                        },
                    ))
                })
                .collect::<Result<_, IndexError>>()?,
            debts: self
                .debts
                .iter()
                .map(|d| {
                    Ok((
                        name(d.denom)?,
                        Debt {
                            amount_scaled: d.amount_scaled,
                            uncollateralized: d.uncollateralized,
                        },
                    ))
                })
                .collect::<Result<_, IndexError>>()?,
        })
    }
}

/// An account entry of a bucket that could not be decoded: counted and skipped by readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDecodeError {
    pub bucket: u32,
    /// The hash field (the address, lossily as text when it is not UTF-8).
    pub address: String,
    pub reason: String,
}

impl std::fmt::Display for AccountDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bucket {} account {}: {}",
            self.bucket, self.address, self.reason
        )
    }
}

/// What [`PositionIndex::read_buckets`] found.
#[derive(Debug, Clone, Default)]
pub struct BucketRead {
    pub accounts: Vec<IndexedAccount>,
    /// Entries that could not be decoded (bad bytes, or a denom id missing from the table).
    pub errors: Vec<AccountDecodeError>,
    /// The denom table, loaded after the buckets: it resolves every id in `accounts`.
    pub denoms: DenomTable,
}

/// The index's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexMeta {
    pub format: u32,
    pub buckets: u32,
    pub created_at_ms: u64,
    /// The last block whose changes are in the index; `None` until discovery completed.
    pub last_indexed_height: Option<u64>,
    /// Block time of `last_indexed_height`.
    pub last_indexed_time: Option<Timestamp>,
    pub last_reconciled_height: Option<u64>,
}

/// What a health checker needs besides positions to compute health at one block. Written by
/// the collector before it enqueues that block's jobs; self-contained (params and THF are
/// copied here so a checker never mixes blocks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSnapshot {
    pub chain_id: String,
    pub protocol: ProtocolKind,
    pub height: u64,
    /// Block header time; interest accrues from each market's `indexes_last_updated` to here.
    pub time: Timestamp,
    /// Oracle `prices` with kind `default`, denom → price.
    pub prices: BTreeMap<String, Decimal>,
    /// Oracle `prices` with kind `liquidation`, denom → price.
    pub liquidation_prices: BTreeMap<String, Decimal>,
    /// Markets as the Red Bank answered right after this block (the node answers at its latest
    /// state, so a market touched by a later block can carry an `indexes_last_updated` past
    /// `time`: accrue interest from `indexes_last_updated` to `max(time, indexes_last_updated)`).
    pub markets: Vec<Market>,
    pub params: Vec<AssetParams>,
    pub target_health_factor: Decimal,
    /// Accounts in the index when the snapshot was written.
    pub accounts: u64,
}

/// A change to one account within a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    Put(IndexedAccount),
    Remove(String),
}

impl AccountChange {
    pub fn address(&self) -> &str {
        match self {
            AccountChange::Put(a) => &a.address,
            AccountChange::Remove(a) => a,
        }
    }
}

/// Everything one block changes in the index, applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUpdate {
    pub height: u64,
    pub time: Option<Timestamp>,
    pub accounts: Vec<AccountChange>,
    /// Markets to store (replacing those denoms' entries); empty leaves them.
    pub markets: Vec<Market>,
    pub params: Vec<AssetParams>,
    pub target_health_factor: Option<Decimal>,
    /// Set when this update is the result of a full scan.
    pub reconciled: bool,
}

/// The index of one chain and protocol in Redis. Cheap to clone.
#[derive(Clone)]
pub struct PositionIndex {
    conn: RedisConn,
    namespace: IndexNamespace,
    buckets: u32,
    denoms: Arc<RwLock<DenomTable>>,
    assign_denoms: Arc<redis::Script>,
}

impl std::fmt::Debug for PositionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionIndex")
            .field("namespace", &self.namespace)
            .field("buckets", &self.buckets)
            .finish()
    }
}

/// Current index format (meta `format`).
pub const INDEX_FORMAT: u32 = 1;

impl PositionIndex {
    /// Opens the index at `namespace`, creating its meta with `buckets` when it does not exist.
    /// An existing index keeps its own bucket count (a different `buckets` is logged, not an
    /// error: it only applies to new indexes).
    pub async fn create_or_open(
        conn: RedisConn,
        namespace: IndexNamespace,
        buckets: u32,
    ) -> Result<Self, IndexError> {
        if buckets == 0 {
            return Err(IndexError::ZeroBuckets);
        }
        check_cluster_namespace(&conn, &namespace)?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSETNX")
            .arg(namespace.meta())
            .arg("format")
            .arg(INDEX_FORMAT)
            .ignore()
            .cmd("HSETNX")
            .arg(namespace.meta())
            .arg("buckets")
            .arg(buckets)
            .ignore()
            .cmd("HSETNX")
            .arg(namespace.meta())
            .arg("created_at_ms")
            .arg(now_ms)
            .ignore();
        let () = pipe
            .query_async(&mut conn.clone())
            .await
            .map_err(redis_error(format!("creating index {namespace}")))?;
        let index = Self::open(conn, namespace).await?;
        if index.buckets != buckets {
            tracing::info!(
                namespace = %index.namespace,
                stored = index.buckets,
                requested = buckets,
                "index exists with another bucket count; keeping the stored one"
            );
        }
        Ok(index)
    }

    /// Writes the meta's `format`, `buckets` and `created_at_ms` again where they are missing
    /// and reloads the denom table: after Redis lost the index (restarted without persistence,
    /// failed over to an empty replica), a rebuild starts from a well-formed empty index
    /// instead of cached denom ids that Redis no longer knows.
    pub async fn recreate_meta(&self) -> Result<(), IndexError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let meta = self.namespace.meta();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("format")
            .arg(INDEX_FORMAT)
            .ignore()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("buckets")
            .arg(self.buckets)
            .ignore()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("created_at_ms")
            .arg(now_ms)
            .ignore();
        let () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("re-creating index {}", self.namespace)))?;
        self.reload_denoms().await?;
        Ok(())
    }

    /// Opens an existing index ([`IndexError::NotCreated`] when there is none).
    pub async fn open(conn: RedisConn, namespace: IndexNamespace) -> Result<Self, IndexError> {
        check_cluster_namespace(&conn, &namespace)?;
        let meta = read_meta(&mut conn.clone(), &namespace).await?;
        if meta.format != INDEX_FORMAT {
            return Err(IndexError::Format {
                namespace,
                found: meta.format,
                expected: INDEX_FORMAT,
            });
        }
        if meta.buckets == 0 {
            return Err(IndexError::BadMeta {
                namespace,
                field: "buckets",
                value: "0".into(),
            });
        }
        let index = PositionIndex {
            conn,
            buckets: meta.buckets,
            namespace,
            denoms: Arc::default(),
            assign_denoms: Arc::new(redis::Script::new(ASSIGN_DENOMS_LUA)),
        };
        index.reload_denoms().await?;
        Ok(index)
    }

    pub fn namespace(&self) -> &IndexNamespace {
        &self.namespace
    }

    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    pub fn bucket_of(&self, address: &str) -> u32 {
        codec::bucket_of(address.as_bytes(), self.buckets)
    }

    fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    pub async fn meta(&self) -> Result<IndexMeta, IndexError> {
        read_meta(&mut self.conn(), &self.namespace).await
    }

    /// The last block whose changes are in the index; `None` before discovery completed.
    pub async fn last_indexed_height(&self) -> Result<Option<u64>, IndexError> {
        Ok(self.meta().await?.last_indexed_height)
    }

    /// Records that the index is complete up to `height` (outside a block update: after
    /// discovery's bulk load).
    pub async fn set_last_indexed(
        &self,
        height: u64,
        time: Option<Timestamp>,
    ) -> Result<(), IndexError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        push_last_indexed(&mut pipe, &self.namespace, height, time);
        let () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error("recording last_indexed_height"))?;
        Ok(())
    }

    pub async fn set_last_reconciled_height(&self, height: u64) -> Result<(), IndexError> {
        let () = redis::cmd("HSET")
            .arg(self.namespace.meta())
            .arg("last_reconciled_height")
            .arg(height)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error("recording last_reconciled_height"))?;
        Ok(())
    }

    /// The cached denom table (as of the last load or assignment).
    pub fn cached_denoms(&self) -> DenomTable {
        self.denoms.read().expect("denom cache lock").clone()
    }

    /// Loads the denom table from Redis (and refreshes the cache).
    pub async fn reload_denoms(&self) -> Result<DenomTable, IndexError> {
        let names: Vec<String> = redis::cmd("LRANGE")
            .arg(self.namespace.denoms())
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error("reading the denom table"))?;
        let table = DenomTable::from_names(names);
        *self.denoms.write().expect("denom cache lock") = table.clone();
        Ok(table)
    }

    /// Ids of `names`, assigning new ids to denoms not yet in the table.
    pub async fn denom_ids(&self, names: &[&str]) -> Result<Vec<DenomId>, IndexError> {
        {
            let cache = self.denoms.read().expect("denom cache lock");
            if let Some(ids) = names
                .iter()
                .map(|n| cache.id(n))
                .collect::<Option<Vec<_>>>()
            {
                return Ok(ids);
            }
        }
        let mut invocation = self.assign_denoms.prepare_invoke();
        invocation
            .key(self.namespace.denom_ids())
            .key(self.namespace.denoms());
        for name in names {
            invocation.arg(*name);
        }
        let ids: Vec<u32> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error("assigning denom ids"))?;
        self.reload_denoms().await?;
        Ok(ids.into_iter().map(DenomId).collect())
    }

    /// The stored form of `positions`, assigning denom ids as needed.
    pub async fn to_indexed(
        &self,
        positions: &AccountPositions,
    ) -> Result<IndexedAccount, IndexError> {
        let names: Vec<&str> = positions
            .collaterals
            .keys()
            .chain(positions.debts.keys())
            .map(String::as_str)
            .collect();
        let ids = self.denom_ids(&names).await?;
        let (coll_ids, debt_ids) = ids.split_at(positions.collaterals.len());
        Ok(IndexedAccount {
            address: positions.address.clone(),
            collaterals: positions
                .collaterals
                .values()
                .zip(coll_ids)
                .map(|(c, id)| CollateralEntry {
                    denom: *id,
                    amount_scaled: c.amount_scaled,
                    enabled: c.enabled,
                })
                .collect(),
            debts: positions
                .debts
                .values()
                .zip(debt_ids)
                .map(|(d, id)| DebtEntry {
                    denom: *id,
                    amount_scaled: d.amount_scaled,
                    uncollateralized: d.uncollateralized,
                })
                .collect(),
        })
    }

    /// Writes accounts (bulk load, pipelined, not atomic as a whole): discovery and benchmarks.
    pub async fn put_accounts(&self, accounts: &[IndexedAccount]) -> Result<(), IndexError> {
        let mut by_bucket: BTreeMap<u32, Vec<&IndexedAccount>> = BTreeMap::new();
        for account in accounts {
            by_bucket
                .entry(self.bucket_of(&account.address))
                .or_default()
                .push(account);
        }
        let mut pipe = redis::pipe();
        let mut fields = 0usize;
        for (bucket, accounts) in by_bucket {
            for chunk in accounts.chunks(BULK_CHUNK) {
                let cmd = pipe.cmd("HSET").arg(self.namespace.bucket(bucket));
                for account in chunk {
                    cmd.arg(account.address.as_bytes()).arg(account.encode());
                }
                cmd.ignore();
                fields += chunk.len();
                if fields >= 20 * BULK_CHUNK {
                    let () = pipe
                        .query_async(&mut self.conn())
                        .await
                        .map_err(redis_error("writing accounts"))?;
                    pipe = redis::pipe();
                    fields = 0;
                }
            }
        }
        if fields > 0 {
            let () = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(redis_error("writing accounts"))?;
        }
        Ok(())
    }

    /// Removes one account; `true` when it was indexed.
    pub async fn remove_account(&self, address: &str) -> Result<bool, IndexError> {
        let removed: u64 = redis::cmd("HDEL")
            .arg(self.namespace.bucket(self.bucket_of(address)))
            .arg(address)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("removing account {address}")))?;
        Ok(removed > 0)
    }

    /// The raw stored value of one account (tests, diagnostics).
    pub async fn account_raw(&self, address: &str) -> Result<Option<Vec<u8>>, IndexError> {
        redis::cmd("HGET")
            .arg(self.namespace.bucket(self.bucket_of(address)))
            .arg(address)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("reading account {address}")))
    }

    /// Overwrites one account's stored bytes as they are (tests, diagnostics).
    pub async fn put_account_raw(&self, address: &str, value: &[u8]) -> Result<(), IndexError> {
        let () = redis::cmd("HSET")
            .arg(self.namespace.bucket(self.bucket_of(address)))
            .arg(address)
            .arg(value)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("writing account {address}")))?;
        Ok(())
    }

    /// One account, decoded; `Ok(None)` when not indexed.
    pub async fn account(&self, address: &str) -> Result<Option<IndexedAccount>, IndexError> {
        let key = self.namespace.bucket(self.bucket_of(address));
        match self.account_raw(address).await? {
            None => Ok(None),
            Some(bytes) => IndexedAccount::decode(address.to_string(), &bytes)
                .map(Some)
                .map_err(|e| IndexError::Decode {
                    key: format!("{key} field {address}"),
                    message: e.to_string(),
                }),
        }
    }

    /// One account keyed by denom names; `Ok(None)` when not indexed.
    pub async fn account_positions(
        &self,
        address: &str,
    ) -> Result<Option<AccountPositions>, IndexError> {
        let Some(account) = self.account(address).await? else {
            return Ok(None);
        };
        let mut denoms = self.cached_denoms();
        if account
            .collaterals
            .iter()
            .map(|c| c.denom)
            .chain(account.debts.iter().map(|d| d.denom))
            .any(|id| denoms.name(id).is_none())
        {
            denoms = self.reload_denoms().await?;
        }
        account.to_positions(&denoms).map(Some)
    }

    /// Every account of buckets `range` (clamped to the bucket count), decoded. Undecodable
    /// entries are returned in [`BucketRead::errors`], never failing the read.
    pub async fn read_buckets(&self, range: Range<u32>) -> Result<BucketRead, IndexError> {
        let range = range.start.min(self.buckets)..range.end.min(self.buckets);
        let mut read = BucketRead::default();
        let mut start = range.start;
        while start < range.end {
            let end = (start + READ_BUCKETS_PER_TRIP).min(range.end);
            let mut pipe = redis::pipe();
            for bucket in start..end {
                pipe.cmd("HGETALL").arg(self.namespace.bucket(bucket));
            }
            let replies: Vec<Value> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(redis_error(format!("reading buckets {start}..{end}")))?;
            for (bucket, reply) in (start..end).zip(replies) {
                decode_bucket(bucket, reply, &mut read)?;
            }
            start = end;
        }
        read.denoms = self.reload_denoms().await?;
        let denom_count = read.denoms.len() as u32;
        let bad = |a: &IndexedAccount| {
            a.collaterals
                .iter()
                .map(|c| c.denom)
                .chain(a.debts.iter().map(|d| d.denom))
                .find(|id| id.0 >= denom_count)
        };
        if read.accounts.iter().any(|a| bad(a).is_some()) {
            let accounts = std::mem::take(&mut read.accounts);
            for account in accounts {
                match bad(&account) {
                    Some(id) => read.errors.push(AccountDecodeError {
                        bucket: self.bucket_of(&account.address),
                        address: account.address,
                        reason: format!("denom id {} is not in the denom table", id.0),
                    }),
                    None => read.accounts.push(account),
                }
            }
        }
        Ok(read)
    }

    /// Accounts per bucket (pipelined `HLEN`), index = bucket.
    pub async fn bucket_sizes(&self) -> Result<Vec<u64>, IndexError> {
        let mut sizes = Vec::with_capacity(self.buckets as usize);
        let mut start = 0;
        while start < self.buckets {
            let end = (start + 1024).min(self.buckets);
            let mut pipe = redis::pipe();
            for bucket in start..end {
                pipe.cmd("HLEN").arg(self.namespace.bucket(bucket));
            }
            let part: Vec<u64> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(redis_error("counting bucket sizes"))?;
            sizes.extend(part);
            start = end;
        }
        Ok(sizes)
    }

    pub async fn account_count(&self) -> Result<u64, IndexError> {
        Ok(self.bucket_sizes().await?.iter().sum())
    }

    pub async fn markets(&self) -> Result<Vec<Market>, IndexError> {
        self.json_hash_values(self.namespace.markets()).await
    }

    pub async fn set_markets(&self, markets: &[Market]) -> Result<(), IndexError> {
        self.write_json_hash(self.namespace.markets(), markets, |m| &m.denom, "markets")
            .await
    }

    pub async fn params(&self) -> Result<Vec<AssetParams>, IndexError> {
        self.json_hash_values(self.namespace.params()).await
    }

    pub async fn set_params(&self, params: &[AssetParams]) -> Result<(), IndexError> {
        self.write_json_hash(
            self.namespace.params(),
            params,
            |p| &p.denom,
            "asset params",
        )
        .await
    }

    /// The target health factor; `None` before the collector stored it.
    pub async fn thf(&self) -> Result<Option<Decimal>, IndexError> {
        let key = self.namespace.thf();
        let text: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error("reading the target health factor"))?;
        text.map(|t| {
            t.parse()
                .map_err(|e: cosmwasm_std::StdError| IndexError::Decode {
                    key: key.clone(),
                    message: e.to_string(),
                })
        })
        .transpose()
    }

    pub async fn set_thf(&self, thf: Decimal) -> Result<(), IndexError> {
        let () = redis::cmd("SET")
            .arg(self.namespace.thf())
            .arg(thf.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error("writing the target health factor"))?;
        Ok(())
    }

    /// Stores the snapshot of `snapshot.height`, expiring after `ttl`.
    pub async fn write_block_snapshot(
        &self,
        snapshot: &BlockSnapshot,
        ttl: Duration,
    ) -> Result<(), IndexError> {
        let what = format!("writing block snapshot {}", snapshot.height);
        set_json_expiring(
            &mut self.conn(),
            &self.namespace.block(snapshot.height),
            snapshot,
            ttl,
            what,
        )
        .await
    }

    /// The snapshot of block `height`; `None` when never written or expired.
    pub async fn block_snapshot(&self, height: u64) -> Result<Option<BlockSnapshot>, IndexError> {
        let what = format!("reading block snapshot {height}");
        get_json(&mut self.conn(), &self.namespace.block(height), what).await
    }

    /// Applies one block's changes and records `update.height` as indexed, in one
    /// `MULTI`/`EXEC`.
    pub async fn apply_block(&self, update: &BlockUpdate) -> Result<(), IndexError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for change in &update.accounts {
            let key = self.namespace.bucket(self.bucket_of(change.address()));
            match change {
                AccountChange::Put(account) => {
                    pipe.cmd("HSET")
                        .arg(key)
                        .arg(account.address.as_bytes())
                        .arg(account.encode())
                        .ignore();
                }
                AccountChange::Remove(address) => {
                    pipe.cmd("HDEL").arg(key).arg(address.as_bytes()).ignore();
                }
            }
        }
        push_json_hash(&mut pipe, self.namespace.markets(), &update.markets, |m| {
            &m.denom
        });
        push_json_hash(&mut pipe, self.namespace.params(), &update.params, |p| {
            &p.denom
        });
        if let Some(thf) = update.target_health_factor {
            pipe.cmd("SET")
                .arg(self.namespace.thf())
                .arg(thf.to_string())
                .ignore();
        }
        push_last_indexed(&mut pipe, &self.namespace, update.height, update.time);
        if update.reconciled {
            pipe.cmd("HSET")
                .arg(self.namespace.meta())
                .arg("last_reconciled_height")
                .arg(update.height)
                .ignore();
        }
        let () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("applying block {}", update.height)))?;
        Ok(())
    }

    /// Deletes every key of this index (meta included). The handle is unusable afterwards
    /// except to recreate with [`PositionIndex::create_or_open`].
    pub async fn destroy(&self) -> Result<(), IndexError> {
        let pattern = format!("{}:*", self.namespace);
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            // On a cluster, the node that holds the namespace's slot holds all its keys.
            let (next, keys): (u64, Vec<String>) = conn
                .query_on_slot_of(&self.namespace.meta(), &scan)
                .await
                .map_err(redis_error("listing index keys"))?;
            if !keys.is_empty() {
                let () = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error("deleting index keys"))?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        *self.denoms.write().expect("denom cache lock") = DenomTable::default();
        Ok(())
    }

    async fn json_hash_values<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
    ) -> Result<Vec<T>, IndexError> {
        let entries: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("reading {key}")))?;
        let mut entries: Vec<(String, Vec<u8>)> = entries;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
            .into_iter()
            .map(|(field, bytes)| {
                serde_json::from_slice(&bytes).map_err(|e| IndexError::Decode {
                    key: format!("{key} field {field}"),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Writes `items` into the hash at `key`, one JSON field each, named by `field`: the
    /// counterpart of [`json_hash_values`](Self::json_hash_values).
    async fn write_json_hash<T: Serialize>(
        &self,
        key: String,
        items: &[T],
        field: impl Fn(&T) -> &str,
        what: &str,
    ) -> Result<(), IndexError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        push_json_hash(&mut pipe, key, items, field);
        let () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error(format!("writing {what}")))?;
        Ok(())
    }
}

fn push_json_hash<T: Serialize>(
    pipe: &mut Pipeline,
    key: String,
    items: &[T],
    field: impl Fn(&T) -> &str,
) {
    if items.is_empty() {
        return;
    }
    let cmd = pipe.cmd("HSET").arg(key);
    for item in items {
        cmd.arg(field(item))
            .arg(serde_json::to_vec(item).expect("index types always serialise"));
    }
    cmd.ignore();
}

fn push_last_indexed(
    pipe: &mut Pipeline,
    namespace: &IndexNamespace,
    height: u64,
    time: Option<Timestamp>,
) {
    let cmd = pipe
        .cmd("HSET")
        .arg(namespace.meta())
        .arg("last_indexed_height")
        .arg(height);
    if let Some(time) = time {
        cmd.arg("last_indexed_time_ns").arg(time.nanos());
    }
    cmd.ignore();
}

/// On a cluster, one block's `MULTI` and the denom script touch many keys of the namespace:
/// they must share a slot, which only a hash tag in `--index-prefix` guarantees.
fn check_cluster_namespace(conn: &RedisConn, namespace: &IndexNamespace) -> Result<(), IndexError> {
    if conn.is_cluster() && !has_hash_tag(namespace.as_str()) {
        return Err(IndexError::NoHashTag(namespace.clone()));
    }
    Ok(())
}

async fn read_meta(
    conn: &mut RedisConn,
    namespace: &IndexNamespace,
) -> Result<IndexMeta, IndexError> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(namespace.meta())
        .query_async(conn)
        .await
        .map_err(redis_error(format!("reading {}", namespace.meta())))?;
    if fields.is_empty() {
        return Err(IndexError::NotCreated(namespace.clone()));
    }
    let number = |field: &'static str| -> Result<Option<u64>, IndexError> {
        fields
            .get(field)
            .map(|v| {
                v.parse::<u64>().map_err(|_| IndexError::BadMeta {
                    namespace: namespace.clone(),
                    field,
                    value: v.clone(),
                })
            })
            .transpose()
    };
    let buckets = number("buckets")?.unwrap_or(0);
    Ok(IndexMeta {
        format: number("format")?.unwrap_or(0) as u32,
        buckets: u32::try_from(buckets).map_err(|_| IndexError::BadMeta {
            namespace: namespace.clone(),
            field: "buckets",
            value: buckets.to_string(),
        })?,
        created_at_ms: number("created_at_ms")?.unwrap_or(0),
        last_indexed_height: number("last_indexed_height")?,
        last_indexed_time: number("last_indexed_time_ns")?.map(Timestamp::from_nanos),
        last_reconciled_height: number("last_reconciled_height")?,
    })
}

/// Decodes one `HGETALL` reply into `read`, taking ownership of the bytes (no copies).
fn decode_bucket(bucket: u32, reply: Value, read: &mut BucketRead) -> Result<(), IndexError> {
    let mut push = |field: Value, value: Value| {
        let address = match field {
            Value::BulkString(bytes) => String::from_utf8(bytes)
                .map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            other => Err(format!("{other:?}")),
        };
        let address = match address {
            Ok(a) => a,
            Err(shown) => {
                read.errors.push(AccountDecodeError {
                    bucket,
                    address: shown,
                    reason: "field is not a UTF-8 address".into(),
                });
                return;
            }
        };
        let Value::BulkString(bytes) = value else {
            read.errors.push(AccountDecodeError {
                bucket,
                address,
                reason: "value is not a byte string".into(),
            });
            return;
        };
        match codec::decode(&bytes) {
            Ok((collaterals, debts)) => read.accounts.push(IndexedAccount {
                address,
                collaterals,
                debts,
            }),
            Err(e) => read.errors.push(AccountDecodeError {
                bucket,
                address,
                reason: e.to_string(),
            }),
        }
    };
    match reply {
        Value::Array(items) => {
            let mut items = items.into_iter();
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                push(field, value);
            }
        }
        Value::Map(pairs) => {
            for (field, value) in pairs {
                push(field, value);
            }
        }
        Value::Nil => {}
        other => {
            return Err(IndexError::Decode {
                key: format!("bucket {bucket}"),
                message: format!("HGETALL answered {other:?}"),
            })
        }
    }
    Ok(())
}

/// A deterministic synthetic account for benchmarks and tests: account `i` holds collateral in
/// one of `denoms` and debt in another (or the same when there is one denom), with amounts
/// spread over a few orders of magnitude. The address is `synthetic1<i in 38 hex digits>`.
pub fn synthetic_account(i: u64, denoms: &[DenomId]) -> IndexedAccount {
    assert!(
        !denoms.is_empty(),
        "synthetic accounts need at least one denom"
    );
    let mix = codec::address_hash(&i.to_le_bytes());
    let n = denoms.len() as u64;
    let coll = denoms[(mix % n) as usize];
    let debt = denoms[((mix / n + 1) % n) as usize];
    let collateral_amount = 1_000_000 + u128::from(mix % 1_000_000_000);
    // Debt between 30% and 90% of the collateral amount: a realistic spread of health.
    let debt_amount = collateral_amount * u128::from(30 + (mix >> 32) % 61) / 100;
    let mut collaterals = vec![CollateralEntry {
        denom: coll,
        amount_scaled: Uint128::new(collateral_amount),
        enabled: true,
    }];
    if mix & 3 == 0 && n > 1 {
        let second = denoms[((mix / 7) % n) as usize];
        if second != coll {
            collaterals.push(CollateralEntry {
                denom: second,
                amount_scaled: Uint128::new(collateral_amount / 3),
                enabled: mix & 7 != 0,
            });
        }
    }
    IndexedAccount {
        address: format!("synthetic1{i:038x}"),
        collaterals,
        debts: vec![DebtEntry {
            denom: debt,
            amount_scaled: Uint128::new(debt_amount),
            uncollateralized: false,
        }],
    }
}

/// Writes `count` synthetic accounts (ids `first..first + count`) in chunks: a fast bulk load for
/// benchmarks. Returns the denom ids used.
pub async fn write_synthetic_accounts(
    index: &PositionIndex,
    denoms: &[&str],
    first: u64,
    count: u64,
) -> Result<Vec<DenomId>, IndexError> {
    let ids = index.denom_ids(denoms).await?;
    let mut next = first;
    let end = first + count;
    while next < end {
        let chunk_end = (next + 50_000).min(end);
        let accounts: Vec<IndexedAccount> = (next..chunk_end)
            .map(|i| synthetic_account(i, &ids))
            .collect();
        index.put_accounts(&accounts).await?;
        next = chunk_end;
    }
    Ok(ids)
}
