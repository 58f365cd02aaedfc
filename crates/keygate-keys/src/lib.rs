//! Key records, hashing and stores for keygate.
//!
//! This crate issues API keys, stores only the SHA-256 hash of each raw token, and
//! verifies presented tokens on every request with no cache: parse and checksum (no
//! store access on failure), load the row by public id, compare hashes in constant
//! time (with a dummy comparison when the id is unknown), then revoked (wins) and
//! expired. That sequence lives in one place and every store uses it. Stores
//! implement one [`KeyStore`] trait, whose supertrait [`Verifier`] holds the one
//! method of the request path (what an authentication layer needs, and what a
//! decorator that times or counts verification wraps): [`MemoryStore`] for tests, `SqliteStore` (the
//! embedded default) and `PostgresStore` (several servers sharing one database); one
//! conformance suite runs against all three. [`connect`] opens a store from a URL.
//!
//! ```
//! use keygate_keys::{Bootstrap, KeyStore, MemoryStore, TokenFormat, Verifier};
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let setup = store
//!     .bootstrap(
//!         &TokenFormat::default(),
//!         Bootstrap::new("acme", "alice", &["shop"], vec!["keys:admin".to_owned()], "owner"),
//!     )
//!     .await?;
//! // Shown once; only its hash is stored.
//! let principal = store.verify(setup.key.token.expose()).await?;
//! assert!(principal.is_owner());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().map(|rt| rt.block_on(f)).unwrap_or_else(|e| panic!("{e}"))
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # `last_used_at`
//!
//! Verification never waits for a write. Each store keeps an in-process map of key
//! id → when its `last_used_at` was last queued; a write is queued at most once per
//! key per minute per process (SQLite: onto the writer thread's queue; PostgreSQL: a
//! bounded channel to a background task that batches updates with `unnest`; memory:
//! in place). A full queue drops the update: the value is accurate to about a minute.
//!
//! # Usage-limited keys
//!
//! A key created with [`NewKey::remaining`] (and optionally a [`Refill`]) spends one
//! request per successful verification: after the read above says the key is limited
//! (and valid), one guarded `UPDATE … WHERE remaining > 0 RETURNING` (memory: the map's
//! write lock) decrements it, refilling first when a refill period has begun, so it
//! never goes below zero however many verifications race. Nothing is left:
//! [`VerifyError::UsageExceeded`], with the wait for the next refill. Keys without a
//! limit never write on verification. The time comes from the store's [`Clock`].
//!
//! # Storage
//!
//! Tables `tenants`, `users`, `projects`, `api_keys` (hash as 32-byte BLOB/bytea,
//! scopes as JSON text/`text[]`, projects as project ids, NULL = all) and
//! `audit_log`, plus `schema_version`; migrations are embedded and run at open.
//! SQLite timestamps are UTC microseconds since the Unix epoch (INTEGER), PostgreSQL
//! ones `timestamptz`. `key.created`, `key.revoked` (first revocation only) and
//! `key.rotated` audit events are written in the same transaction as the change.
//!
//! # Features
//!
//! - `sqlite` (default): `SqliteStore`, on a bundled SQLite: WAL, `synchronous=FULL`,
//!   `busy_timeout`, one writer thread and a few reader threads behind oneshot
//!   replies; `verify` alone reads inline from read-only connections that never
//!   wait for a lock (a few µs), falling back to the reader threads.
//! - `postgres`: `PostgresStore`, on tokio-postgres with a deadpool pool, cached
//!   prepared statements, migrations under `pg_advisory_xact_lock`, and an optional
//!   schema of its own.
//! - `openapi`: `utoipa::ToSchema` for the records the HTTP API shows (the id types,
//!   [`TenantRef`], [`ProjectRef`], [`KeyStatus`], [`AuditEvent`]).
//!
//! With default features off only the model, the trait, [`connect`] and
//! [`MemoryStore`] remain, which is what crates that merely need a [`Principal`]
//! depend on.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod clock;
mod connect;
mod error;
mod hash;
mod last_used;
mod memory;
mod model;
mod name;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod verify;

pub use crate::clock::{Clock, SystemClock};
pub use crate::connect::{DatabaseBackend, DatabaseUrl, connect};
pub use crate::error::{BoxError, StoreError, VerifyError};
pub use crate::hash::TokenHash;
pub use crate::memory::MemoryStore;
pub use crate::model::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, KeyStatus, NewAuditEvent, NewKey,
    Principal, Project, ProjectId, ProjectRef, Refill, RefillInterval, RefillIntervalError,
    RevokeReason, Role, Tenant, TenantId, TenantRef, User, UserId, UserRef,
};
pub use crate::name::{NameError, check_name_characters, is_hidden_char};
#[cfg(feature = "postgres")]
pub use crate::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use crate::sqlite::SqliteStore;
pub use crate::store::{KeyChange, KeyStore, Verifier};
pub use keygate_token::{KeyId, KeyKind, Token, TokenFormat};
