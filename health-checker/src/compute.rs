//! Off-chain health, exactly as the Red Bank computes it: index entries (scaled amounts) →
//! underlying amounts at the block time → [`HealthPosition`]s → [`Health`] with
//! `mars::math`.
//!
//! Per block, a [`BlockContext`] prepares every denom of the index's denom table once: each
//! market's indexes accrued to the block time (`math::interest`), the oracle's default and
//! liquidation prices of the block's snapshot, and the asset params. Per account
//! ([`BlockContext::evaluate`]) it then takes, in the contract's order and rounding:
//!
//! - collateral: `floor(floor(scaled · liquidity_index) / 10^6)` (truncate), debt:
//!   `ceil(floor(scaled · borrow_index) / 10^6)` (ceil), as `compute_underlying_amount`;
//! - one line per denom held (collateral and debt of one denom share a line, as the contract
//!   iterates the union of the user's denoms); disabled collateral counts as zero, and
//!   uncollateralized debt counts as zero, as `red_bank_health_positions`; every denom held —
//!   even only as disabled collateral — needs a price and params, or the contract's query fails
//!   and so does ours (the account is skipped with the reason);
//! - `compute_health` twice: with default prices (what `user_position` answers) and with
//!   liquidation prices (what `liquidate` checks; computed once when the prices are equal).
//!
//! An account that cannot be evaluated is never reported healthy: it comes back as a
//! [`Skip`] with a [`SkipReason`] (a metric label) and a message naming the denom.

use std::sync::Arc;

use cosmwasm_std::{Decimal, Timestamp, Uint128};
use mars::math::health::compute_health;
use mars::math::interest::{
    compute_underlying_amount, updated_borrow_index, updated_liquidity_index, ScalingOperation,
};
use mars::math::MathError;
use mars::types::{AssetParams, Health, HealthPosition};
use redline_pipeline::index::{BlockSnapshot, DenomId, DenomTable, IndexedAccount};
use redline_pipeline::jobs::ProtocolKind;

/// Why an account was skipped (the `reason` label of the skip counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A denom with no Red Bank market in the block's snapshot.
    UnknownDenom,
    /// A denom the oracle gave no price for.
    MissingPrice,
    /// A denom priced at zero.
    ZeroPrice,
    /// A denom without asset params.
    MissingParams,
    /// The stored entry cannot be decoded.
    Undecodable,
    /// The money math failed (overflow, a market updated after the block time).
    Math,
    /// On-chain baseline: the chain refused or failed the query.
    QueryFailed,
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        SkipReason::UnknownDenom,
        SkipReason::MissingPrice,
        SkipReason::ZeroPrice,
        SkipReason::MissingParams,
        SkipReason::Undecodable,
        SkipReason::Math,
        SkipReason::QueryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnknownDenom => "unknown_denom",
            SkipReason::MissingPrice => "missing_price",
            SkipReason::ZeroPrice => "zero_price",
            SkipReason::MissingParams => "missing_params",
            SkipReason::Undecodable => "undecodable",
            SkipReason::Math => "math_error",
            SkipReason::QueryFailed => "query_failed",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account that could not be checked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub account: String,
    pub reason: SkipReason,
    pub detail: String,
}

/// One denom ready for per-account use at one block.
#[derive(Debug, Clone)]
pub struct PricedDenom {
    pub denom: String,
    /// Liquidity index accrued to the block time.
    pub liquidity_index: Decimal,
    /// Borrow index accrued to the block time.
    pub borrow_index: Decimal,
    /// Oracle price of kind `default` (health as `user_position` answers).
    pub price: Decimal,
    /// Oracle price of kind `liquidation` (what `liquidate` uses).
    pub liquidation_price: Decimal,
    pub params: Arc<AssetParams>,
}

/// Why a denom cannot be used at this block; every account holding it is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenomProblem {
    pub reason: SkipReason,
    pub detail: String,
}

/// Everything per block that per-account health needs, indexed by [`DenomId`].
#[derive(Debug, Clone)]
pub struct BlockContext {
    pub chain_id: String,
    pub protocol: ProtocolKind,
    pub height: u64,
    pub time: Timestamp,
    pub target_health_factor: Decimal,
    denoms: Vec<Result<PricedDenom, DenomProblem>>,
    /// Whether every usable denom's liquidation price equals its default price (then the
    /// liquidation-priced health is the default one).
    same_prices: bool,
}

/// One denom of one account in underlying amounts at the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub denom: DenomId,
    pub collateral: Uint128,
    pub collateral_enabled: bool,
    pub debt: Uint128,
    pub uncollateralized_debt: bool,
}

