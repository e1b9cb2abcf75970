//! Generated positions for the 1,000,000-account run: `redline_common::index`'s deterministic
//! synthetic accounts (collateral in one denom, sometimes a second one, possibly disabled; debt
//! of 30–90% of the collateral amount in another denom) and a block snapshot that gives them a
//! realistic spread of health: every price 1, liquidation threshold 0.89, markets with a day of
//! interest to accrue. About 2–3% are liquidatable and a few percent near liquidation.

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Timestamp, Uint128};
use redline_common::index::BlockSnapshot;
use redline_common::jobs::ProtocolKind;
use redline_common::types::{
    AssetParams, CmSettings, InterestRateModel, LiquidationBonus, Market, RedBankSettings,
};

/// Denoms of the generated accounts.
pub const DENOMS: [&str; 4] = ["uatom", "uosmo", "uusdc", "uweth"];

fn dec(text: &str) -> Decimal {
    text.parse().expect("constant decimals parse")
}

/// The snapshot of block `height` for the generated accounts.
pub fn snapshot(chain_id: &str, height: u64, time_seconds: u64) -> BlockSnapshot {
    let prices: BTreeMap<String, Decimal> = DENOMS
        .iter()
        .map(|d| (d.to_string(), Decimal::one()))
        .collect();
    BlockSnapshot {
        chain_id: chain_id.to_string(),
        protocol: ProtocolKind::RedBank,
        height,
        time: Timestamp::from_seconds(time_seconds),
        liquidation_prices: prices.clone(),
        prices,
        markets: DENOMS
            .iter()
            .map(|d| Market {
                denom: d.to_string(),
                reserve_factor: dec("0.1"),
                interest_rate_model: InterestRateModel {
                    optimal_utilization_rate: dec("0.8"),
                    base: Decimal::zero(),
                    slope_1: dec("0.2"),
                    slope_2: dec("2"),
                },
                borrow_index: dec("1.02"),
                liquidity_index: dec("1.01"),
                borrow_rate: dec("0.1625"),
                liquidity_rate: dec("0.095"),
                indexes_last_updated: time_seconds - 86_400,
                collateral_total_scaled: Uint128::zero(),
                debt_total_scaled: Uint128::zero(),
            })
            .collect(),
        params: DENOMS
            .iter()
            .map(|d| AssetParams {
                denom: d.to_string(),
                credit_manager: CmSettings::default(),
                red_bank: RedBankSettings {
                    deposit_enabled: true,
                    borrow_enabled: true,
                },
                max_loan_to_value: dec("0.85"),
                liquidation_threshold: dec("0.89"),
                liquidation_bonus: LiquidationBonus {
                    starting_lb: dec("0.01"),
                    slope: dec("2"),
                    min_lb: dec("0.02"),
                    max_lb: dec("0.1"),
                },
                protocol_liquidation_fee: dec("0.1"),
                deposit_cap: Uint128::MAX,
            })
            .collect(),
        target_health_factor: dec("1.05"),
        accounts: 0,
    }
}
