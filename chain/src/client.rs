//! [`TendermintClient`]: the [`ChainClient`] for any CometBFT 0.38 node, over tendermint-rpc's
//! HTTP client with the Cosmos SDK's gRPC query paths carried in `abci_query`.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, ModuleAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::bank::v1beta1::{QueryAllBalancesRequest, QueryAllBalancesResponse};
use cosmrs::proto::cosmos::base::query::v1beta1::PageRequest;
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QueryAllContractStateRequest, QueryAllContractStateResponse, QueryRawContractStateRequest,
    QueryRawContractStateResponse, QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmwasm_std::{Coin, Decimal, Timestamp, Uint256};
use futures::{FutureExt as _, StreamExt as _};
use mars::manifest::FeeMarket;
use prost::Message;
use serde::{de::DeserializeOwned, Serialize};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::error::ErrorDetail;
use tendermint_rpc::{Client, HttpClient, HttpClientUrl};

use super::fee_market::{
    parse_legacy_dec, GasPriceRequest, GasPriceResponse, QueryEipBaseFeeRequest,
    QueryEipBaseFeeResponse, FEEMARKET_GAS_PRICE, OSMOSIS_EIP_BASE_FEE,
};
use super::scan::{self, Page, PageQuery, PageSource, RawEntry, ScanOptions};
use super::subscribe::{self, BlockStream};
use super::{
    AccountInfo, BlockResults, ChainClient, ChainConfig, ChainConfigError, ChainError, NewBlock,
    Simulation, TxEvent, TxHash, TxOutcome, TxRejection, TxStage,
};

const SMART_QUERY: &str = "/cosmwasm.wasm.v1.Query/SmartContractState";
const RAW_QUERY: &str = "/cosmwasm.wasm.v1.Query/RawContractState";
const ALL_STATE_QUERY: &str = "/cosmwasm.wasm.v1.Query/AllContractState";
const ACCOUNT_QUERY: &str = "/cosmos.auth.v1beta1.Query/Account";
const BALANCES_QUERY: &str = "/cosmos.bank.v1beta1.Query/AllBalances";
const SIMULATE: &str = "/cosmos.tx.v1beta1.Service/Simulate";
/// The SDK's `ErrTxInMempoolCache`.
const TX_IN_MEMPOOL_CACHE: u32 = 19;

struct Endpoint {
    url: String,
    http: HttpClient,
}

struct Inner {
    config: ChainConfig,
    endpoints: Vec<Endpoint>,
    /// The endpoint that answered last; calls start there and fail over in config order.
    preferred: AtomicUsize,
}

/// A [`ChainClient`] over CometBFT JSON-RPC. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct TendermintClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for TendermintClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TendermintClient")
            .field("chain_id", &self.inner.config.chain_id)
            .field(
                "rpc_http",
                &self
                    .inner
                    .endpoints
                    .iter()
                    .map(|e| &e.url)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What went wrong in one RPC call, before it is tied to an endpoint.
enum CallError {
    /// The node answered with a JSON-RPC error: another node would most likely say the same.
    Rpc(String),
    /// No usable answer: try the next endpoint.
    Transport(String),
}

fn classify(e: tendermint_rpc::Error) -> CallError {
    match e.detail() {
        // Codes 0..=2 are tendermint-rpc's own (HTTP, websocket, client internal), not the node's.
        ErrorDetail::Response(d) if d.source.code().value() < 0 => {
            CallError::Rpc(bounded(d.source.to_string()))
        }
        // The trace in alternate form is the whole cause chain on one line ("HTTP error: error
        // sending request ...: connection refused"); plain Display stops at "HTTP error".
        _ => CallError::Transport(bounded(format!("{:#}", e.trace()))),
    }
}

/// Longest error message kept from a node's answer.
const MAX_ERROR_MESSAGE: usize = 1_024;

/// `message` cut to [`MAX_ERROR_MESSAGE`] bytes: decoders quote what they choke on, and a
/// garbage answer of megabytes would otherwise travel whole into every log line and error.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let cut = message.len() - end;
        message.truncate(end);
        message.push_str(&format!("… ({cut} more bytes)"));
    }
    message
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
}

