//! The credit-account side of the liquidation run: which seeded credit accounts are capture
//! targets (a liquidation the credit manager accepts, by `mars::math::credit_account` over the
//! stored accounts, as the contract's own math, whose seized collateral the swap pools, as they
//! stand at that block, turn into more than the borrow it repays plus the tx's fee), which
//! credit accounts our liquidations hit per block (from the blocks' events), and whether each
//! worker's own credit account ended empty (the credit manager's `positions`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use cosmwasm_std::Uint128;
use futures::StreamExt as _;
use mars::math::credit_account::{
    positions_at, ranked_credit_liquidations, CreditLiquidation, DenomsData, HealthComputer,
    LiquidationTerms,
};
use mars::msg::credit_manager::{self, Positions};
use mars::msg::swapper::{self, PoolResponse};
use mars::types::{CreditManagerDebts, StoredCreditAccount};
use redline_chain::{ChainClient, TendermintClient};
use redline_devnet::contracts::swapper::constant_product_return;
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

/// The swap contract's pools at the latest block, by their (ascending) denom pair.
#[derive(Debug, Clone, Default)]
pub struct Pools(BTreeMap<(String, String), PoolResponse>);

impl Pools {
    /// The pools at `height` (`None`: the latest block).
    pub async fn read(
        client: &TendermintClient,
        swapper: &str,
        height: Option<u64>,
    ) -> anyhow::Result<Self> {
        let pools: Vec<PoolResponse> = client
            .query_smart(
                swapper,
                &swapper::QueryMsg::Pools {
                    start_after: None,
                    limit: Some(100),
                },
                height,
            )
            .await
            .context("the swap contract's pools")?;
        Ok(Pools(
            pools
                .into_iter()
                .map(|pool| {
                    let pair = (pool.assets[0].denom.clone(), pool.assets[1].denom.clone());
                    (pair, pool)
                })
                .collect(),
        ))
    }

    /// What the swap contract pays for `amount` of `offer` in `ask`, by its own rule on these
    /// reserves; `None` without a pool.
    fn quote(&self, offer: &str, amount: Uint128, ask: &str) -> Option<Uint128> {
        let pair = if offer <= ask {
            (offer, ask)
        } else {
            (ask, offer)
        };
        let pool = self.0.get(&(pair.0.to_string(), pair.1.to_string()))?;
        let reserve = |denom: &str| {
            let coin = pool.assets.iter().find(|c| c.denom == denom)?;
            Uint128::try_from(coin.amount).ok()
        };
        let (offer_reserve, ask_reserve) = (reserve(offer)?, reserve(ask)?);
        constant_product_return(offer_reserve, ask_reserve, amount, pool.fee)
            .ok()
            .map(|swap| swap.return_amount)
    }
}

/// The ids of `accounts` with a liquidation under `snapshot` that pays for its tx (`fee`):
/// valued at the oracle's prices, and, with `pools`, also through them (the seized collateral
/// swapped into the debt denom repays the borrow with more than the fee left).
pub fn profitable(
    snapshot: &MarketSnapshot,
    accounts: &[StoredCreditAccount],
    debts: &CreditManagerDebts,
    fee: &FeeEstimate,
    pools: Option<&Pools>,
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
        let pays_through = |pair: &CreditLiquidation| {
            let Some(pools) = pools else {
                return true;
            };
            let amounts = &pair.amounts;
            let proceeds = pools.quote(
                pair.request.denom(),
                amounts.collateral_amount_received_by_liquidator,
                &pair.debt_denom,
            );
            proceeds
                .and_then(|p| p.checked_sub(amounts.debt_amount_to_repay).ok())
                .and_then(|left| snapshot.prices.value(&pair.debt_denom, left).ok())
                .is_some_and(|left| left > fee_value)
        };
        if ranked_credit_liquidations(&positions, &health, &terms)
            .iter()
            .any(|(pair, profit)| *profit > fee_value && pays_through(pair))
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
    pools: Option<&Pools>,
) -> anyhow::Result<BTreeSet<u64>> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let (accounts, debts) = read_accounts(rover, ids, snapshot.height).await?;
    profitable(snapshot, &accounts, &debts, fee, pools)
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
    // Only the NFT's address is read here: the health query's shape does not matter.
    let contracts = RoverContracts::discover(client, credit_manager, Default::default()).await?;
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
            action: None,
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
    /// The swap contract the liquidations swap through, and a client to read its pools.
    swapper: Option<(TendermintClient, String)>,
    /// Capture targets: profitable right after the drop.
    pub targets: BTreeSet<u64>,
    watched: BTreeSet<u64>,
    /// Watched accounts with a profitable liquidation at the last look.
    pub left: BTreeSet<u64>,
}

impl CreditWatch {
    /// Watches the capture targets among `accounts` (read before the drop: the drop moves no
    /// position) under the post-drop `snapshot`, with the pools at the snapshot's block (the
    /// liquidators' swaps land after it).
    pub async fn start(
        rover: Rover<TendermintClient>,
        ids: Vec<u64>,
        fee: FeeEstimate,
        swapper: Option<(TendermintClient, String)>,
        snapshot: &MarketSnapshot,
        (accounts, debts): &(Vec<StoredCreditAccount>, CreditManagerDebts),
    ) -> anyhow::Result<Self> {
        let mut watch = CreditWatch {
            rover,
            ids,
            fee,
            swapper,
            targets: BTreeSet::new(),
            watched: BTreeSet::new(),
            left: BTreeSet::new(),
        };
        let pools = watch.pools(Some(snapshot.height)).await?;
        watch.targets = profitable(snapshot, accounts, debts, &watch.fee, pools.as_ref())?;
        watch.watched = watch.targets.clone();
        watch.left = watch.targets.clone();
        Ok(watch)
    }

    async fn pools(&self, height: Option<u64>) -> anyhow::Result<Option<Pools>> {
        match &self.swapper {
            Some((client, swapper)) => Ok(Some(Pools::read(client, swapper, height).await?)),
            None => Ok(None),
        }
    }

    /// Looks at the watched accounts again.
    pub async fn refresh(&mut self, snapshot: &MarketSnapshot) -> anyhow::Result<()> {
        let watched: Vec<u64> = self.watched.iter().copied().collect();
        let pools = self.pools(None).await?;
        self.left = plannable(&self.rover, &watched, snapshot, &self.fee, pools.as_ref()).await?;
        Ok(())
    }

    /// Looks at every seeded account, watching any found with a profitable liquidation.
    pub async fn full_pass(&mut self, snapshot: &MarketSnapshot) -> anyhow::Result<()> {
        let pools = self.pools(None).await?;
        self.left = plannable(&self.rover, &self.ids, snapshot, &self.fee, pools.as_ref()).await?;
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
