//! Liquidation amounts as mars-liquidation's `calculate_liquidation_amounts` (mars_types v2)
//! computes them, with the dynamic liquidation bonus, the protocol fee on the bonus value, and
//! the repayment cap of the deployment's [`LiquidationRule`](crate::rule::LiquidationRule).

use std::cmp::{max, min};

use cosmwasm_std::{Decimal, Uint128};

use super::{dec_add, dec_mul, dec_sub, div_floor, mul_ceil, mul_floor, ratio, sub, MathError};
use crate::rule::{close_factor_cap, RepayLimit};
use crate::types::{AssetParams, Health, HealthPosition, LiquidationAmounts, LiquidationBonus};

/// Everything `calculate_liquidation_amounts` needs, in underlying amounts.
#[derive(Clone, Copy, Debug)]
pub struct LiquidationInput<'a> {
    /// The liquidated account's (enabled) collateral in the chosen collateral denom.
    pub collateral_amount: Uint128,
    pub collateral_price: Decimal,
    /// Params of the collateral denom (liquidation threshold, bonus, protocol fee).
    pub collateral_params: &'a AssetParams,
    /// The account's debt in the debt denom.
    pub debt_amount: Uint128,
    /// What the liquidator sent of the debt denom.
    pub debt_requested_to_repay: Uint128,
    pub debt_price: Decimal,
    /// The deployment's cap on one repayment (target health factor or close factor).
    pub repay_limit: RepayLimit,
    /// The account's health before the liquidation, computed at the same (liquidation) prices.
    pub health: &'a Health,
}

/// `LB = min(starting_lb + slope·(1 − HF), max(min(CR − 1, max_lb), min_lb))`, where
/// `CR = total collateral value / total debt value` (rounded down) and `CR − 1` is clamped at 0.
///
/// `1 − HF` fails with an overflow error for HF > 1, as in Mars (only called when liquidatable).
pub fn calculate_liquidation_bonus(
    liquidation_health_factor: Decimal,
    total_collateral_value: Uint128,
    total_debt_value: Uint128,
    bonus: &LiquidationBonus,
) -> Result<Decimal, MathError> {
    let collateralization_ratio = ratio(
        total_collateral_value,
        total_debt_value,
        "collateralization ratio",
    )?;
    let excess_collateralization = collateralization_ratio
        .checked_sub(Decimal::one())
        .unwrap_or_default();
    let bonus_cap = max(min(excess_collateralization, bonus.max_lb), bonus.min_lb);

    let health_shortfall = dec_sub(
        Decimal::one(),
        liquidation_health_factor,
        "one minus health factor",
    )?;
    let slope_part = dec_mul(
        bonus.slope,
        health_shortfall,
        "liquidation bonus slope part",
    )?;
    let calculated_bonus = dec_add(bonus.starting_lb, slope_part, "liquidation bonus")?;

    Ok(min(calculated_bonus, bonus_cap))
}

/// Most debt (in debt-denom units) that can be repaid without pushing the account above the
/// target health factor, or `None` when no such cap applies (`LT_c·(1 + LB) ≥ THF`: even
/// repaying everything cannot reach the THF).
///
/// `⌊(⌊THF·debt_value⌋ − LT_adjusted_collateral) / (THF − LT_c·(1 + LB))⌋` (the Decimal
/// `LT_c·(1 + LB)` itself floored), then divided by the debt price rounding down.
pub fn max_debt_repayable_amount(
    health: &Health,
    collateral_liquidation_threshold: Decimal,
    liquidation_bonus: Decimal,
    target_health_factor: Decimal,
    debt_price: Decimal,
) -> Result<Option<Uint128>, MathError> {
    let one_plus_bonus = dec_add(
        Decimal::one(),
        liquidation_bonus,
        "one plus liquidation bonus",
    )?;
    let seized_threshold_weight = dec_mul(
        collateral_liquidation_threshold,
        one_plus_bonus,
        "liquidation threshold times (1 + bonus)",
    )?;
    if seized_threshold_weight >= target_health_factor {
        return Ok(None);
    }
    let target_debt_value = mul_floor(
        health.total_debt_value,
        target_health_factor,
        "target health factor times debt value",
    )?;
    let numerator = sub(
        target_debt_value,
        health.liquidation_threshold_adjusted_collateral,
        "max debt repayable numerator",
    )?;
    let denominator = dec_sub(
        target_health_factor,
        seized_threshold_weight,
        "max debt repayable denominator",
    )?;
    let max_value = div_floor(numerator, denominator, "max debt repayable value")?;
    Ok(Some(div_floor(
        max_value,
        debt_price,
        "max debt repayable amount",
    )?))
}

/// The deployment rule's cap on the repayment, `None` when the rule sets none.
fn repay_cap(
    input: &LiquidationInput<'_>,
    liquidation_bonus: Decimal,
) -> Result<Option<Uint128>, MathError> {
    match input.repay_limit {
        RepayLimit::TargetHealthFactor(target_health_factor) => max_debt_repayable_amount(
            input.health,
            input.collateral_params.liquidation_threshold,
            liquidation_bonus,
            target_health_factor,
            input.debt_price,
        ),
        RepayLimit::CloseFactor(close_factor) => {
            Ok(Some(close_factor_cap(input.debt_amount, close_factor)?))
        }
    }
}

