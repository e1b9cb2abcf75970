//! Worker wallets: one HD wallet per worker, a lease on its slot, and top-ups from the master.
//!
//! Every wallet derives from one mnemonic at m/44'/118'/0'/0/`slot`. A worker leases a free
//! slot in Redis (`SET NX PX`, renewed in the background), so workers in any number of
//! processes never sign with the same wallet, hence never race for one account sequence. Slot
//! 0 is the master wallet: the process that leases it runs the [`Treasurer`], which tops up
//! worker wallets whose balance of the fee denom or of a debt denom runs low.
//!
//! A lease that cannot be renewed in time revokes the worker's [`SigningPermit`] before the
//! lease can expire, so a worker cut off from Redis stops signing before another process could
//! take its wallet over.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cosmwasm_std::{Coin, Decimal, Uint128, Uint256};
use redline_chain::{bank_send_msg, ChainClient, Wallet, WalletError};
use redline_service::config::Secret;
use tokio::task::JoinHandle;

use crate::locks::{KeySpace, Lease, LeaseError, Leases};
use crate::recheck::{PositionReader, ReadError};
use crate::record::{AttemptRecord, Outcome, Recorder};
use crate::tx_sender::{Sent, SigningPermit, TxSender};

/// The master wallet's slot.
pub const MASTER_SLOT: u32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("every worker wallet slot in {first}..={last} is leased by another worker (raise --max-workers-slots or stop a worker)")]
    AllTaken { first: u32, last: u32 },
    #[error("leasing a wallet slot: {0}")]
    Lease(#[from] LeaseError),
    #[error("deriving the wallet of slot {slot}: {source}")]
    Wallet { slot: u32, source: WalletError },
}

/// A leased wallet slot with its wallet. Keep it alive while the wallet is in use; call
/// [`WalletSlot::release`] on shutdown.
pub struct WalletSlot {
    pub slot: u32,
    pub wallet: Wallet,
    pub permit: SigningPermit,
    lease: Lease,
    renewal: JoinHandle<()>,
}

impl std::fmt::Debug for WalletSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletSlot")
            .field("slot", &self.slot)
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

impl WalletSlot {
    /// Stops renewing and gives the slot back.
    pub async fn release(self, leases: &Leases) {
        self.renewal.abort();
        self.permit.revoke();
        match leases.release(&self.lease).await {
            Ok(true) => tracing::info!(slot = self.slot, "wallet slot released"),
            Ok(false) => tracing::warn!(slot = self.slot, "wallet slot had already expired"),
            Err(error) => {
                tracing::warn!(slot = self.slot, %error, "releasing the wallet slot failed; it expires by itself")
            }
        }
    }

    /// Splits the slot into its wallet (for a [`TxSender`]) and a guard that keeps the lease.
    pub fn into_parts(self) -> (Wallet, SlotGuard) {
        (
            self.wallet,
            SlotGuard {
                slot: self.slot,
                permit: self.permit,
                lease: self.lease,
                renewal: self.renewal,
            },
        )
    }
}

/// Keeps a slot's lease renewed after its wallet has moved into a [`TxSender`].
pub struct SlotGuard {
    pub slot: u32,
    pub permit: SigningPermit,
    lease: Lease,
    renewal: JoinHandle<()>,
}

impl SlotGuard {
    pub async fn release(self, leases: &Leases) {
        self.renewal.abort();
        self.permit.revoke();
        if let Err(error) = leases.release(&self.lease).await {
            tracing::warn!(slot = self.slot, %error, "releasing the wallet slot failed; it expires by itself");
        }
    }
}

