//! Red Bank queries with Mars's names and answers (`contracts/red-bank/src/query.rs`).

use cosmwasm_std::{to_json_binary, Addr, Binary, Decimal, Deps, Env, Order, StdResult};
use cw_storage_plus::Bound;
use mars::math::{health::user_position_figures, interest};
use mars::msg::oracle::ActionKind;
use mars::msg::red_bank::{
    ConfigResponse, Market, MarketV2Response, Metadata, PaginationResponse, QueryMsg,
    UserCollateralResponse, UserDebtResponse,
};

use super::peers::Peers;
use super::positions::{load_market, PricedPositions};
use super::state::{user_key, COLLATERALS, CONFIG, DEBTS, MARKETS};
use super::RedBankResult;
use crate::contracts::support::{page_limit, OWNER};

pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> RedBankResult<Binary> {
    let now = env.block.time.seconds();
    Ok(match msg {
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            owner: Some(OWNER.load(deps.storage)?.into_string()),
            proposed_new_owner: None,
            address_provider: CONFIG.load(deps.storage)?.address_provider.into_string(),
        })?,
        QueryMsg::Market { denom } => to_json_binary(&MARKETS.may_load(deps.storage, &denom)?)?,
        QueryMsg::MarketV2 { denom } => {
            to_json_binary(&market_v2(load_market(deps, &denom)?, now)?)?
        }
        QueryMsg::Markets { start_after, limit } => {
            let start = start_after.as_deref().map(Bound::exclusive);
            let markets = MARKETS
                .range(deps.storage, start, None, Order::Ascending)
                .take(page_limit(limit))
                .map(|item| Ok(item?.1))
                .collect::<StdResult<Vec<Market>>>()?;
            to_json_binary(&markets)?
        }
        QueryMsg::MarketsV2 { start_after, limit } => {
            let start = start_after.as_deref().map(Bound::exclusive);
            let limit = page_limit(limit);
            let mut markets = MARKETS
                .range(deps.storage, start, None, Order::Ascending)
                .take(limit + 1)
                .map(|item| Ok(item?.1))
                .collect::<StdResult<Vec<Market>>>()?;
            let has_more = markets.len() > limit;
            markets.truncate(limit);
            let data = markets
                .into_iter()
                .map(|market| market_v2(market, now))
                .collect::<RedBankResult<Vec<_>>>()?;
            to_json_binary(&PaginationResponse {
                data,
                metadata: Metadata { has_more },
            })?
        }
        QueryMsg::UserDebt { user, denom } => {
            let user = deps.api.addr_validate(&user)?;
            let debt = DEBTS
                .may_load(deps.storage, (&user, &denom))?
                .unwrap_or_default();
            let market = load_market(deps, &denom)?;
            to_json_binary(&UserDebtResponse {
                amount: interest::underlying_debt_amount(debt.amount_scaled, &market, now)?,
                amount_scaled: debt.amount_scaled,
                uncollateralized: debt.uncollateralized,
                denom,
            })?
        }
        QueryMsg::UserDebts {
            user,
            start_after,
            limit,
        } => {
            let user = deps.api.addr_validate(&user)?;
            to_json_binary(&user_debts(deps, now, &user, start_after, limit)?)?
        }
        QueryMsg::UserCollateral {
            user,
            account_id,
            denom,
        } => {
            let user = deps.api.addr_validate(&user)?;
            let key = user_key(&user, account_id.as_deref().unwrap_or(""));
            let collateral = COLLATERALS
                .may_load(deps.storage, (&key, &denom))?
                .unwrap_or_default();
            let market = load_market(deps, &denom)?;
            to_json_binary(&UserCollateralResponse {
                amount: interest::underlying_liquidity_amount(
                    collateral.amount_scaled,
                    &market,
                    now,
                )?,
                amount_scaled: collateral.amount_scaled,
                enabled: collateral.enabled,
                denom,
            })?
        }
        QueryMsg::UserCollaterals {
            user,
            account_id,
            start_after,
            limit,
        } => {
            let user = deps.api.addr_validate(&user)?;
            let (data, _) = user_collaterals(deps, now, &user, account_id, start_after, limit)?;
            to_json_binary(&data)?
        }
        QueryMsg::UserCollateralsV2 {
            user,
            account_id,
            start_after,
            limit,
        } => {
            let user = deps.api.addr_validate(&user)?;
            let (data, has_more) =
                user_collaterals(deps, now, &user, account_id, start_after, limit)?;
            to_json_binary(&PaginationResponse {
                data,
                metadata: Metadata { has_more },
            })?
        }
        QueryMsg::UserPosition { user, account_id } => to_json_binary(&user_position(
            deps,
            now,
            &user,
            account_id,
            ActionKind::Default,
        )?)?,
        QueryMsg::UserPositionLiquidationPricing { user, account_id } => to_json_binary(
            &user_position(deps, now, &user, account_id, ActionKind::Liquidation)?,
        )?,
        QueryMsg::ScaledLiquidityAmount { denom, amount } => to_json_binary(
            &interest::scaled_liquidity_amount(amount, &load_market(deps, &denom)?, now)?,
        )?,
        QueryMsg::ScaledDebtAmount { denom, amount } => to_json_binary(
            &interest::scaled_debt_amount(amount, &load_market(deps, &denom)?, now)?,
        )?,
        QueryMsg::UnderlyingLiquidityAmount {
            denom,
            amount_scaled,
        } => to_json_binary(&interest::underlying_liquidity_amount(
            amount_scaled,
            &load_market(deps, &denom)?,
            now,
        )?)?,
        QueryMsg::UnderlyingDebtAmount {
            denom,
            amount_scaled,
        } => to_json_binary(&interest::underlying_debt_amount(
            amount_scaled,
            &load_market(deps, &denom)?,
            now,
        )?)?,
    })
}

