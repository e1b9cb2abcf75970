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

use super::interest::{underlying_debt_amount, underlying_liquidity_amount};
use super::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use super::{add, mul_ceil, mul_floor, ratio, MathError};
use crate::msg::credit_manager::{DebtAmount, LiquidateRequest, Positions};
use crate::msg::health::AccountKind;
use crate::rule::LiquidationRule;
use crate::types::{
    AssetParams, CreditManagerDebts, Health, HlsAssetType, LiquidationAmounts, Market,
    StoredCreditAccount,
};
use crate::value::{value_of, Value};

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
    #[error("{0} has no Red Bank market to accrue interest with")]
    MissingMarket(String),
    #[error("the credit manager holds no debt shares of {0} to divide its debt by")]
    MissingTotalShares(String),
    #[error("{0}")]
    Math(#[from] MathError),
}

/// What the credit manager's `positions` query answers for `account` at block time `timestamp`
/// (seconds; a market last updated later is taken as it is), from its stored form: lends are the Red Bank's scaled collateral at the accrued
/// liquidity index (rounded down); each debt is the account's share of the credit manager's
/// Red Bank debt at the accrued borrow index, `ceil(total debt · shares / total shares)`.
pub fn positions_at(
    account: &StoredCreditAccount,
    debts: &CreditManagerDebts,
    markets: &[Market],
    timestamp: u64,
) -> Result<Positions, HealthComputeError> {
    let market = |denom: &str| {
        markets
            .iter()
            .find(|m| m.denom == denom)
            .ok_or_else(|| HealthComputeError::MissingMarket(denom.to_string()))
    };
    // Markets are read after the block: one a later block touched is already at its indexes
    // of then, with no interest to add (rather than an error for a time before its update).
    let at = |market: &Market| timestamp.max(market.indexes_last_updated);
    let mut lends = Vec::with_capacity(account.lends_scaled.len());
    for (denom, scaled) in &account.lends_scaled {
        let market = market(denom)?;
        let amount = underlying_liquidity_amount(*scaled, market, at(market))?;
        lends.push(Coin::new(amount, denom.clone()));
    }
    let mut account_debts = Vec::with_capacity(account.debt_shares.len());
    for (denom, shares) in account.debt_shares.iter().filter(|(_, s)| !s.is_zero()) {
        let total_shares = debts
            .total_debt_shares
            .get(denom)
            .filter(|total| !total.is_zero())
            .ok_or_else(|| HealthComputeError::MissingTotalShares(denom.clone()))?;
        let scaled = debts
            .red_bank_debt_scaled
            .get(denom)
            .copied()
            .unwrap_or_default();
        let market = market(denom)?;
        let total_debt = underlying_debt_amount(scaled, market, at(market))?;
        let amount = total_debt
            .checked_mul_ceil((*shares, *total_shares))
            .map_err(|_| MathError::Overflow {
                operation: "debt of the account's shares",
            })?;
        account_debts.push(DebtAmount {
            denom: denom.clone(),
            shares: *shares,
            amount,
        });
    }
    Ok(Positions {
        account_id: account.account_id.to_string(),
        account_kind: account.kind.clone(),
        deposits: account
            .coin_balances
            .iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|(denom, amount)| Coin::new(*amount, denom.clone()))
            .collect(),
        debts: account_debts,
        lends,
        vaults: Vec::new(),
        staked_astro_lps: Vec::new(),
        perps: None,
    })
}

/// One liquidation the credit manager would carry out: what to offer and what it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditLiquidation {
    pub debt_denom: String,
    pub request: LiquidateRequest,
    pub amounts: LiquidationAmounts,
}

/// What the credit manager's liquidation reads besides the account: liquidation-kind prices
/// and asset params of its denoms, the deployment's rule and target health factor.
pub struct LiquidationTerms<'a> {
    pub denoms: &'a DenomsData,
    pub rule: LiquidationRule,
    pub target_health_factor: Decimal,
}

