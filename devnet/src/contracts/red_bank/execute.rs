//! Owner actions and the user actions other than `liquidate`, step for step as Mars's
//! `asset.rs`, `deposit.rs`, `withdraw.rs`, `borrow.rs`, `repay.rs` and `collateral.rs`.

use cosmwasm_std::{Addr, BankMsg, Coin, Deps, DepsMut, Env, MessageInfo, Response, Uint128};
use mars::math::{interest, params::validate_market, params::validate_native_denom};
use mars::msg::oracle::ActionKind;
use mars::msg::params::{QueryMsg as ParamsQuery, TotalDepositResponse};
use mars::msg::red_bank::{CreateOrUpdateConfig, InitOrUpdateAssetParams, Market};

use super::interest::{accrue_market, refresh_interest_rates, save_with_new_rates};
use super::peers::Peers;
use super::positions::{load_market, query_asset_params, PricedPositions};
use super::state::{
    decrease_collateral, decrease_debt, increase_collateral, increase_debt, is_borrowing, user_key,
    COLLATERALS, CONFIG, DEBTS, MARKETS,
};
use super::{RedBankError, RedBankResult};
use crate::contracts::support::{assert_owner, Coin128};

fn send(to: &Addr, denom: &str, amount: Uint128) -> BankMsg {
    BankMsg::Send {
        to_address: to.to_string(),
        amount: vec![Coin::new(amount, denom)],
    }
}

/// `recipient` if one is named, else `default`.
pub(super) fn recipient_or(
    deps: Deps,
    recipient: Option<String>,
    default: &Addr,
) -> RedBankResult<Addr> {
    Ok(match recipient {
        Some(recipient) => deps.api.addr_validate(&recipient)?,
        None => default.clone(),
    })
}

/// Whom a deposit or repayment is for: `on_behalf_of` if named, else the sender. Never the
/// credit manager itself (`refused` says so).
fn beneficiary(
    deps: Deps,
    peers: &Peers,
    on_behalf_of: Option<&str>,
    sender: &Addr,
    refused: RedBankError,
) -> RedBankResult<Addr> {
    match on_behalf_of {
        Some(address)
            if peers
                .credit_manager()
                .is_some_and(|cm| cm.as_str() == address) =>
        {
            Err(refused)
        }
        Some(address) => Ok(deps.api.addr_validate(address)?),
        None => Ok(sender.clone()),
    }
}

/// The attributes a deposit, withdrawal, borrow or repayment reports.
struct Report<'a> {
    action: &'static str,
    sender: &'a Addr,
    /// `on_behalf_of` or `recipient`, and that address.
    party: (&'static str, &'a Addr),
    denom: String,
    amount: Uint128,
    amount_scaled: Uint128,
}

impl Report<'_> {
    fn add_to(self, response: Response) -> Response {
        response
            .add_attribute("action", self.action)
            .add_attribute("sender", self.sender)
            .add_attribute(self.party.0, self.party.1)
            .add_attribute("denom", self.denom)
            .add_attribute("amount", self.amount)
            .add_attribute("amount_scaled", self.amount_scaled)
    }

    /// A withdrawal or borrow: the reported amount leaves the Red Bank for the recipient (the
    /// report's party) in the same response.
    fn add_with_payout(self, response: Response) -> Response {
        let payout = send(self.party.1, &self.denom, self.amount);
        self.add_to(response.add_message(payout))
    }
}

pub fn update_config(
    deps: DepsMut,
    info: MessageInfo,
    config: CreateOrUpdateConfig,
) -> RedBankResult<Response> {
    assert_owner(deps.storage, &info.sender)?;
    let mut current = CONFIG.load(deps.storage)?;
    if let Some(address_provider) = config.address_provider {
        current.address_provider = deps.api.addr_validate(&address_provider)?;
    }
    CONFIG.save(deps.storage, &current)?;
    Ok(Response::new().add_attribute("action", "update_config"))
}

