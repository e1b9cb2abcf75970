//! The params contract: Mars's asset risk parameters and target health factor, validated as
//! Mars's params contract validates them (through `mars::math::params`).
//!
//! It runs either Mars line, the one its instantiate message names: contracts v2.1 (Osmosis:
//! a target health factor, asset params without the core-contracts fields) or core-contracts
//! v2.2 (Neutron: `max_perp_params`, no target health factor, asset params with a close factor
//! and `withdraw_enabled`). Each refuses the other's messages as its JSON parser would.

use cosmwasm_std::{
    to_json_binary, Addr, Binary, Decimal, Deps, DepsMut, Env, MessageInfo, Response, StdError,
    Uint128,
};
use cw_storage_plus::{Item, Map};
use mars::math::{
    interest::underlying_liquidity_amount,
    params::{validate_asset_params, validate_target_health_factor},
};
use mars::msg::{
    address_provider::MarsAddressType,
    params::{
        AssetParams, AssetParamsUpdate, ConfigResponse, EmergencyUpdate, ExecuteMsg,
        InstantiateMsg, QueryMsg, RedBankEmergencyUpdate, TotalDepositResponse,
    },
    red_bank::{self, Market},
};
use mars::types::ParamsShape;

use super::address_provider::query_address_map;
use super::support::{
    assert_owner, from_common_errors, page_values, save_owner_and_respond, CommonError,
};

pub const ADDRESS_PROVIDER: Item<Addr> = Item::new("address_provider");
pub const ASSET_PARAMS: Map<&str, AssetParams> = Map::new("asset_params");
pub const TARGET_HEALTH_FACTOR: Item<Decimal> = Item::new("target_health_factor");
pub const MAX_PERP_PARAMS: Item<u8> = Item::new("max_perp_params");

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("asset params not found for denom: {denom}")]
    AssetParamsNotFound { denom: String },
    #[error("instantiate: give target_health_factor (contracts v2.1) or max_perp_params (core-contracts), exactly one")]
    NoLine,
    /// What the other line's JSON parser says of a message it does not have.
    #[error("Error parsing into type mars_types::params::{message}: {problem}")]
    OtherLine {
        message: &'static str,
        problem: String,
    },
    #[error(transparent)]
    Mixed(#[from] mars::types::MixedParams),
}

/// Whether this contract runs core-contracts (its instantiate message had `max_perp_params`).
fn runs_core_contracts(storage: &dyn cosmwasm_std::Storage) -> Result<bool, ParamsError> {
    Ok(MAX_PERP_PARAMS.may_load(storage)?.is_some())
}

/// `params` have this line's shape: core-contracts requires the close factor and both
/// `withdraw_enabled`, contracts v2.1 has none of them.
fn assert_shape(core: bool, params: &AssetParams) -> Result<(), ParamsError> {
    let other_line = |problem: &str| ParamsError::OtherLine {
        message: "ExecuteMsg",
        problem: problem.to_string(),
    };
    match (core, params.shape()?) {
        (true, ParamsShape::V21) => Err(other_line("missing field `close_factor`")),
        (false, ParamsShape::Core22 | ParamsShape::Core23) => {
            Err(other_line("unknown field `close_factor`"))
        }
        _ => Ok(()),
    }
}

/// The target health factor; core-contracts has no such query.
fn target_health_factor(storage: &dyn cosmwasm_std::Storage) -> Result<Decimal, ParamsError> {
    if runs_core_contracts(storage)? {
        return Err(ParamsError::OtherLine {
            message: "QueryMsg",
            problem: "unknown variant `target_health_factor`".into(),
        });
    }
    Ok(TARGET_HEALTH_FACTOR.load(storage)?)
}
from_common_errors!(ParamsError);

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ParamsError> {
    ADDRESS_PROVIDER.save(
        deps.storage,
        &deps.api.addr_validate(&msg.address_provider)?,
    )?;
    match (msg.target_health_factor, msg.max_perp_params) {
        (Some(target_health_factor), None) => {
            validate_target_health_factor(target_health_factor)?;
            TARGET_HEALTH_FACTOR.save(deps.storage, &target_health_factor)?;
        }
        (None, Some(max_perp_params)) => MAX_PERP_PARAMS.save(deps.storage, &max_perp_params)?,
        _ => return Err(ParamsError::NoLine),
    }
    save_owner_and_respond(deps, &msg.owner)
}

