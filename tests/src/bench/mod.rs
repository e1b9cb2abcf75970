//! The benchmark behind `make bench`: positions health-checked per second end to end, off-chain
//! against the on-chain baseline, on devnets of 10,000 and 100,000 accounts and on 1,000,000
//! generated positions. [`run`] measures everything and returns the [`report::Report`] that
//! `tests/src/bin/bench.rs` writes to `BENCHMARKS.md`.
//!
//! - [`devnet`]: a scenario devnet in this process and the index filled from its state;
//! - [`synthetic`]: the snapshot that goes with the generated positions;
//! - [`pipeline`]: one timed run of a block's jobs through the health checker;
//! - [`report`]: the machine description and the markdown.

pub mod contest;
pub mod credit;
pub mod devnet;
pub mod liquidation;
pub mod pipeline;
pub mod report;
pub mod synthetic;
pub mod targets;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use redline_chain::ChainClient;
use redline_health_checker::onchain::OnchainConfig;
use redline_health_checker::{HealthSource, OnchainSource};
use redline_pipeline::index::{write_synthetic_accounts, IndexArgs, PositionIndex};
use redline_pipeline::jobs::ProtocolKind;
use testkit::RedisServer;

use pipeline::{plan_jobs, sample_jobs, Bench, RunResult};
use report::{thousands, Machine, Report, Row};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Devnet sizes (borrowers seeded).
    pub devnet_accounts: Vec<usize>,
    /// On-chain baseline: devnets larger than this are sampled with this many accounts.
    pub onchain_sample: u64,
    /// Generated positions (0 to skip).
    pub synthetic_accounts: u64,
    /// Off-chain runs per case (the median is reported).
    pub repeats: usize,
    /// On-chain runs per devnet (the median is reported).
    pub onchain_repeats: usize,
    /// Accounts per health-check job.
    pub job_size: u64,
    pub workers: usize,
    pub compute_threads: usize,
    pub onchain_concurrency: usize,
    /// Index buckets.
    pub buckets: u32,
}

impl Default for Options {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Options {
            devnet_accounts: vec![10_000, 100_000],
            onchain_sample: 2_000,
            synthetic_accounts: 1_000_000,
            repeats: 3,
            onchain_repeats: 3,
            job_size: 5_000,
            workers: cpus,
            compute_threads: cpus,
            onchain_concurrency: 32,
            buckets: redline_pipeline::index::DEFAULT_BUCKETS,
        }
    }
}

fn median(mut results: Vec<RunResult>) -> (RunResult, f64) {
    results.sort_by_key(|r| r.elapsed);
    let best = results[0].elapsed.as_secs_f64();
    (results.swap_remove(results.len() / 2), best)
}

async fn open_index(
    server: &RedisServer,
    chain_id: &str,
    buckets: u32,
) -> anyhow::Result<PositionIndex> {
    let conn = redline_pipeline::redis_conn::connect(
        &server.queue_config(),
        redline_pipeline::redis_conn::ConnectOptions::default(),
    )
    .await
    .context("connecting to the bench Redis")?;
    Ok(PositionIndex::create_or_open(
        conn,
        IndexArgs::default().namespace(chain_id, ProtocolKind::RedBank),
        buckets,
    )
    .await?)
}

fn log(message: impl AsRef<str>) {
    eprintln!("[bench] {}", message.as_ref());
}

fn log_offchain(scenario: &str, result: &RunResult) {
    log(format!(
        "{scenario}: off-chain {} accounts in {:.3} s (job phases summed: read {:.2} s, health {:.2} s, output {:.2} s)",
        result.accounts,
        result.elapsed.as_secs_f64(),
        result.phases[0],
        result.phases[1],
        result.phases[2]
    ));
}

