//! `liquidate`, step for step as Mars's `contracts/red-bank/src/liquidate.rs`, with the amounts
//! from `mars::math::liquidation` at the oracle's liquidation prices.
//!
//! The liquidator receives collateral *shares*: the seized collateral moves, scaled, from the
//! user's position to the recipient's (and the protocol fee to the rewards collector's), and
//! the underlying coins stay in the Red Bank until withdrawn. As in Mars (since Sep 2023), nothing
//! checks the user's health after the liquidation: one that lowers the health factor (an
//! account with `HF < LT_c·(1 + LB)`, underwater ones included) succeeds and pays the full bonus.

use cosmwasm_std::{
    Addr, BankMsg, Coin, Deps, DepsMut, Env, MessageInfo, Response, Storage, Uint128,
};
use mars::math::interest;
use mars::math::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use mars::msg::oracle::ActionKind;
use mars::msg::red_bank::{Collateral, Debt, Market};
use mars::rule::RepayLimit;
use mars::types::{Health, LiquidationAmounts};

use super::execute::recipient_or;
use super::interest::{accrue_market, save_with_new_rates};
use super::peers::Peers;
use super::positions::{load_market, repay_limit, PricedPositions};
use super::state::{
    decrease_collateral, decrease_debt, increase_collateral, user_key, COLLATERALS, DEBTS,
};
use super::{RedBankError, RedBankResult};
use crate::contracts::support::Coin128;

pub fn liquidate(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    user: Addr,
    collateral_denom: String,
    sent: Coin128,
    recipient: Option<String>,
) -> RedBankResult<Response> {
    let request = Request {
        now: env.block.time.seconds(),
        user,
        liquidator: info.sender,
        recipient,
        collateral_denom,
        sent,
    };
    let liquidation = Liquidation::new(deps.as_ref(), request)?;
    let held = liquidation.held(deps.as_ref())?;
    let figures = liquidation.figures(deps.as_ref(), &held)?;
    liquidation.move_collateral(deps.storage, &figures)?;
    let (response, debt_amount_scaled) = liquidation.reduce_debt(deps.storage, held, &figures)?;
    Ok(liquidation.respond(response, &figures, debt_amount_scaled))
}

/// The message as the liquidator sent it.
struct Request {
    now: u64,
    user: Addr,
    liquidator: Addr,
    recipient: Option<String>,
    collateral_denom: String,
    sent: Coin128,
}

/// One liquidation, with the peers it consults.
struct Liquidation {
    now: u64,
    user: Addr,
    user_key: Vec<u8>,
    liquidator: Addr,
    recipient: Addr,
    collateral_denom: String,
    debt_denom: String,
    sent_debt_amount: Uint128,
    peers: Peers,
    params: Addr,
    rewards_collector: Addr,
}

/// The user's collateral and debt in the two denoms, their markets before this block's
/// interest, and the health at liquidation prices (with the prices and params behind it).
struct Held {
    collateral: Collateral,
    debt: Debt,
    collateral_market: Market,
    debt_market: Market,
    positions: PricedPositions,
    health: Health,
}

/// What the liquidation takes and pays.
struct Figures {
    amounts: LiquidationAmounts,
    user_debt_amount: Uint128,
    protocol_fee: Uint128,
    refund_amount: Uint128,
    collateral_amount_scaled: Uint128,
    received_scaled: Uint128,
    protocol_fee_scaled: Uint128,
    /// core-contracts (close-factor params) also reports the prices used: (collateral, debt).
    reported_prices: Option<(cosmwasm_std::Decimal, cosmwasm_std::Decimal)>,
}

impl Liquidation {
    fn new(deps: Deps, request: Request) -> RedBankResult<Self> {
        let recipient = recipient_or(deps, request.recipient, &request.liquidator)?;
        let peers = Peers::load(deps)?;
        // Mars reads every peer before its first check: a missing one is the error.
        peers.oracle()?;
        let params = peers.params()?.clone();
        let rewards_collector = peers.rewards_collector()?.clone();
        Ok(Liquidation {
            now: request.now,
            user_key: user_key(&request.user, ""),
            user: request.user,
            liquidator: request.liquidator,
            recipient,
            collateral_denom: request.collateral_denom,
            debt_denom: request.sent.denom,
            sent_debt_amount: request.sent.amount,
            peers,
            params,
            rewards_collector,
        })
    }

