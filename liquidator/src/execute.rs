//! From plans to one transaction, and from its events back to per-account results.
//!
//! A batch is `liquidate` messages (one per account, exactly the planned debt coin attached)
//! followed by one `withdraw` per collateral denom seized. The Red Bank credits seized
//! collateral to the liquidator as a Red Bank deposit (as Mars v2 does); withdrawing it in the
//! same transaction turns it into coins at once (one fee, no second round trip, no deposit
//! left behind if the tx fails, since a failed tx reverts both). If a withdraw itself cannot
//! execute (e.g. the market's liquidity is lent out), it is left out and the deposit is swept
//! by a later transaction ([`crate::worker`]).
//!
//! Before sending, the batch is simulated. A failing message is found (the SDK names its
//! index; failing that, each liquidation is simulated alone) and dropped, and the rest
//! re-simulated, so one account that became healthy does not sink the others. Liquidations
//! whose profit no longer clears `--min-profit-usd` once their share of the fee is counted are
//! dropped the same way.

use std::collections::{BTreeMap, BTreeSet};

use cosmrs::{AccountId, Any};
use cosmwasm_std::{Coin, Uint128};
use mars::msg::red_bank::ExecuteMsg;
use redline_chain::{execute_contract_msg, ChainClient, ChainError, TxOutcome};
use redline_protocol::{AccountKey, LiquidationOrder};

use crate::plan::Plan;
use crate::tx_sender::{SendError, TxSender};
use mars::value::{PriceBook, Value};

/// The Red Bank's `liquidate` message for `plan`, with the debt coin attached.
pub fn liquidate_msg(sender: &AccountId, red_bank: &str, plan: &Plan) -> Result<Any, ChainError> {
    let order = LiquidationOrder {
        account: AccountKey::Address(plan.account.clone()),
        debt_denom: plan.debt_denom.clone(),
        debt_to_send: plan.debt_to_send,
        collateral_denom: plan.collateral_denom.clone(),
    };
    redline_protocol::red_bank::liquidate_msg(red_bank, sender, &order)
}

/// Withdraws the sender's whole Red Bank deposit of `denom`.
pub fn withdraw_msg(sender: &AccountId, red_bank: &str, denom: &str) -> Result<Any, ChainError> {
    execute_contract_msg(
        sender,
        red_bank,
        &ExecuteMsg::Withdraw {
            denom: denom.to_string(),
            amount: None,
            recipient: None,
            account_id: None,
            liquidation_related: None,
        },
        &[],
    )
}

/// Why a plan left the batch before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Its message failed in simulation; the chain's log.
    SimulationFailed(String),
    /// Profit after its fee share is below the floor.
    BelowMinProfit { profit_after_fee_usd: Value },
}

/// A simulated batch ready to sign.
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    /// Indexes (into the plans given) of the liquidations in the tx, in message order.
    pub kept: Vec<usize>,
    pub dropped: Vec<(usize, Dropped)>,
    /// Collateral denoms withdrawn at the end of the tx, in message order.
    pub withdrawals: Vec<String>,
    /// Collateral denoms seized whose withdraw failed in simulation (swept later).
    pub left_deposited: Vec<(String, String)>,
    pub messages: Vec<Any>,
    pub gas_used: u64,
    pub fee: Coin,
}

