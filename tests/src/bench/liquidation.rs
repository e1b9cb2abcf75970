//! The liquidation run of issue 4, shared by its end-to-end test (small numbers) and `make
//! bench` (10,000 accounts): a seeded devnet, a price drop that makes many accounts
//! liquidatable, and liquidator workers (in several liquidator instances, as separate processes
//! would run them) taking candidates from the priority queue until nothing profitable is left.
//!
//! Candidates come from the real pipeline ([`Candidates::Pipeline`]: the collector indexes the
//! chain block by block and cuts health-check jobs, health-checker workers queue the
//! liquidatable accounts) or from a stand-in for the health checker ([`Candidates::StandIn`]:
//! every other block, the contract's math over the accounts liquidatable right after the drop,
//! queueing those with a profitable liquidation). Either way the run watches the accounts that
//! have a profitable liquidation right after the drop (one full pass over every borrower with
//! the contract's math) and ends when none of them has one left.
//!
//! [`run`] measures and checks; [`Figures::targets`] states the acceptance, [`Figures::check`]
//! fails on any enforced target missed:
//! - every capture target is liquidated: every account liquidatable at a profit after the drop
//!   (by the contract's math) is liquidated, and the capture oracle
//!   ([`crate::capture`], the chain's own simulations, no planning code) finds no account left
//!   with HF < 1 that some `liquidate` would still pay for, and none it cannot explain;
//! - no liquidation tx fails (counted from the blocks' tx results and from the records);
//! - no account is liquidated twice by us in one block (counted from the blocks' own events);
//! - the recorded profits (Redis stream and CSV files) add up exactly to the change of the
//!   wallets' balances valued at the oracle's prices;
//! - at block intervals of 1 s or more, the first liquidation of every account lands within
//!   one block of the price drop at p99.

use redline_devnet::flavor::Flavor;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cosmwasm_std::{Decimal, Uint128, Uint256};
use futures::StreamExt as _;
use mars::value::{parse_value, to_usd, Value};
use redline_chain::{ChainClient, TendermintClient, Wallet};
use redline_liquidator::config::LiquidatorArgs;
use redline_liquidator::locks::KeySpace;
use redline_liquidator::plan::{Plan, PlanContext};
use redline_liquidator::recheck::{
    inclusion_window, AccountPosition, MarketSnapshot, PositionReader,
};
use redline_liquidator::record::{parse_csv_line, read_records, unix_ms, AttemptRecord, Outcome};
use redline_liquidator::Liquidator;
use redline_pipeline::jobs::{
    LiquidationCandidate, LiquidationPlan, ProtocolKind, LIQUIDATION_QUEUE,
};
use redline_pipeline::queue::{PriorityQueue, QueueConfig};
use redline_protocol::{AccountKey, RedBank};
use redline_service::config::Secret;
use testkit::RedisServer;

use super::contest::ContestFigures;
use super::credit::{self, CreditWatch, CREDIT_FEE_ESTIMATE_GAS};
use super::targets::{self, Target};
use crate::capture::{CaptureOracle, CaptureReport};
use crate::credit_capture::{CreditCaptureReport, CreditOracle, OracleAccount};
use redline_devnet::competitor::CompetitorConfig;
use testkit::devnet::Devnet;

/// Gas limit a one-account liquidation tx is assumed to take (simulated ≈ 215k, × 1.3), to
/// value its fee: a liquidation that does not pay for its tx is not worth queueing, and an
/// account left that would not pay for one is not a liquidation missed.
const FEE_ESTIMATE_GAS: u128 = 300_000;
/// The wallets the scenario funds (slots 0..=3; slot 4 is topped up by the master).
const WALLETS: u32 = 5;

/// Where liquidation candidates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// The real pipeline: the collector follows the chain into the position index and cuts
    /// health-check jobs every block; health-checker workers queue the liquidatable accounts.
    Pipeline,
    /// A stand-in for the health checker (the contract's math over the accounts liquidatable
    /// after the drop, queued every other block).
    StandIn,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub candidates: Candidates,
    /// Borrowers seeded.
    pub accounts: usize,
    /// Rover credit accounts seeded beside them (liquidated by the same workers).
    pub credit_accounts: usize,
    pub seed: u64,
    pub drop_denom: String,
    /// The dropped denom's new price, in percent of the old one.
    pub drop_to_percent: u64,
    /// Liquidator instances (each as a separate process would be).
    pub instances: usize,
    pub workers_per_instance: u32,
    pub max_liquidations_per_tx: usize,
    /// Candidates a liquidator worker takes per step (`--fetch-batch`); `None`: its default.
    pub fetch_batch: Option<usize>,
    /// Txs per wallet in flight (`--max-txs-in-flight`); `None`: the liquidator's default.
    pub max_txs_in_flight: Option<usize>,
    /// The devnet's block interval.
    pub block_time: Duration,
    /// Fail when liquidations are still due after this long.
    pub deadline: Duration,
    /// Which Mars the devnet runs.
    pub flavor: Flavor,
    /// Whether the liquidators may fund a credit-account liquidation from their wallets where
    /// no swap pool repays a borrow. Without it, a credit capture target must also pay through
    /// the pools as they stand at the drop.
    pub credit_wallet_funding: bool,
    /// A competing bot on the devnet (none unless set).
    pub competitor: Option<CompetitorConfig>,
    /// The liquidators' `--max-fee-share` (fee bidding; 0 is off, their default).
    pub max_fee_share: Decimal,
    /// The liquidators' `--assumed-competition`.
    pub assumed_competition: u32,
    /// The liquidators' `--armed-accounts`; they arm, and the health checkers watch, the
    /// accounts the drop can reach ([`Options::drop_reach`]).
    pub armed_accounts: u64,
}

impl Options {
    /// The health factor below which an account can go under with the drop alone (its
    /// collateral all in the dropped denom), never below the default 1.05: what the health
    /// checkers watch and the liquidators arm, as a deployment expecting such a move would.
    pub fn drop_reach(&self) -> Decimal {
        let percent = u128::from(self.drop_to_percent.max(1));
        // 100 / percent, rounded up to hundredths.
        Decimal::from_ratio(10_000u128.div_ceil(percent), 100u128).max(Decimal::percent(105))
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            candidates: Candidates::Pipeline,
            accounts: 10_000,
            credit_accounts: 0,
            seed: 4,
            drop_denom: "uatom".into(),
            drop_to_percent: 70,
            instances: 2,
            workers_per_instance: 2,
            max_liquidations_per_tx: 4,
            fetch_batch: None,
            max_txs_in_flight: None,
            block_time: crate::TEST_BLOCK_TIME,
            deadline: Duration::from_secs(600),
            flavor: Flavor::Osmosis,
            credit_wallet_funding: true,
            competitor: None,
            max_fee_share: Decimal::zero(),
            assumed_competition: 0,
            armed_accounts: 2_000,
        }
    }
}

/// How a credit-account record's detail says the wallet sent the debt coin (no borrow, no swap).
const CREDIT_FROM_WALLET: &str = "from the wallet";

