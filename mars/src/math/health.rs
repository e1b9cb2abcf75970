//! Account health as mars-health computes it, and the Red Bank `user_position` figures.
//!
//! Per position: `value = floor(amount · price)` for collateral and debt, then
//! `floor(collateral_value · max_ltv)` and `floor(collateral_value · liquidation_threshold)`;
//! the sums are divided into debt value rounding down. Prices are whatever the caller passes:
//! the Red Bank uses the oracle's `liquidation` price kind when liquidating and the `default`
//! kind otherwise (its `user_position` query takes a flag to choose).

use std::borrow::Borrow;

use cosmwasm_std::{Decimal, Uint128};

use super::{add, mul_floor, ratio, MathError};
use crate::types::{
    AssetParams, DenomPosition, Health, HealthPosition, UserHealthStatus, UserPositionFigures,
};

/// Health of an account from its priced positions (mars-health `Health::compute_health`).
pub fn compute_health(positions: &[HealthPosition]) -> Result<Health, MathError> {
    let mut health = Health::default();
    for position in positions {
        let collateral_value = mul_floor(
            position.collateral_amount,
            position.price,
            "collateral value",
        )?;
        let debt_value = mul_floor(position.debt_amount, position.price, "debt value")?;
        let max_ltv_value = mul_floor(
            collateral_value,
            position.max_ltv,
            "max-LTV-adjusted collateral",
        )?;
        let liquidation_threshold_value = mul_floor(
            collateral_value,
            position.liquidation_threshold,
            "liquidation-threshold-adjusted collateral",
        )?;

        health.total_debt_value = add(health.total_debt_value, debt_value, "total debt value")?;
        health.total_collateral_value = add(
            health.total_collateral_value,
            collateral_value,
            "total collateral value",
        )?;
        health.max_ltv_adjusted_collateral = add(
            health.max_ltv_adjusted_collateral,
            max_ltv_value,
            "max-LTV-adjusted collateral",
        )?;
        health.liquidation_threshold_adjusted_collateral = add(
            health.liquidation_threshold_adjusted_collateral,
            liquidation_threshold_value,
            "liquidation-threshold-adjusted collateral",
        )?;
    }

    // Without debt there is no health factor (it would divide by zero).
    if !health.total_debt_value.is_zero() {
        health.max_ltv_health_factor = Some(ratio(
            health.max_ltv_adjusted_collateral,
            health.total_debt_value,
            "max-LTV health factor",
        )?);
        health.liquidation_health_factor = Some(ratio(
            health.liquidation_threshold_adjusted_collateral,
            health.total_debt_value,
            "liquidation health factor",
        )?);
    }
    Ok(health)
}

/// Turns a Red Bank account's holdings into health inputs, as the Red Bank does before computing
/// health: disabled collateral counts as zero, uncollateralized debt counts as zero, and every
/// denom held (even only as disabled collateral) must have a price and asset params.
///
/// `holdings` should have one line per denom.
pub fn red_bank_health_positions<P, A, Params>(
    holdings: &[DenomPosition],
    mut price_of: P,
    mut params_of: A,
) -> Result<Vec<HealthPosition>, MathError>
where
    P: FnMut(&str) -> Option<Decimal>,
    A: FnMut(&str) -> Option<Params>,
    Params: Borrow<AssetParams>,
{
    holdings
        .iter()
        .map(|holding| {
            let params = params_of(&holding.denom).ok_or_else(|| MathError::MissingParams {
                denom: holding.denom.clone(),
            })?;
            let params = params.borrow();
            let price = price_of(&holding.denom).ok_or_else(|| MathError::MissingPrice {
                denom: holding.denom.clone(),
            })?;
            Ok(HealthPosition {
                denom: holding.denom.clone(),
                price,
                collateral_amount: if holding.collateral_enabled {
                    holding.collateral_amount
                } else {
                    Uint128::zero()
                },
                debt_amount: if holding.uncollateralized_debt {
                    Uint128::zero()
                } else {
                    holding.debt_amount
                },
                max_ltv: params.max_loan_to_value,
                liquidation_threshold: params.liquidation_threshold,
            })
        })
        .collect()
}

/// The numbers of the Red Bank `user_position` answer for an account of this health.
pub fn user_position_figures(health: &Health) -> UserPositionFigures {
    let health_status = match (
        health.max_ltv_health_factor,
        health.liquidation_health_factor,
    ) {
        (Some(max_ltv_hf), Some(liq_threshold_hf)) => UserHealthStatus::Borrowing {
            max_ltv_hf,
            liq_threshold_hf,
        },
        _ => UserHealthStatus::NotBorrowing,
    };
    UserPositionFigures {
        total_enabled_collateral: health.total_collateral_value,
        total_collateralized_debt: health.total_debt_value,
        weighted_max_ltv_collateral: health.max_ltv_adjusted_collateral,
        weighted_liquidation_threshold_collateral: health.liquidation_threshold_adjusted_collateral,
        health_status,
    }
}
