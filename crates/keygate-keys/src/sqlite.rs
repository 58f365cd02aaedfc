//! SQLite: the embedded default store.
//!
//! One writer thread owns the only connection that writes; a few reader threads own
//! read-only connections and answer in parallel (WAL lets readers run beside the
//! writer). Async callers hand a closure to one of these threads and await a oneshot
//! reply, so the runtime never blocks on SQLite for long. The one exception is the
//! hot path: [`Verifier::verify`](crate::Verifier::verify) reads its row on the calling task from a small
//! pool of read-only connections that never wait for a lock (falling back to the
//! reader threads when all are in use or the database is busy), because the two
//! thread hand-offs cost about ten times the read itself. Verifies that are ready to
//! run together share one read transaction, and one read per key.
//! Every write is one `IMMEDIATE`
//! transaction with `synchronous=FULL`: once a call returns `Ok`, the change survives
//! a crash or power loss.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keygate_token::{KeyId, KeyKind, TokenFormat};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::{StoreError, VerifyError};
use crate::hash::TokenHash;
use crate::last_used::LastUsed;
use crate::model::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, NewAuditEvent, NewKey, Principal,
    Project, ProjectId, ProjectRef, Refill, RevokeReason, Role, Tenant, TenantId, TenantRef, User,
    UserId, UserRef,
};
use crate::records::{self, PreparedKey};
use crate::store::{KeyChange, KeyStore, Verifier};
use crate::verify::{self, KeyRow, Usage, verify_with};

/// How long a connection waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The inline verify connections never wait for a lock: a busy database sends the
/// read to the reader threads (which do wait, up to [`BUSY_TIMEOUT`]) instead of
/// blocking the async worker.
const INLINE_BUSY_TIMEOUT: Duration = Duration::ZERO;

/// The most verifies one read transaction serves (see [`SqliteStore::read_batched`]); a verify
/// arriving at a full batch reads alone.
const MAX_BATCH: usize = 64;

/// Migrations, in order; `schema_version` records the last one applied.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    actor_kind   TEXT NOT NULL CHECK (actor_kind IN ('user', 'tenant')),
    user_id      TEXT REFERENCES users(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         BLOB NOT NULL CHECK (length(hash) = 32),
    scopes       TEXT NOT NULL,
    projects     TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    CHECK ((actor_kind = 'user') = (user_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    tenant_id   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
",
    r"
ALTER TABLE api_keys ADD COLUMN revoked_reason TEXT;
",
    // Usage-limited keys: NULL `remaining` = no limit (every existing key). A refill has
    // an amount; its interval is `refill_seconds` (NULL = monthly), and
    // `refill_period` the period of the last refill.
    r"
ALTER TABLE api_keys ADD COLUMN remaining INTEGER CHECK (remaining >= 0);
ALTER TABLE api_keys ADD COLUMN refill_seconds INTEGER CHECK (refill_seconds > 0);
ALTER TABLE api_keys ADD COLUMN refill_amount INTEGER CHECK (refill_amount > 0);
ALTER TABLE api_keys ADD COLUMN refill_period INTEGER;
",
];

/// Spends one request of usage-limited key `?1`, refilling it first when refill period
/// `?2` (NULL without a refill) is past the stored one: one statement, so the check and
/// the decrement cannot be split and `remaining` never goes below zero. A row comes
/// back when one was spent.
const SPEND_SQL: &str = "UPDATE api_keys SET \
     remaining = CASE WHEN ?2 > refill_period THEN refill_amount ELSE remaining END - 1, \
     refill_period = CASE WHEN ?2 > refill_period THEN ?2 ELSE refill_period END \
     WHERE id = ?1 AND remaining IS NOT NULL \
     AND (remaining > 0 OR (?2 > refill_period AND refill_amount > 0)) \
     RETURNING remaining";

/// The columns of an [`ApiKey`], projects resolved to `[[id, name], …]` JSON.
const KEY_COLUMNS: &str = "k.id, k.tenant_id, k.actor_kind, k.user_id, k.name, k.prefix, \
     k.scopes, CASE WHEN k.projects IS NULL THEN NULL ELSE \
     (SELECT json_group_array(json_array(p.id, p.name)) FROM projects p \
      WHERE p.id IN (SELECT value FROM json_each(k.projects))) END, \
     k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.revoked_reason, \
     k.remaining, k.refill_seconds, k.refill_amount, k.refill_period";

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A [`KeyStore`] in one SQLite file (WAL, `synchronous=FULL`).
///
/// Open it with [`SqliteStore::open`]; migrations run at open. Cloning is cheap and
/// shares the threads; they stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct Inner {
    writer: mpsc::Sender<Job>,
    /// `None` for an in-memory database, whose only connection is the writer's.
    readers: Option<mpsc::Sender<Job>>,
    /// Read-only connections `verify` uses on the calling task; empty for an
    /// in-memory database.
    inline: Vec<Mutex<Connection>>,
    /// Verifies waiting for the batch a first one opened (see [`SqliteStore::read_batched`]).
    waiting: Mutex<Vec<Waiter>>,
    last_used: LastUsed,
    path: Option<PathBuf>,
}

/// One key's row as a batch read it; the error is shared by every verify of that key.
type KeyRead = Result<Option<KeyRow>, Arc<StoreError>>;

/// A verify waiting for its key row.
type Waiter = (
    KeyId,
    tokio::sync::oneshot::Sender<Result<Option<KeyRow>, StoreError>>,
);

fn closed() -> StoreError {
    StoreError::unavailable("the SQLite worker thread has stopped")
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable(e)
}

/// For an INSERT into a table with a unique name: a violation of that constraint is
/// `Conflict(what)`, anything else [`db_err`]. The constraint decides, so no SELECT
/// has to check first.
fn insert_err(what: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict(what)
        }
        _ => db_err(e),
    }
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(m: i64) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e))
    })
}

