//! Forward-auth: the answer a proxy (nginx `auth_request`, Traefik ForwardAuth, Caddy
//! `forward_auth`, Envoy `ext_authz`) asks for before it lets a request through.
//!
//! The proxy sends the client's `Authorization` header to a verify endpoint; the
//! [`AuthLayer`](crate::AuthLayer) in front of that endpoint verifies it (answering
//! every failure with its exact [`AuthError`](crate::AuthError)), and the endpoint then
//! checks what the proxy's configuration asks for ([`ForwardQuery`]: scopes, a project)
//! and answers 200 with the identity headers ([`forward_headers`]) the proxy copies onto
//! the request it forwards.

use std::fmt;

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, InvalidHeaderValue};
use http::{HeaderMap, HeaderName, HeaderValue};
use keygate_keys::{Principal, ProjectRef};

use crate::error::AuthError;
use crate::identity::{identity_headers, project_header};
use crate::untrusted::untrusted;

/// `X-Keygate-Scopes`: the verified key's scopes, sorted, comma-separated (forward-auth
/// answers only).
pub const X_KEYGATE_SCOPES: HeaderName = HeaderName::from_static("x-keygate-scopes");

/// `X-Keygate-Error`: on a forward-auth refusal, the exact JSON body of the answer, for
/// proxies that drop the auth answer's body and keep only its headers (nginx
/// `auth_request`: `auth_request_set $e $upstream_http_x_keygate_error`).
pub const X_KEYGATE_ERROR: HeaderName = HeaderName::from_static("x-keygate-error");

/// The query parameters forward-auth takes, at most this long in bytes: a proxy's
/// configuration writes them, so a longer query is a mistake or an attack.
pub const MAX_FORWARD_QUERY_LEN: usize = 2048;

/// Longest original method or URI kept from the proxy's headers (it is logged cut to
/// [`LOG_MAX_CHARS`](crate::LOG_MAX_CHARS) anyway).
const MAX_ORIGINAL_LEN: usize = 8192;

/// What a forward-auth request asks for beyond a valid key: `?scope=a,b` (every one
/// required; the parameter may be repeated) and `?project=NAME` (the key must reach
/// that project of its tenant).
///
/// Parsed strictly, because these come from the proxy's configuration and a typo must
/// not quietly drop a check: any other parameter, an empty scope, or two `project`
/// parameters are a [`ForwardQueryError`].
///
/// ```
/// use keygate_http::ForwardQuery;
///
/// # fn main() -> Result<(), keygate_http::ForwardQueryError> {
/// let query = ForwardQuery::parse(Some("scope=deploy:write,logs:read&project=shop"))?;
/// assert_eq!(query.scopes(), ["deploy:write", "logs:read"]);
/// assert_eq!(query.project(), Some("shop"));
/// assert!(ForwardQuery::parse(Some("scopes=deploy:write")).is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardQuery {
    scopes: Vec<String>,
    project: Option<String>,
}

/// Why a forward-auth query is refused: a mistake in the proxy's configuration,
/// answered 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardQueryError {
    /// The query is longer than [`MAX_FORWARD_QUERY_LEN`].
    #[error("the query is longer than {MAX_FORWARD_QUERY_LEN} bytes")]
    TooLong,
    /// A parameter other than `scope` and `project`.
    #[error("unknown parameter `{0}`; /auth/verify takes `scope` and `project`")]
    UnknownParameter(String),
    /// `scope=` with an empty name in its list (`scope=`, `scope=a,,b`).
    #[error("`scope` holds an empty scope name; give `scope=a,b`")]
    EmptyScope,
    /// `project=` with no name.
    #[error("`project` is empty; give `project=NAME`")]
    EmptyProject,
    /// `project` given more than once.
    #[error("`project` is given more than once; a request names one project")]
    TwoProjects,
    /// A scope that is not in the catalogue.
    #[error("unknown scope `{0}`; GET /api/v1/scopes lists them")]
    UnknownScope(String),
}