pub fn init_asset(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    denom: String,
    params: InitOrUpdateAssetParams,
) -> RedBankResult<Response> {
    assert_owner(deps.storage, &info.sender)?;
    validate_native_denom(&denom)?;
    if MARKETS.has(deps.storage, &denom) {
        return Err(RedBankError::AssetAlreadyInitialized {});
    }
    let (Some(reserve_factor), Some(interest_rate_model)) =
        (params.reserve_factor, params.interest_rate_model)
    else {
        return Err(RedBankError::InstantiateParamsUnavailable {});
    };
    let market = Market {
        denom: denom.clone(),
        reserve_factor,
        interest_rate_model,
        indexes_last_updated: env.block.time.seconds(),
        ..Market::default()
    };
    validate_market(&market)?;
    MARKETS.save(deps.storage, &denom, &market)?;
    Ok(Response::new()
        .add_attribute("action", "init_asset")
        .add_attribute("denom", denom))
}

pub fn update_asset(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    denom: String,
    params: InitOrUpdateAssetParams,
) -> RedBankResult<Response> {
    assert_owner(deps.storage, &info.sender)?;
    let mut market = MARKETS
        .may_load(deps.storage, &denom)?
        .ok_or(RedBankError::AssetNotInitialized {})?;
    let now = env.block.time.seconds();

    // Accrue at the old parameters up to now, so the new ones only apply from this block on.
    let rates_change = params
        .reserve_factor
        .is_some_and(|rf| rf != market.reserve_factor)
        || params.interest_rate_model.is_some();
    let mut response = Response::new();
    if rates_change {
        let peers = Peers::load(deps.as_ref())?;
        let rewards_collector = peers.rewards_collector()?.clone();
        accrue_market(deps.storage, now, &mut market, &rewards_collector)?;
    }
    if let Some(reserve_factor) = params.reserve_factor {
        market.reserve_factor = reserve_factor;
    }
    if let Some(model) = params.interest_rate_model {
        market.interest_rate_model = model;
    }
    validate_market(&market)?;
    if rates_change {
        response = refresh_interest_rates(now, &mut market, response)?;
    }
    MARKETS.save(deps.storage, &denom, &market)?;
    Ok(response
        .add_attribute("action", "update_asset")
        .add_attribute("denom", denom))
}

pub fn deposit(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    on_behalf_of: Option<String>,
    sent: Coin128,
    account_id: Option<String>,
) -> RedBankResult<Response> {
    let peers = Peers::load(deps.as_ref())?;
    let now = env.block.time.seconds();

    // Only the credit manager opens positions under an account id.
    if account_id.is_some() && !peers.is_credit_manager(&info.sender) {
        return Err(RedBankError::Unauthorized {});
    }
    let user = beneficiary(
        deps.as_ref(),
        &peers,
        on_behalf_of.as_deref(),
        &info.sender,
        RedBankError::Unauthorized {},
    )?;
    let denom = sent.denom;
    let amount = sent.amount;

    let mut market = load_market(deps.as_ref(), &denom)?;
    let params_addr = peers.params()?.clone();
    let asset_params = query_asset_params(deps.as_ref(), &params_addr, &denom)?;
    if !asset_params.red_bank.deposit_enabled {
        return Err(RedBankError::DepositNotEnabled { denom });
    }
    let total: TotalDepositResponse = deps.querier.query_wasm_smart(
        &params_addr,
        &ParamsQuery::TotalDeposit {
            denom: denom.clone(),
        },
    )?;
    if total.amount.checked_add(amount)? > asset_params.deposit_cap {
        return Err(RedBankError::DepositCapExceeded { denom });
    }

    accrue_market(deps.storage, now, &mut market, peers.rewards_collector()?)?;
    if market.liquidity_index.is_zero() {
        return Err(RedBankError::InvalidLiquidityIndex {});
    }
    let amount_scaled = interest::scaled_liquidity_amount(amount, &market, now)?;
    let key = user_key(&user, account_id.as_deref().unwrap_or(""));
    increase_collateral(deps.storage, &key, &denom, amount_scaled)?;
    market.collateral_total_scaled = market.collateral_total_scaled.checked_add(amount_scaled)?;
    let response = save_with_new_rates(deps.storage, now, &denom, &mut market, Response::new())?;

    Ok(Report {
        action: "deposit",
        sender: &info.sender,
        party: ("on_behalf_of", &user),
        denom,
        amount,
        amount_scaled,
    }
    .add_to(response))
}

