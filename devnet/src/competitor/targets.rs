//! What the competitor sees: the borrowers its last look found liquidatable, worst first, read
//! from the chain's state with the Red Bank's and the oracle's own queries.

use cosmwasm_std::{Decimal, Uint128};
use mars::msg::oracle::{self, PriceResponse};
use mars::msg::red_bank::{
    QueryMsg, UserCollateralResponse, UserDebtResponse, UserPositionResponse,
};
use mars::types::UserHealthStatus;

use crate::chain::ChainState;

/// A borrower the competitor would liquidate, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    /// Liquidation health factor (liquidation prices), below one.
    pub health_factor: Decimal,
    /// The debt to repay: the user's whole debt in its most valuable debt denom (the Red Bank
    /// refunds what is over the amount it lets one liquidation repay).
    pub debt_denom: String,
    pub debt_amount: Uint128,
    /// The user's most valuable enabled collateral.
    pub collateral_denom: String,
}

/// The liquidatable ones among `users`, as the chain's state answers now, in `users`' order. A
/// user whose queries fail (no position any more, an unpriced denom) is left out.
pub fn liquidatable(
    state: &ChainState,
    red_bank: &str,
    oracle: &str,
    users: &[String],
) -> Vec<Target> {
    users
        .iter()
        .filter_map(|user| target(state, red_bank, oracle, user))
        .collect()
}

fn target(state: &ChainState, red_bank: &str, oracle: &str, user: &str) -> Option<Target> {
    let querier = state.app.wrap();
    let position: UserPositionResponse = querier
        .query_wasm_smart(
            red_bank,
            &QueryMsg::UserPositionLiquidationPricing {
                user: user.to_string(),
                account_id: None,
            },
        )
        .ok()?;
    let UserHealthStatus::Borrowing {
        liq_threshold_hf, ..
    } = position.health_status
    else {
        return None;
    };
    if liq_threshold_hf >= Decimal::one() {
        return None;
    }
    let debts: Vec<UserDebtResponse> = querier
        .query_wasm_smart(
            red_bank,
            &QueryMsg::UserDebts {
                user: user.to_string(),
                start_after: None,
                limit: None,
            },
        )
        .ok()?;
    let collaterals: Vec<UserCollateralResponse> = querier
        .query_wasm_smart(
            red_bank,
            &QueryMsg::UserCollaterals {
                user: user.to_string(),
                account_id: None,
                start_after: None,
                limit: None,
            },
        )
        .ok()?;
    let value = |denom: &str, amount: Uint128| -> Option<Uint128> {
        let price: PriceResponse = querier
            .query_wasm_smart(
                oracle,
                &oracle::QueryMsg::Price {
                    denom: denom.to_string(),
                    kind: None,
                },
            )
            .ok()?;
        Some(amount.mul_floor(price.price))
    };
    let debt = debts
        .iter()
        .filter(|d| !d.amount.is_zero())
        .filter_map(|d| Some((value(&d.denom, d.amount)?, d)))
        .max_by_key(|(worth, _)| *worth)?
        .1;
    let collateral = collaterals
        .iter()
        .filter(|c| c.enabled && !c.amount.is_zero())
        .filter_map(|c| Some((value(&c.denom, c.amount)?, c)))
        .max_by_key(|(worth, _)| *worth)?
        .1;
    Some(Target {
        user: user.to_string(),
        health_factor: liq_threshold_hf,
        debt_denom: debt.denom.clone(),
        debt_amount: debt.amount,
        collateral_denom: collateral.denom.clone(),
    })
}
