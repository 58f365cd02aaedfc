//! What keygate's test suites share. Not published; a dev-dependency only.
//!
//! - [`service_url`], [`postgres_url`], [`redis_url`]: the URLs of the test services,
//!   from `KEYGATE_TEST_POSTGRES` / `KEYGATE_TEST_REDIS`. Unset, a test skips with a
//!   note on stderr; unset with `CI` set, it fails, so CI never skips silently.
//! - [`PgSchema`]: a fresh PostgreSQL schema per test, dropped at the end;
//!   [`pg_connect`] for a client of the test database.
//! - [`with_checksum`]: a hand-made token body with a valid checksum;
//!   [`utf16_with_bom`]: text as a UTF-16 file holds it.
//! - [`LeakSigner`]: signs leak reports as GitHub secret scanning does.
//! - [`ManualClock`]: a store clock tests move by hand.
//! - [`conformance`] and [`conformance_tests!`]: the one suite every
//!   [`KeyStore`](keygate_keys::KeyStore) backend passes (memory, SQLite, PostgreSQL).
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

mod clock;
pub mod conformance;
mod fake;
mod forge;
mod leak_signer;
mod look_alikes;
mod postgres;
mod services;
mod text;

pub use crate::clock::ManualClock;
pub use crate::fake::{CountingVerifier, DownVerifier};
pub use crate::forge::with_checksum;
pub use crate::leak_signer::LeakSigner;
pub use crate::look_alikes::LOOK_ALIKES;
pub use crate::postgres::{PgSchema, pg_connect, terminate_backends};
pub use crate::services::{postgres_url, redis_url, service_url, under_ci};
pub use crate::text::utf16_with_bom;

/// Expands to one `#[tokio::test]` per case of the key-store [`conformance`] suite,
/// each on a fresh harness built by `$make` (an async fn returning
/// `Option<Harness>`; `None` skips). The calling crate needs `tokio` (with the
/// `macros` and multi-thread runtime features).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            create_then_verify,
            wrong_secret_garbage_and_bad_checksum_are_not_found,
            revoke_then_revoked_and_idempotent,
            revoke_reason_is_kept_with_the_first_revocation,
            expiry_and_revoked_wins,
            scopes_and_projects_round_trip,
            rotation_copies_and_keeps_old,
            tenant_isolation,
            bootstrap_refuses_existing_and_is_atomic,
            user_key_needs_user_of_same_tenant,
            concurrent_creates_and_verifies,
            raw_token_never_stored,
            audit_events_recorded,
            last_used_is_recorded,
            find_project_stays_within_the_tenant,
            names_with_invisible_characters_are_refused,
            usage_limited_key_passes_exactly_remaining_times,
            usage_limited_key_refills_after_its_interval,
            key_without_a_usage_limit_writes_nothing_on_verify,
            concurrent_verifies_spend_exactly_what_is_left,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                if let Some(h) = $make().await {
                    $crate::conformance::$case(&h).await;
                }
            }
        )*
    };
}
