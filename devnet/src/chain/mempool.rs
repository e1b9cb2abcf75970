//! Which waiting txs the next block takes, and in what order.
//!
//! As CometBFT's priority mempool with the SDK's fee-based priority (and Neutron's fee market,
//! whose priority is the tip over one base price, so the same order): the highest gas price
//! first, then the earliest arrival; a signer's txs always in sequence (arrival) order, so a
//! signer's later tx waits behind its earlier one whatever it pays. The block takes txs until
//! the next one would pass the block's tx count or gas limit (counted at each tx's gas limit,
//! as CometBFT's reaping does); the rest wait for the next block.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use cosmwasm_std::Decimal;

/// What the ordering needs to know of one waiting tx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The fee in the fee denom per unit of gas limit.
    pub gas_price: Decimal,
    /// The fee payer: its txs keep their arrival order.
    pub signer: String,
    pub gas_limit: u64,
}

/// What one block may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    pub max_txs: usize,
    pub max_gas: Option<u64>,
}

/// The positions in `waiting` (listed in arrival order) of the txs the next block takes, in
/// block order.
pub fn reap(waiting: &[Waiting], limits: BlockLimits) -> Vec<usize> {
    let mut queues: BTreeMap<&str, VecDeque<usize>> = BTreeMap::new();
    for (position, tx) in waiting.iter().enumerate() {
        queues.entry(&tx.signer).or_default().push_back(position);
    }
    let mut heads: BinaryHeap<Head> = queues
        .values_mut()
        .filter_map(|queue| queue.pop_front())
        .map(|position| Head::new(waiting, position))
        .collect();
    let mut taken = Vec::new();
    let mut gas = 0u64;
    while let Some(head) = heads.pop() {
        let tx = &waiting[head.position];
        let block_gas = gas.saturating_add(tx.gas_limit);
        if taken.len() == limits.max_txs || limits.max_gas.is_some_and(|max| block_gas > max) {
            break;
        }
        gas = block_gas;
        taken.push(head.position);
        if let Some(next) = queues
            .get_mut(tx.signer.as_str())
            .and_then(VecDeque::pop_front)
        {
            heads.push(Head::new(waiting, next));
        }
    }
    taken
}

/// A signer's next tx, ordered for a max-heap: higher gas price first, then earlier arrival.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    gas_price: Decimal,
    position: usize,
}

impl Head {
    fn new(waiting: &[Waiting], position: usize) -> Self {
        Head {
            gas_price: waiting[position].gas_price,
            position,
        }
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.gas_price
            .cmp(&other.gas_price)
            .then_with(|| other.position.cmp(&self.position))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(signer: &str, gas_price_permille: u64, gas_limit: u64) -> Waiting {
        Waiting {
            gas_price: Decimal::permille(gas_price_permille),
            signer: signer.into(),
            gas_limit,
        }
    }

    const UNLIMITED: BlockLimits = BlockLimits {
        max_txs: usize::MAX,
        max_gas: None,
    };

    #[test]
    fn higher_gas_price_first_then_arrival() {
        let waiting = [
            tx("a", 25, 100),
            tx("b", 30, 100),
            tx("c", 25, 100),
            tx("d", 40, 100),
        ];
        assert_eq!(reap(&waiting, UNLIMITED), vec![3, 1, 0, 2]);
    }

    #[test]
    fn a_signers_later_tx_waits_behind_its_earlier_one_whatever_it_pays() {
        // a's second tx pays the most but comes after a's first; b's sits between them.
        let waiting = [tx("a", 25, 100), tx("b", 30, 100), tx("a", 90, 100)];
        assert_eq!(reap(&waiting, UNLIMITED), vec![1, 0, 2]);
        // Once a's first is in, its second outbids c, which arrived before it.
        let waiting = [tx("a", 50, 100), tx("c", 30, 100), tx("a", 90, 100)];
        assert_eq!(reap(&waiting, UNLIMITED), vec![0, 2, 1]);
    }

    #[test]
    fn the_block_stops_at_the_first_tx_past_its_gas_or_tx_limit() {
        let waiting = [tx("a", 30, 600), tx("b", 25, 500), tx("c", 20, 100)];
        // 600 + 500 > 1,000: b waits, and so does c behind it (CometBFT stops reaping there).
        let gas = BlockLimits {
            max_txs: 10,
            max_gas: Some(1_000),
        };
        assert_eq!(reap(&waiting, gas), vec![0]);
        let gas = BlockLimits {
            max_txs: 10,
            max_gas: Some(1_100),
        };
        assert_eq!(reap(&waiting, gas), vec![0, 1]);
        let count = BlockLimits {
            max_txs: 2,
            max_gas: None,
        };
        assert_eq!(reap(&waiting, count), vec![0, 1]);
    }

    #[test]
    fn an_empty_mempool_makes_an_empty_block() {
        assert!(reap(&[], UNLIMITED).is_empty());
    }
}
