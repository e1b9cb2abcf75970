//! Rover's credit manager: Mars v2.1's (Osmosis) `contracts/credit-manager`, written for
//! cw-multi-test.
//!
//! `update_credit_account` turns each action into a callback the contract sends itself, in
//! order, then asserts the deposit caps, the HLS rules of an HLS account and (unless every
//! action was a deposit or an own repayment) that the account ends healthy at max LTV or no
//! weaker than it started. Coins sit in the contract's bank balance, booked per account;
//! debt is borrowed from the Red Bank under the contract's own address and split in shares;
//! lends are Red Bank collateral under `{"addr": <this contract>, "acc_id": <id>}`.
//!
//! Not modelled: vaults, zaps, astroport LPs, incentive claims, fund-manager accounts, owner
//! hand-over and migration.

mod coins;
mod config;
mod debt;
mod dispatch;
mod health;
mod lend;
mod liquidate;
mod peers;
mod query;
pub mod state;

use cosmwasm_std::{
    Binary, Coin, Coins, CoinsError, Decimal, Deps, DepsMut, Env, MessageInfo, Response, Uint128,
};
use mars::math::MathError;
use mars::msg::credit_manager::{CallbackMsg, ExecuteMsg, InstantiateMsg, QueryMsg};

use super::support::{from_common_errors, one_coin, CommonError};
pub use state::GuardError;

/// Errors with the credit manager's messages (`contracts/credit-manager/src/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum CreditManagerError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error(
        "Actions resulted in exceeding maximum allowed loan-to-value. Max LTV health factor: {max_ltv_health_factor:?}"
    )]
    AboveMaxLtv {
        account_id: String,
        max_ltv_health_factor: String,
    },
    #[error("Asset deposit would result in exceeding limit. With deposit: {}, maximum: {maximum}", coin_debug(.new_value))]
    AboveAssetDepositCap { new_value: Coin, maximum: Uint128 },
    #[error(
        "{denom:?} balance change was unexpected. Prev: {}, Curr: {}.",
        uint_debug(.prev_amount),
        uint_debug(.curr_amount)
    )]
    BalanceChange {
        denom: String,
        prev_amount: Uint128,
        curr_amount: Uint128,
    },
    #[error("{0} is not an available coin to request")]
    CoinNotAvailable(String),
    #[error("Callbacks cannot be invoked externally")]
    ExternalInvocation,
    #[error("Extra funds received: {0}")]
    ExtraFundsReceived(Coins),
    #[error(
        "Sent fund mismatch. Expected: {}, received {}",
        uint_debug(.expected),
        uint_debug(.received)
    )]
    FundsMismatch {
        expected: Uint128,
        received: Uint128,
    },
    #[error(
        "Actions did not result in improved health factor: before: {prev_hf:?}, after: {new_hf:?}"
    )]
    HealthNotImproved { prev_hf: String, new_hf: String },
    #[error("{reason:?}")]
    Hls { reason: String },
    #[error("{reason:?}")]
    InvalidConfig { reason: String },
    #[error(
        "Paying down {} for {} does not result in a profit for the liquidator",
        coin_debug(.debt_coin),
        coin_debug(.request_coin)
    )]
    LiquidationNotProfitable { debt_coin: Coin, request_coin: Coin },
    #[error("No coin amount set for action")]
    NoAmount,
    #[error("No debt to repay")]
    NoDebt,
    #[error("Nothing lent to reclaim")]
    NoneLent,
    #[error("{account_id:?} is not a liquidatable credit account. Health factor: {lqdt_health_factor:?}.")]
    NotLiquidatable {
        account_id: String,
        lqdt_health_factor: String,
    },
    #[error("{user:?} is not the owner of {account_id:?}")]
    NotTokenOwner { user: String, account_id: String },
    #[error("{0} is not whitelisted")]
    NotWhitelisted(String),
    #[error("Cannot request liquidation on own credit account")]
    SelfLiquidation,
    #[error(transparent)]
    Coins(#[from] CoinsError),
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error("Debt cannot be represented by zero debt shares")]
    ZeroDebtShares,
    #[error("{0} asset params not found")]
    AssetParamsNotFound(String),
    /// Ours: the devnet does not open fund-manager accounts (they need a managed vault).
    #[error("fund manager accounts are not supported by the devnet")]
    FundManagerUnsupported,
    /// Ours: USDC-margin accounts (core-contracts only) deposit the perps base denom, and the
    /// devnet runs no perps contract.
    #[error("usdc margin accounts are not supported by the devnet (it runs no perps contract)")]
    UsdcMarginUnsupported,
    /// What the other contract line's JSON parser says of a message field it does not have.
    #[error("Error parsing into type mars_types::credit_manager::{message}: {problem}")]
    OtherLine {
        message: &'static str,
        problem: String,
    },
}

from_common_errors!(CreditManagerError);

impl From<cosmwasm_std::CheckedMultiplyFractionError> for CreditManagerError {
    fn from(err: cosmwasm_std::CheckedMultiplyFractionError) -> Self {
        CreditManagerError::Common(cosmwasm_std::StdError::from(err).into())
    }
}

