//! Rover's account NFT, written from Mars's `contracts/account-nft` (a cw721-base extension)
//! for cw-multi-test: token ids are credit account ids, sequential from 1; only the minter (the
//! credit manager, once it accepted the role) mints.
//!
//! Tokens live in cw721-base's `tokens` map with its `tokens__owner` index, so a raw-state scan
//! finds an owner's accounts as on chain. Not modelled: transfers, approvals and burning.

use cosmwasm_std::{
    to_json_binary, Addr, Binary, Deps, DepsMut, Empty, Env, MessageInfo, Order, Response,
    StdResult, Storage, Uint128,
};
use cw_storage_plus::{Bound, Index, IndexList, IndexedMap, Item, MultiIndex};
use mars::msg::account_nft::{
    namespace, ExecuteMsg, InstantiateMsg, MinterResponse, NftConfigResponse, NftConfigUpdates,
    NumTokensResponse, OwnerOfResponse, OwnershipAction, QueryMsg, TokensResponse,
};
use serde::{Deserialize, Serialize};

use super::support::{from_common_errors, CommonError};

/// cw721-base's query limits.
const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 1000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NftConfig {
    pub max_value_for_burn: Uint128,
    pub health_contract_addr: Option<Addr>,
    pub credit_manager_contract_addr: Option<Addr>,
}

/// cw721-base's `TokenInfo` with no extension.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub owner: Addr,
    pub approvals: Vec<serde_json::Value>,
    pub token_uri: Option<String>,
    pub extension: Empty,
}

/// cw-ownable's `Ownership` of the minter role.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    pub owner: Option<Addr>,
    pub pending_owner: Option<Addr>,
    pub pending_expiry: Option<serde_json::Value>,
}

pub const CONFIG: Item<NftConfig> = Item::new(namespace::CONFIG);
pub const NEXT_ID: Item<u64> = Item::new(namespace::NEXT_ID);
pub const NUM_TOKENS: Item<u64> = Item::new(namespace::NUM_TOKENS);
pub const OWNERSHIP: Item<Ownership> = Item::new(namespace::OWNERSHIP);

pub struct TokenIndexes<'a> {
    pub owner: MultiIndex<'a, Addr, TokenInfo, String>,
}

impl IndexList<TokenInfo> for TokenIndexes<'_> {
    fn get_indexes(&'_ self) -> Box<dyn Iterator<Item = &'_ dyn Index<TokenInfo>> + '_> {
        let indexes: Vec<&dyn Index<TokenInfo>> = vec![&self.owner];
        Box::new(indexes.into_iter())
    }
}

pub fn tokens<'a>() -> IndexedMap<&'a str, TokenInfo, TokenIndexes<'a>> {
    let owner = MultiIndex::new(
        |_id, token: &TokenInfo| token.owner.clone(),
        namespace::TOKENS,
        namespace::TOKENS_OWNER_INDEX,
    );
    IndexedMap::new(namespace::TOKENS, TokenIndexes { owner })
}

/// Errors with the messages of Mars's account NFT and cw721-base / cw-ownable.
#[derive(Debug, thiserror::Error)]
pub enum AccountNftError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("Caller is not the contract's current owner")]
    NotOwner,
    #[error("Caller is not the contract's pending owner")]
    NotPendingOwner,
    #[error("Contract ownership has been renounced")]
    NoOwner,
    #[error("token_id already claimed")]
    Claimed,
}

from_common_errors!(AccountNftError);

pub type AccountNftResult<T> = Result<T, AccountNftError>;

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> AccountNftResult<Response> {
    let validate = |addr: Option<&String>| addr.map(|a| deps.api.addr_validate(a)).transpose();
    let config = NftConfig {
        max_value_for_burn: msg.max_value_for_burn,
        health_contract_addr: validate(msg.health_contract.as_ref())?,
        credit_manager_contract_addr: validate(msg.credit_manager_contract.as_ref())?,
    };
    let minter = deps.api.addr_validate(&msg.minter)?;
    CONFIG.save(deps.storage, &config)?;
    NEXT_ID.save(deps.storage, &1)?;
    NUM_TOKENS.save(deps.storage, &0)?;
    OWNERSHIP.save(
        deps.storage,
        &Ownership {
            owner: Some(minter),
            pending_owner: None,
            pending_expiry: None,
        },
    )?;
    Ok(Response::default())
}

