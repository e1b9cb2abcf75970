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

use std::sync::Arc;
use std::time::Duration;

use cosmwasm_std::Uint128;
use mars::types::DenomPosition;
use redline_chain::ChainClient;
use redline_protocol::{chain_error, AccountKey, Protocol, Protocols, RedBank, RedBankContracts};
use tokio::sync::Mutex;

pub use redline_protocol::{AccountPosition, MarketSnapshot, ReadError};

/// Whether this process already said it waits for the chain's first block.
static SAID_WAITING_FOR_FIRST_BLOCK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Reads positions and keeps one [`MarketSnapshot`] per block, shared by the workers of a
/// process.
pub struct PositionReader<C> {
    protocols: Protocols<C>,
    snapshot: Mutex<Option<Arc<MarketSnapshot>>>,
    verdicts: std::sync::Mutex<std::collections::HashMap<AccountKey, Verdict>>,
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
    pub fn new(red_bank: RedBank<C>) -> Self {
        PositionReader {
            protocols: Protocols::new(red_bank),
            snapshot: Mutex::new(None),
            verdicts: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Remembers that `account` cannot be liquidated under `snapshot`'s prices (e.g. every
    /// liquidation would lower its health), so candidates for it can be skipped for a while
    /// without re-reading it.
    pub fn remember_unliquidatable(
        &self,
        account: &AccountKey,
        snapshot: &MarketSnapshot,
        label: &'static str,
    ) {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        if verdicts.len() >= MAX_VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(
            account.clone(),
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
        account: &AccountKey,
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
        &self.protocols.red_bank.client
    }

    pub fn contracts(&self) -> &RedBankContracts {
        &self.protocols.red_bank.contracts
    }

    /// The protocols this deployment runs, to dispatch a job on its kind.
    pub fn protocols(&self) -> &Protocols<C> {
        &self.protocols
    }

    /// The snapshot of the latest block, read once per block. [`ReadError::NoBlockYet`]
    /// before the chain's first block (said once per process, at info).
    pub async fn latest(&self) -> Result<Arc<MarketSnapshot>, ReadError> {
        let latest = self.read_latest().await;
        if matches!(latest, Err(ReadError::NoBlockYet))
            && !SAID_WAITING_FOR_FIRST_BLOCK.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!("waiting for the chain's first block");
        }
        latest
    }

    async fn read_latest(&self) -> Result<Arc<MarketSnapshot>, ReadError> {
        let height = self
            .client()
            .latest_height()
            .await
            .map_err(chain_error("latest height"))?;
        if height == 0 {
            return Err(ReadError::NoBlockYet);
        }
        self.snapshot_at_least(height).await
    }

    /// The snapshot of block `height`, or of a later block already read: for a caller told
    /// that block `height` was just committed, without asking the chain for its latest height.
    pub async fn snapshot_at_least(&self, height: u64) -> Result<Arc<MarketSnapshot>, ReadError> {
        let mut cached = self.snapshot.lock().await;
        if let Some(snapshot) = cached.as_ref().filter(|s| s.height >= height) {
            return Ok(snapshot.clone());
        }
        let snapshot = Arc::new(self.protocols.red_bank.read_snapshot(Some(height)).await?);
        *cached = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Forgets the cached snapshot (e.g. after prices are known to have moved).
    pub async fn invalidate(&self) {
        *self.snapshot.lock().await = None;
    }

    /// The account's stored collateral and debt at `height`.
    pub async fn read_account(
        &self,
        account: &AccountKey,
        height: u64,
    ) -> Result<AccountPosition, ReadError> {
        self.protocols
            .red_bank
            .read_position(account, Some(height))
            .await
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
    use std::collections::BTreeMap;

    use cosmwasm_std::Decimal;
    use mars::msg::red_bank::{UserCollateralResponse, UserDebtResponse};
    use mars::types::Market;
    use mars::value::PriceBook;

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
            liquidation_rule: mars::rule::LiquidationRule::TargetHealthFactor,
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
