//! Deploying and configuring the devnet's contracts in one call.

use cosmwasm_std::{Addr, Coin, Decimal, StdError, Storage, Uint128};
use cw_multi_test::{AppResponse, BankSudo, Executor, SudoMsg};
use mars::manifest::Contracts;
use mars::msg::account_nft::{self, OwnershipAction};
use mars::msg::address_provider::{self, MarsAddressType};
use mars::msg::credit_manager::{self, ConfigUpdates};
use mars::msg::health;
use mars::msg::oracle::{self, PriceUpdate};
use mars::msg::params::{self as params_msg, AssetParamsUpdate};
use mars::msg::red_bank::{self, CreateOrUpdateConfig, InitOrUpdateAssetParams};
use mars::msg::swapper;
use mars::types::{AssetParams, CmSettings, InterestRateModel, LiquidationBonus, RedBankSettings};

use super::DevnetApp;
use serde::Serialize;
use std::fmt::Debug;

/// One listed asset: its market, risk params and starting price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetConfig {
    pub denom: String,
    pub decimals: u8,
    /// Value of one smallest unit, in the oracle's base denom.
    pub price: Decimal,
    /// A separate price for liquidations (the oracle's `liquidation` kind), if any.
    pub liquidation_price: Option<Decimal>,
    /// Risk params; `params.denom` must equal `denom`.
    pub params: AssetParams,
    pub reserve_factor: Decimal,
    pub interest_rate_model: InterestRateModel,
}

/// Constant-product pools for every pair of listed assets, balanced at the oracle prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapConfig {
    /// Fee on the offered coin, in [0, 1).
    pub fee: Decimal,
    /// Value (in the oracle's base denom) of each side of each pool.
    pub side_value: Uint128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployConfig {
    /// Denom the oracle quotes prices in (need not be listed).
    pub oracle_base_denom: String,
    /// contracts v2.1 (Osmosis): the target health factor of liquidations, in [1, 2]. `None`
    /// deploys core-contracts (Neutron) params: no target health factor, and each asset's
    /// params must carry its close factor and `withdraw_enabled` settings.
    pub target_health_factor: Option<Decimal>,
    pub assets: Vec<AssetConfig>,
    pub swap: Option<SwapConfig>,
    /// Where protocol fees and reserve-factor rewards go; a fresh address when `None`.
    pub rewards_collector: Option<Addr>,
    /// Also deploy Rover: the credit manager, health contract and account NFT.
    pub credit_accounts: bool,
}

/// Rover's contracts, wired to each other and to the Red Bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoverContracts {
    pub credit_manager: Addr,
    pub health: Addr,
    pub account_nft: Addr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployedContracts {
    pub owner: Addr,
    pub address_provider: Addr,
    pub red_bank: Addr,
    pub oracle: Addr,
    pub params: Addr,
    pub rewards_collector: Addr,
    pub swapper: Option<Addr>,
    pub rover: Option<RoverContracts>,
}

impl DeployedContracts {
    /// The `contracts` section of the manifest services read.
    pub fn manifest_contracts(&self) -> Contracts {
        Contracts {
            red_bank: self.red_bank.to_string(),
            oracle: self.oracle.to_string(),
            params: self.params.to_string(),
            rewards_collector: self.rewards_collector.to_string(),
            swapper: self.swapper.as_ref().map(ToString::to_string),
            credit_manager: self
                .rover
                .as_ref()
                .map(|rover| rover.credit_manager.to_string()),
            address_provider: Some(self.address_provider.to_string()),
            health: self.rover.as_ref().map(|rover| rover.health.to_string()),
            account_nft: self
                .rover
                .as_ref()
                .map(|rover| rover.account_nft.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("deploy config: {0}")]
    Config(String),
    #[error("{step}: {source}")]
    Step { step: String, source: StdError },
}

trait StepContext<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, DeployError>;
}

impl<T> StepContext<T> for Result<T, StdError> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, DeployError> {
        self.map_err(|source| DeployError::Step {
            step: step(),
            source,
        })
    }
}

/// Asset params for the Red Bank: enabled for deposits and borrows, not whitelisted in the
/// credit manager.
pub fn asset_params(
    denom: &str,
    max_loan_to_value: Decimal,
    liquidation_threshold: Decimal,
    liquidation_bonus: LiquidationBonus,
    protocol_liquidation_fee: Decimal,
    deposit_cap: Uint128,
) -> AssetParams {
    AssetParams {
        denom: denom.to_string(),
        credit_manager: CmSettings {
            withdraw_enabled: None,
            whitelisted: false,
            hls: None,
        },
        red_bank: RedBankSettings {
            withdraw_enabled: None,
            deposit_enabled: true,
            borrow_enabled: true,
        },
        max_loan_to_value,
        liquidation_threshold,
        liquidation_bonus,
        protocol_liquidation_fee,
        deposit_cap,
        close_factor: None,
        reserve_factor: None,
        interest_rate_model: None,
    }
}

