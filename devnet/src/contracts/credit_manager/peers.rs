//! What the credit manager asks its peers (Mars's adapters): the Red Bank for its own debt and
//! an account's lends, the params contract, the oracle, the health contract and the account NFT.

use cosmwasm_std::{to_json_binary, Addr, Coin, CosmosMsg, Decimal, Deps, Uint128, WasmMsg};
use mars::msg::account_nft::{self, OwnerOfResponse};
use mars::msg::health::{self, AccountKind, HealthState, HealthValuesResponse};
use mars::msg::oracle::{self, ActionKind, PriceResponse};
use mars::msg::params::{self, TotalDepositResponse};
use mars::msg::red_bank::{self, PaginationResponse, UserCollateralResponse, UserDebtResponse};
use mars::rule::RepayLimit;
use mars::types::AssetParams;

use super::state::{
    account_kind, is_core_line, ACCOUNT_NFT, HEALTH_CONTRACT, ORACLE, PARAMS, RED_BANK,
};
use super::CreditManagerResult;

pub fn execute_msg<T: serde::Serialize>(
    contract: &Addr,
    msg: &T,
    funds: Vec<Coin>,
) -> CreditManagerResult<CosmosMsg> {
    Ok(CosmosMsg::Wasm(WasmMsg::Execute {
        contract_addr: contract.to_string(),
        msg: to_json_binary(msg)?,
        funds,
    }))
}

/// What the credit manager owes the Red Bank in `denom`, for all its accounts.
pub fn total_debt(deps: Deps, denom: &str) -> CreditManagerResult<Uint128> {
    let red_bank = RED_BANK.load(deps.storage)?;
    let debt: UserDebtResponse = deps.querier.query_wasm_smart(
        &red_bank.addr,
        &red_bank::QueryMsg::UserDebt {
            user: red_bank.credit_manager.to_string(),
            denom: denom.to_string(),
        },
    )?;
    Ok(debt.amount)
}

/// What `account_id` has lent of `denom`.
pub fn lent(deps: Deps, account_id: &str, denom: &str) -> CreditManagerResult<Uint128> {
    let red_bank = RED_BANK.load(deps.storage)?;
    let lent: UserCollateralResponse = deps.querier.query_wasm_smart(
        &red_bank.addr,
        &red_bank::QueryMsg::UserCollateral {
            user: red_bank.credit_manager.to_string(),
            account_id: Some(account_id.to_string()),
            denom: denom.to_string(),
        },
    )?;
    Ok(lent.amount)
}

/// Everything `account_id` has lent, all pages.
pub fn all_lent(deps: Deps, account_id: &str) -> CreditManagerResult<Vec<Coin>> {
    let red_bank = RED_BANK.load(deps.storage)?;
    let mut lent = Vec::new();
    loop {
        let page: PaginationResponse<UserCollateralResponse> = deps.querier.query_wasm_smart(
            &red_bank.addr,
            &red_bank::QueryMsg::UserCollateralsV2 {
                user: red_bank.credit_manager.to_string(),
                account_id: Some(account_id.to_string()),
                start_after: lent.last().map(|c: &Coin| c.denom.clone()),
                limit: None,
            },
        )?;
        lent.extend(
            page.data
                .into_iter()
                .map(|item| Coin::new(item.amount, item.denom)),
        );
        if !page.metadata.has_more {
            return Ok(lent);
        }
    }
}

pub fn asset_params(deps: Deps, denom: &str) -> CreditManagerResult<Option<AssetParams>> {
    Ok(deps.querier.query_wasm_smart(
        PARAMS.load(deps.storage)?,
        &params::QueryMsg::AssetParams {
            denom: denom.to_string(),
        },
    )?)
}

/// The most one liquidation of `debt_params.denom` may repay: the debt asset's close factor
/// under core-contracts (Neutron), the params contract's target health factor under contracts
/// v2.1 (Osmosis), whose params have no close factor.
pub fn repay_limit(deps: Deps, debt_params: &AssetParams) -> CreditManagerResult<RepayLimit> {
    if let Some(close_factor) = debt_params.close_factor {
        return Ok(RepayLimit::CloseFactor(close_factor));
    }
    let target_health_factor: Decimal = deps.querier.query_wasm_smart(
        PARAMS.load(deps.storage)?,
        &params::QueryMsg::TargetHealthFactor {},
    )?;
    Ok(RepayLimit::TargetHealthFactor(target_health_factor))
}

pub fn total_deposit(deps: Deps, denom: &str) -> CreditManagerResult<TotalDepositResponse> {
    Ok(deps.querier.query_wasm_smart(
        PARAMS.load(deps.storage)?,
        &params::QueryMsg::TotalDeposit {
            denom: denom.to_string(),
        },
    )?)
}

pub fn price(deps: Deps, denom: &str, kind: ActionKind) -> CreditManagerResult<Decimal> {
    let price: PriceResponse = deps.querier.query_wasm_smart(
        ORACLE.load(deps.storage)?,
        &oracle::QueryMsg::Price {
            denom: denom.to_string(),
            kind: Some(kind),
        },
    )?;
    Ok(price.price)
}

/// Asks the health contract about `account_id`: with the account's kind on contracts v2.1;
/// on core-contracts without it (there the credit manager runs the same health computer in
/// process, which the devnet's health contract is).
fn query_health<T: serde::de::DeserializeOwned>(
    deps: Deps,
    account_id: &str,
    action: ActionKind,
    state: bool,
) -> CreditManagerResult<T> {
    let contract = HEALTH_CONTRACT.load(deps.storage)?;
    let account_id = account_id.to_string();
    if is_core_line(deps.storage) {
        let msg = if state {
            health::core::QueryMsg::HealthState { account_id, action }
        } else {
            health::core::QueryMsg::HealthValues { account_id, action }
        };
        return Ok(deps.querier.query_wasm_smart(contract, &msg)?);
    }
    let kind: AccountKind = account_kind(deps.storage, &account_id)?;
    let msg = if state {
        health::QueryMsg::HealthState {
            account_id,
            kind,
            action,
        }
    } else {
        health::QueryMsg::HealthValues {
            account_id,
            kind,
            action,
        }
    };
    Ok(deps.querier.query_wasm_smart(contract, &msg)?)
}

pub fn health_state(
    deps: Deps,
    account_id: &str,
    action: ActionKind,
) -> CreditManagerResult<HealthState> {
    query_health(deps, account_id, action, true)
}

pub fn health_values(
    deps: Deps,
    account_id: &str,
    action: ActionKind,
) -> CreditManagerResult<HealthValuesResponse> {
    query_health(deps, account_id, action, false)
}

pub fn next_account_id(deps: Deps) -> CreditManagerResult<String> {
    Ok(deps.querier.query_wasm_smart(
        ACCOUNT_NFT.load(deps.storage)?,
        &account_nft::QueryMsg::NextId {},
    )?)
}

pub fn account_owner(deps: Deps, account_id: &str) -> CreditManagerResult<String> {
    let owner: OwnerOfResponse = deps.querier.query_wasm_smart(
        ACCOUNT_NFT.load(deps.storage)?,
        &account_nft::QueryMsg::OwnerOf {
            token_id: account_id.to_string(),
            include_expired: None,
        },
    )?;
    Ok(owner.owner)
}
