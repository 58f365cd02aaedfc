//! Parsing, generating and displaying tokens.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::base62::{encode_fixed, fill_random, is_base62};
use crate::error::{ParseError, RandomError};
use crate::format::{KeyKind, MAX_BRAND_LEN, validate_brand};

/// Length of the public key id, in characters.
pub const ID_LEN: usize = 12;
/// Length of the secret part, in characters.
pub const SECRET_LEN: usize = 30;
/// Length of the checksum, in characters.
pub const CHECKSUM_LEN: usize = 6;
/// Length of the body after the prefix: id, secret and checksum.
pub const BODY_LEN: usize = ID_LEN + SECRET_LEN + CHECKSUM_LEN;
/// Longest possible token: a 16-character brand, `_`, kind, `_`, body.
pub const MAX_TOKEN_LEN: usize = MAX_BRAND_LEN + 4 + BODY_LEN;

/// The public id of a key: 12 base62 characters, safe to log and show.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; ID_LEN]);

impl KeyId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Constructed only from base62 bytes, which are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// A fresh random id.
    ///
    /// # Errors
    ///
    /// Fails only when the operating system cannot provide randomness.
    pub fn random() -> Result<Self, RandomError> {
        let mut id = [0u8; ID_LEN];
        fill_random(&mut id)?;
        Ok(Self(id))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let id: [u8; ID_LEN] = bytes.try_into().ok()?;
        id.iter().all(|b| is_base62(*b)).then_some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.as_bytes()).ok_or(InvalidKeyId)
    }
}

/// A string that is not a key id (12 base62 characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key id is 12 characters of 0-9, A-Z, a-z")]
pub struct InvalidKeyId;

serde_as_str!(KeyId, |id| id.as_str(), |s| {
    s.parse().map_err(serde::de::Error::custom)
});

/// A well-formed keygate token, holding its raw text in memory that is zeroed on drop.
///
/// `Display` and `Debug` show only the prefix and the public id (`kg_uk_<id>…`); the
/// raw text is reachable only through [`Token::expose`], for hashing it and for
/// showing it to its owner the one time it is created.
#[derive(Clone)]
pub struct Token {
    raw: Zeroizing<String>,
    /// Length of `<brand>_<kind>_`.
    prefix_len: usize,
    kind: KeyKind,
    id: KeyId,
}

impl Token {
    /// Parses `s` as a token of any brand, checking shape and checksum.
    ///
    /// Parsing reads the string from the right: the body is what follows the last
    /// `_`, so brands may themselves contain `_`.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] saying exactly what is wrong, never echoing the secret.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let Checked {
            prefix_len,
            kind,
            id,
        } = check(s)?;
        Ok(Self {
            raw: Zeroizing::new(s.to_owned()),
            prefix_len,
            kind,
            id,
        })
    }

    /// Checks `s` exactly as [`Token::parse`] does (shape and checksum) without copying
    /// it, and returns its public id: for a verifier that goes on to hash the string it
    /// was given and look the id up.
    ///
    /// ```
    /// use keygate_token::{KeyKind, Token, TokenFormat};
    ///
    /// let token = TokenFormat::default().generate(KeyKind::Tenant)?;
    /// assert_eq!(Token::check_id(token.expose())?, token.id());
    /// assert!(Token::check_id("kg_tk_nope").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The same [`ParseError`] as [`Token::parse`].
    pub fn check_id(s: &str) -> Result<KeyId, ParseError> {
        check(s).map(|checked| checked.id)
    }

    /// Generates a token with a fresh id and secret. The brand must be valid.
    pub(crate) fn generate(brand: &str, kind: KeyKind) -> Result<Self, RandomError> {
        let prefix = format!("{brand}_{}_", kind.code());
        let mut id = [0u8; ID_LEN];
        fill_random(&mut id)?;
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        fill_random(secret.as_mut_slice())?;
        // Exact capacity: the string never reallocates, so no unzeroed copy of the
        // secret is left behind in freed memory.
        let mut raw = Zeroizing::new(String::with_capacity(prefix.len() + BODY_LEN));
        raw.push_str(&prefix);
        raw.extend(id.iter().chain(secret.iter()).map(|b| char::from(*b)));
        let checksum = checksum_of(raw.as_bytes());
        raw.extend(checksum.iter().map(|b| char::from(*b)));
        Ok(Self {
            raw,
            prefix_len: prefix.len(),
            kind,
            id: KeyId(id),
        })
    }

    /// The whole raw token. Hash it, or show it to its owner once; never log it.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The brand, such as `kg`.
    pub fn brand(&self) -> &str {
        &self.raw[..self.prefix_len - 4]
    }

    /// The prefix, such as `kg_uk_`.
    pub fn prefix(&self) -> &str {
        &self.raw[..self.prefix_len]
    }

    /// The kind written in the prefix (a hint: the stored kind is the truth).
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The public key id.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}…", self.prefix(), self.id)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({self})")
    }
}

impl FromStr for Token {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What [`check`] found in a well-formed token.
struct Checked {
    /// Length of `<brand>_<kind>_`.
    prefix_len: usize,
    kind: KeyKind,
    id: KeyId,
}

/// Shape and checksum of `s`, read from the right, without copying it.
fn check(s: &str) -> Result<Checked, ParseError> {
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    if s.len() > MAX_TOKEN_LEN {
        return Err(ParseError::TooLong {
            len: s.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let last = s.rfind('_').ok_or(ParseError::BadPrefix)?;
    let (head, body) = (&s[..last], &s[last + 1..]);
    let (brand, code) = head.rsplit_once('_').ok_or(ParseError::BadPrefix)?;
    validate_brand(brand).map_err(ParseError::BadBrand)?;
    let kind = KeyKind::from_code(code).ok_or_else(|| ParseError::UnknownKind {
        found: code.chars().take(4).collect(),
    })?;
    if body.len() != BODY_LEN {
        return Err(ParseError::BadLength {
            expected: BODY_LEN,
            found: body.chars().count(),
        });
    }
    if let Some(i) = body.bytes().position(|b| !is_base62(b)) {
        return Err(ParseError::InvalidChar {
            position: last + 1 + i,
        });
    }
    let (signed, checksum) = s.as_bytes().split_at(s.len() - CHECKSUM_LEN);
    if checksum != checksum_of(signed) {
        return Err(ParseError::ChecksumMismatch);
    }
    let id = KeyId::from_bytes(&body.as_bytes()[..ID_LEN]).ok_or(ParseError::BadPrefix)?;
    Ok(Checked {
        prefix_len: last + 1,
        kind,
        id,
    })
}

/// CRC32 (IEEE) of `signed`, as six zero-padded base62 characters.
fn checksum_of(signed: &[u8]) -> [u8; CHECKSUM_LEN] {
    encode_fixed::<CHECKSUM_LEN>(u64::from(crc32fast::hash(signed)))
}

/// A form of a credential that is safe to print.
///
/// A keygate token shows as its prefix and public id (`kg_uk_<id>…`); anything else
/// keeps at most its first four characters (enough to recognise `ghp_`, `AKIA`,
/// `sk-a`) when it is long enough that four characters reveal little.
pub fn redact(credential: &str) -> String {
    if let Ok(token) = Token::parse(credential) {
        return token.to_string();
    }
    let len = credential.chars().count();
    if len >= 16 {
        let head: String = credential.chars().take(4).collect();
        format!("{head}… ({len} chars)")
    } else {
        format!("… ({len} chars)")
    }
}

#[cfg(test)]
mod tests;
