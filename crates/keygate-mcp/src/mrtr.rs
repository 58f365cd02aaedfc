//! Multi round-trip requests (MRTR, 2026-07-28): how a stateless server asks the
//! client for input in the middle of a request.
//!
//! Instead of sending the client a request of its own (which needs a session and a
//! stream), the server answers the client's request with an [`InputRequiredResult`]:
//! `resultType: "input_required"`, named [`InputRequest`]s (an `elicitation/create`
//! form, a `sampling/createMessage`, a `roots/list`) and an opaque `requestState`. The
//! client fulfils them and retries the same request with [`RetryParams`]:
//! `inputResponses` under the same names, and the `requestState` echoed verbatim.
//! The wire names are the Python SDK's (`mcp_types`).
//!
//! ```
//! use keygate_mcp::mrtr::{ElicitAction, ElicitRequestParams, InputRequest, InputRequiredResult, RetryParams};
//! use serde_json::json;
//!
//! let ask = InputRequiredResult::new()
//!     .with_request("approval", InputRequest::Elicitation(ElicitRequestParams::form(
//!         "Delete service worker? Type its name to approve.",
//!         json!({"type": "object", "properties": {"target": {"type": "string"}}, "required": ["target"]}),
//!     )))
//!     .with_state("opaque");
//! let wire = serde_json::to_value(&ask).unwrap();
//! assert_eq!(wire["resultType"], "input_required");
//! assert_eq!(wire["inputRequests"]["approval"]["method"], "elicitation/create");
//!
//! let retry: RetryParams = serde_json::from_value(json!({
//!     "name": "service.delete", "arguments": {"service": "worker"},
//!     "inputResponses": {"approval": {"action": "accept", "content": {"target": "worker"}}},
//!     "requestState": "opaque",
//! })).unwrap();
//! let answer = retry.elicit_result("approval").unwrap();
//! assert_eq!(answer.action, ElicitAction::Accept);
//! assert_eq!(answer.content.unwrap()["target"], "worker");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `resultType` of a 2026-07-28 result: how the client must read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResultType {
    /// The request's final result (the default when omitted).
    #[default]
    Complete,
    /// An [`InputRequiredResult`]: fulfil its input requests and retry.
    InputRequired,
}

impl ResultType {
    /// The wire value (`"complete"`, `"input_required"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::InputRequired => "input_required",
        }
    }
}

/// Whether a JSON-RPC `result` asks for input (`resultType: "input_required"`).
pub fn is_input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some(ResultType::InputRequired.as_str())
}

/// The elicitation mode of an `elicitation/create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ElicitMode {
    /// An in-band form described by `requestedSchema`.
    Form,
    /// An out-of-band URL the user opens.
    Url,
}

/// `params` of an `elicitation/create`: a form (`requestedSchema`) or a URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ElicitRequestParams {
    /// `form` or `url`; a request without it is a form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ElicitMode>,
    /// What the user is asked, shown to them.
    pub message: String,
    /// Form mode: the (flat) JSON Schema of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_schema: Option<Value>,
    /// URL mode: the page to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL mode on 2025-11-25: the elicitation's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation_id: Option<String>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl ElicitRequestParams {
    /// A form elicitation.
    pub fn form(message: impl Into<String>, requested_schema: Value) -> Self {
        Self {
            mode: Some(ElicitMode::Form),
            message: message.into(),
            requested_schema: Some(requested_schema),
            url: None,
            elicitation_id: None,
            meta: None,
        }
    }

    /// A URL elicitation.
    pub fn url(message: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            mode: Some(ElicitMode::Url),
            message: message.into(),
            requested_schema: None,
            url: Some(url.into()),
            elicitation_id: None,
            meta: None,
        }
    }

    /// The same with `elicitationId` (which 2025-11-25 requires of a URL elicitation,
    /// and 2026-07-28 no longer has).
    #[must_use]
    pub fn with_elicitation_id(mut self, id: impl Into<String>) -> Self {
        self.elicitation_id = Some(id.into());
        self
    }
}

