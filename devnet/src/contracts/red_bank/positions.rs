//! A user's positions priced for health, as the Red Bank's `health.rs` gathers them: every
//! denom the user holds collateral or debt in, its underlying amounts at this block, its asset
//! params and an oracle price of the requested kind.

use std::collections::{BTreeSet, HashMap};

use cosmwasm_std::{Addr, Decimal, Deps, Order, StdResult, Uint128};
use mars::math::{health, interest};
use mars::msg::oracle::{self, ActionKind, PriceResponse};
use mars::msg::params;
use mars::rule::RepayLimit;
use mars::types::{AssetParams, DenomPosition, Health};

use super::peers::Peers;
use super::state::{user_key, COLLATERALS, DEBTS, MARKETS};
use super::{RedBankError, RedBankResult};

pub struct PricedPositions {
    pub holdings: Vec<DenomPosition>,
    pub prices: HashMap<String, Decimal>,
    pub params: HashMap<String, AssetParams>,
}

impl PricedPositions {
    /// Loads `user`'s positions at `now` with prices of `kind`.
    pub fn load(
        deps: Deps,
        now: u64,
        user: &Addr,
        account_id: &str,
        peers: &Peers,
        kind: ActionKind,
    ) -> RedBankResult<Self> {
        let oracle = peers.oracle()?;
        let params = peers.params()?;
        let key = user_key(user, account_id);
        let mut denoms: BTreeSet<String> = COLLATERALS
            .prefix(&key)
            .keys(deps.storage, None, None, Order::Ascending)
            .collect::<StdResult<_>>()?;
        denoms.extend(
            DEBTS
                .prefix(user)
                .keys(deps.storage, None, None, Order::Ascending)
                .collect::<StdResult<Vec<_>>>()?,
        );

        let mut positions = PricedPositions {
            holdings: Vec::with_capacity(denoms.len()),
            prices: HashMap::new(),
            params: HashMap::new(),
        };
        for denom in denoms {
            let market = load_market(deps, &denom)?;
            let (collateral_amount, collateral_enabled) = match COLLATERALS
                .may_load(deps.storage, (&key, &denom))?
            {
                Some(collateral) => (
                    interest::underlying_liquidity_amount(collateral.amount_scaled, &market, now)?,
                    collateral.enabled,
                ),
                None => (Uint128::zero(), false),
            };
            let (debt_amount, uncollateralized_debt) =
                match DEBTS.may_load(deps.storage, (user, &denom))? {
                    Some(debt) => (
                        interest::underlying_debt_amount(debt.amount_scaled, &market, now)?,
                        debt.uncollateralized,
                    ),
                    None => (Uint128::zero(), false),
                };
            positions.price_denom(deps, &denom, oracle, params, kind)?;
            positions.holdings.push(DenomPosition {
                denom,
                collateral_amount,
                collateral_enabled,
                debt_amount,
                uncollateralized_debt,
            });
        }
        Ok(positions)
    }

    /// Makes sure `denom` has a price and params, querying them if not yet known.
    pub fn add_priced_denom(
        &mut self,
        deps: Deps,
        denom: &str,
        peers: &Peers,
        kind: ActionKind,
    ) -> RedBankResult<()> {
        self.price_denom(deps, denom, peers.oracle()?, peers.params()?, kind)
    }

    fn price_denom(
        &mut self,
        deps: Deps,
        denom: &str,
        oracle: &Addr,
        params: &Addr,
        kind: ActionKind,
    ) -> RedBankResult<()> {
        if !self.params.contains_key(denom) {
            self.params
                .insert(denom.to_string(), query_asset_params(deps, params, denom)?);
        }
        if !self.prices.contains_key(denom) {
            self.prices
                .insert(denom.to_string(), query_price(deps, oracle, denom, kind)?);
        }
        Ok(())
    }

    pub fn holding_mut(&mut self, denom: &str) -> Option<&mut DenomPosition> {
        self.holdings.iter_mut().find(|h| h.denom == denom)
    }

    /// Health as mars-health computes it (disabled collateral and uncollateralized debt count
    /// as zero).
    pub fn health(&self) -> RedBankResult<Health> {
        let lines = health::red_bank_health_positions(
            &self.holdings,
            |denom| self.prices.get(denom).copied(),
            |denom| self.params.get(denom),
        )?;
        Ok(health::compute_health(&lines)?)
    }
}

pub fn load_market(deps: Deps, denom: &str) -> RedBankResult<mars::msg::red_bank::Market> {
    MARKETS
        .may_load(deps.storage, denom)?
        .ok_or_else(|| RedBankError::MarketNotFound {
            denom: denom.to_string(),
        })
}

pub fn query_asset_params(deps: Deps, params: &Addr, denom: &str) -> RedBankResult<AssetParams> {
    let found: Option<AssetParams> = deps.querier.query_wasm_smart(
        params,
        &params::QueryMsg::AssetParams {
            denom: denom.to_string(),
        },
    )?;
    found.ok_or_else(|| RedBankError::AssetParamsNotFound {
        denom: denom.to_string(),
    })
}

pub fn query_target_health_factor(deps: Deps, params: &Addr) -> RedBankResult<Decimal> {
    Ok(deps
        .querier
        .query_wasm_smart(params, &params::QueryMsg::TargetHealthFactor {})?)
}

/// The most one liquidation of `debt_params.denom` may repay: core-contracts (Neutron) caps it
/// at the debt asset's close factor, contracts v2.1 (Osmosis), whose params have none, at the
/// params contract's target health factor.
pub fn repay_limit(
    deps: Deps,
    params: &Addr,
    debt_params: &AssetParams,
) -> RedBankResult<RepayLimit> {
    Ok(match debt_params.close_factor {
        Some(close_factor) => RepayLimit::CloseFactor(close_factor),
        None => RepayLimit::TargetHealthFactor(query_target_health_factor(deps, params)?),
    })
}

pub fn query_price(
    deps: Deps,
    oracle: &Addr,
    denom: &str,
    kind: ActionKind,
) -> RedBankResult<Decimal> {
    deps.querier
        .query_wasm_smart::<PriceResponse>(
            oracle,
            &oracle::QueryMsg::Price {
                denom: denom.to_string(),
                kind: Some(kind),
            },
        )
        .map(|res| res.price)
        .map_err(|err| RedBankError::PriceQuery {
            denom: denom.to_string(),
            error: err.to_string(),
        })
}
