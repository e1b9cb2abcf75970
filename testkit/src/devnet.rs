//! Devnets running the default scenario (Mars contracts, seeded borrowers and lenders, funded
//! liquidator wallets) in this process, on a free loopback port, through `redline_devnet`'s own
//! API, plus what tests read back from them: the manifest, a chain client, the seeded
//! positions, block snapshots and account positions as the chain answers them.
//!
//! The chain's answers are read here by plain smart queries, paged by hand, so a test comparing a
//! service's view with them does not compare the service's reader with itself.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use cosmwasm_std::{Coin, Decimal, Timestamp};
use mars::manifest::Manifest;
use mars::msg::oracle::{self, ActionKind, PriceResponse};
use mars::msg::params;
use mars::msg::red_bank::{Collateral, Debt, QueryMsg, UserCollateralResponse, UserDebtResponse};
use mars::types::{AssetParams, Market};
use redline_chain::{
    execute_contract_msg, sign_with_simulated_gas, ChainClient, ChainConfig, TendermintClient,
    TxBuilder, TxOutcome, Wallet,
};
use redline_devnet::chain::ChainState;
use redline_devnet::competitor::tally::liquidation_txs;
use redline_devnet::competitor::{Competitor, CompetitorConfig, Contest, Watch};
use redline_devnet::contracts::SeedPosition;
use redline_devnet::rpc::{NodeConfig, NodeHandle};
use redline_devnet::scenario::{self, ScenarioConfig, ScenarioInfo};
use redline_pipeline::index::{AccountPositions, BlockSnapshot};
use redline_pipeline::jobs::ProtocolKind;

/// Block interval of test devnets: fast enough for quick tests, slow enough for a loaded 2-core
/// CI machine to keep up.
pub const BLOCK_TIME: Duration = Duration::from_millis(200);

/// Items per page of the hand-paged smart queries: small, so paging is exercised.
const PAGE: u32 = 5;

/// Starts a devnet node on a free loopback port after running `genesis` on its chain thread.
pub async fn start_node<G, T>(
    chain: redline_devnet::chain::ChainConfig,
    genesis: G,
) -> anyhow::Result<(NodeHandle, T)>
where
    G: FnOnce(&mut ChainState) -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let config = NodeConfig {
        chain,
        port: 0,
        ..NodeConfig::default()
    };
    redline_devnet::rpc::start(config, genesis)
        .await
        .context("starting the devnet node")
}

type AfterGenesis = Box<dyn FnOnce(&mut ChainState, &ScenarioInfo) -> anyhow::Result<()> + Send>;

/// How to start a [`Devnet`]: from [`Devnet::scenario`].
pub struct DevnetBuilder {
    scenario: ScenarioConfig,
    chain: redline_devnet::chain::ChainConfig,
    after_genesis: Option<AfterGenesis>,
    competitor: Option<CompetitorConfig>,
}

impl DevnetBuilder {
    /// Funded liquidator wallets (slots `0..wallets` of the manifest's mnemonic); 4 unless set.
    pub fn liquidator_wallets(mut self, wallets: u32) -> Self {
        self.scenario.liquidator_wallets = wallets;
        self
    }

    /// Rover credit accounts seeded beside the borrowers (none unless set; Rover is deployed
    /// only with some).
    pub fn credit_accounts(mut self, accounts: usize) -> Self {
        self.scenario.credit_accounts = accounts;
        self
    }

    /// Runs `flavor`'s Mars on `flavor`'s chain (ids, prefix, fees).
    pub fn flavor(mut self, flavor: redline_devnet::flavor::Flavor) -> Self {
        self.scenario.flavor = flavor;
        self.chain = flavor.chain_config(self.chain);
        self
    }

    /// The fee market's rule (after [`DevnetBuilder::flavor`], which sets the flavor's own):
    /// tests give it a small target so that a few txs move the base gas price.
    pub fn fee_market(mut self, market: redline_devnet::chain::FeeMarketParams) -> Self {
        self.chain.fee_market = Some(market);
        self
    }

    /// The most gas (the sum of gas limits) a block takes (after [`DevnetBuilder::flavor`],
    /// which sets the flavor's own): txs that do not fit wait for a later block.
    pub fn block_gas_limit(mut self, gas: u64) -> Self {
        self.chain.max_block_gas = Some(gas);
        self
    }

    /// A competing bot on the chain from its first block, watching the seeded debtors (none
    /// unless set).
    pub fn competitor(mut self, config: CompetitorConfig) -> Self {
        self.scenario.competitor = true;
        self.competitor = Some(config);
        self
    }

    /// [`BLOCK_TIME`] unless set.
    pub fn block_time(mut self, block_time: Duration) -> Self {
        self.chain.block_time = block_time;
        self
    }

