//! Reading the Red Bank's state from the chain: raw-state scans of its `debts` and `colls` maps
//! (decoded as cw-storage-plus keys), per-account smart queries, and the markets, asset params,
//! target health factor and oracle prices.
//!
//! The node answers at its latest height; every reader says so in its name or docs, and callers
//! account for blocks committed while they read (see `follow` and `reconcile`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use cosmwasm_std::{Decimal, Uint128};
use futures::{stream, StreamExt};
use redline_common::chain::{ChainClient, RawEntry, ScanOptions};
use redline_common::index::AccountPositions;
use redline_common::msg::oracle::{self, ActionKind, PriceResponse};
use redline_common::msg::params;
use redline_common::msg::red_bank::{
    self, namespace, Collateral, Debt, UserCollateralResponse, UserDebtResponse, UserId,
};
use redline_common::types::{AssetParams, Market};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::metrics::CollectorMetrics;

/// Page size of paged smart queries. Contracts cap it (Mars at 10–30); paging continues until
/// an empty page, so a lower cap only costs round trips.
const QUERY_PAGE: u32 = 30;

/// The contracts the collector reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedBankContracts {
    pub red_bank: String,
    pub oracle: String,
    pub params: String,
}

impl RedBankContracts {
    pub fn from_manifest(contracts: &redline_common::manifest::Contracts) -> Self {
        RedBankContracts {
            red_bank: contracts.red_bank.clone(),
            oracle: contracts.oracle.clone(),
            params: contracts.params.clone(),
        }
    }
}

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
fn split_pair<'a>(
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

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, EntryError> {
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

fn decode_value<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, EntryError> {
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
pub struct ChainScan {
    pub accounts: BTreeMap<String, AccountPositions>,
    pub debt_entries: usize,
    pub collateral_entries: usize,
    /// Entries whose key could not be read at all (logged and counted).
    pub undecodable_keys: usize,
    /// Accounts with an unreadable value, re-read with smart queries.
    pub reread: usize,
    /// Collateral entries of credit-manager accounts (another protocol's index).
    pub other_protocol_entries: usize,
}

/// Scans the `debts` map, then the `colls` map (both at the node's latest state, pages
/// concurrently), and assembles every account with debt. Accounts with an undecodable value
/// are re-read with smart queries; keys that cannot be read at all are logged and counted.
pub async fn scan_debtors<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    settings: ScanSettings,
    metrics: &CollectorMetrics,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<ChainScan> {
    let mut scan = ChainScan::default();
    let mut reread: BTreeSet<String> = BTreeSet::new();

    progress("scanning the debts map");
    let debts = client
        .scan_raw_prefix_concurrent(
            &contracts.red_bank,
            &map_prefix(namespace::DEBTS),
            settings.scan,
        )
        .await
        .with_context(|| format!("scanning the debts map of {}", contracts.red_bank))?;
    scan.debt_entries = debts.len();
    for RawEntry { key, value } in &debts {
        let (address, denom) = match decode_debt_key(key) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(key = %hex::encode(key), error = %e, "skipping undecodable debts key");
                metrics
                    .decode_errors
                    .with_label_values(&["debts_key"])
                    .inc();
                scan.undecodable_keys += 1;
                continue;
            }
        };
        match decode_value::<Debt>(value, "Debt") {
            Ok(debt) => {
                scan.accounts
                    .entry(address.clone())
                    .or_insert_with(|| AccountPositions::new(&address))
                    .debts
                    .insert(denom, debt);
            }
            Err(e) => {
                tracing::warn!(%address, %denom, error = %e, "undecodable debts value; re-reading the account");
                metrics
                    .decode_errors
                    .with_label_values(&["debts_value"])
                    .inc();
                reread.insert(address);
            }
        }
    }
    drop(debts);
    progress(&format!(
        "debts map: {} entries, {} debtors; scanning the colls map",
        scan.debt_entries,
        scan.accounts.len() + reread.len()
    ));

    let colls = client
        .scan_raw_prefix_concurrent(
            &contracts.red_bank,
            &map_prefix(namespace::COLLATERALS),
            settings.scan,
        )
        .await
        .with_context(|| format!("scanning the colls map of {}", contracts.red_bank))?;
    scan.collateral_entries = colls.len();
    for RawEntry { key, value } in &colls {
        let (user, denom) = match decode_collateral_key(key) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(key = %hex::encode(key), error = %e, "skipping undecodable colls key");
                metrics
                    .decode_errors
                    .with_label_values(&["colls_key"])
                    .inc();
                scan.undecodable_keys += 1;
                continue;
            }
        };
        if !user.acc_id.is_empty() {
            scan.other_protocol_entries += 1;
            continue;
        }
        let address = user.addr.as_str();
        let Some(account) = scan.accounts.get_mut(address) else {
            // Not a debtor (or one being re-read as a whole).
            continue;
        };
        match decode_value::<Collateral>(value, "Collateral") {
            Ok(collateral) => {
                account.collaterals.insert(denom, collateral);
            }
            Err(e) => {
                tracing::warn!(%address, %denom, error = %e, "undecodable colls value; re-reading the account");
                metrics
                    .decode_errors
                    .with_label_values(&["colls_value"])
                    .inc();
                reread.insert(address.to_string());
            }
        }
    }
    drop(colls);

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
        for (address, result) in
            read_accounts(client, contracts, &addresses, settings.query_concurrency).await
        {
            let positions = result.with_context(|| format!("re-reading account {address}"))?;
            scan.accounts.insert(address, positions);
        }
    }
    scan.accounts.retain(|_, account| account.has_debt());
    Ok(scan)
}

