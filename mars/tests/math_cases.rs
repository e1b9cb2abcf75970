//! Health and liquidation cases with every expected number worked out by hand from the Mars
//! formulas (the derivation is in the comment above each assertion). Notation: `⌊x⌋` floor,
//! `⌈x⌉` ceiling; Decimals carry 18 fractional digits and every Decimal product or quotient is
//! itself floored to 18 digits.

use std::collections::HashMap;
use std::str::FromStr;

use cosmwasm_std::{Decimal, Uint128};
use mars::math::health::{compute_health, red_bank_health_positions, user_position_figures};
use mars::math::liquidation::{
    apply_liquidation, calculate_liquidation_amounts, calculate_liquidation_bonus,
    max_debt_repayable_amount, LiquidationInput,
};
use mars::math::MathError;
use mars::rule::RepayLimit;
use mars::types::{
    AssetParams, CmSettings, DenomPosition, Health, HealthPosition, LiquidationAmounts,
    LiquidationBonus, RedBankSettings, UserHealthStatus,
};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn u(n: u128) -> Uint128 {
    Uint128::new(n)
}

fn params(
    denom: &str,
    max_ltv: &str,
    lt: &str,
    lb: (&str, &str, &str, &str),
    protocol_fee: &str,
) -> AssetParams {
    AssetParams {
        denom: denom.to_string(),
        credit_manager: CmSettings {
            withdraw_enabled: None,
            whitelisted: true,
            hls: None,
        },
        red_bank: RedBankSettings {
            withdraw_enabled: None,
            deposit_enabled: true,
            borrow_enabled: true,
        },
        max_loan_to_value: dec(max_ltv),
        liquidation_threshold: dec(lt),
        liquidation_bonus: LiquidationBonus {
            starting_lb: dec(lb.0),
            slope: dec(lb.1),
            min_lb: dec(lb.2),
            max_lb: dec(lb.3),
        },
        protocol_liquidation_fee: dec(protocol_fee),
        deposit_cap: u(u128::MAX),
        close_factor: None,
        reserve_factor: None,
        interest_rate_model: None,
    }
}

/// The ATOM params of the case measured on the real Mars contracts, which most assets here share.
fn standard(denom: &str) -> AssetParams {
    params(denom, "0.7", "0.8", ("0.01", "2", "0.02", "0.1"), "0.1")
}

fn atom() -> AssetParams {
    standard("uatom")
}

fn usdc() -> AssetParams {
    standard("uusdc")
}

fn osmo() -> AssetParams {
    params("uosmo", "0.5", "0.6", ("0.01", "2", "0.02", "0.1"), "0.1")
}

/// A stable coin with a high liquidation threshold (0.98) and a flat 0.1 bonus.
fn stable() -> AssetParams {
    params("ustable", "0.9", "0.98", ("0.1", "1", "0.1", "0.1"), "0.25")
}

/// 18-decimal collateral.
fn eth() -> AssetParams {
    standard("weth")
}

/// A steep bonus slope (5) up to a 0.3 max bonus, and a 0.5 protocol fee.
fn juno() -> AssetParams {
    params("ujuno", "0.7", "0.8", ("0.05", "5", "0.05", "0.3"), "0.5")
}

fn line(denom: &str, price: &str, collateral: u128, debt: u128, p: &AssetParams) -> HealthPosition {
    HealthPosition {
        denom: denom.to_string(),
        price: dec(price),
        collateral_amount: u(collateral),
        debt_amount: u(debt),
        max_ltv: p.max_loan_to_value,
        liquidation_threshold: p.liquidation_threshold,
    }
}

/// A Red Bank holding of `amount` enabled collateral.
fn collateral(denom: &str, amount: u128) -> DenomPosition {
    DenomPosition {
        denom: denom.into(),
        collateral_amount: u(amount),
        collateral_enabled: true,
        ..Default::default()
    }
}

/// A Red Bank holding of `amount` debt.
fn debt(denom: &str, amount: u128) -> DenomPosition {
    DenomPosition {
        denom: denom.into(),
        debt_amount: u(amount),
        ..Default::default()
    }
}

fn thf() -> Decimal {
    dec("1.05")
}

fn liquidate(
    collateral: u128,
    collateral_price: &str,
    collateral_params: &AssetParams,
    debt: u128,
    sent: u128,
    debt_price: &str,
    health: &Health,
) -> Result<LiquidationAmounts, MathError> {
    calculate_liquidation_amounts(&LiquidationInput {
        collateral_amount: u(collateral),
        collateral_price: dec(collateral_price),
        collateral_params,
        debt_amount: u(debt),
        debt_requested_to_repay: u(sent),
        debt_price: dec(debt_price),
        repay_limit: RepayLimit::TargetHealthFactor(thf()),
        health,
    })
}

fn amounts(repay: u128, seized: u128, received: u128, lb: &str) -> LiquidationAmounts {
    LiquidationAmounts {
        debt_amount_to_repay: u(repay),
        collateral_amount_to_liquidate: u(seized),
        collateral_amount_received_by_liquidator: u(received),
        liquidation_bonus: dec(lb),
    }
}

/// A whole `Health` from hand-worked values; `health_factors` are the max-LTV and the
/// liquidation health factor, none without debt.
fn expected_health(
    collateral: u128,
    max_ltv_adjusted: u128,
    lt_adjusted: u128,
    debt: u128,
    health_factors: Option<(&str, &str)>,
) -> Health {
    Health {
        total_debt_value: u(debt),
        total_collateral_value: u(collateral),
        max_ltv_adjusted_collateral: u(max_ltv_adjusted),
        liquidation_threshold_adjusted_collateral: u(lt_adjusted),
        max_ltv_health_factor: health_factors.map(|(max_ltv, _)| dec(max_ltv)),
        liquidation_health_factor: health_factors.map(|(_, liquidation)| dec(liquidation)),
    }
}