    /// How many recent blocks the node can answer for (the devnet's default unless set).
    pub fn history_blocks(mut self, blocks: usize) -> Self {
        self.chain.history_blocks = blocks;
        self
    }

    /// Runs `extra` on the chain after the scenario's genesis and before the seeded positions
    /// are read back (e.g. to set prices as the oracle's owner).
    pub fn after_genesis(
        mut self,
        extra: impl FnOnce(&mut ChainState, &ScenarioInfo) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        self.after_genesis = Some(Box::new(extra));
        self
    }

    pub async fn start(self) -> anyhow::Result<Devnet> {
        let cfg = self.scenario;
        let genesis_cfg = cfg.clone();
        let after_genesis = self.after_genesis;
        let (node, (info, positions)) = start_node(self.chain, move |state| {
            let info = scenario::genesis(state, &genesis_cfg)?;
            if let Some(extra) = after_genesis {
                extra(state, &info)?;
            }
            // The generator is deterministic: running it again gives what genesis seeded.
            let positions = scenario::generate_positions(
                state,
                &scenario::markets(genesis_cfg.flavor),
                genesis_cfg.accounts,
                genesis_cfg.seed,
            )?;
            Ok((info, positions))
        })
        .await
        .context("starting the devnet scenario")?;
        let manifest = scenario::manifest(&node, &info, &cfg);
        let client = TendermintClient::new(ChainConfig::from_manifest(&manifest)?)?;
        let competitor = match self.competitor {
            None => None,
            Some(config) => {
                Some(Competitor::start(node.chain().clone(), config, Watch::scenario(&info)).await?)
            }
        };
        let borrowers = positions
            .iter()
            .take(cfg.accounts)
            .map(|p| p.user.to_string())
            .collect();
        Ok(Devnet {
            node,
            info,
            manifest,
            client,
            positions,
            borrowers,
            competitor,
        })
    }
}

/// A devnet running the default scenario in this process.
pub struct Devnet {
    pub node: NodeHandle,
    pub info: ScenarioInfo,
    pub manifest: Manifest,
    /// A client built from the manifest, as services build theirs.
    pub client: TendermintClient,
    /// The seeded positions (borrowers first, then the lenders funding each market), as genesis
    /// wrote them.
    pub positions: Vec<SeedPosition>,
    /// The seeded borrowers in seeding order (about 90% of them have debt).
    pub borrowers: Vec<String>,
    /// The competing bot, when [`DevnetBuilder::competitor`] asked for one.
    pub competitor: Option<Competitor>,
}

impl Devnet {
    /// The scenario with `accounts` borrowers drawn from `seed`, 4 liquidator wallets and
    /// [`BLOCK_TIME`] blocks; [`DevnetBuilder::start`] starts it.
    pub fn scenario(accounts: usize, seed: u64) -> DevnetBuilder {
        DevnetBuilder {
            scenario: ScenarioConfig {
                accounts,
                seed,
                liquidator_wallets: 4,
                ..ScenarioConfig::default()
            },
            chain: redline_devnet::chain::ChainConfig {
                block_time: BLOCK_TIME,
                ..Default::default()
            },
            after_genesis: None,
            competitor: None,
        }
    }

    /// The chain client's config, built from the manifest as services build it.
    pub fn chain_config(&self) -> ChainConfig {
        ChainConfig::from_manifest(&self.manifest).expect("the devnet writes a valid manifest")
    }

    /// Who won each Red Bank liquidation from height `from` on, and which of the others' txs
    /// the competitor beat, read from the committed blocks alone. Empty without a competitor.
    pub fn contest(&self, from: u64) -> Contest {
        let Some(competitor) = &self.competitor else {
            return Contest::default();
        };
        let store = self.node.chain().store();
        let txs = liquidation_txs(&store, self.red_bank(), from, store.latest_height());
        Contest::of(&txs, &competitor.address)
    }

    pub fn red_bank(&self) -> &str {
        &self.manifest.contracts.red_bank
    }

    /// Every seeded user: the borrowers, then the lenders of each market.
    pub fn seeded_users(&self) -> Vec<String> {
        self.positions.iter().map(|p| p.user.to_string()).collect()
    }

    /// The seeded borrowers that were given debt.
    pub fn debtors(&self) -> Vec<String> {
        self.positions
            .iter()
            .filter(|p| !p.debt.is_empty())
            .map(|p| p.user.to_string())
            .collect()
    }

    /// Funded liquidator wallet `index` of the manifest's mnemonic.
    pub fn liquidator(&self, index: u32) -> Wallet {
        let mnemonic = self
            .manifest
            .liquidator_mnemonic
            .as_deref()
            .expect("the devnet manifest carries the liquidator mnemonic");
        Wallet::from_mnemonic(mnemonic, &self.manifest.bech32_prefix, index)
            .expect("the liquidator mnemonic derives")
    }

