//! `devnet`: a local chain that behaves like Osmosis running Mars.
//!
//! `devnet --accounts 100000 --seed 1 --manifest /tmp/m.json` seeds the scenario, writes the
//! manifest and serves CometBFT RPC on `--port`; `devnet prices uatom=7.5` moves prices on a
//! running devnet.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use cosmwasm_std::Decimal;
use mars::manifest::Manifest;
use redline_devnet::chain::ChainConfig;
use redline_devnet::competitor::{Competitor, CompetitorConfig, Style, Watch};
use redline_devnet::flavor::Flavor;
use redline_devnet::rpc::{self, NodeConfig};
use redline_devnet::scenario::{self, ScenarioConfig, DEFAULT_LIQUIDATOR_MNEMONIC};
use redline_telemetry::LogArgs;

#[derive(Parser, Debug)]
#[command(
    name = "devnet",
    version,
    about = "A local chain running the Mars Red Bank behind CometBFT RPC"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Move oracle prices on a running devnet: `devnet prices uatom=7.5 uosmo=0.4`.
    #[command(alias = "set-price")]
    Prices(PricesArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Which Mars runs: `osmosis` (mars-protocol/contracts v2.1: target health factor) or
    /// `neutron` (core-contracts v2.2: close factor); also the defaults of the chain flags.
    #[arg(long, env = "DEVNET_FLAVOR", default_value = "osmosis")]
    flavor: Flavor,
    /// Chain id the node reports and txs must be signed for (default: the flavor's,
    /// `devnet-1` or `neutron-devnet-1`).
    #[arg(long, env = "DEVNET_CHAIN_ID")]
    chain_id: Option<String>,
    /// bech32 account prefix (default: the flavor's, `osmo` or `neutron`).
    #[arg(long, env = "DEVNET_BECH32_PREFIX")]
    bech32_prefix: Option<String>,
    /// Address the RPC server listens on.
    #[arg(long, env = "DEVNET_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// RPC port (HTTP JSON-RPC, websocket at /websocket, admin at /admin); 0 picks a free one.
    #[arg(long, env = "DEVNET_PORT", default_value_t = 26657)]
    port: u16,
    /// Block interval in milliseconds.
    #[arg(long, env = "DEVNET_BLOCK_TIME_MS", default_value_t = 1000)]
    block_time_ms: u64,
    /// Minimum gas price CheckTx demands, in the fee denom (default: the flavor's, 0.025 or
    /// 0.0053).
    #[arg(long, env = "DEVNET_GAS_PRICE", value_parser = decimal)]
    gas_price: Option<Decimal>,
    /// Denom fees are paid in (default: the flavor's, `uosmo` or `untrn`).
    #[arg(long, env = "DEVNET_FEE_DENOM")]
    fee_denom: Option<String>,
    /// Borrower accounts to seed.
    #[arg(long, env = "DEVNET_ACCOUNTS", default_value_t = 1000)]
    accounts: usize,
    /// Rover credit accounts to seed beside the borrowers (Rover is deployed when above 0).
    #[arg(long, env = "DEVNET_CREDIT_ACCOUNTS", default_value_t = 0)]
    credit_accounts: usize,
    /// Seed of the borrower generator (same seed, same chain).
    #[arg(long, env = "DEVNET_SEED", default_value_t = 1)]
    seed: u64,
    /// Mnemonic of the liquidator wallets (defaults to a well-known test mnemonic).
    #[arg(long, env = "LIQUIDATOR_MNEMONIC", hide_env_values = true)]
    liquidator_mnemonic: Option<String>,
    /// Liquidator wallets funded with every denom (m/44'/118'/0'/0/i).
    #[arg(long, env = "DEVNET_LIQUIDATOR_WALLETS", default_value_t = 8)]
    liquidator_wallets: u32,
    /// Where to write the manifest services read (`--manifest` of every service).
    #[arg(long, env = "DEVNET_MANIFEST")]
    manifest: Option<PathBuf>,
    /// Scripted price moves: CSV lines `HEIGHT,DENOM,PRICE` or `SECONDSs,DENOM,PRICE`, or JSON.
    #[arg(long, env = "DEVNET_PRICE_PATH")]
    price_path: Option<PathBuf>,
    /// Blocks kept for `block`, `block_results` and `tx`.
    #[arg(long, env = "DEVNET_HISTORY_BLOCKS", default_value_t = 10_000)]
    history_blocks: usize,
    /// Most gas one block takes (the consensus params' `block.max_gas`), counted at the txs'
    /// gas limits; txs that do not fit wait in the mempool, which orders them by gas price,
    /// then arrival. Default: the flavor's (Neutron: its fee market's maximum block
    /// utilization, 30,000,000; Osmosis: none).
    #[arg(long, env = "DEVNET_BLOCK_GAS_LIMIT", value_parser = clap::value_parser!(u64).range(1..))]
    block_gas_limit: Option<u64>,
    #[command(flatten)]
    competitor: CompetitorArgs,
}

