use proptest::prelude::*;

use super::*;
use crate::format::TokenFormat;

fn valid() -> Token {
    TokenFormat::default().generate(KeyKind::User).unwrap()
}

/// Rewrites the checksum of `signed` (a token minus its last six characters).
fn with_checksum(signed: &str) -> String {
    let sum = checksum_of(signed.as_bytes());
    format!("{signed}{}", std::str::from_utf8(&sum).unwrap())
}

#[test]
fn generated_tokens_have_the_documented_shape() {
    let t = valid();
    let raw = t.expose();
    assert!(raw.starts_with("kg_uk_"));
    assert_eq!(raw.len(), 6 + BODY_LEN);
    assert_eq!(t.prefix(), "kg_uk_");
    assert_eq!(t.brand(), "kg");
    assert_eq!(t.id().as_str(), &raw[6..18]);
    let sum = crc32fast::hash(&raw.as_bytes()[..raw.len() - 6]);
    assert_eq!(
        &raw[raw.len() - 6..],
        std::str::from_utf8(&encode_fixed::<6>(u64::from(sum))).unwrap()
    );
}

#[test]
fn display_and_debug_never_show_the_secret() {
    let t = valid();
    let secret = &t.expose()[18..48];
    for shown in [t.to_string(), format!("{t:?}"), format!("{t:#?}")] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains(t.id().as_str()));
        assert!(shown.contains('…'));
    }
}

#[test]
fn each_error_is_reported() {
    let t = valid();
    let raw = t.expose();
    assert_eq!(Token::parse("").unwrap_err(), ParseError::Empty);
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(
        Token::parse(&long).unwrap_err(),
        ParseError::TooLong {
            len: MAX_TOKEN_LEN + 1,
            max: MAX_TOKEN_LEN
        }
    );
    assert_eq!(
        Token::parse("nounderscore").unwrap_err(),
        ParseError::BadPrefix
    );
    assert_eq!(Token::parse(&raw[3..]).unwrap_err(), ParseError::BadPrefix);
    assert!(matches!(
        Token::parse(&format!("Kg{}", &raw[2..])).unwrap_err(),
        ParseError::BadBrand(_)
    ));
    assert_eq!(
        Token::parse(&format!("kg_xk{}", &raw[5..])).unwrap_err(),
        ParseError::UnknownKind {
            found: "xk".to_owned()
        }
    );
    assert_eq!(
        Token::parse(&raw[..raw.len() - 1]).unwrap_err(),
        ParseError::BadLength {
            expected: BODY_LEN,
            found: BODY_LEN - 1
        }
    );
    let mut bad_char = raw.to_owned();
    bad_char.replace_range(20..21, "-");
    assert_eq!(
        Token::parse(&bad_char).unwrap_err(),
        ParseError::InvalidChar { position: 20 }
    );
    let mut flipped = raw.as_bytes().to_vec();
    flipped[30] = if flipped[30] == b'a' { b'b' } else { b'a' };
    assert_eq!(
        Token::parse(std::str::from_utf8(&flipped).unwrap()).unwrap_err(),
        ParseError::ChecksumMismatch
    );
}

#[test]
fn error_messages_never_echo_the_token() {
    let t = valid();
    let raw = t.expose();
    let secret = &raw[18..48];
    let mut cases = vec![raw[..raw.len() - 1].to_owned(), format!("{raw}x")];
    let mut flipped = raw.to_owned();
    flipped.replace_range(40..41, if &raw[40..41] == "Z" { "Y" } else { "Z" });
    cases.push(flipped);
    cases.push(format!("kg_zz_{}", &raw[6..]));
    for case in cases {
        let msg = Token::parse(&case).unwrap_err().to_string();
        assert!(!msg.contains(secret), "{msg}");
        assert!(!msg.contains(&case[6..]), "{msg}");
    }
}

#[test]
fn brands_with_underscores_parse_from_the_right() {
    let format = TokenFormat::new("my_co_2").unwrap();
    let t = format.generate(KeyKind::Tenant).unwrap();
    let parsed = Token::parse(t.expose()).unwrap();
    assert_eq!(parsed.brand(), "my_co_2");
    assert_eq!(parsed.prefix(), "my_co_2_tk_");
    assert_eq!(parsed.kind(), KeyKind::Tenant);
}

#[test]
fn a_recomputed_checksum_with_a_bad_brand_is_still_rejected() {
    let t = valid();
    let raw = t.expose();
    let forged = with_checksum(&format!("KG{}", &raw[2..raw.len() - 6]));
    assert!(matches!(
        Token::parse(&forged).unwrap_err(),
        ParseError::BadBrand(_)
    ));
}

#[test]
fn key_ids_parse_and_reject() {
    let t = valid();
    assert_eq!(t.id().as_str().parse::<KeyId>().unwrap(), t.id());
    assert!("short".parse::<KeyId>().is_err());
    assert!("abcdefghijk-".parse::<KeyId>().is_err());
    assert!("abcdefghijklm".parse::<KeyId>().is_err());
    assert_eq!(KeyId::random().unwrap().as_str().len(), ID_LEN);
}

#[test]
fn redact_keeps_only_a_hint() {
    let t = valid();
    assert_eq!(redact(t.expose()), t.to_string());
    let gh = concat!("ghp_", "abcdefghijklmnopqrstuvwxyz0123456789");
    let r = redact(gh);
    assert!(r.starts_with("ghp_…"));
    assert!(!r.contains("abcdef"));
    assert_eq!(redact("short"), "… (5 chars)");
}

fn brand() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,15}"
}

fn kind() -> impl Strategy<Value = KeyKind> {
    prop_oneof![Just(KeyKind::User), Just(KeyKind::Tenant)]
}

proptest! {
    #[test]
    fn generate_then_parse_is_identity(brand in brand(), kind in kind()) {
        let format = TokenFormat::new(&brand).unwrap();
        let t = format.generate(kind).unwrap();
        let p = Token::parse(t.expose()).unwrap();
        prop_assert_eq!(p.expose(), t.expose());
        prop_assert_eq!(p.brand(), brand.as_str());
        prop_assert_eq!(p.kind(), kind);
        prop_assert_eq!(p.id(), t.id());
        prop_assert_eq!(format.parse(t.expose()).unwrap().id(), t.id());
    }

    #[test]
    fn any_single_character_change_is_rejected_or_changes_the_id(
        brand in brand(),
        kind in kind(),
        pos in any::<prop::sample::Index>(),
        replacement in prop::char::range('\u{20}', '\u{7e}'),
    ) {
        let t = TokenFormat::new(&brand).unwrap().generate(kind).unwrap();
        let mut chars: Vec<char> = t.expose().chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        if let Ok(p) = Token::parse(&changed) {
            prop_assert_ne!(p.id(), t.id());
        }
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,80}") {
        let _ = Token::parse(&s);
    }

    #[test]
    fn check_id_agrees_with_parse(brand in brand(), kind in kind(), at in 0usize..80, c in any::<char>()) {
        // A valid token, and the same token with one character replaced (most such
        // changes break the checksum): check_id must say exactly what parse says.
        let token = TokenFormat::new(&brand).unwrap().generate(kind).unwrap();
        let mut chars: Vec<char> = token.expose().chars().collect();
        let at = at % chars.len();
        chars[at] = c;
        let changed: String = chars.into_iter().collect();
        for s in [token.expose(), changed.as_str()] {
            match (Token::parse(s), Token::check_id(s)) {
                (Ok(parsed), Ok(id)) => prop_assert_eq!(parsed.id(), id),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "parse {:?} but check_id {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }
}
