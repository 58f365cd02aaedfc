//! `POST /api/v1/leaks/github`: leaked-key reports from GitHub secret scanning.
//!
//! GitHub sends the tokens it found in public places as a JSON array of
//! `{token, type, url, source}`, signed with ECDSA P-256 / SHA-256 over the raw body
//! (`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`: base64 DER). The
//! signing keys are those of `--leak-report-keys FILE`, in GitHub's own format
//! (`{"public_keys":[{"key_identifier","key","is_current"}]}`, PEM SPKI keys). Every
//! live key in a verified report is revoked at once (reason `leaked`, with the URL, in
//! the audit log); the answer is GitHub's feedback, `[{token_hash, token_type, label}]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use keygate_client::{LeakLabel, LeakMatch, LeakVerdict};
use keygate_http::{AuthError, untrusted};
use keygate_keys::{KeyChange, RevokeReason, VerifyError};
use keygate_limits::{ClientId, FailureLimiter, retry_after_secs};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ServerError;
use crate::labels::{RouteLabels, Table};
use crate::state::AppState;

/// The route.
pub(crate) const PATH: &str = "/api/v1/leaks/github";
/// Largest report accepted: 1 MiB; a larger one is answered 413.
pub const LEAK_REPORT_BODY_LIMIT: usize = 1024 * 1024;
/// The audit actor of a revocation by leak report.
const ACTOR: &str = "leak-report:github";
/// The longest URL kept in the audit log, in bytes (longer ones are cut).
const MAX_URL_LEN: usize = 2048;
/// Largest key file read.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// The DER of a P-256 SubjectPublicKeyInfo before its 65-byte uncompressed point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) }.
/// Every P-256 SPKI is exactly this prefix and the point, so comparing it is the whole
/// parse.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The keys leak reports are verified with, by key identifier.
pub(crate) struct LeakReportKeys {
    keys: HashMap<String, UnparsedPublicKey<Vec<u8>>>,
}

impl std::fmt::Debug for LeakReportKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("LeakReportKeys")
            .field("key_identifiers", &ids)
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
    /// GitHub marks the key it signs new reports with; reports signed with an older
    /// key it still lists (in flight during a rotation) verify too.
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "read for the file's shape; every listed key verifies"
    )]
    is_current: bool,
}

impl LeakReportKeys {
    /// Reads GitHub's key file (`GET https://api.github.com/meta/public_keys/secret_scanning`
    /// saved as it is).
    pub(crate) fn load(path: &Path) -> Result<Self, ServerError> {
        let shown = path.display();
        let fail = |why: String| ServerError::Config(format!("--leak-report-keys {shown}: {why}"));
        let len = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot read it: {e}")))?
            .len();
        if len > MAX_KEY_FILE {
            return Err(fail(format!("larger than {MAX_KEY_FILE} bytes")));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        Self::from_json(&text).map_err(fail)
    }

    /// Parses GitHub's key file.
    pub(crate) fn from_json(text: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            format!(
                "not GitHub's key file ({{\"public_keys\":[{{\"key_identifier\",\"key\",\"is_current\"}}]}}): {e}"
            )
        })?;
        if file.public_keys.is_empty() {
            return Err("`public_keys` is empty".to_owned());
        }
        let mut keys = HashMap::new();
        for entry in file.public_keys {
            let point = p256_point(&entry.key)
                .map_err(|why| format!("key `{}`: {why}", untrusted(&entry.key_identifier)))?;
            keys.insert(
                entry.key_identifier,
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point),
            );
        }
        Ok(Self { keys })
    }
}

/// The uncompressed point of a PEM `PUBLIC KEY` holding a P-256 SPKI.
fn p256_point(pem: &str) -> Result<Vec<u8>, String> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or("not a PEM `PUBLIC KEY`")?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the PEM is not base64: {e}"))?;
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err("not an ECDSA P-256 public key".to_owned()),
    }
}

