//! The messages that flow between the services, one type per queue. The data flow is in the
//! types: collector → [`HealthCheckJob`] → health-checker → [`LiquidationCandidate`] → liquidator.

use cosmwasm_std::{Decimal, Uint128};
use serde::{Deserialize, Serialize};

use crate::queue::Job;
use mars::math::credit_account::CreditLiquidation;
use mars::msg::credit_manager::LiquidateRequest;
use mars::types::Health;
pub use mars::types::{AccountKey, ProtocolKind};

/// Queue of per-block health-check work.
pub const HEALTH_CHECK_QUEUE: &str = "health-checks";
/// Queue of liquidatable accounts, most profitable first.
pub const LIQUIDATION_QUEUE: &str = "liquidations";

/// Check the health of every indexed account in buckets `[bucket_start, bucket_end)` as of
/// block `height`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckJob {
    pub chain_id: String,
    pub protocol: ProtocolKind,
    /// The block whose prices, market indexes and time the health is computed at.
    pub height: u64,
    pub bucket_start: u32,
    pub bucket_end: u32,
    /// Accounts in those buckets when the job was cut (for backlog accounting).
    pub accounts: u64,
}

impl Job for HealthCheckJob {
    const KIND: &'static str = "health-check";
}

/// The most profitable liquidation the health checker found for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquidationPlan {
    pub debt_denom: String,
    pub collateral_denom: String,
    /// Debt to send (and repay), in the debt denom's base units.
    pub debt_to_repay: Uint128,
    /// Collateral the liquidator receives after the protocol fee.
    pub collateral_received: Uint128,
    /// Expected profit in USD at liquidation prices, before tx fees.
    pub expected_profit_usd: Decimal,
    /// Credit accounts only: the collateral is a lend in the Red Bank (liquidate with request
    /// `lend`) rather than a coin balance (request `deposit`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_lend: bool,
}

impl LiquidationPlan {
    /// The plan of a credit-account liquidation the credit manager accepts.
    pub fn for_credit_account(found: CreditLiquidation, expected_profit_usd: Decimal) -> Self {
        LiquidationPlan {
            collateral_denom: found.request.denom().to_string(),
            from_lend: matches!(found.request, LiquidateRequest::Lend(_)),
            debt_denom: found.debt_denom,
            debt_to_repay: found.amounts.debt_amount_to_repay,
            collateral_received: found.amounts.collateral_amount_received_by_liquidator,
            expected_profit_usd,
        }
    }
}

/// An account whose liquidation health factor was below 1 at `height`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquidationCandidate {
    pub chain_id: String,
    pub protocol: ProtocolKind,
    pub account: AccountKey,
    /// Block the health was computed at.
    pub height: u64,
    /// Unix milliseconds when the health checker found it (for latency figures).
    pub found_at_ms: u64,
    pub health: Health,
    pub plan: Option<LiquidationPlan>,
    /// Queued by a liquidator from a position it had read ahead, as the block came (see the
    /// liquidator's `armed` module), rather than by a health checker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub armed: bool,
}

impl LiquidationCandidate {
    /// The priority the liquidation queue orders by: expected profit, 0 without a plan.
    pub fn priority(&self) -> Decimal {
        self.plan
            .as_ref()
            .map(|p| p.expected_profit_usd)
            .unwrap_or_default()
    }
}

impl Job for LiquidationCandidate {
    const KIND: &'static str = "liquidation-candidate";
}
