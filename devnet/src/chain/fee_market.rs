//! Neutron's fee market (skip-mev `x/feemarket`, run with its EIP-1559 rule): a base gas price
//! in the fee denom that a tx must pay at least, in CheckTx and again at delivery, moved after
//! every block by how far the block's gas was from the target, and never below the minimum.
//! Clients read it with `/feemarket.feemarket.v1.Query/GasPrice`. Osmosis has no such module;
//! its EIP-1559 base fee (`/osmosis.txfees.v1beta1.Query/GetEipBaseFee`) is answered with the
//! fixed minimum gas price, which the Osmosis flavor never moves.

use cosmwasm_std::{Decimal, Uint128};

/// How the base gas price moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeMarketParams {
    /// The share the price moves by after a block that used twice the target (or nothing).
    pub learning_rate: Decimal,
    /// The block gas at which the price holds.
    pub target_block_gas: u64,
}

impl FeeMarketParams {
    /// Neutron's: a learning rate of 0.08 around a 15,000,000-gas target.
    pub fn neutron() -> Self {
        FeeMarketParams {
            learning_rate: Decimal::percent(8),
            target_block_gas: 15_000_000,
        }
    }

    /// The base gas price after a block that used `block_gas` at `price`:
    /// `price × (1 + learning rate × (block gas − target) / target)`, at least `min`. A block
    /// holds at most twice the target (feemarket's max block utilization); the devnet does not
    /// cap its blocks by gas yet, so a block's gas counts up to that.
    pub fn next_price(&self, price: Decimal, block_gas: u64, min: Decimal) -> Decimal {
        let target = self.target_block_gas.max(1);
        let block_gas = block_gas.min(target.saturating_mul(2));
        let off_target = Decimal::from_ratio(block_gas.abs_diff(target), target);
        let step = off_target
            .checked_mul(self.learning_rate)
            .unwrap_or(Decimal::MAX);
        let factor = if block_gas >= target {
            Decimal::one().saturating_add(step)
        } else {
            Decimal::one().saturating_sub(step)
        };
        price.saturating_mul(factor).max(min)
    }
}

/// A `LegacyDec` as the SDK writes it into protobuf: the integer of its value × 10¹⁸.
pub fn legacy_dec_text(value: Decimal) -> String {
    value.atomics().to_string()
}

/// The fee `gas_limit` must pay at `price`, rounded up.
pub fn required_fee(gas_limit: u64, price: Decimal) -> Uint128 {
    Uint128::from(gas_limit).mul_ceil(price)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// By hand: target 15,000,000. A block of 30,000,000 gas (or more): 1 + 0.08 × 1 = 1.08, so
    /// 0.0053 → 0.005724. A block of 22,500,000: 1 + 0.08 × 0.5 = 1.04, 0.0053 → 0.005512.
    /// An empty block at 0.006: 1 − 0.08 = 0.92, 0.00552; at the minimum it stays there.
    #[test]
    fn the_price_moves_with_block_gas_and_never_below_the_minimum() {
        let market = FeeMarketParams::neutron();
        let min = price("0.0053");
        assert_eq!(market.next_price(min, 30_000_000, min), price("0.005724"));
        // A block counts at most twice the target.
        assert_eq!(market.next_price(min, 90_000_000, min), price("0.005724"));
        assert_eq!(market.next_price(min, 22_500_000, min), price("0.005512"));
        assert_eq!(market.next_price(min, 15_000_000, min), min);
        assert_eq!(market.next_price(price("0.006"), 0, min), price("0.00552"));
        assert_eq!(market.next_price(min, 0, min), min);
    }

    #[test]
    fn legacy_decs_are_written_as_integers_of_ten_to_the_eighteenth() {
        assert_eq!(legacy_dec_text(price("0.0053")), "5300000000000000");
        assert_eq!(legacy_dec_text(price("1.5")), "1500000000000000000");
    }
}
