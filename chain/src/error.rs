//! Errors of the chain client. Each names where it happened (RPC endpoint, method, contract) so a
//! log line is enough to find the cause.

use std::fmt;
use std::time::Duration;

use super::config::ChainConfigError;
use super::wallet::WalletError;
use super::TxHash;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node could not be reached or answered garbage at the transport level. When several
    /// endpoints are configured this is the last one's error after all were tried.
    #[error("{method} on {endpoint}: transport error: {message}")]
    Transport {
        endpoint: String,
        method: &'static str,
        message: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{method} on {endpoint}: RPC error: {message}")]
    Rpc {
        endpoint: String,
        method: &'static str,
        message: String,
    },
    /// An ABCI query answered with a non-zero code (contract error, unknown account, ...).
    #[error("{what} on {endpoint} failed with code {code} (codespace `{codespace}`): {log}")]
    Abci {
        endpoint: String,
        what: String,
        code: u32,
        codespace: String,
        log: String,
    },
    /// An answer that does not decode: bad JSON from a contract, bad protobuf from the node.
    #[error("{what} from {endpoint}: cannot decode: {message}")]
    Decode {
        endpoint: String,
        what: String,
        message: String,
    },
    #[error("account {address} not found on {endpoint}")]
    AccountNotFound { endpoint: String, address: String },
    #[error("timed out after {after:?} waiting for {what} on {endpoint}")]
    Timeout {
        endpoint: String,
        what: String,
        after: Duration,
    },
    /// The chain refused a transaction (simulation, CheckTx or DeliverTx).
    #[error(transparent)]
    Rejected(Box<TxRejection>),
    #[error("building tx: {0}")]
    Build(String),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Config(#[from] ChainConfigError),
}

impl ChainError {
    /// The rejection, when the chain refused a transaction.
    pub fn rejection(&self) -> Option<&TxRejection> {
        match self {
            ChainError::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// Transport failures and timeouts may succeed on retry; everything else will not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ChainError::Transport { .. } | ChainError::Timeout { .. }
        )
    }

    /// The node answered that it has committed no block yet: a chain that has just started
    /// (a service started before the devnet's first block). Not a failure: wait and ask again.
    /// CometBFT says `height 1 must be less than or equal to the current blockchain height 0`
    /// (its status may still report height 1, tendermint-rs's default), the Cosmos SDK answers
    /// a query at height 1 with `cannot query with height in the future (1 > 0)` (code 26), and
    /// the devnet also says `no block has been committed yet`.
    pub fn is_no_block_yet(&self) -> bool {
        match self {
            ChainError::Rpc { message, .. } => {
                message.contains("current blockchain height 0")
                    || message.contains("no block has been committed yet")
            }
            ChainError::Abci { log, .. } => {
                log.contains("cannot query with height in the future") && log.contains(" > 0)")
            }
            _ => false,
        }
    }
}

/// Where in its life a transaction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStage {
    Simulate,
    CheckTx,
    DeliverTx,
}

impl fmt::Display for TxStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxStage::Simulate => "simulation",
            TxStage::CheckTx => "CheckTx",
            TxStage::DeliverTx => "DeliverTx",
        })
    }
}

/// Why the chain refused a transaction, in the terms a liquidator reacts to. The numeric codes
/// are the Cosmos SDK's (codespace `sdk`, types/errors/errors.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxErrorCode {
    /// sdk 4: bad signature or signer.
    Unauthorized,
    /// sdk 5: the balance does not cover funds or fee.
    InsufficientFunds,
    /// sdk 11: gas limit too low.
    OutOfGas,
    /// sdk 13: fee below the gas price.
    InsufficientFee,
    /// sdk 30: the chain is past the tx's timeout height; sign again with a later one.
    TimeoutHeight,
    /// sdk 32: the sequence in the tx is not the account's; resync and re-sign.
    WrongSequence,
    /// The contract refused the message (codespace `wasm`); the log carries its message.
    Contract,
    /// Anything else; see the raw code and codespace.
    Other,
}

impl TxErrorCode {
    pub fn classify(codespace: &str, code: u32) -> TxErrorCode {
        match (codespace, code) {
            ("sdk" | "", 4) => TxErrorCode::Unauthorized,
            ("sdk" | "", 5) => TxErrorCode::InsufficientFunds,
            ("sdk" | "", 11) => TxErrorCode::OutOfGas,
            ("sdk" | "", 13) => TxErrorCode::InsufficientFee,
            ("sdk" | "", 30) => TxErrorCode::TimeoutHeight,
            ("sdk" | "", 32) => TxErrorCode::WrongSequence,
            ("wasm", _) => TxErrorCode::Contract,
            _ => TxErrorCode::Other,
        }
    }
}

