//! PostgreSQL: several `keygated` instances sharing one database.
//!
//! A deadpool pool of tokio-postgres connections, statements prepared once per
//! connection and cached. Migrations run at connect inside a transaction holding
//! `pg_advisory_xact_lock`, so several processes may start at once. Tables live in
//! the connection's `search_path` (by default `public`); [`PostgresStore::connect_with_schema`]
//! puts them in a schema of their own, which is how tests isolate.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    ClientWrapper, GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
    Transaction,
};
use keygate_token::{KeyId, KeyKind, TokenFormat};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// Connections in the pool.
const POOL_SIZE: usize = 16;
/// Most connections held out of the pool for verification (see [`Readers`]).
const MAX_READERS: usize = 4;
/// Run once on each connection [`Readers`] takes: plan [`VERIFY_SQL`] once per
/// connection, not on every batch.
///
/// Its `k.id = ANY($1)` takes an array whose length a generic plan cannot know (the
/// planner assumes ten elements), so under the default `plan_cache_mode = auto` every
/// custom plan, for the batch's actual ids, looked cheaper than the generic one and
/// PostgreSQL planned the statement again on every execution: about three quarters of
/// the backend's CPU per batch (`BENCHMARKS.md`, "Issue 19, eighth pass"). One generic
/// plan serves every batch (primary-key look-ups once the tables are large), and
/// PostgreSQL plans it anew after an `ANALYZE` of the tables it reads, which autovacuum
/// runs as they grow. The setting stays on these connections:
/// they never return to the pool (see [`Readers::get`]).
const READER_SETUP: &str = "SET plan_cache_mode = force_generic_plan";
/// How long a caller waits for a pooled connection, and for a new one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// Advisory lock key serialising migrations across processes ("keygate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_6761_7465;
/// Pending `last_used_at` updates; more are dropped (the value is only a hint).
const TOUCH_QUEUE: usize = 1024;
/// Verifies that may wait for a batch; more wait for room in the queue.
const VERIFY_QUEUE: usize = 4096;
/// The most key rows one batched read asks for.
const MAX_BATCH: usize = 64;

