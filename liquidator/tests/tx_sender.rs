//! The TxSender against a real devnet: inclusion, wrong-sequence recovery, dry runs, and the
//! never-twice rule for transactions whose inclusion was not seen.

mod support;

use std::time::Duration;

use cosmwasm_std::{Coin, Uint256};
use redline_chain::{bank_send_msg, ChainClient, TxErrorCode};
use redline_liquidator::tx_sender::{Resolution, SendError, SendOptions, Sent};
use support::{impatient, send_uatom, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_resyncs_after_a_wrong_sequence_and_dry_runs() {
    let h = Harness::start(10, 21, 3).await.unwrap();
    let a = h.sender(1, SendOptions::default()).await.unwrap();
    let to = h.wallet(2).address().to_string();
    let send = |amount: u128| send_uatom(&a, &to, amount);
    let before = h.balance(&to, "uatom").await;

    let Sent::Included(first) = a.send(vec![send(5)], "one").await.unwrap() else {
        panic!("not a dry run")
    };
    assert!(first.outcome.is_success());
    assert!(first.gas_limit >= first.outcome.gas_used);
    assert_eq!(first.fee.denom, "uosmo");

    // A second sender for the same wallet moves the chain's sequence behind `a`'s back.
    let b = h.sender(1, SendOptions::default()).await.unwrap();
    b.send(vec![send(7)], "two").await.unwrap();
    // `a` signs with a stale sequence, is told code 32, resyncs and gets through once.
    let Sent::Included(third) = a.send(vec![send(11)], "three").await.unwrap() else {
        panic!("not a dry run")
    };
    assert_eq!(third.sequence, first.sequence + 2);
    assert_eq!(h.balance(&to, "uatom").await, before + Uint256::from(23u32));
    // Same at CheckTx, without a simulation to catch it first.
    b.send(vec![send(13)], "four").await.unwrap();
    let Sent::Included(fifth) = a
        .send_simulated(vec![send(17)], "five", 150_000)
        .await
        .unwrap()
    else {
        panic!("not a dry run")
    };
    assert_eq!(fifth.sequence, first.sequence + 4);
    let before = before + Uint256::from(30u32);
    assert_eq!(h.balance(&to, "uatom").await, before + Uint256::from(23u32));

    // Dry run: signed and simulated, never broadcast; the sequence is not used up.
    let dry = h
        .sender(
            1,
            SendOptions {
                dry_run: true,
                ..SendOptions::default()
            },
        )
        .await
        .unwrap();
    let Sent::DryRun(tx) = dry.send(vec![send(1_000)], "dry").await.unwrap() else {
        panic!("dry run broadcast")
    };
    assert!(tx.gas_limit > tx.gas_used);
    tokio::time::sleep(support::BLOCK_TIME * 3).await;
    assert!(h
        .client
        .wait_for_tx(tx.hash, Duration::from_millis(1))
        .await
        .is_err());
    assert_eq!(h.balance(&to, "uatom").await, before + Uint256::from(23u32));

    // A revoked permit (lost wallet slot) stops signing.
    let revoked = h.sender(1, SendOptions::default()).await.unwrap();
    revoked.permit().revoke();
    let err = revoked.send(vec![send(1)], "").await.unwrap_err();
    assert!(matches!(err, SendError::PermitRevoked { .. }), "{err}");

    // A tx the chain refuses in simulation: nothing broadcast, the error says why.
    let err = a
        .send(vec![send(u128::MAX / 2)], "too much")
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Simulation(_)), "{err}");
    assert_eq!(err.code(), Some(TxErrorCode::InsufficientFunds));
    assert!(!err.may_have_executed());
}

