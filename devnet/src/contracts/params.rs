//! The params contract: Mars's asset risk parameters and target health factor, validated as
//! Mars's params contract validates them (through `mars::math::params`).

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

use super::address_provider::query_address_map;
use super::support::{
    assert_owner, from_common_errors, page_values, save_owner_and_respond, CommonError,
};

pub const ADDRESS_PROVIDER: Item<Addr> = Item::new("address_provider");
pub const ASSET_PARAMS: Map<&str, AssetParams> = Map::new("asset_params");
pub const TARGET_HEALTH_FACTOR: Item<Decimal> = Item::new("target_health_factor");

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("asset params not found for denom: {denom}")]
    AssetParamsNotFound { denom: String },
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
    validate_target_health_factor(msg.target_health_factor)?;
    TARGET_HEALTH_FACTOR.save(deps.storage, &msg.target_health_factor)?;
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
            validate_target_health_factor(target_health_factor)?;
            TARGET_HEALTH_FACTOR.save(deps.storage, &target_health_factor)?;
            Ok(Response::new()
                .add_attribute("action", "update_target_health_factor")
                .add_attribute("value", target_health_factor.to_string()))
        }
        ExecuteMsg::UpdateAssetParams(AssetParamsUpdate::AddOrUpdate { params }) => {
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
        QueryMsg::TargetHealthFactor {} => {
            to_json_binary(&TARGET_HEALTH_FACTOR.load(deps.storage)?)?
        }
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
