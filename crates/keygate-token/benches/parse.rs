//! Parse + checksum of a token, beside its floor: a bare CRC32 of the same bytes.
#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keygate_token::{KeyKind, Token, TokenFormat};

fn parse(c: &mut Criterion) {
    let token = TokenFormat::default()
        .generate(KeyKind::User)
        .expect("the OS provides randomness");
    let raw = token.expose().to_owned();
    let mut g = c.benchmark_group("token");
    g.bench_function("parse+checksum", |b| {
        b.iter(|| Token::parse(black_box(&raw)).expect("valid token"));
    });
    g.bench_function("baseline: crc32 only", |b| {
        b.iter(|| crc32fast::hash(black_box(raw.as_bytes())));
    });
    g.bench_function("generate", |b| {
        b.iter(|| TokenFormat::default().generate(black_box(KeyKind::Tenant)));
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
