//! [`TxSender`]: one wallet's transactions, one at a time, never sent twice.
//!
//! `send` runs: simulate → gas limit ⌈gas × adjustment⌉ → fee ⌈gas limit × gas price⌉ → sign
//! (SIGN_MODE_DIRECT, local sequence) → `broadcast_tx_sync` → wait for inclusion. Sends of one
//! sender are serialised, so the local [`SequenceTracker`] never hands one sequence to two
//! transactions, and rebalancing (or any other caller) can share a worker's sender.
//!
//! Safety against double spending rests on one rule: **the sequence never moves past a
//! transaction whose fate is unknown.** When a broadcast was accepted (or may have been: the
//! connection dropped mid-call) but inclusion was not seen in time, the transaction is kept as
//! *unresolved* and the next `send` first looks it up:
//!
//! - found in a block → resolved (its outcome is handed to the caller, who records it);
//! - the account's sequence moved past it → it was executed (or replaced) → resolved;
//! - neither, within `unresolved_grace` → still in some mempool, maybe: nothing is sent;
//! - neither, after the grace → the next transaction is signed with the *same* sequence, so at
//!   most one of the two can ever execute.
//!
//! A wrong-sequence rejection (code 32) resyncs from the account's *committed* sequence (not the
//! sequence the log says the mempool expects, which would chain behind a transaction of unknown
//! fate) and retries once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cosmrs::Any;
use cosmwasm_std::Coin;
use redline_common::chain::{
    tx_hash, ChainClient, ChainConfig, ChainError, SequenceTracker, TxBuilder, TxErrorCode, TxHash,
    TxOutcome, TxRejection, TxStage, Wallet,
};
use tokio::sync::Mutex;

/// How a [`TxSender`] behaves.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// How long to wait for a broadcast transaction to be included.
    pub inclusion_timeout: Duration,
    /// How long an unresolved transaction blocks further sends before it is presumed dropped
    /// (the next transaction then reuses its sequence).
    pub unresolved_grace: Duration,
    /// Do everything but broadcast.
    pub dry_run: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            inclusion_timeout: Duration::from_secs(30),
            unresolved_grace: Duration::from_secs(60),
            dry_run: false,
        }
    }
}

/// Whether the wallet may still sign: cleared when its worker slot lease is lost, because
/// another process may then own the same wallet (and sequence).
#[derive(Debug, Clone)]
pub struct SigningPermit(Arc<AtomicBool>);

impl SigningPermit {
    pub fn granted() -> Self {
        SigningPermit(Arc::new(AtomicBool::new(true)))
    }

