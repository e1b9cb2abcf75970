//! Who holds which liquidator wallet slot, so that a worker known dead (its process or
//! container exited) gives its slots back at once instead of after the lease's ttl.
//!
//! | key                                        | type   | contents                          |
//! |--------------------------------------------|--------|-----------------------------------|
//! | `<queue prefix>:liquidator:<chain id>:slot:<n>`    | string | the lease token, `<owner>:<random>` |
//! | `<queue prefix>:liquidator:<chain id>:slot-holders` | hash   | slot → owner who last leased it   |
//!
//! The owner is the worker's queue consumer name (`<host>-<pid>`, or the container's name).
//! A replacement leases the first free slot, so it takes over the dead worker's wallet, which
//! the master has funded already. Releasing compares the token's owner first: a slot leased
//! again since by someone else stays theirs.

use redis::{RedisError, Script};

use crate::redis_conn::RedisConn;

/// Deletes the lease when its token is `<ARGV[1]>:…`.
const RELEASE_OWNED_BY_LUA: &str = r"
local token = redis.call('GET', KEYS[1])
if token and string.sub(token, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ':' then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// `<queue prefix>:liquidator:<chain id>`, the liquidators' key space.
pub fn liquidator_base(queue_prefix: &str, chain_id: &str) -> String {
    format!("{queue_prefix}:liquidator:{chain_id}")
}

/// The lease on wallet slot `slot` (wallet m/44'/118'/0'/0/slot) under `base`.
pub fn slot_key(base: &str, slot: u32) -> String {
    format!("{base}:slot:{slot}")
}

/// The hash of slot → the owner that last leased it, under `base`.
pub fn holders_key(base: &str) -> String {
    format!("{base}:slot-holders")
}

/// Notes that `owner` leased `slot`.
pub async fn record_holder(
    redis: &RedisConn,
    base: &str,
    slot: u32,
    owner: &str,
) -> Result<(), RedisError> {
    let mut redis = redis.clone();
    redis::cmd("HSET")
        .arg(holders_key(base))
        .arg(slot)
        .arg(owner)
        .query_async(&mut redis)
        .await
}

/// Releases every slot `owner` still holds; call it only once `owner` is known dead (its
/// process exited). The slots released.
pub async fn release_dead_owner(
    redis: &RedisConn,
    base: &str,
    owner: &str,
) -> Result<Vec<u32>, RedisError> {
    let mut redis = redis.clone();
    let holders: Vec<(u32, String)> = redis::cmd("HGETALL")
        .arg(holders_key(base))
        .query_async(&mut redis)
        .await?;
    let script = Script::new(RELEASE_OWNED_BY_LUA);
    let mut released = Vec::new();
    for (slot, holder) in holders {
        if holder != owner {
            continue;
        }
        let deleted: i64 = script
            .key(slot_key(base, slot))
            .arg(owner)
            .invoke_async(&mut redis)
            .await?;
        if deleted == 1 {
            released.push(slot);
        }
    }
    Ok(released)
}
