//! Timing side channels of key verification.
//!
//! No test here asserts on time (that would be flaky). Instead:
//! - `well_formed_tokens_all_reach_the_store` proves structurally that an unknown id, a
//!   known id with a wrong secret, a revoked key and the right key all take the same
//!   path up to the hash comparison: each needs the row look-up (with the store down
//!   every one of them is 503, not 401), while a token with a bad checksum never
//!   reaches the store (401 even with the store down).
//! - `measure_verification_timing` (ignored; run with `--ignored --nocapture`) samples
//!   verification times for tokens whose secret is wrong in its first vs its last
//!   character, unknown ids, revoked and right keys, and prints medians and Welch's t.
//!   SECURITY.md records a run.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use http::{Request, StatusCode};
use keygate_keys::{KeyKind, KeyStore, MemoryStore, Principal, TokenFormat, Verifier, VerifyError};
use keygate_token::{CHECKSUM_LEN, ID_LEN, SECRET_LEN};

use keygate_test::{PgSchema, postgres_url, with_checksum};

use crate::util::demo;

/// `token` with the character at `at` (an offset into the body: id then secret)
/// replaced by another base62 character, with a valid checksum.
fn altered(token: &str, at: usize) -> String {
    altered_to(token, at, b'A')
}

/// `token` with the character at `at` set to `to` (or, if it already is `to`, to the
/// next base62 character), with a valid checksum.
fn altered_to(token: &str, at: usize, to: u8) -> String {
    let body_start = token.len() - (ID_LEN + SECRET_LEN + CHECKSUM_LEN);
    let mut signed = token.as_bytes()[..token.len() - CHECKSUM_LEN].to_vec();
    let i = body_start + at;
    signed[i] = if signed[i] == to { to + 1 } else { to };
    with_checksum(std::str::from_utf8(&signed).unwrap())
}

fn secret_first(token: &str) -> String {
    altered(token, ID_LEN)
}

fn secret_last(token: &str) -> String {
    altered(token, ID_LEN + SECRET_LEN - 1)
}

fn unknown_id(token: &str) -> String {
    altered(token, 0)
}

/// A new tenant `t` in `store` with two keys: one as issued, one revoked.
async fn right_and_revoked(store: &dyn KeyStore) -> (String, String) {
    let request =
        keygate_keys::Bootstrap::new("t", "o", &[], vec!["services:read".to_owned()], "k");
    let boot = store
        .bootstrap(&TokenFormat::default(), request)
        .await
        .unwrap();
    let right = new_key(store, &boot.tenant.id).await;
    let revoked = new_key(store, &boot.tenant.id).await;
    let id = keygate_token::Token::parse(&revoked).unwrap().id();
    store
        .revoke_key(&boot.tenant.id, &id, "test")
        .await
        .unwrap();
    (right, revoked)
}

async fn new_key(store: &dyn KeyStore, tenant: &keygate_keys::TenantId) -> String {
    let scopes = ["services:read"];
    crate::util::store_key(store, tenant, KeyKind::Tenant, None, "timed", &scopes).await
}

#[test]
fn altered_tokens_still_parse_and_differ_where_intended() {
    let token = TokenFormat::default().generate(KeyKind::User).unwrap();
    let raw = token.expose();
    for (t, same_id) in [
        (secret_first(raw), true),
        (secret_last(raw), true),
        (unknown_id(raw), false),
    ] {
        let parsed = keygate_token::Token::parse(&t).expect("checksum recomputed");
        assert_ne!(t, raw);
        assert_eq!(parsed.id() == token.id(), same_id);
    }
}