/// Inclusion not seen in time: the sender keeps the tx unresolved, refuses to send another
/// until it knows, then finds it in a block. The coins move exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_tx_is_never_sent_twice() {
    let h = Harness::start(10, 22, 3).await.unwrap();
    let impatient = h
        .sender(
            1,
            SendOptions {
                unresolved_grace: Duration::from_secs(60),
                ..impatient()
            },
        )
        .await
        .unwrap();
    let to = h.wallet(2).address().to_string();
    let before = h.balance(&to, "uusdc").await;
    let msg = bank_send_msg(
        impatient.wallet().address(),
        &to,
        &[Coin::new(100u128, "uusdc")],
    )
    .unwrap();
    let err = impatient.send(vec![msg.clone()], "").await.unwrap_err();
    assert!(err.may_have_executed(), "{err}");
    let SendError::Unconfirmed { hash, sequence, .. } = err else {
        panic!("{err}")
    };
    // The next send waits for the first to be settled, whatever it is.
    let err = impatient.send(vec![msg.clone()], "").await;
    match err {
        Err(SendError::Unresolved { hash: pending, .. }) => assert_eq!(pending, hash),
        // The block may already be in: then the earlier tx is settled first and this one goes.
        Ok(Sent::Included(_)) => {}
        other => panic!("{other:?}"),
    }
    // Give the block time, then settle.
    tokio::time::sleep(support::BLOCK_TIME * 3).await;
    match impatient.resolve_unresolved().await.unwrap() {
        Some(Resolution::Included(tx)) => {
            assert_eq!(tx.hash, hash);
            assert_eq!(tx.sequence, sequence);
        }
        None => {} // settled by the send above
        other => panic!("{other:?}"),
    }
    assert!(!impatient.has_unresolved().await);
    let moved = h.balance(&to, "uusdc").await - before;
    assert!(
        moved == Uint256::from(100u32) || moved == Uint256::from(200u32),
        "{moved}"
    );
    // Exactly the txs that succeeded moved coins: the first one once, and the second only if
    // it was sent after the first was settled.
    let account = h.client.account(impatient.address()).await.unwrap();
    assert_eq!(
        Uint256::from(100u32) * Uint256::from(account.sequence - sequence),
        moved
    );
}

/// On Neutron's fee market the base gas price moves every block with the block's gas (here
/// Neutron's learning rate, 0.08, around a 1,000-gas target, so that a block with any tx in it
/// raises the price by 8 %). While another wallet keeps the blocks full, a sender that simulated
/// at one price and broadcasts after the price doubled reads it again and signs with headroom
/// over it: the tx lands once, and the wallet pays exactly its fee. Signed at the manifest's
/// fixed price instead, the same tx is refused at CheckTx for its fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_lands_after_the_fee_market_price_rose_between_simulate_and_broadcast() {
    use cosmwasm_std::Decimal;
    use mars::manifest::FeeMarket;

    let h = fee_market_harness(23).await;
    assert_eq!(h.manifest.fee.market, FeeMarket::Feemarket);
    let a = h.sender(1, SendOptions::default()).await.unwrap();
    let wallet = a.address().to_string();
    let to = h.wallet(2).address().to_string();
    let message = send_uatom(&a, &to, 5);
    let gas_used = a.simulate(std::slice::from_ref(&message)).await.unwrap();
    let read_at_simulation = a.gas_price();

    let busy = keep_blocks_busy(&h, &to).await;
    let risen = base_price_above(&h, read_at_simulation * Decimal::percent(200)).await;

    // Signed at the manifest's price, as without a fee market: refused for its fee.
    let account = h.client.account(&wallet).await.unwrap();
    let gas_limit = a.builder().gas_limit_for(gas_used);
    let stale = a
        .builder()
        .sign(
            a.wallet(),
            account.account_number,
            account.sequence,
            vec![message.clone()],
            gas_limit,
            "",
        )
        .unwrap();
    let refused = h.client.broadcast_sync(stale.bytes).await.unwrap_err();
    assert_eq!(
        refused.rejection().map(|r| r.kind),
        Some(TxErrorCode::InsufficientFee),
        "{refused}"
    );

    let before = h.balances(&wallet).await;
    let sent = a
        .send_simulated(vec![message], "after the rise", gas_used)
        .await;
    busy.abort();
    let paid_price = landed_paying_once(&h, sent, &wallet, account.sequence, &before).await;
    assert!(
        paid_price >= risen,
        "signed at {paid_price}, the base price had risen to {risen} (read {read_at_simulation} at the simulation)"
    );
}

