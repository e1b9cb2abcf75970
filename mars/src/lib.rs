//! The Mars Protocol domain, with no I/O: types, the contracts' messages and queries, the health,
//! interest and liquidation math with the contracts' own integer rounding, params validation,
//! and the liquidation rule each deployment runs.

pub mod manifest;
pub mod math;
pub mod msg;
pub mod rule;
pub mod types;
pub mod value;
