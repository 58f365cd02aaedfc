//! Cost of one rate-limit check: in-process (against a bare governor limiter and a
//! HashMap lookup) and, with `KEYGATE_TEST_REDIS` set, one Redis round trip (against a
//! bare PING on the same connection).
#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use std::collections::HashMap;
use std::hint::black_box;
use std::num::NonZeroU32;

use criterion::{Criterion, criterion_group, criterion_main};
use keygate_limits::{Limits, MemoryLimiter, Quota};

fn big_limits() -> Limits {
    // Never limited during the bench: we measure the allowed path.
    let n = NonZeroU32::new(u32::MAX).expect("not zero");
    Limits::new(Quota::from_rate(n), Quota::from_rate(n))
}

fn in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("in_process");
    let limiter = MemoryLimiter::new(big_limits());
    for i in 0..10_000 {
        let _ = limiter.check_now(&format!("key{i}"), &format!("tenant{}", i % 100));
    }
    group.bench_function("memory_limiter_check", |b| {
        b.iter(|| limiter.check_now(black_box("key42"), black_box("tenant42")));
    });

    let n = NonZeroU32::new(u32::MAX).expect("not zero");
    let direct = governor::RateLimiter::direct(governor::Quota::per_second(n));
    group.bench_function("baseline_governor_direct_check", |b| {
        b.iter(|| black_box(&direct).check());
    });

    let map: HashMap<String, u64> = (0..10_000).map(|i| (format!("key{i}"), i)).collect();
    group.bench_function("baseline_hashmap_lookup", |b| {
        b.iter(|| map.get(black_box("key42")).copied());
    });
    group.finish();
}

#[cfg(feature = "redis")]
fn redis_round_trip(c: &mut Criterion) {
    let Ok(url) = std::env::var("KEYGATE_TEST_REDIS") else {
        eprintln!("note: KEYGATE_TEST_REDIS unset, skipping the Redis benchmarks");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let limiter = rt.block_on(async {
        keygate_limits::RedisLimiter::new(
            &url,
            big_limits(),
            keygate_limits::RedisConfig::new().prefix("keygate-bench:"),
        )
        .expect("valid KEYGATE_TEST_REDIS")
    });
    let mut group = c.benchmark_group("redis");
    group.bench_function("redis_limiter_check", |b| {
        b.iter(|| {
            rt.block_on(keygate_limits::RateLimiter::check(
                &limiter, "key42", "tenant42",
            ))
            .expect("redis reachable")
        });
    });
    let mut conn = limiter.connection();
    group.bench_function("baseline_ping", |b| {
        b.iter(|| {
            rt.block_on(redis::cmd("PING").query_async::<String>(&mut conn))
                .expect("redis reachable")
        });
    });
    group.finish();
}

#[cfg(not(feature = "redis"))]
fn redis_round_trip(_c: &mut Criterion) {
    eprintln!("note: built without the `redis` feature, skipping the Redis benchmarks");
}

criterion_group!(benches, in_process, redis_round_trip);
criterion_main!(benches);
