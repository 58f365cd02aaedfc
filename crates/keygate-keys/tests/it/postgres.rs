//! The conformance suite on [`PostgresStore`], each test in a fresh schema.

use std::sync::Arc;

use async_trait::async_trait;
use keygate_keys::{KeyId, KeyStore, PostgresStore, Verifier};
use time::OffsetDateTime;

use crate::conformance::{self, Harness, Hooks};

/// The test database URL, or `None` (with a note) when unset; panics under CI.
pub(crate) use keygate_test::postgres_url as url;

/// A fresh random schema name.
pub(crate) fn schema() -> String {
    let random = keygate_keys::TenantId::random().unwrap();
    format!("kg_test_{}", random.as_str()[3..].to_ascii_lowercase())
}

/// The test database URL and a fresh schema name in it, or `None` as [`url`] says.
fn db() -> Option<(String, String)> {
    Some((url()?, schema()))
}

struct PgHooks {
    store: Arc<PostgresStore>,
    url: String,
    schema: String,
}

impl Drop for PgHooks {
    /// Drops the test's schema, so runs do not pile schemas up in the test database.
    /// On a fresh connection in a thread of its own: the test's runtime is finishing.
    fn drop(&mut self) {
        drop_schema(&self.url, &self.schema);
    }
}

/// Drops `schema` on a fresh connection in a thread of its own (callable from `Drop`
/// while a test's runtime is finishing); a failure is only noted.
fn drop_schema(url: &str, schema: &str) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let url = url.to_owned();
    let dropped = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            client.batch_execute(&sql).await
        })
    })
    .join();
    if !matches!(dropped, Ok(Ok(()))) {
        eprintln!("note: could not drop test schema {schema}");
    }
}

#[async_trait]
impl Hooks for PgHooks {
    async fn set_expires_at(&self, id: &KeyId, at: OffsetDateTime) {
        let client = self.store.pool().get().await.unwrap();
        let n = client
            .execute(
                "UPDATE api_keys SET expires_at = $1 WHERE id = $2",
                &[&at, &id.as_str()],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    async fn dump(&self) -> Option<String> {
        let client = self.store.pool().get().await.unwrap();
        let tables = client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                &[&self.schema],
            )
            .await
            .unwrap();
        let mut out = String::new();
        for t in tables {
            let name: String = t.get(0);
            // Every row as JSON text; bytea shows as hex there.
            let rows = client
                .query(
                    &format!("SELECT row_to_json(x)::text FROM \"{name}\" x"),
                    &[],
                )
                .await
                .unwrap();
            for r in rows {
                out.push_str(&r.get::<_, String>(0));
                out.push('\n');
            }
        }
        assert!(!out.is_empty());
        Some(out)
    }

    async fn write_mark(&self, id: &KeyId) -> String {
        // The row version's transaction id: a new one after any UPDATE of the row.
        let client = self.store.pool().get().await.unwrap();
        let row = client
            .query_one(
                "SELECT xmin::text FROM api_keys WHERE id = $1",
                &[&id.as_str()],
            )
            .await
            .unwrap();
        row.get(0)
    }
}

async fn make() -> Option<Harness> {
    let (url, schema) = db()?;
    let clock = keygate_test::ManualClock::new();
    let store = Arc::new(
        PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap()
            .with_clock(clock.clone()),
    );
    Some(Harness {
        store: store.clone(),
        hooks: Box::new(PgHooks { store, url, schema }),
        clock,
    })
}

crate::conformance_tests!(make);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_sharing_a_database_spend_a_usage_limit_exactly_once_between_them() {
    let Some((url, schema)) = db() else { return };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(
            PostgresStore::connect_with_schema(&url, &schema)
                .await
                .unwrap(),
        ));
    }
    let s = conformance::setup(&*stores[0], "acme").await;
    let request = keygate_keys::NewKey {
        remaining: Some(10),
        ..conformance::user_key(&s, &["a"], None)
    };
    let key = stores[0]
        .create_key(&conformance::format(), request, "u")
        .await
        .unwrap();
    let token = Arc::new(key.token.expose().to_owned());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (store, token) = (stores[i % stores.len()].clone(), token.clone());
        tasks.push(tokio::spawn(
            async move { store.verify(&token).await.is_ok() },
        ));
    }
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 10, "four servers, one budget");
    let left = stores[3].get_key(&s.tenant, &key.key.id).await.unwrap();
    assert_eq!(left.remaining, Some(0));
    drop(stores);
    drop_schema(&url, &schema);
}

