//! Base62 alphabet, unbiased random strings and fixed-width checksum encoding.

use crate::error::RandomError;

/// The base62 alphabet in ASCII order: digits, upper case, lower case.
pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `b` is one of the 62 base62 characters.
pub(crate) fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Fills `out` with characters drawn uniformly from the base62 alphabet.
///
/// Each random byte is reduced to six bits and values 62 and 63 are rejected, so
/// every character is equally likely (no modulo bias).
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), RandomError> {
    let mut filled = 0;
    let mut buf = [0u8; 64];
    while filled < out.len() {
        getrandom::fill(&mut buf).map_err(RandomError::new)?;
        for b in buf {
            let v = b & 0x3f;
            if v < 62 {
                out[filled] = ALPHABET[usize::from(v)];
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Returns `len` characters drawn uniformly from the base62 alphabet using the
/// operating system's CSPRNG.
///
/// Other keygate crates use this for identifiers and one-time challenges; each
/// character carries log2(62) ≈ 5.95 bits, so 22 characters exceed 128 bits.
///
/// # Errors
///
/// Fails only when the operating system cannot provide randomness.
pub fn random_base62(len: usize) -> Result<String, RandomError> {
    let mut out = vec![0u8; len];
    fill_random(&mut out)?;
    // Every byte comes from ALPHABET, which is ASCII.
    Ok(out.into_iter().map(char::from).collect())
}

/// Encodes `value` as exactly `N` base62 characters, most significant first,
/// zero-padded on the left. `N` must be wide enough for `value` (6 for a `u32`).
pub(crate) fn encode_fixed<const N: usize>(mut value: u64) -> [u8; N] {
    let mut out = [ALPHABET[0]; N];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_fixed_pads_and_orders() {
        assert_eq!(&encode_fixed::<6>(0), b"000000");
        assert_eq!(&encode_fixed::<6>(61), b"00000z");
        assert_eq!(&encode_fixed::<6>(62), b"000010");
        assert_eq!(&encode_fixed::<6>(u64::from(u32::MAX)), b"4gfFC3");
    }

    #[test]
    fn random_strings_use_only_the_alphabet() {
        let s = random_base62(500).unwrap();
        assert_eq!(s.len(), 500);
        assert!(s.bytes().all(is_base62));
    }

    #[test]
    fn random_strings_cover_the_whole_alphabet() {
        // 62 * 200 draws: the chance that any one character never shows is
        // about 62 * (61/62)^12400, far below 1e-80.
        let s = random_base62(62 * 200).unwrap();
        for c in ALPHABET {
            assert!(s.as_bytes().contains(c), "{} never drawn", char::from(*c));
        }
    }
}
