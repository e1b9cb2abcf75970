//! Both lending products behind the one trait: each refuses the other's account keys without
//! asking the chain, and each builds its own liquidation message.

use cosmrs::proto::cosmwasm::wasm::v1::MsgExecuteContract;
use cosmrs::AccountId;
use cosmwasm_std::Uint128;
use mars::rule::LiquidationRule;
use redline_protocol::rover::{Funding, Rover, RoverContracts, RoverOrder};
use redline_protocol::{
    AccountKey, LiquidationOrder, Protocol, ProtocolKind, ReadError, RedBank, RedBankContracts,
};
use serde_json::{json, Value};
use testkit::FakeChain;

/// A bech32 address of 32 `byte`s, as contract addresses are.
fn contract(byte: u8) -> String {
    AccountId::new("osmo", &[byte; 32]).unwrap().to_string()
}

fn red_bank(chain: &FakeChain) -> RedBank<FakeChain> {
    let contracts = RedBankContracts {
        red_bank: contract(1),
        oracle: "oracle".into(),
        params: "params".into(),
    };
    RedBank::new(
        chain.clone(),
        contracts,
        LiquidationRule::TargetHealthFactor,
        6,
    )
}

fn rover(chain: &FakeChain) -> Rover<FakeChain> {
    let contracts = RoverContracts {
        credit_manager: contract(2),
        red_bank: contract(1),
    };
    Rover::new(chain.clone(), contracts)
}

fn liquidator() -> AccountId {
    AccountId::new("osmo", &[7; 20]).unwrap()
}

fn executed(any: &cosmrs::Any) -> (MsgExecuteContract, Value) {
    use cosmrs::proto::traits::Message as _;
    let msg = MsgExecuteContract::decode(any.value.as_slice()).unwrap();
    let json = serde_json::from_slice(&msg.msg).unwrap();
    (msg, json)
}

#[tokio::test]
async fn each_product_refuses_the_others_keys_without_a_query() {
    let chain = FakeChain::new();
    let credit_account = AccountKey::CreditAccount(9);
    let address = AccountKey::Address("osmo1borrower".into());
    match red_bank(&chain).read_position(&credit_account, None).await {
        Err(ReadError::NotAnAccount { protocol, .. }) => {
            assert_eq!(protocol, ProtocolKind::RedBank)
        }
        other => panic!("the Red Bank read a credit account: {other:?}"),
    }
    match rover(&chain).read_position(&address, None).await {
        Err(ReadError::NotAnAccount { protocol, .. }) => assert_eq!(protocol, ProtocolKind::Rover),
        other => panic!("the credit manager read an address: {other:?}"),
    }
    assert!(chain.queries().is_empty());
}

#[test]
fn each_product_builds_its_own_liquidation_message() {
    let chain = FakeChain::new();
    let order = LiquidationOrder {
        account: AccountKey::Address("osmo1borrower".into()),
        debt_denom: "uusdc".into(),
        debt_to_send: Uint128::new(30_000),
        collateral_denom: "uatom".into(),
    };
    let (msg, json) = executed(
        &red_bank(&chain)
            .liquidate_msg(&liquidator(), &order)
            .unwrap(),
    );
    assert_eq!(msg.contract, contract(1));
    assert_eq!(msg.funds.len(), 1);
    assert_eq!(
        (msg.funds[0].denom.as_str(), msg.funds[0].amount.as_str()),
        ("uusdc", "30000")
    );
    assert_eq!(
        json,
        json!({"liquidate": {"user": "osmo1borrower", "collateral_denom": "uatom", "recipient": null}})
    );

    let order = RoverOrder {
        own_account: "4".into(),
        liquidatee: "9".into(),
        debt_denom: "uusdc".into(),
        debt_to_repay: Uint128::new(30_000),
        collateral_denom: "uatom".into(),
        from_lend: true,
        min_receive: Uint128::new(31_000),
        funding: Funding::Borrow,
    };
    let (msg, json) = executed(&rover(&chain).liquidate_msg(&liquidator(), &order).unwrap());
    assert_eq!(msg.contract, contract(2));
    assert!(msg.funds.is_empty(), "the debt coin is borrowed, not sent");
    let update = &json["update_credit_account"];
    assert_eq!(update["account_id"], json!("4"));
    assert_eq!(
        update["actions"][1]["liquidate"]["request"],
        json!({"lend": "uatom"})
    );
    assert_eq!(update["actions"].as_array().unwrap().len(), 5);

    let from_wallet = RoverOrder {
        funding: Funding::Wallet,
        ..order
    };
    let (msg, json) = executed(
        &rover(&chain)
            .liquidate_msg(&liquidator(), &from_wallet)
            .unwrap(),
    );
    assert_eq!(
        (msg.funds[0].denom.as_str(), msg.funds[0].amount.as_str()),
        ("uusdc", "30000"),
        "the debt coin is sent from the wallet"
    );
    let actions = json["update_credit_account"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert_eq!(
        actions[0],
        json!({"deposit": {"denom": "uusdc", "amount": "30000"}})
    );
}