/// Everything measured and checked.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub candidates: Option<Candidates>,
    pub accounts: usize,
    /// Credit accounts seeded (0: a run over borrowers only).
    pub credit_accounts: usize,
    /// Credit accounts with a profitable liquidation right after the drop.
    pub credit_liquidatable: usize,
    /// Those never liquidated, or still with one at the deadline.
    pub credit_missed: Vec<String>,
    /// Credit accounts liquidated (records).
    pub credit_liquidations: usize,
    /// Of those, funded from the wallet (no swap pool repaid a borrow).
    pub credit_from_wallet: usize,
    /// Whether the liquidators could fund credit-account liquidations from their wallets.
    pub credit_wallet_funding: bool,
    /// Which Mars the devnet ran.
    pub flavor: Flavor,
    /// Txs those credit-account liquidations landed in.
    pub credit_txs: usize,
    /// Credit-account attempts that liquidated nothing, by outcome and the head of their
    /// reason (numbers left out).
    pub credit_not_liquidated: BTreeMap<String, usize>,
    /// Each account's (borrower's or credit account's) latest attempt that liquidated nothing:
    /// `outcome: reason`.
    pub last_refusal: BTreeMap<String, String>,
    /// What the credit-account capture oracle found after the run.
    pub credit_capture: CreditCaptureReport,
    /// The workers' own credit accounts after the run.
    pub own_credit_accounts: usize,
    /// What was left in them (one line per account not empty): must be empty.
    pub own_accounts_left: Vec<String>,
    /// Per credit account, blocks from the price drop to its first liquidation's block.
    pub credit_blocks_from_drop: Vec<u64>,
    pub drop_denom: String,
    pub drop_to_percent: u64,
    /// The liquidators' `--armed-accounts` and `--armed-below-hf` (the health checkers'
    /// `--watch-threshold` too).
    pub armed: (u64, Decimal),
    pub instances: usize,
    pub max_liquidations_per_tx: usize,
    pub borrowers: usize,
    pub workers: usize,
    /// Candidates per worker step.
    pub fetch_batch: usize,
    pub max_txs_in_flight: usize,
    pub block_time: Duration,
    pub drop_height: u64,
    /// Accounts with a profitable liquidation right after the drop.
    pub liquidatable: usize,
    pub missed: Vec<String>,
    /// Accounts the liquidator dropped at least twice as below the profit floor after its
    /// simulated fee (not for want of funds), never liquidated.
    pub at_a_loss: BTreeSet<String>,
    pub liquidations: usize,
    pub liquidations_on_chain: usize,
    pub txs: usize,
    /// Our txs that failed, from the blocks' tx results and the records (distinct hashes).
    pub failed_txs: usize,
    /// Of those, failed in a block (DeliverTx), as the chain says.
    pub failed_on_chain: usize,
    /// Why they failed (one line per failed attempt).
    pub failures: Vec<String>,
    pub sequence_or_gas_failures: Vec<String>,
    /// Our txs not included by their timeout height (distinct hashes): nothing executed or paid,
    /// their accounts tried again.
    pub expired_txs: usize,
    /// Our txs refused at CheckTx for the wallet's funds (distinct hashes): nothing paid, their
    /// jobs waited for funds.
    pub refused_for_funds: usize,
    /// `(height, account, times)` liquidated more than once in one block.
    pub twice_in_a_block: Vec<(u64, String, usize)>,
    /// What the capture oracle found among the borrowers after the run.
    pub capture: CaptureReport,
    pub recorded_profit: Value,
    pub balance_change: Value,
    pub csv_profit: Value,
    pub csv_rows: usize,
    pub records: usize,
    /// Liquidations the contract refunded part of (account, sent, repaid): must be empty.
    pub refunds: Vec<String>,
    /// Refunded liquidations of accounts the competitor had liquidated first (explained).
    pub refunds_after_competitor: usize,
    pub top_ups: usize,
    pub worker_slots: Vec<u32>,
    pub treasurers: usize,
    pub producer_rounds: usize,
    /// Per borrower, blocks from the price drop to its first liquidation's block (sorted).
    pub blocks_from_drop: Vec<u64>,
    /// Per liquidation, blocks from the candidate's health-check height to inclusion (sorted).
    pub blocks_from_candidate: Vec<u64>,
    /// Per liquidation, candidate enqueued → broadcast (sorted, ms).
    pub job_to_broadcast_ms: Vec<u64>,
    /// Per liquidation, the part of job → broadcast spent in the queue: enqueued → taken by a
    /// worker (sorted, ms).
    pub queue_wait_ms: Vec<u64>,
    /// Per liquidation, the worker's part: taken → broadcast (re-read, plan, simulate, sign,
    /// send; sorted, ms).
    pub taken_to_broadcast_ms: Vec<u64>,
    /// Per liquidation, the commit of the block its candidate was found at → its broadcast
    /// (sorted, ms; block header time, which on the devnet is the commit's wall time).
    pub block_to_broadcast_ms: Vec<u64>,
    /// The same, for the liquidations whose candidate a liquidator queued from a position it
    /// had armed (read ahead), as the block came (sorted, ms).
    pub armed_block_to_broadcast_ms: Vec<u64>,
    /// Per liquidated account, blocks from the price drop to the height of the first candidate
    /// queued for it (sorted): the health-check side of the latency.
    pub blocks_drop_to_queued: Vec<u64>,
    /// Per liquidated account, ms from the drop block's commit being seen to its first
    /// candidate showing in the queue (sorted).
    pub ms_drop_to_queued: Vec<u64>,
    /// Per liquidated account, blocks from its first candidate's height to its first inclusion
    /// (sorted): the liquidator side of the latency.
    pub blocks_queued_to_inclusion: Vec<u64>,
    /// Our liquidation txs (and accounts liquidated) per block after the drop, in height
    /// order: `(blocks after the drop, txs, liquidations)`.
    pub per_block: Vec<(u64, usize, usize)>,
    /// Reading every borrower's position before the drop (to know who becomes liquidatable).
    pub initial_scan: Duration,
    /// Wall time from the drop block being seen to the watched accounts having nothing left.
    pub drop_to_done: Duration,
    /// Block time of the block holding the last liquidation minus that of the drop block.
    pub drop_to_last_liquidation: Duration,
    pub total: Duration,
    pub profit_usd: Value,
    /// Who won what against the competing bot, when one ran.
    pub contest: Option<ContestFigures>,
}

/// The value at percentile `p` of sorted `values`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// "p50 …, p99 …" of sorted figures, each followed by `unit`.
fn p50_p99(sorted: &[u64], unit: &str) -> String {
    format!(
        "p50 {}{unit}, p99 {}{unit}",
        percentile(sorted, 50.0),
        percentile(sorted, 99.0)
    )
}

impl Figures {
    /// The goals of the run, each met or not.
    pub fn targets(&self) -> Vec<Target> {
        let captured = self.liquidatable - self.missed.len().min(self.liquidatable);
        let at_a_loss = self.missed.len() - self.unexplained_missed().len();
        let mut targets = vec![
            Target::enforced(
                "capture targets liquidated",
                "100 %, nothing profitable or unexplained left (capture oracle)",
                format!(
                    "{captured} of {} liquidated{}; oracle: {} profitable, {} unexplained left",
                    self.liquidatable,
                    if at_a_loss == 0 {
                        String::new()
                    } else {
                        format!(
                            ", {at_a_loss} left that the liquidator's and the oracle's simulations find only at a loss \
                             in a tx of its own"
                        )
                    },
                    self.capture.profitable.len(),
                    self.capture.other.len()
                ),
                self.unexplained_missed().is_empty()
                    && self.capture.profitable.is_empty()
                    && self.capture.other.is_empty(),
            ),
            self.failed_txs_target(),
            Target::enforced(
                "accounts liquidated twice in one block",
                "0",
                self.twice_in_a_block.len().to_string(),
                self.twice_in_a_block.is_empty(),
            ),
            Target::enforced(
                "recorded profit = wallets' balance change",
                if self.credit_accounts > 0 {
                    "equal to the unit (stream, CSV and chain); the workers' own credit accounts \
                     end empty"
                } else {
                    "equal to the unit (stream, CSV and chain)"
                },
                format!(
                    "stream {} / CSV {} / balances {} ({} on chain vs {} recorded liquidations, {} refunds){}",
                    self.recorded_profit,
                    self.csv_profit,
                    self.balance_change,
                    self.liquidations_on_chain,
                    self.liquidations,
                    self.refunds.len(),
                    self.own_accounts_measured()
                ),
                self.recorded_profit == self.balance_change
                    && self.csv_profit == self.recorded_profit
                    && self.csv_rows == self.records
                    && self.liquidations_on_chain == self.liquidations
                    && self.refunds.is_empty()
                    && self.own_accounts_left.is_empty(),
            ),
        ];
        if self.credit_accounts > 0 {
            targets.insert(1, self.credit_capture_target());
        }
        let p99 = percentile(&self.blocks_from_drop, 99.0);
        let goal = "p99 ≤ 1 block (1 s blocks)";
        let measured = format!(
            "p50 {}, p99 {}, max {} at {} ms blocks",
            percentile(&self.blocks_from_drop, 50.0),
            p99,
            self.blocks_from_drop.last().copied().unwrap_or_default(),
            self.block_time.as_millis()
        );
        let next_block = Target::enforced(
            "blocks from the drop to inclusion",
            goal,
            measured,
            p99 <= 1,
        );
        // The next-block goal is set for real block times; shorter blocks only compress time.
        // Against the fast bot, which takes the next block's accounts first at a higher price,
        // it is reported: what is left for redline lands later by design.
        let outbid = self
            .contest
            .as_ref()
            .is_some_and(|c| c.style == redline_devnet::competitor::Style::Fast);
        targets.push(Target {
            enforced: self.block_time >= Duration::from_secs(1) && !outbid,
            ..next_block
        });
        targets.push(Target::informational(
            "candidate's block → broadcast (per liquidation)",
            "p99 ≤ 50 ms",
            format!(
                "{} over {} liquidations",
                p50_p99(&self.block_to_broadcast_ms, " ms"),
                self.block_to_broadcast_ms.len()
            ),
            !self.block_to_broadcast_ms.is_empty()
                && percentile(&self.block_to_broadcast_ms, 99.0) <= 50,
        ));
        let mut slots = self.worker_slots.clone();
        slots.sort();
        slots.dedup();
        targets.push(Target::enforced(
            "one wallet per worker, one treasurer",
            "distinct slots, 1 treasurer",
            format!(
                "slots {:?}, {} treasurers",
                self.worker_slots, self.treasurers
            ),
            slots.len() == self.workers && self.treasurers == 1,
        ));
        if self.credit_accounts > 0 {
            targets.push(self.credit_latency_target());
        }
        if let Some(contest) = &self.contest {
            targets.extend(contest.targets(self));
        }
        targets
    }

