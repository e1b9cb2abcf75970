//! Instantiation and the owner's `update_config` (`instantiate.rs`, `update_config.rs`).

use cosmwasm_std::{Addr, DepsMut, Env, MessageInfo, Response};
use mars::msg::account_nft::{self, OwnershipAction};
use mars::msg::credit_manager::{AccountKind, ConfigUpdates, InstantiateMsg, RewardsCollector};

use super::dispatch::create_credit_account;
use super::peers::{execute_msg, next_account_id};
use super::state::{
    RedBankAdapter, ACCOUNT_NFT, HEALTH_CONTRACT, INCENTIVES, MAX_SLIPPAGE,
    MAX_UNLOCKING_POSITIONS, ORACLE, PARAMS, PERPS_LB_RATIO, RED_BANK, REWARDS_COLLECTOR, SWAPPER,
    ZAPPER,
};
use super::{assert_max_slippage, CreditManagerResult};
use crate::contracts::support::{assert_owner, OWNER};

pub fn instantiate(deps: DepsMut, env: Env, msg: InstantiateMsg) -> CreditManagerResult<()> {
    let api = deps.api;
    let this = env.contract.address;
    OWNER.save(deps.storage, &api.addr_validate(&msg.owner)?)?;
    RED_BANK.save(
        deps.storage,
        &RedBankAdapter {
            addr: api.addr_validate(&msg.red_bank)?,
            credit_manager: this.clone(),
        },
    )?;
    ORACLE.save(deps.storage, &api.addr_validate(&msg.oracle)?)?;
    SWAPPER.save(deps.storage, &api.addr_validate(&msg.swapper)?)?;
    ZAPPER.save(deps.storage, &api.addr_validate(&msg.zapper)?)?;
    MAX_UNLOCKING_POSITIONS.save(deps.storage, &msg.max_unlocking_positions)?;
    assert_max_slippage(msg.max_slippage)?;
    MAX_SLIPPAGE.save(deps.storage, &msg.max_slippage)?;
    HEALTH_CONTRACT.save(deps.storage, &api.addr_validate(&msg.health_contract)?)?;
    PARAMS.save(deps.storage, &api.addr_validate(&msg.params)?)?;
    INCENTIVES.save(
        deps.storage,
        &RedBankAdapter {
            addr: api.addr_validate(&msg.incentives)?,
            credit_manager: this,
        },
    )?;
    if let Some(ratio) = msg.perps_lb_ratio {
        PERPS_LB_RATIO.save(deps.storage, &ratio)?;
    }
    Ok(())
}

pub fn update_config(
    mut deps: DepsMut,
    info: MessageInfo,
    updates: ConfigUpdates,
) -> CreditManagerResult<Response> {
    assert_owner(deps.storage, &info.sender)?;
    let mut response = Response::new().add_attribute("action", "update_config");
    if let Some(account_nft) = &updates.account_nft {
        let account_nft = deps.api.addr_validate(account_nft)?;
        ACCOUNT_NFT.save(deps.storage, &account_nft)?;
        // The NFT's owner must have proposed this contract as minter first.
        let accept = account_nft::ExecuteMsg::UpdateOwnership(OwnershipAction::AcceptOwnership);
        response = response
            .add_message(execute_msg(&account_nft, &accept, vec![])?)
            .add_attribute("key", "account_nft")
            .add_attribute("value", account_nft);
    }
    save_addresses(&mut deps, &updates)?;
    if let Some(max) = updates.max_unlocking_positions {
        MAX_UNLOCKING_POSITIONS.save(deps.storage, &max)?;
    }
    if let Some(max_slippage) = updates.max_slippage {
        assert_max_slippage(max_slippage)?;
        MAX_SLIPPAGE.save(deps.storage, &max_slippage)?;
    }
    if let Some(rewards_collector) = &updates.rewards_collector {
        response = open_rewards_collector_account(&mut deps, rewards_collector, response)?;
    }
    Ok(response)
}

fn save_addresses(deps: &mut DepsMut, updates: &ConfigUpdates) -> CreditManagerResult<()> {
    let api = deps.api;
    let validate =
        |addr: &Option<String>| addr.as_deref().map(|a| api.addr_validate(a)).transpose();
    if let Some(addr) = validate(&updates.oracle)? {
        ORACLE.save(deps.storage, &addr)?;
    }
    if let Some(addr) = validate(&updates.red_bank)? {
        RED_BANK.update(deps.storage, |mut red_bank| -> cosmwasm_std::StdResult<_> {
            red_bank.addr = addr;
            Ok(red_bank)
        })?;
    }
    if let Some(addr) = validate(&updates.incentives)? {
        INCENTIVES.update(
            deps.storage,
            |mut incentives| -> cosmwasm_std::StdResult<_> {
                incentives.addr = addr;
                Ok(incentives)
            },
        )?;
    }
    let items: [(&Option<String>, &cw_storage_plus::Item<Addr>); 3] = [
        (&updates.swapper, &SWAPPER),
        (&updates.zapper, &ZAPPER),
        (&updates.health_contract, &HEALTH_CONTRACT),
    ];
    for (update, item) in items {
        if let Some(addr) = validate(update)? {
            item.save(deps.storage, &addr)?;
        }
    }
    Ok(())
}

/// The rewards collector gets the next account id; protocol fees are booked to it.
fn open_rewards_collector_account(
    deps: &mut DepsMut,
    rewards_collector: &str,
    response: Response,
) -> CreditManagerResult<Response> {
    let address = deps.api.addr_validate(rewards_collector)?;
    let account_id = next_account_id(deps.as_ref())?;
    REWARDS_COLLECTOR.save(
        deps.storage,
        &RewardsCollector {
            address: address.to_string(),
            account_id: account_id.clone(),
        },
    )?;
    let (_, opened) = create_credit_account(deps, &address, AccountKind::Default)?;
    Ok(response
        .add_submessages(opened.messages)
        .add_attribute("key", "rewards_collector_account")
        .add_attribute("value", account_id))
}
