//! The devnet's competing bot, judged by the chain's own answers: which debtors the Red Bank
//! says are liquidatable at the drop's height (its `user_position_liquidation_pricing`), and
//! the competitor's txs as the blocks hold them (fees, heights, results).
//!
//! The competitor looks 600 ms after each 1 s block, so the queries below, made right after the
//! drop's block, read the drop's state before any of its liquidations runs (each answer's height
//! is checked).

use std::collections::BTreeSet;
use std::time::Duration;

use cosmwasm_std::Decimal;
use mars::msg::red_bank::QueryMsg;
use mars::types::{UserHealthStatus, UserPositionFigures};
use redline_devnet::chain::tx;
use redline_devnet::competitor::tally::LiquidationTx;
use redline_devnet::competitor::{CompetitorConfig, Style};
use redline_tests::abci;
use tendermint_rpc::HttpClient;
use testkit::devnet::Devnet;

const ACCOUNTS: usize = 150;
const SEED: u64 = 4;

async fn start(style: Style) -> Devnet {
    Devnet::scenario(ACCOUNTS, SEED)
        .block_time(Duration::from_secs(1))
        .competitor(CompetitorConfig {
            delay: Duration::from_millis(600),
            ..CompetitorConfig::new(style)
        })
        .start()
        .await
        .unwrap()
}

/// Drops ATOM by 30% and answers the drop's height and the debtors the Red Bank then finds
/// liquidatable, by liquidation health factor (lowest first).
async fn drop_atom(devnet: &Devnet) -> (u64, Vec<(Decimal, String)>) {
    devnet.wait_for_height(3).await.unwrap();
    let height = devnet.move_prices(&[("uatom", "7")]).await.unwrap();
    devnet.wait_for_height(height).await.unwrap();
    let http = HttpClient::new(devnet.manifest.rpc_http[0].as_str()).unwrap();
    let mut liquidatable = Vec::new();
    for user in devnet.debtors() {
        let (answered_at, data) = abci::smart_raw(
            &http,
            devnet.red_bank(),
            &QueryMsg::UserPositionLiquidationPricing {
                user: user.clone(),
                account_id: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(answered_at, height, "read after the competitor's block");
        let figures: UserPositionFigures = serde_json::from_slice(&data).unwrap();
        if let UserHealthStatus::Borrowing {
            liq_threshold_hf, ..
        } = figures.health_status
        {
            if liq_threshold_hf < Decimal::one() {
                liquidatable.push((liq_threshold_hf, user));
            }
        }
    }
    liquidatable.sort();
    assert!(
        liquidatable.len() >= 12,
        "the drop should make a dozen debtors liquidatable, made {}",
        liquidatable.len()
    );
    (height, liquidatable)
}

/// The competitor's txs in blocks `from..=to`, with the gas price each paid.
fn competitor_txs(devnet: &Devnet, from: u64, to: u64) -> Vec<(LiquidationTx, Decimal)> {
    let address = &devnet.competitor.as_ref().unwrap().address;
    let store = devnet.node.chain().store();
    redline_devnet::competitor::tally::liquidation_txs(&store, devnet.red_bank(), from, to)
        .into_iter()
        .filter(|t| &t.signer == address)
        .map(|t| {
            let bytes = &store.get(t.height).unwrap().block.data[t.index];
            let decoded = tx::decode(bytes).unwrap();
            let fee = cosmwasm_std::Uint128::try_from(decoded.fee[0].amount).unwrap();
            let price = Decimal::from_ratio(fee, decoded.gas_limit);
            (t, price)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_competitor_liquidates_every_liquidatable_debtor_in_the_next_block_at_twice_the_price(
) {
    let devnet = start(Style::Fast).await;
    let (drop, liquidatable) = drop_atom(&devnet).await;
    devnet.wait_for_height(drop + 2).await.unwrap();
    assert!(
        competitor_txs(&devnet, 1, drop).is_empty(),
        "nothing to liquidate before the drop"
    );
    let next_block = competitor_txs(&devnet, drop + 1, drop + 1);
    let users: BTreeSet<String> = next_block
        .iter()
        .flat_map(|(t, _)| t.users.clone())
        .collect();
    let expected: BTreeSet<String> = liquidatable.into_iter().map(|(_, u)| u).collect();
    assert_eq!(users, expected);
    for (tx, price) in &next_block {
        assert!(tx.succeeded, "{tx:?}");
        // The devnet's Osmosis gas price is 0.025 uosmo; the fast competitor pays twice it.
        assert_eq!(*price, Decimal::permille(50));
    }
    // The chain says who won: every one of them, by the competitor.
    let contest = devnet.contest(drop);
    assert_eq!(contest.won_by_competitor, expected);
    assert!(contest.won_by_others.is_empty());
    // Its own count agrees with the blocks: every tx it sent was taken at CheckTx and included.
    let stats = devnet.competitor.as_ref().unwrap().stats();
    assert_eq!(
        stats.refused, 0,
        "refused at CheckTx: {:?}",
        stats.last_refusal
    );
    assert_eq!(stats.sent, next_block.len() as u64);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_competitor_liquidates_the_worst_ten_one_tx_a_block_at_the_chains_price() {
    let devnet = start(Style::Baseline).await;
    let (drop, liquidatable) = drop_atom(&devnet).await;
    devnet.wait_for_height(drop + 6).await.unwrap();
    let txs = competitor_txs(&devnet, drop, drop + 6);
    assert!(txs.len() >= 4, "one tx a block from drop + 1: {txs:?}");
    let heights: Vec<u64> = txs.iter().map(|(t, _)| t.height).collect();
    let distinct: BTreeSet<u64> = heights.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        heights.len(),
        "one tx per block: {heights:?}"
    );
    assert_eq!(heights[0], drop + 1);
    let worst: Vec<String> = liquidatable
        .iter()
        .take(txs.len())
        .map(|(_, u)| u.clone())
        .collect();
    let taken: Vec<String> = txs.iter().map(|(t, _)| t.users[0].clone()).collect();
    assert_eq!(taken, worst, "worst first");
    for (tx, price) in &txs {
        assert!(tx.succeeded, "{tx:?}");
        assert_eq!(*price, Decimal::permille(25));
    }
    devnet.shutdown().await;
}
