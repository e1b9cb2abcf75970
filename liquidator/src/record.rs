//! Every attempt, recorded: to a Redis stream (for the dashboard and for tests) and to a CSV
//! file when `--csv PATH` is given; notified to the operator's `--notify-*` targets (see
//! [`notification`]); and a settled transaction asks for its wallet's balances to be read again
//! ([`crate::balances`]).
//!
//! One record per liquidation attempted (a multi-account tx gives one record per account, the
//! fee split between them to the unit), plus one per wallet top-up. Profits are exact values in
//! the oracle's base units (see [`mars::value`]) so that their sum equals the wallets' balance
//! change valued at the same prices.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cosmwasm_std::{SignedDecimal, Uint128};
use redline_pipeline::jobs::ProtocolKind;
use redline_pipeline::redis_conn::RedisConn;
use redline_service::notify::{LiquidationAttempt, LiquidationOutcome, Notifier};
use serde::{Deserialize, Serialize};

use crate::balances::BalanceTrigger;
use mars::value::Value;

/// Field of a stream entry that carries the record's JSON.
pub const RECORD_FIELD: &str = "record";

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Included and executed: the account was liquidated.
    Liquidated,
    /// `--dry-run`: everything but the broadcast.
    DryRun,
    /// Dropped from the batch because its message failed in simulation.
    SimulationFailed,
    /// The whole tx was refused at CheckTx.
    CheckTxFailed,
    /// The tx was included and failed: the fee is spent.
    DeliverTxFailed,
    /// Broadcast, but inclusion was not seen in time: its fate is settled later.
    Unconfirmed,
    /// Broadcast, and not included by its timeout height: it never executed, nothing was paid.
    Expired,
    /// Under `--min-profit-usd` once the fee is counted.
    BelowMinProfit,
    /// The strategy model said no.
    Declined,
    /// Not sent for another reason (RPC down, previous tx unresolved, lease lost).
    #[default]
    NotSent,
    /// The master wallet topped up worker wallets.
    TopUp,
    TopUpFailed,
    /// Seized collateral left deposited by an earlier tx was withdrawn.
    Sweep,
    /// The wallet opened the credit account it liquidates credit accounts from.
    CreditAccountOpened,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Liquidated => "liquidated",
            Outcome::DryRun => "dry_run",
            Outcome::SimulationFailed => "simulation_failed",
            Outcome::CheckTxFailed => "check_tx_failed",
            Outcome::DeliverTxFailed => "deliver_tx_failed",
            Outcome::Unconfirmed => "unconfirmed",
            Outcome::Expired => "expired",
            Outcome::BelowMinProfit => "below_min_profit",
            Outcome::Declined => "declined",
            Outcome::NotSent => "not_sent",
            Outcome::TopUp => "top_up",
            Outcome::TopUpFailed => "top_up_failed",
            Outcome::Sweep => "sweep",
            Outcome::CreditAccountOpened => "credit_account_opened",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

mod system_time_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::unix_ms(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + Duration::from_millis(ms))
    }
}

pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn red_bank() -> ProtocolKind {
    ProtocolKind::RedBank
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// When the worker took the job (or the top-up round started).
    #[serde(with = "system_time_ms", rename = "started_at_ms")]
    pub started_at: SystemTime,
    /// Inclusion height; for attempts that were not included, the height the plan was made at.
    pub height: u64,
    /// Height the candidate was found liquidatable at.
    pub candidate_height: u64,
    pub worker_slot: u32,
    pub wallet: String,
    /// The liquidated account's protocol (Red Bank for records written before it was kept).
    #[serde(default = "red_bank")]
    pub protocol: ProtocolKind,
    /// The liquidated account as [`redline_pipeline::jobs::AccountKey`] shows it: an address,
    /// or `credit account 7`.
    pub account: String,
    pub debt_denom: String,
    pub collateral_denom: String,
    /// Debt coin attached to the liquidation.
    pub debt_sent: Uint128,
    /// Debt the contract repaid (its event), 0 if not executed.
    pub debt_repaid: Uint128,
    /// Collateral taken from the account, protocol fee included (its event).
    pub collateral_seized: Uint128,
    /// Collateral coins the liquidator got (withdrawn in the same tx).
    pub collateral_received: Uint128,
    pub tx_hash: String,
    /// Accounts liquidated by the same tx.
    pub batch_size: u32,
    pub gas_wanted: u64,
    /// The tx's gas used, shared by its batch.
    pub gas_used: u64,
    /// This attempt's share of the tx fee, e.g. `1234uosmo`.
    pub fee: String,
    /// Received value − repaid value − fee value, in the oracle's base units, exact.
    pub profit_value: Value,
    pub profit_usd: Value,
    /// What the plan expected, before fees.
    pub expected_profit_usd: Value,
    pub outcome: Outcome,
    pub error: String,
    /// Enqueue of the candidate → broadcast.
    pub job_to_broadcast_ms: Option<u64>,
    /// Candidate found by the health checker → broadcast.
    pub found_to_broadcast_ms: Option<u64>,
    /// When the tx was broadcast, in Unix milliseconds (compare with the candidate's block).
    #[serde(default)]
    pub broadcast_at_ms: Option<u64>,
    /// Anything else worth keeping (e.g. top-up recipients and coins).
    pub detail: String,
}

impl Default for AttemptRecord {
    fn default() -> Self {
        AttemptRecord {
            started_at: UNIX_EPOCH,
            height: 0,
            candidate_height: 0,
            worker_slot: 0,
            wallet: String::new(),
            protocol: ProtocolKind::RedBank,
            account: String::new(),
            debt_denom: String::new(),
            collateral_denom: String::new(),
            debt_sent: Uint128::zero(),
            debt_repaid: Uint128::zero(),
            collateral_seized: Uint128::zero(),
            collateral_received: Uint128::zero(),
            tx_hash: String::new(),
            batch_size: 0,
            gas_wanted: 0,
            gas_used: 0,
            fee: String::new(),
            profit_value: Value::zero(),
            profit_usd: Value::zero(),
            expected_profit_usd: Value::zero(),
            outcome: Outcome::NotSent,
            error: String::new(),
            job_to_broadcast_ms: None,
            found_to_broadcast_ms: None,
            broadcast_at_ms: None,
            detail: String::new(),
        }
    }
}

