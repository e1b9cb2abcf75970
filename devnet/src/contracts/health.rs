//! Rover's health contract, written from Mars's `contracts/health` (v2.1, Osmosis) for
//! cw-multi-test: it reads an account's positions and the oracle and params addresses from the
//! credit manager, prices every denom that has asset params, and runs
//! [`mars::math::credit_account::HealthComputer`]. [`query_core`] answers core-contracts'
//! (Neutron) queries.

use cosmwasm_std::{
    to_json_binary, Addr, Binary, Decimal, Deps, DepsMut, Env, MessageInfo, Response, StdError,
};
use cw_storage_plus::Item;
use mars::math::credit_account::{DenomsData, HealthComputeError, HealthComputer};
use mars::msg::credit_manager::{self, Positions};
use mars::msg::health::{
    self, namespace, AccountKind, ConfigResponse, ExecuteMsg, HealthState, HealthValuesResponse,
    InstantiateMsg, OwnerResponse, PerpsHealth, QueryMsg,
};
use mars::msg::oracle::{self, ActionKind, PriceResponse};
use mars::msg::params;
use mars::types::AssetParams;

use super::support::{
    assert_owner, from_common_errors, save_owner_and_respond, CommonError, OWNER,
};

pub const CREDIT_MANAGER: Item<Addr> = Item::new(namespace::CREDIT_MANAGER);

/// Errors with the health contract's messages (`packages/types/src/health/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error(transparent)]
    Compute(#[from] HealthComputeError),
}

from_common_errors!(HealthError);

pub type HealthResult<T> = Result<T, HealthError>;

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> HealthResult<Response> {
    if let Some(credit_manager) = msg.credit_manager {
        CREDIT_MANAGER.save(deps.storage, &deps.api.addr_validate(&credit_manager)?)?;
    }
    save_owner_and_respond(deps, &msg.owner)
}

pub fn execute(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> HealthResult<Response> {
    match msg {
        ExecuteMsg::UpdateConfig { credit_manager } => {
            assert_owner(deps.storage, &info.sender)?;
            let credit_manager = deps.api.addr_validate(&credit_manager)?;
            CREDIT_MANAGER.save(deps.storage, &credit_manager)?;
            Ok(Response::new()
                .add_attribute("action", "update_config")
                .add_attribute("credit_manager", credit_manager))
        }
    }
}

pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> HealthResult<Binary> {
    Ok(match msg {
        QueryMsg::HealthValues {
            account_id,
            kind,
            action,
        } => to_json_binary(&health_values(deps, &account_id, &kind, action)?)?,
        QueryMsg::HealthState {
            account_id,
            kind,
            action,
        } => to_json_binary(&health_state(deps, &account_id, &kind, action)?)?,
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            credit_manager: CREDIT_MANAGER
                .may_load(deps.storage)?
                .map(Addr::into_string),
            owner_response: OwnerResponse::owned_by(OWNER.load(deps.storage)?),
        })?,
    })
}

/// The queries of core-contracts' health contract (Neutron): no `kind` (read from the credit
/// manager's `positions`), answers with the account's perps (none on the devnet: zero PnL, and
/// `has_perps` from the positions' `perps`).
pub fn query_core(deps: Deps, env: Env, msg: health::core::QueryMsg) -> HealthResult<Binary> {
    use health::core::QueryMsg as Core;
    Ok(match msg {
        Core::HealthValues { account_id, action } => {
            let peers = Peers::load(deps)?;
            let positions = peers.positions(deps, &account_id, Some(action))?;
            to_json_binary(&core_values(deps, &peers, &positions, action)?)?
        }
        Core::HealthState { account_id, action } => {
            let peers = Peers::load(deps)?;
            let positions = peers.positions(deps, &account_id, Some(action))?;
            let has_perps = positions.perps.as_ref().is_some_and(|p| !p.is_empty());
            if positions.debts.is_empty() && !has_perps {
                return Ok(to_json_binary(&HealthState::Healthy)?);
            }
            let values = core_values(deps, &peers, &positions, action)?;
            // core-contracts also reports the liquidation health factor (MAX without one).
            let liquidation_health_factor = values
                .health
                .liquidation_health_factor
                .unwrap_or(Decimal::MAX);
            to_json_binary(&state_of(&values, Some(liquidation_health_factor)))?
        }
        Core::Config {} => query(deps, env, QueryMsg::Config {})?,
    })
}