impl PreparedBatch {
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// Splits `total` into `n` shares that add up to it exactly (the remainder to the first).
pub fn split_evenly(total: Uint128, n: usize) -> Vec<Uint128> {
    if n == 0 {
        return Vec::new();
    }
    let n128 = Uint128::new(n as u128);
    let share = total / n128;
    let mut shares = vec![share; n];
    shares[0] += total - share * n128;
    shares
}

/// A tx's `fee` split evenly over its `n` liquidations, as coins of its denom.
pub fn fee_shares(fee: &Coin, n: usize) -> Vec<Coin> {
    let total = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
    split_evenly(total, n)
        .into_iter()
        .map(|share| Coin::new(share, fee.denom.clone()))
        .collect()
}

/// Splits `total` in proportion to `weights`, exactly (the remainder to the last share).
pub fn split_by_weight(total: Uint128, weights: &[Uint128]) -> Vec<Uint128> {
    let sum = weights.iter().fold(Uint128::zero(), |a, b| a + *b);
    if weights.is_empty() {
        return Vec::new();
    }
    if sum.is_zero() {
        return split_evenly(total, weights.len());
    }
    let mut shares: Vec<Uint128> = weights
        .iter()
        .map(|w| total.multiply_ratio(*w, sum))
        .collect();
    let assigned = shares.iter().fold(Uint128::zero(), |a, b| a + *b);
    if let Some(last) = shares.last_mut() {
        *last += total - assigned;
    }
    shares
}

fn build_messages(
    sender: &AccountId,
    red_bank: &str,
    plans: &[Plan],
    active: &[usize],
    skipped_withdrawals: &BTreeSet<String>,
) -> Result<(Vec<Any>, Vec<String>), ChainError> {
    let mut messages = Vec::with_capacity(active.len() + 2);
    let mut withdrawals: Vec<String> = Vec::new();
    for &i in active {
        messages.push(liquidate_msg(sender, red_bank, &plans[i])?);
        let denom = &plans[i].collateral_denom;
        if !withdrawals.contains(denom) && !skipped_withdrawals.contains(denom) {
            withdrawals.push(denom.clone());
        }
    }
    for denom in &withdrawals {
        messages.push(withdraw_msg(sender, red_bank, denom)?);
    }
    Ok((messages, withdrawals))
}

/// Simulates the plans as one tx, dropping failing or no-longer-profitable liquidations until
/// the rest simulates. Errors only when the chain cannot be asked (nothing was decided).
pub async fn prepare_batch<C: ChainClient>(
    sender: &TxSender<C>,
    red_bank: &str,
    plans: &[Plan],
    prices: &PriceBook,
    min_profit_usd: Value,
) -> Result<PreparedBatch, SendError> {
    let from = sender.wallet().address();
    let mut active: Vec<usize> = (0..plans.len()).collect();
    let mut dropped = Vec::new();
    let mut skipped_withdrawals = BTreeSet::new();
    let mut left_deposited = Vec::new();
    // Each round drops a liquidation or a withdraw, so this ends.
    loop {
        if active.is_empty() {
            return Ok(PreparedBatch {
                kept: active,
                dropped,
                withdrawals: Vec::new(),
                left_deposited,
                messages: Vec::new(),
                gas_used: 0,
                fee: sender.fee_for_gas(0),
            });
        }
        let (messages, withdrawals) =
            build_messages(from, red_bank, plans, &active, &skipped_withdrawals)
                .map_err(SendError::Chain)?;
        match sender.simulate(&messages).await {
            Ok(gas_used) => {
                let fee = sender.fee_for_gas(gas_used);
                let fee_amount = Uint128::try_from(fee.amount).unwrap_or(Uint128::MAX);
                let shares = split_evenly(fee_amount, active.len());
                let mut below = Vec::new();
                for (position, &i) in active.iter().enumerate() {
                    let fee_value = prices
                        .value(&fee.denom, shares[position])
                        .unwrap_or_default();
                    let profit_usd = prices.to_usd(plans[i].expected_profit - fee_value);
                    if profit_usd < min_profit_usd {
                        below.push((i, profit_usd));
                    }
                }
                if below.is_empty() {
                    return Ok(PreparedBatch {
                        kept: active,
                        dropped,
                        withdrawals,
                        left_deposited,
                        messages,
                        gas_used,
                        fee,
                    });
                }
                for (i, profit_after_fee_usd) in below {
                    active.retain(|&a| a != i);
                    dropped.push((
                        i,
                        Dropped::BelowMinProfit {
                            profit_after_fee_usd,
                        },
                    ));
                }
            }
            Err(SendError::Simulation(rejection)) => {
                let error = SendError::Simulation(rejection.clone());
                match error.failed_message_index() {
                    Some(index) if index < active.len() => {
                        let i = active.remove(index);
                        dropped.push((i, Dropped::SimulationFailed(rejection.log.clone())));
                    }
                    Some(index) if index - active.len() < withdrawals.len() => {
                        let denom = withdrawals[index - active.len()].clone();
                        left_deposited.push((denom.clone(), rejection.log.clone()));
                        skipped_withdrawals.insert(denom);
                    }
                    _ => {
                        // No usable index: try each liquidation alone.
                        let before = active.len();
                        let mut still = Vec::new();
                        for &i in &active {
                            let (alone, _) =
                                build_messages(from, red_bank, plans, &[i], &skipped_withdrawals)
                                    .map_err(SendError::Chain)?;
                            match sender.simulate(&alone).await {
                                Ok(_) => still.push(i),
                                Err(SendError::Simulation(r)) => {
                                    dropped.push((i, Dropped::SimulationFailed(r.log.clone())))
                                }
                                Err(other) => return Err(other),
                            }
                        }
                        if still.len() == before {
                            // Each passes alone but not together: keep the most profitable.
                            let best = still
                                .iter()
                                .copied()
                                .max_by(|a, b| {
                                    plans[*a].expected_profit.cmp(&plans[*b].expected_profit)
                                })
                                .expect("not empty");
                            for &i in still.iter().filter(|&&i| i != best) {
                                dropped.push((
                                    i,
                                    Dropped::SimulationFailed(format!(
                                        "fails only together with the batch: {}",
                                        rejection.log
                                    )),
                                ));
                            }
                            still = vec![best];
                        }
                        active = still;
                    }
                }
            }
            Err(other) => return Err(other),
        }
    }
}

/// What one liquidation of an included tx did, from the tx's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub debt_repaid: Uint128,
    pub collateral_seized: Uint128,
    /// This liquidation's share of the collateral coins withdrawn.
    pub collateral_received: Uint128,
    /// Its share of the fee, in the fee denom.
    pub fee_share: Uint128,
}

