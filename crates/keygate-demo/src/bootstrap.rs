//! The demo tenant `keygated --demo` creates on an empty database.

use keygate_keys::{Bootstrap, Bootstrapped, KeyStore, StoreError, TokenFormat};

/// The tenant [`bootstrap`] creates.
pub const DEMO_TENANT: &str = "demo";
/// The owner [`bootstrap`] creates in [`DEMO_TENANT`].
pub const DEMO_OWNER: &str = "owner";
/// The projects [`bootstrap`] creates in [`DEMO_TENANT`].
pub const DEMO_PROJECTS: [&str; 2] = ["shop", "ops"];

/// What [`bootstrap`] found or did.
#[derive(Debug)]
#[non_exhaustive]
pub enum DemoBootstrap {
    /// The demo tenant was created; its owner's raw key
    /// ([`CreatedKey::token`](keygate_keys::CreatedKey)) is here once, for the caller
    /// to show, and is stored nowhere.
    Created(Box<Bootstrapped>),
    /// The store already had the demo tenant: its owner key was shown when it was
    /// created, and cannot be shown again.
    Existed,
    /// Another instance on the same database created it between this call's look-up
    /// and its write.
    CreatedElsewhere,
}

/// Creates tenant [`DEMO_TENANT`], owner [`DEMO_OWNER`], projects [`DEMO_PROJECTS`]
/// and the owner's key with `scopes` (the policy's, all of them) named `demo owner
/// key`, when the store has no demo tenant yet. Logs (at info, never the raw key)
/// that it did, or why it did not: the tenant exists and its key cannot be shown again.
///
/// # Errors
///
/// The store's, when it cannot be read or written.
pub async fn bootstrap(
    store: &dyn KeyStore,
    format: &TokenFormat,
    scopes: Vec<String>,
) -> Result<DemoBootstrap, StoreError> {
    if store.tenant_by_name(DEMO_TENANT).await?.is_some() {
        // A first-time user who restarts (or lost the key) would otherwise see nothing.
        tracing::info!(
            tenant = DEMO_TENANT,
            "demo tenant already exists: its owner key was printed when it was created; \
             lost it? start over with a new --database file, or create another tenant \
             and owner key with `keygate bootstrap --database URL --tenant NAME --owner NAME --demo`"
        );
        return Ok(DemoBootstrap::Existed);
    }
    let request = Bootstrap::new(
        DEMO_TENANT,
        DEMO_OWNER,
        &DEMO_PROJECTS,
        scopes,
        "demo owner key",
    );
    match store.bootstrap(format, request).await {
        Ok(done) => {
            tracing::info!(tenant = DEMO_TENANT, key_id = %done.key.key.id, "demo tenant bootstrapped");
            Ok(DemoBootstrap::Created(Box::new(done)))
        }
        Err(StoreError::Conflict(_)) => Ok(DemoBootstrap::CreatedElsewhere),
        Err(e) => Err(e),
    }
}
