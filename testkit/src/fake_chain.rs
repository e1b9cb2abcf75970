//! A [`ChainClient`] without a node, for tests that want chain answers they write themselves.
//!
//! Smart queries are answered by handlers registered per contract (the query as JSON in, the
//! answer as JSON out); every query is logged, so a test can count round trips. Whatever is not
//! scripted fails with an RPC error naming it, so a test never passes on an answer it did not
//! give.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cosmwasm_std::{Coin, Timestamp};
use redline_chain::{
    AccountInfo, BlockResults, BlockStream, ChainClient, ChainError, RawEntry, ScanOptions,
    Simulation, TxHash, TxOutcome,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

type Handler = Box<dyn Fn(&Value, Option<u64>) -> Option<Value> + Send + Sync>;

#[derive(Default)]
struct State {
    height: u64,
    block_times: BTreeMap<u64, Timestamp>,
    handlers: Vec<(String, Handler)>,
    queries: Vec<(String, Value, Option<u64>)>,
}

/// A scripted chain. Cheap to clone; clones share the script and the query log.
#[derive(Clone, Default)]
pub struct FakeChain {
    state: Arc<Mutex<State>>,
}

impl FakeChain {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest height, and the header time of that block.
    pub fn at_block(self, height: u64, time: Timestamp) -> Self {
        {
            let mut state = self.state();
            state.height = height;
            state.block_times.insert(height, time);
        }
        self
    }

    /// Answers smart queries to `contract` that `handler` recognises (returns `Some` for).
    pub fn answer(
        self,
        contract: &str,
        handler: impl Fn(&Value, Option<u64>) -> Option<Value> + Send + Sync + 'static,
    ) -> Self {
        self.state()
            .handlers
            .push((contract.to_string(), Box::new(handler)));
        self
    }

    /// Every smart query asked so far: contract, query, height.
    pub fn queries(&self) -> Vec<(String, Value, Option<u64>)> {
        self.state().queries.clone()
    }

    fn unscripted(method: &'static str, what: impl Into<String>) -> ChainError {
        ChainError::Rpc {
            endpoint: "fake-chain".into(),
            method,
            message: format!("not scripted: {}", what.into()),
        }
    }
}

impl ChainClient for FakeChain {
    fn chain_id(&self) -> &str {
        "fake-1"
    }

    async fn latest_height(&self) -> Result<u64, ChainError> {
        Ok(self.state().height)
    }

    async fn earliest_height(&self) -> Result<u64, ChainError> {
        Ok(1)
    }

    async fn block_time(&self, height: u64) -> Result<Timestamp, ChainError> {
        let time = self.state().block_times.get(&height).copied();
        time.ok_or_else(|| Self::unscripted("block", format!("the time of block {height}")))
    }

    async fn block_results(&self, height: u64) -> Result<BlockResults, ChainError> {
        Err(Self::unscripted("block_results", format!("block {height}")))
    }

    async fn query_smart<Q, R>(
        &self,
        contract: &str,
        msg: &Q,
        height: Option<u64>,
    ) -> Result<R, ChainError>
    where
        Q: Serialize + Sync,
        R: DeserializeOwned + Send,
    {
        let query = serde_json::to_value(msg).map_err(|e| ChainError::Build(e.to_string()))?;
        let answer = {
            let mut state = self.state();
            state
                .queries
                .push((contract.to_string(), query.clone(), height));
            state
                .handlers
                .iter()
                .filter(|(address, _)| address == contract)
                .find_map(|(_, handler)| handler(&query, height))
        };
        let answer =
            answer.ok_or_else(|| Self::unscripted("abci_query", format!("{contract} {query}")))?;
        serde_json::from_value(answer).map_err(|e| ChainError::Decode {
            endpoint: "fake-chain".into(),
            what: format!("answer to {query}"),
            message: e.to_string(),
        })
    }

    async fn query_raw(
        &self,
        contract: &str,
        _key: &[u8],
        _height: Option<u64>,
    ) -> Result<Option<Vec<u8>>, ChainError> {
        Err(Self::unscripted(
            "abci_query",
            format!("raw state of {contract}"),
        ))
    }

    async fn scan_raw_prefix(
        &self,
        contract: &str,
        _prefix: &[u8],
        _page_size: u32,
    ) -> Result<Vec<RawEntry>, ChainError> {
        Err(Self::unscripted(
            "abci_query",
            format!("raw scan of {contract}"),
        ))
    }

    async fn scan_raw_prefix_concurrent(
        &self,
        contract: &str,
        _prefix: &[u8],
        _options: ScanOptions,
    ) -> Result<Vec<RawEntry>, ChainError> {
        Err(Self::unscripted(
            "abci_query",
            format!("raw scan of {contract}"),
        ))
    }

    async fn account(&self, address: &str) -> Result<AccountInfo, ChainError> {
        Err(Self::unscripted("abci_query", format!("account {address}")))
    }

    async fn balances(&self, address: &str) -> Result<Vec<Coin>, ChainError> {
        Err(Self::unscripted(
            "abci_query",
            format!("balances of {address}"),
        ))
    }

    async fn simulate(&self, _tx_bytes: Vec<u8>) -> Result<Simulation, ChainError> {
        Err(Self::unscripted("abci_query", "simulate"))
    }

    async fn broadcast_sync(&self, _tx_bytes: Vec<u8>) -> Result<TxHash, ChainError> {
        Err(Self::unscripted("broadcast_tx_sync", "a transaction"))
    }

    async fn wait_for_tx(&self, hash: TxHash, _timeout: Duration) -> Result<TxOutcome, ChainError> {
        Err(Self::unscripted("tx", format!("{hash:?}")))
    }

    fn subscribe_blocks(&self) -> BlockStream {
        // No blocks ever come: the sender is dropped at once.
        let (_sender, receiver) = tokio::sync::mpsc::channel(1);
        BlockStream::from_channel(receiver, None)
    }
}
