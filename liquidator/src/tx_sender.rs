//! [`TxSender`]: one wallet's transactions, pipelined, never sent twice.
//!
//! `send` runs: simulate → gas limit ⌈gas × adjustment⌉ → fee ⌈gas limit × gas price⌉ → sign
//! (SIGN_MODE_DIRECT, local sequence) → `broadcast_tx_sync` → wait for inclusion. It is
//! [`TxSender::broadcast`] (everything up to the broadcast) followed by [`TxSender::confirm`]
//! (the wait). A caller with several transactions broadcasts them one after the other and then
//! confirms them together: the chain's CheckTx state (and simulation, which runs on it, as in
//! the Cosmos SDK) already counts the wallet's transactions waiting in the mempool, so sequence
//! N + 1 is simulated and accepted while N waits for its block, and all of them can land in the
//! next block. At most `max_in_flight` transactions of one sender are broadcast and not yet
//! settled (a further broadcast waits for room). Signing and broadcasting are serialised, so the
//! local [`SequenceTracker`] never hands one sequence to two transactions, and rebalancing (or
//! any other caller) can share a worker's sender.
//!
//! Safety against double spending rests on one rule: **the sequence never moves past a
//! transaction whose fate is unknown.** When a broadcast was accepted (or may have been: the
//! connection dropped mid-call) but inclusion was not seen in time, the transaction is kept as
//! *unresolved*, and nothing new is signed until every unresolved transaction is settled. Once
//! nothing of the sender's is in flight, they are looked up, lowest sequence first:
//!
//! - found in a block → resolved (its outcome is handed to the caller, who records it);
//! - the account's sequence moved past it → it was executed (or replaced) → resolved;
//! - neither, and the chain has committed the block at the tx's `timeout_height` → it can never
//!   be included: expired, known dead at once;
//! - neither, within `unresolved_grace` → still in some mempool, maybe: nothing is sent;
//! - neither, after the grace → presumed dropped; when all are settled the next transaction is
//!   signed with the account's committed sequence, so at most one transaction per sequence can
//!   ever execute.
//!
//! Txs are signed with a timeout height a few blocks past the chain's latest height
//! (`timeout_blocks`), so a tx that missed its blocks (a full block, an eviction by the mempool's
//! recheck when the fee market's price rose past its fee) settles within those blocks instead of
//! blocking its wallet for the grace.
//!
//! A wrong-sequence rejection (code 32) resyncs from the account's *committed* sequence (not the
//! sequence the log says the mempool expects, which would chain behind a transaction of unknown
//! fate) and retries once. The committed sequence lags behind transactions still in flight, so
//! the resync first waits until they are settled, and is refused while any is unresolved.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cosmrs::Any;
use cosmwasm_std::Coin;
use cosmwasm_std::{Decimal, Uint128};
use mars::manifest::FeeMarket;
use redline_chain::{
    tx_hash, ChainClient, ChainConfig, ChainError, SequenceTracker, Simulation, TxBuilder,
    TxErrorCode, TxHash, TxOutcome, TxRejection, TxStage, Wallet,
};
use tokio::sync::{Mutex, Notify};

/// Transactions of one sender broadcast and not yet settled, unless configured otherwise
/// ([`TxSender::with_max_in_flight`]).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// Blocks past the latest height read that a tx may be included in, unless configured
/// otherwise. Over two blocks a fee market's price rises by at most 1.08² = 1.17 (Neutron's),
/// within the default headroom of 1.2: a tx is included or expires, never priced out first.
pub const DEFAULT_TIMEOUT_BLOCKS: u64 = 2;

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
    /// At most this many txs broadcast and not yet settled (at least 1).
    pub max_in_flight: usize,
    /// Txs may be included at most this many blocks past the latest height read (at most half a
    /// block ago); `None`: no timeout height.
    pub timeout_blocks: Option<u64>,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            inclusion_timeout: Duration::from_secs(30),
            unresolved_grace: Duration::from_secs(60),
            dry_run: false,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout_blocks: Some(DEFAULT_TIMEOUT_BLOCKS),
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
    /// Not found, its sequence unused, and the chain past its timeout height: it can never be
    /// included; its sequence is reused.
    Expired {
        hash: TxHash,
        sequence: u64,
        timeout_height: u64,
    },
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
    /// Broadcast, and not seen in any block up to its timeout height, past which no block may
    /// include it. Kept unresolved until the account's sequence confirms it never executed
    /// (normally at the next send or [`TxSender::resolve_unresolved`]).
    #[error("tx {hash} (sequence {sequence}) not included by its timeout height {timeout_height}")]
    Expired {
        hash: TxHash,
        sequence: u64,
        broadcast_at: SystemTime,
        timeout_height: u64,
    },
    /// Failed before anything was broadcast (RPC down, bad message).
    #[error("before broadcast: {0}")]
    Chain(#[source] ChainError),
    /// Nothing broadcast: a tx of this wallet in the mempool could no longer be included (the fee
    /// market's price passed its fee, or the chain its timeout height), so nothing signed after
    /// it could be either. Its txs have settled since; plan again.
    /// `refused`: the tx the node refused for its sequence, which showed it.
    #[error("wallet {wallet}: its txs in the mempool could no longer be included; waited for them to settle, not sending{}", refused.as_ref().map(|r| format!(" (CheckTx: {r})")).unwrap_or_default())]
    InFlightDropped {
        wallet: String,
        refused: Option<Box<TxRejection>>,
    },
    /// Nothing broadcast: the wallet's earlier txs did not settle in time to make room.
    #[error("wallet {wallet}: {in_flight} txs still in flight after {waited:?}; not sending")]
    InFlightStuck {
        wallet: String,
        in_flight: usize,
        waited: Duration,
    },
}