/// JSON-RPC error code of `URLElicitationRequiredError` (2025-11-25 only; 2026-07-28
/// retired it and asks through an [`InputRequiredResult`] instead): the request cannot
/// proceed until the user completed the URL elicitations in the error's `data`
/// ([`UrlElicitationRequired`]).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// `data` of a [`URL_ELICITATION_REQUIRED`] error: `{"elicitations": [...]}`, each a URL
/// elicitation with its `elicitationId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UrlElicitationRequired {
    /// The URL elicitations the user must complete.
    pub elicitations: Vec<ElicitRequestParams>,
}

impl UrlElicitationRequired {
    /// The data naming `elicitations`.
    pub fn new(elicitations: Vec<ElicitRequestParams>) -> Self {
        Self { elicitations }
    }

    /// The data as JSON (an error's `data`).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `params` of a `sampling/createMessage`: the members keygate reads, the rest kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateMessageParams {
    /// The conversation to sample from (`{"role", "content"}` each).
    pub messages: Vec<Value>,
    /// The most tokens to sample.
    pub max_tokens: u64,
    /// A system prompt, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Every other member (`modelPreferences`, `temperature`, `tools`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One request the server needs the client to fulfil, as `{"method", "params"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
#[non_exhaustive]
pub enum InputRequest {
    /// `elicitation/create`: ask the user.
    #[serde(rename = "elicitation/create")]
    Elicitation(ElicitRequestParams),
    /// `sampling/createMessage`: ask the client's model.
    #[serde(rename = "sampling/createMessage")]
    Sampling(CreateMessageParams),
    /// `roots/list`: ask for the client's roots (params: `_meta` at most).
    #[serde(rename = "roots/list")]
    ListRoots(#[serde(default)] Option<Map<String, Value>>),
}

/// Input requests by server-assigned name.
pub type InputRequests = BTreeMap<String, InputRequest>;

/// What the user did with an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ElicitAction {
    /// Submitted (form: `content` holds the answer).
    Accept,
    /// Explicitly refused.
    Decline,
    /// Dismissed without a choice.
    Cancel,
}

/// The client's answer to an `elicitation/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ElicitResult {
    /// What the user did.
    pub action: ElicitAction,
    /// The form's answer, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Map<String, Value>>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl ElicitResult {
    /// An accepted form with `content`.
    pub fn accept(content: Map<String, Value>) -> Self {
        Self {
            action: ElicitAction::Accept,
            content: Some(content),
            meta: None,
        }
    }

    /// A declined elicitation.
    pub fn decline() -> Self {
        Self {
            action: ElicitAction::Decline,
            content: None,
            meta: None,
        }
    }

    /// A string member of an accepted form's answer (`None` unless accepted).
    pub fn accepted_str(&self, field: &str) -> Option<&str> {
        if self.action != ElicitAction::Accept {
            return None;
        }
        self.content.as_ref()?.get(field)?.as_str()
    }
}

/// Client answers by the names of the server's [`InputRequests`]. Values stay JSON:
/// an answer's shape depends on the request it answers (read an elicitation's with
/// [`RetryParams::elicit_result`]).
pub type InputResponses = BTreeMap<String, Value>;

/// A `result` that asks for input before the request can complete.
///
/// Serialized with `resultType: "input_required"`; reading one requires that tag and
/// at least one of `inputRequests` (non-empty) and `requestState`, as the spec does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "InputRequiredWire")]
#[non_exhaustive]
pub struct InputRequiredResult {
    result_type: ResultType,
    /// The requests to fulfil, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<InputRequests>,
    /// Opaque state the client echoes verbatim on the retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// The wire form, checked on the way in.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputRequiredWire {
    result_type: ResultType,
    #[serde(default)]
    input_requests: Option<InputRequests>,
    #[serde(default)]
    request_state: Option<String>,
    #[serde(rename = "_meta", default)]
    meta: Option<Map<String, Value>>,
}

/// Why a result is not an [`InputRequiredResult`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MrtrError {
    /// `resultType` is not `input_required`.
    #[error("resultType is not input_required")]
    NotInputRequired,
    /// Neither input requests nor a request state.
    #[error("an input_required result needs inputRequests or requestState")]
    Empty,
}

impl TryFrom<InputRequiredWire> for InputRequiredResult {
    type Error = MrtrError;

