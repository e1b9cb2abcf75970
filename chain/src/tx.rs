//! Building and signing transactions (SIGN_MODE_DIRECT), gas and fee arithmetic, and the local
//! account sequence.

use std::sync::atomic::{AtomicU64, Ordering};

use cosmrs::tx::{Body, Fee, Msg, SignDoc, SignerInfo};
use cosmrs::{AccountId, Any};
use cosmwasm_std::{Decimal, Uint128, Uint256};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{ChainClient, ChainConfig, ChainError, TxHash, Wallet};

/// Gas limit put on the throwaway transaction signed for simulation. The node ignores the fee
/// there; the limit only has to be high enough not to stop the simulated run.
const SIMULATION_GAS_LIMIT: u64 = 100_000_000;

fn build_error(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Build(format!("{what}: {e}"))
}

/// `MsgExecuteContract` calling `contract` with `msg` as JSON and `funds` attached.
/// Funds are sorted by denom, as the SDK requires of a `Coins` value.
pub fn execute_contract_msg(
    sender: &AccountId,
    contract: &str,
    msg: &impl Serialize,
    funds: &[cosmwasm_std::Coin],
) -> Result<Any, ChainError> {
    let contract: AccountId = contract
        .parse()
        .map_err(|e| build_error(&format!("contract address `{contract}`"), e))?;
    let msg = serde_json::to_vec(msg).map_err(|e| build_error("contract message JSON", e))?;
    cosmrs::cosmwasm::MsgExecuteContract {
        sender: sender.clone(),
        contract,
        msg,
        funds: to_sdk_coins(funds)?,
    }
    .to_any()
    .map_err(|e| build_error("MsgExecuteContract", e))
}

/// Bank `MsgSend` of `amount` from `from` to `to`.
pub fn bank_send_msg(
    from: &AccountId,
    to: &str,
    amount: &[cosmwasm_std::Coin],
) -> Result<Any, ChainError> {
    let to: AccountId = to
        .parse()
        .map_err(|e| build_error(&format!("recipient address `{to}`"), e))?;
    cosmrs::bank::MsgSend {
        from_address: from.clone(),
        to_address: to,
        amount: to_sdk_coins(amount)?,
    }
    .to_any()
    .map_err(|e| build_error("MsgSend", e))
}