/// Migrations, in order; `schema_version` records the last one applied.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL
);
CREATE TABLE users (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id),
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'member')),
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE projects (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE api_keys (
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants(id),
    actor_kind   text NOT NULL CHECK (actor_kind IN ('user', 'tenant')),
    user_id      text REFERENCES users(id),
    name         text NOT NULL,
    prefix       text NOT NULL,
    hash         bytea NOT NULL CHECK (octet_length(hash) = 32),
    scopes       text[] NOT NULL,
    projects     text[],
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CHECK ((actor_kind = 'user') = (user_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, seq);
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    tenant_id   text NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    detail      jsonb NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
",
    r"
ALTER TABLE api_keys ADD COLUMN revoked_reason text;
",
    // Usage-limited keys: NULL `remaining` = no limit (every existing key). A refill has
    // an amount; its interval is `refill_seconds` (NULL = monthly), and
    // `refill_period` the period of the last refill.
    r"
ALTER TABLE api_keys
    ADD COLUMN remaining bigint CHECK (remaining >= 0),
    ADD COLUMN refill_seconds bigint CHECK (refill_seconds > 0),
    ADD COLUMN refill_amount bigint CHECK (refill_amount > 0),
    ADD COLUMN refill_period bigint;
",
];

/// Spends one request of usage-limited key `$1`, refilling it first when refill period
/// `$2` (NULL without a refill) is past the stored one: one statement, so the check and
/// the decrement cannot be split (a concurrent spend re-checks the row it waited for)
/// and `remaining` never goes below zero. A row comes back when one was spent.
const SPEND_SQL: &str = "UPDATE api_keys SET \
     remaining = CASE WHEN $2::bigint > refill_period THEN refill_amount ELSE remaining END - 1, \
     refill_period = CASE WHEN $2::bigint > refill_period THEN $2::bigint ELSE refill_period END \
     WHERE id = $1 AND remaining IS NOT NULL \
     AND (remaining > 0 OR ($2::bigint > refill_period AND refill_amount > 0)) \
     RETURNING remaining";

/// The columns of an [`ApiKey`], projects resolved to parallel id and name arrays.
const KEY_COLUMNS: &str = "k.id, k.tenant_id, k.actor_kind, k.user_id, k.name, k.prefix, k.scopes, \
     CASE WHEN k.projects IS NULL THEN NULL ELSE ARRAY(SELECT p.id FROM projects p \
       WHERE p.id = ANY(k.projects) ORDER BY p.name, p.id) END, \
     CASE WHEN k.projects IS NULL THEN NULL ELSE ARRAY(SELECT p.name FROM projects p \
       WHERE p.id = ANY(k.projects) ORDER BY p.name, p.id) END, \
     k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.revoked_reason, \
     k.remaining, k.refill_seconds, k.refill_amount, k.refill_period";

/// A [`KeyStore`] in a PostgreSQL database, shared by any number of processes.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    readers: Arc<Readers>,
    verifies: mpsc::Sender<Waiter>,
    last_used: Arc<LastUsed>,
    touch: mpsc::Sender<(KeyId, OffsetDateTime)>,
    clock: Arc<dyn Clock>,
}

/// Connections taken from the pool for verification and shared by every concurrent
/// verify, one per CPU the process may use (at most [`MAX_READERS`]).
///
/// The verifies waiting are read in one statement per batch ([`read_batches`]), one
/// batch in flight per connection; tokio-postgres pipelines what else shares it (the
/// spends of usage-limited keys). A connection per request would cost each verify its
/// own write, backend wake-up and read. Every batch is a new query on the database, so
/// a revocation is seen by the next verify. A connection that closes (database
/// restart, terminated backend) is replaced from the pool on the next batch.
#[derive(Debug)]
struct Readers {
    slots: Box<[Mutex<Option<Arc<ClientWrapper>>>]>,
    next: AtomicUsize,
}

impl Readers {
    fn new() -> Self {
        let n = std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .clamp(1, MAX_READERS);
        Self {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A shared connection, round-robin; a closed or missing one is replaced first.
    ///
    /// A replacement is taken out of the pool for good ([`Object::take`]: the pool may
    /// open another in its place) and set up with [`READER_SETUP`], so the setting never
    /// reaches a connection the pool lends for anything else; it closes when dropped.
    async fn get(&self, pool: &Pool) -> Result<Arc<ClientWrapper>, StoreError> {
        if pool.is_closed() {
            // Closing the pool stops verification too, not only new checkouts.
            return Err(pool_err(deadpool_postgres::PoolError::Closed));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        let live = |s: &Option<Arc<ClientWrapper>>| s.as_ref().filter(|c| !c.is_closed()).cloned();
        if let Some(client) = live(&slot.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(client);
        }
        let fresh = Object::take(pool.get().await.map_err(pool_err)?);
        fresh.batch_execute(READER_SETUP).await.map_err(db_err)?;
        let fresh = Arc::new(fresh);
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = live(&held) {
            // Another verify replaced it meanwhile; `fresh` closes.
            return Ok(client);
        }
        *held = Some(fresh.clone());
        Ok(fresh)
    }
}

fn db_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict("a record with that name".to_owned());
    }
    StoreError::unavailable(e)
}

/// For an INSERT into a table with a unique name: a violation of that constraint is
/// `Conflict(what)`, anything else [`db_err`]. The constraint decides, so no SELECT
/// has to check first (and a concurrent insert cannot slip between the two).
fn insert_err(what: String) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| match db_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(what),
        other => other,
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::unavailable(e)
}

fn bad_value(what: &str) -> StoreError {
    StoreError::unavailable(format!("unexpected stored {what}"))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`), runs migrations and starts the
    /// `last_used_at` writer. Tables go in the URL's `search_path` (set with
    /// `options=-csearch_path%3D…`), by default `public`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a URL that does not parse (the URL is not echoed),
    /// [`StoreError::Unavailable`] when the server cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::start(parse_url(url)?, None).await
    }

    /// Like [`PostgresStore::connect`], with every table in `schema` (created if
    /// missing). `schema` must be a plain identifier: lowercase ASCII letters, digits
    /// and `_`, starting with a letter or `_`.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`], and [`StoreError::Invalid`] for a bad schema name.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let valid = schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(StoreError::Invalid(format!(
                "schema name `{schema}` is not a plain lowercase identifier"
            )));
        }
        let mut config = parse_url(url)?;
        config.options(format!("-c search_path={schema}"));
        Self::start(config, Some(schema)).await
    }

    /// This store, reading the time of verification (expiry, usage refills) from
    /// `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The connection pool, for callers that keep their own tables in the same
    /// database (with the same `search_path`).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn start(
        config: tokio_postgres::Config,
        schema: Option<&str>,
    ) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(StoreError::unavailable)?;
        migrate(&pool, schema).await?;
        let (touch, rx) = mpsc::channel(TOUCH_QUEUE);
        tokio::spawn(write_last_used(pool.clone(), rx));
        let readers = Arc::new(Readers::new());
        let (verifies, queue) = mpsc::channel(VERIFY_QUEUE);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        // One batch in flight per shared connection; each ends with the store.
        for _ in 0..readers.slots.len() {
            tokio::spawn(read_batches(pool.clone(), readers.clone(), queue.clone()));
        }
        Ok(Self {
            pool,
            readers,
            verifies,
            last_used: Arc::new(LastUsed::default()),
            touch,
            clock: crate::clock::system(),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|_| StoreError::Invalid("the PostgreSQL URL does not parse".to_owned()))
}

