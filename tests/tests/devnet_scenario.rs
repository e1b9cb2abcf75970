//! The scenario node end to end through tendermint-rpc: manifest, Red Bank txs signed by the
//! scenario's liquidator wallets, an admin price move at a known height, a scripted price path,
//! and a liquidation reproducing the case measured on Mars.

use std::collections::BTreeMap;
use std::time::Duration;

use cosmrs::cosmwasm::MsgExecuteContract;
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::tx::{Fee, Msg, SignDoc, SignerInfo};
use cosmrs::AccountId;
use cosmwasm_std::{Decimal, Uint128};
use mars::msg::{oracle, red_bank};
use mars::types::UserHealthStatus;
use prost::Message;
use redline_devnet::chain::{ChainConfig, PriceMove, PriceTrigger};
use redline_devnet::rpc::NodeConfig;
use redline_devnet::scenario::{self, ScenarioConfig};
use serde::de::DeserializeOwned;
use tendermint_rpc::{Client, HttpClient};

const CHAIN_ID: &str = "devnet-scenario";

async fn smart<T: DeserializeOwned>(
    http: &HttpClient,
    contract: &str,
    msg: &impl serde::Serialize,
) -> T {
    let req = QuerySmartContractStateRequest {
        address: contract.to_string(),
        query_data: serde_json::to_vec(msg).unwrap(),
    };
    let answer = http
        .abci_query(
            Some("/cosmwasm.wasm.v1.Query/SmartContractState".into()),
            req.encode_to_vec(),
            None,
            false,
        )
        .await
        .unwrap();
    assert!(answer.code.is_ok(), "{}", answer.log);
    let resp = QuerySmartContractStateResponse::decode(answer.value.as_slice()).unwrap();
    serde_json::from_slice(&resp.data).unwrap()
}

async fn account(http: &HttpClient, address: &AccountId) -> BaseAccount {
    let answer = http
        .abci_query(
            Some("/cosmos.auth.v1beta1.Query/Account".into()),
            QueryAccountRequest {
                address: address.to_string(),
            }
            .encode_to_vec(),
            None,
            false,
        )
        .await
        .unwrap();
    assert!(answer.code.is_ok(), "{}", answer.log);
    let any = QueryAccountResponse::decode(answer.value.as_slice())
        .unwrap()
        .account
        .unwrap();
    BaseAccount::decode(any.value.as_slice()).unwrap()
}

async fn execute(
    http: &HttpClient,
    key: &SigningKey,
    contract: &str,
    msg: &impl serde::Serialize,
    funds: Vec<(u128, &str)>,
) -> tendermint_rpc::endpoint::broadcast::tx_commit::Response {
    let sender = key.public_key().account_id("osmo").unwrap();
    let acc = account(http, &sender).await;
    let msg = MsgExecuteContract {
        sender,
        contract: contract.parse().unwrap(),
        msg: serde_json::to_vec(msg).unwrap(),
        funds: funds
            .into_iter()
            .map(|(amount, denom)| cosmrs::Coin {
                denom: denom.parse().unwrap(),
                amount,
            })
            .collect(),
    }
    .to_any()
    .unwrap();
    let body = cosmrs::tx::Body::new(vec![msg], "", 0u32);
    let auth_info = SignerInfo::single_direct(Some(key.public_key()), acc.sequence).auth_info(
        Fee::from_amount_and_gas(
            cosmrs::Coin {
                denom: "uosmo".parse().unwrap(),
                amount: 25_000,
            },
            1_000_000u64,
        ),
    );
    let tx = SignDoc::new(
        &body,
        &auth_info,
        &CHAIN_ID.parse().unwrap(),
        acc.account_number,
    )
    .unwrap()
    .sign(key)
    .unwrap()
    .to_bytes()
    .unwrap();
    http.broadcast_tx_commit(tx).await.unwrap()
}

async fn wait_for_height(http: &HttpClient, height: u64) {
    for _ in 0..200 {
        if http
            .status()
            .await
            .unwrap()
            .sync_info
            .latest_block_height
            .value()
            >= height
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("height {height} not reached");
}

async fn post(url: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        response.split_once("\r\n\r\n").unwrap().1.to_string(),
    )
}

