//! A queue prefix belongs to one chain on a Redis: against a real `redis-server`.

use redline_pipeline::deployment::{chain_key, claim_prefix, ClaimError};
use redline_pipeline::redis_conn::{self, ConnectOptions};
use testkit::RedisServer;

/// The first chain claims the prefix and may claim it again (a restart); another chain is
/// refused with the flag to change, and its own prefix is free.
#[tokio::test]
async fn a_queue_prefix_belongs_to_the_chain_that_claimed_it() {
    let server = RedisServer::start().unwrap();
    let config = server.queue_config();
    let redis = redis_conn::connect(&config, ConnectOptions::default())
        .await
        .unwrap();
    claim_prefix(&redis, "redline", "devnet-1").await.unwrap();
    claim_prefix(&redis, "redline", "devnet-1").await.unwrap();
    let refused = claim_prefix(&redis, "redline", "neutron-devnet-1")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClaimError::TakenByAnotherChain { held_by, .. } if held_by == "devnet-1"),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("--queue-prefix") && message.contains("QUEUE_PREFIX"),
        "{message}"
    );
    claim_prefix(&redis, "redline-neutron", "neutron-devnet-1")
        .await
        .unwrap();
    let held: String = redis::cmd("GET")
        .arg(chain_key("redline"))
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    assert_eq!(held, "devnet-1");
}
