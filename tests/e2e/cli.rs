//! The `keygate` CLI against the real server: bootstrap, the admin verbs and `check`,
//! with exact exit codes (0 ok, 1 refused, 2 usage or I/O error).

use std::time::Duration;

use keygate_e2e::{
    CliOutput, KEY_REVOKED, Server, bootstrap, eventually, keygate, with_valid_checksum,
};
use serde_json::{Value, json};

/// The secret part of a raw key (everything after the 12-character id).
fn secret(key: &str) -> &str {
    &key[key.len() - 36..]
}

/// Runs an admin verb against `server` with `key` in `KEYGATE_API_KEY`.
fn admin(server: &Server, key: &str, args: &[&str]) -> CliOutput {
    keygate(
        args,
        &[("KEYGATE_SERVER", &server.base), ("KEYGATE_API_KEY", key)],
        None,
    )
}

/// `keygate check` with `key` in `KEYGATE_API_KEY` (or none).
fn check(server: &Server, key: Option<&str>) -> CliOutput {
    let mut env = vec![("KEYGATE_SERVER", server.base.as_str())];
    if let Some(key) = key {
        env.push(("KEYGATE_API_KEY", key));
    }
    let out = keygate(&["check"], &env, None);
    if let Some(key) = key.filter(|k| k.len() > 36) {
        assert!(
            !out.stdout.contains(secret(key)) && !out.stderr.contains(secret(key)),
            "check printed the secret"
        );
    }
    out
}

#[track_caller]
fn assert_refused(out: &CliOutput, message: &str) {
    out.expect_code(1);
    assert!(
        out.stderr.contains(message),
        "expected {message:?} in:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint:"),
        "a hint follows: {}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "refusals go to stderr");
}

fn one_line_key(out: &CliOutput) -> String {
    out.expect_code(0);
    let key = out.stdout.trim_end_matches('\n');
    assert_eq!(
        key.lines().count(),
        1,
        "the key alone on stdout: {}",
        out.stdout
    );
    assert!(key.starts_with("kg_"), "{key}");
    key.to_owned()
}

#[tokio::test]
async fn bootstrap_refuses_an_existing_tenant() {
    let server = Server::demo();
    let out = bootstrap(&server.database, "demo", "mallory", &["--demo"]);
    out.expect_code(1);
    assert_eq!(out.stdout, "", "no key printed");
    out.expect_stderr("demo");
    // A new tenant in the same database: an owner key that works on the running server.
    let owner = keygate_e2e::bootstrap_tenant(&server.database, "acme", "alice");
    let me = server.api(&owner).introspect().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["tenant"]["name"], "acme");
    assert_eq!(me.json["user"]["name"], "alice");
    assert!(
        me.json["scopes"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("keys:admin")))
    );
}