fn decode_error(endpoint: &str, what: impl Into<String>, e: impl fmt::Display) -> ChainError {
    ChainError::Decode {
        endpoint: endpoint.to_string(),
        what: what.into(),
        message: bounded(e.to_string()),
    }
}

fn height_arg(
    endpoint: &str,
    height: Option<u64>,
) -> Result<Option<tendermint::block::Height>, ChainError> {
    height
        .map(|h| {
            tendermint::block::Height::try_from(h)
                .map_err(|e| decode_error(endpoint, format!("height {h}"), e))
        })
        .transpose()
}

/// The top-level key of a JSON query (`{"user_position": {...}}` → `user_position`), to name it
/// in errors without dumping the whole message.
fn query_name<Q: Serialize>(msg: &Q) -> String {
    match serde_json::to_value(msg) {
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".into(),
    }
}

pub(crate) fn to_timestamp(time: tendermint::Time) -> Timestamp {
    Timestamp::from_nanos(u64::try_from(time.unix_timestamp_nanos()).unwrap_or(0))
}

/// The outcome of the transaction `hash` included at `height`, as `endpoint` reported it.
fn to_tx_outcome(
    hash: TxHash,
    height: u64,
    result: tendermint::abci::types::ExecTxResult,
    endpoint: &str,
) -> TxOutcome {
    TxOutcome {
        hash,
        height,
        code: result.code.value(),
        codespace: result.codespace,
        log: result.log,
        gas_wanted: u64::try_from(result.gas_wanted).unwrap_or(0),
        gas_used: u64::try_from(result.gas_used).unwrap_or(0),
        events: to_tx_events(result.events),
        endpoint: endpoint.to_string(),
    }
}

fn to_tx_events(events: Vec<tendermint::abci::Event>) -> Vec<TxEvent> {
    events
        .into_iter()
        .map(|e| {
            let attributes = e
                .attributes
                .iter()
                .map(|a| {
                    (
                        String::from_utf8_lossy(a.key_bytes()).into_owned(),
                        String::from_utf8_lossy(a.value_bytes()).into_owned(),
                    )
                })
                .collect();
            TxEvent {
                kind: e.kind,
                attributes,
            }
        })
        .collect()
}

pub(crate) fn block_to_new_block(block: &tendermint::Block) -> NewBlock {
    NewBlock {
        height: block.header.height.value(),
        time: to_timestamp(block.header.time),
        txs: block.data.clone(),
    }
}

