//! The conformance suite on [`SqliteStore`], plus what only a file can show.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use keygate_keys::{KeyId, KeyStore, SqliteStore};
use rusqlite::Connection;
use time::OffsetDateTime;

use crate::conformance::{self, Harness, Hooks};

struct SqliteHooks {
    _dir: tempfile::TempDir,
    path: PathBuf,
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
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    Some(Harness {
        store,
        hooks: Box::new(SqliteHooks { _dir: dir, path }),
    })
}

crate::conformance_tests!(make);

#[tokio::test]
async fn in_memory_store_passes_the_basics() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert!(store.path().is_none());
    let s = conformance::setup(&store, "acme").await;
    let p = store.verify(&s.owner_token).await.unwrap();
    assert_eq!(p.tenant.name, "acme");
}

#[tokio::test]
async fn reopen_keeps_everything_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let token = {
        let store = SqliteStore::open(&path).unwrap();
        conformance::setup(&store, "acme").await.owner_token
    };
    let store = SqliteStore::open(&path).unwrap();
    store.verify(&token).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    let versions: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 1);
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
