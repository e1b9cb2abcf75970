//! Liquidating a credit account in one transaction, without holding the debt coin.
//!
//! From the worker's own credit account ([`crate::credit_account`]), one
//! `update_credit_account` borrows the debt coin, liquidates with it (the seized collateral lands
//! in the own account), sells that collateral for the debt denom, repays the borrow and refunds
//! whatever is left to the wallet: the refund is the profit. If any step fails the whole tx
//! reverts, so nothing is left borrowed.
//!
//! The seized amount is the contract's to decide (it caps the repayment), so the tx is first
//! simulated with a token `min_receive`; the collateral the simulation says the account receives,
//! valued at the snapshot's prices in the debt denom less `--max-slippage`, is the real
//! `min_receive`, and the tx is simulated again with it before it is broadcast.

use cosmwasm_std::{Coin, Decimal, Uint128};
use mars::math::credit_account::{
    positions_at, ranked_credit_liquidations, DenomsData, HealthComputer, LiquidationTerms,
};
use mars::msg::health::{AccountKind, HealthQueryShape, HealthValuesResponse};
use mars::msg::oracle::ActionKind;
use mars::types::CreditManagerDebts;
use mars::value::{PriceBook, Value};
use redline_chain::{ChainClient, TxEvent};
use redline_pipeline::jobs::LiquidationPlan;
use redline_protocol::rover::Rover;
pub use redline_protocol::rover::{Funding, RoverOrder};
use redline_protocol::{AccountKey, MarketSnapshot, Protocol as _};

use crate::credit_account::{account_kind, CreditAccountError, RoverContracts};

/// Plans credit-account liquidations from the chain as it stands: the credit manager's debt
/// totals are read once, each account's stored form when it is planned.
pub struct Replanner<C> {
    reader: Rover<C>,
    debts: CreditManagerDebts,
}

impl<C: ChainClient + Clone> Replanner<C> {
    /// Reads the credit manager's debt totals now.
    pub async fn read(
        client: &C,
        red_bank: &str,
        credit_manager: &str,
    ) -> Result<Self, CreditAccountError> {
        let reader = Rover::new(
            client.clone(),
            redline_protocol::rover::RoverContracts {
                credit_manager: credit_manager.to_string(),
                red_bank: red_bank.to_string(),
            },
        );
        let debts = reader
            .read_snapshot(None)
            .await
            .map_err(CreditAccountError::Read)?;
        Ok(Replanner { reader, debts })
    }

    /// The best liquidation of credit account `account_id` as it stands: its stored form read
    /// now, weighed with `snapshot` (markets at its block time, liquidation prices, params, the
    /// deployment's rule), the same computation as the health checker's, followed by the other
    /// (debt, collateral) pairs the credit manager accepts, most profitable first: selling the
    /// best pair's collateral may not pay where another's pool still does. Empty when the
    /// credit manager would accept none (the account recovered or changed since the candidate
    /// was found).
    pub async fn replan(
        &self,
        account_id: u64,
        snapshot: &MarketSnapshot,
    ) -> Result<Vec<LiquidationPlan>, CreditAccountError> {
        let account = self
            .reader
            .read_position(&AccountKey::CreditAccount(account_id), None)
            .await
            .map_err(CreditAccountError::Read)?;
        let Some(account) = account else {
            return Ok(Vec::new());
        };
        let markets: Vec<_> = snapshot.markets.values().cloned().collect();
        let positions = positions_at(&account, &self.debts, &markets, snapshot.block_time_secs)
            .map_err(CreditAccountError::Health)?;
        let denoms = DenomsData::new(snapshot.params.values(), &snapshot.liquidation_prices);
        let health = HealthComputer {
            kind: &account.kind,
            positions: &positions,
            denoms: &denoms,
        }
        .compute_health()
        .map_err(CreditAccountError::Health)?;
        let terms = LiquidationTerms {
            denoms: &denoms,
            rule: snapshot.liquidation_rule,
            target_health_factor: snapshot.target_health_factor,
        };
        let plans = ranked_credit_liquidations(&positions, &health, &terms)
            .into_iter()
            .map(|(found, profit)| {
                let usd = snapshot.prices.to_usd(profit.max(Value::zero()));
                LiquidationPlan::for_credit_account(
                    found,
                    Decimal::try_from(usd).unwrap_or_default(),
                )
            });
        Ok(plans.collect())
    }
}

