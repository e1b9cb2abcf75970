//! Command-line/env configuration shared by the services: which chain to talk to (a manifest or
//! individual flags) and where the signing mnemonic comes from.
//!
//! Every flag has an `env` twin so the same binary runs from a shell, Docker or an ECS task
//! definition. Validation happens once at start and every error names the flag.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use mars::manifest::{Contracts, DenomInfo, FeeConfig, Manifest, ManifestError};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{flag}: {problem}")]
    Flag { flag: &'static str, problem: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn flag_error(flag: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        problem: problem.into(),
    }
}

/// The chain a service works on. Either `--manifest` (written by the devnet, or by hand for a
/// public chain) or the individual flags; a flag given beside a manifest overrides its field.
#[derive(Debug, Clone, Default, Args)]
pub struct ChainArgs {
    /// Chain manifest JSON (as written by `devnet --manifest`). Replaces the chain flags below.
    #[arg(long, env = "REDLINE_MANIFEST")]
    pub manifest: Option<PathBuf>,
    /// How long to wait for the manifest file to appear (the devnet writes it once seeded).
    #[arg(long, env = "REDLINE_MANIFEST_WAIT_SECS", default_value_t = 0)]
    pub manifest_wait_secs: u64,
    /// Chain id, e.g. `osmosis-1`.
    #[arg(long, env = "CHAIN_ID")]
    pub chain_id: Option<String>,
    /// Bech32 account prefix, e.g. `osmo`.
    #[arg(long, env = "BECH32_PREFIX")]
    pub bech32_prefix: Option<String>,
    /// CometBFT RPC URL; repeat (or comma-separate in env) for fail-over.
    #[arg(long = "rpc", env = "RPC_URLS", value_delimiter = ',')]
    pub rpc: Vec<String>,
    /// CometBFT websocket URL; defaults to each --rpc URL with ws(s):// and `/websocket`.
    #[arg(long = "ws", env = "WS_URLS", value_delimiter = ',')]
    pub ws: Vec<String>,
    /// How long one RPC request may take before the client gives up on that endpoint and tries
    /// the next: a hung (not refusing) node costs this much once per fail-over. Default 10000.
    #[arg(long, env = "RPC_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub rpc_timeout_ms: Option<u64>,
    /// A request unanswered this long also goes to the next --rpc endpoint, and the first
    /// answer wins: a hung endpoint then costs this instead of --rpc-timeout-ms. 0: only a
    /// failed request moves on. Default: a quarter of the block time.
    #[arg(long, env = "RPC_HEDGE_AFTER_MS")]
    pub rpc_hedge_after_ms: Option<u64>,
    /// Target block interval in milliseconds.
    #[arg(long, env = "BLOCK_TIME_MS")]
    pub block_time_ms: Option<u64>,
    /// Red Bank contract address.
    #[arg(long, env = "RED_BANK")]
    pub red_bank: Option<String>,
    /// Oracle contract address.
    #[arg(long, env = "ORACLE")]
    pub oracle: Option<String>,
    /// Params contract address.
    #[arg(long, env = "PARAMS")]
    pub params: Option<String>,
    /// Rewards collector address (receives the protocol liquidation fee).
    #[arg(long, env = "REWARDS_COLLECTOR")]
    pub rewards_collector: Option<String>,
    /// Swap pool contract used to swap seized collateral back.
    #[arg(long, env = "SWAPPER")]
    pub swapper: Option<String>,
    /// Fee denom, e.g. `uosmo`.
    #[arg(long, env = "FEE_DENOM")]
    pub fee_denom: Option<String>,
    /// Gas price in fee denom per gas unit, e.g. `0.025`.
    #[arg(long, env = "GAS_PRICE")]
    pub gas_price: Option<String>,
    /// How the Red Bank caps one liquidation: `target_health_factor` (Mars contracts v2.1, as
    /// on Osmosis) or `close_factor` (core-contracts, as on Neutron). Required without
    /// --manifest.
    #[arg(long, env = "LIQUIDATION_RULE")]
    pub liquidation_rule: Option<mars::rule::LiquidationRule>,
    /// How the Rover health contract takes its queries: `with_kind` (Mars contracts v2.1, as on
    /// Osmosis; the default without --manifest) or `without_kind` (core-contracts, as on
    /// Neutron). Overrides the manifest's.
    #[arg(long, env = "HEALTH_QUERY")]
    pub health_query: Option<mars::msg::health::HealthQueryShape>,
}

impl ChainArgs {
    /// The per-request RPC timeout (`--rpc-timeout-ms`).
    pub fn request_timeout(&self) -> Duration {
        self.rpc_timeout_ms.map_or(
            redline_chain::ChainConfig::DEFAULT_REQUEST_TIMEOUT,
            Duration::from_millis,
        )
    }

