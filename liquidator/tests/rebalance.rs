//! Rebalancing through the devnet's swap pools.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cosmwasm_std::{coin, Decimal, Uint128, Uint256};
use mars::msg::{oracle, swapper};
use redline_chain::{bank_send_msg, ChainClient};
use redline_liquidator::locks::{KeySpace, Leases, SwapPoolLocks};
use redline_liquidator::rebalance::{plan_swaps, RebalancePolicy, Rebalancer, Target};
use redline_liquidator::tx_sender::SendOptions;
use support::Harness;

/// The oracle's default prices.
async fn oracle_prices(h: &Harness) -> BTreeMap<String, Decimal> {
    h.client
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
        .collect()
}

/// A rebalancer towards `target` through the devnet's swapper, 1 % threshold and slippage.
fn share_rebalancer(h: &Harness, target: Target) -> Rebalancer {
    Rebalancer::new(
        RebalancePolicy {
            targets: vec![target],
            action_threshold: Decimal::percent(1),
            max_slippage: Decimal::percent(1),
            recycle: true,
        },
        h.manifest
            .contracts
            .swapper
            .clone()
            .expect("devnet swapper"),
        h.manifest.contracts.oracle.clone(),
        h.manifest.fee.denom.clone(),
    )
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
    let rebalancer = share_rebalancer(&h, target.clone());

    // What the rebalancer will do, and what the pools say each swap returns.
    let before = h.balances(&address).await;
    let prices = oracle_prices(&h).await;
    let coins = h.client.balances(&address).await.unwrap();
    let plan = plan_swaps(&coins, &prices, &[target], Decimal::percent(1), &fee_denom).unwrap();
    assert!(!plan.is_empty(), "the wallet holds far less than 50% uusdc");
    // The rebalancer may cut a swap too big for its pool in halves; what each size returns,
    // by the pool's own simulation before anything moves (one pool per pair).
    let mut returns: Vec<Vec<(Uint128, Uint128)>> = Vec::new();
    for swap in &plan {
        assert_eq!(swap.ask_denom, "uusdc");
        let mut sizes = Vec::new();
        let mut amount = Uint128::try_from(swap.offer.amount).unwrap();
        while !amount.is_zero() && sizes.len() < 13 {
            let simulated: swapper::SimulateSwapResponse = h
                .client
                .query_smart(
                    &swapper_addr,
                    &swapper::QueryMsg::SimulateSwap {
                        offer: cosmwasm_std::Coin::new(amount, swap.offer.denom.clone()),
                        ask_denom: "uusdc".into(),
                    },
                    None,
                )
                .await
                .unwrap();
            sizes.push((amount, simulated.return_amount));
            amount /= Uint128::new(2);
        }
        returns.push(sizes);
    }

    let sent = rebalancer.rebalance(&sender, &[]).await.unwrap();
    assert_eq!(sent, plan.len());
    let after = h.balances(&address).await;
    let mut expected_usdc = Uint128::zero();
    for (swap, sizes) in plan.iter().zip(&returns) {
        let sold =
            before[&swap.offer.denom] - after.get(&swap.offer.denom).copied().unwrap_or_default();
        let (_, returned) = sizes
            .iter()
            .find(|(amount, _)| Uint256::from(*amount) == sold)
            .unwrap_or_else(|| panic!("{} sold {sold}: not the plan halved", swap.offer.denom));
        expected_usdc += *returned;
    }
    let gained = after["uusdc"] - before["uusdc"];
    assert_eq!(gained, Uint256::from(expected_usdc));

    // Closer to the target now; with a threshold wider than what is left, nothing is sent.
    let idle = Rebalancer::new(
        RebalancePolicy {
            action_threshold: Decimal::percent(50),
            ..rebalancer.policy.clone()
        },
        rebalancer.swapper.clone(),
        rebalancer.oracle.clone(),
        rebalancer.fee_denom.clone(),
    );
    assert_eq!(idle.rebalance(&sender, &[]).await.unwrap(), 0);
    assert_eq!(h.balances(&address).await, after);
}

