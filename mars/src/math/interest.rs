//! Interest accrual on scaled amounts, as mars-interest-rate and the Red Bank's
//! `interest_rates.rs` do it.
//!
//! Balances are stored scaled: `scaled = amount · SCALING_FACTOR / index`. Indexes grow linearly
//! between updates (`index · (1 + rate · elapsed / year)`), so interest compounds only at each
//! market update. Collateral is truncated and debt ceiled, so rounding always favours the protocol.

use cosmwasm_std::{Decimal, Uint128};

use super::{
    add, dec_add, dec_div, dec_mul, dec_sub, div_ceil, div_floor, mul_floor, ratio, MathError,
};
use crate::types::{InterestRateModel, Market};

/// Precision kept in scaled amounts beyond the underlying unit.
pub const SCALING_FACTOR: Uint128 = Uint128::new(1_000_000);

/// Length of the year the yearly rates are quoted for.
pub const SECONDS_PER_YEAR: u64 = 31_536_000;

/// Which way a conversion between scaled and underlying amounts rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalingOperation {
    /// Round down: collateral (liquidity) amounts.
    Truncate,
    /// Round up: debt amounts.
    Ceil,
}

/// `index · (1 + rate · time_elapsed / SECONDS_PER_YEAR)`, each product rounded down.
pub fn calculate_applied_linear_interest_rate(
    index: Decimal,
    rate: Decimal,
    time_elapsed: u64,
) -> Result<Decimal, MathError> {
    let year_fraction = ratio(
        Uint128::from(time_elapsed),
        Uint128::from(SECONDS_PER_YEAR),
        "elapsed share of a year",
    )?;
    let rate_factor = dec_mul(rate, year_fraction, "rate over the elapsed time")?;
    let growth = dec_add(Decimal::one(), rate_factor, "index growth factor")?;
    dec_mul(index, growth, "accrued index")
}

/// Underlying → scaled: `amount · SCALING_FACTOR / index`, truncated or ceiled.
pub fn compute_scaled_amount(
    amount: Uint128,
    index: Decimal,
    operation: ScalingOperation,
) -> Result<Uint128, MathError> {
    let upscaled = amount
        .checked_mul(SCALING_FACTOR)
        .map_err(|_| MathError::Overflow {
            operation: "amount times scaling factor",
        })?;
    match operation {
        ScalingOperation::Truncate => div_floor(upscaled, index, "scaled amount"),
        ScalingOperation::Ceil => div_ceil(upscaled, index, "scaled amount"),
    }
}

/// Scaled → underlying: `floor(scaled · index)` then divided by SCALING_FACTOR, truncated or
/// ceiled (the product with the index is always floored first, as Mars does).
pub fn compute_underlying_amount(
    scaled_amount: Uint128,
    index: Decimal,
    operation: ScalingOperation,
) -> Result<Uint128, MathError> {
    let before_scaling_factor = mul_floor(scaled_amount, index, "scaled amount times index")?;
    match operation {
        ScalingOperation::Truncate => Ok(before_scaling_factor / SCALING_FACTOR),
        ScalingOperation::Ceil => {
            let scaling_factor = Decimal::from_ratio(SCALING_FACTOR, 1u128);
            div_ceil(before_scaling_factor, scaling_factor, "underlying amount")
        }
    }
}

/// `index` grown at `rate` from `last_updated` to `timestamp`; unchanged when no time has
/// passed or the rate is zero.
fn index_at(
    index: Decimal,
    rate: Decimal,
    last_updated: u64,
    timestamp: u64,
) -> Result<Decimal, MathError> {
    if last_updated < timestamp && !rate.is_zero() {
        return calculate_applied_linear_interest_rate(index, rate, timestamp - last_updated);
    }
    Ok(index)
}

/// Borrow index brought forward to `timestamp` (unchanged if `timestamp` is not later).
pub fn updated_borrow_index(market: &Market, timestamp: u64) -> Result<Decimal, MathError> {
    index_at(
        market.borrow_index,
        market.borrow_rate,
        market.indexes_last_updated,
        timestamp,
    )
}

