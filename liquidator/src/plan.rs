//! Choosing what to repay and what to seize, and exactly how much to send.
//!
//! For every pair of a debt denom the account owes and a collateral denom it has enabled, the
//! contract's own `calculate_liquidation_amounts` (target health factor, dynamic bonus, protocol
//! fee) gives what a liquidation would repay and pay out; the pair with the highest profit at
//! oracle prices wins.
//!
//! The liquidation executes at the time of its block, not of the check, so every bound on the
//! repayable debt (the debt itself, the target-health cap, the collateral) is evaluated at every
//! second of the inclusion window (the snapshot block's second to a few blocks later); the
//! amount sent is the smallest result, less a millionth against rate moves by other txs in
//! between, so the contract takes all of it and refunds nothing.
//!
//! The Red Bank does not look at the account's health after a liquidation: one that lowers the
//! health factor (`HF < LT_c·(1 + LB)`, accounts under water among them) is accepted and pays the
//! full bonus, so such pairs are planned like any other. The health after is still replayed with
//! the contract's scaled bookkeeping, to tell whether a liquidation leaves the account
//! liquidatable.

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Uint128};
use mars::math::health::{compute_health, red_bank_health_positions};
use mars::math::interest::{scaled_debt_amount, scaled_liquidity_amount, underlying_debt_amount};
use mars::math::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use mars::math::MathError;
use mars::types::{DenomPosition, Health, HealthPosition, LiquidationAmounts};
use serde::Serialize;

use crate::recheck::{AccountPosition, MarketSnapshot, ReadError};
use mars::value::{Value, ValueError};

/// One liquidation, ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub account: String,
    pub debt_denom: String,
    pub collateral_denom: String,
    /// Exactly the debt coin to attach: the contract repays all of it (no refund).
    pub debt_to_send: Uint128,
    /// What the contract will compute at the expected inclusion time.
    pub amounts: LiquidationAmounts,
    /// Received collateral value minus repaid debt value, at default oracle prices, before
    /// transaction fees.
    pub expected_profit: Value,
    pub health_before: Health,
    pub health_after: Health,
    /// Block time (seconds) the amounts were computed for.
    pub expected_at: u64,
    /// Set when the wallet's balance capped the repay below what unlimited funds would send:
    /// what it lacks for the full liquidation.
    pub shortfall: Option<Shortfall>,
}

/// Debt the wallet cannot repay right now: the plan it would make with unlimited funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shortfall {
    pub denom: String,
    /// What the best liquidation in this denom would send.
    pub wanted: Uint128,
    /// What the wallet can spend of it now.
    pub available: Uint128,
    /// That liquidation's profit (base units, before fees).
    pub expected_profit: Value,
    /// Profit per unit of capital: `expected_profit / value of wanted`, the order in which
    /// waiting jobs are served when funds come in.
    pub profit_per_capital: Value,
}

/// Why there is nothing to send for an account. Ordered from the most to the least telling,
/// which is the one reported when every pair fails differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoPlan {
    #[error("position has no debt")]
    NoDebt,
    #[error("position is healthy (liquidation health factor {health_factor})")]
    Healthy { health_factor: String },
    #[error("no enabled collateral to seize")]
    NoCollateral,
    #[error("wallet holds none of the debt to repay ({} short)", short_summary(.short))]
    NoFunds { short: Vec<Shortfall> },
    #[error("no profitable liquidation (best profit {best_profit} in base units)")]
    Unprofitable { best_profit: String },
    #[error("{0}")]
    Math(String),
}

impl NoPlan {
    /// A verdict that holds while prices do not move (worth remembering for a while), as
    /// opposed to one that a later block's rounding or the wallet's funds may change.
    pub fn is_settled(&self) -> bool {
        matches!(self, NoPlan::NoCollateral | NoPlan::Unprofitable { .. })
    }

