//! The redline collector: finds every account with debt in the Red Bank, keeps a position index
//! of them in Redis block by block, and cuts each block's health-check work into jobs.
//!
//! - [`discovery`]: full scan of the Red Bank (the protocol's `discover`) into the index;
//! - [`follow`]: per block, re-read the accounts its Red Bank events name, apply them atomically
//!   with the height, write the block snapshot and enqueue the jobs ([`enqueue`]);
//! - [`reconcile`]: periodic full scan compared with the index, drift reported and repaired;
//! - [`credit`]: when the chain runs a credit manager, its accounts with debt in the credit
//!   book, following the same blocks, with one health-check job per block.
//!
//! `src/main.rs` only wires flags and connections to [`Collector`].

pub mod credit;
pub mod discovery;
pub mod enqueue;
pub mod follow;
pub mod metrics;
pub mod reconcile;
pub mod service;

pub use service::{Collector, Config, Connections, PROTOCOL};