fn collateral_amount(collaterals: &[red_bank::UserCollateralResponse], denom: &str) -> Uint128 {
    collaterals
        .iter()
        .find(|c| c.denom == denom)
        .map(|c| c.amount)
        .unwrap_or_default()
}

fn liquidation_hf(position: &red_bank::UserPositionResponse) -> Decimal {
    match &position.health_status {
        UserHealthStatus::Borrowing {
            liq_threshold_hf, ..
        } => *liq_threshold_hf,
        UserHealthStatus::NotBorrowing => panic!("not borrowing"),
    }
}

#[tokio::test]
async fn node_scenario_deposit_borrow_price_move_and_liquidation() {
    let node = NodeConfig {
        chain: ChainConfig {
            chain_id: CHAIN_ID.into(),
            block_time: Duration::from_millis(200),
            ..ChainConfig::default()
        },
        port: 0,
        ..NodeConfig::default()
    };
    let scenario = ScenarioConfig {
        accounts: 300,
        seed: 3,
        liquidator_wallets: 2,
        price_path: vec![PriceMove {
            trigger: PriceTrigger::AtHeight(3),
            prices: BTreeMap::from([("uosmo".to_string(), "0.45".parse().unwrap())]),
        }],
        ..ScenarioConfig::default()
    };
    let (handle, info, manifest) = scenario::start(node, scenario.clone()).await.unwrap();
    manifest.validate("scenario manifest").unwrap();
    assert_eq!(manifest.denoms.len(), 4);
    assert!(manifest.denoms.iter().any(|d| d.decimals == 18));
    assert_eq!(info.borrowers, 300);
    assert!(info.health.from_1_to_1_03 > 0 && info.health.above_1_1 > info.health.from_1_03_to_1_1);
    let http = HttpClient::new(manifest.rpc_http[0].as_str()).unwrap();
    let red_bank = manifest.contracts.red_bank.as_str();
    let oracle = manifest.contracts.oracle.as_str();
    let keys = scenario::liquidator_keys(&scenario.liquidator_mnemonic, 2).unwrap();
    let borrower = keys[0].public_key().account_id("osmo").unwrap();
    let liquidator = keys[1].public_key().account_id("osmo").unwrap();
    assert_eq!(info.liquidators[0], borrower.to_string());

    // The scripted price path moved OSMO at height 3.
    wait_for_height(&http, 3).await;
    let osmo: oracle::PriceResponse = smart(
        &http,
        oracle,
        &oracle::QueryMsg::Price {
            denom: "uosmo".into(),
            kind: None,
        },
    )
    .await;
    assert_eq!(osmo.price, "0.45".parse::<Decimal>().unwrap());

    // A deposit through a real signed tx shows up in user_collaterals.
    let deposit = execute(
        &http,
        &keys[0],
        red_bank,
        &red_bank::ExecuteMsg::Deposit {
            account_id: None,
            on_behalf_of: None,
        },
        vec![(10_000, "uatom")],
    )
    .await;
    assert!(deposit.tx_result.code.is_ok(), "{:?}", deposit.tx_result);
    let collaterals: Vec<red_bank::UserCollateralResponse> = smart(
        &http,
        red_bank,
        &red_bank::QueryMsg::UserCollaterals {
            user: borrower.to_string(),
            account_id: None,
            start_after: None,
            limit: None,
        },
    )
    .await;
    // Scaled amounts round down at a liquidity index above one (as on Mars): 9,999 or 10,000.
    let deposited = collateral_amount(&collaterals, "uatom").u128();
    assert!((9_999..=10_000).contains(&deposited), "{deposited}");

    let borrow = execute(
        &http,
        &keys[0],
        red_bank,
        &red_bank::ExecuteMsg::Borrow {
            denom: "uusdc".into(),
            amount: Uint128::new(65_000),
            recipient: None,
        },
        vec![],
    )
    .await;
    assert!(borrow.tx_result.code.is_ok(), "{:?}", borrow.tx_result);
    let position: red_bank::UserPositionResponse = smart(
        &http,
        red_bank,
        &red_bank::QueryMsg::UserPosition {
            user: borrower.to_string(),
            account_id: None,
        },
    )
    .await;
    assert!(liquidation_hf(&position) > Decimal::one());

    // Healthy: a liquidation is refused with the contract's error, code 5 in `wasm`.
    let refused = execute(
        &http,
        &keys[1],
        red_bank,
        &red_bank::ExecuteMsg::Liquidate {
            user: borrower.to_string(),
            collateral_denom: "uatom".into(),
            recipient: None,
        },
        vec![(30_000, "uusdc")],
    )
    .await;
    assert_eq!(refused.tx_result.code.value(), 5, "{:?}", refused.tx_result);
    assert_eq!(refused.tx_result.codespace, "wasm");
    assert!(
        refused.tx_result.log.contains("cannot be liquidated"),
        "{}",
        refused.tx_result.log
    );

    // Unknown denoms and bad prices are refused up front.
    let admin = manifest.admin_url.clone().unwrap();
    let (status, body) = post(&format!("{admin}/prices"), r#"{"prices":{"uxyz":"1"}}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("uxyz"), "{body}");
    let (status, body) = post(&format!("{admin}/prices"), r#"{"prices":{"uatom":"-1"}}"#).await;
    assert_eq!(status, 400, "{body}");

    // ATOM falls to 7.5 at the height the admin endpoint names.
    let (status, body) = post(
        &format!("{}/prices", manifest.admin_url.as_deref().unwrap()),
        r#"{"prices":{"uatom":"7.5"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let at = answer["height"].as_u64().unwrap();
    wait_for_height(&http, at).await;
    let atom: oracle::PriceResponse = smart(
        &http,
        oracle,
        &oracle::QueryMsg::Price {
            denom: "uatom".into(),
            kind: None,
        },
    )
    .await;
    assert_eq!(atom.price, "7.5".parse::<Decimal>().unwrap());
    let results = http
        .block_results(tendermint::block::Height::try_from(at).unwrap())
        .await
        .unwrap();
    assert!(results
        .finalize_block_events
        .iter()
        .any(|e| e.kind == "wasm"));
    let position: red_bank::UserPositionResponse = smart(
        &http,
        red_bank,
        &red_bank::QueryMsg::UserPosition {
            user: borrower.to_string(),
            account_id: None,
        },
    )
    .await;
    assert!(liquidation_hf(&position) < Decimal::one());

    // The liquidation goes through: 30,000 uusdc repaid, 4,400 uatom seized of which 4,360 to
    // the liquidator (the case measured on Mars; accrued interest and scaled-amount rounding
    // at an index above one may move each figure by a unit).
    let liquidated = execute(
        &http,
        &keys[1],
        red_bank,
        &red_bank::ExecuteMsg::Liquidate {
            user: borrower.to_string(),
            collateral_denom: "uatom".into(),
            recipient: None,
        },
        vec![(30_000, "uusdc")],
    )
    .await;
    assert!(
        liquidated.tx_result.code.is_ok(),
        "{:?}",
        liquidated.tx_result
    );
    for result in [&deposit.tx_result, &borrow.tx_result, &liquidated.tx_result] {
        assert!(
            (100_000..1_000_000).contains(&result.gas_used),
            "{}",
            result.gas_used
        );
    }
    let borrower_collaterals: Vec<red_bank::UserCollateralResponse> = smart(
        &http,
        red_bank,
        &red_bank::QueryMsg::UserCollaterals {
            user: borrower.to_string(),
            account_id: None,
            start_after: None,
            limit: None,
        },
    )
    .await;
    let left = collateral_amount(&borrower_collaterals, "uatom").u128();
    assert!((5_598..=5_600).contains(&left), "{left}");
    let liquidator_collaterals: Vec<red_bank::UserCollateralResponse> = smart(
        &http,
        red_bank,
        &red_bank::QueryMsg::UserCollaterals {
            user: liquidator.to_string(),
            account_id: None,
            start_after: None,
            limit: None,
        },
    )
    .await;
    let won = collateral_amount(&liquidator_collaterals, "uatom").u128();
    assert!((4_359..=4_361).contains(&won), "{won}");
    handle.shutdown().await;
}
