//! MCP protocol revisions, and the per-request envelope of the stateless one.
//!
//! - **2025-06-18** and **2025-11-25** are stateful: `initialize` negotiates the
//!   version and the client's capabilities once, and `Mcp-Session-Id` ties later
//!   requests to it.
//! - **2026-07-28** is stateless: no handshake and no session; every request carries
//!   its protocol version and the client's capabilities in `params._meta`
//!   ([`RequestMeta`]), and `server/discover` ([`DiscoverResult`]) tells a client which
//!   versions and capabilities the server has.
//!
//! ```
//! use keygate_mcp::revision::{RequestMeta, Revision};
//! use serde_json::json;
//!
//! let params = json!({"_meta": {
//!     "io.modelcontextprotocol/protocolVersion": "2026-07-28",
//!     "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
//! }});
//! let meta = RequestMeta::from_params(Some(&params)).unwrap();
//! assert_eq!(meta.protocol_version, Revision::V2026_07_28);
//! assert!(meta.capabilities.elicitation_form());
//! assert!("2026-07-28".parse::<Revision>().unwrap().is_stateless());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::jsonrpc;
use crate::mrtr::ResultType;

/// `_meta` key: the request's protocol version (2026-07-28; required).
pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client's capabilities for this request (2026-07-28; required).
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: the client's name and version (2026-07-28; optional).
pub const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
/// Result `_meta` key: the server's name and version (2026-07-28).
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// The method with which a 2026-07-28 client learns what a server speaks.
pub const DISCOVER_METHOD: &str = "server/discover";

/// An MCP protocol revision keygate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Revision {
    /// 2025-06-18 (stateful).
    V2025_06_18,
    /// 2025-11-25 (stateful).
    V2025_11_25,
    /// 2026-07-28 (stateless).
    V2026_07_28,
}

/// Every revision keygate speaks, oldest first.
pub const SUPPORTED: &[Revision] = &[
    Revision::V2025_06_18,
    Revision::V2025_11_25,
    Revision::V2026_07_28,
];

/// The stateless revisions (those a `server/discover` lists), oldest first.
pub const STATELESS: &[Revision] = &[Revision::V2026_07_28];

/// The newest revision.
pub const LATEST: Revision = Revision::V2026_07_28;

/// The newest revision reachable through `initialize`.
pub const LATEST_STATEFUL: Revision = Revision::V2025_11_25;

impl Revision {
    /// The revision's date, as it is sent (`"2025-11-25"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// Whether this revision is stateless: no `initialize`, no session, `_meta` on
    /// every request.
    pub const fn is_stateless(self) -> bool {
        matches!(self, Self::V2026_07_28)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol version keygate does not speak (the value is not kept: it is the
/// client's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported MCP protocol version")]
#[non_exhaustive]
pub struct UnknownRevision;

impl FromStr for Revision {
    type Err = UnknownRevision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SUPPORTED
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRevision)
    }
}

impl Serialize for Revision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `elicitation` of the client's capabilities: which modes it renders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ElicitationCapability {
    /// Present when the client renders forms (`requestedSchema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Value>,
    /// Present when the client opens URLs (2025-11-25 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Value>,
}

/// A client's capabilities, as `initialize` (stateful) or each request's `_meta`
/// (stateless) declares them. Members keygate does not read are kept in `other`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientCapabilities {
    /// Elicitation, when the client supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<ElicitationCapability>,
    /// Sampling, when the client supports it (its settings unread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Value>,
    /// Roots, when the client supports listing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Value>,
    /// Extensions the client supports (2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
    /// Every other member (`experimental`, `tasks`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ClientCapabilities {
    /// Whether the client declares form elicitation: `elicitation.form`, or an
    /// `elicitation` that names no mode at all (which means form, as before modes
    /// existed).
    pub fn elicitation_form(&self) -> bool {
        self.elicitation
            .as_ref()
            .is_some_and(|e| e.form.is_some() || e.url.is_none())
    }

    /// Whether the client declares URL-mode elicitation.
    pub fn elicitation_url(&self) -> bool {
        self.elicitation.as_ref().is_some_and(|e| e.url.is_some())
    }

    /// Whether the client declares sampling.
    pub fn sampling(&self) -> bool {
        self.sampling.is_some()
    }
}

