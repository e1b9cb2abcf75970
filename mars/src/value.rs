//! Valuing coins at oracle prices, exactly.
//!
//! Oracle prices are `Decimal`s with 18 fractional digits per smallest unit, so `amount × price`
//! is exactly representable with 18 fractional digits: sums of such products lose nothing, and
//! the profits recorded per liquidation add up to the wallets' balance change to the last digit.
//! Values are signed (a failed tx is a loss) and 256-bit (an 18-decimal wei amount times a price
//! would overflow 128 bits long before any realistic position does, but need not be a concern).

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Int256, SignedDecimal256, Uint128, Uint256};

/// A value in the oracle's base denom units (e.g. `uusdc`), possibly negative.
pub type Value = SignedDecimal256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("no oracle price for `{denom}`")]
    MissingPrice { denom: String },
    #[error("value of {amount}{denom} overflows")]
    Overflow { denom: String, amount: String },
}

/// `amount × price`, exact.
pub fn value_of(denom: &str, amount: Uint128, price: Decimal) -> Result<Value, ValueError> {
    value_of_256(denom, amount.into(), price)
}

fn value_of_256(denom: &str, amount: Uint256, price: Decimal) -> Result<Value, ValueError> {
    let overflow = || ValueError::Overflow {
        denom: denom.to_string(),
        amount: amount.to_string(),
    };
    let atomics = Int256::try_from(amount).map_err(|_| overflow())?;
    let amount = SignedDecimal256::from_atomics(atomics, 0).map_err(|_| overflow())?;
    amount
        .checked_mul(SignedDecimal256::from(price))
        .map_err(|_| overflow())
}

/// Oracle prices of one moment and the decimals of the base denom they are quoted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceBook {
    pub prices: BTreeMap<String, Decimal>,
    /// Decimals of the oracle's base denom: a value of `10^base_decimals` is one USD.
    pub base_decimals: u32,
}

impl PriceBook {
    pub fn new(prices: BTreeMap<String, Decimal>, base_decimals: u32) -> Self {
        PriceBook {
            prices,
            base_decimals,
        }
    }

    pub fn price(&self, denom: &str) -> Result<Decimal, ValueError> {
        self.prices
            .get(denom)
            .copied()
            .ok_or_else(|| ValueError::MissingPrice {
                denom: denom.to_string(),
            })
    }

    pub fn value(&self, denom: &str, amount: Uint128) -> Result<Value, ValueError> {
        value_of(denom, amount, self.price(denom)?)
    }

    /// Value of a signed change of a balance.
    pub fn value_of_change(
        &self,
        denom: &str,
        before: Uint256,
        after: Uint256,
    ) -> Result<Value, ValueError> {
        let price = self.price(denom)?;
        if after >= before {
            value_of_256(denom, after - before, price)
        } else {
            Ok(-value_of_256(denom, before - after, price)?)
        }
    }

    /// Total value of coins.
    pub fn value_of_coins(&self, coins: &[cosmwasm_std::Coin]) -> Result<Value, ValueError> {
        coins.iter().try_fold(Value::zero(), |total, coin| {
            let value = value_of_256(&coin.denom, coin.amount, self.price(&coin.denom)?)?;
            total.checked_add(value).map_err(|_| ValueError::Overflow {
                denom: coin.denom.clone(),
                amount: coin.amount.to_string(),
            })
        })
    }

    /// A value in USD (base units / 10^decimals), for floors and display.
    pub fn to_usd(&self, value: Value) -> Value {
        to_usd(value, self.base_decimals)
    }

    /// The value worth `usd` dollars, in base units.
    pub fn from_usd(&self, usd: Decimal) -> Value {
        let scale = SignedDecimal256::from_atomics(Int256::from(10u128.pow(self.base_decimals)), 0)
            .unwrap_or(SignedDecimal256::MAX);
        SignedDecimal256::from(usd).saturating_mul(scale)
    }

    /// The amount of `denom` worth `value` (rounded down), `None` without a price.
    pub fn amount_worth(&self, denom: &str, value: Value) -> Option<Uint128> {
        let price = self.prices.get(denom).copied()?;
        if price.is_zero() || value <= Value::zero() {
            return Some(Uint128::zero());
        }
        let amount = value.checked_div(SignedDecimal256::from(price)).ok()?;
        let whole = amount.to_int_floor();
        Uint128::try_from(Uint256::try_from(whole).ok()?).ok()
    }
}

/// `value / 10^decimals`; at most 18 fractional digits are kept (rounding towards zero beyond).
pub fn to_usd(value: Value, base_decimals: u32) -> Value {
    let scale = SignedDecimal256::from_atomics(Int256::from(10u128.pow(base_decimals.min(38))), 0)
        .unwrap_or(SignedDecimal256::MAX);
    value.checked_div(scale).unwrap_or(Value::zero())
}

/// Parses a value written by [`Value`]'s `Display` (records, CSV).
pub fn parse_value(text: &str) -> Option<Value> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn values_are_exact_and_sum_exactly() {
        let price = dec("0.000000003"); // weth-wei
        let a = value_of("weth-wei", Uint128::new(333_333_333_333_333_333), price).unwrap();
        let b = value_of("weth-wei", Uint128::new(666_666_666_666_666_667), price).unwrap();
        let whole = value_of("weth-wei", Uint128::new(1_000_000_000_000_000_000), price).unwrap();
        assert_eq!(a + b, whole);
        assert_eq!(whole.to_string(), "3000000000");
        assert_eq!(a.to_string(), "999999999.999999999");
    }

    #[test]
    fn changes_are_signed() {
        let book = PriceBook::new(BTreeMap::from([("uatom".into(), dec("7.5"))]), 6);
        let loss = book
            .value_of_change("uatom", Uint256::from(10u32), Uint256::from(4u32))
            .unwrap();
        assert_eq!(loss.to_string(), "-45");
        let gain = book
            .value_of_change("uatom", Uint256::from(4u32), Uint256::from(10u32))
            .unwrap();
        assert_eq!(gain + loss, Value::zero());
        assert_eq!(
            book.value("uosmo", Uint128::one()).unwrap_err(),
            ValueError::MissingPrice {
                denom: "uosmo".into()
            }
        );
    }

    #[test]
    fn usd_conversions() {
        let book = PriceBook::new(BTreeMap::from([("uatom".into(), dec("7.5"))]), 6);
        let value = book.value("uatom", Uint128::new(1_000_000)).unwrap();
        assert_eq!(book.to_usd(value).to_string(), "7.5");
        assert_eq!(book.from_usd(dec("7.5")), value);
        assert_eq!(
            book.amount_worth("uatom", book.from_usd(dec("15"))),
            Some(Uint128::new(2_000_000))
        );
        assert_eq!(book.amount_worth("nope", value), None);
        assert_eq!(parse_value("-1.25"), Some("-1.25".parse().unwrap()));
    }
}
