//! Health of a credit (Rover) account as Mars v2.1's health computer
//! (`packages/health-computer/src/health_computer.rs`) computes it.
//!
//! Collateral is the account's deposits and lends (vaults and staked LPs are not modelled),
//! each coin valued `floor(amount·price)` and weighted, rounding down, by its max LTV and
//! liquidation threshold, or by its `hls` ones in a `high_levered_strategy` account. Unlike the
//! Red Bank, each debt is valued `ceil(amount·price)`. A coin without asset params counts for
//! nothing; a coin that is not whitelisted keeps its liquidation threshold but has max LTV 0.

use std::collections::HashMap;

use cosmwasm_std::{Coin, Decimal, Uint128};

use super::{add, mul_ceil, mul_floor, ratio, MathError};
use crate::msg::credit_manager::Positions;
use crate::msg::health::AccountKind;
use crate::types::{AssetParams, Health, HlsAssetType};

/// Why a credit account's health cannot be computed, with the health contract's messages.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum HealthComputeError {
    #[error("{0} was not provided a price to compute health with")]
    MissingPrice(String),
    #[error("{0} was not provided asset params to compute health with")]
    MissingParams(String),
    #[error(
        "Account is an HLS account, but {0} was not provided HLS params to compute health with"
    )]
    MissingHlsParams(String),
    #[error("{0}")]
    Math(#[from] MathError),
}

/// The prices and asset params of the denoms an account holds. The health contract leaves out
/// (unpriced) every denom the params contract has no params for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenomsData {
    pub prices: HashMap<String, Decimal>,
    pub params: HashMap<String, AssetParams>,
}

/// The health computer, for one account.
pub struct HealthComputer<'a> {
    pub kind: &'a AccountKind,
    pub positions: &'a Positions,
    pub denoms: &'a DenomsData,
}

/// Sums of the collateral side.
#[derive(Default)]
struct CollateralValue {
    total: Uint128,
    max_ltv_adjusted: Uint128,
    liquidation_threshold_adjusted: Uint128,
}

