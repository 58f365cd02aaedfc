//! Integration tests of the keygate HTTP layer: an axum router behind `AuthLayer`
//! with a `MemoryStore`, driven with `tower::ServiceExt::oneshot`.

mod contract;
mod extract;
mod failures;
mod headers;
mod identity;
mod logs;
mod support;
