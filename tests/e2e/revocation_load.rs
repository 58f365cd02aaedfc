//! Revocation under load across two `keygated` instances sharing PostgreSQL: 16 clients
//! hammer both instances with several keys for a few seconds while keys are revoked at
//! random moments through either instance. No request sent after a revoke was
//! acknowledged may succeed with that key, and nothing but 200 and the expected 401s
//! may come back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use keygate_e2e::{
    KEY_REVOKED, Mcp, NO_RATE_LIMITS, PgSchema, Server, ServerOptions, hammer, postgres_url,
};
use serde_json::json;

const CLIENTS: usize = 16;
const KEYS: usize = 6;
const RUN_FOR: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revokes_at_random_moments_hold_on_both_instances() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let schema = PgSchema::create(&admin_url, "kg_e2e").await;
    let instance = || {
        let options = ServerOptions::demo().database(&schema.url);
        Server::start(options.args(&NO_RATE_LIMITS))
    };
    let a = instance();
    let owner = a.owner_key();
    let b = instance();
    let servers = [&a, &b];

    let mut keys = Vec::new();
    for i in 0..KEYS {
        let (id, key) = a
            .api(&owner)
            .new_key(json!({"name": format!("k{i}"), "kind":"tenant","scopes":["services:read"]}))
            .await;
        keys.push((id, key));
    }
    let urls = [a.url("/api/mcp"), b.url("/api/mcp")];
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let mcp = Mcp::new(&urls[c % 2], &keys[c % KEYS].1);
            (c % KEYS, hammer(c, mcp, start, RUN_FOR))
        })
        .collect();

    // Revoke all but one key at pseudo-random moments, alternating instances.
    let mut revoked_at: HashMap<usize, Instant> = HashMap::new();
    let mut seed = u64::from(std::process::id()) | 1;
    for k in 0..KEYS - 1 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(200 + seed % 700);
        tokio::time::sleep(wait).await;
        servers[k % 2].api(&owner).revoke(&keys[k].0).await;
        revoked_at.insert(k, Instant::now());
    }
    // (key index, sent at, status, body) of every request.
    let mut log = Vec::new();
    for (k, c) in clients {
        let answers = c.await.expect("a client task finishes");
        log.extend(
            answers
                .into_iter()
                .map(|(sent, status, body)| (k, sent, status, body)),
        );
    }

    let mut after = 0;
    let mut ok_before = 0;
    for (k, sent, status, body) in log.iter() {
        match (status, revoked_at.get(k)) {
            (200, Some(at)) => {
                assert!(
                    sent < at,
                    "key {k}: a request sent {:?} after the revoke was acknowledged succeeded",
                    sent.duration_since(*at)
                );
                ok_before += 1;
            }
            (200, None) => {}
            (401, Some(at)) => {
                assert_eq!(body, KEY_REVOKED);
                // A 401 may come before the acknowledgement (the revoke was already
                // committed), never long before it was sent.
                after += usize::from(sent >= at);
            }
            (other, _) => panic!("key {k}: unexpected {other}: {body}"),
        }
    }
    let never_revoked = log.iter().filter(|(k, ..)| *k == KEYS - 1).count();
    assert!(
        never_revoked > 0 && ok_before > 0 && after > 0,
        "load reached every phase"
    );
    eprintln!(
        "revocation load: {} requests, {ok_before} allowed before a revoke, {after} refused after",
        log.len()
    );
}