const CSV_COLUMNS: &[&str] = &[
    "started_at_ms",
    "height",
    "candidate_height",
    "worker_slot",
    "wallet",
    "account",
    "debt_denom",
    "collateral_denom",
    "debt_sent",
    "debt_repaid",
    "collateral_seized",
    "collateral_received",
    "tx_hash",
    "batch_size",
    "gas_wanted",
    "gas_used",
    "fee",
    "profit_value",
    "profit_usd",
    "expected_profit_usd",
    "outcome",
    "error",
    "job_to_broadcast_ms",
    "found_to_broadcast_ms",
    "broadcast_at_ms",
    "detail",
];

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl AttemptRecord {
    /// Books `fee` as all the attempt did to the wallet: the fee recorded, its value a loss.
    pub fn book_fee_only(&mut self, fee: &cosmwasm_std::Coin, prices: &mars::value::PriceBook) {
        self.fee = fee.to_string();
        let value = prices.value_of_coins(std::slice::from_ref(fee));
        self.profit_value = -value.unwrap_or_default();
        self.profit_usd = prices.to_usd(self.profit_value);
    }

    pub fn csv_header() -> String {
        CSV_COLUMNS.join(",")
    }

    pub fn csv_row(&self) -> String {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            unix_ms(self.started_at).to_string(),
            self.height.to_string(),
            self.candidate_height.to_string(),
            self.worker_slot.to_string(),
            self.wallet.clone(),
            self.account.clone(),
            self.debt_denom.clone(),
            self.collateral_denom.clone(),
            self.debt_sent.to_string(),
            self.debt_repaid.to_string(),
            self.collateral_seized.to_string(),
            self.collateral_received.to_string(),
            self.tx_hash.clone(),
            self.batch_size.to_string(),
            self.gas_wanted.to_string(),
            self.gas_used.to_string(),
            self.fee.clone(),
            self.profit_value.to_string(),
            self.profit_usd.to_string(),
            self.expected_profit_usd.to_string(),
            self.outcome.to_string(),
            self.error.clone(),
            opt(self.job_to_broadcast_ms),
            opt(self.found_to_broadcast_ms),
            opt(self.broadcast_at_ms),
            self.detail.clone(),
        ]
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// Splits a CSV line written by [`AttemptRecord::csv_row`] into its fields.
pub fn parse_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Where records go. Recording never fails the attempt: a sink that errors is logged.
pub struct Recorder {
    redis: Option<RedisConn>,
    stream: String,
    max_len: Option<u64>,
    csv: Option<(PathBuf, std::sync::Mutex<std::fs::File>)>,
    /// Notifications of liquidation attempts, with the chain id they name.
    notifier: Option<(Notifier, String)>,
    balances: Option<BalanceTrigger>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stream", &self.stream)
            .field("csv", &self.csv.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Records to `stream` on `redis` (capped near `max_len` entries when set) and, when
    /// given, appends to the CSV file at `csv` (header written when the file is new).
    pub fn new(
        redis: Option<RedisConn>,
        stream: String,
        max_len: Option<u64>,
        csv: Option<&Path>,
    ) -> std::io::Result<Self> {
        let csv = match csv {
            Some(path) => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                if file.metadata()?.len() == 0 {
                    writeln!(file, "{}", AttemptRecord::csv_header())?;
                }
                Some((path.to_path_buf(), std::sync::Mutex::new(file)))
            }
            None => None,
        };
        Ok(Recorder {
            redis,
            stream,
            max_len,
            csv,
            notifier: None,
            balances: None,
        })
    }

    /// Also notifies every liquidation attempt (see [`notification`]) on chain `chain_id`.
    pub fn with_notifier(mut self, notifier: Notifier, chain_id: &str) -> Self {
        if notifier.is_enabled() {
            self.notifier = Some((notifier, chain_id.to_string()));
        }
        self
    }

    /// Also asks for a wallet's balances to be read again when one of its txs settled.
    pub fn with_balance_trigger(mut self, trigger: BalanceTrigger) -> Self {
        self.balances = Some(trigger);
        self
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    pub async fn record(&self, record: &AttemptRecord) {
        if let Some(trigger) = &self.balances {
            if moves_funds(record.outcome) && !record.wallet.is_empty() {
                trigger.touch(&record.wallet);
            }
        }
        if let Some((notifier, chain_id)) = &self.notifier {
            if let Some(attempt) = notification(record, chain_id) {
                notifier.notify(&attempt.into()).await;
            }
        }
        if let Some((path, file)) = &self.csv {
            let row = record.csv_row();
            let written = file
                .lock()
                .map_err(|_| std::io::Error::other("CSV writer poisoned"))
                .and_then(|mut file| writeln!(file, "{row}").and_then(|()| file.flush()));
            if let Err(error) = written {
                tracing::warn!(path = %path.display(), %error, "cannot append to the attempts CSV");
            }
        }
        if let Some(redis) = &self.redis {
            let json = match serde_json::to_string(record) {
                Ok(json) => json,
                Err(error) => {
                    tracing::warn!(%error, "cannot encode an attempt record");
                    return;
                }
            };
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&self.stream);
            if let Some(max_len) = self.max_len {
                cmd.arg("MAXLEN").arg("~").arg(max_len);
            }
            cmd.arg("*").arg(RECORD_FIELD).arg(json);
            let mut redis = redis.clone();
            let added = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                cmd.query_async::<String>(&mut redis),
            )
            .await;
            match added {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(stream = %self.stream, %error, "cannot record an attempt to Redis")
                }
                Err(_) => {
                    tracing::warn!(stream = %self.stream, "recording an attempt to Redis timed out")
                }
            }
        }
    }
}

