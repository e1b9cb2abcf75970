//! Generated positions for the 1,000,000-account run: `redline_pipeline::index`'s deterministic
//! synthetic accounts (collateral in one denom, sometimes a second one, possibly disabled; debt
//! of 30–90% of the collateral amount in another denom) and a block snapshot that gives them a
//! realistic spread of health: every price 1, liquidation threshold 0.89, markets with a day of
//! interest to accrue. About 2–3% are liquidatable and a few percent near liquidation.

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Uint128};
use mars::types::{AssetParams, InterestRateModel, Market};
use redline_pipeline::index::BlockSnapshot;
use testkit::fixtures::{self, asset_params, dec};

/// Denoms of the generated accounts.
pub const DENOMS: [&str; 4] = ["uatom", "uosmo", "uusdc", "uweth"];

/// A market a day behind the block, with the given indexes and rates.
fn market(
    denom: &str,
    indexes: (Decimal, Decimal),
    rates: (Decimal, Decimal),
    time: u64,
) -> Market {
    Market {
        interest_rate_model: InterestRateModel {
            optimal_utilization_rate: dec("0.8"),
            base: Decimal::zero(),
            slope_1: dec("0.2"),
            slope_2: dec("2"),
        },
        borrow_index: indexes.0,
        liquidity_index: indexes.1,
        borrow_rate: rates.0,
        liquidity_rate: rates.1,
        ..fixtures::market(denom, time - 86_400)
    }
}

/// A snapshot of `prices` (default, liquidation), `markets` and `params`.
fn block(
    chain_id: &str,
    height: u64,
    time_seconds: u64,
    prices: (BTreeMap<String, Decimal>, BTreeMap<String, Decimal>),
    markets: Vec<Market>,
    params: Vec<AssetParams>,
) -> BlockSnapshot {
    BlockSnapshot {
        prices: prices.0,
        liquidation_prices: prices.1,
        markets,
        params,
        ..fixtures::snapshot(chain_id, height, time_seconds)
    }
}

/// The snapshot of block `height` for the generated accounts.
pub fn snapshot(chain_id: &str, height: u64, time_seconds: u64) -> BlockSnapshot {
    let prices: BTreeMap<String, Decimal> = DENOMS
        .iter()
        .map(|d| (d.to_string(), Decimal::one()))
        .collect();
    let markets = DENOMS
        .iter()
        .map(|d| {
            market(
                d,
                (dec("1.02"), dec("1.01")),
                (dec("0.1625"), dec("0.095")),
                time_seconds,
            )
        })
        .collect();
    let params = DENOMS
        .iter()
        .map(|d| asset_params(d, "0.85", "0.89"))
        .collect();
    block(
        chain_id,
        height,
        time_seconds,
        (prices.clone(), prices),
        markets,
        params,
    )
}

/// The realistic generated positions: six denoms with distinct prices and distinct
/// liquidation-kind prices, their own params and interest, 1–4 collaterals and 1–3 debts per
/// account, debt sized so that a few percent are liquidatable after a day of interest.
pub mod realistic {
    use super::*;
    use redline_pipeline::index::{
        codec::address_hash, CollateralEntry, DebtEntry, DenomId, IndexedAccount, PositionIndex,
    };

    /// `(denom, default price, liquidation price, liquidation threshold, max LTV)`.
    pub const ASSETS: [(&str, &str, &str, &str, &str); 6] = [
        ("uatom", "9.52", "9.47", "0.78", "0.74"),
        ("uosmo", "0.553", "0.549", "0.70", "0.65"),
        ("uusdc", "1", "0.9998", "0.92", "0.9"),
        ("uweth", "2301.7", "2296.4", "0.83", "0.8"),
        ("utia", "6.18", "6.11", "0.65", "0.6"),
        ("ustars", "0.0213", "0.0209", "0.55", "0.5"),
    ];

    fn asset(denom_index: usize) -> (Decimal, Decimal, Decimal) {
        let (_, price, _, lt, _) = ASSETS[denom_index];
        (dec(price), dec(lt), dec(ASSETS[denom_index].2))
    }

