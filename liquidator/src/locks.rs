//! Leases in Redis: per-account liquidation locks and worker wallet slots share one mechanism.
//!
//! A lease is `SET key token NX PX ttl`: only one holder at a time, and a holder that dies
//! loses it after `ttl` without anyone cleaning up. Renewal and release compare the token first
//! (a Lua script), so a holder whose lease expired and was taken by someone else can never
//! extend or delete the new holder's lease.

use std::time::Duration;

use redis::Script;
use redline_pipeline::redis_conn::RedisConn;
use redline_pipeline::wallet_slots;

const RENEW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// How long a Redis command may take before the lease operation counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("redis {operation} on `{key}`: {source}")]
    Redis {
        operation: &'static str,
        key: String,
        source: redis::RedisError,
    },
    #[error("redis {operation} on `{key}`: no answer within {COMMAND_TIMEOUT:?}")]
    Timeout {
        operation: &'static str,
        key: String,
    },
}

/// A held lease. Dropping it does not release it (that needs Redis): call
/// [`Leases::release`]; otherwise it expires after its ttl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub token: String,
    pub ttl: Duration,
}

/// Takes, renews and releases leases on one Redis.
#[derive(Clone)]
pub struct Leases {
    redis: RedisConn,
    /// Identifies this holder in every token (`<owner>:<random>`), for debugging who holds what.
    owner: String,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

async fn timed<T>(
    operation: &'static str,
    key: &str,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LeaseError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(LeaseError::Redis {
            operation,
            key: key.to_string(),
            source,
        }),
        Err(_) => Err(LeaseError::Timeout {
            operation,
            key: key.to_string(),
        }),
    }
}

impl Leases {
    pub fn new(redis: RedisConn, owner: impl Into<String>) -> Self {
        Leases {
            redis,
            owner: owner.into(),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes `key` for `ttl` if nobody holds it.
    pub async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, LeaseError> {
        let token = format!("{}:{:016x}", self.owner, rand::random::<u64>());
        let taken = self.set_if_free(key, &token, ttl).await?;
        Ok(taken.then(|| Lease {
            key: key.to_string(),
            token,
            ttl,
        }))
    }

    /// Takes a lost lease back with its own token if nobody holds the key now (it expired, or
    /// Redis lost it in a restart); `false` while someone else holds it.
    pub async fn retake(&self, lease: &Lease) -> Result<bool, LeaseError> {
        self.set_if_free(&lease.key, &lease.token, lease.ttl).await
    }

    /// Sets `key` to `token` for `ttl` unless the key exists; whether it was set.
    async fn set_if_free(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let answer: Option<String> = timed(
            "SET NX",
            key,
            redis::cmd("SET")
                .arg(key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async(&mut redis),
        )
        .await?;
        Ok(answer.is_some())
    }

    /// Restarts the lease's ttl; `false` when it is no longer ours (expired, taken over).
    pub async fn renew(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let ttl_ms = lease.ttl.as_millis().max(1) as u64;
        self.run_if_ours("renew", RENEW_LUA, lease, Some(ttl_ms))
            .await
    }

    /// Gives the lease up; `false` when it was no longer ours.
    pub async fn release(&self, lease: &Lease) -> Result<bool, LeaseError> {
        self.run_if_ours("release", RELEASE_LUA, lease, None).await
    }

    /// Runs `lua` (one of the scripts that act only while the key still holds the lease's
    /// token) on the lease's key with its token and `ttl_ms`; whether it acted.
    async fn run_if_ours(
        &self,
        operation: &'static str,
        lua: &str,
        lease: &Lease,
        ttl_ms: Option<u64>,
    ) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(lua);
        let mut invocation = script.key(&lease.key);
        invocation.arg(&lease.token);
        if let Some(ttl_ms) = ttl_ms {
            invocation.arg(ttl_ms);
        }
        let acted: i64 = timed(operation, &lease.key, invocation.invoke_async(&mut redis)).await?;
        Ok(acted == 1)
    }

    /// Notes this holder as the one that leased wallet slot `slot`, so that the manager can
    /// free the slot at once should this process die.
    pub async fn record_slot_holder(&self, keys: &KeySpace, slot: u32) -> Result<(), LeaseError> {
        let key = wallet_slots::holders_key(keys.base());
        timed(
            "HSET",
            &key,
            wallet_slots::record_holder(&self.redis, keys.base(), slot, &self.owner),
        )
        .await
    }

    /// Whether anyone holds `key`.
    pub async fn is_held(&self, key: &str) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let exists: i64 = timed(
            "EXISTS",
            key,
            redis::cmd("EXISTS").arg(key).query_async(&mut redis),
        )
        .await?;
        Ok(exists == 1)
    }
}

/// The locks a worker holds, renewed in the background every third of their ttl for as long as
/// they are held. A batch planned at the start of a step may wait many blocks for room before
/// its tx goes out (full blocks, a small in-flight window); without renewal its accounts' locks
/// would expire meanwhile, and another worker could liquidate the same account in the same
/// block. A lock found taken over (it expired while Redis was unreachable) is dropped from the
/// set; its tx's failure, if it comes to that, is recorded as any other.
#[derive(Clone)]
pub struct LockKeeper {
    held: HeldLocks,
    renewal: std::sync::Arc<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for LockKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockKeeper")
            .field("held", &self.held().len())
            .finish_non_exhaustive()
    }
}

