//! Fee bidding by value: what a liquidation tx pays to be ahead of other bots in the block.
//!
//! Block space goes to the highest gas price (CometBFT's priority mempool with the SDK's
//! fee-based priority, Neutron's fee market). A tx that nobody competes with pays the market's
//! price: a tip would be a gift. Once competition shows — a liquidation of ours lost to another
//! bot, or a liquidation tried again — the tx bids more: each such sign quadruples its fee, up
//! to a cap of `--max-fee-share` of its expected profit (and never so much that the profit after
//! the fee falls below the floor). So a contested liquidation soon outbids a bot that pays a
//! fixed tip, what it pays grows with the competition actually met, and an uncontested one pays
//! nothing extra.
//!
//! Pure integer math on the fee in the fee denom's smallest unit; [`Competition`] keeps the
//! count of recent races lost.

use std::collections::VecDeque;

use cosmwasm_std::{Decimal, Uint128};

/// Each sign of competition multiplies the fee by this.
const RAISE_PER_SIGN: u128 = 4;

/// How much of its profit a liquidation tx may bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BidPolicy {
    /// The largest share of the expected profit paid in fees (0 turns bidding off).
    pub max_fee_share: Decimal,
    /// Signs of competition assumed before any is seen: against a bot known to tip on every
    /// liquidation, 1 makes a first try bid as a race lost would.
    pub assumed_competition: u32,
}

/// What one tx bids with: its fee at the market's price, the profit it expects and the floor
/// the profit after fees must keep, all in the fee denom's smallest unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BidInput {
    pub market_fee: Uint128,
    pub expected_profit: Uint128,
    pub profit_floor: Uint128,
    /// Signs of competition: races lost lately plus times these liquidations were tried before.
    pub pressure: u32,
}

impl BidPolicy {
    /// The fee the tx offers: `market × 4^pressure`, at most
    /// `cap = min(max_fee_share × profit, profit − floor)`, and never below the market fee.
    pub fn fee(&self, input: BidInput) -> Uint128 {
        let share_cap = input.expected_profit.mul_floor(self.max_fee_share);
        let floor_cap = input.expected_profit.saturating_sub(input.profit_floor);
        let cap = share_cap.min(floor_cap);
        if cap <= input.market_fee {
            return input.market_fee;
        }
        let raised = RAISE_PER_SIGN
            .checked_pow(input.pressure)
            .and_then(|factor| input.market_fee.u128().checked_mul(factor))
            .unwrap_or(u128::MAX);
        Uint128::new(raised).min(cap)
    }
}

/// The gas price that pays at most `fee` for `gas_limit` gas, and never less than `market`:
/// `fee / gas_limit` rounded down to the price's 18 decimals, so `⌈gas_limit × price⌉ ≤ fee`.
pub fn price_for_fee(fee: Uint128, gas_limit: u64, market: Decimal) -> Decimal {
    if gas_limit == 0 {
        return market;
    }
    Decimal::checked_from_ratio(fee, gas_limit)
        .unwrap_or(market)
        .max(market)
}

/// Races lost in the last `window` blocks, as a worker sees them.
#[derive(Debug, Clone)]
pub struct Competition {
    window: u64,
    /// (height, races lost at it), oldest first.
    lost: VecDeque<(u64, u32)>,
}

impl Competition {
    pub fn new(window_blocks: u64) -> Self {
        Competition {
            window: window_blocks.max(1),
            lost: VecDeque::new(),
        }
    }

    /// A liquidation of ours found the account liquidated by someone else at `height`.
    pub fn lost_race(&mut self, height: u64) {
        match self.lost.back_mut() {
            Some((at, count)) if *at == height => *count += 1,
            _ => self.lost.push_back((height, 1)),
        }
    }

