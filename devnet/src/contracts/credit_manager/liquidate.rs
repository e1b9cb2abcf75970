//! Liquidating a credit account from the liquidator's own account (`liquidate.rs`,
//! `liquidate_deposit.rs`, `liquidate_lend.rs`).
//!
//! The amounts are `mars::math::liquidation`'s, at the oracle's liquidation prices and capped
//! at the params contract's target health factor, with the liquidatee's health read from the
//! health contract. The liquidator pays the debt from its own coin balance (the coins move to
//! the liquidatee, whose repayment follows as a callback); the seized coins go to the
//! liquidator's balance less the protocol fee, which is booked to the rewards collector's
//! credit account. A `lend` request reclaims the seized lend from the Red Bank.

use cosmwasm_std::{Coin, Decimal, DepsMut, Env, Response, Uint128};
use mars::math::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use mars::msg::credit_manager::{ActionCoin, CallbackMsg, ExecuteMsg, LiquidateRequest};
use mars::msg::oracle::ActionKind;
use mars::types::LiquidationAmounts;

use super::debt::current_debt_for_denom;
use super::lend::reclaim_msg;
use super::peers::{asset_params, execute_msg, health_values, lent, price, repay_limit};
use super::state::{
    decrement_coin_balance, increment_coin_balance, COIN_BALANCES, REWARDS_COLLECTOR,
};
use super::{amount_of, CreditManagerError, CreditManagerResult};
use crate::contracts::support::Coin128;

/// The two accounts and the liquidator's offer.
struct Parties<'a> {
    liquidator: &'a str,
    liquidatee: &'a str,
    debt: Coin128,
    request_denom: &'a str,
}

pub fn liquidate(
    deps: DepsMut,
    env: &Env,
    liquidator_account_id: &str,
    liquidatee_account_id: &str,
    debt_coin: &Coin,
    request: &LiquidateRequest,
) -> CreditManagerResult<Response> {
    if liquidator_account_id == liquidatee_account_id {
        return Err(CreditManagerError::SelfLiquidation);
    }
    let parties = Parties {
        liquidator: liquidator_account_id,
        liquidatee: liquidatee_account_id,
        debt: Coin128 {
            denom: debt_coin.denom.clone(),
            amount: amount_of(debt_coin)?,
        },
        request_denom: request.denom(),
    };
    match request {
        LiquidateRequest::Deposit(_) => liquidate_deposit(deps, env, &parties),
        LiquidateRequest::Lend(_) => liquidate_lend(deps, env, &parties),
    }
}

fn liquidate_deposit(
    mut deps: DepsMut,
    env: &Env,
    parties: &Parties,
) -> CreditManagerResult<Response> {
    let available = COIN_BALANCES
        .load(deps.storage, (parties.liquidatee, parties.request_denom))
        .map_err(|_| CreditManagerError::CoinNotAvailable(parties.request_denom.to_string()))?;
    let amounts = calculate_liquidation(&deps, parties, available)?;
    let mut response = pay_debt(&mut deps, env, parties, &amounts)?;
    decrement_coin_balance(
        deps.storage,
        parties.liquidatee,
        parties.request_denom,
        amounts.collateral_amount_to_liquidate,
    )?;
    let fee = credit_seized(&mut deps, parties, &amounts)?;
    response = response.add_attribute("action", "liquidate_deposit");
    Ok(report(response, parties, &amounts, fee))
}

fn liquidate_lend(
    mut deps: DepsMut,
    env: &Env,
    parties: &Parties,
) -> CreditManagerResult<Response> {
    let available = lent(deps.as_ref(), parties.liquidatee, parties.request_denom)?;
    if available.is_zero() {
        return Err(CreditManagerError::NoneLent);
    }
    let amounts = calculate_liquidation(&deps, parties, available)?;
    let mut response = pay_debt(&mut deps, env, parties, &amounts)?;
    let reclaim = reclaim_msg(
        deps.as_ref(),
        parties.liquidatee,
        parties.request_denom,
        amounts.collateral_amount_to_liquidate,
        true,
    )?;
    let fee = credit_seized(&mut deps, parties, &amounts)?;
    response = response
        .add_message(reclaim)
        .add_attribute("action", "liquidate_lend");
    Ok(report(response, parties, &amounts, fee))
}