fn bech32_prefix(addr: &Addr) -> Result<String, DeployError> {
    addr.as_str()
        .rsplit_once('1')
        .map(|(hrp, _)| hrp.to_string())
        .ok_or_else(|| DeployError::Config(format!("owner {addr} is not a bech32 address")))
}

fn validate(cfg: &DeployConfig) -> Result<(), DeployError> {
    if cfg.assets.is_empty() {
        return Err(DeployError::Config(
            "assets: at least one asset is needed".into(),
        ));
    }
    for (i, asset) in cfg.assets.iter().enumerate() {
        if asset.params.denom != asset.denom {
            return Err(DeployError::Config(format!(
                "assets[{i}].params.denom is {} but the asset is {}",
                asset.params.denom, asset.denom
            )));
        }
        if cfg.assets[..i].iter().any(|a| a.denom == asset.denom) {
            return Err(DeployError::Config(format!(
                "assets[{i}]: {} is listed twice",
                asset.denom
            )));
        }
    }
    Ok(())
}

/// Stores and instantiates the address provider, oracle, params, Red Bank, (with `cfg.swap`)
/// the swap contract and (with `cfg.credit_accounts`) Rover, all owned by `owner`; lists every
/// asset (params, market, price) and funds the swap pools by minting.
pub fn deploy<S: Storage>(
    app: &mut DevnetApp<S>,
    owner: &Addr,
    cfg: &DeployConfig,
) -> Result<DeployedContracts, DeployError> {
    validate(cfg)?;
    let prefix = bech32_prefix(owner)?;
    let rewards_collector = cfg
        .rewards_collector
        .clone()
        .unwrap_or_else(|| app.api().addr_make("mars-rewards-collector"));
    let mut deployer = Deployer { app, owner };
    let contracts = deployer.instantiate_all(cfg, prefix, rewards_collector)?;
    deployer.register_addresses(&contracts)?;
    if let Some(rover) = &contracts.rover {
        deployer.connect_rover(rover, &contracts.rewards_collector)?;
    }
    deployer.list_assets(&contracts, &cfg.assets)?;
    if let (Some(swap), Some(swapper)) = (&cfg.swap, &contracts.swapper) {
        deployer.fund_pools(swapper, swap, &cfg.assets)?;
    }
    Ok(contracts)
}

/// The app and the owner every deploy step acts as.
struct Deployer<'a, S: Storage> {
    app: &'a mut DevnetApp<S>,
    owner: &'a Addr,
}

