//! `keygate check` and the admin verbs against a canned server speaking the HTTP contract.

use keygate_token::{KeyKind, Token};
use serde_json::{Value, json};

use crate::fake::Fake;
use crate::{KEY_REVOKED, assert_contains_all, assert_exit_saying, key, keygate, stderr, stdout};

fn introspection(projects: usize, read_only: bool) -> String {
    let projects: Vec<Value> = (0..projects)
        .map(|i| json!({"id": format!("p{i}"), "name": format!("project{i}")}))
        .collect();
    json!({
        "id": "abc", "kind": "user", "tenant": {"id": "t1", "name": "acme"},
        "user": {"id": "u1", "name": "ada"}, "scopes": ["services:read"],
        "projects": projects, "read_only": read_only, "expires_at": null,
    })
    .to_string()
}

fn check(fake: &Fake, token: &Token) -> std::process::Output {
    keygate()
        .args(["check", "--server", &fake.url])
        .env("KEYGATE_API_KEY", token.expose())
        .output()
        .unwrap()
}

#[test]
fn check_passes_with_exactly_one_project() {
    let token = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![(200, introspection(1, false))]);
    let out = check(&fake, &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ok: user key"), "{err}");
    assert!(err.contains("tenant acme, project project0"), "{err}");
    assert!(!err.contains("read-only"));
    assert!(stdout(&out).is_empty());
    let seen = fake.finish();
    seen[0].assert_sent("GET /api/v1/token HTTP/1.1", &token);
}

#[test]
fn check_warns_about_read_only_keys() {
    let token = key("kg", KeyKind::Tenant);
    let fake = Fake::serve(vec![(200, introspection(1, true))]);
    let out = check(&fake, &token);
    assert_exit_saying(
        &out,
        0,
        "warning: this key is read-only: mutations will fail",
    );
    fake.finish();
}

#[test]
fn check_refuses_zero_or_many_projects() {
    let token = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![
        (200, introspection(0, false)),
        (200, introspection(3, false)),
    ]);
    let out = check(&fake, &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Token has no project access\nhint: "));
    let out = check(&fake, &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("Token accesses 3 projects; use project-scoped token\nhint: ")
    );
    fake.finish();
}

#[test]
fn check_reports_rejected_keys_as_auth_token_expired() {
    let token = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![
        (401, r#"{"error":"expired"}"#.to_owned()),
        (401, KEY_REVOKED.to_owned()),
        (
            401,
            r#"{"error":"invalid_token","reason":"key_not_found"}"#.to_owned(),
        ),
        (500, r#"{"error":"internal"}"#.to_owned()),
    ]);
    for reason in ["expired", "key_revoked", "key_not_found"] {
        let out = check(&fake, &token);
        assert_eq!(out.status.code(), Some(1), "{reason}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("AUTH_TOKEN_EXPIRED: {reason} (")),
            "{err}"
        );
        assert!(!err.contains(token.expose()));
    }
    let out = check(&fake, &token);
    assert_exit_saying(&out, 2, "answered 500");
    fake.finish();
}

fn admin(fake: &Fake, owner: &Token, args: &[&str]) -> std::process::Output {
    fake.run(owner, args)
}

#[test]
fn keys_create_prints_the_key_alone_on_stdout() {
    let owner = key("kg", KeyKind::User);
    let new = key("kg", KeyKind::Tenant);
    let answer = json!({
        "id": new.id().as_str(), "key": new.expose(), "kind": "tenant", "name": "ci",
        "scopes": ["services:read"], "projects": [{"id": "p1", "name": "shop"}],
    });
    let fake = Fake::serve(vec![(201, answer.to_string())]);
    let args = "keys create --kind tenant --scope services:read --project shop --expires-in 30d";
    let mut args: Vec<&str> = args.split(' ').collect();
    args.extend(["--name", "ci"]);
    let out = admin(&fake, &owner, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", new.expose()));
    assert!(!stderr(&out).contains(new.expose()));
    assert!(stderr(&out).contains("shown this once"));
    let seen = fake.finish();
    assert_eq!(seen[0].line, "POST /api/v1/keys HTTP/1.1");
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"name": "ci", "kind": "tenant", "scopes": ["services:read"],
               "projects": ["shop"], "expires_in": 2_592_000})
    );
}

#[test]
fn keys_create_sends_the_usage_limit() {
    let owner = key("kg", KeyKind::User);
    let new = key("kg", KeyKind::Tenant);
    let answer = json!({
        "id": new.id().as_str(), "key": new.expose(), "kind": "tenant", "name": "m",
        "scopes": [], "remaining": 100, "refill": {"interval": "6h", "amount": 100},
    });
    let fake = Fake::serve(vec![(201, answer.to_string())]);
    let args = "keys create --kind tenant --scope services:read --name m --remaining 100";
    let mut args: Vec<&str> = args.split(' ').collect();
    args.extend(["--refill", "6h:100"]);
    let out = admin(&fake, &owner, &args);
    assert_exit_saying(&out, 0, "100 requests left (refill 6h:100)");
    let seen = fake.finish();
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(sent["remaining"], 100, "{sent}");
    assert_eq!(sent["refill"], json!({"interval": "6h", "amount": 100}));
}

