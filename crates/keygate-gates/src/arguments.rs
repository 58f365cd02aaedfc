//! The arguments a challenge is bound to, in canonical form.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::confirm::strip_confirm;

/// A call's arguments without `confirm`, with their canonical serialization: JSON with
/// object keys sorted (by their UTF-8 bytes) at every depth, no white space, and
/// control, format and other invisible characters written as `\uXXXX` escapes so that
/// a person reading it sees them.
///
/// The canonical text does not depend on the order the agent sent the keys in, nor on
/// how `serde_json` orders maps. A challenge keeps its SHA-256 ([`Arguments::digest`]),
/// and only a call with the same canonical arguments can use it.
///
/// ```
/// use keygate_gates::Arguments;
/// use serde_json::json;
///
/// let a = Arguments::from_args(&json!({"service": "worker", "image": "a:1",
///     "confirm": {"challenge": "…", "target": "worker"}}));
/// assert_eq!(a.canonical(), r#"{"image":"a:1","service":"worker"}"#);
/// let b = Arguments::from_args(&json!({"image": "a:1", "service": "worker"}));
/// assert_eq!(a.digest(), b.digest());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arguments {
    value: Value,
    canonical: String,
}

impl Default for Arguments {
    fn default() -> Self {
        Self::from_args(&Value::Object(serde_json::Map::new()))
    }
}

impl Arguments {
    /// The arguments of a call (`params.arguments`), without `confirm`.
    pub fn from_args(args: &Value) -> Self {
        let value = strip_confirm(args);
        let mut canonical = String::new();
        write_canonical(&mut canonical, &value);
        Self { value, canonical }
    }

    /// The arguments without `confirm`.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The canonical serialization.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// SHA-256 of the canonical serialization: what a challenge is bound to.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical.as_bytes()).into()
    }
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&value.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_canonical(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string: `"` and `\` escaped, hidden characters as `\uXXXX` (UTF-16).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if keygate_scopes::is_hidden_char(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Arguments;

    #[test]
    fn keys_are_sorted_at_every_depth_and_confirm_is_left_out() {
        let a = Arguments::from_args(&json!({
            "z": {"b": [1, {"y": true, "x": null}], "a": "s"},
            "a": 1.5,
            "confirm": {"challenge": "c", "target": "t"},
        }));
        assert_eq!(
            a.canonical(),
            r#"{"a":1.5,"z":{"a":"s","b":[1,{"x":null,"y":true}]}}"#
        );
        assert_eq!(
            a.value(),
            &json!({"a": 1.5, "z": {"b": [1, {"y": true, "x": null}], "a": "s"}})
        );
    }

    #[test]
    fn the_canonical_text_is_json_of_the_same_value() {
        for args in [
            json!({"s": "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7}"}),
            json!({"s": "zero width \u{200b} bom \u{feff} tag \u{e0001} é 😀"}),
            json!({"é": 1, "e": 2, "E": 3, "": [], "n": -0.0, "big": 18446744073709551615u64}),
            json!([1, "two", null]),
            json!(null),
        ] {
            let a = Arguments::from_args(&args);
            let back: Value = serde_json::from_str(a.canonical()).expect("valid JSON");
            assert_eq!(back, args, "{}", a.canonical());
            assert_eq!(Arguments::from_args(&back).canonical(), a.canonical());
        }
    }

    #[test]
    fn hidden_characters_are_escaped_visibly() {
        let a = Arguments::from_args(&json!({"image": "shop/worker:2\u{200b}", "t": "\u{e0001}"}));
        assert_eq!(
            a.canonical(),
            r#"{"image":"shop/worker:2\u200b","t":"\udb40\udc01"}"#
        );
    }

    #[test]
    fn different_arguments_have_different_digests() {
        let digest = |v: Value| Arguments::from_args(&v).digest();
        assert_eq!(
            digest(json!({"service": "w", "image": "a"})),
            digest(
                json!({"image": "a", "service": "w", "confirm": {"challenge": "x", "target": "w"}})
            )
        );
        let base = digest(json!({"service": "w", "image": "a"}));
        for other in [
            json!({"service": "w", "image": "b"}),
            json!({"service": "w"}),
            json!({"service": "w", "image": "a", "force": true}),
            json!({"service": "w", "image": ["a"]}),
            json!({"service": "w", "image": "a "}),
        ] {
            assert_ne!(digest(other.clone()), base, "{other}");
        }
        assert_eq!(Arguments::default().canonical(), "{}");
    }
}