/// Leases the first free slot in `slots` and derives its wallet.
pub async fn claim_slot(
    leases: &Leases,
    keys: &KeySpace,
    mnemonic: &Secret,
    bech32_prefix: &str,
    slots: RangeInclusive<u32>,
    ttl: Duration,
) -> Result<Option<WalletSlot>, SlotError> {
    for slot in slots {
        let Some(lease) = leases.try_acquire(&keys.wallet_slot(slot), ttl).await? else {
            continue;
        };
        let wallet = match Wallet::from_mnemonic(mnemonic.expose(), bech32_prefix, slot) {
            Ok(wallet) => wallet,
            Err(source) => {
                let _ = leases.release(&lease).await;
                return Err(SlotError::Wallet { slot, source });
            }
        };
        if let Err(error) = leases.record_slot_holder(keys, slot).await {
            tracing::warn!(slot, %error, "cannot note this worker as the slot's holder: should it die, the slot frees only when its lease expires");
        }
        let permit = SigningPermit::granted();
        let renewal = tokio::spawn(keep_renewed(
            leases.clone(),
            lease.clone(),
            permit.clone(),
            slot,
        ));
        tracing::info!(slot, wallet = %wallet.address(), "wallet slot leased");
        return Ok(Some(WalletSlot {
            slot,
            wallet,
            permit,
            lease,
            renewal,
        }));
    }
    Ok(None)
}

/// Renews every third of the ttl; revokes the permit when the lease is lost or when renewals
/// have failed for two thirds of the ttl (before the lease can expire under us), and grants it
/// again once the lease is renewed or, when lost, taken back while nobody holds it.
async fn keep_renewed(leases: Leases, lease: Lease, permit: SigningPermit, slot: u32) {
    let period = (lease.ttl / 3).max(Duration::from_millis(10));
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(period).await;
        match leases.renew(&lease).await {
            Ok(true) => {
                last_renewed = Instant::now();
                if !permit.is_granted() {
                    tracing::info!(slot, "wallet slot lease renewed again; signing resumes");
                    permit.grant();
                }
            }
            Ok(false) => {
                if permit.is_granted() {
                    permit.revoke();
                    tracing::error!(slot, "wallet slot lease lost (expired and possibly taken over); this worker stops signing");
                }
                // A slot nobody holds (it expired, or Redis restarted empty) is taken back:
                // SET NX means no other worker holds it now, and a stale sequence after a
                // takeover in between is resynced by the tx sender. One that another worker
                // holds stays theirs; the next rounds ask again.
                match leases.retake(&lease).await {
                    Ok(true) => {
                        last_renewed = Instant::now();
                        permit.grant();
                        tracing::warn!(slot, "wallet slot lease taken back; signing resumes");
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(slot, %error, "taking the wallet slot lease back failed; retrying")
                    }
                }
            }
            Err(error) => {
                if last_renewed.elapsed() >= lease.ttl * 2 / 3 && permit.is_granted() {
                    permit.revoke();
                    tracing::error!(slot, %error, "cannot renew the wallet slot lease; signing paused until Redis answers");
                } else {
                    tracing::warn!(slot, %error, "wallet slot lease renewal failed; retrying");
                }
            }
        }
    }
}

/// When and by how much the master tops up a worker wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpPolicy {
    /// Top up the fee denom when a worker holds less than this.
    pub fee_below: Uint128,
    /// ... by this much.
    pub fee_amount: Uint128,
    /// Top up a debt denom when the worker holds less than this many USD of it.
    pub debt_below_usd: Decimal,
    /// ... back to this many USD.
    pub debt_target_usd: Decimal,
    pub interval: Duration,
}

impl TopUpPolicy {
    /// Coins to send to a wallet holding `balances`, for the fee denom and every debt denom.
    pub fn needs(
        &self,
        balances: &[Coin],
        fee_denom: &str,
        debt_denoms: &[String],
        prices: &mars::value::PriceBook,
    ) -> Vec<Coin> {
        let held = |denom: &str| -> Uint256 {
            balances
                .iter()
                .filter(|c| c.denom == denom)
                .map(|c| c.amount)
                .fold(Uint256::zero(), |a, b| a + b)
        };
        let mut wanted: BTreeMap<String, Uint128> = BTreeMap::new();
        if held(fee_denom) < Uint256::from(self.fee_below) {
            *wanted.entry(fee_denom.to_string()).or_default() += self.fee_amount;
        }
        if !self.debt_target_usd.is_zero() {
            let below = prices.from_usd(self.debt_below_usd);
            let target = prices.from_usd(self.debt_target_usd);
            for denom in debt_denoms {
                let Ok(price) = prices.price(denom) else {
                    continue;
                };
                let have = held(denom);
                let Ok(have_value) = prices.value_of_change(denom, Uint256::zero(), have) else {
                    continue;
                };
                if have_value >= below || price.is_zero() {
                    continue;
                }
                if let Some(amount) = prices.amount_worth(denom, target - have_value) {
                    if !amount.is_zero() {
                        *wanted.entry(denom.clone()).or_default() += amount;
                    }
                }
            }
        }
        wanted
            .into_iter()
            .map(|(denom, amount)| Coin::new(amount, denom))
            .collect()
    }
}

