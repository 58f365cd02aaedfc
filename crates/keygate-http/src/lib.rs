//! HTTP layer for keygate.
//!
//! A tower [`Layer`](tower::Layer) that any axum or hyper service can put in front of its
//! routes: it extracts the bearer token, verifies it against a key store on every
//! request, answers failures with the exact JSON bodies and `WWW-Authenticate` headers of
//! the keygate HTTP contract, and hands verified requests on with a `Principal` in their
//! extensions and identity headers for the upstream.
