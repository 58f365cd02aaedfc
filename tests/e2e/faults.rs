//! Faults, on real processes: the database failing (SQLite on a full disk, PostgreSQL
//! connections killed or its table gone), the rate-limit backend down, the upstream
//! down, silent or answering garbage, and `kill -9` right after an acknowledged write.
//!
//! What must hold: a store failure is 503 `{"error":"unavailable"}` with `Retry-After`,
//! never a 401 that would make a client throw away a good key; the server recovers
//! without a restart once the fault is gone; upstream failures are JSON-RPC errors
//! within the configured timeout; acknowledged writes survive SIGKILL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use keygate_e2e::{
    Answer, Api, KEY_REVOKED, PgSchema, Server, ServerOptions, postgres_url, random_name,
};
use serde_json::json;

const UNAVAILABLE: &str = r#"{"error":"unavailable"}"#;

/// Asserts the store-outage answer exactly.
#[track_caller]
fn assert_unavailable(a: &Answer) {
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.text, UNAVAILABLE);
    assert_eq!(a.header("retry-after"), Some("1"));
}

fn demo_policy() -> PathBuf {
    keygate_e2e::workspace_dir().join("crates/keygate-demo/policy.toml")
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A fresh SQLite file with a bootstrapped tenant (demo policy scopes); (dir, url, owner key).
fn bootstrapped_sqlite() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keygate.db").display());
    let policy = demo_policy();
    let out = keygate_e2e::bootstrap(&url, "acme", "ada", &["--policy", policy.to_str().unwrap()]);
    out.expect_code(0);
    let key = out.stdout.trim().to_owned();
    (dir, url, key)
}

/// `keygated --upstream URL --policy demo` on a bootstrapped SQLite file.
fn gateway(upstream: &str, extra: &[&str]) -> (tempfile::TempDir, Server, String) {
    let (dir, url, key) = bootstrapped_sqlite();
    let policy = demo_policy();
    let mut args = vec!["--upstream", upstream, "--policy", policy.to_str().unwrap()];
    args.extend_from_slice(extra);
    let server = Server::start(ServerOptions::default().database(&url).args(&args));
    (dir, server, key)
}

#[tokio::test]
async fn upstream_down_silent_or_garbage_is_a_json_rpc_error_in_time() {
    // Down: nothing listens.
    let (_d, server, key) = gateway(&format!("http://{}/mcp", closed_port()), &[]);
    let mut mcp = server.api(&key).mcp();
    let a = mcp.call("service.list", json!({})).await;
    assert_eq!(a.status, 502, "{}", a.text);
    assert_eq!(a.json["error"]["code"], -32001);
    assert_eq!(a.json["id"], 1);
    drop(server);

    // Silent: accepts and never answers; --upstream-timeout 1.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let (_d, server, key) = gateway(
        &format!("http://{silent_addr}/mcp"),
        &["--upstream-timeout", "1"],
    );
    let mut mcp = server.api(&key).mcp();
    let started = Instant::now();
    let a = mcp.call("service.list", json!({})).await;
    assert_eq!(a.status, 504, "{}", a.text);
    assert_eq!(a.json["error"]["code"], -32002);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the 1 s upstream timeout applied"
    );
    hold.abort();
    drop(server);

    // Garbage: an HTTP server answering HTML.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    let serve = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = garbage.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = sock.read(&mut buf).await;
                let body = "<html>502 oops</html>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    let (_d, server, key) = gateway(&format!("http://{garbage_addr}/mcp"), &[]);
    let mut mcp = server.api(&key).mcp();
    let a = mcp.rpc("tools/list", json!({})).await;
    assert_eq!(a.status, 502, "{}", a.text);
    assert_eq!(a.json["error"]["code"], -32003);
    serve.abort();
}

