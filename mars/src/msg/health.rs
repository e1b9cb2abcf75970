//! Messages of Rover's health contract, with the JSON of Mars v2.1
//! (`packages/types/src/health/{msg,health,account}.rs`).
//!
//! The health contract reads an account's positions from the credit manager and its prices and
//! params from the oracle and params contracts the credit manager names, then answers the
//! account's health. On Osmosis (contracts v2.1) the queries take the account `kind`; on
//! Neutron (core-contracts v2.2+) they do not ([`core::QueryMsg`]: the contract reads the kind
//! from the credit manager) and the answers carry perps fields.

use std::fmt;

use cosmwasm_std::{Decimal, Uint128};
use serde::{Deserialize, Serialize};

use super::oracle::ActionKind;
use crate::types::Health;

/// Storage namespaces of the health contract.
pub mod namespace {
    /// `Item<Addr>`.
    pub const CREDIT_MANAGER: &str = "credit_manager";
    /// mars-owner `Owner`.
    pub const OWNER: &str = "owner";
}

/// What kind of credit account an id is; it decides the risk parameters its health uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Default,
    /// Core-contracts (Neutron) only: an account that deposits only the perps base denom; its
    /// health weighs coins as a default account's does.
    UsdcMargin,
    /// Weighted with the assets' `hls` params; only correlated collateral counts.
    HighLeveredStrategy,
    /// An account run by a fund-manager vault.
    FundManager {
        vault_addr: String,
    },
}

impl fmt::Display for AccountKind {
    /// Mars's `Display`: the `Debug` form (`Default`, `HighLeveredStrategy`, …), which the credit
    /// manager writes into its `kind` event attribute.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InstantiateMsg {
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_manager: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Owner only.
    UpdateConfig { credit_manager: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    /// Answers [`HealthValuesResponse`].
    HealthValues {
        account_id: String,
        kind: AccountKind,
        action: ActionKind,
    },
    /// Answers [`HealthState`]; an account without debt is healthy without pricing anything.
    HealthState {
        account_id: String,
        kind: AccountKind,
        action: ActionKind,
    },
    Config {},
}

/// The health queries of core-contracts (Neutron, v2.2 on): no `kind`.
pub mod core {
    use serde::{Deserialize, Serialize};

    use crate::msg::oracle::ActionKind;

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    pub enum QueryMsg {
        /// Answers [`super::HealthValuesResponse`] with its perps fields.
        HealthValues {
            account_id: String,
            action: ActionKind,
        },
        /// Answers [`super::HealthState`].
        HealthState {
            account_id: String,
            action: ActionKind,
        },
        Config {},
    }
}

/// Which shape of health query a deployment's health contract takes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HealthQueryShape {
    /// contracts v2.1 (Osmosis): `kind` in every query.
    #[default]
    WithKind,
    /// core-contracts v2.2+ (Neutron): no `kind`.
    WithoutKind,
}

impl std::str::FromStr for HealthQueryShape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [HealthQueryShape::WithKind, HealthQueryShape::WithoutKind]
            .into_iter()
            .find(|shape| shape.as_str() == text)
            .ok_or_else(|| {
                format!("`{text}` is not a health query shape (with_kind, without_kind)")
            })
    }
}

/// A `health_values` query in either shape.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum HealthValuesQuery {
    WithKind(QueryMsg),
    WithoutKind(core::QueryMsg),
}

impl HealthQueryShape {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthQueryShape::WithKind => "with_kind",
            HealthQueryShape::WithoutKind => "without_kind",
        }
    }

    /// `health_values` of `account_id` (of `kind`, which only the `WithKind` shape sends).
    pub fn health_values(
        self,
        account_id: &str,
        kind: AccountKind,
        action: ActionKind,
    ) -> HealthValuesQuery {
        let account_id = account_id.to_string();
        match self {
            HealthQueryShape::WithKind => HealthValuesQuery::WithKind(QueryMsg::HealthValues {
                account_id,
                kind,
                action,
            }),
            HealthQueryShape::WithoutKind => {
                HealthValuesQuery::WithoutKind(core::QueryMsg::HealthValues { account_id, action })
            }
        }
    }
}

/// Mars' `HealthValuesResponse`: the [`Health`] fields at the top level of the JSON, plus the
/// two verdicts mars-health derives from them, and on core-contracts the account's perps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HealthValuesResponse {
    #[serde(flatten)]
    pub health: Health,
    /// The liquidation health factor is below one.
    pub liquidatable: bool,
    /// The max-LTV health factor is below one.
    pub above_max_ltv: bool,
    /// core-contracts only: the account's perps, valued in the oracle's base denom.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub perps: Option<PerpsHealth>,
}

