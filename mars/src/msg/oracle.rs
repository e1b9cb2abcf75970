//! Messages of the oracle, with the JSON of Mars's oracle (`packages/types/src/oracle/msg.rs`).
//!
//! Prices are per smallest unit: the value in base-denom units of one unit of `denom`
//! (e.g. `uatom` priced in `uusd`-equivalent value units).

use cosmwasm_std::{Decimal, Empty};
use serde::{Deserialize, Serialize};

/// Which action a price is asked for. The Red Bank prices liquidations with `liquidation`
/// and everything else (borrow, withdraw, `user_position`) with `default`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    #[default]
    Default,
    Liquidation,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub struct InstantiateMsg {
    pub owner: String,
    /// The denom prices are quoted in.
    pub base_denom: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_init: Option<Empty>,
}

/// A price source. `fixed` is Mars's Osmosis-oracle source of that name; `fixed_by_kind` is
/// ours, so a devnet can quote a liquidation price apart from the default one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceSource {
    Fixed {
        price: Decimal,
    },
    FixedByKind {
        default_price: Decimal,
        liquidation_price: Decimal,
    },
}

impl PriceSource {
    pub fn price(&self, kind: ActionKind) -> Decimal {
        match (self, kind) {
            (PriceSource::Fixed { price }, _) => *price,
            (PriceSource::FixedByKind { default_price, .. }, ActionKind::Default) => *default_price,
            (
                PriceSource::FixedByKind {
                    liquidation_price, ..
                },
                ActionKind::Liquidation,
            ) => *liquidation_price,
        }
    }
}

/// One entry of the owner's bulk `set_prices`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct PriceUpdate {
    pub denom: String,
    pub price: Decimal,
    /// When set, liquidations are priced with this instead of `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidation_price: Option<Decimal>,
}

impl PriceUpdate {
    pub fn price_source(&self) -> PriceSource {
        match self.liquidation_price {
            Some(liquidation_price) => PriceSource::FixedByKind {
                default_price: self.price,
                liquidation_price,
            },
            None => PriceSource::Fixed { price: self.price },
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Owner only (Mars).
    SetPriceSource {
        denom: String,
        price_source: PriceSource,
    },
    /// Owner only (Mars).
    RemovePriceSource { denom: String },
    /// Owner only (Mars).
    UpdateConfig {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_denom: Option<String>,
    },
    /// Owner only (ours): move many prices in one message, as a devnet price path does.
    SetPrices { prices: Vec<PriceUpdate> },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    Config {},
    PriceSource {
        denom: String,
    },
    PriceSources {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Price {
        denom: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<ActionKind>,
    },
    Prices {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<ActionKind>,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    pub owner: Option<String>,
    pub proposed_new_owner: Option<String>,
    pub base_denom: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PriceSourceResponse {
    pub denom: String,
    pub price_source: PriceSource,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PriceResponse {
    pub denom: String,
    pub price: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_query_json_matches_mars() {
        let q = QueryMsg::Price {
            denom: "uatom".into(),
            kind: Some(ActionKind::Liquidation),
        };
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"price":{"denom":"uatom","kind":"liquidation"}}"#
        );
        let parsed: QueryMsg = serde_json::from_str(r#"{"price":{"denom":"uatom"}}"#).unwrap();
        assert_eq!(
            parsed,
            QueryMsg::Price {
                denom: "uatom".into(),
                kind: None
            }
        );
        let parsed: QueryMsg =
            serde_json::from_str(r#"{"prices":{"start_after":null,"limit":5,"kind":"default"}}"#)
                .unwrap();
        assert_eq!(
            parsed,
            QueryMsg::Prices {
                start_after: None,
                limit: Some(5),
                kind: Some(ActionKind::Default)
            }
        );
    }

    #[test]
    fn fixed_price_source_json_matches_mars_osmosis_oracle() {
        let msg = ExecuteMsg::SetPriceSource {
            denom: "uatom".into(),
            price_source: PriceSource::Fixed {
                price: Decimal::percent(750),
            },
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"set_price_source":{"denom":"uatom","price_source":{"fixed":{"price":"7.5"}}}}"#
        );
        let by_kind = PriceUpdate {
            denom: "uatom".into(),
            price: Decimal::percent(750),
            liquidation_price: Some(Decimal::percent(700)),
        }
        .price_source();
        assert_eq!(by_kind.price(ActionKind::Default), Decimal::percent(750));
        assert_eq!(
            by_kind.price(ActionKind::Liquidation),
            Decimal::percent(700)
        );
    }
}