/// With the store unreachable, every well-formed token answers 503 (each needed the
/// row look-up; no outcome is decided from the id or the secret before it), and a
/// malformed one answers 401 (decided without the store, which is not secret).
#[tokio::test]
async fn well_formed_tokens_all_reach_the_store() {
    let Some(base) = postgres_url() else { return };
    let schema = PgSchema::create(&base, "kgt").await;
    let store = keygate_keys::PostgresStore::connect_with_schema(&base, &schema.name)
        .await
        .unwrap();
    let (right, revoked) = right_and_revoked(&store).await;
    // While the store answers, unknown id and wrong secret are indistinguishable.
    for t in [
        unknown_id(&right),
        secret_first(&right),
        secret_last(&right),
    ] {
        assert!(matches!(store.verify(&t).await, Err(VerifyError::NotFound)));
    }
    assert!(matches!(
        store.verify(&revoked).await,
        Err(VerifyError::Revoked)
    ));
    store.verify(&right).await.unwrap();

    let pool = store.pool().clone();
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let mut config = keygate_server::Config::new(keygate_server::Upstream::in_process(
        keygate_demo::Platform::new(),
    ));
    config.database = "sqlite://ignored".parse().unwrap();
    let app = keygate_server::App::with_store(config, store.clone())
        .await
        .unwrap()
        .router();
    pool.close();
    // The store is now down.
    let cases = [
        (
            "unknown id",
            unknown_id(&right),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "wrong first secret character",
            secret_first(&right),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "wrong last secret character",
            secret_last(&right),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        ("revoked", revoked.clone(), StatusCode::SERVICE_UNAVAILABLE),
        ("right", right.clone(), StatusCode::SERVICE_UNAVAILABLE),
        (
            "bad checksum",
            format!("{}0", &right[..right.len() - 1]),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (what, token, want) in cases {
        let req = Request::get("/api/v1/token")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
        assert_eq!(resp.status(), want, "{what}");
    }
}

/// Median, mean and variance of nanosecond samples, the top 1 % dropped (scheduler
/// noise dominates the tail on a shared machine).
fn stats(samples: &mut [u64]) -> (f64, f64, f64, usize) {
    samples.sort_unstable();
    let keep = samples.len() - samples.len() / 100;
    let s = &samples[..keep];
    let n = s.len() as f64;
    let mean = s.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = s.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (s[s.len() / 2] as f64, mean, var, s.len())
}

fn welch_t(a: (f64, f64, f64, usize), b: (f64, f64, f64, usize)) -> f64 {
    let (_, ma, va, na) = a;
    let (_, mb, vb, nb) = b;
    (ma - mb) / (va / na as f64 + vb / nb as f64).sqrt()
}

async fn measure(label: &str, store: &dyn KeyStore, right: &str, revoked: &str, rounds: usize) {
    let classes: [(&str, String); 6] = [
        ("wrong first secret char", secret_first(right)),
        ("wrong last secret char", secret_last(right)),
        ("wrong first, other value", altered_to(right, ID_LEN, b'C')),
        ("unknown id", unknown_id(right)),
        ("revoked", revoked.to_owned()),
        ("right key", right.to_owned()),
    ];
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(rounds); classes.len()];
    // Warm up, then interleave the classes so drift hits all of them alike.
    for (_, t) in &classes {
        for _ in 0..1000 {
            let _ = store.verify(t).await;
        }
    }
    let mut order: Vec<usize> = (0..classes.len()).collect();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..rounds {
        // A fresh random order every round (xorshift + Fisher-Yates): no class always
        // runs first or right after another.
        for j in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(j, usize::try_from(rng % (j as u64 + 1)).unwrap());
        }
        for &i in &order {
            let t = &classes[i].1;
            let started = Instant::now();
            let out: Result<Principal, VerifyError> = store.verify(t).await;
            let took = started.elapsed();
            std::hint::black_box(out.is_ok());
            samples[i].push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    let s: Vec<_> = samples.iter_mut().map(|v| stats(v)).collect();
    println!("\n{label}: {rounds} samples per class (top 1% dropped)");
    println!(
        "{:<26} {:>10} {:>10} {:>12}",
        "class", "median ns", "mean ns", "stddev ns"
    );
    for ((name, _), st) in classes.iter().zip(&s) {
        println!(
            "{name:<26} {:>10.0} {:>10.1} {:>12.1}",
            st.0,
            st.1,
            st.2.sqrt()
        );
    }
    let t = |a: usize, b: usize| welch_t(s[a], s[b]);
    println!("Welch t, first vs last secret char: {:+.2}", t(0, 1));
    println!(
        "Welch t, first vs first with another value (noise floor): {:+.2}",
        t(0, 2)
    );
    println!(
        "Welch t, unknown id vs wrong secret (first): {:+.2}",
        t(3, 0)
    );
    println!("Welch t, revoked vs wrong secret (first): {:+.2}", t(4, 0));
    println!(
        "Welch t, right key vs wrong secret (first): {:+.2}",
        t(5, 0)
    );
}

/// Prints the timing distributions of verification (see the module docs). Ignored by
/// default: it is a measurement, not a test.
#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture and read the numbers"]
async fn measure_verification_timing() {
    let rounds: usize = std::env::var("KEYGATE_TIMING_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let h = demo().await;
    let memory: &MemoryStore = &h.store;
    let right = new_key(memory, &h.tenant).await;
    let revoked = new_key(memory, &h.tenant).await;
    let id = keygate_token::Token::parse(&revoked).unwrap().id();
    memory.revoke_key(&h.tenant, &id, "test").await.unwrap();
    measure("MemoryStore::verify", memory, &right, &revoked, rounds).await;

    let dir = tempfile::tempdir().unwrap();
    let sqlite = keygate_keys::SqliteStore::open(dir.path().join("t.db")).unwrap();
    let (right, revoked) = right_and_revoked(&sqlite).await;
    measure("SqliteStore::verify", &sqlite, &right, &revoked, rounds / 4).await;
}
