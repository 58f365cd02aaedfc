//! `Token::parse` on arbitrary text, and generate → parse round trips.
//!
//! Properties, for every input:
//! - parsing never panics, and an error message never repeats a long base62 body;
//! - an accepted token is exactly its input (`expose()`), its prefix is
//!   `<brand>_<kind code>_` with a valid brand, the id is the 12 characters after the
//!   prefix, the checksum agrees with an independent CRC32/base62 computation, `Display`
//!   and `redact` show prefix + id + `…` and never the secret, the brand's own
//!   `TokenFormat` accepts it, and `recognise` finds exactly it, spanning the input;
//! - structured: a token built here from a fuzzer-chosen brand, kind and body parses
//!   back to the same brand, kind and id exactly when the brand is valid, and changing
//!   any one body character to another base62 character is a checksum mismatch.

#![no_main]

use keygate_token::{
    BODY_LEN, CHECKSUM_LEN, CredentialKind, ID_LEN, KeyKind, ParseError, SECRET_LEN, Token,
    TokenFormat, recognise, redact,
};
use libfuzzer_sys::fuzz_target;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_arbitrary(text);
    }
    check_structured(data);
});

/// The checksum as the design describes it: CRC32 (IEEE) of everything before it,
/// six base62 characters, most significant first, zero-padded.
fn checksum(signed: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(signed);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

fn check_arbitrary(text: &str) {
    let parsed = Token::parse(text);
    assert_eq!(parsed.is_ok(), text.parse::<Token>().is_ok());
    let token = match parsed {
        Ok(token) => token,
        Err(err) => {
            let message = err.to_string();
            let body = text.rsplit('_').next().unwrap_or(text);
            if body.len() >= 12 && body.bytes().all(|b| b.is_ascii_alphanumeric()) {
                assert!(
                    !message.contains(body),
                    "error message repeats the token body: {message:?}"
                );
            }
            return;
        }
    };

    assert_eq!(token.expose(), text);
    let prefix = token.prefix();
    let kind_code = token.kind().code();
    assert_eq!(prefix, format!("{}_{kind_code}_", token.brand()));
    assert!(
        TokenFormat::new(token.brand()).is_ok(),
        "invalid brand accepted"
    );
    assert_eq!(text.len(), prefix.len() + BODY_LEN);
    let body = &text[prefix.len()..];
    assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(token.id().as_str(), &body[..ID_LEN]);
    let (signed, sum) = text.as_bytes().split_at(text.len() - CHECKSUM_LEN);
    assert_eq!(sum, checksum(signed), "checksum disagrees with the design");

    let shown = format!("{prefix}{}…", token.id());
    assert_eq!(token.to_string(), shown);
    assert_eq!(redact(text), shown);
    let secret = &body[ID_LEN..ID_LEN + SECRET_LEN];
    assert!(
        !format!("{token:?}").contains(secret),
        "Debug shows the secret"
    );

    let format = TokenFormat::new(token.brand()).expect("checked above");
    let again = format.parse(text).expect("its own format accepts it");
    assert_eq!((again.kind(), again.id()), (token.kind(), token.id()));

    let findings = recognise(text);
    assert_eq!(findings.len(), 1, "recognise: {findings:?}");
    assert_eq!(findings[0].kind, CredentialKind::Keygate(token.kind()));
    assert_eq!(findings[0].span, 0..text.len());
}

/// Brand characters: the 37 allowed ones and three that are not.
const BRAND_CHARS: [char; 40] = [
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's',
    't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '_', 'A',
    '-', 'é',
];

fn check_structured(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let brand_len = usize::from(head % 20);
    let kind = if head & 0x80 == 0 {
        KeyKind::User
    } else {
        KeyKind::Tenant
    };
    let (brand_bytes, rest) = rest.split_at(brand_len.min(rest.len()));
    let brand: String = brand_bytes
        .iter()
        .map(|b| BRAND_CHARS[usize::from(*b) % BRAND_CHARS.len()])
        .collect();
    let mut body: Vec<u8> = (0..ID_LEN + SECRET_LEN)
        .map(|i| BASE62[usize::from(rest.get(i).copied().unwrap_or(0)) % 62])
        .collect();
    let mut raw = format!("{brand}_{}_", kind.code()).into_bytes();
    let prefix_len = raw.len();
    raw.append(&mut body);
    let sum = checksum(&raw);
    raw.extend_from_slice(&sum);
    let text = String::from_utf8(raw).expect("built from chars");

    let brand_ok = TokenFormat::new(&brand).is_ok();
    match Token::parse(&text) {
        Ok(token) => {
            assert!(brand_ok, "token with invalid brand {brand:?} accepted");
            assert_eq!(token.brand(), brand);
            assert_eq!(token.kind(), kind);
            assert_eq!(token.id().as_str(), &text[prefix_len..prefix_len + ID_LEN]);
            assert_eq!(token.expose(), text);
        }
        Err(err) => {
            assert!(!brand_ok, "valid token of brand {brand:?} refused: {err}");
            return;
        }
    }

    // One changed body character is always caught (CRC32 detects every burst of at
    // most 32 bits; a changed checksum character encodes another value).
    let pick = rest.get(ID_LEN + SECRET_LEN).copied().unwrap_or(0);
    let pos = prefix_len + usize::from(pick) % BODY_LEN;
    let delta = 1 + usize::from(rest.get(ID_LEN + SECRET_LEN + 1).copied().unwrap_or(0)) % 61;
    let mut altered = text.clone().into_bytes();
    let old = BASE62
        .iter()
        .position(|c| *c == altered[pos])
        .expect("body is base62");
    altered[pos] = BASE62[(old + delta) % 62];
    let altered = String::from_utf8(altered).expect("ascii");
    assert_eq!(
        Token::parse(&altered).map(|t| t.id()),
        Err(ParseError::ChecksumMismatch)
    );
}