#[allow(clippy::too_many_arguments)]
pub fn withdraw(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    denom: String,
    amount: Option<Uint128>,
    recipient: Option<String>,
    account_id: Option<String>,
    liquidation_related: bool,
) -> RedBankResult<Response> {
    let peers = Peers::load(deps.as_ref())?;
    let now = env.block.time.seconds();
    if account_id.is_some() && !peers.is_credit_manager(&info.sender) {
        return Err(RedBankError::Unauthorized {});
    }
    let withdrawer = info.sender.clone();
    let acc_id = account_id.unwrap_or_default();
    let key = user_key(&withdrawer, &acc_id);

    let mut market = load_market(deps.as_ref(), &denom)?;
    let collateral = COLLATERALS
        .may_load(deps.storage, (&key, &denom))?
        .unwrap_or_default();
    let balance_scaled_before = collateral.amount_scaled;
    if balance_scaled_before.is_zero() {
        return Err(RedBankError::UserNoCollateralBalance {
            user: withdrawer.to_string(),
            denom,
        });
    }
    let balance_before =
        interest::underlying_liquidity_amount(balance_scaled_before, &market, now)?;
    let withdraw_amount = match amount {
        Some(amount) if amount.is_zero() || amount > balance_before => {
            return Err(RedBankError::InvalidWithdrawAmount { denom });
        }
        Some(amount) => amount,
        None => balance_before,
    };

    // Mars checks the liquidation threshold here (not max LTV): a withdrawal may leave the
    // account anywhere above liquidation.
    let kind = if liquidation_related && peers.is_credit_manager(&info.sender) {
        ActionKind::Liquidation
    } else {
        ActionKind::Default
    };
    if collateral.enabled && is_borrowing(deps.storage, &withdrawer) {
        let mut positions =
            PricedPositions::load(deps.as_ref(), now, &withdrawer, &acc_id, &peers, kind)?;
        let holding = positions
            .holding_mut(&denom)
            .ok_or_else(|| cosmwasm_std::StdError::msg("No User Balance"))?;
        holding.collateral_amount = holding.collateral_amount.checked_sub(withdraw_amount)?;
        if positions.health()?.is_liquidatable() {
            return Err(RedBankError::InvalidHealthFactorAfterWithdraw {});
        }
    }

    accrue_market(deps.storage, now, &mut market, peers.rewards_collector()?)?;
    let balance_after = balance_before.checked_sub(withdraw_amount)?;
    let balance_scaled_after = interest::scaled_liquidity_amount(balance_after, &market, now)?;
    let withdraw_amount_scaled = balance_scaled_before.checked_sub(balance_scaled_after)?;
    decrease_collateral(deps.storage, &key, &denom, withdraw_amount_scaled)?;
    market.collateral_total_scaled = market
        .collateral_total_scaled
        .checked_sub(withdraw_amount_scaled)?;
    let response = save_with_new_rates(deps.storage, now, &denom, &mut market, Response::new())?;

    let recipient = recipient_or(deps.as_ref(), recipient, &withdrawer)?;
    Ok(Report {
        action: "withdraw",
        sender: &withdrawer,
        party: ("recipient", &recipient),
        amount: withdraw_amount,
        amount_scaled: withdraw_amount_scaled,
        denom,
    }
    .add_with_payout(response))
}

pub fn borrow(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    denom: String,
    amount: Uint128,
    recipient: Option<String>,
) -> RedBankResult<Response> {
    let peers = Peers::load(deps.as_ref())?;
    let now = env.block.time.seconds();
    let borrower = info.sender.clone();

    let asset_params = query_asset_params(deps.as_ref(), peers.params()?, &denom)?;
    if !asset_params.red_bank.borrow_enabled {
        return Err(RedBankError::BorrowNotEnabled { denom });
    }
    let mut market = load_market(deps.as_ref(), &denom)?;
    let collateral_total =
        interest::underlying_liquidity_amount(market.collateral_total_scaled, &market, now)?;
    let debt_total = interest::underlying_debt_amount(market.debt_total_scaled, &market, now)?;
    let available_liquidity = collateral_total.checked_sub(debt_total)?;
    if amount.is_zero() || amount > available_liquidity {
        return Err(RedBankError::InvalidBorrowAmount { denom });
    }

    // The credit manager borrows without collateral here; it keeps its own accounts healthy.
    let uncollateralized = peers.is_credit_manager(&borrower);
    if !uncollateralized {
        let mut positions = PricedPositions::load(
            deps.as_ref(),
            now,
            &borrower,
            "",
            &peers,
            ActionKind::Default,
        )?;
        positions.add_priced_denom(deps.as_ref(), &denom, &peers, ActionKind::Default)?;
        match positions.holding_mut(&denom) {
            Some(holding) => holding.debt_amount = holding.debt_amount.checked_add(amount)?,
            None => positions.holdings.push(mars::types::DenomPosition {
                denom: denom.clone(),
                debt_amount: amount,
                ..Default::default()
            }),
        }
        if positions.health()?.is_above_max_ltv() {
            return Err(RedBankError::BorrowAmountExceedsGivenCollateral {});
        }
    }

    accrue_market(deps.storage, now, &mut market, peers.rewards_collector()?)?;
    let amount_scaled = interest::scaled_debt_amount(amount, &market, now)?;
    market.debt_total_scaled = market.debt_total_scaled.checked_add(amount_scaled)?;
    increase_debt(
        deps.storage,
        &borrower,
        &denom,
        amount_scaled,
        uncollateralized,
    )?;
    let response = save_with_new_rates(deps.storage, now, &denom, &mut market, Response::new())?;

    let recipient = recipient_or(deps.as_ref(), recipient, &borrower)?;
    Ok(Report {
        action: "borrow",
        sender: &borrower,
        party: ("recipient", &recipient),
        amount,
        amount_scaled,
        denom,
    }
    .add_with_payout(response))
}

