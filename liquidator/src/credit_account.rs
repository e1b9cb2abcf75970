//! The worker's own Rover credit account, which credit-account liquidations run from.
//!
//! Mars liquidates a credit account only from another credit account (the liquidator's coins
//! must sit in the credit manager). Each worker owns a wallet, so each wallet owns one account of
//! kind `default`: found among the account NFTs the wallet holds, or opened with
//! `create_credit_account` when it holds none. Finding comes first so that a restarted
//! liquidator goes on with the account it opened before instead of minting another.

use mars::msg::account_nft::{self, TokensResponse};
use mars::msg::credit_manager::{self, ConfigResponse};
use mars::msg::health::{AccountKind, HealthQueryShape};
use redline_chain::{execute_contract_msg, ChainClient, ChainError, TxEvent};

use crate::tx_sender::{SendError, Sent, SentTx, TxSender};

/// Token ids asked for per page of the account NFT's `tokens` query.
const TOKENS_PAGE: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum CreditAccountError {
    #[error("{what}: {source}")]
    Chain {
        what: String,
        #[source]
        source: ChainError,
    },
    #[error("the credit manager {0} names no account NFT contract")]
    NoAccountNft(String),
    #[error("opening a credit account: {0}")]
    Send(#[source] SendError),
    #[error("the tx {tx} that opened a credit account names no minted token id")]
    NoMintedId { tx: String },
    #[error("wallet {wallet} has no credit account, and a dry run opens none")]
    DryRun { wallet: String },
    #[error("reading the credit account to plan its liquidation: {0}")]
    Read(#[source] redline_protocol::ReadError),
    #[error("the credit account's health cannot be computed: {0}")]
    Health(#[source] mars::math::credit_account::HealthComputeError),
}

impl CreditAccountError {
    /// Whether trying again later may succeed (the chain or the tx may come through).
    pub fn is_transient(&self) -> bool {
        match self {
            CreditAccountError::Chain { .. } | CreditAccountError::Send(_) => true,
            CreditAccountError::Read(error) => error.is_transient(),
            _ => false,
        }
    }
}

fn chain(what: impl Into<String>) -> impl FnOnce(ChainError) -> CreditAccountError {
    let what = what.into();
    move |source| CreditAccountError::Chain { what, source }
}

/// The Rover contracts a liquidation talks to, as the credit manager names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoverContracts {
    pub credit_manager: String,
    pub account_nft: String,
    pub health: String,
    /// What the credit manager's `swap_exact_in` sells through.
    pub swapper: String,
    /// How the health contract takes its queries (the manifest's `health_query`).
    pub health_query: HealthQueryShape,
}

impl RoverContracts {
    /// Reads the account NFT and health contract addresses from the credit manager's config;
    /// the health contract takes queries of `health_query`'s shape.
    pub async fn discover<C: ChainClient>(
        client: &C,
        credit_manager: &str,
        health_query: HealthQueryShape,
    ) -> Result<Self, CreditAccountError> {
        let config: ConfigResponse = client
            .query_smart(credit_manager, &credit_manager::QueryMsg::Config {}, None)
            .await
            .map_err(chain(format!("credit manager {credit_manager} config")))?;
        let account_nft = config
            .account_nft
            .ok_or_else(|| CreditAccountError::NoAccountNft(credit_manager.to_string()))?;
        Ok(RoverContracts {
            credit_manager: credit_manager.to_string(),
            account_nft,
            health: config.health_contract,
            swapper: config.swapper,
            health_query,
        })
    }
}

/// Every account NFT `owner` holds, in the NFT contract's order.
pub async fn owned_tokens<C: ChainClient>(
    client: &C,
    account_nft: &str,
    owner: &str,
) -> Result<Vec<String>, CreditAccountError> {
    let mut tokens = Vec::new();
    let mut start_after = None;
    loop {
        let query = account_nft::QueryMsg::Tokens {
            owner: owner.to_string(),
            start_after: start_after.clone(),
            limit: Some(TOKENS_PAGE),
        };
        let page: TokensResponse = client
            .query_smart(account_nft, &query, None)
            .await
            .map_err(chain(format!("account NFTs of {owner}")))?;
        let full = page.tokens.len() >= TOKENS_PAGE as usize;
        let last = page.tokens.last().cloned();
        tokens.extend(page.tokens);
        match last {
            Some(last) if full && start_after.as_ref() != Some(&last) => start_after = Some(last),
            _ => return Ok(tokens),
        }
    }
}

/// The kind of credit account `account_id` is.
pub async fn account_kind<C: ChainClient>(
    client: &C,
    credit_manager: &str,
    account_id: &str,
) -> Result<AccountKind, CreditAccountError> {
    let query = credit_manager::QueryMsg::AccountKind {
        account_id: account_id.to_string(),
    };
    client
        .query_smart(credit_manager, &query, None)
        .await
        .map_err(chain(format!("kind of credit account {account_id}")))
}

/// The first `default` credit account `owner` holds, if any.
pub async fn find_own<C: ChainClient>(
    client: &C,
    contracts: &RoverContracts,
    owner: &str,
) -> Result<Option<String>, CreditAccountError> {
    for id in owned_tokens(client, &contracts.account_nft, owner).await? {
        if account_kind(client, &contracts.credit_manager, &id).await? == AccountKind::Default {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The token id the account NFT minted to `owner`, from a tx's events.
pub fn minted_id(events: &[TxEvent], account_nft: &str, owner: &str) -> Option<String> {
    events
        .iter()
        .filter(|e| e.kind == "wasm")
        .filter(|e| {
            e.attribute("_contract_address")
                .is_none_or(|a| a == account_nft)
        })
        .find(|e| e.attribute("action") == Some("mint") && e.attribute("owner") == Some(owner))
        .and_then(|e| e.attribute("token_id"))
        .map(str::to_string)
}

/// The wallet's credit account, and the tx that opened it if it was opened just now.
#[derive(Debug, Clone)]
pub struct OwnAccount {
    pub id: String,
    pub opened_by: Option<Box<SentTx>>,
}

/// Opens a `default` credit account for the sender's wallet; its id and the tx.
pub async fn open<C: ChainClient>(
    sender: &TxSender<C>,
    contracts: &RoverContracts,
) -> Result<OwnAccount, CreditAccountError> {
    let msg = execute_contract_msg(
        sender.wallet().address(),
        &contracts.credit_manager,
        &credit_manager::ExecuteMsg::CreateCreditAccount(AccountKind::Default),
        &[],
    )
    .map_err(|e| CreditAccountError::Send(SendError::Chain(e)))?;
    match sender.send(vec![msg], "redline credit account").await {
        Ok(Sent::Included(tx)) => {
            match minted_id(&tx.outcome.events, &contracts.account_nft, sender.address()) {
                Some(id) => Ok(OwnAccount {
                    id,
                    opened_by: Some(tx),
                }),
                None => Err(CreditAccountError::NoMintedId {
                    tx: tx.hash.to_string(),
                }),
            }
        }
        Ok(Sent::DryRun(_)) => Err(CreditAccountError::DryRun {
            wallet: sender.address().to_string(),
        }),
        Err(error) => Err(CreditAccountError::Send(error)),
    }
}

/// The wallet's credit account: the one it holds, else a new one.
pub async fn own_account<C: ChainClient>(
    sender: &TxSender<C>,
    contracts: &RoverContracts,
) -> Result<OwnAccount, CreditAccountError> {
    if let Some(id) = find_own(sender.client(), contracts, sender.address()).await? {
        return Ok(OwnAccount {
            id,
            opened_by: None,
        });
    }
    if sender.is_dry_run() {
        return Err(CreditAccountError::DryRun {
            wallet: sender.address().to_string(),
        });
    }
    let own = open(sender, contracts).await?;
    tracing::info!(wallet = %sender.address(), account_id = %own.id, "opened a credit account to liquidate credit accounts from");
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, attributes: &[(&str, &str)]) -> TxEvent {
        TxEvent {
            kind: kind.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_minted_id_is_the_mint_to_the_owner() {
        let events = vec![
            event("message", &[("action", "mint")]),
            event(
                "wasm",
                &[
                    ("_contract_address", "osmo1cm"),
                    ("action", "create_credit_account"),
                ],
            ),
            event(
                "wasm",
                &[
                    ("_contract_address", "osmo1nft"),
                    ("action", "mint"),
                    ("owner", "osmo1other"),
                    ("token_id", "3"),
                ],
            ),
            event(
                "wasm",
                &[
                    ("_contract_address", "osmo1nft"),
                    ("action", "mint"),
                    ("owner", "osmo1me"),
                    ("token_id", "12"),
                ],
            ),
        ];
        assert_eq!(
            minted_id(&events, "osmo1nft", "osmo1me").as_deref(),
            Some("12")
        );
        assert_eq!(minted_id(&events, "osmo1elsewhere", "osmo1me"), None);
        assert_eq!(minted_id(&events[..3], "osmo1nft", "osmo1me"), None);
    }
}
