//! Messages of the params contract, with the JSON of Mars v2
//! (`packages/types/src/params/msg.rs`). Vault configs (credit manager) are not served.

use cosmwasm_std::{Decimal, Uint128};
use serde::{Deserialize, Serialize};

pub use crate::types::{AssetParams, CmSettings, LiquidationBonus, RedBankSettings};

/// Storage namespaces of the params contract.
pub mod namespace {
    pub const OWNER: &str = "owner";
    pub const ADDRESS_PROVIDER: &str = "address_provider";
    /// `Map<&str (denom), AssetParams>`.
    pub const ASSET_PARAMS: &str = "asset_params";
    /// `Item<Decimal>`, contracts v2.1 (Osmosis) only.
    pub const TARGET_HEALTH_FACTOR: &str = "target_health_factor";
    /// `Item<u8>`, core-contracts (Neutron) only.
    pub const MAX_PERP_PARAMS: &str = "max_perp_params";
}

/// Mars's `AssetParamsUnchecked` has the same JSON as the checked params (addresses as strings).
pub type AssetParamsUnchecked = AssetParams;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InstantiateMsg {
    pub owner: String,
    pub address_provider: String,
    /// contracts v2.1 (Osmosis): the health factor a liquidation aims to leave the account at,
    /// in [1, 2]. core-contracts has none: each asset's `close_factor` caps a liquidation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_health_factor: Option<Decimal>,
    /// core-contracts (Neutron): how many perp markets the params contract lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_perp_params: Option<u8>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AssetParamsUpdate {
    AddOrUpdate { params: AssetParamsUnchecked },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RedBankEmergencyUpdate {
    DisableBorrowing(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EmergencyUpdate {
    RedBank(RedBankEmergencyUpdate),
}

// A message is built once and serialised; boxing the params would only clutter callers.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Owner only.
    UpdateConfig {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address_provider: Option<String>,
    },
    /// Owner only; validated to [1, 2].
    UpdateTargetHealthFactor(Decimal),
    /// Owner only; validated as Mars's `AssetParamsUnchecked::check`.
    UpdateAssetParams(AssetParamsUpdate),
    /// Owner only.
    EmergencyUpdate(EmergencyUpdate),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    Config {},
    /// Answers `Option<AssetParams>`.
    AssetParams {
        denom: String,
    },
    /// Answers `Vec<AssetParams>`.
    AllAssetParams {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Answers a bare `Decimal`.
    TargetHealthFactor {},
    /// Answers [`TotalDepositResponse`].
    TotalDeposit {
        denom: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    pub address_provider: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TotalDepositResponse {
    pub denom: String,
    pub cap: Uint128,
    pub amount: Uint128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_json_matches_mars() {
        assert_eq!(
            serde_json::to_string(&QueryMsg::TargetHealthFactor {}).unwrap(),
            r#"{"target_health_factor":{}}"#
        );
        assert_eq!(
            serde_json::to_string(&ExecuteMsg::UpdateTargetHealthFactor(Decimal::percent(105)))
                .unwrap(),
            r#"{"update_target_health_factor":"1.05"}"#
        );
        let params: AssetParams = serde_json::from_str(
            r#"{"denom":"uatom","credit_manager":{"whitelisted":true,"hls":null},
                "red_bank":{"deposit_enabled":true,"borrow_enabled":true},
                "max_loan_to_value":"0.7","liquidation_threshold":"0.8",
                "liquidation_bonus":{"starting_lb":"0.01","slope":"2","min_lb":"0.02","max_lb":"0.1"},
                "protocol_liquidation_fee":"0.1","deposit_cap":"1000000000000"}"#,
        )
        .unwrap();
        let update = ExecuteMsg::UpdateAssetParams(AssetParamsUpdate::AddOrUpdate { params });
        let json = serde_json::to_string(&update).unwrap();
        assert!(json
            .starts_with(r#"{"update_asset_params":{"add_or_update":{"params":{"denom":"uatom""#));
    }
}
