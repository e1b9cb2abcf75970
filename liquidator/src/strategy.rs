//! The two seams around the liquidation pipeline.
//!
//! - [`Strategy`] is consulted for every planned liquidation before it is sent: go or not, and
//!   at most how much to repay. The default, [`AlwaysGo`], sends every profitable plan. The
//!   external model process (`--model CMD`, auction-keeper style) plugs in here.
//! - [`AfterLiquidation`] runs after a batch's liquidations are confirmed in a block, with the
//!   worker's own [`TxSender`] (so its transactions stay in the worker's sequence) and what
//!   the batch received. Rebalancing (swapping seized collateral back) plugs in here; the
//!   default, [`NoRebalance`], does nothing.
//!
//! Both are object-safe (boxed futures) so the worker holds them as `Arc<dyn …>`.

use cosmwasm_std::{Coin, Decimal, Uint128};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::tx_sender::TxSender;
use mars::value::Value;

/// One planned liquidation, as shown to a [`Strategy`] (and serialised as one JSON line to an
/// external model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opportunity {
    pub chain_id: String,
    pub protocol: String,
    pub account: String,
    /// Latest block height the plan was made at.
    pub height: u64,
    /// Height the health checker found the account liquidatable at.
    pub candidate_height: u64,
    pub liquidation_health_factor: Option<Decimal>,
    pub debt_denom: String,
    pub collateral_denom: String,
    /// The debt the liquidator would send (and the contract repay).
    pub debt_to_repay: Uint128,
    pub collateral_to_receive: Uint128,
    pub liquidation_bonus: Decimal,
    pub debt_price: Decimal,
    pub collateral_price: Decimal,
    /// Before tx fees, at default oracle prices.
    pub expected_profit_usd: Value,
    /// The wallet that would send it.
    pub wallet: String,
}

/// A [`Strategy`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Decision {
    pub go: bool,
    /// Cap on the debt to repay (in the opportunity's debt denom); `None` keeps the plan's.
    #[serde(default)]
    pub max_repay: Option<Uint128>,
    /// Why, when declining (logged and recorded).
    #[serde(default)]
    pub reason: Option<String>,
}

impl Decision {
    pub fn go() -> Self {
        Decision {
            go: true,
            max_repay: None,
            reason: None,
        }
    }

    pub fn decline(reason: impl Into<String>) -> Self {
        Decision {
            go: false,
            max_repay: None,
            reason: Some(reason.into()),
        }
    }
}

/// Decides on each planned liquidation. Implementations handle their own failures (a model
/// that hangs or answers garbage) and answer with a [`Decision`] either way.
pub trait Strategy: Send + Sync + 'static {
    fn decide<'a>(&'a self, opportunity: &'a Opportunity) -> BoxFuture<'a, Decision>;
}

/// Sends every profitable plan as planned.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysGo;

impl Strategy for AlwaysGo {
    fn decide<'a>(&'a self, _opportunity: &'a Opportunity) -> BoxFuture<'a, Decision> {
        Box::pin(async { Decision::go() })
    }
}

/// One liquidation of a confirmed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedLiquidation {
    pub account: String,
    pub debt_denom: String,
    pub debt_repaid: Uint128,
    pub collateral_denom: String,
    pub collateral_received: Uint128,
}

/// A batch confirmed in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub height: u64,
    pub tx_hash: String,
    pub liquidations: Vec<ConfirmedLiquidation>,
    /// Coins the wallet gained (collateral withdrawn), by denom.
    pub received: Vec<Coin>,
    /// Coins the wallet spent (debt repaid and the fee), by denom.
    pub spent: Vec<Coin>,
    /// What the wallet lacked (debt coins, fees) in its latest step that set jobs aside for
    /// want of funds: what seized collateral is best turned into.
    pub short: Vec<Coin>,
}

/// Runs after liquidations are confirmed, on the worker that sent them, before it takes more
/// work. Errors are the hook's to log; the liquidations are already recorded.
pub trait AfterLiquidation<C>: Send + Sync + 'static {
    fn after_liquidations<'a>(
        &'a self,
        sender: &'a TxSender<C>,
        report: &'a BatchReport,
    ) -> BoxFuture<'a, ()>;
}

/// Keeps seized collateral as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRebalance;

impl<C: Send + Sync + 'static> AfterLiquidation<C> for NoRebalance {
    fn after_liquidations<'a>(
        &'a self,
        _sender: &'a TxSender<C>,
        _report: &'a BatchReport,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_parse_the_model_line() {
        let decision: Decision = serde_json::from_str(r#"{"go":true,"max_repay":"1000"}"#).unwrap();
        assert_eq!(
            decision,
            Decision {
                go: true,
                max_repay: Some(Uint128::new(1_000)),
                reason: None
            }
        );
        let decision: Decision = serde_json::from_str(r#"{"go":false}"#).unwrap();
        assert!(!decision.go);
    }

    #[tokio::test]
    async fn always_go_goes() {
        let opportunity = Opportunity {
            chain_id: "devnet-1".into(),
            protocol: "red_bank".into(),
            account: "osmo1a".into(),
            height: 1,
            candidate_height: 1,
            liquidation_health_factor: Some(Decimal::percent(90)),
            debt_denom: "uusdc".into(),
            collateral_denom: "uatom".into(),
            debt_to_repay: Uint128::new(1),
            collateral_to_receive: Uint128::new(1),
            liquidation_bonus: Decimal::percent(2),
            debt_price: Decimal::one(),
            collateral_price: Decimal::one(),
            expected_profit_usd: Value::zero(),
            wallet: "osmo1w".into(),
        };
        assert_eq!(AlwaysGo.decide(&opportunity).await, Decision::go());
        let line = serde_json::to_string(&opportunity).unwrap();
        assert!(line.contains("\"expected_profit_usd\":\"0\""), "{line}");
    }
}
