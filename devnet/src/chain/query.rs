//! `abci_query` paths: the gRPC queries clients send through CometBFT, protobuf in and out.

use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::bank::v1beta1::{
    QueryAllBalancesRequest, QueryAllBalancesResponse, QueryBalanceRequest, QueryBalanceResponse,
};
use cosmrs::proto::cosmos::base::abci::v1beta1::{GasInfo, Result as AbciResult};
use cosmrs::proto::cosmos::base::query::v1beta1::{PageRequest, PageResponse};
use cosmrs::proto::cosmos::base::v1beta1::Coin as ProtoCoin;
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    ContractInfo, Model, QueryAllContractStateRequest, QueryAllContractStateResponse,
    QueryContractInfoRequest, QueryContractInfoResponse, QueryRawContractStateRequest,
    QueryRawContractStateResponse, QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmwasm_std::{
    Addr, Api as _, ContractResult, Empty, Order, QueryRequest, SystemResult, WasmQuery,
};
use prost::Message;

use super::fee_market::legacy_dec_text;
use super::state::ChainState;
use super::tx::TxError;

pub const SMART_CONTRACT_STATE: &str = "/cosmwasm.wasm.v1.Query/SmartContractState";
pub const ALL_CONTRACT_STATE: &str = "/cosmwasm.wasm.v1.Query/AllContractState";
pub const RAW_CONTRACT_STATE: &str = "/cosmwasm.wasm.v1.Query/RawContractState";
pub const CONTRACT_INFO: &str = "/cosmwasm.wasm.v1.Query/ContractInfo";
pub const ACCOUNT: &str = "/cosmos.auth.v1beta1.Query/Account";
pub const ALL_BALANCES: &str = "/cosmos.bank.v1beta1.Query/AllBalances";
pub const BALANCE: &str = "/cosmos.bank.v1beta1.Query/Balance";
pub const SIMULATE: &str = "/cosmos.tx.v1beta1.Service/Simulate";
/// Neutron's fee market: the base gas price in a denom.
pub const FEEMARKET_GAS_PRICE: &str = "/feemarket.feemarket.v1.Query/GasPrice";
/// Osmosis's EIP-1559 base fee (in its fee denom).
pub const OSMOSIS_EIP_BASE_FEE: &str = "/osmosis.txfees.v1beta1.Query/GetEipBaseFee";

/// `feemarket.feemarket.v1.GasPriceRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GasPriceRequest {
    #[prost(string, tag = "1")]
    pub denom: String,
}

/// `cosmos.base.v1beta1.DecCoin`: `amount` is a `LegacyDec` (its value × 10¹⁸, an integer).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DecCoin {
    #[prost(string, tag = "1")]
    pub denom: String,
    #[prost(string, tag = "2")]
    pub amount: String,
}

/// `feemarket.feemarket.v1.GasPriceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GasPriceResponse {
    #[prost(message, optional, tag = "1")]
    pub price: Option<DecCoin>,
}

/// `osmosis.txfees.v1beta1.QueryEipBaseFeeResponse`: `base_fee` is a `LegacyDec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryEipBaseFeeResponse {
    #[prost(string, tag = "1")]
    pub base_fee: String,
}

/// Page size when the request names none, as the SDK's default.
pub const DEFAULT_PAGE_LIMIT: u64 = 100;
/// Largest page served: bigger requests get this many and a `next_key` to continue.
pub const MAX_PAGE_LIMIT: u64 = 10_000;

fn decode<M: Message + Default>(data: &[u8], what: &str) -> Result<M, TxError> {
    M::decode(data).map_err(|e| TxError::invalid_request(format!("cannot decode {what}: {e}")))
}

fn validate(state: &ChainState, address: &str, field: &str) -> Result<Addr, TxError> {
    state.app.api().addr_validate(address).map_err(|_| {
        TxError::invalid_address(format!("{field}: `{address}` is not a valid address"))
    })
}