fn opt_micros(m: Option<i64>) -> rusqlite::Result<Option<OffsetDateTime>> {
    m.map(from_micros).transpose()
}

fn conversion(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn bad_value(what: &str) -> rusqlite::Error {
    conversion(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unexpected stored {what}"),
    ))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and runs migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer = open_connection(&path, false)?;
        let readers = std::thread::available_parallelism()
            .map_or(2, std::num::NonZero::get)
            .clamp(2, 4);
        let mut conns = Vec::with_capacity(readers);
        let mut inline = Vec::with_capacity(readers);
        for _ in 0..readers {
            conns.push(open_connection(&path, true)?);
            let conn = open_connection(&path, true)?;
            conn.busy_timeout(INLINE_BUSY_TIMEOUT).map_err(db_err)?;
            inline.push(Mutex::new(conn));
        }
        Ok(Self::start(writer, conns, inline, Some(path)))
    }

    /// A private in-memory database (for tests): one connection, gone when dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if SQLite cannot create it.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(db_err)?;
        configure(&conn, false)?;
        migrate(&mut conn)?;
        Ok(Self::start(conn, Vec::new(), Vec::new(), None))
    }

    /// This store, reading the time of verification (expiry, usage refills) from
    /// `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn start(
        writer: Connection,
        readers: Vec<Connection>,
        inline: Vec<Mutex<Connection>>,
        path: Option<PathBuf>,
    ) -> Self {
        let (wtx, wrx) = mpsc::channel::<Job>();
        spawn_worker("keygate-sqlite-writer", writer, Arc::new(Mutex::new(wrx)));
        let readers = if readers.is_empty() {
            None
        } else {
            let (rtx, rrx) = mpsc::channel::<Job>();
            let rrx = Arc::new(Mutex::new(rrx));
            for conn in readers {
                spawn_worker("keygate-sqlite-reader", conn, rrx.clone());
            }
            Some(rtx)
        };
        Self {
            inner: Arc::new(Inner {
                writer: wtx,
                readers,
                inline,
                waiting: Mutex::new(Vec::new()),
                last_used: LastUsed::default(),
                path,
            }),
            clock: crate::clock::system(),
        }
    }

    async fn run<T, F>(queue: &mpsc::Sender<Job>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        queue
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Runs `f` on a reader connection.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let queue = self.inner.readers.as_ref().unwrap_or(&self.inner.writer);
        Self::run(queue, move |conn| f(conn)).await
    }

    /// Loads the verification row on the calling task, from the first free inline
    /// connection; `None` when every inline connection is in use or the database
    /// answered `SQLITE_BUSY`/`SQLITE_LOCKED`, so the caller goes through the reader
    /// threads instead.
    ///
    /// This blocks the calling (async) thread for one primary-key `SELECT` that
    /// is served from the page cache and the WAL: a few microseconds, far below
    /// the 10–100 µs tokio allows between awaits. It cannot wait on the writer: in
    /// WAL mode a reader takes no lock the writer holds, and these connections
    /// have no busy timeout, so any lock conflict returns at once and falls back.
    /// Reading inline saves the two thread wake-ups (send to a reader thread,
    /// oneshot back) that cost about ten times the read itself.
    fn read_inline(&self, id: &KeyId) -> Option<Result<Option<KeyRow>, StoreError>> {
        self.inline(|conn| key_row_raw(conn, id))
    }

    /// The key row of `id` for a verify, read after this call in a batch: the first
    /// verify to arrive opens it and yields once, so that every verify ready to run on
    /// the runtime joins it before it is read (tokio wakes a yielded task only once it
    /// has nothing else to run). The batch is then read in one read transaction, one
    /// `SELECT` per distinct key ([`read_rows`]): under load a burst of requests with
    /// the same key costs one read, and a burst with different keys one transaction
    /// (two `fcntl` locks and the page-cache check) instead of one each. Each batch is
    /// read after the last verify in it arrived, and no row is reused between batches,
    /// so a revocation committed before a verify started is always seen by it.
    async fn read_batched(&self, id: KeyId) -> Result<Option<KeyRow>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let joined = {
            let mut waiting = lock(&self.inner.waiting);
            if waiting.len() < MAX_BATCH {
                waiting.push((id, tx));
                Some(waiting.len() == 1)
            } else {
                None
            }
        };
        let Some(first) = joined else {
            return match self.read_inline(&id) {
                Some(row) => row,
                None => self.read(move |conn| key_row(conn, &id)).await,
            };
        };
        if first {
            // Reads the batch when dropped: after the yield, or if this verify is
            // cancelled while it waits, so the others are never left waiting.
            let _batch = Batch(self);
            tokio::task::yield_now().await;
        }
        rx.await.map_err(|_| closed())?
    }

    /// Reads every waiting verify's row: on the calling thread from a free inline
    /// connection, else (all taken, the database busy, or in memory, where there are
    /// none) on the reader threads (the writer's, in memory).
    fn read_waiting(&self) {
        let batch = std::mem::take(&mut *lock(&self.inner.waiting));
        if batch.is_empty() {
            return;
        }
        let mut ids: Vec<KeyId> = batch.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        if let Some(rows) = self.inline(|conn| read_rows(conn, &ids)) {
            answer(batch, &ids, rows);
            return;
        }
        // The reader connections wait for a busy database (`BUSY_TIMEOUT`). If they are
        // gone, dropping the batch answers every verify in it with `closed()`.
        let queue = self.inner.readers.as_ref().unwrap_or(&self.inner.writer);
        let _ = queue.send(Box::new(move |conn: &mut Connection| {
            let rows = read_rows(conn, &ids).map_err(db_err);
            answer(batch, &ids, rows);
        }));
    }

    /// Runs `f` on the calling task on the first free inline connection (see
    /// [`SqliteStore::read_inline`]); `None` when every one is in use or SQLite
    /// answered `SQLITE_BUSY`/`SQLITE_LOCKED`, so the caller goes through the reader
    /// threads instead. Only for single indexed reads.
    fn inline<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T, StoreError>> {
        let conn = self
            .inner
            .inline
            .iter()
            .find_map(|slot| slot.try_lock().ok())?;
        match f(&conn) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                None
            }
            other => Some(other.map_err(db_err)),
        }
    }

    /// Runs `f` in one `IMMEDIATE` transaction on the writer connection; commits on
    /// `Ok`, rolls back on `Err`.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        Self::run(&self.inner.writer, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }
}

