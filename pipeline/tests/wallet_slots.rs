//! Wallet slots of a dead liquidator go back at once: against a real `redis-server`.

use redline_pipeline::redis_conn::{self, ConnectOptions, RedisConn};
use redline_pipeline::wallet_slots::{
    holders_key, liquidator_base, record_holder, release_dead_owner, slot_key,
};
use testkit::RedisServer;

async fn lease(redis: &RedisConn, key: &str, token: &str) {
    let set: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(600_000)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    assert_eq!(set.as_deref(), Some("OK"), "{key} was free");
}

async fn held(redis: &RedisConn, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis.clone())
        .await
        .unwrap()
}

/// Worker `host-12` leased slots 1 and 3, `host-123` slot 2 (its name starts with the dead
/// one's); slot 3 then expired and `host-7` leased it. When `host-12` dies, only slot 1 goes
/// back: slot 2 belongs to another worker whose name merely starts the same, slot 3 to a live
/// worker since.
#[tokio::test]
async fn only_the_dead_workers_own_slots_go_back() {
    let server = RedisServer::start().unwrap();
    let redis = redis_conn::connect(&server.queue_config(), ConnectOptions::default())
        .await
        .unwrap();
    let base = liquidator_base("redline", "devnet-1");
    assert_eq!(base, "redline:liquidator:devnet-1");
    assert_eq!(slot_key(&base, 3), "redline:liquidator:devnet-1:slot:3");
    assert_eq!(
        holders_key(&base),
        "redline:liquidator:devnet-1:slot-holders"
    );

    lease(&redis, &slot_key(&base, 1), "host-12:00000000000000aa").await;
    record_holder(&redis, &base, 1, "host-12").await.unwrap();
    lease(&redis, &slot_key(&base, 2), "host-123:00000000000000bb").await;
    record_holder(&redis, &base, 2, "host-123").await.unwrap();
    // Slot 3: leased by host-12, expired, leased again by host-7 before its own note.
    record_holder(&redis, &base, 3, "host-12").await.unwrap();
    lease(&redis, &slot_key(&base, 3), "host-7:00000000000000cc").await;

    assert_eq!(
        release_dead_owner(&redis, &base, "host-12").await.unwrap(),
        vec![1]
    );
    assert_eq!(held(&redis, &slot_key(&base, 1)).await, None);
    assert_eq!(
        held(&redis, &slot_key(&base, 2)).await.as_deref(),
        Some("host-123:00000000000000bb")
    );
    assert_eq!(
        held(&redis, &slot_key(&base, 3)).await.as_deref(),
        Some("host-7:00000000000000cc")
    );
    // A worker that held nothing, or whose slots are gone already: nothing happens.
    assert!(release_dead_owner(&redis, &base, "host-12")
        .await
        .unwrap()
        .is_empty());
    assert!(release_dead_owner(&redis, &base, "host-99")
        .await
        .unwrap()
        .is_empty());
}
