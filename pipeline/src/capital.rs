//! What the liquidators lack: the record each liquidator wallet publishes after a step that met
//! candidates, and the sum the manager and its dashboard show.
//!
//! `<queue prefix>:liquidator:<chain id>:capital` is a Redis hash: field = wallet address,
//! value = JSON [`CapitalReport`].

use std::collections::BTreeMap;

use cosmwasm_std::Uint128;
use serde::{Deserialize, Serialize};

/// The hash of one chain's capital reports.
pub fn capital_key(queue_prefix: &str, chain_id: &str) -> String {
    format!("{queue_prefix}:liquidator:{chain_id}:capital")
}

/// What one wallet lacked in its latest step that met candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapitalReport {
    pub wallet: String,
    pub slot: u32,
    /// Block height of the step's snapshot.
    pub height: u64,
    /// Jobs set aside for want of funds in that step.
    pub waiting: u64,
    /// Denom → amount missing (what the best liquidations wanted minus what the wallet had),
    /// in base units, as text (amounts may exceed 64 bits).
    pub missing: BTreeMap<String, String>,
    pub updated_at_ms: u64,
}

/// Reports summed over wallets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapitalTotal {
    /// Wallets whose latest report lacked something.
    pub wallets: u64,
    /// Jobs those wallets set aside in their latest steps.
    pub waiting: u64,
    pub missing: BTreeMap<String, Uint128>,
}

impl CapitalTotal {
    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// `1234uusdc, 5uatom`, or `nothing`.
    pub fn missing_text(&self) -> String {
        if self.missing.is_empty() {
            return "nothing".into();
        }
        self.missing
            .iter()
            .map(|(denom, amount)| format!("{amount}{denom}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sums the reports updated within `max_age_ms` of `now_ms`.
pub fn total(reports: &[CapitalReport], now_ms: u64, max_age_ms: u64) -> CapitalTotal {
    let mut total = CapitalTotal::default();
    for report in reports
        .iter()
        .filter(|r| r.waiting > 0 && now_ms.saturating_sub(r.updated_at_ms) <= max_age_ms)
    {
        total.wallets += 1;
        total.waiting += report.waiting;
        for (denom, amount) in &report.missing {
            let amount = amount.parse::<u128>().map(Uint128::new).unwrap_or_default();
            let entry = total.missing.entry(denom.clone()).or_default();
            *entry = entry.saturating_add(amount);
        }
    }
    total
}

/// Reads and sums the fresh reports of the hash `key`; reports that do not decode are skipped.
pub async fn read_total(
    conn: &mut crate::redis_conn::RedisConn,
    key: &str,
    now_ms: u64,
    max_age_ms: u64,
) -> redis::RedisResult<CapitalTotal> {
    let raw: Vec<String> = redis::cmd("HVALS").arg(key).query_async(conn).await?;
    let reports: Vec<CapitalReport> = raw
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    Ok(total(&reports, now_ms, max_age_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(wallet: &str, waiting: u64, missing: &[(&str, &str)], at: u64) -> CapitalReport {
        CapitalReport {
            wallet: wallet.into(),
            waiting,
            missing: missing
                .iter()
                .map(|(d, a)| (d.to_string(), a.to_string()))
                .collect(),
            updated_at_ms: at,
            ..CapitalReport::default()
        }
    }

    #[test]
    fn totals_sum_fresh_reports_only() {
        let reports = [
            report("w1", 2, &[("uusdc", "1000")], 10_000),
            report("w2", 1, &[("uusdc", "500"), ("uatom", "7")], 9_000),
            report("w3", 4, &[("uusdc", "99")], 1_000),
            report("w4", 0, &[], 10_000),
        ];
        let sum = total(&reports, 11_000, 5_000);
        assert_eq!(sum.wallets, 2);
        assert_eq!(sum.waiting, 3);
        assert_eq!(sum.missing["uusdc"], Uint128::new(1_500));
        assert_eq!(sum.missing["uatom"], Uint128::new(7));
        assert_eq!(sum.missing_text(), "7uatom, 1500uusdc");
    }
}