/// Measures every case of `options`.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let load_before = report::load_average();
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut sampled_scenarios = Vec::new();

    for &accounts in options.devnet_accounts.iter().filter(|&&n| n > 0) {
        let scenario = format!("devnet, {} accounts", thousands(accounts as u64));
        log(format!("{scenario}: seeding"));
        let devnet = devnet::start(accounts, 1, Duration::from_millis(500)).await?;
        let server = RedisServer::start().context("starting redis-server")?;
        let index = open_index(&server, &devnet.manifest.chain_id, options.buckets).await?;
        let indexed = devnet::fill_index(&devnet, &index).await? as u64;
        log(format!(
            "{scenario}: seeded in {:.1} s, {indexed} debtors indexed",
            devnet.info.genesis_time.as_secs_f64()
        ));
        let bench = Bench {
            redis_url: server.url(),
            index: index.clone(),
            chain_id: devnet.manifest.chain_id.clone(),
            workers: options.workers,
            compute_threads: options.compute_threads,
        };
        let sizes = index.bucket_sizes().await?;

        let mut offchain = Vec::new();
        let mut height = 0;
        let checker = bench.start(HealthSource::Offchain, None).await?;
        // Block 0 warms the service up (connections, index handle, near set); not timed.
        for block in 0..=options.repeats.max(1) {
            height = next_height(&devnet, height).await?;
            bench
                .publish_snapshot(&devnet.snapshot(height).await?)
                .await?;
            let jobs = plan_jobs(&bench.chain_id, height, &sizes, options.job_size);
            let result = checker.block(jobs).await?;
            if block == 0 {
                continue;
            }
            log_offchain(&scenario, &result);
            offchain.push(result);
        }
        checker.stop().await?;
        let runs = offchain.len();
        let (off, _) = median(offchain);
        let off_rate = off.per_second();
        rows.push(Row {
            scenario: scenario.clone(),
            indexed,
            result: off,
            note: format!("median of {runs} runs"),
        });

        // Sampled when a full run would be long; the sample is cut into one job per worker so
        // the baseline gets the same parallelism as the off-chain runs.
        let sampled = indexed > options.onchain_sample.max(1) * 10;
        let onchain_job_size = if sampled {
            (options.onchain_sample / options.workers.max(1) as u64).max(1)
        } else {
            options.job_size
        };
        let mut onchain_runs = Vec::new();
        let onchain = OnchainSource {
            client: devnet.client.clone(),
            red_bank: devnet.red_bank().to_string(),
            config: OnchainConfig {
                onchain_concurrency: options.onchain_concurrency,
            },
        };
        let checker = bench.start(HealthSource::Onchain, Some(onchain)).await?;
        for block in 0..=options.onchain_repeats.max(1) {
            height = next_height(&devnet, height).await?;
            bench
                .publish_snapshot(&devnet.snapshot(height).await?)
                .await?;
            let jobs = if sampled {
                sample_jobs(
                    &bench.chain_id,
                    height,
                    &sizes,
                    onchain_job_size,
                    options.onchain_sample,
                )
            } else {
                plan_jobs(&bench.chain_id, height, &sizes, onchain_job_size)
            };
            let on = checker.block(jobs).await?;
            if block == 0 {
                continue;
            }
            log(format!(
                "{scenario}: on-chain {} accounts in {:.3} s",
                on.accounts,
                on.elapsed.as_secs_f64()
            ));
            onchain_runs.push(on);
        }
        checker.stop().await?;
        let on_count = onchain_runs.len();
        let (on, _) = median(onchain_runs);
        let on_rate = on.per_second();
        if sampled {
            sampled_scenarios.push(scenario.clone());
        }
        let note = if sampled {
            format!(
                "median of {on_count} runs of a sample; all {} would take ≈ {:.0} s",
                thousands(indexed),
                indexed as f64 / on_rate.max(1e-9)
            )
        } else {
            format!("median of {on_count} runs, every account")
        };
        rows.push(Row {
            scenario: scenario.clone(),
            indexed,
            result: on,
            note,
        });
        ratios.push((scenario, off_rate, on_rate));
        devnet.shutdown().await;
    }

    let mut generated = Vec::new();
    if options.synthetic_accounts > 0 {
        for dataset in [Dataset::Simple, Dataset::Realistic] {
            let (row, figures) = generated_case(options, dataset).await?;
            rows.push(row);
            generated.push(figures);
        }
    }

    Ok(Report {
        machine: Machine::describe(),
        job_size: options.job_size,
        workers: options.workers,
        compute_threads: options.compute_threads,
        onchain_concurrency: options.onchain_concurrency,
        onchain_sample: options.onchain_sample,
        sampled: sampled_scenarios,
        rows,
        ratios,
        generated,
        total_seconds: started.elapsed().as_secs_f64(),
        load: (load_before, report::load_average()),
    })
}

