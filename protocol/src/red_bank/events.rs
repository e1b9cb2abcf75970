//! Which accounts and markets a block's Red Bank transactions touched, from their wasm events.
//!
//! Every Red Bank execution emits one `wasm` event with `_contract_address` = the Red Bank and an
//! `action` attribute (`deposit`, `withdraw`, `borrow`, `repay`, `liquidate`,
//! `update_asset_collateral_status`, and owner actions). Accounts are named by `user`, `sender`,
//! `on_behalf_of`, `recipient` and `liquidator`: all of them are re-read (a liquidation's
//! recipient gains collateral; a depositor on behalf of someone else is re-read needlessly but
//! harmlessly). Only successful transactions count: a failed one changed nothing.

use std::collections::{BTreeMap, BTreeSet};

use redline_chain::{BlockResults, TxEvent};

/// Actions that change user positions.
pub const POSITION_ACTIONS: &[&str] = &[
    "deposit",
    "withdraw",
    "borrow",
    "repay",
    "liquidate",
    "update_asset_collateral_status",
];

/// Owner actions: markets change, no user position does.
pub const MARKET_ACTIONS: &[&str] = &[
    "init_asset",
    "update_asset",
    "update_config",
    "update_owner",
    "update_emergency_owner",
];

/// Attributes that name an account.
pub const ACCOUNT_ATTRIBUTES: &[&str] =
    &["user", "sender", "on_behalf_of", "recipient", "liquidator"];

/// What one block did to the Red Bank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTouches {
    /// Accounts to re-read.
    pub accounts: BTreeSet<String>,
    /// Red Bank events per action.
    pub actions: BTreeMap<String, u64>,
    /// `(tx hash, action)` of events whose action is not known; their accounts are still
    /// re-read.
    pub unknown: Vec<(String, String)>,
    pub red_bank_events: usize,
}

impl BlockTouches {
    /// Whether any Red Bank event happened (markets may have changed).
    pub fn touched_red_bank(&self) -> bool {
        self.red_bank_events > 0
    }
}

/// `deposit` from `deposit`, and from older prefixed names like `outposts/red-bank/deposit`.
fn action_name(raw: &str) -> &str {
    raw.rsplit('/').next().unwrap_or(raw)
}

fn is_red_bank_event(event: &TxEvent, red_bank: &str) -> bool {
    event.kind == "wasm" && event.attribute("_contract_address") == Some(red_bank)
}

/// Collects the Red Bank's touches from a block's transaction results.
pub fn touches(results: &BlockResults, red_bank: &str) -> BlockTouches {
    let mut touches = BlockTouches::default();
    for tx in results.txs.iter().filter(|tx| tx.is_success()) {
        for event in tx.events.iter().filter(|e| is_red_bank_event(e, red_bank)) {
            touches.red_bank_events += 1;
            let action = event.attribute("action").map(action_name).unwrap_or("");
            *touches.actions.entry(action.to_string()).or_default() += 1;
            if !POSITION_ACTIONS.contains(&action) && !MARKET_ACTIONS.contains(&action) {
                touches
                    .unknown
                    .push((tx.hash.to_string(), action.to_string()));
            }
            for (key, value) in &event.attributes {
                if ACCOUNT_ATTRIBUTES.contains(&key.as_str()) && !value.is_empty() {
                    touches.accounts.insert(value.clone());
                }
            }
        }
    }
    touches
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::Timestamp;
    use redline_chain::{tx_hash, TxOutcome};

    fn event(contract: &str, attrs: &[(&str, &str)]) -> TxEvent {
        let mut attributes = vec![("_contract_address".to_string(), contract.to_string())];
        attributes.extend(attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        TxEvent {
            kind: "wasm".into(),
            attributes,
        }
    }

    fn tx(code: u32, events: Vec<TxEvent>) -> TxOutcome {
        TxOutcome {
            hash: tx_hash(&[code as u8, events.len() as u8]),
            height: 5,
            code,
            codespace: String::new(),
            log: String::new(),
            gas_wanted: 0,
            gas_used: 0,
            events,
            endpoint: String::new(),
        }
    }

    #[test]
    fn collects_accounts_of_successful_red_bank_events_only() {
        let results = BlockResults {
            height: 5,
            time: Timestamp::from_seconds(1),
            txs: vec![
                tx(
                    0,
                    vec![
                        event(
                            "bank",
                            &[
                                ("action", "liquidate"),
                                ("user", "alice"),
                                ("liquidator", "liq"),
                                ("recipient", "rec"),
                            ],
                        ),
                        event("other", &[("action", "deposit"), ("sender", "mallory")]),
                        TxEvent {
                            kind: "transfer".into(),
                            attributes: vec![("recipient".into(), "bob".into())],
                        },
                    ],
                ),
                tx(
                    5,
                    vec![event("bank", &[("action", "borrow"), ("sender", "carol")])],
                ),
                tx(
                    0,
                    vec![event(
                        "bank",
                        &[
                            ("action", "outposts/red-bank/repay"),
                            ("on_behalf_of", "dave"),
                        ],
                    )],
                ),
                tx(
                    0,
                    vec![event("bank", &[("action", "flash_loan"), ("user", "erin")])],
                ),
            ],
        };
        let t = touches(&results, "bank");
        assert_eq!(
            t.accounts.into_iter().collect::<Vec<_>>(),
            vec!["alice", "dave", "erin", "liq", "rec"]
        );
        assert_eq!(t.red_bank_events, 3);
        assert_eq!(t.actions.get("repay"), Some(&1));
        assert_eq!(t.unknown.len(), 1);
        assert_eq!(t.unknown[0].1, "flash_loan");
    }
}
