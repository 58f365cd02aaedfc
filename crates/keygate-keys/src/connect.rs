//! Database URLs, parsed once, and opening a store from one.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::StoreError;
use crate::store::KeyStore;

/// A key-store URL, parsed: the one grammar for database URLs, used by
/// [`connect`], keygate-server and the binaries.
///
/// - `sqlite://PATH` (relative, such as `sqlite://keygate.db`, or absolute, such as
///   `sqlite:///var/lib/keygate/keygate.db`; `sqlite:PATH` too, and a query string
///   such as `?mode=rwc` is ignored), `sqlite::memory:` or `sqlite://:memory:`;
/// - `postgres://…` or `postgresql://…`.
///
/// Schemes are case-insensitive and surrounding whitespace is ignored. `Debug` never
/// shows a PostgreSQL URL's credentials, and errors never repeat the URL.
///
/// ```
/// use keygate_keys::{DatabaseBackend, DatabaseUrl};
///
/// let url: DatabaseUrl = "sqlite://keygate.db".parse()?;
/// assert_eq!(url.backend(), DatabaseBackend::Sqlite);
/// assert_eq!(url.sqlite_path(), Some("keygate.db"));
/// let pg: DatabaseUrl = "postgres://kg:secret@db/keygate".parse()?;
/// assert_eq!(pg.backend(), DatabaseBackend::Postgres);
/// assert!(!format!("{pg:?}").contains("secret"));
/// assert!("mysql://x".parse::<DatabaseUrl>().is_err());
/// assert_eq!(DatabaseUrl::default().sqlite_path(), Some("keygate.db"));
/// # Ok::<(), keygate_keys::StoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SqliteMemory,
    /// The file path is `url[start..end]`.
    Sqlite {
        start: usize,
        end: usize,
    },
    Postgres,
}

/// Which store a [`DatabaseUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseBackend {
    /// SQLite: a file, or in memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl DatabaseUrl {
    /// The URL as given (trimmed), for the database driver.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Which store the URL names.
    pub fn backend(&self) -> DatabaseBackend {
        match self.kind {
            Kind::SqliteMemory | Kind::Sqlite { .. } => DatabaseBackend::Sqlite,
            Kind::Postgres => DatabaseBackend::Postgres,
        }
    }

    /// The SQLite file, for a `sqlite://PATH` URL; `None` for an in-memory database
    /// and for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&str> {
        match self.kind {
            Kind::Sqlite { start, end } => Some(&self.url[start..end]),
            Kind::SqliteMemory | Kind::Postgres => None,
        }
    }

    /// Opens the store the URL names and runs its migrations, as [`connect`].
    ///
    /// # Errors
    ///
    /// As [`connect`].
    pub async fn connect(&self) -> Result<Arc<dyn KeyStore>, StoreError> {
        match self.kind {
            Kind::SqliteMemory => open_sqlite_memory(),
            Kind::Sqlite { start, end } => open_sqlite(&self.url[start..end]),
            Kind::Postgres => open_postgres(&self.url).await,
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a URL without a scheme, an unsupported scheme, or
    /// `sqlite://` without a path.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let url = s.trim();
        let kind = if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            Kind::SqliteMemory
        } else {
            let Some((scheme, rest)) = url.split_once("://").or_else(|| url.split_once(':')) else {
                return Err(StoreError::Invalid(
                    "database URL has no scheme: use sqlite://PATH or postgres://...".to_owned(),
                ));
            };
            match scheme.to_ascii_lowercase().as_str() {
                "sqlite" => {
                    let start = url.len() - rest.len();
                    // Drop a query string such as `?mode=rwc`, which sqlx-style URLs carry.
                    let end = start + rest.find('?').unwrap_or(rest.len());
                    if start == end {
                        return Err(StoreError::Invalid(
                            "sqlite:// needs a file path, such as sqlite://keygate.db".to_owned(),
                        ));
                    }
                    Kind::Sqlite { start, end }
                }
                "postgres" | "postgresql" => Kind::Postgres,
                other => {
                    let shown: String = other
                        .chars()
                        .take(20)
                        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                        .collect();
                    return Err(StoreError::Invalid(format!(
                        "unsupported database URL scheme `{shown}`: use sqlite://PATH or postgres://..."
                    )));
                }
            }
        };
        Ok(Self {
            url: url.to_owned(),
            kind,
        })
    }
}

impl Default for DatabaseUrl {
    /// `sqlite://keygate.db`: the embedded store, in the working directory.
    fn default() -> Self {
        let url = "sqlite://keygate.db";
        Self {
            url: url.to_owned(),
            kind: Kind::Sqlite {
                start: "sqlite://".len(),
                end: url.len(),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // A PostgreSQL URL may carry a password: show the scheme only.
            Kind::Postgres => f.write_str("DatabaseUrl(postgres://…)"),
            Kind::SqliteMemory | Kind::Sqlite { .. } => write!(f, "DatabaseUrl({})", self.url),
        }
    }
}

/// Opens the store a database URL names and runs its migrations.
///
/// The URL is parsed as a [`DatabaseUrl`]: `sqlite://PATH` and `sqlite::memory:`
/// (feature `sqlite`), `postgres://…` or `postgresql://…` (feature `postgres`).
///
/// # Errors
///
/// [`StoreError::Invalid`] for an unsupported scheme or a scheme whose feature is off
/// (the message never repeats the URL, so never a password in it);
/// [`StoreError::Unavailable`] when the database cannot be opened or migrated.
pub async fn connect(database_url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    database_url.parse::<DatabaseUrl>()?.connect().await
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
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
