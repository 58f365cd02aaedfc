//! Verification cost per store, each beside its baselines: a bare SHA-256 of the same
//! token, a bare `Token::parse`, an empty async call through the same harness
//! (`MemoryStore::ping`: the `async_trait` box and the await), and a bare `SELECT`
//! by primary key on the same database.
//!
//! Async calls run with criterion's `to_async` on a current-thread runtime: one
//! `block_on` around the whole timing loop, not one per call, so the harness adds
//! only what `baseline_empty_async_call` shows.
//!
//! Targets: MemoryStore ≤ 500 ns/op, SqliteStore ≤ 10 µs/op. PostgresStore runs when
//! KEYGATE_TEST_POSTGRES is set (build with `--features postgres`) and reports
//! verifications per second with 16 concurrent tasks, for a key without a usage limit
//! and for a usage-limited one.

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keygate_keys::{Bootstrap, KeyStore, MemoryStore, Token, TokenFormat, TokenHash, Verifier};

fn bootstrap(rt: &tokio::runtime::Runtime, store: &dyn KeyStore) -> String {
    rt.block_on(store.bootstrap(
        &TokenFormat::default(),
        Bootstrap::new(
            "bench",
            "alice",
            &["shop"],
            vec!["keys:admin".to_owned(), "services:read".to_owned()],
            "bench",
        ),
    ))
    .map(|b| b.key.token.expose().to_owned())
    .unwrap_or_else(|e| panic!("bootstrap: {e}"))
}

/// A second tenant's key limited to more requests than any run makes, refilled
/// daily: every verification spends one, none is refused.
#[cfg(feature = "postgres")]
fn limited_key(rt: &tokio::runtime::Runtime, store: &dyn KeyStore) -> String {
    use keygate_keys::{KeyKind, NewKey, Refill, RefillInterval};
    const PLENTY: u64 = 1 << 60;
    rt.block_on(async {
        let boot = store
            .bootstrap(
                &TokenFormat::default(),
                Bootstrap::new(
                    "limited",
                    "bob",
                    &[],
                    vec!["services:read".to_owned()],
                    "bench",
                ),
            )
            .await?;
        let request = NewKey {
            tenant_id: boot.tenant.id,
            kind: KeyKind::User,
            user_id: Some(boot.owner.id),
            name: "limited".to_owned(),
            scopes: vec!["services:read".to_owned()],
            projects: None,
            expires_at: None,
            remaining: Some(PLENTY),
            refill: Some(Refill::new(RefillInterval::Daily, PLENTY)),
        };
        store
            .create_key(&TokenFormat::default(), request, "bench")
            .await
    })
    .map(|k| k.token.expose().to_owned())
    .unwrap_or_else(|e| panic!("limited key: {e}"))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn memory(c: &mut Criterion) {
    let rt = current_thread();
    let store = MemoryStore::new();
    let token = bootstrap(&rt, &store);
    let mut g = c.benchmark_group("memory");
    g.bench_function("verify", |b| {
        b.to_async(&rt)
            .iter(|| async { store.verify(black_box(&token)).await.is_ok() });
    });
    g.bench_function("baseline_empty_async_call", |b| {
        b.to_async(&rt)
            .iter(|| async { store.ping().await.is_ok() });
    });
    g.bench_function("baseline_sha256", |b| {
        b.iter(|| TokenHash::of(black_box(&token)));
    });
    g.bench_function("baseline_token_parse", |b| {
        b.iter(|| Token::parse(black_box(&token)).is_ok());
    });
    g.finish();
}

#[cfg(feature = "sqlite")]
fn sqlite(c: &mut Criterion) {
    use keygate_keys::SqliteStore;
    let rt = current_thread();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(&path).unwrap_or_else(|e| panic!("open: {e}"));
    let token = bootstrap(&rt, &store);
    let id = token[token.len() - 48..token.len() - 36].to_owned();
    let conn = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("open: {e}"));
    let mut g = c.benchmark_group("sqlite");
    g.bench_function("verify", |b| {
        b.to_async(&rt)
            .iter(|| async { store.verify(black_box(&token)).await.is_ok() });
    });
    g.bench_function("baseline_sha256", |b| {
        b.iter(|| TokenHash::of(black_box(&token)));
    });
    // The same verification while another connection commits in a loop (WAL
    // appends and checkpoints): the inline read must not wait for the writer.
    // Prints the slowest single call seen, the figure that matters for blocking
    // an async worker.
    {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let conn =
                    rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("open: {e}"));
                let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = conn.execute(
                        "INSERT INTO audit_log (at, tenant_id, actor, action, target, detail) \
                         VALUES (0, 'bench', 'bench', 'bench', 'bench', '{}')",
                        [],
                    );
                }
            })
        };
        // (slowest, calls over 100 µs, calls) per measured function.
        let mut tails = [(std::time::Duration::ZERO, 0u64, 0u64); 2];
        let select = |conn: &rusqlite::Connection| {
            let mut stmt = conn
                .prepare_cached("SELECT hash FROM api_keys WHERE id = ?1")
                .unwrap_or_else(|e| panic!("prepare: {e}"));
            stmt.query_row([black_box(&id)], |r| r.get::<_, Vec<u8>>(0))
                .unwrap_or_else(|e| panic!("select: {e}"))
        };
        for (i, name) in [
            "verify_beside_a_busy_writer",
            "baseline_select_beside_a_busy_writer",
        ]
        .into_iter()
        .enumerate()
        {
            let tail = &mut tails[i];
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = std::time::Duration::ZERO;
                        for _ in 0..iters {
                            let start = std::time::Instant::now();
                            if i == 0 {
                                black_box(store.verify(black_box(&token)).await.is_ok());
                            } else {
                                black_box(select(&conn));
                            }
                            let took = start.elapsed();
                            tail.0 = tail.0.max(took);
                            tail.1 += u64::from(took > std::time::Duration::from_micros(100));
                            tail.2 += 1;
                            total += took;
                        }
                        total
                    })
                });
            });
            if tail.2 == 0 {
                continue;
            }
            eprintln!(
                "sqlite/{name}: slowest single call {:?}, {} of {} calls over 100 µs",
                tail.0, tail.1, tail.2
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = writer.join();
    }
    g.bench_function("baseline_select_by_pk_same_thread", |b| {
        b.iter(|| {
            let mut stmt = conn
                .prepare_cached("SELECT hash FROM api_keys WHERE id = ?1")
                .unwrap_or_else(|e| panic!("prepare: {e}"));
            stmt.query_row([black_box(&id)], |r| r.get::<_, Vec<u8>>(0))
                .unwrap_or_else(|e| panic!("select: {e}"))
        });
    });
    g.finish();
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_: &mut Criterion) {}