/// What the route needs beyond the app state.
#[derive(Clone)]
struct Leaks {
    keys: Arc<LeakReportKeys>,
    failures: Option<Arc<FailureLimiter>>,
}

/// What the leak-report route is built from: GitHub's keys (none: `--leak-report-keys`
/// is not set) and the failed-auth budget bad signatures spend.
pub(crate) struct LeakSetup {
    keys: Option<Arc<LeakReportKeys>>,
    failures: Option<Arc<FailureLimiter>>,
}

impl LeakSetup {
    /// The route's settings.
    pub(crate) fn new(
        keys: Option<Arc<LeakReportKeys>>,
        failures: Option<Arc<FailureLimiter>>,
    ) -> Self {
        Self { keys, failures }
    }
}

/// The route, counted as `leaks_github`. Without keys the path answers 404 like any
/// unknown path.
pub(crate) fn routes(setup: LeakSetup, labels: &mut RouteLabels) -> Router<AppState> {
    let LeakSetup { keys, failures } = setup;
    let Some(keys) = keys else {
        return Table::new(labels)
            .route(
                "leaks_github",
                PATH,
                axum::routing::any(crate::app::not_found),
            )
            .into_router();
    };
    Table::new(labels)
        .route("leaks_github", PATH, axum::routing::post(report))
        .into_router()
        .layer(Extension(Leaks { keys, failures }))
        .layer(DefaultBodyLimit::max(LEAK_REPORT_BODY_LIMIT))
}

/// A refusal of this route: JSON, `no-store`.
fn refuse(status: StatusCode, error: &str, message: &str) -> Response {
    let mut resp = (status, Json(json!({ "error": error, "message": message }))).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A GitHub secret-scanning report: every live key of this server it names is revoked
/// at once (audit `key.revoked`, reason `leaked`, with the URL).
#[utoipa::path(
    post,
    path = "/api/v1/leaks/github",
    operation_id = "report_leaks",
    tag = "leaks",
    description = "GitHub's secret-scanning partner payload, signed with ECDSA P-256 / \
        SHA-256 by a key of `--leak-report-keys` (404 when the server has none). No bearer \
        key: the signature is the authentication; a bad one is 401 and changes nothing.",
    security(()),
    params(
        ("Github-Public-Key-Identifier" = String, Header,
            description = "The `key_identifier` of the key that signed the body."),
        ("Github-Public-Key-Signature" = String, Header,
            description = "The signature of the body, base64 DER."),
    ),
    request_body = Vec<LeakMatch>,
    responses(
        (status = 200, description = "One verdict per match, in GitHub's feedback format.",
            body = Vec<LeakVerdict>,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::InvalidSignature),
        (status = 403, response = crate::openapi::ForbiddenOrigin),
        (status = 404, response = crate::openapi::NotFound),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::Timeout),
    )
)]
async fn report(
    State(state): State<AppState>,
    Extension(leaks): Extension<Leaks>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let limiter = leaks
        .failures
        .as_ref()
        .zip(peer.map(|Extension(ConnectInfo(addr))| addr.ip()));
    if let Some((limiter, ip)) = limiter
        && let Some(wait) = limiter.blocked_for(ip)
    {
        tracing::debug!(client = %ClientId::from(ip), "leak report refused: too many failed signatures");
        return AuthError::RateLimited {
            retry_after_secs: retry_after_secs(wait),
        }
        .into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("the request body is larger than {LEAK_REPORT_BODY_LIMIT} bytes"),
            );
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "invalid_request", &e.body_text()),
    };
    if let Err(why) = check_signature(&leaks.keys, &headers, &body) {
        tracing::info!(
            client = ?limiter.map(|(_, ip)| ClientId::from(ip).to_string()),
            why,
            "leak report refused: signature not verified; nothing revoked"
        );
        if let Some((limiter, ip)) = limiter {
            limiter.record_failure(ip);
        }
        return refuse(StatusCode::UNAUTHORIZED, "invalid_signature", why);
    }
    let matches: Vec<LeakMatch> = match serde_json::from_slice(&body) {
        Ok(matches) => matches,
        // serde quotes the strings it could not take, a token among them: ApiError's
        // answer redacts credentials.
        Err(e) => {
            return crate::error::ApiError::invalid(format!(
                "the report is not a JSON array of {{token, type, url, source}}: {e}"
            ))
            .into_response();
        }
    };
    let mut verdicts = Vec::with_capacity(matches.len());
    for found in matches {
        match judge(&state, &found).await {
            Ok(label) => verdicts.push(LeakVerdict {
                token_hash: hex::encode(Sha256::digest(found.token.as_bytes())),
                token_type: found.token_type,
                label,
            }),
            Err(resp) => return resp,
        }
    }
    let mut resp = Json(verdicts).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Verifies the report's signature; the reason it fails otherwise.
