//! Genesis-style seeding of Red Bank positions, fast enough for 100,000 borrowers.
//!
//! Positions are written straight into the Red Bank's storage with the current indexes (after
//! accruing every market to the current block), market totals and rates are updated once, and
//! bank balances are set so the chain stays consistent: deposited coins sit in the Red Bank,
//! borrowed coins are in the borrowers' wallets. No health or cap check is made: a scenario may
//! seed accounts that are already close to (or past) liquidation on purpose.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, BankMsg, Coin, Order, StdError, Storage, Uint128};
use cw_multi_test::{BankSudo, Module};
use mars::math::{interest, MathError};
use mars::msg::red_bank::Market;

use super::red_bank::state::{increase_collateral, increase_debt, user_key, MARKETS};
use super::red_bank::{refresh_interest_rates, RedBankError};
use super::support::{Coin128, PaymentError};
use super::{DeployedContracts, DevnetApp};

/// One account to seed: what it deposited (enabled as collateral) and what it borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedPosition {
    pub user: Addr,
    /// The credit account whose lends the collateral is, when `user` is the credit manager:
    /// the Red Bank books it under `{"addr": user, "acc_id": id}`. Debt is always the user's.
    pub account_id: Option<String>,
    pub collateral: Vec<Coin>,
    pub debt: Vec<Coin>,
}