impl TendermintClient {
    /// A client for `config.rpc_http`, tried in order. No request is made here.
    pub fn new(config: ChainConfig) -> Result<Self, ChainError> {
        config.validate()?;
        let endpoints = config
            .rpc_http
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let field_error = |problem: String| ChainConfigError {
                    field: format!("rpc_http[{i}]"),
                    problem,
                };
                let rpc_url = HttpClientUrl::try_from(url.as_str())
                    .map_err(|e| field_error(format!("`{url}` is not usable for RPC: {e}")))?;
                let http = HttpClient::builder(rpc_url)
                    .compat_mode(CompatMode::V0_38)
                    .timeout(config.request_timeout)
                    .build()
                    .map_err(|e| field_error(format!("cannot build a client for `{url}`: {e}")))?;
                Ok(Endpoint {
                    url: url.as_str().trim_end_matches('/').to_string(),
                    http,
                })
            })
            .collect::<Result<Vec<_>, ChainConfigError>>()?;
        Ok(TendermintClient {
            inner: Arc::new(Inner {
                config,
                endpoints,
                preferred: AtomicUsize::new(0),
            }),
        })
    }

    pub fn config(&self) -> &ChainConfig {
        &self.inner.config
    }

    /// The endpoint calls start with (the last one that answered).
    pub fn preferred_url(&self) -> &str {
        let endpoints = &self.inner.endpoints;
        &endpoints[self.inner.preferred.load(Ordering::Relaxed) % endpoints.len()].url
    }

    /// Runs `call` against the preferred endpoint, then against the others in config order:
    /// the next one starts when the last started fails (transport error) or, with
    /// `hedge_after`, when it has not answered that long. The first answer wins (the node's
    /// error answers too: another node would say the same). Returns the answer and the endpoint
    /// that gave it.
    async fn call<T, F, Fut>(&self, method: &'static str, call: F) -> Result<(T, &str), ChainError>
    where
        F: Fn(HttpClient) -> Fut,
        Fut: Future<Output = Result<T, tendermint_rpc::Error>>,
    {
        let endpoints = &self.inner.endpoints;
        let first = self.inner.preferred.load(Ordering::Relaxed) % endpoints.len();
        let attempt = |i: usize| {
            let index = (first + i) % endpoints.len();
            let request = call(endpoints[index].http.clone());
            // tendermint-rpc's decoders can panic on a malformed answer (subtle-encoding's
            // base64 underflows on a value like "AAAA="); a bad answer must be an error of this
            // endpoint, not a crash of the service.
            async move {
                let answer = match AssertUnwindSafe(request).catch_unwind().await {
                    Ok(answer) => answer,
                    Err(panic) => Err(tendermint_rpc::Error::client_internal(format!(
                        "the answer crashed the RPC decoder: {}",
                        panic_message(panic.as_ref())
                    ))),
                };
                (index, answer)
            }
        };
        let mut running = futures::stream::FuturesUnordered::new();
        running.push(attempt(0));
        let mut started = 1;
        let mut last_error = None;
        while !running.is_empty() {
            let hedge = match self.inner.config.hedge_after {
                Some(after) if started < endpoints.len() => after,
                _ => Duration::MAX,
            };
            let Ok(Some((index, answer))) = tokio::time::timeout(hedge, running.next()).await
            else {
                tracing::debug!(endpoint = %endpoints[(first + started - 1) % endpoints.len()].url, method, after = ?hedge, "RPC slow: asking the next endpoint too");
                running.push(attempt(started));
                started += 1;
                continue;
            };
            let endpoint = &endpoints[index];
            match answer.map_err(classify) {
                Ok(answer) => {
                    if index != first {
                        tracing::info!(endpoint = %endpoint.url, method, "RPC failed over");
                        self.inner.preferred.store(index, Ordering::Relaxed);
                    }
                    return Ok((answer, &endpoint.url));
                }
                Err(CallError::Rpc(message)) => {
                    return Err(ChainError::Rpc {
                        endpoint: endpoint.url.clone(),
                        method,
                        message,
                    })
                }
                Err(CallError::Transport(message)) => {
                    tracing::warn!(endpoint = %endpoint.url, method, error = %message, "RPC endpoint failed");
                    last_error = Some(ChainError::Transport {
                        endpoint: endpoint.url.clone(),
                        method,
                        message,
                    });
                    if started < endpoints.len() {
                        running.push(attempt(started));
                        started += 1;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| ChainError::Transport {
            endpoint: String::new(),
            method,
            message: "no RPC endpoint configured".into(),
        }))
    }

    /// An ABCI query on a gRPC path with protobuf request and answer.
    async fn abci<Req, Resp>(
        &self,
        path: &'static str,
        what: &str,
        request: Req,
        height: Option<u64>,
    ) -> Result<(Resp, &str), ChainError>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let data = request.encode_to_vec();
        let height = height_arg(self.preferred_url(), height)?;
        let (answer, endpoint) = self
            .call("abci_query", |http| {
                let data = data.clone();
                async move {
                    http.abci_query(Some(path.to_string()), data, height, false)
                        .await
                }
            })
            .await?;
        if answer.code.is_err() {
            return Err(ChainError::Abci {
                endpoint: endpoint.to_string(),
                what: what.to_string(),
                code: answer.code.value(),
                codespace: answer.codespace,
                log: answer.log,
            });
        }
        let decoded = Resp::decode(answer.value.as_slice())
            .map_err(|e| decode_error(endpoint, format!("{what} ({path})"), e))?;
        Ok((decoded, endpoint))
    }

    async fn all_contract_state(
        &self,
        contract: &str,
        query: PageQuery,
        height: Option<u64>,
    ) -> Result<Page, ChainError> {
        let request = QueryAllContractStateRequest {
            address: contract.to_string(),
            pagination: Some(PageRequest {
                key: query.key,
                offset: query.offset,
                limit: query.limit,
                count_total: query.count_total,
                reverse: false,
            }),
        };
        let what = format!("AllContractState of contract {contract}");
        let (answer, _): (QueryAllContractStateResponse, _) =
            self.abci(ALL_STATE_QUERY, &what, request, height).await?;
        let pagination = answer.pagination.unwrap_or_default();
        Ok(Page {
            entries: answer
                .models
                .into_iter()
                .map(|m| RawEntry {
                    key: m.key,
                    value: m.value,
                })
                .collect(),
            next_key: Some(pagination.next_key).filter(|k| !k.is_empty()),
            total: query
                .count_total
                .then_some(pagination.total)
                .filter(|t| *t > 0),
        })
    }

    /// The block at `height`, or the latest with `None`.
    pub async fn block(&self, height: Option<u64>) -> Result<NewBlock, ChainError> {
        let response = match height_arg(self.preferred_url(), height)? {
            Some(h) => {
                self.call("block", |http| async move { http.block(h).await })
                    .await
            }
            None => {
                self.call("block", |http| async move { http.latest_block().await })
                    .await
            }
        }?
        .0;
        Ok(block_to_new_block(&response.block))
    }
}

struct ContractPages<'a> {
    client: &'a TendermintClient,
    contract: &'a str,
    height: Option<u64>,
}

