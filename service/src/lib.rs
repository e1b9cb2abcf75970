//! Scaffolding every redline service shares: chain and Redis flags, the metrics endpoint,
//! notifications, and the start-up that wires them.

pub mod config;
pub mod metrics;
pub mod notify;
pub mod service;