    /// No failed tx, or with a competitor, none but those it beat.
    fn failed_txs_target(&self) -> Target {
        let lost = self
            .contest
            .as_ref()
            .map_or(0, |c| c.contest.others_lost_to_competitor.len());
        let unexplained = self.failed_txs.saturating_sub(lost);
        let measured = format!(
            "{} ({} failed in a block, {} for sequence or gas)",
            self.failed_txs,
            self.failed_on_chain,
            self.sequence_or_gas_failures.len()
        );
        let met = unexplained == 0 && self.sequence_or_gas_failures.is_empty();
        if self.contest.is_none() {
            return Target::enforced("failed liquidation txs", "0", measured, met);
        }
        Target::enforced(
            "failed liquidation txs not lost to the competitor",
            "0",
            format!("{unexplained} of {measured}; {lost} lost to the competitor"),
            met,
        )
    }

    /// `; N own credit accounts, M not empty` when credit accounts were seeded.
    fn own_accounts_measured(&self) -> String {
        if self.credit_accounts == 0 {
            return String::new();
        }
        format!(
            "; {} own credit accounts, {} not empty",
            self.own_credit_accounts,
            self.own_accounts_left.len()
        )
    }

    /// Every credit account with a profitable liquidation after the drop liquidated, and none
    /// left that the chain's simulations say pays or cannot explain.
    fn credit_capture_target(&self) -> Target {
        let captured =
            self.credit_liquidatable - self.credit_missed.len().min(self.credit_liquidatable);
        Target::enforced(
            "credit-account capture targets liquidated",
            "100 %, nothing profitable or unexplained left (credit capture oracle)",
            format!(
                "{captured} of {} liquidated; oracle: {} profitable, {} unexplained left",
                self.credit_liquidatable,
                self.credit_capture.profitable.len(),
                self.credit_capture.unexplained.len()
            ),
            self.credit_missed.is_empty()
                && self.credit_capture.profitable.is_empty()
                && self.credit_capture.unexplained.is_empty(),
        )
    }

    /// Credit accounts' latency from the drop: reported, not enforced (one account per tx,
    /// so a large drop takes as many blocks as the workers need to send them all).
    fn credit_latency_target(&self) -> Target {
        let sorted = &self.credit_blocks_from_drop;
        Target::informational(
            "blocks from the drop to inclusion (credit accounts)",
            "p99 ≤ 1 block (1 s blocks)",
            format!(
                "{}, max {} at {} ms blocks",
                p50_p99(sorted, ""),
                sorted.last().copied().unwrap_or_default(),
                self.block_time.as_millis()
            ),
            percentile(sorted, 99.0) <= 1,
        )
    }

    /// The targets never liquidated but for those both the liquidator's simulations and the
    /// capture oracle's (their real gas) find only at a loss in a tx of their own: their profit
    /// was judged against an estimated one-account fee, so those are explained, not missed.
    fn unexplained_missed(&self) -> Vec<&String> {
        self.missed
            .iter()
            .filter(|account| {
                !(self.at_a_loss.contains(*account)
                    && self.capture.unprofitable.iter().any(|(a, _)| a == *account))
            })
            .collect()
    }

    /// Fails naming every enforced target missed.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut missed = targets::missed(&self.targets());
        let unexplained = self.unexplained_missed();
        if !unexplained.is_empty() {
            missed.push(format!("never liquidated: {unexplained:?}"));
        }
        if !self.credit_missed.is_empty() {
            missed.push(format!(
                "credit accounts never liquidated: {:?}",
                self.credit_missed
            ));
        }
        missed.extend(self.own_accounts_left.iter().cloned());
        let credit = &self.credit_capture;
        if !credit.profitable.is_empty() || !credit.unexplained.is_empty() {
            missed.push(format!("credit capture oracle: {}", credit.summary()));
            missed.extend(
                credit
                    .profitable
                    .iter()
                    .chain(&credit.unexplained)
                    .take(20)
                    .map(|(a, why)| format!("  {a}: {why}")),
            );
        }
        if !self.capture.profitable.is_empty() || !self.capture.other.is_empty() {
            missed.push(format!("capture oracle: {}", self.capture.summary()));
            missed.extend(
                self.capture
                    .profitable
                    .iter()
                    .chain(&self.capture.other)
                    .take(20)
                    .map(|(a, why)| format!("  {a}: {why}")),
            );
        }
        missed.extend(self.failures.iter().take(20).cloned());
        anyhow::ensure!(missed.is_empty(), "{}", missed.join("\n"));
        Ok(())
    }

    /// The credit-account attempts that liquidated nothing, most frequent reason first.
    pub fn credit_not_liquidated_summary(&self) -> String {
        let mut reasons: Vec<(&String, &usize)> = self.credit_not_liquidated.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1));
        let listed: Vec<String> = reasons
            .iter()
            .map(|(reason, count)| format!("{count} × {reason}"))
            .collect();
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join("; ")
        }
    }

    /// One paragraph for test output.
    pub fn summary(&self) -> String {
        let mut summary = self.red_bank_summary();
        if self.credit_accounts > 0 {
            let _ = write!(
                summary,
                "; credit accounts: {} seeded, {} liquidatable after the drop, {} liquidated \
                 ({} missed), blocks drop → inclusion {}; credit oracle: {}; {} own credit \
                 accounts, {} not empty; attempts without a liquidation: {}",
                self.credit_accounts,
                self.credit_liquidatable,
                self.credit_liquidations,
                self.credit_missed.len(),
                p50_p99(&self.credit_blocks_from_drop, ""),
                self.credit_capture.summary(),
                self.own_credit_accounts,
                self.own_accounts_left.len(),
                self.credit_not_liquidated_summary()
            );
        }
        summary
    }

    fn red_bank_summary(&self) -> String {
        format!(
            "{} borrowers, {} liquidatable after the drop, {} liquidations in {} txs ({} failed), \
             {} worker(s), {} producer rounds; {}; pre-drop read of every borrower {:?}, drop → all done {:?}; blocks \
             drop → inclusion p50 {} p99 {} max {}; candidate height → inclusion p50 {} p99 {}; \
             job → broadcast p50 {} ms p99 {} ms; drop → first queued p50 {} p99 {} blocks \
             (p50 {} ms p99 {} ms); first queued → inclusion p50 {} p99 {} blocks; profit {} USD; \
             total {:?}",
            self.borrowers,
            self.liquidatable,
            self.liquidations,
            self.txs,
            self.failed_txs,
            self.workers,
            self.producer_rounds,
            self.capture.summary(),
            self.initial_scan,
            self.drop_to_done,
            percentile(&self.blocks_from_drop, 50.0),
            percentile(&self.blocks_from_drop, 99.0),
            self.blocks_from_drop.last().copied().unwrap_or_default(),
            percentile(&self.blocks_from_candidate, 50.0),
            percentile(&self.blocks_from_candidate, 99.0),
            percentile(&self.job_to_broadcast_ms, 50.0),
            percentile(&self.job_to_broadcast_ms, 99.0),
            percentile(&self.blocks_drop_to_queued, 50.0),
            percentile(&self.blocks_drop_to_queued, 99.0),
            percentile(&self.ms_drop_to_queued, 50.0),
            percentile(&self.ms_drop_to_queued, 99.0),
            percentile(&self.blocks_queued_to_inclusion, 50.0),
            percentile(&self.blocks_queued_to_inclusion, 99.0),
            self.profit_usd,
            self.total,
        )
    }

    /// The `BENCHMARKS.md` section.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let heading = if self.credit_accounts > 0 {
            "Credit accounts and Red Bank borrowers after a price drop"
        } else {
            "Liquidations after a price drop"
        };
        let _ = match self.flavor {
            Flavor::Osmosis => writeln!(md, "## {heading}\n"),
            Flavor::Neutron => writeln!(
                md,
                "## {heading}, on Neutron's Mars\n\n`devnet --flavor neutron`: mars-protocol/\
                 core-contracts' rule (each asset's close factor, 0.9, caps one liquidation; no \
                 target health factor; the health contract takes no `kind` and answers with \
                 perps fields), `neutron` addresses, fees in `untrn` at the fee market's base \
                 gas price (moved every block by the block's gas, blocks of at most 30,000,000 \
                 gas, the mempool ordered by gas price), which the liquidators read and sign \
                 with `--gas-price-headroom` 1.2 over.\n"
            ),
        };
        let source = match self.candidates {
            Some(Candidates::StandIn) => "a stand-in health checker (contract math over the \
                                           accounts liquidatable after the drop, every other \
                                           block)"
                .to_string(),
            _ => "the real pipeline (collector following blocks into the position index, \
                  health-checker workers queueing every liquidatable account each block)"
                .to_string(),
        };
        let _ = writeln!(
            md,
            "Devnet with {} accounts ({} borrowers){}, {} ms blocks; `{}` to {}% of its price at \
             height {}; {} liquidator workers ({} instances, own wallets), up to {} accounts per \
             tx, {} candidates per worker step, up to {} txs per wallet in flight. Candidates \
             from {source}; the health checkers watch, and each liquidator instance arms (up to \
             {}), the accounts the drop can reach: below HF {}.{}\n",
            self.accounts,
            self.borrowers,
            if self.credit_accounts > 0 {
                format!(" and {} Rover credit accounts", self.credit_accounts)
            } else {
                String::new()
            },
            self.block_time.as_millis(),
            self.drop_denom,
            self.drop_to_percent,
            self.drop_height,
            self.workers,
            self.instances,
            self.max_liquidations_per_tx,
            self.fetch_batch,
            self.max_txs_in_flight,
            self.armed.0,
            self.armed.1,
            if self.credit_accounts > 0 {
                " `--credit-swap-margin 0`: nothing but redline's own swaps moves the devnet's \
                 pools, and its pool locks keep those out of each other's blocks, so the \
                 simulation is the block (failed txs below would show otherwise); on a live \
                 chain the default 0.5 % covers other traders."
            } else {
                ""
            },
        );
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(
            md,
            "| Liquidatable after the drop | {} |",
            self.liquidatable
        );
        let _ = writeln!(
            md,
            "| Liquidated | {} accounts ({} missed), {} liquidations in {} txs |",
            self.liquidatable - self.missed.len(),
            self.missed.len(),
            self.liquidations,
            self.txs
        );
        let capture = &self.capture;
        let _ = writeln!(
            md,
            "| Left with HF < 1 (capture oracle: simulated `liquidate` of every pair) | {} of {} borrowers: {} without enabled collateral; {} only at a loss (best profit after the fee {} base units); {} profitable; {} other ({} simulations) |",
            capture.below_one,
            capture.accounts,
            capture.no_collateral.len(),
            capture.unprofitable.len(),
            capture
                .best_unprofitable()
                .map_or_else(|| "-".to_string(), |p| p.to_string()),
            capture.profitable.len(),
            capture.other.len(),
            capture.simulations,
        );
        let _ = writeln!(
            md,
            "| Failed txs | {} ({} failed in a block per the chain's tx results, {} for sequence or gas); besides, {} txs not included by their timeout height (nothing paid, accounts tried again) and {} refused at CheckTx for the wallet's funds (nothing paid, jobs waited for funds) |",
            self.failed_txs,
            self.failed_on_chain,
            self.sequence_or_gas_failures.len(),
            self.expired_txs,
            self.refused_for_funds
        );
        let _ = writeln!(
            md,
            "| Accounts liquidated twice in one block | {} |",
            self.twice_in_a_block.len()
        );
        let _ = writeln!(
            md,
            "| Blocks from the price drop to inclusion (per account, first liquidation) | {}, max {} |",
            p50_p99(&self.blocks_from_drop, ""),
            self.blocks_from_drop.last().copied().unwrap_or_default()
        );
        let _ = writeln!(
            md,
            "| Blocks from the candidate's health-check height to inclusion | {} |",
            p50_p99(&self.blocks_from_candidate, ""),
        );
        let _ = writeln!(
            md,
            "| Blocks from the price drop to the account's first candidate in the queue | {} ({} after the drop block) |",
            p50_p99(&self.blocks_drop_to_queued, ""),
            p50_p99(&self.ms_drop_to_queued, " ms"),
        );
        let _ = writeln!(
            md,
            "| Blocks from the account's first candidate to inclusion | {} |",
            p50_p99(&self.blocks_queued_to_inclusion, ""),
        );
        let _ = writeln!(
            md,
            "| Latency job → broadcast (per liquidation) | {} |",
            p50_p99(&self.job_to_broadcast_ms, " ms")
        );
        let _ = writeln!(
            md,
            "| … of which in the queue (enqueued → taken by a worker) | {} |",
            p50_p99(&self.queue_wait_ms, " ms")
        );
        let _ = writeln!(
            md,
            "| … of which in the worker (taken → broadcast) | {} |",
            p50_p99(&self.taken_to_broadcast_ms, " ms")
        );
        let _ = writeln!(
            md,
            "| Candidate's block → broadcast, for candidates armed by the liquidators (queued as the block came; `--armed-accounts`) | {} over {} liquidations |",
            p50_p99(&self.armed_block_to_broadcast_ms, " ms"),
            self.armed_block_to_broadcast_ms.len()
        );
        let _ = writeln!(
            md,
            "| Drop → last liquidation (block times: drop block to the block of the last liquidation) | {:.1} s |",
            self.drop_to_last_liquidation.as_secs_f64()
        );
        let _ = writeln!(
            md,
            "| Recorded profit = wallets' balance change | {} USD ({}) |",
            self.profit_usd,
            if self.recorded_profit == self.balance_change {
                "equal to the unit"
            } else {
                "DIFFERENT"
            }
        );
        if self.credit_accounts > 0 {
            md.push_str(&self.credit_rows());
        }
        if let Some(contest) = &self.contest {
            md.push_str(&contest.rows(self));
        }
        let _ = writeln!(md, "\n### Targets\n");
        md.push_str(&targets::markdown(&self.targets()));
        md
    }
}