impl PageSource for ContractPages<'_> {
    async fn page(&self, query: PageQuery) -> Result<Page, ChainError> {
        self.client
            .all_contract_state(self.contract, query, self.height)
            .await
    }

    fn describe(&self) -> String {
        format!(
            "contract {} via {}",
            self.contract,
            self.client.preferred_url()
        )
    }
}

impl ChainClient for TendermintClient {
    fn chain_id(&self) -> &str {
        &self.inner.config.chain_id
    }

    async fn latest_height(&self) -> Result<u64, ChainError> {
        let (status, _) = self
            .call("status", |http| async move { http.status().await })
            .await?;
        Ok(status.sync_info.latest_block_height.value())
    }

    async fn earliest_height(&self) -> Result<u64, ChainError> {
        let (status, _) = self
            .call("status", |http| async move { http.status().await })
            .await?;
        Ok(status.sync_info.earliest_block_height.value())
    }

    async fn block_time(&self, height: u64) -> Result<Timestamp, ChainError> {
        Ok(self.block(Some(height)).await?.time)
    }

    async fn block_results(&self, height: u64) -> Result<BlockResults, ChainError> {
        let h = tendermint::block::Height::try_from(height)
            .map_err(|e| decode_error(self.preferred_url(), format!("height {height}"), e))?;
        let (block, results) = futures::try_join!(
            self.block(Some(height)),
            self.call("block_results", |http| async move {
                http.block_results(h).await
            })
        )?;
        let (results, endpoint) = results;
        let tx_results = results.txs_results.unwrap_or_default();
        if tx_results.len() != block.txs.len() {
            return Err(decode_error(
                endpoint,
                format!("block_results at height {height}"),
                format!(
                    "{} tx results for {} transactions in the block",
                    tx_results.len(),
                    block.txs.len()
                ),
            ));
        }
        let txs = block
            .txs
            .iter()
            .zip(tx_results)
            .map(|(tx, result)| to_tx_outcome(super::tx_hash(tx), height, result, endpoint))
            .collect();
        Ok(BlockResults {
            height,
            time: block.time,
            txs,
        })
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
        let what = format!("smart query `{}` to contract {contract}", query_name(msg));
        let query_data = serde_json::to_vec(msg)
            .map_err(|e| ChainError::Build(format!("{what}: cannot serialize: {e}")))?;
        let request = QuerySmartContractStateRequest {
            address: contract.to_string(),
            query_data,
        };
        let (answer, endpoint): (QuerySmartContractStateResponse, _) =
            self.abci(SMART_QUERY, &what, request, height).await?;
        serde_json::from_slice(&answer.data).map_err(|e| decode_error(endpoint, what, e))
    }

    async fn query_raw(
        &self,
        contract: &str,
        key: &[u8],
        height: Option<u64>,
    ) -> Result<Option<Vec<u8>>, ChainError> {
        let what = format!("raw query {} to contract {contract}", hex::encode(key));
        let request = QueryRawContractStateRequest {
            address: contract.to_string(),
            query_data: key.to_vec(),
        };
        let (answer, _): (QueryRawContractStateResponse, _) =
            self.abci(RAW_QUERY, &what, request, height).await?;
        Ok(Some(answer.data).filter(|d| !d.is_empty()))
    }

