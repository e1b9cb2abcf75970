//! The scenario's credit accounts: drawn like the Red Bank borrowers (same collateral sizes and
//! health-factor bands), but spread over deposits and lends in one to three denoms, with debt
//! in one or two others.

use std::collections::BTreeMap;

use cosmwasm_std::{Coin, Uint128};
use mars::msg::health::AccountKind;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::{amount_worth, collateral_value, debt_value_for, derived_address, lender, MarketSpec};
use crate::chain::ChainState;
use crate::contracts::{CreditAccountSeed, SeedPosition};

/// The borrowers' generator uses stream 0 of the seed; credit accounts draw from their own
/// stream so adding them leaves the borrowers unchanged.
const CREDIT_ACCOUNT_STREAM: u64 = 1;

/// The credit accounts, deterministic in `seed`, and the Red Bank lenders that fund their debt.
pub fn generate_credit_accounts(
    state: &ChainState,
    markets: &[MarketSpec],
    count: usize,
    seed: u64,
) -> anyhow::Result<(Vec<CreditAccountSeed>, Vec<SeedPosition>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(CREDIT_ACCOUNT_STREAM);
    let mut accounts = Vec::with_capacity(count);
    let mut debt_totals: BTreeMap<&str, Uint128> = BTreeMap::new();
    for i in 0..count {
        let owner = derived_address(state, &format!("redline credit account {seed} {i}"))?;
        let account = credit_account(markets, owner, &mut rng);
        for coin in &account.debts {
            let market = markets.iter().find(|m| m.denom == coin.denom);
            let denom = market.expect("debts are drawn from the markets").denom;
            *debt_totals.entry(denom).or_default() += Uint128::try_from(coin.amount)?;
        }
        accounts.push(account);
    }
    let lenders = debt_totals
        .into_iter()
        .map(|(denom, total)| {
            let label = format!("redline credit lender {seed} {denom}");
            lender(state, &label, denom, total)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((accounts, lenders))
}

/// One `default` account (the scenario's markets have no HLS params): half the collateral
/// in one denom, the rest in up to two more, each coin either deposited or lent; 10% of the
/// accounts have no debt, the others borrow, in one or two denoms they do not hold, enough
/// for a health factor from the borrowers' bands.
fn credit_account(
    markets: &[MarketSpec],
    owner: cosmwasm_std::Addr,
    rng: &mut ChaCha20Rng,
) -> CreditAccountSeed {
    let value = collateral_value(rng);
    let mut order: Vec<usize> = (0..markets.len()).collect();
    order.shuffle(rng);
    let held = match rng.gen_range(0..10) {
        0..=4 => 1,
        5..=7 => 2,
        _ => 3,
    };
    let (held_markets, other_markets) = order.split_at(held);
    let collateral = split_value(markets, held_markets, value);
    let mut account = CreditAccountSeed {
        owner,
        kind: AccountKind::Default,
        deposits: vec![],
        lends: vec![],
        debts: vec![],
    };
    for (m, amount) in &collateral {
        let coin = Coin::new(*amount, markets[*m].denom);
        if rng.gen_bool(0.5) {
            account.lends.push(coin);
        } else {
            account.deposits.push(coin);
        }
    }
    if rng.gen_range(0..10) != 0 {
        let debt_value = debt_value_for(markets, &collateral, rng);
        let two_debts = other_markets.len() > 1 && rng.gen_range(0..10) < 3;
        let debt_markets = &other_markets[..if two_debts { 2 } else { 1 }];
        account.debts = split_value(markets, debt_markets, debt_value)
            .into_iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|(m, amount)| Coin::new(amount, markets[m].denom))
            .collect();
    }
    account
}

/// `value` as amounts of `chosen` markets: half in the first, the rest shared by the others.
fn split_value(markets: &[MarketSpec], chosen: &[usize], value: Uint128) -> Vec<(usize, Uint128)> {
    let (first, others) = chosen.split_first().expect("at least one market is chosen");
    if others.is_empty() {
        return vec![(*first, amount_worth(&markets[*first], value))];
    }
    let half = value.multiply_ratio(1u128, 2u128);
    let share = (value - half).multiply_ratio(1u128, others.len() as u128);
    std::iter::once((*first, amount_worth(&markets[*first], half)))
        .chain(
            others
                .iter()
                .map(|m| (*m, amount_worth(&markets[*m], share))),
        )
        .collect()
}

/// Each account's deposits and lends as collateral beside its debts, to weigh its health.
pub fn as_positions(accounts: &[CreditAccountSeed]) -> Vec<SeedPosition> {
    accounts
        .iter()
        .map(|account| SeedPosition {
            user: account.owner.clone(),
            account_id: None,
            collateral: [account.deposits.clone(), account.lends.clone()].concat(),
            debt: account.debts.clone(),
        })
        .collect()
}
