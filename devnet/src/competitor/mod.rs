//! A competing liquidation bot inside the devnet: it sees each block's state, liquidates what
//! became liquidatable from its own funded wallet, and its txs go through the same CheckTx and
//! mempool as everyone's, so a liquidation it lands first makes a later one fail or repay less.
//!
//! Two styles:
//! - `baseline`, modelled on the public Mars bot's loop: look at the unhealthy positions, take
//!   the worst 10, send one liquidation tx after another at the chain's gas price, each waiting
//!   for its block; then look again.
//! - `fast`: after each block, every liquidatable position in its own tx at once, all for the
//!   next block, at a multiple of the chain's gas price.
//!
//! Both look after `delay` (their latency from a block's commit) and pay with a fixed gas limit.

pub mod tally;
pub mod targets;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cosmrs::cosmwasm::MsgExecuteContract;
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::{Body, Fee, Msg as _, SignDoc, SignerInfo};
use cosmwasm_std::{Coin, Decimal, Uint128};
use mars::msg::red_bank::ExecuteMsg;
use tokio::sync::broadcast::error::RecvError;

use crate::chain::ChainHandle;
pub use tally::{Contest, LiquidationTx};
pub use targets::Target;

/// The competitor's own well-known test mnemonic (BIP39 all-ones entropy; never hold real funds
/// with it); its wallet is m/44'/118'/0'/0/0.
pub const COMPETITOR_MNEMONIC: &str = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote";

/// Positions the baseline takes per look, as the Mars bot does.
const BASELINE_BATCH: usize = 10;
/// Users looked at per visit to the chain thread: small, so other clients' requests wait for
/// at most a few milliseconds of the competitor's look.
const USERS_PER_VISIT: usize = 16;
/// Without a price move, every user is looked at every this many blocks; in between, only
/// those the last look found liquidatable.
const FULL_LOOK_EVERY_BLOCKS: u64 = 10;
/// Blocks a sent liquidation keeps its user from being sent again (its tx may still wait).
const RESEND_AFTER_BLOCKS: u64 = 3;
/// Blocks the baseline waits for one tx's inclusion before moving on.
const INCLUSION_WAIT_BLOCKS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    Baseline,
    Fast,
}

impl std::fmt::Display for Style {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Style::Baseline => "baseline",
            Style::Fast => "fast",
        })
    }
}

#[derive(Debug, Clone)]
pub struct CompetitorConfig {
    pub style: Style,
    /// The gas price the `fast` style pays, as a multiple of the chain's current one (the
    /// baseline pays the chain's price).
    pub price_multiple: Decimal,
    /// From a block's commit to the competitor's look at it.
    pub delay: Duration,
    /// The gas limit of each liquidation tx.
    pub gas_limit: u64,
}

impl CompetitorConfig {
    pub fn new(style: Style) -> Self {
        CompetitorConfig {
            style,
            price_multiple: Decimal::from_ratio(2u128, 1u128),
            delay: Duration::ZERO,
            gas_limit: 500_000,
        }
    }

    fn gas_price(&self, chain_price: Decimal) -> Decimal {
        match self.style {
            Style::Baseline => chain_price,
            Style::Fast => chain_price * self.price_multiple,
        }
    }
}

/// The competitor wallet's signing key.
pub fn competitor_key() -> anyhow::Result<SigningKey> {
    crate::scenario::liquidator_keys(COMPETITOR_MNEMONIC, 1)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no competitor key derived"))
}

/// The competitor wallet's address on a chain with `prefix`.
pub fn competitor_address(prefix: &str) -> anyhow::Result<String> {
    Ok(competitor_key()?
        .public_key()
        .account_id(prefix)
        .map_err(|e| anyhow::anyhow!("competitor address: {e}"))?
        .to_string())
}

/// What the competitor did, as it counts it (who won is read from the blocks: [`tally`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompetitorStats {
    pub looks: u64,
    pub sent: u64,
    /// Refused at CheckTx.
    pub refused: u64,
    pub last_refusal: Option<String>,
}

/// Where the competitor liquidates, and whom it watches.
#[derive(Debug, Clone)]
pub struct Watch {
    pub red_bank: String,
    pub oracle: String,
    pub users: Vec<String>,
}

