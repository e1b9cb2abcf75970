//! Credit manager storage, under Mars's names (`contracts/credit-manager/src/state.rs`), and the
//! per-account coin bookkeeping of its `utils.rs`.

use cosmwasm_std::{Addr, Decimal, StdError, Storage, Uint128};
use cw_storage_plus::{Item, Map};
use mars::msg::credit_manager::{namespace, AccountKind, RewardsCollector};
use serde::{Deserialize, Serialize};

use super::CreditManagerResult;

/// Mars's `RedBank` adapter as stored: the Red Bank and the credit manager itself, whose
/// address the Red Bank books the accounts' debt and lends under.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RedBankAdapter {
    pub addr: Addr,
    pub credit_manager: Addr,
}

/// mars-utils' `GuardState`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GuardState {
    Unlocked,
    Locked,
}

pub const ACCOUNT_NFT: Item<Addr> = Item::new(namespace::ACCOUNT_NFT);
pub const ORACLE: Item<Addr> = Item::new(namespace::ORACLE);
pub const RED_BANK: Item<RedBankAdapter> = Item::new(namespace::RED_BANK);
pub const SWAPPER: Item<Addr> = Item::new(namespace::SWAPPER);
pub const ZAPPER: Item<Addr> = Item::new(namespace::ZAPPER);
pub const HEALTH_CONTRACT: Item<Addr> = Item::new(namespace::HEALTH_CONTRACT);
pub const PARAMS: Item<Addr> = Item::new(namespace::PARAMS);
/// Mars's `Incentives` adapter has the same shape as the Red Bank's.
pub const INCENTIVES: Item<RedBankAdapter> = Item::new(namespace::INCENTIVES);
pub const MAX_UNLOCKING_POSITIONS: Item<Uint128> = Item::new(namespace::MAX_UNLOCKING_POSITIONS);
pub const MAX_SLIPPAGE: Item<Decimal> = Item::new(namespace::MAX_SLIPPAGE);
pub const REENTRANCY_GUARD: Item<GuardState> = Item::new(namespace::REENTRANCY_GUARD);
pub const REWARDS_COLLECTOR: Item<RewardsCollector> = Item::new(namespace::REWARDS_COLLECTOR);
pub const PERPS_LB_RATIO: Item<Decimal> = Item::new(namespace::PERPS_LB_RATIO);

/// Whether this credit manager is core-contracts' (Neutron): only that line stores a perps
/// liquidation-bonus ratio.
pub fn is_core_line(storage: &dyn Storage) -> bool {
    PERPS_LB_RATIO.exists(storage)
}

pub const ACCOUNT_KINDS: Map<&str, AccountKind> = Map::new(namespace::ACCOUNT_KINDS);
pub const COIN_BALANCES: Map<(&str, &str), Uint128> = Map::new(namespace::COIN_BALANCES);
pub const DEBT_SHARES: Map<(&str, &str), Uint128> = Map::new(namespace::DEBT_SHARES);
pub const TOTAL_DEBT_SHARES: Map<&str, Uint128> = Map::new(namespace::TOTAL_DEBT_SHARES);

/// An account never given a kind (none on the devnet) is a default one, as in Mars.
pub fn account_kind(storage: &dyn Storage, account_id: &str) -> CreditManagerResult<AccountKind> {
    Ok(ACCOUNT_KINDS
        .may_load(storage, account_id)?
        .unwrap_or(AccountKind::Default))
}

pub fn coin_balance(
    storage: &dyn Storage,
    account_id: &str,
    denom: &str,
) -> CreditManagerResult<Uint128> {
    Ok(COIN_BALANCES
        .may_load(storage, (account_id, denom))?
        .unwrap_or_default())
}

/// Adds to an account's balance. Like Mars, it writes the entry even for a zero amount.
pub fn increment_coin_balance(
    storage: &mut dyn Storage,
    account_id: &str,
    denom: &str,
    amount: Uint128,
) -> CreditManagerResult<Uint128> {
    let balance = coin_balance(storage, account_id, denom)?.checked_add(amount)?;
    COIN_BALANCES.save(storage, (account_id, denom), &balance)?;
    Ok(balance)
}

/// Subtracts from an account's balance (an overflow error when it holds less), removing the
/// entry at zero.
pub fn decrement_coin_balance(
    storage: &mut dyn Storage,
    account_id: &str,
    denom: &str,
    amount: Uint128,
) -> CreditManagerResult<Uint128> {
    let balance = coin_balance(storage, account_id, denom)?.checked_sub(amount)?;
    if balance.is_zero() {
        COIN_BALANCES.remove(storage, (account_id, denom));
    } else {
        COIN_BALANCES.save(storage, (account_id, denom), &balance)?;
    }
    Ok(balance)
}

/// Errors of mars-utils' guard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("Guard is active")]
    Active {},
    #[error("Invalid guard state transition")]
    InvalidState {},
    #[error("{0}")]
    Std(String),
}

impl From<StdError> for GuardError {
    fn from(err: StdError) -> Self {
        GuardError::Std(err.to_string())
    }
}

fn guard_state(storage: &dyn Storage) -> Result<GuardState, GuardError> {
    Ok(REENTRANCY_GUARD
        .may_load(storage)?
        .unwrap_or(GuardState::Unlocked))
}

/// Locks the guard for the callbacks of one `update_credit_account`; fails if already locked.
pub fn lock_guard(storage: &mut dyn Storage) -> Result<(), GuardError> {
    if guard_state(storage)? == GuardState::Locked {
        return Err(GuardError::Active {});
    }
    REENTRANCY_GUARD.save(storage, &GuardState::Locked)?;
    Ok(())
}

pub fn unlock_guard(storage: &mut dyn Storage) -> Result<(), GuardError> {
    if guard_state(storage)? == GuardState::Unlocked {
        return Err(GuardError::InvalidState {});
    }
    REENTRANCY_GUARD.save(storage, &GuardState::Unlocked)?;
    Ok(())
}
