//! redline health-checker: computes the health of every indexed account at every block and
//! queues the liquidatable ones, most profitable first.
//!
//! - [`compute`]: index entries + the block's snapshot → health, with the contract's math;
//! - [`credit`]: credit-account (Rover) health and plans from the credit book;
//! - [`profit`]: the most profitable liquidation of a liquidatable account;
//! - [`onchain`]: the baseline that asks the chain (`user_position`) instead;
//! - [`output`]: the liquidation priority queue and the near-liquidation set;
//! - [`worker`]: the job loop (queue → index → health → outputs → ack);
//! - [`metrics`]: Prometheus metrics.

pub mod compute;
pub mod credit;
pub mod metrics;
pub mod onchain;
pub mod output;
pub mod profit;
pub mod worker;

pub use compute::{AccountHealth, BlockContext, Skip, SkipReason};
pub use output::{OutputConfig, Outputs};
pub use profit::ProfitConfig;
pub use worker::{HealthChecker, HealthSource, JobOutcome, JobReport, OnchainSource, WorkerConfig};

#[cfg(test)]
mod flags {
    use clap::Parser;
    use cosmwasm_std::Decimal;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        worker: crate::WorkerConfig,
        #[command(flatten)]
        onchain: crate::onchain::OnchainConfig,
        #[command(flatten)]
        output: crate::OutputConfig,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("health-checker").chain(args.iter().copied()))
    }

    #[test]
    fn bad_values_are_refused_when_parsed() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.output.watch_threshold, Decimal::percent(105));
        assert_eq!(defaults.worker.snapshot_cache_blocks, 8);
        assert_eq!(defaults.onchain.onchain_concurrency, 32);
        assert_eq!(
            parse(&["--watch-threshold", "1"])
                .unwrap()
                .output
                .watch_threshold,
            Decimal::one()
        );
        for bad in [
            ["--workers", "0"],
            ["--compute-threads", "0"],
            ["--snapshot-cache-blocks", "0"],
            ["--onchain-concurrency", "0"],
            ["--onchain-concurrency", "10001"],
            ["--watch-threshold", "0.99"],
            ["--watch-threshold", "one"],
        ] {
            let error = parse(&bad).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
    }
}
