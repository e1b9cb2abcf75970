//! The devnet manifest: everything a service needs to talk to one chain and its Mars contracts.
//!
//! The devnet writes it on start (`devnet --manifest PATH`); every service accepts
//! `--manifest PATH` in place of the individual chain flags. A production operator writes the
//! same file by hand for a public chain (without the mnemonic, which comes from env or a file).

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("manifest {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("manifest {path}: field `{field}` {problem}")]
    Invalid {
        path: String,
        field: &'static str,
        problem: String,
    },
}

/// One chain as the services see it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub chain_id: String,
    /// bech32 account prefix, e.g. `osmo`.
    pub bech32_prefix: String,
    /// CometBFT JSON-RPC over HTTP, e.g. `http://127.0.0.1:26657`. Several for fail-over.
    pub rpc_http: Vec<String>,
    /// CometBFT websocket, e.g. `ws://127.0.0.1:26657/websocket`.
    pub rpc_ws: Vec<String>,
    /// Block interval the chain targets, in milliseconds.
    pub block_time_ms: u64,
    pub contracts: Contracts,
    /// How the deployment's Red Bank caps one liquidation: `target_health_factor` (contracts
    /// v2.1, Osmosis; the default) or `close_factor` (core-contracts, Neutron).
    #[serde(default)]
    pub liquidation_rule: crate::rule::LiquidationRule,
    /// How the Rover health contract takes its queries: `with_kind` (contracts v2.1, Osmosis;
    /// the default) or `without_kind` (core-contracts, Neutron).
    #[serde(default)]
    pub health_query: crate::msg::health::HealthQueryShape,
    pub denoms: Vec<DenomInfo>,
    pub fee: FeeConfig,
    /// The mnemonic funding the liquidator wallets in a devnet scenario. Never logged:
    /// `Debug` prints it redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidator_mnemonic: Option<String>,
    /// Devnet only: the admin endpoint that moves prices (`POST /admin/prices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    /// Where the addresses and endpoints come from, and whether anyone checked them against
    /// the chain (the presets in `deploy/chains/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contracts {
    pub red_bank: String,
    pub oracle: String,
    pub params: String,
    /// Where the Red Bank pays the protocol's share of the liquidation bonus.
    pub rewards_collector: String,
    /// Constant-product swap pool contract used to swap seized collateral back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swapper: Option<String>,
    /// Rover's credit manager, when the chain runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_manager: Option<String>,
    /// Published for reference (the services find the rest from the credit manager's config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_nft: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DenomInfo {
    pub denom: String,
    pub decimals: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeeConfig {
    pub denom: String,
    /// Gas price in `denom` per unit of gas, as a decimal string (e.g. `0.025`): the price paid
    /// with a fixed fee market, the floor under a moving one.
    pub gas_price: String,
    /// Where the chain's current gas price comes from.
    #[serde(default)]
    pub market: FeeMarket,
}

/// How a chain prices gas.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeeMarket {
    /// `fee.gas_price`, always (the devnet's osmosis flavor, a chain without a fee market).
    #[default]
    Fixed,
    /// Osmosis: an EIP-1559 base fee kept by each node,
    /// `/osmosis.txfees.v1beta1.Query/GetEipBaseFee`.
    OsmosisEip1559,
    /// skip-mev's feemarket module (Neutron): a base gas price set each block from block
    /// fullness, `/feemarket.feemarket.v1.Query/GasPrice` for `fee.denom`.
    Feemarket,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("chain_id", &self.chain_id)
            .field("bech32_prefix", &self.bech32_prefix)
            .field("rpc_http", &self.rpc_http)
            .field("rpc_ws", &self.rpc_ws)
            .field("block_time_ms", &self.block_time_ms)
            .field("contracts", &self.contracts)
            .field("denoms", &self.denoms)
            .field("fee", &self.fee)
            .field(
                "liquidator_mnemonic",
                &self.liquidator_mnemonic.as_ref().map(|_| "<redacted>"),
            )
            .field("admin_url", &self.admin_url)
            .field("provenance", &self.provenance)
            .finish()
    }
}

