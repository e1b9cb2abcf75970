//! Redis as production runs it, for real: a password (`requirepass`), an ACL user, TLS
//! (`rediss://` with the server's own CA) and a 3-node Redis Cluster on loopback. Each test
//! drives the stream queue, the priority queue and the position index through it, including
//! the multi-key Lua scripts, the `MULTI` blocks and reclaiming a dead consumer's jobs.

use std::time::Duration;

use cosmwasm_std::Uint128;
use mars::msg::red_bank::{Collateral, Debt};
use redline_pipeline::index::{
    AccountChange, AccountPositions, BlockUpdate, IndexError, IndexNamespace, PositionIndex,
};
use redline_pipeline::jobs::ProtocolKind;
use redline_pipeline::queue::{
    DedupKey, Delivery, Job, PriorityJob, PriorityQueue, Queue, QueueConfig, QueueError,
    RedisStreamQueue,
};
use redline_pipeline::redis_conn::{self, key_hash_slot, ConnectOptions, RedisConn};
use serde::{Deserialize, Serialize};
use testkit::{RedisCluster, RedisOptions, RedisServer};

const PASSWORD: &str = "correct-horse-battery";
/// Longest wait for a visibility timeout to pass (a wait, not a timed assertion).
const PATIENCE: Duration = Duration::from_secs(20);
const VISIBILITY_MS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Check {
    account: String,
}

impl Job for Check {
    const KIND: &'static str = "redis-access-check";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bid {
    account: String,
    height: u64,
    profit: f64,
}

impl Job for Bid {
    const KIND: &'static str = "redis-access-bid";
}

impl PriorityJob for Bid {
    fn priority(&self) -> f64 {
        self.profit
    }

    fn dedup_key(&self) -> Option<DedupKey> {
        Some(DedupKey {
            key: self.account.clone(),
            generation: self.height,
        })
    }
}

fn check(n: u32) -> Check {
    Check {
        account: format!("osmo1check{n}"),
    }
}

fn bid(account: &str, height: u64, profit: f64) -> Bid {
    Bid {
        account: account.into(),
        height,
        profit,
    }
}

fn consumer(config: &QueueConfig, name: &str) -> QueueConfig {
    QueueConfig {
        queue_consumer: Some(name.to_owned()),
        queue_visibility_timeout_ms: VISIBILITY_MS,
        queue_block_ms: 100,
        ..config.clone()
    }
}

fn positions(address: &str, amount: u128) -> AccountPositions {
    let mut p = AccountPositions::new(address);
    p.collaterals.insert(
        "uatom".into(),
        Collateral {
            amount_scaled: Uint128::new(amount),
            enabled: true,
        },
    );
    p.debts.insert(
        "uusdc".into(),
        Debt {
            amount_scaled: Uint128::new(amount / 2),
            uncollateralized: false,
        },
    );
    p
}

/// Fetches (without waiting for new jobs) until a job becomes due, e.g. when a dead
/// consumer's visibility timeout has passed.
async fn fetch_when_due<Q: Queue>(queue: &Q) -> Vec<Delivery<Q::Job>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let got = queue.fetch(1, Duration::ZERO).await.unwrap();
        if !got.is_empty() {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no job became due within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream queue: enqueue (one and a batch), a blocking fetch woken by an enqueue, ack,
/// backlog, and a job of a consumer that never acks reclaimed by another one.
async fn exercise_stream_queue(config: &QueueConfig) {
    let a: RedisStreamQueue<Check> = RedisStreamQueue::connect(&consumer(config, "a"), "checks")
        .await
        .expect("stream queue connects");
    let b: RedisStreamQueue<Check> = RedisStreamQueue::connect(&consumer(config, "b"), "checks")
        .await
        .expect("second consumer connects");

    a.enqueue(&check(1)).await.unwrap();
    a.enqueue_batch(&[check(2), check(3)]).await.unwrap();
    let first = a.fetch(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].job, check(1));
    assert_eq!(a.ack_many(&first).await.unwrap(), 3);

    // A blocked fetch (its own connection) wakes up for a job enqueued meanwhile.
    let waiting = {
        let a = a.clone();
        tokio::spawn(async move { a.fetch(1, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.enqueue(&check(4)).await.unwrap();
    let woken = waiting.await.unwrap().unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].job, check(4));
    assert_eq!(woken[0].deliveries, 1);

    // `a` "dies" holding job 4: `b` reclaims it after the visibility timeout.
    let reclaimed = fetch_when_due(&b).await;
    assert_eq!(reclaimed[0].job, check(4));
    assert_eq!(reclaimed[0].deliveries, 2);
    assert!(b.ack(&reclaimed[0]).await.unwrap());
    assert!(
        !a.ack(&woken[0]).await.unwrap(),
        "the dead consumer's late ack finds nothing"
    );

    // Dead-lettering writes the dead-letter stream, then XACK + XDEL in one MULTI.
    b.enqueue(&check(5)).await.unwrap();
    let doomed = b.fetch(1, Duration::from_millis(100)).await.unwrap();
    b.dead_letter(&doomed[0], "cannot ever work").await.unwrap();
    let letters = b.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "cannot ever work");

    let backlog = b.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.lag, backlog.dead_letters),
        (0, 0, 1)
    );
}

