//! Which credit accounts a block's transactions touched, from the credit manager's wasm events.
//!
//! Every credit-manager execution emits `wasm` events with `_contract_address` = the credit
//! manager; the accounts they change are named by `account_id` (the acting account, the
//! liquidator's in a liquidation), `liquidatee_account_id`, and a repay's
//! `benefactor_account_id` / `recipient_account_id`. Only successful transactions count.

use std::collections::BTreeSet;

use redline_chain::BlockResults;

/// Attributes that name a credit account.
pub const ACCOUNT_ATTRIBUTES: &[&str] = &[
    "account_id",
    "liquidatee_account_id",
    "benefactor_account_id",
    "recipient_account_id",
];

/// The ids of the credit accounts `results`' successful transactions touched.
pub fn touched_accounts(results: &BlockResults, credit_manager: &str) -> BTreeSet<u64> {
    let mut accounts = BTreeSet::new();
    for tx in results.txs.iter().filter(|tx| tx.is_success()) {
        let events = tx.events.iter().filter(|e| {
            e.kind == "wasm" && e.attribute("_contract_address") == Some(credit_manager)
        });
        for event in events {
            for (key, value) in &event.attributes {
                if ACCOUNT_ATTRIBUTES.contains(&key.as_str()) {
                    if let Ok(id) = value.parse() {
                        accounts.insert(id);
                    }
                }
            }
        }
    }
    accounts
}