    async fn scan_raw_prefix(
        &self,
        contract: &str,
        prefix: &[u8],
        page_size: u32,
    ) -> Result<Vec<RawEntry>, ChainError> {
        let source = ContractPages {
            client: self,
            contract,
            height: None,
        };
        scan::scan_serial(&source, prefix, page_size).await
    }

    async fn scan_raw_prefix_concurrent(
        &self,
        contract: &str,
        prefix: &[u8],
        options: ScanOptions,
    ) -> Result<Vec<RawEntry>, ChainError> {
        let source = ContractPages {
            client: self,
            contract,
            height: options.height,
        };
        scan::scan_concurrent(&source, prefix, options).await
    }

    async fn account(&self, address: &str) -> Result<AccountInfo, ChainError> {
        let what = format!("account query for {address}");
        let request = QueryAccountRequest {
            address: address.to_string(),
        };
        let (answer, endpoint) = match self
            .abci::<_, QueryAccountResponse>(ACCOUNT_QUERY, &what, request, None)
            .await
        {
            Err(ChainError::Abci { endpoint, log, .. })
                if log.to_lowercase().contains("not found") =>
            {
                return Err(ChainError::AccountNotFound {
                    endpoint,
                    address: address.to_string(),
                })
            }
            other => other?,
        };
        let any = answer.account.ok_or_else(|| ChainError::AccountNotFound {
            endpoint: endpoint.to_string(),
            address: address.to_string(),
        })?;
        let base = match any.type_url.as_str() {
            "/cosmos.auth.v1beta1.BaseAccount" => BaseAccount::decode(any.value.as_slice())
                .map_err(|e| decode_error(endpoint, &what, e))?,
            "/cosmos.auth.v1beta1.ModuleAccount" => ModuleAccount::decode(any.value.as_slice())
                .map_err(|e| decode_error(endpoint, &what, e))?
                .base_account
                .ok_or_else(|| {
                    decode_error(endpoint, &what, "module account without base account")
                })?,
            other => {
                return Err(decode_error(
                    endpoint,
                    &what,
                    format!("unsupported account type `{other}`"),
                ))
            }
        };
        Ok(AccountInfo {
            account_number: base.account_number,
            sequence: base.sequence,
        })
    }

    async fn base_gas_price(&self) -> Result<Option<Decimal>, ChainError> {
        let denom = &self.config().fee_denom;
        let (text, endpoint) = match self.config().fee_market {
            FeeMarket::Fixed => return Ok(None),
            FeeMarket::Feemarket => {
                let request = GasPriceRequest {
                    denom: denom.clone(),
                };
                let what = format!("the fee market's gas price in {denom}");
                let (answer, endpoint): (GasPriceResponse, _) =
                    self.abci(FEEMARKET_GAS_PRICE, &what, request, None).await?;
                let amount = answer.price.map(|price| price.amount).unwrap_or_default();
                (amount, endpoint)
            }
            FeeMarket::OsmosisEip1559 => {
                let what = "the EIP-1559 base fee";
                let (answer, endpoint): (QueryEipBaseFeeResponse, _) = self
                    .abci(OSMOSIS_EIP_BASE_FEE, what, QueryEipBaseFeeRequest {}, None)
                    .await?;
                (answer.base_fee, endpoint)
            }
        };
        let price = parse_legacy_dec(&text).ok_or_else(|| {
            decode_error(
                endpoint,
                "the fee market's gas price",
                format!("`{text}` is not a LegacyDec"),
            )
        })?;
        Ok(Some(price))
    }

    async fn balances(&self, address: &str) -> Result<Vec<Coin>, ChainError> {
        let what = format!("balances of {address}");
        let mut coins = Vec::new();
        let mut key = Vec::new();
        loop {
            let request = QueryAllBalancesRequest {
                address: address.to_string(),
                pagination: Some(PageRequest {
                    key: key.clone(),
                    limit: 200,
                    ..Default::default()
                }),
                resolve_denom: false,
            };
            let (answer, endpoint): (QueryAllBalancesResponse, _) =
                self.abci(BALANCES_QUERY, &what, request, None).await?;
            for coin in answer.balances {
                let amount: Uint256 = coin.amount.parse().map_err(|e| {
                    decode_error(endpoint, format!("{what}: amount of {}", coin.denom), e)
                })?;
                coins.push(Coin::new(amount, coin.denom));
            }
            match answer.pagination.map(|p| p.next_key) {
                Some(next) if !next.is_empty() && next != key => key = next,
                _ => return Ok(coins),
            }
        }
    }