impl ForwardQuery {
    /// Parses the query string of a forward-auth request (`None`: no query, no
    /// checks beyond a valid key). Names are percent-decoded.
    ///
    /// # Errors
    ///
    /// A [`ForwardQueryError`] naming the first mistake. Scope names are not checked
    /// against a catalogue here: see [`ForwardQuery::check_known`].
    pub fn parse(query: Option<&str>) -> Result<Self, ForwardQueryError> {
        let mut out = Self::default();
        let Some(query) = query else {
            return Ok(out);
        };
        if query.len() > MAX_FORWARD_QUERY_LEN {
            return Err(ForwardQueryError::TooLong);
        }
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "scope" => {
                    for scope in value.split(',') {
                        if scope.is_empty() {
                            return Err(ForwardQueryError::EmptyScope);
                        }
                        out.scopes.push(scope.to_owned());
                    }
                }
                "project" if out.project.is_some() => return Err(ForwardQueryError::TwoProjects),
                "project" if value.is_empty() => return Err(ForwardQueryError::EmptyProject),
                "project" => out.project = Some(value.into_owned()),
                other => {
                    return Err(ForwardQueryError::UnknownParameter(
                        untrusted(other).to_string(),
                    ));
                }
            }
        }
        out.scopes.sort_unstable();
        out.scopes.dedup();
        Ok(out)
    }

    /// The scopes required, sorted and unique.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The project the key must reach, if one is named.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// Refuses a scope `known` does not know (a scope no key can hold would refuse
    /// every request, which is a configuration mistake, not a client's).
    ///
    /// # Errors
    ///
    /// [`ForwardQueryError::UnknownScope`] naming the first unknown scope.
    pub fn check_known(&self, known: impl Fn(&str) -> bool) -> Result<(), ForwardQueryError> {
        match self.scopes.iter().find(|s| !known(s)) {
            Some(scope) => Err(ForwardQueryError::UnknownScope(
                untrusted(scope).to_string(),
            )),
            None => Ok(()),
        }
    }

    /// Whether `principal` holds every required scope; else
    /// [`AuthError::InsufficientScope`].
    ///
    /// # Errors
    ///
    /// [`AuthError::InsufficientScope`] when a scope is missing.
    pub fn check_scopes(&self, principal: &Principal) -> Result<(), AuthError> {
        if self.scopes.iter().all(|s| principal.has_scope(s)) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope)
        }
    }
}

/// The request the proxy is asking about, as its headers describe it: the method from
/// `X-Forwarded-Method` (or `X-Original-Method`), the URI from `X-Forwarded-Uri` (or
/// `X-Original-URI`). For the log only: never a decision.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OriginalRequest {
    method: Option<String>,
    uri: Option<String>,
}

impl OriginalRequest {
    /// An original request named otherwise than by headers (such as Envoy's, whose
    /// path follows the verify path); each value is cut like a header's.
    pub fn new(method: Option<String>, uri: Option<String>) -> Self {
        let cut = |mut s: String| {
            if s.len() > MAX_ORIGINAL_LEN {
                let mut end = MAX_ORIGINAL_LEN;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
            s
        };
        Self {
            method: method.map(cut),
            uri: uri.map(cut),
        }
    }

    /// Reads the original method and URI from the proxy's headers (values that are not
    /// visible ASCII are kept lossily; overlong ones are cut).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let read = |names: &[&str]| {
            names.iter().find_map(|name| {
                let value = headers.get(*name)?;
                let bytes = value.as_bytes();
                let bytes = bytes.get(..MAX_ORIGINAL_LEN).unwrap_or(bytes);
                Some(String::from_utf8_lossy(bytes).into_owned())
            })
        };
        Self {
            method: read(&["x-forwarded-method", "x-original-method"]),
            uri: read(&["x-forwarded-uri", "x-original-uri"]),
        }
    }

    /// The original method, if the proxy sent one.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The original URI, if the proxy sent one.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
}

impl fmt::Debug for OriginalRequest {
    /// Both values cut short and escaped ([`untrusted`]): they come from the client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginalRequest")
            .field("method", &self.method.as_deref().map(untrusted))
            .field("uri", &self.uri.as_deref().map(untrusted))
            .finish()
    }
}

/// The headers of a forward-auth 200: the [`identity_headers`] of `principal` (key id,
/// tenant, actor, user), [`X_KEYGATE_SCOPES`], and `X-Keygate-Project` when a project
/// was named and resolved.
///
/// # Errors
///
/// As [`identity_headers`]: only an id or scope holding a control character fails.
pub fn forward_headers(
    principal: &Principal,
    project: Option<&ProjectRef>,
) -> Result<Vec<(HeaderName, HeaderValue)>, InvalidHeaderValue> {
    let mut out = identity_headers(principal)?;
    let scopes: Vec<&str> = principal.scopes.iter().map(String::as_str).collect();
    out.push((X_KEYGATE_SCOPES, HeaderValue::from_str(&scopes.join(","))?));
    if let Some(project) = project {
        out.push(project_header(&project.id)?);
    }
    Ok(out)
}