/// The priority queue's scripts: push with dedup, claim, ack, retract, release, and an
/// expired claim requeued and taken by another consumer.
async fn exercise_priority_queue(config: &QueueConfig) {
    let a: PriorityQueue<Bid> = PriorityQueue::connect(&consumer(config, "a"), "bids")
        .await
        .expect("priority queue connects");
    let b: PriorityQueue<Bid> = PriorityQueue::connect(&consumer(config, "b"), "bids")
        .await
        .expect("second consumer connects");

    let pushed = a
        .push(&[bid("low", 1, 1.0), bid("top", 1, 50.0), bid("mid", 1, 10.0)])
        .await
        .unwrap();
    assert!(pushed.iter().all(|p| p.status.is_queued()), "{pushed:?}");
    // A newer block's job replaces the waiting one for the same account.
    a.push(&[bid("mid", 2, 20.0)]).await.unwrap();
    assert_eq!(a.lag().await.unwrap(), 3);
    assert_eq!(
        a.retract(&[DedupKey {
            key: "low".into(),
            generation: 3
        }])
        .await
        .unwrap(),
        1
    );

    let claimed = a.claim(10).await.unwrap();
    let order: Vec<(&str, u64)> = claimed
        .iter()
        .map(|d| (d.job.account.as_str(), d.job.height))
        .collect();
    assert_eq!(order, [("top", 1), ("mid", 2)]);
    assert!(a.ack(&claimed[0]).await.unwrap());
    a.release(&claimed[1]).await.unwrap();

    // `a` claims `mid` again and dies holding it; `b` gets it after the visibility timeout.
    let held = a.claim(1).await.unwrap();
    assert_eq!(held[0].deliveries, 2);
    let taken = fetch_when_due(&b).await;
    assert_eq!(taken[0].job, bid("mid", 2, 20.0));
    assert_eq!(taken[0].deliveries, 3);
    assert!(b.ack(&taken[0]).await.unwrap());
    assert_eq!(b.backlog().await.unwrap().pending, 0);
    assert_eq!(b.lag().await.unwrap(), 0);
}

/// The index: creation (`MULTI`), the denom script, a block update (`MULTI` over many
/// buckets), bulk reads (pipelines), and destroying it (`SCAN` on the right node).
async fn exercise_index(conn: RedisConn, namespace: IndexNamespace) {
    let index = PositionIndex::create_or_open(conn.clone(), namespace.clone(), 8)
        .await
        .expect("index created");
    let mut accounts = Vec::new();
    for i in 0..40u128 {
        let indexed = index
            .to_indexed(&positions(&format!("osmo1user{i:03}"), 1_000 + i))
            .await
            .unwrap();
        accounts.push(AccountChange::Put(indexed));
    }
    index
        .apply_block(&BlockUpdate {
            height: 7,
            accounts,
            ..BlockUpdate::default()
        })
        .await
        .unwrap();
    assert_eq!(index.last_indexed_height().await.unwrap(), Some(7));
    assert_eq!(index.account_count().await.unwrap(), 40);
    let read = index.read_buckets(0..8).await.unwrap();
    assert!(read.errors.is_empty(), "{:?}", read.errors);
    assert_eq!(read.accounts.len(), 40);

    let reopened = PositionIndex::open(conn.clone(), namespace.clone())
        .await
        .unwrap();
    let one = reopened.account("osmo1user005").await.unwrap().unwrap();
    assert_eq!(one.address, "osmo1user005");

    reopened.destroy().await.unwrap();
    assert!(matches!(
        PositionIndex::open(conn, namespace).await,
        Err(IndexError::NotCreated(_))
    ));
}

