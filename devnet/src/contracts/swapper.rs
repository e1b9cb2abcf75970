//! A constant-product swap contract (ours, not Mars's): one pool per denom pair, a fee taken
//! from the offered coin, integer math rounding in favour of the pool.

use cosmwasm_std::{
    to_json_binary, BankMsg, Binary, Coin, Decimal, Deps, DepsMut, Env, MessageInfo, Order,
    Response, StdError, Uint128,
};
use cw_storage_plus::{Bound, Item, Map};
use mars::msg::swapper::{
    ConfigResponse, ExecuteMsg, InstantiateMsg, PoolResponse, QueryMsg, SimulateSwapResponse,
};
use serde::{Deserialize, Serialize};

use mars::math::params::validate_native_denom;

use super::support::{
    assert_owner, from_common_errors, one_coin, page_limit, save_owner_and_respond, Coin128,
    CommonError, PaymentError, OWNER,
};

/// Reserves of a pool, in the order of its (ascending) denoms.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub reserves: [Uint128; 2],
    pub fee: Decimal,
}

pub const CONFIG: Item<()> = Item::new("config");
/// Keyed by the two denoms in ascending order.
pub const POOLS: Map<(&str, &str), Pool> = Map::new("pools");

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("no pool for {0} and {1}")]
    NoPool(String, String),
    #[error("pool for {0} and {1} already exists")]
    PoolExists(String, String),
    #[error("a pool needs two different denoms, got {0} twice")]
    SameDenom(String),
    #[error("fee must be in [0, 1), got {0}")]
    InvalidFee(Decimal),
    #[error("pool has no liquidity to pay out {0}")]
    NoLiquidity(String),
    #[error("swap returns {return_amount}, less than min_receive {min_receive}")]
    BelowMinReceive {
        return_amount: Uint128,
        min_receive: Uint128,
    },
}

from_common_errors!(SwapError);

/// The pool key: denoms sorted ascending.
fn pair<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// What selling `offer_amount` into a pool with reserves (`offer_reserve`, `ask_reserve`) pays:
/// fee = ⌈offer · fee_rate⌉ stays in the pool, return = ⌊ask · net / (offer_reserve + net)⌋.
pub fn constant_product_return(
    offer_reserve: Uint128,
    ask_reserve: Uint128,
    offer_amount: Uint128,
    fee_rate: Decimal,
) -> Result<SimulateSwapResponse, StdError> {
    let fee_amount = offer_amount
        .checked_mul_ceil(fee_rate)
        .map_err(StdError::msg)?;
    let net_offer = offer_amount.checked_sub(fee_amount)?;
    let denominator = offer_reserve.checked_add(net_offer)?;
    let return_amount = if denominator.is_zero() {
        Uint128::zero()
    } else {
        net_offer
            .checked_multiply_ratio(ask_reserve, denominator)
            .map_err(StdError::msg)?
    };
    Ok(SimulateSwapResponse {
        return_amount,
        fee_amount,
    })
}

pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, SwapError> {
    CONFIG.save(deps.storage, &())?;
    save_owner_and_respond(deps, &msg.owner)
}

