//! The devnet's contracts, written by us from the public Mars sources and run in cw-multi-test:
//! Mars's Red Bank, oracle, params and address provider, Rover's credit manager, health
//! contract and account NFT (Mars JSON, storage namespaces and error messages) and a
//! constant-product swap contract.
//!
//! - [`new_app`] builds the chain state machine ([`DevnetApp`]) with bech32 addresses;
//! - [`deploy`] stores, instantiates and configures every contract from a [`DeployConfig`];
//! - [`seed_positions`] writes many borrowers straight into the Red Bank's storage (genesis
//!   style, bank balances kept consistent) — 100,000 accounts in seconds;
//! - [`seed_credit_accounts`] does the same for Rover credit accounts (NFT, credit manager and
//!   Red Bank storage);
//! - [`set_prices`] moves oracle prices as the oracle's owner.

pub mod account_nft;
pub mod address_provider;
pub mod credit_manager;
mod deploy;
pub mod health;
pub mod oracle;
pub mod params;
pub mod red_bank;
mod seed;
mod seed_credit;
pub mod support;
pub mod swapper;

use cosmwasm_std::testing::MockStorage;
use cosmwasm_std::{BlockInfo, Empty};
use cw_multi_test::{
    no_init, App, AppBuilder, BankKeeper, Contract, ContractWrapper, MockApiBech32,
};

pub use deploy::{
    asset_params, deploy, set_prices, AssetConfig, DeployConfig, DeployError, DeployedContracts,
    RoverContracts, SwapConfig,
};
pub use seed::{seed_positions, SeedError, SeedPosition, SeedSummary};
pub use seed_credit::{seed_credit_accounts, CreditAccountSeed};

/// The cw-multi-test app the devnet's contracts run in: default modules, bech32 addresses, and
/// any storage (`MockStorage` in tests; the node brings its own).
pub type DevnetApp<S = MockStorage> = App<BankKeeper, MockApiBech32, S>;

/// A fresh in-memory app whose addresses carry `bech32_prefix` (e.g. `osmo`), starting at `block`.
pub fn new_app(bech32_prefix: &str, block: BlockInfo) -> DevnetApp {
    // MockApiBech32 wants a 'static prefix; an app lives as long as the process anyway.
    let prefix: &'static str = Box::leak(bech32_prefix.to_string().into_boxed_str());
    AppBuilder::new()
        .with_api(MockApiBech32::new(prefix))
        .with_block(block)
        .build(no_init)
}

/// Defines one constructor per contract module, boxing that module's `execute`, `instantiate`
/// and `query` entry points for `App::store_code` (a module cannot be passed to a function).
macro_rules! contract_constructors {
    ($($constructor:ident => $module:ident),+ $(,)?) => {
        $(
            pub fn $constructor() -> Box<dyn Contract<Empty>> {
                Box::new(ContractWrapper::new(
                    $module::execute,
                    $module::instantiate,
                    $module::query,
                ))
            }
        )+
    };
}

/// The health contract as core-contracts (Neutron) runs it: queries without `kind`, answers
/// with perps fields.
pub fn core_health_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        health::execute,
        health::instantiate,
        health::query_core,
    ))
}

contract_constructors! {
    account_nft_contract => account_nft,
    credit_manager_contract => credit_manager,
    health_contract => health,
    address_provider_contract => address_provider,
    oracle_contract => oracle,
    params_contract => params,
    red_bank_contract => red_bank,
    swapper_contract => swapper,
}
