//! Shared code of the redline services: domain types, the Mars liquidation math, the chain
//! client, the Redis job queue, config and telemetry.

pub mod capital;
pub mod chain;
pub mod config;
pub mod index;
pub mod jobs;
pub mod manifest;
pub mod math;
pub mod metrics;
pub mod msg;
pub mod notify;
pub mod queue;
pub mod redis_conn;
pub mod service;
pub mod telemetry;
pub mod testkit;
pub mod types;