/// With a tight `--max-slippage` a swap too big for the pool is cut down (halved until its
/// rate is within an eighth of the allowance of the pool's marginal rate) instead of being sent
/// whole: less is sold than planned.
#[tokio::test]
async fn a_swap_too_big_for_the_pool_is_cut_down() {
    let h = Harness::start(10, 51, 2).await.unwrap();
    let fee_denom = h.manifest.fee.denom.clone();
    let sender = h.sender(1, SendOptions::default()).await.unwrap();
    let address = sender.address().to_string();
    let rebalancer = share_rebalancer(&h, "uusdc:50%".parse().unwrap());
    let prices = oracle_prices(&h).await;
    let coins = h.client.balances(&address).await.unwrap();
    let plan = plan_swaps(
        &coins,
        &prices,
        &rebalancer.policy.targets,
        Decimal::percent(1),
        &fee_denom,
    )
    .unwrap();
    let before = h.balances(&address).await;
    rebalancer.rebalance(&sender, &[]).await.unwrap();
    let after = h.balances(&address).await;
    let mut cut = 0;
    for swap in &plan {
        let sold =
            before[&swap.offer.denom] - after.get(&swap.offer.denom).copied().unwrap_or_default();
        assert!(
            sold <= swap.offer.amount,
            "{} sold more than planned",
            swap.offer.denom
        );
        cut += usize::from(sold < swap.offer.amount);
    }
    assert!(
        cut > 0,
        "no planned swap was too big for the pool: {plan:?}"
    );
}

/// A wallet that holds collateral but nothing to pay fees with swaps nothing and is marked
/// short of funds (said once, not after every batch); once it can pay, the next rebalance
/// swaps and clears the mark.
#[tokio::test]
async fn a_wallet_that_cannot_pay_fees_is_marked_short_and_resumes_when_funded() {
    let h = Harness::start(10, 52, 2).await.unwrap();
    let fee_denom = h.manifest.fee.denom.clone();
    let funder = h.sender(1, SendOptions::default()).await.unwrap();
    let broke = h.wallet(7).address().to_string();
    let uatom = bank_send_msg(
        funder.wallet().address(),
        &broke,
        &[coin(5_000_000, "uatom")],
    );
    funder.send(vec![uatom.unwrap()], "").await.unwrap();
    assert!(h.balance(&broke, &fee_denom).await.is_zero());

    let sender = h.sender(7, SendOptions::default()).await.unwrap();
    let rebalancer = share_rebalancer(&h, "uusdc:50%".parse().unwrap());
    let before = h.balances(&broke).await;
    assert_eq!(rebalancer.rebalance(&sender, &[]).await.unwrap(), 0);
    assert!(rebalancer.is_short_of_funds(&broke));
    assert_eq!(
        h.balances(&broke).await,
        before,
        "nothing swapped, no fee paid"
    );

    let fees = bank_send_msg(
        funder.wallet().address(),
        &broke,
        &[coin(10_000_000, &fee_denom)],
    );
    funder.send(vec![fees.unwrap()], "").await.unwrap();
    assert_eq!(rebalancer.rebalance(&sender, &[]).await.unwrap(), 1);
    assert!(!rebalancer.is_short_of_funds(&broke));
    assert!(h.balance(&broke, "uatom").await < before["uatom"]);
}

/// A pool another of redline's txs holds (a credit-account liquidation swapping through it) is
/// left alone: its swap waits for a rebalance after the lock is given back, and the rebalancer
/// gives back only the locks it took.
#[tokio::test]
async fn a_swap_through_a_locked_pool_waits_for_the_lock() {
    let h = Harness::start(10, 51, 2).await.unwrap();
    let fee_denom = h.manifest.fee.denom.clone();
    let sender = h.sender(1, SendOptions::default()).await.unwrap();
    let address = sender.address().to_string();
    let target: Target = "uusdc:50%".parse().unwrap();
    let keys = KeySpace::new("redline", &h.manifest.chain_id);
    let rebalancer = share_rebalancer(&h, target.clone()).with_pool_locks(SwapPoolLocks::new(
        Leases::new(h.redis.clone(), "rebalancer"),
        keys.clone(),
        Duration::from_secs(30),
    ));
    let coins = h.client.balances(&address).await.unwrap();
    let prices = oracle_prices(&h).await;
    let plan = plan_swaps(&coins, &prices, &[target], Decimal::percent(1), &fee_denom).unwrap();
    assert_eq!(plan.len(), 1, "one pool to swap through: {plan:?}");
    let sold = plan[0].offer.denom.clone();

    let liquidation = Leases::new(h.redis.clone(), "credit-liquidation");
    let pool = keys.swap_pool_lock((&sold, "uusdc"));
    let held = liquidation
        .try_acquire(&pool, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the pool is free");
    let before = h.balances(&address).await;
    assert_eq!(rebalancer.rebalance(&sender, &[]).await.unwrap(), 0);
    assert_eq!(h.balances(&address).await, before, "nothing sold, no fee");
    assert!(
        liquidation.is_held(&pool).await.unwrap(),
        "not the rebalancer's to give back"
    );

    liquidation.release(&held).await.unwrap();
    assert_eq!(rebalancer.rebalance(&sender, &[]).await.unwrap(), 1);
    assert!(h.balances(&address).await[&sold] < before[&sold]);
    assert!(
        !liquidation.is_held(&pool).await.unwrap(),
        "given back once the swap is in a block"
    );
}
