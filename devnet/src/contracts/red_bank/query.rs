//! Red Bank queries with Mars's names and answers (`contracts/red-bank/src/query.rs`).

use cosmwasm_std::{to_json_binary, Binary, Decimal, Deps, Env, Order, Uint128};
use cw_storage_plus::Bound;
use mars::math::{health::user_position_figures, interest, MathError};
use mars::msg::oracle::ActionKind;
use mars::msg::red_bank::{
    Collateral, ConfigResponse, Debt, Market, MarketV2Response, Metadata, PaginationResponse,
    QueryMsg, UserCollateralResponse, UserDebtResponse, UserPositionResponse,
};
use serde::Serialize;

use super::peers::Peers;
use super::positions::{load_market, PricedPositions};
use super::state::{user_key, COLLATERALS, CONFIG, DEBTS, MARKETS};
use super::RedBankResult;
use crate::contracts::support::{page_limit, page_values, page_with_more, OWNER};

pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> RedBankResult<Binary> {
    let q = Queries {
        deps,
        now: env.block.time.seconds(),
    };
    match msg {
        QueryMsg::Config {} => json(&q.config()?),
        QueryMsg::Market { denom } => json(&MARKETS.may_load(deps.storage, &denom)?),
        QueryMsg::MarketV2 { denom } => json(&q.market_v2(load_market(deps, &denom)?)?),
        QueryMsg::Markets { start_after, limit } => json(&page_values(
            deps.storage,
            &MARKETS,
            start_after.as_deref(),
            limit,
        )?),
        QueryMsg::MarketsV2 { start_after, limit } => json(&q.markets_v2(start_after, limit)?),
        QueryMsg::UserDebt { user, denom } => json(&q.user_debt(&user, denom)?),
        QueryMsg::UserDebts {
            user,
            start_after,
            limit,
        } => json(&q.user_debts(&user, start_after, limit)?),
        QueryMsg::UserCollateral {
            user,
            account_id,
            denom,
        } => json(&q.user_collateral(&user, account_id, denom)?),
        QueryMsg::UserCollaterals {
            user,
            account_id,
            start_after,
            limit,
        } => json(
            &q.user_collaterals(&user, account_id, start_after, limit)?
                .data,
        ),
        QueryMsg::UserCollateralsV2 {
            user,
            account_id,
            start_after,
            limit,
        } => json(&q.user_collaterals(&user, account_id, start_after, limit)?),
        QueryMsg::UserPosition { user, account_id } => {
            json(&q.user_position(&user, account_id, ActionKind::Default)?)
        }
        QueryMsg::UserPositionLiquidationPricing { user, account_id } => {
            json(&q.user_position(&user, account_id, ActionKind::Liquidation)?)
        }
        QueryMsg::ScaledLiquidityAmount { denom, amount } => {
            json(&q.convert(&denom, amount, interest::scaled_liquidity_amount)?)
        }
        QueryMsg::ScaledDebtAmount { denom, amount } => {
            json(&q.convert(&denom, amount, interest::scaled_debt_amount)?)
        }
        QueryMsg::UnderlyingLiquidityAmount {
            denom,
            amount_scaled,
        } => json(&q.convert(&denom, amount_scaled, interest::underlying_liquidity_amount)?),
        QueryMsg::UnderlyingDebtAmount {
            denom,
            amount_scaled,
        } => json(&q.convert(&denom, amount_scaled, interest::underlying_debt_amount)?),
    }
}

fn json<T: Serialize>(answer: &T) -> RedBankResult<Binary> {
    Ok(to_json_binary(answer)?)
}

/// The block the queries answer at.
struct Queries<'a> {
    deps: Deps<'a>,
    now: u64,
}