pub fn repay(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    on_behalf_of: Option<String>,
    sent: Coin128,
) -> RedBankResult<Response> {
    let peers = Peers::load(deps.as_ref())?;
    let now = env.block.time.seconds();
    let user = beneficiary(
        deps.as_ref(),
        &peers,
        on_behalf_of.as_deref(),
        &info.sender,
        RedBankError::CannotRepayOnBehalfOfCreditManager {},
    )?;
    let denom = sent.denom;
    let repay_amount = sent.amount;

    let debt = DEBTS
        .may_load(deps.storage, (&user, &denom))?
        .ok_or(RedBankError::CannotRepayZeroDebt {})?;
    let mut market = load_market(deps.as_ref(), &denom)?;
    accrue_market(deps.storage, now, &mut market, peers.rewards_collector()?)?;

    let debt_before = interest::underlying_debt_amount(debt.amount_scaled, &market, now)?;
    let mut response = Response::new();
    let (refund, debt_after) = if repay_amount > debt_before {
        let refund = repay_amount - debt_before;
        response = response.add_message(send(&info.sender, &denom, refund));
        (refund, Uint128::zero())
    } else {
        (Uint128::zero(), debt_before - repay_amount)
    };
    let debt_scaled_after = interest::scaled_debt_amount(debt_after, &market, now)?;
    let debt_scaled_delta = debt.amount_scaled.checked_sub(debt_scaled_after)?;
    market.debt_total_scaled = market.debt_total_scaled.checked_sub(debt_scaled_delta)?;
    decrease_debt(deps.storage, &user, &denom, debt_scaled_delta)?;
    let response = save_with_new_rates(deps.storage, now, &denom, &mut market, response)?;

    Ok(Report {
        action: "repay",
        sender: &info.sender,
        party: ("on_behalf_of", &user),
        denom,
        amount: repay_amount.checked_sub(refund)?,
        amount_scaled: debt_scaled_delta,
    }
    .add_to(response))
}

pub fn update_asset_collateral_status(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    denom: String,
    enable: bool,
) -> RedBankResult<Response> {
    let user = info.sender.clone();
    let key = user_key(&user, "");
    let mut collateral = COLLATERALS
        .may_load(deps.storage, (&key, &denom))?
        .ok_or_else(|| RedBankError::UserNoCollateralBalance {
            user: user.to_string(),
            denom: denom.clone(),
        })?;
    let previously_enabled = collateral.enabled;
    collateral.enabled = enable;
    COLLATERALS.save(deps.storage, (&key, &denom), &collateral)?;

    if previously_enabled && !enable {
        let peers = Peers::load(deps.as_ref())?;
        let positions = PricedPositions::load(
            deps.as_ref(),
            env.block.time.seconds(),
            &user,
            "",
            &peers,
            ActionKind::Default,
        )?;
        if positions.health()?.is_liquidatable() {
            return Err(RedBankError::InvalidHealthFactorAfterDisablingCollateral {});
        }
    }

    Ok(Response::new()
        .add_attribute("action", "update_asset_collateral_status")
        .add_attribute("user", &user)
        .add_attribute("denom", denom)
        .add_attribute("enable", enable.to_string()))
}
