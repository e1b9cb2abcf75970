//! Rover on top of the fixture: the credit manager deployed, the fixture's assets whitelisted
//! for credit accounts, and helpers to open and drive accounts.

use cosmwasm_std::{coin, Addr, Coin, Uint128};
use cw_multi_test::{AppResponse, Executor};
use mars::msg::account_nft::{self, TokensResponse};
use mars::msg::credit_manager::{
    Action, ActionCoin, CoinBalanceResponseItem, ExecuteMsg, Positions, QueryMsg,
};
use mars::msg::health::{AccountKind, HealthQueryShape, HealthValuesResponse};
use mars::msg::oracle::ActionKind;
use mars::msg::red_bank::{self, UserCollateralResponse, UserDebtResponse};
use redline_devnet::contracts::{DeployConfig, RoverContracts};

use super::{fixture_config, Devnet, USDC};

impl Devnet {
    /// The fixture with Rover deployed and every asset whitelisted in the credit manager.
    pub fn rover() -> Self {
        Self::rover_with(fixture_config())
    }

    /// `cfg` with Rover deployed and every asset whitelisted in the credit manager.
    pub fn rover_with(mut cfg: DeployConfig) -> Self {
        cfg.credit_accounts = true;
        for asset in &mut cfg.assets {
            asset.params.credit_manager.whitelisted = true;
        }
        Self::with_config(&cfg)
    }

    pub fn rover_contracts(&self) -> RoverContracts {
        self.contracts.rover.clone().expect("rover deployed")
    }

    pub fn credit_manager(&self) -> Addr {
        self.rover_contracts().credit_manager
    }

    /// Opens a credit account of `kind` for `owner`, returning its id.
    pub fn open_account(&mut self, owner: &Addr, kind: AccountKind) -> String {
        let next_id: String = self
            .query_on(
                &self.rover_contracts().account_nft,
                &account_nft::QueryMsg::NextId {},
            )
            .unwrap();
        let cm = self.credit_manager();
        self.app
            .execute_contract(
                owner.clone(),
                cm,
                &ExecuteMsg::CreateCreditAccount(kind),
                &[],
            )
            .unwrap();
        next_id
    }

    pub fn update_account(
        &mut self,
        sender: &Addr,
        account_id: &str,
        actions: Vec<Action>,
        funds: &[Coin],
    ) -> Result<AppResponse, String> {
        let msg = ExecuteMsg::UpdateCreditAccount {
            account_id: Some(account_id.to_string()),
            account_kind: None,
            actions,
        };
        let cm = self.credit_manager();
        self.app
            .execute_contract(sender.clone(), cm, &msg, funds)
            .map_err(|e| format!("{e:#}"))
    }

    /// Mints `amount` of `denom` to `owner` and deposits it into the account.
    pub fn fund_account(&mut self, owner: &Addr, account_id: &str, amount: u128, denom: &str) {
        self.mint(owner, vec![coin(amount, denom)]);
        let deposit = Action::Deposit(coin(amount, denom));
        self.update_account(owner, account_id, vec![deposit], &[coin(amount, denom)])
            .unwrap();
    }

    pub fn positions(&self, account_id: &str) -> Positions {
        self.query_on(
            &self.credit_manager(),
            &QueryMsg::Positions {
                account_id: account_id.into(),
                action: None,
            },
        )
        .unwrap()
    }

    /// `health_values` in the deployment's shape: core-contracts (whose `positions` list
    /// `perps`) takes no `kind`.
    pub fn health_values(&self, account_id: &str, action: ActionKind) -> HealthValuesResponse {
        let positions = self.positions(account_id);
        let shape = if positions.perps.is_some() {
            HealthQueryShape::WithoutKind
        } else {
            HealthQueryShape::WithKind
        };
        self.query_on(
            &self.rover_contracts().health,
            &shape.health_values(account_id, positions.account_kind, action),
        )
        .unwrap()
    }

    /// What the credit manager owes the Red Bank in `denom` (it borrows in its own name).
    pub fn credit_manager_debt(&self, denom: &str) -> UserDebtResponse {
        self.query(&red_bank::QueryMsg::UserDebt {
            user: self.credit_manager().to_string(),
            denom: denom.into(),
        })
    }

    /// What a credit account has lent in the Red Bank, kept under
    /// `{"addr": credit manager, "acc_id": account_id}`.
    pub fn credit_account_lend(&self, account_id: &str, denom: &str) -> UserCollateralResponse {
        self.query(&red_bank::QueryMsg::UserCollateral {
            user: self.credit_manager().to_string(),
            account_id: Some(account_id.into()),
            denom: denom.into(),
        })
    }

    pub fn all_coin_balances(&self) -> Vec<CoinBalanceResponseItem> {
        self.query_on(
            &self.credit_manager(),
            &QueryMsg::AllCoinBalances {
                start_after: None,
                limit: Some(30),
            },
        )
        .unwrap()
    }

    pub fn account_tokens(&self, owner: &Addr) -> Vec<String> {
        let tokens: TokensResponse = self
            .query_on(
                &self.rover_contracts().account_nft,
                &account_nft::QueryMsg::Tokens {
                    owner: owner.to_string(),
                    start_after: None,
                    limit: None,
                },
            )
            .unwrap();
        tokens.tokens
    }

    /// A Red Bank lender of `amount` uusdc, so credit accounts can borrow.
    pub fn usdc_liquidity(&mut self, amount: u128) {
        let lender = self.addr("lender");
        self.deposit(&lender, amount, USDC);
    }
}

pub fn exact(denom: &str, amount: u128) -> ActionCoin {
    ActionCoin::exact(denom, Uint128::new(amount))
}

/// The account's coin balance of `denom` in its positions, 0 without an entry.
pub fn deposit_of(positions: &Positions, denom: &str) -> u128 {
    amount_in(&positions.deposits, denom)
}

pub fn lend_of(positions: &Positions, denom: &str) -> u128 {
    amount_in(&positions.lends, denom)
}

pub fn debt_of(positions: &Positions, denom: &str) -> u128 {
    positions
        .debts
        .iter()
        .find(|d| d.denom == denom)
        .map_or(0, |d| d.amount.u128())
}

fn amount_in(coins: &[Coin], denom: &str) -> u128 {
    coins
        .iter()
        .find(|c| c.denom == denom)
        .map_or(0, |c| Uint128::try_from(c.amount).unwrap().u128())
}