/// The order for `plan` of credit account `liquidatee`, from the worker's own account, its
/// `min_receive` a probe: the simulation tells what the swap must at least return.
pub fn order_for(
    own_account: &str,
    liquidatee: &str,
    plan: &LiquidationPlan,
    funding: Funding,
) -> RoverOrder {
    RoverOrder {
        funding,
        own_account: own_account.to_string(),
        liquidatee: liquidatee.to_string(),
        debt_denom: plan.debt_denom.clone(),
        debt_to_repay: plan.debt_to_repay,
        collateral_denom: plan.collateral_denom.clone(),
        from_lend: plan.from_lend,
        min_receive: Uint128::one(),
    }
}

/// What a swap quoted at `quote` still returns after its pool moves against it by `margin`
/// (`--credit-swap-margin`), rounded down: it must repay the borrow, or the tx fails the credit
/// manager's LTV check on the liquidator's own account.
pub fn proceeds_after_move(quote: Uint128, margin: Decimal) -> Uint128 {
    quote.mul_floor(Decimal::one() - margin.min(Decimal::one()))
}

/// A credit account's plans in the order their swaps pay, as the pools quote them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRanking {
    /// The plans whose pool repays the borrow after a move by the margin kept, the largest
    /// margin over the debt (valued at the snapshot's prices) first.
    Ranked(Vec<LiquidationPlan>),
    /// No plan's pool would: the best one's floor and the debt it must repay.
    Thin { floor: Uint128, repaid: Uint128 },
    /// Some plan has no quote (no swap contract to ask, or it did not answer): the oracle's
    /// order, unchanged.
    Unquoted(Vec<LiquidationPlan>),
}

/// Orders `quoted` (each plan with what its pool returns for its `collateral_received` in the
/// debt denom) by the pool's price rather than the oracle's. After a price move a pool lags the
/// oracle by pair, so the pair the oracle values most may be the one whose swap no longer
/// repays the borrow, and the credit manager would refuse it on the own account's health.
pub fn rank_by_pool(
    quoted: Vec<(LiquidationPlan, Option<Uint128>)>,
    prices: &PriceBook,
    margin: Decimal,
) -> PoolRanking {
    if quoted.iter().any(|(_, quote)| quote.is_none()) {
        return PoolRanking::Unquoted(quoted.into_iter().map(|(plan, _)| plan).collect());
    }
    let mut paying = Vec::new();
    let mut thinnest: Option<(Uint128, Uint128)> = None;
    for (plan, quote) in quoted {
        let quote = quote.unwrap_or_default();
        let floor = proceeds_after_move(quote, margin);
        if floor < plan.debt_to_repay {
            let shortfall = plan.debt_to_repay - floor;
            if thinnest.is_none_or(|(f, r)| shortfall < r - f) {
                thinnest = Some((floor, plan.debt_to_repay));
            }
            continue;
        }
        let margin = prices
            .value(&plan.debt_denom, quote - plan.debt_to_repay)
            .unwrap_or_default();
        paying.push((margin, plan));
    }
    if paying.is_empty() {
        let (floor, repaid) = thinnest.unwrap_or_default();
        return PoolRanking::Thin { floor, repaid };
    }
    paying.sort_by_key(|(margin, _)| std::cmp::Reverse(*margin));
    PoolRanking::Ranked(paying.into_iter().map(|(_, plan)| plan).collect())
}

/// `received` of `collateral_denom` valued at `prices` in the debt denom, less `max_slippage`,
/// rounded down. `None` without a price for either denom.
pub fn min_receive(
    prices: &PriceBook,
    collateral_denom: &str,
    received: Uint128,
    debt_denom: &str,
    max_slippage: Decimal,
) -> Option<Uint128> {
    let value = prices.value(collateral_denom, received).ok()?;
    let worth = prices.amount_worth(debt_denom, value)?;
    Some(worth.mul_floor(Decimal::one() - max_slippage.min(Decimal::one())))
}

