//! Fuzzing what the chain client decodes from a node (proptest, bounded for `make test`):
//! - the protobuf answers it reads out of `abci_query` (smart/raw/all-state queries, accounts,
//!   balances, simulation): random bytes and mutated real encodings;
//! - the contract JSON it reads out of smart queries and raw state into `common::msg` and
//!   `common::types`: random bytes, random JSON, and mutated Mars-shaped answers.
//!
//! Every input must decode or be an error, never panic. The JSON-RPC layer itself (tendermint-rpc
//! and the client's handling of each reply) is fuzzed against captured devnet replies in
//! `tests/tests/fuzz_rpc.rs`.

use cosmrs::proto::cosmos::auth::v1beta1::{BaseAccount, ModuleAccount, QueryAccountResponse};
use cosmrs::proto::cosmos::bank::v1beta1::QueryAllBalancesResponse;
use cosmrs::proto::cosmos::base::abci::v1beta1::{GasInfo, Result as AbciResult};
use cosmrs::proto::cosmos::base::query::v1beta1::PageResponse;
use cosmrs::proto::cosmos::base::v1beta1::Coin as ProtoCoin;
use cosmrs::proto::cosmos::tx::v1beta1::SimulateResponse;
use cosmrs::proto::cosmwasm::wasm::v1::{
    Model, QueryAllContractStateResponse, QueryRawContractStateResponse,
    QuerySmartContractStateResponse,
};
use cosmrs::proto::tendermint::abci::{Event, EventAttribute};
use cosmrs::proto::Any;
use cosmwasm_std::Uint256;
use mars::msg::{address_provider, oracle, params, red_bank, swapper};
use mars::types::{AssetParams, Market};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use prost::Message;
use serde::de::DeserializeOwned;
use testkit::fuzz::{bytes, config, json_value, mutated, mutations};

/// Decodes `data` as `T`; a decode must be a value or an error.
fn proto<T: Message + Default>(data: &[u8]) -> Result<Option<T>, TestCaseError> {
    match T::decode(data) {
        Ok(value) => {
            // What decoded re-encodes without trouble.
            let _ = value.encode_to_vec();
            Ok(Some(value))
        }
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            Ok(None)
        }
    }
}

/// The account answer as the client reads it: the `Any`, then the account type it names.
fn account_answer(data: &[u8]) -> Result<(), TestCaseError> {
    if let Some(answer) = proto::<QueryAccountResponse>(data)? {
        if let Some(any) = answer.account {
            proto::<BaseAccount>(&any.value)?;
            if let Some(module) = proto::<ModuleAccount>(&any.value)? {
                let _ = module.base_account.map(|b| b.sequence);
            }
        }
    }
    Ok(())
}

/// The balances answer as the client reads it: amounts are decimal strings into `Uint256`.
fn balances_answer(data: &[u8]) -> Result<(), TestCaseError> {
    if let Some(answer) = proto::<QueryAllBalancesResponse>(data)? {
        for coin in answer.balances {
            let _ = coin.amount.parse::<Uint256>();
        }
    }
    Ok(())
}

/// Every protobuf answer type the client decodes.
fn every_proto(data: &[u8]) -> Result<(), TestCaseError> {
    proto::<QuerySmartContractStateResponse>(data)?;
    proto::<QueryRawContractStateResponse>(data)?;
    proto::<QueryAllContractStateResponse>(data)?;
    proto::<SimulateResponse>(data)?;
    account_answer(data)?;
    balances_answer(data)?;
    Ok(())
}

fn page() -> impl Strategy<Value = Option<PageResponse>> {
    prop::option::of(
        (bytes(24), any::<u64>()).prop_map(|(next_key, total)| PageResponse { next_key, total }),
    )
}

