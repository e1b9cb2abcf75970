//! The chain: a cw-multi-test `App` driven like a Cosmos SDK chain.
//!
//! The App is not `Send`, so it lives on one dedicated thread (the chain thread) together with
//! x/auth accounts, the mempool and block production. Everything else talks to it through a
//! [`ChainHandle`]: commands over a channel (CheckTx, queries, price moves), committed blocks
//! through a shared [`BlockStore`] and a broadcast channel.
//!
//! Contracts are deployed into a [`DevApp`] by the genesis closure given to [`spawn`], which runs
//! on the chain thread before the first block.

pub mod accounts;
pub mod block;
pub mod fee_market;
pub mod gas;
pub mod mempool;
pub mod query;
pub mod state;
pub mod storage;
pub mod tx;

use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use cosmwasm_std::{Decimal, Empty};
use cw_multi_test::{
    no_init, App, AppBuilder, BankKeeper, DistributionKeeper, FailingModule, GovFailingModule,
    IbcFailingModule, MockApiBech32, StakeKeeper, StargateFailing, WasmKeeper,
};
use tendermint::Time;
use tokio::sync::{broadcast, oneshot};

pub use block::{BlockRecord, BlockStore};
pub use fee_market::FeeMarketParams;
pub use state::{ChainConfig, ChainState, CheckOutcome, PriceMove, PriceSetter, PriceTrigger};
pub use storage::ChainStorage;
pub use tx::TxError;

/// The App every devnet contract runs in: bech32 addresses with the chain's prefix, and the
/// chain's own storage (see [`ChainStorage`]).
pub type DevApp = App<
    BankKeeper,
    MockApiBech32,
    ChainStorage,
    FailingModule<Empty, Empty, Empty>,
    WasmKeeper<Empty, Empty>,
    StakeKeeper,
    DistributionKeeper,
    IbcFailingModule,
    GovFailingModule,
    StargateFailing,
>;

/// A fresh App whose addresses use `bech32_prefix`.
///
/// `MockApiBech32` wants a `&'static str`; a node is started a handful of times per process, so
/// the prefix is leaked once per App.
pub fn new_app(bech32_prefix: &str) -> DevApp {
    let prefix: &'static str = Box::leak(bech32_prefix.to_string().into_boxed_str());
    AppBuilder::new()
        .with_api(MockApiBech32::new(prefix))
        .with_storage(ChainStorage::new())
        .with_wasm(WasmKeeper::new())
        .build(no_init)
}

/// A query's answer and the height of the state that answered it.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    pub height: u64,
    pub result: Result<Vec<u8>, TxError>,
}

/// A snapshot of the chain for `/admin/info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChainInfo {
    pub chain_id: String,
    pub height: u64,
    pub accounts: usize,
    pub seeded_accounts: u64,
    pub mempool: usize,
    pub can_move_prices: bool,
}

enum Command {
    CheckTx {
        tx: Vec<u8>,
        reply: oneshot::Sender<CheckOutcome>,
    },
    Query {
        path: String,
        data: Vec<u8>,
        height: u64,
        reply: oneshot::Sender<QueryOutcome>,
    },
    SetPrices {
        prices: BTreeMap<String, Decimal>,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    Info {
        reply: oneshot::Sender<ChainInfo>,
    },
    /// Runs on the chain thread between blocks (the in-process competitor's look at state).
    Inspect(Box<dyn FnOnce(&mut ChainState) + Send>),
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the chain thread has stopped")]
    Stopped,
}

/// The async side's handle on the chain thread. Cheap to clone.
#[derive(Clone)]
pub struct ChainHandle {
    commands: mpsc::Sender<Command>,
    store: Arc<RwLock<BlockStore>>,
    blocks: broadcast::Sender<Arc<BlockRecord>>,
    config: Arc<ChainConfig>,
}

impl ChainHandle {
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ChainError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .map_err(|_| ChainError::Stopped)?;
        answer.await.map_err(|_| ChainError::Stopped)
    }

    /// CheckTx, and into the mempool when it passes.
    pub async fn check_tx(&self, tx: Vec<u8>) -> Result<CheckOutcome, ChainError> {
        self.ask(|reply| Command::CheckTx { tx, reply }).await
    }

    /// An `abci_query`; `height` 0 means latest.
    pub async fn query(
        &self,
        path: String,
        data: Vec<u8>,
        height: u64,
    ) -> Result<QueryOutcome, ChainError> {
        self.ask(|reply| Command::Query {
            path,
            data,
            height,
            reply,
        })
        .await
    }

    /// Queues a price move for the next block; answers that block's height.
    pub async fn set_prices(
        &self,
        prices: BTreeMap<String, Decimal>,
    ) -> Result<Result<u64, String>, ChainError> {
        self.ask(|reply| Command::SetPrices { prices, reply }).await
    }

    pub async fn info(&self) -> Result<ChainInfo, ChainError> {
        self.ask(|reply| Command::Info { reply }).await
    }