/// What a credit-account liquidation did, from its events (a simulation's or a block's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoverExecuted {
    /// `liquidate_deposit` or `liquidate_lend`.
    pub action: String,
    pub debt_repaid: Uint128,
    /// Taken from the liquidatee, protocol fee included.
    pub collateral_seized: Uint128,
    pub protocol_fee: Uint128,
    /// Coins the refund sent to the wallet.
    pub refunded: Vec<Coin>,
}

impl RoverExecuted {
    /// Collateral the own account received (seized less the protocol fee).
    pub fn collateral_received(&self) -> Uint128 {
        self.collateral_seized.saturating_sub(self.protocol_fee)
    }

    pub fn refunded_of(&self, denom: &str) -> Uint128 {
        self.refunded
            .iter()
            .filter(|c| c.denom == denom)
            .map(|c| Uint128::try_from(c.amount).unwrap_or(Uint128::MAX))
            .fold(Uint128::zero(), Uint128::saturating_add)
    }
}

/// Parses `123uatom` as the contracts write coins into attributes.
fn parse_coin(text: &str) -> Option<(String, Uint128)> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (amount, denom) = text.split_at(split);
    Some((denom.to_string(), amount.parse().ok()?))
}

fn coin_attr(event: &TxEvent, key: &str) -> Option<(String, Uint128)> {
    event.attribute(key).and_then(parse_coin)
}

/// The liquidation of `liquidatee` from `own_account` and the refund to the wallet, as the credit
/// manager's events tell them; `None` when no liquidation event is there. A tx may carry several
/// liquidations from the same own account, each refunding after its own liquidation: the
/// refund read is the one between this liquidation and the next.
pub fn read_events(
    events: &[TxEvent],
    own_account: &str,
    liquidatee: &str,
) -> Option<RoverExecuted> {
    let wasm: Vec<&TxEvent> = events.iter().filter(|e| e.kind == "wasm").collect();
    let is_own_liquidation = |event: &TxEvent| {
        matches!(
            event.attribute("action"),
            Some("liquidate_deposit" | "liquidate_lend")
        ) && event.attribute("account_id") == Some(own_account)
    };
    let start = wasm.iter().position(|e| {
        is_own_liquidation(e) && e.attribute("liquidatee_account_id") == Some(liquidatee)
    })?;
    let liquidation = wasm[start];
    let mut executed = RoverExecuted {
        action: liquidation
            .attribute("action")
            .unwrap_or_default()
            .to_string(),
        debt_repaid: coin_attr(liquidation, "coin_debt_repaid")?.1,
        collateral_seized: coin_attr(liquidation, "coin_liquidated")?.1,
        protocol_fee: coin_attr(liquidation, "protocol_fee_coin").map_or(Uint128::zero(), |c| c.1),
        refunded: Vec::new(),
    };
    // The refund is one withdrawal per coin left, after the liquidation.
    let segment = wasm[start + 1..]
        .iter()
        .take_while(|e| !is_own_liquidation(e));
    for event in segment {
        if event.attribute("action") != Some("callback/withdraw")
            || event.attribute("account_id") != Some(own_account)
        {
            continue;
        }
        if let Some((denom, amount)) = coin_attr(event, "coin_withdrawn") {
            executed.refunded.push(Coin::new(amount, denom));
        }
    }
    Some(executed)
}

/// Value of what the wallet got back less what it sent with the order (`deposited`, from the
/// wallet) and the fee paid, at `prices`: the wallet's balance change.
pub fn profit(
    prices: &PriceBook,
    executed: &RoverExecuted,
    deposited: Option<&Coin>,
    fee: &Coin,
) -> Value {
    let value = |coins: &[Coin]| prices.value_of_coins(coins).unwrap_or_default();
    let sent: Vec<Coin> = deposited.into_iter().chain([fee]).cloned().collect();
    value(&executed.refunded) - value(&sent)
}

