//! Parameter validation as the Mars params contract (asset params, target health factor) and
//! the Red Bank (market, interest rate model) perform it. Errors name the offending field and
//! use Mars's wording.

use cosmwasm_std::Decimal;

use super::MathError;
use crate::types::{AssetParams, InterestRateModel, LiquidationBonus, Market};

fn invalid(param_name: &str, value: Decimal, predicate: impl Into<String>) -> MathError {
    MathError::InvalidParam {
        param_name: param_name.to_string(),
        invalid_value: value.to_string(),
        predicate: predicate.into(),
    }
}

fn lt_one(value: Decimal, param_name: &str) -> Result<(), MathError> {
    if value < Decimal::one() {
        Ok(())
    } else {
        Err(invalid(param_name, value, "< 1"))
    }
}

fn le_one(value: Decimal, param_name: &str) -> Result<(), MathError> {
    if value <= Decimal::one() {
        Ok(())
    } else {
        Err(invalid(param_name, value, "<= 1"))
    }
}

/// A native denom: 3–128 characters, starting with an ASCII letter, then ASCII alphanumerics or
/// one of `/ : . _ -`.
pub fn validate_native_denom(denom: &str) -> Result<(), MathError> {
    let reason = if denom.len() < 3 || denom.len() > 128 {
        Some("Invalid denom length")
    } else if !denom.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("First character is not ASCII alphabetic")
    } else if !denom
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ['/', ':', '.', '_', '-'].contains(&c))
    {
        Some("Not all characters are ASCII alphanumeric or one of:  /  :  .  _  -")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(MathError::InvalidDenom {
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

/// starting_lb ∈ [0, 0.1], slope ∈ [1, 5], min_lb ∈ [0, 0.1], max_lb ∈ [0.05, 0.3],
/// min_lb ≤ max_lb.
pub fn validate_liquidation_bonus(bonus: &LiquidationBonus) -> Result<(), MathError> {
    if bonus.starting_lb > Decimal::percent(10) {
        return Err(invalid("starting_lb", bonus.starting_lb, "[0, 0.1]"));
    }
    if bonus.slope < Decimal::one() || bonus.slope > Decimal::percent(500) {
        return Err(invalid("slope", bonus.slope, "[1, 5]"));
    }
    if bonus.min_lb > Decimal::percent(10) {
        return Err(invalid("min_lb", bonus.min_lb, "[0, 0.1]"));
    }
    if bonus.max_lb < Decimal::percent(5) || bonus.max_lb > Decimal::percent(30) {
        return Err(invalid("max_lb", bonus.max_lb, "[0.05, 0.3]"));
    }
    if bonus.min_lb > bonus.max_lb {
        return Err(invalid(
            "max_lb",
            bonus.max_lb,
            format!("> {} (min LB)", bonus.min_lb),
        ));
    }
    Ok(())
}

/// Asset params as the params contract checks them: valid denom, max LTV < 1, LT ≤ 1,
/// LT > max LTV, the liquidation bonus ranges, protocol_liquidation_fee < 1, and the same LTV
/// rules for HLS params when present.
pub fn validate_asset_params(params: &AssetParams) -> Result<(), MathError> {
    validate_native_denom(&params.denom)?;
    validate_ltv(
        params.max_loan_to_value,
        params.liquidation_threshold,
        false,
    )?;
    validate_liquidation_bonus(&params.liquidation_bonus)?;
    lt_one(params.protocol_liquidation_fee, "protocol_liquidation_fee")?;
    if let Some(close_factor) = params.close_factor {
        le_one(close_factor, "close_factor")?;
    }
    if let Some(hls) = &params.credit_manager.hls {
        validate_ltv(hls.max_loan_to_value, hls.liquidation_threshold, true)?;
    }
    Ok(())
}

/// max LTV < 1, LT ≤ 1 and LT > max LTV, for the asset params or (`hls`) their HLS variant,
/// whose fields and wording carry an `hls` prefix.
fn validate_ltv(
    max_loan_to_value: Decimal,
    liquidation_threshold: Decimal,
    hls: bool,
) -> Result<(), MathError> {
    let (prefix, max_ltv_label) = if hls {
        ("hls_", "hls max LTV")
    } else {
        ("", "max LTV")
    };
    let threshold_name = format!("{prefix}liquidation_threshold");
    lt_one(max_loan_to_value, &format!("{prefix}max_loan_to_value"))?;
    le_one(liquidation_threshold, &threshold_name)?;
    if liquidation_threshold <= max_loan_to_value {
        return Err(invalid(
            &threshold_name,
            liquidation_threshold,
            format!("> {max_loan_to_value} ({max_ltv_label})"),
        ));
    }
    Ok(())
}

/// Target health factor ∈ [1, 2].
pub fn validate_target_health_factor(target_health_factor: Decimal) -> Result<(), MathError> {
    if target_health_factor < Decimal::one() || target_health_factor > Decimal::percent(200) {
        return Err(invalid(
            "target_health_factor",
            target_health_factor,
            "[1, 2]",
        ));
    }
    Ok(())
}

/// optimal_utilization_rate ≤ 1 and slope_1 < slope_2.
pub fn validate_interest_rate_model(model: &InterestRateModel) -> Result<(), MathError> {
    le_one(model.optimal_utilization_rate, "optimal_utilization_rate")?;
    if model.slope_1 >= model.slope_2 {
        return Err(invalid(
            "slope_1",
            model.slope_1,
            format!("< {}", model.slope_2),
        ));
    }
    Ok(())
}

/// reserve_factor < 1 and a valid interest rate model (Red Bank market checks).
pub fn validate_market(market: &Market) -> Result<(), MathError> {
    lt_one(market.reserve_factor, "reserve_factor")?;
    validate_interest_rate_model(&market.interest_rate_model)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::types::{CmSettings, HlsParams, RedBankSettings};

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn bonus(starting_lb: &str, slope: &str, min_lb: &str, max_lb: &str) -> LiquidationBonus {
        LiquidationBonus {
            starting_lb: dec(starting_lb),
            slope: dec(slope),
            min_lb: dec(min_lb),
            max_lb: dec(max_lb),
        }
    }

    fn atom() -> AssetParams {
        AssetParams {
            denom: "uatom".into(),
            credit_manager: CmSettings::default(),
            red_bank: RedBankSettings {
                withdraw_enabled: None,
                deposit_enabled: true,
                borrow_enabled: true,
            },
            max_loan_to_value: dec("0.7"),
            liquidation_threshold: dec("0.8"),
            liquidation_bonus: bonus("0.01", "2", "0.02", "0.1"),
            protocol_liquidation_fee: dec("0.1"),
            deposit_cap: cosmwasm_std::Uint128::MAX,
            close_factor: None,
            reserve_factor: None,
            interest_rate_model: None,
        }
    }

    fn rejected_field(params: &AssetParams) -> String {
        match validate_asset_params(params) {
            Err(MathError::InvalidParam { param_name, .. }) => param_name,
            other => panic!("expected an invalid param, got {other:?}"),
        }
    }

    #[test]
    fn valid_params_and_boundaries_pass() {
        validate_asset_params(&atom()).unwrap();
        let mut p = atom();
        p.close_factor = Some(Decimal::one());
        validate_asset_params(&p).unwrap();
        p.liquidation_threshold = Decimal::one();
        // (starting_lb, slope, min_lb, max_lb): every bound at its upper edge, then its lower.
        let edges = [
            ("0.1", "5", "0.1", "0.1"),
            ("0", "1", "0", "0.3"),
            ("0", "1", "0", "0.05"),
        ];
        for (starting_lb, slope, min_lb, max_lb) in edges {
            p.liquidation_bonus = bonus(starting_lb, slope, min_lb, max_lb);
            validate_asset_params(&p).unwrap();
        }
    }

    /// Breaks one rule of otherwise valid params.
    type Breakage = fn(&mut AssetParams);

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(Breakage, &str)> = vec![
            (
                |p| p.max_loan_to_value = Decimal::one(),
                "max_loan_to_value",
            ),
            (
                |p| p.liquidation_threshold = dec("1.01"),
                "liquidation_threshold",
            ),
            (
                |p| p.liquidation_threshold = dec("0.7"),
                "liquidation_threshold",
            ),
            (
                |p| p.liquidation_bonus.starting_lb = dec("0.11"),
                "starting_lb",
            ),
            (|p| p.liquidation_bonus.slope = dec("0.99"), "slope"),
            (|p| p.liquidation_bonus.slope = dec("5.01"), "slope"),
            (|p| p.liquidation_bonus.min_lb = dec("0.11"), "min_lb"),
            (|p| p.liquidation_bonus.max_lb = dec("0.049"), "max_lb"),
            (|p| p.liquidation_bonus.max_lb = dec("0.31"), "max_lb"),
            (
                |p| {
                    p.liquidation_bonus.min_lb = dec("0.08");
                    p.liquidation_bonus.max_lb = dec("0.06");
                },
                "max_lb",
            ),
            (
                |p| p.protocol_liquidation_fee = Decimal::one(),
                "protocol_liquidation_fee",
            ),
            (
                |p| {
                    p.credit_manager.hls = Some(HlsParams {
                        max_loan_to_value: dec("0.9"),
                        liquidation_threshold: dec("0.9"),
                        correlations: vec![],
                    })
                },
                "hls_liquidation_threshold",
            ),
            (|p| p.close_factor = Some(dec("1.01")), "close_factor"),
        ];
        for (breaks, field) in cases {
            let mut p = atom();
            breaks(&mut p);
            assert_eq!(rejected_field(&p), field);
        }
    }

    #[test]
    fn messages_follow_mars() {
        let mut p = atom();
        p.liquidation_threshold = dec("0.7");
        assert_eq!(
            validate_asset_params(&p).unwrap_err().to_string(),
            "Invalid param: liquidation_threshold is 0.7, but it should be > 0.7 (max LTV)"
        );
        assert_eq!(
            validate_target_health_factor(dec("0.99"))
                .unwrap_err()
                .to_string(),
            "Invalid param: target_health_factor is 0.99, but it should be [1, 2]"
        );
    }

    #[test]
    fn target_health_factor_range() {
        validate_target_health_factor(Decimal::one()).unwrap();
        validate_target_health_factor(dec("1.05")).unwrap();
        validate_target_health_factor(dec("2")).unwrap();
        assert!(validate_target_health_factor(dec("0.999")).is_err());
        assert!(validate_target_health_factor(dec("2.000000000000000001")).is_err());
    }

    #[test]
    fn denoms() {
        validate_native_denom("uatom").unwrap();
        validate_native_denom(
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
        )
        .unwrap();
        validate_native_denom("factory/osmo1abc/u.x_y-z:1").unwrap();
        for bad in ["ab", "1atom", "u atom", &"a".repeat(129)] {
            assert!(matches!(
                validate_native_denom(bad),
                Err(MathError::InvalidDenom { .. })
            ));
        }
        let mut p = atom();
        p.denom = "9x".into();
        assert!(matches!(
            validate_asset_params(&p),
            Err(MathError::InvalidDenom { .. })
        ));
    }

    #[test]
    fn markets() {
        let mut market = Market {
            denom: "uatom".into(),
            reserve_factor: dec("0.1"),
            interest_rate_model: InterestRateModel {
                optimal_utilization_rate: dec("0.8"),
                base: Decimal::zero(),
                slope_1: dec("0.07"),
                slope_2: dec("0.45"),
            },
            ..Market::default()
        };
        validate_market(&market).unwrap();
        market.interest_rate_model.slope_1 = dec("0.45");
        assert_eq!(
            validate_market(&market).unwrap_err().to_string(),
            "Invalid param: slope_1 is 0.45, but it should be < 0.45"
        );
        market.interest_rate_model.slope_1 = dec("0.07");
        market.interest_rate_model.optimal_utilization_rate = dec("1.01");
        assert!(validate_market(&market).is_err());
        market.interest_rate_model.optimal_utilization_rate = dec("0.8");
        market.reserve_factor = Decimal::one();
        assert!(matches!(
            validate_market(&market),
            Err(MathError::InvalidParam { param_name, .. }) if param_name == "reserve_factor"
        ));
    }
}