impl Manifest {
    /// A devnet-like manifest (Osmosis prefix, one RPC endpoint, no mnemonic), for tests
    /// and examples.
    pub fn example() -> Manifest {
        Manifest {
            chain_id: "devnet-1".into(),
            bech32_prefix: "osmo".into(),
            rpc_http: vec!["http://127.0.0.1:26657".into()],
            rpc_ws: vec!["ws://127.0.0.1:26657/websocket".into()],
            block_time_ms: 1000,
            liquidation_rule: crate::rule::LiquidationRule::TargetHealthFactor,
            health_query: crate::msg::health::HealthQueryShape::WithKind,
            contracts: Contracts {
                red_bank: "osmo1redbank".into(),
                oracle: "osmo1oracle".into(),
                params: "osmo1params".into(),
                rewards_collector: "osmo1rewards".into(),
                swapper: None,
                credit_manager: None,
                address_provider: None,
                health: None,
                account_nft: None,
            },
            denoms: vec![DenomInfo {
                denom: "uosmo".into(),
                decimals: 6,
            }],
            fee: FeeConfig {
                denom: "uosmo".into(),
                gas_price: "0.025".into(),
                market: FeeMarket::Fixed,
            },
            liquidator_mnemonic: None,
            admin_url: None,
            provenance: None,
        }
    }

    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: shown.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| ManifestError::Parse {
                path: shown.clone(),
                source,
            })?;
        manifest.validate(&shown)?;
        Ok(manifest)
    }

    /// Writes atomically (temp file + rename) so a service polling for the file never reads half.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, path)
    }

    pub fn validate(&self, path: &str) -> Result<(), ManifestError> {
        let invalid = |field: &'static str, problem: &str| ManifestError::Invalid {
            path: path.to_string(),
            field,
            problem: problem.to_string(),
        };
        if self.chain_id.trim().is_empty() {
            return Err(invalid("chain_id", "is empty"));
        }
        if self.bech32_prefix.trim().is_empty() {
            return Err(invalid("bech32_prefix", "is empty"));
        }
        if self.rpc_http.is_empty() {
            return Err(invalid("rpc_http", "lists no endpoint"));
        }
        for url in &self.rpc_http {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "rpc_http",
                    &format!("`{url}` is not an http(s) URL"),
                ));
            }
        }
        for url in &self.rpc_ws {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(invalid("rpc_ws", &format!("`{url}` is not a ws(s) URL")));
            }
        }
        if self.block_time_ms == 0 {
            return Err(invalid("block_time_ms", "must be positive"));
        }
        let prefix = format!("{}1", self.bech32_prefix);
        for (field, addr) in [
            ("contracts.red_bank", &self.contracts.red_bank),
            ("contracts.oracle", &self.contracts.oracle),
            ("contracts.params", &self.contracts.params),
            (
                "contracts.rewards_collector",
                &self.contracts.rewards_collector,
            ),
        ] {
            if !addr.starts_with(&prefix) {
                return Err(invalid(
                    field,
                    &format!("`{addr}` is not a `{prefix}…` address"),
                ));
            }
        }
        let optional = [
            ("contracts.swapper", &self.contracts.swapper),
            ("contracts.credit_manager", &self.contracts.credit_manager),
            (
                "contracts.address_provider",
                &self.contracts.address_provider,
            ),
            ("contracts.health", &self.contracts.health),
            ("contracts.account_nft", &self.contracts.account_nft),
        ];
        for (field, addr) in optional {
            if let Some(addr) = addr.as_ref().filter(|addr| !addr.starts_with(&prefix)) {
                return Err(invalid(
                    field,
                    &format!("`{addr}` is not a `{prefix}…` address"),
                ));
            }
        }
        if self.denoms.is_empty() {
            return Err(invalid("denoms", "lists no denom"));
        }
        if self.fee.denom.is_empty() {
            return Err(invalid("fee.denom", "is empty"));
        }
        if self.fee.gas_price.parse::<cosmwasm_std::Decimal>().is_err() {
            return Err(invalid(
                "fee.gas_price",
                &format!("`{}` is not a decimal", self.fee.gas_price),
            ));
        }
        Ok(())
    }

    pub fn decimals(&self, denom: &str) -> Option<u8> {
        self.denoms
            .iter()
            .find(|d| d.denom == denom)
            .map(|d| d.decimals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            liquidator_mnemonic: Some("secret words".into()),
            ..Manifest::example()
        }
    }

    #[test]
    fn round_trips_and_redacts_the_mnemonic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        let m = sample();
        m.write(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), m);
        assert!(!format!("{m:?}").contains("secret"));
    }

    #[test]
    fn names_the_bad_field() {
        let mut m = sample();
        m.contracts.oracle = "cosmos1x".into();
        let err = m.validate("m.json").unwrap_err().to_string();
        assert!(err.contains("contracts.oracle"), "{err}");
        let mut m = sample();
        m.fee.gas_price = "abc".into();
        let err = m.validate("m.json").unwrap_err().to_string();
        assert!(err.contains("fee.gas_price"), "{err}");
    }
}
