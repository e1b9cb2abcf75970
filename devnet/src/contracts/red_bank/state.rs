//! Red Bank storage, under Mars's namespaces and key shapes (`contracts/red-bank/src/state.rs`),
//! and the per-user bookkeeping of `user.rs`.

use cosmwasm_std::{Addr, Order, StdResult, Storage, Uint128};
use cw_storage_plus::{Item, Map, PrimaryKey};
use mars::msg::red_bank::{namespace, Collateral, Debt, Market, UserId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub address_provider: Addr,
}

pub const CONFIG: Item<Config> = Item::new(namespace::CONFIG);
pub const MARKETS: Map<&str, Market> = Map::new(namespace::MARKETS);
/// Keyed by (JSON of [`UserId`], denom), as Mars's `UserIdKey`.
pub const COLLATERALS: Map<(&[u8], &str), Collateral> = Map::new(namespace::COLLATERALS);
pub const DEBTS: Map<(&Addr, &str), Debt> = Map::new(namespace::DEBTS);

/// The collateral key of a Red Bank user (empty account id) or a credit account.
pub fn user_key(addr: &Addr, account_id: &str) -> Vec<u8> {
    UserId::credit_manager(addr.clone(), account_id.to_string()).key_bytes()
}

/// Adds scaled collateral; a new position starts enabled (Mars `increase_collateral`).
pub fn increase_collateral(
    store: &mut dyn Storage,
    user_key: &[u8],
    denom: &str,
    amount_scaled: Uint128,
) -> StdResult<()> {
    COLLATERALS.update(store, (user_key, denom), |existing| -> StdResult<_> {
        Ok(match existing {
            Some(mut collateral) => {
                collateral.amount_scaled = collateral.amount_scaled.checked_add(amount_scaled)?;
                collateral
            }
            None => Collateral {
                amount_scaled,
                enabled: true,
            },
        })
    })?;
    Ok(())
}

/// Removes scaled collateral, deleting the position at zero (Mars `decrease_collateral`).
pub fn decrease_collateral(
    store: &mut dyn Storage,
    user_key: &[u8],
    denom: &str,
    amount_scaled: Uint128,
) -> StdResult<()> {
    decrease_position(
        store,
        &COLLATERALS,
        (user_key, denom),
        amount_scaled,
        |collateral| &mut collateral.amount_scaled,
    )
}

/// Adds scaled debt; the uncollateralized flag is overwritten by the latest borrow, as in Mars.
pub fn increase_debt(
    store: &mut dyn Storage,
    user: &Addr,
    denom: &str,
    amount_scaled: Uint128,
    uncollateralized: bool,
) -> StdResult<()> {
    DEBTS.update(store, (user, denom), |existing| -> StdResult<_> {
        Ok(Debt {
            amount_scaled: existing
                .map(|debt| debt.amount_scaled)
                .unwrap_or_default()
                .checked_add(amount_scaled)?,
            uncollateralized,
        })
    })?;
    Ok(())
}

/// Removes scaled debt, deleting the position at zero.
pub fn decrease_debt(
    store: &mut dyn Storage,
    user: &Addr,
    denom: &str,
    amount_scaled: Uint128,
) -> StdResult<()> {
    decrease_position(store, &DEBTS, (user, denom), amount_scaled, |debt| {
        &mut debt.amount_scaled
    })
}

/// Subtracts `amount_scaled` from the scaled amount of the position at `key` in `positions`,
/// deleting the position when nothing is left.
fn decrease_position<'k, K, V>(
    store: &mut dyn Storage,
    positions: &Map<K, V>,
    key: K,
    amount_scaled: Uint128,
    scaled_amount: fn(&mut V) -> &mut Uint128,
) -> StdResult<()>
where
    K: PrimaryKey<'k> + Copy,
    V: Serialize + DeserializeOwned,
{
    let mut position = positions.load(store, key)?;
    let remaining = scaled_amount(&mut position);
    *remaining = remaining.checked_sub(amount_scaled)?;
    if remaining.is_zero() {
        positions.remove(store, key);
    } else {
        positions.save(store, key, &position)?;
    }
    Ok(())
}

/// Whether the user owes anything in any denom.
pub fn is_borrowing(store: &dyn Storage, user: &Addr) -> bool {
    DEBTS
        .prefix(user)
        .keys_raw(store, None, None, Order::Ascending)
        .next()
        .is_some()
}
