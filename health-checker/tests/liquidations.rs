//! The liquidation queue and the near-liquidation set of the health checker:
//!
//! - on a real devnet, the accounts queued and the accounts near liquidation are the ones the
//!   chain's own health factors say, highest expected profit first, and the on-chain baseline
//!   finds the same accounts with the same pairs (wiring: see the test's comment);
//! - on a hand-made account, the queued health and plan are the numbers worked out by hand from
//!   Mars's formulas (interest, health, liquidation bonus, close factor, protocol fee, profit).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128};
use mars::types::{AccountKey, Health, Market, UserPositionFigures};
use redline_chain::ChainClient;
use redline_health_checker::onchain::{health_from_figures, user_position_query};
use redline_health_checker::HealthSource;
use redline_pipeline::index::{BlockSnapshot, PositionIndex};
use redline_pipeline::queue::Queue;
use support::*;
use testkit::fixtures::{self, asset_params, dec};
use testkit::RedisServer;

/// Moves prices, then writes the snapshot of the block that applied them to `index` as the
/// collector would; returns it.
async fn move_prices_and_index(
    devnet: &Devnet,
    index: &PositionIndex,
    prices: &[(&str, &str)],
) -> BlockSnapshot {
    let height = devnet.move_prices(prices).await.unwrap();
    let snapshot = devnet.snapshot(height).await.unwrap();
    index_snapshot(index, &snapshot).await;
    snapshot
}

/// The chain's liquidation health factor of every borrower (None: no debt).
async fn chain_health_factors(devnet: &Devnet) -> Vec<(String, Option<Decimal>)> {
    let mut out = Vec::new();
    for account in &devnet.borrowers {
        let figures: UserPositionFigures = devnet
            .client
            .query_smart(devnet.red_bank(), &user_position_query(account, true), None)
            .await
            .unwrap();
        out.push((
            account.clone(),
            health_from_figures(&figures).liquidation_health_factor,
        ));
    }
    out
}

/// The accounts whose health factor in `chain` is below `threshold`.
fn below(chain: &[(String, Option<Decimal>)], threshold: Decimal) -> BTreeSet<String> {
    chain
        .iter()
        .filter(|(_, hf)| hf.is_some_and(|hf| hf < threshold))
        .map(|(a, _)| a.clone())
        .collect()
}

