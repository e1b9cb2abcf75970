//! The chain client: everything the services need from a Cosmos chain running CosmWasm, over
//! CometBFT JSON-RPC (tendermint-rpc) with transactions built and signed by cosmrs.
//!
//! The seam is the [`ChainClient`] trait: services are generic over it, so a second chain (or a
//! chain reached by other means) plugs in without touching them. [`TendermintClient`] is the
//! implementation for any CometBFT 0.38 node: several RPC endpoints in fail-over order, smart and
//! raw contract queries, paged state scans, account/sequence, simulate, broadcast, inclusion, and
//! a block feed that survives websocket drops.
//!
//! Signing lives beside it: [`Wallet`] (BIP-39 mnemonic → secp256k1 key at m/44'/118'/0'/0/i),
//! [`TxBuilder`] (messages → signed `TxRaw` bytes with fee = ⌈gas × gas price⌉) and
//! [`SequenceTracker`] (local account sequence, resynced from the chain after code 32).

mod client;
mod config;
mod error;
pub mod fee_market;
mod paged;
mod scan;
mod subscribe;
mod tx;
mod wallet;

use std::future::Future;
use std::time::Duration;

use cosmwasm_std::{Coin, Decimal, Timestamp};
use serde::{de::DeserializeOwned, Serialize};

pub use client::TendermintClient;
pub use config::{ChainConfig, ChainConfigError};
pub use error::{ChainError, TxErrorCode, TxRejection, TxStage};
pub use paged::{query_all_pages, PAGE_LIMIT};
pub use scan::{RawEntry, ScanOptions};
pub use subscribe::BlockStream;
pub use tx::{
    bank_send_msg, execute_contract_msg, sign_with_simulated_gas, tx_hash, SequenceTracker,
    SignedTx, TxBuilder,
};
pub use wallet::{Wallet, WalletError};

/// A transaction hash as CometBFT reports it (SHA-256 of the raw tx bytes).
pub type TxHash = tendermint::Hash;

/// An account's signing state on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountInfo {
    pub account_number: u64,
    pub sequence: u64,
}

/// One committed block, as the block feed yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlock {
    pub height: u64,
    pub time: Timestamp,
    /// Raw transaction bytes in block order.
    pub txs: Vec<Vec<u8>>,
}

/// One ABCI event of an executed transaction (`wasm`, `transfer`, `wasm-liquidate`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxEvent {
    pub kind: String,
    pub attributes: Vec<(String, String)>,
}

impl TxEvent {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A simulated transaction: the gas it used and the events it emitted (nothing is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    pub gas_used: u64,
    pub events: Vec<TxEvent>,
}

impl Simulation {
    pub fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a TxEvent> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }
}

/// The outcome of a transaction included in a block (DeliverTx / ExecTxResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    pub hash: TxHash,
    pub height: u64,
    /// 0 on success; otherwise the error code within `codespace`.
    pub code: u32,
    pub codespace: String,
    pub log: String,
    pub gas_wanted: u64,
    pub gas_used: u64,
    pub events: Vec<TxEvent>,
    /// The RPC endpoint that reported the result.
    pub endpoint: String,
}

impl TxOutcome {
    pub fn is_success(&self) -> bool {
        self.code == 0
    }

    /// Events of one kind, in emission order.
    pub fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a TxEvent> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// The first value of `key` among events of `kind`.
    pub fn attribute(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .find_map(|e| e.attribute(key))
    }

    /// `Ok(self)` when the transaction succeeded, otherwise the failure as a [`TxRejection`]
    /// at [`TxStage::DeliverTx`], classified like a CheckTx rejection.
    pub fn into_result(self) -> Result<TxOutcome, ChainError> {
        if self.is_success() {
            return Ok(self);
        }
        Err(ChainError::Rejected(Box::new(TxRejection::new(
            TxStage::DeliverTx,
            &self.endpoint,
            &self.codespace,
            self.code,
            self.log.clone(),
            Some(self.hash),
        ))))
    }
}

/// The executed transactions of one block (CometBFT `block_results` joined with the block's
/// transactions for their hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockResults {
    pub height: u64,
    /// Header time of the block.
    pub time: Timestamp,
    /// One outcome per transaction, in block order (failed transactions included).
    pub txs: Vec<TxOutcome>,
}

