//! The on-chain baseline (`--health-source onchain`): ask the chain for every account's health,
//! one `user_position` smart query per account, as Mars's old pipeline did through Hive.
//!
//! Queries run concurrently, at most `--onchain-concurrency` at a time, pinned to the job's
//! height. When the block's liquidation prices differ from its default prices the query is
//! `user_position_liquidation_pricing` instead (still one per account), because that is the
//! health `liquidate` checks. It is kept for comparison with the off-chain path (the benchmark
//! measures both) and for protocols whose math is not reproduced off-chain.
//!
//! For the few liquidatable accounts, the liquidation plan needs per-denom amounts: those come
//! from `user_collaterals` and `user_debts` at the same height.

use clap::Args;
use cosmwasm_std::Decimal;
use futures::stream::{self, StreamExt};
use mars::msg::red_bank::QueryMsg;
use mars::types::{Health, UserHealthStatus, UserPositionFigures};
use redline_chain::{ChainClient, ChainError};

use crate::compute::{line_for, BlockContext, Line};

#[derive(Debug, Clone, Args)]
pub struct OnchainConfig {
    /// On-chain baseline: most `user_position` queries in flight at once.
    #[arg(long, env = "ONCHAIN_CONCURRENCY", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub onchain_concurrency: usize,
}

impl Default for OnchainConfig {
    fn default() -> Self {
        Self {
            onchain_concurrency: 32,
        }
    }
}

/// The contract's `user_position` figures as a [`Health`].
pub fn health_from_figures(figures: &UserPositionFigures) -> Health {
    let (max_ltv_health_factor, liquidation_health_factor) = match figures.health_status {
        UserHealthStatus::NotBorrowing => (None, None),
        UserHealthStatus::Borrowing {
            max_ltv_hf,
            liq_threshold_hf,
        } => (Some(max_ltv_hf), Some(liq_threshold_hf)),
    };
    Health {
        total_debt_value: figures.total_collateralized_debt,
        total_collateral_value: figures.total_enabled_collateral,
        max_ltv_adjusted_collateral: figures.weighted_max_ltv_collateral,
        liquidation_threshold_adjusted_collateral: figures
            .weighted_liquidation_threshold_collateral,
        max_ltv_health_factor,
        liquidation_health_factor,
    }
}

/// One account's on-chain health query.
pub async fn user_health<C: ChainClient>(
    client: &C,
    red_bank: &str,
    account: &str,
    height: u64,
    liquidation_pricing: bool,
) -> Result<Health, ChainError> {
    let msg = user_position_query(account, liquidation_pricing);
    let figures: UserPositionFigures = client.query_smart(red_bank, &msg, Some(height)).await?;
    Ok(health_from_figures(&figures))
}

/// The Red Bank's `user_position` query of `account`, its liquidation-priced variant when
/// `liquidation_pricing`.
pub fn user_position_query(account: &str, liquidation_pricing: bool) -> QueryMsg {
    let user = account.to_string();
    if liquidation_pricing {
        QueryMsg::UserPositionLiquidationPricing {
            user,
            account_id: None,
        }
    } else {
        QueryMsg::UserPosition {
            user,
            account_id: None,
        }
    }
}

/// Every account's health, `concurrency` queries at a time, in the order of `accounts`.
pub async fn user_healths<C: ChainClient>(
    client: &C,
    red_bank: &str,
    accounts: &[String],
    height: u64,
    liquidation_pricing: bool,
    concurrency: usize,
) -> Vec<Result<Health, ChainError>> {
    let mut answers: Vec<(usize, Result<Health, ChainError>)> =
        stream::iter(accounts.iter().cloned().enumerate())
            .map(|(i, account)| async move {
                (
                    i,
                    user_health(client, red_bank, &account, height, liquidation_pricing).await,
                )
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    answers.sort_unstable_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// An account's positions (underlying amounts at `height`) as lines of the context's denom
/// table, for the liquidation plan. Denoms outside the table are an error naming them.
pub async fn account_lines<C: ChainClient>(
    client: &C,
    red_bank: &str,
    ctx: &BlockContext,
    denoms: &redline_pipeline::index::DenomTable,
    account: &str,
    height: u64,
) -> Result<Vec<Line>, String> {
    let position =
        redline_protocol::red_bank::read::position(client, red_bank, account, Some(height))
            .await
            .map_err(|e| e.to_string())?;
    let mut lines: Vec<Line> = Vec::new();
    for collateral in position.collaterals {
        let line = line_of(&mut lines, ctx, denoms, &collateral.denom)?;
        line.collateral = collateral.amount;
        line.collateral_enabled = collateral.enabled;
    }
    for debt in position.debts {
        let line = line_of(&mut lines, ctx, denoms, &debt.denom)?;
        line.debt = debt.amount;
        line.uncollateralized_debt = debt.uncollateralized;
    }
    Ok(lines)
}

/// The line of `denom` in `lines`, added when missing; an error when the block cannot price it.
fn line_of<'l>(
    lines: &'l mut Vec<Line>,
    ctx: &BlockContext,
    denoms: &redline_pipeline::index::DenomTable,
    denom: &str,
) -> Result<&'l mut Line, String> {
    let id = denoms
        .id(denom)
        .ok_or_else(|| format!("denom {denom} is not in the index's denom table"))?;
    ctx.denom(id).map_err(|p| p.detail)?;
    Ok(line_for(lines, id))
}

/// Whether the chain's health figures say "liquidatable" (LT HF < 1).
pub fn is_liquidatable(health: &Health) -> bool {
    health
        .liquidation_health_factor
        .is_some_and(|hf| hf < Decimal::one())
}

#[cfg(test)]
mod tests {
    use cosmwasm_std::Uint128;
    use mars::math::health::user_position_figures;

    use super::*;

    #[test]
    fn figures_round_trip_to_health() {
        let health = Health {
            total_debt_value: Uint128::new(65_000),
            total_collateral_value: Uint128::new(75_000),
            max_ltv_adjusted_collateral: Uint128::new(52_500),
            liquidation_threshold_adjusted_collateral: Uint128::new(60_000),
            max_ltv_health_factor: Some(Decimal::from_ratio(52_500u128, 65_000u128)),
            liquidation_health_factor: Some(Decimal::from_ratio(60_000u128, 65_000u128)),
        };
        assert_eq!(health_from_figures(&user_position_figures(&health)), health);
        let empty = Health::default();
        assert_eq!(health_from_figures(&user_position_figures(&empty)), empty);
        assert!(is_liquidatable(&health));
    }
}