    pub fn is_granted(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn revoke(&self) {
        self.0.store(false, Ordering::SeqCst)
    }

    pub fn grant(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
}

/// A transaction included in a block with code 0.
#[derive(Debug, Clone)]
pub struct SentTx {
    pub hash: TxHash,
    pub sequence: u64,
    pub gas_limit: u64,
    pub fee: Coin,
    /// When `broadcast_tx_sync` returned.
    pub broadcast_at: SystemTime,
    pub outcome: TxOutcome,
}

impl SentTx {
    pub fn height(&self) -> u64 {
        self.outcome.height
    }
}

/// What `--dry-run` produces instead of a broadcast.
#[derive(Debug, Clone)]
pub struct DryRunTx {
    pub hash: TxHash,
    pub sequence: u64,
    pub gas_used: u64,
    pub gas_limit: u64,
    pub fee: Coin,
    pub size_bytes: usize,
}

/// The result of a successful [`TxSender::send`].
#[derive(Debug, Clone)]
pub enum Sent {
    Included(Box<SentTx>),
    DryRun(DryRunTx),
}

/// A transaction whose inclusion was not seen, now settled.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Found in a block (success or failure).
    Included(Box<SentTx>),
    /// The account's sequence moved past it but the node no longer finds it: executed or
    /// replaced, its outcome unknown.
    SequenceConsumed { hash: TxHash, sequence: u64 },
    /// Not found within the grace period: presumed dropped; its sequence is reused.
    PresumedDropped { hash: TxHash, sequence: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(
        "wallet {wallet}: worker slot lease lost; not signing (another process may own the wallet)"
    )]
    PermitRevoked { wallet: String },
    #[error(
        "wallet {wallet}: previous tx {hash} (sequence {sequence}) not yet resolved; not sending"
    )]
    Unresolved {
        wallet: String,
        hash: TxHash,
        sequence: u64,
    },
    /// Refused before broadcast: nothing was sent, nothing spent.
    #[error("simulation refused the tx: {0}")]
    Simulation(Box<TxRejection>),
    /// Refused at CheckTx: nothing executed, nothing spent.
    #[error("CheckTx refused the tx: {0}")]
    CheckTx(Box<TxRejection>),
    /// Included and failed: the fee is spent.
    #[error("tx {} failed in block {}: {rejection}", tx.hash, tx.outcome.height)]
    DeliverTx {
        tx: Box<SentTx>,
        rejection: Box<TxRejection>,
    },
    /// Broadcast (or maybe broadcast) but inclusion not seen: the tx is kept unresolved.
    #[error("tx {hash} (sequence {sequence}) broadcast but not seen included: {reason}")]
    Unconfirmed {
        hash: TxHash,
        sequence: u64,
        broadcast_at: SystemTime,
        reason: String,
    },
    /// Failed before anything was broadcast (RPC down, bad message).
    #[error("before broadcast: {0}")]
    Chain(#[source] ChainError),
}

impl SendError {
    pub fn rejection(&self) -> Option<&TxRejection> {
        match self {
            SendError::Simulation(r) | SendError::CheckTx(r) => Some(r),
            SendError::DeliverTx { rejection, .. } => Some(rejection),
            SendError::Chain(e) => e.rejection(),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<TxErrorCode> {
        self.rejection().map(|r| r.kind)
    }

    /// Whether anything may have reached the chain.
    pub fn may_have_executed(&self) -> bool {
        matches!(self, SendError::Unconfirmed { .. })
    }

    /// The fee spent, when the tx was included and failed.
    pub fn fee_spent(&self) -> Option<&Coin> {
        match self {
            SendError::DeliverTx { tx, .. } => Some(&tx.fee),
            _ => None,
        }
    }

    /// A short label for metrics and records.
    pub fn label(&self) -> &'static str {
        match self {
            SendError::PermitRevoked { .. } => "permit_revoked",
            SendError::Unresolved { .. } => "previous_tx_unresolved",
            SendError::Simulation(_) => "simulation_failed",
            SendError::CheckTx(_) => "check_tx_failed",
            SendError::DeliverTx { .. } => "deliver_tx_failed",
            SendError::Unconfirmed { .. } => "unconfirmed",
            SendError::Chain(_) => "rpc_error",
        }
    }

    /// The message index the SDK names in a contract error ("message index: 2: ..."), if any.
    pub fn failed_message_index(&self) -> Option<usize> {
        let log = &self.rejection()?.log;
        let rest = &log[log.find("message index: ")? + "message index: ".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    }
}

struct Unresolved {
    hash: TxHash,
    sequence: u64,
    gas_limit: u64,
    fee: Coin,
    broadcast_at: SystemTime,
    since: Instant,
}

/// Sends one wallet's transactions. Cheap to share behind an `Arc`; sends are serialised.
pub struct TxSender<C> {
    client: C,
    builder: TxBuilder,
    wallet: Wallet,
    address: String,
    sequence: SequenceTracker,
    options: SendOptions,
    permit: SigningPermit,
    unresolved: Mutex<Option<Unresolved>>,
}

impl<C> std::fmt::Debug for TxSender<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSender")
            .field("wallet", &self.wallet)
            .field("dry_run", &self.options.dry_run)
            .finish_non_exhaustive()
    }
}