    /// Validates the request, then requires the user to be liquidatable at liquidation prices.
    fn held(&self, deps: Deps) -> RedBankResult<Held> {
        let (collateral, debt, collateral_market) = self.validate(deps)?;
        let positions = PricedPositions::load(
            deps,
            self.now,
            &self.user,
            "",
            &self.peers,
            ActionKind::Liquidation,
        )?;
        let health = positions.health()?;
        if !health.is_liquidatable() {
            return Err(RedBankError::CannotLiquidateHealthyPosition {});
        }
        let debt_market = if self.debt_denom != self.collateral_denom {
            load_market(deps, &self.debt_denom)?
        } else {
            collateral_market.clone()
        };
        Ok(Held {
            collateral,
            debt,
            collateral_market,
            debt_market,
            positions,
            health,
        })
    }

    fn validate(&self, deps: Deps) -> RedBankResult<(Collateral, Debt, Market)> {
        if self.liquidator == self.user {
            return Err(RedBankError::CannotLiquidateSelf {});
        }
        if self.peers.is_credit_manager(&self.user) {
            return Err(RedBankError::CannotLiquidateCreditManager {});
        }
        let collateral = COLLATERALS
            .may_load(deps.storage, (&self.user_key, &self.collateral_denom))?
            .ok_or(RedBankError::CannotLiquidateWhenNoCollateralBalance {})?;
        if !collateral.enabled {
            return Err(RedBankError::CannotLiquidateWhenCollateralUnset {
                denom: self.collateral_denom.clone(),
            });
        }
        let debt = DEBTS
            .may_load(deps.storage, (&self.user, &self.debt_denom))?
            .ok_or(RedBankError::CannotLiquidateWhenNoDebtBalance {})?;
        let collateral_market = load_market(deps, &self.collateral_denom)?;
        Ok((collateral, debt, collateral_market))
    }

    /// The amounts, from the user's underlying positions at this block.
    fn figures(&self, deps: Deps, held: &Held) -> RedBankResult<Figures> {
        let now = self.now;
        let collateral_price = *held
            .positions
            .prices
            .get(&self.collateral_denom)
            .ok_or(RedBankError::CannotLiquidateWhenNoCollateralBalance {})?;
        let debt_price = *held
            .positions
            .prices
            .get(&self.debt_denom)
            .ok_or(RedBankError::CannotLiquidateWhenNoDebtBalance {})?;
        let collateral_params = held
            .positions
            .params
            .get(&self.collateral_denom)
            .ok_or(RedBankError::CannotLiquidateWhenNoCollateralBalance {})?;
        let user_debt_amount =
            interest::underlying_debt_amount(held.debt.amount_scaled, &held.debt_market, now)?;
        let user_collateral_amount = interest::underlying_liquidity_amount(
            held.collateral.amount_scaled,
            &held.collateral_market,
            now,
        )?;
        let debt_params = held
            .positions
            .params
            .get(&self.debt_denom)
            .ok_or(RedBankError::CannotLiquidateWhenNoDebtBalance {})?;
        let repay_limit = repay_limit(deps, &self.params, debt_params)?;
        let reported_prices = matches!(repay_limit, RepayLimit::CloseFactor(_))
            .then_some((collateral_price, debt_price));
        let amounts = calculate_liquidation_amounts(&LiquidationInput {
            collateral_amount: user_collateral_amount,
            collateral_price,
            collateral_params,
            debt_amount: user_debt_amount,
            debt_requested_to_repay: self.sent_debt_amount,
            debt_price,
            repay_limit,
            health: &held.health,
        })?;
        let protocol_fee = amounts.protocol_fee();
        let refund_amount = self
            .sent_debt_amount
            .checked_sub(amounts.debt_amount_to_repay)?;
        let scaled =
            |amount| interest::scaled_liquidity_amount(amount, &held.collateral_market, now);
        Ok(Figures {
            collateral_amount_scaled: scaled(amounts.collateral_amount_to_liquidate)?,
            received_scaled: scaled(amounts.collateral_amount_received_by_liquidator)?,
            protocol_fee_scaled: scaled(protocol_fee)?,
            amounts,
            user_debt_amount,
            protocol_fee,
            refund_amount,
            reported_prices,
        })
    }

