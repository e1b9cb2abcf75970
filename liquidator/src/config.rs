//! The liquidator's own flags (the shared service, chain, queue, metrics and mnemonic flags
//! come from `redline_service`), validated once at start into a [`LiquidatorConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cosmwasm_std::{Decimal, Uint128};
use redline_service::config::ConfigError;

use crate::tx_sender;
use crate::wallets::TopUpPolicy;

fn flag(flag: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        problem: problem.into(),
    }
}

fn decimal(text: &str) -> Result<Decimal, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a non-negative decimal number"))
}

/// A share of something, in [0, 1).
fn fraction(text: &str) -> Result<Decimal, String> {
    let value = decimal(text)?;
    if value >= Decimal::one() {
        return Err(format!("{value} is not in [0, 1)"));
    }
    Ok(value)
}

fn share(text: &str) -> Result<Decimal, String> {
    let value = decimal(text)?;
    if value > Decimal::one() {
        return Err(format!("{value} is not in [0, 1]"));
    }
    Ok(value)
}

/// A health factor above 1.
fn above_one(text: &str) -> Result<Decimal, String> {
    let value = decimal(text)?;
    if value <= Decimal::one() {
        return Err(format!("{value} is not above 1"));
    }
    Ok(value)
}

fn gas_adjustment(text: &str) -> Result<Decimal, String> {
    let value = decimal(text)?;
    if value < Decimal::one() || value > Decimal::percent(1_000) {
        return Err(format!(
            "{value} is not in [1, 10] (below 1 every tx runs out of gas)"
        ));
    }
    Ok(value)
}

fn gas_price_headroom(text: &str) -> Result<Decimal, String> {
    let value = decimal(text)?;
    if value < Decimal::one() || value > Decimal::percent(1_000) {
        return Err(format!(
            "{value} is not in [1, 10] (below 1 a tx pays less than the fee market's price)"
        ));
    }
    Ok(value)
}

/// The name ends up in a Redis key, where whitespace would be a trap for every reader.
fn stream_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err("must be a non-empty name without whitespace".into());
    }
    Ok(text.to_string())
}

fn usize_in(range: std::ops::RangeInclusive<u64>) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(range)
}

