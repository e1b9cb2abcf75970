//! Issue 4's acceptance, end to end on the devnet with smaller numbers than `make bench`:
//! 2,000 seeded accounts, a real redis-server, ATOM −30%, four liquidator workers in two
//! liquidator instances (one of whose wallets the master has to top up first), until nothing
//! profitable is left. Candidates come from the real collector and health checker; a second
//! test feeds the same liquidators from a stand-in health checker, so a liquidator regression
//! shows apart from the rest of the pipeline. See `redline_tests::bench::liquidation` for what
//! is measured and checked.

use std::time::Duration;

use redline_devnet::flavor::Flavor;
use redline_tests::bench::liquidation::{self, Candidates, Figures, Options};

/// Logs to stderr at `E2E_LOG` (warn by default).
fn init_logs() {
    let _ = redline_telemetry::init(&redline_telemetry::LogArgs {
        log_format: redline_telemetry::LogFormat::Pretty,
        log_level: std::env::var("E2E_LOG").unwrap_or_else(|_| "warn".into()),
    });
}

/// A run at this test's scale (2,000 accounts, 100 s) with candidates from `candidates`,
/// its summary printed under `label`.
async fn run_e2e(candidates: Candidates, label: &str) -> anyhow::Result<Figures> {
    let figures = liquidation::run(&Options {
        accounts: 2_000,
        deadline: Duration::from_secs(100),
        candidates,
        ..Options::default()
    })
    .await?;
    eprintln!("liquidation e2e ({label}): {}", figures.summary());
    Ok(figures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_liquidate_every_liquidatable_account_after_a_price_drop() -> anyhow::Result<()>
{
    init_logs();
    let figures = run_e2e(Candidates::Pipeline, "collector + health checker").await?;
    assert!(
        figures.liquidatable >= 50,
        "only {} accounts liquidatable after the drop",
        figures.liquidatable
    );
    assert!(
        figures.top_ups >= 1,
        "the unfunded worker wallet was never topped up"
    );
    assert!(figures.liquidations >= figures.liquidatable);
    figures.check()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_liquidators_alone_clear_the_drop_from_a_stand_in_health_checker() -> anyhow::Result<()>
{
    let figures = run_e2e(Candidates::StandIn, "stand-in health checker").await?;
    assert!(figures.liquidatable >= 50);
    assert!(figures.liquidations >= figures.liquidatable);
    figures.check()
}

/// Credit accounts beside the borrowers, as `make bench`'s credit-account row runs them with
/// smaller numbers: the same workers liquidate both kinds after the drop, and the credit
/// capture oracle finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_liquidate_credit_accounts_and_borrowers_after_a_price_drop(
) -> anyhow::Result<()> {
    init_logs();
    let figures = liquidation::run(&Options {
        accounts: 300,
        credit_accounts: 150,
        deadline: Duration::from_secs(150),
        ..Options::default()
    })
    .await?;
    eprintln!("liquidation e2e (credit accounts): {}", figures.summary());
    eprintln!("{}", figures.markdown());
    assert!(
        figures.credit_liquidatable > 0,
        "no credit account liquidatable after the drop"
    );
    assert!(
        figures.credit_liquidations > 0,
        "no credit account was liquidated"
    );
    figures.check()
}

/// The same pipeline against the devnet's Neutron flavor (core-contracts: each asset's close
/// factor caps a liquidation, no target health factor; the health contract takes no `kind`;
/// `neutron` addresses, fees in `untrn` at the fee market's price): the services take the
/// rule, query shape, prefix and fee denom from the manifest, and both capture oracles
/// (simulating liquidations on the chain) find nothing profitable left, of either kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_liquidates_on_the_neutron_flavor() -> anyhow::Result<()> {
    init_logs();
    let figures = liquidation::run(&Options {
        accounts: 2_000,
        credit_accounts: 150,
        deadline: Duration::from_secs(150),
        flavor: Flavor::Neutron,
        ..Options::default()
    })
    .await?;
    eprintln!("liquidation e2e (neutron flavor): {}", figures.summary());
    assert!(
        figures.liquidatable >= 50,
        "only {} accounts liquidatable after the drop",
        figures.liquidatable
    );
    assert!(figures.liquidations >= figures.liquidatable);
    assert!(
        figures.credit_liquidations > 0,
        "no credit account was liquidated"
    );
    figures.check()
}

/// The benchmark's numbers (10,000 accounts), for a manual run in a debug build:
/// `cargo test -p redline-tests --test liquidation_e2e -- --ignored --nocapture`
/// (`LIQUIDATION_ACCOUNTS`, `LIQUIDATION_MAX_PER_TX` override the defaults).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark scale; `make bench` runs it in release mode"]
async fn benchmark_scale_liquidation_run() -> anyhow::Result<()> {
    init_logs();
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let defaults = Options::default();
    let figures = liquidation::run(&Options {
        accounts: env("LIQUIDATION_ACCOUNTS").unwrap_or(defaults.accounts),
        max_liquidations_per_tx: env("LIQUIDATION_MAX_PER_TX")
            .unwrap_or(defaults.max_liquidations_per_tx),
        ..defaults
    })
    .await?;
    eprintln!("{}", figures.markdown());
    eprintln!("liquidation run: {}", figures.summary());
    eprintln!("failures: {:#?}", figures.failures);
    figures.check()
}
