//! Errors: why the server could not start, and the admin API's error answers.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_keys::StoreError;
use serde_json::json;

/// Why the server could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A configuration value is unusable; the message says which and why.
    #[error("{0}")]
    Config(String),
    /// The key store could not be opened, migrated or bootstrapped.
    #[error("key store: {0}")]
    Store(#[source] StoreError),
    /// The policy file is invalid or unreadable.
    #[error("policy: {0}")]
    Policy(#[source] keygate_scopes::PolicyError),
    /// The rate limiter could not be set up.
    #[error("rate limiter: {0}")]
    Limits(#[source] keygate_limits::LimitError),
    /// The shared gate state (PostgreSQL tables) could not be set up.
    #[error("gate state: {0}")]
    Gates(#[source] keygate_gates::GateError),
    /// Listening or serving failed.
    #[error("serving: {0}")]
    Io(#[source] std::io::Error),
}

/// An admin-API failure, rendered as JSON with the right status.
///
/// 4xx answers carry a short machine code in `error` (and, for request mistakes, a
/// `message` a person can act on); 5xx answers are fixed and the detail is logged.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 403 `{"error":"insufficient_scope"}`.
    InsufficientScope,
    /// 404 `{"error":"not_found"}`: absent, or another tenant's.
    NotFound,
    /// 409 `{"error":"conflict","message":…}`.
    Conflict(String),
    /// 400 `{"error":"invalid_request","message":…}`.
    Invalid(String),
    /// 503 `{"error":"unavailable"}` with `Retry-After: 1`.
    Unavailable,
    /// 413 `{"error":"payload_too_large","message":…}`.
    TooLarge,
    /// 500 `{"error":"internal"}`.
    Internal,
}

impl ApiError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// A body that is not the JSON the endpoint takes.
    pub(crate) fn from_json(rejection: &JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::TooLarge;
        }
        let message = match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a JSON body with Content-Type: application/json".to_owned()
            }
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
            JsonRejection::JsonDataError(e) => {
                let text = e.body_text();
                // "Failed to deserialize the JSON body into the target type: kind: …"
                let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
                format!("invalid body: {detail}")
            }
            other => other.body_text(),
        };
        Self::Invalid(message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::Invalid(message) => Self::Invalid(message),
            e @ StoreError::InvalidName { .. } => Self::Invalid(e.to_string()),
            StoreError::Unavailable(source) => {
                tracing::error!(error = %source, "key store unavailable; answering 503");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = %other, "key store failed");
                Self::Internal
            }
        }
    }
}

/// `message` with every credential in it (a keygate key of any brand, a foreign token)
/// redacted. Messages quote what the client sent (an unknown scope, a bad `kind`), and a
/// key pasted into the wrong field must not come back in an error body, where proxies
/// and client logs would keep it.
fn redact_credentials(message: &str) -> String {
    let findings = keygate_token::recognise(message);
    if findings.is_empty() {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut last = 0;
    for f in findings {
        let (Some(before), Some(found)) =
            (message.get(last..f.span.start), message.get(f.span.clone()))
        else {
            continue;
        };
        out.push_str(before);
        out.push_str(&keygate_token::redact(found));
        last = f.span.end;
    }
    out.push_str(message.get(last..).unwrap_or_default());
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::InsufficientScope => {
                return keygate_http::AuthError::InsufficientScope.into_response();
            }
            Self::Unavailable => return keygate_http::AuthError::Unavailable.into_response(),
            Self::NotFound => (StatusCode::NOT_FOUND, json!({ "error": "not_found" })),
            Self::Conflict(message) => (
                StatusCode::CONFLICT,
                json!({ "error": "conflict", "message": redact_credentials(&message) }),
            ),
            Self::Invalid(message) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "invalid_request", "message": redact_credentials(&message) }),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": "payload_too_large", "message": format!("the request body is larger than {} bytes", crate::app::ADMIN_BODY_LIMIT) }),
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "internal" }),
            ),
        };
        let mut resp = (status, Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_messages_are_redacted() {
        let key = keygate_token::TokenFormat::default()
            .generate(keygate_token::KeyKind::User)
            .unwrap();
        let raw = key.expose();
        let message = format!("invalid body: kind: unknown variant `{raw}`, expected `user`");
        let out = redact_credentials(&message);
        assert!(!out.contains(raw), "{out}");
        assert!(!out.contains(&raw[raw.len() - 36..raw.len() - 6]), "{out}");
        assert!(out.starts_with("invalid body: kind: unknown variant `kg_uk_"));
        assert!(out.ends_with("`, expected `user`"));
        assert_eq!(
            redact_credentials("name must not be empty"),
            "name must not be empty"
        );
    }
}
