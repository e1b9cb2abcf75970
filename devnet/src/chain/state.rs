//! The chain's state machine: the App plus x/auth, the mempool, the ante checks, tx delivery,
//! simulation and block production. It lives on the chain thread (see `super::spawn`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cosmrs::proto::cosmos::base::abci::v1beta1::TxMsgData;
use cosmwasm_std::{
    Addr, BankMsg, Binary, BlockInfo, CanonicalAddr, Coin, CosmosMsg, Decimal, Timestamp, Uint256,
    WasmMsg,
};
use cw_multi_test::{AppResponse, Executor};
use prost::Message;
use sha2::{Digest, Sha256};
use tendermint::abci::types::ExecTxResult;
use tendermint::abci::Event as AbciEvent;
use tendermint::{AppHash, Time};

use super::accounts::Accounts;
use super::block::{self, BlockInput, BlockRecord, Validator};
use super::fee_market::{required_fee, FeeMarketParams};
use super::gas;
use super::mempool::{self, BlockLimits, Waiting};
use super::tx::{self, DecodedTx, SignerData, TxError, TxMsg};
use super::DevApp;
use cosmwasm_std::Api as _;

/// Where cw-multi-test's `BankKeeper` keeps balances: namespace `bank`, map `balances`.
const BANK_NAMESPACE: &[u8] = b"bank";
const BANK_BALANCES: cw_storage_plus::Map<&Addr, Vec<Coin>> = cw_storage_plus::Map::new("balances");

/// Chain parameters fixed at start.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub chain_id: String,
    pub bech32_prefix: String,
    /// The denom fees are paid in.
    pub fee_denom: String,
    /// Minimum gas price in `fee_denom` that CheckTx demands (with a fee market, the least its
    /// base gas price falls to).
    pub min_gas_price: Decimal,
    /// Neutron's fee market: a base gas price moving with block gas, checked at delivery too.
    pub fee_market: Option<FeeMarketParams>,
    pub block_time: Duration,
    /// How many recent blocks `block`, `block_results` and `tx` can answer for.
    pub history_blocks: usize,
    /// Most txs one block takes; the rest wait for the next block.
    pub max_block_txs: usize,
    /// Most gas (counted at the txs' gas limits) one block takes, as the consensus params'
    /// `block.max_gas`; `None` for no limit.
    pub max_block_gas: Option<u64>,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            chain_id: "devnet-1".into(),
            bech32_prefix: "osmo".into(),
            fee_denom: "uosmo".into(),
            min_gas_price: Decimal::permille(25),
            fee_market: None,
            block_time: Duration::from_secs(1),
            history_blocks: 10_000,
            max_block_txs: 5_000,
            max_block_gas: None,
        }
    }
}

/// Moves oracle prices: installed by the scenario, which knows the oracle contract.
pub type PriceSetter = Box<
    dyn FnMut(&mut DevApp, &BTreeMap<String, Decimal>) -> anyhow::Result<Vec<cosmwasm_std::Event>>,
>;

/// When a scheduled price move applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceTrigger {
    /// The next block (admin endpoint).
    NextBlock,
    /// The block at this height (or the first block after it, if it has passed).
    AtHeight(u64),
    /// The first block whose time is at least this long after block production started.
    AfterSeconds(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceMove {
    pub trigger: PriceTrigger,
    pub prices: BTreeMap<String, Decimal>,
}

/// What CheckTx answers.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub hash: [u8; 32],
    pub code: u32,
    pub codespace: String,
    pub log: String,
    pub gas_wanted: u64,
    pub gas_used: u64,
}

/// What Simulate answers on success.
#[derive(Debug, Clone)]
pub struct SimulateOutcome {
    pub gas_wanted: u64,
    pub gas_used: u64,
    pub data: Vec<u8>,
    pub msg_responses: Vec<cosmrs::Any>,
    pub events: Vec<AbciEvent>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Check,
    Deliver,
    Simulate,
}

/// The mempool's view of accounts (the SDK's CheckTx state): sequences, fees and keys of txs
/// accepted but not yet in a block.
#[derive(Default)]
struct CheckState {
    sequences: HashMap<String, u64>,
    fees: HashMap<String, Vec<Coin>>,
    pubkeys: HashMap<String, Vec<u8>>,
}

struct PendingTx {
    bytes: Vec<u8>,
    decoded: DecodedTx,
    waiting: Waiting,
}

/// How a tx ran: events and gas whatever the outcome, an error if it failed.
struct Execution {
    events: Vec<AbciEvent>,
    gas_used: u64,
    msg_responses: Vec<cosmrs::Any>,
    error: Option<TxError>,
}

