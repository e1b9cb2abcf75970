//! Messages of the address provider, with the JSON of Mars's
//! (`packages/types/src/address_provider.rs`): every Mars contract finds its peers here.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MarsAddressType {
    Incentives,
    Oracle,
    RedBank,
    RewardsCollector,
    Params,
    CreditManager,
    ProtocolAdmin,
    FeeCollector,
    SafetyFund,
    Swapper,
    AstroportIncentives,
    RevenueShare,
}

impl MarsAddressType {
    /// The snake_case name, which is also the storage key Mars uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            MarsAddressType::Incentives => "incentives",
            MarsAddressType::Oracle => "oracle",
            MarsAddressType::RedBank => "red_bank",
            MarsAddressType::RewardsCollector => "rewards_collector",
            MarsAddressType::Params => "params",
            MarsAddressType::CreditManager => "credit_manager",
            MarsAddressType::ProtocolAdmin => "protocol_admin",
            MarsAddressType::FeeCollector => "fee_collector",
            MarsAddressType::SafetyFund => "safety_fund",
            MarsAddressType::Swapper => "swapper",
            MarsAddressType::AstroportIncentives => "astroport_incentives",
            MarsAddressType::RevenueShare => "revenue_share",
        }
    }
}

impl std::fmt::Display for MarsAddressType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InstantiateMsg {
    pub owner: String,
    /// bech32 prefix of the chain.
    pub prefix: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Owner only.
    SetAddress {
        address_type: MarsAddressType,
        address: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    Config {},
    Address(MarsAddressType),
    Addresses(Vec<MarsAddressType>),
    AllAddresses {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<MarsAddressType>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    pub owner: Option<String>,
    pub proposed_new_owner: Option<String>,
    pub prefix: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AddressResponseItem {
    pub address_type: MarsAddressType,
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_queries_json_matches_mars() {
        assert_eq!(
            serde_json::to_string(&QueryMsg::Address(MarsAddressType::RedBank)).unwrap(),
            r#"{"address":"red_bank"}"#
        );
        assert_eq!(
            serde_json::to_string(&QueryMsg::Addresses(vec![
                MarsAddressType::Oracle,
                MarsAddressType::Params
            ]))
            .unwrap(),
            r#"{"addresses":["oracle","params"]}"#
        );
    }
}
