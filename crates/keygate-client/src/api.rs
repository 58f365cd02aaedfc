//! The JSON of keygated's API: what the server writes and the client reads.
//!
//! The server serialises these very types, so a field renamed here is renamed on the
//! wire for both ends at once.

use keygate_keys::{AuditEvent, KeyStatus, ProjectId, ProjectRef, Refill, TenantRef, UserId};
use keygate_token::{KeyId, KeyKind, Token};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Token introspection, `GET /api/v1/token`: what the presented key is and what it
/// reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// The key's public id (as sent: a caller that holds the key knows it already).
    #[cfg_attr(feature = "openapi", schema(value_type = KeyId))]
    pub id: String,
    /// User key or tenant key.
    pub kind: KeyKind,
    /// The tenant it belongs to.
    pub tenant: TenantRef,
    /// The issuing user (user keys only).
    pub user: Option<TokenUser>,
    /// The scopes it holds.
    pub scopes: Vec<String>,
    /// The projects it reaches, resolved: every project of the tenant when the key is
    /// not restricted.
    pub projects: Vec<ProjectRef>,
    /// Whether it can call no mutating tool.
    pub read_only: bool,
    /// When it expires (RFC 3339), if ever.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// The user of a user key, as introspection shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenUser {
    /// Its id.
    pub id: UserId,
    /// Its name.
    pub name: String,
}

/// A key as the admin API shows it: never a hash, never the raw token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The public id.
    pub id: KeyId,
    /// The name it was given.
    pub name: String,
    /// User key or tenant key.
    pub kind: KeyKind,
    /// The issuing user (user keys).
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The token prefix, such as `kg_uk_`.
    #[serde(default)]
    pub prefix: String,
    /// The scopes it holds.
    pub scopes: Vec<String>,
    /// The projects it may touch; `None`: all of the tenant's.
    #[serde(default)]
    pub projects: Option<Vec<ProjectRef>>,
    /// When it was created (keygated always says; read as absent when a server
    /// does not).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it expires, if ever.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked when not on an owner's request: `leaked` (a leak report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// When it was last used, if ever.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Active, expired or revoked, as the server saw it when answering (keygated
    /// always says; see [`KeyInfo::status_at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KeyStatus>,
    /// Verified requests left, for a usage-limited key (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// How `remaining` is refilled, if it is:
    /// `{"interval": "daily"|"monthly"|"<duration>", "amount": N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
}

impl KeyInfo {
    /// The server's status, or one derived from `revoked_at` and `expires_at` at
    /// `now` when the answer had none.
    pub fn status_at(&self, now: OffsetDateTime) -> KeyStatus {
        if let Some(status) = self.status {
            status
        } else if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

/// A key just created or rotated, with its raw token: the one answer that shows it
/// (`201`, `Cache-Control: no-store`).
///
/// `Debug` shows the token redacted, as [`Token`]'s own `Debug` does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        description = "A key just created or rotated, with its raw token: the one answer that shows it (`201`, `Cache-Control: no-store`)."
    )
)]
pub struct IssuedKey {
    /// The key's record.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The raw token.
    #[serde(with = "raw_token")]
    pub key: Token,
    /// The key a rotation replaces (left active until revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<KeyId>,
}

/// `POST /api/v1/keys`: the key to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name to recognise it by: 1 to 64 characters, not only spaces, with no control
    /// or invisible formatting characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
    /// User key or tenant key.
    pub kind: KeyKind,
    /// The scopes it holds (fixed at creation), each one the policy defines
    /// (`GET /api/v1/scopes`).
    pub scopes: Vec<String>,
    /// Names of the projects it may touch, each an existing project of the tenant;
    /// absent: all of the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<String>>,
    /// When it expires, RFC 3339: in the future, at most ten years from now. Not with
    /// `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: Option<String>,
    /// How long it lives, counted by the server's clock: at most ten years. Not with
    /// `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<ExpiresIn>,
    /// Verified requests it may make: a usage-limited key (above zero). Read as a
    /// signed number so that a negative one is refused with its own message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub remaining: Option<i64>,
    /// How `remaining` is refilled (needs `remaining`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<CreateRefill>,
}