pub fn execute(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, SwapError> {
    match msg {
        ExecuteMsg::CreatePool { denoms, fee } => {
            assert_owner(deps.storage, &info.sender)?;
            let [a, b] = denoms;
            validate_native_denom(&a)?;
            validate_native_denom(&b)?;
            if a == b {
                return Err(SwapError::SameDenom(a));
            }
            if fee >= Decimal::one() {
                return Err(SwapError::InvalidFee(fee));
            }
            let key = pair(&a, &b);
            if POOLS.has(deps.storage, key) {
                return Err(SwapError::PoolExists(key.0.into(), key.1.into()));
            }
            POOLS.save(
                deps.storage,
                key,
                &Pool {
                    reserves: [Uint128::zero(); 2],
                    fee,
                },
            )?;
            Ok(Response::new()
                .add_attribute("action", "create_pool")
                .add_attribute("denoms", format!("{},{}", key.0, key.1))
                .add_attribute("fee", fee.to_string()))
        }
        ExecuteMsg::ProvideLiquidity { denoms } => {
            let [a, b] = denoms;
            let key = pair(&a, &b);
            let mut pool = POOLS
                .may_load(deps.storage, key)?
                .ok_or_else(|| SwapError::NoPool(key.0.into(), key.1.into()))?;
            if info.funds.iter().all(|c| c.amount.is_zero()) {
                return Err(PaymentError::NoFunds {}.into());
            }
            for coin in &info.funds {
                let coin = Coin128::try_from_coin(coin)?;
                let slot = if coin.denom == key.0 {
                    0
                } else if coin.denom == key.1 {
                    1
                } else {
                    return Err(PaymentError::ExtraDenom(coin.denom.clone()).into());
                };
                pool.reserves[slot] = pool.reserves[slot].checked_add(coin.amount)?;
            }
            POOLS.save(deps.storage, key, &pool)?;
            Ok(Response::new()
                .add_attribute("action", "provide_liquidity")
                .add_attribute("sender", info.sender)
                .add_attribute(
                    "assets",
                    format!(
                        "{}{},{}{}",
                        pool.reserves[0], key.0, pool.reserves[1], key.1
                    ),
                ))
        }
        ExecuteMsg::Swap {
            ask_denom,
            min_receive,
        } => {
            let offer = one_coin(&info)?;
            let key = pair(&offer.denom, &ask_denom);
            let mut pool = POOLS
                .may_load(deps.storage, key)?
                .ok_or_else(|| SwapError::NoPool(offer.denom.clone(), ask_denom.clone()))?;
            let (offer_slot, ask_slot) = if offer.denom == key.0 { (0, 1) } else { (1, 0) };
            let sim = constant_product_return(
                pool.reserves[offer_slot],
                pool.reserves[ask_slot],
                offer.amount,
                pool.fee,
            )?;
            if sim.return_amount.is_zero() {
                return Err(SwapError::NoLiquidity(ask_denom));
            }
            if sim.return_amount < min_receive {
                return Err(SwapError::BelowMinReceive {
                    return_amount: sim.return_amount,
                    min_receive,
                });
            }
            pool.reserves[offer_slot] = pool.reserves[offer_slot].checked_add(offer.amount)?;
            pool.reserves[ask_slot] = pool.reserves[ask_slot].checked_sub(sim.return_amount)?;
            POOLS.save(deps.storage, key, &pool)?;
            Ok(Response::new()
                .add_message(BankMsg::Send {
                    to_address: info.sender.to_string(),
                    amount: vec![Coin::new(sim.return_amount, ask_denom.clone())],
                })
                .add_attribute("action", "swap")
                .add_attribute("sender", info.sender)
                .add_attribute("offer_denom", offer.denom)
                .add_attribute("offer_amount", offer.amount)
                .add_attribute("ask_denom", ask_denom)
                .add_attribute("return_amount", sim.return_amount)
                .add_attribute("fee_amount", sim.fee_amount))
        }
    }
}

fn pool_response(key: (&str, &str), pool: &Pool) -> PoolResponse {
    PoolResponse {
        assets: [
            Coin::new(pool.reserves[0], key.0),
            Coin::new(pool.reserves[1], key.1),
        ],
        fee: pool.fee,
    }
}

pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, SwapError> {
    Ok(match msg {
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            owner: OWNER.load(deps.storage)?.into_string(),
        })?,
        QueryMsg::Pool { denoms } => {
            let [a, b] = denoms;
            let key = pair(&a, &b);
            let pool = POOLS
                .may_load(deps.storage, key)?
                .ok_or_else(|| SwapError::NoPool(key.0.into(), key.1.into()))?;
            to_json_binary(&pool_response(key, &pool))?
        }
        QueryMsg::Pools { start_after, limit } => {
            let start_key = start_after.map(|[a, b]| {
                let (x, y) = pair(&a, &b);
                (x.to_string(), y.to_string())
            });
            let start = start_key
                .as_ref()
                .map(|(a, b)| Bound::exclusive((a.as_str(), b.as_str())));
            let pools = POOLS
                .range(deps.storage, start, None, Order::Ascending)
                .take(page_limit(limit))
                .map(|item| {
                    let ((a, b), pool) = item?;
                    Ok(pool_response((&a, &b), &pool))
                })
                .collect::<Result<Vec<_>, StdError>>()?;
            to_json_binary(&pools)?
        }
        QueryMsg::SimulateSwap { offer, ask_denom } => {
            let offer = Coin128::try_from_coin(&offer)?;
            let key = pair(&offer.denom, &ask_denom);
            let pool = POOLS
                .may_load(deps.storage, key)?
                .ok_or_else(|| SwapError::NoPool(offer.denom.clone(), ask_denom.clone()))?;
            let (offer_slot, ask_slot) = if offer.denom == key.0 { (0, 1) } else { (1, 0) };
            to_json_binary(&constant_product_return(
                pool.reserves[offer_slot],
                pool.reserves[ask_slot],
                offer.amount,
                pool.fee,
            )?)?
        }
    })
}
