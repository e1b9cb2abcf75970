//! The lending protocols redline liquidates, behind one seam.
//!
//! A [`Protocol`] reads what the services need from one lending product's contracts: every
//! account with debt (a discovery scan of raw state), the product-wide state of a block, one
//! account's stored form, what a block's transactions touched, and the message that
//! liquidates an account. Two implement it: the Red Bank ([`RedBank`]: addresses, a
//! [`MarketSnapshot`], [`AccountPosition`]s, `liquidate`) and Rover's credit accounts
//! ([`rover::Rover`]: numeric ids, the credit manager's debt totals, stored credit accounts,
//! `update_credit_account`). The math on what they read is pure and lives in `mars`; jobs
//! carry their [`ProtocolKind`] and the services dispatch once per job. A new lending product
//! is a new implementation (and a devnet contract and scenario), not edits across the
//! services.

pub mod red_bank;
pub mod rover;
mod snapshot;

use std::future::Future;

use cosmrs::{AccountId, Any};
use futures::StreamExt as _;
use mars::types::AccountPositions;
use redline_chain::{BlockResults, ChainError};

pub use mars::types::{AccountKey, ProtocolKind};
pub use red_bank::read::MarketInputs;
pub use red_bank::scan::{Discovery, ScanSettings};
pub use red_bank::{BlockTouches, RedBank, RedBankContracts};
pub use snapshot::{chain_error, AccountPosition, MarketSnapshot, ReadError};

/// What executing one Red Bank liquidation takes: the account, the debt coin sent (and
/// repaid), and the collateral denom to seize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidationOrder {
    pub account: AccountKey,
    pub debt_denom: String,
    pub debt_to_send: cosmwasm_std::Uint128,
    pub collateral_denom: String,
}

/// One lending product's contracts, as the services see them. Each product reads its own
/// shapes (the associated types); the math on them is pure and lives in `mars`.
pub trait Protocol: Send + Sync {
    /// Every account with debt, as one discovery scan finds it.
    type Discovery: Send;
    /// The product-wide state its health math reads at a block.
    type Snapshot: Send;
    /// One account's stored form.
    type Position: Send;
    /// What a block's transactions touched.
    type Touches: Send;
    /// What one liquidation asks the contracts for.
    type Order: Sync;

    fn kind(&self) -> ProtocolKind;

    /// Every account with debt, from a scan of the contracts' raw state at the node's latest
    /// height (`progress` hears what the scan is doing).
    fn discover(
        &self,
        settings: ScanSettings,
        progress: &(dyn Fn(&str) + Sync),
    ) -> impl Future<Output = Result<Self::Discovery, ReadError>> + Send;

    /// The product-wide state at `height` (`None`: the node's latest state).
    fn read_snapshot(
        &self,
        height: Option<u64>,
    ) -> impl Future<Output = Result<Self::Snapshot, ReadError>> + Send;

    /// One account's stored form at `height` (`None`: the node's latest state); a key of
    /// another product is [`ReadError::NotAnAccount`].
    fn read_position(
        &self,
        account: &AccountKey,
        height: Option<u64>,
    ) -> impl Future<Output = Result<Self::Position, ReadError>> + Send;

    /// What a block's successful transactions touched.
    fn touched(&self, results: &BlockResults) -> Self::Touches;

    /// The message that liquidates per `order`, signed by `liquidator`.
    fn liquidate_msg(&self, liquidator: &AccountId, order: &Self::Order)
        -> Result<Any, ChainError>;
}

/// The stored positions of the accounts at `addresses` at the node's latest state,
/// `concurrency` reads at a time; results in input order.
pub async fn read_stored_positions<P: Protocol<Position = AccountPosition>>(
    protocol: &P,
    addresses: &[String],
    concurrency: usize,
) -> Vec<(String, Result<AccountPositions, ReadError>)> {
    futures::stream::iter(addresses.iter().cloned())
        .map(|address| async move {
            let key = AccountKey::Address(address.clone());
            let read = protocol.read_position(&key, None).await;
            (address, read.map(|position| position.stored()))
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// The protocols one deployment runs, by kind. Jobs of a kind the deployment does not run are
/// answered with [`Unsupported`], in one place rather than a guard per worker.
#[derive(Debug, Clone)]
pub struct Protocols<C> {
    pub red_bank: RedBank<C>,
}

/// A job names a protocol this deployment does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this deployment runs no {0} protocol")]
pub struct Unsupported(pub ProtocolKind);

impl<C: redline_chain::ChainClient> Protocols<C> {
    pub fn new(red_bank: RedBank<C>) -> Self {
        Protocols { red_bank }
    }

    /// The implementation for `kind`.
    pub fn get(&self, kind: ProtocolKind) -> Result<&RedBank<C>, Unsupported> {
        match kind {
            ProtocolKind::RedBank => Ok(&self.red_bank),
            other => Err(Unsupported(other)),
        }
    }
}