/// The `collateral` lines against `debt` uusdc at 1.
fn against_usdc(debt: u128, collateral: &[HealthPosition]) -> Vec<HealthPosition> {
    let mut lines = collateral.to_vec();
    lines.push(line("uusdc", "1", 0, debt, &usdc()));
    lines
}

/// `atom_amount` uatom at `price` (collateral) against `debt` uusdc at 1.
fn atom_against_usdc_lines(atom_amount: u128, price: &str, debt: u128) -> Vec<HealthPosition> {
    against_usdc(debt, &[line("uatom", price, atom_amount, 0, &atom())])
}

/// 2·10^18 wei at 0.000000003 uusd/wei (ETH at $3,000; case 14).
fn eth_line() -> HealthPosition {
    line("weth", "0.000000003", 2_000_000_000_000_000_000, 0, &eth())
}

/// Health of `atom` uatom at `price` (collateral) against `debt` uusdc at 1.
fn atom_against_usdc(atom_amount: u128, price: &str, debt: u128) -> Health {
    compute_health(&atom_against_usdc_lines(atom_amount, price, debt)).unwrap()
}

/// 10,000 uatom at 7.5 against 65,000 uusdc at 1 (the measured case after the price drop).
fn fixture_lines() -> Vec<HealthPosition> {
    atom_against_usdc_lines(10_000, "7.5", 65_000)
}

fn fixture_health() -> Health {
    compute_health(&fixture_lines()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The case measured on the real Mars contracts.
// ---------------------------------------------------------------------------------------------

#[test]
fn math_case_01_measured_mars_case_reproduced_to_the_unit() {
    let atom = atom();
    let usdc = usdc();
    let holdings = vec![collateral("uatom", 10_000), debt("uusdc", 65_000)];
    let all_params: HashMap<String, AssetParams> = [atom.clone(), usdc.clone()]
        .into_iter()
        .map(|p| (p.denom.clone(), p))
        .collect();
    let health_at = |atom_price: &str| {
        let prices: HashMap<&str, Decimal> =
            [("uatom", dec(atom_price)), ("uusdc", dec("1"))].into();
        let lines =
            red_bank_health_positions(&holdings, |d| prices.get(d).copied(), |d| all_params.get(d))
                .unwrap();
        (lines.clone(), compute_health(&lines).unwrap())
    };

    // ATOM at 10: collateral 10,000·10 = 100,000; ·0.7 = 70,000; ·0.8 = 80,000; debt 65,000.
    // HF = 80,000/65,000 = 1.2307692307692307692… → 1.230769230769230769 (floor), not liquidatable.
    let (_, healthy) = health_at("10");
    assert_eq!(
        healthy,
        expected_health(
            100_000,
            70_000,
            80_000,
            65_000,
            Some(("1.076923076923076923", "1.230769230769230769"))
        )
    );
    assert!(!healthy.is_liquidatable());
    assert!(matches!(
        liquidate(10_000, "10", &atom, 65_000, 30_000, "1", &healthy),
        Err(MathError::NotLiquidatable { .. })
    ));

    // ATOM at 7.5: collateral 75,000; ·0.7 = 52,500; ·0.8 = 60,000.
    // HF = 60,000/65,000 = 0.923076923076923076(9…) → 0.923076923076923076.
    let (lines, unhealthy) = health_at("7.5");
    assert_eq!(
        unhealthy.liquidation_health_factor,
        Some(dec("0.923076923076923076"))
    );
    assert_eq!(
        unhealthy.max_ltv_health_factor,
        Some(dec("0.807692307692307692"))
    );
    assert!(unhealthy.is_liquidatable());

    // LB = min(0.01 + 2·(1 − 0.923076923076923076) = 0.163846153846153848,
    //          max(min(CR − 1 = 75,000/65,000 − 1 = 0.153846153846153846, 0.1), 0.02) = 0.1) = 0.1.
    // LT·(1 + LB) = 0.88 < 1.05, cap = ⌊(⌊1.05·65,000⌋ − 60,000)/0.17⌋ = ⌊8,250/0.17⌋ = 48,529.
    // From collateral: ⌊75,000/1.1⌋ = 68,181. repay = min(65,000, 30,000, 48,529, 68,181) = 30,000.
    // seized = ⌊30,000·1.1 / 7.5⌋ = 4,400; fee = ⌊⌈⌊30,000·0.1⌋·0.1⌉ / 7.5⌋ = ⌊300/7.5⌋ = 40.
    let result = liquidate(10_000, "7.5", &atom, 65_000, 30_000, "1", &unhealthy).unwrap();
    assert_eq!(result, amounts(30_000, 4_400, 4_360, "0.1"));
    assert_eq!(result.protocol_fee(), u(40));
    assert_eq!(result.refund(u(30_000)), Uint128::zero());

    // After: 5,600 uatom (42,000; ·0.8 = 33,600), 35,000 debt → HF 33,600/35,000 = 0.96.
    let after =
        compute_health(&apply_liquidation(&lines, "uatom", "uusdc", &result).unwrap()).unwrap();
    assert_eq!(after.total_collateral_value, u(42_000));
    assert_eq!(after.total_debt_value, u(35_000));
    assert_eq!(after.liquidation_health_factor, Some(dec("0.96")));
    assert_eq!(after.max_ltv_health_factor, Some(dec("0.84")));
}

// ---------------------------------------------------------------------------------------------
// Which bound limits the repaid debt, protocol fee rounding and tiny liquidations: one account
// liquidated once under the target-health-factor rule, every figure worked out by hand.
// ---------------------------------------------------------------------------------------------

/// Hand-worked values of an account's health.
#[derive(Clone, Copy)]
struct Figures {
    total_collateral_value: u128,
    liquidation_threshold_adjusted_collateral: u128,
    total_debt_value: u128,
    liquidation_health_factor: &'static str,
}

fn figures(
    collateral: u128,
    lt_adjusted: u128,
    debt: u128,
    health_factor: &'static str,
) -> Figures {
    Figures {
        total_collateral_value: collateral,
        liquidation_threshold_adjusted_collateral: lt_adjusted,
        total_debt_value: debt,
        liquidation_health_factor: health_factor,
    }
}

/// The fixture's health: 75,000 (LT-adjusted 60,000) against 65,000, HF 0.923076923076923076.
fn fixture_figures() -> Figures {
    figures(75_000, 60_000, 65_000, "0.923076923076923076")
}

fn assert_figures(health: &Health, expected: Figures, what: &str) {
    assert_eq!(
        health.total_collateral_value,
        u(expected.total_collateral_value),
        "{what}: total collateral value"
    );
    assert_eq!(
        health.liquidation_threshold_adjusted_collateral,
        u(expected.liquidation_threshold_adjusted_collateral),
        "{what}: LT-adjusted collateral"
    );
    assert_eq!(
        health.total_debt_value,
        u(expected.total_debt_value),
        "{what}: total debt value"
    );
    assert_eq!(
        health.liquidation_health_factor,
        Some(dec(expected.liquidation_health_factor)),
        "{what}: liquidation health factor"
    );
}

/// The account after the liquidation.
struct After {
    figures: Figures,
    /// Whether the liquidation leaves the account less healthy than before (it does when
    /// HF < LT·(1 + LB) of the seized collateral).
    lowers_health: bool,
}

struct LiquidationCase {
    name: &'static str,
    lines: Vec<HealthPosition>,
    /// Params of the seized collateral; its denom names the collateral line.
    collateral: AssetParams,
    /// The denom of the repaid debt line.
    debt_denom: &'static str,
    /// What the liquidator sends.
    sent: u128,
    before: Figures,
    expected: LiquidationAmounts,
    /// The protocol's share of the seized collateral (seized − received by the liquidator).
    protocol_fee: u128,
    /// What goes back to the liquidator: sent − repaid.
    refund: u128,
    after: Option<After>,
}

fn position<'a>(lines: &'a [HealthPosition], denom: &str) -> &'a HealthPosition {
    lines.iter().find(|line| line.denom == denom).unwrap()
}