/// The `refill` of a [`CreateKey`]: `interval` is `daily`, `monthly` or a duration
/// such as `6h` ([`RefillInterval`](keygate_keys::RefillInterval)), `amount` what
/// `remaining` becomes at each refill (above zero). Checked by the server, which
/// answers each mistake with its own 400.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRefill {
    /// `daily`, `monthly` or a duration such as `6h` (UTC periods).
    #[cfg_attr(feature = "openapi", schema(example = "daily"))]
    pub interval: String,
    /// What `remaining` becomes at each refill.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub amount: i64,
}

impl From<Refill> for CreateRefill {
    fn from(refill: Refill) -> Self {
        Self {
            interval: refill.interval.to_string(),
            amount: i64::try_from(refill.amount).unwrap_or(i64::MAX),
        }
    }
}

impl CreateKey {
    /// A key of `kind` named `name` holding `scopes`, for all projects, never expiring.
    pub fn new(name: impl Into<String>, kind: KeyKind, scopes: Vec<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            scopes,
            projects: None,
            expires_at: None,
            expires_in: None,
            remaining: None,
            refill: None,
        }
    }

    /// Limited to `remaining` verified requests, refilled by `refill`; `None`: no
    /// limit.
    #[must_use]
    pub fn with_usage(mut self, remaining: Option<u64>, refill: Option<Refill>) -> Self {
        self.remaining = remaining.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.refill = refill.map(CreateRefill::from);
        self
    }

    /// Limited to the projects named `projects`; none: all of the tenant's.
    #[must_use]
    pub fn with_projects(mut self, projects: Vec<String>) -> Self {
        self.projects = (!projects.is_empty()).then_some(projects);
        self
    }

    /// Living `lifetime` (whole seconds) from its creation, counted by the server's
    /// clock; `None`: never expiring.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Option<std::time::Duration>) -> Self {
        self.expires_in = lifetime.map(|lifetime| ExpiresIn::Seconds(lifetime.as_secs()));
        self
    }
}

/// A key's lifetime: whole seconds, or a string such as `45s`, `90m`, `12h`, `30d`
/// (read by [`parse_seconds`](crate::parse_seconds)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ExpiresIn {
    /// Whole seconds.
    Seconds(u64),
    /// A number with a unit: `s`, `m`, `h` or `d`.
    Text(String),
}

/// The longest key or project name the server accepts, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The longest lifetime a key may be given, in seconds: ten years of 366 days.
pub const MAX_KEY_LIFETIME_SECS: u64 = 10 * 366 * 86_400;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ExpiresIn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let seconds = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .description(Some("Whole seconds."))
            .minimum(Some(1))
            .maximum(Some(MAX_KEY_LIFETIME_SECS));
        let text = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(
                "A whole number with a unit `s`, `m`, `h` or `d` (none: seconds), such as `90m`.",
            ))
            .pattern(Some("^[0-9]+[smhd]?$"));
        OneOfBuilder::new()
            .item(seconds)
            .item(text)
            .description(Some("A key's lifetime: at most ten years."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ExpiresIn {}

/// `GET /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "Listing<KeyInfo>")]
pub struct KeyList {
    /// The tenant's keys.
    pub keys: Vec<KeyInfo>,
}

/// A project as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectInfo {
    /// Its id.
    pub id: ProjectId,
    /// Its name (unique in the tenant).
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/v1/projects`: the project to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Its name: 1 to 64 characters, not only spaces, with no control or invisible
    /// formatting characters; unique in the tenant.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
}

/// `GET /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "Listing<ProjectInfo>")]
pub struct ProjectList {
    /// The tenant's projects.
    pub projects: Vec<ProjectInfo>,
}

/// `GET /api/v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "Listing<AuditEvent>")]
pub struct AuditList {
    /// The newest events of the tenant's log, newest first.
    pub events: Vec<AuditEvent>,
}

/// One scope of the server's policy, as `GET /api/v1/scopes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeInfo {
    /// Its name, such as `services:read`.
    pub name: String,
    /// What it allows.
    pub description: String,
}

/// `GET /api/v1/scopes`: the scopes a key can be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeList {
    /// The policy's scopes.
    pub scopes: Vec<ScopeInfo>,
}

/// Where an approval stands, as `GET /api/v1/approvals/{id}` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ApprovalState {
    /// Waiting for a person.
    Pending,
    /// Approved: the agent's identical retry proceeds once.
    Approved,
    /// Denied.
    Denied,
    /// Approved and used by the retry.
    Used,
    /// Not decided (or not used) in time.
    Expired,
}

/// A key as an approval names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalKey {
    /// The calling key's public id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A person as an approval names them: the calling key's user, or who decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalPerson {
    /// Their user id.
    pub id: String,
    /// Their user name.
    pub name: String,
}