/// What the services need from a chain. Implementations must be cheap to share (`&self` methods,
/// `Send + Sync`) so one client serves many concurrent tasks.
pub trait ChainClient: Send + Sync {
    fn chain_id(&self) -> &str;

    /// Height of the latest committed block.
    fn latest_height(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;

    /// The fee market's base gas price in the fee denom, read now; `None` where the chain's gas
    /// price is fixed (the manifest's `fee.market`).
    fn base_gas_price(&self) -> impl Future<Output = Result<Option<Decimal>, ChainError>> + Send {
        async { Ok(None) }
    }

    /// Lowest height whose block and results the node still keeps (pruning / history bound).
    fn earliest_height(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;

    /// Header time of the block at `height`.
    fn block_time(&self, height: u64)
        -> impl Future<Output = Result<Timestamp, ChainError>> + Send;

    /// Every transaction outcome (code, events) of the block at `height`. A height the node
    /// no longer keeps is a [`ChainError::Rpc`] naming the lowest height it has.
    fn block_results(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<BlockResults, ChainError>> + Send;

    /// A CosmWasm smart query (`msg` serialized to JSON), answered as JSON into `R`.
    /// `height` pins the state version; `None` is the latest.
    fn query_smart<Q, R>(
        &self,
        contract: &str,
        msg: &Q,
        height: Option<u64>,
    ) -> impl Future<Output = Result<R, ChainError>> + Send
    where
        Q: Serialize + Sync,
        R: DeserializeOwned + Send;

    /// One raw storage key of a contract; `None` when the key is absent.
    fn query_raw(
        &self,
        contract: &str,
        key: &[u8],
        height: Option<u64>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ChainError>> + Send;

    /// Every raw entry whose key starts with `prefix`, in key order, paging AllContractState by
    /// `next_key` with `page_size` entries a page.
    fn scan_raw_prefix(
        &self,
        contract: &str,
        prefix: &[u8],
        page_size: u32,
    ) -> impl Future<Output = Result<Vec<RawEntry>, ChainError>> + Send;

    /// Same result as [`ChainClient::scan_raw_prefix`] (complete, each key once, key order) but
    /// pages fetched concurrently over disjoint key ranges; see [`ScanOptions`].
    fn scan_raw_prefix_concurrent(
        &self,
        contract: &str,
        prefix: &[u8],
        options: ScanOptions,
    ) -> impl Future<Output = Result<Vec<RawEntry>, ChainError>> + Send;

    /// Account number and next sequence of `address`.
    fn account(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<AccountInfo, ChainError>> + Send;

    /// All bank balances of `address`.
    fn balances(&self, address: &str)
        -> impl Future<Output = Result<Vec<Coin>, ChainError>> + Send;

    /// What a signed transaction would do (gas, events); failures come back as
    /// [`ChainError::Rejected`] at [`TxStage::Simulate`].
    fn simulate(
        &self,
        tx_bytes: Vec<u8>,
    ) -> impl Future<Output = Result<Simulation, ChainError>> + Send;

    /// Broadcasts and waits for CheckTx only. A non-zero CheckTx code is
    /// [`ChainError::Rejected`] at [`TxStage::CheckTx`].
    fn broadcast_sync(
        &self,
        tx_bytes: Vec<u8>,
    ) -> impl Future<Output = Result<TxHash, ChainError>> + Send;

    /// Polls until the transaction is in a block (success or not) or `timeout` passes
    /// ([`ChainError::Timeout`]).
    fn wait_for_tx(
        &self,
        hash: TxHash,
        timeout: Duration,
    ) -> impl Future<Output = Result<TxOutcome, ChainError>> + Send;

    /// A never-ending feed of committed blocks with consecutive heights, starting at the next
    /// block. It reconnects (with backoff) when the websocket drops, keeps going over HTTP
    /// polling meanwhile, and fills any missed heights from HTTP. Runs as a task on the current
    /// tokio runtime (call it from within one); dropping the stream stops the task.
    fn subscribe_blocks(&self) -> BlockStream;
}