/// Whether an attempt with this outcome changed its wallet's balances (a tx was included).
fn moves_funds(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Liquidated
            | Outcome::DeliverTxFailed
            | Outcome::TopUp
            | Outcome::Sweep
            | Outcome::CreditAccountOpened
    )
}

/// The notification of an attempt, if it is one an operator hears about: a liquidation that
/// landed (succeeded), and one that was tried and failed — refused at CheckTx, failed in its
/// block (fee spent), refused in simulation for another reason than a race with someone who
/// liquidated first, or not sent because of an error (RPC down, no funds). Dry runs, plans
/// under the profit floor, the model's refusals, txs whose fate is still unknown (notified once
/// settled) and wallet housekeeping are not liquidation attempts.
pub fn notification(record: &AttemptRecord, chain_id: &str) -> Option<LiquidationAttempt> {
    let outcome = match record.outcome {
        Outcome::Liquidated => LiquidationOutcome::Succeeded,
        Outcome::CheckTxFailed | Outcome::DeliverTxFailed => LiquidationOutcome::Failed,
        Outcome::SimulationFailed if !crate::worker::is_race(&record.error) => {
            LiquidationOutcome::Failed
        }
        Outcome::NotSent if !record.error.is_empty() => LiquidationOutcome::Failed,
        _ => return None,
    };
    let succeeded = outcome == LiquidationOutcome::Succeeded;
    let included = succeeded || record.outcome == Outcome::DeliverTxFailed;
    // Realised profit once the tx was included; the plan's expectation otherwise.
    let profit = if included {
        record.profit_usd
    } else {
        record.expected_profit_usd
    };
    Some(LiquidationAttempt {
        chain_id: chain_id.to_string(),
        protocol: record.protocol,
        account: record.account.clone(),
        liquidator: record.wallet.clone(),
        debt_denom: record.debt_denom.clone(),
        debt_amount: if succeeded {
            record.debt_repaid
        } else {
            record.debt_sent
        },
        collateral_denom: record.collateral_denom.clone(),
        collateral_amount: record.collateral_received,
        profit_usd: usd_for_notification(profit),
        tx_hash: (!record.tx_hash.is_empty()).then(|| record.tx_hash.clone()),
        height: included.then_some(record.height),
        outcome,
        error: (!record.error.is_empty()).then(|| record.error.clone()),
    })
}

/// A USD value for a message: cut to cents towards zero (18 decimals of dust say nothing to a
/// reader), `None` beyond what a message's decimal holds.
fn usd_for_notification(value: Value) -> Option<SignedDecimal> {
    let scaled = value.checked_mul(Value::percent(10_000)).ok()?;
    let cents = if scaled >= Value::zero() {
        scaled.to_int_floor()
    } else {
        scaled.to_int_ceil()
    };
    let cents = cosmwasm_std::Int128::try_from(cents).ok()?;
    SignedDecimal::from_atomics(cents, 2).ok()
}