    /// Moves collateral shares to the recipient and the rewards collector.
    fn move_collateral(&self, storage: &mut dyn Storage, figures: &Figures) -> RedBankResult<()> {
        let denom = &self.collateral_denom;
        decrease_collateral(
            storage,
            &self.user_key,
            denom,
            figures.collateral_amount_scaled,
        )?;
        increase_collateral(
            storage,
            &user_key(&self.recipient, ""),
            denom,
            figures.received_scaled,
        )?;
        if !figures.protocol_fee.is_zero() {
            increase_collateral(
                storage,
                &user_key(&self.rewards_collector, ""),
                denom,
                figures.protocol_fee_scaled,
            )?;
        }
        Ok(())
    }

    /// Reduces the user's debt and updates the debt market. Returns the response so far and the
    /// scaled debt repaid.
    fn reduce_debt(
        &self,
        storage: &mut dyn Storage,
        held: Held,
        figures: &Figures,
    ) -> RedBankResult<(Response, Uint128)> {
        let now = self.now;
        let debt_market = held.debt_market;
        let user_debt_after = figures
            .user_debt_amount
            .checked_sub(figures.amounts.debt_amount_to_repay)?;
        let user_debt_scaled_after =
            interest::scaled_debt_amount(user_debt_after, &debt_market, now)?;
        let debt_amount_scaled_delta = held
            .debt
            .amount_scaled
            .checked_sub(user_debt_scaled_after)?;
        decrease_debt(
            storage,
            &self.user,
            &self.debt_denom,
            debt_amount_scaled_delta,
        )?;
        let market_debt_total_scaled_after = debt_market
            .debt_total_scaled
            .checked_sub(debt_amount_scaled_delta)?;

        let mut debt_market_after = debt_market;
        accrue_market(
            storage,
            now,
            &mut debt_market_after,
            &self.rewards_collector,
        )?;
        debt_market_after.debt_total_scaled = market_debt_total_scaled_after;
        let response = save_with_new_rates(
            storage,
            now,
            &self.debt_denom,
            &mut debt_market_after,
            Response::new(),
        )?;
        Ok((response, debt_amount_scaled_delta))
    }

    /// Refunds what was sent beyond the repaid debt, and reports.
    fn respond(
        self,
        mut response: Response,
        figures: &Figures,
        debt_amount_scaled: Uint128,
    ) -> Response {
        if !figures.refund_amount.is_zero() {
            response = response.add_message(BankMsg::Send {
                to_address: self.liquidator.to_string(),
                amount: vec![Coin::new(figures.refund_amount, self.debt_denom.clone())],
            });
        }
        let price = |index: usize| {
            figures
                .reported_prices
                .map(|prices| [prices.0, prices.1][index].to_string())
        };
        let mut attributes = vec![
            ("action", Some("liquidate".to_string())),
            ("user", Some(self.user.to_string())),
            ("liquidator", Some(self.liquidator.to_string())),
            ("recipient", Some(self.recipient.to_string())),
            ("collateral_denom", Some(self.collateral_denom.clone())),
            (
                "collateral_amount",
                Some(figures.amounts.collateral_amount_to_liquidate.to_string()),
            ),
            (
                "collateral_amount_scaled",
                Some(figures.collateral_amount_scaled.to_string()),
            ),
            ("collateral_price", price(0)),
            ("debt_denom", Some(self.debt_denom.clone())),
            (
                "debt_amount",
                Some(figures.amounts.debt_amount_to_repay.to_string()),
            ),
            ("debt_amount_scaled", Some(debt_amount_scaled.to_string())),
            ("debt_price", price(1)),
        ];
        // core-contracts also reports the protocol fee.
        if figures.reported_prices.is_some() {
            attributes.extend([
                ("protocol_fee_denom", Some(self.collateral_denom.clone())),
                (
                    "protocol_fee_amount",
                    Some(figures.protocol_fee.to_string()),
                ),
                (
                    "protocol_fee_amount_scaled",
                    Some(figures.protocol_fee_scaled.to_string()),
                ),
            ]);
        }
        response.add_attributes(
            attributes
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| (key, value))),
        )
    }
}