/// The queued and near accounts are the ones the chain's `user_position_liquidation_pricing`
/// health factors say, highest expected profit first; the on-chain baseline agrees.
///
/// Both sides run the shared math (`mars::math`; the devnet's Red Bank calls the same
/// functions), so agreement proves the wiring, not the math: the index filled from the chain's
/// positions (scaled amounts, enabled flags), the block snapshot (markets, params, both price
/// kinds, the THF) read at the right height, interest brought to the block's time, the 1.05
/// near threshold, the queue's ordering and the retraction of recovered accounts. The numbers
/// themselves are checked by hand in `a_hand_made_account_gets_the_plan_worked_out_by_hand`
/// (and in `common/tests/math_cases.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_and_near_accounts_follow_the_chains_health_factors_by_profit() {
    let devnet = start_devnet(300, 7, Duration::from_millis(300)).await;
    let chain_id = devnet.manifest.chain_id.clone();
    let redis = RedisServer::start().unwrap();
    let index = create_index(&redis, &chain_id).await;
    let indexed = fill_index(&devnet, &index).await as u64;
    assert!(indexed > 200, "{indexed} borrowers with debt");

    // ATOM and OSMO fall by a quarter: many accounts become liquidatable.
    let snapshot =
        move_prices_and_index(&devnet, &index, &[("uatom", "7.5"), ("uosmo", "0.375")]).await;
    let height = snapshot.height;

    let checker = checker(&redis, HealthSource::Offchain, None, 1_000).await;
    let report = checker
        .process(&whole_index_job(&chain_id, height))
        .await
        .unwrap();
    assert_eq!(report.checked, indexed);
    assert_eq!(report.skipped, 0);
    assert!(report.liquidatable > 10, "{report:?}");
    assert_eq!(report.output.queued, report.liquidatable);

    // The chain agrees on who is liquidatable and who is near.
    let chain = chain_health_factors(&devnet).await;
    let waiting = queued_candidates(&checker, 10_000).await;
    let queued: BTreeSet<String> = waiting.iter().map(|c| c.account.as_string()).collect();
    assert_eq!(queued, below(&chain, Decimal::one()));
    let near: BTreeSet<String> = near_accounts(&checker, &chain_id, 100_000)
        .await
        .into_iter()
        .collect();
    assert_eq!(near, below(&chain, Decimal::percent(105)));
    assert_eq!(
        checker.metrics().liquidatable_found.get(),
        report.liquidatable
    );

    // Highest expected profit first.
    let profits: Vec<Decimal> = waiting.iter().map(|c| c.priority()).collect();
    assert!(profits.windows(2).all(|w| w[0] >= w[1]), "{profits:?}");
    assert!(profits[0] > Decimal::zero());

    // The top candidate, for the on-chain baseline below.
    let top = waiting[0].clone();
    assert_eq!(top.height, height);
    let plan = top.plan.clone().unwrap();

    // The on-chain baseline finds the same accounts with the same pairs.
    let onchain_redis = RedisServer::start().unwrap();
    let onchain_index = create_index(&onchain_redis, &chain_id).await;
    fill_index(&devnet, &onchain_index).await;
    onchain_index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    let baseline =
        support::checker(&onchain_redis, HealthSource::Onchain, Some(&devnet), 1_000).await;
    let onchain_report = baseline
        .process(&whole_index_job(&chain_id, height))
        .await
        .unwrap();
    assert_eq!(onchain_report.checked, indexed);
    assert_eq!(onchain_report.liquidatable, report.liquidatable);
    let onchain_waiting = queued_candidates(&baseline, 10_000).await;
    let onchain_queued: BTreeSet<String> = onchain_waiting
        .iter()
        .map(|c| c.account.as_string())
        .collect();
    assert_eq!(onchain_queued, queued);
    let onchain_top = onchain_waiting
        .into_iter()
        .find(|c| c.account == top.account)
        .unwrap();
    let onchain_plan = onchain_top.plan.unwrap();
    assert_eq!(onchain_plan.debt_denom, plan.debt_denom);
    assert_eq!(onchain_plan.collateral_denom, plan.collateral_denom);

    // Prices recover at a later block: the near set shrinks back and the waiting candidates of
    // accounts that recovered are withdrawn.
    let recovered = move_prices_and_index(&devnet, &index, &[("uatom", "10"), ("uosmo", "0.5")])
        .await
        .height;
    let report = checker
        .process(&whole_index_job(&chain_id, recovered))
        .await
        .unwrap();
    assert_eq!(report.liquidatable, 0);
    assert_eq!(report.output.retracted, queued.len() as u64);
    assert_eq!(
        checker.outputs().liquidation_queue().lag().await.unwrap(),
        0
    );
    let chain = chain_health_factors(&devnet).await;
    let near: BTreeSet<String> = near_accounts(&checker, &chain_id, 100_000)
        .await
        .into_iter()
        .collect();
    assert_eq!(near, below(&chain, Decimal::percent(105)));
    assert!(!near.is_empty());
}

/// A tenth of Mars's 365-day year (3,153,600 of 31,536,000 seconds): interest over it is a
/// tenth of the yearly rate.
const TENTH_OF_A_YEAR: u64 = 3_153_600;