/// Reads the `wasm` events of an included batch: `liquidate` (matched by account) and
/// `withdraw` (by denom). Withdrawn coins are shared among the liquidations of that denom by
/// collateral seized; the fee evenly. Both splits add up exactly.
pub fn read_outcome(
    outcome: &TxOutcome,
    plans: &[&Plan],
    wallet: &str,
    fee: Uint128,
) -> Vec<Executed> {
    let mut repaid = vec![Uint128::zero(); plans.len()];
    let mut seized = vec![Uint128::zero(); plans.len()];
    let mut withdrawn: BTreeMap<String, Uint128> = BTreeMap::new();
    let amount = |event: &redline_chain::TxEvent, key: &str| {
        event
            .attribute(key)
            .and_then(|v| v.parse::<u128>().ok())
            .map(Uint128::new)
            .unwrap_or_default()
    };
    for event in outcome.events_of("wasm") {
        match event.attribute("action") {
            Some("liquidate") => {
                let user = event.attribute("user").unwrap_or_default();
                if let Some(i) = plans.iter().position(|p| p.account == user) {
                    repaid[i] += amount(event, "debt_amount");
                    seized[i] += amount(event, "collateral_amount");
                }
            }
            Some("withdraw") if event.attribute("sender") == Some(wallet) => {
                let denom = event.attribute("denom").unwrap_or_default().to_string();
                *withdrawn.entry(denom).or_default() += amount(event, "amount");
            }
            _ => {}
        }
    }
    let mut received = vec![Uint128::zero(); plans.len()];
    for (denom, total) in withdrawn {
        let members: Vec<usize> = (0..plans.len())
            .filter(|&i| plans[i].collateral_denom == denom)
            .collect();
        let weights: Vec<Uint128> = members.iter().map(|&i| seized[i]).collect();
        for (share, &i) in split_by_weight(total, &weights).into_iter().zip(&members) {
            received[i] += share;
        }
    }
    let fees = split_evenly(fee, plans.len());
    (0..plans.len())
        .map(|i| Executed {
            debt_repaid: repaid[i],
            collateral_seized: seized[i],
            collateral_received: received[i],
            fee_share: fees[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mars::types::{Health, LiquidationAmounts};
    use redline_chain::TxEvent;

    fn plan(account: &str, collateral: &str) -> Plan {
        Plan {
            account: account.into(),
            debt_denom: "uusdc".into(),
            collateral_denom: collateral.into(),
            debt_to_send: Uint128::new(100),
            amounts: LiquidationAmounts::default(),
            expected_profit: Value::zero(),
            health_before: Health::default(),
            health_after: Health::default(),
            expected_at: 0,
            shortfall: None,
        }
    }

    fn event(pairs: &[(&str, &str)]) -> TxEvent {
        TxEvent {
            kind: "wasm".into(),
            attributes: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn splits_add_up() {
        assert_eq!(
            split_evenly(Uint128::new(10), 3),
            vec![Uint128::new(4), Uint128::new(3), Uint128::new(3)]
        );
        assert!(split_evenly(Uint128::new(10), 0).is_empty());
        let shares = split_by_weight(
            Uint128::new(1_000),
            &[Uint128::new(1), Uint128::new(1), Uint128::new(1)],
        );
        assert_eq!(shares.iter().map(|s| s.u128()).sum::<u128>(), 1_000);
        assert_eq!(shares[2], Uint128::new(334));
        assert_eq!(
            split_by_weight(Uint128::new(7), &[Uint128::zero(), Uint128::zero()]),
            vec![Uint128::new(4), Uint128::new(3)]
        );
    }

    #[test]
    fn events_map_back_to_accounts() {
        let a = plan("osmo1a", "uatom");
        let b = plan("osmo1b", "uatom");
        let c = plan("osmo1c", "uosmo");
        let outcome = TxOutcome {
            hash: redline_chain::tx_hash(b"x"),
            height: 7,
            code: 0,
            codespace: String::new(),
            log: String::new(),
            gas_wanted: 0,
            gas_used: 0,
            events: vec![
                event(&[
                    ("action", "liquidate"),
                    ("user", "osmo1b"),
                    ("debt_amount", "50"),
                    ("collateral_amount", "300"),
                ]),
                event(&[
                    ("action", "liquidate"),
                    ("user", "osmo1a"),
                    ("debt_amount", "100"),
                    ("collateral_amount", "100"),
                ]),
                event(&[
                    ("action", "liquidate"),
                    ("user", "osmo1c"),
                    ("debt_amount", "10"),
                    ("collateral_amount", "20"),
                ]),
                event(&[
                    ("action", "withdraw"),
                    ("sender", "osmo1me"),
                    ("denom", "uatom"),
                    ("amount", "399"),
                ]),
                event(&[
                    ("action", "withdraw"),
                    ("sender", "osmo1me"),
                    ("denom", "uosmo"),
                    ("amount", "19"),
                ]),
                event(&[
                    ("action", "withdraw"),
                    ("sender", "osmo1other"),
                    ("denom", "uosmo"),
                    ("amount", "1000"),
                ]),
            ],
            endpoint: String::new(),
        };
        let executed = read_outcome(&outcome, &[&a, &b, &c], "osmo1me", Uint128::new(1_000));
        assert_eq!(executed[0].debt_repaid, Uint128::new(100));
        assert_eq!(executed[1].collateral_seized, Uint128::new(300));
        // 399 uatom shared 100:300.
        assert_eq!(executed[0].collateral_received, Uint128::new(99));
        assert_eq!(executed[1].collateral_received, Uint128::new(300));
        assert_eq!(executed[2].collateral_received, Uint128::new(19));
        let fees: u128 = executed.iter().map(|e| e.fee_share.u128()).sum();
        assert_eq!(fees, 1_000);
    }

    #[test]
    fn liquidate_message_json_is_mars() {
        let wallet = redline_chain::Wallet::from_mnemonic(
            redline_devnet::scenario::DEFAULT_LIQUIDATOR_MNEMONIC,
            "osmo",
            0,
        )
        .unwrap();
        let mut p = plan("osmo1user", "uatom");
        p.debt_to_send = Uint128::new(30_000);
        let any = liquidate_msg(wallet.address(), wallet.address().as_ref(), &p).unwrap();
        let exec =
            <cosmrs::cosmwasm::MsgExecuteContract as cosmrs::tx::Msg>::from_any(&any).unwrap();
        assert_eq!(
            String::from_utf8(exec.msg).unwrap(),
            r#"{"liquidate":{"collateral_denom":"uatom","recipient":null,"user":"osmo1user"}}"#
        );
        assert_eq!(exec.funds.len(), 1);
        assert_eq!(exec.funds[0].amount, 30_000);
        assert_eq!(exec.funds[0].denom.as_ref(), "uusdc");
        let any = withdraw_msg(wallet.address(), wallet.address().as_ref(), "uatom").unwrap();
        let exec =
            <cosmrs::cosmwasm::MsgExecuteContract as cosmrs::tx::Msg>::from_any(&any).unwrap();
        assert_eq!(
            String::from_utf8(exec.msg).unwrap(),
            r#"{"withdraw":{"denom":"uatom"}}"#
        );
    }
}
