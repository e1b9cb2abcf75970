//! One deployment per chain on one Redis: a queue prefix belongs to one chain.
//!
//! Every key of a deployment starts with its `--queue-prefix`; the job streams and queues do not
//! name the chain. Two deployments of different chains under one prefix would consume each
//! other's jobs (and a liquidator dead-letters a candidate of another chain), so each service
//! claims the prefix for its chain when it starts (`<prefix>:chain`, set once, never expired)
//! and refuses to start when another chain holds it.

use crate::redis_conn::RedisConn;

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "--queue-prefix `{prefix}` carries chain {held_by}'s queues on this Redis; give this \
         deployment (chain {chain}) a prefix of its own (--queue-prefix / QUEUE_PREFIX), e.g. \
         `{prefix}-{chain}`"
    )]
    TakenByAnotherChain {
        prefix: String,
        held_by: String,
        chain: String,
    },
    #[error("claiming --queue-prefix `{prefix}` for chain {chain}: {source}")]
    Redis {
        prefix: String,
        chain: String,
        source: redis::RedisError,
    },
}

/// The key that says which chain a prefix's keys belong to.
pub fn chain_key(prefix: &str) -> String {
    format!("{prefix}:chain")
}

/// Claims `prefix` for `chain_id` (or finds it already this chain's).
pub async fn claim_prefix(
    redis: &RedisConn,
    prefix: &str,
    chain_id: &str,
) -> Result<(), ClaimError> {
    let key = chain_key(prefix);
    let redis_error = |source| ClaimError::Redis {
        prefix: prefix.to_string(),
        chain: chain_id.to_string(),
        source,
    };
    let (_, held_by): (bool, String) = redis::pipe()
        .atomic()
        .cmd("SETNX")
        .arg(&key)
        .arg(chain_id)
        .cmd("GET")
        .arg(&key)
        .query_async(&mut redis.clone())
        .await
        .map_err(redis_error)?;
    if held_by == chain_id {
        return Ok(());
    }
    Err(ClaimError::TakenByAnotherChain {
        prefix: prefix.to_string(),
        held_by,
        chain: chain_id.to_string(),
    })
}