fn spawn_worker(name: &str, mut conn: Connection, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            loop {
                let job = lock(&queue).recv();
                match job {
                    Ok(job) => job(&mut conn),
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a SQLite worker thread");
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let mut conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    configure(&conn, read_only)?;
    if !read_only {
        migrate(&mut conn)?;
    }
    Ok(conn)
}

fn configure(conn: &Connection, read_only: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    if !read_only {
        // WAL persists in the file; set it from the writer.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db_err)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::Invalid(format!(
            "the database schema is version {current}, newer than this keygate ({known}); upgrade keygate"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![i64::try_from(i + 1).unwrap_or(i64::MAX)],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

/// A key's projects from the `json_group_array(json_array(id, name))` column both key
/// reads select (`None`: the key is not restricted), sorted as every store sorts them.
fn project_refs(json: Option<String>) -> rusqlite::Result<Option<Vec<ProjectRef>>> {
    let Some(json) = json else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = serde_json::from_str(&json).map_err(conversion)?;
    let mut refs: Vec<ProjectRef> = pairs
        .into_iter()
        .map(|(id, name)| ProjectRef {
            id: ProjectId::new(id),
            name,
        })
        .collect();
    records::sort_projects(&mut refs);
    Ok(Some(refs))
}

/// A key read with [`KEY_COLUMNS`], its `remaining` as of `now`.
fn key_from_row(r: &Row<'_>, now: OffsetDateTime) -> rusqlite::Result<ApiKey> {
    let id: String = r.get(0)?;
    let kind: String = r.get(2)?;
    let scopes: String = r.get(6)?;
    let projects = project_refs(r.get(7)?)?;
    Ok(ApiKey {
        id: id.parse().map_err(|_| bad_value("key id"))?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        kind: KeyKind::from_actor(&kind).ok_or_else(|| bad_value("actor_kind"))?,
        user_id: r.get::<_, Option<String>>(3)?.map(UserId::new),
        name: r.get(4)?,
        prefix: r.get(5)?,
        scopes: serde_json::from_str(&scopes).map_err(conversion)?,
        projects,
        created_at: from_micros(r.get(8)?)?,
        expires_at: opt_micros(r.get(9)?)?,
        revoked_at: opt_micros(r.get(10)?)?,
        revoked_reason: r.get(12)?,
        last_used_at: opt_micros(r.get(11)?)?,
        remaining: verify::remaining_at(
            r.get::<_, Option<i64>>(13)?.map(count).transpose()?,
            refill(r.get(14)?, r.get(15)?)?,
            r.get(16)?,
            now,
        ),
        refill: refill(r.get(14)?, r.get(15)?)?,
    })
}

/// A stored count, read back.
fn count(n: i64) -> rusqlite::Result<u64> {
    records::stored_count(n).map_err(bad_value)
}

/// A stored refill, read back.
fn refill(seconds: Option<i64>, amount: Option<i64>) -> rusqlite::Result<Option<Refill>> {
    records::stored_refill(seconds, amount).map_err(bad_value)
}

/// Runs [`SPEND_SQL`]: whether one was left to spend.
fn spend(conn: &Connection, id: &KeyId, period: Option<i64>) -> Result<bool, StoreError> {
    conn.prepare_cached(SPEND_SQL)
        .map_err(db_err)?
        .query_row(params![id.as_str(), period], |_| Ok(()))
        .optional()
        .map(|spent| spent.is_some())
        .map_err(db_err)
}

fn get_key(
    conn: &Connection,
    tenant: &TenantId,
    id: &KeyId,
    now: OffsetDateTime,
) -> Result<ApiKey, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.tenant_id = ?1 AND k.id = ?2");
    conn.prepare_cached(&sql)
        .map_err(db_err)?
        .query_row(params![tenant.as_str(), id.as_str()], |r| {
            key_from_row(r, now)
        })
        .optional()
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)
}

/// Every row `sql` returns for `params`, each read by `row`.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query_map(params, row).map_err(db_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
}

fn tenant_exists(conn: &Connection, tenant: &TenantId) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")
        .map_err(db_err)?
        .exists(params![tenant.as_str()])
        .map_err(db_err)?
        .then_some(())
        .ok_or(StoreError::NotFound)
}

