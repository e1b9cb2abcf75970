//! The devnet of benchmarks and chaos runs (testkit's scenario devnet), and the position index
//! filled from its state the way the collector's discovery does it: raw scans of the Red Bank's
//! `debts` and `colls` maps (pages fetched concurrently), every account with debt written to the
//! index.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use mars::msg::red_bank::{namespace, Collateral, Debt, UserId};
use redline_chain::{ChainClient, ScanOptions};
use redline_pipeline::index::{AccountPositions, IndexedAccount, PositionIndex};
pub use testkit::devnet::{Devnet, DevnetBuilder};

/// The devnet of benchmarks and chaos runs: the default scenario with 2 liquidator wallets,
/// blocks every `block_time`.
pub fn scenario(accounts: usize, seed: u64, block_time: Duration) -> DevnetBuilder {
    Devnet::scenario(accounts, seed)
        .liquidator_wallets(2)
        .block_time(block_time)
}

/// [`scenario`], started.
pub async fn start(accounts: usize, seed: u64, block_time: Duration) -> anyhow::Result<Devnet> {
    scenario(accounts, seed, block_time).start().await
}

/// Every account with debt, from raw scans of the `debts` and `colls` maps.
pub async fn scan_debtors(devnet: &Devnet) -> anyhow::Result<Vec<AccountPositions>> {
    let options = ScanOptions {
        page_size: 5_000,
        concurrency: 4,
        height: None,
    };
    let debts_prefix = map_prefix(namespace::DEBTS);
    let colls_prefix = map_prefix(namespace::COLLATERALS);
    let debts = devnet
        .client
        .scan_raw_prefix_concurrent(devnet.red_bank(), &debts_prefix, options)
        .await
        .context("scanning the debts map")?;
    let mut accounts: BTreeMap<String, AccountPositions> = BTreeMap::new();
    for entry in debts {
        let (user, denom) = split_key(&entry.key, &debts_prefix)
            .with_context(|| format!("debts key {}", hex::encode(&entry.key)))?;
        let user = String::from_utf8(user.to_vec()).context("debts key address")?;
        let debt: Debt = serde_json::from_slice(&entry.value).context("debts value")?;
        accounts
            .entry(user.clone())
            .or_insert_with(|| AccountPositions::new(user))
            .debts
            .insert(denom, debt);
    }
    let colls = devnet
        .client
        .scan_raw_prefix_concurrent(devnet.red_bank(), &colls_prefix, options)
        .await
        .context("scanning the colls map")?;
    for entry in colls {
        let (user, denom) = split_key(&entry.key, &colls_prefix)
            .with_context(|| format!("colls key {}", hex::encode(&entry.key)))?;
        let user = UserId::from_key_bytes(user).context("colls key user id")?;
        if !user.acc_id.is_empty() {
            continue;
        }
        if let Some(account) = accounts.get_mut(user.addr.as_str()) {
            let collateral: Collateral =
                serde_json::from_slice(&entry.value).context("colls value")?;
            account.collaterals.insert(denom, collateral);
        }
    }
    Ok(accounts
        .into_values()
        .filter(AccountPositions::has_debt)
        .collect())
}

/// Writes every debtor into `index` (plus markets, params and THF); returns how many.
pub async fn fill_index(devnet: &Devnet, index: &PositionIndex) -> anyhow::Result<usize> {
    let debtors = scan_debtors(devnet).await?;
    let mut denoms: Vec<&str> = Vec::new();
    for account in &debtors {
        for denom in account.collaterals.keys().chain(account.debts.keys()) {
            if !denoms.contains(&denom.as_str()) {
                denoms.push(denom);
            }
        }
    }
    index.denom_ids(&denoms).await?;
    let mut indexed: Vec<IndexedAccount> = Vec::with_capacity(debtors.len());
    for account in &debtors {
        indexed.push(index.to_indexed(account).await?);
    }
    index.put_accounts(&indexed).await?;
    let height = devnet.client.latest_height().await?;
    let snapshot = devnet.snapshot(height).await?;
    index.set_markets(&snapshot.markets).await?;
    index.set_params(&snapshot.params).await?;
    index.set_thf(snapshot.target_health_factor).await?;
    Ok(indexed.len())
}

/// The cw-storage-plus prefix of a map: 2-byte big-endian length, then the namespace.
pub fn map_prefix(namespace: &str) -> Vec<u8> {
    let mut prefix = (namespace.len() as u16).to_be_bytes().to_vec();
    prefix.extend_from_slice(namespace.as_bytes());
    prefix
}

/// `(first key part, denom)` of a two-part map key under `prefix`.
fn split_key<'a>(key: &'a [u8], prefix: &[u8]) -> anyhow::Result<(&'a [u8], String)> {
    let rest = key
        .strip_prefix(prefix)
        .context("key outside the map's namespace")?;
    anyhow::ensure!(rest.len() >= 2, "key too short");
    let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    let rest = &rest[2..];
    anyhow::ensure!(rest.len() > len, "key ends inside its first part");
    let denom = String::from_utf8(rest[len..].to_vec()).context("denom is not UTF-8")?;
    Ok((&rest[..len], denom))
}
