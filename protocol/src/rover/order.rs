//! The message that liquidates a credit account from the liquidator's own credit account.
//!
//! Funded by a borrow, it needs no debt coin: borrow it, liquidate with it (the seized
//! collateral lands in the own account), sell the collateral for the debt denom, repay the
//! borrow and refund what is left to the wallet. Funded from the wallet, it deposits the debt
//! coin sent with the message, liquidates and refunds the seized collateral and what the
//! liquidation did not use: no swap, so it pays where the swap pool is too thin to repay a
//! borrow. Either way, if any step fails the whole message reverts, so nothing is left borrowed
//! or held in the own account.

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
    /// The swap's floor, with [`Funding::Borrow`]; unused from the wallet.
    pub min_receive: Uint128,
    pub funding: Funding,
}

/// Where the debt coin of a credit-account liquidation comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Funding {
    /// Borrowed by the own account and repaid from the seized collateral sold in the same tx.
    #[default]
    Borrow,
    /// Sent from the wallet with the message; the seized collateral is refunded unsold.
    Wallet,
}

impl RoverOrder {
    pub fn request(&self) -> LiquidateRequest {
        if self.from_lend {
            LiquidateRequest::Lend(self.collateral_denom.clone())
        } else {
            LiquidateRequest::Deposit(self.collateral_denom.clone())
        }
    }

    fn debt_coin(&self) -> Coin {
        Coin::new(self.debt_to_repay, self.debt_denom.clone())
    }

    /// What the wallet sends with the message: the debt coin when it funds the liquidation.
    pub fn deposited(&self) -> Option<Coin> {
        (self.funding == Funding::Wallet).then(|| self.debt_coin())
    }

    /// Borrowed: borrow, liquidate, swap the collateral for the debt denom, repay, refund.
    /// From the wallet: deposit, liquidate, refund.
    pub fn actions(&self) -> Vec<Action> {
        let debt_coin = self.debt_coin();
        let liquidate = Action::Liquidate {
            liquidatee_account_id: self.liquidatee.clone(),
            debt_coin: debt_coin.clone(),
            request: self.request(),
        };
        if self.funding == Funding::Wallet {
            return vec![
                Action::Deposit(debt_coin),
                liquidate,
                Action::RefundAllCoinBalances {},
            ];
        }
        vec![
            Action::Borrow(debt_coin),
            liquidate,
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
        let funds: Vec<Coin> = self.deposited().into_iter().collect();
        execute_contract_msg(sender, credit_manager, &msg, &funds)
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
            funding: Funding::Borrow,
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
        assert_eq!(order(false).deposited(), None);
    }

    /// From the wallet: the debt coin deposited from the message's funds, no borrow, no swap.
    #[test]
    fn from_the_wallet_deposit_liquidate_and_refund() {
        let order = RoverOrder {
            funding: Funding::Wallet,
            ..order(false)
        };
        let json = serde_json::to_value(order.actions()).unwrap();
        assert_eq!(
            json,
            json!([
                {"deposit": {"denom": "uusdc", "amount": "30000"}},
                {"liquidate": {"liquidatee_account_id": "9",
                    "debt_coin": {"denom": "uusdc", "amount": "30000"},
                    "request": {"deposit": "uatom"}}},
                {"refund_all_coin_balances": {}}
            ])
        );
        assert_eq!(order.deposited(), Some(Coin::new(30_000u128, "uusdc")));
    }
}
