//! Tokens built by hand.

/// The base62 alphabet of token bodies, in digit order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `signed` (a token's prefix, id and secret) followed by its valid checksum: the
/// CRC32 (IEEE) of `signed` in six base62 characters, most significant first,
/// zero-padded. For tokens that pass the offline shape and checksum check yet name no
/// key, or name a key with another secret.
///
/// Computed here from the design's description, not by keygate-token, so a test that
/// forges with it also checks keygate-token's checksum.
pub fn with_checksum(signed: &str) -> String {
    let mut v = crc32fast::hash(signed.as_bytes());
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    let mut out = String::with_capacity(signed.len() + sum.len());
    out.push_str(signed);
    out.extend(sum.iter().map(|b| char::from(*b)));
    out
}
