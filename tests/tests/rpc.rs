//! The chain client against a real devnet node over CometBFT JSON-RPC: transactions signed with
//! cosmrs and broadcast through tendermint-rpc's client, inclusion and events, the SDK's
//! rejection codes, the block feed, fail-over, and raw-state scans of the Red Bank.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use cosmrs::proto::traits::Message as _;
use cosmwasm_std::{coin, Coin, Decimal, Uint256};
use futures::StreamExt;
use mars::msg::red_bank::namespace;
use redline_chain::{
    bank_send_msg, execute_contract_msg, sign_with_simulated_gas, tx_hash, BlockStream,
    ChainClient, ChainConfig, ChainError, NewBlock, ScanOptions, SequenceTracker, SignedTx,
    TendermintClient, TxBuilder, TxErrorCode, TxStage, Wallet,
};
use redline_devnet::chain::ChainState;
use redline_tests::{
    dead_http_url, dead_ws_url, devnet_chain_config, test_wallet, TcpProxy, TestNode,
};
use serde_json::json;
use testkit::devnet::Devnet;

const INCLUSION_TIMEOUT: Duration = Duration::from_secs(20);

/// Genesis that funds wallets 0..n of the test mnemonic with fee tokens and some ATOM.
fn fund_wallets(prefix: String, n: u32) -> impl FnOnce(&mut ChainState) -> anyhow::Result<()> {
    move |state| {
        for i in 0..n {
            let address = test_wallet(&prefix, i).address().to_string();
            state.fund(
                &address,
                vec![coin(1_000_000_000, "uosmo"), coin(5_000_000, "uatom")],
            )?;
        }
        Ok(())
    }
}

async fn bank_node(wallets: u32) -> TestNode {
    let chain = devnet_chain_config();
    let prefix = chain.bech32_prefix.clone();
    let (node, ()) = TestNode::start(chain, fund_wallets(prefix, wallets))
        .await
        .expect("devnet node starts");
    node
}

fn amount_of(coins: &[Coin], denom: &str) -> Uint256 {
    coins
        .iter()
        .find(|c| c.denom == denom)
        .map(|c| c.amount)
        .unwrap_or_default()
}

