//! Borrowing from and repaying the Red Bank (`borrow.rs`, `repay.rs`).
//!
//! The credit manager owes the Red Bank in its own name; each account holds debt shares of
//! that debt. An account's debt is `ceil(total debt · shares / total shares)`, in favour of
//! the other accounts; shares repaid are `floor(total shares · amount / total debt)`.

use std::cmp::min;

use cosmwasm_std::{Addr, BankMsg, Coin, Deps, DepsMut, Env, Response, Uint128};
use mars::msg::credit_manager::{
    ActionCoin, CallbackMsg, ExecuteMsg, DEFAULT_DEBT_SHARES_PER_COIN_BORROWED,
};
use mars::msg::red_bank;

use super::coins::action_amount;
use super::peers::{asset_params, execute_msg, total_debt};
use super::state::{
    coin_balance, decrement_coin_balance, increment_coin_balance, DEBT_SHARES, RED_BANK,
    TOTAL_DEBT_SHARES,
};
use super::{amount_of, CreditManagerError, CreditManagerResult};
use crate::contracts::support::Coin128;

/// Borrowing and lending need the coin whitelisted in the params contract.
pub fn assert_whitelisted(deps: Deps, denom: &str) -> CreditManagerResult<()> {
    match asset_params(deps, denom) {
        Ok(Some(params)) if params.credit_manager.whitelisted => Ok(()),
        _ => Err(CreditManagerError::NotWhitelisted(denom.to_string())),
    }
}

fn total_debt_shares(deps: Deps, denom: &str) -> CreditManagerResult<Uint128> {
    Ok(TOTAL_DEBT_SHARES
        .may_load(deps.storage, denom)?
        .unwrap_or_default())
}

pub fn borrow(deps: DepsMut, account_id: &str, coin: &Coin) -> CreditManagerResult<Response> {
    let amount = amount_of(coin)?;
    if amount.is_zero() {
        return Err(CreditManagerError::NoAmount);
    }
    let denom = coin.denom.as_str();
    assert_whitelisted(deps.as_ref(), denom)?;
    let total_debt_amount = total_debt(deps.as_ref(), denom)?;
    let shares = if total_debt_amount.is_zero() {
        amount.checked_mul(DEFAULT_DEBT_SHARES_PER_COIN_BORROWED)?
    } else {
        TOTAL_DEBT_SHARES
            .load(deps.storage, denom)?
            .checked_multiply_ratio(amount, total_debt_amount)?
    };
    if shares.is_zero() {
        return Err(CreditManagerError::ZeroDebtShares);
    }
    let total_shares = total_debt_shares(deps.as_ref(), denom)?.checked_add(shares)?;
    TOTAL_DEBT_SHARES.save(deps.storage, denom, &total_shares)?;
    let account_shares = DEBT_SHARES
        .may_load(deps.storage, (account_id, denom))?
        .unwrap_or_default()
        .checked_add(shares)?;
    DEBT_SHARES.save(deps.storage, (account_id, denom), &account_shares)?;
    increment_coin_balance(deps.storage, account_id, denom, amount)?;

    let red_bank = RED_BANK.load(deps.storage)?;
    let msg = red_bank::ExecuteMsg::Borrow {
        denom: denom.to_string(),
        amount,
        recipient: None,
    };
    Ok(Response::new()
        .add_message(execute_msg(&red_bank.addr, &msg, vec![])?)
        .add_attribute("action", "borrow")
        .add_attribute("account_id", account_id)
        .add_attribute("debt_shares_added", shares)
        .add_attribute("coin_borrowed", coin.to_string()))
}

/// An account's debt in `denom` and its shares; `NoDebt` without shares.
pub fn current_debt_for_denom(
    deps: Deps,
    account_id: &str,
    denom: &str,
) -> CreditManagerResult<(Uint128, Uint128)> {
    let shares = DEBT_SHARES
        .load(deps.storage, (account_id, denom))
        .map_err(|_| CreditManagerError::NoDebt)?;
    Ok((debt_shares_to_amount(deps, denom, shares)?, shares))
}

pub fn debt_shares_to_amount(
    deps: Deps,
    denom: &str,
    shares: Uint128,
) -> CreditManagerResult<Uint128> {
    let total_shares = total_debt_shares(deps, denom)?;
    let total_debt_amount = total_debt(deps, denom)?;
    Ok(total_debt_amount.checked_mul_ceil((shares, total_shares))?)
}

