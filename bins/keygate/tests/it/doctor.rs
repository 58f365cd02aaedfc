//! `keygate doctor` on fixture directories.

use std::fs;

use keygate_token::KeyKind;
use serde_json::{Value, json};

use crate::{github_token, key, keygate, stderr, stdout};

fn doctor(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    keygate()
        .arg("doctor")
        .arg(dir)
        .args(["--no-env"])
        .args(extra)
        .output()
        .unwrap()
}

fn codes(doc: &Value) -> Vec<String> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn finds_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let kg = key("kg", KeyKind::User);
    let mcp = json!({"mcpServers": {
        "zerops": {"command": "zcli", "env": {"ZEROPS_TOKEN": github_token()}},
        "keygate": {"url": "http://127.0.0.1:8080/api/mcp", "env": {"KEYGATE_API_KEY": ""}},
    }});
    fs::write(dir.path().join(".mcp.json"), mcp.to_string()).unwrap();
    fs::write(
        dir.path().join(".env"),
        format!("GITHUB_TOKEN={}\n", kg.expose()),
    )
    .unwrap();

    let out = doctor(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut codes = codes(&doc);
    codes.sort();
    assert_eq!(
        codes,
        [
            "empty_value",
            "env_file_not_ignored",
            "mcp_json_not_ignored",
            "wrong_kind",
            "wrong_kind"
        ]
    );
    let text = stdout(&out);
    assert!(!text.contains(kg.expose()), "a secret was printed");
    assert!(!text.contains(&github_token()), "a secret was printed");

    let out = doctor(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("ZEROPS_TOKEN = GitHub token ghp_…"), "{text}");
    assert!(
        text.contains("holds a GitHub token, but its name says it is for another service"),
        "{text}"
    );
    assert!(
        text.contains(
            "GITHUB_TOKEN holds a keygate user key, but its name says it is for a GitHub token"
        ),
        "{text}"
    );
    assert!(text.contains(".mcp.json is not ignored by git"), "{text}");
    assert!(text.contains("env KEYGATE_API_KEY is empty"), "{text}");
    assert!(
        text.contains("fix: add `.mcp.json` to .gitignore"),
        "{text}"
    );
    assert!(!text.contains(kg.expose()));
}

#[test]
fn clean_directory_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let kg = key("zoop", KeyKind::User);
    let mcp = json!({"mcpServers": {
        "platform": {"command": "bridge", "env": {"KEYGATE_API_KEY": kg.expose(), "ZEROPS_TOKEN": key("zoop", KeyKind::Tenant).expose()}},
        "other": {"url": "http://x", "headers": {"Authorization": "Bearer ${KEYGATE_API_KEY}"}},
    }});
    fs::write(dir.path().join(".mcp.json"), mcp.to_string()).unwrap();
    fs::write(dir.path().join(".gitignore"), "/.mcp.json\n.env*\n").unwrap();
    fs::write(
        dir.path().join(".env.local"),
        format!("KEYGATE_API_KEY='{}'\n", kg.expose()),
    )
    .unwrap();

    let out = doctor(dir.path(), &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("No problems found."), "{text}");
    assert!(
        text.contains("KEYGATE_API_KEY = keygate user key zoop_uk_"),
        "{text}"
    );
    assert!(
        text.contains("headers Authorization = unrecognised value"),
        "{text}"
    );
    assert!(text.contains(".env.local"), "{text}");
    assert!(!text.contains(kg.expose()));
}

#[test]
fn a_gitignore_in_a_parent_counts_up_to_the_repository_root() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("agent");
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::create_dir_all(&sub).unwrap();
    fs::write(dir.path().join(".gitignore"), ".mcp.json\n").unwrap();
    fs::write(sub.join(".mcp.json"), r#"{"mcpServers":{}}"#).unwrap();
    let out = doctor(&sub, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // A negation nearer to the file wins.
    fs::write(sub.join(".gitignore"), "!.mcp.json\n").unwrap();
    let out = doctor(&sub, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn the_process_environment_is_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let out = keygate()
        .arg("doctor")
        .arg(dir.path())
        .env("KEYGATE_API_KEY", github_token())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("environment"), "{text}");
    assert!(
        text.contains(
            "KEYGATE_API_KEY holds a GitHub token, but its name says it is for a keygate key"
        ),
        "{text}"
    );
}

#[test]
fn broken_mcp_json_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".mcp.json"), "{ not json").unwrap();
    let out = doctor(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("parsing"), "{}", stderr(&out));
}