fn check_liquidation(case: &LiquidationCase) {
    let name = case.name;
    let before = compute_health(&case.lines).unwrap();
    assert_figures(&before, case.before, &format!("{name}, before"));
    let collateral = position(&case.lines, &case.collateral.denom);
    let debt = position(&case.lines, case.debt_denom);
    let result = calculate_liquidation_amounts(&LiquidationInput {
        collateral_amount: collateral.collateral_amount,
        collateral_price: collateral.price,
        collateral_params: &case.collateral,
        debt_amount: debt.debt_amount,
        debt_requested_to_repay: u(case.sent),
        debt_price: debt.price,
        repay_limit: RepayLimit::TargetHealthFactor(thf()),
        health: &before,
    })
    .unwrap();
    assert_eq!(result, case.expected, "{name}");
    assert_eq!(
        result.protocol_fee(),
        u(case.protocol_fee),
        "{name}: protocol fee"
    );
    assert_eq!(
        result.refund(u(case.sent)),
        u(case.refund),
        "{name}: refund"
    );
    if let Some(expected) = &case.after {
        let lines = apply_liquidation(
            &case.lines,
            collateral.denom.as_str(),
            debt.denom.as_str(),
            &result,
        )
        .unwrap();
        let after = compute_health(&lines).unwrap();
        assert_figures(&after, expected.figures, &format!("{name}, after"));
        assert_eq!(
            after.liquidation_health_factor < before.liquidation_health_factor,
            expected.lowers_health,
            "{name}: health lowered"
        );
    }
}