#[derive(Debug, Clone, Args)]
pub struct LiquidatorArgs {
    /// Workers in this process; each signs with its own wallet (a leased slot).
    #[arg(long, env = "LIQUIDATOR_WORKERS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// Highest wallet slot a worker may lease (m/44'/118'/0'/0/1..=N; slot 0 is the master).
    #[arg(long, env = "MAX_WORKER_SLOTS", default_value_t = 64)]
    pub max_worker_slots: u32,
    /// Most accounts liquidated in one tx.
    #[arg(long, env = "MAX_LIQUIDATIONS_PER_TX", default_value_t = 4, value_parser = usize_in(1..=32))]
    pub max_liquidations_per_tx: usize,
    /// Candidates taken from the queue at once (planned together, sent in txs of at most
    /// --max-liquidations-per-tx and broadcast back to back, up to --max-txs-in-flight): stale
    /// ones then cost no extra round, and a price drop's backlog clears in fewer blocks.
    #[arg(long, env = "FETCH_BATCH", default_value_t = 128, value_parser = usize_in(1..=1_000))]
    pub fetch_batch: usize,
    /// Txs of one wallet broadcast and not yet included, at most. More lets one block take more
    /// of a backlog; each costs a fee up front, so a wallet needs fees for all of them.
    #[arg(long, env = "MAX_TXS_IN_FLIGHT", default_value_t = 64, value_parser = usize_in(1..=256))]
    pub max_txs_in_flight: usize,
    /// Gas limit = simulated gas × this.
    #[arg(long, env = "GAS_ADJUSTMENT", default_value = "1.3", value_parser = gas_adjustment)]
    pub gas_adjustment: Decimal,
    /// On a chain with a fee market (the manifest's `fee.market`), txs are signed at its base
    /// gas price (read at most every half block) times this, never below `fee.gas_price`: the
    /// base price may rise between the reading and the block that delivers the tx.
    #[arg(long, env = "GAS_PRICE_HEADROOM", default_value = "1.2", value_parser = gas_price_headroom)]
    pub gas_price_headroom: Decimal,
    /// Skip liquidations whose profit after tx fees is below this many USD.
    #[arg(long, env = "MIN_PROFIT_USD", default_value = "0", value_parser = decimal)]
    pub min_profit_usd: Decimal,
    /// The largest share of a liquidation's expected profit its tx may pay in fees to get ahead
    /// of other bots in the block (0, the default: bidding off, txs pay the market's price).
    /// Nothing extra is paid until competition shows (a liquidation lost to another bot in the
    /// last 20 blocks, or one tried again); each sign of it then quadruples the tx's fee, up to
    /// this share, and the profit after fees never falls below `--min-profit-usd`. Where the
    /// fee denom is also lent (Neutron's untrn), bids draw on the same balance as repayments:
    /// keep `--fee-reserve-gas` large enough for them.
    #[arg(long, env = "MAX_FEE_SHARE", default_value = "0", value_parser = share)]
    pub max_fee_share: Decimal,
    /// Signs of competition to assume before any is seen, with `--max-fee-share` above 0 (0,
    /// the default: bid only once a race is lost or a liquidation is tried again). Against a
    /// bot known to tip on every liquidation, 1 makes a first try bid four times the market's
    /// fee (within the share), as after one race lost.
    #[arg(long, env = "ASSUMED_COMPETITION", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub assumed_competition: u32,
    /// Red Bank accounts whose positions each liquidator process keeps read ahead: the lowest
    /// of the health checkers' near-liquidation set, below `--armed-below-hf`. When a block's
    /// prices make one liquidatable, the process queues it as the block comes, ahead of the
    /// health checkers (the worker re-checks it on chain as any candidate). 0 arms none.
    #[arg(long, env = "ARMED_ACCOUNTS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub armed_accounts: u64,
    /// The health factor under which a near-liquidation account is armed (the health checkers'
    /// `--watch-threshold` bounds the set it is taken from).
    #[arg(long, env = "ARMED_BELOW_HF", default_value = "1.05", value_parser = above_one)]
    pub armed_below_hf: Decimal,
    /// How far a credit-account liquidation's swap pool may move against it between its
    /// simulation and its block, as a share of the swap's proceeds: a liquidation whose swap
    /// would then no longer repay the borrow is not sent (its tx would fail the credit
    /// manager's health check on the worker's own account, fee burnt). Redline's own swaps
    /// through a pool never meet in one block (pool locks), so this covers other traders only;
    /// 0 trusts the simulation.
    #[arg(long, env = "CREDIT_SWAP_MARGIN", default_value = "0.005", value_parser = fraction)]
    pub credit_swap_margin: Decimal,
    /// Never fund a credit-account liquidation from the wallet. By default, when no swap pool
    /// would turn the seized collateral into the borrow it must repay, the wallet sends the
    /// debt coin instead (deposit, liquidate, refund: no swap) if it holds enough, and the
    /// rebalancer sells the collateral later within `--max-slippage`.
    #[arg(long, env = "NO_CREDIT_WALLET_FUNDING")]
    pub no_credit_wallet_funding: bool,
    /// Do everything but broadcast; log the tx that would be sent.
    #[arg(long, env = "DRY_RUN")]
    pub dry_run: bool,
    /// Also append every attempt to this CSV file (one file per process).
    #[arg(long, env = "LIQUIDATIONS_CSV")]
    pub csv: Option<PathBuf>,
    /// How long to wait for a broadcast tx to be included, in milliseconds.
    #[arg(long, env = "INCLUSION_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub inclusion_timeout_ms: u64,
    /// How long a tx whose inclusion was not seen blocks its wallet before it is presumed
    /// dropped (its sequence is then reused, so it can never execute twice), in milliseconds.
    /// A tx with a timeout height settles as soon as the chain passes it.
    #[arg(long, env = "UNRESOLVED_GRACE_MS", default_value_t = 120_000)]
    pub unresolved_grace_ms: u64,
    /// Txs carry a timeout height this many blocks past the chain's latest height (read at
    /// most half a block before): a tx that misses those blocks (full blocks, a fee market
    /// whose price rose past its fee) is known dead then, its accounts are tried again and its
    /// wallet moves on. 0: no timeout height (such a tx blocks its wallet for the grace).
    #[arg(long, env = "TX_TIMEOUT_BLOCKS", default_value_t = tx_sender::DEFAULT_TIMEOUT_BLOCKS)]
    pub tx_timeout_blocks: u64,
    /// Lifetime of a per-account lock if its worker dies, in milliseconds (default: the
    /// inclusion timeout + 10 s).
    #[arg(long, env = "ACCOUNT_LOCK_TTL_MS")]
    pub account_lock_ttl_ms: Option<u64>,
    /// Lifetime of a wallet slot lease if its worker dies, in milliseconds (renewed every
    /// third of it).
    #[arg(long, env = "WALLET_SLOT_TTL_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1_000..))]
    pub wallet_slot_ttl_ms: u64,
    /// Name of the Redis stream attempts are recorded to
    /// (`<queue prefix>:liquidator:<chain id>:<name>`).
    #[arg(long, env = "ATTEMPTS_STREAM", default_value = "attempts", value_parser = stream_name)]
    pub attempts_stream: String,
    /// Approximate cap on the attempts stream's length.
    #[arg(long, env = "ATTEMPTS_STREAM_MAX_LEN", default_value_t = 1_000_000)]
    pub attempts_stream_max_len: u64,
    /// Decimals of the oracle's base denom (default: from the manifest's denoms).
    #[arg(long, env = "BASE_DECIMALS", value_parser = clap::value_parser!(u32).range(..=30))]
    pub base_decimals: Option<u32>,
    /// Do not top up worker wallets from the master wallet (slot 0).
    #[arg(long, env = "NO_TOP_UP")]
    pub no_top_up: bool,
    /// Top up a worker's fee denom when it holds less than this (base units).
    #[arg(long, env = "TOP_UP_FEE_BELOW", default_value_t = 1_000_000)]
    pub top_up_fee_below: u128,
    /// Fee denom sent per top-up (base units).
    #[arg(long, env = "TOP_UP_FEE_AMOUNT", default_value_t = 10_000_000)]
    pub top_up_fee_amount: u128,
    /// Top up a debt denom when a worker holds less than this many USD of it (0: never).
    #[arg(long, env = "TOP_UP_DEBT_BELOW_USD", default_value = "100", value_parser = decimal)]
    pub top_up_debt_below_usd: Decimal,
    /// ... back to this many USD.
    #[arg(long, env = "TOP_UP_DEBT_TARGET_USD", default_value = "1000", value_parser = decimal)]
    pub top_up_debt_target_usd: Decimal,
    /// How often the master checks worker balances, in milliseconds.
    #[arg(long, env = "TOP_UP_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub top_up_interval_ms: u64,
    /// Gas worth of the fee denom never spent on repayments (kept for fees).
    #[arg(long, env = "FEE_RESERVE_GAS", default_value_t = 5_000_000)]
    pub fee_reserve_gas: u64,
    /// How often each wallet's balances are read and published (Redis hash
    /// `<queue prefix>:liquidator:<chain id>:wallets`, metric `liquidator_wallet_balance`,
    /// `/health`), in milliseconds; a wallet is also read right after each of its txs.
    #[arg(long, env = "BALANCE_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub balance_interval_ms: u64,
}

