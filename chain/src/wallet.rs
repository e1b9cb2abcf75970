//! A secp256k1 wallet derived from a BIP-39 mnemonic along the Cosmos HD path. Secrets never
//! leave this module in printable form: `Debug` shows only the address and path.

use std::fmt;

use bip32::{DerivationPath, Language, Mnemonic};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::crypto::PublicKey;
use cosmrs::AccountId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// Deliberately carries no part of the phrase.
    #[error("mnemonic is not a valid BIP-39 English phrase ({words} words): {reason}")]
    InvalidMnemonic { words: usize, reason: String },
    #[error("derivation path `{path}` is invalid: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("cannot derive the key at `{path}`: {reason}")]
    Derivation { path: String, reason: String },
    #[error("cannot form a `{prefix}` address: {reason}")]
    Address { prefix: String, reason: String },
    #[error("signing failed: {0}")]
    Signing(String),
}

pub struct Wallet {
    key: SigningKey,
    public_key: PublicKey,
    address: AccountId,
    path: String,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &self.address.as_ref())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// The Cosmos HD path for account `index`: m/44'/118'/0'/0/index.
    pub fn cosmos_path(index: u32) -> String {
        format!("m/44'/118'/0'/0/{index}")
    }

    /// The wallet at m/44'/118'/0'/0/`index` of `mnemonic`, addressed with `prefix`.
    pub fn from_mnemonic(mnemonic: &str, prefix: &str, index: u32) -> Result<Self, WalletError> {
        Self::from_mnemonic_path(mnemonic, prefix, &Self::cosmos_path(index))
    }

    /// The wallet at any BIP-32 `path` of `mnemonic` (empty BIP-39 passphrase).
    pub fn from_mnemonic_path(
        mnemonic: &str,
        prefix: &str,
        path: &str,
    ) -> Result<Self, WalletError> {
        let words: Vec<&str> = mnemonic.split_whitespace().collect();
        let phrase = Mnemonic::new(words.join(" "), Language::English).map_err(|e| {
            WalletError::InvalidMnemonic {
                words: words.len(),
                reason: e.to_string(),
            }
        })?;
        let derivation: DerivationPath =
            path.parse()
                .map_err(|e: bip32::Error| WalletError::InvalidPath {
                    path: path.to_string(),
                    reason: e.to_string(),
                })?;
        let seed = phrase.to_seed("");
        let key = SigningKey::derive_from_path(seed.as_bytes(), &derivation).map_err(|e| {
            WalletError::Derivation {
                path: path.to_string(),
                reason: e.to_string(),
            }
        })?;
        let public_key = key.public_key();
        let address = public_key
            .account_id(prefix)
            .map_err(|e| WalletError::Address {
                prefix: prefix.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Wallet {
            key,
            public_key,
            address,
            path: path.to_string(),
        })
    }

    pub fn address(&self) -> &AccountId {
        &self.address
    }

    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// A 64-byte compact ECDSA signature over SHA-256(`message`) (what SIGN_MODE_DIRECT wants).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, WalletError> {
        self.key
            .sign(message)
            .map(|s| s.to_vec())
            .map_err(|e| WalletError::Signing(e.to_string()))
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use tendermint::crypto::signature::Verifier as _;

    /// cosmjs's test faucet ("economy stock ..."), whose addresses at m/44'/118'/0'/0/{0,1} and
    /// public keys are published in cosmjs's stargate test utilities (testutils.spec.ts) and its
    /// simapp/wasmd CI scripts: an independent derivation to check ours against.
    pub(crate) const FAUCET_MNEMONIC: &str = "economy stock theory fatal elder harbor betray wasp final emotion task crumble siren bottom lizard educate guess current outdoor pair theory focus wife stone";

    #[test]
    fn derives_the_published_cosmjs_faucet_addresses() {
        for (index, address, pubkey) in [
            (
                0,
                "cosmos1pkptre7fdkl6gfrzlesjjvhxhlc3r4gmmk8rs6",
                "A08EGB7ro1ORuFhjOnZcSgwYlpe0DSFjVNUIkNNQxwKQ",
            ),
            (
                1,
                "cosmos10dyr9899g6t0pelew4nvf4j5c3jcgv0r73qga5",
                "AiDosfIbBi54XJ1QjCeApumcy/FjdtF+YhywPf3DKTx7",
            ),
        ] {
            let wallet = Wallet::from_mnemonic(FAUCET_MNEMONIC, "cosmos", index).unwrap();
            assert_eq!(wallet.address().as_ref(), address, "index {index}");
            let derived =
                base64::engine::general_purpose::STANDARD.encode(wallet.public_key().to_bytes());
            assert_eq!(derived, pubkey, "index {index}");
        }
    }

    #[test]
    fn derivation_is_deterministic_and_prefix_only_changes_the_hrp() {
        let a = Wallet::from_mnemonic(FAUCET_MNEMONIC, "osmo", 3).unwrap();
        // Extra whitespace in the phrase is not a different wallet.
        let spaced = FAUCET_MNEMONIC.replace(' ', "  ");
        let b = Wallet::from_mnemonic(&format!(" {spaced}\n"), "osmo", 3).unwrap();
        assert_eq!(a.address(), b.address());
        assert!(a.address().as_ref().starts_with("osmo1"));
        let c = Wallet::from_mnemonic(FAUCET_MNEMONIC, "cosmos", 3).unwrap();
        assert_eq!(a.address().to_bytes(), c.address().to_bytes());
        assert_eq!(a.path(), "m/44'/118'/0'/0/3");
    }

    #[test]
    fn signatures_verify_under_the_public_key() {
        let w = Wallet::from_mnemonic(FAUCET_MNEMONIC, "osmo", 0).unwrap();
        let message = b"sign doc bytes";
        let signature = w.sign(message).unwrap();
        assert_eq!(signature.len(), 64);
        let public_key: tendermint::PublicKey = w.public_key().into();
        let signature = tendermint::Signature::try_from(signature.as_slice()).unwrap();
        tendermint::crypto::default::signature::Verifier::verify(public_key, message, &signature)
            .unwrap();
        assert!(tendermint::crypto::default::signature::Verifier::verify(
            public_key,
            b"another message",
            &signature
        )
        .is_err());
    }

    #[test]
    fn never_prints_or_echoes_secrets() {
        let w = Wallet::from_mnemonic(FAUCET_MNEMONIC, "osmo", 0).unwrap();
        let shown = format!("{w:?}");
        assert!(
            shown.contains("osmo1") && !shown.contains("economy"),
            "{shown}"
        );

        let bad = FAUCET_MNEMONIC.replace("economy", "zebra");
        let err = Wallet::from_mnemonic(&bad, "osmo", 0)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("zebra") && !err.contains("stock"), "{err}");
        assert!(err.contains("24 words"), "{err}");
    }
}