fn liquidation_cases() -> Vec<LiquidationCase> {
    vec![
        // Fixture, liquidator sends the whole 65,000: repay = min(65,000, 65,000, cap 48,529,
        // 68,181) = 48,529 and 65,000 − 48,529 = 16,471 is refunded.
        // seized = ⌊⌊48,529·1.1 = 53,381.9⌋ / 7.5⌋ = ⌊7,117.46⌋ = 7,117.
        // fee: ⌊48,529·0.1⌋ = 4,852; ⌈485.2⌉ = 486; ⌊486/7.5 = 64.8⌋ = 64 → liquidator 7,053.
        // After: 2,883 uatom → ⌊21,622.5⌋ = 21,622, ·0.8 → 17,297; debt 16,471.
        // HF = 17,297/16,471 = 1.050148746281342966 — right at the target 1.05.
        LiquidationCase {
            name: "02 target health factor limited with refund",
            lines: fixture_lines(),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 65_000,
            before: fixture_figures(),
            expected: amounts(48_529, 7_117, 7_053, "0.1"),
            protocol_fee: 64,
            refund: 16_471,
            after: Some(After {
                figures: figures(21_622, 17_297, 16_471, "1.050148746281342966"),
                lowers_health: false,
            }),
        },
        // Fixture, 1,000 sent: repay 1,000; seized ⌊1,100/7.5 = 146.67⌋ = 146;
        // fee ⌊⌈⌊100⌋·0.1 = 10⌉/7.5 = 1.33⌋ = 1 → liquidator 145.
        LiquidationCase {
            name: "03 sent amount limited small",
            lines: fixture_lines(),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 1_000,
            before: fixture_figures(),
            expected: amounts(1_000, 146, 145, "0.1"),
            protocol_fee: 1,
            refund: 0,
            after: None,
        },
        // 10,000 uatom at 7.5 (75,000); debts 60,000 uusdc at 1 and 10,000 uosmo at 0.5 (5,000).
        // Same totals as the fixture: HF 0.923076923076923076, LB 0.1, cap value 48,529.
        // In uosmo: cap ⌊48,529/0.5⌋ = 97,058; from collateral ⌊68,181/0.5⌋ = 136,362.
        // Sent 20,000: repay = min(10,000, 20,000, 97,058, 136,362) = 10,000 (the whole uosmo
        // debt). Debt value 5,000; seized ⌊5,500/7.5 = 733.3⌋ = 733; fee ⌊⌈500·0.1⌉/7.5 = 6.67⌋
        // = 6.
        LiquidationCase {
            name: "04 debt limited on a second smaller debt",
            lines: [
                atom_against_usdc_lines(10_000, "7.5", 60_000),
                vec![line("uosmo", "0.5", 0, 10_000, &osmo())],
            ]
            .concat(),
            collateral: atom(),
            debt_denom: "uosmo",
            sent: 20_000,
            before: fixture_figures(),
            expected: amounts(10_000, 733, 727, "0.1"),
            protocol_fee: 6,
            refund: 10_000,
            after: None,
        },
        // 1,000 uatom at 10 (10,000; LT-adjusted 8,000) against 9,900 uusdc.
        // HF = 8,000/9,900 = 0.808080808080808080; CR − 1 = 10,000/9,900 − 1 = 0.010101010101010101.
        // LB = min(0.01 + 2·0.19191919191919192 = 0.39383838383838384,
        //          max(min(0.0101…, 0.1), 0.02) = 0.02) = 0.02 (the min bonus).
        // LT·(1 + LB) = 0.816 < 1.05, cap = ⌊(⌊10,395⌋ − 8,000)/0.234⌋ = ⌊10,235.04⌋ = 10,235.
        // From collateral: ⌊10,000/1.02 = 9,803.9⌋ = 9,803. repay = min(9,900, 9,900, 10,235, 9,803).
        // seized ⌊⌊9,803·1.02 = 9,999.06⌋/10⌋ = 999; fee ⌊⌈⌊196.06⌋·0.1 = 19.6⌉/10⌋ = 2.
        LiquidationCase {
            name: "05 collateral limited with min bonus",
            lines: atom_against_usdc_lines(1_000, "10", 9_900),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 9_900,
            before: figures(10_000, 8_000, 9_900, "0.80808080808080808"),
            expected: amounts(9_803, 999, 997, "0.02"),
            protocol_fee: 2,
            refund: 97,
            after: None,
        },
        // 10,000 uatom at 7 (70,000; LT-adjusted 56,000) against 65,000 uusdc.
        // HF = 56,000/65,000 = 0.861538461538461538; CR − 1 = 0.076923076923076923.
        // LB = min(0.01 + 2·0.138461538461538462 = 0.286923076923076924,
        //          max(min(0.076923076923076923, 0.1), 0.02)) = 0.076923076923076923.
        // LT·(1 + LB) = ⌊0.8·1.076923076923076923⌋ = 0.861538461538461538 < 1.05;
        // cap = ⌊(68,250 − 56,000)/(1.05 − 0.861538461538461538 = 0.188461538461538462)⌋
        //     = ⌊64,999.99999999999984⌋ = 64,999 (the floored Decimals cost a unit).
        // From collateral: ⌊70,000/1.076923076923076923 = 65,000.000000000000006⌋ = 65,000.
        // repay 64,999; seized ⌊⌊64,999·1.076923076923076923 = 69,998.92⌋/7⌋ = ⌊9,999.71⌋ = 9,999.
        // fee: ⌊64,999·0.076923076923076923 = 4,999.92⌋ = 4,999; ⌈499.9⌉ = 500; ⌊500/7⌋ = 71.
        // Refund 65,000 − 64,999 = 1.
        LiquidationCase {
            name: "07 bonus limited by CR − 1 and cap rounding",
            lines: atom_against_usdc_lines(10_000, "7", 65_000),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 65_000,
            before: figures(70_000, 56_000, 65_000, "0.861538461538461538"),
            expected: amounts(64_999, 9_999, 9_928, "0.076923076923076923"),
            protocol_fee: 71,
            refund: 1,
            after: None,
        },
        // 10,000 uatom at 8 (80,000; LT-adjusted 64,000) against 65,000 uusdc.
        // HF = 64,000/65,000 = 0.984615384615384615; CR − 1 = 0.230769230769230769.
        // LB = min(0.01 + 2·0.015384615384615385 = 0.04076923076923077, max(min(0.23…, 0.1), 0.02)
        //          = 0.1) = 0.04076923076923077.
        // LT·(1 + LB) = ⌊0.8·1.04076923076923077⌋ = 0.832615384615384616;
        // cap = ⌊(68,250 − 64,000)/0.217384615384615384 = 19,550.6⌋ = 19,550.
        // seized = ⌊⌊19,550·1.04076923076923077 = 20,347.04⌋/8 = 2,543.4⌋ = 2,543.
        // fee: ⌊19,550·0.04076923076923077 = 797.04⌋ = 797; ⌈79.7⌉ = 80; ⌊80/8⌋ = 10.
        // Refund 65,000 − 19,550 = 45,450.
        LiquidationCase {
            name: "08 bonus from starting LB and slope",
            lines: atom_against_usdc_lines(10_000, "8", 65_000),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 65_000,
            before: figures(80_000, 64_000, 65_000, "0.984615384615384615"),
            expected: amounts(19_550, 2_543, 2_533, "0.04076923076923077"),
            protocol_fee: 10,
            refund: 45_450,
            after: None,
        },
        // LT 0.98, LB params 0.1/1/0.1/0.1, fee 0.25. 1,000 ustable at 1 against 1,000 uusdc:
        // HF = 980/1,000 = 0.98, CR − 1 = 0 → LB = min(0.1 + 0.02, max(min(0, 0.1), 0.1)) = 0.1.
        // LT·(1 + LB) = 1.078 ≥ 1.05 → no cap. From collateral: ⌊1,000/1.1 = 909.09⌋ = 909.
        // repay = min(1,000, 1,000, 909) = 909; seized = ⌊⌊999.9⌋/1⌋ = 999.
        // fee: ⌊90.9⌋ = 90; ⌈90·0.25 = 22.5⌉ = 23 (ceiling in the protocol's favour); 23/1 = 23.
        LiquidationCase {
            name: "09 no target cap when seized threshold weight reaches THF",
            lines: against_usdc(1_000, &[line("ustable", "1", 1_000, 0, &stable())]),
            collateral: stable(),
            debt_denom: "uusdc",
            sent: 1_000,
            before: figures(1_000, 980, 1_000, "0.98"),
            expected: amounts(909, 999, 976, "0.1"),
            protocol_fee: 23,
            refund: 91,
            after: None,
        },
        // Fixture, 10 sent: value 10; seized ⌊11/7.5 = 1.47⌋ = 1; bonus value ⌊1.0⌋ = 1;
        // fee value ⌈0.1⌉ = 1 (ceil), fee amount ⌊1/7.5⌋ = 0 → the liquidator gets the 1 uatom.
        LiquidationCase {
            name: "11 protocol fee ceiling can leave zero fee amount",
            lines: fixture_lines(),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 10,
            before: fixture_figures(),
            expected: amounts(10, 1, 1, "0.1"),
            protocol_fee: 0,
            refund: 0,
            after: None,
        },
        // Sent 0: repay 0, seized 0 — both zero is accepted by the formula (the chain refuses the
        // empty coin before).
        LiquidationCase {
            name: "13 nothing sent gives nothing",
            lines: fixture_lines(),
            collateral: atom(),
            debt_denom: "uusdc",
            sent: 0,
            before: fixture_figures(),
            expected: amounts(0, 0, 0, "0.1"),
            protocol_fee: 0,
            refund: 0,
            after: None,
        },
        // 2·10^18 wei at 0.000000003 uusd/wei (ETH at $3,000) = 6·10^9; ·0.8 = 4.8·10^9;
        // debt 5·10^9 uusdc. HF = 0.96, CR − 1 = 0.2.
        // LB = min(0.01 + 2·0.04 = 0.09, max(min(0.2, 0.1), 0.02) = 0.1) = 0.09.
        // LT·(1 + LB) = 0.872; cap = ⌊(5.25·10^9 − 4.8·10^9)/0.178⌋ = 2,528,089,887.
        // Sent 10^9: repay 10^9; seized = ⌊1.09·10^9 / 3·10^-9⌋ = 363,333,333,333,333,333.
        // fee: ⌊10^9·0.09⌋ = 9·10^7; ⌈9·10^6⌉; 9·10^6/3·10^-9 = 3·10^15.
        LiquidationCase {
            name: "14 eighteen decimal collateral with tiny price",
            lines: against_usdc(5_000_000_000, &[eth_line()]),
            collateral: eth(),
            debt_denom: "uusdc",
            sent: 1_000_000_000,
            before: figures(6_000_000_000, 4_800_000_000, 5_000_000_000, "0.96"),
            expected: amounts(
                1_000_000_000,
                363_333_333_333_333_333,
                360_333_333_333_333_333,
                "0.09",
            ),
            protocol_fee: 3_000_000_000_000_000,
            refund: 0,
            after: None,
        },
        // uatom 1,000 at 10 (LT 0.8 → 8,000), ustable 2,000 at 1 with LT 0.98 (1,960), debt
        // 10,500 uusdc. HF = 9,960/10,500 = 0.948571428571428571, CR − 1 = 0.142857142857142857.
        // Seizing ustable (LT 0.98, bonus 0.1/1/0.1/0.1): LB = min(0.1 + 0.051428…, max(min(0.1428…,
        // 0.1), 0.1)) = 0.1; LT·(1 + LB) = 1.078 ≥ 1.05 → no cap; from collateral ⌊2,000/1.1⌋ = 1,818.
        // Sent 1,000: repay 1,000; seized 1,100 ustable; fee ⌊⌈100·0.25⌉⌋ = 25 → liquidator 1,075.
        // After: 900 ustable (882) + 8,000 = 8,882 against 9,500 → HF 0.934947368421052631 < before,
        // because 0.948… < LT·(1 + LB) = 1.078. Collateral after: 10,000 + 900 = 10,900.
        LiquidationCase {
            name: "22 liquidating high threshold collateral can lower health",
            lines: against_usdc(
                10_500,
                &[
                    line("uatom", "10", 1_000, 0, &atom()),
                    line("ustable", "1", 2_000, 0, &stable()),
                ],
            ),
            collateral: stable(),
            debt_denom: "uusdc",
            sent: 1_000,
            before: figures(12_000, 9_960, 10_500, "0.948571428571428571"),
            expected: amounts(1_000, 1_100, 1_075, "0.1"),
            protocol_fee: 25,
            refund: 0,
            after: Some(After {
                figures: figures(10_900, 8_882, 9_500, "0.934947368421052631"),
                lowers_health: true,
            }),
        },
        // LB params 0.05/5/0.05/0.3, LT 0.8, protocol fee 0.5. 1,000 ujuno at 10 (10,000 → 8,000)
        // against 8,500 uusdc. HF = 8,000/8,500 = 0.941176470588235294; CR − 1 = 0.176470588235294117.
        // LB = min(0.05 + 5·0.058823529411764706 = 0.34411764705882353, max(min(0.176…, 0.3), 0.05))
        //    = 0.176470588235294117.
        // LT·(1 + LB) = ⌊0.8·1.176470588235294117 = 0.9411764705882352936⌋ = 0.941176470588235293.
        // cap = ⌊(8,925 − 8,000)/(1.05 − 0.941176470588235293 = 0.108823529411764707)⌋
        //     = ⌊925/0.108823529411764707 = 8,499.99999999999997⌋ = 8,499.
        // From collateral ⌊10,000/1.176470588235294117 = 8,500.000000000000006⌋ = 8,500.
        // Sent 10,000: repay 8,499; seized ⌊⌊8,499·1.176470588235294117 = 9,998.82⌋/10⌋ = 999.
        // fee: ⌊8,499·0.176470588235294117 = 1,499.82⌋ = 1,499; ⌈749.5⌉ = 750; ⌊750/10⌋ = 75.
        LiquidationCase {
            name: "25 max bonus with steep slope",
            lines: against_usdc(8_500, &[line("ujuno", "10", 1_000, 0, &juno())]),
            collateral: juno(),
            debt_denom: "uusdc",
            sent: 10_000,
            before: figures(10_000, 8_000, 8_500, "0.941176470588235294"),
            expected: amounts(8_499, 999, 924, "0.176470588235294117"),
            protocol_fee: 75,
            refund: 1_501,
            after: None,
        },
    ]
}

