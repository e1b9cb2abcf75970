//! What a protocol reads: the market-wide inputs of one block and one account's stored
//! position, and why a read can fail.
//!
//! Interest accrues between a read and the inclusion of a liquidation, so underlying amounts
//! are computed from the scaled ones for a chosen block time ([`AccountPosition::holdings_at`]),
//! with the contract's own index math.

use std::collections::BTreeMap;

use cosmwasm_std::Decimal;
use mars::math::interest::{underlying_debt_amount, underlying_liquidity_amount};
use mars::math::MathError;
use mars::msg::red_bank::{Collateral, Debt, UserCollateralResponse, UserDebtResponse};
use mars::rule::{LiquidationRule, RepayLimit};
use mars::types::{AccountPositions, AssetParams, DenomPosition, Market};
use mars::value::PriceBook;
use redline_chain::ChainError;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading {what}: {source}")]
    Chain {
        what: String,
        #[source]
        source: Box<ChainError>,
    },
    #[error("account {account}: {source}")]
    Math {
        account: String,
        #[source]
        source: MathError,
    },
    #[error("the chain has produced no block yet")]
    NoBlockYet,
    #[error("reading {what}: {message}")]
    Data { what: String, message: String },
    #[error("{account} is not an account of the {protocol} protocol")]
    NotAnAccount {
        account: String,
        protocol: mars::types::ProtocolKind,
    },
    #[error("account {account} holds `{denom}`, which has no Red Bank market")]
    UnknownMarket { account: String, denom: String },
}

impl ReadError {
    /// Transport trouble that may pass; everything else is about the data.
    pub fn is_transient(&self) -> bool {
        match self {
            ReadError::Chain { source, .. } => source.is_transient(),
            ReadError::NoBlockYet => true,
            _ => false,
        }
    }

    /// The chain has produced no block yet: callers wait quietly (debug) and ask again;
    /// the liquidator says so once per process, at info.
    pub fn is_no_block_yet(&self) -> bool {
        matches!(self, ReadError::NoBlockYet)
    }
}

/// Names what was being read; the chain having no block yet is [`ReadError::NoBlockYet`].
pub fn chain_error(what: impl Into<String>) -> impl FnOnce(ChainError) -> ReadError {
    let what = what.into();
    move |source| {
        if source.is_no_block_yet() {
            return ReadError::NoBlockYet;
        }
        ReadError::Chain {
            what,
            source: Box::new(source),
        }
    }
}

/// Market-wide inputs of the health and liquidation math at one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketSnapshot {
    pub height: u64,
    /// Identifies the prices, params and target health factor (not the height): verdicts on an
    /// account made under one fingerprint hold while it is unchanged.
    pub fingerprint: u64,
    /// Header time of the block, in seconds (what the contracts see as `env.block.time`).
    pub block_time_secs: u64,
    pub markets: BTreeMap<String, Market>,
    /// Prices the Red Bank liquidates with (oracle kind `liquidation`).
    pub liquidation_prices: BTreeMap<String, Decimal>,
    /// Prices everything is valued at (oracle kind `default`).
    pub prices: PriceBook,
    pub params: BTreeMap<String, AssetParams>,
    /// How the deployment caps one liquidation.
    pub liquidation_rule: LiquidationRule,
    /// The params contract's target health factor (read only under that rule; 0 otherwise).
    pub target_health_factor: Decimal,
}

impl MarketSnapshot {
    /// The cap on one liquidation repaying `debt_denom` under the deployment's rule.
    pub fn repay_limit(&self, debt_denom: &str) -> Result<RepayLimit, MathError> {
        let params = self
            .params
            .get(debt_denom)
            .ok_or_else(|| MathError::MissingParams {
                denom: debt_denom.to_string(),
            })?;
        self.liquidation_rule
            .repay_limit(self.target_health_factor, params)
    }

    pub fn market(&self, account: &str, denom: &str) -> Result<&Market, ReadError> {
        self.markets
            .get(denom)
            .ok_or_else(|| ReadError::UnknownMarket {
                account: account.to_string(),
                denom: denom.to_string(),
            })
    }
}

/// An account's Red Bank holdings as stored (scaled), read at `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPosition {
    pub account: String,
    pub height: u64,
    pub collaterals: Vec<UserCollateralResponse>,
    pub debts: Vec<UserDebtResponse>,
}

impl AccountPosition {
    pub fn has_debt(&self) -> bool {
        self.debts.iter().any(|d| !d.amount_scaled.is_zero())
    }

    /// The position as the Red Bank stores it (scaled amounts by denom), zero entries left out:
    /// what the collector indexes.
    pub fn stored(self) -> AccountPositions {
        let mut stored = AccountPositions::new(self.account);
        for c in self.collaterals {
            if !c.amount_scaled.is_zero() {
                let collateral = Collateral {
                    amount_scaled: c.amount_scaled,
                    enabled: c.enabled,
                };
                stored.collaterals.insert(c.denom, collateral);
            }
        }
        for d in self.debts {
            if !d.amount_scaled.is_zero() {
                let debt = Debt {
                    amount_scaled: d.amount_scaled,
                    uncollateralized: d.uncollateralized,
                };
                stored.debts.insert(d.denom, debt);
            }
        }
        stored
    }

    /// Underlying holdings at block time `timestamp` (seconds): collateral truncated and debt
    /// ceiled from the scaled amounts with the markets' indexes brought to that time, as the
    /// Red Bank computes them when it executes at that time.
    pub fn holdings_at(
        &self,
        snapshot: &MarketSnapshot,
        timestamp: u64,
    ) -> Result<Vec<DenomPosition>, ReadError> {
        let math = |source| ReadError::Math {
            account: self.account.clone(),
            source,
        };
        let mut holdings: BTreeMap<&str, DenomPosition> = BTreeMap::new();
        for collateral in &self.collaterals {
            if collateral.amount_scaled.is_zero() {
                continue;
            }
            let market = snapshot.market(&self.account, &collateral.denom)?;
            // A timestamp before the market's last update would be the contract's error too;
            // it cannot happen for a block after the snapshot.
            let at = timestamp.max(market.indexes_last_updated);
            let amount =
                underlying_liquidity_amount(collateral.amount_scaled, market, at).map_err(math)?;
            let line = holding(&mut holdings, &collateral.denom);
            line.collateral_amount = amount;
            line.collateral_enabled = collateral.enabled;
        }
        for debt in &self.debts {
            if debt.amount_scaled.is_zero() {
                continue;
            }
            let market = snapshot.market(&self.account, &debt.denom)?;
            let amount =
                underlying_debt_amount(debt.amount_scaled, market, timestamp).map_err(math)?;
            let line = holding(&mut holdings, &debt.denom);
            line.debt_amount = amount;
            line.uncollateralized_debt = debt.uncollateralized;
        }
        Ok(holdings.into_values().collect())
    }
}

/// The line of `denom` among `holdings`, added empty on first use.
fn holding<'a, 'm>(
    holdings: &'m mut BTreeMap<&'a str, DenomPosition>,
    denom: &'a str,
) -> &'m mut DenomPosition {
    holdings.entry(denom).or_insert_with(|| DenomPosition {
        denom: denom.to_string(),
        ..DenomPosition::default()
    })
}