/// An account's health at one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHealth {
    /// At default prices: equals the Red Bank's `user_position` answer.
    pub health: Health,
    /// At liquidation prices: decides liquidatability (`liquidate` checks this one).
    pub liquidation_health: Health,
    /// The account's lines (underlying amounts), kept for the liquidation plan.
    pub lines: Vec<Line>,
}

fn math_problem(what: &str, denom: &str, error: MathError) -> DenomProblem {
    DenomProblem {
        reason: SkipReason::Math,
        detail: format!("{what} of {denom}: {error}"),
    }
}

impl BlockContext {
    /// Prepares every denom of `denoms` (the denom table the accounts were read with) from the
    /// block's snapshot. Problems are per denom: only accounts holding a bad denom are skipped.
    ///
    /// A snapshot without any liquidation prices (written by a collector that does not read
    /// them) prices liquidations with the default prices, as Mars's oracle does for every price
    /// source without a separate liquidation price.
    pub fn new(snapshot: &BlockSnapshot, denoms: &DenomTable) -> Self {
        let block_seconds = snapshot.time.seconds();
        let liquidation_prices = if snapshot.liquidation_prices.is_empty() {
            &snapshot.prices
        } else {
            &snapshot.liquidation_prices
        };
        let prepared = denoms
            .iter()
            .map(|(_, denom)| {
                let market = snapshot
                    .markets
                    .iter()
                    .find(|m| m.denom == denom)
                    .ok_or_else(|| DenomProblem {
                        reason: SkipReason::UnknownDenom,
                        detail: format!(
                            "denom {denom} has no Red Bank market in the snapshot of block {}",
                            snapshot.height
                        ),
                    })?;
                let params = snapshot
                    .params
                    .iter()
                    .find(|p| p.denom == denom)
                    .ok_or_else(|| DenomProblem {
                        reason: SkipReason::MissingParams,
                        detail: format!("denom {denom} has no asset params"),
                    })?;
                let price =
                    |prices: &std::collections::BTreeMap<String, Decimal>, kind: &str| match prices
                        .get(denom)
                    {
                        None => Err(DenomProblem {
                            reason: SkipReason::MissingPrice,
                            detail: format!(
                                "the oracle has no {kind} price for {denom} at block {}",
                                snapshot.height
                            ),
                        }),
                        Some(price) if price.is_zero() => Err(DenomProblem {
                            reason: SkipReason::ZeroPrice,
                            detail: format!(
                                "the oracle's {kind} price for {denom} is zero at block {}",
                                snapshot.height
                            ),
                        }),
                        Some(price) => Ok(*price),
                    };
                // The collector reads markets at the node's latest state, which may be a block
                // (even a second) past the snapshot's: indexes already updated later than the
                // block's time are taken as they are, as the contract would at that later time.
                let at = block_seconds.max(market.indexes_last_updated);
                Ok(PricedDenom {
                    denom: denom.to_string(),
                    liquidity_index: updated_liquidity_index(market, at)
                        .map_err(|e| math_problem("liquidity index", denom, e))?,
                    borrow_index: updated_borrow_index(market, at)
                        .map_err(|e| math_problem("borrow index", denom, e))?,
                    price: price(&snapshot.prices, "default")?,
                    liquidation_price: price(liquidation_prices, "liquidation")?,
                    params: Arc::new(params.clone()),
                })
            })
            .collect::<Vec<_>>();
        let same_prices = prepared
            .iter()
            .flatten()
            .all(|d| d.price == d.liquidation_price);
        BlockContext {
            chain_id: snapshot.chain_id.clone(),
            protocol: snapshot.protocol,
            height: snapshot.height,
            time: snapshot.time,
            target_health_factor: snapshot.target_health_factor,
            denoms: prepared,
            same_prices,
        }
    }

    /// Number of denoms prepared (the size of the denom table it was built with).
    pub fn denom_count(&self) -> usize {
        self.denoms.len()
    }

    /// Whether liquidation prices equal default prices for every denom.
    pub fn same_prices(&self) -> bool {
        self.same_prices
    }

    /// The prepared denom `id`, or why it is unusable.
    pub fn denom(&self, id: DenomId) -> Result<&PricedDenom, DenomProblem> {
        match self.denoms.get(id.0 as usize) {
            Some(Ok(denom)) => Ok(denom),
            Some(Err(problem)) => Err(problem.clone()),
            None => Err(DenomProblem {
                reason: SkipReason::UnknownDenom,
                detail: format!("denom id {} is not in the denom table", id.0),
            }),
        }
    }

