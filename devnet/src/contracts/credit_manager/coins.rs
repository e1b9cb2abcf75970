//! Coins moving in and out of accounts: deposits (with the deposit-cap bookkeeping),
//! withdrawals, refunds and swaps (`deposit.rs`, `withdraw.rs`, `refund.rs`, `swap.rs`,
//! `update_coin_balances.rs`).

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, BankMsg, Coin, Coins, Deps, DepsMut, Env, Response, Uint128};
use mars::msg::credit_manager::{ActionCoin, CallbackMsg, ChangeExpected, ExecuteMsg};
use mars::msg::swapper;

use super::peers::{account_owner, asset_params, execute_msg, total_deposit};
use super::state::{coin_balance, decrement_coin_balance, increment_coin_balance, SWAPPER};
use super::{amount_of, CreditManagerError, CreditManagerResult};

/// Books a deposit action against the funds sent: exactly `coin.amount` of the denom must have
/// been sent (in total). A zero deposit does nothing.
pub fn deposit(
    deps: &mut DepsMut,
    response: Response,
    account_id: &str,
    coin: &Coin,
    received: &mut Coins,
) -> CreditManagerResult<Response> {
    let amount = amount_of(coin)?;
    if amount.is_zero() {
        return Ok(response);
    }
    let sent = Uint128::try_from(received.amount_of(&coin.denom)).unwrap_or(Uint128::MAX);
    if sent != amount {
        return Err(CreditManagerError::FundsMismatch {
            expected: amount,
            received: sent,
        });
    }
    received.sub(coin.clone())?;
    increment_coin_balance(deps.storage, account_id, &coin.denom, amount)?;
    Ok(response
        .add_attribute("action", "callback/deposit")
        .add_attribute("coin_deposited", coin.to_string()))
}

/// Notes a denom whose total deposit an action may raise. A deposit (`received` is `None`)
/// always enforces the cap; a swap only compares against the total before this transaction
/// (funds sent already sit in the contract's balance, so they are taken out), and never
/// overrides a deposit's entry. Denoms without params count for neither cap nor health.
pub fn note_deposit_cap_denom(
    deps: Deps,
    denoms: &mut BTreeMap<String, Option<Uint128>>,
    denom: &str,
    received: Option<&Coins>,
) -> CreditManagerResult<()> {
    let Some(received) = received else {
        denoms.insert(denom.to_string(), None);
        return Ok(());
    };
    if denoms.contains_key(denom) || asset_params(deps, denom)?.is_none() {
        return Ok(());
    }
    let total = total_deposit(deps, denom)?.amount;
    let sent = Uint128::try_from(received.amount_of(denom)).unwrap_or(Uint128::MAX);
    denoms.insert(denom.to_string(), Some(total.saturating_sub(sent)));
    Ok(())
}

pub fn assert_deposit_caps(
    deps: Deps,
    denoms: BTreeMap<String, Option<Uint128>>,
) -> CreditManagerResult<Response> {
    let mut response = Response::new().add_attribute("action", "callback/assert_deposit_caps");
    for (denom, before) in denoms {
        if asset_params(deps, &denom)?.is_none() {
            continue;
        }
        let total = total_deposit(deps, &denom)?;
        if before.is_some_and(|before| total.amount <= before) {
            continue;
        }
        if total.amount > total.cap {
            return Err(CreditManagerError::AboveAssetDepositCap {
                new_value: Coin::new(total.amount, total.denom),
                maximum: total.cap,
            });
        }
        response = response
            .add_attribute("denom", total.denom)
            .add_attribute("amount", total.amount)
            .add_attribute("cap", total.cap);
    }
    Ok(response)
}

/// The amount an action coin stands for: its exact amount or the account's whole balance.
pub fn action_amount(
    deps: Deps,
    account_id: &str,
    coin: &ActionCoin,
) -> CreditManagerResult<Uint128> {
    match coin.amount.value() {
        Some(amount) => Ok(amount),
        None => coin_balance(deps.storage, account_id, &coin.denom),
    }
}

pub fn withdraw(
    deps: DepsMut,
    account_id: &str,
    coin: &ActionCoin,
    recipient: &Addr,
) -> CreditManagerResult<Response> {
    let amount = action_amount(deps.as_ref(), account_id, coin)?;
    if amount.is_zero() {
        return Err(CreditManagerError::NoAmount);
    }
    decrement_coin_balance(deps.storage, account_id, &coin.denom, amount)?;
    let withdrawn = Coin::new(amount, coin.denom.clone());
    Ok(Response::new()
        .add_message(BankMsg::Send {
            to_address: recipient.to_string(),
            amount: vec![withdrawn.clone()],
        })
        .add_attribute("action", "callback/withdraw")
        .add_attribute("account_id", account_id)
        .add_attribute("coin_withdrawn", withdrawn.to_string()))
}