async fn exercise_everything(config: &QueueConfig, index_prefix: &str) {
    config.validate().expect("the config is valid");
    exercise_stream_queue(config).await;
    exercise_priority_queue(config).await;
    let conn = redis_conn::connect(config, ConnectOptions::default())
        .await
        .expect("connects");
    exercise_index(
        conn,
        IndexNamespace::new(index_prefix, "chain-1", ProtocolKind::RedBank),
    )
    .await;
}

/// Connecting with `config` fails; returns the error's text.
async fn connect_error(config: &QueueConfig) -> String {
    match RedisStreamQueue::<Check>::connect(config, "checks").await {
        Ok(_) => panic!("connecting with {config:?} should fail"),
        Err(error) => {
            assert!(matches!(error, QueueError::Connect { .. }), "{error:?}");
            error.to_string()
        }
    }
}

#[tokio::test]
async fn password_protected_redis() {
    let server = RedisServer::start_with(RedisOptions {
        password: Some(PASSWORD.into()),
        ..RedisOptions::default()
    })
    .unwrap();
    assert!(server.url().contains(PASSWORD));
    exercise_everything(&server.queue_config(), "redline").await;

    // A wrong password: the error says which Redis and why, without the password.
    let url = format!("redis://:not-the-password@127.0.0.1:{}", server.port());
    let text = connect_error(&QueueConfig::with_url(url)).await;
    assert!(
        text.contains(&format!("redis://:***@127.0.0.1:{}", server.port())),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(
        text.to_lowercase().contains("authentication failed"),
        "{text}"
    );
    // No password at all: the connection opens, the first command (connect's PING) is refused.
    let url = format!("redis://127.0.0.1:{}", server.port());
    let err = redis_conn::connect(
        &QueueConfig::with_url(url.clone()),
        ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.url, url);
    assert!(err.to_string().contains("NOAUTH"), "{err}");

    // The password from --redis-password-file, the URL free of secrets.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redis-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let mut config = QueueConfig::with_url(format!("redis://127.0.0.1:{}", server.port()));
    config.redis.redis_password_file = Some(file);
    config.validate().unwrap();
    let mut conn = redis_conn::connect(&config, ConnectOptions::default())
        .await
        .expect("the password file is used");
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn acl_user() {
    let server = RedisServer::start_with(RedisOptions {
        acl_user: Some(("redline".into(), PASSWORD.into())),
        ..RedisOptions::default()
    })
    .unwrap();
    assert!(server.url().starts_with("redis://redline:"));
    exercise_everything(&server.queue_config(), "redline").await;

    let mut conn = redis_conn::connect(&server.queue_config(), ConnectOptions::default())
        .await
        .unwrap();
    let who: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(who, "redline");

    // The default user is off: the password alone does not get in.
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port());
    let text = connect_error(&QueueConfig::with_url(url)).await;
    assert!(!text.contains(PASSWORD), "{text}");
    let url = format!("redis://redline:wrong@127.0.0.1:{}", server.port());
    let text = connect_error(&QueueConfig::with_url(url)).await;
    assert!(
        text.contains(&format!("redis://redline:***@127.0.0.1:{}", server.port())),
        "{text}"
    );
}

/// Checks that `config` speaks TLS and names the CA to verify the server by, runs
/// [`exercise_everything`] through it, and returns it without the CA: a client that trusts no
/// one.
async fn exercise_over_tls(config: &QueueConfig, prefix: &str) -> QueueConfig {
    assert!(
        config.redis.redis_url.starts_with("rediss://"),
        "{config:?}"
    );
    assert!(config.redis.redis_ca_cert.is_some());
    exercise_everything(config, prefix).await;
    let mut untrusting = config.clone();
    untrusting.redis.redis_ca_cert = None;
    untrusting
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    let server = RedisServer::start_with(RedisOptions {
        tls: true,
        password: Some(PASSWORD.into()),
        ..RedisOptions::default()
    })
    .unwrap();
    let config = server.queue_config();
    let untrusting = exercise_over_tls(&config, "redline").await;

    // Really TLS with verification: a client that does not trust the CA is turned away.
    let text = connect_error(&untrusting).await;
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        text.to_lowercase().contains("certificate") || text.contains("UnknownIssuer"),
        "{text}"
    );
    // Plain Redis protocol to the TLS port gets no answer a client can use.
    let plain = QueueConfig::with_url(config.redis.redis_url.replacen("rediss://", "redis://", 1));
    let mut plain = plain;
    plain.redis.redis_ca_cert = None;
    connect_error(&plain).await;
}

