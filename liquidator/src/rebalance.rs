//! Rebalancing after liquidations: swap seized collateral through the swap pool contract towards
//! target balances, fixed (`--target uosmo:1000`) or a share of the wallet's value at oracle
//! prices (`--target uusdc:50%`), and — unless `--keep-collateral` — back into the debt denoms
//! the wallet lacked for the liquidations waiting for funds (each short denom becomes a target
//! of its balance plus what was missing), so capital recycles within a few blocks.
//!
//! Only deficits drive swaps: a target short by more than `--action-threshold` (relative) is
//! bought with the wallet's surplus (non-target denoms, and target denoms above their target),
//! largest surplus value first. The fee denom is never sold unless it is itself a target, so
//! the wallet keeps paying for gas.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cosmwasm_std::{Coin, Decimal, Uint128};
use futures::future::BoxFuture;
use mars::msg::{oracle, swapper};
use redline_chain::ChainClient;
use thiserror::Error;

use crate::locks::{Lease, SwapPoolLocks};
use crate::strategy::{AfterLiquidation, BatchReport};
use crate::tx_sender::{SendError, TxSender};
use redline_chain::{execute_contract_msg, query_all_pages, TxErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetAmount {
    /// This many smallest units.
    Fixed(Uint128),
    /// This share of the wallet's value at oracle prices.
    Share(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub denom: String,
    pub amount: TargetAmount,
}

impl FromStr for Target {
    type Err = RebalanceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| RebalanceError::Config(format!("--target `{text}`: {why}"));
        let (denom, amount) = text
            .split_once(':')
            .ok_or_else(|| bad("expected DENOM:AMOUNT or DENOM:PCT%"))?;
        if denom.is_empty() {
            return Err(bad("the denom is empty"));
        }
        let amount = if let Some(percent) = amount.strip_suffix('%') {
            let share = Decimal::from_str(percent)
                .map_err(|_| bad("the percentage is not a number"))?
                / Decimal::percent(10_000);
            if share > Decimal::one() {
                return Err(bad("the percentage is above 100%"));
            }
            TargetAmount::Share(share)
        } else {
            TargetAmount::Fixed(
                Uint128::from_str(amount).map_err(|_| bad("the amount is not an integer"))?,
            )
        };
        Ok(Target {
            denom: denom.to_string(),
            amount,
        })
    }
}

/// The rebalancer's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RebalanceArgs {
    /// Target balance after liquidations, `DENOM:AMOUNT` (smallest units) or `DENOM:PCT%` (share
    /// of the wallet's value at oracle prices); repeatable. None: collateral is kept as seized.
    #[arg(
        long = "target",
        env = "LIQUIDATOR_TARGETS",
        value_delimiter = ',',
        value_name = "DENOM:AMOUNT|DENOM:PCT%"
    )]
    pub targets: Vec<String>,
    /// Swap only when a target is short by more than this share of it.
    #[arg(
        long = "action-threshold",
        env = "LIQUIDATOR_ACTION_THRESHOLD",
        default_value = "0.01"
    )]
    pub action_threshold: String,
    /// Accept at most this loss against the simulated swap (sets the swap's `min_receive`);
    /// a credit-account liquidation accepts as much against the oracle value of the collateral
    /// it swaps.
    #[arg(
        long = "max-slippage",
        env = "LIQUIDATOR_MAX_SLIPPAGE",
        default_value = "0.01"
    )]
    pub max_slippage: String,
    /// Keep seized collateral as it is instead of swapping it into the debt denoms the wallet
    /// lacks (explicit `--target`s still apply).
    #[arg(long = "keep-collateral", env = "LIQUIDATOR_KEEP_COLLATERAL")]
    pub keep_collateral: bool,
}