/// Every (debt, collateral) liquidation of `positions` the credit manager accepts, offering
/// the whole debt: the account must be liquidatable (`health` at liquidation prices), the
/// requested coin must have asset params, and the liquidator must receive more value than it
/// repays (each rounded down), else the contract answers `LiquidationNotProfitable`.
pub fn credit_account_liquidations(
    positions: &Positions,
    health: &Health,
    terms: &LiquidationTerms<'_>,
) -> Vec<CreditLiquidation> {
    if !health.is_liquidatable() {
        return Vec::new();
    }
    let requests = positions
        .deposits
        .iter()
        .map(|c| (LiquidateRequest::Deposit(c.denom.clone()), c))
        .chain(
            positions
                .lends
                .iter()
                .map(|c| (LiquidateRequest::Lend(c.denom.clone()), c)),
        );
    let requests: Vec<_> = requests.filter(|(_, c)| !c.amount.is_zero()).collect();
    let mut found = Vec::new();
    for debt in &positions.debts {
        for (request, coin) in &requests {
            if let Some(amounts) = liquidation_of(debt, coin, health, terms) {
                found.push(CreditLiquidation {
                    debt_denom: debt.denom.clone(),
                    request: request.clone(),
                    amounts,
                });
            }
        }
    }
    found
}

/// The most profitable liquidation of [`credit_account_liquidations`] and its profit: the value
/// of the collateral received minus the value of the debt repaid, both exact at the terms'
/// (liquidation) prices, in the oracle's base units.
pub fn best_credit_liquidation(
    positions: &Positions,
    health: &Health,
    terms: &LiquidationTerms<'_>,
) -> Option<(CreditLiquidation, Value)> {
    ranked_credit_liquidations(positions, health, terms)
        .into_iter()
        .next()
}

/// Every liquidation of [`credit_account_liquidations`] with its profit (as
/// [`best_credit_liquidation`] values it), most profitable first: the alternatives a
/// liquidator tries when selling the best one's collateral would not pay.
pub fn ranked_credit_liquidations(
    positions: &Positions,
    health: &Health,
    terms: &LiquidationTerms<'_>,
) -> Vec<(CreditLiquidation, Value)> {
    let prices = &terms.denoms.prices;
    let mut ranked: Vec<(CreditLiquidation, Value)> =
        credit_account_liquidations(positions, health, terms)
            .into_iter()
            .filter_map(|found| {
                let collateral = found.request.denom();
                let received = value_of(
                    collateral,
                    found.amounts.collateral_amount_received_by_liquidator,
                    *prices.get(collateral)?,
                )
                .ok()?;
                let repaid = value_of(
                    &found.debt_denom,
                    found.amounts.debt_amount_to_repay,
                    *prices.get(&found.debt_denom)?,
                )
                .ok()?;
                Some((found, received - repaid))
            })
            .collect();
    // Of equal profits the last in the (debt, request) order comes first, as `max_by` picks
    // it: reversed, then a stable sort.
    ranked.reverse();
    ranked.sort_by_key(|ranked| std::cmp::Reverse(ranked.1));
    ranked
}

fn liquidation_of(
    debt: &DebtAmount,
    collateral: &Coin,
    health: &Health,
    terms: &LiquidationTerms<'_>,
) -> Option<LiquidationAmounts> {
    let denoms = terms.denoms;
    let collateral_params = denoms.params.get(&collateral.denom)?;
    let debt_params = denoms.params.get(&debt.denom)?;
    let collateral_price = *denoms.prices.get(&collateral.denom)?;
    let debt_price = *denoms.prices.get(&debt.denom)?;
    let repay_limit = terms
        .rule
        .repay_limit(terms.target_health_factor, debt_params)
        .ok()?;
    let amounts = calculate_liquidation_amounts(&LiquidationInput {
        collateral_amount: Uint128::try_from(collateral.amount).ok()?,
        collateral_price,
        collateral_params,
        debt_amount: debt.amount,
        debt_requested_to_repay: debt.amount,
        debt_price,
        repay_limit,
        health,
    })
    .ok()?;
    let repaid_value = amounts
        .debt_amount_to_repay
        .checked_mul_floor(debt_price)
        .ok()?;
    let received_value = amounts
        .collateral_amount_received_by_liquidator
        .checked_mul_floor(collateral_price)
        .ok()?;
    (!amounts.debt_amount_to_repay.is_zero() && repaid_value < received_value).then_some(amounts)
}

/// The prices and asset params of the denoms an account holds. The health contract leaves out
/// (unpriced) every denom the params contract has no params for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenomsData {
    pub prices: HashMap<String, Decimal>,
    pub params: HashMap<String, AssetParams>,
}

