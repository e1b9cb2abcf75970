//! Credit-account (Rover) health and the most profitable liquidation of each, from the credit
//! book and the block's [`CreditSnapshot`].
//!
//! Health is the health contract's: `mars::math::credit_account`'s positions (lends and debt
//! shares brought to the block time) weighed by the health computer, at liquidation-kind prices
//! as the credit manager's `liquidate` weighs them. Every liquidation the credit manager would
//! accept (each debt against each deposit and lend, the whole debt offered, capped by the
//! deployment's rule) is priced like a Red Bank pair: value received after the protocol fee
//! minus value repaid, exactly (`mars::value`), in USD of the oracle's base denom.

use cosmwasm_std::{Decimal, Timestamp};
use mars::math::credit_account::{
    best_credit_liquidation, positions_at, DenomsData, HealthComputeError, HealthComputer,
    LiquidationTerms,
};
use mars::msg::credit_manager::Positions;
use mars::types::{Health, StoredCreditAccount};
use mars::value::{to_usd, Value};
use redline_pipeline::index::credit::CreditSnapshot;
use redline_pipeline::jobs::{AccountKey, LiquidationPlan};

use crate::compute::{Skip, SkipReason};
use crate::profit::ProfitConfig;

/// One block's inputs of credit-account health, prepared once per job.
pub struct CreditContext {
    snapshot: CreditSnapshot,
    default_pricing: DenomsData,
    liquidation_pricing: DenomsData,
}

/// One credit account's figures at the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditHealth {
    pub positions: Positions,
    pub health: Health,
}

impl CreditContext {
    pub fn new(snapshot: CreditSnapshot) -> Self {
        CreditContext {
            default_pricing: DenomsData::new(&snapshot.block.params, &snapshot.block.prices),
            liquidation_pricing: DenomsData::new(
                &snapshot.block.params,
                &snapshot.block.liquidation_prices,
            ),
            snapshot,
        }
    }

    pub fn snapshot(&self) -> &CreditSnapshot {
        &self.snapshot
    }

    /// The account's health at the block's time, at liquidation-kind prices (`liquidation`) or
    /// default ones, as `health_values` with that action answers.
    pub fn health(
        &self,
        account: &StoredCreditAccount,
        liquidation: bool,
    ) -> Result<CreditHealth, HealthComputeError> {
        self.health_at(account, liquidation, self.snapshot.block.time)
    }

    /// [`CreditContext::health`] with interest brought to `time` instead.
    pub fn health_at(
        &self,
        account: &StoredCreditAccount,
        liquidation: bool,
        time: Timestamp,
    ) -> Result<CreditHealth, HealthComputeError> {
        let positions = positions_at(
            account,
            &self.snapshot.manager_debts,
            &self.snapshot.block.markets,
            time.seconds(),
        )?;
        let denoms = if liquidation {
            &self.liquidation_pricing
        } else {
            &self.default_pricing
        };
        let health = HealthComputer {
            kind: &account.kind,
            positions: &positions,
            denoms,
        }
        .compute_health()?;
        Ok(CreditHealth { positions, health })
    }

    /// The most profitable liquidation of an account whose liquidation-priced figures are
    /// `figures`; `None` when the credit manager would accept none.
    pub fn best_plan(
        &self,
        figures: &CreditHealth,
        config: &ProfitConfig,
    ) -> Option<LiquidationPlan> {
        let terms = LiquidationTerms {
            denoms: &self.liquidation_pricing,
            rule: config.liquidation_rule,
            target_health_factor: self.snapshot.block.target_health_factor,
        };
        let (found, profit) = best_credit_liquidation(&figures.positions, &figures.health, &terms)?;
        let usd = to_usd(profit.max(Value::zero()), config.base_denom_decimals);
        Some(LiquidationPlan::for_credit_account(
            found,
            Decimal::try_from(usd).ok()?,
        ))
    }
}

/// The verdicts of one credit-account job.
#[derive(Debug, Default)]
pub struct CreditEvaluation {
    pub checked: u64,
    /// `(account id, liquidation-priced health, plan)` of the liquidatable accounts.
    pub liquidatable: Vec<(u64, Health, Option<LiquidationPlan>)>,
    pub skipped: Vec<Skip>,
}

/// Health (at liquidation prices) and, for the liquidatable, the best plan of every account.
pub fn evaluate_credit_accounts(
    ctx: &CreditContext,
    accounts: &[StoredCreditAccount],
    config: &ProfitConfig,
) -> CreditEvaluation {
    let mut evaluation = CreditEvaluation::default();
    for account in accounts {
        match ctx.health(account, true) {
            Ok(figures) => {
                evaluation.checked += 1;
                if figures.health.is_liquidatable() {
                    let plan = ctx.best_plan(&figures, config);
                    evaluation
                        .liquidatable
                        .push((account.account_id, figures.health, plan));
                }
            }
            Err(error) => evaluation.skipped.push(Skip {
                account: AccountKey::CreditAccount(account.account_id).to_string(),
                reason: skip_reason(&error),
                detail: error.to_string(),
            }),
        }
    }
    evaluation
}

fn skip_reason(error: &HealthComputeError) -> SkipReason {
    match error {
        HealthComputeError::MissingPrice(_) => SkipReason::MissingPrice,
        HealthComputeError::MissingParams(_) | HealthComputeError::MissingHlsParams(_) => {
            SkipReason::MissingParams
        }
        HealthComputeError::MissingMarket(_) => SkipReason::UnknownDenom,
        HealthComputeError::MissingTotalShares(_) | HealthComputeError::Math(_) => SkipReason::Math,
    }
}