/// Pages a smart query that takes `start_after`, until an empty page.
async fn paged<C, Q, R>(
    client: &C,
    contract: &str,
    query: impl Fn(Option<String>) -> Q,
    cursor: impl Fn(&R) -> String,
) -> Result<Vec<R>, redline_common::chain::ChainError>
where
    C: ChainClient,
    Q: Serialize + Sync,
    R: DeserializeOwned + Send,
{
    let mut all = Vec::new();
    let mut start_after: Option<String> = None;
    loop {
        let page: Vec<R> = client
            .query_smart(contract, &query(start_after.clone()), None)
            .await?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        let next = cursor(last);
        if start_after.as_deref() == Some(next.as_str()) {
            // A contract that ignores `start_after` would loop forever.
            return Ok(all);
        }
        start_after = Some(next);
        all.extend(page);
    }
}

/// One account's Red Bank positions (smart queries `user_collaterals` and `user_debts`, paged,
/// at the node's latest height).
pub async fn read_account<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    address: &str,
) -> anyhow::Result<AccountPositions> {
    let (collaterals, debts) = futures::try_join!(
        paged(
            client,
            &contracts.red_bank,
            |start_after| red_bank::QueryMsg::UserCollaterals {
                user: address.to_string(),
                account_id: None,
                start_after,
                limit: Some(QUERY_PAGE),
            },
            |c: &UserCollateralResponse| c.denom.clone(),
        ),
        paged(
            client,
            &contracts.red_bank,
            |start_after| red_bank::QueryMsg::UserDebts {
                user: address.to_string(),
                start_after,
                limit: Some(QUERY_PAGE),
            },
            |d: &UserDebtResponse| d.denom.clone(),
        ),
    )
    .with_context(|| format!("reading the positions of {address}"))?;
    let mut positions = AccountPositions::new(address);
    for c in collaterals {
        positions.collaterals.insert(
            c.denom,
            Collateral {
                amount_scaled: c.amount_scaled,
                enabled: c.enabled,
            },
        );
    }
    for d in debts {
        positions.debts.insert(
            d.denom,
            Debt {
                amount_scaled: d.amount_scaled,
                uncollateralized: d.uncollateralized,
            },
        );
    }
    positions
        .collaterals
        .retain(|_, c| !c.amount_scaled.is_zero());
    positions.debts.retain(|_, d| !d.amount_scaled.is_zero());
    Ok(positions)
}

/// [`read_account`] for many accounts, `concurrency` at a time; results in input order.
pub async fn read_accounts<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    addresses: &[String],
    concurrency: usize,
) -> Vec<(String, anyhow::Result<AccountPositions>)> {
    stream::iter(addresses.iter().cloned())
        .map(|address| async move {
            let result = read_account(client, contracts, &address).await;
            (address, result)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// Every market (`markets`, paged).
pub async fn markets<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
) -> anyhow::Result<Vec<Market>> {
    paged(
        client,
        &contracts.red_bank,
        |start_after| red_bank::QueryMsg::Markets {
            start_after,
            limit: Some(QUERY_PAGE),
        },
        |m: &Market| m.denom.clone(),
    )
    .await
    .context("reading the Red Bank markets")
}

/// Every asset's params (`all_asset_params`, paged).
pub async fn asset_params<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
) -> anyhow::Result<Vec<AssetParams>> {
    paged(
        client,
        &contracts.params,
        |start_after| params::QueryMsg::AllAssetParams {
            start_after,
            limit: Some(QUERY_PAGE),
        },
        |p: &AssetParams| p.denom.clone(),
    )
    .await
    .context("reading the asset params")
}

pub async fn target_health_factor<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
) -> anyhow::Result<Decimal> {
    client
        .query_smart(
            &contracts.params,
            &params::QueryMsg::TargetHealthFactor {},
            None,
        )
        .await
        .context("reading the target health factor")
}

/// Every oracle price of `kind` (`prices`, paged), denom → price.
pub async fn prices<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    kind: ActionKind,
) -> anyhow::Result<BTreeMap<String, Decimal>> {
    let prices = paged(
        client,
        &contracts.oracle,
        |start_after| oracle::QueryMsg::Prices {
            start_after,
            limit: Some(QUERY_PAGE),
            kind: Some(kind),
        },
        |p: &PriceResponse| p.denom.clone(),
    )
    .await
    .with_context(|| format!("reading the oracle's {kind:?} prices"))?;
    Ok(prices.into_iter().map(|p| (p.denom, p.price)).collect())
}

/// Total scaled debt of an account (for logs).
pub fn total_debt_scaled(account: &AccountPositions) -> Uint128 {
    account.debts.values().fold(Uint128::zero(), |sum, d| {
        sum.saturating_add(d.amount_scaled)
    })
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