impl Default for LiquidatorArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: LiquidatorArgs,
        }
        Only::parse_from(["liquidator"]).args
    }
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidatorConfig {
    pub workers: u32,
    pub max_worker_slots: u32,
    pub max_liquidations_per_tx: usize,
    pub fetch_batch: usize,
    pub max_txs_in_flight: usize,
    pub gas_adjustment: Decimal,
    pub gas_price_headroom: Decimal,
    pub min_profit_usd: Decimal,
    pub max_fee_share: Decimal,
    pub assumed_competition: u32,
    pub armed: crate::armed::ArmedConfig,
    pub dry_run: bool,
    pub csv: Option<PathBuf>,
    pub inclusion_timeout: Duration,
    pub unresolved_grace: Duration,
    pub tx_timeout_blocks: Option<u64>,
    pub account_lock_ttl: Duration,
    pub wallet_slot_ttl: Duration,
    pub attempts_stream: String,
    pub attempts_stream_max_len: u64,
    pub base_decimals: Option<u32>,
    pub top_up: Option<TopUpPolicy>,
    pub fee_reserve_gas: u64,
    pub balance_interval: Duration,
    /// Loss accepted when a credit-account liquidation swaps its seized collateral: the
    /// rebalancer's `--max-slippage` (set from it by the binary; 1% unless set).
    pub max_slippage: Decimal,
    pub credit_swap_margin: Decimal,
    /// Whether a credit-account liquidation whose swap would not repay a borrow may be funded
    /// from the wallet (`--no-credit-wallet-funding` unset).
    pub credit_wallet_funding: bool,
}