    /// The snapshot of block `height` for the realistic positions.
    pub fn snapshot(chain_id: &str, height: u64, time_seconds: u64) -> BlockSnapshot {
        let prices = ASSETS.iter().map(|(d, p, ..)| (*d, *p)).collect::<Vec<_>>();
        let liquidation_prices = ASSETS
            .iter()
            .map(|(d, _, lp, ..)| (*d, *lp))
            .collect::<Vec<_>>();
        let markets = ASSETS
            .iter()
            .enumerate()
            .map(|(i, (d, ..))| {
                let i = i as u64;
                market(
                    d,
                    (
                        Decimal::permille(1_010 + 7 * i),
                        Decimal::permille(1_004 + 3 * i),
                    ),
                    (
                        Decimal::permille(80 + 25 * i),
                        Decimal::permille(40 + 12 * i),
                    ),
                    time_seconds,
                )
            })
            .collect();
        let params = ASSETS
            .iter()
            .map(|(d, _, _, lt, ltv)| asset_params(d, ltv, lt))
            .collect();
        block(
            chain_id,
            height,
            time_seconds,
            (
                fixtures::prices(&prices),
                fixtures::prices(&liquidation_prices),
            ),
            markets,
            params,
        )
    }

    /// Account `i`: deterministic, `denoms` the ids of [`ASSETS`] in order. Collateral worth
    /// $100–$1M spread over 1–4 denoms (about one in eight disabled), debt in 1–3 other denoms
    /// worth 35–101.5% of the LT-weighted collateral (so ~2–3% start below HF 1, and interest
    /// moves a few more across).
    pub fn account(i: u64, denoms: &[DenomId]) -> IndexedAccount {
        let mut mix = address_hash(&i.to_le_bytes());
        let mut next = |n: u64| {
            mix = mix.rotate_left(17) ^ mix.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            mix % n
        };
        let n = ASSETS.len() as u64;
        let first = next(n);
        let collaterals_n = 1 + next(4);
        let debts_n = 1 + next(3);
        let value_usd = 100 + next(1_000_000);
        let mut collaterals = Vec::new();
        let mut weighted = Decimal::zero();
        for k in 0..collaterals_n {
            let index = ((first + k) % n) as usize;
            let (price, lt, _) = asset(index);
            let share_usd = Decimal::from_ratio(value_usd * (1 + next(3)), collaterals_n * 2);
            // Micro-units: USD · 10^6 / price.
            let amount = (share_usd * Decimal::from_ratio(1_000_000u128, 1u128)) / price;
            let enabled = next(8) != 0;
            if enabled {
                weighted += share_usd * lt;
            }
            collaterals.push(CollateralEntry {
                denom: denoms[index],
                amount_scaled: amount.to_uint_floor() * Uint128::new(1_000_000),
                enabled,
            });
        }
        let debt_usd = weighted * Decimal::permille(350 + next(666));
        let debts = (0..debts_n)
            .map(|k| {
                let index = ((first + collaterals_n + k) % n) as usize;
                let (price, _, _) = asset(index);
                let share = debt_usd / Decimal::from_ratio(debts_n, 1u64);
                let amount = (share * Decimal::from_ratio(1_000_000u128, 1u128)) / price;
                DebtEntry {
                    denom: denoms[index],
                    amount_scaled: amount.to_uint_floor() * Uint128::new(1_000_000),
                    uncollateralized: false,
                }
            })
            .collect();
        IndexedAccount {
            address: format!("realistic1{i:038x}"),
            collaterals,
            debts,
        }
    }

    /// Writes `count` realistic accounts in chunks.
    pub async fn write(index: &PositionIndex, count: u64) -> anyhow::Result<()> {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.0).collect();
        let ids = index.denom_ids(&names).await?;
        let mut next = 0;
        while next < count {
            let end = (next + 50_000).min(count);
            let accounts: Vec<IndexedAccount> = (next..end).map(|i| account(i, &ids)).collect();
            index.put_accounts(&accounts).await?;
            next = end;
        }
        Ok(())
    }
}
