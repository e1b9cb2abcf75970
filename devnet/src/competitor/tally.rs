//! Who won each contested liquidation, read from the committed blocks alone: every tx sending
//! `liquidate` to the Red Bank, its signer, the users it names and whether it succeeded.

use std::collections::{BTreeMap, BTreeSet};

use mars::msg::red_bank::ExecuteMsg;

use crate::chain::tx::{self, TxMsg};
use crate::chain::BlockStore;

/// One included tx with Red Bank liquidations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidationTx {
    pub height: u64,
    /// Position in its block.
    pub index: usize,
    /// The fee payer.
    pub signer: String,
    /// The users its `liquidate` messages name, in message order.
    pub users: Vec<String>,
    pub succeeded: bool,
    /// The failure's log (empty when it succeeded).
    pub log: String,
}

/// Every included tx liquidating on `red_bank` at heights `from..=to` still in the store, in
/// block order.
pub fn liquidation_txs(
    store: &BlockStore,
    red_bank: &str,
    from: u64,
    to: u64,
) -> Vec<LiquidationTx> {
    let mut found = Vec::new();
    for height in from..=to {
        let Some(block) = store.get(height) else {
            continue;
        };
        for (index, (bytes, result)) in block.block.data.iter().zip(&block.tx_results).enumerate() {
            let Ok(decoded) = tx::decode(bytes) else {
                continue;
            };
            let users: Vec<String> = decoded
                .msgs
                .iter()
                .filter_map(|msg| match msg {
                    TxMsg::Execute { contract, msg, .. } if contract == red_bank => {
                        match serde_json::from_slice(msg) {
                            Ok(ExecuteMsg::Liquidate { user, .. }) => Some(user),
                            _ => None,
                        }
                    }
                    _ => None,
                })
                .collect();
            if users.is_empty() {
                continue;
            }
            found.push(LiquidationTx {
                height,
                index,
                signer: decoded.fee_payer,
                users,
                succeeded: result.code.is_ok(),
                log: result.log.clone(),
            });
        }
    }
    found
}

/// The race between one wallet (the competitor) and everyone else (redline) over each user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contest {
    /// Users whose first successful liquidation was not the competitor's.
    pub won_by_others: BTreeSet<String>,
    /// Users whose first successful liquidation was the competitor's.
    pub won_by_competitor: BTreeSet<String>,
    /// Users both sides sent an included liquidation for.
    pub contested: BTreeSet<String>,
    /// The height of the competitor's first successful liquidation of each user it liquidated.
    pub competitor_first: BTreeMap<String, u64>,
    /// Failed txs of the others that named a user the competitor had liquidated earlier (an
    /// earlier block, or earlier in the same block), first or not: the account changed under
    /// their plan. As `(height, signer, log)`.
    pub others_lost_to_competitor: Vec<(u64, String, String)>,
    /// The others' other failed txs: not explained by the competitor.
    pub others_failed_otherwise: Vec<(u64, String, String)>,
}

impl Contest {
    /// Tallies `txs` (in block order) for the `competitor` wallet.
    pub fn of(txs: &[LiquidationTx], competitor: &str) -> Contest {
        let mut contest = Contest::default();
        let mut attempted: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
        let mut taken_by_competitor: BTreeSet<&str> = BTreeSet::new();
        let mut won: BTreeSet<&str> = BTreeSet::new();
        for tx in txs {
            let ours = tx.signer == competitor;
            for user in &tx.users {
                let sides = attempted.entry(user).or_default();
                if ours {
                    sides.0 = true;
                } else {
                    sides.1 = true;
                }
            }
            if tx.succeeded {
                for user in &tx.users {
                    if ours {
                        taken_by_competitor.insert(user);
                        contest
                            .competitor_first
                            .entry(user.clone())
                            .or_insert(tx.height);
                    }
                    if won.insert(user) {
                        if ours {
                            contest.won_by_competitor.insert(user.clone());
                        } else {
                            contest.won_by_others.insert(user.clone());
                        }
                    }
                }
            } else if !ours {
                let entry = (tx.height, tx.signer.clone(), tx.log.clone());
                if tx
                    .users
                    .iter()
                    .any(|u| taken_by_competitor.contains(u.as_str()))
                {
                    contest.others_lost_to_competitor.push(entry);
                } else {
                    contest.others_failed_otherwise.push(entry);
                }
            }
        }
        contest.contested = attempted
            .into_iter()
            .filter(|(_, (competitor, others))| *competitor && *others)
            .map(|(user, _)| user.to_string())
            .collect();
        contest
    }

    /// Whether the competitor had liquidated `user` at or before `height`.
    pub fn competitor_liquidated_by(&self, user: &str, height: u64) -> bool {
        self.competitor_first
            .get(user)
            .is_some_and(|h| *h <= height)
    }

    /// Contested users the others won.
    pub fn contested_won_by_others(&self) -> usize {
        self.contested
            .iter()
            .filter(|u| self.won_by_others.contains(*u))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(
        height: u64,
        index: usize,
        signer: &str,
        users: &[&str],
        succeeded: bool,
    ) -> LiquidationTx {
        LiquidationTx {
            height,
            index,
            signer: signer.into(),
            users: users.iter().map(|u| u.to_string()).collect(),
            succeeded,
            log: if succeeded {
                String::new()
            } else {
                "cannot liquidate healthy position".into()
            },
        }
    }

    #[test]
    fn the_first_success_wins_and_a_failure_after_the_competitors_win_is_a_race_lost() {
        let txs = [
            // Block 10: the competitor takes a first; redline takes b in the same block.
            tx(10, 0, "them", &["a"], true),
            tx(10, 1, "us", &["a", "c"], false),
            tx(10, 2, "us", &["b"], true),
            // Block 11: the competitor comes too late for b; redline fails d on its own.
            tx(11, 0, "them", &["b"], false),
            tx(11, 1, "us", &["d"], false),
            tx(12, 0, "us", &["c", "d"], true),
            // The competitor liquidates c again after redline won it; redline's next try fails.
            tx(13, 0, "them", &["c"], true),
            tx(14, 0, "us", &["c"], false),
        ];
        let contest = Contest::of(&txs, "them");
        assert_eq!(contest.won_by_competitor, BTreeSet::from(["a".to_string()]));
        assert_eq!(
            contest.won_by_others,
            BTreeSet::from(["b".to_string(), "c".to_string(), "d".to_string()])
        );
        assert_eq!(
            contest.contested,
            BTreeSet::from(["a".to_string(), "b".to_string(), "c".to_string()])
        );
        assert_eq!(contest.contested_won_by_others(), 2);
        let lost: Vec<u64> = contest
            .others_lost_to_competitor
            .iter()
            .map(|l| l.0)
            .collect();
        assert_eq!(lost, vec![10, 14]);
        assert_eq!(contest.others_failed_otherwise.len(), 1);
        assert_eq!(contest.others_failed_otherwise[0].0, 11);
        assert!(contest.competitor_liquidated_by("a", 10));
        assert!(!contest.competitor_liquidated_by("a", 9));
        assert!(!contest.competitor_liquidated_by("b", 12));
        assert!(contest.competitor_liquidated_by("c", 13));
    }
}