    /// `(name, price)` of every usable denom at the given price kind.
    pub fn prices(&self, liquidation: bool) -> impl Iterator<Item = (&str, Decimal)> {
        self.denoms.iter().flatten().map(move |d| {
            (
                d.denom.as_str(),
                if liquidation {
                    d.liquidation_price
                } else {
                    d.price
                },
            )
        })
    }

    /// Health of one indexed account at this block.
    pub fn evaluate(&self, account: &IndexedAccount) -> Result<AccountHealth, Skip> {
        let skip = |reason: SkipReason, detail: String| Skip {
            account: account.address.clone(),
            reason,
            detail,
        };
        let underlying = |id: DenomId,
                          scaled: Uint128,
                          what: &str,
                          index: fn(&PricedDenom) -> Decimal,
                          rounding: ScalingOperation| {
            let denom = self.denom(id).map_err(|p| skip(p.reason, p.detail))?;
            compute_underlying_amount(scaled, index(denom), rounding)
                .map_err(|e| skip(SkipReason::Math, format!("{what} of {}: {e}", denom.denom)))
        };
        let mut lines: Vec<Line> =
            Vec::with_capacity(account.collaterals.len() + account.debts.len());
        for collateral in &account.collaterals {
            let amount = underlying(
                collateral.denom,
                collateral.amount_scaled,
                "collateral",
                |d| d.liquidity_index,
                ScalingOperation::Truncate,
            )?;
            let line = line_for(&mut lines, collateral.denom);
            line.collateral = amount;
            line.collateral_enabled = collateral.enabled;
        }
        for debt in &account.debts {
            let amount = underlying(
                debt.denom,
                debt.amount_scaled,
                "debt",
                |d| d.borrow_index,
                ScalingOperation::Ceil,
            )?;
            let line = line_for(&mut lines, debt.denom);
            line.debt = amount;
            line.uncollateralized_debt = debt.uncollateralized;
        }
        self.health_of_lines(lines)
            .map_err(|e| skip(SkipReason::Math, format!("health: {e}")))
    }

    /// Health at both price kinds of lines already in underlying amounts.
    pub fn health_of_lines(&self, lines: Vec<Line>) -> Result<AccountHealth, MathError> {
        let health = compute_health(&self.health_positions(&lines, false, false)?)?;
        let liquidation_health = if self.same_prices {
            health.clone()
        } else {
            compute_health(&self.health_positions(&lines, true, false)?)?
        };
        Ok(AccountHealth {
            health,
            liquidation_health,
            lines,
        })
    }

    /// The health inputs of `lines`, as `red_bank_health_positions` builds them: disabled
    /// collateral and uncollateralized debt count as zero. `named` fills the denom names (the
    /// health math does not need them; the liquidation plan does).
    pub fn health_positions(
        &self,
        lines: &[Line],
        liquidation_prices: bool,
        named: bool,
    ) -> Result<Vec<HealthPosition>, MathError> {
        lines
            .iter()
            .map(|line| {
                let denom = self
                    .denoms
                    .get(line.denom.0 as usize)
                    .and_then(|d| d.as_ref().ok())
                    .ok_or_else(|| MathError::MissingPrice {
                        denom: format!("denom id {}", line.denom.0),
                    })?;
                Ok(HealthPosition {
                    denom: if named {
                        denom.denom.clone()
                    } else {
                        String::new()
                    },
                    price: if liquidation_prices {
                        denom.liquidation_price
                    } else {
                        denom.price
                    },
                    collateral_amount: if line.collateral_enabled {
                        line.collateral
                    } else {
                        Uint128::zero()
                    },
                    debt_amount: if line.uncollateralized_debt {
                        Uint128::zero()
                    } else {
                        line.debt
                    },
                    max_ltv: denom.params.max_loan_to_value,
                    liquidation_threshold: denom.params.liquidation_threshold,
                })
            })
            .collect()
    }
}