/// Applies `MIGRATIONS` under an advisory lock held until commit.
async fn migrate(pool: &Pool, schema: Option<&str>) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_err)?;
    if let Some(schema) = schema {
        // Validated as a plain identifier by the caller.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(db_err)?;
    }
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        .await
        .map_err(db_err)?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(db_err)?
        .get(0);
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
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
        tx.batch_execute(sql).await.map_err(db_err)?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

/// Writes queued `last_used_at` values, batching whatever is queued at once. Ends
/// when the store (the last sender) is dropped.
async fn write_last_used(pool: Pool, mut rx: mpsc::Receiver<(KeyId, OffsetDateTime)>) {
    while let Some(first) = rx.recv().await {
        let mut ids = vec![first.0.as_str().to_owned()];
        let mut ats = vec![first.1];
        while ids.len() < 256
            && let Ok((id, at)) = rx.try_recv()
        {
            ids.push(id.as_str().to_owned());
            ats.push(at);
        }
        let result = async {
            let client = pool.get().await.map_err(pool_err)?;
            let stmt = client
                .prepare_cached(
                    "UPDATE api_keys SET last_used_at = v.at \
                     FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at) \
                     WHERE api_keys.id = v.id \
                     AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.at)",
                )
                .await
                .map_err(db_err)?;
            client.execute(&stmt, &[&ids, &ats]).await.map_err(db_err)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, keys = ids.len(), "cannot record last_used_at");
        }
    }
}

/// A key read with [`KEY_COLUMNS`], its `remaining` as of `now`.
fn key_from_row(r: &Row, now: OffsetDateTime) -> Result<ApiKey, StoreError> {
    let id: String = r.get(0);
    let kind: String = r.get(2);
    let pids: Option<Vec<String>> = r.get(7);
    let pnames: Option<Vec<String>> = r.get(8);
    Ok(ApiKey {
        id: id.parse().map_err(|_| bad_value("key id"))?,
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        kind: KeyKind::from_actor(&kind).ok_or_else(|| bad_value("actor_kind"))?,
        user_id: r.get::<_, Option<String>>(3).map(UserId::new),
        name: r.get(4),
        prefix: r.get(5),
        scopes: r.get(6),
        projects: project_refs(pids, pnames),
        created_at: r.get(9),
        expires_at: r.get(10),
        revoked_at: r.get(11),
        revoked_reason: r.get(13),
        last_used_at: r.get(12),
        remaining: verify::remaining_at(
            r.get::<_, Option<i64>>(14).map(count).transpose()?,
            refill(r.get(15), r.get(16))?,
            r.get(17),
            now,
        ),
        refill: refill(r.get(15), r.get(16))?,
    })
}