/// A sender whose reading of the fee market's price is still fresh by its clock (here it
/// believes blocks come every 10 minutes) while the price has risen past that reading plus
/// headroom: CheckTx refuses the tx for its fee, nothing is paid and the sequence is unused,
/// so the sender reads the price again, signs again at it with headroom, and the tx lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_refused_for_its_fee_is_signed_again_at_the_price_read_then() {
    use cosmwasm_std::Decimal;

    let h = fee_market_harness(29).await;
    let a = slow_clock_sender(&h).await;
    let wallet = a.address().to_string();
    let to = h.wallet(2).address().to_string();
    let message = send_uatom(&a, &to, 5);
    let gas_used = a.simulate(std::slice::from_ref(&message)).await.unwrap();
    let signs_at = a.gas_price();

    // Full blocks until the base price is well past what `a` would sign with.
    let busy = keep_blocks_busy(&h, &to).await;
    let risen = base_price_above(&h, signs_at * Decimal::percent(110)).await;
    busy.abort();
    assert_eq!(
        a.gas_price(),
        signs_at,
        "the sender's reading is still the old one"
    );

    let account = h.client.account(&wallet).await.unwrap();
    let before = h.balances(&wallet).await;
    let sent = a.send_simulated(vec![message], "re-priced", gas_used).await;
    let paid_price = landed_paying_once(&h, sent, &wallet, account.sequence, &before).await;
    assert!(
        paid_price >= risen && paid_price > signs_at,
        "signed at {paid_price}; the base price had risen to {risen} from a reading of {signs_at} with headroom"
    );
}

/// A sender whose reading of the chain's height is still fresh by its clock (it believes
/// blocks come every 10 minutes) while the chain has moved past the timeout height that
/// reading gives: CheckTx refuses the tx for its timeout height, nothing is paid and the
/// sequence is unused, so the sender reads the height afresh, signs again, and the tx lands
/// once. Without the second signing the tx would fail at CheckTx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_refused_for_its_timeout_height_is_signed_again_from_the_height_then() {
    let h = Harness::start(10, 31, 3).await.unwrap();
    let a = slow_clock_sender(&h).await;
    let wallet = a.address().to_string();
    let to = h.wallet(2).address().to_string();
    let Sent::Included(first) = a.send(vec![send_uatom(&a, &to, 5)], "one").await.unwrap() else {
        panic!("not a dry run")
    };
    // Its height reading (taken for the first tx) is now more than two blocks old.
    wait_for_height(&h, first.height() + 4).await;

    let account = h.client.account(&wallet).await.unwrap();
    let before = h.balances(&wallet).await;
    let message = send_uatom(&a, &to, 7);
    let gas_used = a.simulate(std::slice::from_ref(&message)).await.unwrap();
    let sent = a.send_simulated(vec![message], "re-timed", gas_used).await;
    landed_paying_once(&h, sent, &wallet, account.sequence, &before).await;
}

/// A sender for wallet 1 that believes blocks come every 10 minutes, so it keeps its readings
/// of the chain (height, fee market's price) long after they are stale.
async fn slow_clock_sender(
    h: &Harness,
) -> redline_liquidator::tx_sender::TxSender<redline_chain::TendermintClient> {
    use redline_liquidator::tx_sender::{SigningPermit, TxSender};

    let slow_clock = redline_chain::ChainConfig {
        block_time: Duration::from_secs(600),
        ..h.chain.clone()
    };
    TxSender::new(
        h.client.clone(),
        &slow_clock,
        h.wallet(1),
        SendOptions::default(),
        SigningPermit::granted(),
    )
    .await
    .unwrap()
}

/// Checks that `sent` landed and succeeded at `sequence`, that `wallet` paid its fee once (its
/// fee-denom balance fell by exactly the fee since `before`) and that its sequence moved by one;
/// the gas price paid.
async fn landed_paying_once(
    h: &Harness,
    sent: Result<Sent, SendError>,
    wallet: &str,
    sequence: u64,
    before: &std::collections::BTreeMap<String, Uint256>,
) -> cosmwasm_std::Decimal {
    use cosmwasm_std::{Decimal, Uint128};

    let Sent::Included(tx) = sent.unwrap() else {
        panic!("not a dry run")
    };
    assert!(tx.outcome.is_success(), "{:?}", tx.outcome);
    assert_eq!(tx.sequence, sequence);
    let fee_denom = &h.manifest.fee.denom;
    let after = h.balances(wallet).await;
    assert_eq!(
        before[fee_denom] - after[fee_denom],
        tx.fee.amount,
        "the wallet paid the fee once"
    );
    assert_eq!(
        h.client.account(wallet).await.unwrap().sequence,
        sequence + 1
    );
    Decimal::from_ratio(
        Uint128::try_from(tx.fee.amount).unwrap(),
        Uint128::from(tx.gas_limit),
    )
}