/// The liquidation amounts for the liquidatee's `available` request coins, refused unless the
/// account is liquidatable and the liquidator gets more value than it pays.
fn calculate_liquidation(
    deps: &DepsMut,
    parties: &Parties,
    available: Uint128,
) -> CreditManagerResult<LiquidationAmounts> {
    let deps = deps.as_ref();
    let values = health_values(deps, parties.liquidatee, ActionKind::Liquidation)?;
    if !values.liquidatable {
        return Err(CreditManagerError::NotLiquidatable {
            account_id: parties.liquidatee.to_string(),
            lqdt_health_factor: values
                .health
                .liquidation_health_factor
                .map_or_else(|| "None".to_string(), |hf| hf.to_string()),
        });
    }
    let (debt_amount, _) = current_debt_for_denom(deps, parties.liquidatee, &parties.debt.denom)?;
    let debt_params = asset_params(deps, &parties.debt.denom)?
        .ok_or_else(|| CreditManagerError::AssetParamsNotFound(parties.debt.denom.clone()))?;
    let repay_limit = repay_limit(deps, &debt_params)?;
    let request_params = asset_params(deps, parties.request_denom)?
        .ok_or_else(|| CreditManagerError::AssetParamsNotFound(parties.request_denom.into()))?;
    let debt_price = price(deps, &parties.debt.denom, ActionKind::Liquidation)?;
    let request_price = price(deps, parties.request_denom, ActionKind::Liquidation)?;
    let amounts = calculate_liquidation_amounts(&LiquidationInput {
        collateral_amount: available,
        collateral_price: request_price,
        collateral_params: &request_params,
        debt_amount,
        debt_requested_to_repay: parties.debt.amount,
        debt_price,
        repay_limit,
        health: &values.health,
    })?;
    assert_liquidation_profitable(parties, &amounts, debt_price, request_price)?;
    Ok(amounts)
}

/// The liquidator must receive more value (at liquidation prices, each rounded down) than it
/// repays: small amounts or far-apart prices could otherwise make it lose.
fn assert_liquidation_profitable(
    parties: &Parties,
    amounts: &LiquidationAmounts,
    debt_price: Decimal,
    request_price: Decimal,
) -> CreditManagerResult<()> {
    let debt_value = amounts.debt_amount_to_repay.checked_mul_floor(debt_price)?;
    let request_value = amounts
        .collateral_amount_received_by_liquidator
        .checked_mul_floor(request_price)?;
    if debt_value >= request_value {
        return Err(CreditManagerError::LiquidationNotProfitable {
            debt_coin: Coin::new(amounts.debt_amount_to_repay, parties.debt.denom.clone()),
            request_coin: Coin::new(
                amounts.collateral_amount_received_by_liquidator,
                parties.request_denom,
            ),
        });
    }
    Ok(())
}

/// Moves the repayment from the liquidator's balance to the liquidatee's and returns the
/// response with the liquidatee's repayment callback.
fn pay_debt(
    deps: &mut DepsMut,
    env: &Env,
    parties: &Parties,
    amounts: &LiquidationAmounts,
) -> CreditManagerResult<Response> {
    let denom = &parties.debt.denom;
    let repaid = amounts.debt_amount_to_repay;
    decrement_coin_balance(deps.storage, parties.liquidator, denom, repaid)?;
    increment_coin_balance(deps.storage, parties.liquidatee, denom, repaid)?;
    let repay = CallbackMsg::Repay {
        account_id: parties.liquidatee.to_string(),
        coin: ActionCoin::exact(denom, repaid),
    };
    let msg = execute_msg(&env.contract.address, &ExecuteMsg::Callback(repay), vec![])?;
    Ok(Response::new().add_message(msg))
}

/// Credits the liquidator's share of the seized coins and the protocol fee (booked even when
/// zero, as Mars does). Returns the fee.
fn credit_seized(
    deps: &mut DepsMut,
    parties: &Parties,
    amounts: &LiquidationAmounts,
) -> CreditManagerResult<Uint128> {
    let denom = parties.request_denom;
    increment_coin_balance(
        deps.storage,
        parties.liquidator,
        denom,
        amounts.collateral_amount_received_by_liquidator,
    )?;
    let fee = amounts
        .collateral_amount_to_liquidate
        .checked_sub(amounts.collateral_amount_received_by_liquidator)?;
    let rewards_collector = REWARDS_COLLECTOR.load(deps.storage)?;
    increment_coin_balance(deps.storage, &rewards_collector.account_id, denom, fee)?;
    Ok(fee)
}

fn report(
    response: Response,
    parties: &Parties,
    amounts: &LiquidationAmounts,
    fee: Uint128,
) -> Response {
    let coin = |amount: Uint128, denom: &str| Coin::new(amount, denom).to_string();
    response
        .add_attribute("account_id", parties.liquidator)
        .add_attribute("liquidatee_account_id", parties.liquidatee)
        .add_attribute(
            "coin_debt_repaid",
            coin(amounts.debt_amount_to_repay, &parties.debt.denom),
        )
        .add_attribute(
            "coin_liquidated",
            coin(
                amounts.collateral_amount_to_liquidate,
                parties.request_denom,
            ),
        )
        .add_attribute("protocol_fee_coin", coin(fee, parties.request_denom))
}