/// Which generated positions a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// The earlier data: one or two collaterals, one debt, every price 1, one threshold.
    Simple,
    /// Six denoms with distinct prices and liquidation prices, 1–4 collaterals, 1–3 debts.
    Realistic,
}

impl Dataset {
    pub fn describe(self) -> &'static str {
        match self {
            Dataset::Simple => "simple (the earlier data: 1–2 collaterals, 1 debt, every price 1, one LT)",
            Dataset::Realistic => "realistic (6 denoms, distinct default and liquidation prices, per-denom params and interest, 1–4 collaterals, 1–3 debts)",
        }
    }
}

/// One generated-positions case: written to a fresh index, then each block checked end to end.
async fn generated_case(
    options: &Options,
    dataset: Dataset,
) -> anyhow::Result<(Row, report::Generated)> {
    let n = options.synthetic_accounts;
    let name = match dataset {
        Dataset::Simple => "simple",
        Dataset::Realistic => "realistic",
    };
    let scenario = format!("generated ({name}), {} positions", thousands(n));
    let chain_id = "bench-1";
    let server = RedisServer::start().context("starting redis-server")?;
    let index = open_index(&server, chain_id, options.buckets).await?;
    log(format!("{scenario}: writing the index"));
    let writing = Instant::now();
    match dataset {
        Dataset::Simple => {
            write_synthetic_accounts(&index, &synthetic::DENOMS, 0, n).await?;
        }
        Dataset::Realistic => synthetic::realistic::write(&index, n).await?,
    }
    log(format!(
        "{scenario}: written in {:.1} s",
        writing.elapsed().as_secs_f64()
    ));
    let bench = Bench {
        redis_url: server.url(),
        index: index.clone(),
        chain_id: chain_id.to_string(),
        workers: options.workers,
        compute_threads: options.compute_threads,
    };
    let sizes = index.bucket_sizes().await?;
    let genesis = 1_700_000_000;
    let mut runs = Vec::new();
    let checker = bench.start(HealthSource::Offchain, None).await?;
    // Block 1 warms the service up (and fills the near set); not timed.
    for block in 1..=options.repeats.max(1) as u64 + 1 {
        let time = genesis + 6 * block;
        let snapshot = match dataset {
            Dataset::Simple => synthetic::snapshot(chain_id, block, time),
            Dataset::Realistic => synthetic::realistic::snapshot(chain_id, block, time),
        };
        bench.publish_snapshot(&snapshot).await?;
        let jobs = plan_jobs(chain_id, block, &sizes, options.job_size);
        let result = checker.block(jobs).await?;
        if block == 1 {
            continue;
        }
        log_offchain(&scenario, &result);
        runs.push(result);
    }
    checker.stop().await?;
    let count = runs.len();
    let (result, best) = median(runs);
    let figures = report::Generated {
        dataset,
        accounts: result.accounts,
        median: result.elapsed.as_secs_f64(),
        best,
        phases: result.phases,
        liquidatable: result.liquidatable,
    };
    let row = Row {
        scenario,
        indexed: n,
        result,
        note: format!("median of {count} runs; best {best:.3} s"),
    };
    Ok((row, figures))
}

/// The first height after `after` (a new block: new time, so every run computes afresh).
async fn next_height(devnet: &devnet::Devnet, after: u64) -> anyhow::Result<u64> {
    loop {
        let height = devnet.client.latest_height().await?;
        if height > after {
            devnet.wait_for_height(height).await?;
            return Ok(height);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