/// Answers one query path against the current state.
pub fn handle(state: &mut ChainState, path: &str, data: &[u8]) -> Result<Vec<u8>, TxError> {
    match path {
        SMART_CONTRACT_STATE => smart(state, decode(data, "QuerySmartContractStateRequest")?),
        ALL_CONTRACT_STATE => all_state(state, decode(data, "QueryAllContractStateRequest")?),
        RAW_CONTRACT_STATE => raw_state(state, decode(data, "QueryRawContractStateRequest")?),
        CONTRACT_INFO => contract_info(state, decode(data, "QueryContractInfoRequest")?),
        ACCOUNT => account(state, decode(data, "QueryAccountRequest")?),
        ALL_BALANCES => all_balances(state, decode(data, "QueryAllBalancesRequest")?),
        BALANCE => balance(state, decode(data, "QueryBalanceRequest")?),
        SIMULATE => simulate(state, decode(data, "SimulateRequest")?),
        FEEMARKET_GAS_PRICE if state.config().fee_market.is_some() => {
            gas_price(state, decode(data, "GasPriceRequest")?)
        }
        OSMOSIS_EIP_BASE_FEE if state.config().fee_market.is_none() => {
            Ok(QueryEipBaseFeeResponse {
                base_fee: legacy_dec_text(state.gas_price()),
            }
            .encode_to_vec())
        }
        other => Err(TxError::unknown_request(format!(
            "unknown query path {other}"
        ))),
    }
}

fn contract(state: &ChainState, address: &str) -> Result<Addr, TxError> {
    let addr = validate(state, address, "address")?;
    state
        .app
        .contract_data(&addr)
        .map_err(|_| TxError::wasm_no_such_contract(address))?;
    Ok(addr)
}

fn smart(state: &ChainState, req: QuerySmartContractStateRequest) -> Result<Vec<u8>, TxError> {
    let addr = contract(state, &req.address)?;
    if serde_json::from_slice::<serde_json::Value>(&req.query_data).is_err() {
        return Err(TxError {
            codespace: "wasm",
            code: 10,
            log: "query data must be json: invalid request".into(),
        });
    }
    let request: QueryRequest<Empty> = QueryRequest::Wasm(WasmQuery::Smart {
        contract_addr: addr.to_string(),
        msg: req.query_data.into(),
    });
    let bytes = cosmwasm_std::to_json_vec(&request)
        .map_err(|e| TxError::invalid_request(format!("cannot encode the query: {e}")))?;
    use cosmwasm_std::Querier as _;
    match state.app.raw_query(&bytes) {
        SystemResult::Ok(ContractResult::Ok(data)) => Ok(QuerySmartContractStateResponse {
            data: data.to_vec(),
        }
        .encode_to_vec()),
        SystemResult::Ok(ContractResult::Err(message)) => Err(TxError::wasm_query(message)),
        SystemResult::Err(error) => Err(TxError::wasm_query(error)),
    }
}

/// One page of `items` (already in the requested order, starting at the request's key when it
/// has one), following the SDK's `Paginate`: key or offset, `limit` (default 100, capped),
/// `next_key` = the key after the page, `total` when asked for with offset paging.
fn paginate<T>(
    mut items: impl Iterator<Item = (Vec<u8>, T)>,
    page: &PageRequest,
    count_rest: impl FnOnce() -> u64,
) -> Result<(Vec<T>, PageResponse), TxError> {
    if !page.key.is_empty() && page.offset > 0 {
        return Err(TxError::invalid_request(
            "paginate: invalid request, either offset or key is expected, got both",
        ));
    }
    let limit = match page.limit {
        0 => DEFAULT_PAGE_LIMIT,
        n => n.min(MAX_PAGE_LIMIT),
    };
    let mut skipped = 0u64;
    if page.key.is_empty() {
        while skipped < page.offset {
            if items.next().is_none() {
                break;
            }
            skipped += 1;
        }
    }
    let mut out = Vec::new();
    let mut next_key = Vec::new();
    for (key, item) in items.by_ref() {
        if out.len() as u64 == limit {
            next_key = key;
            break;
        }
        out.push(item);
    }
    let total = if page.count_total && page.key.is_empty() {
        count_rest()
    } else {
        0
    };
    Ok((out, PageResponse { next_key, total }))
}