/// The address `node` serves RPC at, for a proxy in front of it.
fn rpc_addr(node: &TestNode) -> std::net::SocketAddr {
    node.node
        .rpc_http_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// The next block of the feed, failing the test after 10 s.
async fn next_block(blocks: &mut BlockStream) -> NewBlock {
    tokio::time::timeout(Duration::from_secs(10), blocks.next())
        .await
        .expect("a block within 10 s")
        .expect("the feed does not end")
}

/// `msg` signed by `wallet` for 200,000 gas without a simulation, at `sequence`.
fn sign_unsimulated(
    builder: &TxBuilder,
    wallet: &Wallet,
    account_number: u64,
    sequence: u64,
    msg: &cosmrs::Any,
) -> SignedTx {
    builder
        .sign(
            wallet,
            account_number,
            sequence,
            vec![msg.clone()],
            200_000,
            "",
        )
        .unwrap()
}

/// Sends `amount` from `from` to `to` with simulated gas, waiting for inclusion.
async fn send(
    client: &TendermintClient,
    builder: &TxBuilder,
    from: &Wallet,
    tracker: &SequenceTracker,
    to: &Wallet,
    amount: Coin,
) -> Result<redline_chain::TxOutcome, ChainError> {
    let msg = bank_send_msg(from.address(), to.address().as_ref(), &[amount])?;
    let sequence = tracker.next();
    let signed = sign_with_simulated_gas(
        client,
        builder,
        from,
        tracker.account_number(),
        sequence,
        vec![msg],
        "",
    )
    .await?;
    let hash = client.broadcast_sync(signed.bytes.clone()).await?;
    assert_eq!(hash, signed.hash, "the node hashes txs as we do");
    client
        .wait_for_tx(hash, INCLUSION_TIMEOUT)
        .await?
        .into_result()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_send_is_simulated_signed_broadcast_and_included() {
    let node = bank_node(2).await;
    let client = node.client();
    let builder = TxBuilder::new(client.config());
    let (alice, bob) = (node.wallet(0), node.wallet(1));

    assert!(client.latest_height().await.unwrap() >= 1);
    let account = client.account(alice.address().as_ref()).await.unwrap();
    assert_eq!(account.sequence, 0);
    let before = client.balances(bob.address().as_ref()).await.unwrap();
    assert_eq!(amount_of(&before, "uatom"), Uint256::from(5_000_000u32));

    let tracker = SequenceTracker::load(&client, alice.address().as_ref())
        .await
        .unwrap();
    assert_eq!(tracker.account_number(), account.account_number);
    let outcome = send(
        &client,
        &builder,
        &alice,
        &tracker,
        &bob,
        coin(1_234, "uatom"),
    )
    .await
    .unwrap();
    assert!(outcome.height >= 1);
    assert!(outcome.gas_used > 0 && outcome.gas_used <= outcome.gas_wanted);
    // The gas limit is the simulated gas × 1.3: a margin over what delivery used (which can
    // differ from the simulation by the few bytes the real fee adds to the tx).
    assert!(
        outcome.gas_wanted * 10 >= outcome.gas_used * 12,
        "{outcome:?}"
    );
    let transfer_to_bob = outcome
        .events_of("transfer")
        .find(|e| e.attribute("recipient") == Some(bob.address().as_ref()))
        .expect("a transfer event to bob");
    assert_eq!(transfer_to_bob.attribute("amount"), Some("1234uatom"));

    let after = client.balances(bob.address().as_ref()).await.unwrap();
    assert_eq!(
        amount_of(&after, "uatom"),
        Uint256::from(5_000_000u32 + 1_234)
    );
    // Alice paid the fee: ⌈gas limit × 0.025⌉ uosmo.
    let alice_after = client.balances(alice.address().as_ref()).await.unwrap();
    let fee = builder.fee_for(outcome.gas_wanted).amount;
    assert_eq!(
        amount_of(&alice_after, "uosmo"),
        Uint256::from(1_000_000_000u32) - fee
    );

    // The tracker moved on; a second tx with it needs no query.
    assert_eq!(tracker.peek(), 1);
    send(&client, &builder, &alice, &tracker, &bob, coin(1, "uatom"))
        .await
        .unwrap();
    assert_eq!(
        client
            .account(alice.address().as_ref())
            .await
            .unwrap()
            .sequence,
        2
    );

    // The block time of the including block is readable.
    let time = client.block_time(outcome.height).await.unwrap();
    assert!(time.seconds() > 1_600_000_000);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sequence_and_bad_signature_are_rejected_with_sdk_codes() {
    let node = bank_node(2).await;
    let client = node.client();
    let builder = TxBuilder::new(client.config());
    let (alice, bob) = (node.wallet(0), node.wallet(1));
    let account = client.account(alice.address().as_ref()).await.unwrap();
    let msg = bank_send_msg(alice.address(), bob.address().as_ref(), &[coin(5, "uatom")]).unwrap();

    // Sequence 3 while the chain expects 0: CheckTx code 32, and the log says what it expects.
    let wrong = sign_unsimulated(&builder, &alice, account.account_number, 3, &msg);
    let err = client.broadcast_sync(wrong.bytes).await.unwrap_err();
    let rejection = err.rejection().expect("a CheckTx rejection");
    assert_eq!(rejection.stage, TxStage::CheckTx);
    assert_eq!(rejection.kind, TxErrorCode::WrongSequence);
    assert_eq!((rejection.codespace.as_str(), rejection.code), ("sdk", 32));
    assert_eq!(rejection.hash, Some(wrong.hash));
    assert_eq!(rejection.expected_sequence(), Some(0));
    assert!(err.to_string().contains(&node.node.rpc_http_url()), "{err}");

    // A tracker that ran ahead resyncs from the chain and then succeeds.
    let tracker = SequenceTracker::new(alice.address().as_ref(), account.account_number, 3);
    tracker.resync(&client).await.unwrap();
    assert_eq!(tracker.peek(), 0);

    // A tampered signature: code 4 (unauthorized).
    let good = sign_unsimulated(&builder, &alice, account.account_number, 0, &msg);
    let mut raw = cosmrs::proto::cosmos::tx::v1beta1::TxRaw::decode(good.bytes.as_slice()).unwrap();
    raw.signatures[0][10] ^= 0x01;
    let err = client
        .broadcast_sync(raw.encode_to_vec())
        .await
        .unwrap_err();
    let rejection = err.rejection().expect("a CheckTx rejection");
    assert_eq!(rejection.kind, TxErrorCode::Unauthorized, "{err}");
    assert_eq!(rejection.code, 4);

    // Signed for another account number (another sign doc): also code 4.
    let other_doc = sign_unsimulated(&builder, &alice, account.account_number + 1, 0, &msg);
    let err = client.broadcast_sync(other_doc.bytes).await.unwrap_err();
    assert_eq!(err.rejection().map(|r| r.code), Some(4), "{err}");

    // A fee below the gas price: code 13.
    let cheap_config = client.config().clone();
    let cheap_builder = TxBuilder::new(&ChainConfig {
        gas_price: cosmwasm_std::Decimal::permille(1),
        ..cheap_config
    });
    let cheap = sign_unsimulated(&cheap_builder, &alice, account.account_number, 0, &msg);
    let err = client.broadcast_sync(cheap.bytes).await.unwrap_err();
    assert_eq!(
        err.rejection().map(|r| r.kind),
        Some(TxErrorCode::InsufficientFee),
        "{err}"
    );

    // More than the balance: simulation already says insufficient funds (code 5).
    let too_much = bank_send_msg(
        alice.address(),
        bob.address().as_ref(),
        &[coin(999_000_000_000, "uatom")],
    )
    .unwrap();
    let err = sign_with_simulated_gas(
        &client,
        &builder,
        &alice,
        account.account_number,
        0,
        vec![too_much],
        "",
    )
    .await
    .unwrap_err();
    let rejection = err.rejection().expect("a simulation rejection");
    assert_eq!(rejection.stage, TxStage::Simulate);
    assert_eq!(rejection.kind, TxErrorCode::InsufficientFunds, "{err}");

    // None of the rejected txs consumed the sequence: the good one still goes through.
    let hash = client.broadcast_sync(good.bytes.clone()).await.unwrap();
    assert_eq!(hash, tx_hash(&good.bytes));
    let outcome = client.wait_for_tx(hash, INCLUSION_TIMEOUT).await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_feed_yields_consecutive_blocks_even_behind_a_dead_websocket() {
    let node = bank_node(2).await;
    let client = node.client();
    let builder = TxBuilder::new(client.config());

    // Websocket first.
    let mut blocks = client.subscribe_blocks();
    let mut last = None;
    for _ in 0..5 {
        let block = next_block(&mut blocks).await;
        if let Some((height, time)) = last {
            assert_eq!(block.height, height + 1, "consecutive heights");
            assert!(block.time > time, "block times increase");
        }
        last = Some((block.height, block.time));
    }
    drop(blocks);

    // A dead websocket first in line: the feed polls HTTP, then moves to the live one, and
    // the heights stay consecutive across the switch. A tx sent meanwhile shows up in a block.
    let mut config = client.config().clone();
    config.rpc_ws = vec![
        dead_ws_url().parse().unwrap(),
        node.node.rpc_ws_url().parse().unwrap(),
    ];
    let client = TendermintClient::new(config).unwrap();
    let mut blocks = client.subscribe_blocks();
    let (alice, bob) = (node.wallet(0), node.wallet(1));
    let account = client.account(alice.address().as_ref()).await.unwrap();
    let msg = bank_send_msg(alice.address(), bob.address().as_ref(), &[coin(7, "uatom")]).unwrap();
    let signed = sign_unsimulated(
        &builder,
        &alice,
        account.account_number,
        account.sequence,
        &msg,
    );
    client.broadcast_sync(signed.bytes.clone()).await.unwrap();

    let mut last: Option<u64> = None;
    let mut seen_tx = false;
    for _ in 0..15 {
        let block = next_block(&mut blocks).await;
        if let Some(height) = last {
            assert_eq!(block.height, height + 1, "consecutive heights");
        }
        seen_tx |= block.txs.contains(&signed.bytes);
        last = Some(block.height);
    }
    assert!(seen_tx, "the broadcast tx is in one of the blocks");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_feed_reconnects_when_the_websocket_drops() {
    let node = bank_node(1).await;
    let proxy = TcpProxy::start(node.node.addr()).await.unwrap();
    let mut config = node.chain_config();
    config.rpc_ws = vec![format!("ws://{}/websocket", proxy.addr()).parse().unwrap()];
    let client = TendermintClient::new(config).unwrap();
    let mut blocks = client.subscribe_blocks();

    let mut last: Option<u64> = None;
    for round in 0..3 {
        for _ in 0..4 {
            let block = next_block(&mut blocks).await;
            if let Some(height) = last {
                assert_eq!(
                    block.height,
                    height + 1,
                    "consecutive heights (round {round})"
                );
            }
            last = Some(block.height);
        }
        // Kill the websocket under the feed.
        proxy.cut();
    }
    for _ in 0..10 {
        let block = next_block(&mut blocks).await;
        assert_eq!(
            Some(block.height),
            last.map(|h| h + 1),
            "consecutive heights"
        );
        last = Some(block.height);
    }
    // The feed polls HTTP while it backs off, so the blocks above do not prove it went back to
    // the websocket: the proxy counts the first connection and one after each of the 3 cuts.
    redline_tests::testkit::wait_for(
        || std::future::ready(proxy.connections() >= 4),
        Duration::from_secs(15),
    )
    .await
    .expect("the feed reconnects after every cut");
    drop(blocks);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_endpoint_and_names_the_dead_one() {
    let node = bank_node(1).await;
    let mut config = node.chain_config();
    let dead = dead_http_url();
    config.rpc_http = vec![
        dead.parse().unwrap(),
        node.node.rpc_http_url().parse().unwrap(),
    ];
    let client = TendermintClient::new(config.clone()).unwrap();
    assert!(client.latest_height().await.unwrap() >= 1);
    let alice = node.wallet(0);
    assert!(client.account(alice.address().as_ref()).await.is_ok());

    config.rpc_http = vec![dead.parse().unwrap()];
    let only_dead = TendermintClient::new(config).unwrap();
    let err = only_dead.latest_height().await.unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::Transport {
                method: "status",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&dead), "{err}");
    assert!(
        err.to_string().contains("Connection refused"),
        "the cause is kept: {err}"
    );

    // An address that never held anything is not an account.
    let stranger = test_wallet("osmo", 99);
    let err = client
        .account(stranger.address().as_ref())
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::AccountNotFound { .. }), "{err:?}");

    // A tx that is not on chain times out naming what it waited for.
    let err = client
        .wait_for_tx(tx_hash(b"not a tx"), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Timeout { .. }), "{err:?}");
    node.shutdown().await;
}

/// A node that hangs keeps its websocket open and silent. The block feed asks the HTTP client
/// once a block is a quarter of a block late, so the blocks keep coming about on time instead
/// of after the feed's stall timeout (3 s here, 15 blocks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_websocket_costs_the_block_feed_about_a_block() {
    use redline_tests::ProxyMode;

    let node = bank_node(0).await;
    let target = rpc_addr(&node);
    let ws = TcpProxy::start(target).await.unwrap();
    let mut config = node.chain_config();
    config.rpc_ws = vec![format!("ws://{}/websocket", ws.addr()).parse().unwrap()];
    let block_time = config.block_time;
    let client = TendermintClient::new(config).unwrap();
    let mut blocks = client.subscribe_blocks();
    let mut last = next_block(&mut blocks).await.height;
    ws.set_mode(ProxyMode::Stalled);
    for _ in 0..5 {
        let block = tokio::time::timeout(block_time * 3, blocks.next())
            .await
            .expect("a block within three block times of the last, websocket hung")
            .expect("the feed does not end");
        assert_eq!(block.height, last + 1);
        last = block.height;
    }
    node.shutdown().await;
}

/// A request the preferred endpoint leaves unanswered past `hedge_after` goes to the next
/// endpoint too, and the first answer wins. With the preferred endpoint hung (connections
/// accepted, never answered), reads and a broadcast each answer long before the two-minute
/// request timeout (without hedging each would wait it out), and the client then prefers the
/// endpoint that answered. The same tx broadcast again while it waits in the mempool, as a
/// hedged broadcast can be, is taken as accepted (the node's "already exists in cache"), and
/// the coins move once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_endpoint_is_hedged_past_and_a_repeated_broadcast_is_accepted() {
    use redline_tests::ProxyMode;

    let node = bank_node(2).await;
    let target = rpc_addr(&node);
    let (hung, working) = (
        TcpProxy::start(target).await.unwrap(),
        TcpProxy::start(target).await.unwrap(),
    );
    hung.set_mode(ProxyMode::Stalled);
    let url = |proxy: &TcpProxy| format!("http://{}", proxy.addr());
    // A new client (no pooled connection) that prefers the hung endpoint.
    let mut config = node.chain_config();
    config.rpc_http = vec![url(&hung).parse().unwrap(), url(&working).parse().unwrap()];
    let config = config
        .with_request_timeout(Duration::from_secs(120))
        .unwrap()
        .with_hedge_after(Some(Duration::from_millis(100)));
    let client = TendermintClient::new(config.clone()).unwrap();
    async fn well_before_the_request_timeout<T>(call: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("the call waited for the hung endpoint")
    }

    let (alice, bob) = (node.wallet(0), node.wallet(1));
    let account = well_before_the_request_timeout(client.account(alice.address().as_ref()))
        .await
        .unwrap();
    assert_eq!(
        client.preferred_url(),
        url(&working),
        "the answering endpoint is preferred"
    );
    // Another new client, so that the broadcast is the first call to meet the hung endpoint.
    let client = TendermintClient::new(config.clone()).unwrap();
    let msg = bank_send_msg(alice.address(), bob.address().as_ref(), &[coin(7, "uatom")]).unwrap();
    let signed = sign_unsimulated(
        &TxBuilder::new(&config),
        &alice,
        account.account_number,
        account.sequence,
        &msg,
    );
    let hash = well_before_the_request_timeout(client.broadcast_sync(signed.bytes.clone()))
        .await
        .unwrap();
    assert_eq!(hash, signed.hash);
    assert_eq!(client.preferred_url(), url(&working));
    let again = client.broadcast_sync(signed.bytes.clone()).await;
    match again {
        Ok(again) => assert_eq!(again, hash),
        // The block came between the two broadcasts: its sequence is used.
        Err(ChainError::Rejected(r)) if r.kind == TxErrorCode::WrongSequence => {}
        Err(e) => panic!("a repeated broadcast is refused: {e}"),
    }
    let outcome = client.wait_for_tx(hash, INCLUSION_TIMEOUT).await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    let received = outcome
        .events_of("transfer")
        .filter(|e| e.attribute("recipient") == Some(bob.address().as_ref()))
        .count();
    assert_eq!(received, 1, "the coins moved once: {outcome:?}");
    let later = client.latest_height().await.unwrap() + 3;
    while client.latest_height().await.unwrap() < later {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let account_after = client.account(alice.address().as_ref()).await.unwrap();
    assert_eq!(
        account_after.sequence,
        account.sequence + 1,
        "one tx executed"
    );
    node.shutdown().await;
}

/// Splits a raw key of the Red Bank's `debts` map (`Map<(&Addr, &str), Debt>`) into
/// (address, denom): 2-byte length + namespace, 2-byte length + address, denom.
fn debts_key_parts(prefix: &[u8], key: &[u8]) -> (String, String) {
    let rest = key.strip_prefix(prefix).expect("key under the prefix");
    let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    let address = String::from_utf8(rest[2..2 + len].to_vec()).expect("utf-8 address");
    let denom = String::from_utf8(rest[2 + len..].to_vec()).expect("utf-8 denom");
    (address, denom)
}

fn map_prefix(namespace: &str) -> Vec<u8> {
    let mut prefix = (namespace.len() as u16).to_be_bytes().to_vec();
    prefix.extend_from_slice(namespace.as_bytes());
    prefix
}

/// A wallet executing messages on one contract, its sequence tracked.
struct Executor<'a> {
    client: &'a TendermintClient,
    builder: &'a TxBuilder,
    wallet: &'a Wallet,
    tracker: SequenceTracker,
    contract: &'a str,
}

