//! Token shape for keygate API keys.
//!
//! A keygate token looks like `kg_uk_<12-char id><30-char secret><6-char checksum>`:
//! a configurable brand, a kind (`uk` user key, `tk` tenant key), and a 48-character
//! base62 body whose last six characters are a CRC32 checksum of everything before them.
//! This crate generates such tokens from the operating system's CSPRNG, parses them
//! strictly (from the right, so brands may contain `_`), never shows the secret part in
//! `Debug` or `Display`, and recognises keygate tokens and well-known foreign credentials
//! (GitHub, GitLab, Slack, AWS, Stripe, Anthropic, OpenAI) inside arbitrary text.
//!
//! It has no I/O and no async: use it anywhere a token has to be checked offline, such as
//! a CLI, a pre-commit hook or the first step of a server's verification path.
//!
//! ```
//! use keygate_token::{KeyKind, Token, TokenFormat};
//!
//! let format = TokenFormat::new("zoop")?;
//! let token = format.generate(KeyKind::User)?;
//! // The raw token is shown to its owner once; Display never shows the secret.
//! assert!(token.to_string().starts_with("zoop_uk_"));
//! assert!(token.to_string().ends_with('…'));
//!
//! let parsed = Token::parse(token.expose())?;
//! assert_eq!(parsed.id(), token.id());
//! assert_eq!(parsed.kind(), KeyKind::User);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `serde`: `Serialize`/`Deserialize` for [`KeyId`] (as its string) and [`KeyKind`]
//!   (as `user` or `tenant`).
//! - `openapi`: `utoipa::ToSchema` for [`KeyId`], [`KeyKind`] and [`Token`], the
//!   schemas of what `serde` writes (with `serde`).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

/// `serde` impls (feature `serde`) for a type written as a string: `$show` turns
/// `&self` into the `&str` to write, `$parse` turns the `&str` read into
/// `Result<Self, D::Error>`.
macro_rules! serde_as_str {
    ($ty:ty, |$this:ident| $show:expr, |$text:ident| $parse:expr) => {
        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let $this = self;
                s.serialize_str($show)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                let $text: &str = &text;
                $parse
            }
        }
    };
}

mod base62;
mod error;
mod format;
#[cfg(feature = "openapi")]
mod openapi;
mod recognise;
mod token;

pub use crate::base62::random_base62;
pub use crate::error::{BrandError, ParseError, RandomError};
pub use crate::format::{KeyKind, TokenFormat, UnknownKind};
pub use crate::recognise::{CredentialKind, Finding, recognise, recognise_whole};
pub use crate::token::{
    BODY_LEN, CHECKSUM_LEN, ID_LEN, InvalidKeyId, KeyId, MAX_TOKEN_LEN, SECRET_LEN, Token, redact,
};