#[tokio::test]
async fn keys_and_projects_verbs_drive_the_admin_api() {
    let server = Server::demo();
    let owner = server.owner_key();

    let args = "keys create --kind tenant --scope services:read --project shop --name ci-bot";
    let mut args: Vec<&str> = args.split(' ').collect();
    args.extend(["--expires-in", "30d"]);
    let created = admin(&server, &owner, &args);
    let key = one_line_key(&created);
    let me = server.api(&key).introspect().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["kind"], "tenant");
    assert_eq!(me.json["scopes"], json!(["services:read"]));
    assert_eq!(me.json["projects"][0]["name"], "shop");
    assert!(me.json["expires_at"].is_string());
    let id = me.json["id"].as_str().expect("an id").to_owned();

    let list = admin(&server, &owner, &["keys", "list", "--json"]);
    list.expect_code(0);
    let listed: Value = serde_json::from_str(&list.stdout).expect("JSON on stdout");
    assert!(listed.to_string().contains(&id), "{listed}");
    assert!(!list.stdout.contains(secret(&key)) && !list.stdout.contains(secret(&owner)));
    let text = admin(&server, &owner, &["keys", "list"]);
    text.expect_code(0).expect_stdout("ci-bot");

    let show = admin(&server, &owner, &["keys", "show", &id, "--json"]);
    show.expect_code(0);
    let shown: Value = serde_json::from_str(&show.stdout).expect("JSON on stdout");
    assert_eq!(shown["name"], "ci-bot", "{shown}");

    let rotated = one_line_key(&admin(&server, &owner, &["keys", "rotate", &id]));
    assert_ne!(rotated, key);
    assert_eq!(server.api(&rotated).introspect().await.status, 200);
    assert_eq!(
        server.api(&key).introspect().await.status,
        200,
        "old key left active"
    );

    admin(&server, &owner, &["keys", "revoke", &id]).expect_code(0);
    let a = server.api(&key).introspect().await;
    assert_eq!(a.text, KEY_REVOKED);
    assert_eq!(server.api(&rotated).introspect().await.status, 200);
    // Idempotent.
    admin(&server, &owner, &["keys", "revoke", &id]).expect_code(0);

    admin(&server, &owner, &["projects", "create", "billing"]).expect_code(0);
    let projects = admin(&server, &owner, &["projects", "list", "--json"]);
    projects.expect_code(0);
    for name in ["billing", "ops", "shop"] {
        projects.expect_stdout(name);
    }
    // A duplicate is the server's 409: a refusal.
    admin(&server, &owner, &["projects", "create", "billing"]).expect_code(1);

    let audit = admin(&server, &owner, &["audit", "--json"]);
    audit.expect_code(0);
    for action in ["key.created", "key.rotated", "key.revoked"] {
        assert!(audit.stdout.contains(action), "audit lacks {action}");
    }

    // A key that is not an owner's admin key: the server's 403 is a refusal (1).
    admin(&server, &rotated, &["keys", "list"]).expect_code(1);
    // A malformed id is refused offline; no key at all, a bad flag: usage (2).
    let bad_id = admin(&server, &owner, &["keys", "show", "not-an-id"]);
    bad_id.expect_code(2).expect_stderr("not a key id");
    keygate(&["keys", "list"], &[("KEYGATE_SERVER", &server.base)], None).expect_code(2);
    admin(&server, &owner, &["keys", "list", "--no-such-flag"]).expect_code(2);
    // An unreachable server: I/O error (2).
    let dead = keygate(
        &["keys", "list"],
        &[
            ("KEYGATE_SERVER", "http://127.0.0.1:9"),
            ("KEYGATE_API_KEY", &owner),
        ],
        None,
    );
    dead.expect_code(2);
}

