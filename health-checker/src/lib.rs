//! redline health-checker: computes the health of every indexed account at every block and
//! queues the liquidatable ones, most profitable first.
//!
//! - [`compute`]: index entries + the block's snapshot → health, with the contract's math;
//! - [`profit`]: the most profitable liquidation of a liquidatable account;
//! - [`onchain`]: the baseline that asks the chain (`user_position`) instead;
//! - [`output`]: the liquidation priority queue and the near-liquidation set;
//! - [`worker`]: the job loop (queue → index → health → outputs → ack);
//! - [`metrics`]: Prometheus metrics.

pub mod compute;
pub mod metrics;
pub mod onchain;
pub mod output;
pub mod profit;
pub mod worker;

pub use compute::{AccountHealth, BlockContext, Skip, SkipReason};
pub use output::{OutputConfig, Outputs};
pub use profit::ProfitConfig;
pub use worker::{HealthChecker, HealthSource, JobOutcome, JobReport, OnchainSource, WorkerConfig};
