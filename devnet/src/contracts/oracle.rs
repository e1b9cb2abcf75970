//! The oracle: Mars's oracle messages over fixed price sources the owner moves.

use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult};
use cw_storage_plus::{Item, Map};
use mars::msg::oracle::{
    ActionKind, ConfigResponse, ExecuteMsg, InstantiateMsg, PriceResponse, PriceSource,
    PriceSourceResponse, QueryMsg,
};
use serde::{Deserialize, Serialize};

use mars::math::params::validate_native_denom;

use super::support::{
    assert_owner, from_common_errors, page, save_owner_and_respond, CommonError, OWNER,
};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub base_denom: String,
}

pub const CONFIG: Item<Config> = Item::new("config");
pub const PRICE_SOURCES: Map<&str, PriceSource> = Map::new("price_sources");

#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("price source not found for denom: {denom}")]
    PriceSourceNotFound { denom: String },
    #[error("price of {denom} must be positive")]
    ZeroPrice { denom: String },
}
from_common_errors!(OracleError);

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, OracleError> {
    validate_native_denom(&msg.base_denom)?;
    CONFIG.save(
        deps.storage,
        &Config {
            base_denom: msg.base_denom,
        },
    )?;
    save_owner_and_respond(deps, &msg.owner)
}

pub fn execute(
    mut deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, OracleError> {
    assert_owner(deps.storage, &info.sender)?;
    match msg {
        ExecuteMsg::SetPriceSource {
            denom,
            price_source,
        } => {
            save_price_source(deps, &denom, &price_source)?;
            Ok(Response::new()
                .add_attribute("action", "set_price_source")
                .add_attribute("denom", denom)
                .add_attribute("price_source", describe(&price_source)))
        }
        ExecuteMsg::RemovePriceSource { denom } => {
            PRICE_SOURCES.remove(deps.storage, &denom);
            Ok(Response::new()
                .add_attribute("action", "remove_price_source")
                .add_attribute("denom", denom))
        }
        ExecuteMsg::UpdateConfig { base_denom } => {
            let mut config = CONFIG.load(deps.storage)?;
            if let Some(base_denom) = base_denom {
                validate_native_denom(&base_denom)?;
                config.base_denom = base_denom;
            }
            CONFIG.save(deps.storage, &config)?;
            Ok(Response::new()
                .add_attribute("action", "update_config")
                .add_attribute("base_denom", config.base_denom))
        }
        ExecuteMsg::SetPrices { prices } => {
            let mut response = Response::new().add_attribute("action", "set_prices");
            for update in prices {
                let source = update.price_source();
                save_price_source(deps.branch(), &update.denom, &source)?;
                response = response.add_attribute(update.denom, describe(&source));
            }
            Ok(response)
        }
    }
}

fn save_price_source(deps: DepsMut, denom: &str, source: &PriceSource) -> Result<(), OracleError> {
    validate_native_denom(denom)?;
    let positive = match source {
        PriceSource::Fixed { price } => !price.is_zero(),
        PriceSource::FixedByKind {
            default_price,
            liquidation_price,
        } => !default_price.is_zero() && !liquidation_price.is_zero(),
    };
    if !positive {
        return Err(OracleError::ZeroPrice {
            denom: denom.to_string(),
        });
    }
    PRICE_SOURCES.save(deps.storage, denom, source)?;
    Ok(())
}

/// Mars's `Display` of a price source, used in event attributes.
fn describe(source: &PriceSource) -> String {
    match source {
        PriceSource::Fixed { price } => format!("fixed:{price}"),
        PriceSource::FixedByKind {
            default_price,
            liquidation_price,
        } => format!("fixed_by_kind:{default_price}:{liquidation_price}"),
    }
}

pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, OracleError> {
    Ok(match msg {
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            owner: Some(OWNER.load(deps.storage)?.into_string()),
            proposed_new_owner: None,
            base_denom: CONFIG.load(deps.storage)?.base_denom,
        })?,
        QueryMsg::PriceSource { denom } => to_json_binary(&PriceSourceResponse {
            price_source: load_source(deps, &denom)?,
            denom,
        })?,
        QueryMsg::PriceSources { start_after, limit } => {
            to_json_binary(&price_sources(deps, start_after, limit)?)?
        }
        QueryMsg::Price { denom, kind } => to_json_binary(&PriceResponse {
            price: load_source(deps, &denom)?.price(kind.unwrap_or_default()),
            denom,
        })?,
        QueryMsg::Prices {
            start_after,
            limit,
            kind,
        } => {
            let kind: ActionKind = kind.unwrap_or_default();
            let prices: Vec<PriceResponse> = price_sources(deps, start_after, limit)?
                .into_iter()
                .map(|source| PriceResponse {
                    price: source.price_source.price(kind),
                    denom: source.denom,
                })
                .collect();
            to_json_binary(&prices)?
        }
    })
}

/// One page of the price sources, in denom order; the prices of a page are priced from it.
fn price_sources(
    deps: Deps,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<Vec<PriceSourceResponse>> {
    page(deps.storage, &PRICE_SOURCES, start_after.as_deref(), limit)
        .map(|item| {
            let (denom, price_source) = item?;
            Ok(PriceSourceResponse {
                denom,
                price_source,
            })
        })
        .collect()
}

fn load_source(deps: Deps, denom: &str) -> Result<PriceSource, OracleError> {
    PRICE_SOURCES
        .may_load(deps.storage, denom)?
        .ok_or_else(|| OracleError::PriceSourceNotFound {
            denom: denom.to_string(),
        })
}