impl<'a> Executor<'a> {
    async fn load(
        client: &'a TendermintClient,
        builder: &'a TxBuilder,
        wallet: &'a Wallet,
        contract: &'a str,
    ) -> Self {
        let tracker = SequenceTracker::load(client, wallet.address().as_ref())
            .await
            .unwrap();
        Executor {
            client,
            builder,
            wallet,
            tracker,
            contract,
        }
    }

    /// Executes `msg` with `funds` (at the tracker's sequence), waits for inclusion.
    async fn execute(
        &self,
        msg: &serde_json::Value,
        funds: &[Coin],
    ) -> Result<redline_chain::TxOutcome, ChainError> {
        let any = execute_contract_msg(self.wallet.address(), self.contract, msg, funds)?;
        let signed = sign_with_simulated_gas(
            self.client,
            self.builder,
            self.wallet,
            self.tracker.account_number(),
            self.tracker.peek(),
            vec![any],
            "redline e2e",
        )
        .await?;
        let hash = self.client.broadcast_sync(signed.bytes).await?;
        self.tracker.next();
        self.client
            .wait_for_tx(hash, INCLUSION_TIMEOUT)
            .await?
            .into_result()
    }
}

/// `borrower`'s liquidation health factor, from the Red Bank's `user_position`.
async fn health_factor(client: &TendermintClient, red_bank: &str, borrower: &Wallet) -> Decimal {
    let position: serde_json::Value = client
        .query_smart(
            red_bank,
            &json!({"user_position": {"user": borrower.address().to_string()}}),
            None,
        )
        .await
        .unwrap();
    liquidation_hf(&position)
}