impl HealthComputer<'_> {
    pub fn compute_health(&self) -> Result<Health, HealthComputeError> {
        let deposits = self.coins_value(&self.positions.deposits)?;
        let lends = self.coins_value(&self.positions.lends)?;
        let total_debt_value = self.total_debt_value()?;
        let total_collateral_value = add(deposits.total, lends.total, "collateral value")?;
        let max_ltv_adjusted_collateral = add(
            deposits.max_ltv_adjusted,
            lends.max_ltv_adjusted,
            "max-LTV-adjusted collateral",
        )?;
        let liquidation_threshold_adjusted_collateral = add(
            deposits.liquidation_threshold_adjusted,
            lends.liquidation_threshold_adjusted,
            "liquidation-threshold-adjusted collateral",
        )?;
        let factor = |collateral, operation| -> Result<_, MathError> {
            if total_debt_value.is_zero() {
                return Ok(None);
            }
            Ok(Some(ratio(collateral, total_debt_value, operation)?))
        };
        Ok(Health {
            max_ltv_health_factor: factor(max_ltv_adjusted_collateral, "max-LTV health factor")?,
            liquidation_health_factor: factor(
                liquidation_threshold_adjusted_collateral,
                "liquidation health factor",
            )?,
            total_debt_value,
            total_collateral_value,
            max_ltv_adjusted_collateral,
            liquidation_threshold_adjusted_collateral,
        })
    }

    /// Each debt rounded up, in favour of the protocol.
    fn total_debt_value(&self) -> Result<Uint128, HealthComputeError> {
        let mut total = Uint128::zero();
        for debt in &self.positions.debts {
            let value = mul_ceil(debt.amount, self.price(&debt.denom)?, "debt value")?;
            total = add(total, value, "total debt value")?;
        }
        Ok(total)
    }

    fn coins_value(&self, coins: &[Coin]) -> Result<CollateralValue, HealthComputeError> {
        let mut sums = CollateralValue::default();
        for coin in coins {
            let Some(params) = self.contributing_params(&coin.denom)? else {
                continue;
            };
            let amount = Uint128::try_from(coin.amount).map_err(|_| MathError::Overflow {
                operation: "collateral amount",
            })?;
            let value = mul_floor(amount, self.price(&coin.denom)?, "collateral value")?;
            let (max_ltv, liquidation_threshold) = self.weights(params)?;
            sums.total = add(sums.total, value, "collateral value")?;
            sums.max_ltv_adjusted = add(
                sums.max_ltv_adjusted,
                mul_floor(value, max_ltv, "max-LTV-adjusted collateral")?,
                "max-LTV-adjusted collateral",
            )?;
            sums.liquidation_threshold_adjusted = add(
                sums.liquidation_threshold_adjusted,
                mul_floor(value, liquidation_threshold, "LT-adjusted collateral")?,
                "liquidation-threshold-adjusted collateral",
            )?;
        }
        Ok(sums)
    }

    /// The params of a coin that counts as collateral, `None` for one that does not: no params
    /// at all, or (HLS) not correlated with any debt, or (HLS without debt) no HLS params.
    fn contributing_params(&self, denom: &str) -> Result<Option<&AssetParams>, HealthComputeError> {
        let Some(params) = self.denoms.params.get(denom) else {
            return Ok(None);
        };
        if *self.kind != AccountKind::HighLeveredStrategy {
            return Ok(Some(params));
        }
        if self.positions.debts.is_empty() {
            return Ok(params.credit_manager.hls.as_ref().map(|_| params));
        }
        let wanted = HlsAssetType::Coin {
            denom: denom.to_string(),
        };
        for debt in &self.positions.debts {
            let debt_params = self
                .denoms
                .params
                .get(&debt.denom)
                .ok_or_else(|| HealthComputeError::MissingParams(debt.denom.clone()))?;
            let hls = debt_params
                .credit_manager
                .hls
                .as_ref()
                .ok_or_else(|| HealthComputeError::MissingHlsParams(debt.denom.clone()))?;
            if hls.correlations.contains(&wanted) {
                return Ok(Some(params));
            }
        }
        Ok(None)
    }

    /// (max LTV, liquidation threshold) for the account's kind; a de-listed (not whitelisted)
    /// coin keeps its threshold but lends nothing.
    fn weights(&self, params: &AssetParams) -> Result<(Decimal, Decimal), HealthComputeError> {
        let (max_ltv, liquidation_threshold) = match self.kind {
            AccountKind::HighLeveredStrategy => {
                let hls =
                    params.credit_manager.hls.as_ref().ok_or_else(|| {
                        HealthComputeError::MissingHlsParams(params.denom.clone())
                    })?;
                (hls.max_loan_to_value, hls.liquidation_threshold)
            }
            AccountKind::Default | AccountKind::FundManager { .. } => {
                (params.max_loan_to_value, params.liquidation_threshold)
            }
        };
        if !params.credit_manager.whitelisted {
            return Ok((Decimal::zero(), liquidation_threshold));
        }
        Ok((max_ltv, liquidation_threshold))
    }

    fn price(&self, denom: &str) -> Result<Decimal, HealthComputeError> {
        self.denoms
            .prices
            .get(denom)
            .copied()
            .ok_or_else(|| HealthComputeError::MissingPrice(denom.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::credit_manager::DebtAmount;
    use crate::types::{CmSettings, HlsParams, LiquidationBonus, RedBankSettings};

    fn params(denom: &str, max_ltv: u64, lt: u64, hls: Option<HlsParams>) -> AssetParams {
        AssetParams {
            denom: denom.into(),
            credit_manager: CmSettings {
                whitelisted: true,
                hls,
            },
            red_bank: RedBankSettings {
                deposit_enabled: true,
                borrow_enabled: true,
            },
            max_loan_to_value: Decimal::percent(max_ltv),
            liquidation_threshold: Decimal::percent(lt),
            liquidation_bonus: LiquidationBonus {
                starting_lb: Decimal::percent(1),
                slope: Decimal::percent(200),
                min_lb: Decimal::percent(2),
                max_lb: Decimal::percent(10),
            },
            protocol_liquidation_fee: Decimal::percent(10),
            deposit_cap: Uint128::MAX,
            close_factor: None,
        }
    }

    fn positions(deposits: Vec<Coin>, lends: Vec<Coin>, debts: Vec<(&str, u128)>) -> Positions {
        Positions {
            account_id: "1".into(),
            account_kind: AccountKind::Default,
            deposits,
            debts: debts
                .into_iter()
                .map(|(denom, amount)| DebtAmount {
                    denom: denom.into(),
                    shares: Uint128::new(amount * 1_000_000),
                    amount: Uint128::new(amount),
                })
                .collect(),
            lends,
            vaults: vec![],
            staked_astro_lps: vec![],
        }
    }

    fn denoms(entries: Vec<(AssetParams, Decimal)>) -> DenomsData {
        let mut data = DenomsData::default();
        for (params, price) in entries {
            data.prices.insert(params.denom.clone(), price);
            data.params.insert(params.denom.clone(), params);
        }
        data
    }

    fn compute(
        kind: &AccountKind,
        positions: &Positions,
        data: &DenomsData,
    ) -> Result<Health, HealthComputeError> {
        HealthComputer {
            kind,
            positions,
            denoms: data,
        }
        .compute_health()
    }

    /// Total, max-LTV-weighted and LT-weighted collateral values.
    fn assert_collateral(health: &Health, total: u128, max_ltv: u128, lt: u128) {
        assert_eq!(health.total_collateral_value, Uint128::new(total));
        assert_eq!(health.max_ltv_adjusted_collateral, Uint128::new(max_ltv));
        assert_eq!(
            health.liquidation_threshold_adjusted_collateral,
            Uint128::new(lt)
        );
    }

    /// 10,000 uatom deposited and 5,000 lent at 7.5 (LTV 0.7, LT 0.8); 3 uusdc owed at 0.5.
    #[test]
    fn default_account_floors_collateral_and_ceils_debt() {
        let data = denoms(vec![
            (params("uatom", 70, 80, None), Decimal::percent(750)),
            (params("uusdc", 80, 90, None), Decimal::percent(50)),
        ]);
        let positions = positions(
            vec![Coin::new(10_000u128, "uatom"), Coin::new(7u128, "uosmo")],
            vec![Coin::new(5_000u128, "uatom")],
            vec![("uusdc", 3)],
        );
        let health = compute(&AccountKind::Default, &positions, &data).unwrap();
        // collateral: 75,000 + 37,500 (uosmo has no params: skipped);
        // max-LTV-weighted 52,500 + 26,250; LT-weighted 60,000 + 30,000
        assert_collateral(&health, 112_500, 78_750, 90_000);
        // ceil(3 · 0.5) = 2 (the Red Bank would floor it to 1)
        assert_eq!(health.total_debt_value, Uint128::new(2));
        assert_eq!(
            health.liquidation_health_factor,
            Some(Decimal::from_ratio(90_000u128, 2u128))
        );
    }

    #[test]
    fn hls_account_counts_only_correlated_collateral_at_hls_weights() {
        let hls_atom = HlsParams {
            max_loan_to_value: Decimal::percent(90),
            liquidation_threshold: Decimal::percent(95),
            correlations: vec![],
        };
        let hls_usdc = HlsParams {
            max_loan_to_value: Decimal::percent(85),
            liquidation_threshold: Decimal::percent(88),
            correlations: vec![HlsAssetType::Coin {
                denom: "uatom".into(),
            }],
        };
        let data = denoms(vec![
            (params("uatom", 70, 80, Some(hls_atom)), Decimal::one()),
            (params("uusdc", 80, 90, Some(hls_usdc)), Decimal::one()),
            (params("uosmo", 50, 60, None), Decimal::one()),
        ]);
        let positions = positions(
            vec![Coin::new(1_000u128, "uatom"), Coin::new(1_000u128, "uosmo")],
            vec![],
            vec![("uusdc", 500)],
        );
        let health = compute(&AccountKind::HighLeveredStrategy, &positions, &data).unwrap();
        // only uatom counts, at its HLS weights 0.9 / 0.95
        assert_collateral(&health, 1_000, 900, 950);
    }

    #[test]
    fn delisted_coin_lends_nothing_and_unpriced_debt_fails() {
        let mut atom = params("uatom", 70, 80, None);
        atom.credit_manager.whitelisted = false;
        let data = denoms(vec![(atom, Decimal::one())]);
        let positions_ok = positions(vec![Coin::new(100u128, "uatom")], vec![], vec![]);
        let health = compute(&AccountKind::Default, &positions_ok, &data).unwrap();
        assert_eq!(health.max_ltv_adjusted_collateral, Uint128::zero());
        assert_eq!(
            health.liquidation_threshold_adjusted_collateral,
            Uint128::new(80)
        );
        assert_eq!(health.liquidation_health_factor, None);

        let unpriced = positions(vec![], vec![], vec![("uusdc", 1)]);
        let err = compute(&AccountKind::Default, &unpriced, &data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uusdc was not provided a price to compute health with"
        );
    }
}
