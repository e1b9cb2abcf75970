//! The Mars Red Bank: positions in its `collaterals`/`debts` maps, markets in the Red Bank,
//! risk params in the params contract, prices in the oracle.

pub mod events;
pub mod read;
pub mod scan;

use cosmrs::{AccountId, Any};
use cosmwasm_std::Coin;
use mars::rule::LiquidationRule;
use redline_chain::{execute_contract_msg, BlockResults, ChainClient, ChainError};

pub use events::{BlockTouches, ACCOUNT_ATTRIBUTES, MARKET_ACTIONS, POSITION_ACTIONS};
pub use read::{
    asset_params, base_decimals, markets, prices, target_health_factor, BaseDecimalsError,
};

use crate::snapshot::chain_error;
use crate::{
    AccountKey, AccountPosition, Discovery, LiquidationOrder, MarketInputs, MarketSnapshot,
    Protocol, ProtocolKind, ReadError, ScanSettings,
};

/// The Mars contracts a Red Bank liquidation bot talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedBankContracts {
    pub red_bank: String,
    pub oracle: String,
    pub params: String,
}

impl RedBankContracts {
    pub fn from_manifest(contracts: &mars::manifest::Contracts) -> Self {
        RedBankContracts {
            red_bank: contracts.red_bank.clone(),
            oracle: contracts.oracle.clone(),
            params: contracts.params.clone(),
        }
    }
}

/// The Red Bank of one deployment, read through `client`.
#[derive(Debug, Clone)]
pub struct RedBank<C> {
    pub client: C,
    pub contracts: RedBankContracts,
    pub rule: LiquidationRule,
    /// Decimals of the oracle's base denom (values in it: `10^decimals` is one USD).
    pub base_decimals: u32,
}

impl<C: ChainClient> RedBank<C> {
    /// The Red Bank a manifest describes, its rule included.
    pub fn from_manifest(
        client: C,
        manifest: &mars::manifest::Manifest,
        base_decimals: u32,
    ) -> Self {
        let contracts = RedBankContracts::from_manifest(&manifest.contracts);
        Self::new(client, contracts, manifest.liquidation_rule, base_decimals)
    }

    pub fn new(
        client: C,
        contracts: RedBankContracts,
        rule: LiquidationRule,
        base_decimals: u32,
    ) -> Self {
        RedBank {
            client,
            contracts,
            rule,
            base_decimals,
        }
    }
}

impl<C: ChainClient> RedBank<C> {
    /// The market-wide inputs as the contracts answer them at `height` (`None`: the node's
    /// latest state), without the block's time.
    pub async fn read_inputs(&self, height: Option<u64>) -> Result<MarketInputs, ReadError> {
        read::market_inputs(self, height).await
    }
}

impl<C: ChainClient> Protocol for RedBank<C> {
    type Discovery = Discovery;
    type Snapshot = MarketSnapshot;
    type Position = AccountPosition;
    type Touches = BlockTouches;
    type Order = LiquidationOrder;

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::RedBank
    }

    async fn discover(
        &self,
        settings: ScanSettings,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Discovery, ReadError> {
        scan::scan_debtors(self, settings, progress).await
    }

    /// Markets, prices, params and the block's time: the health and liquidation math's inputs.
    async fn read_snapshot(&self, height: Option<u64>) -> Result<MarketSnapshot, ReadError> {
        let height = match height {
            Some(height) => height,
            None => self
                .client
                .latest_height()
                .await
                .map_err(chain_error("latest height"))?,
        };
        read::snapshot(self, height).await
    }

    async fn read_position(
        &self,
        account: &AccountKey,
        height: Option<u64>,
    ) -> Result<AccountPosition, ReadError> {
        match account {
            AccountKey::Address(address) => {
                read::position(&self.client, &self.contracts.red_bank, address, height).await
            }
            AccountKey::CreditAccount(_) => Err(ReadError::NotAnAccount {
                account: account.to_string(),
                protocol: ProtocolKind::RedBank,
            }),
        }
    }

    fn touched(&self, results: &BlockResults) -> BlockTouches {
        events::touches(results, &self.contracts.red_bank)
    }

    fn liquidate_msg(
        &self,
        liquidator: &AccountId,
        order: &LiquidationOrder,
    ) -> Result<Any, ChainError> {
        liquidate_msg(&self.contracts.red_bank, liquidator, order)
    }
}

/// `{"liquidate":{"user":…,"collateral_denom":…,"recipient":null}}` to `red_bank`, with the
/// debt coin attached.
pub fn liquidate_msg(
    red_bank: &str,
    liquidator: &AccountId,
    order: &LiquidationOrder,
) -> Result<Any, ChainError> {
    // Mars clients send an explicit null recipient (the sender receives).
    let msg = serde_json::json!({
        "liquidate": {
            "user": order.account.as_string(),
            "collateral_denom": order.collateral_denom,
            "recipient": null,
        }
    });
    execute_contract_msg(
        liquidator,
        red_bank,
        &msg,
        &[Coin::new(order.debt_to_send, order.debt_denom.as_str())],
    )
}