    fn try_from(w: InputRequiredWire) -> Result<Self, MrtrError> {
        if w.result_type != ResultType::InputRequired {
            return Err(MrtrError::NotInputRequired);
        }
        if w.input_requests.as_ref().is_none_or(BTreeMap::is_empty) && w.request_state.is_none() {
            return Err(MrtrError::Empty);
        }
        Ok(Self {
            result_type: ResultType::InputRequired,
            input_requests: w.input_requests,
            request_state: w.request_state,
            meta: w.meta,
        })
    }
}

impl Default for InputRequiredResult {
    fn default() -> Self {
        Self::new()
    }
}

impl InputRequiredResult {
    /// An empty one: add a request or a state before sending it.
    pub fn new() -> Self {
        Self {
            result_type: ResultType::InputRequired,
            input_requests: None,
            request_state: None,
            meta: None,
        }
    }

    /// Adds the request `name`.
    #[must_use]
    pub fn with_request(mut self, name: impl Into<String>, request: InputRequest) -> Self {
        self.input_requests
            .get_or_insert_with(BTreeMap::new)
            .insert(name.into(), request);
        self
    }

    /// Sets the opaque request state.
    #[must_use]
    pub fn with_state(mut self, state: impl Into<String>) -> Self {
        self.request_state = Some(state.into());
        self
    }

    /// Whether it may be sent: at least one request or a state.
    pub fn is_valid(&self) -> bool {
        self.input_requests.as_ref().is_some_and(|r| !r.is_empty()) || self.request_state.is_some()
    }

    /// The result as JSON (to put in a JSON-RPC response's `result`).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The MRTR members of a retried request's `params` (the request's own members, such
/// as a tool call's `name` and `arguments`, are ignored here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RetryParams {
    /// The client's answers, by request name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_responses: Option<InputResponses>,
    /// The server's `requestState`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
}

impl RetryParams {
    /// Whether this is a retry at all (answers or a state present).
    pub fn is_retry(&self) -> bool {
        self.input_responses.is_some() || self.request_state.is_some()
    }

    /// The answer to request `name` read as an elicitation result; `None` when absent
    /// or not one.
    pub fn elicit_result(&self, name: &str) -> Option<ElicitResult> {
        let value = self.input_responses.as_ref()?.get(name)?;
        ElicitResult::deserialize(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An `InputRequiredResult` as the Python SDK dumps one (`by_alias`, `exclude_none`).
    fn sdk_input_required() -> Value {
        json!({
            "resultType": "input_required",
            "inputRequests": {
                "approval": {
                    "method": "elicitation/create",
                    "params": {
                        "mode": "form",
                        "message": "Approve deleting worker?",
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"target": {"type": "string"}},
                            "required": ["target"]
                        }
                    }
                },
                "summary": {
                    "method": "sampling/createMessage",
                    "params": {
                        "messages": [{"role": "user", "content": {"type": "text", "text": "Summarise"}}],
                        "maxTokens": 100,
                        "temperature": 0.2
                    }
                },
                "roots": {"method": "roots/list", "params": {}}
            },
            "requestState": "eyJub25jZSI6IjEifQ"
        })
    }

    #[test]
    fn input_required_results_round_trip_in_the_sdk_shape() {
        let wire = sdk_input_required();
        let result: InputRequiredResult = serde_json::from_value(wire.clone()).unwrap();
        let requests = result.input_requests.as_ref().unwrap();
        let InputRequest::Elicitation(form) = &requests["approval"] else {
            panic!("not an elicitation: {:?}", requests["approval"]);
        };
        assert_eq!(form.mode, Some(ElicitMode::Form));
        assert_eq!(
            form.requested_schema.as_ref().unwrap()["required"],
            json!(["target"])
        );
        let InputRequest::Sampling(sampling) = &requests["summary"] else {
            panic!("not sampling");
        };
        assert_eq!(sampling.max_tokens, 100);
        assert_eq!(sampling.other["temperature"], 0.2);
        assert!(matches!(requests["roots"], InputRequest::ListRoots(_)));
        assert_eq!(result.request_state.as_deref(), Some("eyJub25jZSI6IjEifQ"));
        assert_eq!(serde_json::to_value(&result).unwrap(), wire);
        assert!(is_input_required(&wire));
        assert!(!is_input_required(
            &json!({"content": [], "resultType": "complete"})
        ));
    }