impl From<cosmwasm_std::CheckedMultiplyRatioError> for CreditManagerError {
    fn from(err: cosmwasm_std::CheckedMultiplyRatioError) -> Self {
        CreditManagerError::Common(cosmwasm_std::StdError::from(err).into())
    }
}

pub type CreditManagerResult<T> = Result<T, CreditManagerError>;

/// A coin as cosmwasm-std 1.5 (the Mars contracts' version) prints it with `{:?}`, which
/// several error messages do.
fn coin_debug(coin: &Coin) -> String {
    format!(
        "Coin {{ denom: {:?}, amount: Uint128({}) }}",
        coin.denom, coin.amount
    )
}

fn uint_debug(amount: &Uint128) -> String {
    format!("Uint128({amount})")
}

/// A message coin as the 128-bit amount the contracts work in.
fn amount_of(coin: &Coin) -> CreditManagerResult<Uint128> {
    Uint128::try_from(coin.amount).map_err(|_| {
        MathError::Overflow {
            operation: "coin amount",
        }
        .into()
    })
}

pub fn instantiate(
    deps: DepsMut,
    env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> CreditManagerResult<Response> {
    config::instantiate(deps, env, msg)?;
    Ok(Response::default())
}

pub fn execute(
    mut deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> CreditManagerResult<Response> {
    match msg {
        ExecuteMsg::CreateCreditAccount(kind) => {
            dispatch::create_credit_account(&mut deps, &info.sender, kind).map(|(_, res)| res)
        }
        ExecuteMsg::UpdateCreditAccount {
            account_id,
            account_kind,
            actions,
        } => dispatch::update_credit_account(deps, env, info, account_id, account_kind, actions),
        ExecuteMsg::RepayFromWallet { account_id } => {
            let sent = one_coin(&info)?;
            debt::repay_from_wallet(deps, env, &info.sender, &account_id, sent)
        }
        ExecuteMsg::UpdateConfig { updates } => config::update_config(deps, info, updates),
        ExecuteMsg::Callback(callback) => {
            if info.sender != env.contract.address {
                return Err(CreditManagerError::ExternalInvocation);
            }
            callback_handler(deps, env, callback)
        }
    }
}

fn callback_handler(
    deps: DepsMut,
    env: Env,
    callback: CallbackMsg,
) -> CreditManagerResult<Response> {
    match callback {
        CallbackMsg::Withdraw {
            account_id,
            coin,
            recipient,
        } => coins::withdraw(deps, &account_id, &coin, &recipient),
        CallbackMsg::Borrow { account_id, coin } => debt::borrow(deps, &account_id, &coin),
        CallbackMsg::Repay { account_id, coin } => debt::repay(deps, &env, &account_id, &coin),
        CallbackMsg::RepayForRecipient {
            benefactor_account_id,
            recipient_account_id,
            coin,
        } => debt::repay_for_recipient(
            deps,
            &env,
            &benefactor_account_id,
            &recipient_account_id,
            &coin,
        ),
        CallbackMsg::Lend { account_id, coin } => lend::lend(deps, &account_id, &coin),
        CallbackMsg::Reclaim { account_id, coin } => lend::reclaim(deps, &account_id, &coin),
        CallbackMsg::AssertMaxLtv {
            account_id,
            prev_health_state,
        } => health::assert_max_ltv(deps.as_ref(), &account_id, &prev_health_state),
        CallbackMsg::AssertDepositCaps { denoms } => {
            coins::assert_deposit_caps(deps.as_ref(), denoms)
        }
        CallbackMsg::Liquidate {
            liquidator_account_id,
            liquidatee_account_id,
            debt_coin,
            request,
        } => liquidate::liquidate(
            deps,
            &env,
            &liquidator_account_id,
            &liquidatee_account_id,
            &debt_coin,
            &request,
        ),
        CallbackMsg::SwapExactIn {
            account_id,
            coin_in,
            denom_out,
            min_receive,
            route: _,
        } => coins::swap_exact_in(deps, &env, &account_id, &coin_in, &denom_out, min_receive),
        CallbackMsg::UpdateCoinBalance {
            account_id,
            previous_balance,
            change,
        } => coins::update_coin_balance(deps, &env, &account_id, &previous_balance, &change),
        CallbackMsg::RefundAllCoinBalances { account_id } => {
            coins::refund_coin_balances(deps.as_ref(), &env, &account_id)
        }
        CallbackMsg::AssertHlsRules { account_id } => {
            health::assert_hls_rules(deps.as_ref(), &account_id)
        }
        CallbackMsg::RemoveReentrancyGuard {} => {
            state::unlock_guard(deps.storage)?;
            Ok(Response::new().add_attribute("action", "remove_reentrancy_guard"))
        }
    }
}

pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> CreditManagerResult<Binary> {
    query::query(deps, env, msg)
}

/// The max slippage must lie in (0, 1).
fn assert_max_slippage(max_slippage: Decimal) -> CreditManagerResult<()> {
    if max_slippage.is_zero() || max_slippage >= Decimal::one() {
        return Err(CreditManagerError::InvalidConfig {
            reason: "Max slippage must be greater than 0 and less than 1".to_string(),
        });
    }
    Ok(())
}
