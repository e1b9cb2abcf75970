//! Property tests of the liquidation, health and scaling math.

use cosmwasm_std::{Decimal, Uint128};
use mars::math::health::compute_health;
use mars::math::interest::{
    apply_accumulated_interests, compute_scaled_amount, compute_underlying_amount,
    update_interest_rates, utilization_rate, ScalingOperation,
};
use mars::math::liquidation::{
    apply_liquidation, calculate_liquidation_amounts, calculate_liquidation_bonus,
    max_debt_repayable_amount, LiquidationInput,
};
use mars::math::params::validate_asset_params;
use mars::math::MathError;
use mars::rule::RepayLimit;
use mars::types::{
    AssetParams, CmSettings, Health, HealthPosition, InterestRateModel, LiquidationBonus, Market,
    RedBankSettings,
};
use proptest::prelude::*;

/// A Decimal with `places` fractional digits between `lo` and `hi` (in those units).
fn decimal(lo: u128, hi: u128, places: u32) -> impl Strategy<Value = Decimal> {
    (lo..=hi).prop_map(move |atomics| Decimal::from_atomics(atomics, places).unwrap())
}

/// Asset params that pass the params contract's validation.
fn valid_params() -> impl Strategy<Value = AssetParams> {
    (
        decimal(1, 95, 2),    // max LTV 0.01..0.95
        decimal(1, 10, 2),    // LT − max LTV 0.01..0.1 (LT capped at 1 below)
        decimal(0, 10, 2),    // starting_lb
        decimal(100, 500, 2), // slope
        decimal(0, 10, 2),    // min_lb
        decimal(5, 30, 2),    // max_lb
        decimal(0, 99, 2),    // protocol fee
    )
        .prop_map(|(max_ltv, gap, starting_lb, slope, min_lb, max_lb, fee)| {
            let lt = (max_ltv + gap).min(Decimal::one());
            AssetParams {
                denom: "ucoll".into(),
                credit_manager: CmSettings::default(),
                red_bank: RedBankSettings {
                    withdraw_enabled: None,
                    deposit_enabled: true,
                    borrow_enabled: true,
                },
                max_loan_to_value: max_ltv,
                liquidation_threshold: lt,
                liquidation_bonus: LiquidationBonus {
                    starting_lb,
                    slope,
                    min_lb: min_lb.min(max_lb),
                    max_lb,
                },
                protocol_liquidation_fee: fee,
                deposit_cap: Uint128::MAX,
                close_factor: None,
                reserve_factor: None,
                interest_rate_model: None,
            }
        })
        .prop_filter("valid params", |p| validate_asset_params(p).is_ok())
}

/// A price between 10^-12 and 10^4 per base unit.
fn price() -> impl Strategy<Value = Decimal> {
    (1u128..=10_000_000_000_000_000u128)
        .prop_map(|atomics| Decimal::from_atomics(atomics, 12).unwrap())
}

#[derive(Debug)]
struct Scenario {
    params: AssetParams,
    lines: Vec<HealthPosition>,
    collateral: Uint128,
    collateral_price: Decimal,
    debt: Uint128,
    debt_price: Decimal,
    sent: Uint128,
    thf: Decimal,
}

impl Scenario {
    /// The liquidation this scenario describes, under the target-health-factor rule.
    fn input<'a>(&'a self, health: &'a Health) -> LiquidationInput<'a> {
        LiquidationInput {
            collateral_amount: self.collateral,
            collateral_price: self.collateral_price,
            collateral_params: &self.params,
            debt_amount: self.debt,
            debt_requested_to_repay: self.sent,
            debt_price: self.debt_price,
            repay_limit: RepayLimit::TargetHealthFactor(self.thf),
            health,
        }
    }
}