/// Makes `iters` calls of `call` spread over `n` tasks on the current runtime, and
/// how long they took; a panicking call fails the bench.
#[cfg(feature = "postgres")]
async fn spread<F, Fut>(n: u64, iters: u64, call: F) -> std::time::Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..iters.div_ceil(n) {
                call().await;
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    start.elapsed().max(std::time::Duration::from_nanos(1))
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    use keygate_keys::PostgresStore;
    use std::sync::Arc;
    const TASKS: u64 = 16;
    let Ok(url) = std::env::var("KEYGATE_TEST_POSTGRES") else {
        eprintln!("note: KEYGATE_TEST_POSTGRES is unset; skipping the PostgreSQL bench");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let schema = format!("kg_bench_{}", std::process::id());
    let store = Arc::new(
        rt.block_on(PostgresStore::connect_with_schema(&url, &schema))
            .unwrap_or_else(|e| panic!("connect: {e}")),
    );
    let token = Arc::new(bootstrap(&rt, &*store));
    let limited = Arc::new(limited_key(&rt, &*store));
    let id = Arc::new(token[token.len() - 48..token.len() - 36].to_owned());
    let mut g = c.benchmark_group("postgres_16_tasks");
    g.throughput(criterion::Throughput::Elements(1));
    // The bench's own key (no limit: one read, no write), then a usage-limited key
    // with a daily refill (each verify spends one), by 16 tasks (which queue on the
    // row's lock) and by one task alone (the latency of one verify, round trips and
    // commit).
    for (name, token, n) in [
        ("verify", &token, TASKS),
        ("verify_limited", &limited, TASKS),
        ("verify_limited_one_task", &limited, 1),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (store, token) = (store.clone(), token.clone());
                rt.block_on(spread(n, iters, move || {
                    let (store, token) = (store.clone(), token.clone());
                    async move { assert!(store.verify(black_box(&token)).await.is_ok()) }
                }))
            });
        });
    }
    g.bench_function("baseline_select_by_pk_same_pool", |b| {
        b.iter_custom(|iters| {
            let (store, id) = (store.clone(), id.clone());
            rt.block_on(spread(TASKS, iters, move || {
                let (store, id) = (store.clone(), id.clone());
                async move {
                    let Ok(client) = store.pool().get().await else {
                        return;
                    };
                    let Ok(stmt) = client
                        .prepare_cached("SELECT hash FROM api_keys WHERE id = $1")
                        .await
                    else {
                        return;
                    };
                    black_box(client.query_opt(&stmt, &[&id.as_str()]).await.is_ok());
                }
            }))
        });
    });
    g.finish();
    rt.block_on(async {
        if let Ok(client) = store.pool().get().await {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await;
        }
    });
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {}

criterion_group!(benches, memory, sqlite, postgres);
criterion_main!(benches);