/// The health contract's answer for `account_id` at liquidation prices (in the deployment's
/// query shape; where it takes the kind, the kind read from the credit manager, as the
/// contract's own liquidation check reads it).
pub async fn liquidation_health<C: ChainClient>(
    client: &C,
    contracts: &RoverContracts,
    account_id: &str,
) -> Result<HealthValuesResponse, CreditAccountError> {
    let kind = match contracts.health_query {
        HealthQueryShape::WithKind => {
            account_kind(client, &contracts.credit_manager, account_id).await?
        }
        // Not sent in this shape.
        HealthQueryShape::WithoutKind => AccountKind::Default,
    };
    let query = contracts
        .health_query
        .health_values(account_id, kind, ActionKind::Liquidation);
    client
        .query_smart(&contracts.health, &query, None)
        .await
        .map_err(|source| CreditAccountError::Chain {
            what: format!("health of credit account {account_id}"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn event(attributes: &[(&str, &str)]) -> TxEvent {
        TxEvent {
            kind: "wasm".into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn plan(debt: (&str, u128), collateral: (&str, u128)) -> LiquidationPlan {
        LiquidationPlan {
            debt_denom: debt.0.into(),
            collateral_denom: collateral.0.into(),
            debt_to_repay: Uint128::new(debt.1),
            collateral_received: Uint128::new(collateral.1),
            expected_profit_usd: Decimal::one(),
            from_lend: false,
        }
    }

    fn book() -> PriceBook {
        PriceBook::new(
            BTreeMap::from([
                ("uatom".to_string(), "7.5".parse().unwrap()),
                ("uosmo".to_string(), "0.5".parse().unwrap()),
                ("uusdc".to_string(), Decimal::one()),
            ]),
            6,
        )
    }

    /// Margin 1 %, so a pool must return the debt over 0.99. Plan A (30,000 uusdc for
    /// uatom): the pool returns 30,100, floor 29,799 < 30,000: out. Plan B (60,000 uosmo for
    /// uusdc): returns 61,000, floor 60,390 ≥ 60,000, margin 1,000 uosmo = 500 USD-units.
    /// Plan C (10,000 uusdc for uosmo): returns 10,800, floor 10,692, margin 800 uusdc = 800:
    /// C before B, whatever the oracle said.
    #[test]
    fn plans_are_ranked_by_what_their_pool_pays_over_the_debt() {
        let a = plan(("uusdc", 30_000), ("uatom", 4_360));
        let b = plan(("uosmo", 60_000), ("uusdc", 31_000));
        let c = plan(("uusdc", 10_000), ("uosmo", 22_000));
        let quoted = vec![
            (a.clone(), Some(Uint128::new(30_100))),
            (b.clone(), Some(Uint128::new(61_000))),
            (c.clone(), Some(Uint128::new(10_800))),
        ];
        assert_eq!(
            rank_by_pool(quoted.clone(), &book(), Decimal::percent(1)),
            PoolRanking::Ranked(vec![c.clone(), b.clone()])
        );
        // With no margin A's 30,100 repays its 30,000: margin 100 uusdc, last.
        assert_eq!(
            rank_by_pool(quoted, &book(), Decimal::zero()),
            PoolRanking::Ranked(vec![c.clone(), b.clone(), a.clone()])
        );
        // Only A: thin, with its floor.
        let thin = rank_by_pool(
            vec![(a.clone(), Some(Uint128::new(30_100)))],
            &book(),
            Decimal::percent(1),
        );
        assert_eq!(
            thin,
            PoolRanking::Thin {
                floor: Uint128::new(29_799),
                repaid: Uint128::new(30_000)
            }
        );
        // A plan without a quote leaves the oracle's order.
        let unquoted = vec![(a.clone(), None), (b.clone(), Some(Uint128::new(61_000)))];
        assert_eq!(
            rank_by_pool(unquoted, &book(), Decimal::percent(1)),
            PoolRanking::Unquoted(vec![a, b])
        );
    }

    /// 4,360 uatom at 7.5 = 32,700 uusdc at 1, less 1% = 32,373.
    #[test]
    fn min_receive_values_the_collateral_in_the_debt_denom() {
        let prices = PriceBook::new(
            BTreeMap::from([
                ("uatom".to_string(), "7.5".parse().unwrap()),
                ("uusdc".to_string(), Decimal::one()),
            ]),
            6,
        );
        let slippage = Decimal::percent(1);
        let got = min_receive(&prices, "uatom", Uint128::new(4_360), "uusdc", slippage);
        assert_eq!(got, Some(Uint128::new(32_373)));
        assert_eq!(
            min_receive(&prices, "uosmo", Uint128::new(1), "uusdc", slippage),
            None
        );
    }

    #[test]
    fn events_give_the_repayment_the_seizure_and_the_refund() {
        let events = vec![
            event(&[("action", "borrow"), ("account_id", "4")]),
            event(&[
                ("action", "liquidate_deposit"),
                ("account_id", "4"),
                ("liquidatee_account_id", "9"),
                ("coin_debt_repaid", "30000uusdc"),
                ("coin_liquidated", "4400uatom"),
                ("protocol_fee_coin", "40uatom"),
            ]),
            event(&[
                ("action", "callback/withdraw"),
                ("account_id", "9"),
                ("coin_withdrawn", "5uusdc"),
            ]),
            event(&[
                ("action", "callback/withdraw"),
                ("account_id", "4"),
                ("coin_withdrawn", "12345uusdc"),
            ]),
        ];
        let done = read_events(&events, "4", "9").unwrap();
        assert_eq!(done.action, "liquidate_deposit");
        assert_eq!(done.debt_repaid, Uint128::new(30_000));
        assert_eq!(done.collateral_seized, Uint128::new(4_400));
        assert_eq!(done.collateral_received(), Uint128::new(4_360));
        assert_eq!(done.refunded_of("uusdc"), Uint128::new(12_345));
        assert_eq!(read_events(&events, "4", "8"), None);
    }

    /// From the wallet: 4,360 uatom (at 7.5: 32,700) and 100 uusdc refunded, 30,000 uusdc sent,
    /// 5,000 uosmo fee (at 0.5: 2,500): 32,800 − 30,000 − 2,500 = 300. Borrowed (nothing sent),
    /// the same refund is worth 30,300.
    #[test]
    fn profit_counts_what_the_wallet_sent() {
        let done = RoverExecuted {
            refunded: vec![Coin::new(4_360u128, "uatom"), Coin::new(100u128, "uusdc")],
            ..RoverExecuted::default()
        };
        let fee = Coin::new(5_000u128, "uosmo");
        let sent = Coin::new(30_000u128, "uusdc");
        let value = |units: u128| Value::from(Decimal::from_ratio(units, 1u128));
        assert_eq!(profit(&book(), &done, Some(&sent), &fee), value(300));
        assert_eq!(profit(&book(), &done, None, &fee), value(30_300));
    }

    /// Two liquidations in one tx: each gets the refund that follows it, not the other's.
    #[test]
    fn each_liquidation_of_a_tx_gets_its_own_refund() {
        let liquidation = |liquidatee, repaid| {
            event(&[
                ("action", "liquidate_lend"),
                ("account_id", "4"),
                ("liquidatee_account_id", liquidatee),
                ("coin_debt_repaid", repaid),
                ("coin_liquidated", "100uatom"),
            ])
        };
        let refund = |coin| {
            event(&[
                ("action", "callback/withdraw"),
                ("account_id", "4"),
                ("coin_withdrawn", coin),
            ])
        };
        let events = vec![
            liquidation("9", "700uusdc"),
            refund("11uusdc"),
            refund("2uatom"),
            liquidation("12", "800uusdc"),
            refund("13uusdc"),
        ];
        let first = read_events(&events, "4", "9").unwrap();
        assert_eq!(first.debt_repaid, Uint128::new(700));
        assert_eq!(
            first.refunded,
            vec![Coin::new(11u128, "uusdc"), Coin::new(2u128, "uatom")]
        );
        let second = read_events(&events, "4", "12").unwrap();
        assert_eq!(second.debt_repaid, Uint128::new(800));
        assert_eq!(second.refunded, vec![Coin::new(13u128, "uusdc")]);
    }
}
