//! A devnet running the default scenario in this process, and the position index filled from
//! its state the way the collector's discovery does it: raw scans of the Red Bank's `debts` and
//! `colls` maps (pages fetched concurrently), every account with debt written to the index.
//! Block snapshots are read from the chain's answers (markets, both price kinds, params, THF)
//! with the block's header time.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use cosmwasm_std::Decimal;
use mars::manifest::Manifest;
use mars::msg::oracle::{self, ActionKind, PriceResponse};
use mars::msg::params;
use mars::msg::red_bank::{namespace, Collateral, Debt, QueryMsg, UserId};
use mars::types::{AssetParams, Market};
use redline_chain::{ChainClient, ChainConfig, ScanOptions, TendermintClient};
use redline_devnet::chain::ChainState;
use redline_devnet::rpc::{NodeConfig, NodeHandle};
use redline_devnet::scenario::{self, ScenarioConfig, ScenarioInfo};
use redline_pipeline::index::{AccountPositions, BlockSnapshot, IndexedAccount, PositionIndex};
use redline_pipeline::jobs::ProtocolKind;

/// A scenario devnet in this process.
pub struct Devnet {
    pub node: NodeHandle,
    pub manifest: Manifest,
    pub client: TendermintClient,
    /// The seeded borrowers, in seeding order (about 90% of them have debt).
    pub borrowers: Vec<String>,
    /// How long genesis (deploy + seeding) took.
    pub genesis_time: Duration,
}

impl Devnet {
    /// Starts the scenario with `accounts` borrowers from `seed`, blocks every `block_time`.
    pub async fn start(accounts: usize, seed: u64, block_time: Duration) -> anyhow::Result<Self> {
        Self::start_with(accounts, seed, block_time, |_, _| Ok(())).await
    }

    /// [`Devnet::start`], running `extra` on the chain after the scenario's genesis (e.g. to
    /// set prices as the oracle's owner).
    pub async fn start_with<F>(
        accounts: usize,
        seed: u64,
        block_time: Duration,
        extra: F,
    ) -> anyhow::Result<Self>
    where
        F: FnOnce(&mut ChainState, &ScenarioInfo) -> anyhow::Result<()> + Send + 'static,
    {
        let cfg = ScenarioConfig {
            accounts,
            seed,
            liquidator_wallets: 2,
            ..ScenarioConfig::default()
        };
        let node_config = NodeConfig {
            chain: redline_devnet::chain::ChainConfig {
                block_time,
                ..Default::default()
            },
            port: 0,
            ..NodeConfig::default()
        };
        let genesis_cfg = cfg.clone();
        let (node, (info, borrowers)) = redline_devnet::rpc::start(node_config, move |state| {
            let info = scenario::genesis(state, &genesis_cfg)?;
            extra(state, &info)?;
            let positions = scenario::generate_positions(
                state,
                &scenario::markets(),
                genesis_cfg.accounts,
                genesis_cfg.seed,
            )?;
            let borrowers: Vec<String> = positions
                .iter()
                .take(genesis_cfg.accounts)
                .map(|p| p.user.to_string())
                .collect();
            Ok((info, borrowers))
        })
        .await
        .context("starting the devnet scenario")?;
        let manifest = scenario::manifest(&node, &info, &cfg);
        let client = TendermintClient::new(ChainConfig::from_manifest(&manifest)?)?;
        Ok(Devnet {
            node,
            manifest,
            client,
            borrowers,
            genesis_time: info.genesis_time,
        })
    }

    pub fn red_bank(&self) -> &str {
        &self.manifest.contracts.red_bank
    }