/// A tx that misses every block up to its timeout height is known dead once the chain has
/// committed that height: the sender settles it as expired without waiting out the grace (ten
/// minutes here), the wallet's next tx takes the same sequence, and the coins move once. Here
/// each block has room for one of another wallet's txs, which pay three times the base gas
/// price and always wait in the mempool, so the tx never gets in. Without a timeout height the
/// sender would wait for the inclusion timeout (ten minutes) and then for the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_that_misses_its_blocks_is_known_dead_at_its_timeout_height() {
    use redline_liquidator::tx_sender::DEFAULT_MAX_IN_FLIGHT;

    let Crowded {
        h,
        a,
        to,
        before,
        message,
        gas_used,
        busy,
    } = crowded_out(31, 3).await;

    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        a.send_simulated(vec![message.clone()], "crowded out", gas_used),
    )
    .await
    .expect("the sender still waits for a tx past its timeout height");
    let Err(SendError::Expired {
        hash,
        sequence,
        timeout_height,
        ..
    }) = sent
    else {
        panic!("expected the tx to expire unincluded: {sent:?}")
    };
    assert_eq!(
        a.window(),
        DEFAULT_MAX_IN_FLIGHT / 2,
        "a missed block halves the window"
    );
    // Unsettled yet, the expired tx's sequence is the chain's: a simulation takes it.
    let simulated = a.simulate(std::slice::from_ref(&message)).await;
    assert!(simulated.is_ok(), "{simulated:?}");
    busy.abort();
    assert!(h.client.latest_height().await.unwrap() >= timeout_height);
    match a.resolve_unresolved().await.unwrap() {
        Some(Resolution::Expired {
            hash: expired,
            sequence: at,
            timeout_height: past,
        }) => assert_eq!((expired, at, past), (hash, sequence, timeout_height)),
        other => panic!("expected the tx settled as expired: {other:?}"),
    }
    assert!(!a.has_unresolved().await);

    // The filler's backlog still fills the next blocks: each try that misses them expires in
    // turn, and the sequence stays the same until one lands.
    let mut tries = 0;
    let next = loop {
        tries += 1;
        match a.send(vec![message.clone()], "after").await {
            Ok(Sent::Included(tx)) => break tx,
            Err(SendError::Expired { .. }) if tries < 30 => {}
            other => panic!("try {tries}: {other:?}"),
        }
    };
    assert_eq!(
        next.sequence, sequence,
        "the expired txs' sequence is reused"
    );
    assert!(h
        .client
        .wait_for_tx(hash, Duration::from_millis(1))
        .await
        .is_err());
    assert_eq!(
        h.balance(&to, "uusdc").await - before,
        Uint256::from(100u32),
        "the coins moved once"
    );
}

/// On a fee market, the mempool's recheck drops a waiting tx once the base price passes the
/// price it pays, and every later tx of its wallet with it (they wait behind its sequence).
/// The sender knows the price of each tx it has in flight, so it does not sign on top of such
/// a tx: its next broadcast waits until the dropped tx has settled (expired at its timeout
/// height) and returns `InFlightDropped` without broadcasting anything, so that nothing is
/// refused at CheckTx for its sequence. Without that check the next tx would be signed on top
/// and refused ("account sequence mismatch").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_the_risen_price_drops_holds_back_the_wallets_next_tx() {
    use cosmwasm_std::Decimal;

    let Crowded {
        h,
        a,
        to,
        before,
        message,
        gas_used,
        busy,
    } = crowded_out(37, 10).await;

    let signs_at = a.gas_price();
    let first = a
        .broadcast_simulated(vec![message.clone()], "first", gas_used)
        .await
        .unwrap();
    let confirming = {
        let a = a.clone();
        tokio::spawn(async move { a.confirm(first).await })
    };
    // The price a tx is signed at is at most one block's rise (8 %) over the reading before
    // it, and the sender's reading lags the market by at most one such rise: past 1.25 times
    // the first reading, the sender sees the first tx priced out.
    base_price_above(&h, signs_at * Decimal::percent(125)).await;
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        a.broadcast_simulated(vec![message.clone()], "second", gas_used),
    )
    .await
    .expect("the sender still waits for the dropped tx");
    assert!(
        matches!(second, Err(SendError::InFlightDropped { .. })),
        "{second:?}"
    );
    let first = confirming.await.unwrap();
    assert!(matches!(first, Err(SendError::Expired { .. })), "{first:?}");
    busy.abort();
    assert_eq!(h.balance(&to, "uusdc").await, before, "nothing moved");
}

