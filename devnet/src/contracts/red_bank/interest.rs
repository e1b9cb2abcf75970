//! Index accrual and rate updates around `mars::math::interest`, with the Red Bank's
//! side effects: the reserve-factor reward credited to the rewards collector as collateral, and
//! the `interests_updated` event.

use cosmwasm_std::{Addr, Event, Response, Storage};
use mars::math::interest;
use mars::msg::red_bank::Market;

use super::state::{increase_collateral, user_key, MARKETS};
use super::RedBankResult;

/// Brings `market`'s indexes to `now` (seconds) and credits the protocol's share of the accrued
/// borrow interest to `rewards_collector` (Mars `apply_accumulated_interests`). Does not save
/// the market.
pub fn accrue_market(
    store: &mut dyn Storage,
    now: u64,
    market: &mut Market,
    rewards_collector: &Addr,
) -> RedBankResult<()> {
    let accrued = interest::apply_accumulated_interests(market, now)?;
    if !accrued.reward_amount_scaled.is_zero() {
        increase_collateral(
            store,
            &user_key(rewards_collector, ""),
            &market.denom,
            accrued.reward_amount_scaled,
        )?;
    }
    *market = accrued.market;
    Ok(())
}

/// Resets the market's rates from its utilization at `now` and records an
/// `interests_updated` event (Mars `update_interest_rates`). Does not save the market.
pub fn refresh_interest_rates(
    now: u64,
    market: &mut Market,
    response: Response,
) -> RedBankResult<Response> {
    *market = interest::update_interest_rates(market, now)?;
    Ok(response.add_event(
        Event::new("interests_updated")
            .add_attribute("denom", &market.denom)
            .add_attribute("borrow_index", market.borrow_index.to_string())
            .add_attribute("liquidity_index", market.liquidity_index.to_string())
            .add_attribute("borrow_rate", market.borrow_rate.to_string())
            .add_attribute("liquidity_rate", market.liquidity_rate.to_string()),
    ))
}

/// [`refresh_interest_rates`], then stores the market under `denom`: how every action that
/// changes a market's totals ends.
pub fn save_with_new_rates(
    store: &mut dyn Storage,
    now: u64,
    denom: &str,
    market: &mut Market,
    response: Response,
) -> RedBankResult<Response> {
    let response = refresh_interest_rates(now, market, response)?;
    MARKETS.save(store, denom, market)?;
    Ok(response)
}