/// A competing liquidation bot inside the devnet, with its own funded wallet.
#[derive(Args, Debug)]
struct CompetitorArgs {
    /// `baseline`: the public Mars bot's loop (the worst 10 unhealthy positions, one tx after
    /// another at the chain's gas price); `fast`: every liquidatable position in the next block
    /// at `--competitor-price-multiple` times the gas price. None unless given.
    #[arg(long, env = "DEVNET_COMPETITOR")]
    competitor: Option<Style>,
    /// The gas price `fast` pays, as a multiple of the chain's current one.
    #[arg(long, env = "DEVNET_COMPETITOR_PRICE_MULTIPLE", value_parser = decimal, default_value = "2")]
    competitor_price_multiple: Decimal,
    /// From a block's commit to the competitor's look at it (its latency), in milliseconds.
    #[arg(long, env = "DEVNET_COMPETITOR_DELAY_MS", default_value_t = 0)]
    competitor_delay_ms: u64,
    /// The gas limit of each of its liquidation txs.
    #[arg(long, env = "DEVNET_COMPETITOR_GAS_LIMIT", default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..))]
    competitor_gas_limit: u64,
}

impl CompetitorArgs {
    fn config(&self) -> Option<CompetitorConfig> {
        self.competitor.map(|style| CompetitorConfig {
            style,
            price_multiple: self.competitor_price_multiple,
            delay: Duration::from_millis(self.competitor_delay_ms),
            gas_limit: self.competitor_gas_limit,
        })
    }
}

#[derive(Args, Debug)]
struct PricesArgs {
    /// Admin URL of the devnet, e.g. http://127.0.0.1:26657/admin.
    #[arg(long, env = "DEVNET_ADMIN_URL", conflicts_with = "manifest")]
    admin: Option<String>,
    /// Read the admin URL from this manifest instead.
    #[arg(long, env = "DEVNET_MANIFEST")]
    manifest: Option<PathBuf>,
    /// Prices as DENOM=PRICE (price per smallest unit, in the oracle's base denom).
    #[arg(required = true, value_name = "DENOM=PRICE")]
    prices: Vec<String>,
}

fn decimal(text: &str) -> Result<Decimal, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a decimal number"))
}

fn node_config(args: &RunArgs) -> anyhow::Result<NodeConfig> {
    if args.block_time_ms == 0 {
        bail!("--block-time-ms must be positive");
    }
    let mut chain = args.flavor.chain_config(ChainConfig::default());
    if let Some(chain_id) = &args.chain_id {
        if chain_id.trim().is_empty() {
            bail!("--chain-id is empty");
        }
        chain.chain_id = chain_id.clone();
    }
    if let Some(prefix) = &args.bech32_prefix {
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            bail!("--bech32-prefix `{prefix}` must be lowercase letters and digits");
        }
        chain.bech32_prefix = prefix.clone();
    }
    if let Some(fee_denom) = &args.fee_denom {
        chain.fee_denom = fee_denom.clone();
    }
    if let Some(gas_price) = args.gas_price {
        chain.min_gas_price = gas_price;
    }
    if args.history_blocks == 0 {
        bail!("--history-blocks must be positive");
    }
    Ok(NodeConfig {
        chain: ChainConfig {
            block_time: Duration::from_millis(args.block_time_ms),
            history_blocks: args.history_blocks,
            max_block_gas: args.block_gas_limit.or(chain.max_block_gas),
            ..chain
        },
        host: args.host,
        port: args.port,
        ..NodeConfig::default()
    })
}