#[tokio::test]
async fn redis_down_fails_closed_with_503() {
    let port = closed_port().port();
    let server = Server::demo_with(&["--rate-limit-backend", &format!("redis://127.0.0.1:{port}")]);
    let owner = server.owner_key();
    for _ in 0..3 {
        let a = server.api(&owner).introspect().await;
        assert_unavailable(&a);
        let a = server
            .api(&owner)
            .mcp()
            .call("service.list", json!({}))
            .await;
        assert_unavailable(&a);
    }
    // Authentication still comes first: a bad key is 401, not 503.
    let a = server.api("kg_uk_nope").introspect().await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn redis_down_with_fail_open_lets_requests_through_uncounted() {
    let port = closed_port().port();
    let server = Server::demo_with(&[
        "--rate-limit-backend",
        &format!("redis://127.0.0.1:{port}"),
        "--rate-limit-fail-open",
    ]);
    let owner = server.owner_key();
    for _ in 0..3 {
        let a = server.api(&owner).introspect().await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(
            a.header("ratelimit").is_none(),
            "uncounted: no RateLimit header"
        );
    }
    // Failing open never skips authentication.
    let a = server.api("kg_uk_nope").introspect().await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn kill_9_right_after_an_acknowledged_write_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keygate.db").display());
    let mut server = Server::start(ServerOptions::demo().database(&url));
    let owner = server.owner_key();
    let admin = server.api(&owner);
    let (kept_id, kept) = admin.new_tenant_key("kept", &["services:read"]).await;
    let (gone_id, gone) = admin.new_tenant_key("gone", &["services:read"]).await;
    admin.revoke(&gone_id).await;
    // The created key is acknowledged last: SIGKILL at once.
    let (fresh_id, fresh) = admin.new_tenant_key("fresh", &["services:read"]).await;
    server.kill();

    let mut server = Server::start(ServerOptions::demo().database(&url));
    assert_eq!(server.api(&kept).introspect().await.status, 200);
    let a = server.api(&fresh).introspect().await;
    assert_eq!(
        a.status, 200,
        "the key created just before SIGKILL: {}",
        a.text
    );
    assert_eq!(a.json["id"], fresh_id.as_str());
    let a = server.api(&gone).introspect().await;
    assert_eq!(a.text, KEY_REVOKED);

    // Revoke acknowledged, SIGKILL at once.
    server.api(&owner).revoke(&kept_id).await;
    server.kill();
    let server = Server::start(ServerOptions::demo().database(&url));
    let a = server.api(&kept).introspect().await;
    assert_eq!(a.text, KEY_REVOKED);
    assert_eq!(server.api(&fresh).introspect().await.status, 200);
}

/// Mounts a tmpfs of `size` at `dir`; `false` (with a note) when this sandbox cannot.
/// A new tenant key named `agent` with `services:read`.
async fn agent_key(admin: &Api<'_>) -> String {
    let body = json!({"name":"agent","kind":"tenant","scopes":["services:read"]});
    admin.new_key(body).await.1
}

fn mount_tmpfs(dir: &std::path::Path, size: &str) -> bool {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: cannot mount a tmpfs here (needs root); skipping the disk-full test");
    }
    ok
}

