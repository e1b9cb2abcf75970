//! The Mars v2 money math as pure functions: interest accrual and scaling, Red Bank and credit
//! account health, liquidation amounts and parameter validation.
//!
//! Every step uses cosmwasm-std integer math with the same floor/ceil as the Mars contracts, so
//! the devnet contracts and the services reproduce the chain to the unit. Where the contracts
//! would panic (unchecked `+`, `-`, `*`), these functions return a [`MathError`] instead.

pub mod credit_account;
pub mod health;
pub mod interest;
pub mod liquidation;
pub mod params;

use cosmwasm_std::{CheckedMultiplyFractionError, Decimal, Uint128};

/// Why a money computation could not be carried out.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MathError {
    #[error("overflow computing {operation}")]
    Overflow { operation: &'static str },

    #[error("division by zero computing {operation}")]
    DivideByZero { operation: &'static str },

    #[error("{field} is zero")]
    ZeroPrice { field: &'static str },

    #[error("no price for denom {denom}")]
    MissingPrice { denom: String },

    #[error("no asset params for denom {denom}")]
    MissingParams { denom: String },

    #[error("asset params of {denom} have no close_factor, which the close-factor liquidation rule needs")]
    MissingCloseFactor { denom: String },

    #[error("position is not liquidatable (liquidation health factor {health_factor})")]
    NotLiquidatable { health_factor: String },

    #[error(
        "Can't process liquidation. Invalid collateral_amount_to_liquidate \
         ({collateral_amount_to_liquidate}) and debt_amount_to_repay ({debt_amount_to_repay})"
    )]
    InvalidLiquidationAmounts {
        collateral_amount_to_liquidate: Uint128,
        debt_amount_to_repay: Uint128,
    },

    #[error("position has no {side} in denom {denom}")]
    MissingPosition { side: &'static str, denom: String },

    #[error("Invalid param: {param_name} is {invalid_value}, but it should be {predicate}")]
    InvalidParam {
        param_name: String,
        invalid_value: String,
        predicate: String,
    },

    #[error("Invalid denom: {reason}")]
    InvalidDenom { reason: String },

    #[error(
        "Cannot compute updated liquidity index for a timestamp: {timestamp} smaller than last \
         updated timestamp for market: {last_updated}"
    )]
    TimestampBeforeLastUpdate { timestamp: u64, last_updated: u64 },
}

fn fraction_error(err: CheckedMultiplyFractionError, operation: &'static str) -> MathError {
    match err {
        CheckedMultiplyFractionError::DivideByZero(_) => MathError::DivideByZero { operation },
        _ => MathError::Overflow { operation },
    }
}

/// `amount · fraction`, rounded down.
pub(crate) fn mul_floor(
    amount: Uint128,
    fraction: Decimal,
    operation: &'static str,
) -> Result<Uint128, MathError> {
    amount
        .checked_mul_floor(fraction)
        .map_err(|e| fraction_error(e, operation))
}

/// `amount · fraction`, rounded up.
pub(crate) fn mul_ceil(
    amount: Uint128,
    fraction: Decimal,
    operation: &'static str,
) -> Result<Uint128, MathError> {
    amount
        .checked_mul_ceil(fraction)
        .map_err(|e| fraction_error(e, operation))
}

/// `amount / fraction`, rounded down.
pub(crate) fn div_floor(
    amount: Uint128,
    fraction: Decimal,
    operation: &'static str,
) -> Result<Uint128, MathError> {
    amount
        .checked_div_floor(fraction)
        .map_err(|e| fraction_error(e, operation))
}

/// `amount / fraction`, rounded up.
pub(crate) fn div_ceil(
    amount: Uint128,
    fraction: Decimal,
    operation: &'static str,
) -> Result<Uint128, MathError> {
    amount
        .checked_div_ceil(fraction)
        .map_err(|e| fraction_error(e, operation))
}

/// `numerator / denominator` as a Decimal, rounded down (`Decimal::checked_from_ratio`).
pub(crate) fn ratio(
    numerator: Uint128,
    denominator: Uint128,
    operation: &'static str,
) -> Result<Decimal, MathError> {
    if denominator.is_zero() {
        return Err(MathError::DivideByZero { operation });
    }
    Decimal::checked_from_ratio(numerator, denominator)
        .map_err(|_| MathError::Overflow { operation })
}

/// Decimal product, rounded down.
pub(crate) fn dec_mul(
    a: Decimal,
    b: Decimal,
    operation: &'static str,
) -> Result<Decimal, MathError> {
    a.checked_mul(b)
        .map_err(|_| MathError::Overflow { operation })
}

/// Decimal quotient, rounded down.
pub(crate) fn dec_div(
    a: Decimal,
    b: Decimal,
    operation: &'static str,
) -> Result<Decimal, MathError> {
    if b.is_zero() {
        return Err(MathError::DivideByZero { operation });
    }
    a.checked_div(b)
        .map_err(|_| MathError::Overflow { operation })
}

pub(crate) fn dec_add(
    a: Decimal,
    b: Decimal,
    operation: &'static str,
) -> Result<Decimal, MathError> {
    a.checked_add(b)
        .map_err(|_| MathError::Overflow { operation })
}

pub(crate) fn dec_sub(
    a: Decimal,
    b: Decimal,
    operation: &'static str,
) -> Result<Decimal, MathError> {
    a.checked_sub(b)
        .map_err(|_| MathError::Overflow { operation })
}

pub(crate) fn add(a: Uint128, b: Uint128, operation: &'static str) -> Result<Uint128, MathError> {
    a.checked_add(b)
        .map_err(|_| MathError::Overflow { operation })
}

pub(crate) fn sub(a: Uint128, b: Uint128, operation: &'static str) -> Result<Uint128, MathError> {
    a.checked_sub(b)
        .map_err(|_| MathError::Overflow { operation })
}
