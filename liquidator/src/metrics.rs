//! Prometheus metrics of the liquidator (prefixed `redline_` by the service registry).
//!
//! Metrics are reports, not money: profits are exported as floats here, while every amount the
//! liquidator acts on stays in integer math.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

use mars::value::Value;

#[derive(Clone)]
pub struct LiquidatorMetrics {
    /// Attempts by outcome (`liquidated`, `simulation_failed`, ...).
    pub attempts: IntCounterVec,
    /// Jobs taken, by what became of them (`planned`, `stale`, `locked`, ...).
    pub jobs: IntCounterVec,
    /// Transactions sent, by result.
    pub txs: IntCounterVec,
    /// Recorded profit, in USD.
    pub profit_usd: prometheus::Counter,
    /// Recorded losses (failed txs' fees), in USD.
    pub loss_usd: prometheus::Counter,
    pub job_to_broadcast: Histogram,
    pub broadcast_to_inclusion: Histogram,
    /// Blocks from the candidate's height to inclusion.
    pub blocks_to_inclusion: Histogram,
    pub gas_used: Histogram,
    pub batch_size: Histogram,
    /// Debt coins refunded by the contract (sent beyond what it repaid): should stay 0.
    pub refunds: IntCounter,
    /// Stage latencies of one batch (`recheck`, `simulate`, `send`).
    pub stage_seconds: HistogramVec,
    pub workers: IntGauge,
    /// Positions kept read ahead (see [`crate::armed`]).
    pub armed: IntGauge,
    /// Balance of each wallet this process signs with, by `wallet` address, HD `slot` and
    /// `denom`, in base units (kept current by [`crate::balances::BalanceBook`]).
    pub wallet_balance: GaugeVec,
    /// Jobs each wallet set aside in its latest step for want of funds, by `wallet`.
    pub jobs_waiting_for_funds: IntGaugeVec,
    /// What each wallet lacked in its latest step, by `wallet` and `denom`, in base units.
    pub capital_missing: GaugeVec,
}

fn buckets_seconds() -> Vec<f64> {
    vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
}