impl Figures {
    /// The credit-account rows of the `BENCHMARKS.md` table.
    fn credit_rows(&self) -> String {
        let mut md = String::new();
        let credit = &self.credit_capture;
        let rule = if self.credit_wallet_funding {
            "a liquidation paying for its tx at oracle prices: the liquidators fund it from \
             their wallets where no swap pool repays a borrow"
        } else {
            "a liquidation paying for its tx at oracle prices and through the swap pools as \
             they stand"
        };
        let _ = writeln!(
            md,
            "| Credit accounts liquidatable after the drop ({rule}) | {} of {} |",
            self.credit_liquidatable, self.credit_accounts
        );
        let _ = writeln!(
            md,
            "| Credit accounts liquidated | {} ({} missed), {} liquidations in {} txs, {} of them funded from the wallet |",
            self.credit_liquidatable - self.credit_missed.len().min(self.credit_liquidatable),
            self.credit_missed.len(),
            self.credit_liquidations,
            self.credit_txs,
            self.credit_from_wallet
        );
        let _ = writeln!(
            md,
            "| Credit-account attempts without a liquidation (outcome: reason) | {} |",
            self.credit_not_liquidated_summary()
        );
        let _ = writeln!(
            md,
            "| Credit accounts left liquidatable (credit capture oracle: simulated liquidation of every pair from the oracle's own credit account, both fundings) | {} of {}: {} refused or at a loss; {} profitable; {} unexplained ({} simulations) |",
            credit.liquidatable,
            credit.accounts,
            credit.unprofitable.len(),
            credit.profitable.len(),
            credit.unexplained.len(),
            credit.simulations
        );
        let _ = writeln!(
            md,
            "| Blocks from the price drop to inclusion (per credit account, first liquidation) | {}, max {} |",
            p50_p99(&self.credit_blocks_from_drop, ""),
            self.credit_blocks_from_drop.last().copied().unwrap_or_default()
        );
        let _ = writeln!(
            md,
            "| Workers' own credit accounts after the run (credit manager's `positions`) | {} accounts, {} not empty |",
            self.own_credit_accounts,
            self.own_accounts_left.len()
        );
        md
    }
}

/// The fee a liquidation must earn back to be worth its tx: `gas` at `gas_price`, in `denom`.
#[derive(Debug, Clone)]
pub struct FeeEstimate {
    pub denom: String,
    pub gas_price: Decimal,
    pub gas: u128,
}

impl FeeEstimate {
    /// The fee of a tx of `gas` at the manifest's gas price; on a chain with a fee market, at
    /// the price the liquidators sign with while the market sits at that floor (their default
    /// `--gas-price-headroom` over it): the fee such a tx pays in full.
    pub fn from_manifest(manifest: &mars::manifest::Manifest, gas: u128) -> anyhow::Result<Self> {
        let mut gas_price: Decimal = manifest
            .fee
            .gas_price
            .parse()
            .map_err(|e| anyhow::anyhow!("manifest gas price: {e}"))?;
        if manifest.fee.market != mars::manifest::FeeMarket::Fixed {
            gas_price *= LiquidatorArgs::default().gas_price_headroom;
        }
        Ok(FeeEstimate {
            denom: manifest.fee.denom.clone(),
            gas_price,
            gas,
        })
    }
}