/// Debt to repay, collateral to seize and the liquidator's part of it, rounding as Mars does:
///
/// - `repay = min(user debt, sent, cap, floor(floor(collateral_value / (1 + LB)) / debt_price))`
///   with `collateral_value = floor(collateral · collateral_price)` and `cap` the
///   [`max_debt_repayable_amount`] (target health factor) or `floor(debt · close_factor)`;
/// - `debt_value = floor(repay · debt_price)`;
/// - `seized = floor(floor(debt_value · (1 + LB)) / collateral_price)`;
/// - `fee = floor(ceil(floor(debt_value · LB) · protocol_liquidation_fee) / collateral_price)`;
/// - `received = seized − fee`.
///
/// Errors: not liquidatable (no debt or HF ≥ 1), a zero price, overflow, or amounts where exactly
/// one of repay and seized is zero (Mars refuses those so nothing is taken for free).
pub fn calculate_liquidation_amounts(
    input: &LiquidationInput<'_>,
) -> Result<LiquidationAmounts, MathError> {
    let health = input.health;
    let liquidation_health_factor = match health.liquidation_health_factor {
        Some(hf) if hf < Decimal::one() => hf,
        other => {
            return Err(MathError::NotLiquidatable {
                health_factor: other
                    .map_or_else(|| "none (no debt)".to_string(), |hf| hf.to_string()),
            })
        }
    };
    if input.collateral_price.is_zero() {
        return Err(MathError::ZeroPrice {
            field: "collateral_price",
        });
    }
    if input.debt_price.is_zero() {
        return Err(MathError::ZeroPrice {
            field: "debt_price",
        });
    }
    let params = input.collateral_params;

    let user_collateral_value = mul_floor(
        input.collateral_amount,
        input.collateral_price,
        "user collateral value",
    )?;

    let liquidation_bonus = calculate_liquidation_bonus(
        liquidation_health_factor,
        health.total_collateral_value,
        health.total_debt_value,
        &params.liquidation_bonus,
    )?;
    let one_plus_bonus = dec_add(
        Decimal::one(),
        liquidation_bonus,
        "one plus liquidation bonus",
    )?;

    let max_repayable = repay_cap(input, liquidation_bonus)?;

    let repayable_from_collateral = div_floor(
        div_floor(
            user_collateral_value,
            one_plus_bonus,
            "collateral value over (1 + bonus)",
        )?,
        input.debt_price,
        "debt repayable from collateral",
    )?;

    let mut debt_amount_to_repay = min(
        min(input.debt_amount, input.debt_requested_to_repay),
        repayable_from_collateral,
    );
    if let Some(cap) = max_repayable {
        debt_amount_to_repay = min(debt_amount_to_repay, cap);
    }

    let debt_value_to_repay =
        mul_floor(debt_amount_to_repay, input.debt_price, "repaid debt value")?;
    let collateral_amount_to_liquidate = div_floor(
        mul_floor(
            debt_value_to_repay,
            one_plus_bonus,
            "seized collateral value",
        )?,
        input.collateral_price,
        "seized collateral amount",
    )?;

    if collateral_amount_to_liquidate.is_zero() != debt_amount_to_repay.is_zero() {
        return Err(MathError::InvalidLiquidationAmounts {
            collateral_amount_to_liquidate,
            debt_amount_to_repay,
        });
    }

    let bonus_value = mul_floor(
        debt_value_to_repay,
        liquidation_bonus,
        "liquidation bonus value",
    )?;
    // Ceiling in favour of the protocol.
    let protocol_fee_value = mul_ceil(
        bonus_value,
        params.protocol_liquidation_fee,
        "protocol fee value",
    )?;
    let protocol_fee_amount = div_floor(
        protocol_fee_value,
        input.collateral_price,
        "protocol fee amount",
    )?;
    let collateral_amount_received_by_liquidator = sub(
        collateral_amount_to_liquidate,
        protocol_fee_amount,
        "collateral received by liquidator",
    )?;

    Ok(LiquidationAmounts {
        debt_amount_to_repay,
        collateral_amount_to_liquidate,
        collateral_amount_received_by_liquidator,
        liquidation_bonus,
    })
}

/// The positions after a liquidation, in underlying terms: the seized collateral leaves the
/// collateral denom's line and the repaid debt leaves the debt denom's line. (On chain the
/// scaled bookkeeping can move the result by a unit when indexes are not one.)
pub fn apply_liquidation(
    positions: &[HealthPosition],
    collateral_denom: &str,
    debt_denom: &str,
    amounts: &LiquidationAmounts,
) -> Result<Vec<HealthPosition>, MathError> {
    let mut after = positions.to_vec();
    let collateral_line = position_mut(&mut after, collateral_denom, "collateral")?;
    collateral_line.collateral_amount = sub(
        collateral_line.collateral_amount,
        amounts.collateral_amount_to_liquidate,
        "collateral left after liquidation",
    )?;
    let debt_line = position_mut(&mut after, debt_denom, "debt")?;
    debt_line.debt_amount = sub(
        debt_line.debt_amount,
        amounts.debt_amount_to_repay,
        "debt left after liquidation",
    )?;
    Ok(after)
}

/// The line of `denom`, or an error naming the `side` of the liquidation that needed it.
fn position_mut<'a>(
    positions: &'a mut [HealthPosition],
    denom: &str,
    side: &'static str,
) -> Result<&'a mut HealthPosition, MathError> {
    positions
        .iter_mut()
        .find(|p| p.denom == denom)
        .ok_or_else(|| MathError::MissingPosition {
            side,
            denom: denom.to_string(),
        })
}
