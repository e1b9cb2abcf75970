//! What the chain client needs to know about one chain.

use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128};
use url::Url;

use mars::manifest::{FeeMarket, Manifest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain config: `{field}` {problem}")]
pub struct ChainConfigError {
    /// The field at fault, e.g. `rpc_http[1]` or `gas_price`.
    pub field: String,
    pub problem: String,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ChainConfigError {
    ChainConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    pub chain_id: String,
    /// bech32 account prefix, e.g. `osmo`.
    pub account_prefix: String,
    /// CometBFT JSON-RPC over HTTP, tried in this order (fail-over).
    pub rpc_http: Vec<Url>,
    /// CometBFT websockets for the block feed, tried in this order. Empty: the feed polls HTTP.
    pub rpc_ws: Vec<Url>,
    pub fee_denom: String,
    /// Fee per unit of gas, in `fee_denom`.
    pub gas_price: Decimal,
    /// Simulated gas is multiplied by this for the gas limit.
    pub gas_adjustment: Decimal,
    /// Where the gas price moves: `fixed` signs at `gas_price`; otherwise the fee market's base
    /// price is read and signed with `gas_price_headroom` over it, never below `gas_price`.
    pub fee_market: FeeMarket,
    /// How far over the fee market's base price txs are signed, for its moves before delivery.
    pub gas_price_headroom: Decimal,
    /// The chain's block interval: paces polling and stall detection.
    pub block_time: Duration,
    /// Per-request HTTP timeout.
    pub request_timeout: Duration,
    /// A request unanswered this long goes to the next endpoint too; the first answer wins
    /// (`None`: only a failed request moves on). Default: a quarter of the block time.
    pub hedge_after: Option<Duration>,
}

impl ChainConfig {
    /// Default multiplier from simulated gas to gas limit.
    pub const DEFAULT_GAS_ADJUSTMENT: Decimal =
        Decimal::new(Uint128::new(1_300_000_000_000_000_000));
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default headroom over a fee market's base price: Neutron's moves by at most 8 % a block
    /// (a block at twice its target), so 1.2 covers two full blocks.
    pub const DEFAULT_GAS_PRICE_HEADROOM: Decimal =
        Decimal::new(Uint128::new(1_200_000_000_000_000_000));

    /// Builds and validates a config from string inputs; errors name the field.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: &str,
        account_prefix: &str,
        rpc_http: &[String],
        rpc_ws: &[String],
        fee_denom: &str,
        gas_price: &str,
        block_time: Duration,
    ) -> Result<Self, ChainConfigError> {
        let config = ChainConfig {
            chain_id: chain_id.trim().to_string(),
            account_prefix: account_prefix.trim().to_string(),
            rpc_http: parse_urls("rpc_http", rpc_http, &["http", "https"])?,
            rpc_ws: parse_urls("rpc_ws", rpc_ws, &["ws", "wss"])?,
            fee_denom: fee_denom.trim().to_string(),
            gas_price: gas_price.trim().parse().map_err(|_| {
                invalid(
                    "gas_price",
                    format!("`{gas_price}` is not a decimal number"),
                )
            })?,
            gas_adjustment: Self::DEFAULT_GAS_ADJUSTMENT,
            fee_market: FeeMarket::Fixed,
            gas_price_headroom: Self::DEFAULT_GAS_PRICE_HEADROOM,
            block_time,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            hedge_after: Some(block_time / 4),
        };
        config.validate()?;
        Ok(config)
    }

    /// The chain a devnet (or an operator's hand-written manifest) describes.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, ChainConfigError> {
        let mut config = Self::new(
            &manifest.chain_id,
            &manifest.bech32_prefix,
            &manifest.rpc_http,
            &manifest.rpc_ws,
            &manifest.fee.denom,
            &manifest.fee.gas_price,
            Duration::from_millis(manifest.block_time_ms),
        )?;
        config.fee_market = manifest.fee.market;
        Ok(config)
    }

    pub fn with_gas_price_headroom(mut self, headroom: Decimal) -> Result<Self, ChainConfigError> {
        self.gas_price_headroom = headroom;
        self.validate()?;
        Ok(self)
    }

    pub fn with_gas_adjustment(
        mut self,
        gas_adjustment: Decimal,
    ) -> Result<Self, ChainConfigError> {
        self.gas_adjustment = gas_adjustment;
        self.validate()?;
        Ok(self)
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Result<Self, ChainConfigError> {
        self.request_timeout = timeout;
        self.validate()?;
        Ok(self)
    }

    /// Hedges requests unanswered after `after` to the next endpoint (`None`: never).
    pub fn with_hedge_after(mut self, after: Option<Duration>) -> Self {
        self.hedge_after = after;
        self
    }

    pub fn validate(&self) -> Result<(), ChainConfigError> {
        if self.chain_id.is_empty() {
            return Err(invalid("chain_id", "is empty"));
        }
        if self.account_prefix.is_empty()
            || !self
                .account_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(invalid(
                "account_prefix",
                format!("`{}` is not a bech32 prefix", self.account_prefix),
            ));
        }
        if self.rpc_http.is_empty() {
            return Err(invalid("rpc_http", "lists no endpoint"));
        }
        if self.fee_denom.is_empty() {
            return Err(invalid("fee_denom", "is empty"));
        }
        if self.gas_adjustment < Decimal::one() {
            return Err(invalid(
                "gas_adjustment",
                format!(
                    "{} is below 1: transactions would run out of gas",
                    self.gas_adjustment
                ),
            ));
        }
        if self.gas_price_headroom < Decimal::one() {
            return Err(invalid(
                "gas_price_headroom",
                format!(
                    "{} is below 1: txs would pay less than the fee market's price",
                    self.gas_price_headroom
                ),
            ));
        }
        if self.block_time.is_zero() {
            return Err(invalid("block_time", "must be positive"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be positive"));
        }
        Ok(())
    }
}

fn parse_urls(
    field: &str,
    urls: &[String],
    schemes: &[&str],
) -> Result<Vec<Url>, ChainConfigError> {
    urls.iter()
        .enumerate()
        .map(|(i, raw)| {
            let name = format!("{field}[{i}]");
            let url = Url::parse(raw.trim())
                .map_err(|e| invalid(name.clone(), format!("`{raw}` is not a URL: {e}")))?;
            if !schemes.contains(&url.scheme()) {
                return Err(invalid(
                    name,
                    format!("`{raw}` must use {}", schemes.join(" or ")),
                ));
            }
            if url.host_str().is_none() {
                return Err(invalid(name, format!("`{raw}` has no host")));
            }
            Ok(url)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            rpc_http: vec![
                "http://127.0.0.1:26657".into(),
                "http://127.0.0.1:26658".into(),
            ],
            block_time_ms: 500,
            ..Manifest::example()
        }
    }

    #[test]
    fn builds_from_a_manifest() {
        let c = ChainConfig::from_manifest(&manifest()).unwrap();
        assert_eq!(c.chain_id, "devnet-1");
        assert_eq!(c.account_prefix, "osmo");
        assert_eq!(c.rpc_http.len(), 2);
        assert_eq!(c.rpc_http[1].as_str(), "http://127.0.0.1:26658/");
        assert_eq!(c.rpc_ws[0].as_str(), "ws://127.0.0.1:26657/websocket");
        assert_eq!(c.fee_denom, "uosmo");
        assert_eq!(c.gas_price, Decimal::permille(25));
        assert_eq!(c.gas_adjustment, Decimal::percent(130));
        assert_eq!(c.block_time, Duration::from_millis(500));
    }

    #[test]
    fn bad_urls_name_the_field() {
        let mut m = manifest();
        m.rpc_http[1] = "not a url".into();
        let err = ChainConfig::from_manifest(&m).unwrap_err();
        assert_eq!(err.field, "rpc_http[1]");
        assert!(err.to_string().contains("not a url"), "{err}");

        let mut m = manifest();
        m.rpc_ws[0] = "http://127.0.0.1:26657/websocket".into();
        let err = ChainConfig::from_manifest(&m).unwrap_err();
        assert_eq!(err.field, "rpc_ws[0]");
        assert!(err.to_string().contains("ws or wss"), "{err}");

        let mut m = manifest();
        m.rpc_http.clear();
        assert_eq!(
            ChainConfig::from_manifest(&m).unwrap_err().field,
            "rpc_http"
        );
    }

    #[test]
    fn other_bad_fields_are_named() {
        let mut m = manifest();
        m.fee.gas_price = "cheap".into();
        assert_eq!(
            ChainConfig::from_manifest(&m).unwrap_err().field,
            "gas_price"
        );
        let mut m = manifest();
        m.bech32_prefix = "Osmo".into();
        assert_eq!(
            ChainConfig::from_manifest(&m).unwrap_err().field,
            "account_prefix"
        );
        let c = ChainConfig::from_manifest(&manifest()).unwrap();
        let err = c.with_gas_adjustment(Decimal::percent(90)).unwrap_err();
        assert_eq!(err.field, "gas_adjustment");
    }
}