/// The perps fields of core-contracts' `HealthValuesResponse`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PerpsHealth {
    pub perps_pnl_profit: Uint128,
    pub perps_pnl_loss: Uint128,
    pub has_perps: bool,
}

impl PerpsHealth {
    /// An account without perps: no PnL either way.
    pub fn none_held() -> Self {
        PerpsHealth::default()
    }
}

impl HealthValuesResponse {
    /// The account holds perps positions (core-contracts' `has_perps`).
    pub fn has_perps(&self) -> bool {
        self.perps.as_ref().is_some_and(|p| p.has_perps)
    }
}

impl From<Health> for HealthValuesResponse {
    fn from(health: Health) -> Self {
        HealthValuesResponse {
            liquidatable: health.is_liquidatable(),
            above_max_ltv: health.is_above_max_ltv(),
            health,
            perps: None,
        }
    }
}

/// `"healthy"` or `{"unhealthy":{"max_ltv_health_factor":"0.9"}}`: max-LTV health only
/// (core-contracts adds the liquidation health factor, `Decimal::MAX` when there is none).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Unhealthy {
        max_ltv_health_factor: Decimal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        liquidation_health_factor: Option<Decimal>,
    },
}

impl fmt::Display for HealthState {
    /// Mars's wording, as the credit manager writes it into its `assert_health` attributes.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            HealthState::Healthy => write!(f, "healthy"),
            HealthState::Unhealthy {
                max_ltv_health_factor,
                ..
            } => write!(
                f,
                "unhealthy (max_ltv_health_factor: {:?}",
                max_ltv_health_factor.to_string()
            ),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    pub credit_manager: Option<String>,
    pub owner_response: OwnerResponse,
}

/// mars-owner's `OwnerResponse`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OwnerResponse {
    pub owner: Option<String>,
    pub proposed: Option<String>,
    pub emergency_owner: Option<String>,
    pub initialized: bool,
    pub abolished: bool,
}