    /// The client config for the resolved manifest, with this command line's RPC timeout.
    pub fn chain_config(
        &self,
        manifest: &Manifest,
    ) -> Result<redline_chain::ChainConfig, ConfigError> {
        let timeout = self.request_timeout();
        let config = redline_chain::ChainConfig::from_manifest(manifest)
            .and_then(|config| config.with_request_timeout(timeout))
            .map_err(|error| flag_error("--manifest/--rpc", error.to_string()))?;
        Ok(match self.rpc_hedge_after_ms {
            Some(0) => config.with_hedge_after(None),
            Some(ms) => config.with_hedge_after(Some(Duration::from_millis(ms))),
            None => config,
        })
    }

    /// Resolves to one validated [`Manifest`].
    pub fn resolve(&self) -> Result<Manifest, ConfigError> {
        let mut manifest = match &self.manifest {
            Some(path) => {
                wait_for_file(path, Duration::from_secs(self.manifest_wait_secs))?;
                Manifest::load(path)?
            }
            None => self.manifest_from_flags()?,
        };
        self.apply_overrides(&mut manifest);
        let source = match &self.manifest {
            Some(path) => path.display().to_string(),
            None => "command-line flags".to_string(),
        };
        manifest.validate(&source)?;
        Ok(manifest)
    }

    fn manifest_from_flags(&self) -> Result<Manifest, ConfigError> {
        fn required(value: &Option<String>, flag: &'static str) -> Result<String, ConfigError> {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| flag_error(flag, "is required when --manifest is not given"))
        }
        if self.rpc.is_empty() {
            return Err(flag_error(
                "--rpc",
                "is required when --manifest is not given",
            ));
        }
        Ok(Manifest {
            chain_id: required(&self.chain_id, "--chain-id")?,
            bech32_prefix: required(&self.bech32_prefix, "--bech32-prefix")?,
            rpc_http: self.rpc.clone(),
            rpc_ws: Vec::new(),
            block_time_ms: self.block_time_ms.unwrap_or(6_000),
            liquidation_rule: self.liquidation_rule.ok_or_else(|| {
                flag_error(
                    "--liquidation-rule",
                    "is required when --manifest is not given (target_health_factor or close_factor)",
                )
            })?,
            health_query: self.health_query.unwrap_or_default(),
            contracts: Contracts {
                red_bank: required(&self.red_bank, "--red-bank")?,
                oracle: required(&self.oracle, "--oracle")?,
                params: required(&self.params, "--params")?,
                rewards_collector: required(&self.rewards_collector, "--rewards-collector")?,
                swapper: self.swapper.clone(),
                credit_manager: None,
                address_provider: None,
                health: None,
                account_nft: None,
            },
            denoms: vec![DenomInfo {
                denom: required(&self.fee_denom, "--fee-denom")?,
                decimals: 6,
            }],
            fee: FeeConfig {
                denom: required(&self.fee_denom, "--fee-denom")?,
                gas_price: required(&self.gas_price, "--gas-price")?,
                market: Default::default(),
            },
            liquidator_mnemonic: None,
            admin_url: None,
            provenance: None,
        })
    }

    fn apply_overrides(&self, m: &mut Manifest) {
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                *field = v.clone();
            }
        };
        set(&mut m.chain_id, &self.chain_id);
        set(&mut m.bech32_prefix, &self.bech32_prefix);
        set(&mut m.contracts.red_bank, &self.red_bank);
        set(&mut m.contracts.oracle, &self.oracle);
        set(&mut m.contracts.params, &self.params);
        set(&mut m.contracts.rewards_collector, &self.rewards_collector);
        set(&mut m.fee.denom, &self.fee_denom);
        set(&mut m.fee.gas_price, &self.gas_price);
        if self.swapper.is_some() {
            m.contracts.swapper = self.swapper.clone();
        }
        if let Some(ms) = self.block_time_ms {
            m.block_time_ms = ms;
        }
        if let Some(shape) = self.health_query {
            m.health_query = shape;
        }
        if let Some(rule) = self.liquidation_rule {
            m.liquidation_rule = rule;
        }
        if !self.rpc.is_empty() {
            m.rpc_http = self.rpc.clone();
        }
        if !self.ws.is_empty() {
            m.rpc_ws = self.ws.clone();
        }
        if m.rpc_ws.is_empty() {
            m.rpc_ws = m
                .rpc_http
                .iter()
                .map(|url| websocket_url_for(url))
                .collect();
        }
    }
}

/// `http://host:port` → `ws://host:port/websocket`, the CometBFT convention.
pub fn websocket_url_for(http_url: &str) -> String {
    let trimmed = http_url.trim_end_matches('/');
    let ws = if let Some(rest) = trimmed.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        trimmed.to_string()
    };
    format!("{ws}/websocket")
}