fn insert_tenant(tx: &Transaction<'_>, name: &str) -> Result<Tenant, StoreError> {
    let tenant = records::new_tenant(records::check_name("tenant", name)?)?;
    insert_named(
        tx,
        "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![tenant.id.as_str(), tenant.name, micros(tenant.created_at)],
        format!("tenant `{}`", tenant.name),
    )?;
    Ok(tenant)
}

fn insert_user(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    name: &str,
    role: Role,
) -> Result<User, StoreError> {
    tenant_exists(tx, tenant)?;
    let user = records::new_user(tenant, records::check_name("user", name)?, role)?;
    insert_named(
        tx,
        "INSERT INTO users (id, tenant_id, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            user.id.as_str(),
            tenant.as_str(),
            user.name,
            role.as_str(),
            micros(user.created_at)
        ],
        format!("user `{}`", user.name),
    )?;
    Ok(user)
}

fn insert_project(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    name: &str,
) -> Result<Project, StoreError> {
    tenant_exists(tx, tenant)?;
    let project = records::new_project(tenant, records::check_name("project", name)?)?;
    insert_named(
        tx,
        "INSERT INTO projects (id, tenant_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            project.id.as_str(),
            tenant.as_str(),
            project.name,
            micros(project.created_at)
        ],
        format!("project `{}`", project.name),
    )?;
    Ok(project)
}

/// Runs the insert `sql` of a named record; a taken name is a
/// [`StoreError::Conflict`] naming `what`.
fn insert_named(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
    what: String,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .map_err(db_err)?
        .execute(params)
        .map_err(insert_err(what))?;
    Ok(())
}

fn push_audit(tx: &Transaction<'_>, event: &NewAuditEvent) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit_log (at, tenant_id, actor, action, target, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(db_err)?
    .execute(params![
        micros(records::now()),
        event.tenant_id.as_str(),
        event.actor,
        event.action,
        event.target,
        event.detail.to_string()
    ])
    .map_err(db_err)?;
    Ok(())
}

fn insert_key(
    tx: &Transaction<'_>,
    key: PreparedKey,
    actor: &str,
    extra_audit: Option<&NewAuditEvent>,
) -> Result<CreatedKey, StoreError> {
    tenant_exists(tx, &key.tenant_id)?;
    if let Some(user) = &key.user_id {
        let ok = tx
            .prepare_cached("SELECT 1 FROM users WHERE id = ?1 AND tenant_id = ?2")
            .map_err(db_err)?
            .exists(params![user.as_str(), key.tenant_id.as_str()])
            .map_err(db_err)?;
        if !ok {
            return Err(records::foreign_user());
        }
    }
    let projects = records::resolve_projects(key.projects.as_deref(), |name| {
        let id: Option<String> = tx
            .prepare_cached("SELECT id FROM projects WHERE tenant_id = ?1 AND name = ?2")
            .map_err(db_err)?
            .query_row(params![key.tenant_id.as_str(), name], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        Ok(id.map(ProjectId::new))
    })?;
    let record = key.record(projects);
    let exists = tx
        .prepare_cached("SELECT 1 FROM api_keys WHERE id = ?1")
        .map_err(db_err)?
        .exists(params![record.id.as_str()])
        .map_err(db_err)?;
    if exists {
        return Err(StoreError::Conflict(format!("key `{}`", record.id)));
    }
    let scopes = serde_json::to_string(&record.scopes).map_err(StoreError::unavailable)?;
    let project_ids = record
        .projects
        .as_ref()
        .map(|l| serde_json::to_string(&l.iter().map(|p| p.id.as_str()).collect::<Vec<_>>()))
        .transpose()
        .map_err(StoreError::unavailable)?;
    // Checked by `records::prepare_key` to fit.
    let stored = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let remaining = record.remaining.map(stored);
    let refill_seconds = record.refill.and_then(|r| r.interval.seconds()).map(stored);
    let refill_amount = record.refill.map(|r| stored(r.amount));
    tx.prepare_cached(
        "INSERT INTO api_keys (id, tenant_id, actor_kind, user_id, name, prefix, hash, scopes, \
         projects, created_at, expires_at, remaining, refill_seconds, refill_amount, \
         refill_period) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .map_err(db_err)?
    .execute(params![
        record.id.as_str(),
        record.tenant_id.as_str(),
        record.kind.actor(),
        record.user_id.as_ref().map(UserId::as_str),
        record.name,
        record.prefix,
        &key.hash.as_bytes()[..],
        scopes,
        project_ids,
        micros(record.created_at),
        record.expires_at.map(micros),
        remaining,
        refill_seconds,
        refill_amount,
        key.refill_period,
    ])
    .map_err(db_err)?;
    push_audit(
        tx,
        &NewAuditEvent {
            tenant_id: record.tenant_id.clone(),
            actor: actor.to_owned(),
            action: "key.created".to_owned(),
            target: record.id.to_string(),
            detail: records::created_detail(&record),
        },
    )?;
    if let Some(event) = extra_audit {
        push_audit(tx, event)?;
    }
    Ok(CreatedKey {
        key: record,
        token: key.token,
    })
}

/// The project of `tenant` with the id, else the name, `project`: two index look-ups
/// (primary key; `UNIQUE (tenant_id, name)`) in one statement.
fn find_project_raw(
    conn: &Connection,
    tenant: &TenantId,
    project: &str,
) -> rusqlite::Result<Option<ProjectRef>> {
    conn.prepare_cached(
        "SELECT id, name, 0 AS rank FROM projects WHERE id = ?2 AND tenant_id = ?1 \
         UNION ALL \
         SELECT id, name, 1 AS rank FROM projects WHERE tenant_id = ?1 AND name = ?2 \
         ORDER BY rank LIMIT 1",
    )?
    .query_row(params![tenant.as_str(), project], |r| {
        Ok(ProjectRef {
            id: ProjectId::new(r.get::<_, String>(0)?),
            name: r.get(1)?,
        })
    })
    .optional()
}

/// Reads the waiting verifies' rows when dropped (see [`SqliteStore::read_batched`]).
struct Batch<'a>(&'a SqliteStore);

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.0.read_waiting();
    }
}

