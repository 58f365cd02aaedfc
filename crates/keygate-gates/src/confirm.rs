//! The `confirm` argument: parsing it and stripping it before forwarding.

use serde_json::{Map, Value};

use crate::error::GateError;

/// The name of the argument that carries a confirmation.
pub const CONFIRM_ARG: &str = "confirm";

/// A confirmation as the agent sends it: `"confirm": {"challenge": "…", "target": "…"}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The challenge from the `CONFIRMATION_REQUIRED` answer.
    pub challenge: String,
    /// The exact target name the user approved.
    pub target: String,
}

impl std::fmt::Debug for Confirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirm")
            .field(
                "challenge",
                &format_args!("{}…", self.challenge.get(..4).unwrap_or_default()),
            )
            .field("target", &self.target)
            .finish()
    }
}

impl Confirm {
    /// A confirmation of `target` with `challenge`.
    pub fn new(challenge: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            challenge: challenge.into(),
            target: target.into(),
        }
    }

    /// Reads the `confirm` argument of a call's arguments: `None` when absent (or
    /// `null`).
    ///
    /// # Errors
    ///
    /// [`GateError::MalformedConfirm`] saying exactly what is wrong when `confirm` is
    /// not an object with a non-empty string `challenge` and a string `target`, and
    /// nothing else.
    pub fn from_args(args: &Value) -> Result<Option<Self>, GateError> {
        let malformed = |detail: String| Err(GateError::MalformedConfirm { detail });
        let confirm = match args.get(CONFIRM_ARG) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return malformed(format!(
                    "`confirm` must be an object {{\"challenge\": \"…\", \"target\": \"…\"}}, not {}",
                    kind(other)
                ));
            }
        };
        if let Some(extra) = confirm.keys().find(|k| *k != "challenge" && *k != "target") {
            return malformed(format!(
                "`confirm` has an unexpected field `{extra}`; it takes only `challenge` and `target`"
            ));
        }
        let challenge = match confirm.get("challenge") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::String(_)) => return malformed("`confirm.challenge` is empty".to_owned()),
            Some(other) => {
                return malformed(format!(
                    "`confirm.challenge` must be a string, not {}",
                    kind(other)
                ));
            }
            None => return malformed("`confirm` has no `challenge`".to_owned()),
        };
        let target = match confirm.get("target") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return malformed(format!(
                    "`confirm.target` must be a string, not {}",
                    kind(other)
                ));
            }
            None => return malformed("`confirm` has no `target`".to_owned()),
        };
        Ok(Some(Self::new(challenge.clone(), target.clone())))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A call's arguments without `confirm`, as forwarded to the upstream tool server.
/// Anything that is not an object is returned unchanged.
pub fn strip_confirm(args: &Value) -> Value {
    match args {
        Value::Object(map) if map.contains_key(CONFIRM_ARG) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != CONFIRM_ARG)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Confirm, strip_confirm};
    use crate::GateError;

    fn detail(args: serde_json::Value) -> String {
        match Confirm::from_args(&args) {
            Err(GateError::MalformedConfirm { detail }) => detail,
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_well_formed_confirm() {
        let args = json!({"service": "w", "confirm": {"challenge": "abc", "target": "w"}});
        assert_eq!(
            Confirm::from_args(&args).expect("ok"),
            Some(Confirm::new("abc", "w"))
        );
        assert_eq!(
            Confirm::from_args(&json!({"service": "w"})).expect("ok"),
            None
        );
        assert_eq!(
            Confirm::from_args(&json!({"confirm": null})).expect("ok"),
            None
        );
        assert_eq!(Confirm::from_args(&json!(null)).expect("ok"), None);
    }

    #[test]
    fn malformed_confirms_say_what_is_wrong() {
        assert!(detail(json!({"confirm": "abc"})).contains("not a string"));
        assert!(detail(json!({"confirm": true})).contains("not a boolean"));
        assert_eq!(
            detail(json!({"confirm": {"target": "w"}})),
            "`confirm` has no `challenge`"
        );
        assert_eq!(
            detail(json!({"confirm": {"challenge": "c"}})),
            "`confirm` has no `target`"
        );
        assert_eq!(
            detail(json!({"confirm": {"challenge": "", "target": "w"}})),
            "`confirm.challenge` is empty"
        );
        assert_eq!(
            detail(json!({"confirm": {"challenge": 5, "target": "w"}})),
            "`confirm.challenge` must be a string, not a number"
        );
        assert_eq!(
            detail(json!({"confirm": {"challenge": "c", "target": ["w"]}})),
            "`confirm.target` must be a string, not an array"
        );
        assert!(
            detail(json!({"confirm": {"challenge": "c", "target": "w", "ok": true}}))
                .contains("unexpected field `ok`")
        );
    }

    #[test]
    fn strip_removes_only_confirm() {
        let args =
            json!({"service": "w", "project": "p", "confirm": {"challenge": "c", "target": "w"}});
        assert_eq!(
            strip_confirm(&args),
            json!({"service": "w", "project": "p"})
        );
        assert_eq!(strip_confirm(&json!({"a": 1})), json!({"a": 1}));
        assert_eq!(strip_confirm(&json!([1])), json!([1]));
    }

    #[test]
    fn debug_hides_most_of_the_challenge() {
        let c = Confirm::new("abcdefghijkl", "w");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("abcd…") && !shown.contains("efgh"),
            "{shown}"
        );
    }
}