/// A real answer of each kind, encoded: what a node sends.
fn encoded_answer() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let smart = bytes(64).prop_map(|data| {
        (
            "smart",
            QuerySmartContractStateResponse { data }.encode_to_vec(),
        )
    });
    let all_state = (prop::collection::vec((bytes(40), bytes(64)), 0..6), page()).prop_map(
        |(models, pagination)| {
            let answer = QueryAllContractStateResponse {
                models: models
                    .into_iter()
                    .map(|(key, value)| Model { key, value })
                    .collect(),
                pagination,
            };
            ("all_state", answer.encode_to_vec())
        },
    );
    let account = (
        "[a-z0-9]{0,44}",
        any::<u64>(),
        any::<u64>(),
        prop::option::of(bytes(33)),
        any::<bool>(),
    )
        .prop_map(|(address, account_number, sequence, key, module)| {
            let base = BaseAccount {
                address,
                pub_key: key.map(|value| Any {
                    type_url: "/cosmos.crypto.secp256k1.PubKey".into(),
                    value,
                }),
                account_number,
                sequence,
            };
            let any = if module {
                Any {
                    type_url: "/cosmos.auth.v1beta1.ModuleAccount".into(),
                    value: ModuleAccount {
                        base_account: Some(base),
                        name: "fee_collector".into(),
                        permissions: vec!["burner".into()],
                    }
                    .encode_to_vec(),
                }
            } else {
                Any {
                    type_url: "/cosmos.auth.v1beta1.BaseAccount".into(),
                    value: base.encode_to_vec(),
                }
            };
            let answer = QueryAccountResponse { account: Some(any) };
            ("account", answer.encode_to_vec())
        });
    let balances = (
        prop::collection::vec(("[a-z/]{1,12}", "[0-9]{1,40}"), 0..4),
        page(),
    )
        .prop_map(|(coins, pagination)| {
            let answer = QueryAllBalancesResponse {
                balances: coins
                    .into_iter()
                    .map(|(denom, amount)| ProtoCoin { denom, amount })
                    .collect(),
                pagination,
            };
            ("balances", answer.encode_to_vec())
        });
    let simulate = (any::<u64>(), any::<u64>(), ".{0,32}", "[a-z]{1,10}").prop_map(
        |(gas_wanted, gas_used, log, kind)| {
            #[allow(deprecated)]
            let result = AbciResult {
                data: Vec::new(),
                log,
                events: vec![Event {
                    r#type: kind,
                    attributes: vec![EventAttribute {
                        key: "action".into(),
                        value: "liquidate".into(),
                        index: true,
                    }],
                }],
                msg_responses: Vec::new(),
            };
            let answer = SimulateResponse {
                gas_info: Some(GasInfo {
                    gas_wanted,
                    gas_used,
                }),
                result: Some(result),
            };
            ("simulate", answer.encode_to_vec())
        },
    );
    prop_oneof![smart, all_state, account, balances, simulate]
}

/// Decodes `data` as contract JSON of type `T`.
fn contract_json<T: DeserializeOwned>(data: &[u8]) -> Result<bool, TestCaseError> {
    match serde_json::from_slice::<T>(data) {
        Ok(_) => Ok(true),
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            Ok(false)
        }
    }
}

type JsonDecoder = fn(&[u8]) -> Result<bool, TestCaseError>;

