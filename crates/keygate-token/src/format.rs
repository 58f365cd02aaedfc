//! Brands and key kinds: the `<brand>_<kind>_` prefix of a token.

use std::fmt;
use std::str::FromStr;

use crate::error::{BrandError, ParseError, RandomError};
use crate::token::Token;

/// Longest brand allowed, in characters.
pub(crate) const MAX_BRAND_LEN: usize = 16;

/// The kind of a key, as written in its token prefix.
///
/// The prefix is a hint for people and scanners; the kind stored with the key is
/// the truth.
#[allow(
    clippy::exhaustive_enums,
    reason = "the two kinds are part of the token format; a new kind is a new format"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// A user key (`uk`): tied to the user who issued it; may call user-only tools.
    User,
    /// A tenant key (`tk`): acts for the tenant, with no user.
    Tenant,
}

impl KeyKind {
    /// The two-letter code used in token prefixes: `uk` or `tk`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::User => "uk",
            Self::Tenant => "tk",
        }
    }

    /// The actor name used in APIs, headers and storage: `user` or `tenant`.
    pub const fn actor(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Tenant => "tenant",
        }
    }

    /// Parses a two-letter prefix code (`uk`, `tk`).
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "uk" => Some(Self::User),
            "tk" => Some(Self::Tenant),
            _ => None,
        }
    }

    /// Parses an actor name (`user`, `tenant`).
    pub fn from_actor(actor: &str) -> Option<Self> {
        match actor {
            "user" => Some(Self::User),
            "tenant" => Some(Self::Tenant),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.actor())
    }
}

impl FromStr for KeyKind {
    type Err = UnknownKind;

    /// Accepts either the actor name (`user`, `tenant`) or the code (`uk`, `tk`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_actor(s)
            .or_else(|| Self::from_code(s))
            .ok_or(UnknownKind)
    }
}

/// A string that names no key kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown key kind; expected `user` or `tenant`")]
pub struct UnknownKind;

/// The token format of one deployment: its brand.
///
/// The default brand is `kg`, giving prefixes `kg_uk_` and `kg_tk_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenFormat {
    brand: String,
}

impl Default for TokenFormat {
    fn default() -> Self {
        Self {
            brand: "kg".to_owned(),
        }
    }
}

impl TokenFormat {
    /// A format with the given brand.
    ///
    /// # Errors
    ///
    /// The brand must be 1–16 characters of lowercase ASCII letters, digits and
    /// `_`, starting with a letter.
    pub fn new(brand: &str) -> Result<Self, BrandError> {
        validate_brand(brand)?;
        Ok(Self {
            brand: brand.to_owned(),
        })
    }

    /// The brand, such as `kg`.
    pub fn brand(&self) -> &str {
        &self.brand
    }

    /// The prefix of tokens of `kind`, such as `kg_uk_`.
    pub fn prefix(&self, kind: KeyKind) -> String {
        format!("{}_{}_", self.brand, kind.code())
    }

    /// Generates a new token of `kind` with a fresh random id and secret.
    ///
    /// # Errors
    ///
    /// Fails only when the operating system cannot provide randomness.
    pub fn generate(&self, kind: KeyKind) -> Result<Token, RandomError> {
        Token::generate(&self.brand, kind)
    }

    /// Parses `s` and also requires that its brand is this format's brand.
    ///
    /// # Errors
    ///
    /// Everything [`Token::parse`] rejects, and [`ParseError::WrongBrand`].
    pub fn parse(&self, s: &str) -> Result<Token, ParseError> {
        let token = Token::parse(s)?;
        if token.brand() == self.brand {
            Ok(token)
        } else {
            Err(ParseError::WrongBrand)
        }
    }
}

impl FromStr for TokenFormat {
    type Err = BrandError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Checks the brand rules: 1–16 chars of `[a-z0-9_]`, starting with `[a-z]`.
pub(crate) fn validate_brand(brand: &str) -> Result<(), BrandError> {
    let Some(first) = brand.chars().next() else {
        return Err(BrandError::Empty);
    };
    let len = brand.chars().count();
    if len > MAX_BRAND_LEN {
        return Err(BrandError::TooLong(len));
    }
    if !first.is_ascii_lowercase() {
        return Err(BrandError::BadStart);
    }
    match brand
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(c) => Err(BrandError::BadChar(c)),
        None => Ok(()),
    }
}

serde_as_str!(KeyKind, |kind| kind.actor(), |s| {
    KeyKind::from_actor(s).ok_or_else(|| {
        serde::de::Error::invalid_value(serde::de::Unexpected::Str(s), &"`user` or `tenant`")
    })
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_are_validated() {
        assert!(TokenFormat::new("kg").is_ok());
        assert!(TokenFormat::new("zoop").is_ok());
        assert!(TokenFormat::new("my_brand_2").is_ok());
        assert!(TokenFormat::new("a234567890123456").is_ok());
        assert_eq!(TokenFormat::new(""), Err(BrandError::Empty));
        assert_eq!(
            TokenFormat::new("a2345678901234567"),
            Err(BrandError::TooLong(17))
        );
        assert_eq!(TokenFormat::new("2kg"), Err(BrandError::BadStart));
        assert_eq!(TokenFormat::new("_kg"), Err(BrandError::BadStart));
        assert_eq!(TokenFormat::new("Kg"), Err(BrandError::BadStart));
        assert_eq!(TokenFormat::new("kG"), Err(BrandError::BadChar('G')));
        assert_eq!(TokenFormat::new("k-g"), Err(BrandError::BadChar('-')));
        assert_eq!(TokenFormat::new("kä"), Err(BrandError::BadChar('ä')));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [KeyKind::User, KeyKind::Tenant] {
            assert_eq!(KeyKind::from_code(kind.code()), Some(kind));
            assert_eq!(KeyKind::from_actor(kind.actor()), Some(kind));
            assert_eq!(kind.actor().parse::<KeyKind>(), Ok(kind));
            assert_eq!(kind.code().parse::<KeyKind>(), Ok(kind));
        }
        assert_eq!("admin".parse::<KeyKind>(), Err(UnknownKind));
        assert_eq!(TokenFormat::default().prefix(KeyKind::Tenant), "kg_tk_");
    }

    #[test]
    fn format_parse_checks_brand() {
        let zoop = TokenFormat::new("zoop").unwrap();
        let token = zoop.generate(KeyKind::Tenant).unwrap();
        assert!(zoop.parse(token.expose()).is_ok());
        assert_eq!(
            TokenFormat::default().parse(token.expose()).unwrap_err(),
            ParseError::WrongBrand
        );
    }
}
