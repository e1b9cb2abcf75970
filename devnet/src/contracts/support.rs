//! Small pieces every devnet contract shares: the failures they have in common, owner checks,
//! payment checks with cw-utils' messages and pagination.

use cosmwasm_std::{
    Addr, Coin, DepsMut, MessageInfo, Order, OverflowError, Response, StdError, StdResult, Storage,
    Uint128,
};
use cw_storage_plus::{Bound, Item, Map};
use mars::math::MathError;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 30;

pub fn page_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize
}

/// One page of a denom-keyed map: the entries after `start_after`, at most `limit` of them.
pub fn page<'a, V>(
    storage: &'a dyn Storage,
    map: &Map<&'a str, V>,
    start_after: Option<&'a str>,
    limit: Option<u32>,
) -> impl Iterator<Item = StdResult<(String, V)>> + 'a
where
    V: Serialize + DeserializeOwned + 'a,
{
    map.range(
        storage,
        start_after.map(Bound::exclusive),
        None,
        Order::Ascending,
    )
    .take(page_limit(limit))
}

/// The values of [`page`].
pub fn page_values<'a, V>(
    storage: &'a dyn Storage,
    map: &Map<&'a str, V>,
    start_after: Option<&'a str>,
    limit: Option<u32>,
) -> StdResult<Vec<V>>
where
    V: Serialize + DeserializeOwned + 'a,
{
    page(storage, map, start_after, limit)
        .map(|item| Ok(item?.1))
        .collect()
}

/// The first `limit` of `entries` (already past the page's start) and whether more follow.
pub fn page_with_more<T>(
    entries: impl Iterator<Item = StdResult<T>>,
    limit: Option<u32>,
) -> StdResult<(Vec<T>, bool)> {
    let limit = page_limit(limit);
    let mut entries = entries.take(limit + 1).collect::<StdResult<Vec<_>>>()?;
    let has_more = entries.len() > limit;
    entries.truncate(limit);
    Ok((entries, has_more))
}

/// The owner of a contract, under Mars's `owner` namespace.
pub const OWNER: Item<Addr> = Item::new("owner");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnerError {
    #[error("Caller is not owner")]
    NotOwner {},
}

/// The last step of an owned contract's `instantiate`: validates and stores the owner its
/// message names, and answers with the empty response the Mars contracts give.
pub fn save_owner_and_respond<E: From<CommonError>>(
    deps: DepsMut,
    owner: &str,
) -> Result<Response, E> {
    let owner = deps.api.addr_validate(owner).map_err(CommonError::from)?;
    OWNER
        .save(deps.storage, &owner)
        .map_err(CommonError::from)?;
    Ok(Response::default())
}

pub fn assert_owner(storage: &dyn Storage, sender: &Addr) -> Result<(), CommonError> {
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

/// The failures all the devnet's contracts share. Each shows its inner error's own message, as
/// the Mars contracts' `Std`, `Owner`, `Payment` and `Math` variants do; a contract's error
/// nests this one transparently (see [`from_common_errors`]).
#[derive(Debug, thiserror::Error)]
pub enum CommonError {
    #[error("{0}")]
    Std(#[from] StdError),
    #[error("{0}")]
    Owner(#[from] OwnerError),
    #[error("{0}")]
    Payment(#[from] PaymentError),
    #[error("{0}")]
    Math(#[from] MathError),
}

impl From<OverflowError> for CommonError {
    fn from(err: OverflowError) -> Self {
        CommonError::Std(err.into())
    }
}

/// Lets `?` turn each failure of [`CommonError`] straight into a contract's own error, whose
/// `Common(#[from] CommonError)` variant holds it: Rust does not chain `From` conversions.
macro_rules! from_common_errors {
    ($error:ty) => {
        $crate::contracts::support::from_common_errors!(
            $error: cosmwasm_std::StdError,
            $crate::contracts::support::OwnerError,
            $crate::contracts::support::PaymentError,
            mars::math::MathError,
            cosmwasm_std::OverflowError
        );
    };
    ($error:ty: $($source:ty),+) => {
        $(
            impl From<$source> for $error {
                fn from(err: $source) -> Self {
                    Self::Common(err.into())
                }
            }
        )+
    };
}
pub(crate) use from_common_errors;

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