#[tokio::test]
async fn keys_create_takes_a_usage_limit_and_list_and_show_render_it() {
    let server = Server::demo();
    let owner = server.owner_key();
    let create = |extra: &[&str]| {
        let base = "keys create --kind tenant --scope services:read";
        let mut args: Vec<&str> = base.split(' ').collect();
        args.extend(extra);
        admin(&server, &owner, &args)
    };
    let created = create(&[
        "--name",
        "metered",
        "--remaining",
        "2",
        "--refill",
        "daily:5",
    ]);
    created.expect_stderr("2 requests left (refill daily:5)");
    let key = one_line_key(&created);
    let me = server.api(&key).introspect().await;
    assert_eq!(me.status, 200, "{}", me.text);
    let id = me.json["id"].as_str().expect("an id").to_owned();
    assert_eq!(server.api(&key).introspect().await.status, 200);
    let spent = server.api(&key).introspect().await;
    assert_eq!(spent.status, 403);
    assert_eq!(spent.text, r#"{"error":"usage_exceeded"}"#);

    let show = admin(&server, &owner, &["keys", "show", &id, "--json"]);
    show.expect_code(0);
    let shown: Value = serde_json::from_str(&show.stdout).expect("JSON on stdout");
    assert_eq!(shown["remaining"], 0, "{shown}");
    assert_eq!(shown["refill"], json!({"interval": "daily", "amount": 5}));
    let show = admin(&server, &owner, &["keys", "show", &id]);
    show.expect_code(0).expect_stdout("remaining  0");
    show.expect_stdout("refill     daily:5");
    let list = admin(&server, &owner, &["keys", "list"]);
    list.expect_code(0);
    let header = list.stdout.lines().next().expect("a header");
    assert!(
        header.contains("REMAINING") && header.contains("REFILL"),
        "{header}"
    );
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .expect("the key's row");
    assert!(row.contains("daily:5"), "{row}");
    let listed = admin(&server, &owner, &["keys", "list", "--json"]);
    listed.expect_stdout(r#""remaining":0"#);

    // Each mistake is a usage error (2) before any request.
    for (args, message) in [
        (&["--remaining", "0"][..], "--remaining"),
        (&["--remaining", "-1"][..], "-1"),
        (&["--refill", "daily:5"][..], "--remaining"),
        (
            &["--remaining", "3", "--refill", "fortnightly:5"][..],
            "fortnightly",
        ),
        (
            &["--remaining", "3", "--refill", "daily:0"][..],
            "above zero",
        ),
        (
            &["--remaining", "3", "--refill", "daily"][..],
            "INTERVAL:AMOUNT",
        ),
    ] {
        let mut all = vec!["--name", "bad"];
        all.extend(args);
        let out = create(&all);
        out.expect_code(2);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn check_refuses_each_bad_credential_and_passes_a_project_key() {
    let server = Server::demo();
    let owner = server.owner_key();
    let api = server.api(&owner);

    assert_refused(
        &check(&server, None),
        "No authentication found: set KEYGATE_API_KEY or add it to the env block in .mcp.json",
    );
    assert_refused(&check(&server, Some("kg_uk_short")), "Token is malformed");

    // Restricted to an empty project list: no project at all.
    let (_, none) = api.new_user_key("nowhere", &["services:read"], &[]).await;
    assert_refused(&check(&server, Some(&none)), "Token has no project access");
    // The demo owner reaches shop and ops.
    assert_refused(
        &check(&server, Some(&owner)),
        "Token accesses 2 projects; use project-scoped token",
    );

    let (id, revoked) = api
        .new_user_key("gone", &["services:read"], &["shop"])
        .await;
    api.revoke(&id).await;
    assert_refused(
        &check(&server, Some(&revoked)),
        "AUTH_TOKEN_EXPIRED: key_revoked",
    );

    let (_, short) = api
        .new_key(json!({"name":"short","kind":"user","scopes":["services:read"],"projects":["shop"],"expires_in":1}))
        .await;
    eventually(Duration::from_secs(5), || {
        let api = server.api(&short);
        async move { (api.introspect().await.status == 401).then_some(()) }
    })
    .await
    .expect("expired within 5 s");
    assert_refused(&check(&server, Some(&short)), "AUTH_TOKEN_EXPIRED: expired");

    let unknown = with_valid_checksum(&format!("kg_uk_{}", "Q".repeat(42)));
    assert_refused(
        &check(&server, Some(&unknown)),
        "AUTH_TOKEN_EXPIRED: key_not_found",
    );

    // Read-only (every scope a read scope), one project: passes with a warning.
    let (_, reader) = api
        .new_key(json!({"name":"reader","kind":"tenant","scopes":["services:read","customers:read"],"projects":["shop"]}))
        .await;
    let out = check(&server, Some(&reader));
    out.expect_code(0).expect_stderr("read-only");
    out.expect_stderr("shop");

    // A one-project key that may write: passes without a warning.
    let (_, writer) = api
        .new_user_key("writer", &["services:read", "services:write"], &["ops"])
        .await;
    let out = check(&server, Some(&writer));
    out.expect_code(0).expect_stderr("ok:").expect_stderr("ops");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);

    // An unreachable server is not a verdict on the key: exit 2.
    let dead = keygate(
        &["check", "--server", "http://127.0.0.1:9"],
        &[("KEYGATE_API_KEY", &writer)],
        None,
    );
    dead.expect_code(2);
}

#[tokio::test]
async fn check_reads_the_env_block_of_mcp_json() {
    let server = Server::demo();
    let api = server.api(&server.owner_key());
    let (_, key) = api
        .new_user_key("agent", &["services:read", "services:write"], &["shop"])
        .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mcp_json = json!({"mcpServers": {
        "shop": {"type":"http","url": server.url("/api/mcp"), "env": {"KEYGATE_API_KEY": key}},
        "other": {"command":"true"}
    }});
    std::fs::write(dir.path().join(".mcp.json"), mcp_json.to_string()).expect("written");
    let env = [("KEYGATE_SERVER", server.base.as_str())];

    let out = keygate(&["check", "--mcp-server", "shop"], &env, Some(dir.path()));
    out.expect_code(0);
    assert!(
        out.stderr.contains(".mcp.json"),
        "names the source: {}",
        out.stderr
    );
    assert!(!out.stderr.contains(secret(&key)), "never the secret");
    let out = keygate(
        &["check", "--mcp-json", ".mcp.json", "--mcp-server", "shop"],
        &env,
        Some(dir.path()),
    );
    out.expect_code(0);
    // The server without an env block holds no credential.
    let out = keygate(&["check", "--mcp-server", "other"], &env, Some(dir.path()));
    assert_refused(&out, "No authentication found");
    // Without --mcp-json/--mcp-server the file is not read.
    let out = keygate(&["check"], &env, Some(dir.path()));
    assert_refused(&out, "No authentication found");
}

#[tokio::test]
async fn doctor_asks_the_server_about_each_key() {
    let server = Server::demo();
    let api = server.api(&server.owner_key());
    let (id, key) = api
        .new_user_key("agent", &["services:read"], &["shop"])
        .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join(".gitignore"), ".env\n").expect("written");
    std::fs::write(dir.path().join(".env"), format!("KEYGATE_API_KEY={key}\n")).expect("written");
    let doctor = || {
        keygate(
            &["doctor", ".", "--no-env", "--server", &server.base],
            &[],
            Some(dir.path()),
        )
    };

    let out = doctor();
    out.expect_code(0)
        .expect_stdout("active: tenant demo, 1 project(s)");
    assert!(!out.stdout.contains(secret(&key)), "never the secret");

    api.revoke(&id).await;
    let out = doctor();
    out.expect_code(1).expect_stdout("rejected: key_revoked");
    out.expect_stdout("the key was revoked (key_revoked)");
    assert!(!out.stdout.contains(secret(&key)), "never the secret");

    // A server that is not there is an I/O error, not a verdict on the key.
    let out = keygate(
        &["doctor", ".", "--no-env", "--server", "http://127.0.0.1:9"],
        &[],
        Some(dir.path()),
    );
    out.expect_code(2);
}

/// A person-gated call decided from the terminal: `keygate approvals list|approve|deny`
/// against the real server, with the calling key refused and the identical retry run once.
#[tokio::test]
async fn approvals_verbs_let_a_person_decide_a_gated_call() {
    let server = Server::demo();
    let owner = server.owner_key();
    let created = server
        .api(&owner)
        .post(
            "/api/v1/keys",
            &json!({"name": "cli-agent", "kind": "tenant", "scopes": ["services:read", "services:write"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let agent = created.json["key"].as_str().expect("a key").to_owned();
    let mut mcp = server.api(&agent).session().await;
    let asked = |a: &keygate_e2e::Answer| -> String {
        assert_eq!(a.tool_code(), Some("APPROVAL_REQUIRED"), "{}", a.text);
        a.json["result"]["structuredContent"]["approval_id"]
            .as_str()
            .expect("an approval id")
            .to_owned()
    };
    let web = asked(&mcp.call("service.delete", json!({"service": "web"})).await);
    let worker = asked(
        &mcp.call("service.delete", json!({"service": "worker"}))
            .await,
    );

    let list = admin(&server, &owner, &["approvals", "list"]);
    list.expect_code(0);
    let mut lines = list.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["ID", "OPERATION", "TARGET", "KEY", "EXPIRES"]);
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{}", list.stdout);
    assert!(
        rows.iter().any(|r| r.starts_with(&web)
            && r.contains("service.delete")
            && r.contains("cli-agent")),
        "{}",
        list.stdout
    );
    let listed: Value = serde_json::from_str(
        &admin(&server, &owner, &["approvals", "list", "--json"])
            .expect_code(0)
            .stdout,
    )
    .expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // The calling key cannot decide, and a wrong name changes nothing.
    assert_refused(
        &admin(
            &server,
            &agent,
            &["approvals", "approve", &web, "--target", "web"],
        ),
        "this key cannot approve",
    );
    assert_refused(
        &admin(
            &server,
            &owner,
            &["approvals", "approve", &web, "--target", "WEB"],
        ),
        "does not match the approval's target exactly",
    );
    let approved = admin(
        &server,
        &owner,
        &["approvals", "approve", &web, "--target", "web"],
    );
    approved.expect_code(0).expect_stderr("approved");
    admin(&server, &owner, &["approvals", "deny", &worker]).expect_code(0);
    let again = admin(&server, &owner, &["approvals", "deny", &web]);
    again
        .expect_code(1)
        .expect_stderr("this approval is closed");

    // The identical retry runs once; the denied call does not.
    let retry = mcp.call("service.delete", json!({"service": "web"})).await;
    assert!(!retry.is_tool_error(), "{}", retry.text);
    let denied = mcp
        .call("service.delete", json!({"service": "worker"}))
        .await;
    assert!(denied.is_tool_error(), "{}", denied.text);
    let names = mcp.call_ok("service.list", json!({})).await.to_string();
    assert!(
        !names.contains("\"web\"") && names.contains("\"worker\""),
        "{names}"
    );
    let empty = admin(&server, &owner, &["approvals", "list"]);
    empty.expect_code(0).expect_stderr("no pending approvals");
}