#[tokio::test]
async fn three_node_cluster() {
    let cluster = RedisCluster::start(
        3,
        RedisOptions {
            password: Some(PASSWORD.into()),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let config = cluster.queue_config("{redline-test}");
    exercise_everything(&config, "{redline-test}").await;

    // Leave some keys behind, then check that all of them sit on the one node that owns the
    // tag's slot: that is what keeps every script and MULTI within one slot.
    let q: PriorityQueue<Bid> = PriorityQueue::connect(&consumer(&config, "c"), "left")
        .await
        .unwrap();
    q.push(&[bid("x", 1, 1.0)]).await.unwrap();
    let s: RedisStreamQueue<Check> = RedisStreamQueue::connect(&consumer(&config, "c"), "left")
        .await
        .unwrap();
    s.enqueue(&check(9)).await.unwrap();
    let mut holding = Vec::new();
    for node in cluster.nodes() {
        let keys = node.cli(&["DBSIZE".into()]).unwrap();
        let keys: u64 = keys.trim().parse().unwrap();
        if keys > 0 {
            holding.push((node.port(), keys));
        }
    }
    assert_eq!(holding.len(), 1, "keys on several nodes: {holding:?}");
    let slot = key_hash_slot(b"{redline-test}:left");
    let owner = cluster.nodes()[0]
        .cli(&[
            "CLUSTER".into(),
            "KEYSLOT".into(),
            "{redline-test}:left".into(),
        ])
        .unwrap();
    assert_eq!(owner.trim(), slot.to_string());
}

/// ElastiCache's setup: cluster mode, TLS in transit (the cluster bus too) and an AUTH token.
#[tokio::test]
async fn tls_cluster_with_a_password() {
    let cluster = RedisCluster::start(
        3,
        RedisOptions {
            tls: true,
            password: Some(PASSWORD.into()),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let config = cluster.queue_config("{redline-tls}");
    let untrusting = exercise_over_tls(&config, "{redline-tls}").await;

    // The slot map hands out the TLS ports: a client that trusts no CA cannot get in.
    let err = redis_conn::connect(&untrusting, ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    assert!(err.url.contains(":***@"), "{err}");
}

#[tokio::test]
async fn cluster_needs_hash_tagged_prefixes() {
    let cluster = RedisCluster::start(3, RedisOptions::default()).unwrap();
    let untagged = cluster.queue_config("redline");
    let err = untagged.validate().unwrap_err();
    assert_eq!(err.flag, "--queue-prefix");
    assert!(matches!(
        RedisStreamQueue::<Check>::connect(&untagged, "checks").await,
        Err(QueueError::Config(_))
    ));

    let conn = redis_conn::connect(&cluster.queue_config("{t}"), ConnectOptions::default())
        .await
        .unwrap();
    assert!(conn.is_cluster());
    let err = PositionIndex::create_or_open(
        conn,
        IndexNamespace::new("redline", "chain-1", ProtocolKind::RedBank),
        4,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, IndexError::NoHashTag(_)), "{err}");
    assert!(err.to_string().contains("--index-prefix"), "{err}");
}