    async fn simulate(&self, tx_bytes: Vec<u8>) -> Result<Simulation, ChainError> {
        let request = SimulateRequest {
            tx_bytes,
            ..Default::default()
        };
        let answer = self
            .abci::<_, SimulateResponse>(SIMULATE, "tx simulation", request, None)
            .await;
        let (answer, endpoint) = match answer {
            Err(ChainError::Abci {
                endpoint,
                code,
                codespace,
                log,
                ..
            }) => {
                return Err(ChainError::Rejected(Box::new(TxRejection::new(
                    TxStage::Simulate,
                    &endpoint,
                    &codespace,
                    code,
                    log,
                    None,
                ))))
            }
            other => other?,
        };
        let gas_used = answer
            .gas_info
            .map(|g| g.gas_used)
            .ok_or_else(|| decode_error(endpoint, "tx simulation", "answer has no gas_info"))?;
        #[allow(deprecated)]
        let events = answer
            .result
            .map(|result| {
                result
                    .events
                    .into_iter()
                    .map(|event| TxEvent {
                        kind: event.r#type,
                        attributes: event
                            .attributes
                            .into_iter()
                            .map(|a| (a.key, a.value))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Simulation { gas_used, events })
    }

    async fn broadcast_sync(&self, tx_bytes: Vec<u8>) -> Result<TxHash, ChainError> {
        let answer = self
            .call("broadcast_tx_sync", |http| {
                let tx = tx_bytes.clone();
                async move { http.broadcast_tx_sync(tx).await }
            })
            .await;
        // The same bytes already wait in this node's mempool: sent to it by a hedged broadcast
        // (or gossiped from the node that answered first). The tx is in; nothing to refuse.
        // CometBFT says so as an RPC error, an SDK mempool as code 19.
        let (answer, endpoint) = match answer {
            Err(ChainError::Rpc { message, .. })
                if message.contains("tx already exists in cache") =>
            {
                return Ok(crate::tx_hash(&tx_bytes))
            }
            other => other?,
        };
        let in_mempool = answer.code.value() == TX_IN_MEMPOOL_CACHE && answer.codespace == "sdk";
        if answer.code.is_err() && !in_mempool {
            return Err(ChainError::Rejected(Box::new(TxRejection::new(
                TxStage::CheckTx,
                endpoint,
                &answer.codespace,
                answer.code.value(),
                answer.log,
                Some(answer.hash),
            ))));
        }
        Ok(answer.hash)
    }

    async fn wait_for_tx(&self, hash: TxHash, timeout: Duration) -> Result<TxOutcome, ChainError> {
        let poll = (self.inner.config.block_time / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_endpoint = self.preferred_url().to_string();
        loop {
            match self
                .call("tx", |http| async move { http.tx(hash, false).await })
                .await
            {
                Ok((answer, endpoint)) => {
                    tracing::debug!(%hash, endpoint, "tx included");
                    return Ok(to_tx_outcome(
                        answer.hash,
                        answer.height.value(),
                        answer.tx_result,
                        endpoint,
                    ));
                }
                // Not indexed yet: the node says "tx (HASH) not found".
                Err(ChainError::Rpc {
                    endpoint, message, ..
                }) if message.contains("not found") => last_endpoint = endpoint,
                Err(e) if e.is_transient() => {
                    tracing::warn!(%hash, error = %e, "polling for tx inclusion");
                }
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() + poll > deadline {
                return Err(ChainError::Timeout {
                    endpoint: last_endpoint,
                    what: format!("tx {hash} to be included"),
                    after: timeout,
                });
            }
            tokio::time::sleep(poll).await;
        }
    }

    fn subscribe_blocks(&self) -> BlockStream {
        subscribe::spawn_block_feed(self.clone())
    }
}
