//! Credit manager queries with Mars's names and answers (`query.rs`).

use cosmwasm_std::{to_json_binary, Addr, Binary, Coin, Deps, Env, Order, StdResult, Uint128};
use cw_storage_plus::{Bound, Map};
use mars::msg::account_nft::{self, TokensResponse};
use mars::msg::credit_manager::{
    Account, CoinBalanceResponseItem, ConfigResponse, DebtAmount, DebtShares, Positions, QueryMsg,
    SharesResponseItem,
};
use mars::msg::health::OwnerResponse;
use serde::Serialize;

use super::debt::debt_shares_to_amount;
use super::peers::all_lent;
use super::state::{
    account_kind, is_core_line, ACCOUNT_NFT, COIN_BALANCES, DEBT_SHARES, HEALTH_CONTRACT,
    INCENTIVES, MAX_SLIPPAGE, MAX_UNLOCKING_POSITIONS, ORACLE, PARAMS, RED_BANK, REWARDS_COLLECTOR,
    SWAPPER, TOTAL_DEBT_SHARES, ZAPPER,
};
use super::{CreditManagerError, CreditManagerResult};
use crate::contracts::support::{page, page_limit, OWNER};

pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> CreditManagerResult<Binary> {
    match msg {
        QueryMsg::AccountKind { account_id } => json(&account_kind(deps.storage, &account_id)?),
        QueryMsg::Accounts {
            owner,
            start_after,
            limit,
        } => json(&accounts(deps, owner, start_after, limit)?),
        QueryMsg::Config {} => json(&config(deps)?),
        QueryMsg::Positions { account_id, action } => {
            if action.is_some() && !is_core_line(deps.storage) {
                return Err(CreditManagerError::OtherLine {
                    message: "QueryMsg",
                    problem: "unknown field `action`, expected `account_id`".into(),
                });
            }
            json(&positions(deps, &account_id)?)
        }
        QueryMsg::AllCoinBalances { start_after, limit } => {
            let items: Vec<CoinBalanceResponseItem> =
                account_denom_page(deps, &COIN_BALANCES, start_after, limit)?;
            json(&items)
        }
        QueryMsg::AllDebtShares { start_after, limit } => {
            let items: Vec<SharesResponseItem> =
                account_denom_page(deps, &DEBT_SHARES, start_after, limit)?;
            json(&items)
        }
        QueryMsg::TotalDebtShares(denom) => json(&DebtShares {
            shares: TOTAL_DEBT_SHARES.load(deps.storage, &denom)?,
            denom,
        }),
        QueryMsg::AllTotalDebtShares { start_after, limit } => {
            let shares = page(
                deps.storage,
                &TOTAL_DEBT_SHARES,
                start_after.as_deref(),
                limit,
            )
            .map(|item| item.map(|(denom, shares)| DebtShares { denom, shares }))
            .collect::<StdResult<Vec<_>>>()?;
            json(&shares)
        }
    }
}

fn json<T: Serialize>(answer: &T) -> CreditManagerResult<Binary> {
    Ok(to_json_binary(answer)?)
}

/// One page of a map keyed by (account id, denom), after `start_after`.
/// A response item for one `(account id, denom)` entry of an account-and-denom map.
trait AccountDenomItem {
    fn new(account_id: String, denom: String, value: Uint128) -> Self;
}

impl AccountDenomItem for CoinBalanceResponseItem {
    fn new(account_id: String, denom: String, amount: Uint128) -> Self {
        CoinBalanceResponseItem {
            account_id,
            denom,
            amount,
        }
    }
}

impl AccountDenomItem for SharesResponseItem {
    fn new(account_id: String, denom: String, shares: Uint128) -> Self {
        SharesResponseItem {
            account_id,
            denom,
            shares,
        }
    }
}

fn account_denom_page<T: AccountDenomItem>(
    deps: Deps,
    map: &Map<(&str, &str), Uint128>,
    start_after: Option<(String, String)>,
    limit: Option<u32>,
) -> CreditManagerResult<Vec<T>> {
    let start = start_after
        .as_ref()
        .map(|(account_id, denom)| Bound::exclusive((account_id.as_str(), denom.as_str())));
    Ok(map
        .range(deps.storage, start, None, Order::Ascending)
        .take(page_limit(limit))
        .map(|entry| entry.map(|((account_id, denom), value)| T::new(account_id, denom, value)))
        .collect::<StdResult<_>>()?)
}

/// The account's coin balances, zero entries included (Mars books zero protocol fees).
pub fn coin_balances(deps: Deps, account_id: &str) -> CreditManagerResult<Vec<Coin>> {
    Ok(COIN_BALANCES
        .prefix(account_id)
        .range(deps.storage, None, None, Order::Ascending)
        .map(|entry| entry.map(|(denom, amount)| Coin::new(amount, denom)))
        .collect::<StdResult<_>>()?)
}

fn debt_amounts(deps: Deps, account_id: &str) -> CreditManagerResult<Vec<DebtAmount>> {
    DEBT_SHARES
        .prefix(account_id)
        .range(deps.storage, None, None, Order::Ascending)
        .map(|entry| {
            let (denom, shares) = entry?;
            Ok(DebtAmount {
                amount: debt_shares_to_amount(deps, &denom, shares)?,
                denom,
                shares,
            })
        })
        .collect()
}

/// Deposits, debts and lends; no vaults, staked LPs or perps exist on the devnet (core-contracts
/// lists its empty perps).
pub fn positions(deps: Deps, account_id: &str) -> CreditManagerResult<Positions> {
    Ok(Positions {
        account_id: account_id.to_string(),
        account_kind: account_kind(deps.storage, account_id)?,
        deposits: coin_balances(deps, account_id)?,
        debts: debt_amounts(deps, account_id)?,
        lends: all_lent(deps, account_id)?,
        vaults: vec![],
        staked_astro_lps: vec![],
        perps: is_core_line(deps.storage).then(Vec::new),
    })
}

fn accounts(
    deps: Deps,
    owner: String,
    start_after: Option<String>,
    limit: Option<u32>,
) -> CreditManagerResult<Vec<Account>> {
    let tokens: TokensResponse = deps.querier.query_wasm_smart(
        ACCOUNT_NFT.load(deps.storage)?,
        &account_nft::QueryMsg::Tokens {
            owner,
            start_after,
            limit,
        },
    )?;
    tokens
        .tokens
        .into_iter()
        .map(|id| {
            Ok(Account {
                kind: account_kind(deps.storage, &id)?,
                id,
            })
        })
        .collect()
}

fn config(deps: Deps) -> CreditManagerResult<ConfigResponse> {
    let address = |addr: Addr| addr.into_string();
    Ok(ConfigResponse {
        ownership: OwnerResponse::owned_by(OWNER.load(deps.storage)?),
        account_nft: ACCOUNT_NFT.may_load(deps.storage)?.map(address),
        red_bank: RED_BANK.load(deps.storage)?.addr.into_string(),
        incentives: INCENTIVES.load(deps.storage)?.addr.into_string(),
        oracle: ORACLE.load(deps.storage)?.into_string(),
        params: PARAMS.load(deps.storage)?.into_string(),
        max_unlocking_positions: MAX_UNLOCKING_POSITIONS.load(deps.storage)?,
        max_slippage: MAX_SLIPPAGE.load(deps.storage)?,
        swapper: SWAPPER.load(deps.storage)?.into_string(),
        zapper: ZAPPER.load(deps.storage)?.into_string(),
        health_contract: HEALTH_CONTRACT.load(deps.storage)?.into_string(),
        rewards_collector: REWARDS_COLLECTOR.may_load(deps.storage)?,
    })
}