fn to_sdk_coins(coins: &[cosmwasm_std::Coin]) -> Result<Vec<cosmrs::Coin>, ChainError> {
    let mut out = coins
        .iter()
        .map(|c| {
            let amount = Uint128::try_from(c.amount)
                .map_err(|e| build_error(&format!("amount of `{}`", c.denom), e))?;
            cosmrs::Coin::new(amount.u128(), &c.denom)
                .map_err(|e| build_error(&format!("coin denom `{}`", c.denom), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.denom.as_ref().cmp(b.denom.as_ref()));
    Ok(out)
}

/// The hash CometBFT gives a transaction: SHA-256 of its raw bytes.
pub fn tx_hash(tx_bytes: &[u8]) -> TxHash {
    TxHash::Sha256(Sha256::digest(tx_bytes).into())
}

/// A signed transaction ready to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    pub bytes: Vec<u8>,
    pub hash: TxHash,
    pub gas_limit: u64,
    pub fee: cosmwasm_std::Coin,
    pub sequence: u64,
}

/// Turns messages into signed transaction bytes for one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxBuilder {
    chain_id: String,
    fee_denom: String,
    gas_price: Decimal,
    gas_adjustment: Decimal,
    gas_price_headroom: Decimal,
    /// The last block height the tx may be included in (0: none).
    timeout_height: u64,
}

impl TxBuilder {
    pub fn new(config: &ChainConfig) -> Self {
        TxBuilder {
            chain_id: config.chain_id.clone(),
            fee_denom: config.fee_denom.clone(),
            gas_price: config.gas_price,
            gas_adjustment: config.gas_adjustment,
            gas_price_headroom: config.gas_price_headroom,
            timeout_height: 0,
        }
    }

    /// The same builder signing txs the chain may include only in blocks up to `height`
    /// (`timeout_height`): past it, no node includes the tx, so its fate is known.
    pub fn with_timeout_height(&self, height: u64) -> Self {
        TxBuilder {
            timeout_height: height,
            ..self.clone()
        }
    }

    /// The timeout height txs are signed with, if any.
    pub fn timeout_height(&self) -> Option<u64> {
        (self.timeout_height > 0).then_some(self.timeout_height)
    }

    /// The same builder signing at `gas_price` (a fee market's price, read per block).
    pub fn with_gas_price(&self, gas_price: Decimal) -> Self {
        TxBuilder {
            gas_price,
            ..self.clone()
        }
    }

    pub fn gas_price(&self) -> Decimal {
        self.gas_price
    }

    /// The builder signing at a fee market's `base` price (see
    /// [`ChainClient::base_gas_price`]) with the configured headroom, never below its own.
    pub fn at_market(&self, base: Option<Decimal>) -> Self {
        let price =
            crate::fee_market::price_with_headroom(base, self.gas_price_headroom, self.gas_price);
        self.with_gas_price(price)
    }

    /// Gas limit for a transaction that simulated at `gas_used`: ⌈gas_used × adjustment⌉.
    pub fn gas_limit_for(&self, gas_used: u64) -> u64 {
        let limit = Uint128::from(gas_used).mul_ceil(self.gas_adjustment);
        u64::try_from(limit.u128()).unwrap_or(u64::MAX)
    }

    /// The fee for `gas_limit`: ⌈gas_limit × gas price⌉ of the fee denom, so the fee never falls
    /// below what the chain's minimum gas price demands.
    pub fn fee_for(&self, gas_limit: u64) -> cosmwasm_std::Coin {
        cosmwasm_std::Coin {
            denom: self.fee_denom.clone(),
            amount: Uint128::from(gas_limit).mul_ceil(self.gas_price).into(),
        }
    }

    /// Signs `messages` with `wallet` for the given account number and sequence, with the fee
    /// for `gas_limit`.
    pub fn sign(
        &self,
        wallet: &Wallet,
        account_number: u64,
        sequence: u64,
        messages: Vec<Any>,
        gas_limit: u64,
        memo: &str,
    ) -> Result<SignedTx, ChainError> {
        let fee = self.fee_for(gas_limit);
        let bytes = self.sign_with_fee(
            wallet,
            account_number,
            sequence,
            messages,
            gas_limit,
            &fee,
            memo,
        )?;
        Ok(SignedTx {
            hash: tx_hash(&bytes),
            bytes,
            gas_limit,
            fee,
            sequence,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_with_fee(
        &self,
        wallet: &Wallet,
        account_number: u64,
        sequence: u64,
        messages: Vec<Any>,
        gas_limit: u64,
        fee: &cosmwasm_std::Coin,
        memo: &str,
    ) -> Result<Vec<u8>, ChainError> {
        let timeout_height = tendermint::block::Height::try_from(self.timeout_height)
            .map_err(|e| build_error("timeout height", e))?;
        let body = Body::new(messages, memo, timeout_height);
        let fee_amount = Uint128::try_from(fee.amount)
            .map_err(|e| build_error(&format!("fee amount of `{}`", fee.denom), e))?;
        let fee_coin = cosmrs::Coin::new(fee_amount.u128(), &fee.denom)
            .map_err(|e| build_error(&format!("fee denom `{}`", fee.denom), e))?;
        let auth_info = SignerInfo::single_direct(Some(wallet.public_key()), sequence)
            .auth_info(Fee::from_amount_and_gas(fee_coin, gas_limit));
        let sign_doc = SignDoc::new(&body, &auth_info, &self.chain_id_parsed()?, account_number)
            .map_err(|e| build_error("sign doc", e))?;
        let raw = sign_doc
            .sign(wallet.signing_key())
            .map_err(|e| build_error("signing", e))?;
        raw.to_bytes().map_err(|e| build_error("encoding TxRaw", e))
    }

    fn chain_id_parsed(&self) -> Result<tendermint::chain::Id, ChainError> {
        self.chain_id
            .parse()
            .map_err(|e| build_error(&format!("chain id `{}`", self.chain_id), e))
    }

    /// A signed copy of the transaction for `simulate` (zero fee, generous gas limit).
    pub fn sign_for_simulation(
        &self,
        wallet: &Wallet,
        account_number: u64,
        sequence: u64,
        messages: Vec<Any>,
        memo: &str,
    ) -> Result<Vec<u8>, ChainError> {
        let zero = cosmwasm_std::Coin {
            denom: self.fee_denom.clone(),
            amount: Uint256::zero(),
        };
        self.sign_with_fee(
            wallet,
            account_number,
            sequence,
            messages,
            SIMULATION_GAS_LIMIT,
            &zero,
            memo,
        )
    }
}

/// Simulates `messages`, then signs them with gas limit ⌈simulated gas × adjustment⌉ and fee
/// ⌈gas limit × gas price⌉, the gas price the fee market's as read now (with headroom) where
/// the chain has one. Simulation failures (contract errors, missing funds) come back as
/// [`ChainError::Rejected`] at the simulation stage, before anything is broadcast.
pub async fn sign_with_simulated_gas<C: ChainClient>(
    client: &C,
    builder: &TxBuilder,
    wallet: &Wallet,
    account_number: u64,
    sequence: u64,
    messages: Vec<Any>,
    memo: &str,
) -> Result<SignedTx, ChainError> {
    let probe =
        builder.sign_for_simulation(wallet, account_number, sequence, messages.clone(), memo)?;
    let gas_used = client.simulate(probe).await?.gas_used;
    let builder = builder.at_market(client.base_gas_price().await?);
    builder.sign(
        wallet,
        account_number,
        sequence,
        messages,
        builder.gas_limit_for(gas_used),
        memo,
    )
}

/// The account number and next sequence of one sender, kept locally so consecutive
/// transactions need no query in between. After a wrong-sequence rejection (code 32) call
/// [`SequenceTracker::resync`] (or [`SequenceTracker::reset`] with the expected sequence from
/// the rejection's log).
#[derive(Debug)]
pub struct SequenceTracker {
    address: String,
    account_number: u64,
    next: AtomicU64,
}

impl SequenceTracker {
    pub async fn load<C: ChainClient>(client: &C, address: &str) -> Result<Self, ChainError> {
        let account = client.account(address).await?;
        Ok(SequenceTracker {
            address: address.to_string(),
            account_number: account.account_number,
            next: AtomicU64::new(account.sequence),
        })
    }

    pub fn new(address: &str, account_number: u64, sequence: u64) -> Self {
        SequenceTracker {
            address: address.to_string(),
            account_number,
            next: AtomicU64::new(sequence),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn account_number(&self) -> u64 {
        self.account_number
    }

    /// The sequence to sign the next transaction with, reserving it.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    /// The sequence the next call to [`SequenceTracker::next`] returns.
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Sets the next sequence, e.g. the one a code-32 rejection says the chain expects.
    pub fn reset(&self, sequence: u64) {
        self.next.store(sequence, Ordering::SeqCst);
    }

    /// Reloads the sequence from the chain; returns it.
    pub async fn resync<C: ChainClient>(&self, client: &C) -> Result<u64, ChainError> {
        let account = client.account(&self.address).await?;
        self.reset(account.sequence);
        Ok(account.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::super::wallet::tests::FAUCET_MNEMONIC;
    use super::*;
    use cosmrs::Tx;
    use std::time::Duration;

    fn builder(gas_price: &str) -> TxBuilder {
        let config = ChainConfig::new(
            "devnet-1",
            "osmo",
            &["http://127.0.0.1:1".into()],
            &[],
            "uosmo",
            gas_price,
            Duration::from_secs(1),
        )
        .unwrap();
        TxBuilder::new(&config)
    }

    #[test]
    fn fee_is_rounded_up() {
        let b = builder("0.025");
        assert_eq!(b.fee_for(200_000).amount, Uint256::from(5_000u32));
        // 200_001 × 0.025 = 5000.025 → 5001
        assert_eq!(b.fee_for(200_001).amount, Uint256::from(5_001u32));
        assert_eq!(b.fee_for(0).amount, Uint256::zero());
        assert_eq!(b.fee_for(1).amount, Uint256::from(1u32));
        assert_eq!(b.fee_for(1).denom, "uosmo");
        let tiny = builder("0.0000001");
        assert_eq!(tiny.fee_for(10_000_001).amount, Uint256::from(2u32));
    }

    #[test]
    fn gas_limit_applies_the_adjustment_rounding_up() {
        let b = builder("0.025");
        assert_eq!(b.gas_limit_for(100_000), 130_000);
        assert_eq!(b.gas_limit_for(100_001), 130_002); // 130001.3 → 130002
        assert_eq!(b.gas_limit_for(0), 0);
    }

    #[test]
    fn signed_tx_decodes_and_its_signature_verifies() {
        let b = builder("0.025");
        let wallet = Wallet::from_mnemonic(FAUCET_MNEMONIC, "osmo", 0).unwrap();
        let msg = execute_contract_msg(
            wallet.address(),
            wallet.address().as_ref(),
            &serde_json::json!({"deposit": {}}),
            &[
                cosmwasm_std::Coin::new(5u128, "uosmo"),
                cosmwasm_std::Coin::new(7u128, "uatom"),
            ],
        )
        .unwrap();
        let signed = b.sign(&wallet, 12, 34, vec![msg], 150_000, "memo").unwrap();
        assert_eq!(signed.hash, tx_hash(&signed.bytes));
        assert_eq!(signed.fee.amount, Uint256::from(3_750u32));

        let tx = Tx::from_bytes(&signed.bytes).unwrap();
        assert_eq!(tx.auth_info.signer_infos[0].sequence, 34);
        assert_eq!(tx.auth_info.fee.gas_limit, 150_000);
        assert_eq!(tx.auth_info.fee.amount[0].amount, 3_750);
        assert_eq!(tx.body.memo, "memo");
        assert_eq!(
            tx.body.timeout_height.value(),
            0,
            "no timeout height unless set"
        );
        let bounded = b
            .with_timeout_height(1_234)
            .sign(&wallet, 12, 34, tx.body.messages.clone(), 150_000, "")
            .unwrap();
        let bounded = Tx::from_bytes(&bounded.bytes).unwrap();
        assert_eq!(bounded.body.timeout_height.value(), 1_234);
        let exec = cosmrs::cosmwasm::MsgExecuteContract::from_any(&tx.body.messages[0]).unwrap();
        assert_eq!(exec.msg, br#"{"deposit":{}}"#);
        let denoms: Vec<_> = exec.funds.iter().map(|c| c.denom.to_string()).collect();
        assert_eq!(denoms, ["uatom", "uosmo"]);

        // Rebuild the sign doc as a verifier does and check the signature.
        let raw: cosmrs::proto::cosmos::tx::v1beta1::TxRaw =
            prost::Message::decode(signed.bytes.as_slice()).unwrap();
        let doc = cosmrs::proto::cosmos::tx::v1beta1::SignDoc {
            body_bytes: raw.body_bytes.clone(),
            auth_info_bytes: raw.auth_info_bytes.clone(),
            chain_id: "devnet-1".into(),
            account_number: 12,
        };
        let doc_bytes = prost::Message::encode_to_vec(&doc);
        let public_key: tendermint::PublicKey = wallet.public_key().into();
        let signature = tendermint::Signature::try_from(raw.signatures[0].as_slice()).unwrap();
        use tendermint::crypto::signature::Verifier as _;
        tendermint::crypto::default::signature::Verifier::verify(
            public_key, &doc_bytes, &signature,
        )
        .unwrap();
        // Another account number is another sign doc: the signature must not verify.
        let other = cosmrs::proto::cosmos::tx::v1beta1::SignDoc {
            account_number: 13,
            ..doc
        };
        assert!(tendermint::crypto::default::signature::Verifier::verify(
            public_key,
            &prost::Message::encode_to_vec(&other),
            &signature
        )
        .is_err());
    }

    #[test]
    fn bank_send_and_bad_addresses() {
        let from = Wallet::from_mnemonic(FAUCET_MNEMONIC, "osmo", 0).unwrap();
        let to = Wallet::from_mnemonic(FAUCET_MNEMONIC, "osmo", 1).unwrap();
        let any = bank_send_msg(
            from.address(),
            to.address().as_ref(),
            &[cosmwasm_std::Coin::new(1u128, "uosmo")],
        )
        .unwrap();
        let send = cosmrs::bank::MsgSend::from_any(&any).unwrap();
        assert_eq!(&send.to_address, to.address());
        assert_eq!(send.amount[0].amount, 1);

        let err = bank_send_msg(from.address(), "osmo1bad", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("recipient address `osmo1bad`"), "{err}");
        let err = execute_contract_msg(from.address(), "nope", &serde_json::json!({}), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("contract address `nope`"), "{err}");
    }

    #[test]
    fn sequence_tracker_reserves_and_resets() {
        let t = SequenceTracker::new("osmo1x", 3, 10);
        assert_eq!(t.next(), 10);
        assert_eq!(t.next(), 11);
        assert_eq!(t.peek(), 12);
        t.reset(7);
        assert_eq!(t.next(), 7);
        assert_eq!(t.account_number(), 3);
    }
}