impl OwnerResponse {
    /// An initialised owner with nothing proposed and no emergency owner.
    pub fn owned_by(owner: impl Into<String>) -> Self {
        OwnerResponse {
            owner: Some(owner.into()),
            proposed: None,
            emergency_owner: None,
            initialized: true,
            abolished: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use cosmwasm_std::Uint128;

    use super::*;

    #[test]
    fn health_values_query_json_matches_mars() {
        let q = QueryMsg::HealthValues {
            account_id: "1".into(),
            kind: AccountKind::Default,
            action: ActionKind::Liquidation,
        };
        let json =
            r#"{"health_values":{"account_id":"1","kind":"default","action":"liquidation"}}"#;
        assert_eq!(serde_json::to_string(&q).unwrap(), json);
        assert_eq!(serde_json::from_str::<QueryMsg>(json).unwrap(), q);

        let q: QueryMsg = serde_json::from_str(
            r#"{"health_state":{"account_id":"7","kind":"high_levered_strategy","action":"default"}}"#,
        )
        .unwrap();
        assert_eq!(
            q,
            QueryMsg::HealthState {
                account_id: "7".into(),
                kind: AccountKind::HighLeveredStrategy,
                action: ActionKind::Default,
            }
        );
    }

    #[test]
    fn account_kinds_json_and_display_match_mars() {
        let fund: AccountKind =
            serde_json::from_str(r#"{"fund_manager":{"vault_addr":"osmo1vault"}}"#).unwrap();
        assert_eq!(
            fund,
            AccountKind::FundManager {
                vault_addr: "osmo1vault".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&AccountKind::HighLeveredStrategy).unwrap(),
            r#""high_levered_strategy""#
        );
        let usdc: AccountKind = serde_json::from_str(r#""usdc_margin""#).unwrap();
        assert_eq!(usdc, AccountKind::UsdcMargin);
        assert_eq!(usdc.to_string(), "UsdcMargin");
        assert_eq!(
            AccountKind::HighLeveredStrategy.to_string(),
            "HighLeveredStrategy"
        );
    }

    #[test]
    fn health_values_serialise_flat_like_mars() {
        let values = HealthValuesResponse::from(Health {
            total_debt_value: Uint128::zero(),
            total_collateral_value: Uint128::new(120_000),
            max_ltv_adjusted_collateral: Uint128::new(85_000),
            liquidation_threshold_adjusted_collateral: Uint128::new(95_000),
            max_ltv_health_factor: None,
            liquidation_health_factor: None,
        });
        let expected: serde_json::Value = serde_json::from_str(
            r#"{"total_debt_value":"0","total_collateral_value":"120000",
                "max_ltv_adjusted_collateral":"85000",
                "liquidation_threshold_adjusted_collateral":"95000",
                "max_ltv_health_factor":null,"liquidation_health_factor":null,
                "liquidatable":false,"above_max_ltv":false}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&values).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<HealthValuesResponse>(expected).unwrap(),
            values
        );
    }

    #[test]
    fn health_answers_parse_mars_json() {
        let values: HealthValuesResponse = serde_json::from_str(
            r#"{"total_debt_value":"650000","total_collateral_value":"75000",
                "max_ltv_adjusted_collateral":"52500",
                "liquidation_threshold_adjusted_collateral":"60000",
                "max_ltv_health_factor":"0.080769230769230769",
                "liquidation_health_factor":"0.092307692307692307",
                "liquidatable":true,"above_max_ltv":true}"#,
        )
        .unwrap();
        assert!(values.liquidatable);
        assert!(values.above_max_ltv);
        assert_eq!(
            values.health,
            Health {
                total_debt_value: Uint128::new(650_000),
                total_collateral_value: Uint128::new(75_000),
                max_ltv_adjusted_collateral: Uint128::new(52_500),
                liquidation_threshold_adjusted_collateral: Uint128::new(60_000),
                max_ltv_health_factor: Some(Decimal::from_str("0.080769230769230769").unwrap()),
                liquidation_health_factor: Some(Decimal::from_str("0.092307692307692307").unwrap()),
            }
        );
        assert_eq!(HealthValuesResponse::from(values.health.clone()), values);

        let state: HealthState =
            serde_json::from_str(r#"{"unhealthy":{"max_ltv_health_factor":"0.9"}}"#).unwrap();
        assert_eq!(
            state,
            HealthState::Unhealthy {
                max_ltv_health_factor: Decimal::percent(90),
                liquidation_health_factor: None,
            }
        );
        assert_eq!(
            serde_json::from_str::<HealthState>(r#""healthy""#).unwrap(),
            HealthState::Healthy
        );
    }

    /// core-contracts' shapes: `health_values` without `kind` (and refusing one), answers with
    /// `perps_pnl_profit`, `perps_pnl_loss` and `has_perps`.
    #[test]
    fn core_contracts_health_query_and_answer() {
        let query = HealthQueryShape::WithoutKind.health_values(
            "12",
            AccountKind::HighLeveredStrategy,
            ActionKind::Liquidation,
        );
        assert_eq!(
            serde_json::to_string(&query).unwrap(),
            r#"{"health_values":{"account_id":"12","action":"liquidation"}}"#
        );
        let with_kind =
            r#"{"health_values":{"account_id":"12","kind":"default","action":"liquidation"}}"#;
        let refused = serde_json::from_str::<core::QueryMsg>(with_kind).unwrap_err();
        assert!(
            refused.to_string().contains("unknown field `kind`"),
            "{refused}"
        );
        assert_eq!(
            serde_json::to_string(&HealthQueryShape::WithKind.health_values(
                "12",
                AccountKind::Default,
                ActionKind::Liquidation
            ))
            .unwrap(),
            with_kind
        );

        let values: HealthValuesResponse = serde_json::from_str(
            r#"{"total_debt_value":"100","total_collateral_value":"120",
                "max_ltv_adjusted_collateral":"90","liquidation_threshold_adjusted_collateral":"95",
                "max_ltv_health_factor":"0.9","liquidation_health_factor":"0.95",
                "perps_pnl_profit":"0","perps_pnl_loss":"7",
                "liquidatable":true,"above_max_ltv":true,"has_perps":true}"#,
        )
        .unwrap();
        assert!(values.has_perps());
        assert_eq!(
            values.perps.as_ref().unwrap().perps_pnl_loss,
            Uint128::new(7)
        );
        // The Osmosis answer has no perps fields, and none are written back.
        let osmosis = HealthValuesResponse::from(values.health.clone());
        assert!(!osmosis.has_perps());
        assert!(!serde_json::to_string(&osmosis).unwrap().contains("perps"));
        let back: HealthValuesResponse =
            serde_json::from_str(&serde_json::to_string(&osmosis).unwrap()).unwrap();
        assert_eq!(back.perps, None);
    }
}