/// The lock's value, also after a panic elsewhere poisoned it (a `Vec` of waiters and
/// a job queue's receiver are valid in any state).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key rows of `ids` (sorted, distinct), read in one read transaction (with
/// SQLite's own error, so that `SQLITE_BUSY` can be told apart); a row that does not
/// decode is that key's error, not the batch's.
fn read_rows(conn: &Connection, ids: &[KeyId]) -> rusqlite::Result<Vec<KeyRead>> {
    if let [id] = ids {
        return key_row_raw(conn, id).map(|row| vec![Ok(row)]);
    }
    conn.prepare_cached("BEGIN")?.execute([])?;
    let mut rows = Vec::with_capacity(ids.len());
    let mut failed = None;
    for id in ids {
        match key_row_raw(conn, id) {
            Ok(row) => rows.push(Ok(row)),
            Err(e @ rusqlite::Error::SqliteFailure(..)) => {
                failed = Some(e);
                break;
            }
            Err(e) => rows.push(Err(Arc::new(db_err(e)))),
        }
    }
    // A read transaction: ending it cannot lose anything. If it cannot be ended the
    // connection is not reused in that state (the error goes to every verify).
    let ended = conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]));
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    match (failed, ended) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(_)) => Ok(rows),
    }
}

/// Sends each verify of `batch` its row of `rows` (in the order of `ids`), or the
/// batch's error. The last waiter for a key is given its row, the others a copy: with
/// one verify per key (the usual batch) no row is copied.
fn answer(mut batch: Vec<Waiter>, ids: &[KeyId], rows: Result<Vec<KeyRead>, StoreError>) {
    match rows {
        Ok(mut rows) => {
            batch.sort_unstable_by_key(|(id, _)| *id);
            let mut waiters = batch.into_iter().peekable();
            while let Some((id, tx)) = waiters.next() {
                let last = waiters.peek().is_none_or(|(next, _)| *next != id);
                let row = match ids.binary_search(&id).ok().and_then(|i| rows.get_mut(i)) {
                    Some(Ok(row)) if last => Ok(row.take()),
                    Some(Ok(row)) => Ok(row.clone()),
                    Some(Err(e)) => Err(StoreError::unavailable(Arc::clone(e))),
                    None => Err(StoreError::unavailable("key row missing from its batch")),
                };
                let _ = tx.send(row);
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for (_, tx) in batch {
                let _ = tx.send(Err(StoreError::unavailable(Arc::clone(&e))));
            }
        }
    }
}

/// What verification needs of key `?1`, in one statement.
const VERIFY_SQL: &str = "SELECT k.hash, k.revoked_at IS NOT NULL, k.tenant_id, t.name, \
     k.actor_kind, k.user_id, u.name, u.role, k.scopes, \
     CASE WHEN k.projects IS NULL THEN NULL ELSE \
     (SELECT json_group_array(json_array(p.id, p.name)) FROM projects p \
      WHERE p.id IN (SELECT value FROM json_each(k.projects))) END, \
     k.expires_at, k.remaining IS NOT NULL, k.refill_seconds, k.refill_amount \
     FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
     LEFT JOIN users u ON u.id = k.user_id WHERE k.id = ?1";

/// Loads what verification needs, in one statement.
fn key_row(conn: &Connection, id: &KeyId) -> Result<Option<KeyRow>, StoreError> {
    key_row_raw(conn, id).map_err(db_err)
}

/// [`key_row`] with SQLite's own error, so that `SQLITE_BUSY` can be told apart.
fn key_row_raw(conn: &Connection, id: &KeyId) -> rusqlite::Result<Option<KeyRow>> {
    let mut stmt = conn.prepare_cached(VERIFY_SQL)?;
    // Values only inspected (hash, kind, role, the scopes' JSON) are borrowed from the
    // row, not copied into a `String` first: this runs on every request.
    stmt.query_row(params![id.as_str()], |r| {
        let hash = r.get_ref(0)?.as_blob().map_err(conversion)?;
        let kind = r.get_ref(4)?.as_str().map_err(conversion)?;
        let user = match (
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
        ) {
            (Some(uid), Some(name)) => {
                let role = r.get_ref(7)?.as_str().map_err(conversion)?;
                Some(UserRef {
                    id: UserId::new(uid),
                    name,
                    role: Role::parse(role).ok_or_else(|| bad_value("role"))?,
                })
            }
            _ => None,
        };
        let scopes =
            shared_scopes(r.get_ref(8)?.as_str().map_err(conversion)?).map_err(conversion)?;
        let projects = project_refs(r.get(9)?)?;
        Ok(KeyRow {
            hash: TokenHash::from_slice(hash).ok_or_else(|| bad_value("hash"))?,
            revoked: r.get(1)?,
            principal: Principal {
                key_id: *id,
                tenant: TenantRef {
                    id: TenantId::new(r.get::<_, String>(2)?),
                    name: r.get(3)?,
                },
                kind: KeyKind::from_actor(kind).ok_or_else(|| bad_value("actor_kind"))?,
                user,
                scopes,
                projects,
                expires_at: opt_micros(r.get(10)?)?,
            },
            usage: if r.get(11)? {
                Some(Usage {
                    refill: refill(r.get(12)?, r.get(13)?)?,
                })
            } else {
                None
            },
        })
    })
    .optional()
}

/// A principal's scopes, as [`Principal::scopes`] holds them.
type SharedScopes = Arc<BTreeSet<String>>;

/// The scopes stored as `json`, parsed once per thread for as long as the rows it reads
/// hold the same text: one key on many connections always does, and a tenant's keys
/// mostly share their scopes. Only the parse is reused (it is a function of the text
/// alone); every verify still reads the row, so nothing about a key is remembered.
fn shared_scopes(json: &str) -> Result<SharedScopes, serde_json::Error> {
    thread_local! {
        static LAST: RefCell<Option<(Box<str>, SharedScopes)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((text, scopes)) = last.as_ref()
            && **text == *json
        {
            return Ok(Arc::clone(scopes));
        }
        // Stored sorted (`records::normalise`): collected in one bulk build, not an
        // insert (a search and maybe a split) per scope.
        let list: Vec<String> = serde_json::from_str(json)?;
        let scopes = Arc::new(list.into_iter().collect::<BTreeSet<_>>());
        *last = Some((json.into(), Arc::clone(&scopes)));
        Ok(scopes)
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn bootstrap(
        &self,
        format: &TokenFormat,
        request: Bootstrap,
    ) -> Result<Bootstrapped, StoreError> {
        let format = format.clone();
        self.write(move |tx| {
            let tenant = insert_tenant(tx, &request.tenant)?;
            let owner = insert_user(tx, &tenant.id, &request.owner, Role::Owner)?;
            let mut projects = Vec::new();
            for name in records::normalise(request.projects) {
                projects.push(insert_project(tx, &tenant.id, &name)?);
            }
            let prepared = records::prepare_key(
                &format,
                records::bootstrap_key(&tenant.id, &owner.id, request.key_name, request.scopes),
            )?;
            let key = insert_key(tx, prepared, "bootstrap", None)?;
            Ok(Bootstrapped {
                tenant,
                owner,
                projects,
                key,
            })
        })
        .await
    }

    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let name = name.to_owned();
        self.write(move |tx| insert_tenant(tx, &name)).await
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, name, created_at FROM tenants WHERE name = ?1")
                .map_err(db_err)?
                .query_row(params![name], |r| {
                    Ok(Tenant {
                        id: TenantId::new(r.get::<_, String>(0)?),
                        name: r.get(1)?,
                        created_at: from_micros(r.get(2)?)?,
                    })
                })
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.write(move |tx| insert_user(tx, &tenant, &name, role))
            .await
    }

    async fn create_project(&self, tenant: &TenantId, name: &str) -> Result<Project, StoreError> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.write(move |tx| insert_project(tx, &tenant, &name))
            .await
    }

    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<Project>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            tenant_exists(conn, &tenant)?;
            let sql =
                "SELECT id, name, created_at FROM projects WHERE tenant_id = ?1 ORDER BY name";
            query_all(conn, sql, params![tenant.as_str()], |r| {
                Ok(Project {
                    id: ProjectId::new(r.get::<_, String>(0)?),
                    tenant_id: tenant.clone(),
                    name: r.get(1)?,
                    created_at: from_micros(r.get(2)?)?,
                })
            })
        })
        .await
    }

    async fn find_project(
        &self,
        tenant: &TenantId,
        project: &str,
    ) -> Result<Option<ProjectRef>, StoreError> {
        if let Some(found) = self.inline(|conn| find_project_raw(conn, tenant, project)) {
            return found;
        }
        let (tenant, project) = (tenant.clone(), project.to_owned());
        self.read(move |conn| find_project_raw(conn, &tenant, &project).map_err(db_err))
            .await
    }

    async fn create_key(
        &self,
        format: &TokenFormat,
        request: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        let prepared = records::prepare_key(format, request)?;
        let actor = actor.to_owned();
        self.write(move |tx| insert_key(tx, prepared, &actor, None))
            .await
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError> {
        let (tenant, id) = (tenant.clone(), *id);
        let now = self.clock.now();
        self.read(move |conn| get_key(conn, &tenant, &id, now))
            .await
    }

    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let (tenant, now) = (tenant.clone(), self.clock.now());
        self.read(move |conn| {
            tenant_exists(conn, &tenant)?;
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.tenant_id = ?1 ORDER BY k.rowid DESC"
            );
            query_all(conn, &sql, params![tenant.as_str()], |r| {
                key_from_row(r, now)
            })
        })
        .await
    }

    async fn revoke_key_for(
        &self,
        change: KeyChange<'_>,
        reason: Option<&RevokeReason>,
    ) -> Result<ApiKey, StoreError> {
        let KeyChange { tenant, id, actor } = change;
        let (tenant, id, actor, reason) = (tenant.clone(), *id, actor.to_owned(), reason.cloned());
        let now = self.clock.now();
        self.write(move |tx| {
            get_key(tx, &tenant, &id, now)?;
            let changed = tx
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?1, revoked_reason = ?4 \
                     WHERE id = ?2 AND tenant_id = ?3 AND revoked_at IS NULL",
                )
                .map_err(db_err)?
                .execute(params![
                    micros(records::now()),
                    id.as_str(),
                    tenant.as_str(),
                    reason.as_ref().map(RevokeReason::as_str)
                ])
                .map_err(db_err)?;
            if changed == 1 {
                let change = KeyChange {
                    tenant: &tenant,
                    id: &id,
                    actor: &actor,
                };
                push_audit(tx, &records::revoked_event(change, reason.as_ref()))?;
            }
            get_key(tx, &tenant, &id, now)
        })
        .await
    }

    async fn rotate_key(
        &self,
        format: &TokenFormat,
        change: KeyChange<'_>,
    ) -> Result<CreatedKey, StoreError> {
        let KeyChange { tenant, id, actor } = change;
        let (format, tenant, id, actor) = (format.clone(), tenant.clone(), *id, actor.to_owned());
        let now = self.clock.now();
        self.write(move |tx| {
            let old = get_key(tx, &tenant, &id, now)?;
            let prepared = records::prepare_rotation(&format, &old)?;
            let change = KeyChange {
                tenant: &tenant,
                id: &id,
                actor: &actor,
            };
            let rotated = records::rotated_event(change, prepared.token.id());
            insert_key(tx, prepared, &actor, Some(&rotated))
        })
        .await
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |tx| {
            tenant_exists(tx, &event.tenant_id)?;
            push_audit(tx, &event)
        })
        .await
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let tenant = tenant.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let sql = "SELECT id, at, actor, action, target, detail FROM audit_log \
                       WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2";
            query_all(conn, sql, params![tenant.as_str(), limit], |r| {
                let detail: String = r.get(5)?;
                Ok(AuditEvent {
                    id: r.get(0)?,
                    at: from_micros(r.get(1)?)?,
                    tenant_id: tenant.clone(),
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: serde_json::from_str(&detail).map_err(conversion)?,
                })
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }
}

