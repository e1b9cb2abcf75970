//! The Red Bank's reads against a scripted chain: how many pages a list takes, and which
//! queries a snapshot makes under each liquidation rule.

use cosmwasm_std::{Decimal, Timestamp};
use mars::rule::{LiquidationRule, RepayLimit};
use redline_chain::query_all_pages;
use redline_protocol::{Protocol, RedBank, RedBankContracts};
use serde_json::{json, Value};
use testkit::FakeChain;

fn contracts() -> RedBankContracts {
    RedBankContracts {
        red_bank: "red_bank".into(),
        oracle: "oracle".into(),
        params: "params".into(),
    }
}

/// A list query answered the way Mars pages: items after `start_after`, at most
/// `min(limit, cap)` of them.
fn paged_answer(items: &[Value], key: &str, query: &Value, cap: usize) -> Value {
    let start_after = query["start_after"].as_str();
    let limit = query["limit"].as_u64().unwrap_or(10) as usize;
    let after = items
        .iter()
        .skip_while(|item| start_after.is_some_and(|s| item[key].as_str().unwrap() <= s));
    Value::Array(after.take(limit.min(cap)).cloned().collect())
}

fn market(denom: &str) -> Value {
    json!({
        "denom": denom,
        "interest_rate_model": {"optimal_utilization_rate": "0.8", "base": "0", "slope_1": "0.2", "slope_2": "2"},
        "borrow_index": "1", "liquidity_index": "1", "borrow_rate": "0", "liquidity_rate": "0",
        "indexes_last_updated": 1_000, "collateral_total_scaled": "0", "debt_total_scaled": "0",
        "reserve_factor": "0.1"
    })
}

fn markets(n: usize) -> Vec<Value> {
    (0..n).map(|i| market(&format!("denom{i:02}"))).collect()
}

async fn list_markets(chain: &FakeChain) -> Vec<Value> {
    query_all_pages(
        chain,
        "red_bank",
        None,
        |start_after, limit| json!({"markets": {"start_after": start_after, "limit": limit}}),
        |m: &Value| m["denom"].as_str().unwrap().to_string(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_short_page_ends_the_list_without_asking_for_an_empty_one() {
    let all = markets(23);
    let served = all.clone();
    let chain = FakeChain::new().answer("red_bank", move |q, _| {
        Some(paged_answer(&served, "denom", &q["markets"], 30))
    });
    let listed = list_markets(&chain).await;
    assert_eq!(listed, all);
    // 10 + 10 + 3: the third page is short, so there is no fourth query.
    assert_eq!(chain.queries().len(), 3);
}

#[tokio::test]
async fn a_contract_that_ignores_start_after_is_read_twice_not_forever() {
    let first_page = markets(10);
    let chain = FakeChain::new().answer("red_bank", move |_, _| {
        Some(Value::Array(first_page.clone()))
    });
    let listed = list_markets(&chain).await;
    assert_eq!(chain.queries().len(), 2);
    assert_eq!(listed.len(), 20);
}

fn asset_params(denom: &str, close_factor: Option<&str>) -> Value {
    let mut params = json!({
        "denom": denom,
        "credit_manager": {"whitelisted": false, "hls": null},
        "red_bank": {"deposit_enabled": true, "borrow_enabled": true},
        "max_loan_to_value": "0.7", "liquidation_threshold": "0.8",
        "liquidation_bonus": {"starting_lb": "0.01", "slope": "2", "min_lb": "0.02", "max_lb": "0.1"},
        "protocol_liquidation_fee": "0.1", "deposit_cap": "1000000000"
    });
    if let Some(cf) = close_factor {
        params["close_factor"] = json!(cf);
    }
    params
}

fn chain_with(close_factor: Option<&'static str>) -> FakeChain {
    let markets = vec![market("uatom"), market("uusdc")];
    let params = vec![
        asset_params("uatom", close_factor),
        asset_params("uusdc", close_factor),
    ];
    FakeChain::new()
        .at_block(7, Timestamp::from_seconds(1_000))
        .answer("red_bank", move |q, _| {
            Some(paged_answer(&markets, "denom", q.get("markets")?, 30))
        })
        .answer("params", move |q, _| {
            Some(paged_answer(
                &params,
                "denom",
                q.get("all_asset_params")?,
                30,
            ))
        })
        .answer("params", |q, _| {
            q.get("target_health_factor").map(|_| json!("1.05"))
        })
        .answer("oracle", |q, _| {
            q.get("prices")?;
            Some(json!([
                {"denom": "uatom", "price": "7.5"},
                {"denom": "uusdc", "price": "1"}
            ]))
        })
}

/// The Red Bank of `chain` under `rule`, its base denom of 6 decimals.
fn red_bank(chain: &FakeChain, rule: LiquidationRule) -> RedBank<FakeChain> {
    RedBank::new(chain.clone(), contracts(), rule, 6)
}

fn asked_target_health_factor(chain: &FakeChain) -> bool {
    chain
        .queries()
        .iter()
        .any(|(_, query, _)| query.get("target_health_factor").is_some())
}

#[tokio::test]
async fn the_target_health_factor_rule_reads_the_params_contract_figure() {
    let chain = chain_with(None);
    let red_bank = red_bank(&chain, LiquidationRule::TargetHealthFactor);
    let snapshot = red_bank.read_snapshot(Some(7)).await.unwrap();
    assert!(asked_target_health_factor(&chain));
    assert_eq!(snapshot.block_time_secs, 1_000);
    assert_eq!(snapshot.markets.len(), 2);
    assert_eq!(
        snapshot.repay_limit("uusdc"),
        Ok(RepayLimit::TargetHealthFactor(Decimal::percent(105)))
    );
}

#[tokio::test]
async fn the_close_factor_rule_reads_the_debt_assets_close_factor_and_no_target() {
    let chain = chain_with(Some("0.5"));
    let red_bank = red_bank(&chain, LiquidationRule::CloseFactor);
    let snapshot = red_bank.read_snapshot(Some(7)).await.unwrap();
    assert!(!asked_target_health_factor(&chain));
    assert_eq!(
        snapshot.repay_limit("uusdc"),
        Ok(RepayLimit::CloseFactor(Decimal::percent(50)))
    );
}

#[tokio::test]
async fn the_close_factor_rule_refuses_params_without_a_close_factor() {
    let chain = chain_with(None);
    let red_bank = red_bank(&chain, LiquidationRule::CloseFactor);
    let snapshot = red_bank.read_snapshot(Some(7)).await.unwrap();
    let error = snapshot.repay_limit("uusdc").unwrap_err().to_string();
    assert!(
        error.contains("uusdc") && error.contains("close_factor"),
        "{error}"
    );
}

/// Without a height the snapshot is of the node's latest block: its time, and every query
/// pinned to it (a snapshot mixing two blocks' markets and prices would misprice health).
#[tokio::test]
async fn a_snapshot_without_a_height_is_the_latest_blocks() {
    let chain = chain_with(None);
    let red_bank = red_bank(&chain, LiquidationRule::TargetHealthFactor);
    let snapshot = red_bank.read_snapshot(None).await.unwrap();
    assert_eq!(snapshot.height, 7);
    assert_eq!(snapshot.block_time_secs, 1_000);
    let queries = chain.queries();
    assert!(!queries.is_empty());
    assert!(
        queries.iter().all(|(_, _, height)| *height == Some(7)),
        "{queries:?}"
    );
}