/// Unmounts on drop, also when the test panics.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` with one file until it is full.
fn fill(dir: &std::path::Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn sqlite_on_a_full_disk_refuses_writes_with_503_keeps_reading_and_recovers() {
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    if !mount_tmpfs(&mnt, "8m") {
        return;
    }
    let _mounted = Mounted(mnt.clone());
    let url = format!("sqlite://{}", mnt.join("keygate.db").display());
    let server = Server::start(ServerOptions::demo().database(&url));
    let owner = server.owner_key();
    let admin = server.api(&owner);
    let agent = agent_key(&admin).await;

    let filler = fill(&mnt);
    // Writes need new pages in the WAL, which a full disk refuses. The first few may
    // still fit in blocks the file system had already given the WAL.
    let mut refused = 0;
    for i in 0..50 {
        let a = admin
            .post(
                "/api/v1/keys",
                &json!({"name": format!("k{i}"), "kind":"tenant","scopes":["services:read"]}),
            )
            .await;
        match a.status {
            201 => {}
            503 => {
                assert_unavailable(&a);
                refused += 1;
                if refused >= 3 {
                    break;
                }
            }
            other => panic!("create on a full disk answered {other}: {}", a.text),
        }
        // Reads and verification need no space: the keys keep working, never a 401.
        let a = server.api(&agent).introspect().await;
        assert!(matches!(a.status, 200 | 503), "{}", a.text);
        if a.status == 503 {
            assert_unavailable(&a);
        }
    }
    assert!(refused > 0, "no write was refused on a full disk");
    let a = server.api(&agent).introspect().await;
    assert_eq!(a.status, 200, "verification on a full disk: {}", a.text);
    let a = server
        .api(&agent)
        .mcp()
        .call("service.list", json!({}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    // Space again: the same process writes again.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = admin
            .post(
                "/api/v1/keys",
                &json!({"name":"after","kind":"tenant","scopes":["services:read"]}),
            )
            .await;
        if a.status == 201 {
            let key = a.json["key"].as_str().unwrap();
            assert_eq!(server.api(key).introspect().await.status, 200);
            break;
        }
        assert_unavailable(&a);
        assert!(Instant::now() < deadline, "no recovery after freeing space");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = server.logs();
    assert!(logs.contains("unavailable"), "the outage is logged");
}

async fn pg(admin_url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Polls `f` until it answers 200 (allowing only exact 503s meanwhile).
async fn until_ok<F, Fut>(what: &str, mut f: F) -> (Answer, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut unavailable = 0;
    loop {
        let a = f().await;
        if a.status == 200 || a.status == 201 {
            return (a, unavailable);
        }
        assert_unavailable(&a);
        unavailable += 1;
        assert!(Instant::now() < deadline, "{what}: no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn postgres_failures_are_503_and_recover_without_a_restart() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let schema = PgSchema::create(&admin_url, "kg_e2e").await;
    let app = format!("kg_e2e_{}", random_name(10));
    let url = format!("{}&application_name={app}", schema.url);
    assert!(schema.url.contains('?'));
    let server = Server::start(ServerOptions::demo().database(&url));
    let owner = server.owner_key();
    let admin = server.api(&owner);
    let agent = agent_key(&admin).await;
    let db = pg(&admin_url).await;

    // 1. Every connection of this server killed (only this test's application_name).
    for round in 0..3 {
        let killed = keygate_test::terminate_backends(&admin_url, &app).await;
        assert!(killed > 0, "round {round}: the server had connections");
        let (a, _) = until_ok("introspect", || {
            let api = server.api(&agent);
            async move { api.introspect().await }
        })
        .await;
        assert_eq!(a.json["kind"], "tenant");
        let (_, _) = until_ok("create", || {
            let admin = admin.clone();
            let body = json!({"name": format!("r{round}-{}", random_name(6)), "kind":"tenant","scopes":["services:read"]});
            async move { admin.post("/api/v1/keys", &body).await }
        })
        .await;
    }

    // 2. The key table gone (renamed): a deterministic failure of every verification.
    db.batch_execute(&format!(
        "ALTER TABLE {}.api_keys RENAME TO api_keys_away",
        schema.name
    ))
    .await
    .unwrap();
    for _ in 0..3 {
        assert_unavailable(&server.api(&agent).introspect().await);
        assert_unavailable(
            &server
                .api(&agent)
                .mcp()
                .call("service.list", json!({}))
                .await,
        );
    }
    let health = keygate_e2e::send(keygate_e2e::client().get(server.url("/healthz"))).await;
    assert!(matches!(health.status, 200 | 503), "{}", health.text);
    db.batch_execute(&format!(
        "ALTER TABLE {}.api_keys_away RENAME TO api_keys",
        schema.name
    ))
    .await
    .unwrap();
    let (a, _) = until_ok("introspect after the table is back", || {
        let api = server.api(&agent);
        async move { api.introspect().await }
    })
    .await;
    assert_eq!(a.json["kind"], "tenant");
    assert!(server.logs().contains("unavailable"));
}
