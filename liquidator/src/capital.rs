//! Capital the liquidator lacks: liquidations waiting for funds.
//!
//! A wallet short of the debt coin (or of fees) is a normal state, not a failure: the job waits
//! in the queue's parked set (see [`redline_pipeline::queue::Parking`]) and is woken when the
//! wallet's funds change (a top-up, a rebalancing swap, a landed liquidation). What each wallet
//! lacks is published for operators:
//!
//! - `<queue prefix>:liquidator:<chain id>:capital`, a Redis hash: field = wallet address,
//!   value = JSON [`CapitalReport`] of the wallet's latest step that met candidates (the
//!   manager sums the fresh ones into one line per block and a dashboard panel);
//! - the gauges `redline_liquidator_jobs_waiting_for_funds{wallet}` and
//!   `redline_liquidator_capital_missing{wallet,denom}` (base units).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use cosmwasm_std::Uint128;
use prometheus::{GaugeVec, IntGaugeVec};
use redline_pipeline::redis_conn::RedisConn;

use crate::metrics::LiquidatorMetrics;
use crate::record::unix_ms;

pub use redline_pipeline::capital::{capital_key, CapitalReport};

/// One step's shortfalls, summed per denom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shortages {
    pub waiting: u64,
    pub missing: BTreeMap<String, Uint128>,
}

impl Shortages {
    /// One job set aside for want of `needs` (`(denom, amount missing)`).
    pub fn note(&mut self, needs: &[(String, u128)]) {
        self.waiting += 1;
        for (denom, amount) in needs {
            let entry = self.missing.entry(denom.clone()).or_default();
            *entry = entry.saturating_add(Uint128::new(*amount));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    pub fn report(&self, wallet: &str, slot: u32, height: u64) -> CapitalReport {
        CapitalReport {
            wallet: wallet.to_string(),
            slot,
            height,
            waiting: self.waiting,
            missing: self
                .missing
                .iter()
                .map(|(d, a)| (d.clone(), a.to_string()))
                .collect(),
            updated_at_ms: unix_ms(std::time::SystemTime::now()),
        }
    }
}

/// Publishes the capital reports of this process's wallets.
#[derive(Clone)]
pub struct CapitalBoard {
    redis: Option<RedisConn>,
    key: String,
    waiting: IntGaugeVec,
    missing: GaugeVec,
    /// Denoms each wallet last reported missing, to zero the gauges of those it no longer does.
    reported: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
}

impl std::fmt::Debug for CapitalBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapitalBoard")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CapitalBoard {
    /// Publishes to `key` on `redis` (when given) and to the capital gauges of `metrics`.
    pub fn new(redis: Option<RedisConn>, key: String, metrics: &LiquidatorMetrics) -> Self {
        CapitalBoard {
            redis,
            key,
            waiting: metrics.jobs_waiting_for_funds.clone(),
            missing: metrics.capital_missing.clone(),
            reported: Arc::default(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Publishes `report` (a wallet's latest step); failures are logged, never fatal.
    pub async fn publish(&self, report: &CapitalReport) {
        self.waiting
            .with_label_values(&[report.wallet.as_str()])
            .set(i64::try_from(report.waiting).unwrap_or(i64::MAX));
        {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            let denoms = reported.entry(report.wallet.clone()).or_default();
            for gone in denoms.iter().filter(|d| !report.missing.contains_key(*d)) {
                self.missing
                    .with_label_values(&[report.wallet.as_str(), gone.as_str()])
                    .set(0.0);
            }
            *denoms = report.missing.keys().cloned().collect();
        }
        for (denom, amount) in &report.missing {
            self.missing
                .with_label_values(&[report.wallet.as_str(), denom.as_str()])
                .set(amount.parse::<f64>().unwrap_or(0.0));
        }
        let Some(redis) = &self.redis else { return };
        let Ok(json) = serde_json::to_string(report) else {
            return;
        };
        let result: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(&self.key)
            .arg(&report.wallet)
            .arg(json)
            .query_async(&mut redis.clone())
            .await;
        if let Err(error) = result {
            tracing::debug!(%error, key = %self.key, "cannot publish the capital report");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortages_sum_what_is_missing_per_denom() {
        let mut step = Shortages::default();
        step.note(&[("uusdc".into(), 1_000), ("uatom".into(), 50)]);
        step.note(&[("uusdc".into(), 500)]);
        step.note(&[("uosmo".into(), 7)]);
        assert_eq!(step.waiting, 3);
        assert_eq!(step.missing["uusdc"], Uint128::new(1_500));
        assert_eq!(step.missing["uatom"], Uint128::new(50));
        assert_eq!(step.missing["uosmo"], Uint128::new(7));
    }
}