/// An agent's gated call waiting for (or decided by) a person:
/// `GET /api/v1/approvals/{id}`, and the answer of approve and deny.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalInfo {
    /// Its id, as in the approval URL `/approvals/<id>`.
    pub id: String,
    /// Where it stands.
    pub status: ApprovalState,
    /// The gated operation, such as `service.delete`.
    pub operation: String,
    /// The tool called (the same name as `operation`).
    pub tool: String,
    /// Exactly what the call acts on, such as `web`: the name the person types.
    pub target: String,
    /// The call's arguments (without `confirm`).
    pub arguments: serde_json::Value,
    /// The calling key.
    pub key: ApprovalKey,
    /// The calling key's user (user keys); `null` for a tenant key.
    pub user: Option<ApprovalPerson>,
    /// When the agent's call asked for it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops counting.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who approved or denied it.
    pub decided_by: Option<ApprovalPerson>,
}

/// `GET /api/v1/approvals`: the pending approvals the caller may decide, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "Listing<ApprovalInfo>")]
pub struct ApprovalList {
    /// The approvals.
    pub approvals: Vec<ApprovalInfo>,
}

/// `POST /api/v1/approvals/{id}/approve`: the target's exact name, typed by the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// Exactly the approval's `target`.
    pub target: String,
}

/// An error answer: `{"error"}`, with `reason` for refused keys and `message` for
/// request mistakes a person can act on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The machine code, such as `insufficient_scope` (empty when the answer had no
    /// JSON body).
    #[serde(default)]
    pub error: String,
    /// Why a key was refused (`key_not_found`, `key_revoked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was wrong with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why the server refused a request, in the words of the HTTP contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// `missing_token`: no `Authorization: Bearer` header.
    MissingToken,
    /// `invalid_request`: a malformed header or body.
    InvalidRequest,
    /// `key_not_found`: bad shape, bad checksum, unknown id or wrong secret.
    KeyNotFound,
    /// `key_revoked`.
    KeyRevoked,
    /// `expired`.
    Expired,
    /// `insufficient_scope`: the key may not do this.
    InsufficientScope,
    /// `rate_limited`.
    RateLimited,
    /// `usage_exceeded`: a usage-limited key is used up.
    UsageExceeded,
    /// `forbidden_origin`: the request's `Origin` is not allowed.
    ForbiddenOrigin,
    /// `not_found`: absent, or another tenant's.
    NotFound,
    /// `conflict`: such as a name that exists.
    Conflict,
    /// `payload_too_large`.
    PayloadTooLarge,
    /// `unavailable`: try again shortly.
    Unavailable,
    /// `internal`: see the server's logs.
    Internal,
    /// A code this version does not know, as the server sent it.
    Other(String),
}

impl RejectReason {
    /// The reason for a code of the contract (`error` or `reason` field).
    pub fn from_code(code: &str) -> Self {
        match code {
            "missing_token" => Self::MissingToken,
            "invalid_request" => Self::InvalidRequest,
            "key_not_found" => Self::KeyNotFound,
            "key_revoked" => Self::KeyRevoked,
            "expired" => Self::Expired,
            "insufficient_scope" => Self::InsufficientScope,
            "rate_limited" => Self::RateLimited,
            "usage_exceeded" => Self::UsageExceeded,
            "forbidden_origin" => Self::ForbiddenOrigin,
            "not_found" => Self::NotFound,
            "conflict" => Self::Conflict,
            "payload_too_large" => Self::PayloadTooLarge,
            "unavailable" => Self::Unavailable,
            "internal" => Self::Internal,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Why a `401` refused the key: `expired`, else the `reason`, else
    /// `missing_token`, else `key_not_found` (a 401 says nothing more).
    pub fn of_unauthorized(body: &ErrorBody) -> Self {
        match (body.error.as_str(), body.reason.as_deref()) {
            ("expired", _) => Self::Expired,
            (_, Some(reason)) => Self::from_code(reason),
            ("missing_token", None) => Self::MissingToken,
            _ => Self::KeyNotFound,
        }
    }

    /// Why an answer with `status` and `body` refused the request.
    pub fn of(status: u16, body: &ErrorBody) -> Self {
        if status == 401 {
            Self::of_unauthorized(body)
        } else {
            Self::from_code(&body.error)
        }
    }

    /// The code, as the contract spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest => "invalid_request",
            Self::KeyNotFound => "key_not_found",
            Self::KeyRevoked => "key_revoked",
            Self::Expired => "expired",
            Self::InsufficientScope => "insufficient_scope",
            Self::RateLimited => "rate_limited",
            Self::UsageExceeded => "usage_exceeded",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Other(code) => code,
        }
    }

