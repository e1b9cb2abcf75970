//! Liquidations armed ahead of the price: the liquidator queues the near-liquidation accounts a
//! block makes liquidatable, at that block, with no health checker running. Judged by the Red
//! Bank's own health answers, not by the liquidator's math.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cosmwasm_std::Decimal;
use redline_chain::ChainClient as _;
use redline_liquidator::armed::{ArmedConfig, Armory};
use redline_liquidator::shutdown::shutdown_channel;
use redline_pipeline::jobs::ProtocolKind;
use redline_pipeline::near::NearKeys;
use support::{Harness, BLOCK_TIME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn armed_accounts_are_queued_at_the_block_that_makes_them_liquidatable() {
    let h = Harness::start(60, 11, 1).await.unwrap();
    let near = NearKeys::new(
        &h.queue_config.queue_prefix,
        &h.manifest.chain_id,
        ProtocolKind::RedBank,
    );
    // Before the drop, the near set as a health checker would write it: every borrower scored
    // by the health factor the Red Bank answers, but for the five lowest, left out.
    let mut before = Vec::new();
    for account in &h.borrowers {
        if let Some(hf) = h.health_factor(account).await.unwrap() {
            assert!(
                hf >= Decimal::one(),
                "{account} is liquidatable before the drop"
            );
            before.push((hf, account.clone()));
        }
    }
    before.sort();
    let left_out: BTreeSet<String> = before[..5].iter().map(|(_, a)| a.clone()).collect();
    let mut conn = h.redis.clone();
    for (hf, account) in &before[5..] {
        let _: () = redis::cmd("ZADD")
            .arg(&near.all)
            .arg(hf.to_string())
            .arg(account)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let (trigger, stop) = shutdown_channel();
    let armory = Armory {
        reader: h.reader.clone(),
        queue: h.queue("armory").await.unwrap(),
        redis: h.redis.clone(),
        near,
        chain_id: h.manifest.chain_id.clone(),
        config: ArmedConfig {
            accounts: 1_000,
            below_hf: Decimal::percent(10_000),
        },
        gauge: prometheus::IntGauge::new("armed", "armed").unwrap(),
    };
    let task = tokio::spawn(armory.run(stop));
    // It arms at the blocks after it starts.
    let started = h.client.latest_height().await.unwrap();
    while h.client.latest_height().await.unwrap() < started + 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queue = h.queue("observer").await.unwrap();
    assert!(
        queue.peek(1_000).await.unwrap().is_empty(),
        "nothing before the drop"
    );

    let (drop, plans) = h.drop_atom().await.unwrap();
    let mut liquidatable = BTreeSet::new();
    for account in &h.borrowers {
        if h.health_factor(account)
            .await
            .unwrap()
            .is_some_and(|hf| hf < Decimal::one())
        {
            liquidatable.insert(account.clone());
        }
    }
    assert!(
        liquidatable.len() >= 5,
        "the drop makes several liquidatable"
    );
    assert!(
        !liquidatable.is_disjoint(&left_out),
        "one of the seed's lowest accounts goes under"
    );
    let queued = || async {
        let waiting = queue.peek(1_000).await.unwrap();
        waiting
            .into_iter()
            .filter_map(|w| w.job)
            .inspect(|job| assert!(job.armed, "{job:?}"))
            .map(|job| (job.account.as_string(), job.height))
            .collect::<BTreeSet<_>>()
    };
    // Every listed account with a profitable liquidation, at the drop's height...
    let profitable: BTreeSet<(String, u64)> = plans
        .iter()
        .filter(|p| !left_out.contains(&p.account))
        .map(|p| (p.account.clone(), drop))
        .collect();
    assert!(!profitable.is_empty());
    let found = testkit::wait_for(
        || async { queued().await.is_superset(&profitable) },
        Duration::from_secs(10),
    )
    .await;
    let now = queued().await;
    assert!(found.is_ok(), "queued {now:?}, expected {profitable:?}");
    // ...and none the chain calls healthy, nor the one not listed.
    for (account, height) in now {
        assert_eq!(height, drop, "{account}");
        assert!(liquidatable.contains(&account), "{account} is healthy");
        assert!(
            !left_out.contains(&account),
            "{account}: not armed, not queued"
        );
    }
    // Still liquidatable two blocks later, they are not queued again: later blocks are the
    // health checkers' (none runs here), the armory is for the block that moves the price.
    while h.client.latest_height().await.unwrap() < drop + 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(BLOCK_TIME).await;
    assert!(queued().await.iter().all(|(_, height)| *height == drop));
    trigger.trigger();
    task.await.unwrap();
}
