//! The liquidator's wallet balances, published for operators: to a Redis hash the manager's
//! dashboard reads, to the Prometheus gauge `redline_liquidator_wallet_balance{wallet,slot,denom}`
//! ([`crate::metrics::LiquidatorMetrics::wallet_balance`])
//! and to the `wallets` field of `/health`.
//!
//! Each wallet this process signs with (worker slots and, when it runs the top-ups, the master)
//! is read from the chain every `--balance-interval-ms`, and again right after a transaction of
//! its settles (a liquidation, a failed one that spent its fee, a top-up, a sweep), so the
//! figures shown follow the money without waiting for the next round.
//!
//! # Redis
//!
//! `<queue prefix>:liquidator:<chain id>:wallets` is a hash: field = wallet address, value =
//! JSON `{"address", "slot", "balances": {denom: "amount in base units"}, "height",
//! "updated_at_ms"}`. Entries stay when a worker stops (the wallet still holds its coins); the
//! timestamp tells how fresh each is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::GaugeVec;
use redline_chain::ChainClient;
use redline_pipeline::redis_conn::RedisConn;
use redline_service::metrics::HealthReport;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::record::unix_ms;

/// The hash of one chain's liquidator wallet balances.
pub fn wallets_key(queue_prefix: &str, chain_id: &str) -> String {
    format!("{queue_prefix}:liquidator:{chain_id}:wallets")
}

/// One wallet's balances as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletReport {
    pub address: String,
    /// HD slot (`m/44'/118'/0'/0/slot`); 0 is the master wallet.
    pub slot: u32,
    /// Denom → amount in base units (exact, as text: amounts may exceed 64 bits).
    pub balances: BTreeMap<String, String>,
    /// Latest block height when the balances were read.
    pub height: u64,
    pub updated_at_ms: u64,
}

/// Asks for a wallet's balances to be read again now (after one of its txs settled). Cheap to
/// clone; never waits.
#[derive(Debug, Clone, Default)]
pub struct BalanceTrigger {
    inner: Arc<TriggerInner>,
}

#[derive(Debug, Default)]
struct TriggerInner {
    dirty: Mutex<BTreeSet<String>>,
    notify: Notify,
}

impl BalanceTrigger {
    pub fn touch(&self, wallet: &str) {
        if let Ok(mut dirty) = self.inner.dirty.lock() {
            dirty.insert(wallet.to_string());
        }
        self.inner.notify.notify_one();
    }

    fn take(&self) -> BTreeSet<String> {
        self.inner
            .dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }
}

/// Reads and publishes the balances of the wallets registered with it.
pub struct BalanceBook<C> {
    client: C,
    redis: RedisConn,
    key: String,
    /// `liquidator_wallet_balance{wallet, slot, denom}` (see [`crate::metrics`]).
    gauge: GaugeVec,
    health: Option<HealthReport>,
    trigger: BalanceTrigger,
    /// Address → slot of the wallets this process signs with.
    wallets: Mutex<BTreeMap<String, u32>>,
    /// The last report of each wallet (for `/health`).
    reports: Mutex<BTreeMap<String, WalletReport>>,
}