/// One collateral line (the one liquidated), one debt line, optionally a second collateral with
/// its own threshold. Collateral amounts are derived from a chosen health factor between 0.3 and
/// 1.05 so that most scenarios are liquidatable.
fn scenario() -> impl Strategy<Value = Scenario> {
    (
        valid_params(),
        1_000u128..1_000_000_000_000u128,
        price(),
        price(),
        decimal(300, 1_050, 3),
        decimal(0, 2_000, 3),
        decimal(100, 200, 2),
        prop::option::of((decimal(1, 100, 2), price(), decimal(1, 99, 2))),
    )
        .prop_map(
            |(params, debt, collateral_price, debt_price, hf, sent_share, thf, other)| {
                let debt_value = Uint128::new(debt).mul_floor(debt_price);
                let threshold_value = debt_value.mul_floor(hf);
                // The optional second collateral provides `share` of the threshold value.
                let (main_threshold_value, other_line) = match other {
                    Some((share, other_price, lt)) => {
                        let other_threshold_value = threshold_value.mul_floor(share);
                        let amount = other_threshold_value.div_floor(lt).div_floor(other_price);
                        let line = HealthPosition {
                            denom: "uother".into(),
                            price: other_price,
                            collateral_amount: amount,
                            debt_amount: Uint128::zero(),
                            max_ltv: lt * Decimal::percent(90),
                            liquidation_threshold: lt,
                        };
                        (threshold_value - other_threshold_value, Some(line))
                    }
                    None => (threshold_value, None),
                };
                let collateral = main_threshold_value
                    .div_floor(params.liquidation_threshold)
                    .div_floor(collateral_price)
                    .max(Uint128::one());
                let mut lines = vec![
                    HealthPosition {
                        denom: "ucoll".into(),
                        price: collateral_price,
                        collateral_amount: collateral,
                        debt_amount: Uint128::zero(),
                        max_ltv: params.max_loan_to_value,
                        liquidation_threshold: params.liquidation_threshold,
                    },
                    HealthPosition {
                        denom: "udebt".into(),
                        price: debt_price,
                        collateral_amount: Uint128::zero(),
                        debt_amount: Uint128::new(debt),
                        max_ltv: Decimal::percent(50),
                        liquidation_threshold: Decimal::percent(60),
                    },
                ];
                lines.extend(other_line);
                Scenario {
                    params,
                    lines,
                    collateral,
                    collateral_price,
                    debt: Uint128::new(debt),
                    debt_price,
                    sent: Uint128::new(debt).mul_floor(sent_share),
                    thf,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        max_global_rejects: 200_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn math_repay_respects_every_bound_and_seizure_stays_within_collateral(s in scenario()) {
        let health = compute_health(&s.lines).unwrap();
        prop_assume!(health.is_liquidatable());
        let input = s.input(&health);
        let amounts = match calculate_liquidation_amounts(&input) {
            Ok(amounts) => amounts,
            // Mars refuses repaying without seizing (and vice versa); extreme prices overflow.
            Err(MathError::InvalidLiquidationAmounts { .. } | MathError::Overflow { .. }) => {
                prop_assume!(false);
                unreachable!()
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected error: {other}"))),
        };
        let bonus = calculate_liquidation_bonus(
            health.liquidation_health_factor.unwrap(),
            health.total_collateral_value,
            health.total_debt_value,
            &s.params.liquidation_bonus,
        ).unwrap();
        prop_assert_eq!(bonus, amounts.liquidation_bonus);

        prop_assert!(amounts.debt_amount_to_repay <= s.debt);
        prop_assert!(amounts.debt_amount_to_repay <= s.sent);
        if let Some(cap) = max_debt_repayable_amount(
            &health, s.params.liquidation_threshold, bonus, s.thf, s.debt_price,
        ).unwrap() {
            prop_assert!(amounts.debt_amount_to_repay <= cap);
        }
        let collateral_value = s.collateral.mul_floor(s.collateral_price);
        let collateral_bound = collateral_value
            .div_floor(Decimal::one() + bonus)
            .div_floor(s.debt_price);
        prop_assert!(amounts.debt_amount_to_repay <= collateral_bound);

        prop_assert!(amounts.collateral_amount_to_liquidate <= s.collateral);
        prop_assert!(amounts.protocol_fee() <= amounts.collateral_amount_to_liquidate);
        prop_assert!(
            amounts.collateral_amount_received_by_liquidator
                <= amounts.collateral_amount_to_liquidate
        );
        prop_assert_eq!(amounts.refund(s.sent) + amounts.debt_amount_to_repay, s.sent);
        prop_assert_eq!(
            amounts.collateral_amount_to_liquidate.is_zero(),
            amounts.debt_amount_to_repay.is_zero()
        );
    }

    /// A liquidation raises the health factor whenever the account's HF is at least the seized
    /// collateral's `LT·(1 + LB)`: `(L − LT·(1+LB)·r)/(D − r) ≥ L/D ⇔ L/D ≥ LT·(1+LB)`. The
    /// floors of on-chain math can cost a few units of value, so the margin below keeps the
    /// positions large enough that they cannot flip the comparison.
    #[test]
    fn math_liquidation_does_not_lower_health_when_hf_exceeds_seized_weight(s in scenario()) {
        let before = compute_health(&s.lines).unwrap();
        prop_assume!(before.is_liquidatable());
        prop_assume!(before.total_debt_value >= Uint128::new(1_000_000));
        let input = s.input(&before);
        let amounts = calculate_liquidation_amounts(&input);
        prop_assume!(amounts.is_ok());
        let amounts = amounts.unwrap();
        prop_assume!(amounts.debt_amount_to_repay.u128() >= 1_000);
        let seized_weight = s.params.liquidation_threshold * (Decimal::one() + amounts.liquidation_bonus);
        let hf = before.liquidation_health_factor.unwrap();
        prop_assume!(hf >= seized_weight + Decimal::permille(1));

        let after = compute_health(&apply_liquidation(&s.lines, "ucoll", "udebt", &amounts).unwrap()).unwrap();
        match after.liquidation_health_factor {
            None => {}
            Some(new_hf) => prop_assert!(new_hf >= hf, "HF fell from {} to {}", hf, new_hf),
        }
    }

    /// Arbitrary (even absurd) inputs give an answer or an error, never a panic.
    #[test]
    fn math_liquidation_never_panics(
        collateral in any::<u128>(),
        collateral_atomics in any::<u128>(),
        debt in any::<u128>(),
        debt_atomics in any::<u128>(),
        sent in any::<u128>(),
        lt in 0u128..=1_000_000_000_000_000_000,
        thf in 0u128..=10_000_000_000_000_000_000,
        debt_value in any::<u128>(),
        lt_collateral in any::<u128>(),
        collateral_value in any::<u128>(),
        hf in 0u128..=1_000_000_000_000_000_000,
    ) {
        let mut params = AssetParams {
            denom: "ucoll".into(),
            credit_manager: CmSettings::default(),
            red_bank: RedBankSettings {
                deposit_enabled: true, borrow_enabled: true, withdraw_enabled: None },
            max_loan_to_value: Decimal::zero(),
            liquidation_threshold: Decimal::new(Uint128::new(lt)),
            liquidation_bonus: LiquidationBonus {
                starting_lb: Decimal::percent(10),
                slope: Decimal::percent(500),
                min_lb: Decimal::percent(10),
                max_lb: Decimal::percent(30),
            },
            protocol_liquidation_fee: Decimal::percent(99),
            deposit_cap: Uint128::MAX,
            close_factor: None,
            reserve_factor: None,
            interest_rate_model: None,
        };
        params.max_loan_to_value = params.liquidation_threshold * Decimal::percent(50);
        let health = Health {
            total_debt_value: Uint128::new(debt_value),
            total_collateral_value: Uint128::new(collateral_value),
            max_ltv_adjusted_collateral: Uint128::zero(),
            liquidation_threshold_adjusted_collateral: Uint128::new(lt_collateral),
            max_ltv_health_factor: None,
            liquidation_health_factor: Some(Decimal::new(Uint128::new(hf))),
        };
        let _ = calculate_liquidation_amounts(&LiquidationInput {
            collateral_amount: Uint128::new(collateral),
            collateral_price: Decimal::new(Uint128::new(collateral_atomics)),
            collateral_params: &params,
            debt_amount: Uint128::new(debt),
            debt_requested_to_repay: Uint128::new(sent),
            debt_price: Decimal::new(Uint128::new(debt_atomics)),
            repay_limit: RepayLimit::TargetHealthFactor(Decimal::new(Uint128::new(thf))),
            health: &health,
        });
        let _ = compute_health(&[HealthPosition {
            denom: "ucoll".into(),
            price: Decimal::new(Uint128::new(collateral_atomics)),
            collateral_amount: Uint128::new(collateral),
            debt_amount: Uint128::new(debt),
            max_ltv: params.max_loan_to_value,
            liquidation_threshold: params.liquidation_threshold,
        }]);
    }

    /// Collateral (truncated) comes back at most one unit short; debt (ceiled) at most one unit
    /// over, for indexes a market reaches in practice.
    #[test]
    fn math_scaled_round_trips_within_one_unit(
        amount in 0u128..1_000_000_000_000_000_000_000_000u128,
        index in 1_000_000_000_000_000_000u128..100_000_000_000_000_000_000u128,
    ) {
        let index = Decimal::new(Uint128::new(index));
        let amount = Uint128::new(amount);
        let scaled = compute_scaled_amount(amount, index, ScalingOperation::Truncate).unwrap();
        let back = compute_underlying_amount(scaled, index, ScalingOperation::Truncate).unwrap();
        prop_assert!(back <= amount && amount - back <= Uint128::one());

        let scaled = compute_scaled_amount(amount, index, ScalingOperation::Ceil).unwrap();
        let back = compute_underlying_amount(scaled, index, ScalingOperation::Ceil).unwrap();
        prop_assert!(back >= amount && back - amount <= Uint128::one());
    }

    /// Accrual only grows indexes and debt; the protocol's reward never exceeds the interest,
    /// and utilization stays within [0, 1].
    #[test]
    fn math_interest_accrual_is_monotone(
        borrow_rate in 0u128..2_000_000_000_000_000_000u128,
        reserve in 0u128..1_000_000_000_000_000_000u128,
        utilization in 0u128..=1_000_000_000_000_000_000u128,
        collateral_scaled in 0u128..1_000_000_000_000_000_000u128,
        elapsed in 0u64..100_000_000,
    ) {
        let borrow_rate = Decimal::new(Uint128::new(borrow_rate));
        let utilization = Decimal::new(Uint128::new(utilization));
        let market = Market {
            denom: "uatom".into(),
            reserve_factor: Decimal::new(Uint128::new(reserve)),
            interest_rate_model: InterestRateModel {
                optimal_utilization_rate: Decimal::percent(80),
                base: Decimal::zero(),
                slope_1: Decimal::percent(20),
                slope_2: Decimal::percent(300),
            },
            borrow_rate,
            liquidity_rate: borrow_rate * utilization,
            indexes_last_updated: 1_000,
            collateral_total_scaled: Uint128::new(collateral_scaled),
            debt_total_scaled: Uint128::new(collateral_scaled).mul_floor(utilization),
            ..Market::default()
        };
        let accrued = apply_accumulated_interests(&market, 1_000 + elapsed).unwrap();
        prop_assert!(accrued.market.borrow_index >= market.borrow_index);
        prop_assert!(accrued.market.liquidity_index >= market.liquidity_index);
        let debt_before = compute_underlying_amount(market.debt_total_scaled, market.borrow_index, ScalingOperation::Ceil).unwrap();
        let debt_after = compute_underlying_amount(market.debt_total_scaled, accrued.market.borrow_index, ScalingOperation::Ceil).unwrap();
        prop_assert!(accrued.reward_amount <= debt_after - debt_before);
        prop_assert_eq!(
            accrued.market.collateral_total_scaled,
            market.collateral_total_scaled + accrued.reward_amount_scaled
        );
        let util = utilization_rate(&accrued.market, 1_000 + elapsed).unwrap();
        prop_assert!(util <= Decimal::one());
        let updated = update_interest_rates(&accrued.market, 1_000 + elapsed).unwrap();
        prop_assert!(updated.liquidity_rate <= updated.borrow_rate);
    }
}
