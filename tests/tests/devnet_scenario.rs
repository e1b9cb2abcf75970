//! The scenario node end to end through tendermint-rpc: manifest, Red Bank txs signed by the
//! scenario's liquidator wallets, an admin price move at a known height, a scripted price path,
//! and a liquidation reproducing the case measured on Mars.

use std::collections::BTreeMap;
use std::time::Duration;

use cosmrs::cosmwasm::MsgExecuteContract;
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::Msg;
use cosmrs::AccountId;
use cosmwasm_std::{Decimal, Uint128};
use mars::msg::{oracle, red_bank};
use mars::types::UserHealthStatus;
use redline_devnet::chain::{ChainConfig, PriceMove, PriceTrigger};
use redline_devnet::rpc::NodeConfig;
use redline_devnet::scenario::{self, ScenarioConfig};
use redline_tests::abci::{self, smart, TxParams};
use tendermint_rpc::{Client, HttpClient};

const CHAIN_ID: &str = "devnet-scenario";

async fn execute(
    http: &HttpClient,
    key: &SigningKey,
    contract: &str,
    msg: &impl serde::Serialize,
    funds: Vec<(u128, &str)>,
) -> tendermint_rpc::endpoint::broadcast::tx_commit::Response {
    let sender = key.public_key().account_id("osmo").unwrap();
    let acc = abci::account(http, &sender).await;
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
    let params = TxParams {
        account_number: acc.account_number,
        sequence: acc.sequence,
        fee_amount: 25_000,
        gas_limit: 1_000_000,
        chain_id: CHAIN_ID.into(),
        memo: String::new(),
    };
    http.broadcast_tx_commit(abci::sign(key, vec![msg], &params))
        .await
        .unwrap()
}

async fn wait_for_height(http: &HttpClient, height: u64) {
    abci::wait_for_height(http, height, Duration::from_secs(10)).await
}

/// POSTs `body` to `url`: the status and the body of the answer.
async fn post(url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let response = abci::raw_post(authority, path, body).await;
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        response.split_once("\r\n\r\n").unwrap().1.to_string(),
    )
}

/// The price the oracle answers for `denom`.
async fn price(http: &HttpClient, oracle: &str, denom: &str) -> Decimal {
    let query = oracle::QueryMsg::Price {
        denom: denom.into(),
        kind: None,
    };
    smart::<oracle::PriceResponse>(http, oracle, &query)
        .await
        .price
}

/// `user`'s collateral of `denom` on the Red Bank.
async fn collateral(http: &HttpClient, red_bank: &str, user: &AccountId, denom: &str) -> u128 {
    let query = red_bank::QueryMsg::UserCollaterals {
        user: user.to_string(),
        account_id: None,
        start_after: None,
        limit: None,
    };
    let collaterals: Vec<red_bank::UserCollateralResponse> = smart(http, red_bank, &query).await;
    collateral_amount(&collaterals, denom).u128()
}

/// `user`'s liquidation health factor on the Red Bank.
async fn health_factor(http: &HttpClient, red_bank: &str, user: &AccountId) -> Decimal {
    let query = red_bank::QueryMsg::UserPosition {
        user: user.to_string(),
        account_id: None,
    };
    liquidation_hf(&smart(http, red_bank, &query).await)
}

/// `liquidator` liquidates `user`'s ATOM collateral, sending 30,000 uusdc.
async fn liquidate(
    http: &HttpClient,
    liquidator: &SigningKey,
    red_bank: &str,
    user: &AccountId,
) -> tendermint_rpc::endpoint::broadcast::tx_commit::Response {
    let msg = red_bank::ExecuteMsg::Liquidate {
        user: user.to_string(),
        collateral_denom: "uatom".into(),
        recipient: None,
    };
    execute(http, liquidator, red_bank, &msg, vec![(30_000, "uusdc")]).await
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
    assert_eq!(
        price(&http, oracle, "uosmo").await,
        "0.45".parse::<Decimal>().unwrap()
    );

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
    // Scaled amounts round down at a liquidity index above one (as on Mars): 9,999 or 10,000.
    let deposited = collateral(&http, red_bank, &borrower, "uatom").await;
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
    assert!(health_factor(&http, red_bank, &borrower).await > Decimal::one());

    // Healthy: a liquidation is refused with the contract's error, code 5 in `wasm`.
    let refused = liquidate(&http, &keys[1], red_bank, &borrower).await;
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
    assert_eq!(
        price(&http, oracle, "uatom").await,
        "7.5".parse::<Decimal>().unwrap()
    );
    let results = http
        .block_results(tendermint::block::Height::try_from(at).unwrap())
        .await
        .unwrap();
    assert!(results
        .finalize_block_events
        .iter()
        .any(|e| e.kind == "wasm"));
    assert!(health_factor(&http, red_bank, &borrower).await < Decimal::one());

    // The liquidation goes through: 30,000 uusdc repaid, 4,400 uatom seized of which 4,360 to
    // the liquidator (the case measured on Mars; accrued interest and scaled-amount rounding
    // at an index above one may move each figure by a unit).
    let liquidated = liquidate(&http, &keys[1], red_bank, &borrower).await;
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
    let left = collateral(&http, red_bank, &borrower, "uatom").await;
    assert!((5_598..=5_600).contains(&left), "{left}");
    let won = collateral(&http, red_bank, &liquidator, "uatom").await;
    assert!((4_359..=4_361).contains(&won), "{won}");
    handle.shutdown().await;
}
