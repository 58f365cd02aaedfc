//! Key records, hashing and stores for keygate.
//!
//! This crate issues API keys, stores only the SHA-256 hash of each raw token, and
//! verifies presented tokens on every request with no cache: parse and checksum (no
//! store access on failure), load the row by public id, compare hashes in constant
//! time, then check revocation and expiry. Stores implement one [`KeyStore`] trait: an
//! in-memory store for tests, SQLite (the embedded default) and PostgreSQL (several
//! servers sharing one database).
//!
//! # Features
//!
//! - `sqlite` (default): [`SqliteStore`], on a bundled SQLite.
//! - `postgres`: [`PostgresStore`], on tokio-postgres with a deadpool pool.
//!
//! With default features off only the model, the trait and [`MemoryStore`] remain,
//! which is what crates that merely need a [`Principal`] depend on.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod common;
mod connect;
mod error;
mod hash;
mod last_used;
mod memory;
mod model;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod verify;

pub use crate::connect::connect;
pub use crate::error::{BoxError, StoreError, VerifyError};
pub use crate::hash::TokenHash;
pub use crate::memory::MemoryStore;
pub use crate::model::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, KeyStatus, NewAuditEvent, NewKey,
    Principal, Project, ProjectId, ProjectRef, Role, Tenant, TenantId, TenantRef, User, UserId,
    UserRef,
};
#[cfg(feature = "postgres")]
pub use crate::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use crate::sqlite::SqliteStore;
pub use crate::store::KeyStore;
pub use keygate_token::{KeyId, KeyKind, Token, TokenFormat};