impl RebalanceArgs {
    /// `--max-slippage`, checked: also what credit-account liquidations accept on their swap.
    pub fn max_slippage(&self) -> Result<Decimal, RebalanceError> {
        let max_slippage = Decimal::from_str(&self.max_slippage).map_err(|_| {
            RebalanceError::Config("--max-slippage: not a decimal like 0.01".into())
        })?;
        if max_slippage >= Decimal::one() {
            return Err(RebalanceError::Config(
                "--max-slippage: must be below 1".into(),
            ));
        }
        Ok(max_slippage)
    }

    /// The parsed policy, `None` when there is nothing to rebalance (no targets and
    /// `--keep-collateral`); errors name the flag.
    pub fn validate(&self) -> Result<Option<RebalancePolicy>, RebalanceError> {
        if self.targets.is_empty() && self.keep_collateral {
            return Ok(None);
        }
        let action_threshold = Decimal::from_str(&self.action_threshold).map_err(|_| {
            RebalanceError::Config("--action-threshold: not a decimal like 0.01".into())
        })?;
        let max_slippage = self.max_slippage()?;
        let targets = self
            .targets
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<Target>, _>>()?;
        Ok(Some(RebalancePolicy {
            targets,
            action_threshold,
            max_slippage,
            recycle: !self.keep_collateral,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebalancePolicy {
    pub targets: Vec<Target>,
    pub action_threshold: Decimal,
    pub max_slippage: Decimal,
    /// Also buy back what the wallet lacked (see the module docs).
    pub recycle: bool,
}

/// The configured targets plus, for each denom in `short` not targeted already, a fixed target
/// of what the wallet holds of it plus what it lacked.
pub fn targets_with_shortfalls(
    targets: &[Target],
    balances: &[Coin],
    short: &[Coin],
) -> Vec<Target> {
    let mut all = targets.to_vec();
    for coin in short {
        if coin.amount.is_zero() || targets.iter().any(|t| t.denom == coin.denom) {
            continue;
        }
        let held: Uint128 = balances
            .iter()
            .filter(|b| b.denom == coin.denom)
            .map(|b| Uint128::try_from(b.amount).unwrap_or(Uint128::MAX))
            .fold(Uint128::zero(), Uint128::saturating_add);
        let lacked = Uint128::try_from(coin.amount).unwrap_or(Uint128::MAX);
        all.push(Target {
            denom: coin.denom.clone(),
            amount: TargetAmount::Fixed(held.saturating_add(lacked)),
        });
    }
    all
}

#[derive(Debug, Error)]
pub enum RebalanceError {
    #[error("{0}")]
    Config(String),
    #[error("no oracle price for `{0}`")]
    MissingPrice(String),
    #[error("value overflow for `{0}`")]
    Overflow(String),
    #[error(transparent)]
    Chain(#[from] redline_chain::ChainError),
    #[error("swap pool lock: {0}")]
    Lease(#[from] crate::locks::LeaseError),
}

/// One swap of the plan: sell `offer` for `ask_denom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSwap {
    pub offer: Coin,
    pub ask_denom: String,
}

/// The swaps that bring the wallet towards its targets. Pure; integer math, values floored.
pub fn plan_swaps(
    balances: &[Coin],
    prices: &BTreeMap<String, Decimal>,
    targets: &[Target],
    action_threshold: Decimal,
    keep_denom: &str,
) -> Result<Vec<PlannedSwap>, RebalanceError> {
    let price = |denom: &str| {
        prices
            .get(denom)
            .copied()
            .ok_or_else(|| RebalanceError::MissingPrice(denom.to_string()))
    };
    let value = |denom: &str, amount: Uint128| -> Result<Uint128, RebalanceError> {
        amount
            .checked_mul_floor(price(denom)?)
            .map_err(|_| RebalanceError::Overflow(denom.to_string()))
    };
    let balances = balances
        .iter()
        .map(|c| {
            Uint128::try_from(c.amount)
                .map(|amount| (c.denom.clone(), amount))
                .map_err(|_| RebalanceError::Overflow(c.denom.clone()))
        })
        .collect::<Result<Vec<(String, Uint128)>, _>>()?;
    let held = |denom: &str| {
        balances
            .iter()
            .filter(|(d, _)| d == denom)
            .map(|(_, amount)| *amount)
            .sum::<Uint128>()
    };
    // Denoms without a price cannot be valued or sold; they do not count.
    let mut total = Uint128::zero();
    for (denom, amount) in balances.iter().filter(|(d, _)| prices.contains_key(d)) {
        total += value(denom, *amount)?;
    }
    let mut deficits = Vec::new();
    let mut surplus: BTreeMap<String, Uint128> = BTreeMap::new();
    for target in targets {
        let current = held(&target.denom);
        let wanted = match &target.amount {
            TargetAmount::Fixed(amount) => *amount,
            TargetAmount::Share(share) => {
                let wanted_value = total.mul_floor(*share);
                let unit_price = price(&target.denom)?;
                if unit_price.is_zero() {
                    return Err(RebalanceError::MissingPrice(target.denom.clone()));
                }
                wanted_value
                    .checked_div_floor(unit_price)
                    .map_err(|_| RebalanceError::Overflow(target.denom.clone()))?
            }
        };
        if current < wanted {
            let short = wanted - current;
            if short > wanted.mul_floor(action_threshold) {
                deficits.push((target.denom.clone(), short));
            }
        } else if current > wanted {
            surplus.insert(target.denom.clone(), current - wanted);
        }
    }
    for (denom, amount) in &balances {
        let targeted = targets.iter().any(|t| &t.denom == denom);
        if !targeted && denom != keep_denom && prices.contains_key(denom) {
            *surplus.entry(denom.clone()).or_default() += *amount;
        }
    }
    let mut swaps = Vec::new();
    for (ask_denom, short) in deficits {
        let mut needed_value = value(&ask_denom, short)?;
        // Largest surplus value first, so one swap usually covers the deficit.
        let mut sources = surplus
            .iter()
            .filter(|(denom, amount)| **denom != ask_denom && !amount.is_zero())
            .map(|(denom, amount)| Ok((value(denom, *amount)?, denom.clone(), *amount)))
            .collect::<Result<Vec<_>, RebalanceError>>()?;
        sources.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (available_value, denom, available) in sources {
            if needed_value.is_zero() {
                break;
            }
            let offer = if available_value <= needed_value {
                available
            } else {
                let unit_price = price(&denom)?;
                needed_value
                    .checked_div_ceil(unit_price)
                    .map_err(|_| RebalanceError::Overflow(denom.clone()))?
                    .min(available)
            };
            if offer.is_zero() {
                continue;
            }
            needed_value = needed_value.saturating_sub(available_value.min(value(&denom, offer)?));
            if let Some(left) = surplus.get_mut(&denom) {
                *left -= offer;
            }
            swaps.push(PlannedSwap {
                offer: Coin::new(offer, denom),
                ask_denom: ask_denom.clone(),
            });
        }
    }
    Ok(swaps)
}

/// `min_receive` for a simulated return: the return less the slippage allowance, floored.
pub fn min_receive(simulated: Uint128, max_slippage: Decimal) -> Uint128 {
    simulated.mul_floor(Decimal::one() - max_slippage.min(Decimal::one()))
}

/// What `offer` is worth in `ask_denom` at oracle prices (`None` without both prices).
pub fn fair_return(
    prices: &BTreeMap<String, Decimal>,
    offer: &Coin,
    ask_denom: &str,
) -> Option<Uint128> {
    let offer_price = prices.get(&offer.denom)?;
    let ask_price = prices.get(ask_denom).filter(|p| !p.is_zero())?;
    let value = Uint128::try_from(offer.amount)
        .ok()?
        .checked_mul_floor(*offer_price)
        .ok()?;
    value.checked_div_floor(*ask_price).ok()
}

/// What the swap contract `swapper` returns now for selling `offer` for `ask_denom`.
pub async fn pool_quote<C: ChainClient>(
    client: &C,
    swapper: &str,
    offer: Coin,
    ask_denom: &str,
) -> Result<Uint128, redline_chain::ChainError> {
    let query = swapper::QueryMsg::SimulateSwap {
        offer,
        ask_denom: ask_denom.to_string(),
    };
    let simulated: swapper::SimulateSwapResponse =
        client.query_smart(swapper, &query, None).await?;
    Ok(simulated.return_amount)
}

/// Swaps seized collateral towards the targets after each confirmed batch.
#[derive(Debug, Clone)]
pub struct Rebalancer {
    pub policy: RebalancePolicy,
    pub swapper: String,
    pub oracle: String,
    /// Never sold unless targeted (pays for gas).
    pub fee_denom: String,
    /// Wallets whose last rebalance failed, and whether for want of funds: said once when it
    /// starts and once when it ends, not after every batch in between.
    failing: Arc<Mutex<BTreeMap<String, bool>>>,
    /// Taken for each swap's pool from its quote until its tx is in a block, so a credit-account
    /// liquidation is never included on a pool moved by a swap its simulation did not see.
    pool_locks: Option<SwapPoolLocks>,
}

impl Rebalancer {
    pub fn new(
        policy: RebalancePolicy,
        swapper: String,
        oracle: String,
        fee_denom: String,
    ) -> Self {
        Rebalancer {
            policy,
            swapper,
            oracle,
            fee_denom,
            failing: Arc::default(),
            pool_locks: None,
        }
    }

    /// Swaps only through pools no other tx of redline's is using (see [`SwapPoolLocks`]).
    pub fn with_pool_locks(mut self, locks: SwapPoolLocks) -> Self {
        self.pool_locks = Some(locks);
        self
    }

    /// The pool's lock for `swap` (`Some(None)` without locks configured); `None` while
    /// another tx of redline's swaps through it.
    async fn lock_pool(&self, swap: &PlannedSwap) -> Result<Option<Option<Lease>>, RebalanceError> {
        let Some(locks) = &self.pool_locks else {
            return Ok(Some(None));
        };
        let lock = locks.try_lock((&swap.offer.denom, &swap.ask_denom)).await?;
        Ok(lock.map(Some))
    }

    async fn prices<C: ChainClient>(
        &self,
        client: &C,
    ) -> Result<BTreeMap<String, Decimal>, RebalanceError> {
        let prices = query_all_pages(
            client,
            &self.oracle,
            None,
            |start_after, limit| oracle::QueryMsg::Prices {
                start_after,
                limit: Some(limit),
                kind: None,
            },
            |p: &oracle::PriceResponse| p.denom.clone(),
        )
        .await?;
        Ok(prices.into_iter().map(|p| (p.denom, p.price)).collect())
    }

    /// The part of `swap.offer` the pool takes at a rate within an eighth of `--max-slippage` of
    /// its marginal rate (that of a 1/1024 probe; halving the offer until it does, up to 12
    /// times), with its simulated return; `None` when even a small part moves the price more.
    ///
    /// Small swaps keep several wallets swapping the same pair in one block within each
    /// other's `min_receive`: every worker rebalances after its batches land, so the workers'
    /// swaps of the same seized collateral meet in the next block, all quoted on the state
    /// before it. A constant-product swap whose average rate is `i` below the marginal one
    /// moves the marginal rate by about `2i`; at `i` ≤ slippage / 8 three other wallets' swaps
    /// ahead of this one in the block take at most three quarters of its slippage allowance
    /// (a quarter let two of them take it all, and the swap failed in DeliverTx).
    async fn sized_offer<C: ChainClient>(
        &self,
        client: &C,
        swap: &PlannedSwap,
    ) -> Result<Option<(Coin, Uint128)>, RebalanceError> {
        let impact = self.policy.max_slippage / Decimal::from_ratio(8u128, 1u128);
        let simulate = |amount: Uint128| {
            let offer = Coin::new(amount, swap.offer.denom.clone());
            pool_quote(client, &self.swapper, offer, &swap.ask_denom)
        };
        let mut amount = Uint128::try_from(swap.offer.amount)
            .map_err(|_| RebalanceError::Overflow(swap.offer.denom.clone()))?;
        let probe = (amount / Uint128::new(1_024)).max(Uint128::one());
        let probe_return = simulate(probe).await?;
        for _ in 0..12 {
            if amount.is_zero() || probe_return.is_zero() {
                return Ok(None);
            }
            let returned = simulate(amount).await?;
            // returned / amount ≥ (probe_return / probe) · (1 − impact), without division.
            let got = returned.full_mul(probe);
            let marginal = probe_return.full_mul(amount);
            if got >= marginal.mul_floor(Decimal::one() - impact) {
                return Ok(Some((
                    Coin::new(amount, swap.offer.denom.clone()),
                    returned,
                )));
            }
            amount /= Uint128::new(2);
        }
        Ok(None)
    }

    /// Plans from the wallet's balances and sends the swaps in one tx; returns how many were
    /// sent.
    pub async fn rebalance<C: ChainClient>(
        &self,
        sender: &TxSender<C>,
        short: &[Coin],
    ) -> Result<usize, RebalanceError> {
        let client = sender.client();
        let balances = client.balances(sender.address()).await?;
        let targets = if self.policy.recycle {
            targets_with_shortfalls(&self.policy.targets, &balances, short)
        } else {
            self.policy.targets.clone()
        };
        if targets.is_empty() {
            return Ok(0);
        }
        let prices = self.prices(client).await?;
        let swaps = plan_swaps(
            &balances,
            &prices,
            &targets,
            self.policy.action_threshold,
            &self.fee_denom,
        )?;
        let mut locks = Vec::new();
        let sent = self.send_swaps(sender, &prices, swaps, &mut locks).await;
        if let Some(pool_locks) = &self.pool_locks {
            pool_locks.unlock(locks).await;
        }
        sent
    }

    /// Sizes, locks and sends `swaps` in one tx (each through its own pool), the locks taken
    /// pushed to `locks`; how many were sent. The worker waits for one block, not one per swap,
    /// before it takes more work.
    async fn send_swaps<C: ChainClient>(
        &self,
        sender: &TxSender<C>,
        prices: &BTreeMap<String, Decimal>,
        swaps: Vec<PlannedSwap>,
        locks: &mut Vec<Lease>,
    ) -> Result<usize, RebalanceError> {
        let client = sender.client();
        let mut messages = Vec::new();
        for swap in swaps {
            let Some(lock) = self.lock_pool(&swap).await? else {
                tracing::debug!(offer = %swap.offer, ask = %swap.ask_denom, "another tx of redline's swaps through this pool; skipped until the next batch");
                continue;
            };
            locks.extend(lock);
            let Some((offer, returned)) = self.sized_offer(client, &swap).await? else {
                tracing::debug!(offer = %swap.offer, ask = %swap.ask_denom, "the pool is too shallow for this swap now; skipped");
                continue;
            };
            messages.push(self.swap_message(sender, prices, &swap, offer, returned)?);
        }
        if messages.is_empty() {
            return Ok(0);
        }
        let swaps = messages.len();
        let sent = sender.send(messages, "redline rebalance").await;
        self.report(sender.address(), swaps, sent.as_ref().err());
        Ok(if sent.is_ok() { swaps } else { 0 })
    }

    /// Whether `wallet`'s last rebalance stopped because it could not pay for a swap.
    pub fn is_short_of_funds(&self, wallet: &str) -> bool {
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing.get(wallet).copied().unwrap_or(false)
    }

    /// The swap message for `offer`, its `min_receive` the lower of the pool's quote and the
    /// oracle's value, less the slippage allowed: a pool still above the oracle (prices just
    /// moved) is pushed towards it by other swaps in the same block, which must not make this
    /// one fail as long as it gets the oracle's value less slippage.
    fn swap_message<C: ChainClient>(
        &self,
        sender: &TxSender<C>,
        prices: &BTreeMap<String, Decimal>,
        swap: &PlannedSwap,
        offer: Coin,
        returned: Uint128,
    ) -> Result<cosmrs::Any, RebalanceError> {
        let quote = fair_return(prices, &offer, &swap.ask_denom)
            .map_or(returned, |fair| returned.min(fair));
        let floor = min_receive(quote, self.policy.max_slippage);
        tracing::debug!(%offer, ask = %swap.ask_denom, min_receive = %floor, "rebalancing swap");
        Ok(execute_contract_msg(
            sender.wallet().address(),
            &self.swapper,
            &swapper::ExecuteMsg::Swap {
                ask_denom: swap.ask_denom.clone(),
                min_receive: floor,
            },
            std::slice::from_ref(&offer),
        )?)
    }

    /// A line when a wallet's rebalancing of `swaps` starts failing (and why) and when it
    /// recovers, not one per batch in between; each successful rebalance at info.
    fn report(&self, wallet: &str, swaps: usize, error: Option<&SendError>) {
        let short_of_funds =
            error.is_some_and(|e| e.code() == Some(TxErrorCode::InsufficientFunds));
        let was_failing = {
            let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            match error {
                Some(_) => failing.insert(wallet.to_string(), short_of_funds),
                None => failing.remove(wallet),
            }
            .is_some()
        };
        match (error, was_failing) {
            (Some(error), false) if short_of_funds => tracing::warn!(
                wallet, %error,
                "rebalancing paused: the wallet cannot pay for its swaps; tried again after each batch"
            ),
            (Some(error), false) => tracing::warn!(
                wallet, swaps, %error,
                "rebalancing swaps failed; tried again after each batch"
            ),
            (Some(error), true) => tracing::debug!(wallet, %error, "rebalancing still failing"),
            (None, true) => tracing::info!(wallet, sent = swaps, "rebalancing resumed"),
            (None, false) => tracing::info!(wallet, sent = swaps, "rebalanced"),
        }
    }
}

impl<C: ChainClient + 'static> AfterLiquidation<C> for Rebalancer {
    fn after_liquidations<'a>(
        &'a self,
        sender: &'a TxSender<C>,
        report: &'a BatchReport,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(error) = self.rebalance(sender, &report.short).await {
                tracing::warn!(height = report.height, tx = %report.tx_hash, %error, "rebalancing failed");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> BTreeMap<String, Decimal> {
        BTreeMap::from([
            ("uatom".to_string(), Decimal::from_str("10").unwrap()),
            ("uusdc".to_string(), Decimal::one()),
            ("uosmo".to_string(), Decimal::from_str("0.5").unwrap()),
        ])
    }

    /// The swaps toward one target, with uosmo as the fee denom (never sold).
    fn swaps_toward(balances: &[Coin], target: &str, threshold: Decimal) -> Vec<PlannedSwap> {
        let target = target.parse::<Target>().unwrap();
        plan_swaps(balances, &prices(), &[target], threshold, "uosmo").unwrap()
    }

    /// Recycling: a wallet short of 500 uusdc for waiting liquidations, holding 200 uusdc and
    /// seized uatom at 10, sells ⌈500 / 10⌉ = 50 uatom for uusdc; the fee denom is kept.
    #[test]
    fn shortfalls_become_targets_and_collateral_is_sold_for_them() {
        let balances = vec![
            Coin::new(1_000u128, "uatom"),
            Coin::new(200u128, "uusdc"),
            Coin::new(5_000u128, "uosmo"),
        ];
        let targets = targets_with_shortfalls(&[], &balances, &[Coin::new(500u128, "uusdc")]);
        assert_eq!(
            targets,
            vec![Target {
                denom: "uusdc".into(),
                amount: TargetAmount::Fixed(Uint128::new(700)),
            }]
        );
        let swaps =
            plan_swaps(&balances, &prices(), &targets, Decimal::percent(1), "uosmo").unwrap();
        assert_eq!(
            swaps,
            vec![PlannedSwap {
                offer: Coin::new(50u128, "uatom"),
                ask_denom: "uusdc".into(),
            }]
        );
        // A configured target for the denom wins over the shortfall.
        let fixed = "uusdc:100".parse::<Target>().unwrap();
        let targets = targets_with_shortfalls(
            std::slice::from_ref(&fixed),
            &balances,
            &[Coin::new(500u128, "uusdc")],
        );
        assert_eq!(targets, vec![fixed]);
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            "uusdc:50%".parse::<Target>().unwrap(),
            Target {
                denom: "uusdc".into(),
                amount: TargetAmount::Share(Decimal::percent(50))
            }
        );
        assert_eq!(
            "uosmo:1000".parse::<Target>().unwrap().amount,
            TargetAmount::Fixed(Uint128::new(1000))
        );
        assert!("uosmo".parse::<Target>().is_err());
        assert!("uosmo:abc".parse::<Target>().is_err());
        assert!("uosmo:150%".parse::<Target>().is_err());
    }

    #[test]
    fn a_share_target_sells_the_surplus_collateral() {
        // 1,000 uatom (10,000) + 2,000 uusdc + 5,000 uosmo (2,500): total 14,500; 50% is 7,250
        // uusdc, short 5,250 → sell 525 uatom. uosmo counts in the total but, as the fee
        // denom, is not sold.
        let balances = vec![
            Coin::new(1_000u128, "uatom"),
            Coin::new(2_000u128, "uusdc"),
            Coin::new(5_000u128, "uosmo"),
        ];
        let swaps = swaps_toward(&balances, "uusdc:50%", Decimal::percent(1));
        assert_eq!(
            swaps,
            vec![PlannedSwap {
                offer: Coin::new(525u128, "uatom"),
                ask_denom: "uusdc".into()
            }]
        );
    }

    /// A wallet of uatom (at 10) and uusdc toward a fixed uusdc target: the uatom it offers.
    #[test]
    fn a_fixed_target_offers_the_uatom_it_is_short_of() {
        // uatom and uusdc held, the target, the threshold, the uatom offered (None: no swap).
        let cases = [
            // Short 15 uusdc at 10 per uatom: 2 uatom (rounded up).
            (100u128, 985u128, "uusdc:1000", Decimal::zero(), Some(2u128)),
            // Short 50 of 6,000 (0.83%) with a 1% threshold: nothing.
            (595, 5_950, "uusdc:6000", Decimal::percent(1), None),
            // Short 1,000, but only 10 uatom to sell: the offer is capped by the surplus.
            (10, 0, "uusdc:1000", Decimal::zero(), Some(10)),
        ];
        for (atom, usdc, target, threshold, offered) in cases {
            let balances = vec![Coin::new(atom, "uatom"), Coin::new(usdc, "uusdc")];
            let swaps = swaps_toward(&balances, target, threshold);
            assert_eq!(
                swaps.first().map(|swap| swap.offer.clone()),
                offered.map(|amount| Coin::new(amount, "uatom")),
                "{target} from {atom} uatom and {usdc} uusdc"
            );
        }
    }

    #[test]
    fn the_fair_return_is_the_oracles_value() {
        let prices = prices();
        let atom = Coin::new(1_000u128, "uatom");
        let fair = |ask| fair_return(&prices, &atom, ask);
        // the test prices: uatom 10, uusdc 1, uosmo 0.5
        assert_eq!(fair("uusdc"), Some(Uint128::new(10_000)));
        assert_eq!(fair("uosmo"), Some(Uint128::new(20_000)));
        assert_eq!(fair("unlisted"), None);
    }

    #[test]
    fn slippage_floors_the_minimum() {
        assert_eq!(
            min_receive(Uint128::new(1_001), Decimal::percent(1)),
            Uint128::new(990)
        );
    }
}