    /// A readable sentence for a refused key.
    pub fn explain(&self) -> &'static str {
        match self {
            Self::Expired => "the key has expired",
            Self::KeyRevoked => "the key was revoked",
            Self::KeyNotFound => "the server does not know this key",
            Self::MissingToken => "the server received no key",
            _ => "the server refused the key",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One match of a leak report, `POST /api/v1/leaks/github` (GitHub secret scanning's
/// partner format: the body is a JSON array of these).
///
/// `Debug` never shows the token: it may be a live key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeakMatch {
    /// The text found, as found.
    pub token: String,
    /// The name of the pattern that matched it (the provider's token type).
    #[serde(rename = "type", default)]
    pub token_type: String,
    /// Where it was found (may be empty).
    #[serde(default)]
    pub url: String,
    /// What kind of place it was found in, such as `content` or `commit`.
    #[serde(default)]
    pub source: String,
}

impl std::fmt::Debug for LeakMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakMatch")
            .field("token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("url", &self.url)
            .field("source", &self.source)
            .finish()
    }
}

/// What a leak report's answer says of one match, in GitHub's feedback format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeakVerdict {
    /// SHA-256 of the token as found, lowercase hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{64}$"))]
    pub token_hash: String,
    /// The match's `type`, as reported.
    pub token_type: String,
    /// Whether it is one of this server's keys.
    pub label: LeakLabel,
}

/// Whether a reported token is a real credential of this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeakLabel {
    /// One of this server's keys (revoked now, or already revoked or expired).
    TruePositive,
    /// Not one of this server's keys: another service's token, a forged or
    /// mistyped one.
    FalsePositive,
}