/// Liquidity index brought forward to `timestamp`; a timestamp before the last update is an
/// error (as in Mars; the borrow index has no such check there).
pub fn updated_liquidity_index(market: &Market, timestamp: u64) -> Result<Decimal, MathError> {
    if market.indexes_last_updated > timestamp {
        return Err(MathError::TimestampBeforeLastUpdate {
            timestamp,
            last_updated: market.indexes_last_updated,
        });
    }
    index_at(
        market.liquidity_index,
        market.liquidity_rate,
        market.indexes_last_updated,
        timestamp,
    )
}

/// Scaled collateral for a deposit of `amount` at `timestamp` (truncated).
pub fn scaled_liquidity_amount(
    amount: Uint128,
    market: &Market,
    timestamp: u64,
) -> Result<Uint128, MathError> {
    compute_scaled_amount(
        amount,
        updated_liquidity_index(market, timestamp)?,
        ScalingOperation::Truncate,
    )
}

/// Underlying collateral of `amount_scaled` at `timestamp` (truncated).
pub fn underlying_liquidity_amount(
    amount_scaled: Uint128,
    market: &Market,
    timestamp: u64,
) -> Result<Uint128, MathError> {
    compute_underlying_amount(
        amount_scaled,
        updated_liquidity_index(market, timestamp)?,
        ScalingOperation::Truncate,
    )
}

/// Scaled debt for a borrow of `amount` at `timestamp` (ceiled).
pub fn scaled_debt_amount(
    amount: Uint128,
    market: &Market,
    timestamp: u64,
) -> Result<Uint128, MathError> {
    compute_scaled_amount(
        amount,
        updated_borrow_index(market, timestamp)?,
        ScalingOperation::Ceil,
    )
}

/// Underlying debt of `amount_scaled` at `timestamp` (ceiled).
pub fn underlying_debt_amount(
    amount_scaled: Uint128,
    market: &Market,
    timestamp: u64,
) -> Result<Uint128, MathError> {
    compute_underlying_amount(
        amount_scaled,
        updated_borrow_index(market, timestamp)?,
        ScalingOperation::Ceil,
    )
}

/// A market after `apply_accumulated_interests`, and the protocol's share of the interest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccruedInterest {
    /// Indexes and `indexes_last_updated` moved to now; `collateral_total_scaled` already
    /// includes `reward_amount_scaled`.
    pub market: Market,
    /// Underlying protocol reward: `floor(borrow interest accrued · reserve_factor)`.
    pub reward_amount: Uint128,
    /// Scaled collateral to credit to the rewards collector's deposit in this market.
    pub reward_amount_scaled: Uint128,
}

/// Brings the market's indexes to `timestamp` and computes the reserve-factor reward that Mars
/// mints as scaled collateral to the rewards collector.
///
/// Must run before [`update_interest_rates`] in a block, so the elapsed period accrues at the
/// rates that were in force during it.
pub fn apply_accumulated_interests(
    market: &Market,
    timestamp: u64,
) -> Result<AccruedInterest, MathError> {
    let mut market = market.clone();
    let previous_borrow_index = market.borrow_index;

    if market.indexes_last_updated < timestamp {
        market.borrow_index = updated_borrow_index(&market, timestamp)?;
        market.liquidity_index = updated_liquidity_index(&market, timestamp)?;
        market.indexes_last_updated = timestamp;
    }

    // Debt is constant over the period, so the growth of total debt is the interest accrued.
    let previous_debt_total = compute_underlying_amount(
        market.debt_total_scaled,
        previous_borrow_index,
        ScalingOperation::Ceil,
    )?;
    let new_debt_total = compute_underlying_amount(
        market.debt_total_scaled,
        market.borrow_index,
        ScalingOperation::Ceil,
    )?;
    let borrow_interest_accrued = new_debt_total.saturating_sub(previous_debt_total);
    let reward_amount = mul_floor(
        borrow_interest_accrued,
        market.reserve_factor,
        "protocol share of interest",
    )?;

    let mut reward_amount_scaled = Uint128::zero();
    if !reward_amount.is_zero() {
        reward_amount_scaled = compute_scaled_amount(
            reward_amount,
            market.liquidity_index,
            ScalingOperation::Truncate,
        )?;
        market.collateral_total_scaled = add(
            market.collateral_total_scaled,
            reward_amount_scaled,
            "market collateral total",
        )?;
    }

    Ok(AccruedInterest {
        market,
        reward_amount,
        reward_amount_scaled,
    })
}