fn core_values(
    deps: Deps,
    peers: &Peers,
    positions: &Positions,
    action: ActionKind,
) -> HealthResult<HealthValuesResponse> {
    let mut values = compute(deps, peers, positions, &positions.account_kind, action)?;
    // The devnet runs no perps contract: positions never hold any, so no PnL.
    values.perps = Some(PerpsHealth {
        has_perps: positions.perps.as_ref().is_some_and(|p| !p.is_empty()),
        ..PerpsHealth::none_held()
    });
    Ok(values)
}

/// The credit manager and the oracle and params contracts it names.
struct Peers {
    credit_manager: Addr,
    oracle: String,
    params: String,
}

impl Peers {
    fn load(deps: Deps) -> HealthResult<Self> {
        let credit_manager = CREDIT_MANAGER.load(deps.storage).map_err(|_| {
            StdError::msg("Credit Manager contract is currently not set up in the health contract")
        })?;
        let config: credit_manager::ConfigResponse = deps
            .querier
            .query_wasm_smart(&credit_manager, &credit_manager::QueryMsg::Config {})?;
        Ok(Peers {
            credit_manager,
            oracle: config.oracle,
            params: config.params,
        })
    }

    /// The account's positions; `action` as core-contracts' health contract asks for them (the
    /// v2.1 line asks without one).
    fn positions(
        &self,
        deps: Deps,
        account_id: &str,
        action: Option<ActionKind>,
    ) -> HealthResult<Positions> {
        Ok(deps.querier.query_wasm_smart(
            &self.credit_manager,
            &credit_manager::QueryMsg::Positions {
                account_id: account_id.to_string(),
                action,
            },
        )?)
    }

    /// Params and a price of `action` kind for every denom held that has params; the others
    /// are neither priced nor counted.
    fn denoms_data(
        &self,
        deps: Deps,
        positions: &Positions,
        action: ActionKind,
    ) -> HealthResult<DenomsData> {
        let denoms = positions
            .deposits
            .iter()
            .map(|c| &c.denom)
            .chain(positions.debts.iter().map(|d| &d.denom))
            .chain(positions.lends.iter().map(|c| &c.denom));
        let mut data = DenomsData::default();
        for denom in denoms {
            let params: Option<AssetParams> = deps.querier.query_wasm_smart(
                &self.params,
                &params::QueryMsg::AssetParams {
                    denom: denom.clone(),
                },
            )?;
            let Some(params) = params else { continue };
            let price: PriceResponse = deps.querier.query_wasm_smart(
                &self.oracle,
                &oracle::QueryMsg::Price {
                    denom: denom.clone(),
                    kind: Some(action),
                },
            )?;
            data.params.insert(denom.clone(), params);
            data.prices.insert(denom.clone(), price.price);
        }
        Ok(data)
    }
}

fn compute(
    deps: Deps,
    peers: &Peers,
    positions: &Positions,
    kind: &AccountKind,
    action: ActionKind,
) -> HealthResult<HealthValuesResponse> {
    let denoms = peers.denoms_data(deps, positions, action)?;
    let health = HealthComputer {
        kind,
        positions,
        denoms: &denoms,
    }
    .compute_health()?;
    Ok(health.into())
}

pub fn health_values(
    deps: Deps,
    account_id: &str,
    kind: &AccountKind,
    action: ActionKind,
) -> HealthResult<HealthValuesResponse> {
    let peers = Peers::load(deps)?;
    let positions = peers.positions(deps, account_id, None)?;
    compute(deps, &peers, &positions, kind, action)
}

/// Max-LTV health only; an account without debt is healthy without asking the oracle.
pub fn health_state(
    deps: Deps,
    account_id: &str,
    kind: &AccountKind,
    action: ActionKind,
) -> HealthResult<HealthState> {
    let peers = Peers::load(deps)?;
    let positions = peers.positions(deps, account_id, None)?;
    if positions.debts.is_empty() {
        return Ok(HealthState::Healthy);
    }
    let values = compute(deps, &peers, &positions, kind, action)?;
    Ok(state_of(&values, None))
}

/// Max-LTV health of `values`: unhealthy above max LTV, reporting `liquidation_health_factor`
/// too where the contract line does.
fn state_of(
    values: &HealthValuesResponse,
    liquidation_health_factor: Option<Decimal>,
) -> HealthState {
    match values.health.max_ltv_health_factor {
        Some(max_ltv_health_factor) if values.above_max_ltv => HealthState::Unhealthy {
            max_ltv_health_factor,
            liquidation_health_factor,
        },
        _ => HealthState::Healthy,
    }
}
