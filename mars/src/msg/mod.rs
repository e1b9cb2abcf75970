//! The JSON messages of the contracts redline talks to: Mars's Red Bank, oracle, params and
//! address provider, and Rover's credit manager, health contract and account NFT (exact Mars
//! shapes, so the services speak to a devnet and a real chain alike), and the devnet's own swap
//! pool.
//!
//! Optional fields are omitted when `None` and accepted either absent or `null` (as Mars's
//! clients send them). Messages a contract receives reject unknown fields, as `cw_serde` does.

pub mod account_nft;
pub mod address_provider;
pub mod credit_manager;
pub mod health;
pub mod oracle;
pub mod params;
pub mod red_bank;
pub mod swapper;
