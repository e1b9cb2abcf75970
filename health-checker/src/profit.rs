//! The most profitable liquidation of a liquidatable account.
//!
//! Every `(debt denom, collateral denom)` pair the Red Bank would accept — debt owed in that
//! denom, collateral enabled and non-zero — is priced with
//! `mars::math::liquidation::calculate_liquidation_amounts` exactly as the contract's
//! `liquidate` calls it: liquidation prices, the collateral's params (bonus, protocol fee), the
//! target health factor, the account's whole debt in that denom sent. Pairs the contract would
//! refuse (nothing to repay or nothing to seize) are left out. A liquidation that lowers the
//! health factor is not refused: the Red Bank has no health check after a liquidation, and
//! accounts under water (collateral worth less than the debt) pay the bonus like any other.
//!
//! Profit of a pair = value of the collateral the liquidator receives (after the protocol fee)
//! − value of the debt repaid, both `amount · liquidation price` valued exactly as the
//! liquidator values (`mars::value`). Oracle prices are the value in base-denom units of one
//! unit of a denom; the base denom is a USD stablecoin in micro units (`uusdc`/`uusd`, 6
//! decimals) on Mars's deployments, so `USD = base units / 10^base_decimals`, the decimals read
//! from the oracle at start (or `--base-denom-decimals`). The profit is before transaction fees
//! and swap costs: the liquidator accounts for those.

use clap::Args;
use cosmwasm_std::{Decimal, Uint128};
use mars::math::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use mars::math::MathError;
use mars::types::{Health, LiquidationAmounts};
use mars::value::{to_usd, value_of, Value};
use redline_pipeline::jobs::LiquidationPlan;

use mars::rule::LiquidationRule;

use crate::compute::{BlockContext, Line};

/// How profits are expressed.
#[derive(Debug, Clone, Args)]
pub struct ProfitConfig {
    /// Decimals of the oracle's base denom (prices are base units per unit of a denom; the base
    /// denom is a USD stablecoin such as `uusdc`): profit in USD = base units / 10^this. By
    /// default read at start: the oracle's base denom, looked up in the manifest's denoms (as
    /// the liquidator values).
    #[arg(long = "base-denom-decimals", env = "BASE_DENOM_DECIMALS",
          value_parser = clap::value_parser!(u32).range(0..=18))]
    pub base_denom_decimals_override: Option<u32>,
    /// The decimals in use: the override, or what start-up read from the oracle.
    #[arg(skip = 6u32)]
    pub base_denom_decimals: u32,
    /// The deployment's liquidation rule (from the manifest, not a flag).
    #[arg(skip)]
    pub liquidation_rule: LiquidationRule,
}

impl Default for ProfitConfig {
    fn default() -> Self {
        Self {
            base_denom_decimals_override: None,
            base_denom_decimals: 6,
            liquidation_rule: LiquidationRule::TargetHealthFactor,
        }
    }
}

/// One priced pair: the plan and its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedPair {
    pub plan: LiquidationPlan,
    pub amounts: LiquidationAmounts,
    /// Value of the collateral received, in base units.
    pub received_value: Value,
    /// Value of the debt repaid, in base units.
    pub repaid_value: Value,
}

/// The best plan among every valid pair, or `None` when no pair is possible or none earns
/// anything (the account is still reported, with priority 0).
pub fn best_plan(
    ctx: &BlockContext,
    lines: &[Line],
    liquidation_health: &Health,
    config: &ProfitConfig,
) -> Result<Option<LiquidationPlan>, MathError> {
    let mut best: Option<PricedPair> = None;
    for pair in priced_pairs(ctx, lines, liquidation_health, config)? {
        let better = match &best {
            None => true,
            Some(current) => {
                (pair.plan.expected_profit_usd, pair.repaid_value)
                    > (current.plan.expected_profit_usd, current.repaid_value)
            }
        };
        if better {
            best = Some(pair);
        }
    }
    Ok(best
        .filter(|pair| pair.received_value > pair.repaid_value)
        .map(|pair| pair.plan))
}