    #[test]
    fn built_results_serialize_with_their_tag() {
        let built = InputRequiredResult::new()
            .with_request(
                "approval",
                InputRequest::Elicitation(ElicitRequestParams::form(
                    "Approve?",
                    json!({"type": "object"}),
                )),
            )
            .with_state("s1");
        assert!(built.is_valid());
        let v = built.to_value();
        assert_eq!(
            v,
            json!({
                "resultType": "input_required",
                "inputRequests": {"approval": {"method": "elicitation/create", "params": {
                    "mode": "form", "message": "Approve?", "requestedSchema": {"type": "object"}
                }}},
                "requestState": "s1"
            })
        );
        assert!(!InputRequiredResult::new().is_valid());
        let url = serde_json::to_value(ElicitRequestParams::url("Open", "https://x/a")).unwrap();
        assert_eq!(
            url,
            json!({"mode": "url", "message": "Open", "url": "https://x/a"})
        );
    }

    /// The error data as the Python SDK's `UrlElicitationRequiredError` dumps it
    /// (`by_alias`, `exclude_none`), and reads it back (`from_error`).
    #[test]
    fn url_elicitation_required_data_has_the_sdk_shape() {
        let data = UrlElicitationRequired::new(vec![
            ElicitRequestParams::url("Approve on the page", "https://k.example/approvals/a1")
                .with_elicitation_id("a1"),
        ]);
        let wire = json!({"elicitations": [{
            "mode": "url", "message": "Approve on the page",
            "url": "https://k.example/approvals/a1", "elicitationId": "a1"
        }]});
        assert_eq!(data.to_value(), wire);
        assert_eq!(
            serde_json::from_value::<UrlElicitationRequired>(wire).unwrap(),
            data
        );
        assert_eq!(URL_ELICITATION_REQUIRED, -32042);
    }

    #[test]
    fn malformed_input_required_results_are_refused() {
        let mut complete = sdk_input_required();
        complete["resultType"] = json!("complete");
        assert!(serde_json::from_value::<InputRequiredResult>(complete).is_err());
        assert!(
            serde_json::from_value::<InputRequiredResult>(json!({"resultType": "input_required"}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<InputRequiredResult>(
                json!({"resultType": "input_required", "inputRequests": {}})
            )
            .is_err()
        );
        // State alone is enough.
        assert!(
            serde_json::from_value::<InputRequiredResult>(
                json!({"resultType": "input_required", "requestState": "s"})
            )
            .is_ok()
        );
        let unknown = json!({"resultType": "input_required", "inputRequests": {"a": {"method": "tools/call", "params": {}}}});
        assert!(serde_json::from_value::<InputRequiredResult>(unknown).is_err());
        // A form elicitation from before modes existed.
        let old: InputRequest = serde_json::from_value(json!({"method": "elicitation/create", "params": {"message": "m", "requestedSchema": {}}})).unwrap();
        assert!(matches!(
            old,
            InputRequest::Elicitation(ElicitRequestParams { mode: None, .. })
        ));
    }

    #[test]
    fn retries_carry_responses_and_state() {
        let retry: RetryParams = serde_json::from_value(json!({
            "name": "service.delete",
            "arguments": {"service": "worker"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
            "inputResponses": {
                "approval": {"action": "accept", "content": {"target": "worker"}},
                "declined": {"action": "decline"},
                "summary": {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"}
            },
            "requestState": "eyJub25jZSI6IjEifQ"
        }))
        .unwrap();
        assert!(retry.is_retry());
        let approval = retry.elicit_result("approval").unwrap();
        assert_eq!(approval.accepted_str("target"), Some("worker"));
        let declined = retry.elicit_result("declined").unwrap();
        assert_eq!(declined.action, ElicitAction::Decline);
        assert_eq!(declined.accepted_str("target"), None);
        assert!(retry.elicit_result("summary").is_none());
        assert!(retry.elicit_result("missing").is_none());
        assert_eq!(retry.request_state.as_deref(), Some("eyJub25jZSI6IjEifQ"));
        let v = serde_json::to_value(&retry).unwrap();
        assert_eq!(v["inputResponses"]["approval"]["action"], "accept");
        assert!(!RetryParams::default().is_retry());
        assert_eq!(
            serde_json::to_value(ElicitResult::decline()).unwrap(),
            json!({"action": "decline"})
        );
    }
}
