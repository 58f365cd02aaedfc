//! What keygate's test suites share. Not published; a dev-dependency only.
//!
//! - [`service_url`], [`postgres_url`], [`redis_url`]: the URLs of the test services,
//!   from `KEYGATE_TEST_POSTGRES` / `KEYGATE_TEST_REDIS`. Unset, a test skips with a
//!   note on stderr; unset with `CI` set, it fails, so CI never skips silently.
//! - [`PgSchema`]: a fresh PostgreSQL schema per test, dropped at the end;
//!   [`pg_connect`] for a client of the test database.
//! - [`with_checksum`]: a hand-made token body with a valid checksum.
//! - [`DownVerifier`], [`CountingVerifier`]: fake [`Verifier`]s for the
//!   authentication layer, so a test changes how tokens are verified without
//!   wrapping a whole [`KeyStore`](keygate_keys::KeyStore).
//!
//! Helpers panic on failure: they only ever run inside tests.
//!
//! # Features
//!
//! None.
//!
//! [`Verifier`]: keygate_keys::Verifier

#![allow(
    clippy::missing_panics_doc,
    reason = "test helpers panic on failure by design"
)]

mod fake;
mod forge;
mod postgres;
mod services;

pub use crate::fake::{CountingVerifier, DownVerifier};
pub use crate::forge::with_checksum;
pub use crate::postgres::{PgSchema, pg_connect};
pub use crate::services::{postgres_url, redis_url, service_url, under_ci};
