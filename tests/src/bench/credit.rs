//! The credit-account side of the liquidation run: which seeded credit accounts are capture
//! targets (a liquidation the credit manager accepts that pays for its tx, by
//! `mars::math::credit_account` over the stored accounts, as the contract's own math), which
//! credit accounts our liquidations hit per block (from the blocks' events), and whether each
//! worker's own credit account ended empty (the credit manager's `positions`).

use std::collections::BTreeSet;

use anyhow::Context as _;
use cosmwasm_std::Uint128;
use futures::StreamExt as _;
use mars::math::credit_account::{
    best_credit_liquidation, positions_at, DenomsData, HealthComputer, LiquidationTerms,
};
use mars::msg::credit_manager::{self, Positions};
use mars::types::{CreditManagerDebts, StoredCreditAccount};
use redline_chain::{ChainClient, TendermintClient};
use redline_liquidator::credit_account::{owned_tokens, RoverContracts};
use redline_liquidator::recheck::MarketSnapshot;
use redline_protocol::rover::Rover;

use super::liquidation::FeeEstimate;

/// Gas a credit-account liquidation tx (borrow, liquidate, swap, repay, refund) is assumed to
/// take, to value its fee: an account whose best liquidation does not pay for that is no
/// capture target.
pub const CREDIT_FEE_ESTIMATE_GAS: u128 = 1_500_000;

/// The seeded credit accounts' ids: account 1 is the rewards collector's, the seeded ones follow.
pub fn seeded_ids(count: usize) -> Vec<u64> {
    (2..count as u64 + 2).collect()
}

/// `ids`' stored accounts and the credit manager's debt totals at `height`.
pub async fn read_accounts(
    rover: &Rover<TendermintClient>,
    ids: &[u64],
    height: u64,
) -> anyhow::Result<(Vec<StoredCreditAccount>, CreditManagerDebts)> {
    let debts = rover.read_manager_debts(Some(height)).await?;
    let read: Vec<_> = futures::stream::iter(ids.iter().copied())
        .map(|id| rover.read_account(id, Some(height)))
        .buffer_unordered(16)
        .collect()
        .await;
    let mut accounts = Vec::with_capacity(ids.len());
    for account in read {
        accounts.extend(account?);
    }
    Ok((accounts, debts))
}

/// The ids of `accounts` whose best liquidation under `snapshot` pays for its tx (`fee`).
pub fn profitable(
    snapshot: &MarketSnapshot,
    accounts: &[StoredCreditAccount],
    debts: &CreditManagerDebts,
    fee: &FeeEstimate,
) -> anyhow::Result<BTreeSet<u64>> {
    let markets: Vec<_> = snapshot.markets.values().cloned().collect();
    let denoms = DenomsData::new(snapshot.params.values(), &snapshot.liquidation_prices);
    let terms = LiquidationTerms {
        denoms: &denoms,
        rule: snapshot.liquidation_rule,
        target_health_factor: snapshot.target_health_factor,
    };
    let fee_value = snapshot
        .prices
        .value(&fee.denom, Uint128::new(fee.gas).mul_ceil(fee.gas_price))?;
    let mut found = BTreeSet::new();
    for account in accounts {
        // An account whose health cannot be computed has no liquidation the contract accepts.
        let Ok(positions) = positions_at(account, debts, &markets, snapshot.block_time_secs) else {
            continue;
        };
        let computer = HealthComputer {
            kind: &account.kind,
            positions: &positions,
            denoms: &denoms,
        };
        let Ok(health) = computer.compute_health() else {
            continue;
        };
        if best_credit_liquidation(&positions, &health, &terms)
            .is_some_and(|(_, profit)| profit > fee_value)
        {
            found.insert(account.account_id);
        }
    }
    Ok(found)
}

/// The ids of `ids` that have a profitable liquidation at the latest `snapshot`.
pub async fn plannable(
    rover: &Rover<TendermintClient>,
    ids: &[u64],
    snapshot: &MarketSnapshot,
    fee: &FeeEstimate,
) -> anyhow::Result<BTreeSet<u64>> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let (accounts, debts) = read_accounts(rover, ids, snapshot.height).await?;
    profitable(snapshot, &accounts, &debts, fee)
}