fn market_v2(market: Market, now: u64) -> RedBankResult<MarketV2Response> {
    let collateral_total_amount =
        interest::underlying_liquidity_amount(market.collateral_total_scaled, &market, now)?;
    let debt_total_amount =
        interest::underlying_debt_amount(market.debt_total_scaled, &market, now)?;
    let utilization_rate = if collateral_total_amount.is_zero() {
        Decimal::zero()
    } else {
        Decimal::from_ratio(debt_total_amount, collateral_total_amount)
    };
    Ok(MarketV2Response {
        collateral_total_amount,
        debt_total_amount,
        utilization_rate,
        market,
    })
}

fn user_debts(
    deps: Deps,
    now: u64,
    user: &Addr,
    start_after: Option<String>,
    limit: Option<u32>,
) -> RedBankResult<Vec<UserDebtResponse>> {
    let start = start_after.as_deref().map(Bound::exclusive);
    DEBTS
        .prefix(user)
        .range(deps.storage, start, None, Order::Ascending)
        .take(page_limit(limit))
        .map(|item| {
            let (denom, debt) = item?;
            let market = load_market(deps, &denom)?;
            Ok(UserDebtResponse {
                amount: interest::underlying_debt_amount(debt.amount_scaled, &market, now)?,
                amount_scaled: debt.amount_scaled,
                uncollateralized: debt.uncollateralized,
                denom,
            })
        })
        .collect()
}

fn user_collaterals(
    deps: Deps,
    now: u64,
    user: &Addr,
    account_id: Option<String>,
    start_after: Option<String>,
    limit: Option<u32>,
) -> RedBankResult<(Vec<UserCollateralResponse>, bool)> {
    let key = user_key(user, account_id.as_deref().unwrap_or(""));
    let start = start_after.as_deref().map(Bound::exclusive);
    let limit = page_limit(limit);
    let mut entries = COLLATERALS
        .prefix(&key)
        .range(deps.storage, start, None, Order::Ascending)
        .take(limit + 1)
        .collect::<StdResult<Vec<_>>>()?;
    let has_more = entries.len() > limit;
    entries.truncate(limit);
    let data = entries
        .into_iter()
        .map(|(denom, collateral)| {
            let market = load_market(deps, &denom)?;
            Ok(UserCollateralResponse {
                amount: interest::underlying_liquidity_amount(
                    collateral.amount_scaled,
                    &market,
                    now,
                )?,
                amount_scaled: collateral.amount_scaled,
                enabled: collateral.enabled,
                denom,
            })
        })
        .collect::<RedBankResult<Vec<_>>>()?;
    Ok((data, has_more))
}

fn user_position(
    deps: Deps,
    now: u64,
    user: &str,
    account_id: Option<String>,
    kind: ActionKind,
) -> RedBankResult<mars::msg::red_bank::UserPositionResponse> {
    let user = deps.api.addr_validate(user)?;
    let peers = Peers::load(deps)?;
    let positions = PricedPositions::load(
        deps,
        now,
        &user,
        account_id.as_deref().unwrap_or(""),
        peers.oracle()?,
        peers.params()?,
        kind,
    )?;
    Ok(user_position_figures(&positions.health()?))
}