    /// Sets oracle prices at the next block, without waiting for it; returns its height.
    pub async fn set_prices(&self, prices: BTreeMap<String, Decimal>) -> anyhow::Result<u64> {
        self.node
            .chain()
            .set_prices(prices)
            .await?
            .map_err(|e| anyhow::anyhow!("moving prices: {e}"))
    }

    /// Moves oracle prices (`(denom, price)`) at the next block and waits for it; returns its
    /// height.
    pub async fn move_prices(&self, prices: &[(&str, &str)]) -> anyhow::Result<u64> {
        let prices = prices
            .iter()
            .map(|(d, p)| {
                let price: Decimal = p
                    .parse()
                    .map_err(|e| anyhow::anyhow!("price {p} of {d}: {e}"))?;
                Ok((d.to_string(), price))
            })
            .collect::<anyhow::Result<_>>()?;
        let height = self.set_prices(prices).await?;
        self.wait_for_height(height).await?;
        Ok(height)
    }

    /// Waits until block `height` is the latest or older, and served.
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

    /// Header time of block `height`, waiting for the block to be served.
    pub async fn block_time(&self, height: u64) -> anyhow::Result<Timestamp> {
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
        // core-contracts has no target health factor (the snapshot's is then unused).
        let thf: Decimal = if self.manifest.liquidation_rule.reads_target_health_factor() {
            self.client
                .query_smart(&c.params, &params::QueryMsg::TargetHealthFactor {}, None)
                .await?
        } else {
            Decimal::zero()
        };
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

    /// `user`'s positions (scaled amounts and flags) by the Red Bank's list queries.
    pub async fn account_positions(&self, user: &str) -> anyhow::Result<AccountPositions> {
        account_positions(&self.client, self.red_bank(), user).await
    }

    /// Signs and broadcasts one message to `contract` from `wallet` and waits for its
    /// inclusion; fails unless it succeeds.
    pub async fn execute<M: serde::Serialize>(
        &self,
        wallet: &Wallet,
        contract: &str,
        msg: &M,
        funds: &[Coin],
    ) -> anyhow::Result<TxOutcome> {
        let builder = TxBuilder::new(self.client.config());
        let account = self.client.account(wallet.address().as_ref()).await?;
        let msg = execute_contract_msg(wallet.address(), contract, msg, funds)?;
        let signed = sign_with_simulated_gas(
            &self.client,
            &builder,
            wallet,
            account.account_number,
            account.sequence,
            vec![msg],
            "",
        )
        .await?;
        let hash = self.client.broadcast_sync(signed.bytes).await?;
        Ok(self
            .client
            .wait_for_tx(hash, Duration::from_secs(30))
            .await?
            .into_result()?)
    }

    pub async fn shutdown(self) {
        self.node.shutdown().await
    }
}

/// `user`'s positions on the Red Bank at `red_bank`, by its list queries.
pub async fn account_positions(
    client: &TendermintClient,
    red_bank: &str,
    user: &str,
) -> anyhow::Result<AccountPositions> {
    let mut positions = AccountPositions::new(user);
    let collaterals: Vec<UserCollateralResponse> =
        all_pages(client, red_bank, |start_after| QueryMsg::UserCollaterals {
            user: user.into(),
            account_id: None,
            start_after,
            limit: Some(PAGE),
        })
        .await?;
    for c in collaterals {
        positions.collaterals.insert(
            c.denom,
            Collateral {
                amount_scaled: c.amount_scaled,
                enabled: c.enabled,
            },
        );
    }
    let debts: Vec<UserDebtResponse> =
        all_pages(client, red_bank, |start_after| QueryMsg::UserDebts {
            user: user.into(),
            start_after,
            limit: Some(PAGE),
        })
        .await?;
    for d in debts {
        positions.debts.insert(
            d.denom,
            Debt {
                amount_scaled: d.amount_scaled,
                uncollateralized: d.uncollateralized,
            },
        );
    }
    Ok(positions)
}

/// Every item of a list query keyed by denom, reading until an empty page.
async fn all_pages<R: serde::de::DeserializeOwned + Send + Denominated>(
    client: &TendermintClient,
    contract: &str,
    query: impl Fn(Option<String>) -> QueryMsg,
) -> anyhow::Result<Vec<R>> {
    let mut all = Vec::new();
    let mut start_after = None;
    loop {
        let page: Vec<R> = client
            .query_smart(contract, &query(start_after.clone()), None)
            .await?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        start_after = Some(last.denom().to_string());
        all.extend(page);
    }
}

/// A list query's item, paged by its denom.
trait Denominated {
    fn denom(&self) -> &str;
}

impl Denominated for UserCollateralResponse {
    fn denom(&self) -> &str {
        &self.denom
    }
}

impl Denominated for UserDebtResponse {
    fn denom(&self) -> &str {
        &self.denom
    }
}