impl<C: ChainClient> TxSender<C> {
    /// A sender for `wallet`, its sequence loaded from the chain. A wallet the chain does not
    /// know yet (never received coins) is an error naming it.
    pub async fn new(
        client: C,
        chain: &ChainConfig,
        wallet: Wallet,
        options: SendOptions,
        permit: SigningPermit,
    ) -> Result<Self, ChainError> {
        let address = wallet.address().to_string();
        let sequence = SequenceTracker::load(&client, &address).await?;
        Ok(TxSender {
            client,
            builder: TxBuilder::new(chain),
            wallet,
            address,
            sequence,
            options,
            permit,
            unresolved: Mutex::new(None),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    pub fn client(&self) -> &C {
        &self.client
    }

    pub fn builder(&self) -> &TxBuilder {
        &self.builder
    }

    pub fn options(&self) -> &SendOptions {
        &self.options
    }

    pub fn is_dry_run(&self) -> bool {
        self.options.dry_run
    }

    pub fn permit(&self) -> &SigningPermit {
        &self.permit
    }

    /// Gas `messages` would use now (simulation against the latest state); a refusal names the
    /// failing message in its log.
    /// A wrong sequence (the chain's moved on without this sender) resyncs from the chain and
    /// retries once, as a broadcast does.
    pub async fn simulate(&self, messages: &[Any]) -> Result<u64, SendError> {
        let mut resynced = false;
        loop {
            let sequence = self.sequence.peek();
            let probe = self
                .builder
                .sign_for_simulation(
                    &self.wallet,
                    self.sequence.account_number(),
                    sequence,
                    messages.to_vec(),
                    "",
                )
                .map_err(SendError::Chain)?;
            match self.client.simulate(probe).await {
                Ok(gas) => return Ok(gas),
                Err(ChainError::Rejected(rejection))
                    if rejection.kind == TxErrorCode::WrongSequence && !resynced =>
                {
                    resynced = true;
                    let committed = self
                        .sequence
                        .resync(&self.client)
                        .await
                        .map_err(SendError::Chain)?;
                    tracing::warn!(wallet = %self.address, signed_with = sequence, committed, "wrong sequence in simulation: resynced from the chain");
                }
                Err(ChainError::Rejected(rejection)) => {
                    return Err(SendError::Simulation(rejection))
                }
                Err(e) => return Err(SendError::Chain(e)),
            }
        }
    }

    /// Simulates, signs, broadcasts and waits for inclusion.
    pub async fn send(&self, messages: Vec<Any>, memo: &str) -> Result<Sent, SendError> {
        self.send_inner(messages, memo, None).await
    }

    /// [`TxSender::send`] for messages the caller has just simulated at `gas_used`.
    pub async fn send_simulated(
        &self,
        messages: Vec<Any>,
        memo: &str,
        gas_used: u64,
    ) -> Result<Sent, SendError> {
        self.send_inner(messages, memo, Some(gas_used)).await
    }

    async fn send_inner(
        &self,
        messages: Vec<Any>,
        memo: &str,
        gas_used: Option<u64>,
    ) -> Result<Sent, SendError> {
        let mut unresolved = self.unresolved.lock().await;
        if let Some(pending) = unresolved.as_ref() {
            let (hash, sequence) = (pending.hash, pending.sequence);
            match self.try_resolve(&mut unresolved).await {
                Ok(Some(resolution)) => {
                    tracing::info!(wallet = %self.address, %hash, ?resolution, "earlier unconfirmed tx settled")
                }
                Ok(None) => {
                    return Err(SendError::Unresolved {
                        wallet: self.address.clone(),
                        hash,
                        sequence,
                    })
                }
                Err(e) => return Err(SendError::Chain(e)),
            }
        }
        if !self.permit.is_granted() {
            return Err(SendError::PermitRevoked {
                wallet: self.address.clone(),
            });
        }
        let gas_used = match gas_used {
            Some(gas) => gas,
            None => self.simulate(&messages).await?,
        };
        let gas_limit = self.builder.gas_limit_for(gas_used);
        let mut resynced = false;
        loop {
            let sequence = self.sequence.peek();
            let signed = self
                .builder
                .sign(
                    &self.wallet,
                    self.sequence.account_number(),
                    sequence,
                    messages.clone(),
                    gas_limit,
                    memo,
                )
                .map_err(SendError::Chain)?;
            if self.options.dry_run {
                return Ok(Sent::DryRun(DryRunTx {
                    hash: signed.hash,
                    sequence,
                    gas_used,
                    gas_limit,
                    fee: signed.fee,
                    size_bytes: signed.bytes.len(),
                }));
            }
            // Checked again right before the point of no return.
            if !self.permit.is_granted() {
                return Err(SendError::PermitRevoked {
                    wallet: self.address.clone(),
                });
            }
            let hash = tx_hash(&signed.bytes);
            match self.client.broadcast_sync(signed.bytes).await {
                Ok(_) => {
                    let broadcast_at = SystemTime::now();
                    self.sequence.reset(sequence + 1);
                    return self
                        .await_inclusion(
                            &mut unresolved,
                            Unresolved {
                                hash,
                                sequence,
                                gas_limit,
                                fee: signed.fee,
                                broadcast_at,
                                since: Instant::now(),
                            },
                        )
                        .await;
                }
                Err(ChainError::Rejected(rejection)) => {
                    if rejection.kind == TxErrorCode::WrongSequence && !resynced {
                        resynced = true;
                        let committed = self
                            .sequence
                            .resync(&self.client)
                            .await
                            .map_err(SendError::Chain)?;
                        tracing::warn!(
                            wallet = %self.address,
                            signed_with = sequence,
                            committed,
                            log = %rejection.log,
                            "wrong sequence: resynced from the chain, retrying once"
                        );
                        continue;
                    }
                    return Err(SendError::CheckTx(rejection));
                }
                // The node may have taken the tx before the connection failed: its fate is
                // unknown, so it is kept unresolved rather than re-sent.
                Err(e) => {
                    let broadcast_at = SystemTime::now();
                    *unresolved = Some(Unresolved {
                        hash,
                        sequence,
                        gas_limit,
                        fee: signed.fee,
                        broadcast_at,
                        since: Instant::now(),
                    });
                    self.sequence.reset(sequence);
                    return Err(SendError::Unconfirmed {
                        hash,
                        sequence,
                        broadcast_at,
                        reason: format!("broadcast answer lost: {e}"),
                    });
                }
            }
        }
    }

    async fn await_inclusion(
        &self,
        unresolved: &mut Option<Unresolved>,
        pending: Unresolved,
    ) -> Result<Sent, SendError> {
        match self
            .client
            .wait_for_tx(pending.hash, self.options.inclusion_timeout)
            .await
        {
            Ok(outcome) => self.included(pending, outcome),
            Err(e) => {
                let (hash, sequence, broadcast_at) =
                    (pending.hash, pending.sequence, pending.broadcast_at);
                // Never sign past a tx of unknown fate: the next one reuses its sequence.
                self.sequence.reset(sequence);
                *unresolved = Some(pending);
                Err(SendError::Unconfirmed {
                    hash,
                    sequence,
                    broadcast_at,
                    reason: e.to_string(),
                })
            }
        }
    }

    fn included(&self, pending: Unresolved, outcome: TxOutcome) -> Result<Sent, SendError> {
        let tx = Box::new(SentTx {
            hash: pending.hash,
            sequence: pending.sequence,
            gas_limit: pending.gas_limit,
            fee: pending.fee,
            broadcast_at: pending.broadcast_at,
            outcome,
        });
        if tx.outcome.is_success() {
            return Ok(Sent::Included(tx));
        }
        let rejection = Box::new(TxRejection::new(
            TxStage::DeliverTx,
            &tx.outcome.endpoint,
            &tx.outcome.codespace,
            tx.outcome.code,
            tx.outcome.log.clone(),
            Some(tx.hash),
        ));
        Err(SendError::DeliverTx { tx, rejection })
    }

    /// Settles an earlier unconfirmed tx if possible; `Ok(None)` when there was none or it is
    /// still unknown (then [`TxSender::send`] refuses to send).
    pub async fn resolve_unresolved(&self) -> Result<Option<Resolution>, ChainError> {
        let mut unresolved = self.unresolved.lock().await;
        self.try_resolve(&mut unresolved).await
    }

    /// Whether a tx of unknown fate blocks this sender.
    pub async fn has_unresolved(&self) -> bool {
        self.unresolved.lock().await.is_some()
    }

    async fn try_resolve(
        &self,
        unresolved: &mut Option<Unresolved>,
    ) -> Result<Option<Resolution>, ChainError> {
        let Some(pending) = unresolved.as_ref() else {
            return Ok(None);
        };
        let (hash, sequence) = (pending.hash, pending.sequence);
        // One short look: the normal wait has already timed out once.
        match self
            .client
            .wait_for_tx(hash, Duration::from_millis(1))
            .await
        {
            Ok(outcome) => {
                let pending = unresolved.take().expect("checked above");
                self.sequence.resync(&self.client).await?;
                let resolution = match self.included(pending, outcome) {
                    Ok(Sent::Included(tx)) => Resolution::Included(tx),
                    Err(SendError::DeliverTx { tx, .. }) => Resolution::Included(tx),
                    Ok(Sent::DryRun(_)) | Err(_) => unreachable!("included() only gives these"),
                };
                return Ok(Some(resolution));
            }
            Err(ChainError::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
        let committed = self.client.account(&self.address).await?.sequence;
        if committed > sequence {
            *unresolved = None;
            self.sequence.reset(committed);
            return Ok(Some(Resolution::SequenceConsumed { hash, sequence }));
        }
        if pending.since.elapsed() >= self.options.unresolved_grace {
            *unresolved = None;
            // The next tx takes the same sequence: at most one of the two can execute.
            self.sequence.reset(committed);
            tracing::warn!(wallet = %self.address, %hash, sequence, "unconfirmed tx presumed dropped; its sequence is reused");
            return Ok(Some(Resolution::PresumedDropped { hash, sequence }));
        }
        Ok(None)
    }

    /// The fee a tx that simulated at `gas_used` will pay.
    pub fn fee_for_gas(&self, gas_used: u64) -> Coin {
        self.builder.fee_for(self.builder.gas_limit_for(gas_used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_failing_message_index() {
        let rejection = TxRejection::new(
            TxStage::Simulate,
            "http://n",
            "wasm",
            5,
            "failed to execute message; message index: 2: User's health factor is not less than 1 and thus cannot be liquidated: execute wasm contract failed".into(),
            None,
        );
        let error = SendError::Simulation(Box::new(rejection));
        assert_eq!(error.failed_message_index(), Some(2));
        assert_eq!(error.code(), Some(TxErrorCode::Contract));
        assert_eq!(error.label(), "simulation_failed");
        assert!(!error.may_have_executed());

        let other = SendError::CheckTx(Box::new(TxRejection::new(
            TxStage::CheckTx,
            "http://n",
            "sdk",
            5,
            "insufficient funds".into(),
            None,
        )));
        assert_eq!(other.failed_message_index(), None);
        assert_eq!(other.code(), Some(TxErrorCode::InsufficientFunds));
    }

    #[test]
    fn permits_are_shared() {
        let permit = SigningPermit::granted();
        let copy = permit.clone();
        permit.revoke();
        assert!(!copy.is_granted());
        copy.grant();
        assert!(permit.is_granted());
    }
}