pub struct ChainState {
    pub app: DevApp,
    pub accounts: Accounts,
    config: ChainConfig,
    chain_id: tendermint::chain::Id,
    fee_collector: Addr,
    mempool: VecDeque<PendingTx>,
    check: CheckState,
    price_setter: Option<PriceSetter>,
    /// Denoms the oracle prices; price moves naming others are refused.
    price_denoms: Vec<String>,
    price_moves: Vec<PriceMove>,
    validator: Validator,
    last_block: Option<Arc<BlockRecord>>,
    genesis_time: Time,
    /// When block production started (after genesis); `AfterSeconds` price moves count from it.
    started_at: Time,
    genesis_app_hash: AppHash,
    /// The gas price a tx must pay now: the minimum, or the fee market's base gas price.
    gas_price: Decimal,
    /// Borrowers the scenario seeded, for `/admin/info`.
    pub seeded_accounts: u64,
}

fn to_timestamp(time: Time) -> Timestamp {
    let nanos = time.unix_timestamp_nanos();
    Timestamp::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

fn coins_text(coins: &[Coin]) -> String {
    coins
        .iter()
        .map(|c| format!("{}{}", c.amount, c.denom))
        .collect::<Vec<_>>()
        .join(",")
}

fn abci_event(kind: &str, attrs: impl IntoIterator<Item = (String, String)>) -> AbciEvent {
    AbciEvent::new(kind, attrs.into_iter().map(|(k, v)| (k, v, true)))
}

/// cosmwasm events as the SDK reports a message's events, tagged with the message index.
fn message_events(events: &[cosmwasm_std::Event], msg_index: usize) -> Vec<AbciEvent> {
    events
        .iter()
        .map(|e| {
            abci_event(
                &e.ty,
                e.attributes
                    .iter()
                    .map(|a| (a.key.clone(), a.value.clone()))
                    .chain([("msg_index".to_string(), msg_index.to_string())]),
            )
        })
        .collect()
}

/// The contract's own error out of cw-multi-test's wrapped error text.
pub fn contract_error_text(error: &cosmwasm_std::StdError) -> String {
    let text = error.to_string();
    let inner = match text.rfind("kind: ") {
        Some(at) => match text[at..].find(", error: ") {
            Some(sep) => &text[at + sep + ", error: ".len()..],
            None => &text[at..],
        },
        None => text.as_str(),
    };
    inner.trim().to_string()
}

fn amount_of(coins: &[Coin], denom: &str) -> Uint256 {
    coins
        .iter()
        .filter(|c| c.denom == denom)
        .map(|c| c.amount)
        .fold(Uint256::zero(), |a, b| a.saturating_add(b))
}

fn insufficient_funds(spendable: Uint256, needed: &Coin) -> TxError {
    TxError::insufficient_funds(format!(
        "spendable balance {spendable}{} is smaller than {}{}",
        needed.denom, needed.amount, needed.denom
    ))
}

/// The SDK's module account address: the first 20 bytes of sha256(module name).
pub fn module_address(app: &DevApp, name: &str) -> Addr {
    let bytes: [u8; 32] = Sha256::digest(name.as_bytes()).into();
    app.api()
        .addr_humanize(&CanonicalAddr::from(&bytes[..20]))
        .expect("20 bytes always humanize with a valid prefix")
}

impl ChainState {
    pub fn new(app: DevApp, config: ChainConfig, genesis_time: Time) -> anyhow::Result<Self> {
        let chain_id: tendermint::chain::Id = config
            .chain_id
            .parse()
            .map_err(|e| anyhow::anyhow!("chain id `{}` is not valid: {e}", config.chain_id))?;
        let fee_collector = module_address(&app, "fee_collector");
        let genesis_app_hash =
            AppHash::try_from(Sha256::digest(format!("genesis {}", config.chain_id)).to_vec())
                .expect("32 bytes make an app hash");
        let gas_price = config.min_gas_price;
        let mut state = Self {
            app,
            accounts: Accounts::default(),
            config,
            chain_id,
            fee_collector,
            mempool: VecDeque::new(),
            check: CheckState::default(),
            price_setter: None,
            price_denoms: Vec::new(),
            price_moves: Vec::new(),
            validator: Validator::devnet(),
            last_block: None,
            genesis_time,
            started_at: genesis_time,
            genesis_app_hash,
            gas_price,
            seeded_accounts: 0,
        };
        let chain_id = state.config.chain_id.clone();
        state.app.set_block(BlockInfo {
            height: 0,
            time: to_timestamp(genesis_time),
            chain_id,
        });
        Ok(state)
    }

    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The least gas price a tx pays now: the fee market's base gas price, or the minimum.
    pub fn gas_price(&self) -> Decimal {
        self.gas_price
    }

    pub fn fee_collector(&self) -> &Addr {
        &self.fee_collector
    }

    pub fn genesis_time(&self) -> Time {
        self.genesis_time
    }

    /// Marks the start of block production (genesis may take a while before it).
    pub fn mark_started(&mut self, at: Time) {
        self.started_at = at;
    }

    pub fn genesis_app_hash(&self) -> &AppHash {
        &self.genesis_app_hash
    }

    pub fn last_block(&self) -> Option<&Arc<BlockRecord>> {
        self.last_block.as_ref()
    }

    pub fn height(&self) -> u64 {
        self.last_block
            .as_ref()
            .map(|b| b.height().value())
            .unwrap_or(0)
    }

    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Installs what moves prices, and the denoms it can price.
    pub fn set_price_setter(&mut self, denoms: Vec<String>, setter: PriceSetter) {
        self.price_denoms = denoms;
        self.price_setter = Some(setter);
    }

    /// Checks a price move before it is queued: a price setter exists and knows every denom.
    pub fn validate_prices(&self, prices: &BTreeMap<String, Decimal>) -> Result<(), String> {
        if self.price_setter.is_none() {
            return Err("this devnet has no oracle to move prices on".into());
        }
        for denom in prices.keys() {
            if !self.price_denoms.iter().any(|d| d == denom) {
                return Err(format!(
                    "prices.{denom}: unknown denom; the oracle prices {}",
                    self.price_denoms.join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn has_price_setter(&self) -> bool {
        self.price_setter.is_some()
    }

    pub fn schedule_prices(&mut self, price_move: PriceMove) {
        self.price_moves.push(price_move);
    }

    /// Mints coins to an address at genesis and opens its account, as genesis balances do.
    pub fn fund(&mut self, address: &str, coins: Vec<Coin>) -> anyhow::Result<()> {
        let addr = self
            .app
            .api()
            .addr_validate(address)
            .map_err(|e| anyhow::anyhow!("cannot fund `{address}`: {e}"))?;
        let coins: Vec<Coin> = coins.into_iter().filter(|c| !c.amount.is_zero()).collect();
        if !coins.is_empty() {
            self.app
                .sudo(cw_multi_test::SudoMsg::Bank(
                    cw_multi_test::BankSudo::Mint {
                        to_address: addr.to_string(),
                        amount: coins,
                    },
                ))
                .map_err(|e| anyhow::anyhow!("cannot mint to `{address}`: {e}"))?;
        }
        self.accounts.ensure(addr.as_str());
        Ok(())
    }

    pub fn balance(&self, address: &str, denom: &str) -> Uint256 {
        self.app
            .wrap()
            .query_balance(address, denom)
            .map(|c| c.amount)
            .unwrap_or_default()
    }

    /// Every coin an address holds, read from cw-multi-test's bank store (CosmWasm 3 has no
    /// all-balances query).
    pub fn all_balances(&self, address: &str) -> Vec<Coin> {
        let storage = self.app.prefixed_storage(BANK_NAMESPACE);
        BANK_BALANCES
            .may_load(storage.as_ref(), &Addr::unchecked(address))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// An account exists once it was created or holds coins (then it is created now, as
    /// x/bank would have when the coins arrived).
    fn existing_account(&mut self, address: &str) -> Option<(u64, u64, Option<Vec<u8>>)> {
        if self.accounts.get(address).is_none() && self.all_balances(address).is_empty() {
            return None;
        }
        let account = self.accounts.ensure(address);
        Some((account.number, account.sequence, account.pubkey.clone()))
    }

    /// Account number, sequence and public key as `auth/Account` reports them.
    pub fn account_for_query(&mut self, address: &str) -> Option<(u64, u64, Option<Vec<u8>>)> {
        self.existing_account(address)
    }

    // ----- ante -----

    fn ante(&mut self, tx: &DecodedTx, mode: Mode) -> Result<u64, (TxError, u64)> {
        let missing_sig_bytes: u64 = tx
            .signers
            .iter()
            .filter(|s| s.signature.is_empty())
            .map(|_| gas::SIGNATURE_BYTES)
            .sum();
        let ante_gas = gas::ante_gas(tx.size + missing_sig_bytes, tx.signers.len() as u64);
        if mode != Mode::Simulate && tx.gas_limit < ante_gas {
            return Err((
                TxError::out_of_gas(format!(
                    "out of gas in location: txSize; gasWanted: {}, gasUsed: {}",
                    tx.gas_limit, ante_gas
                )),
                tx.gas_limit,
            ));
        }
        let fail = |e: TxError| (e, ante_gas);
        self.check_tx_fields(tx).map_err(fail)?;
        self.check_fee(tx, mode).map_err(fail)?;
        for (index, signer) in tx.signers.iter().enumerate() {
            self.check_signer(tx, index, signer, mode).map_err(fail)?;
        }
        Ok(ante_gas)
    }

    /// Memo, timeout height, signer addresses and fee payer.
    fn check_tx_fields(&self, tx: &DecodedTx) -> Result<(), TxError> {
        let memo_chars = tx.memo.chars().count();
        if memo_chars > 256 {
            return Err(TxError::memo_too_large(format!(
                "maximum number of characters is 256 but received {memo_chars} characters"
            )));
        }
        let next_height = self.height() + 1;
        if tx.timeout_height > 0 && next_height > tx.timeout_height {
            return Err(TxError::tx_timeout_height(format!(
                "block height: {next_height}, timeout height: {}",
                tx.timeout_height
            )));
        }
        for signer in &tx.signers {
            if self.app.api().addr_validate(&signer.address).is_err() {
                return Err(TxError::invalid_address(format!(
                    "invalid signer address `{}`",
                    signer.address
                )));
            }
        }
        if !tx.signers.iter().any(|s| s.address == tx.fee_payer) {
            return Err(TxError::unauthorized(format!(
                "fee payer {} is not a signer",
                tx.fee_payer
            )));
        }
        Ok(())
    }

    /// The fee: the minimum gas price is a mempool rule (CheckTx only), the balance a state rule.
    /// A fee market's base gas price is checked at delivery too, at the block's price.
    fn check_fee(&mut self, tx: &DecodedTx, mode: Mode) -> Result<(), TxError> {
        let priced = match mode {
            Mode::Check => true,
            Mode::Deliver => self.config.fee_market.is_some(),
            Mode::Simulate => false,
        };
        if priced && !self.gas_price.is_zero() {
            let required = Uint256::from(required_fee(tx.gas_limit, self.gas_price));
            let offered = amount_of(&tx.fee, &self.config.fee_denom);
            if offered < required {
                return Err(TxError::insufficient_fee(format!(
                    "insufficient fees; got: {} required: {}{}",
                    if tx.fee.is_empty() {
                        "0".to_string()
                    } else {
                        coins_text(&tx.fee)
                    },
                    required,
                    self.config.fee_denom
                )));
            }
        }
        if self.existing_account(&tx.fee_payer).is_none() {
            return Err(TxError::unknown_address(format!(
                "fee payer address: {} does not exist",
                tx.fee_payer
            )));
        }
        // CheckTx and simulation run on the CheckTx state (as the SDK's do): fees of txs
        // waiting in the mempool are already spent there.
        let pending_fees = if mode != Mode::Deliver {
            self.check.fees.get(&tx.fee_payer)
        } else {
            None
        };
        self.check_spendable(&tx.fee_payer, &tx.fee, |denom| {
            pending_fees
                .map(|fees| amount_of(fees, denom))
                .unwrap_or_default()
        })
    }

    /// The signer's account, public key, sequence and (except in simulation) signature.
    fn check_signer(
        &mut self,
        tx: &DecodedTx,
        index: usize,
        signer: &SignerData,
        mode: Mode,
    ) -> Result<(), TxError> {
        let Some((number, committed_sequence, known_pubkey)) =
            self.existing_account(&signer.address)
        else {
            return Err(TxError::unknown_address(format!(
                "account {} not found",
                signer.address
            )));
        };
        let pubkey = match &signer.pubkey {
            Some(key) => {
                if tx::address_of(key, &self.config.bech32_prefix).as_deref()
                    != Some(signer.address.as_str())
                {
                    return Err(TxError::invalid_pubkey(format!(
                        "pubKey does not match signer address {} with signer index: {index}",
                        signer.address
                    )));
                }
                Some(key.clone())
            }
            None => known_pubkey.or_else(|| {
                (mode != Mode::Deliver)
                    .then(|| self.check.pubkeys.get(&signer.address).cloned())
                    .flatten()
            }),
        };
        // CheckTx and simulation expect the sequence after the signer's txs waiting in the
        // mempool (the SDK's CheckTx state), so a client can simulate and broadcast sequence
        // N + 1 while N waits for its block; delivery expects the committed one.
        let expected_sequence = match mode {
            Mode::Check | Mode::Simulate => self
                .check
                .sequences
                .get(&signer.address)
                .copied()
                .unwrap_or(committed_sequence),
            Mode::Deliver => committed_sequence,
        };
        if signer.sequence != expected_sequence {
            return Err(TxError::wrong_sequence(expected_sequence, signer.sequence));
        }
        if mode == Mode::Simulate {
            return Ok(());
        }
        let Some(pubkey) = pubkey else {
            return Err(TxError::invalid_pubkey(format!(
                "pubkey on account {} is not set",
                signer.address
            )));
        };
        let sign_doc = tx::sign_doc_bytes(tx, &self.config.chain_id, number);
        if !tx::verify_secp256k1(&pubkey, &sign_doc, &signer.signature) {
            return Err(TxError::unauthorized(format!(
                "signature verification failed; please verify account number ({number}) and chain-id ({}): (unable to verify single signer signature)",
                self.config.chain_id
            )));
        }
        Ok(())
    }

    /// Fee deduction, sequence bumps and pubkeys: what a passed ante handler writes.
    fn apply_ante(&mut self, tx: &DecodedTx) -> Result<Vec<AbciEvent>, TxError> {
        let mut events = Vec::new();
        let fee: Vec<Coin> = tx
            .fee
            .iter()
            .filter(|c| !c.amount.is_zero())
            .cloned()
            .collect();
        if !fee.is_empty() {
            let payment = CosmosMsg::Bank(BankMsg::Send {
                to_address: self.fee_collector.to_string(),
                amount: fee.clone(),
            });
            self.execute_as(&tx.fee_payer, payment, TxError::insufficient_funds)?;
            let amount = coins_text(&fee);
            events.push(abci_event(
                "coin_spent",
                [
                    ("spender".into(), tx.fee_payer.clone()),
                    ("amount".into(), amount.clone()),
                ],
            ));
            events.push(abci_event(
                "coin_received",
                [
                    ("receiver".into(), self.fee_collector.to_string()),
                    ("amount".into(), amount.clone()),
                ],
            ));
            events.push(abci_event(
                "transfer",
                [
                    ("recipient".into(), self.fee_collector.to_string()),
                    ("sender".into(), tx.fee_payer.clone()),
                    ("amount".into(), amount.clone()),
                ],
            ));
            events.push(abci_event(
                "message",
                [("sender".into(), tx.fee_payer.clone())],
            ));
        }
        events.push(abci_event(
            "tx",
            [
                ("fee".into(), coins_text(&fee)),
                ("fee_payer".into(), tx.fee_payer.clone()),
            ],
        ));
        for signer in &tx.signers {
            let account = self.accounts.ensure(&signer.address);
            account.sequence += 1;
            if account.pubkey.is_none() {
                account.pubkey = signer.pubkey.clone();
            }
            events.push(abci_event(
                "tx",
                [(
                    "acc_seq".into(),
                    format!("{}/{}", signer.address, signer.sequence),
                )],
            ));
        }
        for signer in &tx.signers {
            use base64::Engine as _;
            events.push(abci_event(
                "tx",
                [(
                    "signature".into(),
                    base64::engine::general_purpose::STANDARD.encode(&signer.signature),
                )],
            ));
        }
        Ok(events)
    }

    /// Refuses `coins` unless `owner`'s balance of each, less what `spent` says is already
    /// spent of that denom, covers it.
    fn check_spendable(
        &self,
        owner: &str,
        coins: &[Coin],
        spent: impl Fn(&str) -> Uint256,
    ) -> Result<(), TxError> {
        for coin in coins {
            let spendable = self
                .balance(owner, &coin.denom)
                .saturating_sub(spent(&coin.denom));
            if spendable < coin.amount {
                return Err(insufficient_funds(spendable, coin));
            }
        }
        Ok(())
    }

    /// Runs `msg` as `sender`; a failure the app reports becomes the tx error `failed` makes of
    /// its text.
    fn execute_as(
        &mut self,
        sender: &str,
        msg: CosmosMsg,
        failed: impl FnOnce(String) -> TxError,
    ) -> Result<AppResponse, TxError> {
        self.app
            .execute(Addr::unchecked(sender), msg)
            .map_err(|e| failed(contract_error_text(&e)))
    }

    fn run_message(&mut self, msg: &TxMsg, index: usize) -> Result<(AppResponse, u64), TxError> {
        match msg {
            TxMsg::Send { from, to, amount } => {
                if self.app.api().addr_validate(to).is_err() {
                    return Err(TxError::invalid_address(format!(
                        "invalid to address `{to}`"
                    )));
                }
                if amount.is_empty() || amount.iter().any(|c| c.amount.is_zero()) {
                    return Err(TxError::invalid_coins(coins_text(amount)));
                }
                self.check_spendable(from, amount, |_| Uint256::zero())?;
                let send = CosmosMsg::Bank(BankMsg::Send {
                    to_address: to.clone(),
                    amount: amount.clone(),
                });
                let response = self.execute_as(from, send, TxError::insufficient_funds)?;
                Ok((response, gas::send_gas(amount.len() as u64)))
            }
            TxMsg::Execute {
                sender,
                contract,
                msg,
                funds,
            } => {
                let contract_addr = self.app.api().addr_validate(contract).map_err(|_| {
                    TxError::invalid_address(format!("invalid contract address `{contract}`"))
                })?;
                if self.app.contract_data(&contract_addr).is_err() {
                    return Err(TxError::wasm_no_such_contract(contract));
                }
                if serde_json::from_slice::<serde_json::Value>(msg).is_err() {
                    return Err(TxError {
                        codespace: "wasm",
                        code: 10,
                        log: "msg: invalid: invalid request".into(),
                    });
                }
                self.check_spendable(sender, funds, |_| Uint256::zero())?;
                let execute = CosmosMsg::Wasm(WasmMsg::Execute {
                    contract_addr: contract_addr.to_string(),
                    msg: Binary::from(msg.clone()),
                    funds: funds.clone(),
                });
                let response =
                    self.execute_as(sender, execute, |log| TxError::wasm_execute(index, log))?;
                Ok((
                    response,
                    gas::execute_gas(msg.len() as u64, funds.len() as u64),
                ))
            }
        }
    }

    /// Runs the messages of a tx atomically on top of whatever ante already wrote; leaves the
    /// overlay open for the caller to commit or discard.
    fn run_messages(&mut self, tx: &DecodedTx, ante_gas: u64, gas_limit: Option<u64>) -> Execution {
        let mut events = Vec::new();
        let mut gas_used = ante_gas;
        let mut msg_responses = Vec::new();
        for (index, msg) in tx.msgs.iter().enumerate() {
            events.push(abci_event(
                "message",
                [
                    ("action".into(), msg.type_url().to_string()),
                    ("sender".into(), msg.signer().to_string()),
                    ("module".into(), msg.module().to_string()),
                    ("msg_index".into(), index.to_string()),
                ],
            ));
            match self.run_message(msg, index) {
                Ok((response, msg_gas)) => {
                    gas_used = gas_used
                        .saturating_add(msg_gas)
                        .saturating_add(gas::events_gas(&response.events));
                    events.extend(message_events(&response.events, index));
                    msg_responses.push(msg_response(msg, response.data.as_ref()));
                }
                Err(error) => {
                    return Execution {
                        events,
                        gas_used,
                        msg_responses,
                        error: Some(error.in_message(index)),
                    }
                }
            }
            if let Some(limit) = gas_limit {
                if gas_used > limit {
                    return Execution {
                        events,
                        gas_used,
                        msg_responses,
                        error: Some(TxError::out_of_gas(format!(
                            "out of gas in location: {}; gasWanted: {limit}, gasUsed: {gas_used}",
                            msg.type_url().trim_start_matches('/')
                        ))),
                    };
                }
            }
        }
        Execution {
            events,
            gas_used,
            msg_responses,
            error: None,
        }
    }

    fn register_recipients(&mut self, events: &[AbciEvent]) {
        for event in events.iter().filter(|e| e.kind == "transfer") {
            for attr in &event.attributes {
                if attr.key_bytes() == b"recipient" {
                    if let Ok(address) = attr.value_str() {
                        let address = address.to_string();
                        self.accounts.ensure(&address);
                    }
                }
            }
        }
    }

    /// DeliverTx: ante, fee and sequence, then the messages; a failed message reverts the
    /// messages only.
    fn deliver(&mut self, tx: &DecodedTx) -> ExecTxResult {
        let gas_wanted = i64::try_from(tx.gas_limit).unwrap_or(i64::MAX);
        let failed = |error: TxError, gas_used: u64, events: Vec<AbciEvent>| ExecTxResult {
            code: error.code.into(),
            codespace: error.codespace.to_string(),
            log: error.log,
            gas_wanted,
            gas_used: i64::try_from(gas_used).unwrap_or(i64::MAX),
            events,
            ..Default::default()
        };
        let ante_gas = match self.ante(tx, Mode::Deliver) {
            Ok(gas) => gas,
            Err((error, gas_used)) => return failed(error, gas_used, Vec::new()),
        };
        let ante_events = match self.apply_ante(tx) {
            Ok(events) => events,
            Err(error) => return failed(error, ante_gas, Vec::new()),
        };
        self.app.storage_mut().begin_overlay();
        let execution = self.run_messages(tx, ante_gas, Some(tx.gas_limit));
        if let Some(error) = execution.error {
            self.app.storage_mut().discard_overlay();
            return failed(error, execution.gas_used, ante_events);
        }
        self.app.storage_mut().commit_overlay();
        let mut events = ante_events;
        events.extend(execution.events);
        self.register_recipients(&events);
        ExecTxResult {
            code: 0.into(),
            data: TxMsgData {
                #[allow(deprecated)]
                data: vec![],
                msg_responses: execution.msg_responses,
            }
            .encode_to_vec()
            .into(),
            gas_wanted,
            gas_used: i64::try_from(execution.gas_used).unwrap_or(i64::MAX),
            events,
            ..Default::default()
        }
    }

    /// DeliverTx, turning a panic in contract code into a failed tx (as the SDK's recovery
    /// middleware does) instead of losing the chain thread.
    fn deliver_recovering(&mut self, tx: &DecodedTx) -> ExecTxResult {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.deliver(tx))) {
            Ok(result) => result,
            Err(payload) => {
                self.app.storage_mut().discard_overlay();
                let error = TxError::panic(payload.as_ref());
                tracing::error!(log = %error.log, "a tx panicked");
                ExecTxResult {
                    code: error.code.into(),
                    codespace: error.codespace.into(),
                    log: error.log,
                    gas_wanted: i64::try_from(tx.gas_limit).unwrap_or(i64::MAX),
                    gas_used: i64::try_from(tx.gas_limit).unwrap_or(i64::MAX),
                    ..Default::default()
                }
            }
        }
    }

    /// CheckTx: admits a tx to the mempool if it would pass the ante handler now.
    pub fn check_tx(&mut self, bytes: Vec<u8>) -> CheckOutcome {
        let hash = tx::tx_hash(&bytes);
        let decoded = match tx::decode(&bytes) {
            Ok(decoded) => decoded,
            Err(error) => {
                return CheckOutcome {
                    hash,
                    code: error.code,
                    codespace: error.codespace.into(),
                    log: error.log,
                    gas_wanted: 0,
                    gas_used: 0,
                }
            }
        };
        if self.mempool.iter().any(|p| p.decoded.hash == hash) {
            return CheckOutcome {
                hash,
                code: 19,
                codespace: "sdk".into(),
                log: "tx already exists in cache".into(),
                gas_wanted: decoded.gas_limit,
                gas_used: 0,
            };
        }
        match self.ante(&decoded, Mode::Check) {
            Err((error, gas_used)) => CheckOutcome {
                hash,
                code: error.code,
                codespace: error.codespace.into(),
                log: error.log,
                gas_wanted: decoded.gas_limit,
                gas_used,
            },
            Ok(gas_used) => {
                self.admit(&decoded);
                let gas_wanted = decoded.gas_limit;
                let waiting = Waiting {
                    gas_price: paid_gas_price(&decoded, &self.config.fee_denom),
                    signer: decoded.fee_payer.clone(),
                    gas_limit: decoded.gas_limit,
                };
                self.mempool.push_back(PendingTx {
                    bytes,
                    decoded,
                    waiting,
                });
                CheckOutcome {
                    hash,
                    code: 0,
                    codespace: String::new(),
                    log: String::new(),
                    gas_wanted,
                    gas_used,
                }
            }
        }
    }

    fn admit(&mut self, tx: &DecodedTx) {
        for signer in &tx.signers {
            let next = signer.sequence + 1;
            self.check.sequences.insert(signer.address.clone(), next);
            if let Some(key) = &signer.pubkey {
                self.check
                    .pubkeys
                    .insert(signer.address.clone(), key.clone());
            }
        }
        let fees = self.check.fees.entry(tx.fee_payer.clone()).or_default();
        fees.extend(tx.fee.iter().cloned());
    }

    /// Simulate: the whole tx against the current state, then forgotten. Signatures are not
    /// checked (they may be empty) and gas is not limited. As in the SDK, the ante checks see
    /// the CheckTx state (sequences and fees of txs waiting in the mempool); the messages run on
    /// the committed state (CheckTx never executes messages, so neither state holds their
    /// effects).
    pub fn simulate(&mut self, bytes: &[u8]) -> Result<SimulateOutcome, TxError> {
        let tx = tx::decode(bytes)?;
        for signer in &tx.signers {
            // Opens accounts that hold coins, so the snapshot below covers every signer.
            self.existing_account(&signer.address);
        }
        let saved_accounts: Vec<_> = tx
            .signers
            .iter()
            .map(|s| (s.address.clone(), self.accounts.get(&s.address).cloned()))
            .collect();
        self.app.storage_mut().begin_overlay();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.simulate_inner(&tx)))
                .unwrap_or_else(|payload| Err(TxError::panic(payload.as_ref())));
        self.app.storage_mut().discard_overlay();
        for (address, account) in saved_accounts {
            match account {
                Some(account) => *self.accounts.ensure(&address) = account,
                None => self.accounts.remove(&address),
            }
        }
        outcome
    }

    fn simulate_inner(&mut self, tx: &DecodedTx) -> Result<SimulateOutcome, TxError> {
        let ante_gas = self.ante(tx, Mode::Simulate).map_err(|(e, _)| e)?;
        let mut events = self.apply_ante(tx)?;
        let execution = self.run_messages(tx, ante_gas, None);
        if let Some(error) = execution.error {
            return Err(error);
        }
        events.extend(execution.events);
        let data = TxMsgData {
            #[allow(deprecated)]
            data: vec![],
            msg_responses: execution.msg_responses.clone(),
        }
        .encode_to_vec();
        Ok(SimulateOutcome {
            gas_wanted: tx.gas_limit,
            gas_used: execution.gas_used,
            data,
            msg_responses: execution.msg_responses,
            events,
        })
    }

    // ----- blocks -----

    fn due_price_moves(&mut self, height: u64, time: Time) -> Vec<BTreeMap<String, Decimal>> {
        let elapsed = time
            .duration_since(self.started_at)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut due = Vec::new();
        self.price_moves.retain(|m| {
            let is_due = match m.trigger {
                PriceTrigger::NextBlock => true,
                PriceTrigger::AtHeight(h) => h <= height,
                PriceTrigger::AfterSeconds(s) => s <= elapsed,
            };
            if is_due {
                due.push(m.prices.clone());
            }
            !is_due
        });
        due
    }

    /// Executes the mempool as block `height + 1` at `time` and commits it.
    pub fn produce_block(&mut self, time: Time) -> Arc<BlockRecord> {
        let height = self.height() + 1;
        let time = match &self.last_block {
            // Block times strictly increase, whatever the wall clock does.
            Some(last) if time <= last.time() => {
                (last.time() + Duration::from_millis(1)).expect("block time stays in range")
            }
            _ => time,
        };
        self.app.set_block(BlockInfo {
            height,
            time: to_timestamp(time),
            chain_id: self.config.chain_id.clone(),
        });

        let mut finalize_events = Vec::new();
        for prices in self.due_price_moves(height, time) {
            let applied = match self.price_setter.as_mut() {
                Some(setter) => setter(&mut self.app, &prices),
                None => Err(anyhow::anyhow!(
                    "this devnet has no oracle to move prices on"
                )),
            };
            match applied {
                Ok(events) => {
                    tracing::info!(height, ?prices, "prices moved");
                    finalize_events.extend(message_events(&events, 0).into_iter().map(|mut e| {
                        e.attributes.retain(|a| a.key_bytes() != b"msg_index");
                        e.attributes.push(("mode", "BeginBlock", true).into());
                        e
                    }));
                }
                Err(error) => tracing::error!(height, ?prices, %error, "price move failed"),
            }
        }

        let batch = self.reap();
        let mut txs = Vec::with_capacity(batch.len());
        let mut results = Vec::with_capacity(batch.len());
        for pending in batch {
            results.push(self.deliver_recovering(&pending.decoded));
            txs.push(pending.bytes);
        }

        let record = Arc::new(block::build(BlockInput {
            chain_id: &self.chain_id,
            height,
            time,
            txs,
            tx_results: results,
            finalize_events,
            previous: self.last_block.as_deref(),
            genesis_app_hash: &self.genesis_app_hash,
            validator: &self.validator,
        }));
        self.last_block = Some(record.clone());
        self.move_gas_price(&record);
        self.recheck_mempool();
        record
    }

    /// Takes the next block's txs out of the mempool, in block order (see [`mempool::reap`]);
    /// the rest keep waiting in arrival order.
    fn reap(&mut self) -> Vec<PendingTx> {
        let waiting: Vec<Waiting> = self.mempool.iter().map(|p| p.waiting.clone()).collect();
        let limits = BlockLimits {
            max_txs: self.config.max_block_txs,
            max_gas: self.config.max_block_gas,
        };
        let order = mempool::reap(&waiting, limits);
        let mut slots: Vec<Option<PendingTx>> = self.mempool.drain(..).map(Some).collect();
        let batch = order.iter().filter_map(|&i| slots[i].take()).collect();
        self.mempool = slots.into_iter().flatten().collect();
        batch
    }

    /// The fee market's end of block: the next block's base gas price from this one's gas.
    fn move_gas_price(&mut self, block: &BlockRecord) {
        let Some(market) = &self.config.fee_market else {
            return;
        };
        let gas = block.gas_used();
        let next = market.next_price(self.gas_price, gas, self.config.min_gas_price);
        if next != self.gas_price {
            tracing::debug!(height = block.height().value(), gas, price = %next, "base gas price moved");
        }
        self.gas_price = next;
    }

    /// After a commit the CheckTx state restarts from the committed state, and every tx still
    /// waiting in the mempool is checked again on it, in order, as CometBFT's recheck does:
    /// one the ante handler now refuses is evicted. A tx whose fee the block's messages left
    /// the payer unable to pay, and the txs of its signer behind it (now a sequence gap), never
    /// reach a block, as on the real chain.
    fn recheck_mempool(&mut self) {
        self.check = CheckState::default();
        let waiting = std::mem::take(&mut self.mempool);
        for pending in waiting {
            match self.ante(&pending.decoded, Mode::Check) {
                Ok(_) => {
                    self.admit(&pending.decoded);
                    self.mempool.push_back(pending);
                }
                Err((error, _)) => {
                    tracing::debug!(hash = %hex::encode_upper(pending.decoded.hash), log = %error.log, "recheck evicted a tx from the mempool")
                }
            }
        }
    }

    pub fn validator(&self) -> &Validator {
        &self.validator
    }
}

/// The gas price a tx pays in `fee_denom`: its fee per unit of gas limit (its mempool priority).
fn paid_gas_price(tx: &DecodedTx, fee_denom: &str) -> Decimal {
    let paid: Uint256 = tx
        .fee
        .iter()
        .filter(|c| c.denom == fee_denom)
        .map(|c| c.amount)
        .sum();
    if tx.gas_limit == 0 {
        return Decimal::zero();
    }
    let paid = cosmwasm_std::Uint128::try_from(paid).unwrap_or(cosmwasm_std::Uint128::MAX);
    Decimal::checked_from_ratio(paid, tx.gas_limit).unwrap_or(Decimal::MAX)
}

fn msg_response(msg: &TxMsg, data: Option<&Binary>) -> cosmrs::Any {
    match msg {
        TxMsg::Send { .. } => cosmrs::Any {
            type_url: "/cosmos.bank.v1beta1.MsgSendResponse".into(),
            value: vec![],
        },
        TxMsg::Execute { .. } => cosmrs::Any {
            type_url: "/cosmwasm.wasm.v1.MsgExecuteContractResponse".into(),
            value: cosmrs::proto::cosmwasm::wasm::v1::MsgExecuteContractResponse {
                data: data.map(|d| d.to_vec()).unwrap_or_default(),
            }
            .encode_to_vec(),
        },
    }
}
