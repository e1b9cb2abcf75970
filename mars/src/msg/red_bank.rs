//! Messages and stored state of the Red Bank, with the JSON of Mars v2
//! (`packages/types/src/red_bank/{msg,types}.rs`) and its storage layout
//! (`contracts/red-bank/src/state.rs`), so raw-state scans read the same keys on a devnet and
//! on a real chain.

use cosmwasm_std::{Addr, Decimal, Uint128};
use serde::{Deserialize, Serialize};

pub use crate::types::{InterestRateModel, Market, UserHealthStatus};

/// Storage namespaces of the Red Bank (cw-storage-plus `Map`/`Item` names).
pub mod namespace {
    /// `Item<Config>`.
    pub const CONFIG: &str = "config";
    /// `Item<OwnerState>`.
    pub const OWNER: &str = "owner";
    /// `Map<&str (denom), Market>`.
    pub const MARKETS: &str = "markets";
    /// `Map<(&UserIdKey, &str (denom)), Collateral>`; the user key is the JSON of [`super::UserId`].
    pub const COLLATERALS: &str = "colls";
    /// `Map<(&Addr, &str (denom)), Debt>`.
    pub const DEBTS: &str = "debts";
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InstantiateMsg {
    pub owner: String,
    pub config: CreateOrUpdateConfig,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct CreateOrUpdateConfig {
    /// Where the Red Bank finds the oracle, params, rewards collector and credit manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_provider: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InitOrUpdateAssetParams {
    /// Share of borrow interest kept as protocol rewards, in [0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_factor: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interest_rate_model: Option<InterestRateModel>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Owner only.
    UpdateConfig {
        config: CreateOrUpdateConfig,
    },
    /// Owner only: open a market (both params required).
    InitAsset {
        denom: String,
        params: InitOrUpdateAssetParams,
    },
    /// Owner only: change a market's reserve factor or interest rate model.
    UpdateAsset {
        denom: String,
        params: InitOrUpdateAssetParams,
    },
    /// Deposit the one coin sent, for the sender or `on_behalf_of`.
    Deposit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<String>,
    },
    /// Withdraw `amount` (everything when `None`).
    Withdraw {
        denom: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<Uint128>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        liquidation_related: Option<bool>,
    },
    Borrow {
        denom: String,
        amount: Uint128,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient: Option<String>,
    },
    /// Repay with the one coin sent; any excess over the debt is refunded.
    Repay {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<String>,
    },
    /// Repay `user`'s debt in the denom of the one coin sent and take `collateral_denom`
    /// collateral (credited as collateral to `recipient`, the sender by default).
    Liquidate {
        user: String,
        collateral_denom: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient: Option<String>,
    },
    UpdateAssetCollateralStatus {
        denom: String,
        enable: bool,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    Config {},
    /// Answers `Option<Market>`.
    Market {
        denom: String,
    },
    MarketV2 {
        denom: String,
    },
    /// Answers `Vec<Market>`.
    Markets {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    MarketsV2 {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    UserDebt {
        user: String,
        denom: String,
    },
    UserDebts {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    UserCollateral {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        denom: String,
    },
    UserCollaterals {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    UserCollateralsV2 {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Health with default prices.
    UserPosition {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    /// Health with liquidation prices (what `liquidate` checks).
    UserPositionLiquidationPricing {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    ScaledLiquidityAmount {
        denom: String,
        amount: Uint128,
    },
    ScaledDebtAmount {
        denom: String,
        amount: Uint128,
    },
    UnderlyingLiquidityAmount {
        denom: String,
        amount_scaled: Uint128,
    },
    UnderlyingDebtAmount {
        denom: String,
        amount_scaled: Uint128,
    },
}

/// Stored collateral of one user in one denom (`colls` map value).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Collateral {
    pub amount_scaled: Uint128,
    /// New collateral is enabled; the user may disable it (`update_asset_collateral_status`).
    pub enabled: bool,
}

/// Stored debt of one user in one denom (`debts` map value).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Debt {
    pub amount_scaled: Uint128,
    /// Debt of the credit manager, not counted in its health.
    pub uncollateralized: bool,
}

/// The user half of a `colls` key: Mars keys collateral by the JSON of this struct, with an
/// empty `acc_id` for Red Bank users and the credit account id for Rover accounts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserId {
    pub addr: Addr,
    pub acc_id: String,
}

impl UserId {
    pub fn red_bank(addr: Addr) -> Self {
        UserId {
            addr,
            acc_id: String::new(),
        }
    }

    pub fn credit_manager(addr: Addr, acc_id: String) -> Self {
        UserId { addr, acc_id }
    }

    /// The key bytes Mars stores: `{"addr":"…","acc_id":"…"}`.
    pub fn key_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of two strings always serialises")
    }

    pub fn from_key_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    pub owner: Option<String>,
    pub proposed_new_owner: Option<String>,
    pub address_provider: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserDebtResponse {
    pub denom: String,
    pub amount_scaled: Uint128,
    /// Owed now (borrow index at this block, rounded up).
    pub amount: Uint128,
    pub uncollateralized: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserCollateralResponse {
    pub denom: String,
    pub amount_scaled: Uint128,
    /// Deposited now (liquidity index at this block, rounded down).
    pub amount: Uint128,
    pub enabled: bool,
}

/// `user_position` answer: `total_enabled_collateral`, `total_collateralized_debt`,
/// `weighted_max_ltv_collateral`, `weighted_liquidation_threshold_collateral`, `health_status`.
pub type UserPositionResponse = crate::types::UserPositionFigures;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MarketV2Response {
    pub collateral_total_amount: Uint128,
    pub debt_total_amount: Uint128,
    pub utilization_rate: Decimal,
    #[serde(flatten)]
    pub market: Market,
}

/// cw-paginate's `PaginationResponse`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PaginationResponse<T> {
    pub data: Vec<T>,
    pub metadata: Metadata,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_json_matches_mars() {
        let msg = ExecuteMsg::Liquidate {
            user: "osmo1user".into(),
            collateral_denom: "uatom".into(),
            recipient: None,
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"liquidate":{"user":"osmo1user","collateral_denom":"uatom"}}"#
        );
        // Mars clients send explicit nulls for absent options.
        let parsed: ExecuteMsg = serde_json::from_str(
            r#"{"liquidate":{"user":"osmo1user","collateral_denom":"uatom","recipient":null}}"#,
        )
        .unwrap();
        assert_eq!(parsed, msg);
        let parsed: ExecuteMsg =
            serde_json::from_str(r#"{"deposit":{"account_id":null,"on_behalf_of":null}}"#).unwrap();
        assert_eq!(
            parsed,
            ExecuteMsg::Deposit {
                account_id: None,
                on_behalf_of: None
            }
        );
        assert!(serde_json::from_str::<ExecuteMsg>(r#"{"repay":{"bogus":1}}"#).is_err());
    }

    #[test]
    fn user_position_json_matches_mars() {
        let borrowing: UserPositionResponse = serde_json::from_str(
            r#"{"total_enabled_collateral":"100000","total_collateralized_debt":"65000",
                "weighted_max_ltv_collateral":"70000",
                "weighted_liquidation_threshold_collateral":"80000",
                "health_status":{"borrowing":{"max_ltv_hf":"1.076923076923076923",
                                              "liq_threshold_hf":"1.230769230769230769"}}}"#,
        )
        .unwrap();
        assert_eq!(
            borrowing.health_status,
            UserHealthStatus::Borrowing {
                max_ltv_hf: "1.076923076923076923".parse().unwrap(),
                liq_threshold_hf: "1.230769230769230769".parse().unwrap(),
            }
        );
        assert_eq!(
            serde_json::to_string(&UserHealthStatus::NotBorrowing).unwrap(),
            r#""not_borrowing""#
        );
    }

    #[test]
    fn user_id_key_is_mars_json() {
        let id = UserId::red_bank(Addr::unchecked("osmo1abc"));
        assert_eq!(
            id.key_bytes(),
            br#"{"addr":"osmo1abc","acc_id":""}"#.to_vec()
        );
        assert_eq!(UserId::from_key_bytes(&id.key_bytes()).unwrap(), id);
    }
}
