//! `keygate check` without a server: finding the credential and its shape.
//!
//! Introspection (`AUTH_TOKEN_EXPIRED`, project counts, read-only warning) needs a
//! running keygated and is covered by the end-to-end tests.

use std::fs;

use keygate_token::KeyKind;
use serde_json::json;

use crate::{assert_exit_saying, closed_port_url, key, keygate, look_alike, stderr};

#[test]
fn no_credential_is_refused_with_the_exact_message() {
    let out = keygate().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some(
            "No authentication found: set KEYGATE_API_KEY or add it to the env block in .mcp.json"
        )
    );
    assert!(lines.next().unwrap().starts_with("hint: "), "{err}");
}

#[test]
fn the_named_variable_is_used_in_the_message() {
    let out = keygate()
        .args(["check", "--env-var", "ZOOP_KEY"])
        .env("KEYGATE_API_KEY", key("kg", KeyKind::User).expose())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(
        "No authentication found: set ZOOP_KEY or add it to the env block in .mcp.json\n"
    ));
}

#[test]
fn a_malformed_token_is_refused() {
    let bad = look_alike("kg");
    let out = keygate()
        .arg("check")
        .env("KEYGATE_API_KEY", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Token is malformed: token checksum does not match"),
        "{err}"
    );
    assert!(!err.contains(&bad));
}

#[test]
fn the_mcp_json_env_block_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let good = key("kg", KeyKind::User);
    let mcp = json!({"mcpServers": {
        "empty": {"command": "x", "env": {"KEYGATE_API_KEY": ""}},
        "bad": {"command": "x", "env": {"KEYGATE_API_KEY": "kg_uk_nope"}},
        "good": {"command": "x", "env": {"KEYGATE_API_KEY": good.expose()}},
    }});
    let path = dir.path().join(".mcp.json");
    fs::write(&path, mcp.to_string()).unwrap();
    let run = |server: &str| {
        keygate()
            .current_dir(dir.path())
            .args([
                "check",
                "--mcp-server",
                server,
                "--server",
                &closed_port_url(),
            ])
            .output()
            .unwrap()
    };
    let out = run("empty");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("No authentication found"));
    let out = run("bad");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Token is malformed: token body is 4 characters long"));
    // A well-formed key goes on to introspection; nothing listens, so that is exit 2.
    let out = run("good");
    assert_exit_saying(
        &out,
        2,
        "cannot reach the keygate server at http://127.0.0.1:",
    );
    let out = run("missing");
    assert_exit_saying(&out, 2, "has no server \"missing\"");
    // Several servers and none named: a usage error.
    let out = keygate()
        .current_dir(dir.path())
        .args(["check", "--mcp-json", ".mcp.json"])
        .output()
        .unwrap();
    assert_exit_saying(&out, 2, "say which with --mcp-server");
}