/// Runs in the process that leases the master slot: tops up the worker wallets in use.
pub struct Treasurer<C> {
    pub sender: Arc<TxSender<C>>,
    pub leases: Leases,
    pub keys: KeySpace,
    pub mnemonic: Secret,
    pub bech32_prefix: String,
    pub worker_slots: RangeInclusive<u32>,
    pub policy: TopUpPolicy,
    pub reader: Arc<PositionReader<C>>,
    pub recorder: Arc<Recorder>,
    pub fee_denom: String,
    addresses: BTreeMap<u32, String>,
}

impl<C: ChainClient + Clone + 'static> Treasurer<C> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sender: Arc<TxSender<C>>,
        leases: Leases,
        keys: KeySpace,
        mnemonic: Secret,
        bech32_prefix: String,
        worker_slots: RangeInclusive<u32>,
        policy: TopUpPolicy,
        reader: Arc<PositionReader<C>>,
        recorder: Arc<Recorder>,
        fee_denom: String,
    ) -> Self {
        Treasurer {
            sender,
            leases,
            keys,
            mnemonic,
            bech32_prefix,
            worker_slots,
            policy,
            reader,
            recorder,
            fee_denom,
            addresses: BTreeMap::new(),
        }
    }

    fn address_of(&mut self, slot: u32) -> Result<String, SlotError> {
        if let Some(address) = self.addresses.get(&slot) {
            return Ok(address.clone());
        }
        let wallet = Wallet::from_mnemonic(self.mnemonic.expose(), &self.bech32_prefix, slot)
            .map_err(|source| SlotError::Wallet { slot, source })?;
        let address = wallet.address().to_string();
        self.addresses.insert(slot, address.clone());
        Ok(address)
    }

    /// Tops up until `stop` resolves, every policy interval.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let mut pause = self.policy.interval;
            if let Err(error) = self.top_up_once().await {
                if error
                    .downcast_ref::<ReadError>()
                    .is_some_and(ReadError::is_no_block_yet)
                {
                    // Started before the chain's first block: a quiet wait, asked again soon.
                    tracing::debug!(%error, "top-up: waiting for the chain's first block");
                    pause = pause.min(Duration::from_secs(1));
                } else {
                    tracing::warn!(%error, "top-up round failed");
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: every leased worker slot's balances against the policy; all top-ups that are
    /// due go out in one tx from the master wallet. Returns the coins sent per address.
    pub async fn top_up_once(&mut self) -> anyhow::Result<Vec<(String, Vec<Coin>)>> {
        let snapshot = self.reader.latest().await?;
        let debt_denoms: Vec<String> = snapshot.markets.keys().cloned().collect();
        let mut due = Vec::new();
        for slot in self.worker_slots.clone() {
            if !self.leases.is_held(&self.keys.wallet_slot(slot)).await? {
                continue;
            }
            let address = self.address_of(slot)?;
            let balances = match self.sender.client().balances(&address).await {
                Ok(balances) => balances,
                Err(error) => {
                    tracing::warn!(slot, %address, %error, "cannot read worker balances");
                    continue;
                }
            };
            let coins =
                self.policy
                    .needs(&balances, &self.fee_denom, &debt_denoms, &snapshot.prices);
            if !coins.is_empty() {
                due.push((address, coins));
            }
        }
        if due.is_empty() {
            return Ok(due);
        }
        let master = self.sender.address().to_string();
        let master_balances = self.sender.client().balances(&master).await?;
        let mut available: BTreeMap<String, Uint256> = master_balances
            .into_iter()
            .map(|c| (c.denom, c.amount))
            .collect();
        // Keep gas money for the top-up itself.
        if let Some(fee) = available.get_mut(&self.fee_denom) {
            *fee = fee.saturating_sub(Uint256::from(self.policy.fee_amount));
        }
        let mut messages = Vec::new();
        let mut sent = Vec::new();
        for (address, coins) in due {
            let mut affordable = Vec::new();
            for coin in coins {
                let have = available.entry(coin.denom.clone()).or_default();
                if *have >= coin.amount {
                    *have -= coin.amount;
                    affordable.push(coin);
                } else {
                    tracing::warn!(%address, denom = %coin.denom, wanted = %coin.amount, master_has = %have, "master wallet cannot cover a top-up");
                }
            }
            if affordable.is_empty() {
                continue;
            }
            messages.push(bank_send_msg(
                self.sender.wallet().address(),
                &address,
                &affordable,
            )?);
            sent.push((address, affordable));
        }
        if messages.is_empty() {
            return Ok(sent);
        }
        let started = SystemTime::now();
        let result = self.sender.send(messages, "redline top-up").await;
        let record = |outcome: Outcome| AttemptRecord {
            wallet: master.clone(),
            outcome,
            started_at: started,
            ..AttemptRecord::default()
        };
        match result {
            Ok(Sent::Included(tx)) => {
                let mut record = record(Outcome::TopUp);
                record.height = tx.height();
                record.tx_hash = tx.hash.to_string();
                record.gas_wanted = tx.gas_limit;
                record.gas_used = tx.outcome.gas_used;
                record.book_fee_only(&tx.fee, &snapshot.prices);
                record.detail = sent
                    .iter()
                    .map(|(address, coins)| {
                        let coins: Vec<String> = coins.iter().map(|c| c.to_string()).collect();
                        format!("{address}:{}", coins.join("+"))
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                self.recorder.record(&record).await;
                tracing::info!(tx = %tx.hash, height = tx.height(), wallets = sent.len(), "worker wallets topped up");
            }
            Ok(Sent::DryRun(tx)) => {
                tracing::info!(tx = %tx.hash, ?sent, "dry run: would top up worker wallets");
            }
            Err(error) => {
                let mut record = record(Outcome::TopUpFailed);
                record.error = error.to_string();
                if let Some(fee) = error.fee_spent() {
                    record.book_fee_only(fee, &snapshot.prices);
                }
                self.recorder.record(&record).await;
                tracing::warn!(%error, "top-up tx failed");
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mars::value::PriceBook;

    #[test]
    fn top_up_needs_follow_the_policy() {
        let policy = TopUpPolicy {
            fee_below: Uint128::new(1_000),
            fee_amount: Uint128::new(5_000),
            debt_below_usd: Decimal::percent(1_000),
            debt_target_usd: Decimal::percent(10_000),
            interval: Duration::from_secs(1),
        };
        let prices = PriceBook::new(
            BTreeMap::from([
                ("uosmo".to_string(), Decimal::percent(50)),
                ("uatom".to_string(), Decimal::percent(1_000)),
            ]),
            6,
        );
        let debts = vec!["uatom".to_string(), "uosmo".to_string()];
        // Empty wallet: fee money, and $100 of each debt denom ($100 of uosmo on top of the fee).
        let needs = policy.needs(&[], "uosmo", &debts, &prices);
        assert_eq!(
            needs,
            vec![
                Coin::new(10_000_000u128, "uatom"),
                Coin::new(200_005_000u128, "uosmo"),
            ]
        );
        // $20 of ATOM held: above the $10 floor, nothing to do for it.
        let needs = policy.needs(
            &[
                Coin::new(2_000_000u128, "uatom"),
                Coin::new(400_000_000u128, "uosmo"),
            ],
            "uosmo",
            &debts,
            &prices,
        );
        assert!(needs.is_empty(), "{needs:?}");
    }
}