impl Watch {
    /// The scenario's Red Bank and debtors (listed when its competitor was funded).
    pub fn scenario(info: &crate::scenario::ScenarioInfo) -> Watch {
        Watch {
            red_bank: info.contracts.red_bank.clone(),
            oracle: info.contracts.oracle.clone(),
            users: info.debtors.clone(),
        }
    }
}

/// The running competitor; stops when dropped.
pub struct Competitor {
    pub address: String,
    stats: Arc<Mutex<CompetitorStats>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Competitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Competitor {
    /// Starts the competitor on `chain` (its wallet must be funded: see
    /// [`crate::scenario::ScenarioConfig::competitor`]).
    pub async fn start(
        chain: ChainHandle,
        config: CompetitorConfig,
        watch: Watch,
    ) -> anyhow::Result<Competitor> {
        let key = competitor_key()?;
        let address = competitor_address(&chain.config().bech32_prefix)?;
        let lookup = address.clone();
        let (account_number, sequence) = chain
            .inspect(move |state| state.account_for_query(&lookup).map(|(n, s, _)| (n, s)))
            .await?
            .ok_or_else(|| anyhow::anyhow!("the competitor wallet {address} is not funded"))?;
        let stats = Arc::new(Mutex::new(CompetitorStats::default()));
        let bot = Bot {
            signer: Signer {
                key,
                address: address.clone(),
                account_number,
                sequence,
                chain_id: chain.config().chain_id.parse()?,
                fee_denom: chain.config().fee_denom.clone(),
            },
            chain,
            config,
            watch,
            stats: stats.clone(),
            sent_at: BTreeMap::new(),
        };
        tracing::info!(%address, style = %bot.config.style, "competitor started");
        let task = tokio::spawn(bot.run());
        Ok(Competitor {
            address,
            stats,
            task,
        })
    }

    /// What it has done so far, as it counts it.
    pub fn stats(&self) -> CompetitorStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Signer {
    key: SigningKey,
    address: String,
    account_number: u64,
    sequence: u64,
    chain_id: cosmrs::tendermint::chain::Id,
    fee_denom: String,
}

impl Signer {
    fn sign(
        &self,
        red_bank: &str,
        target: &Target,
        gas_limit: u64,
        gas_price: Decimal,
    ) -> anyhow::Result<Vec<u8>> {
        let msg = MsgExecuteContract {
            sender: self.address.parse().map_err(anyhow_of)?,
            contract: red_bank.parse().map_err(anyhow_of)?,
            msg: serde_json::to_vec(&ExecuteMsg::Liquidate {
                user: target.user.clone(),
                collateral_denom: target.collateral_denom.clone(),
                recipient: None,
            })?,
            funds: vec![cosmrs::Coin {
                denom: target.debt_denom.parse().map_err(anyhow_of)?,
                amount: target.debt_amount.u128(),
            }],
        };
        let body = Body::new(vec![msg.to_any().map_err(anyhow_of)?], "", 0u32);
        let fee_amount = Uint128::from(gas_limit).mul_ceil(gas_price);
        let fee = Fee::from_amount_and_gas(
            cosmrs::Coin {
                denom: self.fee_denom.parse().map_err(anyhow_of)?,
                amount: fee_amount.u128(),
            },
            gas_limit,
        );
        let auth_info =
            SignerInfo::single_direct(Some(self.key.public_key()), self.sequence).auth_info(fee);
        let doc = SignDoc::new(&body, &auth_info, &self.chain_id, self.account_number)
            .map_err(anyhow_of)?;
        doc.sign(&self.key)
            .and_then(|raw| raw.to_bytes())
            .map_err(anyhow_of)
    }
}

fn anyhow_of(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// The sequence CheckTx expected, from its "account sequence mismatch, expected N, got M" log.
fn expected_sequence(log: &str) -> Option<u64> {
    let rest = &log[log.find("expected ")? + "expected ".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

struct Bot {
    chain: ChainHandle,
    signer: Signer,
    config: CompetitorConfig,
    watch: Watch,
    stats: Arc<Mutex<CompetitorStats>>,
    /// The height each user was last sent at.
    sent_at: BTreeMap<String, u64>,
}

impl Bot {
    async fn run(mut self) {
        let mut blocks = self.chain.subscribe_blocks();
        let mut last_full = 0;
        let mut known: Vec<String> = Vec::new();
        loop {
            let (height, prices_moved) = match blocks.recv().await {
                Ok(block) => (block.height().value(), !block.finalize_events.is_empty()),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            tokio::time::sleep(self.config.delay).await;
            let full = prices_moved || height >= last_full + FULL_LOOK_EVERY_BLOCKS;
            if full {
                last_full = height;
            }
            let users = if full {
                self.watch.users.clone()
            } else {
                known.clone()
            };
            if let Err(error) = self.round(height, &users, &mut known).await {
                tracing::warn!(%error, "competitor round failed");
            }
            // The baseline's round waited for blocks; it looks again at the newest one.
            blocks = blocks.resubscribe();
        }
    }

    /// Looks at `users`, notes in `known` those liquidatable, and liquidates them.
    async fn round(
        &mut self,
        height: u64,
        users: &[String],
        known: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let looked = std::time::Instant::now();
        let mut targets = self.look(users).await?;
        let look_ms = looked.elapsed().as_millis() as u64;
        *known = targets.iter().map(|t| t.user.clone()).collect();
        targets.retain(|t| {
            self.sent_at
                .get(&t.user)
                .is_none_or(|sent| height >= sent + RESEND_AFTER_BLOCKS)
        });
        if self.config.style == Style::Baseline {
            targets.truncate(BASELINE_BATCH);
        }
        if targets.is_empty() {
            return Ok(());
        }
        let price = self
            .config
            .gas_price(self.chain.inspect(|s| s.gas_price()).await?);
        let mut sent = 0;
        for target in &targets {
            let Some(hash) = self.send(target, price).await? else {
                continue;
            };
            sent += 1;
            self.sent_at.insert(target.user.clone(), height);
            if self.config.style == Style::Baseline {
                self.wait_for_inclusion(hash).await;
            }
        }
        tracing::info!(
            height,
            looked_at = users.len(),
            look_ms,
            found = targets.len(),
            sent,
            "competitor sent liquidations"
        );
        Ok(())
    }

    /// The liquidatable ones of `users` now, worst first, looked at in slices.
    async fn look(&mut self, users: &[String]) -> anyhow::Result<Vec<Target>> {
        let mut found = Vec::new();
        for slice in users.chunks(USERS_PER_VISIT) {
            let slice = slice.to_vec();
            let (red_bank, oracle) = (self.watch.red_bank.clone(), self.watch.oracle.clone());
            found.extend(
                self.chain
                    .inspect(move |state| targets::liquidatable(state, &red_bank, &oracle, &slice))
                    .await?,
            );
        }
        found.sort_by(|a, b| {
            a.health_factor
                .cmp(&b.health_factor)
                .then_with(|| a.user.cmp(&b.user))
        });
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).looks += 1;
        Ok(found)
    }

    /// Signs and sends one liquidation; its hash when CheckTx took it.
    async fn send(&mut self, target: &Target, price: Decimal) -> anyhow::Result<Option<[u8; 32]>> {
        for _ in 0..2 {
            let bytes =
                self.signer
                    .sign(&self.watch.red_bank, target, self.config.gas_limit, price)?;
            let outcome = self.chain.check_tx(bytes).await?;
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            if outcome.code == 0 {
                self.signer.sequence += 1;
                stats.sent += 1;
                return Ok(Some(outcome.hash));
            }
            match expected_sequence(&outcome.log).filter(|_| outcome.code == 32) {
                Some(expected) => self.signer.sequence = expected,
                None => {
                    stats.refused += 1;
                    stats.last_refusal = Some(outcome.log);
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    async fn wait_for_inclusion(&self, hash: [u8; 32]) {
        let hash = cosmrs::tendermint::Hash::Sha256(hash);
        let mut blocks = self.chain.subscribe_blocks();
        for _ in 0..INCLUSION_WAIT_BLOCKS {
            if self.chain.store().find_tx(&hash).is_some() {
                return;
            }
            if let Err(RecvError::Closed) = blocks.recv().await {
                return;
            }
        }
    }
}

/// Funds for the competitor's wallet at genesis: `coins`.
pub fn fund(state: &mut crate::chain::ChainState, coins: Vec<Coin>) -> anyhow::Result<String> {
    let address = competitor_address(&state.config().bech32_prefix)?;
    state.fund(&address, coins)?;
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_sequence_is_read_from_checktxs_log() {
        assert_eq!(
            expected_sequence(
                "account sequence mismatch, expected 17, got 15: incorrect account sequence"
            ),
            Some(17)
        );
        assert_eq!(expected_sequence("insufficient fee"), None);
    }
}