impl<S: Storage> Deployer<'_, S> {
    fn instantiate<T: Serialize>(
        &mut self,
        code_id: u64,
        msg: &T,
        label: &str,
        step: &str,
    ) -> Result<Addr, DeployError> {
        self.app
            .instantiate_contract(
                code_id,
                self.owner.clone(),
                msg,
                &[],
                label,
                Some(self.owner.to_string()),
            )
            .step(|| format!("instantiate {step}"))
    }

    fn execute<T: Serialize + Debug>(
        &mut self,
        contract: &Addr,
        msg: &T,
        funds: &[Coin],
    ) -> Result<AppResponse, StdError> {
        self.app
            .execute_contract(self.owner.clone(), contract.clone(), msg, funds)
    }

    /// Stores the Mars contracts' code first, then instantiates them (code ids and addresses
    /// follow that order), then the swapper if there is one.
    fn instantiate_all(
        &mut self,
        cfg: &DeployConfig,
        prefix: String,
        rewards_collector: Addr,
    ) -> Result<DeployedContracts, DeployError> {
        let owner = self.owner.to_string();
        let address_provider_code = self.app.store_code(super::address_provider_contract());
        let oracle_code = self.app.store_code(super::oracle_contract());
        let params_code = self.app.store_code(super::params_contract());
        let red_bank_code = self.app.store_code(super::red_bank_contract());

        let address_provider = self.instantiate(
            address_provider_code,
            &address_provider::InstantiateMsg {
                owner: owner.clone(),
                prefix,
            },
            "mars-address-provider",
            "address provider",
        )?;
        let oracle = self.instantiate(
            oracle_code,
            &oracle::InstantiateMsg {
                owner: owner.clone(),
                base_denom: cfg.oracle_base_denom.clone(),
                custom_init: None,
            },
            "mars-oracle",
            "oracle",
        )?;
        let params = self.instantiate(
            params_code,
            &params_msg::InstantiateMsg {
                owner: owner.clone(),
                address_provider: address_provider.to_string(),
                target_health_factor: cfg.target_health_factor,
                // No perp markets on the devnet.
                max_perp_params: cfg.target_health_factor.is_none().then_some(0),
            },
            "mars-params",
            "params",
        )?;
        let red_bank = self.instantiate(
            red_bank_code,
            &red_bank::InstantiateMsg {
                owner: owner.clone(),
                config: CreateOrUpdateConfig {
                    address_provider: Some(address_provider.to_string()),
                },
            },
            "mars-red-bank",
            "red bank",
        )?;
        let swapper = match &cfg.swap {
            Some(_) => {
                let code = self.app.store_code(super::swapper_contract());
                let msg = swapper::InstantiateMsg { owner };
                Some(self.instantiate(code, &msg, "redline-swapper", "swapper")?)
            }
            None => None,
        };
        let mut contracts = DeployedContracts {
            owner: self.owner.clone(),
            address_provider,
            red_bank,
            oracle,
            params,
            rewards_collector,
            swapper,
            rover: None,
        };
        if cfg.credit_accounts {
            let core_contracts = cfg.target_health_factor.is_none();
            contracts.rover = Some(self.instantiate_rover(&contracts, core_contracts)?);
        }
        Ok(contracts)
    }

    /// The health contract, credit manager and account NFT, not yet connected; as
    /// core-contracts (Neutron) runs them when `core`. The devnet has no zapper or incentives
    /// contract: the credit manager is given addresses it never calls for the actions the
    /// devnet serves.
    fn instantiate_rover(
        &mut self,
        contracts: &DeployedContracts,
        core: bool,
    ) -> Result<RoverContracts, DeployError> {
        let owner = self.owner.to_string();
        let health_code = self.app.store_code(if core {
            super::core_health_contract()
        } else {
            super::health_contract()
        });
        let credit_manager_code = self.app.store_code(super::credit_manager_contract());
        let account_nft_code = self.app.store_code(super::account_nft_contract());
        let health = self.instantiate(
            health_code,
            &health::InstantiateMsg {
                owner: owner.clone(),
                credit_manager: None,
            },
            "mars-rover-health",
            "health contract",
        )?;
        let api = self.app.api();
        let placeholder = |name: &str| api.addr_make(name).to_string();
        let swapper = match &contracts.swapper {
            Some(swapper) => swapper.to_string(),
            None => placeholder("mars-swapper"),
        };
        let credit_manager_msg = credit_manager::InstantiateMsg {
            owner: owner.clone(),
            red_bank: contracts.red_bank.to_string(),
            oracle: contracts.oracle.to_string(),
            max_unlocking_positions: Uint128::new(10),
            max_slippage: Decimal::percent(20),
            swapper,
            zapper: placeholder("mars-zapper"),
            health_contract: health.to_string(),
            params: contracts.params.to_string(),
            incentives: placeholder("mars-incentives"),
            // No perp markets on the devnet.
            perps_lb_ratio: core.then(Decimal::zero),
        };
        let credit_manager = self.instantiate(
            credit_manager_code,
            &credit_manager_msg,
            "mars-credit-manager",
            "credit manager",
        )?;
        let account_nft = self.instantiate(
            account_nft_code,
            &account_nft::InstantiateMsg {
                max_value_for_burn: Uint128::new(1_000_000),
                health_contract: Some(health.to_string()),
                credit_manager_contract: Some(credit_manager.to_string()),
                name: "mars-accounts".into(),
                symbol: "MACC".into(),
                minter: owner,
            },
            "mars-account-nft",
            "account nft",
        )?;
        Ok(RoverContracts {
            credit_manager,
            health,
            account_nft,
        })
    }

    /// As Mars deploys Rover: the NFT's minter role is proposed to the credit manager, which
    /// accepts it when given the NFT, then opens the rewards collector's account; the health
    /// contract learns the credit manager.
    fn connect_rover(
        &mut self,
        rover: &RoverContracts,
        rewards_collector: &Addr,
    ) -> Result<(), DeployError> {
        let propose =
            account_nft::ExecuteMsg::UpdateOwnership(OwnershipAction::TransferOwnership {
                new_owner: rover.credit_manager.to_string(),
                expiry: None,
            });
        self.execute(&rover.account_nft, &propose, &[])
            .step(|| "propose the credit manager as NFT minter".into())?;
        let updates = ConfigUpdates {
            account_nft: Some(rover.account_nft.to_string()),
            rewards_collector: Some(rewards_collector.to_string()),
            ..ConfigUpdates::default()
        };
        self.execute(
            &rover.credit_manager,
            &credit_manager::ExecuteMsg::UpdateConfig { updates },
            &[],
        )
        .step(|| "configure the credit manager".into())?;
        let health_config = health::ExecuteMsg::UpdateConfig {
            credit_manager: rover.credit_manager.to_string(),
        };
        self.execute(&rover.health, &health_config, &[])
            .step(|| "configure the health contract".into())?;
        Ok(())
    }

    fn register_addresses(&mut self, contracts: &DeployedContracts) -> Result<(), DeployError> {
        let mut addresses = vec![
            (MarsAddressType::RedBank, &contracts.red_bank),
            (MarsAddressType::Oracle, &contracts.oracle),
            (MarsAddressType::Params, &contracts.params),
            (
                MarsAddressType::RewardsCollector,
                &contracts.rewards_collector,
            ),
        ];
        if let Some(swapper) = &contracts.swapper {
            addresses.push((MarsAddressType::Swapper, swapper));
        }
        if let Some(rover) = &contracts.rover {
            addresses.push((MarsAddressType::CreditManager, &rover.credit_manager));
        }
        for (address_type, address) in addresses {
            self.execute(
                &contracts.address_provider,
                &address_provider::ExecuteMsg::SetAddress {
                    address_type,
                    address: address.to_string(),
                },
                &[],
            )
            .step(|| format!("set address {address_type}"))?;
        }
        Ok(())
    }

    /// Prices all assets in one message, then gives each its params and its market.
    fn list_assets(
        &mut self,
        contracts: &DeployedContracts,
        assets: &[AssetConfig],
    ) -> Result<(), DeployError> {
        let prices = assets
            .iter()
            .map(|a| PriceUpdate {
                denom: a.denom.clone(),
                price: a.price,
                liquidation_price: a.liquidation_price,
            })
            .collect();
        self.execute(
            &contracts.oracle,
            &oracle::ExecuteMsg::SetPrices { prices },
            &[],
        )
        .step(|| "set prices".into())?;
        for asset in assets {
            self.execute(
                &contracts.params,
                &params_msg::ExecuteMsg::UpdateAssetParams(AssetParamsUpdate::AddOrUpdate {
                    params: asset.params.clone(),
                }),
                &[],
            )
            .step(|| format!("asset params of {}", asset.denom))?;
            self.execute(
                &contracts.red_bank,
                &red_bank::ExecuteMsg::InitAsset {
                    denom: asset.denom.clone(),
                    params: InitOrUpdateAssetParams {
                        reserve_factor: Some(asset.reserve_factor),
                        interest_rate_model: Some(asset.interest_rate_model.clone()),
                    },
                },
                &[],
            )
            .step(|| format!("red bank market of {}", asset.denom))?;
        }
        Ok(())
    }

    /// One pool per pair of assets, funded with coins minted to the owner.
    fn fund_pools(
        &mut self,
        swapper: &Addr,
        swap: &SwapConfig,
        assets: &[AssetConfig],
    ) -> Result<(), DeployError> {
        for (i, a) in assets.iter().enumerate() {
            for b in &assets[i + 1..] {
                let denoms = [a.denom.clone(), b.denom.clone()];
                let pool = format!("{}/{}", a.denom, b.denom);
                self.execute(
                    swapper,
                    &swapper::ExecuteMsg::CreatePool {
                        denoms: denoms.clone(),
                        fee: swap.fee,
                    },
                    &[],
                )
                .step(|| format!("create pool {pool}"))?;
                let reserves = pool_reserves(swap, [a, b])?;
                self.app
                    .sudo(SudoMsg::Bank(BankSudo::Mint {
                        to_address: self.owner.to_string(),
                        amount: reserves.clone(),
                    }))
                    .step(|| format!("mint pool reserves {pool}"))?;
                self.execute(
                    swapper,
                    &swapper::ExecuteMsg::ProvideLiquidity { denoms },
                    &reserves,
                )
                .step(|| format!("fund pool {pool}"))?;
            }
        }
        Ok(())
    }
}

/// Both sides of a pool worth `swap.side_value` each at the oracle prices, sorted by denom.
fn pool_reserves(swap: &SwapConfig, pair: [&AssetConfig; 2]) -> Result<Vec<Coin>, DeployError> {
    let mut reserves = Vec::new();
    for asset in pair {
        let amount = swap
            .side_value
            .checked_div_floor(asset.price)
            .map_err(|e| DeployError::Config(format!("pool side of {}: {e}", asset.denom)))?;
        reserves.push(Coin::new(amount, asset.denom.clone()));
    }
    reserves.sort_by(|x, y| x.denom.cmp(&y.denom));
    Ok(reserves)
}

/// Moves oracle prices as the oracle's owner (one `set_prices` message).
pub fn set_prices<S: Storage>(
    app: &mut DevnetApp<S>,
    owner: &Addr,
    oracle: &Addr,
    prices: &[PriceUpdate],
) -> Result<AppResponse, StdError> {
    app.execute_contract(
        owner.clone(),
        oracle.clone(),
        &oracle::ExecuteMsg::SetPrices {
            prices: prices.to_vec(),
        },
        &[],
    )
}
