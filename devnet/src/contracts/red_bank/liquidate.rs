//! `liquidate`, step for step as Mars's `contracts/red-bank/src/liquidate.rs`, with the amounts
//! from `mars::math::liquidation` at the oracle's liquidation prices.
//!
//! The liquidator receives collateral *shares*: the seized collateral moves, scaled, from the
//! user's position to the recipient's (and the protocol fee to the rewards collector's), and
//! the underlying coins stay in the Red Bank until withdrawn. As in Mars (since Sep 2023), nothing
//! checks the user's health after the liquidation: one that lowers the health factor (an
//! account with `HF < LT_c·(1 + LB)`, underwater ones included) succeeds and pays the full bonus.

use cosmwasm_std::{Addr, BankMsg, Coin, DepsMut, Env, MessageInfo, Response};
use mars::math::interest;
use mars::math::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use mars::msg::oracle::ActionKind;
use mars::rule::RepayLimit;

use super::interest::{accrue_market, refresh_interest_rates};
use super::peers::Peers;
use super::positions::{load_market, query_target_health_factor, PricedPositions};
use super::state::{
    decrease_collateral, decrease_debt, increase_collateral, user_key, COLLATERALS, DEBTS, MARKETS,
};
use super::{RedBankError, RedBankResult};
use crate::contracts::support::Coin128;

