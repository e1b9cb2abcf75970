//! The binary value of one account in a bucket hash, and the bucket hash function.
//!
//! Format version 1 (all integers unsigned LEB128 varints unless said otherwise):
//!
//! ```text
//! 0x01                                   format version
//! n_collaterals                          then n_collaterals times:
//!     denom_id  flags:u8  amount_scaled      flags bit 0 = collateral enabled
//! n_debts                                then n_debts times:
//!     denom_id  flags:u8  amount_scaled      flags bit 0 = uncollateralized debt
//! ```
//!
//! `denom_id` indexes the index's denom table (`…:denoms`). Unknown flag bits, a wrong version,
//! truncation or trailing bytes are decode errors: a reader never guesses at a position.
//! A typical account (one collateral, one debt) takes 10–25 bytes.

use cosmwasm_std::Uint128;

use super::{CollateralEntry, DebtEntry, DenomId};

/// Version byte of the current encoding.
pub const FORMAT_VERSION: u8 = 1;

const FLAG_ENABLED: u8 = 0b1;
const FLAG_UNCOLLATERALIZED: u8 = 0b1;

/// Why a stored account value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("format version {0} is not known to this build (it reads version {FORMAT_VERSION})")]
    UnknownVersion(u8),
    #[error("value ends inside {0}")]
    Truncated(&'static str),
    #[error("{0} does not fit its type")]
    Overflow(&'static str),
    #[error("unknown flag bits {flags:#04x} in {what}")]
    UnknownFlags { what: &'static str, flags: u8 },
    #[error("{0} bytes after the last position")]
    TrailingBytes(usize),
    #[error("{count} {what} is more than the value could hold")]
    ImplausibleCount { what: &'static str, count: u64 },
}

/// FNV-1a (64-bit) of the address bytes: the stable hash that places an account in a bucket.
/// Part of the stored layout: changing it would strand every indexed account.
pub fn address_hash(address: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in address {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// The bucket of `address` among `buckets` (> 0).
pub fn bucket_of(address: &[u8], buckets: u32) -> u32 {
    (address_hash(address) % u64::from(buckets.max(1))) as u32
}

fn put_varint(out: &mut Vec<u8>, mut value: u128) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(CodecError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, what: &'static str) -> Result<u128, CodecError> {
        let mut value: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte(what)?;
            let low = u128::from(b & 0x7f);
            if shift >= 128 || (shift > 121 && low >> (128 - shift) != 0) {
                return Err(CodecError::Overflow(what));
            }
            value |= low << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn small(&mut self, what: &'static str) -> Result<u64, CodecError> {
        u64::try_from(self.varint(what)?).map_err(|_| CodecError::Overflow(what))
    }

    fn denom(&mut self) -> Result<DenomId, CodecError> {
        let id = self.small("denom id")?;
        u32::try_from(id)
            .map(DenomId)
            .map_err(|_| CodecError::Overflow("denom id"))
    }

    fn count(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let count = self.small(what)?;
        // Each entry takes at least 3 bytes: a count beyond that is garbage, not a reason to
        // allocate gigabytes.
        let left = (self.bytes.len() - self.pos) as u64;
        if count > left / 3 + 1 {
            return Err(CodecError::ImplausibleCount { what, count });
        }
        Ok(count as usize)
    }

    /// One list as [`encode`] writes it: a count, then per entry a denom, a flags byte in which
    /// only `flag` may be set, and an amount. `entry` builds each entry from its denom, amount
    /// and whether `flag` is set. `names` name the count, flags and amount in errors.
    fn entries<T>(
        &mut self,
        names: [&'static str; 3],
        flag: u8,
        entry: impl Fn(DenomId, Uint128, bool) -> T,
    ) -> Result<Vec<T>, CodecError> {
        let [count_name, flags_name, amount_name] = names;
        let n = self.count(count_name)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let denom = self.denom()?;
            let flags = self.byte(flags_name)?;
            if flags & !flag != 0 {
                return Err(CodecError::UnknownFlags {
                    what: flags_name,
                    flags,
                });
            }
            let amount = self.varint(amount_name)?;
            entries.push(entry(denom, Uint128::new(amount), flags & flag != 0));
        }
        Ok(entries)
    }
}

/// One list as [`Reader::entries`] reads it: a count, then per entry its denom, `flag` when
/// the entry's flag is set, and its amount.
fn put_entries(
    out: &mut Vec<u8>,
    flag: u8,
    entries: impl ExactSizeIterator<Item = (DenomId, bool, Uint128)>,
) {
    put_varint(out, entries.len() as u128);
    for (denom, flagged, amount_scaled) in entries {
        put_varint(out, u128::from(denom.0));
        out.push(if flagged { flag } else { 0 });
        put_varint(out, amount_scaled.u128());
    }
}

/// Encodes one account's positions (format version 1).
pub fn encode(collaterals: &[CollateralEntry], debts: &[DebtEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 12 * (collaterals.len() + debts.len()));
    out.push(FORMAT_VERSION);
    put_entries(
        &mut out,
        FLAG_ENABLED,
        collaterals
            .iter()
            .map(|c| (c.denom, c.enabled, c.amount_scaled)),
    );
    put_entries(
        &mut out,
        FLAG_UNCOLLATERALIZED,
        debts
            .iter()
            .map(|d| (d.denom, d.uncollateralized, d.amount_scaled)),
    );
    out
}

/// Decodes a value written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<(Vec<CollateralEntry>, Vec<DebtEntry>), CodecError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.byte("version").map_err(|_| CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let collaterals = r.entries(
        ["collateral count", "collateral flags", "collateral amount"],
        FLAG_ENABLED,
        |denom, amount_scaled, enabled| CollateralEntry {
            denom,
            amount_scaled,
            enabled,
        },
    )?;
    let debts = r.entries(
        ["debt count", "debt flags", "debt amount"],
        FLAG_UNCOLLATERALIZED,
        |denom, amount_scaled, uncollateralized| DebtEntry {
            denom,
            amount_scaled,
            uncollateralized,
        },
    )?;
    if r.pos != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - r.pos));
    }
    Ok((collaterals, debts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collateral() -> impl Strategy<Value = CollateralEntry> {
        (any::<u32>(), any::<u128>(), any::<bool>()).prop_map(|(d, a, e)| CollateralEntry {
            denom: DenomId(d),
            amount_scaled: Uint128::new(a),
            enabled: e,
        })
    }

    fn debt() -> impl Strategy<Value = DebtEntry> {
        (any::<u32>(), any::<u128>(), any::<bool>()).prop_map(|(d, a, u)| DebtEntry {
            denom: DenomId(d),
            amount_scaled: Uint128::new(a),
            uncollateralized: u,
        })
    }

    proptest! {
        #[test]
        fn round_trips(
            collaterals in proptest::collection::vec(collateral(), 0..8),
            debts in proptest::collection::vec(debt(), 0..8),
        ) {
            let bytes = encode(&collaterals, &debts);
            let (c, d) = decode(&bytes).unwrap();
            prop_assert_eq!(c, collaterals);
            prop_assert_eq!(d, debts);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn every_truncation_is_an_error(
            collaterals in proptest::collection::vec(collateral(), 0..4),
            debts in proptest::collection::vec(debt(), 1..4),
        ) {
            let bytes = encode(&collaterals, &debts);
            for len in 0..bytes.len() {
                prop_assert!(decode(&bytes[..len]).is_err());
            }
        }
    }

    #[test]
    fn rejects_bad_values_with_a_reason() {
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[7, 0, 0]), Err(CodecError::UnknownVersion(7)));
        assert_eq!(decode(&[1, 0, 0, 9]), Err(CodecError::TrailingBytes(1)));
        assert!(matches!(
            decode(&[1, 1, 0, 0b10, 5, 0]),
            Err(CodecError::UnknownFlags { .. })
        ));
        // A 19-byte varint cannot be a u128.
        let mut too_long = vec![1, 1, 0, 1];
        too_long.extend([0xff; 18]);
        too_long.push(0x7f);
        too_long.push(0);
        assert!(matches!(decode(&too_long), Err(CodecError::Overflow(_))));
        assert!(matches!(
            decode(&[1, 0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(CodecError::ImplausibleCount { .. })
        ));
    }

    #[test]
    fn max_amount_round_trips_and_typical_account_is_small() {
        let c = [CollateralEntry {
            denom: DenomId(3),
            amount_scaled: Uint128::MAX,
            enabled: true,
        }];
        assert_eq!(decode(&encode(&c, &[])).unwrap().0, c);
        let typical = encode(
            &[CollateralEntry {
                denom: DenomId(0),
                amount_scaled: Uint128::new(10_000_000_000_000),
                enabled: true,
            }],
            &[DebtEntry {
                denom: DenomId(1),
                amount_scaled: Uint128::new(6_500_000_000_000),
                uncollateralized: false,
            }],
        );
        assert!(typical.len() <= 24, "{}", typical.len());
    }

    #[test]
    fn bucket_hash_is_stable() {
        // Fixed values: the layout depends on them.
        assert_eq!(address_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(address_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert!(bucket_of(b"osmo1abc", 1024) < 1024);
        assert_eq!(bucket_of(b"osmo1abc", 1), 0);
    }
}
