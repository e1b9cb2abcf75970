//! A liquidator known dead (its process or container exited) gives its wallet slots back at
//! once, so that its replacement signs with the same wallet (funded already) instead of waiting
//! for the lease's ttl or for the master to fund another slot. The liquidators note which slot
//! each of them leased ([`redline_pipeline::wallet_slots`]); a slot leased again since by a
//! live worker stays theirs.

use std::time::Duration;

use redline_pipeline::redis_conn::RedisConn;
use redline_pipeline::wallet_slots;
use tracing::{info, warn};

/// How long the manager waits for Redis before leaving the slots to their leases' ttl.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Frees the wallet slots of exited liquidators of one deployment and chain.
#[derive(Clone)]
pub struct WalletHandoff {
    redis: RedisConn,
    base: String,
}

impl std::fmt::Debug for WalletHandoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletHandoff")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl WalletHandoff {
    pub fn new(redis: RedisConn, queue_prefix: &str, chain_id: &str) -> Self {
        WalletHandoff {
            redis,
            base: wallet_slots::liquidator_base(queue_prefix, chain_id),
        }
    }

    /// The liquidator whose queue consumer name is `worker` has exited: frees the slots it
    /// still holds. Call it only once the exit is certain (the process is reaped, the container
    /// stopped). Whether Redis answered (a `false` leaves the slots to their leases' ttl).
    pub async fn worker_exited(&self, worker: &str) -> bool {
        let released = tokio::time::timeout(
            REDIS_TIMEOUT,
            wallet_slots::release_dead_owner(&self.redis, &self.base, worker),
        )
        .await;
        match released {
            Ok(Ok(slots)) if slots.is_empty() => true,
            Ok(Ok(slots)) => {
                info!(
                    worker,
                    ?slots,
                    "exited liquidator's wallet slots freed for its replacement"
                );
                true
            }
            Ok(Err(error)) => {
                warn!(worker, %error, "cannot free the exited liquidator's wallet slots; they free when their leases expire");
                false
            }
            Err(_) => {
                warn!(worker, "Redis did not answer in time to free the exited liquidator's wallet slots; they free when their leases expire");
                false
            }
        }
    }
}