    /// Expected outcomes of a race or of the position itself, logged quietly.
    pub fn is_stale(&self) -> bool {
        matches!(self, NoPlan::NoDebt | NoPlan::Healthy { .. })
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            NoPlan::NoDebt => "no_debt",
            NoPlan::Healthy { .. } => "healthy",
            NoPlan::NoCollateral => "no_collateral",
            NoPlan::NoFunds { .. } => "no_funds",
            NoPlan::Unprofitable { .. } => "unprofitable",
            NoPlan::Math(_) => "math_error",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            NoPlan::NoDebt => 0,
            NoPlan::Healthy { .. } => 1,
            NoPlan::NoCollateral => 2,
            NoPlan::NoFunds { .. } => 3,
            NoPlan::Unprofitable { .. } => 4,
            NoPlan::Math(_) => 5,
        }
    }
}

fn short_summary(short: &[Shortfall]) -> String {
    short
        .iter()
        .map(|s| format!("{}{}", s.wanted.saturating_sub(s.available), s.denom))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<MathError> for NoPlan {
    fn from(e: MathError) -> Self {
        match e {
            // Dust: the contract would refuse to take debt for no collateral (or the reverse).
            MathError::InvalidLiquidationAmounts { .. } => NoPlan::Unprofitable {
                best_profit: "0 (dust: nothing would be seized)".into(),
            },
            other => NoPlan::Math(other.to_string()),
        }
    }
}

impl From<ValueError> for NoPlan {
    fn from(e: ValueError) -> Self {
        NoPlan::Math(e.to_string())
    }
}

impl From<ReadError> for NoPlan {
    fn from(e: ReadError) -> Self {
        NoPlan::Math(e.to_string())
    }
}

/// The most profitable plan seen, or the most telling reason none was.
#[derive(Default)]
struct Best {
    plan: Option<Plan>,
    reason: Option<NoPlan>,
}

impl Best {
    fn offer(&mut self, outcome: Result<Plan, NoPlan>) {
        match outcome {
            Ok(plan) => {
                if self
                    .plan
                    .as_ref()
                    .is_none_or(|b| plan.expected_profit > b.expected_profit)
                {
                    self.plan = Some(plan);
                }
            }
            Err(why) => {
                if self.reason.as_ref().is_none_or(|r| why.rank() < r.rank()) {
                    self.reason = Some(why);
                }
            }
        }
    }
}

/// Health inputs and health of `holdings` at the snapshot's liquidation prices.
fn price(
    snapshot: &MarketSnapshot,
    holdings: &[DenomPosition],
) -> Result<(Vec<HealthPosition>, Health), NoPlan> {
    let positions = red_bank_health_positions(
        holdings,
        |denom| snapshot.liquidation_prices.get(denom).copied(),
        |denom| snapshot.params.get(denom),
    )?;
    let health = compute_health(&positions)?;
    Ok((positions, health))
}

/// The account priced at one block time.
struct PricedAt {
    /// Block time (seconds).
    time: u64,
    positions: Vec<HealthPosition>,
    holdings: Vec<DenomPosition>,
    health: Health,
}

/// Most block times (seconds) of the inclusion window that are priced: every second of a short
/// window, an even sample of a long one (ends included).
const MAX_WINDOW_POINTS: u64 = 32;

/// An account's position priced at every second a liquidation sent now may execute at.
pub struct PlanContext<'a> {
    snapshot: &'a MarketSnapshot,
    account: String,
    /// The stored (scaled) position, to replay the contract's bookkeeping exactly.
    position: AccountPosition,
    /// In time order; the first is the earliest inclusion time, the last the latest planned.
    points: Vec<PricedAt>,
}

impl<'a> PlanContext<'a> {
    /// Prices the account at block times from `earliest` to `latest` (seconds).
    pub fn new(
        snapshot: &'a MarketSnapshot,
        position: &AccountPosition,
        earliest: u64,
        latest: u64,
    ) -> Result<Self, NoPlan> {
        let latest = latest.max(earliest);
        let span = latest - earliest;
        let mut times: Vec<u64> = if span < MAX_WINDOW_POINTS {
            (earliest..=latest).collect()
        } else {
            (0..MAX_WINDOW_POINTS)
                .map(|i| earliest + span * i / (MAX_WINDOW_POINTS - 1))
                .collect()
        };
        times.dedup();
        let points = times
            .into_iter()
            .map(|time| {
                let holdings = position.holdings_at(snapshot, time)?;
                let (positions, health) = price(snapshot, &holdings)?;
                Ok(PricedAt {
                    time,
                    positions,
                    holdings,
                    health,
                })
            })
            .collect::<Result<Vec<_>, NoPlan>>()?;
        Ok(PlanContext {
            snapshot,
            account: position.account.clone(),
            position: position.clone(),
            points,
        })
    }