/// Totals written, per denom, in underlying units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub positions: usize,
    pub deposited: BTreeMap<String, Uint128>,
    pub borrowed: BTreeMap<String, Uint128>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("position of {user}: no Red Bank market for {denom}")]
    UnknownMarket { user: Addr, denom: String },
    #[error(
        "market {denom}: seeded debt {debt} exceeds its collateral {collateral} (nothing to lend)"
    )]
    DebtExceedsLiquidity {
        denom: String,
        debt: Uint128,
        collateral: Uint128,
    },
    #[error("red bank storage: {0}")]
    Std(#[from] StdError),
    #[error("red bank: {0}")]
    RedBank(#[from] RedBankError),
    #[error("red bank math: {0}")]
    Math(#[from] MathError),
    #[error("seed coins: {0}")]
    Coin(#[from] PaymentError),
    #[error("credit accounts need Rover deployed (`credit_accounts` in the deploy config)")]
    NoRover,
    #[error("the credit manager already owes {0}: seeded debt shares would not match it")]
    CreditDebtExists(String),
    #[error("credit manager storage: {0}")]
    CreditManager(String),
}

/// Writes `positions` into the Red Bank of `contracts` at the app's current block.
pub fn seed_positions<S: Storage>(
    app: &mut DevnetApp<S>,
    contracts: &DeployedContracts,
    positions: &[SeedPosition],
) -> Result<SeedSummary, SeedError> {
    let now = app.block_info().time.seconds();
    let mut summary = SeedSummary {
        positions: positions.len(),
        ..SeedSummary::default()
    };

    // Validate and total everything first, so a refused seed leaves the storage untouched.
    let accrued = accrue_markets(app, contracts, now)?;
    let mut markets: BTreeMap<String, Market> = accrued
        .iter()
        .map(|(denom, a)| (denom.clone(), a.market.clone()))
        .collect();
    add_positions(&mut markets, &mut summary, positions, now)?;
    refresh_markets(&mut markets, now)?;

    {
        let mut storage = app.contract_storage_mut(&contracts.red_bank);
        let store = storage.as_mut();
        credit_rewards(store, &contracts.rewards_collector, &accrued)?;
        let credit_manager = contracts.rover.as_ref().map(|r| &r.credit_manager);
        write_positions(store, &accrued, positions, credit_manager, now)?;
        for (denom, market) in &markets {
            MARKETS.save(store, denom, market)?;
        }
    }

    move_coins(app, contracts, &summary, positions)?;
    Ok(summary)
}

/// Every market brought to `now`, with the reward each owes the rewards collector.
fn accrue_markets<S: Storage>(
    app: &DevnetApp<S>,
    contracts: &DeployedContracts,
    now: u64,
) -> Result<BTreeMap<String, interest::AccruedInterest>, SeedError> {
    let storage = app.contract_storage(&contracts.red_bank);
    MARKETS
        .range(storage.as_ref(), None, None, Order::Ascending)
        .map(|item| {
            let (denom, market) = item?;
            Ok((denom, interest::apply_accumulated_interests(&market, now)?))
        })
        .collect()
}

/// Adds the positions to the market totals and the summary.
fn add_positions(
    markets: &mut BTreeMap<String, Market>,
    summary: &mut SeedSummary,
    positions: &[SeedPosition],
    now: u64,
) -> Result<(), SeedError> {
    for position in positions {
        for (coins, is_debt) in [(&position.collateral, false), (&position.debt, true)] {
            for coin in coins.iter().filter(|c| !c.amount.is_zero()) {
                let coin = Coin128::try_from_coin(coin)?;
                let market =
                    markets
                        .get_mut(&coin.denom)
                        .ok_or_else(|| SeedError::UnknownMarket {
                            user: position.user.clone(),
                            denom: coin.denom.clone(),
                        })?;
                if is_debt {
                    let scaled = interest::scaled_debt_amount(coin.amount, market, now)?;
                    market.debt_total_scaled = checked_add(market.debt_total_scaled, scaled)?;
                    add_to(&mut summary.borrowed, &coin.denom, coin.amount)?;
                } else {
                    let scaled = interest::scaled_liquidity_amount(coin.amount, market, now)?;
                    market.collateral_total_scaled =
                        checked_add(market.collateral_total_scaled, scaled)?;
                    add_to(&mut summary.deposited, &coin.denom, coin.amount)?;
                }
            }
        }
    }
    Ok(())
}

/// Refuses markets that lend more than they hold, and resets every market's rates.
fn refresh_markets(markets: &mut BTreeMap<String, Market>, now: u64) -> Result<(), SeedError> {
    for (denom, market) in markets.iter_mut() {
        let collateral =
            interest::underlying_liquidity_amount(market.collateral_total_scaled, market, now)?;
        let debt = interest::underlying_debt_amount(market.debt_total_scaled, market, now)?;
        if debt > collateral {
            return Err(SeedError::DebtExceedsLiquidity {
                denom: denom.clone(),
                debt,
                collateral,
            });
        }
        refresh_interest_rates(now, market, cosmwasm_std::Response::new())?;
    }
    Ok(())
}

fn credit_rewards(
    store: &mut dyn Storage,
    rewards_collector: &Addr,
    accrued: &BTreeMap<String, interest::AccruedInterest>,
) -> Result<(), SeedError> {
    let rewards_key = user_key(rewards_collector, "");
    for (denom, a) in accrued {
        if !a.reward_amount_scaled.is_zero() {
            increase_collateral(store, &rewards_key, denom, a.reward_amount_scaled)?;
        }
    }
    Ok(())
}

/// Scaled at the indexes of `now`, as a deposit or borrow in this block would be; the credit
/// manager's debt is uncollateralized, as its borrows are booked.
fn write_positions(
    store: &mut dyn Storage,
    accrued: &BTreeMap<String, interest::AccruedInterest>,
    positions: &[SeedPosition],
    credit_manager: Option<&Addr>,
    now: u64,
) -> Result<(), SeedError> {
    for position in positions {
        let key = user_key(&position.user, position.account_id.as_deref().unwrap_or(""));
        for coin in position.collateral.iter().filter(|c| !c.amount.is_zero()) {
            let coin = Coin128::try_from_coin(coin)?;
            let scaled =
                interest::scaled_liquidity_amount(coin.amount, &accrued[&coin.denom].market, now)?;
            increase_collateral(store, &key, &coin.denom, scaled)?;
        }
        for coin in position.debt.iter().filter(|c| !c.amount.is_zero()) {
            let coin = Coin128::try_from_coin(coin)?;
            let scaled =
                interest::scaled_debt_amount(coin.amount, &accrued[&coin.denom].market, now)?;
            let uncollateralized = credit_manager == Some(&position.user);
            increase_debt(store, &position.user, &coin.denom, scaled, uncollateralized)?;
        }
    }
    Ok(())
}

/// The deposited coins are minted into the Red Bank; the borrowed ones leave it for the
/// borrowers' wallets.
fn move_coins<S: Storage>(
    app: &mut DevnetApp<S>,
    contracts: &DeployedContracts,
    summary: &SeedSummary,
    positions: &[SeedPosition],
) -> Result<(), SeedError> {
    let loans: Vec<(Addr, Vec<Coin>)> = positions
        .iter()
        .map(|p| (p.user.clone(), p.debt.clone()))
        .collect();
    mint_and_pay_out(
        app,
        &contracts.red_bank,
        to_coins(&summary.deposited),
        loans,
    )
}

/// Mints `minted` into `holder`'s balance, then pays each recipient from it. Straight through
/// the bank module: one call per recipient, no tx cache.
pub(super) fn mint_and_pay_out<S: Storage>(
    app: &mut DevnetApp<S>,
    holder: &Addr,
    minted: Vec<Coin>,
    payments: Vec<(Addr, Vec<Coin>)>,
) -> Result<(), SeedError> {
    let block = app.block_info();
    app.init_modules(|router, api, storage| -> Result<(), SeedError> {
        let router = &*router;
        if !minted.is_empty() {
            let mint = BankSudo::Mint {
                to_address: holder.to_string(),
                amount: minted,
            };
            router.bank.sudo(api, storage, router, &block, mint)?;
        }
        for (recipient, coins) in payments {
            let coins = nonzero(&coins);
            if coins.is_empty() {
                continue;
            }
            let send = BankMsg::Send {
                to_address: recipient.to_string(),
                amount: coins,
            };
            router
                .bank
                .execute(api, storage, router, &block, holder.clone(), send)?;
        }
        Ok(())
    })
}

fn checked_add(a: Uint128, b: Uint128) -> Result<Uint128, StdError> {
    a.checked_add(b).map_err(StdError::from)
}

pub(super) fn add_to(
    totals: &mut BTreeMap<String, Uint128>,
    denom: &str,
    amount: Uint128,
) -> Result<(), StdError> {
    let total = totals.entry(denom.to_string()).or_default();
    *total = total.checked_add(amount).map_err(StdError::from)?;
    Ok(())
}

fn nonzero(coins: &[Coin]) -> Vec<Coin> {
    coins
        .iter()
        .filter(|c| !c.amount.is_zero())
        .cloned()
        .collect()
}

pub(super) fn to_coins(amounts: &BTreeMap<String, Uint128>) -> Vec<Coin> {
    amounts
        .iter()
        .filter(|(_, amount)| !amount.is_zero())
        .map(|(denom, amount)| Coin::new(*amount, denom.clone()))
        .collect()
}
