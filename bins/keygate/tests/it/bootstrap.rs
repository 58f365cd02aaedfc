//! `keygate bootstrap` into a SQLite store in a temporary directory.

use std::fs;

use keygate_token::{KeyKind, Token};

use crate::{assert_said, keygate, stderr, stdout};

fn bootstrap(db: &str, tenant: &str, extra: &[&str]) -> std::process::Output {
    keygate()
        .args([
            "bootstrap",
            "--database",
            db,
            "--tenant",
            tenant,
            "--owner",
            "ada",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn demo_bootstrap_prints_the_owner_key_alone_and_refuses_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("keygate.db").display());
    let out = bootstrap(&db, "acme", &["--demo", "--brand", "zoop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let token = Token::parse(text.trim()).expect("stdout is exactly the key");
    assert_eq!(token.kind(), KeyKind::User);
    assert_eq!(token.brand(), "zoop");
    let err = stderr(&out);
    let first = err.lines().next().unwrap();
    assert!(first.contains("shop") && first.contains("ops"), "{err}");
    assert!(err.contains("keys:admin"), "{err}");
    assert!(!err.contains(token.expose()));

    // Another tenant may share the database; the same one is refused.
    let out = bootstrap(&db, "globex", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = bootstrap(&db, "acme", &["--demo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("tenant \"acme\" already exists"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn policy_scopes_go_to_the_owner_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let policy = dir.path().join("policy.toml");
    fs::write(
        &policy,
        "[scopes]\n\"things:read\" = \"Read things\"\n\n[tools.\"things.list\"]\nscopes = [\"things:read\"]\n",
    )
    .unwrap();
    let out = bootstrap(&db, "acme", &["--policy", policy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The built-in scopes (approving gated calls, administering keys) come with it.
    assert_said(&out, "[gates:approve,keys:admin,things:read]");
}

#[test]
fn bad_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let out = bootstrap(&db, "acme", &["--policy", "no/such/policy.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = bootstrap("mysql://u:hunter2@h/db", "acme", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    let out = bootstrap(&db, "acme", &["--demo", "--policy", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
}
