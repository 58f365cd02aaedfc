//! The conformance suite on [`SqliteStore`], plus what only a file can show.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use keygate_keys::{KeyId, SqliteStore, Verifier};
use rusqlite::Connection;
use time::OffsetDateTime;

use crate::conformance::{self, Harness, Hooks};

struct SqliteHooks {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Asked for `PRAGMA data_version`, which changes when another connection commits.
    watcher: std::sync::Mutex<Connection>,
}

#[async_trait]
impl Hooks for SqliteHooks {
    async fn set_expires_at(&self, id: &KeyId, at: OffsetDateTime) {
        let conn = Connection::open(&self.path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let micros = i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap();
        let n = conn
            .execute(
                "UPDATE api_keys SET expires_at = ?1 WHERE id = ?2",
                rusqlite::params![micros, id.as_str()],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    async fn dump(&self) -> Option<String> {
        Some(dump(&self.path))
    }

    async fn write_mark(&self, _id: &KeyId) -> String {
        let conn = self.watcher.lock().unwrap();
        let version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap();
        version.to_string()
    }
}

/// Every value of every table, as text (blobs as hex and as lossy text).
pub(crate) fn dump(path: &std::path::Path) -> String {
    let conn = Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                use rusqlite::types::ValueRef;
                match row.get_ref(i).unwrap() {
                    ValueRef::Null => out.push_str("NULL"),
                    ValueRef::Integer(v) => out.push_str(&v.to_string()),
                    ValueRef::Real(v) => out.push_str(&v.to_string()),
                    ValueRef::Text(t) => out.push_str(&String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => {
                        out.push_str(&String::from_utf8_lossy(b));
                        for byte in b {
                            out.push_str(&format!("{byte:02x}"));
                        }
                    }
                }
                out.push('|');
            }
            out.push('\n');
        }
    }
    out
}

async fn make() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    let clock = keygate_test::ManualClock::new();
    let store = Arc::new(SqliteStore::open(&path).unwrap().with_clock(clock.clone()));
    let watcher = std::sync::Mutex::new(Connection::open(&path).unwrap());
    Some(Harness {
        store,
        hooks: Box::new(SqliteHooks {
            _dir: dir,
            path,
            watcher,
        }),
        clock,
    })
}

crate::conformance_tests!(make);

/// A database file in a fresh directory with tenant `acme` set up, its store closed
/// again: the directory (keep it alive), the file and the owner's token.
async fn closed_database() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = SqliteStore::open(&path).unwrap();
    let token = conformance::setup(&store, "acme").await.owner_token;
    drop(store);
    (dir, path, token)
}

#[tokio::test]
async fn in_memory_store_passes_the_basics() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(store.path().is_none());
    let s = conformance::setup(&store, "acme").await;
    let p = store.verify(&s.owner_token).await.unwrap();
    assert_eq!(p.tenant.name, "acme");
}

#[tokio::test]
async fn a_database_from_before_usage_limits_migrates_and_its_keys_stay_unlimited() {
    let (_dir, path, token) = closed_database().await;
    // Back to schema version 2: the columns the third migration adds are gone.
    let conn = Connection::open(&path).unwrap();
    for column in [
        "remaining",
        "refill_seconds",
        "refill_amount",
        "refill_period",
    ] {
        conn.execute(&format!("ALTER TABLE api_keys DROP COLUMN {column}"), [])
            .unwrap();
    }
    conn.execute("DELETE FROM schema_version WHERE version = 3", [])
        .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let p = store.verify(&token).await.unwrap();
    let key = keygate_keys::KeyStore::get_key(&store, &p.tenant.id, &p.key_id)
        .await
        .unwrap();
    assert_eq!((key.remaining, key.refill), (None, None));
    let s = keygate_keys::KeyStore::list_keys(&store, &p.tenant.id)
        .await
        .unwrap();
    assert_eq!(s.len(), 1);
}

#[tokio::test]
async fn reopen_keeps_everything_and_migrations_are_idempotent() {
    let (_dir, path, token) = closed_database().await;
    let store = SqliteStore::open(&path).unwrap();
    store.verify(&token).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    let versions: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 3, "one row per migration");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Verification reads on the calling task while another connection holds an open
/// write transaction: it neither waits for that writer nor sees its uncommitted
/// change, and sees the change on the very next call once committed.
#[tokio::test]
async fn verify_reads_beside_an_open_write_and_sees_the_commit_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = SqliteStore::open(&path).unwrap();
    let setup = conformance::setup(&store, "acme").await;
    let principal = store.verify(&setup.owner_token).await.unwrap();
    let mut conn = Connection::open(&path).unwrap();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    tx.execute(
        "UPDATE api_keys SET revoked_at = 1 WHERE id = ?1",
        [principal.key_id.as_str()],
    )
    .unwrap();
    // The writer holds the write lock: readers still answer, from the last commit.
    for _ in 0..3 {
        store.verify(&setup.owner_token).await.unwrap();
    }
    tx.commit().unwrap();
    let err = store.verify(&setup.owner_token).await.unwrap_err();
    assert!(matches!(err, keygate_keys::VerifyError::Revoked), "{err:?}");
}

/// Many concurrent verifications (more than there are inline connections) all
/// answer, some through the reader threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_verifications_fall_back_to_the_reader_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("k.db")).unwrap());
    let token = Arc::new(conformance::setup(&*store, "acme").await.owner_token);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, token) = (store.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    store.verify(&token).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