/// Borrow rate for a utilization (Mars `InterestRateModel::get_borrow_rate`).
pub fn borrow_rate(model: &InterestRateModel, utilization: Decimal) -> Result<Decimal, MathError> {
    if utilization <= model.optimal_utilization_rate {
        if utilization.is_zero() {
            return Ok(model.base);
        }
        let share_of_optimal = dec_div(
            utilization,
            model.optimal_utilization_rate,
            "utilization over optimal utilization",
        )?;
        let slope_part = dec_mul(
            model.slope_1,
            share_of_optimal,
            "slope_1 part of borrow rate",
        )?;
        dec_add(model.base, slope_part, "borrow rate")
    } else {
        let excess = dec_sub(
            utilization,
            model.optimal_utilization_rate,
            "utilization above optimal",
        )?;
        let headroom = dec_sub(
            Decimal::one(),
            model.optimal_utilization_rate,
            "one minus optimal utilization",
        )?;
        let steep = dec_mul(model.slope_2, excess, "slope_2 part of borrow rate")?;
        let steep = dec_div(steep, headroom, "slope_2 part of borrow rate")?;
        let base_and_slope_1 = dec_add(model.base, model.slope_1, "borrow rate")?;
        dec_add(base_and_slope_1, steep, "borrow rate")
    }
}

/// Rate paid to depositors: `borrow_rate · utilization · (1 − reserve_factor)`, each product
/// rounded down.
pub fn liquidity_rate(
    borrow_rate: Decimal,
    utilization: Decimal,
    reserve_factor: Decimal,
) -> Result<Decimal, MathError> {
    let paid = dec_mul(borrow_rate, utilization, "liquidity rate")?;
    let depositors_share = dec_sub(Decimal::one(), reserve_factor, "one minus reserve factor")?;
    dec_mul(paid, depositors_share, "liquidity rate")
}

/// Utilization at `timestamp`: underlying debt over underlying collateral, rounded down and
/// capped at one; zero without collateral.
pub fn utilization_rate(market: &Market, timestamp: u64) -> Result<Decimal, MathError> {
    let total_collateral =
        underlying_liquidity_amount(market.collateral_total_scaled, market, timestamp)?;
    let total_debt = underlying_debt_amount(market.debt_total_scaled, market, timestamp)?;
    if total_collateral.is_zero() {
        return Ok(Decimal::zero());
    }
    Ok(ratio(total_debt, total_collateral, "utilization rate")?.min(Decimal::one()))
}