/// One hand-made account through the whole health checker (index in Redis, block snapshot,
/// interest, health at liquidation prices, every pair priced, the best one queued): the queued
/// health and plan equal numbers worked out by hand from Mars's formulas, written below. Both
/// pairs raise the health factor (HF ≥ LT·(1 + LB) for each collateral), so the expectation
/// does not depend on any rule about liquidations that lower it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_account_gets_the_plan_worked_out_by_hand() {
    const CHAIN: &str = "hand-1";
    const HEIGHT: u64 = 50;
    let redis = RedisServer::start().unwrap();
    let index = create_index(&redis, CHAIN).await;
    let ids = index.denom_ids(&["uatom", "uosmo", "uusdc"]).await.unwrap();
    let [atom, osmo, usdc] = ids[..] else {
        unreachable!()
    };
    index
        .put_accounts(&[account(
            "osmo1handmade",
            &[
                (atom, 7_999_999_999_999, true),
                (osmo, 50_000_000_000_000, true),
            ],
            &[(usdc, 66_999_999_999_999)],
        )])
        .await
        .unwrap();
    let time = 1_700_000_000u64;
    // Indexes last brought up to date a tenth of a year before the block.
    let market =
        |denom: &str, liquidity_index: &str, liquidity_rate: &str, borrow_rate: &str| Market {
            denom: denom.into(),
            liquidity_index: dec(liquidity_index),
            liquidity_rate: dec(liquidity_rate),
            borrow_index: Decimal::one(),
            borrow_rate: dec(borrow_rate),
            indexes_last_updated: time - TENTH_OF_A_YEAR,
            ..Market::default()
        };
    let prices = |atom| fixtures::prices(&[("uatom", atom), ("uosmo", "0.375"), ("uusdc", "1")]);
    let snapshot = BlockSnapshot {
        // ATOM's liquidation price is apart from its default price: liquidations use it.
        prices: prices("8"),
        liquidation_prices: prices("7.5"),
        markets: vec![
            market("uatom", "1", "0.05", "0"),
            market("uosmo", "1.2", "0.02", "0"),
            market("uusdc", "1", "0", "0.1"),
        ],
        params: vec![
            asset_params("uatom", "0.7", "0.8"),
            asset_params("uosmo", "0.55", "0.65"),
            asset_params("uusdc", "0.75", "0.8"),
        ],
        accounts: 1,
        ..fixtures::snapshot(CHAIN, HEIGHT, time)
    };
    index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();

    let checker = checker(&redis, HealthSource::Offchain, None, 1_000).await;
    let report = checker
        .process(&whole_index_job(CHAIN, HEIGHT))
        .await
        .unwrap();
    assert_eq!(
        (report.checked, report.liquidatable, report.skipped),
        (1, 1, 0),
        "{report:?}"
    );
    let waiting = queued_candidates(&checker, 10).await;
    assert_eq!(waiting.len(), 1);
    let candidate = waiting[0].clone();
    assert_eq!(
        candidate.account,
        AccountKey::Address("osmo1handmade".into())
    );
    assert_eq!(candidate.height, HEIGHT);

    // Indexes, linear over the tenth of a year: uatom liquidity 1 · (1 + 0.05 · 0.1) = 1.005,
    // uosmo liquidity 1.2 · (1 + 0.02 · 0.1) = 1.2024, uusdc borrow 1 · (1 + 0.1 · 0.1) = 1.01.
    // Underlying = ⌊scaled · index⌋ / 10^6, collateral truncated and debt ceiled:
    //   uatom ⌊7,999,999,999,999 · 1.005⌋ = 8,039,999,999,998 → 8,039,999 (truncated);
    //   uosmo 50,000,000,000,000 · 1.2024 = 60,120,000,000,000 → 60,120,000;
    //   uusdc ⌊66,999,999,999,999 · 1.01⌋ = 67,669,999,999,998 → ⌈67,669,999.999998⌉ = 67,670,000.
    // Values at the liquidation prices (ATOM 7.5, not its default 8):
    //   uatom ⌊8,039,999 · 7.5⌋ = 60,299,992; uosmo 60,120,000 · 0.375 = 22,545,000;
    //   collateral 82,844,992; debt 67,670,000 · 1 = 67,670,000.
    //   LT-weighted ⌊60,299,992 · 0.8⌋ + 22,545,000 · 0.65 = 48,239,993 + 14,654,250 = 62,894,243;
    //   max-LTV-weighted ⌊60,299,992 · 0.7⌋ + 22,545,000 · 0.55 = 42,209,994 + 12,399,750
    //   = 54,609,744.
    //   HF = 62,894,243 / 67,670,000 = 0.929425786907048913 (18 decimals, floored);
    //   max-LTV HF = 54,609,744 / 67,670,000 = 0.807000797990246785.
    assert_eq!(
        candidate.health,
        Health {
            total_debt_value: Uint128::new(67_670_000),
            total_collateral_value: Uint128::new(82_844_992),
            max_ltv_adjusted_collateral: Uint128::new(54_609_744),
            liquidation_threshold_adjusted_collateral: Uint128::new(62_894_243),
            max_ltv_health_factor: Some(dec("0.807000797990246785")),
            liquidation_health_factor: Some(dec("0.929425786907048913")),
        }
    );

    // Bonus (same params for both collaterals): CR = 82,844,992 / 67,670,000 = 1.2242…;
    // LB = min(0.01 + 2 · (1 − 0.929425786907048913), max(min(CR − 1, 0.1), 0.02))
    //    = min(0.151148426185902174, 0.1) = 0.1.
    // Neither pair lowers the health factor: HF 0.929… ≥ 0.8 · 1.1 = 0.88 (uatom) and
    // ≥ 0.65 · 1.1 = 0.715 (uosmo).
    //
    // uusdc debt, uatom collateral: LT·(1 + LB) = 0.88 < THF 1.05, so the close factor caps the
    // repay at (⌊1.05 · 67,670,000⌋ − 62,894,243) / (1.05 − 0.88) = (71,053,500 − 62,894,243)
    // / 0.17 = 8,159,257 / 0.17 = 47,995,629 (floored); the collateral bounds it at
    // ⌊60,299,992 / 1.1⌋ = 54,818,174. Repay = min(67,670,000, 47,995,629, 54,818,174)
    // = 47,995,629.
    // Seized ⌊⌊47,995,629 · 1.1⌋ / 7.5⌋ = ⌊52,795,191 / 7.5⌋ = 7,039,358; protocol fee
    // ⌊⌈⌊47,995,629 · 0.1⌋ · 0.1⌉ / 7.5⌋ = ⌊⌈479,956.2⌉ / 7.5⌋ = ⌊479,957 / 7.5⌋ = 63,994;
    // received 7,039,358 − 63,994 = 6,975,364.
    // Profit ⌊6,975,364 · 7.5⌋ − 47,995,629 = 52,315,230 − 47,995,629 = 4,319,601 uusdc.
    //
    // uusdc debt, uosmo collateral: cap 8,159,257 / (1.05 − 0.715) = 24,355,991; collateral
    // bound ⌊22,545,000 / 1.1⌋ = 20,495,454 = the repay. Seized ⌊⌊20,495,454 · 1.1⌋ / 0.375⌋
    // = ⌊22,544,999 / 0.375⌋ = 60,119,997; fee ⌊⌈2,049,545 · 0.1⌉ / 0.375⌋ = ⌊204,955 / 0.375⌋
    // = 546,546; received 59,573,451, worth ⌊59,573,451 · 0.375⌋ = 22,340,044: profit
    // 22,340,044 − 20,495,454 = 1,844,590 uusdc. The uatom pair earns more.
    let plan = candidate.plan.clone().unwrap();
    assert_eq!(plan.debt_denom, "uusdc");
    assert_eq!(plan.collateral_denom, "uatom");
    assert_eq!(plan.debt_to_repay, Uint128::new(47_995_629));
    assert_eq!(plan.collateral_received, Uint128::new(6_975_364));
    // uusdc base units: 10^6 per USD.
    assert_eq!(plan.expected_profit_usd, dec("4.319601"));
    assert_eq!(candidate.priority(), dec("4.319601"));
}
