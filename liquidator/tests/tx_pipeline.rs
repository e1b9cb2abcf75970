//! The TxSender pipelining one wallet's transactions against a real devnet: several broadcast
//! back to back land together, the in-flight limit holds a broadcast back until one settles,
//! a wrong sequence behind txs in flight resyncs once they are committed, and a tx of unknown
//! fate in the middle of a pipeline stops every further send until it is settled.

mod support;

use std::time::Duration;

use cosmwasm_std::Uint256;
use redline_chain::ChainClient;
use redline_liquidator::tx_sender::{Broadcast, SendError, SendOptions, Sent};
use support::{impatient, send_uatom, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txs_broadcast_back_to_back_land_together_within_the_in_flight_limit() {
    let h = Harness::start(10, 31, 3).await.unwrap();
    let a = h
        .sender(1, SendOptions::default())
        .await
        .unwrap()
        .with_max_in_flight(3);
    let to = h.wallet(2).address().to_string();
    let send = |amount: u128| send_uatom(&a, &to, amount);
    let before = h.balance(&to, "uatom").await;
    let start = h.client.account(a.address()).await.unwrap().sequence;

    // Three txs: each simulated and broadcast while the ones before wait in the mempool.
    let mut pending = Vec::new();
    for amount in [1u128, 2, 3] {
        let broadcast = a.broadcast(vec![send(amount)], "pipelined").await.unwrap();
        assert!(matches!(broadcast, Broadcast::Pending(_)));
        pending.push(broadcast);
    }
    assert_eq!(a.in_flight(), 3);
    let sequences: Vec<u64> = pending.iter().map(Broadcast::sequence).collect();
    assert_eq!(sequences, vec![start, start + 1, start + 2]);

    // The limit: a fourth broadcast waits until one of the three settles.
    let fourth = {
        let a = &a;
        let send = &send;
        async move { a.broadcast(vec![send(4)], "fourth").await }
    };
    tokio::pin!(fourth);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut fourth)
            .await
            .is_err(),
        "a fourth tx went out with three in flight"
    );
    let mut confirmations = Vec::new();
    for broadcast in pending {
        confirmations.push(a.confirm(broadcast));
    }
    let (results, fourth) = tokio::join!(futures::future::join_all(confirmations), fourth);
    let heights: Vec<u64> = results
        .into_iter()
        .map(|r| match r.unwrap() {
            Sent::Included(tx) => {
                assert!(tx.outcome.is_success());
                tx.height()
            }
            Sent::DryRun(_) => panic!("not a dry run"),
        })
        .collect();
    // Broadcast within one block interval of each other: at most two blocks apart.
    assert!(
        heights.iter().max().unwrap() - heights.iter().min().unwrap() <= 1,
        "{heights:?}"
    );
    let fourth = fourth.unwrap();
    assert_eq!(fourth.sequence(), start + 3);
    let Sent::Included(_) = a.confirm(fourth).await.unwrap() else {
        panic!("not a dry run")
    };
    assert_eq!(a.in_flight(), 0);
    assert_eq!(h.balance(&to, "uatom").await, before + Uint256::from(10u32));
    assert_eq!(
        h.client.account(a.address()).await.unwrap().sequence,
        start + 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sequence_behind_txs_in_flight_resyncs_once_they_are_committed() {
    let h = Harness::start(10, 32, 3).await.unwrap();
    let a = h.sender(1, SendOptions::default()).await.unwrap();
    let b = h.sender(1, SendOptions::default()).await.unwrap();
    let to = h.wallet(2).address().to_string();
    let send = |amount: u128| send_uatom(&a, &to, amount);
    let before = h.balance(&to, "uatom").await;
    // `a` has a tx in flight (committed, but not confirmed by `a` yet); `b` (same wallet)
    // takes the next sequence behind its back.
    let start = h.client.account(a.address()).await.unwrap().sequence;
    let first = a.broadcast(vec![send(1)], "first").await.unwrap();
    while h.client.account(a.address()).await.unwrap().sequence == start {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.in_flight(), 1);
    let Sent::Included(_) = b.send(vec![send(2)], "other").await.unwrap() else {
        panic!("not a dry run")
    };
    // `a` signs the sequence `b` took: code 32 at CheckTx (no simulation to catch it first);
    // the resync takes the committed sequence only once it is past `first`, still in flight.
    let second = a
        .broadcast_simulated(vec![send(4)], "second", 150_000)
        .await
        .unwrap();
    let (first, second) = tokio::join!(a.confirm(first), a.confirm(second));
    let (Sent::Included(first), Sent::Included(second)) = (first.unwrap(), second.unwrap()) else {
        panic!("not a dry run")
    };
    assert_eq!(second.sequence, first.sequence + 2);
    assert_eq!(h.balance(&to, "uatom").await, before + Uint256::from(7u32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_of_unknown_fate_in_a_pipeline_blocks_every_further_send_until_settled() {
    let h = Harness::start(10, 33, 3).await.unwrap();
    let impatient = h.sender(1, impatient()).await.unwrap();
    let to = h.wallet(2).address().to_string();
    let send = |amount: u128| send_uatom(&impatient, &to, amount);
    let before = h.balance(&to, "uatom").await;
    let start = impatient
        .client()
        .account(impatient.address())
        .await
        .unwrap()
        .sequence;
    let first = impatient.broadcast(vec![send(1)], "").await.unwrap();
    let second = impatient.broadcast(vec![send(2)], "").await.unwrap();
    let (first, second) = tokio::join!(impatient.confirm(first), impatient.confirm(second));
    for result in [first, second] {
        match result {
            Err(SendError::Unconfirmed { .. }) => {}
            // Seen at once after all (the block was that quick): nothing in doubt for it.
            Ok(Sent::Included(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    if impatient.has_unresolved().await {
        // Nothing new goes out while a tx of unknown fate exists.
        match impatient.broadcast(vec![send(4)], "").await {
            Err(SendError::Unresolved { .. }) => {}
            // Both found in a block by the look before signing: then this one goes.
            Ok(broadcast) => {
                let _ = impatient.confirm(broadcast).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    tokio::time::sleep(support::BLOCK_TIME * 3).await;
    while impatient.resolve_unresolved().await.unwrap().is_some() {}
    assert!(!impatient.has_unresolved().await);
    // Exactly the txs that executed moved coins, each once.
    let moved = h.balance(&to, "uatom").await - before;
    let executed = impatient
        .client()
        .account(impatient.address())
        .await
        .unwrap()
        .sequence
        - start;
    assert!(executed == 2 || executed == 3, "{executed}");
    let expected: u32 = if executed == 2 { 3 } else { 7 };
    assert_eq!(moved, Uint256::from(expected));
}
