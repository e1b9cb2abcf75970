//! Shared setup of the contracts tests: a devnet app with the Mars fixture's assets deployed.
#![allow(dead_code)]

pub mod rover;

use cosmwasm_std::{coin, Addr, BlockInfo, Coin, Decimal, Timestamp, Uint128};
use cw_multi_test::{AppResponse, BankSudo, Executor, SudoMsg};
use mars::msg::oracle::PriceUpdate;
use mars::msg::params as params_msg;
use mars::msg::red_bank::{
    ExecuteMsg, QueryMsg, UserCollateralResponse, UserDebtResponse, UserHealthStatus,
    UserPositionResponse,
};
use mars::types::{AssetParams, InterestRateModel, LiquidationBonus};
use redline_devnet::contracts::{
    asset_params, deploy, new_app, set_prices, AssetConfig, DeployConfig, DeployedContracts,
    DevnetApp, SwapConfig,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

pub const ATOM: &str = "uatom";
pub const USDC: &str = "uusdc";
pub const OSMO: &str = "uosmo";
pub const START_TIME: u64 = 1_700_000_000;

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn block0() -> BlockInfo {
    BlockInfo {
        height: 1,
        time: Timestamp::from_seconds(START_TIME),
        chain_id: "devnet-1".into(),
    }
}

pub fn interest_model() -> InterestRateModel {
    InterestRateModel {
        optimal_utilization_rate: dec("0.8"),
        base: Decimal::zero(),
        slope_1: dec("0.07"),
        slope_2: dec("0.45"),
    }
}

/// The asset list of the fixture measured on the real Mars contracts: ATOM max LTV 0.7,
/// LT 0.8, LB 0.01 / 2 / 0.02 / 0.1, protocol fee 0.1 at price 10; USDC at price 1; OSMO at 1.
/// The fixture's assets as core-contracts (Neutron) lists them: close factor 0.9 (Mars's
/// Neutron deployment), withdrawals enabled, no target health factor.
pub fn neutron_config() -> DeployConfig {
    let mut cfg = fixture_config();
    cfg.target_health_factor = None;
    for asset in &mut cfg.assets {
        asset.params.close_factor = Some(dec("0.9"));
        asset.params.credit_manager.withdraw_enabled = Some(true);
        asset.params.red_bank.withdraw_enabled = Some(true);
    }
    cfg
}

pub fn fixture_config() -> DeployConfig {
    let cap = Uint128::new(1_000_000_000_000_000);
    let asset =
        |denom: &str, price: &str, ltv: &str, lt: &str, bonus: LiquidationBonus| AssetConfig {
            denom: denom.into(),
            decimals: 6,
            price: dec(price),
            liquidation_price: None,
            params: asset_params(denom, dec(ltv), dec(lt), bonus, dec("0.1"), cap),
            reserve_factor: dec("0.1"),
            interest_rate_model: interest_model(),
        };
    DeployConfig {
        oracle_base_denom: "uusd".into(),
        target_health_factor: Some(dec("1.05")),
        assets: vec![
            asset(
                ATOM,
                "10",
                "0.7",
                "0.8",
                LiquidationBonus {
                    starting_lb: dec("0.01"),
                    slope: dec("2"),
                    min_lb: dec("0.02"),
                    max_lb: dec("0.1"),
                },
            ),
            asset(
                USDC,
                "1",
                "0.75",
                "0.8",
                LiquidationBonus {
                    starting_lb: dec("0"),
                    slope: dec("1"),
                    min_lb: dec("0"),
                    max_lb: dec("0.05"),
                },
            ),
            asset(
                OSMO,
                "1",
                "0.5",
                "0.6",
                LiquidationBonus {
                    starting_lb: dec("0.02"),
                    slope: dec("1"),
                    min_lb: dec("0.02"),
                    max_lb: dec("0.1"),
                },
            ),
        ],
        swap: Some(SwapConfig {
            fee: dec("0.003"),
            side_value: Uint128::new(10_000_000_000),
        }),
        rewards_collector: None,
        credit_accounts: false,
    }
}

pub struct Devnet {
    pub app: DevnetApp,
    pub contracts: DeployedContracts,
}

impl Devnet {
    pub fn fixture() -> Self {
        Self::with_config(&fixture_config())
    }

    pub fn with_config(cfg: &DeployConfig) -> Self {
        let mut app = new_app("osmo", block0());
        let owner = app.api().addr_make("owner");
        let contracts = deploy(&mut app, &owner, cfg).expect("deploy");
        Devnet { app, contracts }
    }

    pub fn addr(&self, name: &str) -> Addr {
        self.app.api().addr_make(name)
    }

    pub fn mint(&mut self, to: &Addr, coins: Vec<Coin>) {
        self.app
            .sudo(SudoMsg::Bank(BankSudo::Mint {
                to_address: to.to_string(),
                amount: coins,
            }))
            .unwrap();
    }

    pub fn balance(&self, who: &Addr, denom: &str) -> u128 {
        let amount = self.app.wrap().query_balance(who, denom).unwrap().amount;
        Uint128::try_from(amount).unwrap().u128()
    }

    pub fn execute(
        &mut self,
        sender: &Addr,
        msg: &ExecuteMsg,
        funds: &[Coin],
    ) -> Result<AppResponse, String> {
        self.app
            .execute_contract(sender.clone(), self.contracts.red_bank.clone(), msg, funds)
            .map_err(|e| e.to_string())
    }

    /// Mints the coin to `user` and deposits it.
    pub fn deposit(&mut self, user: &Addr, amount: u128, denom: &str) {
        self.mint(user, vec![coin(amount, denom)]);
        self.execute(
            user,
            &ExecuteMsg::Deposit {
                account_id: None,
                on_behalf_of: None,
            },
            &[coin(amount, denom)],
        )
        .unwrap();
    }

    pub fn borrow(
        &mut self,
        user: &Addr,
        amount: u128,
        denom: &str,
    ) -> Result<AppResponse, String> {
        self.execute(
            user,
            &ExecuteMsg::Borrow {
                denom: denom.into(),
                amount: Uint128::new(amount),
                recipient: None,
            },
            &[],
        )
    }

    pub fn liquidate(
        &mut self,
        liquidator: &Addr,
        user: &Addr,
        collateral_denom: &str,
        funds: &[Coin],
    ) -> Result<AppResponse, String> {
        self.execute(
            liquidator,
            &ExecuteMsg::Liquidate {
                user: user.to_string(),
                collateral_denom: collateral_denom.into(),
                recipient: None,
            },
            funds,
        )
    }

    pub fn set_price(&mut self, denom: &str, price: &str) {
        let owner = self.contracts.owner.clone();
        let oracle = self.contracts.oracle.clone();
        set_prices(
            &mut self.app,
            &owner,
            &oracle,
            &[PriceUpdate {
                denom: denom.into(),
                price: dec(price),
                liquidation_price: None,
            }],
        )
        .unwrap();
    }

    pub fn query<T: DeserializeOwned>(&self, msg: &QueryMsg) -> T {
        self.query_on(&self.contracts.red_bank, msg).unwrap()
    }

    pub fn position(&self, user: &Addr) -> UserPositionResponse {
        self.query(&QueryMsg::UserPosition {
            user: user.to_string(),
            account_id: None,
        })
    }

    pub fn collateral(&self, user: &Addr, denom: &str) -> UserCollateralResponse {
        self.query(&QueryMsg::UserCollateral {
            user: user.to_string(),
            account_id: None,
            denom: denom.into(),
        })
    }

    pub fn debt(&self, user: &Addr, denom: &str) -> UserDebtResponse {
        self.query(&QueryMsg::UserDebt {
            user: user.to_string(),
            denom: denom.into(),
        })
    }

    /// A liquidator holding `coins`.
    pub fn liquidator(&mut self, coins: Vec<Coin>) -> Addr {
        let liquidator = self.addr("liquidator");
        self.mint(&liquidator, coins);
        liquidator
    }

    /// Executes `msg` on any contract, without funds.
    pub fn execute_on<T: Serialize + Debug>(
        &mut self,
        sender: &Addr,
        contract: &Addr,
        msg: &T,
    ) -> Result<AppResponse, String> {
        self.app
            .execute_contract(sender.clone(), contract.clone(), msg, &[])
            .map_err(|e| e.to_string())
    }

    /// Executes `msg` on `contract` as the owner of the deployed contracts.
    pub fn execute_as_owner<T: Serialize + Debug>(
        &mut self,
        contract: &Addr,
        msg: &T,
    ) -> Result<AppResponse, String> {
        let owner = self.contracts.owner.clone();
        self.execute_on(&owner, contract, msg)
    }

    /// Queries any contract.
    /// Adds or updates an asset's params, as the params contract's owner.
    pub fn update_asset_params(&mut self, params: AssetParams) -> Result<(), String> {
        let contract = self.contracts.params.clone();
        let msg =
            params_msg::ExecuteMsg::UpdateAssetParams(params_msg::AssetParamsUpdate::AddOrUpdate {
                params,
            });
        self.execute_as_owner(&contract, &msg).map(|_| ())
    }

    /// The params contract's params of `denom` (listed).
    pub fn asset_params_of(&self, denom: &str) -> AssetParams {
        let query = params_msg::QueryMsg::AssetParams {
            denom: denom.into(),
        };
        self.query_on::<Option<AssetParams>>(&self.contracts.params, &query)
            .unwrap()
            .unwrap_or_else(|| panic!("{denom} is not listed"))
    }

    pub fn query_on<T: DeserializeOwned>(
        &self,
        contract: &Addr,
        msg: &impl Serialize,
    ) -> Result<T, String> {
        self.app
            .wrap()
            .query_wasm_smart(contract, msg)
            .map_err(|e| e.to_string())
    }

    pub fn set_collateral_enabled(
        &mut self,
        user: &Addr,
        denom: &str,
        enable: bool,
    ) -> Result<AppResponse, String> {
        self.execute(
            user,
            &ExecuteMsg::UpdateAssetCollateralStatus {
                denom: denom.into(),
                enable,
            },
            &[],
        )
    }

    pub fn advance(&mut self, seconds: u64) {
        self.app.update_block(|b| {
            b.time = b.time.plus_seconds(seconds);
            b.height += 1;
        });
    }
}

/// The value of attribute `key` in the `wasm` event carrying `action`.
pub fn wasm_attr(res: &AppResponse, action: &str, key: &str) -> Option<String> {
    res.events
        .iter()
        .filter(|e| e.ty == "wasm")
        .find(|e| {
            e.attributes
                .iter()
                .any(|a| a.key == "action" && a.value == action)
        })
        .and_then(|e| e.attributes.iter().find(|a| a.key == key))
        .map(|a| a.value.clone())
}

/// The value of attribute `key` in the `liquidate` wasm event, which must carry it.
pub fn liquidate_attr(res: &AppResponse, key: &str) -> String {
    wasm_attr(res, "liquidate", key).unwrap()
}

/// Asserts that `result` failed with a message containing `expected`.
pub fn assert_err<T: std::fmt::Debug>(result: Result<T, String>, expected: &str) {
    let err = result.unwrap_err();
    assert!(err.contains(expected), "{err}");
}

/// The health factor at the liquidation threshold of a borrowing account.
pub fn liq_threshold_hf(position: &UserPositionResponse) -> Decimal {
    match &position.health_status {
        UserHealthStatus::Borrowing {
            liq_threshold_hf, ..
        } => *liq_threshold_hf,
        UserHealthStatus::NotBorrowing => panic!("not borrowing"),
    }
}

/// The fixture's borrower: 10,000 uatom deposited at price 10, 65,000 uusdc borrowed from a
/// lender's 200,000.
pub fn fixture_borrower(dn: &mut Devnet) -> Addr {
    let (_, borrower) = lender_and_borrower(dn, 200_000, 10_000);
    dn.borrow(&borrower, 65_000, USDC).unwrap();
    borrower
}

/// A lender with `lent` uusdc and a borrower with `collateral` uatom, both deposited; nothing
/// borrowed yet.
pub fn lender_and_borrower(dn: &mut Devnet, lent: u128, collateral: u128) -> (Addr, Addr) {
    let lender = dn.addr("lender");
    let borrower = dn.addr("borrower");
    dn.deposit(&lender, lent, USDC);
    dn.deposit(&borrower, collateral, ATOM);
    (lender, borrower)
}
