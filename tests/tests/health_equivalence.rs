//! The health checker's inputs against the chain: for more than 10,000 random devnet accounts,
//! the health computed off-chain from the Redis index and the block snapshot equals the Red
//! Bank's own `user_position` answer exactly — all four figures and both health factors —
//! across price moves, elapsed interest, markets updated by transactions, and liquidation
//! prices that differ from the default ones.
//!
//! What the equality shows: both sides run the same math. The off-chain side calls
//! `mars::math` (health, interest), and the devnet's Red Bank contract calls the very
//! same functions, so a mistake in the formulas would appear on both sides and cancel out. The
//! test proves the wiring around the math: the index holds each account's scaled amounts and
//! flags as the chain does, the block snapshot (markets with their indexes and rates, params,
//! prices, THF) survives its Redis round trip, interest is brought to the answering block's
//! header time (a control shifts it by an hour and must see most accounts change), the default
//! and liquidation price kinds go to the matching query, and markets updated mid-test are
//! picked up. The formulas themselves are checked against hand-worked numbers elsewhere
//! (`common/tests/math_cases.rs`, the health checker's `the_mars_case_by_hand` and
//! `a_hand_made_account_gets_the_plan_worked_out_by_hand`, the devnet's Mars fixture).
//!
//! The devnet answers queries from its latest state and its block time follows the wall clock,
//! so every answer is taken over the RPC together with the height that answered it, and the
//! off-chain side is computed for exactly that height: the round's snapshot (markets, prices,
//! params, THF — unchanged within a round, which the test checks by reading them again after
//! the queries) with the header time of the answering block. Interest accrues between blocks,
//! so each height really is a different computation.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cosmwasm_std::{coin, Addr};
use futures::stream::{self, StreamExt};
use mars::math::health::user_position_figures;
use mars::msg::oracle::PriceUpdate;
use mars::types::UserPositionFigures;
use redline_chain::{
    execute_contract_msg, sign_with_simulated_gas, ChainClient, SequenceTracker, TxBuilder, Wallet,
};
use redline_health_checker::onchain::user_position_query;
use redline_health_checker::BlockContext;
use redline_pipeline::index::{BlockSnapshot, IndexArgs, IndexedAccount, PositionIndex};
use redline_pipeline::jobs::ProtocolKind;
use redline_tests::abci;
use redline_tests::bench::devnet::{self, Devnet};
use tendermint_rpc::HttpClient;
use testkit::RedisServer;

/// Enough borrowers that more than 10,000 of them have debt (about 90% borrow).
const BORROWERS: usize = 11_300;

/// One `user_position` (or liquidation-priced) answer and the height that gave it.
async fn user_position(
    http: &HttpClient,
    red_bank: &str,
    account: &str,
    liquidation_pricing: bool,
) -> (u64, UserPositionFigures) {
    let msg = user_position_query(account, liquidation_pricing);
    let (height, data) = abci::smart_raw(http, red_bank, &msg)
        .await
        .unwrap_or_else(|(_, log)| panic!("{account}: {log}"));
    (height, serde_json::from_slice(&data).unwrap())
}

/// Snapshot contents that must not change within a round.
fn fixed_part(s: &BlockSnapshot) -> impl PartialEq + std::fmt::Debug {
    (
        s.prices.clone(),
        s.liquidation_prices.clone(),
        s.markets.clone(),
        s.params.clone(),
        s.target_health_factor,
    )
}

struct Round<'a> {
    devnet: &'a Devnet,
    http: &'a HttpClient,
    index: &'a PositionIndex,
    accounts: &'a [IndexedAccount],
    denoms: &'a redline_pipeline::index::DenomTable,
}