fn wait_for_file(path: &Path, patience: Duration) -> Result<(), ConfigError> {
    let deadline = Instant::now() + patience;
    while !path.exists() {
        if Instant::now() >= deadline {
            return Err(flag_error(
                "--manifest",
                format!(
                    "{} does not exist (waited {}s; see --manifest-wait-secs)",
                    path.display(),
                    patience.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Where the signing mnemonic comes from. It is never logged: `Debug` is redacted and errors
/// never quote it.
#[derive(Clone, Default, Args)]
pub struct MnemonicArgs {
    /// BIP-39 mnemonic of the liquidator's master wallet (prefer --mnemonic-file or the env).
    #[arg(long, env = "MNEMONIC", hide_env_values = true)]
    pub mnemonic: Option<String>,
    /// File holding the mnemonic (e.g. a mounted secret).
    #[arg(long, env = "MNEMONIC_FILE")]
    pub mnemonic_file: Option<PathBuf>,
}

impl std::fmt::Debug for MnemonicArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MnemonicArgs")
            .field("mnemonic", &self.mnemonic.as_ref().map(|_| "<redacted>"))
            .field("mnemonic_file", &self.mnemonic_file)
            .finish()
    }
}

/// A mnemonic held in memory; prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl MnemonicArgs {
    /// The mnemonic from (in order) --mnemonic, --mnemonic-file, then the manifest's scenario
    /// mnemonic (devnet only).
    pub fn resolve(&self, manifest: Option<&Manifest>) -> Result<Secret, ConfigError> {
        let phrase = if let Some(m) = &self.mnemonic {
            m.clone()
        } else if let Some(path) = &self.mnemonic_file {
            std::fs::read_to_string(path).map_err(|e| {
                flag_error(
                    "--mnemonic-file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?
        } else if let Some(m) = manifest.and_then(|m| m.liquidator_mnemonic.clone()) {
            m
        } else {
            return Err(flag_error(
                "--mnemonic",
                "no mnemonic: give --mnemonic/MNEMONIC or --mnemonic-file",
            ));
        };
        let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
        let words = phrase.split(' ').filter(|w| !w.is_empty()).count();
        if ![12, 15, 18, 21, 24].contains(&words) {
            return Err(flag_error(
                "--mnemonic",
                format!("has {words} words; a BIP-39 mnemonic has 12, 15, 18, 21 or 24"),
            ));
        }
        Ok(Secret(phrase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        mnemonic: MnemonicArgs,
    }

    #[test]
    fn missing_flags_are_named() {
        let cli = Cli::parse_from(["x", "--rpc", "http://127.0.0.1:1"]);
        let err = cli.chain.resolve().unwrap_err().to_string();
        assert!(err.contains("--chain-id"), "{err}");
        let cli = Cli::parse_from(["x"]);
        let err = cli.chain.resolve().unwrap_err().to_string();
        assert!(err.contains("--rpc"), "{err}");
    }

    #[test]
    fn flags_build_a_manifest_and_derive_websocket_urls() {
        let cli = Cli::parse_from([
            "x",
            "--rpc",
            "http://127.0.0.1:26657",
            "--chain-id",
            "osmosis-1",
            "--bech32-prefix",
            "osmo",
            "--red-bank",
            "osmo1rb",
            "--oracle",
            "osmo1or",
            "--params",
            "osmo1pa",
            "--rewards-collector",
            "osmo1rc",
            "--fee-denom",
            "uosmo",
            "--gas-price",
            "0.0025",
            "--liquidation-rule",
            "target_health_factor",
        ]);
        let m = cli.chain.resolve().unwrap();
        assert_eq!(m.rpc_ws, vec!["ws://127.0.0.1:26657/websocket".to_string()]);
        assert_eq!(m.fee.gas_price, "0.0025");
    }

    #[test]
    fn no_chains_liquidation_rule_is_assumed() {
        let flags = [
            "x",
            "--rpc",
            "http://127.0.0.1:26657",
            "--chain-id",
            "neutron-1",
            "--bech32-prefix",
            "neutron",
            "--red-bank",
            "neutron1rb",
            "--oracle",
            "neutron1or",
            "--params",
            "neutron1pa",
            "--rewards-collector",
            "neutron1rc",
            "--fee-denom",
            "untrn",
            "--gas-price",
            "0.0053",
        ];
        let err = Cli::parse_from(flags)
            .chain
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--liquidation-rule"), "{err}");
        let with_rule = [&flags[..], &["--liquidation-rule", "close_factor"]].concat();
        let m = Cli::parse_from(with_rule).chain.resolve().unwrap();
        assert_eq!(m.liquidation_rule, mars::rule::LiquidationRule::CloseFactor);
    }

    #[test]
    fn missing_manifest_is_named() {
        let cli = Cli::parse_from(["x", "--manifest", "/nonexistent/manifest.json"]);
        let err = cli.chain.resolve().unwrap_err().to_string();
        assert!(err.contains("--manifest"), "{err}");
    }

    #[test]
    fn mnemonic_is_validated_and_redacted() {
        let cli = Cli::parse_from(["x", "--mnemonic", "one two three"]);
        let err = cli.mnemonic.resolve(None).unwrap_err().to_string();
        assert!(
            err.contains("--mnemonic") && !err.contains("three"),
            "{err}"
        );
        let phrase = "abandon ".repeat(11) + "about";
        let cli = Cli::parse_from(["x", "--mnemonic", &phrase]);
        let secret = cli.mnemonic.resolve(None).unwrap();
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert!(!format!("{:?}", cli.mnemonic).contains("abandon"));
    }
}