/// Repays at most the debt, from the account's coin balance.
pub fn repay(
    deps: DepsMut,
    _env: &Env,
    account_id: &str,
    coin: &ActionCoin,
) -> CreditManagerResult<Response> {
    let denom = coin.denom.as_str();
    let (debt_amount, debt_shares) = current_debt_for_denom(deps.as_ref(), account_id, denom)?;
    let balance = coin_balance(deps.storage, account_id, denom)?;
    let amount = min(debt_amount, coin.amount.value().unwrap_or(balance));
    let total_shares = TOTAL_DEBT_SHARES.load(deps.storage, denom)?;
    let shares_repaid =
        total_shares.checked_multiply_ratio(amount, total_debt(deps.as_ref(), denom)?)?;
    if amount == debt_amount {
        DEBT_SHARES.remove(deps.storage, (account_id, denom));
    } else {
        let left = debt_shares.checked_sub(shares_repaid)?;
        DEBT_SHARES.save(deps.storage, (account_id, denom), &left)?;
    }
    TOTAL_DEBT_SHARES.save(
        deps.storage,
        denom,
        &total_shares.checked_sub(shares_repaid)?,
    )?;
    decrement_coin_balance(deps.storage, account_id, denom, amount)?;

    let repaid = Coin::new(amount, denom);
    let red_bank = RED_BANK.load(deps.storage)?;
    let msg = red_bank::ExecuteMsg::Repay { on_behalf_of: None };
    Ok(Response::new()
        .add_message(execute_msg(&red_bank.addr, &msg, vec![repaid.clone()])?)
        .add_attribute("action", "repay")
        .add_attribute("account_id", account_id)
        .add_attribute("debt_shares_repaid", shares_repaid)
        .add_attribute("coin_repaid", repaid.to_string()))
}

/// The repaid coins as an exact repayment callback for `account_id`.
fn repay_callback(
    env: &Env,
    account_id: &str,
    denom: &str,
    amount: Uint128,
) -> CreditManagerResult<cosmwasm_std::CosmosMsg> {
    let repay = CallbackMsg::Repay {
        account_id: account_id.to_string(),
        coin: ActionCoin::exact(denom, amount),
    };
    execute_msg(&env.contract.address, &ExecuteMsg::Callback(repay), vec![])
}

/// One account pays another's debt: the coins move between balances, then the recipient repays.
pub fn repay_for_recipient(
    deps: DepsMut,
    env: &Env,
    benefactor_account_id: &str,
    recipient_account_id: &str,
    coin: &ActionCoin,
) -> CreditManagerResult<Response> {
    let denom = coin.denom.as_str();
    let (debt_amount, _) = current_debt_for_denom(deps.as_ref(), recipient_account_id, denom)?;
    let available = action_amount(deps.as_ref(), benefactor_account_id, coin)?;
    let amount = min(debt_amount, available);
    decrement_coin_balance(deps.storage, benefactor_account_id, denom, amount)?;
    increment_coin_balance(deps.storage, recipient_account_id, denom, amount)?;
    Ok(Response::new()
        .add_message(repay_callback(env, recipient_account_id, denom, amount)?)
        .add_attribute("action", "repay_for_recipient")
        .add_attribute("benefactor_account_id", benefactor_account_id)
        .add_attribute("recipient_account_id", recipient_account_id)
        .add_attribute("coin_repaid", Coin::new(amount, denom).to_string()))
}

/// Repays from the coin sent, refunding what exceeds the debt.
pub fn repay_from_wallet(
    deps: DepsMut,
    env: Env,
    sender: &Addr,
    account_id: &str,
    sent: Coin128,
) -> CreditManagerResult<Response> {
    let (debt_amount, _) = current_debt_for_denom(deps.as_ref(), account_id, &sent.denom)?;
    let amount = min(debt_amount, sent.amount);
    increment_coin_balance(deps.storage, account_id, &sent.denom, amount)?;
    let refund = sent.amount - amount;
    let mut response = Response::new()
        .add_message(repay_callback(&env, account_id, &sent.denom, amount)?)
        .add_attribute("action", "repay_from_wallet")
        .add_attribute("from_address", sender)
        .add_attribute("account_id", account_id)
        .add_attribute(
            "coin_repaid",
            Coin::new(amount, sent.denom.clone()).to_string(),
        )
        .add_attribute("refunded", refund.to_string());
    if !refund.is_zero() {
        response = response.add_message(BankMsg::Send {
            to_address: sender.to_string(),
            amount: vec![Coin::new(refund, sent.denom)],
        });
    }
    Ok(response)
}