/// The per-request envelope of a 2026-07-28 request: `params._meta`, read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RequestMeta {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub protocol_version: Revision,
    /// `io.modelcontextprotocol/clientCapabilities`.
    pub capabilities: ClientCapabilities,
    /// `io.modelcontextprotocol/clientInfo`, when sent (its shape unchecked).
    pub client_info: Option<Value>,
}

/// Why a 2026-07-28 request's `_meta` envelope was refused. Checked in the Python SDK's
/// order, with its codes and messages: [`code`](Self::code) and [`data`](Self::data)
/// give the JSON-RPC error (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// `params._meta` is absent or not an object.
    #[error(
        "params._meta must be an object carrying the required '{PROTOCOL_VERSION_KEY}' and '{CLIENT_CAPABILITIES_KEY}' envelope keys"
    )]
    NotAnObject,
    /// Required keys are missing (named in the message).
    #[error("params._meta is missing the required envelope key(s): {}", .0.join(", "))]
    MissingKeys(Vec<&'static str>),
    /// The protocol version is not a string.
    #[error("the protocol-version envelope value must be a string")]
    VersionNotString,
    /// The capabilities are not an object of capabilities.
    #[error("the client-capabilities envelope value must be an object")]
    BadCapabilities,
    /// A version this server does not speak; `requested` is the client's value.
    #[error("Unsupported protocol version")]
    Unsupported {
        /// The version the request named.
        requested: String,
    },
}

impl MetaError {
    /// The JSON-RPC error code: [`jsonrpc::UNSUPPORTED_PROTOCOL_VERSION`] for an
    /// unsupported version, else [`jsonrpc::INVALID_PARAMS`].
    pub fn code(&self) -> i64 {
        match self {
            Self::Unsupported { .. } => jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
            _ => jsonrpc::INVALID_PARAMS,
        }
    }

    /// The error's `data`: `{"supported": [...], "requested": "..."}` for an
    /// unsupported version (the stateless revisions), else `None`.
    pub fn data(&self) -> Option<Value> {
        match self {
            Self::Unsupported { requested } => Some(json!({
                "supported": STATELESS.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "requested": requested,
            })),
            _ => None,
        }
    }

    /// The JSON-RPC error response answering request `id` (send it with HTTP 400).
    pub fn to_response(&self, id: Value) -> Value {
        match self.data() {
            Some(data) => {
                jsonrpc::error_response_with_data(id, self.code(), self.to_string(), data)
            }
            None => jsonrpc::error_response(id, self.code(), self.to_string()),
        }
    }
}

impl RequestMeta {
    /// Reads the envelope from a request's `params` (a JSON value): the checks of the
    /// Python SDK's inbound ladder, without its header rung. Only stateless revisions
    /// are accepted: a 2025 version in `_meta` is [`MetaError::Unsupported`].
    pub fn from_params(params: Option<&Value>) -> Result<Self, MetaError> {
        let meta = params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object)
            .ok_or(MetaError::NotAnObject)?;
        Self::from_meta(meta)
    }

    /// Reads the envelope from raw `params` (as [`jsonrpc::Message::params`] holds it).
    pub fn from_raw_params(
        params: Option<&serde_json::value::RawValue>,
    ) -> Result<Self, MetaError> {
        #[derive(Deserialize)]
        struct Params {
            #[serde(rename = "_meta", default)]
            meta: Option<Value>,
        }
        let meta = params
            .filter(|p| p.get().starts_with('{'))
            .and_then(|p| serde_json::from_str::<Params>(p.get()).ok())
            .and_then(|p| p.meta);
        match meta {
            Some(Value::Object(meta)) => Self::from_meta(&meta),
            _ => Err(MetaError::NotAnObject),
        }
    }

    /// Reads the envelope from the `_meta` object itself.
    pub fn from_meta(meta: &Map<String, Value>) -> Result<Self, MetaError> {
        let missing: Vec<&'static str> = [PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY]
            .into_iter()
            .filter(|k| !meta.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(MetaError::MissingKeys(missing));
        }
        let Some(Value::String(version)) = meta.get(PROTOCOL_VERSION_KEY) else {
            return Err(MetaError::VersionNotString);
        };
        let protocol_version = match version.parse::<Revision>() {
            Ok(r) if r.is_stateless() => r,
            _ => {
                return Err(MetaError::Unsupported {
                    requested: version.clone(),
                });
            }
        };
        let capabilities = meta
            .get(CLIENT_CAPABILITIES_KEY)
            .filter(|c| c.is_object())
            .and_then(|c| ClientCapabilities::deserialize(c).ok())
            .ok_or(MetaError::BadCapabilities)?;
        Ok(Self {
            protocol_version,
            capabilities,
            client_info: meta.get(CLIENT_INFO_KEY).cloned(),
        })
    }

    /// The `_meta` object a 2026-07-28 client sends with every request.
    pub fn to_meta(&self) -> Value {
        let mut meta = Map::new();
        meta.insert(
            PROTOCOL_VERSION_KEY.to_owned(),
            Value::String(self.protocol_version.as_str().to_owned()),
        );
        meta.insert(
            CLIENT_CAPABILITIES_KEY.to_owned(),
            serde_json::to_value(&self.capabilities).unwrap_or_else(|_| json!({})),
        );
        if let Some(info) = &self.client_info {
            meta.insert(CLIENT_INFO_KEY.to_owned(), info.clone());
        }
        Value::Object(meta)
    }
}

