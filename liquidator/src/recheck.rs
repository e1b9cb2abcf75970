//! Re-reading a candidate's position on chain before acting on it.
//!
//! A candidate was computed at some block; by the time a worker takes it, the account may have
//! repaid, been liquidated by someone else, or moved with prices. So the liquidator reads the
//! account's scaled collateral and debt at the latest height (`user_collaterals`,
//! `user_debts`), and the market-wide inputs (markets, oracle prices of both kinds, asset
//! params, target health factor) once per block into a shared [`MarketSnapshot`].
//!
//! Interest accrues between the check and the inclusion of the liquidation, so underlying
//! amounts are computed from the scaled ones for a chosen block time ([`AccountPosition::holdings_at`]),
//! with the contract's own index math.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128};
use redline_common::chain::{ChainClient, ChainError};
use redline_common::math::interest::{underlying_debt_amount, underlying_liquidity_amount};
use redline_common::math::MathError;
use redline_common::msg::oracle::{
    ActionKind, ConfigResponse as OracleConfig, PriceResponse, QueryMsg as OracleQuery,
};
use redline_common::msg::params::QueryMsg as ParamsQuery;
use redline_common::msg::red_bank::{
    QueryMsg as RedBankQuery, UserCollateralResponse, UserDebtResponse,
};
use redline_common::types::{AssetParams, DenomPosition, Market};
use tokio::sync::Mutex;

use crate::value::PriceBook;

/// Page size of list queries (Mars's maximum for most of them).
const PAGE: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
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
    #[error("account {account} holds `{denom}`, which has no Red Bank market")]
    UnknownMarket { account: String, denom: String },
}

impl RecheckError {
    /// Transport trouble that may pass; everything else is about the data.
    pub fn is_transient(&self) -> bool {
        match self {
            RecheckError::Chain { source, .. } => source.is_transient(),
            RecheckError::NoBlockYet => true,
            _ => false,
        }
    }

    /// The chain has produced no block yet: callers wait quietly (debug) and ask again;
    /// [`PositionReader::latest`] says so once per process, at info.
    pub fn is_no_block_yet(&self) -> bool {
        matches!(self, RecheckError::NoBlockYet)
    }
}

fn chain_error(what: impl Into<String>) -> impl FnOnce(ChainError) -> RecheckError {
    let what = what.into();
    move |source| {
        if source.is_no_block_yet() {
            return RecheckError::NoBlockYet;
        }
        RecheckError::Chain {
            what,
            source: Box::new(source),
        }
    }
}

/// Whether this process already said it waits for the chain's first block.
static SAID_WAITING_FOR_FIRST_BLOCK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The Mars contracts a Red Bank liquidator talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedBankContracts {
    pub red_bank: String,
    pub oracle: String,
    pub params: String,
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
    pub target_health_factor: Decimal,
}

