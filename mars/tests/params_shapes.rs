//! The params contract's `asset_params` answers in both Mars lines, written out by hand from
//! their schemas (mars-protocol/contracts v2.1.x-osmo and core-contracts v2.2 / v2.3
//! `packages/types/src/params/asset.rs`).

use cosmwasm_std::{Decimal, Uint128};
use mars::types::{AssetParams, InterestRateModel, MixedParams, ParamsShape};

const OSMOSIS: &str = r#"{
  "denom": "uosmo",
  "credit_manager": { "whitelisted": true, "hls": null },
  "red_bank": { "deposit_enabled": true, "borrow_enabled": true },
  "max_loan_to_value": "0.59",
  "liquidation_threshold": "0.61",
  "liquidation_bonus": { "starting_lb": "0", "slope": "2", "min_lb": "0", "max_lb": "0.05" },
  "protocol_liquidation_fee": "0.5",
  "deposit_cap": "2500000000000"
}"#;

const NEUTRON_V23: &str = r#"{
  "denom": "untrn",
  "credit_manager": { "whitelisted": true, "withdraw_enabled": true, "hls": null },
  "red_bank": { "deposit_enabled": true, "borrow_enabled": true, "withdraw_enabled": true },
  "max_loan_to_value": "0.35",
  "liquidation_threshold": "0.4",
  "liquidation_bonus": { "starting_lb": "0", "slope": "2", "min_lb": "0", "max_lb": "0.05" },
  "protocol_liquidation_fee": "0.5",
  "deposit_cap": "5000000000000",
  "close_factor": "0.9",
  "reserve_factor": "0.1",
  "interest_rate_model": { "optimal_utilization_rate": "0.6", "base": "0", "slope_1": "0.15", "slope_2": "3" }
}"#;

fn parse(json: &str) -> Result<AssetParams, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn the_osmosis_shape_parses_without_the_core_contracts_fields() {
    let params = parse(OSMOSIS).unwrap();
    assert_eq!(params.shape(), Ok(ParamsShape::V21));
    assert_eq!(params.close_factor, None);
    assert_eq!(params.red_bank.withdraw_enabled, None);
    assert_eq!(params.deposit_cap, Uint128::new(2_500_000_000_000));
}

#[test]
fn the_neutron_shape_parses_with_close_factor_and_rate_model() {
    let params = parse(NEUTRON_V23).unwrap();
    assert_eq!(params.shape(), Ok(ParamsShape::Core23));
    assert_eq!(params.close_factor, Some(Decimal::percent(90)));
    assert_eq!(params.credit_manager.withdraw_enabled, Some(true));
    assert_eq!(params.red_bank.withdraw_enabled, Some(true));
    assert_eq!(params.reserve_factor, Some(Decimal::percent(10)));
    assert_eq!(
        params.interest_rate_model,
        Some(InterestRateModel {
            optimal_utilization_rate: Decimal::percent(60),
            base: Decimal::zero(),
            slope_1: Decimal::percent(15),
            slope_2: Decimal::percent(300),
        })
    );
    // Written back as it came (the devnet's params contract answers with these structs).
    let again: serde_json::Value = serde_json::to_value(&params).unwrap();
    let given: serde_json::Value = serde_json::from_str(NEUTRON_V23).unwrap();
    assert_eq!(again, given);
}

#[test]
fn the_v22_neutron_shape_has_no_rate_model_yet() {
    let mut json: serde_json::Value = serde_json::from_str(NEUTRON_V23).unwrap();
    let object = json.as_object_mut().unwrap();
    object.remove("reserve_factor");
    object.remove("interest_rate_model");
    let params: AssetParams = serde_json::from_value(json).unwrap();
    assert_eq!(params.shape(), Ok(ParamsShape::Core22));
}

#[test]
fn an_unknown_field_is_refused_by_name() {
    for (json, field) in [
        (
            OSMOSIS.replacen("\"denom\"", "\"max_leverage\": \"3\", \"denom\"", 1),
            "max_leverage",
        ),
        (
            NEUTRON_V23.replacen("\"whitelisted\"", "\"frozen\": true, \"whitelisted\"", 1),
            "frozen",
        ),
        (
            NEUTRON_V23.replacen("\"slope_2\"", "\"slope_3\": \"1\", \"slope_2\"", 1),
            "slope_3",
        ),
    ] {
        let error = parse(&json).unwrap_err().to_string();
        assert!(
            error.contains(&format!("unknown field `{field}`")),
            "{error}"
        );
    }
}

#[test]
fn a_mix_of_the_shapes_is_named() {
    let mut json: serde_json::Value = serde_json::from_str(NEUTRON_V23).unwrap();
    json["red_bank"]
        .as_object_mut()
        .unwrap()
        .remove("withdraw_enabled");
    let params: AssetParams = serde_json::from_value(json).unwrap();
    assert_eq!(
        params.shape(),
        Err(MixedParams {
            denom: "untrn".into(),
            missing: "red_bank.withdraw_enabled",
            present: "reserve_factor",
        })
    );
    let mut json: serde_json::Value = serde_json::from_str(OSMOSIS).unwrap();
    json["close_factor"] = "0.9".into();
    let params: AssetParams = serde_json::from_value(json).unwrap();
    assert_eq!(
        params.shape().unwrap_err().to_string(),
        "asset params of uosmo: credit_manager.withdraw_enabled is missing, though close_factor is set (core-contracts params carry both)"
    );
}
