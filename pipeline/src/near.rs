//! The keys of the near-liquidation set: the accounts whose health factor the health checkers
//! last found below their `--watch-threshold`, scored by it. The health checkers write it; the
//! dashboard shows it and the liquidators arm its lowest accounts (see the health checker's
//! `output` module for its layout).

use crate::jobs::ProtocolKind;

/// Keys of one chain's and protocol's near-liquidation set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearKeys {
    /// Every account of the set, score = its health factor.
    pub all: String,
    /// Index bucket → height of the job that last wrote it.
    pub heights: String,
    bucket_prefix: String,
}

impl NearKeys {
    /// Under `--queue-prefix` `prefix`.
    pub fn new(prefix: &str, chain_id: &str, protocol: ProtocolKind) -> Self {
        let base = format!("{prefix}:{chain_id}:{}:near", protocol.as_str());
        Self {
            heights: format!("{base}:heights"),
            bucket_prefix: format!("{base}:bucket:"),
            all: base,
        }
    }

    /// The accounts of index bucket `bucket` only.
    pub fn bucket(&self, bucket: u32) -> String {
        format!("{}{bucket}", self.bucket_prefix)
    }
}
