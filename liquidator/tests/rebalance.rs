//! Rebalancing through the devnet's swap pools.

mod support;

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Uint128, Uint256};
use redline_common::chain::ChainClient;
use redline_common::msg::{oracle, swapper};
use redline_liquidator::rebalance::{plan_swaps, RebalancePolicy, Rebalancer, Target};
use redline_liquidator::tx_sender::SendOptions;
use support::Harness;

async fn balances(h: &Harness, address: &str) -> BTreeMap<String, Uint256> {
    h.client
        .balances(address)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.denom, c.amount))
        .collect()
}

#[tokio::test]
async fn swaps_towards_a_share_target_by_the_pool_math_and_not_below_the_threshold() {
    let h = Harness::start(10, 51, 2).await.unwrap();
    let swapper_addr = h
        .manifest
        .contracts
        .swapper
        .clone()
        .expect("devnet swapper");
    let fee_denom = h.manifest.fee.denom.clone();
    assert_ne!(fee_denom, "uusdc");
    let sender = h.sender(1, SendOptions::default()).await.unwrap();
    let address = sender.address().to_string();
    let target: Target = "uusdc:50%".parse().unwrap();
    let rebalancer = Rebalancer {
        policy: RebalancePolicy {
            targets: vec![target.clone()],
            action_threshold: Decimal::percent(1),
            max_slippage: Decimal::percent(1),
            recycle: true,
        },
        swapper: swapper_addr.clone(),
        oracle: h.manifest.contracts.oracle.clone(),
        fee_denom: fee_denom.clone(),
    };

    // What the rebalancer will do, and what the pools say each swap returns.
    let before = balances(&h, &address).await;
    let prices: BTreeMap<String, Decimal> = h
        .client
        .query_smart::<_, Vec<oracle::PriceResponse>>(
            &h.manifest.contracts.oracle,
            &oracle::QueryMsg::Prices {
                start_after: None,
                limit: Some(100),
                kind: None,
            },
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.denom, p.price))
        .collect();
    let coins = h.client.balances(&address).await.unwrap();
    let plan = plan_swaps(&coins, &prices, &[target], Decimal::percent(1), &fee_denom).unwrap();
    assert!(!plan.is_empty(), "the wallet holds far less than 50% uusdc");
    let mut expected_usdc = Uint128::zero();
    for swap in &plan {
        assert_eq!(swap.ask_denom, "uusdc");
        let simulated: swapper::SimulateSwapResponse = h
            .client
            .query_smart(
                &swapper_addr,
                &swapper::QueryMsg::SimulateSwap {
                    offer: swap.offer.clone(),
                    ask_denom: "uusdc".into(),
                },
                None,
            )
            .await
            .unwrap();
        expected_usdc += simulated.return_amount;
    }

    let sent = rebalancer.rebalance(&sender, &[]).await.unwrap();
    assert_eq!(sent, plan.len());
    let after = balances(&h, &address).await;
    let gained = after["uusdc"] - before["uusdc"];
    assert_eq!(gained, Uint256::from(expected_usdc));
    for swap in &plan {
        assert_eq!(
            // A denom sold in full leaves the bank's balance list.
            before[&swap.offer.denom] - after.get(&swap.offer.denom).copied().unwrap_or_default(),
            swap.offer.amount,
            "{} sold",
            swap.offer.denom
        );
    }

    // Closer to the target now; with a threshold wider than what is left, nothing is sent.
    let idle = Rebalancer {
        policy: RebalancePolicy {
            action_threshold: Decimal::percent(50),
            ..rebalancer.policy.clone()
        },
        ..rebalancer.clone()
    };
    assert_eq!(idle.rebalance(&sender, &[]).await.unwrap(), 0);
    assert_eq!(balances(&h, &address).await, after);
}
