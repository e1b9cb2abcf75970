//! Which Mars the devnet runs, and on which chain's terms.
//!
//! - [`Flavor::Osmosis`]: mars-protocol/contracts v2.1 (Osmosis): the params contract has a
//!   target health factor, which caps each liquidation; `osmo` addresses, fees in `uosmo`.
//! - [`Flavor::Neutron`]: mars-protocol/core-contracts v2.2 (Neutron): no target health factor;
//!   each asset's params carry a close factor (0.9, as Mars's Neutron deployment sets it) that
//!   caps one liquidation at that share of the debt, and `withdraw_enabled` settings; `neutron`
//!   addresses, fees in `untrn`.

use std::fmt;
use std::str::FromStr;

use cosmwasm_std::Decimal;
use mars::msg::health::HealthQueryShape;
use mars::rule::LiquidationRule;

use crate::chain::{ChainConfig, FeeMarketParams};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    #[default]
    Osmosis,
    Neutron,
}

impl Flavor {
    pub const ALL: [Flavor; 2] = [Flavor::Osmosis, Flavor::Neutron];

    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Osmosis => "osmosis",
            Flavor::Neutron => "neutron",
        }
    }

    pub fn chain_id(self) -> &'static str {
        match self {
            Flavor::Osmosis => "devnet-1",
            Flavor::Neutron => "neutron-devnet-1",
        }
    }

    pub fn bech32_prefix(self) -> &'static str {
        match self {
            Flavor::Osmosis => "osmo",
            Flavor::Neutron => "neutron",
        }
    }

    /// The chain's own coin: fees are paid in it, and it is one of the Red Bank's markets.
    pub fn native_denom(self) -> &'static str {
        match self {
            Flavor::Osmosis => "uosmo",
            Flavor::Neutron => "untrn",
        }
    }

    /// The least gas price CheckTx takes: Osmosis's usual 0.025 uosmo; on Neutron the fee
    /// market's minimum base gas price, 0.0053 untrn.
    pub fn min_gas_price(self) -> Decimal {
        match self {
            Flavor::Osmosis => Decimal::permille(25),
            Flavor::Neutron => Decimal::from_ratio(53u128, 10_000u128),
        }
    }

    /// Neutron's fee market (a base gas price moving with block gas); Osmosis's devnet keeps
    /// its minimum gas price fixed.
    pub fn fee_market(self) -> Option<FeeMarketParams> {
        match self {
            Flavor::Osmosis => None,
            Flavor::Neutron => Some(FeeMarketParams::neutron()),
        }
    }

    /// The most gas one block takes: on Neutron its fee market's maximum block utilization
    /// (twice the target); the Osmosis devnet sets none.
    pub fn max_block_gas(self) -> Option<u64> {
        self.fee_market()
            .map(|market| market.target_block_gas.saturating_mul(2))
    }

    pub fn liquidation_rule(self) -> LiquidationRule {
        match self {
            Flavor::Osmosis => LiquidationRule::TargetHealthFactor,
            Flavor::Neutron => LiquidationRule::CloseFactor,
        }
    }

    /// How the health contract takes its queries: with the account's `kind` on contracts v2.1,
    /// without on core-contracts.
    pub fn health_query(self) -> HealthQueryShape {
        match self {
            Flavor::Osmosis => HealthQueryShape::WithKind,
            Flavor::Neutron => HealthQueryShape::WithoutKind,
        }
    }

    /// The target health factor of the params contract (Osmosis's 1.05), if the line has one.
    pub fn target_health_factor(self) -> Option<Decimal> {
        match self {
            Flavor::Osmosis => Some(Decimal::percent(105)),
            Flavor::Neutron => None,
        }
    }

    /// Every asset's close factor, if the line has one.
    pub fn close_factor(self) -> Option<Decimal> {
        match self {
            Flavor::Osmosis => None,
            Flavor::Neutron => Some(Decimal::percent(90)),
        }
    }

    /// `withdraw_enabled` of the asset params' credit-manager and Red Bank settings, if the
    /// line has it.
    pub fn withdraw_enabled(self) -> Option<bool> {
        match self {
            Flavor::Osmosis => None,
            Flavor::Neutron => Some(true),
        }
    }

    /// `chain` with this flavor's chain id, prefix, fee denom and gas price.
    pub fn chain_config(self, chain: ChainConfig) -> ChainConfig {
        ChainConfig {
            chain_id: self.chain_id().into(),
            bech32_prefix: self.bech32_prefix().into(),
            fee_denom: self.native_denom().into(),
            min_gas_price: self.min_gas_price(),
            fee_market: self.fee_market(),
            max_block_gas: self.max_block_gas(),
            ..chain
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|flavor| flavor.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not a flavor (osmosis or neutron)"))
    }
}