    /// Races lost within the window ending at `height`.
    pub fn recent(&mut self, height: u64) -> u32 {
        let since = height.saturating_sub(self.window - 1);
        while self.lost.front().is_some_and(|(at, _)| *at < since) {
            self.lost.pop_front();
        }
        self.lost.iter().map(|(_, count)| count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(percent: u64) -> BidPolicy {
        BidPolicy {
            max_fee_share: Decimal::percent(percent),
            assumed_competition: 0,
        }
    }

    fn input(market: u128, profit: u128, floor: u128, pressure: u32) -> BidInput {
        BidInput {
            market_fee: Uint128::new(market),
            expected_profit: Uint128::new(profit),
            profit_floor: Uint128::new(floor),
            pressure,
        }
    }

    #[test]
    fn bids_written_out_by_hand() {
        // Profit 100,000, share 50 %: cap 50,000; market fee 2,000.
        let half = policy(50);
        assert_eq!(half.fee(input(2_000, 100_000, 0, 0)).u128(), 2_000);
        // 2,000 × 4 = 8,000; × 16 = 32,000; × 64 = 128,000, capped at 50,000.
        assert_eq!(half.fee(input(2_000, 100_000, 0, 1)).u128(), 8_000);
        assert_eq!(half.fee(input(2_000, 100_000, 0, 2)).u128(), 32_000);
        assert_eq!(half.fee(input(2_000, 100_000, 0, 3)).u128(), 50_000);
        assert_eq!(half.fee(input(2_000, 100_000, 0, 1_000)).u128(), 50_000);
        // The floor caps lower: profit 100,000 − floor 95,000 leaves 5,000.
        assert_eq!(half.fee(input(2_000, 100_000, 95_000, 1)).u128(), 5_000);
        // A cap under the market fee: the market fee (the profit floor decides elsewhere).
        assert_eq!(half.fee(input(2_000, 3_000, 0, 5)).u128(), 2_000);
        // Bidding off.
        assert_eq!(policy(0).fee(input(2_000, 100_000, 0, 9)).u128(), 2_000);
    }

    #[test]
    fn a_price_that_pays_at_most_the_fee() {
        let market = Decimal::permille(25);
        // 26,000 / 1,000,000 = 0.026 > 0.025
        assert_eq!(
            price_for_fee(Uint128::new(26_000), 1_000_000, market),
            Decimal::permille(26)
        );
        // Below the market price: the market price.
        assert_eq!(price_for_fee(Uint128::new(1), 1_000_000, market), market);
        assert_eq!(price_for_fee(Uint128::new(1), 0, market), market);
        // 10 / 3 = 3.333…: three times it rounds up to 10, not 11.
        let price = price_for_fee(Uint128::new(10), 3, Decimal::zero());
        assert_eq!(Uint128::new(3).mul_ceil(price).u128(), 10);
    }

    #[test]
    fn races_lost_count_within_the_window() {
        let mut competition = Competition::new(3);
        assert_eq!(competition.recent(10), 0);
        competition.lost_race(10);
        competition.lost_race(10);
        competition.lost_race(11);
        assert_eq!(competition.recent(11), 3);
        // Window of heights 11..=13 at 13.
        assert_eq!(competition.recent(13), 1);
        assert_eq!(competition.recent(14), 0);
    }

    proptest! {
        #[test]
        fn a_bid_stays_between_the_market_fee_and_the_cap(
            market in 0u128..1_000_000_000,
            profit in 0u128..1_000_000_000_000,
            floor in 0u128..1_000_000_000,
            pressure in 0u32..100,
            percent in 0u64..=100,
        ) {
            let policy = policy(percent);
            let bid = policy.fee(input(market, profit, floor, pressure)).u128();
            let cap = (profit * u128::from(percent) / 100).min(profit.saturating_sub(floor));
            prop_assert!(bid >= market);
            prop_assert!(bid <= market.max(cap));
            // More pressure never bids less.
            let more = policy.fee(input(market, profit, floor, pressure + 1)).u128();
            prop_assert!(more >= bid);
        }

        #[test]
        fn the_price_for_a_fee_never_pays_more_than_it(
            fee in 0u128..1_000_000_000_000,
            gas in 1u64..100_000_000,
        ) {
            let price = price_for_fee(Uint128::new(fee), gas, Decimal::zero());
            prop_assert!(Uint128::from(gas).mul_ceil(price).u128() <= fee);
        }
    }
}