/// The stored positions of `accounts` at `height`.
pub async fn read_positions(
    reader: &PositionReader<TendermintClient>,
    accounts: &[String],
    height: u64,
) -> anyhow::Result<Vec<AccountPosition>> {
    futures::stream::iter(accounts.iter().cloned())
        .map(|account| async move {
            reader
                .read_account(&AccountKey::Address(account), height)
                .await
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|p| p.map_err(anyhow::Error::from))
        .collect()
}

/// The plans (unlimited funds) that pay for a tx, of `positions` under `snapshot`.
pub fn profitable_plans(
    snapshot: &MarketSnapshot,
    positions: &[AccountPosition],
    block_time: Duration,
    fee: &FeeEstimate,
) -> anyhow::Result<Vec<Plan>> {
    let (earliest, expected) = inclusion_window(snapshot, block_time);
    let unlimited: BTreeMap<String, Uint128> = snapshot
        .markets
        .keys()
        .map(|d| (d.clone(), Uint128::new(u128::MAX / 4)))
        .collect();
    // A liquidation that does not pay for its tx is not worth queueing (nor left undone).
    let fee_value = snapshot
        .prices
        .value(&fee.denom, Uint128::new(fee.gas).mul_ceil(fee.gas_price))?;
    let mut plans = Vec::new();
    for position in positions {
        if let Ok(context) = PlanContext::new(snapshot, position, earliest, expected) {
            if let Ok(plan) = context.best_plan(&unlimited) {
                if plan.expected_profit > fee_value {
                    plans.push(plan);
                }
            }
        }
    }
    Ok(plans)
}

/// Plans for every account in `accounts` that has a profitable one now (unlimited funds).
async fn plannable(
    reader: &PositionReader<TendermintClient>,
    accounts: &[String],
    block_time: Duration,
    fee: &FeeEstimate,
) -> anyhow::Result<(u64, Vec<Plan>)> {
    let snapshot = reader.latest().await?;
    let positions = read_positions(reader, accounts, snapshot.height).await?;
    let plans = profitable_plans(&snapshot, &positions, block_time, fee)?;
    Ok((snapshot.height, plans))
}

/// Positions the liquidator instances keep armed, summed over their metrics.
fn armed_gauges(registries: &[redline_liquidator::prometheus::Registry]) -> u64 {
    registries
        .iter()
        .flat_map(|registry| registry.gather())
        .filter(|family| family.name().ends_with("liquidator_armed_accounts"))
        .flat_map(|family| family.get_metric().to_vec())
        .map(|metric| metric.get_gauge().get_value() as u64)
        .sum()
}

/// Accounts never liquidated whose liquidation the liquidator dropped at least twice, its
/// simulation finding it below the profit floor after the tx's fee (and not for want of funds).
async fn found_at_a_loss(
    redis: &redline_pipeline::redis_conn::RedisConn,
    stream: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let records = read_records(&mut redis.clone(), stream).await?;
    let mut drops: BTreeMap<&str, usize> = BTreeMap::new();
    let mut liquidated = BTreeSet::new();
    for record in &records {
        match record.outcome {
            Outcome::BelowMinProfit
                if !record
                    .error
                    .ends_with(redline_liquidator::worker::CAPPED_BY_FUNDS) =>
            {
                *drops.entry(record.account.as_str()).or_default() += 1
            }
            Outcome::Liquidated => {
                liquidated.insert(record.account.as_str());
            }
            _ => {}
        }
    }
    Ok(drops
        .into_iter()
        .filter(|(account, n)| *n >= 2 && !liquidated.contains(account))
        .map(|(account, _)| account.to_owned())
        .collect())
}

fn candidate(chain_id: &str, plan: &Plan, height: u64) -> LiquidationCandidate {
    let usd = to_usd(plan.expected_profit, 6);
    LiquidationCandidate {
        chain_id: chain_id.to_string(),
        protocol: ProtocolKind::RedBank,
        account: AccountKey::Address(plan.account.clone()),
        height,
        found_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        health: plan.health_before.clone(),
        plan: Some(LiquidationPlan {
            debt_denom: plan.debt_denom.clone(),
            collateral_denom: plan.collateral_denom.clone(),
            debt_to_repay: plan.debt_to_send,
            collateral_received: plan.amounts.collateral_amount_received_by_liquidator,
            expected_profit_usd: usd.to_string().parse().unwrap_or_default(),
            from_lend: false,
        }),
        armed: false,
    }
}

async fn wallet_balances(
    client: &TendermintClient,
    wallets: &[String],
) -> anyhow::Result<BTreeMap<(String, String), Uint256>> {
    let mut all = BTreeMap::new();
    for wallet in wallets {
        for coin in client.balances(wallet).await? {
            all.insert((wallet.clone(), coin.denom), coin.amount);
        }
    }
    Ok(all)
}

/// Runs the scenario and measures it (see the module docs). Errors only when the run itself
/// breaks; acceptance is [`Figures::check`].
pub async fn run(options: &Options) -> anyhow::Result<Figures> {
    let started = Instant::now();
    anyhow::ensure!(
        options.credit_accounts == 0 || options.candidates == Candidates::Pipeline,
        "credit accounts are liquidated from the real pipeline's candidates only"
    );
    let workers = options.instances * options.workers_per_instance as usize;
    let mut scenario = Devnet::scenario(options.accounts, options.seed)
        .flavor(options.flavor)
        .credit_accounts(options.credit_accounts)
        .block_time(options.block_time);
    if let Some(competitor) = &options.competitor {
        scenario = scenario.competitor(competitor.clone());
    }
    let scenario = scenario.start().await.context("starting the scenario")?;
    let manifest = scenario.manifest.clone();
    let client = scenario.client.clone();
    let block_time = Duration::from_millis(manifest.block_time_ms);
    let fee = FeeEstimate::from_manifest(&manifest, FEE_ESTIMATE_GAS)?;
    // CometBFT reports height 1 before the first block.
    while client.latest_height().await? < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let redis_server = RedisServer::start().context("starting redis-server")?;
    let redis = redline_pipeline::redis_conn::connect(
        &redis_server.queue_config(),
        redline_pipeline::redis_conn::ConnectOptions::default(),
    )
    .await?;
    let queue_config = QueueConfig {
        queue_block_ms: 100,
        ..QueueConfig::with_url(redis_server.url())
    };
    let mnemonic = Secret::new(
        manifest
            .liquidator_mnemonic
            .clone()
            .context("the devnet manifest has no liquidator mnemonic")?,
    );
    let wallets: Vec<String> = (0..WALLETS)
        .map(|slot| {
            Wallet::from_mnemonic(mnemonic.expose(), &manifest.bech32_prefix, slot)
                .map(|w| w.address().to_string())
        })
        .collect::<Result<_, _>>()?;
    let borrowers: Vec<String> = scenario.positions[..options.accounts]
        .iter()
        .filter(|p| !p.debt.is_empty())
        .map(|p| p.user.to_string())
        .collect();
    let reader = Arc::new(PositionReader::new(RedBank::from_manifest(
        client.clone(),
        &manifest,
        6,
    )));

    // The real pipeline, when asked for: collector and health checker on the same Redis.
    let (pipeline_stop, pipeline_stopped) = tokio::sync::watch::channel(false);
    let mut pipeline_tasks = Vec::new();
    if options.candidates == Candidates::Pipeline {
        let registry = redline_liquidator::prometheus::Registry::new();
        let collector = redline_collector::Collector::new(
            redline_collector::Connections {
                client: client.clone(),
                chain_id: manifest.chain_id.clone(),
                red_bank: RedBank::from_manifest(client.clone(), &manifest, 6),
                rover: redline_protocol::rover::RoverContracts::from_manifest(&manifest.contracts)
                    .map(|contracts| {
                        redline_protocol::rover::Rover::new(client.clone(), contracts)
                    }),
                redis: redis.clone(),
                queue: QueueConfig {
                    queue_consumer: Some("collector".into()),
                    ..queue_config.clone()
                },
                registry: registry.clone(),
                health: Arc::new(tokio::sync::RwLock::new(serde_json::json!({}))),
            },
            redline_collector::Config::default(),
        )
        .await
        .context("starting the collector")?;
        let running = collector.clone();
        let mut stopped = pipeline_stopped.clone();
        pipeline_tasks.push(tokio::spawn(async move {
            if let Err(error) = running
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
            {
                tracing::error!(%error, "the collector stopped");
            }
        }));
        let health_queue = QueueConfig {
            queue_consumer: Some("health-checker".into()),
            ..queue_config.clone()
        };
        let outputs = redline_health_checker::Outputs::connect(
            &health_queue,
            &redline_health_checker::OutputConfig {
                watch_threshold: options.drop_reach(),
            },
        )
        .await?;
        let checker = Arc::new(
            redline_health_checker::HealthChecker::<TendermintClient>::new(
                redline_health_checker::WorkerConfig {
                    workers: Some(2),
                    compute_threads: Some(2),
                    ..redline_health_checker::WorkerConfig::default()
                },
                redline_health_checker::ProfitConfig::default(),
                redline_pipeline::index::IndexArgs::default(),
                redis.clone(),
                outputs,
                redline_health_checker::metrics::Metrics::register(&registry)?,
                None,
            )?,
        );
        let stopped = pipeline_stopped.clone();
        pipeline_tasks.push(tokio::spawn(async move {
            if let Err(error) = checker.run(&health_queue, stopped).await {
                tracing::error!(%error, "the health checker stopped");
            }
        }));
        // Discovery first: the index must hold every debtor before prices move.
        let discovery = Instant::now();
        while collector.last_indexed().await.is_none() {
            anyhow::ensure!(
                discovery.elapsed() < Duration::from_secs(120),
                "the collector's discovery did not finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Every borrower read before the drop (the drop moves no position, only prices), so that
    // finding who became liquidatable puts no load on the chain while the liquidators work.
    let before_drop = reader.latest().await?;
    let scan_started = Instant::now();
    let positions = read_positions(&reader, &borrowers, before_drop.height).await?;
    let rover = redline_protocol::rover::RoverContracts::from_manifest(&manifest.contracts)
        .filter(|_| options.credit_accounts > 0)
        .map(|contracts| redline_protocol::rover::Rover::new(client.clone(), contracts));
    let credit_ids = credit::seeded_ids(options.credit_accounts);
    let credit_before = match &rover {
        Some(rover) => Some(credit::read_accounts(rover, &credit_ids, before_drop.height).await?),
        None => None,
    };
    let initial_scan = scan_started.elapsed();

    // Where each account's first candidate shows up: the queue's `latest` hash names the
    // newest candidate of every account (`<chain>/<protocol>/<account>@<height>`), waiting or
    // in flight, so polling it sees every account's first candidate height and (to the poll
    // interval) when it was queued.
    let first_queued: Arc<std::sync::Mutex<BTreeMap<String, (u64, Instant)>>> = Arc::default();
    let (watch_stop, mut watch_stopped) = tokio::sync::watch::channel(false);
    let watcher = {
        let latest_key = redline_pipeline::queue::PriorityKeys::new(
            &queue_config.queue_prefix,
            LIQUIDATION_QUEUE,
        )
        .latest;
        let mut conn = redis::Client::open(redis_server.url())?
            .get_multiplexed_async_connection()
            .await
            .context("connecting the queue watcher to Redis")?;
        let first_queued = first_queued.clone();
        tokio::spawn(async move {
            while !*watch_stopped.borrow() {
                let ids: Vec<String> = redis::cmd("HVALS")
                    .arg(&latest_key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                let seen = Instant::now();
                {
                    let mut first = first_queued.lock().unwrap_or_else(|p| p.into_inner());
                    for id in ids {
                        let Some((key, height)) = id.rsplit_once('@') else {
                            continue;
                        };
                        let (Some(account), Ok(height)) =
                            (key.rsplit('/').next(), height.parse::<u64>())
                        else {
                            continue;
                        };
                        first.entry(account.to_string()).or_insert((height, seen));
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = watch_stopped.changed() => {}
                }
            }
        })
    };

    // The capture oracle's wallet, funded by the master before the drop, while the liquidators'
    // top-ups and wallet-funded credit liquidations have not spent its coins yet (and before
    // the wallets' balances are read for the profit check, so its funding is no loss of theirs).
    let master = Wallet::from_mnemonic(mnemonic.expose(), &manifest.bech32_prefix, 0)?;
    let oracle = CaptureOracle::prepare(
        client.clone(),
        &scenario.chain_config(),
        (&manifest.contracts.red_bank, &manifest.contracts.oracle),
        mnemonic.expose(),
        &master,
        &borrowers,
    )
    .await
    .context("preparing the capture oracle")?;
    let credit_oracle = match (
        &manifest.contracts.credit_manager,
        &manifest.contracts.account_nft,
    ) {
        (Some(credit_manager), Some(account_nft)) if options.credit_accounts > 0 => Some(
            OracleAccount::prepare(
                &client,
                &scenario.chain_config(),
                (credit_manager, account_nft),
                (mnemonic.expose(), &master),
                &credit_ids,
            )
            .await
            .context("preparing the credit-account capture oracle")?,
        ),
        _ => None,
    };

    // The liquidators run before the drop, as they would: they arm what the health checkers
    // list (the wallets' balances are read first, for the profit check).
    let balances_before = wallet_balances(&client, &wallets).await?;
    // The liquidator instances.
    let dir = tempfile::tempdir()?;
    let csv = |instance: usize| dir.path().join(format!("attempts-{instance}.csv"));
    let mut runs = Vec::new();
    let mut stops = Vec::new();
    let mut registries = Vec::new();
    for instance in 0..options.instances {
        let registry = redline_liquidator::prometheus::Registry::new();
        registries.push(registry.clone());
        let args = LiquidatorArgs {
            workers: options.workers_per_instance,
            max_worker_slots: workers as u32,
            max_liquidations_per_tx: options.max_liquidations_per_tx,
            fetch_batch: options
                .fetch_batch
                .unwrap_or(LiquidatorArgs::default().fetch_batch),
            max_txs_in_flight: options
                .max_txs_in_flight
                .unwrap_or(LiquidatorArgs::default().max_txs_in_flight),
            csv: Some(csv(instance)),
            inclusion_timeout_ms: 10_000,
            wallet_slot_ttl_ms: 5_000,
            top_up_interval_ms: 500,
            top_up_debt_below_usd: Decimal::from_ratio(1_000_000u128, 1u128),
            top_up_debt_target_usd: Decimal::from_ratio(2_000_000u128, 1u128),
            // Only redline's own (pool-locked) swaps move the devnet's pools.
            credit_swap_margin: Decimal::zero(),
            no_credit_wallet_funding: !options.credit_wallet_funding,
            max_fee_share: options.max_fee_share,
            assumed_competition: options.assumed_competition,
            armed_accounts: options.armed_accounts,
            armed_below_hf: options.drop_reach(),
            ..LiquidatorArgs::default()
        };
        let mut queue = queue_config.clone();
        queue.queue_consumer = Some(format!("liquidator-{instance}"));
        let liquidator = Liquidator::new(
            client.clone(),
            scenario.chain_config(),
            manifest.clone(),
            queue,
            redis.clone(),
            registry.clone(),
            args.validate()?,
            mnemonic.clone(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        runs.push(tokio::spawn(liquidator.run(async move {
            let _ = stopped.await;
        })));
    }

    if options.candidates == Candidates::Pipeline {
        // As in a pipeline that has run for a while: the health checkers have written the
        // near-liquidation set and every liquidator instance has armed its accounts (up to a
        // minute, then the drop comes anyway).
        let near = redline_pipeline::near::NearKeys::new(
            &queue_config.queue_prefix,
            &manifest.chain_id,
            ProtocolKind::RedBank,
        );
        let mut conn = redis.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listed: u64 = redis::cmd("ZCOUNT")
                .arg(&near.all)
                .arg("-inf")
                .arg(format!("({}", options.drop_reach()))
                .query_async(&mut conn)
                .await?;
            let want = options.instances as u64 * listed.min(options.armed_accounts);
            if (listed > 0 && armed_gauges(&registries) >= want) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The price drop.
    let price = before_drop.prices.price(&options.drop_denom)?;
    let drop_height = scenario
        .node
        .chain()
        .set_prices(BTreeMap::from([(
            options.drop_denom.clone(),
            price * Decimal::percent(options.drop_to_percent),
        )]))
        .await?
        .map_err(|e| anyhow::anyhow!("moving the price: {e}"))?;
    while client.latest_height().await? < drop_height {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drop_seen = Instant::now();
    let after_drop = reader.latest().await?;
    let height = after_drop.height;
    let initial = profitable_plans(&after_drop, &positions, block_time, &fee)?;
    drop(positions);
    let liquidatable: BTreeSet<String> = initial.iter().map(|p| p.account.clone()).collect();
    let mut credit_watch = match (rover, &credit_before) {
        (Some(rover), Some(before)) => Some(
            CreditWatch::start(
                rover,
                credit_ids.clone(),
                FeeEstimate::from_manifest(&manifest, CREDIT_FEE_ESTIMATE_GAS)?,
                manifest
                    .contracts
                    .swapper
                    .clone()
                    .filter(|_| !options.credit_wallet_funding)
                    .map(|swapper| (client.clone(), swapper)),
                &after_drop,
                before,
            )
            .await?,
        ),
        _ => None,
    };
    drop(credit_before);

    // The stand-in health checker: every other block, queue every watched account that still
    // has a profitable plan; done when none has.
    let producer = PriorityQueue::<LiquidationCandidate>::connect(
        &QueueConfig {
            queue_consumer: Some("health-checker-stand-in".into()),
            ..queue_config.clone()
        },
        LIQUIDATION_QUEUE,
    )
    .await?;
    let mut watched: Vec<String> = liquidatable.iter().cloned().collect();
    let mut plans = initial;
    let mut plan_height = height;
    let mut producer_rounds = 0;
    let mut overdue = None;
    // Accounts on the `HF = LT·(1 + LB)` boundary can turn liquidatable a little later (rounding
    // moves with interest): once the watched ones are done, one full pass over every borrower
    // adds any such account to the watch, until a pass finds none.
    let mut full_passes = 0;
    let mut drop_to_done = None;
    let attempts_stream =
        KeySpace::new(&queue_config.queue_prefix, &manifest.chain_id).attempts_stream("attempts");
    let mut at_a_loss = BTreeSet::new();
    let credit_done =
        |watch: &Option<CreditWatch>| watch.as_ref().is_none_or(|w| w.left.is_empty());
    loop {
        if plans.is_empty() && credit_done(&credit_watch) {
            // The first time nothing watched is left: the drop's liquidations are done.
            drop_to_done.get_or_insert_with(|| drop_seen.elapsed());
            if full_passes >= 3 {
                break;
            }
            full_passes += 1;
            (plan_height, plans) = plannable(&reader, &borrowers, block_time, &fee).await?;
            plans.retain(|plan| !at_a_loss.contains(&plan.account));
            if let Some(watch) = credit_watch.as_mut() {
                watch.full_pass(&*reader.latest().await?).await?;
            }
            if plans.is_empty() && credit_done(&credit_watch) {
                break;
            }
            for plan in &plans {
                if !watched.contains(&plan.account) {
                    watched.push(plan.account.clone());
                }
            }
        }
        if started.elapsed() > options.deadline {
            let mut left: Vec<String> = plans.iter().map(|p| p.account.clone()).collect();
            left.extend(credit_watch.iter().flat_map(CreditWatch::left_names));
            overdue = Some(left);
            break;
        }
        if options.candidates == Candidates::StandIn {
            let jobs: Vec<LiquidationCandidate> = plans
                .iter()
                .map(|p| candidate(&manifest.chain_id, p, plan_height))
                .collect();
            producer.push(&jobs).await?;
            producer_rounds += 1;
        }
        // The stand-in queues every other block; watching the real pipeline is lighter.
        let pause = match options.candidates {
            Candidates::StandIn => block_time * 2,
            Candidates::Pipeline => block_time * 5,
        };
        tokio::time::sleep(pause).await;
        (plan_height, plans) = plannable(&reader, &watched, block_time, &fee).await?;
        // The estimated fee can be short of a lone tx's real one: an account the liquidator's
        // simulations found at a loss twice is not waited for (the capture oracle judges it).
        at_a_loss = found_at_a_loss(&redis, &attempts_stream).await?;
        plans.retain(|plan| !at_a_loss.contains(&plan.account));
        if let Some(watch) = credit_watch.as_mut() {
            watch.refresh(&*reader.latest().await?).await?;
        }
    }
    let drop_to_done = drop_to_done.unwrap_or_else(|| drop_seen.elapsed());
    let at_a_loss = found_at_a_loss(&redis, &attempts_stream).await?;
    let _ = watch_stop.send(true);
    let _ = watcher.await;
    let _ = pipeline_stop.send(true);
    for task in pipeline_tasks {
        let _ = task.await;
    }
    // Let in-flight work settle, then stop every instance.
    tokio::time::sleep(block_time * 3).await;
    for stop in stops {
        let _ = stop.send(());
    }
    let mut figures = Figures {
        candidates: Some(options.candidates),
        accounts: options.accounts,
        credit_accounts: options.credit_accounts,
        credit_wallet_funding: options.credit_wallet_funding,
        flavor: options.flavor,
        credit_liquidatable: credit_watch.as_ref().map_or(0, |w| w.targets.len()),
        drop_denom: options.drop_denom.clone(),
        drop_to_percent: options.drop_to_percent,
        instances: options.instances,
        max_liquidations_per_tx: options.max_liquidations_per_tx,
        borrowers: borrowers.len(),
        workers,
        fetch_batch: options
            .fetch_batch
            .unwrap_or(LiquidatorArgs::default().fetch_batch),
        max_txs_in_flight: options
            .max_txs_in_flight
            .unwrap_or(LiquidatorArgs::default().max_txs_in_flight),
        block_time,
        drop_height,
        armed: (options.armed_accounts, options.drop_reach()),
        liquidatable: liquidatable.len(),
        producer_rounds,
        initial_scan,
        drop_to_done,
        at_a_loss,
        ..Figures::default()
    };
    for run in runs {
        let summary = run.await.context("a liquidator instance panicked")??;
        figures.worker_slots.extend(summary.worker_slots);
        figures.treasurers += usize::from(summary.ran_treasurer);
    }

    // Records.
    let mut conn = redis.clone();
    let stream =
        KeySpace::new(&queue_config.queue_prefix, &manifest.chain_id).attempts_stream("attempts");
    let records: Vec<AttemptRecord> = read_records(&mut conn, &stream).await?;
    figures.records = records.len();
    let liquidations: Vec<&AttemptRecord> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Liquidated)
        .collect();
    figures.liquidations = liquidations.len();
    let liquidated: BTreeSet<&str> = liquidations.iter().map(|r| r.account.as_str()).collect();
    let contest = options
        .competitor
        .as_ref()
        .map(|_| scenario.contest(drop_height));
    figures.missed = liquidatable
        .iter()
        .filter(|a| !liquidated.contains(a.as_str()))
        .filter(|a| {
            contest
                .as_ref()
                .is_none_or(|c| !c.won_by_competitor.contains(*a))
        })
        .cloned()
        .collect();
    figures.credit_missed = credit_watch
        .iter()
        .flat_map(|w| w.targets.iter())
        .map(|id| format!("credit account {id}"))
        .filter(|a| !liquidated.contains(a.as_str()))
        .collect();
    let credit: Vec<&&AttemptRecord> = liquidations
        .iter()
        .filter(|r| r.protocol == ProtocolKind::Rover)
        .collect();
    figures.credit_liquidations = credit.len();
    figures.credit_from_wallet = credit
        .iter()
        .filter(|r| r.detail.contains(CREDIT_FROM_WALLET))
        .count();
    figures.credit_txs = credit
        .iter()
        .map(|r| r.tx_hash.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    for record in records.iter().filter(|r| {
        !matches!(
            r.outcome,
            Outcome::Liquidated | Outcome::CreditAccountOpened
        )
    }) {
        let last = format!("{}: {}", record.outcome, record.error);
        figures.last_refusal.insert(record.account.clone(), last);
        if record.protocol != ProtocolKind::Rover {
            continue;
        }
        let head = reason_head(&record.error);
        let reason = if head.is_empty() {
            record.outcome.to_string()
        } else {
            format!("{}: {head}", record.outcome)
        };
        *figures.credit_not_liquidated.entry(reason).or_default() += 1;
    }
    if let Some(overdue) = overdue {
        for account in overdue {
            let missed = if account.starts_with("credit account ") {
                &mut figures.credit_missed
            } else {
                &mut figures.missed
            };
            if !missed.contains(&account) {
                missed.push(account);
            }
        }
    }
    figures.txs = liquidations
        .iter()
        .map(|r| r.tx_hash.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    // A Red Bank liquidation repaying less than it sent refunds the rest: a plan off the
    // contract's cap. A credit-account liquidation borrows the debt and repays what the
    // contract did not use in the same tx, so its shortfall costs nothing.
    // Against a competitor, an account it liquidated first may be left with less to repay.
    let refunded_after_competitor = |r: &&&AttemptRecord| {
        contest
            .as_ref()
            .is_some_and(|c| c.competitor_liquidated_by(&r.account, r.height))
    };
    figures.refunds_after_competitor = liquidations
        .iter()
        .filter(|r| r.protocol == ProtocolKind::RedBank && r.debt_repaid < r.debt_sent)
        .filter(refunded_after_competitor)
        .count();
    figures.refunds = liquidations
        .iter()
        .filter(|r| r.protocol == ProtocolKind::RedBank && r.debt_repaid < r.debt_sent)
        .filter(|r| !refunded_after_competitor(r))
        .map(|r| {
            format!(
                "{} sent {}{} repaid {} (candidate height {}, included {})",
                r.account, r.debt_sent, r.debt_denom, r.debt_repaid, r.candidate_height, r.height
            )
        })
        .collect();
    figures.failures = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::CheckTxFailed | Outcome::DeliverTxFailed))
        .map(|r| format!("{} {} {}: {}", r.outcome, r.account, r.tx_hash, r.error))
        .collect();
    figures.sequence_or_gas_failures = records
        .iter()
        .filter(|r| {
            let e = r.error.to_lowercase();
            e.contains("wrongsequence")
                || e.contains("sequence mismatch")
                || e.contains("outofgas")
                || e.contains("out of gas")
        })
        .map(|r| format!("{} {}: {}", r.account, r.tx_hash, r.error))
        .collect();
    figures.expired_txs = records
        .iter()
        .filter(|r| r.outcome == Outcome::Expired)
        .map(|r| r.tx_hash.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    figures.refused_for_funds = records
        .iter()
        .filter(|r| {
            r.outcome == Outcome::NotSent
                && !r.tx_hash.is_empty()
                && r.error.contains("InsufficientFunds")
        })
        .map(|r| r.tx_hash.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    figures.top_ups = records
        .iter()
        .filter(|r| r.outcome == Outcome::TopUp)
        .count();

    // Each account at most once per block, from the blocks' own events: the Red Bank's
    // `liquidate` naming our wallets, the credit manager's liquidations from our wallets' own
    // credit accounts.
    let ours: BTreeSet<&str> = wallets.iter().map(String::as_str).collect();
    let own_accounts = match &manifest.contracts.credit_manager {
        Some(credit_manager) if options.credit_accounts > 0 => {
            credit::own_accounts(&client, credit_manager, &wallets).await?
        }
        _ => Vec::new(),
    };
    let own_ids: BTreeSet<String> = own_accounts.iter().map(|(_, id)| id.clone()).collect();
    let last_height = client.latest_height().await?;
    let mut on_chain: BTreeMap<(u64, String), usize> = BTreeMap::new();
    let mut failed_hashes: BTreeSet<String> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::CheckTxFailed | Outcome::DeliverTxFailed))
        .map(|r| r.tx_hash.clone())
        .collect();
    let mut block_times: BTreeMap<u64, u64> = BTreeMap::new();
    for h in drop_height..=last_height {
        let block = client.block_results(h).await?;
        block_times.insert(h, block.time.nanos() / 1_000_000);
        // A tx of ours that failed in a block: its fee payer (the ante's `coin_spent`) is one
        // of our wallets.
        for tx in block.txs.iter().filter(|t| !t.is_success()) {
            let payer = tx
                .events_of("coin_spent")
                .filter_map(|e| e.attribute("spender"))
                .next();
            if payer.is_some_and(|p| ours.contains(p)) {
                figures.failed_on_chain += 1;
                figures.failures.push(format!(
                    "failed in block {h}: tx {} code {} ({}): {}",
                    tx.hash, tx.code, tx.codespace, tx.log
                ));
                failed_hashes.insert(tx.hash.to_string());
            }
        }
        for tx in block.txs.iter().filter(|t| t.is_success()) {
            for event in tx.events_of("wasm") {
                if event.attribute("action") == Some("liquidate")
                    && event
                        .attribute("liquidator")
                        .is_some_and(|l| ours.contains(l))
                {
                    let user = event.attribute("user").unwrap_or_default().to_string();
                    *on_chain.entry((h, user)).or_default() += 1;
                }
            }
            for account in credit::liquidated_in(tx.events_of("wasm"), &own_ids) {
                *on_chain.entry((h, account)).or_default() += 1;
            }
        }
    }
    figures.failed_txs = failed_hashes.len();
    figures.liquidations_on_chain = on_chain.values().sum();
    if let (Some(drop_ms), Some(last_ms)) = (
        block_times.get(&drop_height),
        on_chain
            .keys()
            .map(|(h, _)| *h)
            .max()
            .and_then(|h| block_times.get(&h)),
    ) {
        figures.drop_to_last_liquidation = Duration::from_millis(last_ms.saturating_sub(*drop_ms));
    }
    figures.twice_in_a_block = on_chain
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((h, a), n)| (h, a, n))
        .collect();

    // Nothing left that the contract would let anyone liquidate at a profit, by the chain's
    // own simulations (the oracle's wallet was funded before the drop).
    reader.invalidate().await;
    let snapshot = reader.latest().await?;
    let balances_after = wallet_balances(&client, &wallets).await?;
    figures.capture = oracle
        .judge(&borrowers)
        .await
        .context("the capture oracle")?;
    if let (Some(credit_manager), Some(account)) =
        (manifest.contracts.credit_manager.as_deref(), credit_oracle)
    {
        figures.own_credit_accounts = own_accounts.len();
        figures.own_accounts_left =
            credit::left_in_own_accounts(&client, credit_manager, &own_accounts).await?;
        let oracle = CreditOracle::new(
            client.clone(),
            &scenario.chain_config(),
            (
                (credit_manager, &manifest.contracts.oracle),
                manifest.health_query,
            ),
            account,
        )
        .await?;
        figures.credit_capture = oracle
            .judge(&credit_ids)
            .await
            .context("the credit-account capture oracle")?;
    }

    // Profits: the stream, the CSV files and the wallets' value change.
    let keys: BTreeSet<&(String, String)> = balances_before
        .keys()
        .chain(balances_after.keys())
        .collect();
    for key in keys {
        figures.balance_change += snapshot.prices.value_of_change(
            &key.1,
            balances_before.get(key).copied().unwrap_or_default(),
            balances_after.get(key).copied().unwrap_or_default(),
        )?;
    }
    figures.recorded_profit = records
        .iter()
        .map(|r| r.profit_value)
        .fold(Value::zero(), |a, b| a + b);
    figures.profit_usd = snapshot.prices.to_usd(figures.recorded_profit);
    for instance in 0..options.instances {
        let text = std::fs::read_to_string(csv(instance))?;
        let mut lines = text.lines();
        let header = parse_csv_line(lines.next().context("CSV header")?);
        let column = header
            .iter()
            .position(|c| c == "profit_value")
            .context("CSV has no profit_value column")?;
        for line in lines {
            let fields = parse_csv_line(line);
            figures.csv_profit += fields
                .get(column)
                .and_then(|v| parse_value(v))
                .with_context(|| format!("CSV row without a profit value: {line}"))?;
            figures.csv_rows += 1;
        }
    }

    // Latencies.
    let mut first_inclusion: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &liquidations {
        let first = first_inclusion
            .entry(r.account.as_str())
            .or_insert(r.height);
        *first = (*first).min(r.height);
    }
    for (account, first) in &first_inclusion {
        let blocks = first.saturating_sub(drop_height);
        if account.starts_with("credit account ") {
            figures.credit_blocks_from_drop.push(blocks);
        } else {
            figures.blocks_from_drop.push(blocks);
        }
    }
    figures.blocks_from_drop.sort();
    figures.credit_blocks_from_drop.sort();
    {
        let first_queued = first_queued.lock().unwrap_or_else(|p| p.into_inner());
        for (account, included) in &first_inclusion {
            let Some((queued_height, queued_at)) = first_queued.get(*account) else {
                continue;
            };
            figures
                .blocks_drop_to_queued
                .push(queued_height.saturating_sub(drop_height));
            figures.ms_drop_to_queued.push(
                queued_at
                    .checked_duration_since(drop_seen)
                    .unwrap_or_default()
                    .as_millis() as u64,
            );
            figures
                .blocks_queued_to_inclusion
                .push(included.saturating_sub(*queued_height));
        }
    }
    {
        let mut per_block: BTreeMap<u64, (BTreeSet<&str>, usize)> = BTreeMap::new();
        for r in &liquidations {
            let entry = per_block.entry(r.height).or_default();
            entry.0.insert(r.tx_hash.as_str());
            entry.1 += 1;
        }
        figures.per_block = per_block
            .into_iter()
            .map(|(h, (txs, n))| (h.saturating_sub(drop_height), txs.len(), n))
            .collect();
    }
    figures.blocks_drop_to_queued.sort();
    figures.ms_drop_to_queued.sort();
    figures.blocks_queued_to_inclusion.sort();
    figures.blocks_from_candidate = liquidations
        .iter()
        .map(|r| r.height.saturating_sub(r.candidate_height))
        .collect();
    figures.blocks_from_candidate.sort();
    figures.job_to_broadcast_ms = liquidations
        .iter()
        .filter_map(|r| r.job_to_broadcast_ms)
        .collect();
    figures.job_to_broadcast_ms.sort();
    for record in &liquidations {
        let (Some(job_ms), Some(broadcast_ms)) =
            (record.job_to_broadcast_ms, record.broadcast_at_ms)
        else {
            continue;
        };
        let taken_ms = unix_ms(record.started_at);
        let in_worker = broadcast_ms.saturating_sub(taken_ms);
        figures.taken_to_broadcast_ms.push(in_worker);
        figures.queue_wait_ms.push(job_ms.saturating_sub(in_worker));
    }
    figures.taken_to_broadcast_ms.sort();
    figures.queue_wait_ms.sort();
    figures.block_to_broadcast_ms = liquidations
        .iter()
        .filter_map(|r| {
            let block_ms = block_times.get(&r.candidate_height)?;
            Some(r.broadcast_at_ms?.saturating_sub(*block_ms))
        })
        .collect();
    figures.block_to_broadcast_ms.sort();
    figures.armed_block_to_broadcast_ms = liquidations
        .iter()
        .filter(|r| r.detail == redline_liquidator::worker::ARMED_DETAIL)
        .filter_map(|r| {
            let block_ms = block_times.get(&r.candidate_height)?;
            Some(r.broadcast_at_ms?.saturating_sub(*block_ms))
        })
        .collect();
    figures.armed_block_to_broadcast_ms.sort();
    if let (Some(config), Some(contest)) = (&options.competitor, contest) {
        let mut fees_usd = Value::zero();
        for record in &records {
            if let Some((amount, denom)) = split_coin(&record.fee) {
                fees_usd += snapshot
                    .prices
                    .to_usd(snapshot.prices.value(denom, amount)?);
            }
        }
        figures.contest = Some(ContestFigures {
            style: config.style,
            delay_ms: config.delay.as_millis() as u64,
            price_multiple: config.price_multiple,
            max_fee_share: options.max_fee_share,
            assumed_competition: options.assumed_competition,
            contest,
            fees_usd,
        });
    }
    figures.total = started.elapsed();
    scenario.shutdown().await;
    Ok(figures)
}

/// `1234uosmo` as its amount and denom.
fn split_coin(coin: &str) -> Option<(Uint128, &str)> {
    let digits = coin.find(|c: char| !c.is_ascii_digit())?;
    let (amount, denom) = coin.split_at(digits);
    Some((amount.parse().ok()?, denom))
}

/// The start of an attempt's error, up to its first figure: what kind of reason it is.
fn reason_head(error: &str) -> String {
    let head: String = error
        .chars()
        .take_while(|c| !c.is_ascii_digit())
        .take(80)
        .collect();
    head.trim()
        .trim_end_matches([':', '(', ','])
        .trim()
        .to_string()
}
