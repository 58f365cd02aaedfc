//! Errors of this crate. None of them ever holds or prints secret material.

/// Why a string is not a valid keygate token.
///
/// The messages say exactly what is wrong (so a person can fix a pasted token) and
/// never repeat the token or its secret part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The string is empty.
    #[error("token is empty")]
    Empty,
    /// The string is longer than any keygate token can be.
    #[error("token is {len} bytes long; a keygate token is at most {max}")]
    TooLong {
        /// Length found, in bytes.
        len: usize,
        /// Longest possible token, in bytes.
        max: usize,
    },
    /// The string does not start with `<brand>_<kind>_`.
    #[error("token does not start with a `<brand>_<kind>_` prefix")]
    BadPrefix,
    /// The brand part of the prefix is not a valid brand.
    #[error("token prefix has an invalid brand: {0}")]
    BadBrand(BrandError),
    /// The kind part of the prefix is neither `uk` nor `tk`.
    #[error("token kind {found:?} is unknown; expected `uk` (user key) or `tk` (tenant key)")]
    UnknownKind {
        /// The kind found (two characters or fewer of the prefix, never the secret).
        found: String,
    },
    /// The body after the prefix has the wrong length.
    #[error("token body is {found} characters long; expected {expected}")]
    BadLength {
        /// Expected body length.
        expected: usize,
        /// Body length found.
        found: usize,
    },
    /// A character of the body is not base62 (`0-9A-Za-z`).
    #[error("token has a character that is not base62 at position {position}")]
    InvalidChar {
        /// Byte offset of the offending character in the whole token.
        position: usize,
    },
    /// The checksum does not match: the token was mistyped or truncated.
    #[error("token checksum does not match (mistyped or altered token)")]
    ChecksumMismatch,
    /// The brand of the token is not the one the caller expects.
    #[error("token brand is not the one this server issues")]
    WrongBrand,
}

/// Why a brand is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrandError {
    /// The brand is empty.
    #[error("brand is empty")]
    Empty,
    /// The brand is longer than 16 characters.
    #[error("brand is {0} characters long; at most 16 are allowed")]
    TooLong(usize),
    /// The brand does not start with a lowercase ASCII letter.
    #[error("brand must start with a lowercase ASCII letter")]
    BadStart,
    /// The brand has a character other than `a-z`, `0-9` and `_`.
    #[error("brand may contain only lowercase ASCII letters, digits and `_` (found {0:?})")]
    BadChar(char),
}

/// The operating system could not provide randomness.
#[derive(Debug, thiserror::Error)]
#[error("the operating system random number generator failed: {0}")]
pub struct RandomError(getrandom::Error);

impl RandomError {
    pub(crate) fn new(e: getrandom::Error) -> Self {
        Self(e)
    }
}