fn all_state(state: &ChainState, req: QueryAllContractStateRequest) -> Result<Vec<u8>, TxError> {
    let addr = contract(state, &req.address)?;
    let page = req.pagination.unwrap_or_default();
    let storage = state.app.contract_storage(&addr);
    let (order, start, end) = match (page.reverse, page.key.is_empty()) {
        (false, true) => (Order::Ascending, None, None),
        (false, false) => (Order::Ascending, Some(page.key.as_slice()), None),
        (true, true) => (Order::Descending, None, None),
        // Descending from the key, inclusive: the exclusive end is the key's successor.
        (true, false) => (Order::Descending, None, Some(page.key.as_slice())),
    };
    let end_inclusive = end.map(|k| {
        let mut k = k.to_vec();
        k.push(0);
        k
    });
    let items = storage
        .range(start, end_inclusive.as_deref(), order)
        .map(|(k, v)| (k.clone(), Model { key: k, value: v }));
    let (models, pagination) = paginate(items, &page, || {
        storage.range(None, None, Order::Ascending).count() as u64
    })?;
    Ok(QueryAllContractStateResponse {
        models,
        pagination: Some(pagination),
    }
    .encode_to_vec())
}

fn raw_state(state: &ChainState, req: QueryRawContractStateRequest) -> Result<Vec<u8>, TxError> {
    let addr = contract(state, &req.address)?;
    let data = state
        .app
        .contract_storage(&addr)
        .get(&req.query_data)
        .unwrap_or_default();
    Ok(QueryRawContractStateResponse { data }.encode_to_vec())
}

fn contract_info(state: &ChainState, req: QueryContractInfoRequest) -> Result<Vec<u8>, TxError> {
    let addr = contract(state, &req.address)?;
    let data = state
        .app
        .contract_data(&addr)
        .map_err(|_| TxError::wasm_no_such_contract(&req.address))?;
    Ok(QueryContractInfoResponse {
        address: addr.to_string(),
        contract_info: Some(ContractInfo {
            code_id: data.code_id,
            creator: data.creator.to_string(),
            admin: data.admin.map(|a| a.to_string()).unwrap_or_default(),
            label: data.label,
            created: None,
            ibc_port_id: String::new(),
            extension: None,
        }),
    }
    .encode_to_vec())
}

fn account(state: &mut ChainState, req: QueryAccountRequest) -> Result<Vec<u8>, TxError> {
    validate(state, &req.address, "address")?;
    let Some((number, sequence, pubkey)) = state.account_for_query(&req.address) else {
        return Err(TxError::not_found(format!(
            "account {} not found",
            req.address
        )));
    };
    let pub_key = pubkey.map(|key| cosmrs::Any {
        type_url: super::tx::SECP256K1_PUBKEY_URL.into(),
        value: cosmrs::proto::cosmos::crypto::secp256k1::PubKey { key }.encode_to_vec(),
    });
    let account = BaseAccount {
        address: req.address,
        pub_key,
        account_number: number,
        sequence,
    };
    Ok(QueryAccountResponse {
        account: Some(cosmrs::Any {
            type_url: "/cosmos.auth.v1beta1.BaseAccount".into(),
            value: account.encode_to_vec(),
        }),
    }
    .encode_to_vec())
}

fn proto_coin(coin: &cosmwasm_std::Coin) -> ProtoCoin {
    ProtoCoin {
        denom: coin.denom.clone(),
        amount: coin.amount.to_string(),
    }
}

