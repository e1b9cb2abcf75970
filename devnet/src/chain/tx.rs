//! Decoding SDK txs and the SDK's error codes.

use cosmrs::proto::cosmos::bank::v1beta1::MsgSend;
use cosmrs::proto::cosmos::tx::signing::v1beta1::SignMode;
use cosmrs::proto::cosmos::tx::v1beta1::{mode_info, AuthInfo, TxBody, TxRaw};
use cosmrs::proto::cosmwasm::wasm::v1::MsgExecuteContract;
use cosmwasm_std::{Coin, Uint256};
use prost::Message;
use sha2::{Digest, Sha256};

pub const MSG_SEND_URL: &str = "/cosmos.bank.v1beta1.MsgSend";
pub const MSG_EXECUTE_URL: &str = "/cosmwasm.wasm.v1.MsgExecuteContract";
pub const SECP256K1_PUBKEY_URL: &str = "/cosmos.crypto.secp256k1.PubKey";

/// A failed tx or query as the SDK reports it: code, codespace and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxError {
    pub codespace: &'static str,
    pub code: u32,
    pub log: String,
}

impl TxError {
    fn sdk(code: u32, reason: &str, detail: impl std::fmt::Display) -> Self {
        Self {
            codespace: "sdk",
            code,
            log: format!("{detail}: {reason}"),
        }
    }
    pub fn tx_decode(detail: impl std::fmt::Display) -> Self {
        Self::sdk(2, "tx parse error", detail)
    }
    pub fn unauthorized(detail: impl std::fmt::Display) -> Self {
        Self::sdk(4, "unauthorized", detail)
    }
    pub fn insufficient_funds(detail: impl std::fmt::Display) -> Self {
        Self::sdk(5, "insufficient funds", detail)
    }
    pub fn unknown_request(detail: impl std::fmt::Display) -> Self {
        Self::sdk(6, "unknown request", detail)
    }
    pub fn invalid_address(detail: impl std::fmt::Display) -> Self {
        Self::sdk(7, "invalid address", detail)
    }
    pub fn invalid_pubkey(detail: impl std::fmt::Display) -> Self {
        Self::sdk(8, "invalid pubkey", detail)
    }
    pub fn unknown_address(detail: impl std::fmt::Display) -> Self {
        Self::sdk(9, "unknown address", detail)
    }
    pub fn invalid_coins(detail: impl std::fmt::Display) -> Self {
        Self::sdk(10, "invalid coins", detail)
    }
    pub fn out_of_gas(detail: impl std::fmt::Display) -> Self {
        Self::sdk(11, "out of gas", detail)
    }
    pub fn memo_too_large(detail: impl std::fmt::Display) -> Self {
        Self::sdk(12, "memo too large", detail)
    }
    pub fn insufficient_fee(detail: impl std::fmt::Display) -> Self {
        Self::sdk(13, "insufficient fee", detail)
    }
    pub fn no_signatures(detail: impl std::fmt::Display) -> Self {
        Self::sdk(15, "no signatures supplied", detail)
    }
    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::sdk(18, "invalid request", detail)
    }
    pub fn invalid_height(detail: impl std::fmt::Display) -> Self {
        Self::sdk(26, "invalid height", detail)
    }
    pub fn tx_timeout_height(detail: impl std::fmt::Display) -> Self {
        Self::sdk(30, "tx timeout height", detail)
    }
    pub fn wrong_sequence(expected: u64, got: u64) -> Self {
        Self::sdk(
            32,
            "incorrect account sequence",
            format!("account sequence mismatch, expected {expected}, got {got}"),
        )
    }
    pub fn not_supported(detail: impl std::fmt::Display) -> Self {
        Self::sdk(37, "feature not supported", detail)
    }
    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Self::sdk(38, "not found", detail)
    }
    pub fn wasm_execute(msg_index: usize, detail: impl std::fmt::Display) -> Self {
        Self {
            codespace: "wasm",
            code: 5,
            log: format!(
                "failed to execute message; message index: {msg_index}: {detail}: execute wasm contract failed"
            ),
        }
    }
    pub fn wasm_query(detail: impl std::fmt::Display) -> Self {
        Self {
            codespace: "wasm",
            code: 9,
            log: format!("{detail}: query wasm contract failed"),
        }
    }
    pub fn wasm_no_such_contract(address: &str) -> Self {
        Self {
            codespace: "wasm",
            code: 22,
            log: format!("address {address}: no such contract"),
        }
    }
    /// A panic inside the state machine, recovered as the SDK's `ErrPanic`.
    pub fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Self {
            codespace: "undefined",
            code: 111222,
            log: format!("recovered: {message}: panic"),
        }
    }

    /// An error inside message `msg_index`, keeping its code: the SDK prefixes the index.
    pub fn in_message(mut self, msg_index: usize) -> Self {
        if !self.log.starts_with("failed to execute message") {
            self.log = format!(
                "failed to execute message; message index: {msg_index}: {}",
                self.log
            );
        }
        self
    }
}