impl SendError {
    pub fn rejection(&self) -> Option<&TxRejection> {
        match self {
            SendError::Simulation(r) | SendError::CheckTx(r) => Some(r),
            SendError::InFlightDropped {
                refused: Some(r), ..
            } => Some(r),
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
        self.in_doubt().is_some()
    }

    /// The tx this error leaves in doubt (unresolved by its sender until its fate is known).
    pub fn in_doubt(&self) -> Option<TxHash> {
        match self {
            SendError::Unconfirmed { hash, .. } | SendError::Expired { hash, .. } => Some(*hash),
            _ => None,
        }
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
            SendError::Expired { .. } => "expired",
            SendError::Chain(_) => "rpc_error",
            SendError::InFlightStuck { .. } => "in_flight_stuck",
            SendError::InFlightDropped { .. } => "in_flight_dropped",
        }
    }

    /// The message index the SDK names in a contract error ("message index: 2: ..."), if any.
    pub fn failed_message_index(&self) -> Option<usize> {
        number_after(&self.rejection()?.log, "message index: ")
    }
}

/// Why a broadcast tx's inclusion was not seen.
enum NotSeen {
    /// The chain committed the block at its timeout height without it.
    PastTimeoutHeight(u64),
    Unknown(String),
}

/// A broadcast transaction, as the sender remembers it until it is settled.
#[derive(Debug, Clone)]
struct TxInfo {
    hash: TxHash,
    sequence: u64,
    gas_limit: u64,
    fee: Coin,
    broadcast_at: SystemTime,
    since: Instant,
    timeout_height: Option<u64>,
}

/// A tx accepted by CheckTx, its inclusion awaited.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    hash: TxHash,
    gas_price: Decimal,
    timeout_height: Option<u64>,
}

/// What became of one sender's broadcast transactions.
#[derive(Debug, Default)]
struct Ledger {
    /// Accepted by CheckTx, inclusion being awaited, by sequence.
    in_flight: BTreeMap<u64, InFlight>,
    /// Inclusion not seen in time (or the broadcast's answer lost): fate unknown, by sequence.
    unresolved: BTreeMap<u64, TxInfo>,
}

type SharedLedger = Arc<std::sync::Mutex<Ledger>>;