    /// Every account with debt, from raw scans of the `debts` and `colls` maps.
    pub async fn scan_debtors(&self) -> anyhow::Result<Vec<AccountPositions>> {
        let options = ScanOptions {
            page_size: 5_000,
            concurrency: 4,
            height: None,
        };
        let debts_prefix = map_prefix(namespace::DEBTS);
        let colls_prefix = map_prefix(namespace::COLLATERALS);
        let debts = self
            .client
            .scan_raw_prefix_concurrent(self.red_bank(), &debts_prefix, options)
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
        let colls = self
            .client
            .scan_raw_prefix_concurrent(self.red_bank(), &colls_prefix, options)
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
    pub async fn fill_index(&self, index: &PositionIndex) -> anyhow::Result<usize> {
        let debtors = self.scan_debtors().await?;
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
        let height = self.client.latest_height().await?;
        let snapshot = self.snapshot(height).await?;
        index.set_markets(&snapshot.markets).await?;
        index.set_params(&snapshot.params).await?;
        index.set_thf(snapshot.target_health_factor).await?;
        Ok(indexed.len())
    }

    /// The snapshot of block `height` from the chain's current answers: valid for `height` as
    /// long as no transaction or price move happened in between (the caller makes sure).
    pub async fn snapshot(&self, height: u64) -> anyhow::Result<BlockSnapshot> {
        let c = &self.manifest.contracts;
        let markets: Vec<Market> = self
            .client
            .query_smart(
                &c.red_bank,
                &QueryMsg::Markets {
                    start_after: None,
                    limit: Some(100),
                },
                None,
            )
            .await?;
        let all_params: Vec<AssetParams> = self
            .client
            .query_smart(
                &c.params,
                &params::QueryMsg::AllAssetParams {
                    start_after: None,
                    limit: Some(100),
                },
                None,
            )
            .await?;
        let thf: Decimal = self
            .client
            .query_smart(&c.params, &params::QueryMsg::TargetHealthFactor {}, None)
            .await?;
        Ok(BlockSnapshot {
            chain_id: self.manifest.chain_id.clone(),
            protocol: ProtocolKind::RedBank,
            height,
            time: self.block_time(height).await?,
            prices: self.prices(ActionKind::Default).await?,
            liquidation_prices: self.prices(ActionKind::Liquidation).await?,
            markets,
            params: all_params,
            target_health_factor: thf,
            accounts: 0,
        })
    }

    async fn prices(&self, kind: ActionKind) -> anyhow::Result<BTreeMap<String, Decimal>> {
        let prices: Vec<PriceResponse> = self
            .client
            .query_smart(
                &self.manifest.contracts.oracle,
                &oracle::QueryMsg::Prices {
                    start_after: None,
                    limit: Some(100),
                    kind: Some(kind),
                },
                None,
            )
            .await?;
        Ok(prices.into_iter().map(|p| (p.denom, p.price)).collect())
    }

    /// Header time of block `height`, waiting for the block to be served.
    pub async fn block_time(&self, height: u64) -> anyhow::Result<cosmwasm_std::Timestamp> {
        let mut last_error = None;
        for _ in 0..200 {
            match self.client.block_time(height).await {
                Ok(time) => return Ok(time),
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(anyhow::anyhow!(
            "block {height} not served: {}",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        ))
    }

    /// Moves oracle prices at the next block and waits for it; returns its height.
    pub async fn move_prices(&self, prices: &[(&str, &str)]) -> anyhow::Result<u64> {
        let prices: BTreeMap<String, Decimal> = prices
            .iter()
            .map(|(d, p)| {
                let price: Decimal = p
                    .parse()
                    .map_err(|e| anyhow::anyhow!("price {p} of {d}: {e}"))?;
                Ok((d.to_string(), price))
            })
            .collect::<anyhow::Result<_>>()?;
        let height = self
            .node
            .chain()
            .set_prices(prices)
            .await?
            .map_err(|e| anyhow::anyhow!("moving prices: {e}"))?;
        self.wait_for_height(height).await?;
        Ok(height)
    }

    pub async fn wait_for_height(&self, height: u64) -> anyhow::Result<()> {
        for _ in 0..1_000 {
            if self.client.latest_height().await? >= height {
                self.block_time(height).await?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("height {height} did not come")
    }

    pub async fn shutdown(self) {
        self.node.shutdown().await
    }
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