/// A refused transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tx{} refused at {stage} by {endpoint}: {kind:?} (codespace `{codespace}`, code {code}): {log}", .hash.map(|h| format!(" {h}")).unwrap_or_default())]
pub struct TxRejection {
    pub stage: TxStage,
    pub kind: TxErrorCode,
    pub code: u32,
    pub codespace: String,
    pub log: String,
    pub hash: Option<TxHash>,
    pub endpoint: String,
}

impl TxRejection {
    pub fn new(
        stage: TxStage,
        endpoint: &str,
        codespace: &str,
        code: u32,
        log: String,
        hash: Option<TxHash>,
    ) -> Self {
        TxRejection {
            stage,
            kind: TxErrorCode::classify(codespace, code),
            code,
            codespace: codespace.to_string(),
            log,
            hash,
            endpoint: endpoint.to_string(),
        }
    }

    /// The sequence the chain expected, read from the SDK's log
    /// ("account sequence mismatch, expected 7, got 6: ..."), so a sender can resync without
    /// another query.
    pub fn expected_sequence(&self) -> Option<u64> {
        if self.kind != TxErrorCode::WrongSequence {
            return None;
        }
        let rest = &self.log[self.log.find("expected ")? + "expected ".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sdk_codes_and_keeps_contract_errors_apart() {
        assert_eq!(TxErrorCode::classify("sdk", 32), TxErrorCode::WrongSequence);
        assert_eq!(TxErrorCode::classify("sdk", 4), TxErrorCode::Unauthorized);
        assert_eq!(
            TxErrorCode::classify("sdk", 5),
            TxErrorCode::InsufficientFunds
        );
        assert_eq!(TxErrorCode::classify("sdk", 11), TxErrorCode::OutOfGas);
        assert_eq!(
            TxErrorCode::classify("sdk", 13),
            TxErrorCode::InsufficientFee
        );
        // cosmos-sdk types/errors: ErrTxTimeoutHeight is code 30.
        assert_eq!(TxErrorCode::classify("sdk", 30), TxErrorCode::TimeoutHeight);
        // wasmd's "execute wasm contract failed" is code 5 too, in its own codespace.
        assert_eq!(TxErrorCode::classify("wasm", 5), TxErrorCode::Contract);
        assert_eq!(TxErrorCode::classify("sdk", 2), TxErrorCode::Other);
    }

    #[test]
    fn reads_the_expected_sequence_from_the_log() {
        let r = TxRejection::new(
            TxStage::CheckTx,
            "http://n",
            "sdk",
            32,
            "account sequence mismatch, expected 17, got 15: incorrect account sequence".into(),
            None,
        );
        assert_eq!(r.expected_sequence(), Some(17));
        let text = r.to_string();
        assert!(
            text.contains("CheckTx") && text.contains("http://n"),
            "{text}"
        );
        let other = TxRejection::new(TxStage::CheckTx, "n", "sdk", 5, "expected 3".into(), None);
        assert_eq!(other.expected_sequence(), None);
    }

    #[test]
    fn tells_a_chain_without_blocks_from_other_rpc_errors() {
        let rpc = |message: &str| ChainError::Rpc {
            endpoint: "http://n".into(),
            method: "block",
            message: message.into(),
        };
        let beyond = |height: u64, latest: u64| {
            rpc(&format!(
                "Internal error: height {height} must be less than or equal to the current \
                 blockchain height {latest} (code: -32603)"
            ))
        };
        assert!(beyond(1, 0).is_no_block_yet());
        assert!(rpc("Internal error: no block has been committed yet").is_no_block_yet());
        assert!(!beyond(12, 10).is_no_block_yet());
        assert!(!beyond(101, 100).is_no_block_yet());
        assert!(
            !rpc("Internal error: height 3 is not available, lowest height is 5").is_no_block_yet()
        );
        let abci = |log: &str| ChainError::Abci {
            endpoint: "http://n".into(),
            what: "smart query `markets`".into(),
            code: 26,
            codespace: "sdk".into(),
            log: log.into(),
        };
        assert!(abci(
            "cannot query with height in the future (1 > 0); please provide a valid height: \
             invalid height"
        )
        .is_no_block_yet());
        assert!(!abci(
            "cannot query with height in the future (9 > 8); please provide a valid height"
        )
        .is_no_block_yet());
        let transport = ChainError::Transport {
            endpoint: "http://n".into(),
            method: "block",
            message: "no block has been committed yet".into(),
        };
        assert!(!transport.is_no_block_yet());
    }
}