#[tokio::test]
async fn a_database_from_before_usage_limits_migrates_and_its_keys_stay_unlimited() {
    let Some((url, schema)) = db() else { return };
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap();
    let s = conformance::setup(&store, "acme").await;
    // Back to schema version 2: the columns the third migration adds are gone.
    let client = store.pool().get().await.unwrap();
    client
        .batch_execute(
            "ALTER TABLE api_keys DROP COLUMN remaining, DROP COLUMN refill_seconds, \
             DROP COLUMN refill_amount, DROP COLUMN refill_period; \
             DELETE FROM schema_version WHERE version = 3",
        )
        .await
        .unwrap();
    drop(client);
    drop(store);
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap();
    let p = store.verify(&s.owner_token).await.unwrap();
    let key = store.get_key(&s.tenant, &p.key_id).await.unwrap();
    assert_eq!((key.remaining, key.refill), (None, None));
    drop(store);
    drop_schema(&url, &schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_processes_may_migrate_at_once() {
    let Some((url, schema)) = db() else { return };
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, schema) = (url.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            PostgresStore::connect_with_schema(&url, &schema)
                .await
                .unwrap()
        }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap());
    }
    let s = conformance::setup(&stores[0], "acme").await;
    for store in &stores {
        store.verify(&s.owner_token).await.unwrap();
    }
    let client = stores[0].pool().get().await.unwrap();
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "one row per migration, each applied once");
    drop(stores);
    drop_schema(&url, &schema);
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    let Some(url) = url() else { return };
    let err = PostgresStore::connect_with_schema(&url, "x; DROP TABLE y")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("schema name"), "{err}");
}

/// Verification shares a few connections among concurrent callers (pipelined):
/// many verifies at once all succeed, a revocation shows on the very next one, and a
/// shared connection whose backend is terminated is replaced.
/// A store on `connect` (the test database's `url`, perhaps with more parameters) in
/// `schema`, and the hooks that drop the schema when the test ends.
async fn store_in(connect: &str, url: &str, schema: &str) -> (Arc<PostgresStore>, PgHooks) {
    let store = Arc::new(
        PostgresStore::connect_with_schema(connect, schema)
            .await
            .unwrap(),
    );
    let hooks = PgHooks {
        store: store.clone(),
        url: url.to_owned(),
        schema: schema.to_owned(),
    };
    (store, hooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_verify_connections_pipeline_and_recover() {
    let Some((url, schema)) = db() else { return };
    // Named after the schema, so that only this test's backends are terminated below.
    let sep = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{sep}application_name={schema}");
    let (store, hooks) = store_in(&named, &url, &schema).await;
    let s = conformance::setup(store.as_ref(), "acme").await;
    let other = store
        .create_key(&conformance::format(), conformance::tenant_key(&s), "test")
        .await
        .unwrap();
    let other_token = other.token.expose().to_owned();

    // 256 verifies in flight at once, half of each key.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..256 {
        let store = store.clone();
        let token = if i % 2 == 0 {
            s.owner_token.clone()
        } else {
            other_token.clone()
        };
        tasks.spawn(async move { store.verify(&token).await.map(|p| p.key_id) });
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        seen.insert(result.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 2, "both keys verified");

    // Revocation is seen by the next verify, on the same shared connections.
    store
        .revoke_key(&s.tenant, &other.key.id, "test")
        .await
        .unwrap();
    assert!(matches!(
        store.verify(&other_token).await,
        Err(keygate_keys::VerifyError::Revoked)
    ));

    // Terminate every backend of this store: the shared connections die with them,
    // and verification recovers within a few attempts.
    let killed = keygate_test::terminate_backends(&url, &schema).await;
    assert!(killed > 0, "the shared verify connection has a backend");
    let mut recovered = false;
    for _ in 0..50 {
        if store.verify(&s.owner_token).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        recovered,
        "verification did not recover after its connection died"
    );
    drop(hooks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_verifies_each_get_their_own_key_and_see_a_revocation_at_once() {
    let Some((url, schema)) = db() else { return };
    let (store, hooks) = store_in(&url, &url, &schema).await;
    let s = conformance::setup(store.as_ref(), "acme").await;
    let mut keys = Vec::new();
    for i in 0..24 {
        let mut new = conformance::tenant_key(&s);
        new.name = format!("k{i}");
        let created = store
            .create_key(&conformance::format(), new, "test")
            .await
            .unwrap();
        keys.push((created.key.id, created.token.expose().to_owned()));
    }

    // 240 verifies in flight at once, ten of each key: batches hold many keys, and
    // every verify must come back with its own key's principal, never another's.
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..10 {
        for (id, token) in &keys {
            let (store, id, token) = (store.clone(), *id, token.clone());
            tasks.spawn(async move {
                let principal = store.verify(&token).await.unwrap();
                assert_eq!(principal.key_id, id, "round {round}");
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    // Revoked under load: every verify that starts once the revocation returned is
    // refused, while verifies of the other keys keep the batches full.
    let (victim, victim_token) = keys[0].clone();
    let load = {
        let store = store.clone();
        let tokens: Vec<String> = keys[1..].iter().map(|(_, t)| t.clone()).collect();
        tokio::spawn(async move {
            for token in tokens.iter().cycle().take(2_000) {
                store.verify(token).await.unwrap();
            }
        })
    };
    store.revoke_key(&s.tenant, &victim, "test").await.unwrap();
    let mut refused = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (store, token) = (store.clone(), victim_token.clone());
        refused.spawn(async move { store.verify(&token).await });
    }
    while let Some(result) = refused.join_next().await {
        assert!(matches!(
            result.unwrap(),
            Err(keygate_keys::VerifyError::Revoked)
        ));
    }
    load.await.unwrap();
    drop(hooks);
}
