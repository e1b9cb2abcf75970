//! The devnet's Rover contracts asked through their smart queries: what tests compare the
//! services' raw-state reads and records against.

use mars::msg::account_nft::{self, NumTokensResponse, TokensResponse};
use mars::msg::credit_manager::{self, ConfigResponse, Positions};
use mars::msg::health::{self, AccountKind, HealthValuesResponse};
use mars::msg::oracle::ActionKind;
use redline_chain::ChainClient;

/// The credit manager, the account NFT and the health contract of one deployment.
pub struct RoverQueries<C> {
    client: C,
    pub credit_manager: String,
    pub account_nft: String,
    pub health: String,
}

impl<C: ChainClient> RoverQueries<C> {
    /// The contracts the credit manager's `config` names.
    pub async fn of(client: C, credit_manager: &str) -> Self {
        let config: ConfigResponse = client
            .query_smart(credit_manager, &credit_manager::QueryMsg::Config {}, None)
            .await
            .expect("the credit manager's config");
        RoverQueries {
            client,
            credit_manager: credit_manager.to_string(),
            account_nft: config.account_nft.expect("an account NFT contract"),
            health: config.health_contract,
        }
    }

    /// `positions { account_id }` at `height` (`None`: the latest state).
    pub async fn positions(&self, id: &str, height: Option<u64>) -> Positions {
        let query = credit_manager::QueryMsg::Positions {
            account_id: id.to_string(),
            action: None,
        };
        self.client
            .query_smart(&self.credit_manager, &query, height)
            .await
            .expect("the credit manager's positions")
    }

    /// `health_values` of a default account for the liquidation action.
    pub async fn liquidation_health(&self, id: &str) -> HealthValuesResponse {
        let query = health::QueryMsg::HealthValues {
            account_id: id.to_string(),
            kind: AccountKind::Default,
            action: ActionKind::Liquidation,
        };
        self.client
            .query_smart(&self.health, &query, None)
            .await
            .expect("the health contract's health_values")
    }

    /// The account ids `owner` holds (`tokens { owner }`).
    pub async fn tokens(&self, owner: &str) -> Vec<String> {
        let query = account_nft::QueryMsg::Tokens {
            owner: owner.to_string(),
            start_after: None,
            limit: Some(100),
        };
        let answer: TokensResponse = self
            .client
            .query_smart(&self.account_nft, &query, None)
            .await
            .expect("the account NFT's tokens");
        answer.tokens
    }

    /// Every seeded credit account id: the NFT mints ids from 1, and account 1 is the rewards
    /// collector's.
    pub async fn seeded_ids(&self) -> Vec<u64> {
        let minted: NumTokensResponse = self
            .client
            .query_smart(
                &self.account_nft,
                &account_nft::QueryMsg::NumTokens {},
                None,
            )
            .await
            .expect("the account NFT's num_tokens");
        (2..=minted.count).collect()
    }
}
