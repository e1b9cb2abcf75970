//! Reading a chain's fee market: the least gas price a tx must pay now, where it moves.
//!
//! - Neutron (skip-mev `x/feemarket`): `/feemarket.feemarket.v1.Query/GasPrice` with the fee
//!   denom answers the base gas price, which every block moves with its gas.
//! - Osmosis (`x/txfees`, EIP-1559): `/osmosis.txfees.v1beta1.Query/GetEipBaseFee` answers the
//!   base fee in its fee denom.
//!
//! Both write the price as the SDK writes a `LegacyDec` into protobuf: the integer of its value
//! × 10¹⁸.

use cosmwasm_std::{Decimal, Uint128};

pub const FEEMARKET_GAS_PRICE: &str = "/feemarket.feemarket.v1.Query/GasPrice";
pub const OSMOSIS_EIP_BASE_FEE: &str = "/osmosis.txfees.v1beta1.Query/GetEipBaseFee";

/// `feemarket.feemarket.v1.GasPriceRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GasPriceRequest {
    #[prost(string, tag = "1")]
    pub denom: String,
}

/// `cosmos.base.v1beta1.DecCoin`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DecCoin {
    #[prost(string, tag = "1")]
    pub denom: String,
    #[prost(string, tag = "2")]
    pub amount: String,
}

/// `feemarket.feemarket.v1.GasPriceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GasPriceResponse {
    #[prost(message, optional, tag = "1")]
    pub price: Option<DecCoin>,
}

/// `osmosis.txfees.v1beta1.QueryEipBaseFeeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryEipBaseFeeRequest {}

/// `osmosis.txfees.v1beta1.QueryEipBaseFeeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryEipBaseFeeResponse {
    #[prost(string, tag = "1")]
    pub base_fee: String,
}

/// A `LegacyDec` from its protobuf text (the integer of its value × 10¹⁸); `None` when it is
/// not one.
pub fn parse_legacy_dec(text: &str) -> Option<Decimal> {
    let atomics: Uint128 = text.trim().parse().ok()?;
    Decimal::from_atomics(atomics, 18).ok()
}

/// The gas price to sign with: the market's `base` price times `headroom` (the price may rise
/// before the tx is delivered), never below the configured `floor`.
pub fn price_with_headroom(base: Option<Decimal>, headroom: Decimal, floor: Decimal) -> Decimal {
    base.map_or(floor, |base| base.saturating_mul(headroom).max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn legacy_decs_are_integers_of_ten_to_the_eighteenth() {
        assert_eq!(parse_legacy_dec("5300000000000000"), Some(dec("0.0053")));
        assert_eq!(parse_legacy_dec("1500000000000000000"), Some(dec("1.5")));
        assert_eq!(parse_legacy_dec("0.0053"), None);
        assert_eq!(parse_legacy_dec(""), None);
    }

    /// 0.0053 × 1.2 = 0.00636 over a 0.005 floor; a market price of 0.001 × 1.2 is under it.
    #[test]
    fn the_price_signed_with_has_headroom_over_the_market_and_a_floor() {
        let headroom = dec("1.2");
        let floor = dec("0.005");
        assert_eq!(
            price_with_headroom(Some(dec("0.0053")), headroom, floor),
            dec("0.00636")
        );
        assert_eq!(
            price_with_headroom(Some(dec("0.001")), headroom, floor),
            floor
        );
        assert_eq!(price_with_headroom(None, headroom, floor), floor);
    }
}