#[test]
fn keys_rotate_reminds_to_revoke_the_old_key() {
    let owner = key("kg", KeyKind::User);
    let old = key("kg", KeyKind::User);
    let new = key("kg", KeyKind::User);
    let answer = json!({"id": new.id().as_str(), "key": new.expose(), "kind": "user", "name": "x", "scopes": []});
    let fake = Fake::serve(vec![(201, answer.to_string())]);
    let id = old.id().to_string();
    let out = admin(&fake, &owner, &["keys", "rotate", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", new.expose()));
    assert!(stderr(&out).contains(&format!("keygate keys revoke {id}")));
    assert_eq!(
        fake.finish()[0].line,
        format!("POST /api/v1/keys/{id}/rotate HTTP/1.1")
    );
}

#[test]
fn keys_list_prints_a_table_or_json() {
    let owner = key("kg", KeyKind::User);
    let listing = json!([{
        "id": "AAAAAAAAAAAA", "tenant_id": "t1", "kind": "user", "user_id": "u1", "name": "laptop",
        "prefix": "kg_uk_", "scopes": ["keys:admin", "services:read"], "projects": null,
        "created_at": "2025-01-02T03:04:05Z", "expires_at": null,
        "revoked_at": "2025-02-01T00:00:00Z", "last_used_at": null,
    }]);
    let fake = Fake::serve(vec![(200, listing.to_string()), (200, listing.to_string())]);
    let out = admin(&fake, &owner, &["keys", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID") && header.contains("LAST USED") && header.ends_with("STATUS"));
    let row = lines.next().unwrap();
    assert_contains_all(
        row,
        &[
            "AAAAAAAAAAAA",
            "laptop",
            "keys:admin,services:read",
            "2025-01-02 03:04Z",
            "revoked",
        ],
    );
    let out = admin(&fake, &owner, &["keys", "list", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc[0]["name"], "laptop");
    fake.finish();
}

#[test]
fn server_errors_become_clear_refusals() {
    let owner = key("kg", KeyKind::Tenant);
    let fake = Fake::serve(vec![
        (403, r#"{"error":"insufficient_scope"}"#.to_owned()),
        (401, KEY_REVOKED.to_owned()),
        (409, r#"{"error":"conflict"}"#.to_owned()),
    ]);
    let out = admin(&fake, &owner, &["projects", "list"]);
    assert_exit_saying(&out, 1, "this key is not an owner key with keys:admin");
    let out = admin(&fake, &owner, &["audit", "--limit", "5"]);
    assert_exit_saying(&out, 1, "the key was revoked (key_revoked)");
    let out = admin(&fake, &owner, &["projects", "create", "shop"]);
    assert_exit_saying(&out, 1, "409 conflict");
    let seen = fake.finish();
    assert_eq!(seen[1].line, "GET /api/v1/audit?limit=5 HTTP/1.1");
    assert_eq!(seen[2].body, r#"{"name":"shop"}"#);
}

fn tls_file(name: &str) -> String {
    format!("{}/tests/it/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn https_servers_are_spoken_to_over_tls_with_verified_certificates() {
    let token = key("kg", KeyKind::User);
    // The connection that trusts another CA fails its handshake and gets no answer; the
    // answer goes to the one that trusts the CA of the server's certificate.
    let fake = Fake::serve_tls(vec![(200, introspection(1, false))]);
    assert!(fake.url.starts_with("https://127.0.0.1:"));
    let check_trusting = |ca: &str| {
        keygate()
            .args(["check", "--server", &fake.url])
            .env("KEYGATE_API_KEY", token.expose())
            // Read by the platform verifier on Linux in place of the system's roots.
            .env("SSL_CERT_FILE", tls_file(ca))
            .output()
            .unwrap()
    };
    let untrusted = check_trusting("other-ca.pem");
    assert_eq!(untrusted.status.code(), Some(2), "{}", stderr(&untrusted));
    let err = stderr(&untrusted);
    assert!(
        err.contains(&format!("cannot reach the keygate server at {}", fake.url)),
        "{err}"
    );
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert!(!err.contains(token.expose()));

    let out = check_trusting("ca.pem");
    assert_exit_saying(&out, 0, "ok: user key");
    let seen = fake.finish();
    seen[0].assert_sent("GET /api/v1/token HTTP/1.1", &token);
}

#[test]
fn plain_http_needs_no_certificate_store() {
    // A minimal container with no CA certificates at all still reaches http:// servers.
    let token = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![(200, introspection(1, false))]);
    let out = keygate()
        .args(["check", "--server", &fake.url])
        .env("KEYGATE_API_KEY", token.expose())
        .env("SSL_CERT_FILE", tls_file("missing.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fake.finish();
}
