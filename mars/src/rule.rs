//! Which liquidation rule a Mars deployment runs. Both rules share the dynamic bonus and the
//! protocol fee on the bonus value; they differ in the most debt one liquidation may repay.
//!
//! - [`LiquidationRule::TargetHealthFactor`]: mars-protocol/contracts v2.1 (Osmosis). Repay at
//!   most what brings the account back to the params contract's target health factor
//!   ([`crate::math::liquidation::max_debt_repayable_amount`]).
//! - [`LiquidationRule::CloseFactor`]: mars-protocol/core-contracts (Neutron). Repay at most
//!   `⌊debt × close_factor⌋` of the debt asset, whatever the health after.

use std::fmt;
use std::str::FromStr;

use cosmwasm_std::{Decimal, Uint128};
use serde::{Deserialize, Serialize};

use crate::math::MathError;
use crate::types::AssetParams;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationRule {
    #[default]
    TargetHealthFactor,
    CloseFactor,
}

impl LiquidationRule {
    pub const ALL: [LiquidationRule; 2] = [
        LiquidationRule::TargetHealthFactor,
        LiquidationRule::CloseFactor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LiquidationRule::TargetHealthFactor => "target_health_factor",
            LiquidationRule::CloseFactor => "close_factor",
        }
    }

    /// Whether the rule needs the params contract's target health factor.
    pub fn reads_target_health_factor(self) -> bool {
        self == LiquidationRule::TargetHealthFactor
    }

    /// The cap for one liquidation of `debt_params.denom`: the deployment's target health
    /// factor, or the debt asset's close factor (an error when its params lack one: such a
    /// params contract does not run this rule).
    pub fn repay_limit(
        self,
        target_health_factor: Decimal,
        debt_params: &AssetParams,
    ) -> Result<RepayLimit, MathError> {
        match self {
            LiquidationRule::TargetHealthFactor => {
                Ok(RepayLimit::TargetHealthFactor(target_health_factor))
            }
            LiquidationRule::CloseFactor => debt_params
                .close_factor
                .map(RepayLimit::CloseFactor)
                .ok_or_else(|| MathError::MissingCloseFactor {
                    denom: debt_params.denom.clone(),
                }),
        }
    }
}

impl fmt::Display for LiquidationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LiquidationRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|rule| rule.as_str() == text)
            .ok_or_else(|| {
                format!("`{text}` is not a liquidation rule (target_health_factor, close_factor)")
            })
    }
}

/// The cap on one liquidation's repayment, with the figure the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepayLimit {
    TargetHealthFactor(Decimal),
    CloseFactor(Decimal),
}

/// `⌊debt_amount × close_factor⌋`, as core-contracts' `calculate_liquidation_amounts` caps the
/// repayment.
pub fn close_factor_cap(debt_amount: Uint128, close_factor: Decimal) -> Result<Uint128, MathError> {
    crate::math::mul_floor(debt_amount, close_factor, "debt times close factor")
}