fn liquidation_hf(position: &serde_json::Value) -> Decimal {
    position["health_status"]["borrowing"]["liq_threshold_hf"]
        .as_str()
        .unwrap_or_else(|| panic!("a borrowing position: {position}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_borrow_and_liquidate_through_rpc_and_scan_the_debts() {
    let scenario = Devnet::scenario(300, 7)
        .start()
        .await
        .expect("scenario starts");
    let client = scenario.client.clone();
    let builder = TxBuilder::new(client.config());
    let red_bank = scenario.manifest.contracts.red_bank.clone();

    // Every seeded debtor, once, from a raw scan of the `debts` map, serial and concurrent.
    let mut expected: Vec<(String, String)> = scenario
        .positions
        .iter()
        .flat_map(|p| p.debt.iter().map(|d| (p.user.to_string(), d.denom.clone())))
        .collect();
    expected.sort();
    assert!(expected.len() > 200, "most of 300 borrowers borrow");
    let prefix = map_prefix(namespace::DEBTS);
    let serial = client
        .scan_raw_prefix(&red_bank, &prefix, 37)
        .await
        .unwrap();
    let mut found: Vec<(String, String)> = serial
        .iter()
        .map(|e| debts_key_parts(&prefix, &e.key))
        .collect();
    found.sort();
    assert_eq!(found, expected, "serial scan: every debt once");
    let concurrent = client
        .scan_raw_prefix_concurrent(
            &red_bank,
            &prefix,
            ScanOptions {
                page_size: 37,
                concurrency: 4,
                height: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        concurrent, serial,
        "the concurrent scan gives the same entries"
    );
    let debtors: BTreeSet<&str> = found.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        debtors.len(),
        found.len(),
        "one debt denom per seeded debtor"
    );
    // A raw read of one of those keys answers its value.
    let raw = client
        .query_raw(&red_bank, &serial[0].key, None)
        .await
        .unwrap();
    assert_eq!(raw.as_deref(), Some(serial[0].value.as_slice()));
    assert_eq!(
        client
            .query_raw(&red_bank, b"no such key", None)
            .await
            .unwrap(),
        None
    );

    // The measured Mars case, over RPC: deposit 10,000 uatom at $10, borrow 65,000 uusdc.
    let borrower = scenario.liquidator(0);
    let liquidator = scenario.liquidator(1);
    let borrower_tx = Executor::load(&client, &builder, &borrower, &red_bank).await;
    let deposit = borrower_tx
        .execute(&json!({"deposit": {}}), &[coin(10_000, "uatom")])
        .await
        .unwrap();
    assert_eq!(deposit.attribute("wasm", "action"), Some("deposit"));
    assert_eq!(deposit.attribute("wasm", "amount"), Some("10000"));
    let borrow = borrower_tx
        .execute(
            &json!({"borrow": {"denom": "uusdc", "amount": "65000"}}),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(borrow.attribute("wasm", "action"), Some("borrow"));
    assert!(borrow.height > deposit.height);

    let hf = health_factor(&client, &red_bank, &borrower).await;
    assert!(
        hf > Decimal::percent(123) && hf < Decimal::percent(124),
        "{hf}"
    );

    // Healthy: the liquidation already fails in simulation, as a contract error.
    let liquidator_tx = Executor::load(&client, &builder, &liquidator, &red_bank).await;
    let liquidate_msg = json!({"liquidate": {
        "user": borrower.address().to_string(),
        "collateral_denom": "uatom",
    }});
    let err = liquidator_tx
        .execute(&liquidate_msg, &[coin(30_000, "uusdc")])
        .await
        .unwrap_err();
    let rejection = err.rejection().expect("a refused liquidation");
    assert_eq!(rejection.stage, TxStage::Simulate);
    assert_eq!(rejection.kind, TxErrorCode::Contract, "{err}");

    // ATOM falls to $7.5: HF 0.923.
    let mut blocks = client.subscribe_blocks();
    let applies_at = scenario
        .node
        .chain()
        .set_prices(BTreeMap::from([(
            "uatom".to_string(),
            Decimal::from_str("7.5").unwrap(),
        )]))
        .await
        .unwrap()
        .unwrap();
    loop {
        let block = next_block(&mut blocks).await;
        if block.height >= applies_at {
            break;
        }
    }
    let hf = health_factor(&client, &red_bank, &borrower).await;
    assert!(
        hf > Decimal::percent(92) && hf < Decimal::percent(93),
        "{hf}"
    );

    // The liquidator sends 30,000 uusdc: 30,000 repaid, 4,400 uatom seized.
    let liquidation = liquidator_tx
        .execute(&liquidate_msg, &[coin(30_000, "uusdc")])
        .await
        .unwrap();
    let event = liquidation
        .events_of("wasm")
        .find(|e| e.attribute("action") == Some("liquidate"))
        .expect("a liquidate event");
    assert_eq!(event.attribute("user"), Some(borrower.address().as_ref()));
    assert_eq!(
        event.attribute("liquidator"),
        Some(liquidator.address().as_ref())
    );
    assert_eq!(event.attribute("collateral_denom"), Some("uatom"));
    assert_eq!(event.attribute("collateral_amount"), Some("4400"));
    assert_eq!(event.attribute("debt_denom"), Some("uusdc"));
    assert_eq!(event.attribute("debt_amount"), Some("30000"));
    assert_eq!(
        event.attribute("_contract_address"),
        Some(red_bank.as_str())
    );

    // The block feed carries the block with the liquidation in it.
    loop {
        let block = next_block(&mut blocks).await;
        if block.height == liquidation.height {
            assert!(block.txs.iter().any(|tx| tx_hash(tx) == liquidation.hash));
            break;
        }
        assert!(
            block.height < liquidation.height,
            "the feed skipped the block"
        );
    }

    // Errors of smart queries name the contract and the query.
    let err = client
        .query_smart::<_, Vec<u64>>(&red_bank, &json!({"markets": {}}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Decode { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&red_bank) && err.to_string().contains("`markets`"),
        "{err}"
    );
    let err = client
        .query_smart::<_, serde_json::Value>(&red_bank, &json!({"no_such_query": {}}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Abci { .. }), "{err:?}");
    assert!(err.to_string().contains(&red_bank), "{err}");
    scenario.shutdown().await;
}
