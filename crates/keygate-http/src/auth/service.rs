//! The service: verifies, rewrites identity headers, then calls the inner service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use http::header::AUTHORIZATION;
use keygate_keys::KeyStore;
use tower::Service;
use zeroize::Zeroizing;

use super::future::ResponseFuture;
use crate::error::AuthError;
use crate::header::parse_authorization;
use crate::identity::apply_identity;

/// The service made by [`AuthLayer`](super::AuthLayer); see there for what it does.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    store: Arc<dyn KeyStore>,
}

impl<S> Auth<S> {
    pub(crate) fn new(inner: S, store: Arc<dyn KeyStore>) -> Self {
        Self { inner, store }
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
        let store = self.store.clone();

        for (name, value) in req.headers_mut().iter_mut() {
            if name == AUTHORIZATION {
                value.set_sensitive(true);
            }
        }
        let token = match parse_authorization(req.headers()) {
            Ok(token) => Zeroizing::new(token.to_owned()),
            Err(err) => {
                tracing::debug!(error = %err, "refused before verification");
                return ResponseFuture::new(Box::pin(async move { Ok(err.into_response()) }));
            }
        };

        ResponseFuture::new(Box::pin(async move {
            let principal = match store.verify(&token).await {
                Ok(principal) => principal,
                Err(err) => {
                    let err = AuthError::from(err);
                    tracing::debug!(error = %err, "key refused");
                    return Ok(err.into_response());
                }
            };
            drop(token);
            if let Err(err) = apply_identity(req.headers_mut(), &principal) {
                tracing::error!(
                    key_id = %principal.key_id,
                    error = %err,
                    "identity cannot be sent as headers; answering 503",
                );
                return Ok(AuthError::Unavailable.into_response());
            }
            req.extensions_mut().insert(principal);
            inner.call(req).await
        }))
    }
}