/// The line of `denom` in `lines`, added (empty) when missing.
pub(crate) fn line_for(lines: &mut Vec<Line>, denom: DenomId) -> &mut Line {
    let at = match lines.iter().position(|l| l.denom == denom) {
        Some(at) => at,
        None => {
            lines.push(Line {
                denom,
                collateral: Uint128::zero(),
                collateral_enabled: false,
                debt: Uint128::zero(),
                uncollateralized_debt: false,
            });
            lines.len() - 1
        }
    };
    &mut lines[at]
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use mars::math::health::{red_bank_health_positions, user_position_figures};
    use mars::math::interest::{underlying_debt_amount, underlying_liquidity_amount};
    use mars::types::{DenomPosition, InterestRateModel, Market, UserHealthStatus};
    use redline_pipeline::index::{CollateralEntry, DebtEntry};

    use super::*;

    pub(crate) use testkit::fixtures::{asset_params as params, dec};

    fn market(denom: &str, borrow_rate: &str, liquidity_rate: &str, updated: u64) -> Market {
        Market {
            denom: denom.into(),
            reserve_factor: dec("0.1"),
            interest_rate_model: InterestRateModel::default(),
            borrow_index: dec("1.05"),
            liquidity_index: dec("1.02"),
            borrow_rate: dec(borrow_rate),
            liquidity_rate: dec(liquidity_rate),
            indexes_last_updated: updated,
            collateral_total_scaled: Uint128::zero(),
            debt_total_scaled: Uint128::zero(),
        }
    }

    fn snapshot() -> BlockSnapshot {
        BlockSnapshot {
            chain_id: "devnet-1".into(),
            protocol: ProtocolKind::RedBank,
            height: 10,
            time: Timestamp::from_seconds(1_000_000),
            prices: BTreeMap::from([
                ("uatom".into(), dec("7.5")),
                ("uusdc".into(), dec("1")),
                ("uosmo".into(), dec("0.5")),
            ]),
            liquidation_prices: BTreeMap::new(),
            markets: vec![
                market("uatom", "0.1", "0.05", 1_000_000 - 86_400),
                market("uusdc", "0.2", "0.12", 1_000_000 - 3_600),
                market("uosmo", "0", "0", 1_000_000),
            ],
            params: vec![
                params("uatom", "0.7", "0.8"),
                params("uusdc", "0.75", "0.8"),
                params("uosmo", "0.55", "0.65"),
            ],
            target_health_factor: dec("1.05"),
            accounts: 1,
        }
    }

    fn table() -> DenomTable {
        DenomTable::from_names(vec!["uatom".into(), "uusdc".into(), "uosmo".into()])
    }

    fn account(collaterals: &[(u32, u128, bool)], debts: &[(u32, u128, bool)]) -> IndexedAccount {
        IndexedAccount {
            address: "osmo1test".into(),
            collaterals: collaterals
                .iter()
                .map(|&(d, a, enabled)| CollateralEntry {
                    denom: DenomId(d),
                    amount_scaled: Uint128::new(a),
                    enabled,
                })
                .collect(),
            debts: debts
                .iter()
                .map(|&(d, a, uncollateralized)| DebtEntry {
                    denom: DenomId(d),
                    amount_scaled: Uint128::new(a),
                    uncollateralized,
                })
                .collect(),
        }
    }

    /// The contract's path, from `Market`s and `red_bank_health_positions`.
    fn contract_health(snapshot: &BlockSnapshot, account: &IndexedAccount) -> Health {
        let names = table();
        let now = snapshot.time.seconds();
        let market = |id: DenomId| {
            snapshot
                .markets
                .iter()
                .find(|m| m.denom == names.name(id).unwrap())
                .unwrap()
        };
        let mut holdings: BTreeMap<String, DenomPosition> = BTreeMap::new();
        for c in &account.collaterals {
            let name = names.name(c.denom).unwrap().to_string();
            let h = holdings.entry(name.clone()).or_insert(DenomPosition {
                denom: name,
                ..Default::default()
            });
            h.collateral_amount =
                underlying_liquidity_amount(c.amount_scaled, market(c.denom), now).unwrap();
            h.collateral_enabled = c.enabled;
        }
        for d in &account.debts {
            let name = names.name(d.denom).unwrap().to_string();
            let h = holdings.entry(name.clone()).or_insert(DenomPosition {
                denom: name,
                ..Default::default()
            });
            h.debt_amount = underlying_debt_amount(d.amount_scaled, market(d.denom), now).unwrap();
            h.uncollateralized_debt = d.uncollateralized;
        }
        let holdings: Vec<DenomPosition> = holdings.into_values().collect();
        let positions = red_bank_health_positions(
            &holdings,
            |d| snapshot.prices.get(d).copied(),
            |d| snapshot.params.iter().find(|p| p.denom == d),
        )
        .unwrap();
        compute_health(&positions).unwrap()
    }

    #[test]
    fn equals_the_contract_path_with_interest() {
        let snapshot = snapshot();
        let ctx = BlockContext::new(&snapshot, &table());
        assert!(ctx.same_prices());
        let cases = [
            account(&[(0, 10_000_000_000, true)], &[(1, 55_000_000_000, false)]),
            account(
                &[(0, 1_234_567, true), (2, 99_999_999, false)],
                &[(1, 7_654_321, false), (0, 1, false)],
            ),
            account(&[(1, 3, true)], &[(1, 2, true)]),
            account(&[(2, 10, true)], &[]),
        ];
        for case in cases {
            let ours = ctx.evaluate(&case).unwrap();
            assert_eq!(ours.health, contract_health(&snapshot, &case));
            assert_eq!(ours.liquidation_health, ours.health);
        }
    }

    #[test]
    fn interest_is_accrued_to_the_block_time() {
        let snapshot = snapshot();
        let ctx = BlockContext::new(&snapshot, &table());
        // One day at 10%: 1.05 · (1 + 0.1 · 86400/31536000), each product floored.
        let atom = ctx.denom(DenomId(0)).unwrap();
        let expected = dec("1.05")
            * (Decimal::one() + dec("0.1") * Decimal::from_ratio(86_400u128, 31_536_000u128));
        assert_eq!(atom.borrow_index, expected);
        assert!(atom.borrow_index > dec("1.05"));
        // 10^12 scaled debt: ceil(floor(10^12 · index) / 10^6).
        let health = ctx
            .evaluate(&account(&[], &[(0, 1_000_000_000_000, false)]))
            .unwrap();
        let debt = health.lines[0].debt;
        assert_eq!(
            debt,
            Uint128::new(1_000_000_000_000)
                .mul_floor(expected)
                .checked_div_ceil(Decimal::from_ratio(1_000_000u128, 1u128))
                .unwrap()
        );
        // Debt without collateral: borrowing, both health factors 0.
        let figures = user_position_figures(&health.health);
        assert_eq!(
            figures.health_status,
            UserHealthStatus::Borrowing {
                max_ltv_hf: Decimal::zero(),
                liq_threshold_hf: Decimal::zero()
            }
        );
        let collateral_only = ctx
            .evaluate(&account(&[(0, 1_000_000, true)], &[]))
            .unwrap();
        assert_eq!(
            user_position_figures(&collateral_only.health).health_status,
            UserHealthStatus::NotBorrowing
        );
    }

    #[test]
    fn bad_denoms_skip_the_account_with_the_reason() {
        let mut snapshot = snapshot();
        snapshot.prices.remove("uosmo");
        snapshot.prices.insert("uusdc".into(), Decimal::zero());
        let names = DenomTable::from_names(vec![
            "uatom".into(),
            "uusdc".into(),
            "uosmo".into(),
            "unknown".into(),
        ]);
        let ctx = BlockContext::new(&snapshot, &names);
        let reason = |a: IndexedAccount| ctx.evaluate(&a).unwrap_err().reason;
        assert_eq!(
            reason(account(&[(0, 1, true)], &[(1, 1, false)])),
            SkipReason::ZeroPrice
        );
        // Disabled collateral still needs a price, as on chain.
        assert_eq!(
            reason(account(&[(0, 1, true), (2, 5, false)], &[])),
            SkipReason::MissingPrice
        );
        assert_eq!(
            reason(account(&[(3, 1, true)], &[])),
            SkipReason::UnknownDenom
        );
        assert_eq!(
            reason(account(&[(9, 1, true)], &[])),
            SkipReason::UnknownDenom
        );
        let skip = ctx
            .evaluate(&account(&[(0, 1, true)], &[(2, 1, false)]))
            .unwrap_err();
        assert!(skip.detail.contains("uosmo"), "{}", skip.detail);
        assert_eq!(skip.account, "osmo1test");
        // An account of usable denoms is still fine.
        ctx.evaluate(&account(&[(0, 1_000, true)], &[])).unwrap();
    }

    #[test]
    fn liquidation_prices_give_the_liquidation_health() {
        let mut snapshot = snapshot();
        snapshot.liquidation_prices = snapshot.prices.clone();
        snapshot.liquidation_prices.insert("uatom".into(), dec("7"));
        let ctx = BlockContext::new(&snapshot, &table());
        assert!(!ctx.same_prices());
        let a = account(&[(0, 10_000_000_000, true)], &[(1, 56_000_000_000, false)]);
        let health = ctx.evaluate(&a).unwrap();
        assert_eq!(health.health, contract_health(&snapshot, &a));
        assert!(
            health.liquidation_health.liquidation_health_factor
                < health.health.liquidation_health_factor
        );
    }
}