/// A stored count, read back.
fn count(n: i64) -> Result<u64, StoreError> {
    records::stored_count(n).map_err(bad_value)
}

/// A stored refill, read back.
fn refill(seconds: Option<i64>, amount: Option<i64>) -> Result<Option<Refill>, StoreError> {
    records::stored_refill(seconds, amount).map_err(bad_value)
}

fn project_refs(ids: Option<Vec<String>>, names: Option<Vec<String>>) -> Option<Vec<ProjectRef>> {
    let (ids, names) = (ids?, names?);
    Some(
        ids.into_iter()
            .zip(names)
            .map(|(id, name)| ProjectRef {
                id: ProjectId::new(id),
                name,
            })
            .collect(),
    )
}

async fn get_key<C: GenericClient>(
    client: &C,
    tenant: &TenantId,
    id: &KeyId,
    for_update: bool,
    now: OffsetDateTime,
) -> Result<ApiKey, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 AND k.id = $2{}",
        if for_update { " FOR UPDATE OF k" } else { "" }
    );
    let stmt = client.prepare_cached(&sql).await.map_err(db_err)?;
    let row = client
        .query_opt(&stmt, &[&tenant.as_str(), &id.as_str()])
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
    key_from_row(&row, now)
}

async fn tenant_exists<C: GenericClient>(client: &C, tenant: &TenantId) -> Result<(), StoreError> {
    let stmt = client
        .prepare_cached("SELECT 1 FROM tenants WHERE id = $1")
        .await
        .map_err(db_err)?;
    client
        .query_opt(&stmt, &[&tenant.as_str()])
        .await
        .map_err(db_err)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

async fn exists<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<bool, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(db_err)?;
    Ok(client
        .query_opt(&stmt, params)
        .await
        .map_err(db_err)?
        .is_some())
}

async fn insert_tenant(tx: &Transaction<'_>, name: &str) -> Result<Tenant, StoreError> {
    let tenant = records::new_tenant(records::check_name("tenant", name)?)?;
    insert_named(
        tx,
        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
        &[&tenant.id.as_str(), &tenant.name, &tenant.created_at],
        format!("tenant `{}`", tenant.name),
    )
    .await?;
    Ok(tenant)
}

async fn insert_user(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    name: &str,
    role: Role,
) -> Result<User, StoreError> {
    tenant_exists(tx, tenant).await?;
    let user = records::new_user(tenant, records::check_name("user", name)?, role)?;
    insert_named(
        tx,
        "INSERT INTO users (id, tenant_id, name, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            &user.id.as_str(),
            &tenant.as_str(),
            &user.name,
            &role.as_str(),
            &user.created_at,
        ],
        format!("user `{}`", user.name),
    )
    .await?;
    Ok(user)
}

async fn insert_project(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    name: &str,
) -> Result<Project, StoreError> {
    tenant_exists(tx, tenant).await?;
    let project = records::new_project(tenant, records::check_name("project", name)?)?;
    insert_named(
        tx,
        "INSERT INTO projects (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &project.id.as_str(),
            &tenant.as_str(),
            &project.name,
            &project.created_at,
        ],
        format!("project `{}`", project.name),
    )
    .await?;
    Ok(project)
}

/// Runs the insert `sql` of a named record; a taken name is a
/// [`StoreError::Conflict`] naming `what`.
async fn insert_named(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: String,
) -> Result<(), StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(db_err)?;
    tx.execute(&stmt, params).await.map_err(insert_err(what))?;
    Ok(())
}

