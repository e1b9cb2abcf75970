//! The lending protocols redline liquidates, behind one seam.
//!
//! A [`Protocol`] reads what the services need from one lending product's contracts: every
//! account with debt (a discovery scan of raw state), the market-wide inputs of a block
//! ([`MarketSnapshot`]), one account's stored position, the accounts a block's transactions
//! touched, and the message that liquidates an account. The
//! math on what it reads is pure and lives in `mars`; the services hold their protocols in a
//! [`Protocols`] set and dispatch once per job on the job's [`ProtocolKind`]. A new lending
//! product is a new implementation (and a devnet contract and scenario), not edits across the
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

/// What executing one liquidation takes: the account, the debt coin sent (and repaid), and the
/// collateral denom to seize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidationOrder<'a> {
    pub account: &'a AccountKey,
    pub debt_denom: &'a str,
    pub debt_to_send: cosmwasm_std::Uint128,
    pub collateral_denom: &'a str,
}

/// One lending product's contracts, as the services see them.
pub trait Protocol: Send + Sync {
    fn kind(&self) -> ProtocolKind;

    /// Every account with debt, from a scan of the contracts' raw state at the node's latest
    /// height (`progress` hears what the scan is doing).
    fn discover(
        &self,
        settings: ScanSettings,
        progress: &(dyn Fn(&str) + Sync),
    ) -> impl Future<Output = Result<Discovery, ReadError>> + Send;

    /// The market-wide inputs as the contracts answer them at `height` (`None`: the node's
    /// latest state).
    fn read_inputs(
        &self,
        height: Option<u64>,
    ) -> impl Future<Output = Result<MarketInputs, ReadError>> + Send;

    /// The market-wide inputs of the health and liquidation math at `height`.
    fn read_snapshot(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<MarketSnapshot, ReadError>> + Send;

    /// One account's stored (scaled) position at `height` (`None`: the node's latest state).
    fn read_position(
        &self,
        account: &AccountKey,
        height: Option<u64>,
    ) -> impl Future<Output = Result<AccountPosition, ReadError>> + Send;

    /// The accounts (and market changes) a block's successful transactions touched.
    fn touched(&self, results: &BlockResults) -> BlockTouches;

    /// The message that liquidates per `order`, signed by `liquidator`.
    fn liquidate_msg(
        &self,
        liquidator: &AccountId,
        order: &LiquidationOrder<'_>,
    ) -> Result<Any, ChainError>;
}

/// The stored positions of the accounts at `addresses` at the node's latest state,
/// `concurrency` reads at a time; results in input order.
pub async fn read_stored_positions<P: Protocol>(
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