fn check_signature(
    keys: &LeakReportKeys,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let id =
        header("github-public-key-identifier").ok_or("no Github-Public-Key-Identifier header")?;
    let signature =
        header("github-public-key-signature").ok_or("no Github-Public-Key-Signature header")?;
    let key = keys
        .keys
        .get(id)
        .ok_or("the Github-Public-Key-Identifier names no key of --leak-report-keys")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| "the Github-Public-Key-Signature is not base64")?;
    key.verify(body, &der)
        .map_err(|_| "the signature does not match the body")
}

/// What one match is, revoking it first when it is a live key of this server.
async fn judge(state: &AppState, found: &LeakMatch) -> Result<LeakLabel, Response> {
    // Shape and checksum first: another service's token never reaches the store.
    if keygate_keys::Token::check_id(&found.token).is_err() {
        return Ok(LeakLabel::FalsePositive);
    }
    // The whole token is verified, secret included: a report naming a real key id
    // with a made-up secret (anyone can publish one) revokes nothing.
    let principal = match state.store.verify(&found.token).await {
        Ok(principal) => principal,
        // A usage-limited key with nothing left is still live: revoke it too.
        Err(VerifyError::UsageExceeded { principal, .. }) => *principal,
        Err(VerifyError::Revoked | VerifyError::Expired) => return Ok(LeakLabel::TruePositive),
        Err(VerifyError::Unavailable(e)) => {
            tracing::error!(error = %e, "key store unavailable during a leak report; answering 503");
            return Err(AuthError::Unavailable.into_response());
        }
        Err(_) => return Ok(LeakLabel::FalsePositive),
    };
    let mut url = found.url.clone();
    if url.len() > MAX_URL_LEN {
        let mut end = MAX_URL_LEN;
        while !url.is_char_boundary(end) {
            end -= 1;
        }
        url.truncate(end);
    }
    let reason = RevokeReason::Leaked { url };
    match state
        .store
        .revoke_key_for(
            KeyChange {
                tenant: &principal.tenant.id,
                id: &principal.key_id,
                actor: ACTOR,
            },
            Some(&reason),
        )
        .await
    {
        Ok(_) => {
            tracing::warn!(
                key_id = %principal.key_id,
                tenant = %principal.tenant.id,
                url = ?untrusted(&found.url).max_chars(200),
                "leaked key revoked on a GitHub secret-scanning report"
            );
            Ok(LeakLabel::TruePositive)
        }
        Err(e) => Err(crate::error::ApiError::from(e).into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_checked() {
        assert!(LeakReportKeys::from_json("{}").is_err());
        assert!(LeakReportKeys::from_json(r#"{"public_keys":[]}"#).is_err());
        let not_pem = r#"{"public_keys":[{"key_identifier":"a","key":"x","is_current":true}]}"#;
        let err = LeakReportKeys::from_json(not_pem).unwrap_err();
        assert!(err.contains("key `a`: not a PEM"), "{err}");
        // An RSA-sized blob is not a P-256 key.
        let rsa = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
            base64::engine::general_purpose::STANDARD.encode([0x30u8; 94])
        );
        assert_eq!(
            p256_point(&rsa),
            Err("not an ECDSA P-256 public key".to_owned())
        );
    }
}
