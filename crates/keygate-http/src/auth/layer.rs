//! The layer: a `Clone` configuration handed to every service it wraps.

use std::fmt;
use std::sync::Arc;

use keygate_keys::KeyStore;
use tower::Layer;

use super::service::Auth;

/// A tower [`Layer`] that verifies the bearer token of every request against a
/// [`KeyStore`] (no cache: a revocation is effective on the very next request).
///
/// A verified request reaches the inner service with the
/// [`Principal`](keygate_keys::Principal) in its extensions, the `X-Keygate-*`
/// identity headers set (client-supplied ones removed) and no `Authorization`
/// header. Any other request is answered by the layer with the exact
/// [`AuthError`](crate::AuthError) response and never reaches the inner service.
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
    store: Arc<dyn KeyStore>,
}

impl AuthLayer {
    /// A layer verifying tokens against `store`.
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Self { store }
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth::new(inner, self.store.clone())
    }
}
