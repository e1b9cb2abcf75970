//! Messages of our constant-product swap contract (not a Mars contract: the devnet's stand-in
//! for an Osmosis pool, so a liquidator can sell seized collateral for the debt denom).
//!
//! One contract holds one pool per denom pair. A swap takes exactly one coin; the fee is taken
//! from the offered coin (rounded up, in favour of the pool) and stays in the pool; the return
//! is `ask_reserve · net_offer / (offer_reserve + net_offer)` rounded down.

use cosmwasm_std::{Coin, Decimal, Uint128};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct InstantiateMsg {
    pub owner: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecuteMsg {
    /// Owner only: open an empty pool for a denom pair with a fee in [0, 1).
    CreatePool { denoms: [String; 2], fee: Decimal },
    /// Add the coins sent (one or both denoms of the pool) to the reserves. Liquidity is not
    /// tokenised: the devnet's pools are funded by the scenario and never withdrawn.
    ProvideLiquidity { denoms: [String; 2] },
    /// Sell the one coin sent for `ask_denom`; fails if fewer than `min_receive` would come back.
    Swap {
        ask_denom: String,
        min_receive: Uint128,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryMsg {
    Config {},
    /// The pool of one pair (denoms in any order).
    Pool {
        denoms: [String; 2],
    },
    Pools {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<[String; 2]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    SimulateSwap {
        offer: Coin,
        ask_denom: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    pub owner: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PoolResponse {
    /// The two reserves, denoms in ascending order.
    pub assets: [Coin; 2],
    pub fee: Decimal,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SimulateSwapResponse {
    /// What the swap pays out, in the ask denom.
    pub return_amount: Uint128,
    /// The fee kept by the pool, in the offer denom.
    pub fee_amount: Uint128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_json() {
        let msg = ExecuteMsg::Swap {
            ask_denom: "uusdc".into(),
            min_receive: Uint128::new(5),
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"swap":{"ask_denom":"uusdc","min_receive":"5"}}"#
        );
        let q: QueryMsg = serde_json::from_str(
            r#"{"simulate_swap":{"offer":{"denom":"uatom","amount":"10"},"ask_denom":"uusdc"}}"#,
        )
        .unwrap();
        assert_eq!(
            q,
            QueryMsg::SimulateSwap {
                offer: Coin::new(10u128, "uatom"),
                ask_denom: "uusdc".into()
            }
        );
    }
}