impl Queries<'_> {
    fn config(&self) -> RedBankResult<ConfigResponse> {
        Ok(ConfigResponse {
            owner: Some(OWNER.load(self.deps.storage)?.into_string()),
            proposed_new_owner: None,
            address_provider: CONFIG
                .load(self.deps.storage)?
                .address_provider
                .into_string(),
        })
    }

    fn market_v2(&self, market: Market) -> RedBankResult<MarketV2Response> {
        let collateral_total_amount = interest::underlying_liquidity_amount(
            market.collateral_total_scaled,
            &market,
            self.now,
        )?;
        let debt_total_amount =
            interest::underlying_debt_amount(market.debt_total_scaled, &market, self.now)?;
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

    fn markets_v2(
        &self,
        start_after: Option<String>,
        limit: Option<u32>,
    ) -> RedBankResult<PaginationResponse<MarketV2Response>> {
        let start = start_after.as_deref().map(Bound::exclusive);
        let entries = MARKETS
            .range(self.deps.storage, start, None, Order::Ascending)
            .map(|item| Ok(item?.1));
        let (markets, has_more) = page_with_more(entries, limit)?;
        let data = markets
            .into_iter()
            .map(|market| self.market_v2(market))
            .collect::<RedBankResult<Vec<_>>>()?;
        Ok(PaginationResponse {
            data,
            metadata: Metadata { has_more },
        })
    }

    fn user_debt(&self, user: &str, denom: String) -> RedBankResult<UserDebtResponse> {
        let user = self.deps.api.addr_validate(user)?;
        let debt = DEBTS
            .may_load(self.deps.storage, (&user, &denom))?
            .unwrap_or_default();
        self.debt_response(denom, debt)
    }

    fn user_debts(
        &self,
        user: &str,
        start_after: Option<String>,
        limit: Option<u32>,
    ) -> RedBankResult<Vec<UserDebtResponse>> {
        let user = self.deps.api.addr_validate(user)?;
        let start = start_after.as_deref().map(Bound::exclusive);
        DEBTS
            .prefix(&user)
            .range(self.deps.storage, start, None, Order::Ascending)
            .take(page_limit(limit))
            .map(|item| {
                let (denom, debt) = item?;
                self.debt_response(denom, debt)
            })
            .collect()
    }

    fn debt_response(&self, denom: String, debt: Debt) -> RedBankResult<UserDebtResponse> {
        let market = load_market(self.deps, &denom)?;
        Ok(UserDebtResponse {
            amount: interest::underlying_debt_amount(debt.amount_scaled, &market, self.now)?,
            amount_scaled: debt.amount_scaled,
            uncollateralized: debt.uncollateralized,
            denom,
        })
    }

    fn user_collateral(
        &self,
        user: &str,
        account_id: Option<String>,
        denom: String,
    ) -> RedBankResult<UserCollateralResponse> {
        let key = self.user_key(user, account_id)?;
        let collateral = COLLATERALS
            .may_load(self.deps.storage, (&key, &denom))?
            .unwrap_or_default();
        self.collateral_response(denom, collateral)
    }

    fn user_collaterals(
        &self,
        user: &str,
        account_id: Option<String>,
        start_after: Option<String>,
        limit: Option<u32>,
    ) -> RedBankResult<PaginationResponse<UserCollateralResponse>> {
        let key = self.user_key(user, account_id)?;
        let start = start_after.as_deref().map(Bound::exclusive);
        let entries =
            COLLATERALS
                .prefix(&key)
                .range(self.deps.storage, start, None, Order::Ascending);
        let (entries, has_more) = page_with_more(entries, limit)?;
        let data = entries
            .into_iter()
            .map(|(denom, collateral)| self.collateral_response(denom, collateral))
            .collect::<RedBankResult<Vec<_>>>()?;
        Ok(PaginationResponse {
            data,
            metadata: Metadata { has_more },
        })
    }

    fn collateral_response(
        &self,
        denom: String,
        collateral: Collateral,
    ) -> RedBankResult<UserCollateralResponse> {
        let market = load_market(self.deps, &denom)?;
        Ok(UserCollateralResponse {
            amount: interest::underlying_liquidity_amount(
                collateral.amount_scaled,
                &market,
                self.now,
            )?,
            amount_scaled: collateral.amount_scaled,
            enabled: collateral.enabled,
            denom,
        })
    }

    /// The collateral key of `user`'s Red Bank account or credit account `account_id`.
    fn user_key(&self, user: &str, account_id: Option<String>) -> RedBankResult<Vec<u8>> {
        let user = self.deps.api.addr_validate(user)?;
        Ok(user_key(&user, account_id.as_deref().unwrap_or("")))
    }

    fn user_position(
        &self,
        user: &str,
        account_id: Option<String>,
        kind: ActionKind,
    ) -> RedBankResult<UserPositionResponse> {
        let user = self.deps.api.addr_validate(user)?;
        let peers = Peers::load(self.deps)?;
        let positions = PricedPositions::load(
            self.deps,
            self.now,
            &user,
            account_id.as_deref().unwrap_or(""),
            &peers,
            kind,
        )?;
        Ok(user_position_figures(&positions.health()?))
    }

    /// A scaled/underlying conversion at `denom`'s indexes of this block.
    fn convert(
        &self,
        denom: &str,
        amount: Uint128,
        conversion: fn(Uint128, &Market, u64) -> Result<Uint128, MathError>,
    ) -> RedBankResult<Uint128> {
        Ok(conversion(
            amount,
            &load_market(self.deps, denom)?,
            self.now,
        )?)
    }
}