impl LiquidatorMetrics {
    pub fn new() -> Self {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition")
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("static metric definition")
        };
        LiquidatorMetrics {
            attempts: counter_vec(
                "liquidator_attempts_total",
                "Liquidation attempts by outcome",
                &["outcome"],
            ),
            jobs: counter_vec(
                "liquidator_jobs_total",
                "Liquidation candidates taken from the queue, by what became of them",
                &["result"],
            ),
            txs: counter_vec(
                "liquidator_txs_total",
                "Transactions sent by the liquidator, by result",
                &["result"],
            ),
            profit_usd: prometheus::Counter::new(
                "liquidator_profit_usd_total",
                "Recorded liquidation profit after fees, in USD",
            )
            .expect("static metric definition"),
            loss_usd: prometheus::Counter::new(
                "liquidator_loss_usd_total",
                "Recorded losses (fees of failed or unprofitable txs), in USD",
            )
            .expect("static metric definition"),
            job_to_broadcast: histogram(
                "liquidator_job_to_broadcast_seconds",
                "From a candidate's enqueue to the broadcast of its liquidation",
                buckets_seconds(),
            ),
            broadcast_to_inclusion: histogram(
                "liquidator_broadcast_to_inclusion_seconds",
                "From broadcast to the tx seen in a block",
                buckets_seconds(),
            ),
            blocks_to_inclusion: histogram(
                "liquidator_blocks_to_inclusion",
                "Blocks from the height a candidate was found at to its liquidation's block",
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 20.0, 50.0],
            ),
            gas_used: histogram(
                "liquidator_tx_gas_used",
                "Gas used per liquidation tx",
                prometheus::exponential_buckets(50_000.0, 1.5, 12).expect("static buckets"),
            ),
            batch_size: histogram(
                "liquidator_batch_size",
                "Accounts liquidated per tx",
                vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0],
            ),
            refunds: IntCounter::new(
                "liquidator_refunds_total",
                "Liquidations where the contract refunded part of the debt sent",
            )
            .expect("static metric definition"),
            stage_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "liquidator_stage_seconds",
                    "Time spent per stage of a batch",
                )
                .buckets(buckets_seconds()),
                &["stage"],
            )
            .expect("static metric definition"),
            armed: IntGauge::new(
                "liquidator_armed_accounts",
                "Positions near liquidation this process keeps read ahead to queue as a block comes",
            )
            .expect("static metric definition"),
            workers: IntGauge::new("liquidator_workers", "Workers running in this process")
                .expect("static metric definition"),
            wallet_balance: GaugeVec::new(
                Opts::new(
                    "liquidator_wallet_balance",
                    "Balance of a liquidator wallet by address, HD slot and denom, in base units",
                ),
                &["wallet", "slot", "denom"],
            )
            .expect("static metric definition"),
            jobs_waiting_for_funds: IntGaugeVec::new(
                Opts::new(
                    "liquidator_jobs_waiting_for_funds",
                    "Liquidation jobs the wallet set aside in its latest step for want of funds",
                ),
                &["wallet"],
            )
            .expect("static metric definition"),
            capital_missing: GaugeVec::new(
                Opts::new(
                    "liquidator_capital_missing",
                    "Debt coin (or fee) the wallet lacked in its latest step, in base units",
                ),
                &["wallet", "denom"],
            )
            .expect("static metric definition"),
        }
    }

    /// Registers every metric; an already registered one (a second worker set in one process)
    /// is an error naming it.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.attempts.clone()))?;
        registry.register(Box::new(self.armed.clone()))?;
        registry.register(Box::new(self.jobs.clone()))?;
        registry.register(Box::new(self.txs.clone()))?;
        registry.register(Box::new(self.profit_usd.clone()))?;
        registry.register(Box::new(self.loss_usd.clone()))?;
        registry.register(Box::new(self.job_to_broadcast.clone()))?;
        registry.register(Box::new(self.broadcast_to_inclusion.clone()))?;
        registry.register(Box::new(self.blocks_to_inclusion.clone()))?;
        registry.register(Box::new(self.gas_used.clone()))?;
        registry.register(Box::new(self.batch_size.clone()))?;
        registry.register(Box::new(self.refunds.clone()))?;
        registry.register(Box::new(self.stage_seconds.clone()))?;
        registry.register(Box::new(self.workers.clone()))?;
        registry.register(Box::new(self.wallet_balance.clone()))?;
        registry.register(Box::new(self.jobs_waiting_for_funds.clone()))?;
        registry.register(Box::new(self.capital_missing.clone()))?;
        Ok(())
    }

    /// Times one stage of a step into `liquidator_stage_seconds` (observed when dropped, or
    /// at `observe_duration`).
    pub fn stage_timer(&self, stage: &str) -> prometheus::HistogramTimer {
        self.stage_seconds.with_label_values(&[stage]).start_timer()
    }

    pub fn job(&self, result: &str) {
        self.jobs.with_label_values(&[result]).inc();
    }

    pub fn attempt(&self, outcome: &str, profit_usd: Value) {
        self.attempts.with_label_values(&[outcome]).inc();
        let amount: f64 = profit_usd.to_string().parse().unwrap_or(0.0);
        if amount > 0.0 {
            self.profit_usd.inc_by(amount);
        } else if amount < 0.0 {
            self.loss_usd.inc_by(-amount);
        }
    }
}

impl Default for LiquidatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_counts() {
        let registry = Registry::new();
        let metrics = LiquidatorMetrics::new();
        metrics.register(&registry).unwrap();
        metrics.attempt("liquidated", "12.5".parse().unwrap());
        metrics.attempt("deliver_tx_failed", "-0.25".parse().unwrap());
        metrics.job("stale");
        metrics
            .wallet_balance
            .with_label_values(&["osmo1w", "1", "uusdc"])
            .set(2_500_000.0);
        let text = {
            use prometheus::Encoder;
            let mut buffer = Vec::new();
            prometheus::TextEncoder::new()
                .encode(&registry.gather(), &mut buffer)
                .unwrap();
            String::from_utf8(buffer).unwrap()
        };
        assert!(
            text.contains("liquidator_attempts_total{outcome=\"liquidated\"} 1"),
            "{text}"
        );
        assert!(text.contains("liquidator_profit_usd_total 12.5"), "{text}");
        assert!(text.contains("liquidator_loss_usd_total 0.25"), "{text}");
        assert!(
            text.contains(
                "liquidator_wallet_balance{denom=\"uusdc\",slot=\"1\",wallet=\"osmo1w\"} 2500000"
            ),
            "{text}"
        );
        assert!(LiquidatorMetrics::new().register(&registry).is_err());
    }
}
