//! OpenAPI schemas (feature `openapi`) for the token types, exactly as their `serde`
//! impls write them: a [`KeyId`] is its 12 base62 characters, a [`KeyKind`] is `user`
//! or `tenant`, a [`Token`] is its raw text.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::format::MAX_BRAND_LEN;
use crate::token::{BODY_LEN, ID_LEN};
use crate::{KeyId, KeyKind, Token};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

impl PartialSchema for KeyId {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some("The public id of a key: 12 base62 characters."))
            .min_length(Some(ID_LEN))
            .max_length(Some(ID_LEN))
            .pattern(Some(format!("^[0-9A-Za-z]{{{ID_LEN}}}$")))
            .examples(["AbC123xYz789"])
            .into()
    }
}

impl PartialSchema for KeyKind {
    fn schema() -> RefOr<Schema> {
        string()
            .description(Some(
                "User key (tied to the user who issued it) or tenant key (acts for the tenant).",
            ))
            .enum_values(Some([KeyKind::User.actor(), KeyKind::Tenant.actor()]))
            .into()
    }
}

impl PartialSchema for Token {
    fn schema() -> RefOr<Schema> {
        // `<brand>_<kind>_<body>`: the brand starts with a letter, the kind is `uk` or `tk`.
        let max_len = MAX_BRAND_LEN + 4 + BODY_LEN;
        string()
            .description(Some(
                "A raw key, `<brand>_<uk|tk>_` and 48 base62 characters: shown only once.",
            ))
            .max_length(Some(max_len))
            .pattern(Some(format!(
                "^[a-z][a-z0-9_]{{0,{}}}_(uk|tk)_[0-9A-Za-z]{{{BODY_LEN}}}$",
                MAX_BRAND_LEN - 1
            )))
            .into()
    }
}

/// [`ToSchema`] for types whose schema is named like the type.
macro_rules! named_like_the_type {
    ($($ty:ident),*) => {$(
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    )*};
}

named_like_the_type!(KeyId, KeyKind, Token);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenFormat;

    /// The schemas' patterns, read as regular expressions, accept what the types write.
    #[test]
    fn patterns_match_what_serde_writes() {
        let pattern = |schema: RefOr<Schema>| -> regex::Regex {
            let RefOr::T(Schema::Object(object)) = schema else {
                panic!("an inline object schema");
            };
            regex::Regex::new(&object.pattern.expect("a pattern")).expect("a regex")
        };
        let token = TokenFormat::new("zoop_dev")
            .expect("a brand")
            .generate(KeyKind::Tenant)
            .expect("a token");
        assert!(pattern(Token::schema()).is_match(token.expose()));
        let raw = token.expose();
        assert!(!pattern(Token::schema()).is_match(&raw[..raw.len() - 1]));
        assert!(!pattern(Token::schema()).is_match(&raw.replace("_tk_", "_xk_")));
        assert!(pattern(KeyId::schema()).is_match(token.id().as_str()));
        assert!(!pattern(KeyId::schema()).is_match("short"));
        let RefOr::T(Schema::Object(kind)) = KeyKind::schema() else {
            panic!("an inline object schema");
        };
        let values: Vec<_> = kind
            .enum_values
            .expect("values")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert_eq!(values, ["user", "tenant"]);
    }
}
