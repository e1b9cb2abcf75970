//! Discovering every Red Bank debtor from raw state: scans of the Red Bank's `debts` and `colls`
//! maps (decoded as cw-storage-plus keys) at the node's latest state, with the accounts whose
//! stored value cannot be read re-read by smart queries.
//!
//! The node answers at its latest height: callers read the height before the scan and account
//! for blocks committed while it ran.

use std::collections::{BTreeMap, BTreeSet};

use mars::msg::red_bank::{namespace, Collateral, Debt, UserId};
use mars::types::AccountPositions;
use redline_chain::{ChainClient, RawEntry, ScanOptions};
use serde::de::DeserializeOwned;

use super::RedBank;
use crate::snapshot::chain_error;
use crate::{read_stored_positions, ReadError};

/// Why a raw map entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("key does not start with the `{0}` namespace")]
    Namespace(&'static str),
    #[error("key ends inside the {0}")]
    Truncated(&'static str),
    #[error("{what} is not UTF-8")]
    NotUtf8 { what: &'static str },
    #[error("user key is not Mars's UserId JSON: {0}")]
    UserId(String),
    #[error("value is not a {what}: {message}")]
    Value { what: &'static str, message: String },
}

/// The cw-storage-plus prefix of a map: 2-byte big-endian length, then the namespace.
pub fn map_prefix(namespace: &str) -> Vec<u8> {
    let mut prefix = (namespace.len() as u16).to_be_bytes().to_vec();
    prefix.extend_from_slice(namespace.as_bytes());
    prefix
}

/// Splits `(first, last)` key bytes after the namespace: the first part is length-prefixed,
/// the last is the rest.
pub(crate) fn split_pair<'a>(
    key: &'a [u8],
    prefix: &[u8],
    ns: &'static str,
) -> Result<(&'a [u8], &'a [u8]), EntryError> {
    let rest = key.strip_prefix(prefix).ok_or(EntryError::Namespace(ns))?;
    if rest.len() < 2 {
        return Err(EntryError::Truncated("length of the first key part"));
    }
    let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    let rest = &rest[2..];
    if rest.len() < len {
        return Err(EntryError::Truncated("first key part"));
    }
    Ok((&rest[..len], &rest[len..]))
}

pub(crate) fn utf8(bytes: &[u8], what: &'static str) -> Result<String, EntryError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| EntryError::NotUtf8 { what })
}

/// `(address, denom)` of a `debts` key.
pub fn decode_debt_key(key: &[u8]) -> Result<(String, String), EntryError> {
    let prefix = map_prefix(namespace::DEBTS);
    let (addr, denom) = split_pair(key, &prefix, namespace::DEBTS)?;
    if denom.is_empty() {
        return Err(EntryError::Truncated("denom"));
    }
    Ok((utf8(addr, "address")?, utf8(denom, "denom")?))
}

/// `(user id, denom)` of a `colls` key.
pub fn decode_collateral_key(key: &[u8]) -> Result<(UserId, String), EntryError> {
    let prefix = map_prefix(namespace::COLLATERALS);
    let (user, denom) = split_pair(key, &prefix, namespace::COLLATERALS)?;
    if denom.is_empty() {
        return Err(EntryError::Truncated("denom"));
    }
    let user = UserId::from_key_bytes(user).map_err(|e| EntryError::UserId(e.to_string()))?;
    Ok((user, utf8(denom, "denom")?))
}

pub(crate) fn decode_value<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, EntryError> {
    serde_json::from_slice(bytes).map_err(|e| EntryError::Value {
        what,
        message: e.to_string(),
    })
}

/// How a full scan reads the chain.
#[derive(Debug, Clone, Copy)]
pub struct ScanSettings {
    pub scan: ScanOptions,
    /// Smart queries in flight at once (accounts re-read one by one).
    pub query_concurrency: usize,
}

/// Every debtor of the Red Bank with its positions, from one full scan.
#[derive(Debug, Default)]
pub struct Discovery {
    pub accounts: BTreeMap<String, AccountPositions>,
    pub debt_entries: usize,
    pub collateral_entries: usize,
    /// Entries whose key could not be read at all (logged and counted).
    pub undecodable_keys: usize,
    /// Accounts with an unreadable value, re-read with smart queries.
    pub reread: usize,
    /// Collateral entries of credit-manager accounts (another protocol's index).
    pub other_protocol_entries: usize,
    /// Unreadable entries by what could not be read (`debts_key`, `colls_value`, …).
    pub decode_errors: BTreeMap<String, u64>,
}

/// Scans the `debts` map, then the `colls` map (both at the node's latest state, pages
/// concurrently), and assembles every account with debt. Accounts with an undecodable value
/// are re-read with smart queries; keys that cannot be read at all are logged and counted.
pub async fn scan_debtors<C: ChainClient>(
    red_bank: &RedBank<C>,
    settings: ScanSettings,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Discovery, ReadError> {
    let mut scan = DebtorScan {
        red_bank,
        settings,
        found: Discovery::default(),
        reread: BTreeSet::new(),
    };
    progress("scanning the debts map");
    let debts = scan.raw_map(namespace::DEBTS).await?;
    scan.add_debts(&debts);
    drop(debts);
    progress(&format!(
        "debts map: {} entries, {} debtors; scanning the colls map",
        scan.found.debt_entries,
        scan.found.accounts.len() + scan.reread.len()
    ));
    let colls = scan.raw_map(namespace::COLLATERALS).await?;
    scan.add_collaterals(&colls);
    drop(colls);
    scan.finish(progress).await
}

/// One [`scan_debtors`] under way: what it reads with, what it found so far, and the accounts
/// to re-read with smart queries.
struct DebtorScan<'a, C> {
    red_bank: &'a RedBank<C>,
    settings: ScanSettings,
    found: Discovery,
    reread: BTreeSet<String>,
}

impl<C: ChainClient> DebtorScan<'_, C> {
    /// Every entry of the Red Bank map `map`.
    async fn raw_map(&self, map: &'static str) -> Result<Vec<RawEntry>, ReadError> {
        let red_bank = &self.red_bank.contracts.red_bank;
        self.red_bank
            .client
            .scan_raw_prefix_concurrent(red_bank, &map_prefix(map), self.settings.scan)
            .await
            .map_err(chain_error(format!("the {map} map of {red_bank}")))
    }

    fn add_debts(&mut self, entries: &[RawEntry]) {
        self.found.debt_entries = entries.len();
        for RawEntry { key, value } in entries {
            let (address, denom) = match decode_debt_key(key) {
                Ok(parts) => parts,
                Err(e) => {
                    self.undecodable_key(namespace::DEBTS, key, e);
                    continue;
                }
            };
            match decode_value::<Debt>(value, "Debt") {
                Ok(debt) => {
                    self.found
                        .accounts
                        .entry(address.clone())
                        .or_insert_with(|| AccountPositions::new(&address))
                        .debts
                        .insert(denom, debt);
                }
                Err(e) => self.undecodable_value(namespace::DEBTS, address, &denom, e),
            }
        }
    }

    fn add_collaterals(&mut self, entries: &[RawEntry]) {
        self.found.collateral_entries = entries.len();
        for RawEntry { key, value } in entries {
            let (user, denom) = match decode_collateral_key(key) {
                Ok(parts) => parts,
                Err(e) => {
                    self.undecodable_key(namespace::COLLATERALS, key, e);
                    continue;
                }
            };
            if !user.acc_id.is_empty() {
                self.found.other_protocol_entries += 1;
                continue;
            }
            let address = user.addr.as_str();
            let Some(account) = self.found.accounts.get_mut(address) else {
                // Not a debtor (or one being re-read as a whole).
                continue;
            };
            match decode_value::<Collateral>(value, "Collateral") {
                Ok(collateral) => {
                    account.collaterals.insert(denom, collateral);
                }
                Err(e) => {
                    self.undecodable_value(namespace::COLLATERALS, address.to_string(), &denom, e)
                }
            }
        }
    }

    /// A key of `map` that cannot be read: the entry is skipped, logged and counted.
    fn undecodable_key(&mut self, map: &str, key: &[u8], error: EntryError) {
        tracing::warn!(key = %hex::encode(key), %error, "skipping undecodable {map} key");
        *self
            .found
            .decode_errors
            .entry(format!("{map}_key"))
            .or_default() += 1;
        self.found.undecodable_keys += 1;
    }

    /// A value of `map` that cannot be read: its account is re-read as a whole.
    fn undecodable_value(&mut self, map: &str, address: String, denom: &str, error: EntryError) {
        tracing::warn!(%address, %denom, %error, "undecodable {map} value; re-reading the account");
        *self
            .found
            .decode_errors
            .entry(format!("{map}_value"))
            .or_default() += 1;
        self.reread.insert(address);
    }

    /// Re-reads the accounts with an undecodable value and keeps the debtors.
    async fn finish(self, progress: &(dyn Fn(&str) + Sync)) -> Result<Discovery, ReadError> {
        let DebtorScan {
            red_bank,
            settings,
            found: mut scan,
            reread,
            ..
        } = self;
        for address in &reread {
            scan.accounts.remove(address);
        }
        scan.reread = reread.len();
        if !reread.is_empty() {
            progress(&format!(
                "re-reading {} accounts with smart queries",
                reread.len()
            ));
            let addresses: Vec<String> = reread.into_iter().collect();
            let reads =
                read_stored_positions(red_bank, &addresses, settings.query_concurrency).await;
            for (address, result) in reads {
                scan.accounts.insert(address, result?);
            }
        }
        scan.accounts.retain(|_, account| account.has_debt());
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::Addr;

    fn debt_key(addr: &str, denom: &str) -> Vec<u8> {
        let mut key = map_prefix("debts");
        key.extend((addr.len() as u16).to_be_bytes());
        key.extend(addr.as_bytes());
        key.extend(denom.as_bytes());
        key
    }

    #[test]
    fn decodes_cw_storage_plus_keys() {
        assert_eq!(
            decode_debt_key(&debt_key("osmo1abc", "uatom")).unwrap(),
            ("osmo1abc".to_string(), "uatom".to_string())
        );
        let user = UserId::red_bank(Addr::unchecked("osmo1abc"));
        let mut key = map_prefix("colls");
        let user_bytes = user.key_bytes();
        key.extend((user_bytes.len() as u16).to_be_bytes());
        key.extend(&user_bytes);
        key.extend(b"ibc/27394FB0");
        assert_eq!(
            decode_collateral_key(&key).unwrap(),
            (user, "ibc/27394FB0".to_string())
        );
    }

    #[test]
    fn rejects_malformed_keys_with_a_reason() {
        assert_eq!(
            decode_debt_key(b"\x00\x05markets"),
            Err(EntryError::Namespace("debts"))
        );
        let mut short = map_prefix("debts");
        short.extend([0, 50, b'o']);
        assert_eq!(
            decode_debt_key(&short),
            Err(EntryError::Truncated("first key part"))
        );
        assert_eq!(
            decode_debt_key(&debt_key("osmo1abc", "")),
            Err(EntryError::Truncated("denom"))
        );
        let mut not_json = map_prefix("colls");
        not_json.extend([0, 3]);
        not_json.extend(b"abcuatom");
        assert!(matches!(
            decode_collateral_key(&not_json),
            Err(EntryError::UserId(_))
        ));
        let mut bad_utf8 = map_prefix("debts");
        bad_utf8.extend([0, 2, 0xff, 0xfe]);
        bad_utf8.extend(b"uatom");
        assert_eq!(
            decode_debt_key(&bad_utf8),
            Err(EntryError::NotUtf8 { what: "address" })
        );
    }
}
