//! Genesis-style seeding of Rover credit accounts, fast enough for thousands of them.
//!
//! As [`seed_positions`] does for the Red Bank, accounts are written straight into storage:
//! the NFT's tokens (and owner index), the credit manager's account kinds, coin balances and
//! debt shares, and through [`seed_positions`] the Red Bank's side — each account's lends as
//! collateral of `{"addr": credit manager, "acc_id": id}` and the accounts' debt, in one sum, as
//! the credit manager's. Bank balances stay consistent: deposits sit in the credit manager,
//! borrowed coins were withdrawn to the owners' wallets.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, Coin, Empty, Storage, Uint128};
use mars::msg::credit_manager::DEFAULT_DEBT_SHARES_PER_COIN_BORROWED;
use mars::msg::health::AccountKind;

use super::account_nft::{tokens, TokenInfo, NEXT_ID, NUM_TOKENS};
use super::credit_manager::state::{
    increment_coin_balance, ACCOUNT_KINDS, DEBT_SHARES, TOTAL_DEBT_SHARES,
};
use super::seed::{add_to, mint_and_pay_out, to_coins};
use super::support::Coin128;
use super::{
    seed_positions, DeployedContracts, DevnetApp, RoverContracts, SeedError, SeedPosition,
};

/// One credit account to seed: coins deposited in it, coins it lent to the Red Bank and what it
/// borrowed (and withdrew to its owner's wallet), at most one coin of a denom in each list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditAccountSeed {
    pub owner: Addr,
    pub kind: AccountKind,
    pub deposits: Vec<Coin>,
    pub lends: Vec<Coin>,
    pub debts: Vec<Coin>,
}

/// Writes `accounts` as new credit accounts at the app's current block; returns their ids.
///
/// Debt shares are minted at Mars's first-borrow rate, so the credit manager must not owe the
/// Red Bank yet in a seeded denom (`SeedError::CreditDebtExists` otherwise).
pub fn seed_credit_accounts<S: Storage>(
    app: &mut DevnetApp<S>,
    contracts: &DeployedContracts,
    accounts: &[CreditAccountSeed],
) -> Result<Vec<String>, SeedError> {
    let rover = contracts.rover.as_ref().ok_or(SeedError::NoRover)?;
    let first_id = NEXT_ID.load(app.contract_storage(&rover.account_nft).as_ref())?;
    let ids: Vec<String> = (first_id..)
        .take(accounts.len())
        .map(|id| id.to_string())
        .collect();
    let debts = coin_totals(accounts.iter().flat_map(|a| &a.debts))?;
    refuse_existing_debt(app, rover, &debts)?;

    seed_positions(
        app,
        contracts,
        &red_bank_positions(rover, accounts, &ids, &debts),
    )?;
    write_tokens(app, rover, accounts, &ids, first_id)?;
    write_accounts(app, rover, accounts, &ids)?;
    let deposits = coin_totals(accounts.iter().flat_map(|a| &a.deposits))?;
    let withdrawals = accounts
        .iter()
        .map(|a| (a.owner.clone(), a.debts.clone()))
        .collect();
    mint_and_pay_out(app, &rover.credit_manager, to_coins(&deposits), withdrawals)?;
    Ok(ids)
}

fn coin_totals<'a>(
    coins: impl IntoIterator<Item = &'a Coin>,
) -> Result<BTreeMap<String, Uint128>, SeedError> {
    let mut totals = BTreeMap::new();
    for coin in coins {
        let coin = Coin128::try_from_coin(coin)?;
        add_to(&mut totals, &coin.denom, coin.amount)?;
    }
    Ok(totals)
}

fn refuse_existing_debt<S: Storage>(
    app: &DevnetApp<S>,
    rover: &RoverContracts,
    debts: &BTreeMap<String, Uint128>,
) -> Result<(), SeedError> {
    let storage = app.contract_storage(&rover.credit_manager);
    for denom in debts.keys() {
        if TOTAL_DEBT_SHARES
            .may_load(storage.as_ref(), denom)?
            .is_some()
        {
            return Err(SeedError::CreditDebtExists(denom.clone()));
        }
    }
    Ok(())
}

/// Each account's lends under its id, and the summed debt under the credit manager.
fn red_bank_positions(
    rover: &RoverContracts,
    accounts: &[CreditAccountSeed],
    ids: &[String],
    debts: &BTreeMap<String, Uint128>,
) -> Vec<SeedPosition> {
    let lends = accounts.iter().zip(ids).map(|(account, id)| SeedPosition {
        user: rover.credit_manager.clone(),
        account_id: Some(id.clone()),
        collateral: account.lends.clone(),
        debt: vec![],
    });
    let debt = SeedPosition {
        user: rover.credit_manager.clone(),
        account_id: None,
        collateral: vec![],
        debt: to_coins(debts),
    };
    lends.chain(std::iter::once(debt)).collect()
}

/// The NFT tokens, as its `mint` writes them, with ids from `first_id` on.
fn write_tokens<S: Storage>(
    app: &mut DevnetApp<S>,
    rover: &RoverContracts,
    accounts: &[CreditAccountSeed],
    ids: &[String],
    first_id: u64,
) -> Result<(), SeedError> {
    let mut storage = app.contract_storage_mut(&rover.account_nft);
    let store = storage.as_mut();
    for (account, id) in accounts.iter().zip(ids) {
        let token = TokenInfo {
            owner: account.owner.clone(),
            approvals: vec![],
            token_uri: None,
            extension: Empty {},
        };
        tokens().save(store, id, &token)?;
    }
    let count = accounts.len() as u64;
    NEXT_ID.save(store, &(first_id + count))?;
    let minted = NUM_TOKENS.load(store)? + count;
    NUM_TOKENS.save(store, &minted)?;
    Ok(())
}

/// Kinds, coin balances and debt shares, at the first-borrow share rate.
fn write_accounts<S: Storage>(
    app: &mut DevnetApp<S>,
    rover: &RoverContracts,
    accounts: &[CreditAccountSeed],
    ids: &[String],
) -> Result<(), SeedError> {
    let mut storage = app.contract_storage_mut(&rover.credit_manager);
    let store = storage.as_mut();
    let mut total_shares: BTreeMap<String, Uint128> = BTreeMap::new();
    for (account, id) in accounts.iter().zip(ids) {
        ACCOUNT_KINDS.save(store, id, &account.kind)?;
        for coin in account.deposits.iter().filter(|c| !c.amount.is_zero()) {
            let coin = Coin128::try_from_coin(coin)?;
            increment_coin_balance(store, id, &coin.denom, coin.amount)
                .map_err(|e| SeedError::CreditManager(e.to_string()))?;
        }
        for coin in account.debts.iter().filter(|c| !c.amount.is_zero()) {
            let coin = Coin128::try_from_coin(coin)?;
            let shares = coin
                .amount
                .checked_mul(DEFAULT_DEBT_SHARES_PER_COIN_BORROWED)
                .map_err(cosmwasm_std::StdError::from)?;
            DEBT_SHARES.save(store, (id, &coin.denom), &shares)?;
            add_to(&mut total_shares, &coin.denom, shares)?;
        }
    }
    for (denom, shares) in &total_shares {
        TOTAL_DEBT_SHARES.save(store, denom, shares)?;
    }
    Ok(())
}