fn all_balances(state: &ChainState, req: QueryAllBalancesRequest) -> Result<Vec<u8>, TxError> {
    validate(state, &req.address, "address")?;
    let mut coins = state.all_balances(&req.address);
    coins.sort_by(|a, b| a.denom.cmp(&b.denom));
    let page = req.pagination.unwrap_or_default();
    if page.reverse {
        coins.reverse();
    }
    let total = coins.len() as u64;
    let start = if page.key.is_empty() {
        0
    } else {
        coins
            .iter()
            .position(|c| {
                if page.reverse {
                    c.denom.as_bytes() <= page.key.as_slice()
                } else {
                    c.denom.as_bytes() >= page.key.as_slice()
                }
            })
            .unwrap_or(coins.len())
    };
    let items = coins[start..]
        .iter()
        .map(|c| (c.denom.as_bytes().to_vec(), proto_coin(c)));
    let (balances, pagination) = paginate(items, &page, || total)?;
    Ok(QueryAllBalancesResponse {
        balances,
        pagination: Some(pagination),
    }
    .encode_to_vec())
}

fn balance(state: &ChainState, req: QueryBalanceRequest) -> Result<Vec<u8>, TxError> {
    validate(state, &req.address, "address")?;
    if req.denom.is_empty() {
        return Err(TxError::invalid_coins("invalid denom"));
    }
    let amount = state.balance(&req.address, &req.denom);
    Ok(QueryBalanceResponse {
        balance: Some(ProtoCoin {
            denom: req.denom,
            amount: amount.to_string(),
        }),
    }
    .encode_to_vec())
}

/// The fee market's base gas price, in the fee denom only (the devnet converts no other).
fn gas_price(state: &ChainState, req: GasPriceRequest) -> Result<Vec<u8>, TxError> {
    let fee_denom = &state.config().fee_denom;
    if &req.denom != fee_denom {
        return Err(TxError::invalid_request(format!(
            "unable to get gas price for denom `{}`: the fee market prices `{fee_denom}` only",
            req.denom
        )));
    }
    Ok(GasPriceResponse {
        price: Some(DecCoin {
            denom: req.denom,
            amount: legacy_dec_text(state.gas_price()),
        }),
    }
    .encode_to_vec())
}

fn simulate(state: &mut ChainState, req: SimulateRequest) -> Result<Vec<u8>, TxError> {
    if req.tx_bytes.is_empty() {
        return Err(TxError::invalid_request(
            "empty txBytes is not allowed (the deprecated `tx` field is not supported)",
        ));
    }
    let outcome = state.simulate(&req.tx_bytes)?;
    Ok(SimulateResponse {
        gas_info: Some(GasInfo {
            gas_wanted: outcome.gas_wanted,
            gas_used: outcome.gas_used,
        }),
        #[allow(deprecated)]
        result: Some(AbciResult {
            data: outcome.data,
            log: String::new(),
            events: outcome.events.into_iter().map(Into::into).collect(),
            msg_responses: outcome.msg_responses,
        }),
    }
    .encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<(Vec<u8>, u8)> {
        (0..n).map(|i| (vec![i], i)).collect()
    }

    #[test]
    fn offset_pages_and_next_key() {
        let page = PageRequest {
            offset: 2,
            limit: 3,
            count_total: true,
            ..Default::default()
        };
        let (items, resp) = paginate(keys(10).into_iter(), &page, || 10).unwrap();
        assert_eq!(items, vec![2, 3, 4]);
        assert_eq!(resp.next_key, vec![5]);
        assert_eq!(resp.total, 10);
        let last = PageRequest {
            offset: 8,
            limit: 5,
            ..Default::default()
        };
        let (items, resp) = paginate(keys(10).into_iter(), &last, || 10).unwrap();
        assert_eq!(items, vec![8, 9]);
        assert!(resp.next_key.is_empty());
        assert_eq!(resp.total, 0);
    }

    #[test]
    fn key_and_offset_together_is_an_error() {
        let page = PageRequest {
            key: vec![1],
            offset: 1,
            ..Default::default()
        };
        let err = paginate(keys(3).into_iter(), &page, || 3).unwrap_err();
        assert_eq!(err.code, 18);
    }
}