/// A tx in flight that has missed every block but the one at its timeout height holds the
/// wallet's next tx: should that block leave it out, the mempool drops it and everything signed
/// after it, and a tx broadcast just after that block would be refused for its sequence. So the
/// next broadcast waits for the first to settle (here it expires: every block is taken) and
/// returns `InFlightDropped` without broadcasting (no refusal). Without the hold the second tx
/// is signed on top and accepted into the mempool, only to be dropped with the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_at_its_last_block_holds_back_the_wallets_next_tx() {
    use redline_liquidator::tx_sender::Broadcast;

    let Crowded {
        h,
        a,
        to,
        before,
        message,
        gas_used,
        busy,
    } = crowded_out(41, 2).await;

    let first = a
        .broadcast_simulated(vec![message.clone()], "first", gas_used)
        .await
        .unwrap();
    let Broadcast::Pending(first) = first else {
        panic!("not a dry run")
    };
    let timeout_height = first.timeout_height().expect("a timeout height");
    let confirming = {
        let a = a.clone();
        tokio::spawn(async move { a.confirm(Broadcast::Pending(first)).await })
    };
    let at = wait_for_height(&h, timeout_height - 1).await;
    assert_eq!(
        at,
        timeout_height - 1,
        "the test missed the first tx's last block"
    );
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        a.broadcast_simulated(vec![message.clone()], "second", gas_used),
    )
    .await
    .expect("the sender still waits for the first tx");
    assert!(
        matches!(
            second,
            Err(SendError::InFlightDropped { refused: None, .. })
        ),
        "{second:?}"
    );
    let first = confirming.await.unwrap();
    assert!(matches!(first, Err(SendError::Expired { .. })), "{first:?}");
    busy.abort();
    assert_eq!(h.balance(&to, "uusdc").await, before, "nothing moved");
}

/// Waits (a minute at most) until the chain's latest height is at least `height`; the height
/// then, read every 10 ms.
async fn wait_for_height(h: &Harness, height: u64) -> u64 {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let tip = h.client.latest_height().await.unwrap();
            if tip >= height {
                return tip;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the chain reached the height")
}

/// A tx that bids for its place gets ahead of a bot that fills every block at three times the
/// base price: signed at the price that pays its bid (ten times its fee at the market's price
/// with the default headroom of 1.2), it lands in the next blocks, and the wallet pays no more
/// than the bid, once. Without the bid the same tx misses every block
/// (`a_tx_that_misses_its_blocks_is_known_dead_at_its_timeout_height`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bid_gets_ahead_of_a_bot_that_fills_every_block() {
    use cosmwasm_std::Uint128;
    use redline_liquidator::tx_sender::DEFAULT_MAX_IN_FLIGHT;

    let Crowded {
        h,
        a,
        to,
        before,
        message,
        gas_used,
        busy,
    } = crowded_out(43, 3).await;
    let wallet = a.address().to_string();
    let market_fee = Uint128::try_from(a.fee_for_gas(gas_used).amount).unwrap();
    let bid = market_fee * Uint128::new(10);
    let paid_before = h.balances(&wallet).await;
    let sequence = h.client.account(&wallet).await.unwrap().sequence;
    let broadcast = a
        .broadcast_bidding(vec![message], "bid", gas_used, Some(bid))
        .await
        .unwrap();
    let sent = tokio::time::timeout(Duration::from_secs(60), a.confirm(broadcast))
        .await
        .expect("the sender still waits for its tx");
    let price = landed_paying_once(&h, sent, &wallet, sequence, &paid_before).await;
    let fee = Uint128::from(a.builder().gas_limit_for(gas_used)).mul_ceil(price);
    assert!(
        fee <= bid && fee > market_fee * Uint128::new(9),
        "{fee} paid, {bid} bid"
    );
    assert_eq!(a.window(), DEFAULT_MAX_IN_FLIGHT, "no block missed");
    busy.abort();
    assert_eq!(
        h.balance(&to, "uusdc").await - before,
        Uint256::from(100u32),
        "the coins moved once"
    );
}

/// A fee-market devnet whose blocks another wallet fills ([`outbid_every_block`]), and wallet
/// 1's patient sender (ten minutes to wait for inclusion and for the grace), whose txs time out
/// `timeout_blocks` past the height read, with a simulated 100 uusdc send to wallet 2.
struct Crowded {
    h: Harness,
    a: std::sync::Arc<redline_liquidator::tx_sender::TxSender<redline_chain::TendermintClient>>,
    to: String,
    /// Wallet 2's uusdc before.
    before: Uint256,
    message: cosmrs::Any,
    gas_used: u64,
    busy: tokio::task::JoinHandle<()>,
}