/// Every pair the contract would accept, priced.
pub fn priced_pairs(
    ctx: &BlockContext,
    lines: &[Line],
    liquidation_health: &Health,
    config: &ProfitConfig,
) -> Result<Vec<PricedPair>, MathError> {
    if !liquidation_health.is_liquidatable() {
        return Ok(Vec::new());
    }
    let mut pairs = Vec::new();
    for debt_line in lines.iter().filter(|l| !l.debt.is_zero()) {
        for collateral_line in lines
            .iter()
            .filter(|l| l.collateral_enabled && !l.collateral.is_zero())
        {
            let (Ok(debt), Ok(collateral)) =
                (ctx.denom(debt_line.denom), ctx.denom(collateral_line.denom))
            else {
                continue;
            };
            let Ok(repay_limit) = config
                .liquidation_rule
                .repay_limit(ctx.target_health_factor, &debt.params)
            else {
                continue;
            };
            let input = LiquidationInput {
                collateral_amount: collateral_line.collateral,
                collateral_price: collateral.liquidation_price,
                collateral_params: &collateral.params,
                debt_amount: debt_line.debt,
                debt_requested_to_repay: debt_line.debt,
                debt_price: debt.liquidation_price,
                repay_limit,
                health: liquidation_health,
            };
            // The contract refuses these pairs; so do we.
            let Ok(amounts) = calculate_liquidation_amounts(&input) else {
                continue;
            };
            if amounts.debt_amount_to_repay.is_zero() {
                continue;
            }
            let received_value = value(
                &collateral.denom,
                amounts.collateral_amount_received_by_liquidator,
                collateral.liquidation_price,
            )?;
            let repaid_value = value(
                &debt.denom,
                amounts.debt_amount_to_repay,
                debt.liquidation_price,
            )?;
            let profit = to_usd(received_value - repaid_value, config.base_denom_decimals);
            // A loss is no profit: such pairs are priced 0 (and never chosen).
            let expected_profit_usd =
                Decimal::try_from(profit.max(Value::zero())).map_err(|_| MathError::Overflow {
                    operation: "profit in USD",
                })?;
            pairs.push(PricedPair {
                plan: LiquidationPlan {
                    debt_denom: debt.denom.clone(),
                    collateral_denom: collateral.denom.clone(),
                    debt_to_repay: amounts.debt_amount_to_repay,
                    collateral_received: amounts.collateral_amount_received_by_liquidator,
                    expected_profit_usd,
                    from_lend: false,
                },
                amounts,
                received_value,
                repaid_value,
            });
        }
    }
    Ok(pairs)
}

