//! Account locks held across a long wait stay held: against a real `redis-server`.

use std::time::Duration;

use redline_liquidator::locks::{Leases, LockKeeper};
use redline_pipeline::redis_conn::{self, ConnectOptions};
use testkit::RedisServer;

/// A lock of 300 ms held by the keeper is still ours after a second (renewed every 100 ms),
/// and another holder cannot take it; once released to the keeper it expires on its own.
/// Without the keeper the same lock is gone after its ttl.
#[tokio::test]
async fn held_locks_outlive_their_ttl_until_released() {
    let server = RedisServer::start().unwrap();
    let redis = redis_conn::connect(&server.queue_config(), ConnectOptions::default())
        .await
        .unwrap();
    let ours = Leases::new(redis.clone(), "worker-a");
    let theirs = Leases::new(redis, "worker-b");
    let ttl = Duration::from_millis(300);
    let keeper = LockKeeper::start(ours.clone(), ttl);

    let kept = ours.try_acquire("lock:kept", ttl).await.unwrap().unwrap();
    keeper.hold(&kept);
    let unkept = ours.try_acquire("lock:unkept", ttl).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        ours.is_held(&kept.key).await.unwrap(),
        "the kept lock expired"
    );
    assert!(theirs.try_acquire(&kept.key, ttl).await.unwrap().is_none());
    assert!(
        !ours.is_held(&unkept.key).await.unwrap(),
        "{unkept:?} outlived its ttl"
    );

    keeper.release(&kept);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !ours.is_held(&kept.key).await.unwrap(),
        "renewed after release"
    );
}
