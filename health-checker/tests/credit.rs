//! Credit-account jobs: hand-made credit accounts in the credit book and a credit snapshot get
//! the health and plans worked out by hand from Mars's formulas (debt shares with interest,
//! lends, the health computer, the liquidation bonus, the target-health cap, the protocol fee,
//! profit), queued most profitable first beside the Red Bank's candidates.

mod support;

use cosmwasm_std::Uint128;
use mars::msg::health::AccountKind;
use mars::types::{AccountKey, CreditManagerDebts, Health, Market, StoredCreditAccount};
use redline_health_checker::HealthSource;
use redline_pipeline::index::credit::{CreditBook, CreditSnapshot};
use redline_pipeline::index::{BlockSnapshot, IndexArgs};
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind};
use support::*;
use testkit::fixtures::{self, asset_params, dec};
use testkit::RedisServer;

const CHAIN: &str = "credit-1";
const HEIGHT: u64 = 70;
/// A tenth of a 365-day year, in seconds.
const TENTH_OF_A_YEAR: u64 = 3_153_600;

fn stored(id: u64, deposit: u128, lend_scaled: u128, shares: u128) -> StoredCreditAccount {
    let one = |denom: &str, amount: u128| {
        (amount > 0)
            .then(|| (denom.to_string(), Uint128::new(amount)))
            .into_iter()
            .collect()
    };
    StoredCreditAccount {
        account_id: id,
        kind: AccountKind::Default,
        coin_balances: one("uatom", deposit),
        debt_shares: one("uusdc", shares),
        lends_scaled: one("uatom", lend_scaled),
    }
}

/// The credit-account job of block `HEIGHT`, as the collector cuts it.
fn credit_job(accounts: u64) -> HealthCheckJob {
    HealthCheckJob {
        chain_id: CHAIN.into(),
        protocol: ProtocolKind::Rover,
        height: HEIGHT,
        bucket_start: 0,
        bucket_end: 1,
        accounts,
    }
}