#[test]
fn single_liquidations_match_the_hand_worked_figures() {
    for case in liquidation_cases() {
        check_liquidation(&case);
    }
}

#[test]
fn math_case_06_collateral_limited_liquidation_lowers_health_when_min_bonus_exceeds_cr() {
    // Case 05 continued: 1 uatom (10; LT-adjusted 8) against 97 uusdc left:
    // HF = 8/97 = 0.082474226804123711 < 0.808…: since HF < LT·(1 + LB) = 0.816 the liquidation
    // lowers health, and the Red Bank accepts that (no health check after a liquidation).
    let lines = atom_against_usdc_lines(1_000, "10", 9_900);
    let before = compute_health(&lines).unwrap();
    let result = amounts(9_803, 999, 997, "0.02");
    let after =
        compute_health(&apply_liquidation(&lines, "uatom", "uusdc", &result).unwrap()).unwrap();
    assert_eq!(
        after.liquidation_health_factor,
        Some(dec("0.082474226804123711"))
    );
    assert!(after.liquidation_health_factor < before.liquidation_health_factor);
}

#[test]
fn math_case_10_target_cap_applies_only_below_thf() {
    // (account, LT and LB of the seized collateral, debt price, cap in debt units)
    let cases = [
        // Case 09: LT·(1 + LB) = 0.98·1.1 = 1.078 ≥ 1.05 → no cap.
        (
            against_usdc(1_000, &[line("ustable", "1", 1_000, 0, &stable())]),
            "0.98",
            "0.1",
            "1",
            None,
        ),
        // Fixture: LT·(1 + LB) = 0.88 < 1.05 → cap ⌊8,250/0.17 = 48,529.4⌋ = 48,529 uusdc;
        (fixture_lines(), "0.8", "0.1", "1", Some(48_529)),
        // with debt price 2 the cap in debt units is ⌊48,529/2⌋ = 24,264.
        (fixture_lines(), "0.8", "0.1", "2", Some(24_264)),
        // Case 14: LT·(1 + LB) = 0.872; cap = ⌊(5.25·10^9 − 4.8·10^9)/0.178⌋ = 2,528,089,887.
        (
            against_usdc(5_000_000_000, &[eth_line()]),
            "0.8",
            "0.09",
            "1",
            Some(2_528_089_887),
        ),
    ];
    for (lines, lt, lb, debt_price, cap) in cases {
        let health = compute_health(&lines).unwrap();
        assert_eq!(
            max_debt_repayable_amount(&health, dec(lt), dec(lb), thf(), dec(debt_price)).unwrap(),
            cap.map(u),
            "LT {lt}, LB {lb}, debt price {debt_price}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Refused liquidations.
// ---------------------------------------------------------------------------------------------
#[test]
fn math_case_12_repay_that_seizes_nothing_is_refused() {
    // Fixture, 6 sent: seized ⌊⌊6·1.1 = 6.6⌋/7.5⌋ = 0 while repay is 6 → refused, as in Mars.
    let err = liquidate(10_000, "7.5", &atom(), 65_000, 6, "1", &fixture_health()).unwrap_err();
    assert_eq!(
        err,
        MathError::InvalidLiquidationAmounts {
            collateral_amount_to_liquidate: Uint128::zero(),
            debt_amount_to_repay: u(6),
        }
    );
}

#[test]
fn math_case_15_zero_prices_are_errors() {
    let health = fixture_health();
    assert_eq!(
        liquidate(10_000, "0", &atom(), 65_000, 100, "1", &health).unwrap_err(),
        MathError::ZeroPrice {
            field: "collateral_price"
        }
    );
    assert_eq!(
        liquidate(10_000, "7.5", &atom(), 65_000, 100, "0", &health).unwrap_err(),
        MathError::ZeroPrice {
            field: "debt_price"
        }
    );
}

// ---------------------------------------------------------------------------------------------
// The liquidation bonus on its own.
// ---------------------------------------------------------------------------------------------

#[test]
fn math_case_16_bonus_branches() {
    let lb = atom().liquidation_bonus;
    // (health factor, total collateral value, total debt value, bonus)
    let cases = [
        // Max bonus: HF 0.9, CR 1.5 → min(0.01 + 0.2 = 0.21, max(min(0.5, 0.1), 0.02) = 0.1) = 0.1.
        ("0.9", 1_500, 1_000, "0.1"),
        // Slope branch: HF 0.99, CR 1.5 → min(0.01 + 0.02 = 0.03, 0.1) = 0.03.
        ("0.99", 1_500, 1_000, "0.03"),
        // CR − 1 branch: HF 0.9, CR 1.05 → min(0.21, max(min(0.05, 0.1), 0.02) = 0.05) = 0.05.
        ("0.9", 1_050, 1_000, "0.05"),
        // Under-collateralized (CR 0.8 → CR − 1 clamped to 0): min(0.21, max(0, 0.02)) = 0.02.
        ("0.7", 800, 1_000, "0.02"),
        // Starting bonus alone at HF exactly 1 (never liquidatable, but the formula is defined):
        // min(0.01 + 0, 0.1) = 0.01.
        ("1", 1_500, 1_000, "0.01"),
    ];
    for (hf, collateral, debt, bonus) in cases {
        assert_eq!(
            calculate_liquidation_bonus(dec(hf), u(collateral), u(debt), &lb).unwrap(),
            dec(bonus),
            "HF {hf}, collateral {collateral}, debt {debt}"
        );
    }
    // HF > 1: 1 − HF underflows → error rather than a panic.
    assert!(matches!(
        calculate_liquidation_bonus(dec("1.01"), u(1_500), u(1_000), &lb),
        Err(MathError::Overflow { .. })
    ));
    // No debt: CR divides by zero → error.
    assert!(matches!(
        calculate_liquidation_bonus(dec("0.9"), u(1_500), u(0), &lb),
        Err(MathError::DivideByZero { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Health.
// ---------------------------------------------------------------------------------------------

#[test]
fn math_case_17_no_debt_means_no_health_factor_and_not_liquidatable() {
    // 1,000 uatom at 10 and no debt: values 10,000 / 7,000 / 8,000, no health factors.
    let health = compute_health(&[line("uatom", "10", 1_000, 0, &atom())]).unwrap();
    assert_eq!(health, expected_health(10_000, 7_000, 8_000, 0, None));
    assert!(!health.is_liquidatable());
    assert!(!health.is_above_max_ltv());
    assert!(matches!(
        liquidate(1_000, "10", &atom(), 0, 100, "1", &health),
        Err(MathError::NotLiquidatable { .. })
    ));
    let figures = user_position_figures(&health);
    assert_eq!(figures.health_status, UserHealthStatus::NotBorrowing);
    let json = serde_json::to_value(&figures).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "total_enabled_collateral": "10000",
            "total_collateralized_debt": "0",
            "weighted_max_ltv_collateral": "7000",
            "weighted_liquidation_threshold_collateral": "8000",
            "health_status": "not_borrowing"
        })
    );
}

#[test]
fn math_case_18_health_factor_exactly_one_is_not_liquidatable() {
    // 1,000 at 1 with LT 0.8 → 800 against 800 debt: HF = 1, max-LTV HF = 700/800 = 0.875.
    let health = atom_against_usdc(1_000, "1", 800);
    assert_eq!(health.liquidation_health_factor, Some(Decimal::one()));
    assert_eq!(health.max_ltv_health_factor, Some(dec("0.875")));
    assert!(!health.is_liquidatable());
    assert!(health.is_above_max_ltv());
    assert!(matches!(
        liquidate(1_000, "1", &atom(), 800, 100, "1", &health),
        Err(MathError::NotLiquidatable { .. })
    ));
}

#[test]
fn math_case_19_values_floor_at_each_step() {
    // 3 at 0.5 → ⌊1.5⌋ = 1; ·0.7 → ⌊0.7⌋ = 0; ·0.8 → ⌊0.8⌋ = 0.
    // 7 at 0.5 → ⌊3.5⌋ = 3 of debt; 1,001 at 0.333 → ⌊333.333⌋ = 333 of collateral,
    // ·0.7 → ⌊233.1⌋ = 233, ·0.8 → ⌊266.4⌋ = 266. Totals: collateral 334, debt 3,
    // max-LTV 233, LT 266; HFs 233/3 = 77.666666666666666666 and 266/3 = 88.666666666666666666.
    let health = compute_health(&[
        line("ua", "0.5", 3, 7, &atom()),
        line("ub", "0.333", 1_001, 0, &atom()),
    ])
    .unwrap();
    assert_eq!(
        health,
        expected_health(
            334,
            233,
            266,
            3,
            Some(("77.666666666666666666", "88.666666666666666666"))
        )
    );
}

#[test]
fn math_case_20_multi_asset_health_and_user_position_json() {
    // uatom 1,000 at 10 (LTV 0.7, LT 0.8): 10,000 / 7,000 / 8,000.
    // uosmo 5,000 at 0.5 (LTV 0.5, LT 0.6): 2,500 / 1,250 / 1,500, and 2,000 uosmo debt = 1,000.
    // uusdc 6,000 debt at 1 = 6,000. Totals: collateral 12,500, debt 7,000, max-LTV 8,250,
    // LT 9,500. HFs: 8,250/7,000 = 1.178571428571428571; 9,500/7,000 = 1.357142857142857142.
    let health = compute_health(&[
        line("uatom", "10", 1_000, 0, &atom()),
        line("uosmo", "0.5", 5_000, 2_000, &osmo()),
        line("uusdc", "1", 0, 6_000, &usdc()),
    ])
    .unwrap();
    let figures = user_position_figures(&health);
    assert_eq!(
        serde_json::to_value(&figures).unwrap(),
        serde_json::json!({
            "total_enabled_collateral": "12500",
            "total_collateralized_debt": "7000",
            "weighted_max_ltv_collateral": "8250",
            "weighted_liquidation_threshold_collateral": "9500",
            "health_status": {"borrowing": {
                "max_ltv_hf": "1.178571428571428571",
                "liq_threshold_hf": "1.357142857142857142"
            }}
        })
    );
}

#[test]
fn math_case_21_disabled_collateral_and_uncollateralized_debt_are_excluded() {
    // uatom 10,000 at 7.5 enabled (75,000 / 60,000 LT), uosmo 100,000 at 0.5 disabled
    // (would add 50,000), uusdc 65,000 debt, uion 1,000 uncollateralized debt (ignored).
    // → the fixture's health: HF 0.923076923076923076.
    let ion = params("uion", "0.5", "0.6", ("0.01", "2", "0.02", "0.1"), "0.1");
    let holdings = vec![
        collateral("uatom", 10_000),
        DenomPosition {
            collateral_enabled: false,
            ..collateral("uosmo", 100_000)
        },
        debt("uusdc", 65_000),
        DenomPosition {
            uncollateralized_debt: true,
            ..debt("uion", 1_000)
        },
    ];
    let prices: HashMap<&str, Decimal> = [
        ("uatom", dec("7.5")),
        ("uosmo", dec("0.5")),
        ("uusdc", dec("1")),
        ("uion", dec("3")),
    ]
    .into();
    let all: Vec<AssetParams> = vec![atom(), osmo(), usdc(), ion];
    let lines = red_bank_health_positions(
        &holdings,
        |d| prices.get(d).copied(),
        |d| all.iter().find(|p| p.denom == d).cloned(),
    )
    .unwrap();
    assert_eq!(lines.len(), 4);
    assert_eq!(compute_health(&lines).unwrap(), fixture_health());

    // A denom without a price or params is an error naming it (the Red Bank query would fail).
    let missing_price =
        red_bank_health_positions(&holdings, |_| None, |d| all.iter().find(|p| p.denom == d));
    assert_eq!(
        missing_price.unwrap_err(),
        MathError::MissingPrice {
            denom: "uatom".into()
        }
    );
    let missing_params = red_bank_health_positions(
        &holdings,
        |d| prices.get(d).copied(),
        |d| all.iter().find(|p| p.denom == d && d != "uion"),
    );
    assert_eq!(
        missing_params.unwrap_err(),
        MathError::MissingParams {
            denom: "uion".into()
        }
    );
}

#[test]
fn math_case_24_apply_liquidation_needs_the_named_lines() {
    let lines = [line("uatom", "7.5", 10_000, 0, &atom())];
    let result = amounts(1, 1, 1, "0.1");
    assert_eq!(
        apply_liquidation(&lines, "uatom", "uusdc", &result).unwrap_err(),
        MathError::MissingPosition {
            side: "debt",
            denom: "uusdc".into()
        }
    );
    assert_eq!(
        apply_liquidation(&lines, "uosmo", "uatom", &result).unwrap_err(),
        MathError::MissingPosition {
            side: "collateral",
            denom: "uosmo".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// The close-factor rule (core-contracts, Neutron): the cap is ⌊debt × close_factor⌋.
// ---------------------------------------------------------------------------------------------

fn liquidate_by_close_factor(sent: u128, close_factor: &str) -> LiquidationAmounts {
    let health = fixture_health();
    calculate_liquidation_amounts(&LiquidationInput {
        collateral_amount: u(10_000),
        collateral_price: dec("7.5"),
        collateral_params: &atom(),
        debt_amount: u(65_000),
        debt_requested_to_repay: u(sent),
        debt_price: dec("1"),
        repay_limit: RepayLimit::CloseFactor(dec(close_factor)),
        health: &health,
    })
    .unwrap()
}

#[test]
fn math_case_close_factor_half_caps_below_what_the_target_health_factor_allows() {
    // LB 0.1 as in the measured case. Cap ⌊65,000·0.5⌋ = 32,500 (the THF rule's would be 48,529).
    // repay = min(65,000, sent 40,000, 32,500, ⌊75,000/1.1⌋ = 68,181) = 32,500.
    // seized = ⌊⌊32,500·1.1⌋/7.5⌋ = ⌊35,750/7.5⌋ = 4,766; fee = ⌊⌈3,250·0.1⌉/7.5⌋ = ⌊325/7.5⌋ = 43.
    let result = liquidate_by_close_factor(40_000, "0.5");
    assert_eq!(result, amounts(32_500, 4_766, 4_723, "0.1"));
    assert_eq!(result.protocol_fee(), u(43));
    assert_eq!(result.refund(u(40_000)), u(7_500));
}

#[test]
fn math_case_close_factor_one_repays_all_the_debt_past_the_target_health_factor() {
    // Cap ⌊65,000·1⌋ = 65,000: repay = min(65,000, 70,000, 65,000, 68,181) = 65,000.
    // seized = ⌊71,500/7.5⌋ = 9,533; fee = ⌊⌈6,500·0.1⌉/7.5⌋ = ⌊650/7.5⌋ = 86.
    let result = liquidate_by_close_factor(70_000, "1");
    assert_eq!(result, amounts(65_000, 9_533, 9_447, "0.1"));
    // The THF rule stops at 48,529 for the same account.
    let health = fixture_health();
    let by_target = liquidate(10_000, "7.5", &atom(), 65_000, 70_000, "1", &health).unwrap();
    assert_eq!(by_target.debt_amount_to_repay, u(48_529));
}

#[test]
fn math_case_close_factor_floors_the_cap() {
    // ⌊65,000·0.333333333333333333⌋ = ⌊21,666.666…⌋ = 21,666.
    let result = liquidate_by_close_factor(65_000, "0.333333333333333333");
    assert_eq!(result.debt_amount_to_repay, u(21_666));
}

#[test]
fn liquidation_rule_reads_the_close_factor_of_the_debt_asset() {
    use mars::rule::LiquidationRule;
    let mut usdc = usdc();
    assert_eq!(
        LiquidationRule::TargetHealthFactor.repay_limit(thf(), &usdc),
        Ok(RepayLimit::TargetHealthFactor(dec("1.05")))
    );
    assert_eq!(
        LiquidationRule::CloseFactor.repay_limit(thf(), &usdc),
        Err(MathError::MissingCloseFactor {
            denom: "uusdc".into()
        })
    );
    usdc.close_factor = Some(dec("0.5"));
    assert_eq!(
        LiquidationRule::CloseFactor.repay_limit(thf(), &usdc),
        Ok(RepayLimit::CloseFactor(dec("0.5")))
    );
    assert_eq!("close_factor".parse(), Ok(LiquidationRule::CloseFactor));
    assert!("close factor"
        .parse::<LiquidationRule>()
        .unwrap_err()
        .contains("target_health_factor, close_factor"));
}
