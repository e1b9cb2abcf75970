//! Small pieces every devnet contract shares: owner checks, payment checks with cw-utils'
//! messages and pagination limits.

use cosmwasm_std::{Addr, Coin, MessageInfo, StdError, Storage, Uint128};
use cw_storage_plus::Item;

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 30;

pub fn page_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize
}

/// The owner of a contract, under Mars's `owner` namespace.
pub const OWNER: Item<Addr> = Item::new("owner");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnerError {
    #[error("Caller is not owner")]
    NotOwner {},
}

pub fn assert_owner<E>(storage: &dyn Storage, sender: &Addr) -> Result<(), E>
where
    E: From<OwnerError> + From<StdError>,
{
    if OWNER.load(storage)? != sender {
        return Err(OwnerError::NotOwner {}.into());
    }
    Ok(())
}

/// cw-utils' `PaymentError`, same messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PaymentError {
    #[error("Must send reserve token '{0}'")]
    MissingDenom(String),
    #[error("Received unsupported denom '{0}'")]
    ExtraDenom(String),
    #[error("Sent more than one denomination")]
    MultipleDenoms {},
    #[error("No funds sent")]
    NoFunds {},
    #[error("This message does no accept funds")]
    NonPayable {},
    #[error("Amount of {0} does not fit in 128 bits")]
    AmountTooLarge(String),
}

/// A coin whose amount fits the 128-bit amounts the Mars contracts work in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coin128 {
    pub denom: String,
    pub amount: Uint128,
}

impl Coin128 {
    pub fn try_from_coin(coin: &Coin) -> Result<Self, PaymentError> {
        Ok(Coin128 {
            denom: coin.denom.clone(),
            amount: Uint128::try_from(coin.amount)
                .map_err(|_| PaymentError::AmountTooLarge(coin.denom.clone()))?,
        })
    }
}

/// Exactly one non-zero coin (cw-utils `one_coin`).
pub fn one_coin(info: &MessageInfo) -> Result<Coin128, PaymentError> {
    match info.funds.as_slice() {
        [] => Err(PaymentError::NoFunds {}),
        [coin] if coin.amount.is_zero() => Err(PaymentError::NoFunds {}),
        [coin] => Coin128::try_from_coin(coin),
        _ => Err(PaymentError::MultipleDenoms {}),
    }
}

/// No funds at all (cw-utils `nonpayable`).
pub fn nonpayable(info: &MessageInfo) -> Result<(), PaymentError> {
    if info.funds.is_empty() {
        Ok(())
    } else {
        Err(PaymentError::NonPayable {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::coin;

    fn info(funds: Vec<Coin>) -> MessageInfo {
        MessageInfo {
            sender: Addr::unchecked("sender"),
            funds,
        }
    }

    #[test]
    fn one_coin_rules() {
        assert_eq!(one_coin(&info(vec![])), Err(PaymentError::NoFunds {}));
        assert_eq!(
            one_coin(&info(vec![coin(0, "uatom")])),
            Err(PaymentError::NoFunds {})
        );
        assert_eq!(
            one_coin(&info(vec![coin(1, "uatom"), coin(1, "uusdc")])),
            Err(PaymentError::MultipleDenoms {})
        );
        assert_eq!(
            one_coin(&info(vec![coin(7, "uatom")])),
            Ok(Coin128 {
                denom: "uatom".into(),
                amount: Uint128::new(7)
            })
        );
        assert_eq!(
            nonpayable(&info(vec![coin(7, "uatom")])),
            Err(PaymentError::NonPayable {})
        );
    }
}
