//! The message that liquidates a credit account from the liquidator's own credit account,
//! without holding the debt coin: borrow it, liquidate with it (the seized collateral lands in
//! the own account), sell the collateral for the debt denom, repay the borrow and refund what
//! is left to the wallet. If any step fails the whole message reverts, so nothing is left
//! borrowed.

use cosmrs::{AccountId, Any};
use cosmwasm_std::{Coin, Uint128};
use mars::msg::credit_manager::{Action, ActionCoin, ExecuteMsg, LiquidateRequest};
use redline_chain::{execute_contract_msg, ChainError};

/// What one credit-account liquidation asks the credit manager for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoverOrder {
    /// The liquidator's own credit account.
    pub own_account: String,
    pub liquidatee: String,
    pub debt_denom: String,
    /// Borrowed and offered; the contract repays at most what its cap allows, and what it does
    /// not use is repaid at once.
    pub debt_to_repay: Uint128,
    pub collateral_denom: String,
    pub from_lend: bool,
    pub min_receive: Uint128,
}

impl RoverOrder {
    pub fn request(&self) -> LiquidateRequest {
        if self.from_lend {
            LiquidateRequest::Lend(self.collateral_denom.clone())
        } else {
            LiquidateRequest::Deposit(self.collateral_denom.clone())
        }
    }

    /// borrow, liquidate, swap the collateral for the debt denom, repay, refund.
    pub fn actions(&self) -> Vec<Action> {
        let debt_coin = Coin::new(self.debt_to_repay, self.debt_denom.clone());
        vec![
            Action::Borrow(debt_coin.clone()),
            Action::Liquidate {
                liquidatee_account_id: self.liquidatee.clone(),
                debt_coin,
                request: self.request(),
            },
            Action::SwapExactIn {
                coin_in: ActionCoin::account_balance(&self.collateral_denom),
                denom_out: self.debt_denom.clone(),
                min_receive: self.min_receive,
                route: None,
            },
            Action::Repay {
                recipient_account_id: None,
                coin: ActionCoin::account_balance(&self.debt_denom),
            },
            Action::RefundAllCoinBalances {},
        ]
    }

    /// The `update_credit_account` message from `sender` (the own account's owner).
    pub fn message(&self, sender: &AccountId, credit_manager: &str) -> Result<Any, ChainError> {
        let msg = ExecuteMsg::UpdateCreditAccount {
            account_id: Some(self.own_account.clone()),
            account_kind: None,
            actions: self.actions(),
        };
        execute_contract_msg(sender, credit_manager, &msg, &[])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(from_lend: bool) -> RoverOrder {
        RoverOrder {
            own_account: "4".into(),
            liquidatee: "9".into(),
            debt_denom: "uusdc".into(),
            debt_to_repay: Uint128::new(30_000),
            collateral_denom: "uatom".into(),
            from_lend,
            min_receive: Uint128::new(31_000),
        }
    }

    /// The actions Mars's own bot sends, in its JSON.
    #[test]
    fn actions_borrow_liquidate_swap_repay_and_refund() {
        let json = serde_json::to_value(order(false).actions()).unwrap();
        assert_eq!(
            json,
            json!([
                {"borrow": {"denom": "uusdc", "amount": "30000"}},
                {"liquidate": {"liquidatee_account_id": "9",
                    "debt_coin": {"denom": "uusdc", "amount": "30000"},
                    "request": {"deposit": "uatom"}}},
                {"swap_exact_in": {"coin_in": {"denom": "uatom", "amount": "account_balance"},
                    "denom_out": "uusdc", "min_receive": "31000"}},
                {"repay": {"coin": {"denom": "uusdc", "amount": "account_balance"}}},
                {"refund_all_coin_balances": {}}
            ])
        );
        let lend = serde_json::to_value(&order(true).actions()[1]).unwrap();
        assert_eq!(lend["liquidate"]["request"], json!({"lend": "uatom"}));
    }
}