async fn push_audit(tx: &Transaction<'_>, event: &NewAuditEvent) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit_log (at, tenant_id, actor, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(db_err)?;
    tx.execute(
        &stmt,
        &[
            &records::now(),
            &event.tenant_id.as_str(),
            &event.actor,
            &event.action,
            &event.target,
            &event.detail,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn insert_key(
    tx: &Transaction<'_>,
    key: PreparedKey,
    actor: &str,
    extra_audit: Option<&NewAuditEvent>,
) -> Result<CreatedKey, StoreError> {
    tenant_exists(tx, &key.tenant_id).await?;
    if let Some(user) = &key.user_id
        && !exists(
            tx,
            "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2",
            &[&user.as_str(), &key.tenant_id.as_str()],
        )
        .await?
    {
        return Err(records::foreign_user());
    }
    let projects = match &key.projects {
        None => None,
        Some(names) => {
            let stmt = tx
                .prepare_cached("SELECT id FROM projects WHERE tenant_id = $1 AND name = $2")
                .await
                .map_err(db_err)?;
            let mut refs = Vec::with_capacity(names.len());
            for name in names {
                let row = tx
                    .query_opt(&stmt, &[&key.tenant_id.as_str(), name])
                    .await
                    .map_err(db_err)?;
                let found = row.map(|r| ProjectId::new(r.get::<_, String>(0)));
                refs.push(records::project_ref(name, found)?);
            }
            records::sort_projects(&mut refs);
            Some(refs)
        }
    };
    let record = key.record(projects);
    let project_ids: Option<Vec<&str>> = record
        .projects
        .as_ref()
        .map(|l| l.iter().map(|p| p.id.as_str()).collect());
    // Checked by `records::prepare_key` to fit.
    let stored = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let remaining = record.remaining.map(stored);
    let refill_seconds = record.refill.and_then(|r| r.interval.seconds()).map(stored);
    let refill_amount = record.refill.map(|r| stored(r.amount));
    let stmt = tx
        .prepare_cached(
            "INSERT INTO api_keys (id, tenant_id, actor_kind, user_id, name, prefix, hash, \
             scopes, projects, created_at, expires_at, remaining, refill_seconds, \
             refill_amount, refill_period) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await
        .map_err(db_err)?;
    tx.execute(
        &stmt,
        &[
            &record.id.as_str(),
            &record.tenant_id.as_str(),
            &record.kind.actor(),
            &record.user_id.as_ref().map(UserId::as_str),
            &record.name,
            &record.prefix,
            &&key.hash.as_bytes()[..],
            &record.scopes,
            &project_ids,
            &record.created_at,
            &record.expires_at,
            &remaining,
            &refill_seconds,
            &refill_amount,
            &key.refill_period,
        ],
    )
    .await
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
    )
    .await?;
    if let Some(event) = extra_audit {
        push_audit(tx, event).await?;
    }
    Ok(CreatedKey {
        key: record,
        token: key.token,
    })
}

const VERIFY_SQL: &str = "SELECT k.hash, k.revoked_at IS NOT NULL, k.tenant_id, t.name, \
     k.actor_kind, k.user_id, u.name, u.role, k.scopes, \
     CASE WHEN k.projects IS NULL THEN NULL ELSE ARRAY(SELECT p.id FROM projects p \
       WHERE p.id = ANY(k.projects) ORDER BY p.name, p.id) END, \
     CASE WHEN k.projects IS NULL THEN NULL ELSE ARRAY(SELECT p.name FROM projects p \
       WHERE p.id = ANY(k.projects) ORDER BY p.name, p.id) END, \
     k.expires_at, k.remaining IS NOT NULL, k.refill_seconds, k.refill_amount, \
     k.id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
     LEFT JOIN users u ON u.id = k.user_id WHERE k.id = ANY($1)";

/// A verify waiting for its key row.
type Waiter = (
    KeyId,
    tokio::sync::oneshot::Sender<Result<Option<KeyRow>, StoreError>>,
);

/// Takes every verify waiting (at most [`MAX_BATCH`]) and reads their key rows in one
/// query ([`VERIFY_SQL`], `WHERE k.id = ANY($1)`) on a shared connection, until the
/// store is dropped. Under load, a burst of verifies costs the database one statement
/// instead of one each; alone, a verify waits for nothing but its own query. Each
/// batch's query starts after every verify in it arrived: no row is reused between
/// verifies, so revocation stays effective on the very next request.
async fn read_batches(
    pool: Pool,
    readers: Arc<Readers>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Waiter>>>,
) {
    let mut batch: Vec<Waiter> = Vec::with_capacity(MAX_BATCH);
    loop {
        if queue.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let mut ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        match read_key_rows(&pool, &readers, &ids).await {
            Ok(mut rows) => {
                // The last verify of a key is given its row, the others a copy: with one
                // verify per key no row is copied.
                batch.sort_unstable_by_key(|(id, _)| *id);
                let mut waiters = batch.drain(..).peekable();
                while let Some((id, tx)) = waiters.next() {
                    let last = waiters.peek().is_none_or(|(next, _)| *next != id);
                    let answer = match rows.iter().position(|(at, _)| *at == id) {
                        None => Ok(None),
                        Some(i) if last => rows
                            .swap_remove(i)
                            .1
                            .map(Some)
                            .map_err(StoreError::unavailable),
                        Some(i) => match &rows[i].1 {
                            Ok(row) => Ok(Some(row.clone())),
                            Err(e) => Err(StoreError::unavailable(Arc::clone(e))),
                        },
                    };
                    let _ = tx.send(answer);
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for (_, tx) in batch.drain(..) {
                    let _ = tx.send(Err(StoreError::unavailable(Arc::clone(&e))));
                }
            }
        }
    }
}

/// The key rows of `ids` (each present at most once), with the id each belongs to; a
/// row that does not decode is that key's error, not the batch's.
async fn read_key_rows(
    pool: &Pool,
    readers: &Readers,
    ids: &[&str],
) -> Result<Vec<(KeyId, Result<KeyRow, Arc<StoreError>>)>, StoreError> {
    let client = readers.get(pool).await?;
    let stmt = client.prepare_cached(VERIFY_SQL).await.map_err(db_err)?;
    let rows = client.query(&stmt, &[&ids]).await.map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let id: KeyId = r
                .get::<_, &str>(15)
                .parse()
                .map_err(|_| bad_value("key id"))?;
            Ok((id, key_row_from(r, id).map_err(Arc::new)))
        })
        .collect()
}

/// A row of [`VERIFY_SQL`] as the key row of `id`.
fn key_row_from(r: &Row, id: KeyId) -> Result<KeyRow, StoreError> {
    let hash: Vec<u8> = r.get(0);
    let kind: String = r.get(4);
    let user = match (r.get::<_, Option<String>>(5), r.get::<_, Option<String>>(6)) {
        (Some(uid), Some(name)) => {
            let role: String = r.get(7);
            Some(UserRef {
                id: UserId::new(uid),
                name,
                role: Role::parse(&role).ok_or_else(|| bad_value("role"))?,
            })
        }
        _ => None,
    };
    let scopes: Vec<String> = r.get(8);
    Ok(KeyRow {
        hash: TokenHash::from_slice(&hash).ok_or_else(|| bad_value("hash"))?,
        revoked: r.get(1),
        principal: Principal {
            key_id: id,
            tenant: TenantRef {
                id: TenantId::new(r.get::<_, String>(2)),
                name: r.get(3),
            },
            kind: KeyKind::from_actor(&kind).ok_or_else(|| bad_value("actor_kind"))?,
            user,
            scopes: Arc::new(scopes.into_iter().collect()),
            projects: project_refs(r.get(9), r.get(10)),
            expires_at: r.get(11),
        },
        usage: if r.get(12) {
            Some(Usage {
                refill: refill(r.get(13), r.get(14))?,
            })
        } else {
            None
        },
    })
}

/// The project of a tenant with the id, else the name, `$2`: two index look-ups
/// (primary key; `UNIQUE (tenant_id, name)`) in one statement.
const FIND_PROJECT_SQL: &str = "(SELECT id, name, 0 AS rank FROM projects \
     WHERE id = $2 AND tenant_id = $1) UNION ALL \
     (SELECT id, name, 1 AS rank FROM projects WHERE tenant_id = $1 AND name = $2) \
     ORDER BY rank LIMIT 1";

impl PostgresStore {
    /// The key row of `id`, read in the next batch (see [`read_batches`]): a query
    /// that starts after this call, so a revocation committed before it is seen.
    async fn key_row(&self, id: KeyId) -> Result<Option<KeyRow>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || StoreError::unavailable("the key store is shutting down");
        self.verifies.send((id, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Runs [`SPEND_SQL`] on the connections `verify` shares: whether one was left.
    async fn spend(&self, id: KeyId, period: Option<i64>) -> Result<bool, StoreError> {
        let client = self.readers.get(&self.pool).await?;
        let stmt = client.prepare_cached(SPEND_SQL).await.map_err(db_err)?;
        Ok(client
            .query_opt(&stmt, &[&id.as_str(), &period])
            .await
            .map_err(db_err)?
            .is_some())
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn bootstrap(
        &self,
        format: &TokenFormat,
        request: Bootstrap,
    ) -> Result<Bootstrapped, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let tenant = insert_tenant(&tx, &request.tenant).await?;
        let owner = insert_user(&tx, &tenant.id, &request.owner, Role::Owner).await?;
        let mut projects = Vec::new();
        for name in records::normalise(request.projects) {
            projects.push(insert_project(&tx, &tenant.id, &name).await?);
        }
        let prepared = records::prepare_key(
            format,
            records::bootstrap_key(&tenant.id, &owner.id, request.key_name, request.scopes),
        )?;
        let key = insert_key(&tx, prepared, "bootstrap", None).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Bootstrapped {
            tenant,
            owner,
            projects,
            key,
        })
    }

    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let tenant = insert_tenant(&tx, name).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(tenant)
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT id, name, created_at FROM tenants WHERE name = $1")
            .await
            .map_err(db_err)?;
        Ok(client
            .query_opt(&stmt, &[&name])
            .await
            .map_err(db_err)?
            .map(|r| Tenant {
                id: TenantId::new(r.get::<_, String>(0)),
                name: r.get(1),
                created_at: r.get(2),
            }))
    }

    async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let user = insert_user(&tx, tenant, name, role).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn create_project(&self, tenant: &TenantId, name: &str) -> Result<Project, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let project = insert_project(&tx, tenant, name).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(project)
    }

    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<Project>, StoreError> {
        let client = self.client().await?;
        tenant_exists(&client, tenant).await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, name, created_at FROM projects WHERE tenant_id = $1 ORDER BY name",
            )
            .await
            .map_err(db_err)?;
        Ok(client
            .query(&stmt, &[&tenant.as_str()])
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| Project {
                id: ProjectId::new(r.get::<_, String>(0)),
                tenant_id: tenant.clone(),
                name: r.get(1),
                created_at: r.get(2),
            })
            .collect())
    }

    async fn find_project(
        &self,
        tenant: &TenantId,
        project: &str,
    ) -> Result<Option<ProjectRef>, StoreError> {
        // On the request path: the shared, pipelined connections `verify` uses.
        let client = self.readers.get(&self.pool).await?;
        let stmt = client
            .prepare_cached(FIND_PROJECT_SQL)
            .await
            .map_err(db_err)?;
        Ok(client
            .query_opt(&stmt, &[&tenant.as_str(), &project])
            .await
            .map_err(db_err)?
            .map(|r| ProjectRef {
                id: ProjectId::new(r.get::<_, String>(0)),
                name: r.get(1),
            }))
    }

    async fn create_key(
        &self,
        format: &TokenFormat,
        request: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        let prepared = records::prepare_key(format, request)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let created = insert_key(&tx, prepared, actor, None).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(created)
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError> {
        let client = self.client().await?;
        get_key(&client, tenant, id, false, self.clock.now()).await
    }

    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let now = self.clock.now();
        let client = self.client().await?;
        tenant_exists(&client, tenant).await?;
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 ORDER BY k.seq DESC"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(db_err)?;
        client
            .query(&stmt, &[&tenant.as_str()])
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| key_from_row(r, now))
            .collect()
    }

    async fn revoke_key_for(
        &self,
        change: KeyChange<'_>,
        reason: Option<&RevokeReason>,
    ) -> Result<ApiKey, StoreError> {
        let KeyChange { tenant, id, .. } = change;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let stmt = tx
            .prepare_cached(
                "UPDATE api_keys SET revoked_at = $1, revoked_reason = $4 \
                 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
            )
            .await
            .map_err(db_err)?;
        let reason_text = reason.map(RevokeReason::as_str);
        let changed = tx
            .execute(
                &stmt,
                &[
                    &records::now(),
                    &id.as_str(),
                    &tenant.as_str(),
                    &reason_text,
                ],
            )
            .await
            .map_err(db_err)?;
        let key = get_key(&tx, tenant, id, false, self.clock.now()).await?;
        if changed == 1 {
            push_audit(&tx, &records::revoked_event(change, reason)).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(key)
    }

    async fn rotate_key(
        &self,
        format: &TokenFormat,
        change: KeyChange<'_>,
    ) -> Result<CreatedKey, StoreError> {
        let KeyChange { tenant, id, actor } = change;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        // Locked so a concurrent revoke cannot slip between the check and the insert.
        let old = get_key(&tx, tenant, id, true, self.clock.now()).await?;
        let prepared = records::prepare_rotation(format, &old)?;
        let rotated = records::rotated_event(change, prepared.token.id());
        let created = insert_key(&tx, prepared, actor, Some(&rotated)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(created)
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tenant_exists(&tx, &event.tenant_id).await?;
        push_audit(&tx, &event).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, at, actor, action, target, detail FROM audit_log \
                 WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .await
            .map_err(db_err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(client
            .query(&stmt, &[&tenant.as_str(), &limit])
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| AuditEvent {
                id: r.get(0),
                at: r.get(1),
                tenant_id: tenant.clone(),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl Verifier for PostgresStore {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let principal = verify_with(
            token,
            &*self.clock,
            |id| self.key_row(id),
            |id, period| self.spend(id, period),
        )
        .await?;
        if self.last_used.due(principal.key_id) {
            // Not awaited; a full queue drops the update.
            let _ = self.touch.try_send((principal.key_id, records::now()));
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verify statement is planned once per reader connection, not on every batch
    /// ([`READER_SETUP`]), and the setting stays on the readers.
    #[tokio::test]
    async fn batched_verifies_reuse_one_plan_and_the_pool_keeps_the_default() {
        let Some(url) = keygate_test::postgres_url() else {
            return;
        };
        let random = TenantId::random().unwrap();
        let schema = format!("kg_test_{}", random.as_str()[3..].to_ascii_lowercase());
        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        let token = store
            .bootstrap(
                &TokenFormat::default(),
                Bootstrap::new("acme", "alice", &["shop"], vec!["keys:admin".into()], "k"),
            )
            .await
            .unwrap()
            .key
            .token;
        // One at a time: each verify is a batch of its own, so each is an execution.
        for _ in 0..12 {
            store.verify(token.expose()).await.unwrap();
        }
        // Every reader in turn (`get` is round-robin): what each planned so far.
        let (mut generic, mut custom) = (0, 0);
        for _ in 0..store.readers.slots.len() {
            let reader = store.readers.get(&store.pool).await.unwrap();
            let plans = reader
                .query_opt(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
                     WHERE statement = $1",
                    &[&VERIFY_SQL],
                )
                .await
                .unwrap();
            if let Some(plans) = plans {
                generic += plans.get::<_, i64>(0);
                custom += plans.get::<_, i64>(1);
            }
        }
        assert_eq!(custom, 0, "planned for each batch");
        assert_eq!(generic, 12, "one execution of the generic plan per verify");

        let pooled = store.pool.get().await.unwrap();
        let mode: String = pooled
            .query_one("SHOW plan_cache_mode", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode, "auto", "the readers' setting reached the pool");
        pooled
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }
}
