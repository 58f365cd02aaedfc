//! `keygate doctor` on fixture directories.

use std::fs;

use keygate_token::KeyKind;
use serde_json::{Value, json};

use crate::{
    assert_contains_all, assert_exit_saying, github_token, key, keygate, keygate_within, stderr,
    stdout,
};

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

/// The text map of `out` found no problem (exit 0), names every one of `parts`, and
/// never shows `key`.
#[track_caller]
fn assert_no_problems(out: &std::process::Output, key: &keygate_token::Token, parts: &[&str]) {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(out));
    assert_contains_all(&text, &[&["No problems found."][..], parts].concat());
    assert!(!text.contains(key.expose()));
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
    assert_no_problems(
        &out,
        &kg,
        &[
            "KEYGATE_API_KEY = keygate user key zoop_uk_",
            "headers Authorization = unrecognised value",
            ".env.local",
        ],
    );
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
    assert_exit_saying(&out, 2, "parsing");
}

fn warning_codes(doc: &Value) -> Vec<(String, String)> {
    doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["file"].as_str().unwrap().to_owned(),
                w["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_sparse_multi_gib_env_is_read_in_part_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let kg = key("kg", KeyKind::User);
    let path = dir.path().join(".env");
    fs::write(&path, format!("KEYGATE_API_KEY={}\n", kg.expose())).unwrap();
    // 3 GiB that take no disk: the rest reads as NULs.
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    fs::write(dir.path().join(".gitignore"), ".env\n").unwrap();

    // 64 MiB of address space: reading the file whole could not even start.
    let run = |extra: &[&str]| {
        keygate_within(64)
            .arg("doctor")
            .arg(dir.path())
            .arg("--no-env")
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        warning_codes(&doc),
        [(".env".to_owned(), "too_large".to_owned())]
    );
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{doc}");
    assert_eq!(entries[0]["name"], "KEYGATE_API_KEY");
    assert_eq!(entries[0]["redacted"], kg.to_string());

    let out = run(&[]);
    let warning = ".env is 3 GiB; only its first 1 MiB was read";
    assert_no_problems(&out, &kg, &["Warnings (1):", warning]);
}

#[test]
fn an_mcp_json_over_1_mib_is_an_io_error_not_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".mcp.json");
    fs::write(&path, r#"{"mcpServers":{}}"#).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let out = keygate_within(64)
        .arg("doctor")
        .arg(dir.path())
        .arg("--no-env")
        .output()
        .unwrap();
    assert_exit_saying(
        &out,
        2,
        "is larger than 1048576 bytes; an .mcp.json is a few lines",
    );
}

#[cfg(unix)]
#[test]
fn links_out_of_the_directory_are_not_followed() {
    use std::os::unix::fs::symlink;

    let tree = tempfile::tempdir().unwrap();
    let project = tree.path().join("project");
    let outside = tree.path().join("elsewhere");
    fs::create_dir_all(&project).unwrap();
    fs::create_dir_all(&outside).unwrap();
    // What the links lead to would be problems, were they read.
    let kg = key("kg", KeyKind::User);
    fs::write(
        outside.join("secrets.env"),
        format!("GITHUB_TOKEN={}\n", kg.expose()),
    )
    .unwrap();
    let mcp =
        json!({"mcpServers": {"z": {"command": "zcli", "env": {"ZEROPS_TOKEN": github_token()}}}});
    fs::write(outside.join("mcp.json"), mcp.to_string()).unwrap();
    symlink(outside.join("secrets.env"), project.join(".env")).unwrap();
    symlink("../elsewhere/mcp.json", project.join(".mcp.json")).unwrap();
    symlink("/dev/zero", project.join(".env.zero")).unwrap();
    symlink("missing.env", project.join(".env.gone")).unwrap();

    let out = doctor(&project, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["entries"], json!([]));
    assert_eq!(doc["problems"], json!([]));
    assert_eq!(doc["mcp_json"], false);
    let mut warnings = warning_codes(&doc);
    warnings.sort();
    let want: Vec<(String, String)> = [
        (".env", "link_outside"),
        (".env.gone", "link_broken"),
        (".env.zero", "link_outside"),
        (".mcp.json", "link_outside"),
    ]
    .iter()
    .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(warnings, want);

    let out = doctor(&project, &[]);
    let text = stdout(&out);
    assert!(
        text.contains(".mcp.json: not read (see the warnings)"),
        "{text}"
    );
    assert!(
        text.contains(".mcp.json is a link to ../elsewhere/mcp.json, outside"),
        "{text}"
    );
    assert!(text.contains("not followed"), "{text}");
    assert!(!text.contains(kg.expose()));
}

#[cfg(unix)]
#[test]
fn a_link_inside_the_directory_is_followed() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("config")).unwrap();
    let kg = key("kg", KeyKind::User);
    fs::write(
        dir.path().join("config/dev.env"),
        format!("GITHUB_TOKEN={}\n", kg.expose()),
    )
    .unwrap();
    symlink("config/dev.env", dir.path().join(".env")).unwrap();
    // A directory called `.env.d` (or a virtualenv called `.env`) is not a file to read.
    fs::create_dir_all(dir.path().join(".env.d")).unwrap();

    let out = doctor(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut codes = codes(&doc);
    codes.sort();
    assert_eq!(codes, ["env_file_not_ignored", "wrong_kind"]);
    assert_eq!(doc["entries"][0]["source"], ".env");
    assert_eq!(doc["warnings"], json!([]));
}

#[cfg(unix)]
#[test]
fn a_fifo_called_env_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join(".env"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = doctor(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        warning_codes(&doc),
        [(".env".to_owned(), "not_a_file".to_owned())]
    );
}
