//! The layer: a `Clone` configuration handed to every service it wraps.

use std::fmt;
use std::sync::Arc;

use keygate_keys::Verifier;
use keygate_limits::FailureLimiter;
use tower::Layer;

use super::service::Auth;

/// A tower [`Layer`] that verifies the bearer token of every request with a
/// [`Verifier`] (no cache: a revocation is effective on the very next request).
///
/// Every [`KeyStore`](keygate_keys::KeyStore) is a [`Verifier`], so an
/// `Arc<dyn KeyStore>` (or `Arc<SqliteStore>`) is passed as it is; a decorator that
/// only changes verification (timing, counting) implements [`Verifier`] alone.
///
/// A verified request reaches the inner service with the
/// [`Principal`](keygate_keys::Principal) and its
/// [`IdentityHeaders`](crate::IdentityHeaders) in its extensions, the `X-Keygate-*`
/// identity headers set (client-supplied ones removed; see
/// [`AuthLayer::identity_in_extensions_only`]) and no `Authorization` header. Any other
/// request is answered by the layer with the exact [`AuthError`](crate::AuthError)
/// response and never reaches the inner service.
///
/// With [`AuthLayer::with_failure_limiter`], failed authentications are counted per
/// client address, and a client over its budget is answered 429
/// `{"error":"rate_limited"}` with `Retry-After` before its token is verified (see
/// there).
///
/// ```
/// use std::sync::Arc;
/// use keygate_http::AuthLayer;
/// use keygate_keys::KeyStore;
///
/// fn app(store: Arc<dyn KeyStore>) -> axum::Router {
///     axum::Router::new()
///         .route("/api/hello", axum::routing::get(|| async { "hello" }))
///         .layer(AuthLayer::new(store))
/// }
/// ```
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<dyn Verifier>,
    failures: Option<Arc<FailureLimiter>>,
    on_request: bool,
}

impl AuthLayer {
    /// A layer verifying tokens with `verifier` (a key store, or a decorator of
    /// one), with no limit on failures.
    pub fn new(verifier: Arc<dyn Verifier>) -> Self {
        Self {
            verifier,
            failures: None,
            on_request: true,
        }
    }

    /// Counts failed authentications per client address in `limiter`, and answers a
    /// client over its budget 429 `{"error":"rate_limited"}` with `Retry-After`
    /// **before** its token is verified, so the store is not read.
    ///
    /// Counted: every 401 of verification (`invalid_token` for bad shapes, checksums,
    /// unknown ids, hash mismatches and revoked keys; `expired`). Not counted: a
    /// missing or malformed `Authorization` header (refused without a store read) and
    /// a store failure (503, not the client's fault). While a client is over budget
    /// every token it presents is refused, valid ones included; requests with no token
    /// are answered 401 `missing_token` as usual.
    ///
    /// The client address is the peer of the connection, read from the request's
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) extension (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or insert it yourself).
    /// Requests without one are not limited. Forwarding headers such as
    /// `X-Forwarded-For` are never trusted: behind a proxy every client shares the
    /// proxy's address, and so its budget.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use keygate_http::AuthLayer;
    /// use keygate_keys::KeyStore;
    /// use keygate_limits::{FailureLimiter, FailureQuota};
    ///
    /// fn layer(store: Arc<dyn KeyStore>) -> AuthLayer {
    ///     let per_minute = NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN);
    ///     let limiter = FailureLimiter::new(FailureQuota::per_minute(per_minute));
    ///     AuthLayer::new(store).with_failure_limiter(Arc::new(limiter))
    /// }
    /// ```
    #[must_use]
    pub fn with_failure_limiter(mut self, limiter: Arc<FailureLimiter>) -> Self {
        self.failures = Some(limiter);
        self
    }

    /// Keeps a verified request's identity headers in its extensions only (as
    /// [`IdentityHeaders`](crate::IdentityHeaders)) instead of also setting them on the
    /// request, for an inner service that builds its upstream request itself and sends
    /// them there (keygated's MCP gateway does): setting headers nobody reads costs each
    /// request a few map insertions and, often, the map's growth. The client's own
    /// `X-Keygate-*` and `Authorization` headers are still removed.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keygate_http::AuthLayer;
    /// use keygate_keys::KeyStore;
    ///
    /// fn layer(store: Arc<dyn KeyStore>) -> AuthLayer {
    ///     AuthLayer::new(store).identity_in_extensions_only()
    /// }
    /// ```
    #[must_use]
    pub fn identity_in_extensions_only(mut self) -> Self {
        self.on_request = false;
        self
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("failures", &self.failures)
            .field("identity_on_request", &self.on_request)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth::new(
            inner,
            self.verifier.clone(),
            self.failures.clone(),
            self.on_request,
        )
    }
}
