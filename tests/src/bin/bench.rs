//! `make bench`: measures the health-check pipeline and writes `BENCHMARKS.md` (see
//! `redline_tests::bench`). Build it in release mode; a debug build measures the wrong thing.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use redline_devnet::flavor::Flavor;
use redline_tests::bench::{self, Options};

/// One part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Health checks per second (devnets, generated positions, on-chain baseline).
    Health,
    /// The price drop liquidated by the real pipeline.
    Liquidation,
    /// The same against the devnet's competing bot.
    Contested,
}

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
    /// Liquidation benchmark: candidates each liquidator worker takes per step (its
    /// `--fetch-batch`). Default: the liquidator's default.
    #[arg(long, env = "BENCH_LIQUIDATION_FETCH_BATCH")]
    liquidation_fetch_batch: Option<usize>,
    /// Liquidation benchmark: txs per wallet in flight (its `--max-txs-in-flight`). Default:
    /// the liquidator's default.
    #[arg(long, env = "BENCH_LIQUIDATION_MAX_TXS_IN_FLIGHT")]
    liquidation_max_txs_in_flight: Option<usize>,
    /// Liquidation benchmark: the devnet block intervals to run it at, in milliseconds,
    /// comma-separated (one report section each). 200 ms compresses time; 1000 ms is close to
    /// Neutron's and Osmosis's blocks.
    #[arg(
        long,
        env = "BENCH_LIQUIDATION_BLOCK_MS",
        value_delimiter = ',',
        default_value = "200,1000"
    )]
    liquidation_block_ms: Vec<u64>,
    /// Credit-account liquidation benchmark: Rover credit accounts seeded beside
    /// `--liquidation-accounts` borrowers before the same price drop (0 skips it).
    #[arg(
        long,
        env = "BENCH_CREDIT_LIQUIDATION_ACCOUNTS",
        default_value_t = 5_000
    )]
    credit_liquidation_accounts: usize,
    /// Credit-account liquidation benchmark: the devnet block interval, in milliseconds (the
    /// interval the liquidation row's enforced latency target is set for).
    #[arg(
        long,
        env = "BENCH_CREDIT_LIQUIDATION_BLOCK_MS",
        default_value_t = 1_000
    )]
    credit_liquidation_block_ms: u64,
    /// Liquidation benchmark on the devnet's Neutron flavor (close factor, fee market,
    /// core-contracts' health queries): its block interval in milliseconds (0 skips it).
    #[arg(
        long,
        env = "BENCH_NEUTRON_LIQUIDATION_BLOCK_MS",
        default_value_t = 1_000
    )]
    neutron_liquidation_block_ms: u64,
    /// Neutron row: credit accounts seeded beside the borrowers (0: borrowers only).
    #[arg(
        long,
        env = "BENCH_NEUTRON_CREDIT_LIQUIDATION_ACCOUNTS",
        default_value_t = 1_000
    )]
    neutron_credit_liquidation_accounts: usize,
    /// Contested runs: borrowers seeded (0 skips them).
    #[arg(long, env = "BENCH_CONTESTED_ACCOUNTS", default_value_t = 3_000)]
    contested_accounts: usize,
    /// Contested runs: the devnet block interval, in milliseconds.
    #[arg(long, env = "BENCH_CONTESTED_BLOCK_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    contested_block_ms: u64,
    /// Contested runs against the fast bot: redline's `--max-fee-share` settings, one run each.
    #[arg(
        long,
        env = "BENCH_CONTESTED_FEE_SHARES",
        value_delimiter = ',',
        default_value = "0,0.1,0.5",
        value_parser = fee_share
    )]
    contested_fee_shares: Vec<cosmwasm_std::Decimal>,
    /// Contested runs against the fast bot: redline's `--assumed-competition` where its fee
    /// share is above 0 (the fast bot tips on every liquidation from the first block on).
    #[arg(long, env = "BENCH_CONTESTED_ASSUMED_COMPETITION", default_value_t = 1)]
    contested_assumed_competition: u32,
    /// On-chain baseline: queries in flight at once.
    #[arg(long, env = "BENCH_ONCHAIN_CONCURRENCY", default_value_t = 32)]
    onchain_concurrency: usize,
    /// Run only this part (`health` or `liquidation`); the report then holds only its section.
    /// Default: both.
    #[arg(long, env = "BENCH_ONLY", value_enum)]
    only: Option<Part>,
}

fn fee_share(text: &str) -> Result<cosmwasm_std::Decimal, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a decimal number"))
}

