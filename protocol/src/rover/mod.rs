//! Rover, Mars's credit manager: credit accounts whose coins, debt shares and kinds live in the
//! credit manager's `coin_balance`, `debt_shares` and `account_types` maps, whose lends live in
//! the Red Bank's `colls` under `{"addr": <credit manager>, "acc_id": <id>}`, and whose debts
//! are shares of the credit manager's own Red Bank debt.
//!
//! Everything here reads raw state, so what is read is the stored form
//! ([`StoredCreditAccount`], [`CreditManagerDebts`]) that stays true while interest accrues;
//! `mars::math::credit_account` turns it into amounts and health at any block time.

mod events;
mod order;
mod scan;

use std::collections::{BTreeMap, BTreeSet};

use cosmrs::{AccountId, Any};
use cosmwasm_std::{Addr, Uint128};
use mars::msg::credit_manager::namespace as cm;
use mars::msg::health::AccountKind;
use mars::msg::red_bank::{namespace as rb, Collateral, Debt, UserId};
use mars::types::{CreditManagerDebts, StoredCreditAccount};
use redline_chain::{BlockResults, ChainClient, ChainError, RawEntry, ScanOptions};

pub use events::touched_accounts;
pub use order::{Funding, RoverOrder};
pub use scan::CreditDiscovery;

use crate::red_bank::scan::{decode_value, map_prefix, split_pair, utf8, EntryError};
use crate::snapshot::chain_error;
use crate::{AccountKey, Protocol, ProtocolKind, ReadError, ScanSettings};

/// The contracts credit accounts are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoverContracts {
    pub credit_manager: String,
    pub red_bank: String,
}

impl RoverContracts {
    /// The manifest's credit manager and Red Bank; `None` when the chain runs no credit manager.
    pub fn from_manifest(contracts: &mars::manifest::Contracts) -> Option<Self> {
        Some(RoverContracts {
            credit_manager: contracts.credit_manager.clone()?,
            red_bank: contracts.red_bank.clone(),
        })
    }
}

/// The credit manager of one deployment, read through `client`.
#[derive(Debug, Clone)]
pub struct Rover<C> {
    pub client: C,
    pub contracts: RoverContracts,
}

/// Credit accounts are named by their numeric id; their health math reads the credit
/// manager's debt totals beside the Red Bank's markets and the oracle's prices (a
/// [`crate::MarketSnapshot`] of the same block), since every credit-account debt is a share of
/// the credit manager's own Red Bank debt.
impl<C: ChainClient> Protocol for Rover<C> {
    type Discovery = CreditDiscovery;
    type Snapshot = CreditManagerDebts;
    /// `None` when the credit manager has no such account.
    type Position = Option<StoredCreditAccount>;
    type Touches = BTreeSet<u64>;
    type Order = RoverOrder;

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Rover
    }

    async fn discover(
        &self,
        settings: ScanSettings,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<CreditDiscovery, ReadError> {
        progress("scanning the credit manager's debt shares");
        self.discover_at(None, settings.scan, settings.query_concurrency)
            .await
    }

    async fn read_snapshot(&self, height: Option<u64>) -> Result<CreditManagerDebts, ReadError> {
        self.read_manager_debts(height).await
    }

    async fn read_position(
        &self,
        account: &AccountKey,
        height: Option<u64>,
    ) -> Result<Option<StoredCreditAccount>, ReadError> {
        match account {
            AccountKey::CreditAccount(id) => self.read_account(*id, height).await,
            AccountKey::Address(_) => Err(ReadError::NotAnAccount {
                account: account.to_string(),
                protocol: ProtocolKind::Rover,
            }),
        }
    }

    fn touched(&self, results: &BlockResults) -> BTreeSet<u64> {
        touched_accounts(results, &self.contracts.credit_manager)
    }

    fn liquidate_msg(&self, liquidator: &AccountId, order: &RoverOrder) -> Result<Any, ChainError> {
        order.message(liquidator, &self.contracts.credit_manager)
    }
}

/// Raw reads of one scan: pages of `page_size`, pinned to `height` when given.
fn pinned(height: Option<u64>) -> ScanOptions {
    ScanOptions {
        concurrency: 1,
        height,
        ..ScanOptions::default()
    }
}

/// The key prefix of one account's entries in a `(account id, denom)` map.
fn account_prefix(namespace: &str, account: &[u8]) -> Vec<u8> {
    let mut prefix = map_prefix(namespace);
    prefix.extend_from_slice(&(account.len() as u16).to_be_bytes());
    prefix.extend_from_slice(account);
    prefix
}

/// `(account id, denom, amount)` of a `coin_balance` / `debt_shares` / `total_debt_shares`-like
/// entry keyed by `(first, denom)`.
fn decode_pair_amount(
    entry: &RawEntry,
    namespace: &'static str,
) -> Result<(String, String, Uint128), EntryError> {
    let (first, denom) = split_pair(&entry.key, &map_prefix(namespace), namespace)?;
    let amount: Uint128 = decode_value(&entry.value, "Uint128")?;
    Ok((utf8(first, "key")?, utf8(denom, "denom")?, amount))
}

impl<C: ChainClient> Rover<C> {
    pub fn new(client: C, contracts: RoverContracts) -> Self {
        Rover { client, contracts }
    }

    fn manager_key(&self, account_id: u64) -> Vec<u8> {
        UserId::credit_manager(
            Addr::unchecked(&self.contracts.credit_manager),
            account_id.to_string(),
        )
        .key_bytes()
    }

