//! Liquidatable accounts of a real devnet land in the liquidation queue with the right plan,
//! highest profit first; the near-liquidation set follows the chain's health factors; the
//! on-chain baseline finds the same accounts.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128};
use redline_common::chain::ChainClient;
use redline_common::jobs::ProtocolKind;
use redline_common::math::health::compute_health;
use redline_common::math::interest::{underlying_debt_amount, underlying_liquidity_amount};
use redline_common::math::liquidation::{calculate_liquidation_amounts, LiquidationInput};
use redline_common::msg::red_bank::QueryMsg;
use redline_common::queue::Queue;
use redline_common::testkit::RedisServer;
use redline_common::types::{HealthPosition, UserPositionFigures};
use redline_health_checker::onchain::health_from_figures;
use redline_health_checker::HealthSource;
use support::*;

const SNAPSHOT_TTL: Duration = Duration::from_secs(600);

/// The chain's liquidation health factor of every borrower (None: no debt).
async fn chain_health_factors(devnet: &Devnet) -> Vec<(String, Option<Decimal>)> {
    let mut out = Vec::new();
    for account in &devnet.borrowers {
        let figures: UserPositionFigures = devnet
            .client
            .query_smart(
                devnet.red_bank(),
                &QueryMsg::UserPositionLiquidationPricing {
                    user: account.clone(),
                    account_id: None,
                },
                None,
            )
            .await
            .unwrap();
        out.push((
            account.clone(),
            health_from_figures(&figures).liquidation_health_factor,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liquidations_queued_by_profit_with_hand_checked_plan() {
    let devnet = Devnet::start(300, 7, Duration::from_millis(300)).await;
    let chain_id = devnet.manifest.chain_id.clone();
    let redis = RedisServer::start().unwrap();
    let index = create_index(&redis, &chain_id).await;
    let indexed = devnet.fill_index(&index).await as u64;
    assert!(indexed > 200, "{indexed} borrowers with debt");

    // ATOM and OSMO fall by a quarter: many accounts become liquidatable.
    let height = devnet
        .move_prices(&[("uatom", "7.5"), ("uosmo", "0.375")])
        .await;
    let snapshot = devnet.snapshot(height).await;
    index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    index
        .set_last_indexed(height, Some(snapshot.time))
        .await
        .unwrap();

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
    let liquidatable_on_chain: BTreeSet<String> = chain
        .iter()
        .filter(|(_, hf)| hf.is_some_and(|hf| hf < Decimal::one()))
        .map(|(a, _)| a.clone())
        .collect();
    let near_on_chain: BTreeSet<String> = chain
        .iter()
        .filter(|(_, hf)| hf.is_some_and(|hf| hf < Decimal::percent(105)))
        .map(|(a, _)| a.clone())
        .collect();
    let queue = checker.outputs().liquidation_queue();
    let waiting = queue.peek(10_000).await.unwrap();
    let queued: BTreeSet<String> = waiting
        .iter()
        .map(|w| w.job.as_ref().unwrap().account.clone())
        .collect();
    assert_eq!(queued, liquidatable_on_chain);
    let near: BTreeSet<String> = checker
        .outputs()
        .near_liquidation(&chain_id, ProtocolKind::RedBank, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(near, near_on_chain);
    assert_eq!(
        checker.metrics().liquidatable_found.get(),
        report.liquidatable
    );

    // Highest expected profit first.
    let profits: Vec<Decimal> = waiting
        .iter()
        .map(|w| w.job.as_ref().unwrap().priority())
        .collect();
    assert!(profits.windows(2).all(|w| w[0] >= w[1]), "{profits:?}");
    assert!(profits[0] > Decimal::zero());

    // The top candidate's plan, by hand: every (debt, collateral) pair through the math.
    let top = waiting[0].job.clone().unwrap();
    assert_eq!(top.height, height);
    let plan = top.plan.clone().unwrap();
    let positions = devnet.positions(&top.account).await;
    let now = snapshot.time.seconds();
    let market = |d: &str| snapshot.markets.iter().find(|m| m.denom == d).unwrap();
    let params = |d: &str| snapshot.params.iter().find(|p| p.denom == d).unwrap();
    let price = |d: &str| snapshot.liquidation_prices[d];
    let mut denoms: BTreeSet<&str> = positions.collaterals.keys().map(String::as_str).collect();
    denoms.extend(positions.debts.keys().map(String::as_str));
    let lines: Vec<HealthPosition> = denoms
        .iter()
        .map(|d| HealthPosition {
            denom: d.to_string(),
            price: price(d),
            collateral_amount: positions
                .collaterals
                .get(*d)
                .filter(|c| c.enabled)
                .map(|c| underlying_liquidity_amount(c.amount_scaled, market(d), now).unwrap())
                .unwrap_or_default(),
            debt_amount: positions
                .debts
                .get(*d)
                .map(|c| underlying_debt_amount(c.amount_scaled, market(d), now).unwrap())
                .unwrap_or_default(),
            max_ltv: params(d).max_loan_to_value,
            liquidation_threshold: params(d).liquidation_threshold,
        })
        .collect();
    let health = compute_health(&lines).unwrap();
    assert_eq!(health, top.health);
    let mut best: Option<(Uint128, String, String, Uint128, Uint128)> = None;
    for debt in lines.iter().filter(|l| !l.debt_amount.is_zero()) {
        for coll in lines.iter().filter(|l| !l.collateral_amount.is_zero()) {
            let Ok(amounts) = calculate_liquidation_amounts(&LiquidationInput {
                collateral_amount: coll.collateral_amount,
                collateral_price: coll.price,
                collateral_params: params(&coll.denom),
                debt_amount: debt.debt_amount,
                debt_requested_to_repay: debt.debt_amount,
                debt_price: debt.price,
                target_health_factor: snapshot.target_health_factor,
                health: &health,
            }) else {
                continue;
            };
            let received = amounts.collateral_amount_received_by_liquidator;
            let profit = received
                .mul_floor(coll.price)
                .saturating_sub(amounts.debt_amount_to_repay.mul_floor(debt.price));
            if best.as_ref().is_none_or(|b| profit > b.0) {
                best = Some((
                    profit,
                    debt.denom.clone(),
                    coll.denom.clone(),
                    amounts.debt_amount_to_repay,
                    received,
                ));
            }
        }
    }
    let (profit, debt_denom, collateral_denom, repay, received) = best.unwrap();
    assert_eq!(plan.debt_denom, debt_denom);
    assert_eq!(plan.collateral_denom, collateral_denom);
    assert_eq!(plan.debt_to_repay, repay);
    assert_eq!(plan.collateral_received, received);
    // Base units are uusdc: 10^6 per USD.
    assert_eq!(
        plan.expected_profit_usd,
        Decimal::from_ratio(profit, 1_000_000u128)
    );

    // The on-chain baseline finds the same accounts with the same pairs.
    let onchain_redis = RedisServer::start().unwrap();
    let onchain_index = create_index(&onchain_redis, &chain_id).await;
    devnet.fill_index(&onchain_index).await;
    onchain_index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    let baseline = checker_for(&onchain_redis, HealthSource::Onchain, Some(&devnet)).await;
    let onchain_report = baseline
        .process(&whole_index_job(&chain_id, height))
        .await
        .unwrap();
    assert_eq!(onchain_report.checked, indexed);
    assert_eq!(onchain_report.liquidatable, report.liquidatable);
    let onchain_waiting = baseline
        .outputs()
        .liquidation_queue()
        .peek(10_000)
        .await
        .unwrap();
    let onchain_queued: BTreeSet<String> = onchain_waiting
        .iter()
        .map(|w| w.job.as_ref().unwrap().account.clone())
        .collect();
    assert_eq!(onchain_queued, queued);
    let onchain_top = onchain_waiting
        .iter()
        .map(|w| w.job.clone().unwrap())
        .find(|c| c.account == top.account)
        .unwrap();
    let onchain_plan = onchain_top.plan.unwrap();
    assert_eq!(onchain_plan.debt_denom, plan.debt_denom);
    assert_eq!(onchain_plan.collateral_denom, plan.collateral_denom);

    // Prices recover at a later block: the near set shrinks back and the waiting candidates of
    // accounts that recovered are withdrawn.
    let recovered = devnet
        .move_prices(&[("uatom", "10"), ("uosmo", "0.5")])
        .await;
    let snapshot = devnet.snapshot(recovered).await;
    index
        .write_block_snapshot(&snapshot, SNAPSHOT_TTL)
        .await
        .unwrap();
    index
        .set_last_indexed(recovered, Some(snapshot.time))
        .await
        .unwrap();
    let report = checker
        .process(&whole_index_job(&chain_id, recovered))
        .await
        .unwrap();
    assert_eq!(report.liquidatable, 0);
    assert_eq!(report.output.retracted, queued.len() as u64);
    assert_eq!(queue.lag().await.unwrap(), 0);
    let chain = chain_health_factors(&devnet).await;
    let near_on_chain: BTreeSet<String> = chain
        .iter()
        .filter(|(_, hf)| hf.is_some_and(|hf| hf < Decimal::percent(105)))
        .map(|(a, _)| a.clone())
        .collect();
    let near: BTreeSet<String> = checker
        .outputs()
        .near_liquidation(&chain_id, ProtocolKind::RedBank, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(near, near_on_chain);
    assert!(!near.is_empty());
}

async fn checker_for(
    redis: &RedisServer,
    source: HealthSource,
    devnet: Option<&Devnet>,
) -> std::sync::Arc<redline_health_checker::HealthChecker<redline_common::chain::TendermintClient>>
{
    checker(redis, source, devnet, 1_000).await
}
