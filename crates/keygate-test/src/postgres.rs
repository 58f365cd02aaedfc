//! A PostgreSQL schema of its own for each test.

use std::time::Duration;

/// How long a helper waits for PostgreSQL to connect or answer.
const PG_TIMEOUT: Duration = Duration::from_secs(30);

/// A client connected to the database at `url`, its connection driven by a task of the
/// current runtime.
///
/// # Panics
///
/// When PostgreSQL does not answer within 30 s or refuses the connection.
pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio::time::timeout(
        PG_TIMEOUT,
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .expect("PostgreSQL answers in time")
    .expect("PostgreSQL is reachable");
    tokio::spawn(conn);
    client
}

/// Terminates every backend of the database at `url` whose `application_name` is
/// `application` (but the one asking); returns how many there were.
///
/// # Panics
///
/// When PostgreSQL cannot be reached or refuses the query.
pub async fn terminate_backends(url: &str, application: &str) -> usize {
    pg_connect(url)
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1 \
             AND pid <> pg_backend_pid()",
            &[&application],
        )
        .await
        .expect("pg_stat_activity answers")
        .len()
}

/// A fresh schema in the test database, dropped (with everything in it) when this is,
/// so parallel tests never see each other's tables and runs do not pile schemas up.
#[derive(Debug)]
pub struct PgSchema {
    base: String,
    /// The schema's name: `<prefix>_<12 random lowercase letters and digits>`.
    pub name: String,
    /// The database URL with `search_path` set to the schema, so that every table a
    /// connection of it creates lands there.
    pub url: String,
}

impl PgSchema {
    /// Creates `<prefix>_<random>` in the database at `base`.
    ///
    /// # Panics
    ///
    /// When the database does not answer or the schema cannot be created.
    pub async fn create(base: &str, prefix: &str) -> Self {
        let random = keygate_token::random_base62(12)
            .expect("the system's random source")
            .to_lowercase();
        let name = format!("{prefix}_{random}");
        let client = pg_connect(base).await;
        tokio::time::timeout(
            PG_TIMEOUT,
            client.batch_execute(&format!("CREATE SCHEMA {name}")),
        )
        .await
        .expect("CREATE SCHEMA in time")
        .expect("can create a test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{name}");
        Self {
            base: base.to_owned(),
            name,
            url,
        }
    }

    /// The database URL the schema was created in (without its `search_path`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client of [`PgSchema::base`]: names outside the schema, and the schema's own
    /// tables only qualified (`<name>.<table>`).
    pub async fn admin(&self) -> tokio_postgres::Client {
        pg_connect(&self.base).await
    }
}

impl Drop for PgSchema {
    /// On a fresh connection, in a runtime and thread of their own: the test's runtime
    /// may be finishing, or this may run inside it. A failure is only noted.
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let base = self.base.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let connect = tokio_postgres::connect(&base, tokio_postgres::NoTls);
                let (client, conn) = tokio::time::timeout(PG_TIMEOUT, connect).await.ok()?.ok()?;
                tokio::spawn(conn);
                tokio::time::timeout(PG_TIMEOUT, client.batch_execute(&sql))
                    .await
                    .ok()?
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop test schema {}", self.name);
        }
    }
}