pub fn execute(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ParamsError> {
    assert_owner(deps.storage, &info.sender)?;
    match msg {
        ExecuteMsg::UpdateConfig { address_provider } => {
            let mut current = ADDRESS_PROVIDER.load(deps.storage)?;
            if let Some(address_provider) = address_provider {
                current = deps.api.addr_validate(&address_provider)?;
                ADDRESS_PROVIDER.save(deps.storage, &current)?;
            }
            Ok(Response::new()
                .add_attribute("action", "update_config")
                .add_attribute("address_provider", current))
        }
        ExecuteMsg::UpdateTargetHealthFactor(target_health_factor) => {
            if runs_core_contracts(deps.storage)? {
                return Err(ParamsError::OtherLine {
                    message: "ExecuteMsg",
                    problem: "unknown variant `update_target_health_factor`".into(),
                });
            }
            validate_target_health_factor(target_health_factor)?;
            TARGET_HEALTH_FACTOR.save(deps.storage, &target_health_factor)?;
            Ok(Response::new()
                .add_attribute("action", "update_target_health_factor")
                .add_attribute("value", target_health_factor.to_string()))
        }
        ExecuteMsg::UpdateAssetParams(AssetParamsUpdate::AddOrUpdate { params }) => {
            assert_shape(runs_core_contracts(deps.storage)?, &params)?;
            validate_asset_params(&params)?;
            ASSET_PARAMS.save(deps.storage, &params.denom, &params)?;
            Ok(Response::new()
                .add_attribute("action", "update_asset_param")
                .add_attribute("action_type", "add_or_update")
                .add_attribute("denom", params.denom))
        }
        ExecuteMsg::EmergencyUpdate(EmergencyUpdate::RedBank(
            RedBankEmergencyUpdate::DisableBorrowing(denom),
        )) => {
            let mut params = ASSET_PARAMS
                .may_load(deps.storage, &denom)?
                .ok_or_else(|| ParamsError::AssetParamsNotFound {
                    denom: denom.clone(),
                })?;
            params.red_bank.borrow_enabled = false;
            ASSET_PARAMS.save(deps.storage, &denom, &params)?;
            Ok(Response::new()
                .add_attribute("action", "disable_borrowing")
                .add_attribute("denom", denom))
        }
    }
}

pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> Result<Binary, ParamsError> {
    Ok(match msg {
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            address_provider: ADDRESS_PROVIDER.load(deps.storage)?.into_string(),
        })?,
        QueryMsg::AssetParams { denom } => {
            to_json_binary(&ASSET_PARAMS.may_load(deps.storage, &denom)?)?
        }
        QueryMsg::AllAssetParams { start_after, limit } => to_json_binary(&page_values(
            deps.storage,
            &ASSET_PARAMS,
            start_after.as_deref(),
            limit,
        )?)?,
        QueryMsg::TargetHealthFactor {} => to_json_binary(&target_health_factor(deps.storage)?)?,
        QueryMsg::TotalDeposit { denom } => to_json_binary(&total_deposit(deps, &env, denom)?)?,
    })
}

/// Red Bank deposits plus what the credit manager holds (when there is one), as Mars counts
/// deposits against the cap.
fn total_deposit(
    deps: Deps,
    env: &Env,
    denom: String,
) -> Result<TotalDepositResponse, ParamsError> {
    let addresses = query_address_map(deps, &ADDRESS_PROVIDER.load(deps.storage)?)?;
    let red_bank = addresses
        .get(&MarsAddressType::RedBank)
        .ok_or_else(|| StdError::msg("Address type red_bank is not set in the address provider"))?;
    let market: Option<Market> = deps.querier.query_wasm_smart(
        red_bank,
        &red_bank::QueryMsg::Market {
            denom: denom.clone(),
        },
    )?;
    let red_bank_deposit = match market {
        Some(market) => underlying_liquidity_amount(
            market.collateral_total_scaled,
            &market,
            env.block.time.seconds(),
        )?,
        None => Uint128::zero(),
    };
    let credit_manager_deposit = match addresses.get(&MarsAddressType::CreditManager) {
        Some(cm) => Uint128::try_from(deps.querier.query_balance(cm, &denom)?.amount)
            .map_err(|e| StdError::msg(format!("credit manager balance of {denom}: {e}")))?,
        None => Uint128::zero(),
    };
    let params = ASSET_PARAMS
        .may_load(deps.storage, &denom)?
        .ok_or_else(|| ParamsError::AssetParamsNotFound {
            denom: denom.clone(),
        })?;
    Ok(TotalDepositResponse {
        denom,
        amount: red_bank_deposit
            .checked_add(credit_manager_deposit)
            .map_err(StdError::from)?,
        cap: params.deposit_cap,
    })
}
