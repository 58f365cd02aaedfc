//! Integration tests of keygate-keys: one conformance suite run against every store.

mod conformance;
mod connect;
#[cfg(feature = "sqlite")]
mod durability;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh harness
/// built by `$make` (an async fn returning `Option<Harness>`; `None` skips).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            create_then_verify,
            wrong_secret_garbage_and_bad_checksum_are_not_found,
            revoke_then_revoked_and_idempotent,
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