impl LiquidatorArgs {
    /// Checks what spans several flags (clap checks each flag alone); the error names the flag
    /// to change.
    pub fn validate(&self) -> Result<LiquidatorConfig, ConfigError> {
        if self.max_worker_slots < self.workers {
            return Err(flag(
                "--max-worker-slots",
                format!(
                    "{} is fewer than --workers {}",
                    self.max_worker_slots, self.workers
                ),
            ));
        }
        let inclusion_timeout = Duration::from_millis(self.inclusion_timeout_ms);
        let account_lock_ttl = Duration::from_millis(
            self.account_lock_ttl_ms
                .unwrap_or(self.inclusion_timeout_ms + 10_000),
        );
        if account_lock_ttl <= inclusion_timeout {
            return Err(flag(
                "--account-lock-ttl-ms",
                format!(
                    "{} ms must exceed --inclusion-timeout-ms {} (a lock must outlive the wait for its tx)",
                    account_lock_ttl.as_millis(),
                    self.inclusion_timeout_ms
                ),
            ));
        }
        Ok(LiquidatorConfig {
            workers: self.workers,
            max_worker_slots: self.max_worker_slots,
            max_liquidations_per_tx: self.max_liquidations_per_tx,
            fetch_batch: self.fetch_batch,
            max_txs_in_flight: self.max_txs_in_flight,
            gas_adjustment: self.gas_adjustment,
            gas_price_headroom: self.gas_price_headroom,
            min_profit_usd: self.min_profit_usd,
            max_fee_share: self.max_fee_share,
            assumed_competition: self.assumed_competition,
            armed: crate::armed::ArmedConfig {
                accounts: self.armed_accounts as usize,
                below_hf: self.armed_below_hf,
            },
            dry_run: self.dry_run,
            csv: self.csv.clone(),
            inclusion_timeout,
            unresolved_grace: Duration::from_millis(self.unresolved_grace_ms),
            tx_timeout_blocks: (self.tx_timeout_blocks > 0).then_some(self.tx_timeout_blocks),
            account_lock_ttl,
            wallet_slot_ttl: Duration::from_millis(self.wallet_slot_ttl_ms),
            attempts_stream: self.attempts_stream.clone(),
            attempts_stream_max_len: self.attempts_stream_max_len,
            base_decimals: self.base_decimals,
            top_up: self.top_up_policy()?,
            fee_reserve_gas: self.fee_reserve_gas,
            balance_interval: Duration::from_millis(self.balance_interval_ms),
            max_slippage: Decimal::percent(1),
            credit_swap_margin: self.credit_swap_margin,
            credit_wallet_funding: !self.no_credit_wallet_funding,
        })
    }

    fn top_up_policy(&self) -> Result<Option<TopUpPolicy>, ConfigError> {
        if self.no_top_up {
            return Ok(None);
        }
        let (below, target) = (self.top_up_debt_below_usd, self.top_up_debt_target_usd);
        if target < below {
            return Err(flag(
                "--top-up-debt-target-usd",
                format!("{target} is below --top-up-debt-below-usd {below}"),
            ));
        }
        Ok(Some(TopUpPolicy {
            fee_below: Uint128::new(self.top_up_fee_below),
            fee_amount: Uint128::new(self.top_up_fee_amount),
            debt_below_usd: below,
            debt_target_usd: target,
            interval: Duration::from_millis(self.top_up_interval_ms),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LiquidatorArgs,
    }

    fn parse(flags: &[&str]) -> Result<LiquidatorConfig, String> {
        let mut argv = vec!["liquidator"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .args
            .validate()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.max_liquidations_per_tx, 4);
        assert_eq!(config.gas_adjustment, Decimal::percent(130));
        assert_eq!(config.account_lock_ttl, Duration::from_secs(40));
        assert!(config.top_up.is_some());
        assert!(!config.dry_run);
        assert_eq!(config.credit_swap_margin, Decimal::permille(5));
        assert!(config.credit_wallet_funding);
        assert_eq!(LiquidatorArgs::default().validate().unwrap(), config);
    }

    #[test]
    fn bad_flags_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--workers", "0"], "--workers"),
            (
                &["--workers", "5", "--max-worker-slots", "4"],
                "--max-worker-slots",
            ),
            (
                &["--max-liquidations-per-tx", "0"],
                "--max-liquidations-per-tx",
            ),
            (&["--fetch-batch", "1001"], "--fetch-batch"),
            (&["--credit-swap-margin", "1"], "--credit-swap-margin"),
            (&["--credit-swap-margin=-0.1"], "--credit-swap-margin"),
            (&["--max-txs-in-flight", "0"], "--max-txs-in-flight"),
            (&["--base-decimals", "31"], "--base-decimals"),
            (&["--top-up-interval-ms", "0"], "--top-up-interval-ms"),
            (&["--gas-adjustment", "0.9"], "--gas-adjustment"),
            (&["--gas-adjustment", "lots"], "--gas-adjustment"),
            (&["--min-profit-usd=-1"], "--min-profit-usd"),
            (&["--inclusion-timeout-ms", "0"], "--inclusion-timeout-ms"),
            (&["--account-lock-ttl-ms", "1000"], "--account-lock-ttl-ms"),
            (&["--wallet-slot-ttl-ms", "10"], "--wallet-slot-ttl-ms"),
            (&["--attempts-stream", "a b"], "--attempts-stream"),
            (&["--balance-interval-ms", "5"], "--balance-interval-ms"),
            (
                &[
                    "--top-up-debt-below-usd",
                    "10",
                    "--top-up-debt-target-usd",
                    "5",
                ],
                "--top-up-debt-target-usd",
            ),
        ];
        for (flags, named) in cases {
            let err = parse(flags).unwrap_err();
            assert!(err.contains(named), "{flags:?}: {err}");
        }
        assert!(parse(&["--no-top-up"]).unwrap().top_up.is_none());
    }
}
