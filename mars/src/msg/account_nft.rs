//! Messages of Rover's account NFT, with the JSON of Mars v2.1
//! (`packages/types/src/account_nft/*`), a cw721 whose token ids are the credit account ids.
//!
//! Ids are sequential from 1 (`next_id`); the credit manager is the minter and mints one token
//! per `create_credit_account`. Only the messages the devnet serves are here: minting, the
//! config, ownership of the minter role, and the cw721 queries that find an owner's accounts.

use cosmwasm_std::Uint128;
use serde::{Deserialize, Serialize};

/// Storage namespaces of the account NFT (Mars's own and cw721-base's).
pub mod namespace {
    /// `Item<NftConfig>`.
    pub const CONFIG: &str = "config";
    /// `Item<u64>`: the id the next mint gets.
    pub const NEXT_ID: &str = "next_id";
    /// cw721-base `IndexedMap<&str, TokenInfo>` of every token.
    pub const TOKENS: &str = "tokens";
    /// cw721-base's multi-index of `tokens` by owner: what raw-state scans page to find accounts.
    pub const TOKENS_OWNER_INDEX: &str = "tokens__owner";
    /// cw721-base `Item<u64>`.
    pub const NUM_TOKENS: &str = "num_tokens";
    /// cw-ownable ownership of the minter role.
    pub const OWNERSHIP: &str = "ownership";
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InstantiateMsg {
    /// Collateral plus debt value above which an account cannot be burnt.
    pub max_value_for_burn: Uint128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_contract: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_manager_contract: Option<String>,
    pub name: String,
    pub symbol: String,
    /// Only the minter mints; it hands the role to the credit manager.
    pub minter: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Minter only.
    UpdateConfig { updates: NftConfigUpdates },
    /// Minter only: a token with the next id, owned by `user`.
    Mint { user: String },
    /// Propose a new minter, or accept the role as the proposed one.
    UpdateOwnership(OwnershipAction),
}

/// cw-ownable's `Action` (the subset that hands the minter role over).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OwnershipAction {
    TransferOwnership {
        new_owner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expiry: Option<serde_json::Value>,
    },
    AcceptOwnership,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct NftConfigUpdates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_for_burn: Option<Uint128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_contract_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_manager_contract_addr: Option<String>,
}

/// The `config` answer (`UncheckedNftConfig`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NftConfigResponse {
    pub max_value_for_burn: Uint128,
    pub health_contract_addr: Option<String>,
    pub credit_manager_contract_addr: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    Config {},
    /// Answers the next id as a string.
    NextId {},
    OwnerOf {
        token_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        include_expired: Option<bool>,
    },
    NumTokens {},
    /// The ids `owner` holds, ascending as strings (cw721 orders ids as bytes).
    Tokens {
        owner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    AllTokens {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Minter {},
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OwnerOfResponse {
    pub owner: String,
    /// cw721 approvals; the devnet grants none.
    pub approvals: Vec<serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NumTokensResponse {
    pub count: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TokensResponse {
    pub tokens: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MinterResponse {
    pub minter: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_queries_json_match_cw721() {
        let q = QueryMsg::Tokens {
            owner: "osmo1owner".into(),
            start_after: None,
            limit: Some(30),
        };
        let json = r#"{"tokens":{"owner":"osmo1owner","limit":30}}"#;
        assert_eq!(serde_json::to_string(&q).unwrap(), json);
        assert_eq!(serde_json::from_str::<QueryMsg>(json).unwrap(), q);
        assert_eq!(
            serde_json::from_str::<QueryMsg>(r#"{"owner_of":{"token_id":"3"}}"#).unwrap(),
            QueryMsg::OwnerOf {
                token_id: "3".into(),
                include_expired: None
            }
        );
        assert_eq!(
            serde_json::to_string(&QueryMsg::NextId {}).unwrap(),
            r#"{"next_id":{}}"#
        );
        assert_eq!(
            serde_json::to_string(&QueryMsg::NumTokens {}).unwrap(),
            r#"{"num_tokens":{}}"#
        );
    }

    #[test]
    fn nft_messages_json_match_mars() {
        assert_eq!(
            serde_json::to_string(&ExecuteMsg::Mint {
                user: "osmo1u".into()
            })
            .unwrap(),
            r#"{"mint":{"user":"osmo1u"}}"#
        );
        assert_eq!(
            serde_json::to_string(&ExecuteMsg::UpdateOwnership(
                OwnershipAction::AcceptOwnership
            ))
            .unwrap(),
            r#"{"update_ownership":"accept_ownership"}"#
        );
        let owner: OwnerOfResponse =
            serde_json::from_str(r#"{"owner":"osmo1u","approvals":[]}"#).unwrap();
        assert_eq!(owner.owner, "osmo1u");
        let tokens: TokensResponse = serde_json::from_str(r#"{"tokens":["1","10","2"]}"#).unwrap();
        assert_eq!(tokens.tokens, vec!["1", "10", "2"]);
    }
}
