//! Opening accounts and `update_credit_account`: each action becomes a callback the contract
//! sends itself, followed by the checks that guard the account (`execute.rs`).

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, Coins, CosmosMsg, DepsMut, Env, MessageInfo, Response, Uint128};
use mars::msg::account_nft;
use mars::msg::credit_manager::{AccountKind, Action, CallbackMsg, ExecuteMsg};
use mars::msg::oracle::ActionKind;

use super::coins::{deposit, note_deposit_cap_denom};
use super::peers::{account_owner, execute_msg, health_state, next_account_id};
use super::state::{self, lock_guard, ACCOUNT_KINDS, ACCOUNT_NFT};
use super::{CreditManagerError, CreditManagerResult};

/// Mints the next account NFT to `user` and records the account's kind.
pub fn create_credit_account(
    deps: &mut DepsMut,
    user: &Addr,
    kind: AccountKind,
) -> CreditManagerResult<(String, Response)> {
    match kind {
        AccountKind::FundManager { .. } => return Err(CreditManagerError::FundManagerUnsupported),
        AccountKind::UsdcMargin => return Err(CreditManagerError::UsdcMarginUnsupported),
        AccountKind::Default | AccountKind::HighLeveredStrategy => {}
    }
    let account_nft = ACCOUNT_NFT.load(deps.storage)?;
    let account_id = next_account_id(deps.as_ref())?;
    let mint = account_nft::ExecuteMsg::Mint {
        user: user.to_string(),
    };
    ACCOUNT_KINDS.save(deps.storage, &account_id, &kind)?;
    let response = Response::new()
        .add_message(execute_msg(&account_nft, &mint, vec![])?)
        .add_attribute("action", "create_credit_account")
        .add_attribute("kind", kind.to_string());
    Ok((account_id, response))
}

/// Only the account's owner acts on it.
fn assert_is_token_owner(deps: &DepsMut, user: &Addr, account_id: &str) -> CreditManagerResult<()> {
    let owner = account_owner(deps.as_ref(), account_id)?;
    if user.as_str() != owner {
        return Err(CreditManagerError::NotTokenOwner {
            user: user.to_string(),
            account_id: account_id.to_string(),
        });
    }
    Ok(())
}

pub fn update_credit_account(
    mut deps: DepsMut,
    env: Env,
    info: MessageInfo,
    account_id: Option<String>,
    account_kind: Option<AccountKind>,
    actions: Vec<Action>,
) -> CreditManagerResult<Response> {
    let (account_id, response) = match account_id {
        Some(account_id) => {
            assert_is_token_owner(&deps, &info.sender, &account_id)?;
            (account_id, Response::new())
        }
        None => create_credit_account(
            &mut deps,
            &info.sender,
            account_kind.unwrap_or(AccountKind::Default),
        )?,
    };
    lock_guard(deps.storage)?;

    // Deposits and own repayments alone skip the health check, so an account can always be
    // saved in a crash.
    let needs_health_check = !actions.iter().all(|action| {
        matches!(
            action,
            Action::Deposit(..)
                | Action::Repay {
                    recipient_account_id: None,
                    ..
                }
        )
    });
    let prev_health_state = if needs_health_check {
        Some(health_state(
            deps.as_ref(),
            &account_id,
            ActionKind::Default,
        )?)
    } else {
        None
    };

    let mut plan = Plan {
        account_id: account_id.clone(),
        received: Coins::try_from(info.funds)?,
        callbacks: Vec::new(),
        cap_denoms: BTreeMap::new(),
        response,
    };
    for action in actions {
        plan.add(&mut deps, &info.sender, action)?;
    }
    if !plan.received.is_empty() {
        return Err(CreditManagerError::ExtraFundsReceived(plan.received));
    }
    if state::account_kind(deps.storage, &account_id)? == AccountKind::HighLeveredStrategy {
        plan.callbacks.push(CallbackMsg::AssertHlsRules {
            account_id: account_id.clone(),
        });
    }
    if let Some(prev_health_state) = prev_health_state {
        plan.callbacks.push(CallbackMsg::AssertMaxLtv {
            account_id: account_id.clone(),
            prev_health_state,
        });
    }
    plan.finish(&env.contract.address)
}

/// The callbacks an `update_credit_account` sends, built action by action.
struct Plan {
    account_id: String,
    /// Funds sent and not yet claimed by a deposit action.
    received: Coins,
    callbacks: Vec<CallbackMsg>,
    /// Denoms whose total deposit may grow, for the deposit-cap check at the end.
    cap_denoms: BTreeMap<String, Option<Uint128>>,
    response: Response,
}

impl Plan {
    fn add(
        &mut self,
        deps: &mut DepsMut,
        sender: &Addr,
        action: Action,
    ) -> CreditManagerResult<()> {
        let account_id = self.account_id.clone();
        let callback = match action {
            Action::Deposit(coin) => {
                let response = std::mem::take(&mut self.response);
                self.response = deposit(deps, response, &account_id, &coin, &mut self.received)?;
                note_deposit_cap_denom(deps.as_ref(), &mut self.cap_denoms, &coin.denom, None)?;
                return Ok(());
            }
            Action::Withdraw(coin) => CallbackMsg::Withdraw {
                account_id,
                coin,
                recipient: sender.clone(),
            },
            Action::WithdrawToWallet { coin, recipient } => CallbackMsg::Withdraw {
                account_id,
                coin,
                recipient: deps.api.addr_validate(&recipient)?,
            },
            Action::Borrow(coin) => CallbackMsg::Borrow { account_id, coin },
            Action::Repay {
                recipient_account_id: None,
                coin,
            } => CallbackMsg::Repay { account_id, coin },
            Action::Repay {
                recipient_account_id: Some(recipient_account_id),
                coin,
            } => CallbackMsg::RepayForRecipient {
                benefactor_account_id: account_id,
                recipient_account_id,
                coin,
            },
            Action::Lend(coin) => CallbackMsg::Lend { account_id, coin },
            Action::Reclaim(coin) => CallbackMsg::Reclaim { account_id, coin },
            Action::Liquidate {
                liquidatee_account_id,
                debt_coin,
                request,
            } => CallbackMsg::Liquidate {
                liquidator_account_id: account_id,
                liquidatee_account_id,
                debt_coin,
                request,
            },
            Action::SwapExactIn {
                coin_in,
                denom_out,
                min_receive,
                route,
            } => {
                let received = Some(&self.received);
                note_deposit_cap_denom(deps.as_ref(), &mut self.cap_denoms, &denom_out, received)?;
                CallbackMsg::SwapExactIn {
                    account_id,
                    coin_in,
                    denom_out,
                    min_receive,
                    route,
                }
            }
            Action::RefundAllCoinBalances {} => CallbackMsg::RefundAllCoinBalances { account_id },
        };
        self.callbacks.push(callback);
        Ok(())
    }

    /// Appends the deposit-cap check and the guard's release, and sends everything in order.
    fn finish(mut self, this: &Addr) -> CreditManagerResult<Response> {
        self.callbacks.push(CallbackMsg::AssertDepositCaps {
            denoms: self.cap_denoms,
        });
        self.callbacks.push(CallbackMsg::RemoveReentrancyGuard {});
        let messages = self
            .callbacks
            .into_iter()
            .map(|callback| execute_msg(this, &ExecuteMsg::Callback(callback), vec![]))
            .collect::<CreditManagerResult<Vec<CosmosMsg>>>()?;
        Ok(self
            .response
            .add_messages(messages)
            .add_attribute("action", "rover/execute/update_credit_account")
            .add_attribute("account_id", self.account_id))
    }
}