    async fn scan(
        &self,
        contract: &str,
        prefix: &[u8],
        options: ScanOptions,
        what: &str,
    ) -> Result<Vec<RawEntry>, ReadError> {
        self.client
            .scan_raw_prefix_concurrent(contract, prefix, options)
            .await
            .map_err(chain_error(what))
    }

    /// One `(account id, denom)` map's entries of `account_id`, by denom.
    async fn account_amounts(
        &self,
        namespace: &'static str,
        account_id: u64,
        height: Option<u64>,
    ) -> Result<BTreeMap<String, Uint128>, ReadError> {
        let id = account_id.to_string();
        let prefix = account_prefix(namespace, id.as_bytes());
        let what = format!("credit account {id}'s `{namespace}` entries");
        let entries = self
            .scan(
                &self.contracts.credit_manager,
                &prefix,
                pinned(height),
                &what,
            )
            .await?;
        let mut amounts = BTreeMap::new();
        for entry in &entries {
            let (_, denom, amount) =
                decode_pair_amount(entry, namespace).map_err(|e| data_error(&what, e))?;
            amounts.insert(denom, amount);
        }
        Ok(amounts)
    }

    /// The account's lends: its Red Bank collateral entries, scaled.
    async fn lends_scaled(
        &self,
        account_id: u64,
        height: Option<u64>,
    ) -> Result<BTreeMap<String, Uint128>, ReadError> {
        let prefix = account_prefix(rb::COLLATERALS, &self.manager_key(account_id));
        let what = format!("credit account {account_id}'s lends");
        let entries = self
            .scan(&self.contracts.red_bank, &prefix, pinned(height), &what)
            .await?;
        let mut lends = BTreeMap::new();
        for entry in &entries {
            let (_, denom) = crate::red_bank::scan::decode_collateral_key(&entry.key)
                .map_err(|e| data_error(&what, e))?;
            let collateral: Collateral =
                decode_value(&entry.value, "Collateral").map_err(|e| data_error(&what, e))?;
            lends.insert(denom, collateral.amount_scaled);
        }
        Ok(lends)
    }

    /// The account's kind; `None` when the credit manager has no such account.
    pub async fn account_kind(
        &self,
        account_id: u64,
        height: Option<u64>,
    ) -> Result<Option<AccountKind>, ReadError> {
        let mut key = map_prefix(cm::ACCOUNT_KINDS);
        key.extend_from_slice(account_id.to_string().as_bytes());
        let what = format!("credit account {account_id}'s kind");
        let Some(bytes) = self
            .client
            .query_raw(&self.contracts.credit_manager, &key, height)
            .await
            .map_err(chain_error(what.clone()))?
        else {
            return Ok(None);
        };
        decode_value(&bytes, "AccountKind")
            .map(Some)
            .map_err(|e| data_error(&what, e))
    }

    /// One account's stored form at `height` (`None`: the latest state); `None` when the
    /// credit manager has no such account.
    pub async fn read_account(
        &self,
        account_id: u64,
        height: Option<u64>,
    ) -> Result<Option<StoredCreditAccount>, ReadError> {
        let (kind, coin_balances, debt_shares, lends_scaled) = futures::try_join!(
            self.account_kind(account_id, height),
            self.account_amounts(cm::COIN_BALANCES, account_id, height),
            self.account_amounts(cm::DEBT_SHARES, account_id, height),
            self.lends_scaled(account_id, height),
        )?;
        Ok(kind.map(|kind| StoredCreditAccount {
            account_id,
            kind,
            coin_balances,
            debt_shares,
            lends_scaled,
        }))
    }

    /// The credit manager's total debt shares and its own Red Bank debt (scaled), per denom.
    pub async fn read_manager_debts(
        &self,
        height: Option<u64>,
    ) -> Result<CreditManagerDebts, ReadError> {
        let what = "the credit manager's total debt shares";
        let totals = self
            .scan(
                &self.contracts.credit_manager,
                &map_prefix(cm::TOTAL_DEBT_SHARES),
                pinned(height),
                what,
            )
            .await?;
        let mut debts = CreditManagerDebts::default();
        for entry in &totals {
            let denom = entry
                .key
                .strip_prefix(map_prefix(cm::TOTAL_DEBT_SHARES).as_slice())
                .ok_or(EntryError::Namespace(cm::TOTAL_DEBT_SHARES))
                .and_then(|denom| utf8(denom, "denom"))
                .map_err(|e| data_error(what, e))?;
            let shares = decode_value(&entry.value, "Uint128").map_err(|e| data_error(what, e))?;
            debts.total_debt_shares.insert(denom, shares);
        }
        let what = "the credit manager's Red Bank debt";
        let manager = self.contracts.credit_manager.as_bytes();
        let owed = self
            .scan(
                &self.contracts.red_bank,
                &account_prefix(rb::DEBTS, manager),
                pinned(height),
                what,
            )
            .await?;
        for entry in &owed {
            let (_, denom) = crate::red_bank::scan::decode_debt_key(&entry.key)
                .map_err(|e| data_error(what, e))?;
            let debt: Debt = decode_value(&entry.value, "Debt").map_err(|e| data_error(what, e))?;
            debts.red_bank_debt_scaled.insert(denom, debt.amount_scaled);
        }
        Ok(debts)
    }
}

/// A raw entry the credit manager or Red Bank stored in a form we cannot read.
fn data_error(what: &str, error: EntryError) -> ReadError {
    ReadError::Data {
        what: what.to_string(),
        message: error.to_string(),
    }
}
