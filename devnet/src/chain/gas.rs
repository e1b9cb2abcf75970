//! The devnet's gas model.
//!
//! cw-multi-test does not meter execution, so gas is a deterministic function of what a tx is
//! and what it did, scaled to land in the range Osmosis charges (a bank send ≈ 80k gas; a Red
//! Bank deposit, borrow or liquidation ≈ 150k–170k). The same tx always costs the same gas, and
//! `Simulate` reports exactly what delivery will use, as long as each signature is 64 bytes (a
//! simulated tx may carry empty signatures; they are counted as 64 bytes).
//!
//! gas = TX_BASE
//!     + PER_TX_BYTE × tx size in bytes
//!     + PER_SIGNATURE × signers
//!     + per message: MSG_SEND + PER_COIN × coins, or
//!                    MSG_EXECUTE + PER_MSG_BYTE × JSON message bytes + PER_COIN × funds
//!     + per event emitted by the messages: PER_EVENT + PER_ATTRIBUTE × attributes
//!       + PER_ATTRIBUTE_BYTE × key and value bytes,
//!       + PER_CONTRACT_CALL for each `execute` event (one per contract invocation)

/// Ante handler work: account loads, fee deduction, sequence bump.
pub const TX_BASE: u64 = 30_000;
/// As the SDK's `TxSizeCostPerByte`.
pub const PER_TX_BYTE: u64 = 10;
/// As the SDK's secp256k1 signature verification cost.
pub const PER_SIGNATURE: u64 = 1_000;
pub const MSG_SEND: u64 = 25_000;
pub const MSG_EXECUTE: u64 = 60_000;
pub const PER_MSG_BYTE: u64 = 5;
pub const PER_COIN: u64 = 2_000;
pub const PER_EVENT: u64 = 2_000;
pub const PER_ATTRIBUTE: u64 = 500;
pub const PER_ATTRIBUTE_BYTE: u64 = 10;
/// A contract invocation (the top-level one and each sub-message to a contract): loading and
/// instantiating the wasm module, as wasmd charges.
pub const PER_CONTRACT_CALL: u64 = 40_000;

/// Bytes a missing signature is counted as, so simulation matches delivery.
pub const SIGNATURE_BYTES: u64 = 64;

/// Gas spent before any message runs: what the ante handler charges.
pub fn ante_gas(tx_bytes: u64, signers: u64) -> u64 {
    TX_BASE
        .saturating_add(PER_TX_BYTE.saturating_mul(tx_bytes))
        .saturating_add(PER_SIGNATURE.saturating_mul(signers))
}

pub fn send_gas(coins: u64) -> u64 {
    MSG_SEND.saturating_add(PER_COIN.saturating_mul(coins))
}

pub fn execute_gas(msg_bytes: u64, funds: u64) -> u64 {
    MSG_EXECUTE
        .saturating_add(PER_MSG_BYTE.saturating_mul(msg_bytes))
        .saturating_add(PER_COIN.saturating_mul(funds))
}

pub fn events_gas<'a>(events: impl IntoIterator<Item = &'a cosmwasm_std::Event>) -> u64 {
    events.into_iter().fold(0u64, |gas, event| {
        let attrs = event.attributes.len() as u64;
        let bytes: u64 = event
            .attributes
            .iter()
            .map(|a| (a.key.len() + a.value.len()) as u64)
            .sum();
        let call = if event.ty == "execute" {
            PER_CONTRACT_CALL
        } else {
            0
        };
        gas.saturating_add(PER_EVENT)
            .saturating_add(call)
            .saturating_add(PER_ATTRIBUTE.saturating_mul(attrs))
            .saturating_add(PER_ATTRIBUTE_BYTE.saturating_mul(bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_send_costs_about_what_osmosis_charges() {
        // ~300 bytes, one signer, one coin, a transfer event with three attributes.
        let event = cosmwasm_std::Event::new("transfer")
            .add_attribute("recipient", "osmo1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq")
            .add_attribute("sender", "osmo1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq")
            .add_attribute("amount", "1000uosmo");
        let gas = ante_gas(300, 1) + send_gas(1) + events_gas([&event]);
        assert!((60_000..120_000).contains(&gas), "{gas}");
    }
}
