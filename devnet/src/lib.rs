//! The devnet: Mars Red Bank, oracle, params and a swap pool run in cw-multi-test, behind a
//! CometBFT-compatible JSON-RPC server, producing blocks on an interval.

pub mod chain;
pub mod competitor;
pub mod contracts;
pub mod flavor;
pub mod rpc;
pub mod scenario;
