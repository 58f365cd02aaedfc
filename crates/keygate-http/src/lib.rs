//! HTTP layer for keygate.
//!
//! A tower [`Layer`](tower::Layer) that any axum or hyper service can put in front of its
//! routes: it extracts the bearer token, verifies it against a key store on every
//! request, answers failures with the exact JSON bodies and `WWW-Authenticate` headers of
//! the keygate HTTP contract, and hands verified requests on with a `Principal` in their
//! extensions and identity headers for the upstream.
//!
//! - [`AuthLayer`] / [`Auth`]: the layer and its service. No cache: a revoked key is
//!   refused on the very next request. The raw token is never forwarded (the
//!   `Authorization` header is removed) and never logged (it is marked sensitive).
//!   [`AuthLayer::with_failure_limiter`] adds a budget of failed authentications per
//!   client address: a client over it is answered 429 before its token is verified;
//!   [`AuthLayer::identity_in_extensions_only`] keeps the identity headers off the
//!   request, for a handler that sends them on itself.
//! - [`AuthError`]: every failure of the contract, each an axum
//!   [`IntoResponse`](axum::response::IntoResponse) with a fixed body.
//! - [`Authenticated`]: an axum extractor for the verified
//!   [`Principal`](keygate_keys::Principal) (also as `Option<Authenticated>`).
//! - [`parse_authorization`]: the strict `Authorization: Bearer` parser, on its own.
//! - [`apply_identity`] / [`identity_headers`]: the `X-Keygate-*` headers for an
//!   upstream, with client-supplied ones removed ([`IdentityHeaders`]: the ones the
//!   layer set, in the request's extensions); [`project_header`] adds
//!   `X-Keygate-Project` for a call naming a project resolved in the key's tenant.
//! - [`deny`]: answer a policy denial ([`keygate_scopes::Denied`]) with a 403.
//! - [`ForwardQuery`] / [`forward_headers`] / [`forward_error_header`] /
//!   [`OriginalRequest`]: forward-auth for a proxy in front of any HTTP service (nginx
//!   `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`, Envoy `ext_authz`):
//!   the checks a verify endpoint's query asks for, the identity headers of its 200
//!   (built by the same code as the layer's), and its refusals with their body repeated
//!   in a header for proxies that drop the body.
//! - [`untrusted`]: a client-supplied value (tool name, session id, method) fit for a
//!   log line: cut short, control characters escaped.
//!
//! # Features
//!
//! This crate has no optional features.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod auth;
mod error;
mod extract;
mod forward;
mod header;
mod identity;
mod untrusted;

pub use crate::auth::{Auth, AuthLayer, ResponseFuture};
pub use crate::error::{AuthError, DENIAL_LOG_CHARS, deny};
pub use crate::extract::Authenticated;
pub use crate::forward::{
    ForwardQuery, ForwardQueryError, MAX_FORWARD_QUERY_LEN, OriginalRequest, X_KEYGATE_ERROR,
    X_KEYGATE_SCOPES, forward_error_header, forward_headers,
};
pub use crate::header::{MAX_AUTHORIZATION_LEN, parse_authorization};
pub use crate::identity::{
    IdentityHeaders, X_KEYGATE_ACTOR, X_KEYGATE_KEY_ID, X_KEYGATE_PROJECT, X_KEYGATE_TENANT,
    X_KEYGATE_USER, apply_identity, identity_headers, project_header, strip_identity,
};
pub use crate::untrusted::{LOG_MAX_CHARS, Untrusted, untrusted};