/// A raw token as its string on the wire.
mod raw_token {
    use keygate_token::Token;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(token: &Token, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(token.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Token, D::Error> {
        let raw = zeroize::Zeroizing::new(String::deserialize(d)?);
        // The parse error never echoes the secret.
        Token::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// `TryFrom<Listing<item>>` for each listing type, whose one field is the list.
macro_rules! from_listing {
    ($($list:ident { $field:ident: $item:ty }),* $(,)?) => {$(
        impl TryFrom<Listing<$item>> for $list {
            type Error = String;

            fn try_from(listing: Listing<$item>) -> Result<Self, String> {
                Ok(Self {
                    $field: listing.take(stringify!($field))?,
                })
            }
        }
    )*};
}

from_listing!(
    KeyList { keys: KeyInfo },
    ProjectList {
        projects: ProjectInfo
    },
    AuditList { events: AuditEvent },
    ApprovalList {
        approvals: ApprovalInfo
    },
);

/// A listing as read: `{"<field>": [..]}`, or a bare array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Listing<T> {
    Bare(Vec<T>),
    Wrapped(std::collections::BTreeMap<String, Vec<T>>),
}

impl<T> Listing<T> {
    fn take(self, field: &str) -> Result<Vec<T>, String> {
        match self {
            Self::Bare(items) => Ok(items),
            Self::Wrapped(mut fields) => fields
                .remove(field)
                .ok_or_else(|| format!("not a list of {field}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: &str, reason: Option<&str>) -> ErrorBody {
        ErrorBody {
            error: error.to_owned(),
            reason: reason.map(str::to_owned),
            message: None,
        }
    }

    #[test]
    fn create_key_projects_and_lifetime() {
        let base = CreateKey::new("k", KeyKind::User, vec!["a:read".to_owned()]);
        let none = base.clone().with_projects(Vec::new()).with_lifetime(None);
        assert_eq!(
            none, base,
            "no projects: all of them; no lifetime: never expiring"
        );
        let some = base
            .with_projects(vec!["shop".to_owned()])
            .with_lifetime(Some(std::time::Duration::from_secs(90)));
        assert_eq!(some.projects, Some(vec!["shop".to_owned()]));
        assert_eq!(some.expires_in, Some(ExpiresIn::Seconds(90)));
    }

    #[test]
    fn unauthorized_reasons() {
        let of = |e, r| {
            RejectReason::of_unauthorized(&body(e, r))
                .as_str()
                .to_owned()
        };
        assert_eq!(of("expired", None), "expired");
        assert_eq!(of("invalid_token", Some("key_revoked")), "key_revoked");
        assert_eq!(of("invalid_token", Some("key_not_found")), "key_not_found");
        assert_eq!(of("invalid_token", Some("odd")), "odd");
        assert_eq!(of("missing_token", None), "missing_token");
        assert_eq!(of("", None), "key_not_found");
        assert_eq!(
            RejectReason::of(403, &body("insufficient_scope", None)),
            RejectReason::InsufficientScope
        );
    }

    #[test]
    fn codes_round_trip() {
        for code in [
            "missing_token",
            "invalid_request",
            "key_not_found",
            "key_revoked",
            "expired",
            "insufficient_scope",
            "rate_limited",
            "usage_exceeded",
            "forbidden_origin",
            "not_found",
            "conflict",
            "payload_too_large",
            "unavailable",
            "internal",
            "something_new",
        ] {
            assert_eq!(RejectReason::from_code(code).as_str(), code);
        }
    }

    #[test]
    fn error_bodies() {
        let parsed: ErrorBody =
            serde_json::from_str(r#"{"error":"invalid_token","reason":"key_revoked"}"#)
                .expect("an error body");
        assert_eq!(parsed, body("invalid_token", Some("key_revoked")));
        assert_eq!(
            serde_json::to_string(&body("expired", None)).expect("serialises"),
            r#"{"error":"expired"}"#
        );
    }

    #[test]
    fn statuses() {
        let now = OffsetDateTime::now_utc();
        let key = |extra: serde_json::Value| -> KeyInfo {
            let mut v = serde_json::json!({
                "id": "AAAAAAAAAAAA", "name": "k", "kind": "user", "scopes": [],
            });
            if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                v.extend(extra.clone());
            }
            serde_json::from_value(v).expect("a key")
        };
        let status = |extra| key(extra).status_at(now);
        use serde_json::json;
        assert_eq!(
            status(json!({"revoked_at": "2020-01-01T00:00:00Z"})),
            KeyStatus::Revoked
        );
        assert_eq!(
            status(json!({"expires_at": "2020-01-01T00:00:00Z"})),
            KeyStatus::Expired
        );
        assert_eq!(status(json!({"expires_at": null})), KeyStatus::Active);
        assert_eq!(status(json!({"status": "revoked"})), KeyStatus::Revoked);
    }

    #[test]
    fn listings_wrapped_or_bare() {
        let wrapped: ProjectList = serde_json::from_str(
            r#"{"projects":[{"id":"p1","name":"shop","created_at":"2025-01-02T03:04:05Z"}]}"#,
        )
        .expect("a listing");
        let bare: ProjectList = serde_json::from_str(
            r#"[{"id":"p1","name":"shop","created_at":"2025-01-02T03:04:05Z"}]"#,
        )
        .expect("a listing");
        assert_eq!(wrapped, bare);
        assert_eq!(
            serde_json::to_string(&wrapped).expect("serialises"),
            r#"{"projects":[{"id":"p1","name":"shop","created_at":"2025-01-02T03:04:05Z"}]}"#
        );
        assert!(serde_json::from_str::<ProjectList>(r#"{"keys":[]}"#).is_err());
    }

    #[test]
    fn approvals_read_as_the_contract_writes_them() {
        let doc = serde_json::json!({"approvals": [{
            "id": "ap_1", "status": "pending", "operation": "service.delete",
            "tool": "service.delete", "target": "web", "arguments": {"service": "web"},
            "key": {"id": "AAAAAAAAAAAA", "name": "agent"}, "user": null,
            "created_at": "2026-12-01T10:00:00Z", "expires_at": "2026-12-01T10:05:00Z",
            "decided_by": null,
        }]});
        let list: ApprovalList = serde_json::from_value(doc.clone()).expect("a listing");
        let a = &list.approvals[0];
        assert_eq!(a.status, ApprovalState::Pending);
        assert_eq!(a.key.name, "agent");
        assert_eq!(a.arguments["service"], "web");
        assert!(a.user.is_none() && a.decided_by.is_none());
        assert_eq!(serde_json::to_value(&list).expect("serialises"), doc);
        for status in ["approved", "denied", "used", "expired"] {
            let s: ApprovalState =
                serde_json::from_value(serde_json::json!(status)).expect("a status");
            assert_eq!(serde_json::to_value(s).expect("serialises"), status);
        }
    }
}
