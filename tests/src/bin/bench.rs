//! `make bench`: measures the health-check pipeline and writes `BENCHMARKS.md` (see
//! `redline_tests::bench`). Build it in release mode; a debug build measures the wrong thing.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use redline_tests::bench::{self, Options};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmarks the health checker and the liquidator and writes BENCHMARKS.md"
)]
struct Cli {
    /// Where to write the report.
    #[arg(long, env = "BENCH_OUTPUT", default_value = "BENCHMARKS.md")]
    output: PathBuf,
    /// Devnet sizes to measure (borrowers seeded), comma-separated.
    #[arg(
        long,
        env = "BENCH_DEVNET_ACCOUNTS",
        value_delimiter = ',',
        default_value = "10000,100000"
    )]
    devnet_accounts: Vec<usize>,
    /// Generated positions for the off-chain-only case (0 skips it).
    #[arg(long, env = "BENCH_SYNTHETIC_ACCOUNTS", default_value_t = 1_000_000)]
    synthetic_accounts: u64,
    /// On-chain baseline: devnets with more than twice this many debtors are sampled with this
    /// many accounts and extrapolated.
    #[arg(long, env = "BENCH_ONCHAIN_SAMPLE", default_value_t = 2_000)]
    onchain_sample: u64,
    /// Off-chain runs per case; the median is reported.
    #[arg(long, env = "BENCH_REPEATS", default_value_t = 3)]
    repeats: usize,
    /// On-chain runs per devnet; the median is reported.
    #[arg(long, env = "BENCH_ONCHAIN_REPEATS", default_value_t = 3)]
    onchain_repeats: usize,
    /// Accounts per health-check job.
    #[arg(long, env = "BENCH_JOB_SIZE", default_value_t = 5_000)]
    job_size: u64,
    /// Health-checker workers (jobs in progress at once). Default: the number of CPUs.
    #[arg(long, env = "BENCH_WORKERS")]
    workers: Option<usize>,
    /// Threads one off-chain job is split across. Default: the number of CPUs.
    #[arg(long, env = "BENCH_COMPUTE_THREADS")]
    compute_threads: Option<usize>,
    /// Liquidation benchmark: borrowers seeded before the price drop (0 skips it).
    #[arg(long, env = "BENCH_LIQUIDATION_ACCOUNTS", default_value_t = 10_000)]
    liquidation_accounts: usize,
    /// On-chain baseline: queries in flight at once.
    #[arg(long, env = "BENCH_ONCHAIN_CONCURRENCY", default_value_t = 32)]
    onchain_concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(cli.repeats >= 1, "--repeats must be at least 1");
    anyhow::ensure!(cli.job_size >= 1, "--job-size must be at least 1");
    anyhow::ensure!(
        cli.onchain_concurrency >= 1,
        "--onchain-concurrency must be at least 1"
    );
    if cfg!(debug_assertions) {
        eprintln!("[bench] warning: a debug build; `make bench` builds in release mode");
    }
    let defaults = Options::default();
    let options = Options {
        workers: cli.workers.unwrap_or(defaults.workers).max(1),
        compute_threads: cli
            .compute_threads
            .unwrap_or(defaults.compute_threads)
            .max(1),
        devnet_accounts: cli.devnet_accounts,
        synthetic_accounts: cli.synthetic_accounts,
        onchain_sample: cli.onchain_sample,
        repeats: cli.repeats,
        onchain_repeats: cli.onchain_repeats.max(1),
        job_size: cli.job_size,
        onchain_concurrency: cli.onchain_concurrency,
        ..defaults
    };
    let report = bench::run(&options).await?;
    let mut markdown = report.markdown();
    if cli.liquidation_accounts > 0 {
        let liquidation = bench::liquidation::Options {
            accounts: cli.liquidation_accounts,
            ..Default::default()
        };
        eprintln!(
            "[bench] liquidation: {} accounts, {}% price drop on {}",
            liquidation.accounts,
            100 - liquidation.drop_to_percent,
            liquidation.drop_denom
        );
        let figures = bench::liquidation::run(&liquidation)
            .await
            .context("liquidation benchmark")?;
        eprintln!("[bench] {}", figures.summary());
        markdown.push('\n');
        markdown.push_str(&figures.markdown());
    }
    std::fs::write(&cli.output, &markdown)
        .with_context(|| format!("writing {}", cli.output.display()))?;
    println!("{markdown}");
    eprintln!("[bench] wrote {}", cli.output.display());
    Ok(())
}