/// The credit accounts (`"credit account N"`, as the records name them) our own accounts
/// (`own`) liquidated in a tx's events: the credit manager's liquidation events name both.
pub fn liquidated_in<'a>(
    events: impl Iterator<Item = &'a redline_chain::TxEvent>,
    own: &BTreeSet<String>,
) -> Vec<String> {
    events
        .filter(|e| {
            matches!(
                e.attribute("action"),
                Some("liquidate_deposit" | "liquidate_lend")
            ) && e.attribute("account_id").is_some_and(|a| own.contains(a))
        })
        .filter_map(|e| e.attribute("liquidatee_account_id"))
        .map(|id| format!("credit account {id}"))
        .collect()
}

/// Each wallet's own `default` credit accounts: `(wallet, account id)`.
pub async fn own_accounts(
    client: &TendermintClient,
    credit_manager: &str,
    wallets: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let contracts = RoverContracts::discover(client, credit_manager).await?;
    let mut own = Vec::new();
    for wallet in wallets {
        for id in owned_tokens(client, &contracts.account_nft, wallet).await? {
            own.push((wallet.clone(), id));
        }
    }
    Ok(own)
}

/// What is left in each of `own` accounts (one line per account not empty), by the credit
/// manager's `positions`: a liquidation must leave nothing borrowed, held or lent.
pub async fn left_in_own_accounts(
    client: &TendermintClient,
    credit_manager: &str,
    own: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    for (wallet, id) in own {
        let query = credit_manager::QueryMsg::Positions {
            account_id: id.clone(),
        };
        let positions: Positions = client
            .query_smart(credit_manager, &query, None)
            .await
            .with_context(|| format!("positions of credit account {id}"))?;
        let held = |coins: &[cosmwasm_std::Coin]| coins.iter().any(|c| !c.amount.is_zero());
        if held(&positions.deposits)
            || held(&positions.lends)
            || positions.debts.iter().any(|d| !d.amount.is_zero())
        {
            left.push(format!(
                "credit account {id} of {wallet}: deposits {:?}, debts {:?}, lends {:?}",
                positions.deposits, positions.debts, positions.lends
            ));
        }
    }
    Ok(left)
}

/// The credit accounts the run waits for: those with a profitable liquidation right after the
/// drop, plus any a later full pass finds (as for the borrowers).
pub struct CreditWatch {
    rover: Rover<TendermintClient>,
    /// Every seeded credit account.
    ids: Vec<u64>,
    fee: FeeEstimate,
    /// Capture targets: profitable right after the drop.
    pub targets: BTreeSet<u64>,
    watched: BTreeSet<u64>,
    /// Watched accounts with a profitable liquidation at the last look.
    pub left: BTreeSet<u64>,
}

impl CreditWatch {
    /// Watches the capture targets among `accounts` (read before the drop: the drop moves no
    /// position) under the post-drop `snapshot`.
    pub fn start(
        rover: Rover<TendermintClient>,
        ids: Vec<u64>,
        fee: FeeEstimate,
        snapshot: &MarketSnapshot,
        (accounts, debts): &(Vec<StoredCreditAccount>, CreditManagerDebts),
    ) -> anyhow::Result<Self> {
        let targets = profitable(snapshot, accounts, debts, &fee)?;
        Ok(CreditWatch {
            rover,
            ids,
            fee,
            watched: targets.clone(),
            left: targets.clone(),
            targets,
        })
    }

    /// Looks at the watched accounts again.
    pub async fn refresh(&mut self, snapshot: &MarketSnapshot) -> anyhow::Result<()> {
        let watched: Vec<u64> = self.watched.iter().copied().collect();
        self.left = plannable(&self.rover, &watched, snapshot, &self.fee).await?;
        Ok(())
    }

    /// Looks at every seeded account, watching any found with a profitable liquidation.
    pub async fn full_pass(&mut self, snapshot: &MarketSnapshot) -> anyhow::Result<()> {
        self.left = plannable(&self.rover, &self.ids, snapshot, &self.fee).await?;
        self.watched.extend(self.left.iter().copied());
        Ok(())
    }

    /// The accounts left with a profitable liquidation, as the records name them.
    pub fn left_names(&self) -> Vec<String> {
        self.left
            .iter()
            .map(|id| format!("credit account {id}"))
            .collect()
    }
}