/// A Mars answer (or raw state value) of each type the services read, with its decoder.
const CONTRACT_SEEDS: &[(&str, JsonDecoder, &str)] = &[
    (
        "user_debt",
        contract_json::<red_bank::UserDebtResponse>,
        r#"{"denom":"uusdc","amount_scaled":"1000000000000","amount":"1000001","uncollateralized":false}"#,
    ),
    (
        "user_debts",
        contract_json::<Vec<red_bank::UserDebtResponse>>,
        r#"[{"denom":"uusdc","amount_scaled":"10","amount":"1","uncollateralized":false},{"denom":"uatom","amount_scaled":"20","amount":"2","uncollateralized":true}]"#,
    ),
    (
        "user_collateral",
        contract_json::<red_bank::UserCollateralResponse>,
        r#"{"denom":"uosmo","amount_scaled":"2000000000000","amount":"2000000","enabled":true}"#,
    ),
    (
        "user_position",
        contract_json::<red_bank::UserPositionResponse>,
        r#"{"total_enabled_collateral":"100000","total_collateralized_debt":"65000","weighted_max_ltv_collateral":"70000","weighted_liquidation_threshold_collateral":"80000","health_status":{"borrowing":{"max_ltv_hf":"1.076923076923076923","liq_threshold_hf":"1.230769230769230769"}}}"#,
    ),
    (
        "user_position_not_borrowing",
        contract_json::<red_bank::UserPositionResponse>,
        r#"{"total_enabled_collateral":"1","total_collateralized_debt":"0","weighted_max_ltv_collateral":"0","weighted_liquidation_threshold_collateral":"0","health_status":"not_borrowing"}"#,
    ),
    (
        "market_v2",
        contract_json::<red_bank::MarketV2Response>,
        r#"{"denom":"uosmo","reserve_factor":"0.1","interest_rate_model":{"optimal_utilization_rate":"0.8","base":"0","slope_1":"0.07","slope_2":"3"},"borrow_index":"1.000123","liquidity_index":"1.0001","borrow_rate":"0.05","liquidity_rate":"0.03","indexes_last_updated":1700000000,"collateral_total_scaled":"1000","debt_total_scaled":"500","collateral_total_amount":"1000","debt_total_amount":"500","utilization_rate":"0.5"}"#,
    ),
    (
        "markets_v2_page",
        contract_json::<red_bank::PaginationResponse<red_bank::MarketV2Response>>,
        r#"{"data":[{"denom":"uatom","reserve_factor":"0","interest_rate_model":{"optimal_utilization_rate":"0.6","base":"0.01","slope_1":"0.1","slope_2":"2"},"borrow_index":"1","liquidity_index":"1","borrow_rate":"0","liquidity_rate":"0","indexes_last_updated":0,"collateral_total_scaled":"0","debt_total_scaled":"0","collateral_total_amount":"0","debt_total_amount":"0","utilization_rate":"0"}],"metadata":{"has_more":true}}"#,
    ),
    (
        "market_state",
        contract_json::<Market>,
        r#"{"denom":"uosmo","reserve_factor":"0.1","interest_rate_model":{"optimal_utilization_rate":"0.8","base":"0","slope_1":"0.07","slope_2":"3"},"borrow_index":"1.000123","liquidity_index":"1.0001","borrow_rate":"0.05","liquidity_rate":"0.03","indexes_last_updated":1700000000,"collateral_total_scaled":"1000","debt_total_scaled":"500"}"#,
    ),
    (
        "collateral_state",
        contract_json::<red_bank::Collateral>,
        r#"{"amount_scaled":"123456789012345678901234567890","enabled":true}"#,
    ),
    (
        "debt_state",
        contract_json::<red_bank::Debt>,
        r#"{"amount_scaled":"5","uncollateralized":false}"#,
    ),
    (
        "colls_key",
        |data| Ok(red_bank::UserId::from_key_bytes(data).is_ok()),
        r#"{"addr":"osmo1qyqszqgpqyqszqgpqyqszqgpqyqszqgpjnp7du","acc_id":""}"#,
    ),
    (
        "red_bank_config",
        contract_json::<red_bank::ConfigResponse>,
        r#"{"owner":"osmo1owner","proposed_new_owner":null,"address_provider":"osmo1ap"}"#,
    ),
    (
        "price",
        contract_json::<oracle::PriceResponse>,
        r#"{"denom":"uatom","price":"7.5"}"#,
    ),
    (
        "prices",
        contract_json::<Vec<oracle::PriceResponse>>,
        r#"[{"denom":"uatom","price":"7.5"},{"denom":"uosmo","price":"0.000000000000000001"}]"#,
    ),
    (
        "asset_params",
        contract_json::<AssetParams>,
        r#"{"denom":"uatom","credit_manager":{"whitelisted":true,"hls":{"max_loan_to_value":"0.8","liquidation_threshold":"0.85","correlations":[{"coin":{"denom":"ustatom"}},{"vault":{"addr":"osmo1v"}}]}},"red_bank":{"deposit_enabled":true,"borrow_enabled":true},"max_loan_to_value":"0.7","liquidation_threshold":"0.8","liquidation_bonus":{"starting_lb":"0.01","slope":"2","min_lb":"0.02","max_lb":"0.1"},"protocol_liquidation_fee":"0.1","deposit_cap":"1000000000000"}"#,
    ),
    (
        "all_asset_params",
        contract_json::<Vec<AssetParams>>,
        r#"[{"denom":"uosmo","credit_manager":{"whitelisted":false,"hls":null},"red_bank":{"deposit_enabled":true,"borrow_enabled":false},"max_loan_to_value":"0.5","liquidation_threshold":"0.6","liquidation_bonus":{"starting_lb":"0","slope":"1","min_lb":"0","max_lb":"0.05"},"protocol_liquidation_fee":"0","deposit_cap":"0"}]"#,
    ),
    (
        "target_health_factor",
        contract_json::<cosmwasm_std::Decimal>,
        r#""1.05""#,
    ),
    (
        "total_deposit",
        contract_json::<params::TotalDepositResponse>,
        r#"{"denom":"uosmo","cap":"1000","amount":"10"}"#,
    ),
    (
        "simulate_swap",
        contract_json::<swapper::SimulateSwapResponse>,
        r#"{"return_amount":"5","fee_amount":"1"}"#,
    ),
    (
        "pool",
        contract_json::<swapper::PoolResponse>,
        r#"{"assets":[{"denom":"uatom","amount":"10"},{"denom":"uusdc","amount":"20"}],"fee":"0.003"}"#,
    ),
    (
        "address",
        contract_json::<address_provider::AddressResponseItem>,
        r#"{"address_type":"red_bank","address":"osmo1redbank"}"#,
    ),
];