/// Whether a request's `params` carry a 2026-07-28 envelope at all (the protocol
/// version key in `_meta`), valid or not: how a server that speaks both eras can tell
/// a stateless request that came without the `MCP-Protocol-Version` header.
pub fn has_envelope(params: Option<&serde_json::value::RawValue>) -> bool {
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "_meta", default)]
        meta: Option<Map<String, Value>>,
    }
    params
        .filter(|p| p.get().starts_with('{'))
        .and_then(|p| serde_json::from_str::<Params>(p.get()).ok())
        .and_then(|p| p.meta)
        .is_some_and(|m| m.contains_key(PROTOCOL_VERSION_KEY))
}

/// Every version a client can negotiate with `initialize` (the stateful era), oldest
/// first: the stateful [`Revision`]s and the older ones servers still accept.
pub const HANDSHAKE_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Whether a request belongs to the stateless era (2026-07-28), as a server that
/// speaks both eras on one endpoint decides it: when an `MCP-Protocol-Version` header
/// was sent (`version_header`), by whether it names no [`HANDSHAKE_VERSIONS`] entry
/// (the Python SDK routes on the header the same way; an unknown version goes to the
/// stateless era, whose envelope check refuses it properly); without the header, by
/// whether the request is `server/discover` or carries the envelope ([`has_envelope`]).
///
/// A header sent more than once should be treated as stateless too (and then refused
/// as a header mismatch).
pub fn is_stateless_request(
    version_header: Option<&str>,
    method: Option<&str>,
    params: Option<&serde_json::value::RawValue>,
) -> bool {
    match version_header {
        Some(version) => !HANDSHAKE_VERSIONS.contains(&version.trim()),
        None => method == Some(DISCOVER_METHOD) || has_envelope(params),
    }
}

/// Whether shared caches may keep a result (2026-07-28 caching hints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CacheScope {
    /// Any user may be served the cached result.
    Public,
    /// Only the requesting user (the default).
    #[default]
    Private,
}