async fn crowded_out(seed: u64, timeout_blocks: u64) -> Crowded {
    let h = Harness::start_on(fee_market_devnet(seed).block_gas_limit(600_000))
        .await
        .unwrap();
    let patient = SendOptions {
        inclusion_timeout: Duration::from_secs(600),
        unresolved_grace: Duration::from_secs(600),
        timeout_blocks: Some(timeout_blocks),
        ..SendOptions::default()
    };
    let a = std::sync::Arc::new(h.sender(1, patient).await.unwrap());
    let to = h.wallet(2).address().to_string();
    let before = h.balance(&to, "uusdc").await;
    let message = bank_send_msg(a.wallet().address(), &to, &[Coin::new(100u128, "uusdc")]).unwrap();
    let gas_used = a.simulate(std::slice::from_ref(&message)).await.unwrap();
    let busy = outbid_every_block(&h, &to).await;
    Crowded {
        h,
        a,
        to,
        before,
        message,
        gas_used,
        busy,
    }
}

/// Wallet 3 fills every block until the task is aborted: blocks of at most 600,000 gas take
/// one of its txs (signed for 1.3 × 400,000 = 520,000 gas) and nothing beside it, and it bids
/// three times the base price (the default headroom is 1.2), so it always goes first.
async fn outbid_every_block(h: &Harness, to: &str) -> tokio::task::JoinHandle<()> {
    use cosmwasm_std::Decimal;
    use redline_liquidator::tx_sender::{SigningPermit, TxSender};

    let outbidding = h
        .chain
        .clone()
        .with_gas_price_headroom(Decimal::percent(300))
        .unwrap();
    let filler = TxSender::new(
        h.client.clone(),
        &outbidding,
        h.wallet(3),
        SendOptions {
            timeout_blocks: None,
            ..SendOptions::default()
        },
        SigningPermit::granted(),
    )
    .await
    .unwrap();
    let busy = keep_blocks_busy_with(filler, to, 400_000);
    tokio::time::sleep(support::BLOCK_TIME * 2).await;
    busy
}

/// A Neutron devnet whose fee market moves the base gas price by Neutron's learning rate,
/// 0.08, around a 1,000-gas target: a block with any tx in it raises the price by 8 %.
fn fee_market_devnet(seed: u64) -> testkit::devnet::DevnetBuilder {
    use cosmwasm_std::Decimal;
    use redline_devnet::chain::FeeMarketParams;
    use redline_devnet::flavor::Flavor;
    use testkit::devnet::Devnet;

    let market = FeeMarketParams {
        learning_rate: Decimal::percent(8),
        target_block_gas: 1_000,
    };
    Devnet::scenario(10, seed)
        .liquidator_wallets(4)
        .flavor(Flavor::Neutron)
        .fee_market(market)
}

async fn fee_market_harness(seed: u64) -> Harness {
    Harness::start_on(fee_market_devnet(seed)).await.unwrap()
}

/// Wallet 3 puts a tx in every block (four a block, none awaited) until the task is aborted.
async fn keep_blocks_busy(h: &Harness, to: &str) -> tokio::task::JoinHandle<()> {
    let filler = h.sender(3, SendOptions::default()).await.unwrap();
    let fill = send_uatom(&filler, to, 1);
    let fill_gas = filler.simulate(std::slice::from_ref(&fill)).await.unwrap();
    keep_blocks_busy_with(filler, to, fill_gas)
}

/// `filler` broadcasts a 1 uatom send to `to`, signed for `gas` gas, every 50 ms (none
/// awaited) until the task is aborted.
fn keep_blocks_busy_with(
    filler: redline_liquidator::tx_sender::TxSender<redline_chain::TendermintClient>,
    to: &str,
    fill_gas: u64,
) -> tokio::task::JoinHandle<()> {
    use std::sync::Arc;

    let filler = Arc::new(filler);
    let fill = send_uatom(&filler, to, 1);
    tokio::spawn(async move {
        loop {
            if let Ok(broadcast) = filler
                .broadcast_simulated(vec![fill.clone()], "filler", fill_gas)
                .await
            {
                let filler = filler.clone();
                tokio::spawn(async move { filler.confirm(broadcast).await });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Waits (a minute at most) for the base gas price to pass `price`; the price then.
async fn base_price_above(h: &Harness, price: cosmwasm_std::Decimal) -> cosmwasm_std::Decimal {
    let base_price = || async { h.client.base_gas_price().await.unwrap().unwrap() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while base_price().await <= price {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the base price never rose past {price}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    base_price().await
}