/// Every record in `stream`, oldest first (for tests, benchmarks and tools).
pub async fn read_records(
    redis: &mut RedisConn,
    stream: &str,
) -> Result<Vec<AttemptRecord>, redis::RedisError> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(redis)
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|(id, fields)| {
            let json = fields.into_iter().find(|(k, _)| k == RECORD_FIELD)?.1;
            serde_json::from_str(&json)
                .map_err(|e| tracing::warn!(%id, error = %e, "undecodable attempt record"))
                .ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_with_awkward_text() {
        let record = AttemptRecord {
            account: "osmo1abc".into(),
            outcome: Outcome::CheckTxFailed,
            error: "refused: \"bad\", really\nbad".into(),
            profit_value: "-12.5".parse().unwrap(),
            job_to_broadcast_ms: Some(42),
            ..AttemptRecord::default()
        };
        let fields = parse_csv_line(&record.csv_row());
        assert_eq!(fields.len(), CSV_COLUMNS.len());
        let column = |name: &str| {
            let i = CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
            fields[i].clone()
        };
        assert_eq!(column("error"), record.error);
        assert_eq!(column("outcome"), "check_tx_failed");
        assert_eq!(column("profit_value"), "-12.5");
        assert_eq!(column("job_to_broadcast_ms"), "42");
        assert_eq!(column("found_to_broadcast_ms"), "");
    }

    #[test]
    fn json_round_trip() {
        let record = AttemptRecord {
            started_at: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            outcome: Outcome::Liquidated,
            debt_sent: Uint128::new(30_000),
            profit_value: "2700.000000000000000001".parse().unwrap(),
            ..AttemptRecord::default()
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"started_at_ms\":1700000000123"), "{json}");
        assert!(json.contains("\"outcome\":\"liquidated\""), "{json}");
        let back: AttemptRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn attempts_map_to_notifications() {
        let landed = AttemptRecord {
            account: "osmo1acc".into(),
            wallet: "osmo1w".into(),
            debt_denom: "uusdc".into(),
            collateral_denom: "uatom".into(),
            debt_sent: Uint128::new(30_000),
            debt_repaid: Uint128::new(29_000),
            collateral_received: Uint128::new(4_360),
            tx_hash: "AB12".into(),
            height: 77,
            profit_usd: "2.708999".parse().unwrap(),
            expected_profit_usd: "3".parse().unwrap(),
            outcome: Outcome::Liquidated,
            ..AttemptRecord::default()
        };
        let event = notification(&landed, "devnet-1").unwrap();
        assert_eq!(event.outcome, LiquidationOutcome::Succeeded);
        assert_eq!(event.debt_amount, Uint128::new(29_000));
        assert_eq!(event.profit_usd.unwrap().to_string(), "2.7");
        assert_eq!(event.height, Some(77));
        assert_eq!(event.tx_hash.as_deref(), Some("AB12"));

        let failed = AttemptRecord {
            outcome: Outcome::DeliverTxFailed,
            profit_usd: "-0.019".parse().unwrap(),
            error: "code 5: insufficient funds".into(),
            ..landed.clone()
        };
        let event = notification(&failed, "devnet-1").unwrap();
        assert_eq!(event.outcome, LiquidationOutcome::Failed);
        assert_eq!(event.debt_amount, Uint128::new(30_000));
        assert_eq!(event.profit_usd.unwrap().to_string(), "-0.01");
        assert!(event.error.unwrap().contains("insufficient"));

        let refused = AttemptRecord {
            outcome: Outcome::CheckTxFailed,
            tx_hash: String::new(),
            ..failed.clone()
        };
        let event = notification(&refused, "devnet-1").unwrap();
        assert_eq!((event.height, event.tx_hash), (None, None));
        assert_eq!(event.profit_usd.unwrap().to_string(), "3");

        let raced = AttemptRecord {
            outcome: Outcome::SimulationFailed,
            error: "User has no balance in specified collateral asset to be liquidated".into(),
            ..landed.clone()
        };
        assert!(notification(&raced, "devnet-1").is_none());
        for quiet in [
            Outcome::DryRun,
            Outcome::BelowMinProfit,
            Outcome::Declined,
            Outcome::Unconfirmed,
            Outcome::Expired,
            Outcome::TopUp,
            Outcome::Sweep,
            Outcome::CreditAccountOpened,
        ] {
            let record = AttemptRecord {
                outcome: quiet,
                ..landed.clone()
            };
            assert!(notification(&record, "devnet-1").is_none(), "{quiet}");
        }
    }

    #[test]
    fn csv_file_gets_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attempts.csv");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for _ in 0..2 {
            let recorder = Recorder::new(None, "s".into(), None, Some(&path)).unwrap();
            runtime.block_on(recorder.record(&AttemptRecord::default()));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], AttemptRecord::csv_header());
    }
}