    /// Runs `look` on the chain thread between blocks and answers what it returns.
    pub async fn inspect<T: Send + 'static>(
        &self,
        look: impl FnOnce(&mut ChainState) -> T + Send + 'static,
    ) -> Result<T, ChainError> {
        self.ask(|reply| {
            Command::Inspect(Box::new(move |state| {
                let _ = reply.send(look(state));
            }))
        })
        .await
    }

    /// Read access to the committed blocks.
    pub fn store(&self) -> std::sync::RwLockReadGuard<'_, BlockStore> {
        self.store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every block committed from now on.
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<BlockRecord>> {
        self.blocks.subscribe()
    }
}

/// The running chain thread.
pub struct ChainThread {
    commands: mpsc::Sender<Command>,
    join: Option<JoinHandle<()>>,
}

impl ChainThread {
    /// Stops block production and waits for the thread to end.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(join) = self.join.take() {
            if join.join().is_err() {
                tracing::error!("the chain thread panicked");
            }
        }
    }
}

impl Drop for ChainThread {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Starts the chain thread: builds the App, runs `genesis` on it (deploy contracts, seed
/// accounts), then produces a block every `config.block_time`. Returns once genesis is done,
/// with what genesis returned.
pub async fn spawn<G, T>(
    config: ChainConfig,
    genesis: G,
) -> anyhow::Result<(ChainHandle, ChainThread, T)>
where
    G: FnOnce(&mut ChainState) -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let genesis_time = Time::now();
    let (commands, receiver) = mpsc::channel();
    let (blocks, _) = broadcast::channel(1024);
    let store = Arc::new(RwLock::new(BlockStore::new(
        config.history_blocks,
        genesis_time,
        Default::default(),
    )));
    let (ready, is_ready) = oneshot::channel::<anyhow::Result<T>>();
    let thread_config = config.clone();
    let thread_store = store.clone();
    let thread_blocks = blocks.clone();
    let join = std::thread::Builder::new()
        .name("devnet-chain".into())
        .spawn(move || {
            let app = new_app(&thread_config.bech32_prefix);
            let mut state = match ChainState::new(app, thread_config, genesis_time) {
                Ok(state) => state,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            let output = match genesis(&mut state) {
                Ok(output) => output,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            {
                let mut store = thread_store.write().unwrap_or_else(|p| p.into_inner());
                store.genesis_app_hash = state.genesis_app_hash().clone();
                store.catching_up = false;
            }
            if ready.send(Ok(output)).is_err() {
                return;
            }
            run(state, receiver, thread_store, thread_blocks);
        })?;
    let thread = ChainThread {
        commands: commands.clone(),
        join: Some(join),
    };
    let output = is_ready
        .await
        .map_err(|_| anyhow::anyhow!("the chain thread ended during genesis"))??;
    let handle = ChainHandle {
        commands,
        store,
        blocks,
        config: Arc::new(config),
    };
    Ok((handle, thread, output))
}

fn run(
    mut state: ChainState,
    commands: mpsc::Receiver<Command>,
    store: Arc<RwLock<BlockStore>>,
    blocks: broadcast::Sender<Arc<BlockRecord>>,
) {
    let interval = state.config().block_time;
    state.mark_started(Time::now());
    let mut next_block = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if now >= next_block {
            let started = Instant::now();
            let record = state.produce_block(Time::now());
            store
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(record.clone());
            tracing::debug!(
                height = record.height().value(),
                txs = record.tx_hashes.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "block committed"
            );
            // No receivers is fine: nobody is subscribed yet.
            let _ = blocks.send(record);
            next_block += interval;
            if next_block < Instant::now() {
                // Running behind (a huge block): keep the cadence from now instead of bursting.
                next_block = Instant::now() + interval;
            }
            continue;
        }
        match commands.recv_timeout(next_block - now) {
            Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(command) => handle(&mut state, command),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn handle(state: &mut ChainState, command: Command) {
    match command {
        Command::CheckTx { tx, reply } => {
            let _ = reply.send(state.check_tx(tx));
        }
        Command::Query {
            path,
            data,
            height,
            reply,
        } => {
            let latest = state.height();
            // Only the latest state is kept: past heights are answered from it, and the
            // response's height says which state answered.
            let result = if height > latest {
                Err(TxError::invalid_height(format!(
                    "cannot query with height in the future ({height} > {latest}); please provide a valid height"
                )))
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    query::handle(state, &path, &data)
                }))
                .unwrap_or_else(|payload| Err(TxError::panic(payload.as_ref())))
            };
            let _ = reply.send(QueryOutcome {
                height: latest,
                result,
            });
        }
        Command::SetPrices { prices, reply } => {
            let answer = state.validate_prices(&prices).map(|()| {
                state.schedule_prices(PriceMove {
                    trigger: PriceTrigger::NextBlock,
                    prices,
                });
                state.height() + 1
            });
            let _ = reply.send(answer);
        }
        Command::Info { reply } => {
            let _ = reply.send(ChainInfo {
                chain_id: state.config().chain_id.clone(),
                height: state.height(),
                accounts: state.accounts.len(),
                seeded_accounts: state.seeded_accounts,
                mempool: state.mempool_len(),
                can_move_prices: state.has_price_setter(),
            });
        }
        Command::Inspect(look) => look(state),
        Command::Shutdown => {}
    }
}