/// One liquidation run: its `BENCHMARKS.md` section and its targets, each named with the
/// run's block interval (and credit accounts, when seeded).
async fn liquidation_section(
    liquidation: &bench::liquidation::Options,
) -> anyhow::Result<(String, Vec<bench::targets::Target>)> {
    let block_ms = liquidation.block_time.as_millis();
    let credit = if liquidation.credit_accounts > 0 {
        format!(" + {} credit accounts", liquidation.credit_accounts)
    } else {
        String::new()
    };
    eprintln!(
        "[bench] liquidation ({}): {} accounts{credit}, {}% price drop on {}, {block_ms} ms blocks",
        liquidation.flavor,
        liquidation.accounts,
        100 - liquidation.drop_to_percent,
        liquidation.drop_denom
    );
    let figures = bench::liquidation::run(liquidation)
        .await
        .with_context(|| format!("liquidation benchmark{credit}, {block_ms} ms blocks"))?;
    eprintln!("[bench] {}", figures.summary());
    eprintln!(
        "[bench] liquidation txs per block (blocks after the drop: txs / liquidations): {}",
        figures
            .per_block
            .iter()
            .map(|(after, txs, n)| format!("+{after}: {txs}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for failure in &figures.failures {
        eprintln!("[bench] failed: {failure}");
    }
    let credit = &figures.credit_capture;
    let last_refusal = |account: &str| {
        figures
            .last_refusal
            .get(account)
            .map_or("no attempt recorded".to_string(), Clone::clone)
    };
    for account in figures.missed.iter().take(10) {
        let last = last_refusal(account);
        eprintln!("[bench] never liquidated: {account}; the liquidator's last attempt: {last}");
    }
    for (account, why) in credit.unexplained.iter().take(10) {
        let last = last_refusal(account);
        eprintln!("[bench] credit oracle, unexplained: {account}: {why}; the liquidator's last attempt: {last}");
    }
    for (account, why) in credit.profitable.iter().take(10) {
        let last = last_refusal(account);
        eprintln!("[bench] credit oracle, left profitable: {account}: {why}; the liquidator's last attempt: {last}");
    }
    let label = match (liquidation.flavor, liquidation.credit_accounts) {
        (Flavor::Neutron, 0) => format!("Neutron, {block_ms} ms blocks"),
        (Flavor::Neutron, _) => {
            format!("Neutron, credit accounts and borrowers, {block_ms} ms blocks")
        }
        (_, 0) => format!("{block_ms} ms blocks"),
        _ => format!("credit accounts and borrowers, {block_ms} ms blocks"),
    };
    let targets = figures
        .targets()
        .into_iter()
        .map(|mut target| {
            target.name = format!("{} ({label})", target.name);
            target
        })
        .collect();
    Ok((figures.markdown(), targets))
}

/// The contested section: one run against the baseline bot (no latency), then one against the
/// fast bot per fee share, the fast bot reacting as late as redline did against the baseline
/// (its candidate's block → broadcast, p50).
async fn contested_section(
    accounts: usize,
    block_ms: u64,
    fee_shares: &[cosmwasm_std::Decimal],
    assumed_competition: u32,
) -> anyhow::Result<(String, Vec<bench::targets::Target>)> {
    use redline_devnet::competitor::{CompetitorConfig, Style};
    let mut markdown = String::from(
        "## Contested liquidations\n\nThe liquidation run again, with the devnet's competing bot \
         on the chain (`devnet --competitor`): it liquidates from its own wallet through the \
         same CheckTx and mempool (highest gas price first). Who won each account is read from \
         the committed blocks (first successful `liquidate`). The baseline bot reacts at once; \
         the fast bot as late as redline's candidates reached broadcast against the baseline \
         (p50), paying twice the gas price. What a hung RPC endpoint costs, with hedging and \
         without, is measured by `make reliability` (RELIABILITY.md, `chaos_rpc`).\n",
    );
    let mut targets = Vec::new();
    let run = |competitor: CompetitorConfig, max_fee_share: cosmwasm_std::Decimal| {
        bench::liquidation::Options {
            accounts,
            block_time: std::time::Duration::from_millis(block_ms),
            assumed_competition: if competitor.style == Style::Fast && !max_fee_share.is_zero() {
                assumed_competition
            } else {
                0
            },
            competitor: Some(competitor),
            max_fee_share,
            ..Default::default()
        }
    };
    let mut latency_ms = 0;
    let mut runs = vec![(
        CompetitorConfig::new(Style::Baseline),
        cosmwasm_std::Decimal::zero(),
    )];
    runs.extend(
        fee_shares
            .iter()
            .map(|share| (CompetitorConfig::new(Style::Fast), *share)),
    );
    for (mut competitor, share) in runs {
        if competitor.style == Style::Fast {
            competitor.delay = std::time::Duration::from_millis(latency_ms);
        }
        let options = run(competitor.clone(), share);
        let mut label = format!("against {} bot, max fee share {share}", competitor.style);
        if options.assumed_competition > 0 {
            label.push_str(&format!(
                ", assumed competition {}",
                options.assumed_competition
            ));
        }
        eprintln!("[bench] contested: {accounts} accounts, {block_ms} ms blocks, {label}");
        let figures = bench::liquidation::run(&options)
            .await
            .with_context(|| format!("contested run {label}"))?;
        eprintln!("[bench] {}", figures.summary());
        if let Some(contest) = &figures.contest {
            for (height, _, log) in contest.contest.others_failed_otherwise.iter().take(10) {
                eprintln!("[bench] failed, not lost to the competitor, at {height}: {log}");
            }
        }
        if options
            .competitor
            .as_ref()
            .is_some_and(|c| c.style == Style::Baseline)
        {
            latency_ms = bench::liquidation::percentile(&figures.block_to_broadcast_ms, 50.0);
        }
        let section = figures.markdown();
        markdown.push_str(&format!("\n### {label}\n"));
        markdown.push_str(
            section
                .split_once('\n')
                .map_or(section.as_str(), |(_, rest)| rest),
        );
        targets.extend(figures.targets().into_iter().map(|mut target| {
            target.name = format!("{} (contested, {label})", target.name);
            target
        }));
    }
    Ok((markdown, targets))
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
    let runs = |part: Part| cli.only.is_none_or(|only| only == part);
    anyhow::ensure!(
        cli.only != Some(Part::Liquidation) || cli.liquidation_accounts > 0,
        "--only liquidation with --liquidation-accounts 0 runs nothing"
    );
    let mut markdown = String::new();
    let mut targets = Vec::new();
    if runs(Part::Health) {
        let report = bench::run(&options).await?;
        targets.extend(report.targets());
        markdown = report.markdown();
    }
    if runs(Part::Liquidation) && cli.liquidation_accounts > 0 {
        anyhow::ensure!(
            !cli.liquidation_block_ms.is_empty() && !cli.liquidation_block_ms.contains(&0),
            "--liquidation-block-ms: give one or more positive block intervals"
        );
        let mut runs: Vec<(usize, u64, Flavor)> = cli
            .liquidation_block_ms
            .iter()
            .map(|&block_ms| (0, block_ms, Flavor::Osmosis))
            .collect();
        // The credit-account row: the same run with credit accounts beside the borrowers.
        if cli.credit_liquidation_accounts > 0 {
            anyhow::ensure!(
                cli.credit_liquidation_block_ms > 0,
                "--credit-liquidation-block-ms must be positive"
            );
            runs.push((
                cli.credit_liquidation_accounts,
                cli.credit_liquidation_block_ms,
                Flavor::Osmosis,
            ));
        }
        // The Neutron row: the same borrowers (and credit accounts) on core-contracts' rules
        // and a fee market.
        if cli.neutron_liquidation_block_ms > 0 {
            runs.push((
                cli.neutron_credit_liquidation_accounts,
                cli.neutron_liquidation_block_ms,
                Flavor::Neutron,
            ));
        }
        for (credit_accounts, block_ms, flavor) in runs {
            let liquidation = bench::liquidation::Options {
                accounts: cli.liquidation_accounts,
                credit_accounts,
                fetch_batch: cli.liquidation_fetch_batch,
                max_txs_in_flight: cli.liquidation_max_txs_in_flight,
                block_time: std::time::Duration::from_millis(block_ms),
                flavor,
                ..Default::default()
            };
            let (section, section_targets) = liquidation_section(&liquidation).await?;
            if !markdown.is_empty() {
                markdown.push('\n');
            }
            markdown.push_str(&section);
            targets.extend(section_targets);
        }
    }
    if runs(Part::Contested) && cli.contested_accounts > 0 {
        let (section, section_targets) = contested_section(
            cli.contested_accounts,
            cli.contested_block_ms,
            &cli.contested_fee_shares,
            cli.contested_assumed_competition,
        )
        .await?;
        if !markdown.is_empty() {
            markdown.push('\n');
        }
        markdown.push_str(&section);
        targets.extend(section_targets);
    }
    std::fs::write(&cli.output, &markdown)
        .with_context(|| format!("writing {}", cli.output.display()))?;
    println!("{markdown}");
    eprintln!("[bench] wrote {}", cli.output.display());
    let missed = bench::targets::missed(&targets);
    if !missed.is_empty() {
        for target in &missed {
            eprintln!("[bench] target not met: {target}");
        }
        eprintln!(
            "[bench] {} of {} enforced targets not met (see {})",
            missed.len(),
            targets.iter().filter(|t| t.enforced).count(),
            cli.output.display()
        );
        std::process::exit(1);
    }
    eprintln!("[bench] every enforced target met");
    Ok(())
}