impl<C: ChainClient + Clone + 'static> BalanceBook<C> {
    pub fn new(
        client: C,
        redis: RedisConn,
        key: String,
        gauge: GaugeVec,
        health: Option<HealthReport>,
    ) -> Self {
        BalanceBook {
            client,
            redis,
            key,
            gauge,
            health,
            trigger: BalanceTrigger::default(),
            wallets: Mutex::new(BTreeMap::new()),
            reports: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn trigger(&self) -> BalanceTrigger {
        self.trigger.clone()
    }

    /// Starts following `address` (slot `slot`): it is read at the next round, or now through
    /// the trigger.
    pub fn register(&self, slot: u32, address: &str) {
        if let Ok(mut wallets) = self.wallets.lock() {
            wallets.insert(address.to_string(), slot);
        }
        self.trigger.touch(address);
    }

    /// Reads one wallet's balances and publishes them everywhere.
    pub async fn refresh(&self, address: &str) -> anyhow::Result<WalletReport> {
        let slot = self
            .wallets
            .lock()
            .ok()
            .and_then(|w| w.get(address).copied())
            .unwrap_or_default();
        let height = self.client.latest_height().await.unwrap_or_default();
        let coins = self.client.balances(address).await?;
        let balances: BTreeMap<String, String> = coins
            .iter()
            .map(|c| (c.denom.clone(), c.amount.to_string()))
            .collect();
        let report = WalletReport {
            address: address.to_string(),
            slot,
            balances,
            height,
            updated_at_ms: unix_ms(std::time::SystemTime::now()),
        };
        // Denoms the wallet no longer holds drop to 0 rather than keep a stale figure.
        let previous = self
            .reports
            .lock()
            .ok()
            .and_then(|r| r.get(address).cloned());
        let slot_label = slot.to_string();
        if let Some(previous) = &previous {
            for denom in previous.balances.keys() {
                if !report.balances.contains_key(denom) {
                    self.gauge
                        .with_label_values(&[address, &slot_label, denom])
                        .set(0.0);
                }
            }
        }
        for (denom, amount) in &report.balances {
            self.gauge
                .with_label_values(&[address, &slot_label, denom])
                .set(amount.parse::<f64>().unwrap_or(f64::NAN));
        }
        let json = serde_json::to_string(&report)?;
        let mut redis = self.redis.clone();
        tokio::time::timeout(
            Duration::from_secs(5),
            redis::cmd("HSET")
                .arg(&self.key)
                .arg(address)
                .arg(json)
                .query_async::<i64>(&mut redis),
        )
        .await
        .map_err(|_| anyhow::anyhow!("HSET {}: no answer within 5 s", self.key))??;
        if let Ok(mut reports) = self.reports.lock() {
            reports.insert(address.to_string(), report.clone());
        }
        self.publish_health().await;
        Ok(report)
    }

    async fn publish_health(&self) {
        let Some(health) = &self.health else { return };
        let reports: Vec<WalletReport> = self
            .reports
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let mut health = health.write().await;
        health["wallets"] = serde_json::to_value(&reports).unwrap_or_default();
    }

    /// Reads every registered wallet every `interval`, and a wallet whose trigger fired at once,
    /// until `stop` resolves; then one last round, so what is published is the final state.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing: BTreeSet<String> = BTreeSet::new();
        loop {
            let due: BTreeSet<String> = tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => self.registered(),
                _ = self.trigger.inner.notify.notified() => self.trigger.take(),
            };
            self.refresh_all(&due, &mut failing).await;
        }
        let all = self.registered();
        self.refresh_all(&all, &mut failing).await;
    }

    fn registered(&self) -> BTreeSet<String> {
        self.wallets
            .lock()
            .map(|w| w.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn refresh_all(&self, wallets: &BTreeSet<String>, failing: &mut BTreeSet<String>) {
        for address in wallets {
            match self.refresh(address).await {
                Ok(_) => {
                    if failing.remove(address) {
                        tracing::info!(wallet = %address, "wallet balances published again");
                    }
                }
                Err(error) => {
                    // Once per failing spell: the next round retries anyway.
                    if failing.insert(address.clone()) {
                        tracing::warn!(wallet = %address, %error, "cannot read or publish the wallet's balances");
                    }
                }
            }
        }
    }
}

/// Every published wallet report under `key` (for the dashboard, tests and tools).
pub async fn read_wallets(
    redis: &mut RedisConn,
    key: &str,
) -> Result<Vec<WalletReport>, redis::RedisError> {
    let entries: BTreeMap<String, String> =
        redis::cmd("HGETALL").arg(key).query_async(redis).await?;
    Ok(entries
        .into_iter()
        .filter_map(|(address, json)| {
            serde_json::from_str(&json)
                .map_err(|e| tracing::warn!(%address, error = %e, "undecodable wallet report"))
                .ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_collects_wallets_once() {
        let trigger = BalanceTrigger::default();
        trigger.touch("osmo1a");
        trigger.touch("osmo1b");
        trigger.touch("osmo1a");
        assert_eq!(
            trigger.take().into_iter().collect::<Vec<_>>(),
            vec!["osmo1a".to_string(), "osmo1b".to_string()]
        );
        assert!(trigger.take().is_empty());
    }

    #[test]
    fn reports_round_trip() {
        let report = WalletReport {
            address: "osmo1w".into(),
            slot: 2,
            balances: BTreeMap::from([(
                "uusdc".into(),
                "340282366920938463463374607431768211455".into(),
            )]),
            height: 9,
            updated_at_ms: 1_700_000_000_000,
        };
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<WalletReport>(&json).unwrap(), report);
        assert_eq!(
            wallets_key("redline", "devnet-1"),
            "redline:liquidator:devnet-1:wallets"
        );
    }
}