fn lock(ledger: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A transaction accepted by CheckTx whose inclusion is still to be confirmed
/// ([`TxSender::confirm`]). Dropped unconfirmed, it counts as a transaction of unknown fate.
#[derive(Debug)]
pub struct PendingTx {
    info: TxInfo,
    ledger: SharedLedger,
    settled: Arc<Notify>,
    done: bool,
}

impl PendingTx {
    pub fn hash(&self) -> TxHash {
        self.info.hash
    }

    pub fn sequence(&self) -> u64 {
        self.info.sequence
    }

    pub fn broadcast_at(&self) -> SystemTime {
        self.info.broadcast_at
    }

    /// The last height that may include it, when it has one.
    pub fn timeout_height(&self) -> Option<u64> {
        self.info.timeout_height
    }

    /// Leaves the in-flight set: included, or into the unresolved set when its fate is unknown.
    fn settle(&mut self, included: bool) {
        if self.done {
            return;
        }
        self.done = true;
        {
            let mut ledger = lock(&self.ledger);
            ledger.in_flight.remove(&self.info.sequence);
            if !included {
                ledger
                    .unresolved
                    .insert(self.info.sequence, self.info.clone());
            }
        }
        self.settled.notify_waiters();
    }
}

impl Drop for PendingTx {
    fn drop(&mut self) {
        // Never confirmed: nobody knows whether it was included.
        self.settle(false);
    }
}

/// What [`TxSender::broadcast`] produced.
#[derive(Debug)]
pub enum Broadcast {
    /// Accepted by CheckTx; confirm it.
    Pending(PendingTx),
    /// `--dry-run`: signed, not broadcast.
    DryRun(DryRunTx),
}

impl Broadcast {
    pub fn hash(&self) -> TxHash {
        match self {
            Broadcast::Pending(tx) => tx.hash(),
            Broadcast::DryRun(tx) => tx.hash,
        }
    }

    pub fn sequence(&self) -> u64 {
        match self {
            Broadcast::Pending(tx) => tx.sequence(),
            Broadcast::DryRun(tx) => tx.sequence,
        }
    }
}

/// Sends one wallet's transactions. Cheap to share behind an `Arc`; broadcasts are serialised,
/// confirmations run side by side.
pub struct TxSender<C> {
    client: C,
    builder: TxBuilder,
    wallet: Wallet,
    address: String,
    sequence: SequenceTracker,
    options: SendOptions,
    permit: SigningPermit,
    max_in_flight: usize,
    /// How often to look at the chain while waiting for it.
    poll: Duration,
    block_time: Duration,
    /// Held while signing and broadcasting, and while settling unresolved transactions.
    turn: Mutex<()>,
    ledger: SharedLedger,
    /// Woken whenever a transaction leaves the in-flight set.
    settled: Arc<Notify>,
    gas_price: GasPriceCache,
    tip: TipCache,
    /// How many txs may be in flight now (1..=`max_in_flight`): halved when one misses its
    /// blocks, one more for each included (the blocks' room, found out as TCP finds a path's).
    window: std::sync::atomic::AtomicUsize,
}

/// The chain's latest height as last read (at most every half block, or afresh when a tx in
/// flight may be at its last block), for timeout heights.
#[derive(Debug)]
struct TipCache {
    refresh_every: Duration,
    current: std::sync::Mutex<Option<(u64, Instant)>>,
}

impl TipCache {
    fn new(chain: &ChainConfig) -> Self {
        TipCache {
            refresh_every: chain.block_time / 2,
            current: std::sync::Mutex::new(None),
        }
    }

    fn reading(&self) -> std::sync::MutexGuard<'_, Option<(u64, Instant)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last height read, however old.
    fn last(&self) -> Option<u64> {
        self.reading().map(|(height, _)| height)
    }

    /// Takes a height read elsewhere (never one older than the reading held).
    fn record(&self, height: u64) {
        let mut current = self.reading();
        if current.is_none_or(|(held, _)| height >= held) {
            *current = Some((height, Instant::now()));
        }
    }

    /// The latest height, read again when the last reading is older than `max_age`; a failed
    /// read gives the last one (a timeout height from it is only earlier: the tx settles sooner).
    async fn height<C: ChainClient>(
        &self,
        client: &C,
        wallet: &str,
        max_age: Duration,
    ) -> Option<u64> {
        let last = *self.reading();
        if let Some((height, at)) = last {
            if at.elapsed() < max_age {
                return Some(height);
            }
        }
        match client.latest_height().await {
            Ok(height) => {
                self.record(height);
                Some(height)
            }
            Err(error) => {
                tracing::debug!(%wallet, %error, "cannot read the chain's height; the timeout height is set from the last one read");
                last.map(|(height, _)| height)
            }
        }
    }
}

/// The fee market's base gas price as last read (read at most every half block); `None` on a
/// chain without one, or before the first reading. The builder turns it into the price txs are
/// signed with ([`TxBuilder::at_market`]: headroom over it, never below the configured price).
#[derive(Debug)]
struct GasPriceCache {
    fixed: bool,
    refresh_every: Duration,
    /// The base price and when it was read.
    current: std::sync::Mutex<(Option<Decimal>, Option<Instant>)>,
}

impl GasPriceCache {
    fn new(chain: &ChainConfig) -> Self {
        GasPriceCache {
            fixed: chain.fee_market == FeeMarket::Fixed,
            refresh_every: chain.block_time / 2,
            current: std::sync::Mutex::new((None, None)),
        }
    }

    fn reading(&self) -> std::sync::MutexGuard<'_, (Option<Decimal>, Option<Instant>)> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base(&self) -> Option<Decimal> {
        self.reading().0
    }

    /// Whether the price is the fee market's, read from the chain.
    fn follows_market(&self) -> bool {
        !self.fixed
    }

    /// Makes the next [`GasPriceCache::refresh`] read the chain.
    fn expire(&self) {
        self.reading().1 = None;
    }

    fn is_stale(&self) -> bool {
        !self.fixed
            && self
                .reading()
                .1
                .is_none_or(|at| at.elapsed() >= self.refresh_every)
    }

    /// Reads the market's base price when the last reading is stale. A failed read keeps the
    /// last price: the next tx reads again, and CheckTx refuses a fee that is too low.
    async fn refresh<C: ChainClient>(&self, client: &C, wallet: &str) {
        if !self.is_stale() {
            return;
        }
        match client.base_gas_price().await {
            Ok(base) => *self.reading() = (base, Some(Instant::now())),
            Err(error) => {
                tracing::debug!(%wallet, %error, "cannot read the fee market's gas price; signing at the last one read");
            }
        }
    }
}