pub fn liquidate(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    user: Addr,
    collateral_denom: String,
    sent: Coin128,
    recipient: Option<String>,
) -> RedBankResult<Response> {
    let now = env.block.time.seconds();
    let debt_denom = sent.denom;
    let sent_debt_amount = sent.amount;
    let recipient = match recipient {
        Some(recipient) => deps.api.addr_validate(&recipient)?,
        None => info.sender.clone(),
    };
    let peers = Peers::load(deps.as_ref())?;
    let oracle = peers.oracle()?.clone();
    let params = peers.params()?.clone();
    let rewards_collector = peers.rewards_collector()?.clone();

    // 1. Validate.
    if info.sender == user {
        return Err(RedBankError::CannotLiquidateSelf {});
    }
    if peers.is_credit_manager(&user) {
        return Err(RedBankError::CannotLiquidateCreditManager {});
    }
    let user_key_bytes = user_key(&user, "");
    let user_collateral = COLLATERALS
        .may_load(deps.storage, (&user_key_bytes, &collateral_denom))?
        .ok_or(RedBankError::CannotLiquidateWhenNoCollateralBalance {})?;
    if !user_collateral.enabled {
        return Err(RedBankError::CannotLiquidateWhenCollateralUnset {
            denom: collateral_denom,
        });
    }
    let user_debt = DEBTS
        .may_load(deps.storage, (&user, &debt_denom))?
        .ok_or(RedBankError::CannotLiquidateWhenNoDebtBalance {})?;
    let collateral_market = load_market(deps.as_ref(), &collateral_denom)?;

    // 2. Health at liquidation prices.
    let positions = PricedPositions::load(
        deps.as_ref(),
        now,
        &user,
        "",
        &oracle,
        &params,
        ActionKind::Liquidation,
    )?;
    let health_before = positions.health()?;
    if !health_before.is_liquidatable() {
        return Err(RedBankError::CannotLiquidateHealthyPosition {});
    }
    let debt_market = if debt_denom != collateral_denom {
        load_market(deps.as_ref(), &debt_denom)?
    } else {
        collateral_market.clone()
    };

    // 3. Amounts.
    let collateral_price = *positions
        .prices
        .get(&collateral_denom)
        .ok_or(RedBankError::CannotLiquidateWhenNoCollateralBalance {})?;
    let debt_price = *positions
        .prices
        .get(&debt_denom)
        .ok_or(RedBankError::CannotLiquidateWhenNoDebtBalance {})?;
    let collateral_params = positions
        .params
        .get(&collateral_denom)
        .ok_or(RedBankError::CannotLiquidateWhenNoCollateralBalance {})?;
    let user_debt_amount =
        interest::underlying_debt_amount(user_debt.amount_scaled, &debt_market, now)?;
    let user_collateral_amount = interest::underlying_liquidity_amount(
        user_collateral.amount_scaled,
        &collateral_market,
        now,
    )?;
    let target_health_factor = query_target_health_factor(deps.as_ref(), &params)?;
    let amounts = calculate_liquidation_amounts(&LiquidationInput {
        collateral_amount: user_collateral_amount,
        collateral_price,
        collateral_params,
        debt_amount: user_debt_amount,
        debt_requested_to_repay: sent_debt_amount,
        debt_price,
        // contracts v2.1 (Osmosis) caps a liquidation at the target health factor.
        repay_limit: RepayLimit::TargetHealthFactor(target_health_factor),
        health: &health_before,
    })?;
    let protocol_fee = amounts.protocol_fee();
    let refund_amount = sent_debt_amount.checked_sub(amounts.debt_amount_to_repay)?;

    let collateral_amount_scaled = interest::scaled_liquidity_amount(
        amounts.collateral_amount_to_liquidate,
        &collateral_market,
        now,
    )?;
    let received_scaled = interest::scaled_liquidity_amount(
        amounts.collateral_amount_received_by_liquidator,
        &collateral_market,
        now,
    )?;
    let protocol_fee_scaled =
        interest::scaled_liquidity_amount(protocol_fee, &collateral_market, now)?;

    // 4. Move collateral shares to the recipient and the rewards collector.
    decrease_collateral(
        deps.storage,
        &user_key_bytes,
        &collateral_denom,
        collateral_amount_scaled,
    )?;
    increase_collateral(
        deps.storage,
        &user_key(&recipient, ""),
        &collateral_denom,
        received_scaled,
    )?;
    if !protocol_fee.is_zero() {
        increase_collateral(
            deps.storage,
            &user_key(&rewards_collector, ""),
            &collateral_denom,
            protocol_fee_scaled,
        )?;
    }

    // 5. Reduce the user's debt.
    let user_debt_after = user_debt_amount.checked_sub(amounts.debt_amount_to_repay)?;
    let user_debt_scaled_after = interest::scaled_debt_amount(user_debt_after, &debt_market, now)?;
    let debt_amount_scaled_delta = user_debt
        .amount_scaled
        .checked_sub(user_debt_scaled_after)?;
    decrease_debt(deps.storage, &user, &debt_denom, debt_amount_scaled_delta)?;
    let market_debt_total_scaled_after = debt_market
        .debt_total_scaled
        .checked_sub(debt_amount_scaled_delta)?;

    // 6. Update the debt market.
    let mut debt_market_after = debt_market;
    accrue_market(
        deps.storage,
        now,
        &mut debt_market_after,
        &rewards_collector,
    )?;
    debt_market_after.debt_total_scaled = market_debt_total_scaled_after;
    let mut response = refresh_interest_rates(now, &mut debt_market_after, Response::new())?;
    MARKETS.save(deps.storage, &debt_denom, &debt_market_after)?;

    // 7. Refund what was sent beyond the repaid debt.
    if !refund_amount.is_zero() {
        response = response.add_message(BankMsg::Send {
            to_address: info.sender.to_string(),
            amount: vec![Coin::new(refund_amount, debt_denom.clone())],
        });
    }

    Ok(response
        .add_attribute("action", "liquidate")
        .add_attribute("user", &user)
        .add_attribute("liquidator", &info.sender)
        .add_attribute("recipient", &recipient)
        .add_attribute("collateral_denom", collateral_denom)
        .add_attribute("collateral_amount", amounts.collateral_amount_to_liquidate)
        .add_attribute("collateral_amount_scaled", collateral_amount_scaled)
        .add_attribute("debt_denom", debt_denom)
        .add_attribute("debt_amount", amounts.debt_amount_to_repay)
        .add_attribute("debt_amount_scaled", debt_amount_scaled_delta))
}
