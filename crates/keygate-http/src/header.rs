//! Extraction of the bearer token from the `Authorization` header.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::AuthError;

/// Longest `Authorization` header value looked at; longer ones are refused unread.
pub const MAX_AUTHORIZATION_LEN: usize = 4096;

/// Extracts the bearer token from `headers`, strictly.
///
/// Accepted: exactly one `Authorization` header of at most
/// [`MAX_AUTHORIZATION_LEN`] bytes, holding the scheme `Bearer` (any case), exactly
/// one space, and one RFC 6750 `b64token` (`[A-Za-z0-9-._~+/]+=*`), nothing else.
///
/// # Errors
///
/// - [`AuthError::MissingToken`]: no `Authorization` header, or another scheme
///   (such as `Basic`).
/// - [`AuthError::InvalidRequest`]: two or more `Authorization` headers, a header
///   over 4 KiB, an empty header or one starting with whitespace, `Bearer` with no
///   token, more than one space or a tab after the scheme, trailing whitespace,
///   extra parts, or characters outside `b64token` (including non-ASCII).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use keygate_http::{AuthError, parse_authorization};
///
/// # fn main() -> Result<(), AuthError> {
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer kg_uk_abc"));
/// assert_eq!(parse_authorization(&headers)?, "kg_uk_abc");
/// # Ok(()) }
/// ```
pub fn parse_authorization(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest);
    }
    let bytes = value.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthError::InvalidRequest);
    }
    let scheme_end = bytes
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(bytes.len());
    let (scheme, rest) = bytes.split_at(scheme_end);
    if scheme.is_empty() {
        return Err(AuthError::InvalidRequest);
    }
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::MissingToken);
    }
    let Some(token) = rest.strip_prefix(b" ") else {
        // `Bearer` alone, or followed by a tab.
        return Err(AuthError::InvalidRequest);
    };
    if !is_b64token(token) {
        return Err(AuthError::InvalidRequest);
    }
    // All bytes are ASCII by now, so this cannot fail.
    std::str::from_utf8(token).map_err(|_| AuthError::InvalidRequest)
}

/// RFC 6750: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token
        .iter()
        .position(|b| !B64TOKEN_BODY[usize::from(*b)])
        .unwrap_or(token.len());
    body_len > 0 && token[body_len..].iter().all(|b| *b == b'=')
}

/// Whether a byte may be in a b64token before its `=` padding: one load per byte of
/// every request's token, where testing the six punctuation bytes took a loop each.
const B64TOKEN_BODY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b: u8 = 0;
    loop {
        table[b as usize] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        if b == u8::MAX {
            break table;
        }
        b += 1;
    }
};

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn parse(value: &[u8]) -> Result<String, AuthError> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        parse_authorization(&headers).map(str::to_owned)
    }

    #[test]
    fn accepts_bearer_in_any_case() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                parse(format!("{scheme} abc").as_bytes()),
                Ok("abc".to_owned())
            );
        }
    }

    #[test]
    fn b64token_grammar() {
        assert!(is_b64token(b"kg_uk_AZaz09-._~+/"));
        assert!(is_b64token(b"abc=="));
        assert!(!is_b64token(b""));
        assert!(!is_b64token(b"=="));
        assert!(!is_b64token(b"ab=c"));
        assert!(!is_b64token(b"a b"));
        assert!(!is_b64token(b"a,b"));
        assert!(!is_b64token("é".as_bytes()));
        // The table holds exactly ALPHA / DIGIT / the six punctuation bytes.
        for b in 0..=u8::MAX {
            let grammar = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(B64TOKEN_BODY[usize::from(b)], grammar, "byte {b}");
        }
    }

    /// Asserts that every header value of `values` is refused with `expected`.
    fn assert_each_refused(values: &[&[u8]], expected: &AuthError) {
        for value in values {
            assert_eq!(parse(value).as_ref(), Err(expected), "{value:?}");
        }
    }

    #[test]
    fn malformed_is_invalid_request() {
        let malformed: [&[u8]; 10] = [
            b"Bearer",
            b"Bearer ",
            b"Bearer  abc",
            b"Bearer\tabc",
            b"Bearer abc ",
            b"Bearer abc def",
            b"Bearer a\"b",
            b"Bearer \xc3\xa9t\xc3\xa9",
            b" Bearer abc",
            b"",
        ];
        assert_each_refused(&malformed, &AuthError::InvalidRequest);
    }

    #[test]
    fn other_schemes_are_missing_token() {
        let others: [&[u8]; 4] = [b"Basic dXNlcjpwYXNz", b"Token abc", b"Bearerabc", b"Digest"];
        assert_each_refused(&others, &AuthError::MissingToken);
        assert_eq!(
            parse_authorization(&HeaderMap::new()),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn oversized_is_refused_even_if_not_bearer() {
        let long = format!("Basic {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(parse(long.as_bytes()), Err(AuthError::InvalidRequest));
        let ok = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN - 7));
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
