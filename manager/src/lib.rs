//! The manager: follows blocks, checks each block's work is done within the block, measures the
//! backlog and scales the health-checker and liquidator workers through a [`scaler::Scaler`].

pub mod app;
pub mod autoscale;
pub mod config;
pub mod control;
pub mod dashboard;
pub mod handoff;
pub mod ledger;
pub mod metrics;
pub mod scaler;
pub mod sim;
pub mod watch;
pub mod watermark;