impl LockKeeper {
    /// Starts renewing, every third of `ttl`, what [`LockKeeper::hold`] is given.
    pub fn start(leases: Leases, ttl: Duration) -> Self {
        let held = HeldLocks::default();
        let renewing = held.clone();
        let task = tokio::spawn(async move {
            let period = (ttl / 3).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(period).await;
                let leases_now: Vec<Lease> = lock_held(&renewing).values().cloned().collect();
                for lease in leases_now {
                    match leases.renew(&lease).await {
                        Ok(true) => {}
                        // A lease released since this round's list was taken is no
                        // longer held: an expected race, quiet.
                        Ok(false) => {
                            if forget(&renewing, &lease) {
                                tracing::warn!(key = %lease.key, "an account lock expired while held; no longer renewed");
                            }
                        }
                        Err(error) => {
                            tracing::debug!(key = %lease.key, %error, "renewing a lock failed; retrying")
                        }
                    }
                }
            }
        });
        LockKeeper {
            held,
            renewal: std::sync::Arc::new(task.abort_handle()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Lease>> {
        lock_held(&self.held)
    }

    /// Keeps `lease` renewed until [`LockKeeper::release`].
    pub fn hold(&self, lease: &Lease) {
        self.held().insert(lease.key.clone(), lease.clone());
    }

    /// Stops renewing `lease` (before it is released).
    pub fn release(&self, lease: &Lease) {
        forget(&self.held, lease);
    }
}

impl Drop for LockKeeper {
    fn drop(&mut self) {
        // The last clone stops the renewals.
        if std::sync::Arc::strong_count(&self.renewal) == 1 {
            self.renewal.abort();
        }
    }
}

/// The locks a [`LockKeeper`] renews, by key.
type HeldLocks = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Lease>>>;

fn lock_held(
    held: &HeldLocks,
) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Lease>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops `lease` from the renewed set, unless its key is held again under another token.
/// Stops keeping `lease` if it is still held with its token; whether it was.
fn forget(held: &HeldLocks, lease: &Lease) -> bool {
    let mut held = lock_held(held);
    let still_held = held.get(&lease.key).is_some_and(|h| h.token == lease.token);
    if still_held {
        held.remove(&lease.key);
    }
    still_held
}

/// The swap-pool locks for swaps outside a credit-account liquidation (the rebalancer's): with
/// them, none of redline's txs swaps through a pool another of its txs swaps through in the
/// same block, so each is included on the pool it was simulated on.
#[derive(Debug, Clone)]
pub struct SwapPoolLocks {
    leases: Leases,
    keys: KeySpace,
    ttl: Duration,
}

impl SwapPoolLocks {
    /// `ttl` bounds how long a lock outlives a holder that died with it.
    pub fn new(leases: Leases, keys: KeySpace, ttl: Duration) -> Self {
        SwapPoolLocks { leases, keys, ttl }
    }

    /// The lock of the pool of `denoms`; `None` while another tx of redline's uses it.
    pub async fn try_lock(&self, denoms: (&str, &str)) -> Result<Option<Lease>, LeaseError> {
        let key = self.keys.swap_pool_lock(denoms);
        self.leases.try_acquire(&key, self.ttl).await
    }

    /// Gives the locks up (once their tx is in a block, or was never sent).
    pub async fn unlock(&self, locks: Vec<Lease>) {
        for lock in locks {
            if let Err(error) = self.leases.release(&lock).await {
                tracing::debug!(pool = %lock.key, %error, "releasing a swap pool's lock failed; it expires");
            }
        }
    }
}

/// Key names under one deployment prefix and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    base: String,
}

impl KeySpace {
    /// `<queue prefix>:liquidator:<chain id>`.
    pub fn new(queue_prefix: &str, chain_id: &str) -> Self {
        KeySpace {
            base: wallet_slots::liquidator_base(queue_prefix, chain_id),
        }
    }

    /// `<queue prefix>:liquidator:<chain id>`, the prefix of every key here.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The lock that keeps two workers from liquidating one account in one block.
    pub fn account_lock(&self, protocol: &str, account: &str) -> String {
        format!("{}:lock:{protocol}:{account}", self.base)
    }

    /// The lock that keeps two workers' credit-account txs from swapping through the pool of
    /// `denoms` in one block: each is simulated without the other's swaps, and together they
    /// could move the price past the `min_receive` of both.
    pub fn swap_pool_lock(&self, denoms: (&str, &str)) -> String {
        let (a, b) = if denoms.0 <= denoms.1 {
            denoms
        } else {
            (denoms.1, denoms.0)
        };
        format!("{}:lock:pool:{a}:{b}", self.base)
    }

    /// The lease on worker wallet slot `slot` (wallet m/44'/118'/0'/0/slot).
    pub fn wallet_slot(&self, slot: u32) -> String {
        wallet_slots::slot_key(&self.base, slot)
    }

    /// The stream every attempt is recorded to.
    pub fn attempts_stream(&self, name: &str) -> String {
        format!("{}:{name}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        let keys = KeySpace::new("redline", "devnet-1");
        assert_eq!(
            keys.account_lock("red_bank", "osmo1a"),
            "redline:liquidator:devnet-1:lock:red_bank:osmo1a"
        );
        assert_eq!(keys.wallet_slot(3), "redline:liquidator:devnet-1:slot:3");
        assert_eq!(
            keys.attempts_stream("attempts"),
            "redline:liquidator:devnet-1:attempts"
        );
        // A pool is one lock whichever way the swap goes.
        let pool = "redline:liquidator:devnet-1:lock:pool:uatom:uusdc";
        assert_eq!(keys.swap_pool_lock(("uatom", "uusdc")), pool);
        assert_eq!(keys.swap_pool_lock(("uusdc", "uatom")), pool);
    }
}