/// `amount · price` in base units, exactly.
fn value(denom: &str, amount: Uint128, price: Decimal) -> Result<Value, MathError> {
    value_of(denom, amount, price).map_err(|_| MathError::Overflow {
        operation: "value in base units",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cosmwasm_std::Timestamp;
    use mars::types::Market;
    use redline_pipeline::index::IndexedAccount;
    use redline_pipeline::index::{BlockSnapshot, CollateralEntry, DebtEntry, DenomId, DenomTable};
    use redline_pipeline::jobs::ProtocolKind;

    use super::*;
    use crate::compute::tests::{dec, params};
    use crate::compute::AccountHealth;

    /// The case measured on Mars: 10,000 uatom at 7.5, 65,000 uusdc debt, THF 1.05.
    fn mars_snapshot(atom_price: &str) -> BlockSnapshot {
        BlockSnapshot {
            chain_id: "devnet-1".into(),
            protocol: ProtocolKind::RedBank,
            height: 3,
            time: Timestamp::from_seconds(100),
            prices: BTreeMap::from([
                ("uatom".into(), dec(atom_price)),
                ("uusdc".into(), dec("1")),
            ]),
            liquidation_prices: BTreeMap::new(),
            markets: ["uatom", "uusdc"]
                .into_iter()
                .map(|d| Market {
                    denom: d.into(),
                    indexes_last_updated: 100,
                    ..Market::default()
                })
                .collect(),
            params: vec![
                params("uatom", "0.7", "0.8"),
                params("uusdc", "0.75", "0.8"),
            ],
            target_health_factor: dec("1.05"),
            accounts: 1,
        }
    }

    fn mars_case() -> (BlockContext, IndexedAccount) {
        mars_case_at("7.5")
    }

    /// The measured case with ATOM at `atom_price`.
    fn mars_case_at(atom_price: &str) -> (BlockContext, IndexedAccount) {
        let snapshot = mars_snapshot(atom_price);
        let table = DenomTable::from_names(vec!["uatom".into(), "uusdc".into()]);
        let account = IndexedAccount {
            address: "osmo1borrower".into(),
            // Indexes are 1: scaled = underlying · 10^6.
            collaterals: vec![CollateralEntry {
                denom: DenomId(0),
                amount_scaled: Uint128::new(10_000_000_000),
                enabled: true,
            }],
            debts: vec![DebtEntry {
                denom: DenomId(1),
                amount_scaled: Uint128::new(65_000_000_000),
                uncollateralized: false,
            }],
        };
        (BlockContext::new(&snapshot, &table), account)
    }

    /// The best plan with the default config.
    fn plan_of(ctx: &BlockContext, health: &AccountHealth) -> Option<LiquidationPlan> {
        best_plan(
            ctx,
            &health.lines,
            &health.liquidation_health,
            &ProfitConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_mars_case_by_hand() {
        let (ctx, account) = mars_case();
        let health = ctx.evaluate(&account).unwrap();
        // LT-adjusted collateral 10,000 · 7.5 · 0.8 = 60,000 over 65,000 debt.
        assert_eq!(
            health.liquidation_health.liquidation_health_factor,
            Some(Decimal::from_ratio(60_000u128, 65_000u128))
        );
        let plan = plan_of(&ctx, &health).unwrap();
        // HF 0.923076923076923076; LB = min(0.01 + 2·0.076923076923076924, max(min(75000/65000
        // − 1, 0.1), 0.02)) = min(0.163846…, 0.1) = 0.1. LT·(1+LB) = 0.88 < 1.05: capped at
        // (⌊1.05·65,000⌋ − 60,000) / (1.05 − 0.88) = 8,250 / 0.17 = 48,529 (floored).
        // Collateral bound ⌊75,000 / 1.1⌋ = 68,181. Repay = min(65,000, 48,529, 68,181).
        assert_eq!(plan.debt_denom, "uusdc");
        assert_eq!(plan.collateral_denom, "uatom");
        assert_eq!(plan.debt_to_repay, Uint128::new(48_529));
        // Seized ⌊⌊48,529 · 1.1⌋ / 7.5⌋ = ⌊53,381 / 7.5⌋ = 7,117; fee ⌊⌈⌊48,529·0.1⌋·0.1⌉ / 7.5⌋
        // = ⌊⌈485.2⌉ / 7.5⌋ = ⌊486 / 7.5⌋ = 64; received 7,053.
        assert_eq!(plan.collateral_received, Uint128::new(7_053));
        // Profit 7,053 · 7.5 − 48,529 = 52,897.5 − 48,529 = 4,368.5 uusdc = $0.0043685.
        assert_eq!(plan.expected_profit_usd, dec("0.0043685"));
    }

    /// Under water (collateral worth less than the debt): the Red Bank still liquidates, at the
    /// minimum bonus, and the health factor falls; the plan takes the whole collateral bound.
    #[test]
    fn underwater_accounts_pay_the_minimum_bonus() {
        let (ctx, account) = mars_case_at("6");
        let health = ctx.evaluate(&account).unwrap();
        // 10,000 · 6 · 0.8 = 48,000 over 65,000.
        assert_eq!(
            health.liquidation_health.liquidation_health_factor,
            Some(dec("0.738461538461538461"))
        );
        let plan = plan_of(&ctx, &health).unwrap();
        // CR = 60,000 / 65,000 < 1: LB = min_lb = 0.02. Cap ⌊(68,250 − 48,000) / (1.05 − 0.816)⌋
        // = 86,538; collateral bound ⌊⌊60,000 / 1.02⌋ / 1⌋ = 58,823 wins.
        assert_eq!(plan.debt_to_repay, Uint128::new(58_823));
        // Seized ⌊⌊58,823 · 1.02⌋ / 6⌋ = ⌊59,999 / 6⌋ = 9,999; fee ⌊⌈⌊58,823 · 0.02⌋ · 0.1⌉ / 6⌋
        // = ⌊⌈117.6⌉ / 6⌋ = 19; received 9,980.
        assert_eq!(plan.collateral_received, Uint128::new(9_980));
        // Profit 9,980 · 6 − 58,823 = 59,880 − 58,823 = 1,057 uusdc.
        assert_eq!(plan.expected_profit_usd, dec("0.001057"));
    }

    #[test]
    fn healthy_accounts_have_no_plan() {
        let (ctx, mut account) = mars_case();
        account.debts[0].amount_scaled = Uint128::new(50_000_000_000);
        let health = ctx.evaluate(&account).unwrap();
        assert!(!health.liquidation_health.is_liquidatable());
        assert_eq!(plan_of(&ctx, &health), None);
    }

    #[test]
    fn disabled_collateral_is_not_a_pair() {
        let (ctx, mut account) = mars_case();
        account.collaterals.push(CollateralEntry {
            denom: DenomId(1),
            amount_scaled: Uint128::new(1_000_000_000_000),
            enabled: false,
        });
        let health = ctx.evaluate(&account).unwrap();
        let pairs = priced_pairs(
            &ctx,
            &health.lines,
            &health.liquidation_health,
            &ProfitConfig::default(),
        )
        .unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].plan.collateral_denom, "uatom");
    }
}