/// Field names of the Mars answers, so random objects get close to real ones.
const CONTRACT_KEYS: &[&str] = &[
    "denom",
    "amount",
    "amount_scaled",
    "enabled",
    "uncollateralized",
    "health_status",
    "borrowing",
    "max_ltv_hf",
    "liq_threshold_hf",
    "price",
    "data",
    "metadata",
    "has_more",
    "interest_rate_model",
    "borrow_index",
    "liquidity_index",
    "credit_manager",
    "red_bank",
    "hls",
    "liquidation_bonus",
    "assets",
    "fee",
    "addr",
    "acc_id",
];

#[test]
fn seeds_are_real_answers() {
    for (name, decode, seed) in CONTRACT_SEEDS {
        assert!(
            decode(seed.as_bytes()).unwrap(),
            "seed {name} does not decode"
        );
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    #[test]
    fn random_bytes_into_every_proto_answer(data in bytes(512)) {
        every_proto(&data)?;
    }

    #[test]
    fn mutated_proto_answers_decode_or_fail(
        (kind, original) in encoded_answer(),
        edits in mutations(4),
    ) {
        let data = mutated(&original, &edits);
        every_proto(&data)?;
        if data == original {
            match kind {
                "smart" => prop_assert!(proto::<QuerySmartContractStateResponse>(&data)?.is_some()),
                "all_state" => prop_assert!(proto::<QueryAllContractStateResponse>(&data)?.is_some()),
                "account" => prop_assert!(proto::<QueryAccountResponse>(&data)?.is_some()),
                "balances" => prop_assert!(proto::<QueryAllBalancesResponse>(&data)?.is_some()),
                _ => prop_assert!(proto::<SimulateResponse>(&data)?.is_some()),
            }
        }
    }

    #[test]
    fn random_bytes_into_every_contract_answer(data in bytes(256)) {
        for (_, decode, _) in CONTRACT_SEEDS {
            decode(&data)?;
        }
    }

    #[test]
    fn random_json_into_every_contract_answer(value in json_value(CONTRACT_KEYS)) {
        let data = serde_json::to_vec(&value).unwrap();
        for (_, decode, _) in CONTRACT_SEEDS {
            decode(&data)?;
        }
    }

    #[test]
    fn mutated_contract_answers_decode_or_fail(
        seed in 0..CONTRACT_SEEDS.len(),
        edits in mutations(4),
    ) {
        let (_, decode, original) = CONTRACT_SEEDS[seed];
        let data = mutated(original.as_bytes(), &edits);
        let decoded = decode(&data)?;
        if data == original.as_bytes() {
            prop_assert!(decoded);
        }
    }
}

/// Found by `tests/tests/fuzz_rpc.rs`: a base64 field whose last group starts with `=` makes
/// subtle-encoding (under tendermint-rpc's response types) subtract with overflow. The client
/// turns that into an error of the endpoint instead of a crash.
#[tokio::test]
async fn a_reply_that_crashes_the_rpc_decoder_is_an_error() {
    use redline_chain::{ChainClient, ChainConfig, TendermintClient};

    let reply = r#"{"jsonrpc":"2.0","id":1,"result":{"response":{"code":0,"log":"","info":"","index":"0","key":"","value":"AAAA=","proofOps":null,"height":"5","codespace":""}}}"#;
    let app = axum::Router::new().fallback(move || async move {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            reply,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = ChainConfig::new(
        "fuzz-1",
        "osmo",
        &[format!("http://{addr}")],
        &[format!("ws://{addr}/websocket")],
        "uosmo",
        "0.025",
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    let client = TendermintClient::new(config).unwrap();
    let error = client
        .query_raw("osmo1contract", b"key", None)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("crashed the RPC decoder"), "{text}");
    assert!(text.contains(&addr.to_string()), "{text}");
    server.abort();
}