#[async_trait]
impl Verifier for SqliteStore {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let principal = verify_with(
            token,
            &*self.clock,
            |id| self.read_batched(id),
            // A usage-limited key only: the writer thread, one statement.
            |id, period| Self::run(&self.inner.writer, move |conn| spend(conn, &id, period)),
        )
        .await?;
        if self.inner.last_used.due(principal.key_id) {
            let id = principal.key_id;
            let at = micros(records::now());
            // Queued behind other writes and not awaited: verification never waits for it.
            let _ = self
                .inner
                .writer
                .send(Box::new(move |conn: &mut Connection| {
                    let result = conn
                        .prepare_cached("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2")
                        .and_then(|mut s| s.execute(params![at, id.as_str()]));
                    if let Err(e) = result {
                        tracing::warn!(key_id = %id, error = %e, "cannot record last_used_at");
                    }
                }));
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with_key() -> (tempfile::TempDir, SqliteStore, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("k.db")).unwrap();
        let request = Bootstrap::new("acme", "alice", &[], vec!["a".to_owned()], "k");
        let done = store.bootstrap(&TokenFormat::default(), request).await;
        let token = done.unwrap().key.token.expose().to_owned();
        (dir, store, token)
    }

    #[test]
    fn scopes_of_the_same_text_are_parsed_once_per_thread() {
        let first = shared_scopes(r#"["a:r","b:w"]"#).unwrap();
        let again = shared_scopes(r#"["a:r","b:w"]"#).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.iter().collect::<Vec<_>>(), ["a:r", "b:w"]);
        // Another text is parsed anew, and what it holds is its own.
        let other = shared_scopes(r#"["a:r"]"#).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.iter().collect::<Vec<_>>(), ["a:r"]);
        assert!(shared_scopes(r#"["a:r""#).is_err());
        assert!(shared_scopes("{}").is_err());
        // A failed parse leaves the last good one in place.
        assert!(Arc::ptr_eq(&other, &shared_scopes(r#"["a:r"]"#).unwrap()));
    }

    /// How many times the inline connections have run the verify statement.
    fn verify_reads(store: &SqliteStore) -> i32 {
        store
            .inner
            .inline
            .iter()
            .map(|conn| {
                let conn = conn.lock().unwrap();
                let stmt = conn.prepare_cached(VERIFY_SQL).unwrap();
                stmt.get_status(rusqlite::StatementStatus::Run)
            })
            .sum()
    }

    #[tokio::test]
    async fn verifies_ready_together_are_read_in_one_batch_each_answered_its_own() {
        let (_dir, store, owner) = store_with_key().await;
        let tenant = store.verify(&owner).await.unwrap().tenant.id;
        let request = NewKey {
            tenant_id: tenant.clone(),
            kind: KeyKind::Tenant,
            user_id: None,
            name: "ci".to_owned(),
            scopes: vec!["b".to_owned()],
            projects: None,
            expires_at: None,
            remaining: None,
            refill: None,
        };
        let other = store
            .create_key(&TokenFormat::default(), request, "test")
            .await
            .unwrap();
        let other_token = other.token.expose().to_owned();
        let unknown = TokenFormat::default().generate(KeyKind::Tenant).unwrap();
        let before = verify_reads(&store);
        let tokens = [&owner, &other_token, unknown.expose(), &owner, &other_token];
        // Polled together on this task (`join_all`, no spawn): they share one tick.
        let results = futures_util::future::join_all(tokens.iter().map(|t| store.verify(t))).await;
        // Two distinct stored keys, one unknown id: three reads for five verifies.
        assert_eq!(verify_reads(&store) - before, 3);
        let scopes = |i: usize| {
            let p: &Principal = results[i].as_ref().unwrap();
            p.scopes.iter().cloned().collect::<Vec<_>>()
        };
        assert_eq!(scopes(0), ["a"]);
        assert_eq!(scopes(1), ["b"]);
        assert!(matches!(results[2], Err(VerifyError::NotFound)));
        assert_eq!(scopes(3), ["a"]);
        assert_eq!(scopes(4), ["b"]);
        // The next batch reads again: a revocation in between is seen.
        store
            .revoke_key(&tenant, &other.key.id, "test")
            .await
            .unwrap();
        let results =
            futures_util::future::join_all([&owner, &other_token].map(|t| store.verify(t))).await;
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(VerifyError::Revoked)));
    }

    #[tokio::test]
    async fn a_cancelled_first_verify_still_reads_the_batch_it_opened() {
        let (_dir, store, token) = store_with_key().await;
        let mut first = store.verify(&token);
        let mut second = store.verify(&token);
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending());
            assert!(second.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        drop(first);
        let principal = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second verify was left waiting")
            .unwrap();
        assert_eq!(principal.scopes.iter().collect::<Vec<_>>(), ["a"]);
    }

    #[tokio::test]
    async fn verify_reads_inline_when_a_connection_is_free() {
        let (_dir, store, token) = store_with_key().await;
        assert!(!store.inner.inline.is_empty());
        let id = keygate_token::Token::parse(&token).unwrap().id();
        assert!(matches!(store.read_inline(&id), Some(Ok(Some(_)))));
    }

    #[tokio::test]
    async fn find_project_reads_inline_and_falls_back_when_every_connection_is_taken() {
        let (_dir, store, token) = store_with_key().await;
        let tenant = store.verify(&token).await.unwrap().tenant.id;
        let shop = store.create_project(&tenant, "shop").await.unwrap();
        let inline = store
            .inline(|conn| find_project_raw(conn, &tenant, "shop"))
            .unwrap()
            .unwrap();
        assert_eq!(inline.map(|p| p.id), Some(shop.id.clone()));
        let held: Vec<_> = store
            .inner
            .inline
            .iter()
            .map(|m| m.lock().unwrap())
            .collect();
        assert!(store.inline(|_| Ok(())).is_none());
        let found = store.find_project(&tenant, shop.id.as_str()).await.unwrap();
        assert_eq!(found.map(|p| p.name), Some("shop".to_owned()));
        drop(held);
    }

    #[tokio::test]
    async fn verify_falls_back_to_the_reader_threads_when_every_inline_connection_is_taken() {
        let (_dir, store, token) = store_with_key().await;
        let id = keygate_token::Token::parse(&token).unwrap().id();
        let held: Vec<_> = store
            .inner
            .inline
            .iter()
            .map(|m| m.lock().unwrap())
            .collect();
        assert!(store.read_inline(&id).is_none());
        store.verify(&token).await.unwrap();
        store
            .revoke_key(&store.verify(&token).await.unwrap().tenant.id, &id, "test")
            .await
            .unwrap();
        assert!(matches!(
            store.verify(&token).await,
            Err(VerifyError::Revoked)
        ));
        drop(held);
        assert!(matches!(
            store.verify(&token).await,
            Err(VerifyError::Revoked)
        ));
    }
}