fn snapshot(time: u64) -> CreditSnapshot {
    let params = |denom, max_ltv, lt| {
        let mut params = asset_params(denom, max_ltv, lt);
        params.credit_manager.whitelisted = true;
        params
    };
    let prices = |atom| fixtures::prices(&[("uatom", atom), ("uusdc", "1")]);
    let usdc = Market {
        denom: "uusdc".into(),
        borrow_rate: dec("0.1"),
        indexes_last_updated: time - TENTH_OF_A_YEAR,
        ..Market::default()
    };
    let atom = Market {
        denom: "uatom".into(),
        indexes_last_updated: time,
        ..Market::default()
    };
    CreditSnapshot {
        block: BlockSnapshot {
            protocol: ProtocolKind::Rover,
            prices: prices("8"),
            liquidation_prices: prices("7.5"),
            markets: vec![atom, usdc],
            params: vec![
                params("uatom", "0.7", "0.8"),
                params("uusdc", "0.75", "0.8"),
            ],
            accounts: 3,
            ..fixtures::snapshot(CHAIN, HEIGHT, time)
        },
        manager_debts: CreditManagerDebts {
            total_debt_shares: [("uusdc".to_string(), Uint128::new(4_000_000))].into(),
            red_bank_debt_scaled: [("uusdc".to_string(), Uint128::new(130_000_000_000))].into(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_made_credit_accounts_get_the_plans_worked_out_by_hand() {
    let redis = RedisServer::start().unwrap();
    let book = CreditBook::new(
        redis_conn(&redis).await,
        IndexArgs::default().namespace(CHAIN, ProtocolKind::Rover),
    );
    // 9: 9,000 uatom deposited and 1,000 lent; 10: 10,000 lent; both owe half the credit
    // manager's uusdc debt. 11 owes nothing. 12 owes a unit against a coin without asset params
    // (worth nothing): liquidatable, but no liquidation the credit manager accepts, so not
    // queued.
    let accounts = [
        stored(9, 9_000, 1_000_000_000, 2_000_001),
        stored(10, 0, 10_000_000_000, 1_999_999),
        stored(11, 1_000_000, 0, 0),
        StoredCreditAccount {
            coin_balances: [("ufoo".to_string(), Uint128::new(1_000))].into(),
            ..stored(12, 0, 0, 1)
        },
    ];
    book.replace(HEIGHT, &accounts).await.unwrap();
    let time = 1_700_000_000u64;
    book.write_snapshot(&snapshot(time), SNAPSHOT_TTL)
        .await
        .unwrap();

    let checker = checker(&redis, HealthSource::Offchain, None, 1_000).await;
    let job = credit_job(3);
    let report = checker.process(&job).await.unwrap();
    assert_eq!((report.checked, report.liquidatable), (4, 3), "{report:?}");
    let waiting = queued_candidates(&checker, 10).await;

    // The credit manager's debt: uusdc borrow index 1 · (1 + 0.1 · 0.1) = 1.01, so
    // ⌈1.3e11 · 1.01 / 1e6⌉ = 131,300; account 9 owes ⌈131,300 · 2,000,001 / 4,000,000⌉
    // = ⌈65,650.03⌉ = 65,651, account 10 ⌈65,649.97⌉ = 65,650 (each rounded up).
    // Collateral at the liquidation price 7.5: 9,000 · 7.5 + 1,000 · 7.5 = 75,000 for both;
    // LT-weighted 60,000, max-LTV-weighted 52,500.
    // Account 10: HF 60,000 / 65,650 = 0.913937547600913937; bonus min(0.01 + 2 · 0.086…,
    // max(min(75,000 / 65,650 − 1, 0.1), 0.02)) = 0.1; the THF caps the repay at
    // (⌊1.05 · 65,650⌋ − 60,000) / (1.05 − 0.8 · 1.1) = 8,932 / 0.17 = 52,541; seized
    // ⌊⌊52,541 · 1.1⌋ / 7.5⌋ = ⌊57,795 / 7.5⌋ = 7,706; fee ⌊⌈5,254 · 0.1⌉ / 7.5⌋ = ⌊526 / 7.5⌋
    // = 70; received 7,636: profit 7,636 · 7.5 − 52,541 = 4,729 uusdc = $0.004729 (from its lend).
    // Account 9: HF 60,000 / 65,651 = 0.913923626448949749; cap (68,933 − 60,000) / 0.17 = 52,547;
    // from its deposit (9,000 · 7.5 = 67,500 bounds the repay at ⌊67,500 / 1.1⌋ = 61,363):
    // seized ⌊57,801 / 7.5⌋ = 7,706, fee 70, received 7,636: profit 57,270 − 52,547 = 4,723;
    // from its lend (7,500 bounds the repay at 6,818): received 999 − 9 = 990, profit 607.
    assert_eq!(waiting.len(), 2);
    let (first, second) = (&waiting[0], &waiting[1]);
    assert_eq!(first.account, AccountKey::CreditAccount(10));
    assert_eq!(first.protocol, ProtocolKind::Rover);
    let plan = first.plan.as_ref().unwrap();
    assert_eq!(
        (plan.debt_to_repay, plan.collateral_received, plan.from_lend),
        (Uint128::new(52_541), Uint128::new(7_636), true)
    );
    assert_eq!(plan.expected_profit_usd, dec("0.004729"));
    assert_eq!(
        first.health,
        Health {
            total_debt_value: Uint128::new(65_650),
            total_collateral_value: Uint128::new(75_000),
            max_ltv_adjusted_collateral: Uint128::new(52_500),
            liquidation_threshold_adjusted_collateral: Uint128::new(60_000),
            max_ltv_health_factor: Some(dec("0.799695354150799695")),
            liquidation_health_factor: Some(dec("0.913937547600913937")),
        }
    );

    assert_eq!(second.account, AccountKey::CreditAccount(9));
    let plan = second.plan.as_ref().unwrap();
    assert_eq!(
        (plan.debt_to_repay, plan.collateral_received, plan.from_lend),
        (Uint128::new(52_547), Uint128::new(7_636), false)
    );
    assert_eq!(plan.expected_profit_usd, dec("0.004723"));
    assert_eq!(
        second.health.liquidation_health_factor,
        Some(dec("0.913923626448949749"))
    );
    assert_eq!(second.health.total_debt_value, Uint128::new(65_651));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_job_without_its_snapshot_is_missed() {
    let redis = RedisServer::start().unwrap();
    let checker = checker(&redis, HealthSource::Offchain, None, 1_000).await;
    let job = credit_job(0);
    let report = checker.process(&job).await.unwrap();
    assert_eq!(
        report.outcome,
        redline_health_checker::JobOutcome::MissedNoSnapshot
    );
}
