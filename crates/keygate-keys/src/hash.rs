//! SHA-256 of whole tokens, compared in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 hash of a whole raw token: the only form in which a key is stored.
///
/// `==` is the constant-time [`TokenHash::ct_eq`]: no comparison of stored hashes can
/// stop at the first differing byte by accident.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for TokenHash {}

impl TokenHash {
    /// Hashes the whole raw token (prefix, id, secret and checksum).
    pub fn of(raw_token: &str) -> Self {
        Self(Sha256::digest(raw_token.as_bytes()).into())
    }

    /// Wraps 32 bytes read back from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a stored hash of any length; `None` unless it is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 32 hash bytes, for storing.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Compares two hashes in constant time.
    ///
    /// Word by word (four `u64` comparisons with `subtle`, all of them always
    /// made), which costs a fraction of `subtle`'s byte-by-byte slice comparison.
    pub fn ct_eq(&self, other: &Self) -> bool {
        let mut equal = subtle::Choice::from(1);
        for i in 0..4 {
            equal &= word(&self.0, i).ct_eq(&word(&other.0, i));
        }
        equal.into()
    }
}

/// The `i`-th 8-byte word of a hash.
fn word(bytes: &[u8; 32], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
    u64::from_ne_bytes(w)
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_and_debug_redacts() {
        let a = TokenHash::of("kg_uk_x");
        assert!(a.ct_eq(&TokenHash::of("kg_uk_x")));
        assert!(!a.ct_eq(&TokenHash::of("kg_uk_y")));
        // A difference in any single byte is seen.
        for i in 0..32 {
            let mut bytes = *a.as_bytes();
            bytes[i] ^= 0x80;
            assert!(!a.ct_eq(&TokenHash::from_bytes(bytes)), "byte {i}");
        }
        assert_eq!(format!("{a:?}"), "TokenHash(…)");
        assert_eq!(TokenHash::from_slice(a.as_bytes()), Some(a));
        assert_eq!(TokenHash::from_slice(&[0; 31]), None);
    }
}