/// Largest refusal body [`forward_error_header`] copies into [`X_KEYGATE_ERROR`]; the
/// bodies of the HTTP contract are far shorter.
const MAX_ERROR_HEADER_LEN: usize = 1024;

/// Finishes a forward-auth answer: `Cache-Control: no-store` on every answer (a
/// proxy must never reuse a decision), and on a refusal its JSON body repeated in
/// [`X_KEYGATE_ERROR`], for proxies that keep only the headers of the auth answer
/// (nginx `auth_request`). Put it outside the [`AuthLayer`](crate::AuthLayer) of the
/// verify route, so the layer's own refusals get the header too
/// (`axum::middleware::map_response(forward_error_header)`).
pub async fn forward_error_header(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    parts
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let is_json = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if parts.status.is_success() || !is_json {
        return Response::from_parts(parts, body);
    }
    match axum::body::to_bytes(body, MAX_ERROR_HEADER_LEN).await {
        Ok(bytes) => {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                parts.headers.insert(X_KEYGATE_ERROR, value);
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        // Longer than any refusal of the contract, or a failing body: answer the
        // status alone rather than a cut body.
        Err(_) => Response::from_parts(parts, Body::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scopes_and_project() {
        let q = ForwardQuery::parse(Some("scope=b,a&scope=a&project=sh%20op")).unwrap();
        assert_eq!(q.scopes(), ["a", "b"]);
        assert_eq!(q.project(), Some("sh op"));
        assert_eq!(ForwardQuery::parse(None).unwrap(), ForwardQuery::default());
        assert_eq!(
            ForwardQuery::parse(Some("")).unwrap(),
            ForwardQuery::default()
        );
    }

    #[test]
    fn refuses_what_would_drop_a_check() {
        for (query, err) in [
            (
                "scopes=a",
                ForwardQueryError::UnknownParameter("scopes".to_owned()),
            ),
            ("scope=", ForwardQueryError::EmptyScope),
            ("scope=a,,b", ForwardQueryError::EmptyScope),
            ("project=", ForwardQueryError::EmptyProject),
            ("project=a&project=b", ForwardQueryError::TwoProjects),
        ] {
            assert_eq!(ForwardQuery::parse(Some(query)), Err(err), "{query}");
        }
        let long = format!("scope={}", "a".repeat(MAX_FORWARD_QUERY_LEN));
        assert_eq!(
            ForwardQuery::parse(Some(&long)),
            Err(ForwardQueryError::TooLong)
        );
    }

    #[test]
    fn unknown_names_are_escaped_in_the_message() {
        let err = ForwardQuery::parse(Some("a%0Ab=1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r"unknown parameter `a\nb`; /auth/verify takes `scope` and `project`"
        );
        let q = ForwardQuery::parse(Some("scope=x,y")).unwrap();
        assert_eq!(
            q.check_known(|s| s == "x"),
            Err(ForwardQueryError::UnknownScope("y".to_owned()))
        );
        assert_eq!(q.check_known(|_| true), Ok(()));
    }

    #[test]
    fn original_request_from_either_header_pair() {
        let mut headers = HeaderMap::new();
        headers.insert("x-original-uri", HeaderValue::from_static("/a?b"));
        headers.insert("x-forwarded-method", HeaderValue::from_static("PUT"));
        let original = OriginalRequest::from_headers(&headers);
        assert_eq!(original.method(), Some("PUT"));
        assert_eq!(original.uri(), Some("/a?b"));
        headers.insert("x-forwarded-uri", HeaderValue::from_static("/c"));
        assert_eq!(OriginalRequest::from_headers(&headers).uri(), Some("/c"));
    }

    #[tokio::test]
    async fn refusals_repeat_their_body_in_a_header() {
        use axum::response::IntoResponse as _;
        let resp = forward_error_header(AuthError::KeyRevoked.into_response()).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()[X_KEYGATE_ERROR].as_bytes(),
            AuthError::KeyRevoked.body()
        );
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], AuthError::KeyRevoked.body());
        let ok = forward_error_header(Response::new(Body::from("ok"))).await;
        assert!(ok.headers().get(X_KEYGATE_ERROR).is_none());
        assert_eq!(ok.headers()[CACHE_CONTROL], "no-store");
    }
}
