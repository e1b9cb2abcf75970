//! The Red Bank: Mars v2's money market, written from `contracts/red-bank` for cw-multi-test.
//!
//! Scaled collateral and debt with liquidity/borrow indexes accrued over block time; every
//! market-touching action first applies accumulated interest (crediting the reserve-factor
//! share to the rewards collector as collateral), then changes totals, then resets rates. The
//! money math is `mars::math`, shared with the services.
//!
//! Not modelled: the incentives contract (Mars notifies it of every collateral change; nothing
//! here pays incentives) and contract migration.

mod execute;
mod interest;
mod liquidate;
mod peers;
mod positions;
mod query;
pub mod state;

use cosmwasm_std::{Binary, Deps, DepsMut, Env, MessageInfo, Response};
use mars::msg::address_provider::MarsAddressType;
use mars::msg::red_bank::{ExecuteMsg, InstantiateMsg, QueryMsg};

use super::support::{
    from_common_errors, nonpayable, one_coin, save_owner_and_respond, CommonError,
};
pub use interest::{accrue_market, refresh_interest_rates};
pub use state::{user_key, Config, COLLATERALS, CONFIG, DEBTS, MARKETS};

/// Errors with the Red Bank's messages (`contracts/red-bank/src/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum RedBankError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("Unauthorized")]
    Unauthorized {},
    #[error("All params should be available during instantiation")]
    InstantiateParamsUnavailable {},
    #[error("Address type {0} is not set in the address provider")]
    AddressNotSet(MarsAddressType),
    #[error("Market not found for denom {denom:?}")]
    MarketNotFound { denom: String },
    #[error("Asset params not found for denom {denom:?}")]
    AssetParamsNotFound { denom: String },
    #[error("failed to query price for denom: {denom}. Error: {error}")]
    PriceQuery { denom: String, error: String },
    #[error("User address {user:?} has no balance in specified collateral asset {denom:?}")]
    UserNoCollateralBalance { user: String, denom: String },
    #[error(
        "Withdraw amount must be greater than 0 and less or equal user balance (asset: {denom:?})"
    )]
    InvalidWithdrawAmount { denom: String },
    #[error("User's health factor can't be less than 1 after withdraw")]
    InvalidHealthFactorAfterWithdraw {},
    #[error("Asset is already initialized")]
    AssetAlreadyInitialized {},
    #[error("Asset not initialized")]
    AssetNotInitialized {},
    #[error("Deposit Cap exceeded for {denom:?}")]
    DepositCapExceeded { denom: String },
    #[error("Cannot have 0 as liquidity index")]
    InvalidLiquidityIndex {},
    #[error(
        "Borrow amount must be greater than 0 and less or equal available liquidity (asset: {denom:?})"
    )]
    InvalidBorrowAmount { denom: String },
    #[error("Borrow amount exceeds maximum allowed given current collateral value")]
    BorrowAmountExceedsGivenCollateral {},
    #[error("Cannot repay 0 debt")]
    CannotRepayZeroDebt {},
    #[error("User cannot issue liquidation of own account")]
    CannotLiquidateSelf {},
    #[error("User can't be liquidated for asset {denom:?} not being used as collateral")]
    CannotLiquidateWhenCollateralUnset { denom: String },
    #[error("User has no balance in specified collateral asset to be liquidated")]
    CannotLiquidateWhenNoCollateralBalance {},
    #[error(
        "User has no outstanding debt in the specified debt asset and thus cannot be liquidated"
    )]
    CannotLiquidateWhenNoDebtBalance {},
    #[error("User's health factor is not less than 1 and thus cannot be liquidated")]
    CannotLiquidateHealthyPosition {},
    #[error("Deposit for {denom:?} is not enabled")]
    DepositNotEnabled { denom: String },
    #[error("Borrow for {denom:?} is not enabled")]
    BorrowNotEnabled { denom: String },
    #[error("User's health factor can't be less than 1 after disabling collateral")]
    InvalidHealthFactorAfterDisablingCollateral {},
    #[error("Cannot repay on behalf of credit manager")]
    CannotRepayOnBehalfOfCreditManager {},
    #[error("Cannot liquidate credit manager (use credit-manager contract liquidate function)")]
    CannotLiquidateCreditManager {},
}

from_common_errors!(RedBankError);

pub type RedBankResult<T> = Result<T, RedBankError>;

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> RedBankResult<Response> {
    let address_provider = msg
        .config
        .address_provider
        .ok_or(RedBankError::InstantiateParamsUnavailable {})?;
    CONFIG.save(
        deps.storage,
        &Config {
            address_provider: deps.api.addr_validate(&address_provider)?,
        },
    )?;
    save_owner_and_respond(deps, &msg.owner)
}

pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> RedBankResult<Response> {
    match msg {
        ExecuteMsg::UpdateConfig { config } => execute::update_config(deps, info, config),
        ExecuteMsg::InitAsset { denom, params } => {
            execute::init_asset(deps, env, info, denom, params)
        }
        ExecuteMsg::UpdateAsset { denom, params } => {
            execute::update_asset(deps, env, info, denom, params)
        }
        ExecuteMsg::Deposit {
            account_id,
            on_behalf_of,
        } => {
            let sent = one_coin(&info)?;
            execute::deposit(deps, env, info, on_behalf_of, sent, account_id)
        }
        ExecuteMsg::Withdraw {
            denom,
            amount,
            recipient,
            account_id,
            liquidation_related,
        } => {
            nonpayable(&info)?;
            execute::withdraw(
                deps,
                env,
                info,
                denom,
                amount,
                recipient,
                account_id,
                liquidation_related.unwrap_or(false),
            )
        }
        ExecuteMsg::Borrow {
            denom,
            amount,
            recipient,
        } => {
            nonpayable(&info)?;
            execute::borrow(deps, env, info, denom, amount, recipient)
        }
        ExecuteMsg::Repay { on_behalf_of } => {
            let sent = one_coin(&info)?;
            execute::repay(deps, env, info, on_behalf_of, sent)
        }
        ExecuteMsg::Liquidate {
            user,
            collateral_denom,
            recipient,
        } => {
            let user = deps.api.addr_validate(&user)?;
            let sent = one_coin(&info)?;
            liquidate::liquidate(deps, env, info, user, collateral_denom, sent, recipient)
        }
        ExecuteMsg::UpdateAssetCollateralStatus { denom, enable } => {
            nonpayable(&info)?;
            execute::update_asset_collateral_status(deps, env, info, denom, enable)
        }
    }
}

pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> RedBankResult<Binary> {
    query::query(deps, env, msg)
}
