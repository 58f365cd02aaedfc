//! Opening a store from a database URL.

use std::sync::Arc;

use crate::error::StoreError;
use crate::store::KeyStore;

/// Opens the store a database URL names and runs its migrations.
///
/// - `sqlite://PATH` (relative, such as `sqlite://keygate.db`, or absolute, such as
///   `sqlite:///var/lib/keygate/keygate.db`) and `sqlite::memory:` (feature `sqlite`);
/// - `postgres://…` or `postgresql://…` (feature `postgres`).
///
/// # Errors
///
/// [`StoreError::Invalid`] for an unsupported scheme or a scheme whose feature is off
/// (the message never repeats the URL, so never a password in it);
/// [`StoreError::Unavailable`] when the database cannot be opened or migrated.
pub async fn connect(database_url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    let url = database_url.trim();
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return open_sqlite_memory();
    }
    let Some((scheme, rest)) = url.split_once("://").or_else(|| url.split_once(':')) else {
        return Err(StoreError::Invalid(
            "database URL has no scheme: use sqlite://PATH or postgres://...".to_owned(),
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => open_sqlite(rest),
        "postgres" | "postgresql" => open_postgres(url).await,
        other => {
            let shown: String = other
                .chars()
                .take(20)
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                .collect();
            Err(StoreError::Invalid(format!(
                "unsupported database URL scheme `{shown}`: use sqlite://PATH or postgres://..."
            )))
        }
    }
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    // Drop a query string such as `?mode=rwc`, which sqlx-style URLs carry.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() {
        return Err(StoreError::Invalid(
            "sqlite:// needs a file path, such as sqlite://keygate.db".to_owned(),
        ));
    }
    Ok(Arc::new(crate::sqlite::SqliteStore::open(path)?))
}

#[cfg(feature = "sqlite")]
fn open_sqlite_memory() -> Result<Arc<dyn KeyStore>, StoreError> {
    Ok(Arc::new(crate::sqlite::SqliteStore::open_in_memory()?))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(_: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    open_sqlite_memory()
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite_memory() -> Result<Arc<dyn KeyStore>, StoreError> {
    Err(StoreError::Invalid(
        "this build has no SQLite support (feature `sqlite`)".to_owned(),
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    Ok(Arc::new(
        crate::postgres::PostgresStore::connect(url).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    Err(StoreError::Invalid(
        "this build has no PostgreSQL support (feature `postgres`)".to_owned(),
    ))
}