pub fn execute(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> AccountNftResult<Response> {
    match msg {
        ExecuteMsg::Mint { user } => mint(deps, &info.sender, &user),
        ExecuteMsg::UpdateConfig { updates } => update_config(deps, &info.sender, updates),
        ExecuteMsg::UpdateOwnership(action) => update_ownership(deps, &info.sender, action),
    }
}

fn assert_minter(storage: &dyn Storage, sender: &Addr) -> AccountNftResult<()> {
    match OWNERSHIP.load(storage)?.owner {
        Some(owner) if owner == sender => Ok(()),
        Some(_) => Err(AccountNftError::NotOwner),
        None => Err(AccountNftError::NoOwner),
    }
}

/// A token with the next id for `user`; the id counter moves on first, as in Mars.
fn mint(deps: DepsMut, sender: &Addr, user: &str) -> AccountNftResult<Response> {
    let next_id = NEXT_ID.load(deps.storage)?;
    NEXT_ID.save(deps.storage, &(next_id + 1))?;
    assert_minter(deps.storage, sender)?;
    let owner = deps.api.addr_validate(user)?;
    let token_id = next_id.to_string();
    tokens().update(deps.storage, &token_id, |existing| match existing {
        Some(_) => Err(AccountNftError::Claimed),
        None => Ok(TokenInfo {
            owner: owner.clone(),
            approvals: vec![],
            token_uri: None,
            extension: Empty {},
        }),
    })?;
    NUM_TOKENS.update(deps.storage, |count| -> StdResult<u64> { Ok(count + 1) })?;
    Ok(Response::new()
        .add_attribute("action", "mint")
        .add_attribute("minter", sender)
        .add_attribute("owner", owner)
        .add_attribute("token_id", token_id))
}

fn update_config(
    deps: DepsMut,
    sender: &Addr,
    updates: NftConfigUpdates,
) -> AccountNftResult<Response> {
    assert_minter(deps.storage, sender)?;
    let mut config = CONFIG.load(deps.storage)?;
    if let Some(addr) = updates.health_contract_addr {
        config.health_contract_addr = Some(deps.api.addr_validate(&addr)?);
    }
    if let Some(addr) = updates.credit_manager_contract_addr {
        config.credit_manager_contract_addr = Some(deps.api.addr_validate(&addr)?);
    }
    if let Some(max) = updates.max_value_for_burn {
        config.max_value_for_burn = max;
    }
    CONFIG.save(deps.storage, &config)?;
    Ok(Response::new().add_attribute("action", "update_config"))
}

/// cw-ownable's two-step hand-over: the minter proposes, the proposed address accepts.
fn update_ownership(
    deps: DepsMut,
    sender: &Addr,
    action: OwnershipAction,
) -> AccountNftResult<Response> {
    let mut ownership = OWNERSHIP.load(deps.storage)?;
    match action {
        OwnershipAction::TransferOwnership { new_owner, expiry } => {
            assert_minter(deps.storage, sender)?;
            ownership.pending_owner = Some(deps.api.addr_validate(&new_owner)?);
            ownership.pending_expiry = expiry;
        }
        OwnershipAction::AcceptOwnership => {
            if ownership.pending_owner.as_ref() != Some(sender) {
                return Err(AccountNftError::NotPendingOwner);
            }
            ownership.owner = ownership.pending_owner.take();
            ownership.pending_expiry = None;
        }
    }
    OWNERSHIP.save(deps.storage, &ownership)?;
    Ok(Response::new().add_attribute("action", "update_ownership"))
}

pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> AccountNftResult<Binary> {
    let answer = match msg {
        QueryMsg::Config {} => {
            let config = CONFIG.load(deps.storage)?;
            to_json_binary(&NftConfigResponse {
                max_value_for_burn: config.max_value_for_burn,
                health_contract_addr: config.health_contract_addr.map(Addr::into_string),
                credit_manager_contract_addr: config
                    .credit_manager_contract_addr
                    .map(Addr::into_string),
            })?
        }
        QueryMsg::NextId {} => to_json_binary(&NEXT_ID.load(deps.storage)?.to_string())?,
        QueryMsg::OwnerOf { token_id, .. } => {
            let token = tokens().load(deps.storage, &token_id)?;
            to_json_binary(&OwnerOfResponse {
                owner: token.owner.into_string(),
                approvals: vec![],
            })?
        }
        QueryMsg::NumTokens {} => to_json_binary(&NumTokensResponse {
            count: NUM_TOKENS.load(deps.storage)?,
        })?,
        QueryMsg::Tokens {
            owner,
            start_after,
            limit,
        } => to_json_binary(&owned_tokens(deps, &owner, start_after, limit)?)?,
        QueryMsg::AllTokens { start_after, limit } => {
            let start = start_after.as_deref().map(Bound::exclusive);
            let tokens = tokens()
                .keys(deps.storage, start, None, Order::Ascending)
                .take(query_limit(limit))
                .collect::<StdResult<_>>()?;
            to_json_binary(&TokensResponse { tokens })?
        }
        QueryMsg::Minter {} => to_json_binary(&MinterResponse {
            minter: OWNERSHIP.load(deps.storage)?.owner.map(Addr::into_string),
        })?,
    };
    Ok(answer)
}

fn query_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize
}

fn owned_tokens(
    deps: Deps,
    owner: &str,
    start_after: Option<String>,
    limit: Option<u32>,
) -> AccountNftResult<TokensResponse> {
    let owner = deps.api.addr_validate(owner)?;
    let tokens = tokens()
        .idx
        .owner
        .prefix(owner)
        .keys(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(query_limit(limit))
        .collect::<StdResult<_>>()?;
    Ok(TokensResponse { tokens })
}
