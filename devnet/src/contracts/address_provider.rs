//! The address provider: Mars's directory of protocol contracts. The Red Bank and params look
//! their peers up here on every call, as on a real chain.

use cosmwasm_std::{
    to_json_binary, Addr, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdError,
};
use cw_storage_plus::{Item, Map};
use mars::msg::address_provider::{
    AddressResponseItem, ConfigResponse, ExecuteMsg, InstantiateMsg, MarsAddressType, QueryMsg,
};
use serde::{Deserialize, Serialize};

use super::support::{
    assert_owner, from_common_errors, page, save_owner_and_respond, CommonError, OWNER,
};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub prefix: String,
}

pub const CONFIG: Item<Config> = Item::new("config");
pub const ADDRESSES: Map<&str, Addr> = Map::new("addresses");

#[derive(Debug, thiserror::Error)]
pub enum AddressProviderError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("Address type {0} is not set")]
    AddressNotSet(MarsAddressType),
}
from_common_errors!(AddressProviderError);

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, AddressProviderError> {
    CONFIG.save(deps.storage, &Config { prefix: msg.prefix })?;
    save_owner_and_respond(deps, &msg.owner)
}

pub fn execute(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, AddressProviderError> {
    assert_owner(deps.storage, &info.sender)?;
    match msg {
        ExecuteMsg::SetAddress {
            address_type,
            address,
        } => {
            let addr = deps.api.addr_validate(&address)?;
            ADDRESSES.save(deps.storage, address_type.as_str(), &addr)?;
            Ok(Response::new()
                .add_attribute("action", "set_address")
                .add_attribute("address_type", address_type.as_str())
                .add_attribute("address", address))
        }
    }
}

pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, AddressProviderError> {
    Ok(match msg {
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            owner: Some(OWNER.load(deps.storage)?.into_string()),
            proposed_new_owner: None,
            prefix: CONFIG.load(deps.storage)?.prefix,
        })?,
        QueryMsg::Address(address_type) => to_json_binary(&load(deps, address_type)?)?,
        QueryMsg::Addresses(types) => to_json_binary(
            &types
                .into_iter()
                .map(|t| load(deps, t))
                .collect::<Result<Vec<_>, _>>()?,
        )?,
        QueryMsg::AllAddresses { start_after, limit } => {
            let start_after = start_after.as_ref().map(|t| t.as_str());
            let items = page(deps.storage, &ADDRESSES, start_after, limit)
                .map(|item| {
                    let (name, addr) = item?;
                    let address_type: MarsAddressType =
                        serde_json::from_str(&format!("\"{name}\"")).map_err(StdError::msg)?;
                    Ok(AddressResponseItem {
                        address_type,
                        address: addr.into_string(),
                    })
                })
                .collect::<Result<Vec<_>, StdError>>()?;
            to_json_binary(&items)?
        }
    })
}

fn load(
    deps: Deps,
    address_type: MarsAddressType,
) -> Result<AddressResponseItem, AddressProviderError> {
    let addr = ADDRESSES
        .may_load(deps.storage, address_type.as_str())?
        .ok_or(AddressProviderError::AddressNotSet(address_type))?;
    Ok(AddressResponseItem {
        address_type,
        address: addr.into_string(),
    })
}

/// Every address the provider knows, in one query (at most a dozen types exist).
pub fn query_address_map(
    deps: Deps,
    address_provider: &Addr,
) -> Result<std::collections::HashMap<MarsAddressType, Addr>, StdError> {
    let items: Vec<AddressResponseItem> = deps.querier.query_wasm_smart(
        address_provider,
        &QueryMsg::AllAddresses {
            start_after: None,
            limit: Some(super::support::MAX_LIMIT),
        },
    )?;
    items
        .into_iter()
        .map(|item| Ok((item.address_type, deps.api.addr_validate(&item.address)?)))
        .collect()
}
