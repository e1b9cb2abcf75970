//! The checks at the end of an `update_credit_account` (`health.rs`, `hls.rs`).

use cosmwasm_std::{Deps, Response};
use mars::msg::credit_manager::{AccountKind, HealthState};
use mars::msg::oracle::ActionKind;
use mars::types::HlsAssetType;

use super::debt::current_debt_for_denom;
use super::peers::{all_lent, asset_params, health_state};
use super::state::DEBT_SHARES;
use super::{CreditManagerError, CreditManagerResult};

/// The account ends healthy at max LTV; or, if it started unhealthy, no weaker than it was.
pub fn assert_max_ltv(
    deps: Deps,
    account_id: &str,
    prev: &HealthState,
) -> CreditManagerResult<Response> {
    let new = health_state(deps, account_id, ActionKind::Default)?;
    match (prev, &new) {
        (_, HealthState::Healthy) => {}
        (
            HealthState::Unhealthy {
                max_ltv_health_factor: prev_hf,
                ..
            },
            HealthState::Unhealthy {
                max_ltv_health_factor: new_hf,
                ..
            },
        ) => {
            if prev_hf > new_hf {
                return Err(CreditManagerError::HealthNotImproved {
                    prev_hf: prev_hf.to_string(),
                    new_hf: new_hf.to_string(),
                });
            }
        }
        (
            HealthState::Healthy,
            HealthState::Unhealthy {
                max_ltv_health_factor,
                ..
            },
        ) => {
            return Err(CreditManagerError::AboveMaxLtv {
                account_id: account_id.to_string(),
                max_ltv_health_factor: max_ltv_health_factor.to_string(),
            })
        }
    }
    Ok(Response::new()
        .add_attribute("action", "callback/assert_health")
        .add_attribute("account_id", account_id)
        .add_attribute("prev_health_state", prev.to_string())
        .add_attribute("new_health_state", new.to_string()))
}

fn hls_error(reason: String) -> CreditManagerError {
    CreditManagerError::Hls { reason }
}

/// An HLS account has at most one debt denom, which has HLS params, and lends only assets
/// correlated with it (deposits may hold anything: uncorrelated ones simply do not count).
pub fn assert_hls_rules(deps: Deps, account_id: &str) -> CreditManagerResult<Response> {
    let debt_denoms = DEBT_SHARES
        .prefix(account_id)
        .keys(deps.storage, None, None, cosmwasm_std::Order::Ascending)
        .collect::<cosmwasm_std::StdResult<Vec<String>>>()?;
    // Mars reads the positions first, which prices every debt.
    for denom in &debt_denoms {
        current_debt_for_denom(deps, account_id, denom)?;
    }
    let lends = all_lent(deps, account_id)?;
    if debt_denoms.len() > 1 {
        return Err(hls_error("Account has more than one debt denom".into()));
    }
    if let Some(debt) = debt_denoms.first() {
        let params = asset_params(deps, debt)?
            .ok_or_else(|| CreditManagerError::AssetParamsNotFound(debt.clone()))?;
        let hls = params
            .credit_manager
            .hls
            .ok_or_else(|| hls_error(format!("{debt} does not have HLS parameters")))?;
        for lend in &lends {
            let correlated = HlsAssetType::Coin {
                denom: lend.denom.clone(),
            };
            if !hls.correlations.contains(&correlated) {
                return Err(hls_error(format!(
                    "{} lend is not a correlated asset to debt {debt}",
                    lend.denom
                )));
            }
        }
    }
    Ok(Response::new()
        .add_attribute("action", "callback/assert_hls_rules")
        .add_attribute("account_id", account_id)
        .add_attribute("account_kind", AccountKind::HighLeveredStrategy.to_string()))
}