impl Round<'_> {
    /// Compares every account at the answering heights; returns how many were compared.
    async fn compare(&self, name: &str, liquidation_pricing: bool) -> usize {
        let height = self.devnet.client.latest_height().await.unwrap();
        let before = self.devnet.snapshot(height).await.unwrap();
        // Through the index's own storage, as the health checker reads it.
        self.index
            .write_block_snapshot(&before, Duration::from_secs(600))
            .await
            .unwrap();
        let stored = self.index.block_snapshot(height).await.unwrap().unwrap();
        assert_eq!(stored, before);

        let red_bank = self.devnet.red_bank();
        let answers: Vec<(usize, (u64, UserPositionFigures))> =
            stream::iter(self.accounts.iter().enumerate())
                .map(|(i, account)| {
                    let address = account.address.clone();
                    async move {
                        (
                            i,
                            user_position(self.http, red_bank, &address, liquidation_pricing).await,
                        )
                    }
                })
                .buffer_unordered(32)
                .collect()
                .await;

        let after = self
            .devnet
            .snapshot(self.devnet.client.latest_height().await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            fixed_part(&after),
            fixed_part(&before),
            "{name}: markets or prices moved during the round; the comparison would be unfair"
        );

        let mut contexts: HashMap<u64, BlockContext> = HashMap::new();
        let mut heights: BTreeMap<u64, usize> = BTreeMap::new();
        let mut mismatches = Vec::new();
        let mut borrowing = 0;
        for (i, (answered_at, chain)) in &answers {
            if !contexts.contains_key(answered_at) {
                let snapshot = BlockSnapshot {
                    height: *answered_at,
                    time: self.devnet.block_time(*answered_at).await.unwrap(),
                    ..stored.clone()
                };
                contexts.insert(*answered_at, BlockContext::new(&snapshot, self.denoms));
            }
            *heights.entry(*answered_at).or_default() += 1;
            let ours = contexts[answered_at]
                .evaluate(&self.accounts[*i])
                .unwrap_or_else(|skip| panic!("{name}: {skip:?}"));
            let health = if liquidation_pricing {
                &ours.liquidation_health
            } else {
                &ours.health
            };
            let figures = user_position_figures(health);
            if matches!(
                figures.health_status,
                mars::types::UserHealthStatus::Borrowing { .. }
            ) {
                borrowing += 1;
            }
            if &figures != chain {
                mismatches.push((self.accounts[*i].address.clone(), figures, chain.clone()));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{name}: {} of {} accounts differ, e.g. {:#?}",
            mismatches.len(),
            answers.len(),
            &mismatches[..mismatches.len().min(3)]
        );
        assert_eq!(borrowing, answers.len(), "every indexed account borrows");

        // Control: an hour off in the block time must show. Were it not to, the comparison
        // above would prove nothing about interest.
        let (first_height, _) = answers[0].1;
        let an_hour_late = BlockContext::new(
            &BlockSnapshot {
                height: first_height,
                time: self
                    .devnet
                    .block_time(first_height)
                    .await
                    .unwrap()
                    .plus_seconds(3_600),
                ..stored.clone()
            },
            self.denoms,
        );
        let off = answers
            .iter()
            .filter(|(i, (_, chain))| {
                let ours = an_hour_late.evaluate(&self.accounts[*i]).unwrap();
                let health = if liquidation_pricing {
                    ours.liquidation_health
                } else {
                    ours.health
                };
                &user_position_figures(&health) != chain
            })
            .count();
        assert!(
            off > answers.len() / 2,
            "{name}: an hour of interest changed only {off} accounts"
        );
        eprintln!(
            "{name}: {} accounts equal at heights {:?}",
            answers.len(),
            heights
        );
        answers.len()
    }
}

async fn deposit(devnet: &Devnet, wallet: &Wallet, coins: Vec<cosmwasm_std::Coin>) {
    let builder = TxBuilder::new(devnet.client.config());
    let tracker = SequenceTracker::load(&devnet.client, wallet.address().as_ref())
        .await
        .unwrap();
    // One coin per `deposit`, as the Red Bank demands; both in one transaction.
    let messages = coins
        .iter()
        .map(|c| {
            execute_contract_msg(
                wallet.address(),
                devnet.red_bank(),
                &serde_json::json!({"deposit": {}}),
                std::slice::from_ref(c),
            )
            .unwrap()
        })
        .collect();
    let signed = sign_with_simulated_gas(
        &devnet.client,
        &builder,
        wallet,
        tracker.account_number(),
        tracker.peek(),
        messages,
        "health equivalence",
    )
    .await
    .unwrap();
    let hash = devnet.client.broadcast_sync(signed.bytes).await.unwrap();
    let outcome = devnet
        .client
        .wait_for_tx(hash, Duration::from_secs(30))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    devnet.wait_for_height(outcome.height).await.unwrap();
}

/// Index + block snapshot + header time give the chain's `user_position` figures for 10,000+
/// accounts, at both price kinds, through price moves and market updates. Both sides run the
/// shared `mars::math` (the devnet contract calls the same functions): the equality
/// proves the inputs and their timing, not the formulas (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_snapshot_inputs_reproduce_user_position_for_10000_accounts() {
    // Genesis also quotes ATOM's liquidation price apart from its default price.
    let devnet = devnet::scenario(BORROWERS, 42, Duration::from_millis(400))
        .after_genesis(|state, info| {
            redline_devnet::contracts::set_prices(
                &mut state.app,
                &Addr::unchecked(&info.owner),
                &Addr::unchecked(&info.contracts.oracle),
                &[PriceUpdate {
                    denom: "uatom".into(),
                    price: "10".parse().unwrap(),
                    liquidation_price: Some("9.65".parse().unwrap()),
                }],
            )
            .map_err(|e| anyhow::anyhow!("liquidation price: {e}"))?;
            Ok(())
        })
        .start()
        .await
        .unwrap();
    let redis = RedisServer::start().unwrap();
    let conn = redline_pipeline::redis_conn::connect(
        &redis.queue_config(),
        redline_pipeline::redis_conn::ConnectOptions::default(),
    )
    .await
    .unwrap();
    let index = PositionIndex::create_or_open(
        conn,
        IndexArgs::default().namespace(&devnet.manifest.chain_id, ProtocolKind::RedBank),
        256,
    )
    .await
    .unwrap();
    let indexed = devnet::fill_index(&devnet, &index).await.unwrap();
    assert!(indexed >= 10_000, "{indexed} accounts with debt");
    let read = index.read_buckets(0..index.buckets()).await.unwrap();
    assert!(read.errors.is_empty(), "{:?}", read.errors);
    assert_eq!(read.accounts.len(), indexed);
    let http = HttpClient::new(devnet.node.rpc_http_url().as_str()).unwrap();
    let round = Round {
        devnet: &devnet,
        http: &http,
        index: &index,
        accounts: &read.accounts,
        denoms: &read.denoms,
    };

    // 1. Genesis prices, interest accrued since the markets were seeded; both price kinds.
    let snapshot = devnet
        .snapshot(devnet.client.latest_height().await.unwrap())
        .await
        .unwrap();
    assert_ne!(
        snapshot.prices["uatom"], snapshot.liquidation_prices["uatom"],
        "the liquidation price differs"
    );
    assert_eq!(round.compare("genesis prices", false).await, indexed);
    assert_eq!(
        round
            .compare("genesis prices, liquidation pricing", true)
            .await,
        indexed
    );

    // 2. Prices move (the move also resets ATOM's liquidation price to the default one).
    devnet
        .move_prices(&[
            ("uatom", "8.7"),
            ("uosmo", "0.46"),
            ("weth-wei", "0.0000000029"),
        ])
        .await
        .unwrap();
    assert_eq!(round.compare("after a price move", false).await, indexed);

    // 3. Transactions update two markets (new indexes, new rates); time passes after.
    let depositor = Wallet::from_mnemonic(
        devnet.manifest.liquidator_mnemonic.as_deref().unwrap(),
        &devnet.manifest.bech32_prefix,
        0,
    )
    .unwrap();
    deposit(
        &devnet,
        &depositor,
        vec![coin(5_000_000_000, "uatom"), coin(70_000_000_000, "uusdc")],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snapshot = devnet
        .snapshot(devnet.client.latest_height().await.unwrap())
        .await
        .unwrap();
    let genesis_time = snapshot
        .markets
        .iter()
        .map(|m| m.indexes_last_updated)
        .min()
        .unwrap();
    assert!(
        snapshot
            .markets
            .iter()
            .any(|m| m.indexes_last_updated > genesis_time),
        "a market was updated by the deposits"
    );
    assert!(
        snapshot.time.seconds() > genesis_time,
        "interest has time to accrue"
    );
    assert_eq!(
        round
            .compare("after deposits updated two markets", false)
            .await,
        indexed
    );
}
