//! Hand-made Mars values for tests: decimals from text, asset params with Mars's usual bonus
//! curve, markets with interest to accrue, price maps and block snapshots to fill in.

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Timestamp, Uint128};
use mars::types::{AssetParams, CmSettings, LiquidationBonus, Market, RedBankSettings};
use redline_pipeline::index::BlockSnapshot;
use redline_pipeline::jobs::ProtocolKind;

/// A decimal from its text; panics on a typo in a test's constant.
pub fn dec(text: &str) -> Decimal {
    text.parse().expect("a test's decimal constant parses")
}

/// Params like the devnet scenario's (Mars's usual bonus curve and protocol fee), with the given
/// max LTV and liquidation threshold.
pub fn asset_params(denom: &str, max_ltv: &str, liquidation_threshold: &str) -> AssetParams {
    AssetParams {
        denom: denom.into(),
        credit_manager: CmSettings::default(),
        red_bank: RedBankSettings {
            withdraw_enabled: None,
            deposit_enabled: true,
            borrow_enabled: true,
        },
        max_loan_to_value: dec(max_ltv),
        liquidation_threshold: dec(liquidation_threshold),
        liquidation_bonus: LiquidationBonus {
            starting_lb: dec("0.01"),
            slope: dec("2"),
            min_lb: dec("0.02"),
            max_lb: dec("0.1"),
        },
        protocol_liquidation_fee: dec("0.1"),
        deposit_cap: Uint128::MAX,
        close_factor: None,
        reserve_factor: None,
        interest_rate_model: None,
    }
}

/// A market with interest running since `updated` (seconds).
pub fn market(denom: &str, updated: u64) -> Market {
    Market {
        denom: denom.into(),
        reserve_factor: dec("0.1"),
        borrow_index: dec("1.01"),
        liquidity_index: dec("1.005"),
        borrow_rate: dec("0.12"),
        liquidity_rate: dec("0.08"),
        indexes_last_updated: updated,
        ..Market::default()
    }
}

/// `(denom, price)` pairs as a price map.
pub fn prices(prices: &[(&str, &str)]) -> BTreeMap<String, Decimal> {
    prices
        .iter()
        .map(|(denom, price)| (denom.to_string(), dec(price)))
        .collect()
}

/// A Red Bank snapshot of block `height` at `time` (seconds) with a target health factor of 1.05
/// and nothing else: tests fill in prices, markets and params.
pub fn snapshot(chain_id: &str, height: u64, time: u64) -> BlockSnapshot {
    BlockSnapshot {
        chain_id: chain_id.into(),
        protocol: ProtocolKind::RedBank,
        height,
        time: Timestamp::from_seconds(time),
        prices: BTreeMap::new(),
        liquidation_prices: BTreeMap::new(),
        markets: Vec::new(),
        params: Vec::new(),
        target_health_factor: dec("1.05"),
        accounts: 0,
    }
}