    fn latest(&self) -> &PricedAt {
        self.points.last().expect("a window has at least one point")
    }

    /// Health at the latest planned inclusion time (liquidation prices).
    pub fn health(&self) -> &Health {
        &self.latest().health
    }

    /// Liquidatable all through the window: otherwise the tx may land on a healthy account.
    fn check_liquidatable(&self) -> Result<(), NoPlan> {
        for point in &self.points {
            match point.health.liquidation_health_factor {
                None => return Err(NoPlan::NoDebt),
                Some(hf) if hf >= Decimal::one() => {
                    return Err(NoPlan::Healthy {
                        health_factor: hf.to_string(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Debt denoms the account owes (counted in health).
    pub fn debt_denoms(&self) -> Vec<String> {
        self.latest()
            .positions
            .iter()
            .filter(|p| !p.debt_amount.is_zero())
            .map(|p| p.denom.clone())
            .collect()
    }

    fn collateral_denoms(&self) -> Vec<String> {
        self.latest()
            .positions
            .iter()
            .filter(|p| !p.collateral_amount.is_zero())
            .map(|p| p.denom.clone())
            .collect()
    }

    fn amounts(
        &self,
        at: &PricedAt,
        debt_denom: &str,
        collateral_denom: &str,
        requested: Uint128,
    ) -> Result<LiquidationAmounts, NoPlan> {
        let line = |denom: &str| {
            at.positions
                .iter()
                .find(|p| p.denom == denom)
                .ok_or_else(|| NoPlan::Math(format!("no position line for `{denom}`")))
        };
        let collateral = line(collateral_denom)?;
        let debt = line(debt_denom)?;
        let params = self
            .snapshot
            .params
            .get(collateral_denom)
            .ok_or_else(|| NoPlan::Math(format!("no asset params for `{collateral_denom}`")))?;
        Ok(calculate_liquidation_amounts(&LiquidationInput {
            collateral_amount: collateral.collateral_amount,
            collateral_price: collateral.price,
            collateral_params: params,
            debt_amount: debt.debt_amount,
            debt_requested_to_repay: requested,
            debt_price: debt.price,
            repay_limit: self.snapshot.repay_limit(debt_denom)?,
            health: &at.health,
        })?)
    }

    /// The account's health after the liquidation, as the contract books it: the seized
    /// collateral leaves the scaled deposit (`scaled(seized)`, truncated) and the debt is
    /// re-scaled from what is left (ceiled), then both are read back at the same block time.
    fn health_after(
        &self,
        at: &PricedAt,
        debt_denom: &str,
        collateral_denom: &str,
        amounts: &LiquidationAmounts,
    ) -> Result<Health, NoPlan> {
        let mut after = self.position.clone();
        let collateral_market = self.snapshot.market(&self.account, collateral_denom)?;
        let seized_scaled = scaled_liquidity_amount(
            amounts.collateral_amount_to_liquidate,
            collateral_market,
            at.time.max(collateral_market.indexes_last_updated),
        )?;
        let collateral = after
            .collaterals
            .iter_mut()
            .find(|c| c.denom == collateral_denom)
            .ok_or_else(|| NoPlan::Math(format!("no `{collateral_denom}` collateral")))?;
        collateral.amount_scaled = collateral
            .amount_scaled
            .checked_sub(seized_scaled)
            .map_err(|e| NoPlan::Math(format!("collateral left after liquidation: {e}")))?;
        let debt_market = self.snapshot.market(&self.account, debt_denom)?;
        let debt = after
            .debts
            .iter_mut()
            .find(|d| d.denom == debt_denom)
            .ok_or_else(|| NoPlan::Math(format!("no `{debt_denom}` debt")))?;
        let owed = underlying_debt_amount(debt.amount_scaled, debt_market, at.time)?;
        let left = owed
            .checked_sub(amounts.debt_amount_to_repay)
            .map_err(|e| NoPlan::Math(format!("debt left after liquidation: {e}")))?;
        debt.amount_scaled = scaled_debt_amount(left, debt_market, at.time)?;
        let holdings = after.holdings_at(self.snapshot, at.time)?;
        let (_, health_after) = price(self.snapshot, &holdings)?;
        Ok(health_after)
    }

    /// Sends `send` through every point of the window: the contract must repay exactly `send`
    /// at each. Returns the amounts and the health after at the latest point.
    fn checked_send(
        &self,
        debt_denom: &str,
        collateral_denom: &str,
        send: Uint128,
    ) -> Result<(LiquidationAmounts, Health), NoPlan> {
        let mut result = None;
        for point in &self.points {
            let amounts = self.amounts(point, debt_denom, collateral_denom, send)?;
            if amounts.debt_amount_to_repay != send {
                return Err(NoPlan::Math(format!(
                    "repay {} differs from the amount sent {send}",
                    amounts.debt_amount_to_repay
                )));
            }
            result = Some((point, amounts));
        }
        let (point, amounts) = result.ok_or_else(|| NoPlan::Math("empty window".into()))?;
        let after = self.health_after(point, debt_denom, collateral_denom, &amounts)?;
        Ok((amounts, after))
    }

    /// The most the contract would repay of `debt_denom` for `collateral_denom` anywhere in the
    /// window when offered `max_send`.
    fn repay_bound(
        &self,
        debt_denom: &str,
        collateral_denom: &str,
        max_send: Uint128,
    ) -> Result<Uint128, NoPlan> {
        let mut bound = max_send;
        for point in &self.points {
            let amounts = self.amounts(point, debt_denom, collateral_denom, max_send)?;
            bound = bound.min(amounts.debt_amount_to_repay);
        }
        Ok(bound)
    }

    /// The liquidation of `debt_denom` for `collateral_denom` sending at most `max_send`.
    ///
    /// The amount is the smallest the contract would repay anywhere in the window; when one of
    /// the contract's bounds (debt, target health, collateral) sets it, less a millionth (at
    /// least one unit), so that rate moves by other txs in between cannot make the contract
    /// take less (a refund).
    pub fn plan_pair(
        &self,
        debt_denom: &str,
        collateral_denom: &str,
        max_send: Uint128,
    ) -> Result<Plan, NoPlan> {
        self.check_liquidatable()?;
        if max_send.is_zero() {
            return Err(NoPlan::NoFunds { short: Vec::new() });
        }
        let bound = self.repay_bound(debt_denom, collateral_denom, max_send)?;
        if bound.is_zero() {
            return Err(NoPlan::Unprofitable {
                best_profit: "0".into(),
            });
        }
        // Only a bound of the contract's can move under us; what the caller offers cannot.
        let margin = if bound < max_send {
            (bound / Uint128::new(1_000_000)).max(Uint128::one())
        } else {
            Uint128::zero()
        };
        let with_margin = bound.saturating_sub(margin);
        let tried = if with_margin.is_zero() {
            Err(NoPlan::Unprofitable {
                best_profit: "0".into(),
            })
        } else {
            self.checked_send(debt_denom, collateral_denom, with_margin)
                .map(|ok| (with_margin, ok))
        };
        // A margin that would leave a liquidatable remnant (the collateral-bound case: a sliver
        // of collateral against the rest of the debt) is not worth it: that bound only grows
        // with time, so the exact amount is sent instead.
        let leaves_remnant = matches!(&tried, Ok((_, (_, after))) if after.is_liquidatable());
        let tried = match tried {
            Ok(ok) if leaves_remnant && !margin.is_zero() => {
                match self.checked_send(debt_denom, collateral_denom, bound) {
                    Ok(exact) if !exact.1.is_liquidatable() => (bound, exact),
                    _ => ok,
                }
            }
            Ok(ok) => ok,
            Err(_) => (
                bound,
                self.checked_send(debt_denom, collateral_denom, bound)?,
            ),
        };
        let (send, (amounts, health_after)) = tried;

        let prices = &self.snapshot.prices;
        let received = prices.value(
            collateral_denom,
            amounts.collateral_amount_received_by_liquidator,
        )?;
        let repaid = prices.value(debt_denom, amounts.debt_amount_to_repay)?;
        Ok(Plan {
            account: self.account.clone(),
            debt_denom: debt_denom.to_string(),
            collateral_denom: collateral_denom.to_string(),
            debt_to_send: send,
            amounts,
            expected_profit: received - repaid,
            health_before: self.latest().health.clone(),
            health_after,
            expected_at: self.latest().time,
            shortfall: None,
        })
    }

    /// The debt the account owes in `denom` at the latest planned time.
    fn owed(&self, denom: &str) -> Uint128 {
        self.latest()
            .holdings
            .iter()
            .find(|h| h.denom == denom)
            .map(|h| h.debt_amount)
            .unwrap_or_default()
    }

    /// The most profitable plan over every collateral, repaying up to `max_send` of
    /// `debt_denom`; the reason of the most telling failure otherwise.
    fn best_for_debt(
        &self,
        debt_denom: &str,
        collaterals: &[String],
        max_send: Uint128,
    ) -> Result<Plan, NoPlan> {
        let mut best = Best::default();
        for collateral_denom in collaterals {
            best.offer(self.plan_pair(debt_denom, collateral_denom, max_send));
        }
        best.plan
            .ok_or_else(|| best.reason.unwrap_or(NoPlan::NoCollateral))
    }

    /// What the wallet lacks to liquidate in `debt_denom`: the plan unlimited funds would make.
    fn shortfall(
        &self,
        debt_denom: &str,
        collaterals: &[String],
        available: Uint128,
    ) -> Option<Shortfall> {
        let plan = self
            .best_for_debt(debt_denom, collaterals, self.owed(debt_denom))
            .ok()?;
        if plan.expected_profit <= Value::zero() {
            return None;
        }
        let capital = self
            .snapshot
            .prices
            .value(debt_denom, plan.debt_to_send)
            .ok()?;
        Some(Shortfall {
            denom: debt_denom.to_string(),
            wanted: plan.debt_to_send,
            available,
            expected_profit: plan.expected_profit,
            profit_per_capital: plan
                .expected_profit
                .checked_div(capital)
                .unwrap_or(Value::zero()),
        })
    }

    /// The most profitable liquidation given the wallet's spendable balance of each denom (a
    /// plan the wallet's balance capped carries its [`Plan::shortfall`]). When nothing the
    /// wallet can fund pays, but unlimited funds would, [`NoPlan::NoFunds`] says what it lacks.
    pub fn best_plan(&self, spendable: &BTreeMap<String, Uint128>) -> Result<Plan, NoPlan> {
        self.check_liquidatable()?;
        let collaterals = self.collateral_denoms();
        if collaterals.is_empty() {
            return Err(NoPlan::NoCollateral);
        }
        let mut best = Best::default();
        let mut short = Vec::new();
        for debt_denom in &self.debt_denoms() {
            let available = spendable.get(debt_denom).copied().unwrap_or_default();
            if available.is_zero() {
                short.extend(self.shortfall(debt_denom, &collaterals, available));
                continue;
            }
            let owed = self.owed(debt_denom);
            let mut funded = self.best_for_debt(debt_denom, &collaterals, available.min(owed));
            let capped = match &funded {
                Ok(plan) => available < owed && plan.debt_to_send >= available,
                Err(_) => available < owed,
            };
            if capped {
                // The wallet, not the contract, set the amount (or made it dust): say what it
                // lacks for the liquidation unlimited funds would make.
                let sent = funded.as_ref().map_or(Uint128::zero(), |p| p.debt_to_send);
                let lacking = self
                    .shortfall(debt_denom, &collaterals, available)
                    .filter(|s| s.wanted > sent);
                if let Ok(plan) = &mut funded {
                    plan.shortfall = lacking.clone();
                }
                short.extend(lacking);
            }
            best.offer(funded);
        }
        let Best { plan: best, reason } = best;
        match best {
            Some(plan) if plan.expected_profit > Value::zero() => Ok(plan),
            _ if !short.is_empty() => Err(NoPlan::NoFunds { short }),
            Some(plan) => Err(NoPlan::Unprofitable {
                best_profit: plan.expected_profit.to_string(),
            }),
            None => Err(reason.unwrap_or(NoPlan::Unprofitable {
                best_profit: "0".into(),
            })),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mars::msg::red_bank::{UserCollateralResponse, UserDebtResponse};
    use mars::types::Market;
    use mars::value::PriceBook;

    use testkit::fixtures::{asset_params as params, dec};

    pub(crate) fn snapshot(atom_price: &str) -> MarketSnapshot {
        let prices: BTreeMap<String, Decimal> = [
            ("uatom".to_string(), dec(atom_price)),
            ("uusdc".to_string(), dec("1")),
            ("uosmo".to_string(), dec("0.5")),
        ]
        .into();
        MarketSnapshot {
            height: 5,
            fingerprint: 0,
            block_time_secs: 1_000,
            markets: ["uatom", "uusdc", "uosmo"]
                .into_iter()
                .map(|d| {
                    (
                        d.to_string(),
                        Market {
                            denom: d.into(),
                            indexes_last_updated: 1_000,
                            ..Market::default()
                        },
                    )
                })
                .collect(),
            liquidation_prices: prices.clone(),
            prices: PriceBook::new(prices, 6),
            params: [
                ("uatom".to_string(), params("uatom", "0.7", "0.8")),
                ("uusdc".to_string(), params("uusdc", "0.75", "0.8")),
                ("uosmo".to_string(), params("uosmo", "0.55", "0.65")),
            ]
            .into(),
            liquidation_rule: mars::rule::LiquidationRule::TargetHealthFactor,
            target_health_factor: dec("1.05"),
        }
    }

    pub(crate) fn position(collateral: &[(&str, u128)], debt: &[(&str, u128)]) -> AccountPosition {
        AccountPosition {
            account: "osmo1user".into(),
            height: 5,
            collaterals: collateral
                .iter()
                .map(|(d, a)| UserCollateralResponse {
                    denom: d.to_string(),
                    amount_scaled: Uint128::new(a * 1_000_000),
                    amount: Uint128::new(*a),
                    enabled: true,
                })
                .collect(),
            debts: debt
                .iter()
                .map(|(d, a)| UserDebtResponse {
                    denom: d.to_string(),
                    amount_scaled: Uint128::new(a * 1_000_000),
                    amount: Uint128::new(*a),
                    uncollateralized: false,
                })
                .collect(),
        }
    }

    fn funds(amount: u128) -> BTreeMap<String, Uint128> {
        ["uatom", "uusdc", "uosmo"]
            .into_iter()
            .map(|d| (d.to_string(), Uint128::new(amount)))
            .collect()
    }

    /// The case measured on the Mars contracts (issue 2): ATOM at 7.5, HF 0.923; the
    /// target-health cap lets 30,000 uusdc be repaid for 4,400 uatom (4,360 to the liquidator).
    #[test]
    fn reproduces_the_measured_mars_case() {
        let snapshot = snapshot("7.5");
        let position = position(&[("uatom", 10_000)], &[("uusdc", 65_000)]);
        let context = PlanContext::new(&snapshot, &position, 1_000, 1_001).unwrap();
        let pair = context
            .plan_pair("uusdc", "uatom", Uint128::new(30_000))
            .unwrap();
        assert_eq!(pair.debt_to_send, Uint128::new(30_000));
        assert_eq!(
            pair.amounts.collateral_amount_to_liquidate,
            Uint128::new(4_400)
        );
        assert_eq!(
            pair.amounts.collateral_amount_received_by_liquidator,
            Uint128::new(4_360)
        );
        // 4,360 × 7.5 − 30,000 = 2,700.
        assert_eq!(pair.expected_profit.to_string(), "2700");

        // With unlimited funds the best plan repays up to the target-health cap, no more.
        let best = context.best_plan(&funds(1_000_000_000)).unwrap();
        assert_eq!(best.debt_denom, "uusdc");
        assert_eq!(best.collateral_denom, "uatom");
        assert!(best.debt_to_send > Uint128::new(30_000));
        assert!(best.debt_to_send < Uint128::new(65_000));
        let capped = context
            .plan_pair("uusdc", "uatom", Uint128::new(1_000_000_000))
            .unwrap();
        assert_eq!(capped.debt_to_send, best.debt_to_send);
        let hf_after = best.health_after.liquidation_health_factor.unwrap();
        assert!(
            hf_after >= dec("1.04") && hf_after <= dec("1.06"),
            "{hf_after}"
        );
    }

    #[test]
    fn healthy_and_debt_free_positions_have_no_plan() {
        let snapshot = snapshot("10");
        let healthy = position(&[("uatom", 10_000)], &[("uusdc", 65_000)]);
        let context = PlanContext::new(&snapshot, &healthy, 1_000, 1_001).unwrap();
        let err = context.best_plan(&funds(1_000_000)).unwrap_err();
        assert!(matches!(err, NoPlan::Healthy { .. }), "{err}");
        assert!(err.is_stale());

        let lender = position(&[("uatom", 10_000)], &[]);
        let context = PlanContext::new(&snapshot, &lender, 1_000, 1_001).unwrap();
        assert_eq!(context.best_plan(&funds(1)).unwrap_err(), NoPlan::NoDebt);
    }

    #[test]
    fn without_funds_of_the_debt_denom_there_is_no_plan() {
        let snapshot = snapshot("7.5");
        let position = position(&[("uatom", 10_000)], &[("uusdc", 65_000)]);
        let context = PlanContext::new(&snapshot, &position, 1_000, 1_001).unwrap();
        let mut wallet = funds(1_000_000);
        wallet.remove("uusdc");
        let err = context.best_plan(&wallet).unwrap_err();
        let NoPlan::NoFunds { short } = err else {
            panic!("{err}")
        };
        // What unlimited funds would send: the THF cap of the measured case, 48,529 (see
        // health-checker's profit tests), less the one-unit margin.
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].denom, "uusdc");
        assert_eq!(short[0].wanted, Uint128::new(48_528));
        assert_eq!(short[0].available, Uint128::zero());
        // A small balance still gives a (smaller) plan: exactly what the wallet holds, with
        // what it lacks for the full one.
        wallet.insert("uusdc".into(), Uint128::new(1_234));
        let plan = context.best_plan(&wallet).unwrap();
        assert_eq!(plan.debt_to_send, Uint128::new(1_234));
        let lacking = plan.shortfall.expect("capped by the wallet");
        assert_eq!(
            (lacking.wanted, lacking.available),
            (Uint128::new(48_528), Uint128::new(1_234))
        );
        // A dust balance (1 uusdc seizes nothing): no plan, but a wait for funds.
        wallet.insert("uusdc".into(), Uint128::new(1));
        let err = context.best_plan(&wallet).unwrap_err();
        assert!(matches!(err, NoPlan::NoFunds { .. }), "{err}");
        // Unlimited funds: the contract's cap sets the amount, nothing lacks.
        assert_eq!(
            context.best_plan(&funds(1_000_000)).unwrap().shortfall,
            None
        );
    }

    /// Under water (collateral worth less than the debt): the Red Bank liquidates anyway, at
    /// the minimum bonus, and the health factor falls. Numbers by hand from Mars's formulas.
    #[test]
    fn underwater_positions_are_liquidated_at_the_minimum_bonus() {
        let snapshot = snapshot("5");
        // 10,000 uatom × 5 = 50,000 against 65,000: HF = 40,000 / 65,000 = 0.615…, CR < 1, so
        // LB = min_lb = 0.02 and LT·(1 + LB) = 0.816 > HF: the health factor will fall.
        let position = position(&[("uatom", 10_000)], &[("uusdc", 65_000)]);
        let context = PlanContext::new(&snapshot, &position, 1_000, 1_001).unwrap();
        let plan = context.best_plan(&funds(1_000_000)).unwrap();
        assert_eq!(plan.amounts.liquidation_bonus, dec("0.02"));
        // Collateral bound ⌊⌊50,000 / 1.02⌋ / 1⌋ = 49,019 (the THF cap, 120,726, is higher),
        // less the one-unit margin: 49,018 sent.
        assert_eq!(plan.debt_to_send, Uint128::new(49_018));
        // Seized ⌊⌊49,018 · 1.02⌋ / 5⌋ = ⌊49,998 / 5⌋ = 9,999; fee ⌊⌈⌊980.36⌋ · 0.1⌉ / 5⌋ =
        // ⌊98 / 5⌋ = 19; received 9,980 uatom worth 49,900: profit 882.
        assert_eq!(
            plan.amounts.collateral_amount_received_by_liquidator,
            Uint128::new(9_980)
        );
        assert_eq!(plan.expected_profit.to_string(), "882");
        let before = plan.health_before.liquidation_health_factor.unwrap();
        let after = plan.health_after.liquidation_health_factor.unwrap();
        assert!(after < before, "{after} < {before}");
    }

    /// Two collaterals: the choice maximises profit over every pair.
    #[test]
    fn chooses_the_pair_that_pays_most() {
        let snapshot = snapshot("7.5");
        let position = position(&[("uatom", 6_000), ("uosmo", 40_000)], &[("uusdc", 50_000)]);
        let context = PlanContext::new(&snapshot, &position, 1_000, 1_001).unwrap();
        let best = context.best_plan(&funds(1_000_000)).unwrap();
        for collateral in ["uatom", "uosmo"] {
            let other = context
                .plan_pair("uusdc", collateral, Uint128::new(1_000_000))
                .unwrap();
            assert!(other.expected_profit <= best.expected_profit);
        }
        assert!(best.expected_profit > Value::zero());
    }

    /// Interest due between the check and the next block: the amount sent is what the earlier
    /// block allows, so the later one takes all of it (no refund).
    #[test]
    fn sends_what_both_ends_of_the_window_take() {
        let mut snapshot = snapshot("7.5");
        for market in snapshot.markets.values_mut() {
            market.borrow_rate = dec("0.5");
            market.liquidity_rate = dec("0.1");
        }
        // Repaying everything is capped by the debt, which grows with time.
        let position = position(&[("uatom", 100_000)], &[("uusdc", 610_000)]);
        let context = PlanContext::new(&snapshot, &position, 1_000, 1_000 + 3_600).unwrap();
        let plan = context.best_plan(&funds(10_000_000)).unwrap();
        let early = PlanContext::new(&snapshot, &position, 1_000, 1_000).unwrap();
        let late = PlanContext::new(&snapshot, &position, 4_600, 4_600).unwrap();
        for context in [early, late] {
            let at_end = context
                .plan_pair("uusdc", "uatom", plan.debt_to_send)
                .unwrap();
            assert_eq!(at_end.debt_to_send, plan.debt_to_send);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the position, a plan never sends more than the wallet has or the
            /// account owes, and the contract math at the expected time repays all of it.
            #[test]
            fn plans_send_exactly_what_is_repaid(
                collateral in 1_000u128..10_000_000,
                debt_share in 50u32..99,
                atom_price_permille in 3_000u64..12_000,
                wallet in 1u128..5_000_000,
            ) {
                let snapshot = snapshot(&Decimal::permille(atom_price_permille).to_string());
                // Debt worth a share of the collateral at the original price of 10.
                let debt = collateral * 10 * u128::from(debt_share) / 100;
                let position = position(&[("uatom", collateral)], &[("uusdc", debt)]);
                let context = PlanContext::new(&snapshot, &position, 1_000, 1_001).unwrap();
                if let Ok(plan) = context.best_plan(&funds(wallet)) {
                    prop_assert!(plan.debt_to_send <= Uint128::new(wallet));
                    prop_assert!(plan.debt_to_send <= Uint128::new(debt));
                    prop_assert_eq!(plan.amounts.debt_amount_to_repay, plan.debt_to_send);
                    prop_assert!(plan.expected_profit > Value::zero());
                }
            }
        }
    }
}
