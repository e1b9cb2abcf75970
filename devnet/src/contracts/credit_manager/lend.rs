//! Lending an account's coins to the Red Bank and reclaiming them (`lend.rs`, `reclaim.rs`).
//! The Red Bank books lends as collateral of `{"addr": <credit manager>, "acc_id": <id>}`.

use std::cmp::min;

use cosmwasm_std::{Coin, CosmosMsg, Deps, DepsMut, Response, Uint128};
use mars::msg::credit_manager::ActionCoin;
use mars::msg::red_bank;

use super::coins::action_amount;
use super::debt::assert_whitelisted;
use super::peers::{execute_msg, lent};
use super::state::{decrement_coin_balance, increment_coin_balance, RED_BANK};
use super::{CreditManagerError, CreditManagerResult};

/// Lends the amount (nothing happens for zero).
pub fn lend(deps: DepsMut, account_id: &str, coin: &ActionCoin) -> CreditManagerResult<Response> {
    assert_whitelisted(deps.as_ref(), &coin.denom)?;
    let amount = action_amount(deps.as_ref(), account_id, coin)?;
    let mut response = Response::new();
    if !amount.is_zero() {
        decrement_coin_balance(deps.storage, account_id, &coin.denom, amount)?;
        let red_bank = RED_BANK.load(deps.storage)?;
        let msg = red_bank::ExecuteMsg::Deposit {
            account_id: Some(account_id.to_string()),
            on_behalf_of: None,
        };
        let lent = Coin::new(amount, coin.denom.clone());
        response = response.add_message(execute_msg(&red_bank.addr, &msg, vec![lent])?);
    }
    Ok(response
        .add_attribute("action", "lend")
        .add_attribute("account_id", account_id)
        .add_attribute("coin_lent", &coin.denom))
}

/// Reclaims at most what is lent (everything for `account_balance`).
pub fn reclaim(
    deps: DepsMut,
    account_id: &str,
    coin: &ActionCoin,
) -> CreditManagerResult<Response> {
    let lent_amount = lent(deps.as_ref(), account_id, &coin.denom)?;
    let amount = min(lent_amount, coin.amount.value().unwrap_or(Uint128::MAX));
    if amount.is_zero() {
        return Err(CreditManagerError::NoneLent);
    }
    increment_coin_balance(deps.storage, account_id, &coin.denom, amount)?;
    let msg = reclaim_msg(deps.as_ref(), account_id, &coin.denom, amount, false)?;
    Ok(Response::new()
        .add_message(msg)
        .add_attribute("action", "reclaim")
        .add_attribute("account_id", account_id)
        .add_attribute("coin_reclaimed", format!("{amount}{}", coin.denom)))
}

/// A Red Bank withdrawal of an account's lend back to the credit manager; a liquidation's is
/// marked `liquidation_related`, so the Red Bank prices its withdrawal check for liquidation.
pub fn reclaim_msg(
    deps: Deps,
    account_id: &str,
    denom: &str,
    amount: Uint128,
    liquidation_related: bool,
) -> CreditManagerResult<CosmosMsg> {
    let red_bank = RED_BANK.load(deps.storage)?;
    let msg = red_bank::ExecuteMsg::Withdraw {
        denom: denom.to_string(),
        amount: Some(amount),
        recipient: None,
        account_id: Some(account_id.to_string()),
        liquidation_related: Some(liquidation_related),
    };
    execute_msg(&red_bank.addr, &msg, vec![])
}
