//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use keygate_gates::Gates;
use keygate_http::AuthError;
use keygate_keys::{KeyStore, Principal, TokenFormat, Verifier};
use keygate_limits::{Outcome, RateLimiter};
use keygate_scopes::Policy;

use crate::metrics::Metrics;
use crate::upstream::Upstream;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Rate-limit response headers to add to an allowed request's answer.
pub(crate) type LimitHeaders = Vec<(HeaderName, HeaderValue)>;

/// The application's state, what every handler shares: one `Arc` of its [`Inner`]
/// fields, so the clone axum makes for every request is a reference-count increment,
/// not a copy of every field.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

impl AppState {
    pub(crate) fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The fields of [`AppState`].
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn KeyStore>,
    /// What the authentication layer verifies tokens with (timed into `metrics`).
    pub(crate) verifier: Arc<dyn Verifier>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) gates: Gates,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    /// `RateLimit-Policy` of `limiter`: the same on every answer, so built once.
    pub(crate) ratelimit_policy: Option<HeaderValue>,
    pub(crate) upstream: Upstream,
    pub(crate) format: TokenFormat,
    /// Largest MCP request body, in bytes.
    pub(crate) max_body: usize,
    /// How long a client may take to send an MCP request (the body included); the wait
    /// for the upstream is bounded by the upstream timeout instead.
    pub(crate) request_timeout: Duration,
    pub(crate) metrics: Metrics,
}

impl Inner {
    /// The `RateLimit-Policy` header value of `limiter`.
    pub(crate) fn ratelimit_policy(limiter: &dyn RateLimiter) -> Option<HeaderValue> {
        HeaderValue::from_str(&limiter.limits().policy_header()).ok()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("upstream", &self.upstream)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Counts one request against the key's and the tenant's budgets. Allowed: the
    /// `RateLimit-Policy` / `RateLimit` headers to answer with. Refused: the 429 (or
    /// 503 when the backend is down and fails closed) to answer instead.
    pub(crate) async fn rate_limit(&self, principal: &Principal) -> Result<LimitHeaders, Response> {
        let outcome = match self
            .limiter
            .check(principal.key_id.as_str(), principal.tenant.id.as_str())
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "rate limiter unavailable; answering 503");
                return Err(AuthError::Unavailable.into_response());
            }
        };
        let mut headers = LimitHeaders::new();
        if let Some(v) = &self.ratelimit_policy {
            headers.push((RATELIMIT_POLICY, v.clone()));
        }
        if let Some(v) = outcome
            .ratelimit_header()
            .and_then(|h| HeaderValue::try_from(h).ok())
        {
            headers.push((RATELIMIT, v));
        }
        if let Outcome::Allowed { .. } = outcome {
            return Ok(headers);
        }
        let scope = outcome.scope().map_or("unknown", |s| s.as_str());
        self.metrics.limited(scope);
        tracing::info!(key_id = %principal.key_id, scope, "rate limited");
        let mut resp = AuthError::RateLimited {
            retry_after_secs: outcome.retry_after_secs().unwrap_or(1),
        }
        .into_response();
        resp.headers_mut().extend(headers);
        Err(resp)
    }
}