/// The market with borrow and liquidity rates reset from its utilization at `timestamp`
/// (Red Bank `update_interest_rates`; call after [`apply_accumulated_interests`] and after
/// changing the totals).
pub fn update_interest_rates(market: &Market, timestamp: u64) -> Result<Market, MathError> {
    let utilization = utilization_rate(market, timestamp)?;
    let mut market = market.clone();
    market.borrow_rate = borrow_rate(&market.interest_rate_model, utilization)?;
    market.liquidity_rate = liquidity_rate(market.borrow_rate, utilization, market.reserve_factor)?;
    Ok(market)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rate_model(optimal: &str, base: &str, slope_1: &str, slope_2: &str) -> InterestRateModel {
        InterestRateModel {
            optimal_utilization_rate: dec(optimal),
            base: dec(base),
            slope_1: dec(slope_1),
            slope_2: dec(slope_2),
        }
    }

    fn model() -> InterestRateModel {
        rate_model("0.8", "0", "0.2", "3")
    }

    #[test]
    fn linear_index_growth() {
        // 0.1 · (1 + 0.2 · 15,768,000/31,536,000) = 0.1 · 1.1 = 0.11.
        assert_eq!(
            calculate_applied_linear_interest_rate(dec("0.1"), dec("0.2"), 15_768_000).unwrap(),
            dec("0.11")
        );
        // One second at 10%: 1/31,536,000 = 0.000000031709791983 (floor), ·0.1 →
        // 0.000000003170979198 (floor), index 1.000000003170979198.
        assert_eq!(
            calculate_applied_linear_interest_rate(Decimal::one(), dec("0.1"), 1).unwrap(),
            dec("1.000000003170979198")
        );
    }

    #[test]
    fn scaling_rounds_in_favour_of_the_protocol() {
        // 10^11 at index 3: 10^17/3 = 33,333,333,333,333,333.3 → truncated …333, ceiled …334.
        let amount = Uint128::new(100_000_000_000);
        let index = dec("3");
        let collateral = compute_scaled_amount(amount, index, ScalingOperation::Truncate).unwrap();
        let debt = compute_scaled_amount(amount, index, ScalingOperation::Ceil).unwrap();
        assert_eq!(collateral, Uint128::new(33_333_333_333_333_333));
        assert_eq!(debt, Uint128::new(33_333_333_333_333_334));
        // Back: …333·3 = 99,999,999,999,999,999 / 10^6 → 99,999,999,999 (truncated);
        // …334·3 = 100,000,000,000,000,002 / 10^6 → 100,000,000,001 (ceiled).
        assert_eq!(
            compute_underlying_amount(collateral, index, ScalingOperation::Truncate).unwrap(),
            Uint128::new(99_999_999_999)
        );
        assert_eq!(
            compute_underlying_amount(debt, index, ScalingOperation::Ceil).unwrap(),
            Uint128::new(100_000_000_001)
        );
    }

    #[test]
    fn scaling_by_zero_index_is_an_error() {
        assert_eq!(
            compute_scaled_amount(Uint128::one(), Decimal::zero(), ScalingOperation::Ceil),
            Err(MathError::DivideByZero {
                operation: "scaled amount"
            })
        );
        assert!(matches!(
            compute_scaled_amount(Uint128::MAX, Decimal::one(), ScalingOperation::Truncate),
            Err(MathError::Overflow { .. })
        ));
    }

    fn market() -> Market {
        Market {
            denom: "uatom".into(),
            reserve_factor: dec("0.2"),
            interest_rate_model: model(),
            borrow_rate: dec("0.1"),
            // 0.1 · utilization 0.5 · (1 − 0.2)
            liquidity_rate: dec("0.04"),
            indexes_last_updated: 1_000,
            collateral_total_scaled: Uint128::new(2_000_000_000),
            debt_total_scaled: Uint128::new(1_000_000_000),
            ..Market::default()
        }
    }

    #[test]
    fn one_year_of_interest_with_protocol_reward() {
        // One year: borrow index 1·(1 + 0.1) = 1.1, liquidity index 1·(1 + 0.04) = 1.04.
        // Debt 10^9 scaled: 1,000 before, ⌈⌊10^9·1.1⌋/10^6⌉ = 1,100 after → 100 of interest.
        // Reward ⌊100·0.2⌋ = 20, scaled ⌊20·10^6/1.04 = 19,230,769.2⌋ = 19,230,769.
        // Depositors: 2,000·0.04 = 80; with the protocol's 20 that is the 100 borrowers paid.
        let accrued = apply_accumulated_interests(&market(), 1_000 + SECONDS_PER_YEAR).unwrap();
        assert_eq!(accrued.market.borrow_index, dec("1.1"));
        assert_eq!(accrued.market.liquidity_index, dec("1.04"));
        assert_eq!(
            accrued.market.indexes_last_updated,
            1_000 + SECONDS_PER_YEAR
        );
        assert_eq!(accrued.reward_amount, Uint128::new(20));
        assert_eq!(accrued.reward_amount_scaled, Uint128::new(19_230_769));
        assert_eq!(
            accrued.market.collateral_total_scaled,
            Uint128::new(2_019_230_769)
        );

        // Rates after: collateral ⌊⌊2,019,230,769·1.04⌋/10^6⌋ = ⌊2,099.99⌋ = 2,099, debt 1,100.
        // Utilization 1,100/2,099 = 0.524059075750357313 ≤ 0.8 →
        // borrow = 0.2·⌊0.524059075750357313/0.8⌋ = 0.2·0.655073844687946641
        //        = 0.131014768937589328;
        // liquidity = ⌊⌊0.131014768937589328·0.524059075750357313⌋·0.8⌋.
        let now = 1_000 + SECONDS_PER_YEAR;
        assert_eq!(
            utilization_rate(&accrued.market, now).unwrap(),
            dec("0.524059075750357313")
        );
        let updated = update_interest_rates(&accrued.market, now).unwrap();
        assert_eq!(updated.borrow_rate, dec("0.131014768937589328"));
        assert_eq!(updated.liquidity_rate, dec("0.054927582975263748"));
    }

    #[test]
    fn no_time_no_interest() {
        let accrued = apply_accumulated_interests(&market(), 1_000).unwrap();
        assert_eq!(accrued.market, market());
        assert_eq!(accrued.reward_amount, Uint128::zero());
        // A timestamp before the last update leaves the indexes alone (as Mars does).
        assert_eq!(
            apply_accumulated_interests(&market(), 10).unwrap().market,
            market()
        );
    }

    #[test]
    fn liquidity_index_refuses_going_back_in_time() {
        assert_eq!(
            updated_liquidity_index(&market(), 999),
            Err(MathError::TimestampBeforeLastUpdate {
                timestamp: 999,
                last_updated: 1_000
            })
        );
        assert_eq!(
            updated_borrow_index(&market(), 999).unwrap(),
            Decimal::one()
        );
        assert_eq!(
            underlying_debt_amount(Uint128::new(5_000_000), &market(), 1_000).unwrap(),
            Uint128::new(5)
        );
        assert_eq!(
            scaled_liquidity_amount(Uint128::new(5), &market(), 1_000).unwrap(),
            Uint128::new(5_000_000)
        );
    }

    #[test]
    fn borrow_rate_segments() {
        let model = model();
        // Below optimal: 0.2·(0.4/0.8) = 0.1.
        assert_eq!(borrow_rate(&model, dec("0.4")).unwrap(), dec("0.1"));
        // At optimal: 0.2·1 = 0.2.
        assert_eq!(borrow_rate(&model, dec("0.8")).unwrap(), dec("0.2"));
        // Above: 0.2 + 3·(0.9 − 0.8)/(1 − 0.8) = 0.2 + 1.5 = 1.7.
        assert_eq!(borrow_rate(&model, dec("0.9")).unwrap(), dec("1.7"));
        // Zero utilization: the base rate, even with optimal 0.
        let flat = rate_model("0", "0.02", "0.01", "0.05");
        assert_eq!(borrow_rate(&flat, Decimal::zero()).unwrap(), dec("0.02"));
        // Optimal 0, utilization 0.2: 0.02 + 0.01 + 0.05·0.2/1 = 0.04.
        assert_eq!(borrow_rate(&flat, dec("0.2")).unwrap(), dec("0.04"));
        // Optimal 1, utilization 1: 0.07·1 = 0.07.
        let full = rate_model("1", "0", "0.07", "0");
        assert_eq!(borrow_rate(&full, Decimal::one()).unwrap(), dec("0.07"));
        // Liquidity rate: 0.2·0.8·(1 − 0.1) = 0.144.
        assert_eq!(
            liquidity_rate(dec("0.2"), dec("0.8"), dec("0.1")).unwrap(),
            dec("0.144")
        );
    }

    #[test]
    fn utilization_is_zero_without_collateral_and_capped_at_one() {
        let mut market = market();
        market.collateral_total_scaled = Uint128::zero();
        assert_eq!(utilization_rate(&market, 1_000).unwrap(), Decimal::zero());
        market.collateral_total_scaled = Uint128::new(500_000_000);
        assert_eq!(utilization_rate(&market, 1_000).unwrap(), Decimal::one());
    }
}
