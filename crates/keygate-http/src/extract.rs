//! axum extractors for the verified principal.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use keygate_keys::Principal;

use crate::error::AuthError;

/// The principal of a request verified by [`AuthLayer`](crate::AuthLayer), as an axum
/// extractor.
///
/// Used as `Authenticated`, a request without a verified principal (a route not
/// behind the layer) is refused with 401 `{"error":"missing_token"}`. Used as
/// `Option<Authenticated>`, it is `None` instead.
///
/// ```
/// use keygate_http::Authenticated;
///
/// async fn me(Authenticated(principal): Authenticated) -> String {
///     format!("{} {}", principal.tenant.id, principal.kind)
/// }
/// let _app: axum::Router = axum::Router::new().route("/me", axum::routing::get(me));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or(AuthError::MissingToken)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned().map(Self))
    }
}