impl MarketSnapshot {
    pub fn market(&self, account: &str, denom: &str) -> Result<&Market, RecheckError> {
        self.markets
            .get(denom)
            .ok_or_else(|| RecheckError::UnknownMarket {
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

    /// Underlying holdings at block time `timestamp` (seconds): collateral truncated and debt
    /// ceiled from the scaled amounts with the markets' indexes brought to that time, as the
    /// Red Bank computes them when it executes at that time.
    pub fn holdings_at(
        &self,
        snapshot: &MarketSnapshot,
        timestamp: u64,
    ) -> Result<Vec<DenomPosition>, RecheckError> {
        let math = |source| RecheckError::Math {
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
            let line = holdings
                .entry(&collateral.denom)
                .or_insert_with(|| DenomPosition {
                    denom: collateral.denom.clone(),
                    ..DenomPosition::default()
                });
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
            let line = holdings
                .entry(&debt.denom)
                .or_insert_with(|| DenomPosition {
                    denom: debt.denom.clone(),
                    ..DenomPosition::default()
                });
            line.debt_amount = amount;
            line.uncollateralized_debt = debt.uncollateralized;
        }
        Ok(holdings.into_values().collect())
    }
}

/// Reads positions and keeps one [`MarketSnapshot`] per block, shared by the workers of a
/// process.
pub struct PositionReader<C> {
    client: C,
    contracts: RedBankContracts,
    base_decimals: u32,
    snapshot: Mutex<Option<Arc<MarketSnapshot>>>,
    verdicts: std::sync::Mutex<std::collections::HashMap<String, Verdict>>,
}

/// Why an account had no liquidation, and under which prices and when.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    fingerprint: u64,
    at_secs: u64,
    label: &'static str,
}

/// How long "no liquidation possible" stays believed while prices do not move: interest moves
/// positions slowly, and a price move (a new fingerprint) voids it at once.
pub const VERDICT_TTL_SECS: u64 = 30;
/// Accounts remembered at most (the memory is cleared beyond).
const MAX_VERDICTS: usize = 200_000;

impl<C: ChainClient> PositionReader<C> {
    pub fn new(client: C, contracts: RedBankContracts, base_decimals: u32) -> Self {
        PositionReader {
            client,
            contracts,
            base_decimals,
            snapshot: Mutex::new(None),
            verdicts: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Remembers that `account` cannot be liquidated under `snapshot`'s prices (e.g. every
    /// liquidation would lower its health), so candidates for it can be skipped for a while
    /// without re-reading it.
    pub fn remember_unliquidatable(
        &self,
        account: &str,
        snapshot: &MarketSnapshot,
        label: &'static str,
    ) {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        if verdicts.len() >= MAX_VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(
            account.to_string(),
            Verdict {
                fingerprint: snapshot.fingerprint,
                at_secs: snapshot.block_time_secs,
                label,
            },
        );
    }

    /// Why `account` was found unliquidatable under the same prices within
    /// [`VERDICT_TTL_SECS`], if it was.
    pub fn known_unliquidatable(
        &self,
        account: &str,
        snapshot: &MarketSnapshot,
    ) -> Option<&'static str> {
        let verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        verdicts
            .get(account)
            .filter(|v| {
                v.fingerprint == snapshot.fingerprint
                    && snapshot.block_time_secs.saturating_sub(v.at_secs) <= VERDICT_TTL_SECS
            })
            .map(|v| v.label)
    }

    pub fn client(&self) -> &C {
        &self.client
    }

    pub fn contracts(&self) -> &RedBankContracts {
        &self.contracts
    }

    /// The oracle's base denom (what prices are quoted in).
    pub async fn base_denom(client: &C, oracle: &str) -> Result<String, RecheckError> {
        let config: OracleConfig = client
            .query_smart(oracle, &OracleQuery::Config {}, None)
            .await
            .map_err(chain_error("oracle config"))?;
        Ok(config.base_denom)
    }

    /// The snapshot of the latest block, read once per block. [`RecheckError::NoBlockYet`]
    /// before the chain's first block (said once per process, at info).
    pub async fn latest(&self) -> Result<Arc<MarketSnapshot>, RecheckError> {
        let latest = self.read_latest().await;
        if matches!(latest, Err(RecheckError::NoBlockYet))
            && !SAID_WAITING_FOR_FIRST_BLOCK.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!("waiting for the chain's first block");
        }
        latest
    }

    async fn read_latest(&self) -> Result<Arc<MarketSnapshot>, RecheckError> {
        let height = self
            .client
            .latest_height()
            .await
            .map_err(chain_error("latest height"))?;
        if height == 0 {
            return Err(RecheckError::NoBlockYet);
        }
        let mut cached = self.snapshot.lock().await;
        if let Some(snapshot) = cached.as_ref().filter(|s| s.height >= height) {
            return Ok(snapshot.clone());
        }
        let snapshot = Arc::new(self.read_snapshot(height).await?);
        *cached = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Forgets the cached snapshot (e.g. after prices are known to have moved).
    pub async fn invalidate(&self) {
        *self.snapshot.lock().await = None;
    }

    async fn read_snapshot(&self, height: u64) -> Result<MarketSnapshot, RecheckError> {
        let at = Some(height);
        let block_time = async {
            match self.client.block_time(height).await {
                Ok(time) => Ok(time),
                // CometBFT reports height 1 before the first block is committed.
                Err(ChainError::Rpc { .. }) if height <= 1 => Err(RecheckError::NoBlockYet),
                Err(e) => Err(chain_error(format!("time of block {height}"))(e)),
            }
        };
        let markets = async {
            let list: Vec<Market> = self
                .paged(
                    &self.contracts.red_bank,
                    "markets",
                    |start_after| RedBankQuery::Markets {
                        start_after,
                        limit: Some(PAGE),
                    },
                    |m: &Market| m.denom.clone(),
                    at,
                )
                .await?;
            Ok::<_, RecheckError>(list)
        };
        let liquidation_prices = self.prices(ActionKind::Liquidation, at);
        let default_prices = self.prices(ActionKind::Default, at);
        let params = async {
            let list: Vec<AssetParams> = self
                .paged(
                    &self.contracts.params,
                    "all_asset_params",
                    |start_after| ParamsQuery::AllAssetParams {
                        start_after,
                        limit: Some(PAGE),
                    },
                    |p: &AssetParams| p.denom.clone(),
                    at,
                )
                .await?;
            Ok::<_, RecheckError>(list)
        };
        let target_health_factor = async {
            self.client
                .query_smart::<_, Decimal>(
                    &self.contracts.params,
                    &ParamsQuery::TargetHealthFactor {},
                    at,
                )
                .await
                .map_err(chain_error("target health factor"))
        };
        let (block_time, markets, liquidation_prices, default_prices, params, thf) = futures::try_join!(
            block_time,
            markets,
            liquidation_prices,
            default_prices,
            params,
            target_health_factor
        )?;
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            for (denom, price) in liquidation_prices.iter().chain(default_prices.iter()) {
                denom.hash(&mut hasher);
                price.to_string().hash(&mut hasher);
            }
            serde_json::to_string(&params)
                .unwrap_or_default()
                .hash(&mut hasher);
            thf.to_string().hash(&mut hasher);
            hasher.finish()
        };
        Ok(MarketSnapshot {
            height,
            fingerprint,
            block_time_secs: block_time.seconds(),
            markets: markets.into_iter().map(|m| (m.denom.clone(), m)).collect(),
            liquidation_prices,
            prices: PriceBook::new(default_prices, self.base_decimals),
            params: params.into_iter().map(|p| (p.denom.clone(), p)).collect(),
            target_health_factor: thf,
        })
    }

    async fn prices(
        &self,
        kind: ActionKind,
        at: Option<u64>,
    ) -> Result<BTreeMap<String, Decimal>, RecheckError> {
        let list: Vec<PriceResponse> = self
            .paged(
                &self.contracts.oracle,
                "prices",
                |start_after| OracleQuery::Prices {
                    start_after,
                    limit: Some(PAGE),
                    kind: Some(kind),
                },
                |p: &PriceResponse| p.denom.clone(),
                at,
            )
            .await?;
        Ok(list.into_iter().map(|p| (p.denom, p.price)).collect())
    }

    /// Pages a `start_after`/`limit` list query to its end.
    async fn paged<Q, T>(
        &self,
        contract: &str,
        what: &str,
        query: impl Fn(Option<String>) -> Q,
        key: impl Fn(&T) -> String,
        height: Option<u64>,
    ) -> Result<Vec<T>, RecheckError>
    where
        Q: serde::Serialize + Sync,
        T: serde::de::DeserializeOwned + Send,
    {
        let mut all = Vec::new();
        let mut start_after = None;
        loop {
            let page: Vec<T> = self
                .client
                .query_smart(contract, &query(start_after.clone()), height)
                .await
                .map_err(chain_error(format!("{what} of {contract}")))?;
            let full = page.len() >= PAGE as usize;
            let last = page.last().map(&key);
            all.extend(page);
            match last {
                Some(last) if full && Some(&last) != start_after.as_ref() => {
                    start_after = Some(last)
                }
                _ => return Ok(all),
            }
        }
    }

    /// The account's stored collateral and debt at `height`.
    pub async fn read_account(
        &self,
        account: &str,
        height: u64,
    ) -> Result<AccountPosition, RecheckError> {
        let at = Some(height);
        let red_bank = &self.contracts.red_bank;
        let collaterals_what = format!("user_collaterals of {account}");
        let debts_what = format!("user_debts of {account}");
        let collaterals = self.paged(
            red_bank,
            &collaterals_what,
            |start_after| RedBankQuery::UserCollaterals {
                user: account.to_string(),
                account_id: None,
                start_after,
                limit: Some(PAGE),
            },
            |c: &UserCollateralResponse| c.denom.clone(),
            at,
        );
        let debts = self.paged(
            red_bank,
            &debts_what,
            |start_after| RedBankQuery::UserDebts {
                user: account.to_string(),
                start_after,
                limit: Some(PAGE),
            },
            |d: &UserDebtResponse| d.denom.clone(),
            at,
        );
        let (collaterals, debts) = futures::try_join!(collaterals, debts)?;
        Ok(AccountPosition {
            account: account.to_string(),
            height,
            collaterals,
            debts,
        })
    }
}

/// Blocks after the snapshot's a liquidation is planned to land by: the next block normally,
/// with room for a busy node or a slow batch.
pub const INCLUSION_BLOCKS: u32 = 3;

/// The block times a liquidation planned on `snapshot` can execute at: the earliest (the
/// snapshot block's own second: a later block is never earlier) and the latest planned for
/// ([`INCLUSION_BLOCKS`] blocks later, rounded up to the next second, since the contracts see
/// whole seconds).
pub fn inclusion_window(snapshot: &MarketSnapshot, block_interval: Duration) -> (u64, u64) {
    let earliest = snapshot.block_time_secs;
    let ahead = (block_interval * INCLUSION_BLOCKS).as_secs_f64().ceil() as u64 + 1;
    (earliest, earliest + ahead)
}

/// Amount of `denom` the account owes at `timestamp` (0 when none).
pub fn debt_of(holdings: &[DenomPosition], denom: &str) -> Uint128 {
    holdings
        .iter()
        .find(|h| h.denom == denom)
        .map(|h| h.debt_amount)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_with(markets: Vec<Market>) -> MarketSnapshot {
        MarketSnapshot {
            height: 10,
            fingerprint: 0,
            block_time_secs: 1_000,
            markets: markets.into_iter().map(|m| (m.denom.clone(), m)).collect(),
            liquidation_prices: BTreeMap::new(),
            prices: PriceBook::new(BTreeMap::new(), 6),
            params: BTreeMap::new(),
            target_health_factor: Decimal::percent(105),
        }
    }

    #[test]
    fn holdings_accrue_interest_to_the_chosen_time() {
        let usdc = Market {
            denom: "uusdc".into(),
            borrow_rate: Decimal::percent(10),
            liquidity_rate: Decimal::percent(5),
            indexes_last_updated: 1_000,
            ..Market::default()
        };
        let atom = Market {
            denom: "uatom".into(),
            indexes_last_updated: 900,
            ..Market::default()
        };
        let snapshot = snapshot_with(vec![usdc, atom]);
        let position = AccountPosition {
            account: "osmo1user".into(),
            height: 10,
            collaterals: vec![UserCollateralResponse {
                denom: "uatom".into(),
                amount_scaled: Uint128::new(10_000_000_000),
                amount: Uint128::new(10_000),
                enabled: true,
            }],
            debts: vec![UserDebtResponse {
                denom: "uusdc".into(),
                amount_scaled: Uint128::new(65_000_000_000),
                amount: Uint128::new(65_000),
                uncollateralized: false,
            }],
        };
        let now = position.holdings_at(&snapshot, 1_000).unwrap();
        assert_eq!(debt_of(&now, "uusdc"), Uint128::new(65_000));
        // A year at 10%: 71,500 owed, ceiled.
        let later = position.holdings_at(&snapshot, 1_000 + 31_536_000).unwrap();
        assert_eq!(debt_of(&later, "uusdc"), Uint128::new(71_500));
        let atom = later.iter().find(|h| h.denom == "uatom").unwrap();
        assert_eq!(atom.collateral_amount, Uint128::new(10_000));
        assert!(atom.collateral_enabled);

        let unknown = AccountPosition {
            debts: vec![UserDebtResponse {
                denom: "ufoo".into(),
                amount_scaled: Uint128::one(),
                amount: Uint128::one(),
                uncollateralized: false,
            }],
            ..position
        };
        let err = unknown
            .holdings_at(&snapshot, 1_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ufoo") && err.contains("osmo1user"), "{err}");
    }

    #[test]
    fn inclusion_window_spans_the_next_block() {
        let snapshot = snapshot_with(vec![]);
        assert_eq!(
            inclusion_window(&snapshot, Duration::from_millis(200)),
            (1_000, 1_002)
        );
        assert_eq!(
            inclusion_window(&snapshot, Duration::from_secs(6)),
            (1_000, 1_019)
        );
    }
}