/// Every coin balance of the account back to the NFT's owner, one withdrawal each.
pub fn refund_coin_balances(
    deps: Deps,
    env: &Env,
    account_id: &str,
) -> CreditManagerResult<Response> {
    let owner = Addr::unchecked(account_owner(deps, account_id)?);
    let balances = super::query::coin_balances(deps, account_id)?;
    let mut response = Response::new();
    for coin in balances {
        let withdraw = CallbackMsg::Withdraw {
            account_id: account_id.to_string(),
            coin: ActionCoin::exact(coin.denom.clone(), amount_of(&coin)?),
            recipient: owner.clone(),
        };
        response = response.add_message(execute_msg(
            &env.contract.address,
            &ExecuteMsg::Callback(withdraw),
            vec![],
        )?);
    }
    Ok(response
        .add_attribute("action", "callback/refund_coin_balances")
        .add_attribute("account_id", account_id))
}

/// Sells `coin_in` through the swapper; what comes back is booked by a balance update after.
/// The devnet's swapper is our constant-product pool contract (Mars calls its swapper's
/// `swap_exact_in` with the route; here the pool is found by the denom pair).
pub fn swap_exact_in(
    deps: DepsMut,
    env: &Env,
    account_id: &str,
    coin_in: &ActionCoin,
    denom_out: &str,
    min_receive: Uint128,
) -> CreditManagerResult<Response> {
    let amount = action_amount(deps.as_ref(), account_id, coin_in)?;
    if amount.is_zero() {
        return Err(CreditManagerError::NoAmount);
    }
    decrement_coin_balance(deps.storage, account_id, &coin_in.denom, amount)?;
    let balance_update = balance_update_msg(deps.as_ref(), env, account_id, denom_out)?;
    let offered = Coin::new(amount, coin_in.denom.clone());
    let swap = swapper::ExecuteMsg::Swap {
        ask_denom: denom_out.to_string(),
        min_receive,
    };
    let swapper = SWAPPER.load(deps.storage)?;
    Ok(Response::new()
        .add_message(execute_msg(&swapper, &swap, vec![offered.clone()])?)
        .add_message(balance_update)
        .add_attribute("action", "swapper")
        .add_attribute("account_id", account_id)
        .add_attribute("coin_in", offered.to_string())
        .add_attribute("denom_out", denom_out))
}

fn contract_balance(deps: Deps, env: &Env, denom: &str) -> CreditManagerResult<Coin> {
    Ok(deps.querier.query_balance(&env.contract.address, denom)?)
}

fn balance_update_msg(
    deps: Deps,
    env: &Env,
    account_id: &str,
    denom: &str,
) -> CreditManagerResult<cosmwasm_std::CosmosMsg> {
    let update = CallbackMsg::UpdateCoinBalance {
        account_id: account_id.to_string(),
        previous_balance: contract_balance(deps, env, denom)?,
        change: ChangeExpected::Increase,
    };
    execute_msg(&env.contract.address, &ExecuteMsg::Callback(update), vec![])
}

/// Books to the account how far the contract's balance moved since `previous`, which must be
/// the expected way.
pub fn update_coin_balance(
    deps: DepsMut,
    env: &Env,
    account_id: &str,
    previous: &Coin,
    change: &ChangeExpected,
) -> CreditManagerResult<Response> {
    let current = contract_balance(deps.as_ref(), env, &previous.denom)?;
    let prev_amount = amount_of(previous)?;
    let curr_amount = amount_of(&current)?;
    let (moved, word) = match change {
        ChangeExpected::Increase if prev_amount < curr_amount => {
            let moved = curr_amount - prev_amount;
            increment_coin_balance(deps.storage, account_id, &current.denom, moved)?;
            (moved, "increase")
        }
        ChangeExpected::Decrease if prev_amount > curr_amount => {
            let moved = prev_amount - curr_amount;
            decrement_coin_balance(deps.storage, account_id, &current.denom, moved)?;
            (moved, "decrease")
        }
        _ => {
            return Err(CreditManagerError::BalanceChange {
                denom: previous.denom.clone(),
                prev_amount,
                curr_amount,
            })
        }
    };
    Ok(Response::new()
        .add_attribute("action", "update_coin_balance")
        .add_attribute("account_id", account_id)
        .add_attribute("coin", Coin::new(moved, current.denom).to_string())
        .add_attribute("change", word))
}