impl std::fmt::Display for TxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {} ({}): {}", self.code, self.codespace, self.log)
    }
}

/// A message the devnet executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxMsg {
    Send {
        from: String,
        to: String,
        amount: Vec<Coin>,
    },
    Execute {
        sender: String,
        contract: String,
        msg: Vec<u8>,
        funds: Vec<Coin>,
    },
}

impl TxMsg {
    pub fn signer(&self) -> &str {
        match self {
            TxMsg::Send { from, .. } => from,
            TxMsg::Execute { sender, .. } => sender,
        }
    }

    pub fn type_url(&self) -> &'static str {
        match self {
            TxMsg::Send { .. } => MSG_SEND_URL,
            TxMsg::Execute { .. } => MSG_EXECUTE_URL,
        }
    }

    pub fn module(&self) -> &'static str {
        match self {
            TxMsg::Send { .. } => "bank",
            TxMsg::Execute { .. } => "wasm",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SignerData {
    pub address: String,
    /// Compressed secp256k1 key from the signer info, if the tx carries one.
    pub pubkey: Option<Vec<u8>>,
    pub sequence: u64,
    pub signature: Vec<u8>,
}

/// A tx decoded from its wire bytes, keeping the exact signed bytes.
#[derive(Debug, Clone)]
pub struct DecodedTx {
    pub hash: [u8; 32],
    pub size: u64,
    pub body_bytes: Vec<u8>,
    pub auth_info_bytes: Vec<u8>,
    pub memo: String,
    pub timeout_height: u64,
    pub msgs: Vec<TxMsg>,
    pub signers: Vec<SignerData>,
    pub fee: Vec<Coin>,
    pub gas_limit: u64,
    /// Who pays the fee: the fee's `payer` or else the first signer.
    pub fee_payer: String,
}

pub fn tx_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn coins(
    proto: &[cosmrs::proto::cosmos::base::v1beta1::Coin],
    field: &str,
) -> Result<Vec<Coin>, TxError> {
    proto
        .iter()
        .map(|c| {
            let amount: Uint256 = c.amount.parse().map_err(|_| {
                TxError::invalid_coins(format!("{field}: `{}` is not an amount", c.amount))
            })?;
            if c.denom.is_empty() {
                return Err(TxError::invalid_coins(format!("{field}: empty denom")));
            }
            Ok(Coin::new(amount, c.denom.clone()))
        })
        .collect()
}

/// The protobuf message `type_name` packed in `any`.
fn decode_as<M: Message + Default>(any: &cosmrs::Any, type_name: &str) -> Result<M, TxError> {
    M::decode(any.value.as_slice()).map_err(|e| TxError::tx_decode(format!("{type_name}: {e}")))
}

fn decode_msg(any: &cosmrs::Any) -> Result<TxMsg, TxError> {
    match any.type_url.as_str() {
        MSG_SEND_URL => {
            let m: MsgSend = decode_as(any, "MsgSend")?;
            Ok(TxMsg::Send {
                amount: coins(&m.amount, "MsgSend.amount")?,
                from: m.from_address,
                to: m.to_address,
            })
        }
        MSG_EXECUTE_URL => {
            let m: MsgExecuteContract = decode_as(any, "MsgExecuteContract")?;
            Ok(TxMsg::Execute {
                funds: coins(&m.funds, "MsgExecuteContract.funds")?,
                sender: m.sender,
                contract: m.contract,
                msg: m.msg,
            })
        }
        other => Err(TxError::tx_decode(format!(
            "unable to resolve type URL {other}"
        ))),
    }
}

/// Decodes `TxRaw` bytes and checks what the SDK checks before looking at state
/// (`ValidateBasic`): messages known, signers match signer infos and signatures, direct signing.
pub fn decode(bytes: &[u8]) -> Result<DecodedTx, TxError> {
    let raw = TxRaw::decode(bytes).map_err(|e| TxError::tx_decode(format!("TxRaw: {e}")))?;
    let body = TxBody::decode(raw.body_bytes.as_slice())
        .map_err(|e| TxError::tx_decode(format!("TxBody: {e}")))?;
    let auth_info = AuthInfo::decode(raw.auth_info_bytes.as_slice())
        .map_err(|e| TxError::tx_decode(format!("AuthInfo: {e}")))?;
    if body.messages.is_empty() {
        return Err(TxError::invalid_request(
            "must contain at least one message",
        ));
    }
    let msgs = body
        .messages
        .iter()
        .map(decode_msg)
        .collect::<Result<Vec<_>, _>>()?;
    let mut signer_addresses: Vec<String> = Vec::new();
    for msg in &msgs {
        if !signer_addresses.iter().any(|s| s == msg.signer()) {
            signer_addresses.push(msg.signer().to_string());
        }
    }
    if raw.signatures.is_empty() {
        return Err(TxError::no_signatures("no signatures supplied"));
    }
    if auth_info.signer_infos.len() != signer_addresses.len() {
        return Err(TxError::unauthorized(format!(
            "wrong number of signers; expected {}, got {}",
            signer_addresses.len(),
            auth_info.signer_infos.len()
        )));
    }
    if raw.signatures.len() != signer_addresses.len() {
        return Err(TxError::unauthorized(format!(
            "invalid number of signatures; expected: {}, got {}",
            signer_addresses.len(),
            raw.signatures.len()
        )));
    }
    let mut signers = Vec::with_capacity(signer_addresses.len());
    for ((address, info), signature) in signer_addresses
        .into_iter()
        .zip(&auth_info.signer_infos)
        .zip(raw.signatures)
    {
        let direct = matches!(
            info.mode_info.as_ref().and_then(|m| m.sum.as_ref()),
            Some(mode_info::Sum::Single(single)) if single.mode == SignMode::Direct as i32
        );
        if !direct {
            return Err(TxError::not_supported(
                "only SIGN_MODE_DIRECT single signatures are supported by the devnet",
            ));
        }
        let pubkey = match &info.public_key {
            None => None,
            Some(any) if any.type_url == SECP256K1_PUBKEY_URL => {
                let key =
                    cosmrs::proto::cosmos::crypto::secp256k1::PubKey::decode(any.value.as_slice())
                        .map_err(|e| {
                            TxError::invalid_pubkey(format!("secp256k1 public key: {e}"))
                        })?;
                Some(key.key)
            }
            Some(any) => {
                return Err(TxError::invalid_pubkey(format!(
                    "public key type {} is not supported",
                    any.type_url
                )))
            }
        };
        signers.push(SignerData {
            address,
            pubkey,
            sequence: info.sequence,
            signature,
        });
    }
    let fee = auth_info.fee.unwrap_or_default();
    let fee_payer = if fee.payer.is_empty() {
        signers[0].address.clone()
    } else {
        fee.payer.clone()
    };
    Ok(DecodedTx {
        hash: tx_hash(bytes),
        size: bytes.len() as u64,
        body_bytes: raw.body_bytes,
        auth_info_bytes: raw.auth_info_bytes,
        memo: body.memo,
        timeout_height: body.timeout_height,
        msgs,
        signers,
        fee: coins(&fee.amount, "fee.amount")?,
        gas_limit: fee.gas_limit,
        fee_payer,
    })
}

/// The bytes a signer signs in SIGN_MODE_DIRECT.
pub fn sign_doc_bytes(tx: &DecodedTx, chain_id: &str, account_number: u64) -> Vec<u8> {
    cosmrs::proto::cosmos::tx::v1beta1::SignDoc {
        body_bytes: tx.body_bytes.clone(),
        auth_info_bytes: tx.auth_info_bytes.clone(),
        chain_id: chain_id.to_string(),
        account_number,
    }
    .encode_to_vec()
}

/// Verifies a secp256k1 signature over `sha256(message)`, rejecting high-S signatures as the
/// SDK does.
pub fn verify_secp256k1(pubkey: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use tendermint::crypto::signature::Verifier as _;
    let Some(key) = tendermint::PublicKey::from_raw_secp256k1(pubkey) else {
        return false;
    };
    let Ok(Some(signature)) = tendermint::Signature::new(signature) else {
        return false;
    };
    tendermint::crypto::default::signature::Verifier::verify(key, message, &signature).is_ok()
}

/// The bech32 address of a compressed secp256k1 key: ripemd160(sha256(key)).
pub fn address_of(pubkey: &[u8], prefix: &str) -> Option<String> {
    let key = tendermint::PublicKey::from_raw_secp256k1(pubkey)?;
    cosmrs::crypto::PublicKey::from(key)
        .account_id(prefix)
        .ok()
        .map(|id| id.to_string())
}
