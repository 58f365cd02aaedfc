//! The service: verifies, rewrites identity headers, then calls the inner service.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::Request;
use http::header::AUTHORIZATION;
use keygate_keys::Verifier;
use keygate_limits::{ClientId, FailureLimiter, retry_after_secs};
use tower::Service;

use super::future::ResponseFuture;
use crate::error::AuthError;
use crate::header::parse_authorization;
use crate::identity::apply_identity_kept;

/// The service made by [`AuthLayer`](super::AuthLayer); see there for what it does.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    verifier: Arc<dyn Verifier>,
    failures: Option<Arc<FailureLimiter>>,
    /// Whether the identity headers are set on the request as well as kept in its
    /// extensions ([`AuthLayer::identity_in_extensions_only`](super::AuthLayer)).
    on_request: bool,
}

impl<S> Auth<S> {
    pub(crate) fn new(
        inner: S,
        verifier: Arc<dyn Verifier>,
        failures: Option<Arc<FailureLimiter>>,
        on_request: bool,
    ) -> Self {
        Self {
            inner,
            verifier,
            failures,
            on_request,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Keep the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let on_request = self.on_request;

        for (name, value) in req.headers_mut().iter_mut() {
            if name == AUTHORIZATION {
                value.set_sensitive(true);
            }
        }
        let token_len = match parse_authorization(req.headers()) {
            Ok(token) => token.len(),
            Err(err) => {
                tracing::debug!(error = %err, "refused before verification");
                return ResponseFuture::new(Box::pin(async move { Ok(err.into_response()) }));
            }
        };
        // The failure budget of the peer, asked before the store is.
        let failures = self
            .failures
            .as_ref()
            .and_then(|limiter| Some((Arc::clone(limiter), peer(&req)?)));
        if let Some((limiter, ip)) = &failures
            && let Some(wait) = limiter.blocked_for(*ip)
        {
            tracing::debug!(
                client = %ClientId::from(*ip),
                "refused before verification: too many failed authentications"
            );
            let err = AuthError::RateLimited {
                retry_after_secs: retry_after_secs(wait),
            };
            return ResponseFuture::new(Box::pin(async move { Ok(err.into_response()) }));
        }

        // The header's own bytes, shared with the request (no copy of the secret is
        // made); the token is their end, as `parse_authorization` found it.
        let Some(held) = req.headers().get(AUTHORIZATION).cloned() else {
            return ResponseFuture::new(Box::pin(async move {
                Ok(AuthError::MissingToken.into_response())
            }));
        };
        ResponseFuture::new(Box::pin(async move {
            let bytes = held.as_bytes();
            let token = bytes
                .len()
                .checked_sub(token_len)
                .and_then(|start| bytes.get(start..))
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or_default();
            let principal = match verifier.verify(token).await {
                Ok(principal) => principal,
                Err(err) => {
                    let err = AuthError::from(err);
                    tracing::debug!(error = %err, "key refused");
                    if let Some((limiter, ip)) = failures
                        && counts_as_failure(&err)
                        && limiter.record_failure(ip)
                    {
                        tracing::info!(
                            client = %ClientId::from(ip),
                            quota = %limiter.quota(),
                            "client over its budget of failed authentications: \
                             refusing its tokens with 429 until the budget refills"
                        );
                    }
                    return Ok(err.into_response());
                }
            };
            drop(held);
            let identity = match apply_identity_kept(req.headers_mut(), &principal, on_request) {
                Ok(identity) => identity,
                Err(err) => {
                    tracing::error!(
                        key_id = %principal.key_id,
                        error = %err,
                        "identity cannot be sent as headers; answering 503",
                    );
                    return Ok(AuthError::Unavailable.into_response());
                }
            };
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(identity);
            inner.call(req).await
        }))
    }
}

/// The peer address of the connection, when the server recorded it.
fn peer<B>(req: &Request<B>) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Whether a refusal spends the client's failure budget: every 401 of verification.
/// A store failure (503) is not the client's doing.
fn counts_as_failure(err: &AuthError) -> bool {
    matches!(
        err,
        AuthError::KeyNotFound | AuthError::KeyRevoked | AuthError::Expired
    )
}