fn scenario_config(args: &RunArgs) -> anyhow::Result<ScenarioConfig> {
    if args.liquidator_wallets == 0 {
        bail!("--liquidator-wallets must be at least 1");
    }
    let liquidator_mnemonic = args
        .liquidator_mnemonic
        .clone()
        .unwrap_or_else(|| DEFAULT_LIQUIDATOR_MNEMONIC.to_string());
    scenario::liquidator_keys(&liquidator_mnemonic, 1).context("--liquidator-mnemonic")?;
    let price_path = match &args.price_path {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--price-path {}: cannot read", path.display()))?;
            scenario::parse_price_path(&text)
                .map_err(|e| anyhow::anyhow!("--price-path {}: {e}", path.display()))?
        }
    };
    Ok(ScenarioConfig {
        accounts: args.accounts,
        credit_accounts: args.credit_accounts,
        seed: args.seed,
        liquidator_mnemonic,
        liquidator_wallets: args.liquidator_wallets,
        price_path,
        flavor: args.flavor,
        competitor: args.competitor.competitor.is_some(),
    })
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let node = node_config(&args)?;
    let scenario = scenario_config(&args)?;
    tracing::info!(
        accounts = scenario.accounts,
        credit_accounts = scenario.credit_accounts,
        seed = scenario.seed,
        flavor = %scenario.flavor,
        chain_id = %node.chain.chain_id,
        "seeding the devnet"
    );
    let (mut handle, info, manifest) = scenario::start(node, scenario).await?;
    tracing::info!(
        borrowers = info.borrowers,
        seeding_ms = info.seeding_time.as_millis() as u64,
        genesis_ms = info.genesis_time.as_millis() as u64,
        health = ?info.health,
        credit_accounts = info.credit_accounts,
        credit_health = ?info.credit_health,
        red_bank = %info.contracts.red_bank,
        oracle = %info.contracts.oracle,
        liquidators = info.liquidators.len(),
        "genesis done"
    );
    if let Some(path) = &args.manifest {
        manifest
            .write(path)
            .with_context(|| format!("--manifest {}: cannot write", path.display()))?;
        tracing::info!(path = %path.display(), "manifest written");
    }
    let _competitor = match args.competitor.config() {
        None => None,
        Some(config) => Some(
            Competitor::start(handle.chain().clone(), config, Watch::scenario(&info))
                .await
                .context("starting the competitor")?,
        ),
    };
    tracing::info!(
        rpc = %handle.rpc_http_url(),
        websocket = %handle.rpc_ws_url(),
        admin = %handle.admin_url(),
        "devnet is serving"
    );
    tokio::select! {
        _ = handle.wait() => bail!("the RPC server stopped"),
        signal = tokio::signal::ctrl_c() => {
            signal.context("waiting for Ctrl-C")?;
            tracing::info!("stopping");
        }
    }
    handle.shutdown().await;
    Ok(())
}

/// Posts JSON to a plain-HTTP URL and returns status and body (the devnet admin is loopback
/// HTTP; no TLS client is needed).
async fn post_json(url: &str, body: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("`{url}`: only http:// admin URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP answer from {authority}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

async fn prices(args: PricesArgs) -> anyhow::Result<()> {
    let admin = match (&args.admin, &args.manifest) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(path)) => Manifest::load(path)?
            .admin_url
            .ok_or_else(|| anyhow::anyhow!("--manifest {}: no admin_url", path.display()))?,
        (None, None) => bail!("give --admin URL or --manifest PATH"),
    };
    let mut prices = BTreeMap::new();
    for entry in &args.prices {
        let (denom, price) = entry
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`{entry}`: expected DENOM=PRICE"))?;
        prices.insert(denom.trim().to_string(), price.trim().to_string());
    }
    rpc::parse_prices(&prices).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = serde_json::to_string(&rpc::PricesRequest { prices })?;
    let (status, answer) = post_json(&format!("{admin}/prices"), &body).await?;
    if status != 200 {
        bail!("{admin}/prices answered {status}: {answer}");
    }
    let answer: rpc::PricesAnswer = serde_json::from_str(answer.trim())
        .with_context(|| format!("unexpected answer: {answer}"))?;
    println!("prices take effect at height {}", answer.height);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    redline_telemetry::init(&cli.log)?;
    match cli.command {
        Some(Command::Prices(args)) => prices(args).await,
        None => run(cli.run).await,
    }
}
