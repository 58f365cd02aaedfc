//! The errors of the HTTP contract, each with its exact response.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use keygate_keys::VerifyError;
use keygate_scopes::Denied;

/// Why a request was not let through. Each variant answers exactly one row of the
/// keygate HTTP contract: a fixed status, a fixed JSON body (no extra fields),
/// `Content-Type: application/json`, and an RFC 6750 `WWW-Authenticate` header
/// (401, 400 and 403 `insufficient_scope`) or a `Retry-After` header (429, 503, and
/// 403 `usage_exceeded` when the key is refilled).
///
/// Unknown ids, bad shapes, bad checksums and hash mismatches are all
/// [`AuthError::KeyNotFound`]: a client cannot tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header, or a scheme other than `Bearer`: 401
    /// `{"error":"missing_token"}`.
    #[error("missing bearer token")]
    MissingToken,
    /// A malformed `Authorization` header (`Bearer` with no token, extra parts,
    /// characters outside RFC 6750 `b64token`, two headers, over 4 KiB): 400
    /// `{"error":"invalid_request"}`.
    #[error("malformed Authorization header")]
    InvalidRequest,
    /// Bad shape, bad checksum, unknown id or hash mismatch: 401
    /// `{"error":"invalid_token","reason":"key_not_found"}`.
    #[error("key not found")]
    KeyNotFound,
    /// The key was revoked: 401 `{"error":"invalid_token","reason":"key_revoked"}`.
    #[error("key revoked")]
    KeyRevoked,
    /// The key expired: 401 `{"error":"expired"}`.
    #[error("key expired")]
    Expired,
    /// The key may not do this (scope missing, tool not allowed, user-only tool with a
    /// tenant key, project outside the key): 403 `{"error":"insufficient_scope"}`.
    #[error("insufficient scope")]
    InsufficientScope,
    /// Too many requests: 429 `{"error":"rate_limited"}` with `Retry-After`.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited {
        /// Whole seconds to wait; answered as at least 1.
        retry_after_secs: u64,
    },
    /// The key store could not answer: 503 `{"error":"unavailable"}` with
    /// `Retry-After: 1`. Never a 401: the key may well be valid.
    #[error("key store unavailable")]
    Unavailable,
    /// A usage-limited key has no requests left: 403 `{"error":"usage_exceeded"}`,
    /// with `Retry-After` when a refill is due.
    #[error("usage limit of the key reached")]
    UsageExceeded {
        /// Whole seconds until the key's next refill (answered as at least 1), or
        /// `None` for a key that is never refilled.
        retry_after_secs: Option<u64>,
    },
}

const REALM: &str = r#"Bearer realm="keygate""#;

impl AuthError {
    /// The HTTP status this error answers with.
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::KeyNotFound | Self::KeyRevoked | Self::Expired => {
                StatusCode::UNAUTHORIZED
            }
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::UsageExceeded { .. } => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The exact JSON body this error answers with.
    pub const fn body(&self) -> &'static [u8] {
        match self {
            Self::MissingToken => br#"{"error":"missing_token"}"#,
            Self::InvalidRequest => br#"{"error":"invalid_request"}"#,
            Self::KeyNotFound => br#"{"error":"invalid_token","reason":"key_not_found"}"#,
            Self::KeyRevoked => br#"{"error":"invalid_token","reason":"key_revoked"}"#,
            Self::Expired => br#"{"error":"expired"}"#,
            Self::InsufficientScope => br#"{"error":"insufficient_scope"}"#,
            Self::RateLimited { .. } => br#"{"error":"rate_limited"}"#,
            Self::Unavailable => br#"{"error":"unavailable"}"#,
            Self::UsageExceeded { .. } => br#"{"error":"usage_exceeded"}"#,
        }
    }

    /// The `WWW-Authenticate` challenge this error carries, if any.
    pub const fn www_authenticate(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken => Some(REALM),
            Self::InvalidRequest => Some(concat!(
                r#"Bearer realm="keygate", error="invalid_request", "#,
                r#"error_description="expected a single Authorization: Bearer <token> header""#
            )),
            Self::KeyNotFound => Some(concat!(
                r#"Bearer realm="keygate", error="invalid_token", "#,
                r#"error_description="the key is not valid""#
            )),
            Self::KeyRevoked => Some(concat!(
                r#"Bearer realm="keygate", error="invalid_token", "#,
                r#"error_description="the key has been revoked""#
            )),
            Self::Expired => Some(concat!(
                r#"Bearer realm="keygate", error="invalid_token", "#,
                r#"error_description="the key has expired""#
            )),
            Self::InsufficientScope => {
                Some(r#"Bearer realm="keygate", error="insufficient_scope""#)
            }
            Self::RateLimited { .. } | Self::Unavailable | Self::UsageExceeded { .. } => None,
        }
    }

    /// The `Retry-After` seconds this error carries, if any (always at least 1).
    pub const fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(if *retry_after_secs == 0 {
                1
            } else {
                *retry_after_secs
            }),
            Self::Unavailable => Some(1),
            Self::UsageExceeded {
                retry_after_secs: Some(secs),
            } => Some(if *secs == 0 { 1 } else { *secs }),
            _ => None,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(Bytes::from_static(self.body())));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<VerifyError> for AuthError {
    /// Maps a verification failure to its response. A store failure becomes
    /// [`AuthError::Unavailable`] and its detail is logged here (it never holds the
    /// token: stores load rows by public id only).
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::NotFound => Self::KeyNotFound,
            VerifyError::Revoked => Self::KeyRevoked,
            VerifyError::Expired => Self::Expired,
            VerifyError::UsageExceeded { retry_after, .. } => Self::UsageExceeded {
                retry_after_secs: retry_after.map(keygate_limits::retry_after_secs),
            },
            VerifyError::Unavailable(source) => {
                tracing::error!(
                    error = %source,
                    cause = ?std::error::Error::source(&source).map(ToString::to_string),
                    "key store unavailable; answering 503",
                );
                Self::Unavailable
            }
            // A future verification failure is treated like an unknown key: refuse.
            _ => Self::KeyNotFound,
        }
    }
}

impl From<Denied> for AuthError {
    /// Every policy denial is a 403 `insufficient_scope`; the detail stays in logs.
    fn from(_: Denied) -> Self {
        Self::InsufficientScope
    }
}

impl From<&Denied> for AuthError {
    fn from(_: &Denied) -> Self {
        Self::InsufficientScope
    }
}

/// How much of a policy denial [`deny`] logs: its fixed text and the client-supplied
/// names in it, each of which alone [`LOG_MAX_CHARS`](crate::LOG_MAX_CHARS) would cut.
pub const DENIAL_LOG_CHARS: usize = 160;

/// Answers a policy denial with 403 `{"error":"insufficient_scope"}`, logging the
/// detail (which tool or method, which scope or project) at debug level, cut short and
/// escaped ([`untrusted`](crate::untrusted)): the names in it come from the client.
///
/// ```
/// use keygate_http::deny;
/// use keygate_scopes::Denied;
///
/// # fn check(denied: Option<Denied>) -> Option<axum::response::Response> {
/// if let Some(denied) = denied {
///     return Some(deny(&denied));
/// }
/// # None }
/// ```
pub fn deny(denied: &Denied) -> Response {
    tracing::debug!(
        reason = ?crate::untrusted(denied).max_chars(DENIAL_LOG_CHARS),
        "request denied by policy"
    );
    AuthError::InsufficientScope.into_response()
}