/// The result of `server/discover` (2026-07-28), with the Python SDK's wire names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DiscoverResult {
    /// The protocol versions the server speaks; the client picks one for its requests.
    pub supported_versions: Vec<String>,
    /// The server's capabilities (`{"tools": {}}`, ...).
    pub capabilities: Value,
    /// Guidance on using the server, e.g. for a system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// How long the client may cache this result, in milliseconds (0: not at all).
    #[serde(default)]
    pub ttl_ms: u64,
    /// Who may be served a cached copy.
    #[serde(default)]
    pub cache_scope: CacheScope,
    /// Always `complete`.
    #[serde(default)]
    pub result_type: ResultType,
    /// `_meta`, where the server names itself ([`SERVER_INFO_KEY`]).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl DiscoverResult {
    /// The answer of a server that speaks the [`STATELESS`] revisions with
    /// `capabilities`, naming itself `name` `version` in `_meta`.
    pub fn new(capabilities: Value, name: &str, version: &str) -> Self {
        let mut meta = Map::new();
        meta.insert(
            SERVER_INFO_KEY.to_owned(),
            json!({ "name": name, "version": version }),
        );
        Self {
            supported_versions: STATELESS.iter().map(|r| r.as_str().to_owned()).collect(),
            capabilities,
            instructions: None,
            ttl_ms: 0,
            cache_scope: CacheScope::Private,
            result_type: ResultType::Complete,
            meta: Some(meta),
        }
    }

    /// The same with `instructions`.
    #[must_use]
    pub fn with_instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_parse_and_print() {
        for r in SUPPORTED {
            assert_eq!(r.as_str().parse::<Revision>(), Ok(*r));
            assert_eq!(r.to_string(), r.as_str());
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        }
        assert_eq!("2025-03-26".parse::<Revision>(), Err(UnknownRevision));
        assert_eq!(" 2025-06-18".parse::<Revision>(), Err(UnknownRevision));
        assert!(serde_json::from_value::<Revision>(json!("1999-01-01")).is_err());
        assert!(LATEST.is_stateless());
        assert!(!LATEST_STATEFUL.is_stateless());
        assert!(!Revision::V2025_06_18.is_stateless());
        assert_eq!(STATELESS, &[Revision::V2026_07_28]);
        assert_eq!(SUPPORTED.last(), Some(&LATEST));
    }

    fn params(meta: Value) -> Value {
        json!({ "name": "x", "_meta": meta })
    }

    #[test]
    fn the_envelope_is_read_with_capabilities() {
        let p = params(json!({
            PROTOCOL_VERSION_KEY: "2026-07-28",
            CLIENT_CAPABILITIES_KEY: {"elicitation": {"form": {}}, "sampling": {}, "experimental": {"x": {}}},
            CLIENT_INFO_KEY: {"name": "mcp", "version": "2.3"},
        }));
        let meta = RequestMeta::from_params(Some(&p)).unwrap();
        assert_eq!(meta.protocol_version, Revision::V2026_07_28);
        assert!(meta.capabilities.elicitation_form());
        assert!(!meta.capabilities.elicitation_url());
        assert!(meta.capabilities.sampling());
        assert!(meta.capabilities.other.contains_key("experimental"));
        assert_eq!(
            meta.client_info,
            Some(json!({"name": "mcp", "version": "2.3"}))
        );
        // The raw reader agrees, and the envelope round-trips.
        let raw = serde_json::value::to_raw_value(&p).unwrap();
        assert_eq!(RequestMeta::from_raw_params(Some(&raw)).unwrap(), meta);
        assert!(has_envelope(Some(&raw)));
        let again = RequestMeta::from_params(Some(&json!({"_meta": meta.to_meta()}))).unwrap();
        assert_eq!(again, meta);
    }

    #[test]
    fn elicitation_modes_are_read_as_declared() {
        let caps = |v: Value| serde_json::from_value::<ClientCapabilities>(v).unwrap();
        assert!(caps(json!({"elicitation": {}})).elicitation_form());
        assert!(!caps(json!({"elicitation": {"url": {}}})).elicitation_form());
        assert!(caps(json!({"elicitation": {"url": {}}})).elicitation_url());
        assert!(caps(json!({"elicitation": {"form": {}, "url": {}}})).elicitation_form());
        assert!(!caps(json!({})).elicitation_form());
        assert!(!caps(json!({"sampling": {}})).elicitation_form());
    }

    #[test]
    fn bad_envelopes_are_refused_as_the_python_sdk_refuses_them() {
        let err = |p: Option<Value>| RequestMeta::from_params(p.as_ref()).unwrap_err();
        assert_eq!(err(None), MetaError::NotAnObject);
        assert_eq!(err(Some(json!({"name": "x"}))), MetaError::NotAnObject);
        assert_eq!(err(Some(params(json!([])))), MetaError::NotAnObject);
        assert_eq!(
            err(Some(params(json!({})))),
            MetaError::MissingKeys(vec![PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY])
        );
        let missing = err(Some(params(json!({PROTOCOL_VERSION_KEY: "2026-07-28"}))));
        assert_eq!(missing.code(), jsonrpc::INVALID_PARAMS);
        assert_eq!(
            missing.to_string(),
            "params._meta is missing the required envelope key(s): io.modelcontextprotocol/clientCapabilities"
        );
        assert_eq!(
            err(Some(params(
                json!({PROTOCOL_VERSION_KEY: 7, CLIENT_CAPABILITIES_KEY: {}})
            ))),
            MetaError::VersionNotString
        );
        assert_eq!(
            err(Some(params(
                json!({PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: []})
            ))),
            MetaError::BadCapabilities
        );
        // A stateful version in the envelope is as unsupported as an unknown one.
        for requested in ["2027-01-01", "2025-11-25"] {
            let e = err(Some(params(
                json!({PROTOCOL_VERSION_KEY: requested, CLIENT_CAPABILITIES_KEY: {}}),
            )));
            assert_eq!(e.code(), jsonrpc::UNSUPPORTED_PROTOCOL_VERSION);
            let answer = e.to_response(json!(4));
            assert_eq!(answer["id"], 4);
            assert_eq!(answer["error"]["code"], -32022);
            assert_eq!(answer["error"]["message"], "Unsupported protocol version");
            assert_eq!(
                answer["error"]["data"],
                json!({"supported": ["2026-07-28"], "requested": requested})
            );
        }
        assert!(
            err(None).to_response(Value::Null)["error"]
                .get("data")
                .is_none()
        );
        let raw = serde_json::value::to_raw_value(&json!({"name": "x"})).unwrap();
        assert!(!has_envelope(Some(&raw)));
        assert!(!has_envelope(None));
    }

    #[test]
    fn requests_are_routed_to_their_era() {
        let raw = |v: Value| serde_json::value::to_raw_value(&v).unwrap();
        let enveloped = raw(json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}));
        let plain = raw(json!({"name": "x"}));
        // The header decides when present.
        assert!(!is_stateless_request(
            Some("2025-11-25"),
            Some("tools/list"),
            Some(&enveloped)
        ));
        assert!(!is_stateless_request(Some(" 2024-11-05 "), None, None));
        assert!(is_stateless_request(
            Some("2026-07-28"),
            Some("tools/list"),
            Some(&plain)
        ));
        assert!(is_stateless_request(Some("2030-01-01"), Some("ping"), None));
        // Without it, the method or the body's envelope.
        assert!(is_stateless_request(None, Some(DISCOVER_METHOD), None));
        assert!(is_stateless_request(
            None,
            Some("tools/list"),
            Some(&enveloped)
        ));
        assert!(!is_stateless_request(
            None,
            Some("tools/list"),
            Some(&plain)
        ));
        assert!(!is_stateless_request(None, Some("initialize"), None));
        for r in SUPPORTED.iter().filter(|r| !r.is_stateless()) {
            assert!(HANDSHAKE_VERSIONS.contains(&r.as_str()));
        }
    }

    #[test]
    fn discover_results_have_the_sdk_wire_names() {
        let result =
            DiscoverResult::new(json!({"tools": {}}), "demo", "1.0").with_instructions("hi");
        let v = serde_json::to_value(&result).unwrap();
        assert_eq!(
            v,
            json!({
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}},
                "instructions": "hi",
                "ttlMs": 0,
                "cacheScope": "private",
                "resultType": "complete",
                "_meta": {SERVER_INFO_KEY: {"name": "demo", "version": "1.0"}},
            })
        );
        assert_eq!(serde_json::from_value::<DiscoverResult>(v).unwrap(), result);
        // What the Python SDK's server answers (defaults filled in when omitted).
        let sdk: DiscoverResult = serde_json::from_value(json!({
            "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {"listChanged": false}},
        }))
        .unwrap();
        assert_eq!(sdk.result_type, ResultType::Complete);
        assert_eq!(sdk.cache_scope, CacheScope::Private);
    }
}
