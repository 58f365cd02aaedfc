//! Whether a target has failure history, as the evidence gate needs to know.

use serde_json::Value;

/// What the status tool says about a target's past failures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureHistory {
    /// No failure history (including a service waiting for its first deploy): the
    /// evidence gate lets the call through ungated.
    None,
    /// The target has failed before: evidence first, then confirmation.
    Failed {
        /// How many deploys failed, when the status tool says.
        failed_deploys: Option<u64>,
        /// The target's state, such as `failed`, when the status tool says.
        state: Option<String>,
    },
    /// The status could not be determined (the status tool failed or answered without
    /// the failure field). Treated like [`FailureHistory::Failed`]: gates fail closed.
    Unknown {
        /// Why, for logs and for the person.
        reason: String,
    },
}

impl From<bool> for FailureHistory {
    /// `true` is [`FailureHistory::Failed`] with no details, `false` is
    /// [`FailureHistory::None`].
    fn from(failed: bool) -> Self {
        if failed {
            Self::Failed {
                failed_deploys: None,
                state: None,
            }
        } else {
            Self::None
        }
    }
}

impl FailureHistory {
    /// Reads the status tool's answer: either its JSON-RPC `result` (with
    /// `structuredContent`) or the `structuredContent` itself. The boolean
    /// `failure_field` decides; `failed_deploys` and `state` add detail when present.
    pub fn from_status(status: &Value, failure_field: &str) -> Self {
        if status.get("isError").and_then(Value::as_bool) == Some(true) {
            return Self::Unknown {
                reason: "the status tool answered with an error".to_owned(),
            };
        }
        let content = status.get("structuredContent").unwrap_or(status);
        match content.get(failure_field).and_then(Value::as_bool) {
            Some(false) => Self::None,
            Some(true) => Self::Failed {
                failed_deploys: content.get("failed_deploys").and_then(Value::as_u64),
                state: content
                    .get("state")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            None => Self::Unknown {
                reason: format!("the status tool's answer has no boolean `{failure_field}`"),
            },
        }
    }

    /// Whether the evidence gate applies.
    pub fn is_gated(&self) -> bool {
        !matches!(self, Self::None)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::FailureHistory;

    #[test]
    fn reads_the_status_tools_answer() {
        let f = "has_failure_history";
        assert_eq!(
            FailureHistory::from_status(
                &json!({"structuredContent": {"state": "waiting_for_first_deploy", "failed_deploys": 0, "has_failure_history": false}}),
                f
            ),
            FailureHistory::None
        );
        assert_eq!(
            FailureHistory::from_status(
                &json!({"state": "failed", "failed_deploys": 3, "has_failure_history": true}),
                f
            ),
            FailureHistory::Failed {
                failed_deploys: Some(3),
                state: Some("failed".to_owned())
            }
        );
        assert!(matches!(
            FailureHistory::from_status(&json!({"structuredContent": {}}), f),
            FailureHistory::Unknown { .. }
        ));
        assert!(matches!(
            FailureHistory::from_status(
                &json!({"isError": true, "structuredContent": {f: false}}),
                f
            ),
            FailureHistory::Unknown { .. }
        ));
        assert_eq!(FailureHistory::from(false), FailureHistory::None);
        assert!(FailureHistory::from(true).is_gated());
        assert!(!FailureHistory::None.is_gated());
    }
}