impl DenomsData {
    /// Every denom of `params`, priced from `prices` where they have one: a denom with params
    /// but no price stays unpriced, so an account holding it fails as the health contract
    /// (whose oracle query fails) does.
    pub fn new<'a>(
        params: impl IntoIterator<Item = &'a AssetParams>,
        prices: &std::collections::BTreeMap<String, Decimal>,
    ) -> Self {
        let mut data = DenomsData::default();
        for params in params {
            if let Some(price) = prices.get(&params.denom) {
                data.prices.insert(params.denom.clone(), *price);
            }
            data.params.insert(params.denom.clone(), params.clone());
        }
        data
    }
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
            AccountKind::Default | AccountKind::UsdcMargin | AccountKind::FundManager { .. } => {
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
                withdraw_enabled: None,
                whitelisted: true,
                hls,
            },
            red_bank: RedBankSettings {
                withdraw_enabled: None,
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
            reserve_factor: None,
            interest_rate_model: None,
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
            perps: None,
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
    /// Core-contracts' USDC-margin accounts weigh coins as default accounts do (what sets them
    /// apart, deposits of the perps base denom only, is the credit manager's).
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
        for kind in [AccountKind::Default, AccountKind::UsdcMargin] {
            let health = compute(&kind, &positions, &data).unwrap();
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

    fn market(denom: &str, borrow_index: u64, liquidity_index: u64) -> Market {
        Market {
            denom: denom.into(),
            borrow_index: Decimal::percent(borrow_index),
            liquidity_index: Decimal::percent(liquidity_index),
            ..Market::default()
        }
    }

    fn stored(
        coin_balances: &[(&str, u128)],
        debt_shares: &[(&str, u128)],
        lends_scaled: &[(&str, u128)],
    ) -> StoredCreditAccount {
        let map = |entries: &[(&str, u128)]| {
            entries
                .iter()
                .map(|(denom, amount)| (denom.to_string(), Uint128::new(*amount)))
                .collect()
        };
        StoredCreditAccount {
            account_id: 7,
            kind: AccountKind::Default,
            coin_balances: map(coin_balances),
            debt_shares: map(debt_shares),
            lends_scaled: map(lends_scaled),
        }
    }

    fn manager_debts(total_shares: u128, scaled: u128) -> CreditManagerDebts {
        CreditManagerDebts {
            total_debt_shares: [("uusdc".to_string(), Uint128::new(total_shares))].into(),
            red_bank_debt_scaled: [("uusdc".to_string(), Uint128::new(scaled))].into(),
        }
    }

    /// Stored shares and scaled lends become the amounts `positions` answers.
    #[test]
    fn stored_account_becomes_positions_with_contract_rounding() {
        let markets = [market("uusdc", 120, 100), market("uatom", 100, 110)];
        let account = stored(
            &[("uatom", 10_000), ("uosmo", 0)],
            &[("uusdc", 1_000_001)],
            &[("uatom", 5_000_000_000)],
        );
        // the credit manager owes 1e11 · 1.2 / 1e6 = 120,000 uusdc for 3,000,000 shares
        let debts = manager_debts(3_000_000, 100_000_000_000);
        let positions = positions_at(&account, &debts, &markets, 0).unwrap();
        assert_eq!(positions.account_id, "7");
        assert_eq!(positions.deposits, vec![Coin::new(10_000u128, "uatom")]);
        // 5e9 · 1.1 / 1e6 = 5,500
        assert_eq!(positions.lends, vec![Coin::new(5_500u128, "uatom")]);
        // ceil(120,000 · 1,000,001 / 3,000,000) = ceil(40,000.04) = 40,001
        assert_eq!(positions.debts[0].amount, Uint128::new(40_001));
        assert_eq!(positions.debts[0].shares, Uint128::new(1_000_001));
    }

    #[test]
    fn interest_accrues_to_the_block_time() {
        let mut usdc = market("uusdc", 100, 100);
        usdc.borrow_rate = Decimal::percent(10);
        usdc.indexes_last_updated = 1_000;
        let account = stored(&[], &[("uusdc", 1_000_000)], &[]);
        let debts = manager_debts(1_000_000, 1_000_000_000_000);
        // half a year at 10 % a year: index 1.05, debt 1,000,000 → 1,050,000
        let half_year = 1_000 + 365 * 24 * 3600 / 2;
        let positions = positions_at(&account, &debts, &[usdc], half_year).unwrap();
        assert_eq!(positions.debts[0].amount, Uint128::new(1_050_000));
        // A market updated after the time asked for is taken at its indexes.
        let mut later = market("uusdc", 105, 100);
        later.indexes_last_updated = half_year + 1;
        later.liquidity_rate = Decimal::percent(5);
        let lender = stored(&[], &[("uusdc", 1_000_000)], &[("uusdc", 1_000_000_000)]);
        let positions = positions_at(&lender, &debts, &[later], half_year).unwrap();
        assert_eq!(positions.debts[0].amount, Uint128::new(1_050_000));
        assert_eq!(positions.lends, vec![Coin::new(1_000u128, "uusdc")]);
        let missing = positions_at(&account, &debts, &[], half_year).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "uusdc has no Red Bank market to accrue interest with"
        );
    }

    /// 10,000 uatom at 7.5 (LT 0.8) against 65,000 uusdc at 1, THF 1.05, bonus 0.01 / 2 / 0.02 /
    /// 0.1, fee 0.1. HF = 60,000 / 65,000 = 0.923; the bonus is capped at max_lb 0.1 (CR − 1 =
    /// 0.154); the THF caps the repayment at (1.05 · 65,000 − 60,000) / (1.05 − 0.8 · 1.1)
    /// = 48,529.4 → 48,529; seized ⌊⌊48,529 · 1.1⌋ / 7.5⌋ = ⌊53,381 / 7.5⌋ = 7,117; fee
    /// ⌊⌈⌊4,852.9⌋ · 0.1⌉ / 7.5⌋ = ⌊486 / 7.5⌋ = 64; received 7,053.
    #[test]
    fn the_hand_case_offering_the_whole_debt() {
        let data = denoms(vec![
            (params("uatom", 70, 80, None), Decimal::percent(750)),
            (params("uusdc", 80, 90, None), Decimal::one()),
        ]);
        let positions = positions(
            vec![Coin::new(10_000u128, "uatom")],
            vec![],
            vec![("uusdc", 65_000)],
        );
        let health = compute(&AccountKind::Default, &positions, &data).unwrap();
        let terms = LiquidationTerms {
            denoms: &data,
            rule: LiquidationRule::TargetHealthFactor,
            target_health_factor: Decimal::percent(105),
        };
        let found = credit_account_liquidations(&positions, &health, &terms);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].debt_denom, "uusdc");
        assert_eq!(found[0].request, LiquidateRequest::Deposit("uatom".into()));
        let amounts = found[0].amounts;
        assert_eq!(amounts.debt_amount_to_repay, Uint128::new(48_529));
        assert_eq!(amounts.collateral_amount_to_liquidate, Uint128::new(7_117));
        assert_eq!(
            amounts.collateral_amount_received_by_liquidator,
            Uint128::new(7_053)
        );

        // at ATOM 10 the account is healthy (HF 80,000 / 65,000): nothing to liquidate
        let healthy = denoms(vec![
            (params("uatom", 70, 80, None), Decimal::percent(1000)),
            (params("uusdc", 80, 90, None), Decimal::one()),
        ]);
        let health = compute(&AccountKind::Default, &positions, &healthy).unwrap();
        let terms = LiquidationTerms {
            denoms: &healthy,
            ..terms
        };
        assert!(credit_account_liquidations(&positions, &health, &terms).is_empty());
    }

    /// An account with two collaterals: every accepted liquidation is ranked, most profitable
    /// first, and the first is the best one.
    #[test]
    fn liquidations_are_ranked_by_profit() {
        let data = denoms(vec![
            (params("uatom", 70, 80, None), Decimal::percent(750)),
            (params("uosmo", 50, 60, None), Decimal::percent(50)),
            (params("uusdc", 80, 90, None), Decimal::one()),
        ]);
        let positions = positions(
            vec![
                Coin::new(10_000u128, "uatom"),
                Coin::new(20_000u128, "uosmo"),
            ],
            vec![],
            vec![("uusdc", 72_000)],
        );
        let health = compute(&AccountKind::Default, &positions, &data).unwrap();
        assert!(health.is_liquidatable());
        let terms = LiquidationTerms {
            denoms: &data,
            rule: LiquidationRule::TargetHealthFactor,
            target_health_factor: Decimal::percent(105),
        };
        let ranked = ranked_credit_liquidations(&positions, &health, &terms);
        assert_eq!(ranked.len(), 2);
        assert!(ranked[0].1 >= ranked[1].1, "{ranked:?}");
        let requests: Vec<_> = ranked
            .iter()
            .map(|(found, _)| found.request.clone())
            .collect();
        assert!(requests.contains(&LiquidateRequest::Deposit("uosmo".into())));
        let (best, profit) = best_credit_liquidation(&positions, &health, &terms).unwrap();
        assert_eq!((best, profit), ranked[0].clone());
    }
}