impl<C> std::fmt::Debug for TxSender<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSender")
            .field("wallet", &self.wallet)
            .field("dry_run", &self.options.dry_run)
            .field("max_in_flight", &self.max_in_flight)
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
        let max_in_flight = options.max_in_flight.max(1);
        Ok(TxSender {
            client,
            builder: TxBuilder::new(chain),
            wallet,
            address,
            sequence,
            options,
            permit,
            max_in_flight,
            poll: (chain.block_time / 4).clamp(Duration::from_millis(20), Duration::from_secs(1)),
            block_time: chain.block_time,
            turn: Mutex::new(()),
            ledger: SharedLedger::default(),
            settled: Arc::new(Notify::new()),
            gas_price: GasPriceCache::new(chain),
            tip: TipCache::new(chain),
            window: std::sync::atomic::AtomicUsize::new(max_in_flight),
        })
    }

    /// At most `max` transactions broadcast and not yet settled (at least 1).
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        *self.window.get_mut() = self.max_in_flight;
        self
    }

    /// How many txs may be in flight now: `max_in_flight` until one misses its blocks.
    pub fn window(&self) -> usize {
        self.window.load(Ordering::Relaxed)
    }

    /// One more tx in flight after an inclusion; half as many after a tx missed its blocks.
    fn adjust_window(&self, included: bool) {
        let max = self.max_in_flight;
        let _ = self
            .window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |window| {
                Some(if included {
                    (window + 1).min(max)
                } else {
                    (window / 2).max(1)
                })
            });
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
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

    /// Transactions broadcast whose inclusion is being awaited.
    pub fn in_flight(&self) -> usize {
        lock(&self.ledger).in_flight.len()
    }

    /// Gas `messages` would use now (simulation against the latest state, with the wallet's
    /// transactions waiting in the mempool counted); a refusal names the failing message in its
    /// log. A wrong sequence (the chain's moved on without this sender) resyncs from the chain
    /// and retries once, as a broadcast does, when nothing of this sender's is in flight.
    pub async fn simulate(&self, messages: &[Any]) -> Result<u64, SendError> {
        Ok(self.simulate_tx(messages).await?.gas_used)
    }

    /// [`TxSender::simulate`], with the events the messages would emit. On a chain with a fee
    /// market the gas price is read too (at most every half block), for the fee that follows.
    pub async fn simulate_tx(&self, messages: &[Any]) -> Result<Simulation, SendError> {
        self.gas_price.refresh(&self.client, &self.address).await;
        let mut resynced = false;
        let mut at_dropped = None;
        loop {
            let sequence = at_dropped.unwrap_or_else(|| self.sequence.peek());
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
                Ok(simulation) => return Ok(simulation),
                Err(ChainError::Rejected(rejection))
                    if rejection.kind == TxErrorCode::WrongSequence && !resynced =>
                {
                    resynced = true;
                    if self.dropped_beneath(&rejection) {
                        return Err(self.wait_out_dropped(None).await);
                    }
                    if let Some(expected) = self.dropped_unresolved(&rejection) {
                        // The chain expects a sequence only txs of unknown fate hold: they were
                        // dropped (expired), and the next broadcast settles them first. The
                        // simulation need not wait for that.
                        at_dropped = Some(expected);
                        continue;
                    }
                    let Some(committed) = self.resync_past_in_flight().await? else {
                        return Err(SendError::Simulation(rejection));
                    };
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
        let broadcast = self.broadcast_inner(messages, memo, None, None).await?;
        self.confirm(broadcast).await
    }

    /// [`TxSender::send`] for messages the caller has just simulated at `gas_used`.
    pub async fn send_simulated(
        &self,
        messages: Vec<Any>,
        memo: &str,
        gas_used: u64,
    ) -> Result<Sent, SendError> {
        let broadcast = self
            .broadcast_inner(messages, memo, Some(gas_used), None)
            .await?;
        self.confirm(broadcast).await
    }

    /// Simulates, signs and broadcasts; [`TxSender::confirm`] waits for the inclusion.
    pub async fn broadcast(&self, messages: Vec<Any>, memo: &str) -> Result<Broadcast, SendError> {
        self.broadcast_inner(messages, memo, None, None).await
    }

    /// [`TxSender::broadcast`] for messages the caller has just simulated at `gas_used`.
    pub async fn broadcast_simulated(
        &self,
        messages: Vec<Any>,
        memo: &str,
        gas_used: u64,
    ) -> Result<Broadcast, SendError> {
        self.broadcast_inner(messages, memo, Some(gas_used), None)
            .await
    }

    /// [`TxSender::broadcast_simulated`] bidding up to `bid` for its place in the block: signed
    /// at the gas price that pays at most that fee ([`crate::bid::price_for_fee`]), or at the
    /// market's price when that is higher (always, without a bid).
    pub async fn broadcast_bidding(
        &self,
        messages: Vec<Any>,
        memo: &str,
        gas_used: u64,
        bid: Option<Uint128>,
    ) -> Result<Broadcast, SendError> {
        self.broadcast_inner(messages, memo, Some(gas_used), bid)
            .await
    }

    async fn broadcast_inner(
        &self,
        messages: Vec<Any>,
        memo: &str,
        gas_used: Option<u64>,
        bid: Option<Uint128>,
    ) -> Result<Broadcast, SendError> {
        let _turn = self.turn.lock().await;
        self.settle_unresolved_or_refuse().await?;
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
        if !self.options.dry_run {
            self.wait_for_in_flight_below(self.window()).await?;
        }
        let tip = match self.options.dry_run {
            true => {
                self.gas_price.refresh(&self.client, &self.address).await;
                self.tip_for_signing().await
            }
            false => self.tip_clear_of_drops().await?,
        };
        let timeout_from = |tip: Option<u64>| {
            let blocks = self.options.timeout_blocks?;
            tip.map(|tip| tip + blocks)
        };
        let mut timeout_height = timeout_from(tip);
        let signing_builder = |timeout_height: Option<u64>| {
            let builder = self.builder.at_market(self.gas_price.base());
            let builder = match bid {
                Some(fee) => builder.with_gas_price(crate::bid::price_for_fee(
                    fee,
                    gas_limit,
                    builder.gas_price(),
                )),
                None => builder,
            };
            match timeout_height {
                Some(height) => builder.with_timeout_height(height),
                None => builder,
            }
        };
        let mut builder = signing_builder(timeout_height);
        let (mut resynced, mut repriced, mut retimed) = (false, false, false);
        loop {
            let sequence = self.sequence.peek();
            let signed = builder
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
                return Ok(Broadcast::DryRun(DryRunTx {
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
            let info = |broadcast_at| TxInfo {
                hash,
                sequence,
                gas_limit,
                fee: signed.fee.clone(),
                broadcast_at,
                since: Instant::now(),
                timeout_height,
            };
            match self.client.broadcast_sync(signed.bytes.clone()).await {
                Ok(_) => {
                    self.sequence.reset(sequence + 1);
                    let waiting = InFlight {
                        hash,
                        gas_price: builder.gas_price(),
                        timeout_height,
                    };
                    lock(&self.ledger).in_flight.insert(sequence, waiting);
                    return Ok(Broadcast::Pending(PendingTx {
                        info: info(SystemTime::now()),
                        ledger: self.ledger.clone(),
                        settled: self.settled.clone(),
                        done: false,
                    }));
                }
                Err(ChainError::Rejected(rejection)) => {
                    if rejection.kind == TxErrorCode::WrongSequence && !resynced {
                        resynced = true;
                        if self.dropped_beneath(&rejection) {
                            return Err(self.wait_out_dropped(Some(rejection)).await);
                        }
                        let Some(committed) = self.resync_past_in_flight().await? else {
                            return Err(SendError::CheckTx(rejection));
                        };
                        tracing::warn!(
                            wallet = %self.address,
                            signed_with = sequence,
                            committed,
                            log = %rejection.log,
                            "wrong sequence: resynced from the chain, retrying once"
                        );
                        continue;
                    }
                    if rejection.kind == TxErrorCode::InsufficientFee
                        && self.gas_price.follows_market()
                        && !repriced
                    {
                        // The market's price rose past the reading plus headroom: nothing was
                        // paid, the sequence is unused; read the price now and sign again.
                        repriced = true;
                        self.gas_price.expire();
                        self.gas_price.refresh(&self.client, &self.address).await;
                        builder = signing_builder(timeout_height);
                        tracing::debug!(
                            wallet = %self.address,
                            log = %rejection.log,
                            price = %builder.gas_price(),
                            "fee below the market's price: re-read it and signed again"
                        );
                        continue;
                    }
                    if rejection.kind == TxErrorCode::TimeoutHeight && !retimed {
                        // The chain passed the timeout height before the tx reached it (a slow
                        // step, or the tip read half a block ago): nothing was paid and the
                        // sequence is unused; sign again from the height now.
                        retimed = true;
                        let tip = self
                            .tip
                            .height(&self.client, &self.address, Duration::ZERO)
                            .await;
                        if self.in_flight_doomed(tip) {
                            // The same stale reading may have hidden a tx of this wallet past
                            // its last block: one signed on top of it would be refused too.
                            return Err(self.wait_out_dropped(None).await);
                        }
                        timeout_height = timeout_from(tip);
                        builder = signing_builder(timeout_height);
                        tracing::debug!(
                            wallet = %self.address,
                            log = %rejection.log,
                            ?timeout_height,
                            "timeout height passed before CheckTx: signed again from the chain's height now"
                        );
                        continue;
                    }
                    return Err(SendError::CheckTx(rejection));
                }
                // The node may have taken the tx before the connection failed: its fate is
                // unknown, so it is kept unresolved rather than re-sent.
                Err(e) => {
                    let broadcast_at = SystemTime::now();
                    lock(&self.ledger)
                        .unresolved
                        .insert(sequence, info(broadcast_at));
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

    /// Waits for a broadcast transaction's inclusion. A dry run passes through.
    pub async fn confirm(&self, broadcast: Broadcast) -> Result<Sent, SendError> {
        let mut pending = match broadcast {
            Broadcast::DryRun(tx) => return Ok(Sent::DryRun(tx)),
            Broadcast::Pending(pending) => pending,
        };
        let inclusion = self.wait_for_inclusion(&pending.info).await;
        self.adjust_window(!matches!(inclusion, Err(NotSeen::PastTimeoutHeight(_))));
        match inclusion {
            Ok(outcome) => {
                pending.settle(true);
                self.included(pending.info.clone(), outcome)
            }
            Err(not_seen) => {
                // Kept unresolved: nothing is signed past it until it is settled.
                pending.settle(false);
                let TxInfo {
                    hash,
                    sequence,
                    broadcast_at,
                    ..
                } = pending.info;
                Err(match not_seen {
                    NotSeen::PastTimeoutHeight(timeout_height) => SendError::Expired {
                        hash,
                        sequence,
                        broadcast_at,
                        timeout_height,
                    },
                    NotSeen::Unknown(reason) => SendError::Unconfirmed {
                        hash,
                        sequence,
                        broadcast_at,
                        reason,
                    },
                })
            }
        }
    }

    /// Waits for `tx` to be included, for the inclusion timeout at most, and no longer than
    /// until the chain has committed the block at its timeout height (no later block can
    /// include it).
    async fn wait_for_inclusion(&self, tx: &TxInfo) -> Result<TxOutcome, NotSeen> {
        let unknown = |e: ChainError| NotSeen::Unknown(e.to_string());
        let Some(timeout_height) = tx.timeout_height else {
            return self
                .client
                .wait_for_tx(tx.hash, self.options.inclusion_timeout)
                .await
                .map_err(unknown);
        };
        let deadline = tokio::time::Instant::now() + self.options.inclusion_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let step = left.min(self.block_time);
            match self.client.wait_for_tx(tx.hash, step).await {
                Err(ChainError::Timeout { .. }) if step < left => {}
                other => return other.map_err(unknown),
            }
            let tip = self.client.latest_height().await;
            if let Ok(tip) = tip {
                self.tip.record(tip);
            }
            match tip {
                Ok(tip) if tip >= timeout_height => {
                    // One more look: the last block's txs may have been indexed just now.
                    return self
                        .client
                        .wait_for_tx(tx.hash, Duration::from_millis(1))
                        .await
                        .map_err(|_| NotSeen::PastTimeoutHeight(timeout_height));
                }
                Ok(_) => {}
                Err(e) => return Err(unknown(e)),
            }
        }
    }

    /// Whether a tx of this wallet waiting for its block can no longer be included: the fee
    /// market's price (as last read) passed the price it pays, so the mempool's recheck drops
    /// it; or the chain (at `tip`) is past its timeout height.
    fn in_flight_doomed(&self, tip: Option<u64>) -> bool {
        let base = self
            .gas_price
            .follows_market()
            .then(|| self.gas_price.base())
            .flatten();
        lock(&self.ledger).in_flight.values().any(|tx| {
            base.is_some_and(|base| tx.gas_price < base)
                || matches!((tx.timeout_height, tip), (Some(last), Some(tip)) if tip > last)
        })
    }

    /// The chain's height to set a timeout height from, and to judge the txs in flight by: the
    /// half-block reading, or a fresh one when by that reading a tx in flight may be at its last
    /// block (the reading may be one block behind).
    async fn tip_for_signing(&self) -> Option<u64> {
        let near_last_block = self.tip.last().is_some_and(|tip| {
            lock(&self.ledger)
                .in_flight
                .values()
                .any(|tx| tx.timeout_height.is_some_and(|last| tip + 2 >= last))
        });
        let max_age = match near_last_block {
            true => Duration::ZERO,
            false => self.tip.refresh_every,
        };
        self.tip.height(&self.client, &self.address, max_age).await
    }

    /// The chain's height to sign at, once no tx of this wallet in flight is about to be dropped
    /// (see [`Self::wait_out_last_chances`]). The fee market's price is read again too when
    /// stale: it may have moved since the simulation.
    async fn tip_clear_of_drops(&self) -> Result<Option<u64>, SendError> {
        loop {
            self.gas_price.refresh(&self.client, &self.address).await;
            let tip = self.tip_for_signing().await;
            if self.in_flight_doomed(tip) {
                // A tx of this wallet in the mempool can no longer be included, and every later
                // one waits behind its sequence: a tx signed now would be refused. They settle
                // by their timeout heights; the caller plans again on what the chain is then.
                return Err(self.wait_out_dropped(None).await);
            }
            match tip {
                Some(tip) if self.wait_out_last_chances(tip).await? => {}
                _ => return Ok(tip),
            }
        }
    }

    /// Holds the next tx while a tx of this wallet in flight, not included yet, has only the
    /// block at its timeout height left (the chain is at `tip`). Should that block leave it out,
    /// the mempool drops it and everything signed after it: a tx signed on top now would be
    /// refused for its sequence. Included, the wallet goes on; expired, its txs in flight are
    /// waited out (`InFlightDropped`: plan again). Whether it held (the chain has moved on).
    async fn wait_out_last_chances(&self, tip: u64) -> Result<bool, SendError> {
        let last_chances: Vec<(u64, TxHash)> = lock(&self.ledger)
            .in_flight
            .iter()
            .filter(|(_, tx)| tx.timeout_height.is_some_and(|last| tip + 1 >= last))
            .map(|(sequence, tx)| (*sequence, tx.hash))
            .collect();
        for (sequence, hash) in last_chances {
            // Usually it was included in the block just committed, its confirmation not yet in.
            if self
                .client
                .wait_for_tx(hash, Duration::from_millis(1))
                .await
                .is_ok()
            {
                continue;
            }
            self.wait_for_ledger(|ledger| !ledger.in_flight.contains_key(&sequence))
                .await?;
            if lock(&self.ledger).unresolved.contains_key(&sequence) {
                return Err(self.wait_out_dropped(None).await);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether a wrong-sequence refusal shows that the node dropped this wallet's txs in flight:
    /// it expects a sequence that one of them holds (they left its mempool, and everything
    /// signed after them waits behind the gap until they settle by their timeout heights).
    fn dropped_beneath(&self, rejection: &TxRejection) -> bool {
        let Some(expected) = expected_sequence(&rejection.log) else {
            return false;
        };
        lock(&self.ledger).in_flight.contains_key(&expected)
    }

    /// The sequence a wrong-sequence refusal expects when one of this wallet's unresolved txs
    /// holds it (the chain never executed it): a simulation may take it meanwhile.
    fn dropped_unresolved(&self, rejection: &TxRejection) -> Option<u64> {
        let expected = expected_sequence(&rejection.log)?;
        lock(&self.ledger)
            .unresolved
            .contains_key(&expected)
            .then_some(expected)
    }

    /// Waits until the wallet's txs in flight, which the mempool dropped, have settled (by their
    /// timeout heights); the error to return (`refused`: the refusal that showed the drop).
    async fn wait_out_dropped(&self, refused: Option<Box<TxRejection>>) -> SendError {
        match self.wait_for_in_flight_below(1).await {
            Ok(()) => SendError::InFlightDropped {
                wallet: self.address.clone(),
                refused,
            },
            Err(stuck) => stuck,
        }
    }

    /// Waits until fewer than `limit` transactions are in flight.
    async fn wait_for_in_flight_below(&self, limit: usize) -> Result<(), SendError> {
        self.wait_for_ledger(|ledger| ledger.in_flight.len() < limit)
            .await
    }

    /// Waits until the ledger meets `done`, as txs in flight settle. In-flight transactions
    /// settle within the inclusion timeout (or when their [`PendingTx`] is dropped); a wait
    /// longer than twice that is an error.
    async fn wait_for_ledger(&self, done: impl Fn(&Ledger) -> bool) -> Result<(), SendError> {
        let patience = self.options.inclusion_timeout * 2 + Duration::from_secs(1);
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if done(&lock(&self.ledger)) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(SendError::InFlightStuck {
                    wallet: self.address.clone(),
                    in_flight: self.in_flight(),
                    waited: patience,
                });
            }
        }
    }

    /// Resyncs the sequence from the chain's committed one, once that is past every tx of
    /// this sender in flight (the committed sequence lags behind them; resyncing earlier would
    /// hand their sequences out again). `None`, without a resync, while a tx of unknown fate
    /// exists or when the txs in flight are not all committed within the inclusion timeout.
    async fn resync_past_in_flight(&self) -> Result<Option<u64>, SendError> {
        let deadline = tokio::time::Instant::now() + self.options.inclusion_timeout;
        loop {
            let highest = {
                let ledger = lock(&self.ledger);
                if !ledger.unresolved.is_empty() {
                    return Ok(None);
                }
                ledger.in_flight.keys().next_back().copied()
            };
            let committed = self
                .client
                .account(&self.address)
                .await
                .map_err(SendError::Chain)?
                .sequence;
            if highest.is_none_or(|highest| committed > highest) {
                self.sequence.reset(committed);
                return Ok(Some(committed));
            }
            if tokio::time::Instant::now() + self.poll > deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    fn has_unresolved_now(&self) -> bool {
        !lock(&self.ledger).unresolved.is_empty()
    }

    /// Settles unresolved transactions (lowest sequence first) as far as possible; refuses
    /// (`Unresolved`) while any remains. Called with the turn held.
    async fn settle_unresolved_or_refuse(&self) -> Result<(), SendError> {
        loop {
            let lowest = lock(&self.ledger)
                .unresolved
                .values()
                .next()
                .map(|tx| (tx.hash, tx.sequence));
            let Some((hash, sequence)) = lowest else {
                return Ok(());
            };
            match self.try_resolve().await {
                Ok(Some(resolution @ Resolution::Expired { .. })) => {
                    tracing::debug!(wallet = %self.address, %hash, ?resolution, "earlier tx expired unincluded")
                }
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
    }

    fn included(&self, info: TxInfo, outcome: TxOutcome) -> Result<Sent, SendError> {
        let tx = Box::new(SentTx {
            hash: info.hash,
            sequence: info.sequence,
            gas_limit: info.gas_limit,
            fee: info.fee,
            broadcast_at: info.broadcast_at,
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

    /// Settles the lowest unresolved tx if possible; `Ok(None)` when there is none, while
    /// transactions are still in flight, or when it is still unknown (then
    /// [`TxSender::send`] refuses to send).
    pub async fn resolve_unresolved(&self) -> Result<Option<Resolution>, ChainError> {
        let _turn = self.turn.lock().await;
        self.try_resolve().await
    }

    /// Whether a tx of unknown fate blocks this sender.
    pub async fn has_unresolved(&self) -> bool {
        self.has_unresolved_now()
    }

    /// Called with the turn held.
    async fn try_resolve(&self) -> Result<Option<Resolution>, ChainError> {
        let pending = {
            let ledger = lock(&self.ledger);
            // What is still in flight settles first (it may be the proof of what came before).
            if !ledger.in_flight.is_empty() {
                return Ok(None);
            }
            match ledger.unresolved.values().next() {
                Some(tx) => tx.clone(),
                None => return Ok(None),
            }
        };
        let (hash, sequence) = (pending.hash, pending.sequence);
        let forget = || {
            let mut ledger = lock(&self.ledger);
            ledger.unresolved.remove(&sequence);
            ledger.unresolved.is_empty()
        };
        // One short look: the normal wait has already timed out once.
        match self
            .client
            .wait_for_tx(hash, Duration::from_millis(1))
            .await
        {
            Ok(outcome) => {
                if forget() {
                    self.sequence.resync(&self.client).await?;
                }
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
        // The height first: the account is then read at a state at least that new.
        let tip = match pending.timeout_height {
            Some(_) => Some(self.client.latest_height().await?),
            None => None,
        };
        let committed = self.client.account(&self.address).await?.sequence;
        if committed > sequence {
            if forget() {
                self.sequence.reset(committed);
            }
            return Ok(Some(Resolution::SequenceConsumed { hash, sequence }));
        }
        if let (Some(timeout_height), Some(tip)) = (pending.timeout_height, tip) {
            if tip >= timeout_height {
                // Not in any block up to its timeout height (the sequence would have moved),
                // and no later block may include it.
                if forget() {
                    self.sequence.reset(committed);
                }
                tracing::debug!(wallet = %self.address, %hash, sequence, timeout_height, "tx not included by its timeout height; its sequence is reused");
                return Ok(Some(Resolution::Expired {
                    hash,
                    sequence,
                    timeout_height,
                }));
            }
        }
        if pending.since.elapsed() >= self.options.unresolved_grace {
            if forget() {
                // The next tx takes the committed sequence: at most one tx per sequence can
                // execute.
                self.sequence.reset(committed);
            }
            tracing::warn!(wallet = %self.address, %hash, sequence, "unconfirmed tx presumed dropped; its sequence is reused");
            return Ok(Some(Resolution::PresumedDropped { hash, sequence }));
        }
        Ok(None)
    }

    /// The fee a tx that simulated at `gas_used` will pay, at the gas price last read.
    pub fn fee_for_gas(&self, gas_used: u64) -> Coin {
        self.builder
            .at_market(self.gas_price.base())
            .fee_for(self.builder.gas_limit_for(gas_used))
    }

    /// The gas price txs are signed with now (the fee market's, with headroom, as last read).
    pub fn gas_price(&self) -> Decimal {
        self.builder.at_market(self.gas_price.base()).gas_price()
    }
}

/// The sequence an "account sequence mismatch, expected N, got M" refusal says the node expects.
fn expected_sequence(log: &str) -> Option<u64> {
    number_after(log, "expected ")
}

/// The number written right after the first `marker` in an SDK log.
fn number_after<T: std::str::FromStr>(log: &str, marker: &str) -> Option<T> {
    let rest = &log[log.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_expected_sequence() {
        let log = "account sequence mismatch, expected 177, got 179: incorrect account sequence";
        assert_eq!(expected_sequence(log), Some(177));
        assert_eq!(expected_sequence("insufficient fees"), None);
    }

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
