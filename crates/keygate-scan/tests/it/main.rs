//! The public API of keygate-scan: what a library user (a hook, a launcher) sees.

use std::error::Error as _;
use std::fs;

use keygate_scan::{
    CredentialMap, Doctor, Error, Field, Holds, Progress, Report, Scanner, read_mcp_json,
};
use keygate_token::{CredentialKind, KeyKind, Token, TokenFormat};
use serde_json::Value;

fn key(brand: &str, kind: KeyKind) -> Token {
    TokenFormat::new(brand).unwrap().generate(kind).unwrap()
}

/// A GitHub-shaped token built at run time, so no literal credential sits in the repo.
fn github_token() -> String {
    format!("{}{}", concat!("gh", "p_"), "A1b2C3d4".repeat(5))[..40].to_owned()
}

/// `err` and its sources, joined as anyhow's `{:#}` shows them.
fn chain(err: &Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

#[test]
fn a_scan_reports_findings_counts_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let kg = key("zoop", KeyKind::User);
    fs::write(
        dir.path().join("config.env"),
        format!("A=1\nKEYGATE_API_KEY={}\n", kg.expose()),
    )
    .unwrap();
    fs::write(
        dir.path().join("notes.txt"),
        format!("x {}\n", github_token()),
    )
    .unwrap();
    fs::write(dir.path().join("image.bin"), b"\x7fELF\0\0\0\0\0\0\0\0").unwrap();
    fs::write(dir.path().join("big.log"), "a line\n".repeat(100)).unwrap();

    let mut seen = 0;
    let report = Scanner::new()
        .max_filesize(Some(500))
        .scan_paths_with(&[dir.path()], |p| {
            if let Progress::File { files, .. } = p {
                seen = files;
            }
        })
        .unwrap();
    assert_eq!(seen, 4);
    assert_eq!(
        (report.files, report.binary, report.too_large),
        (4, 1, 1),
        "{report:?}"
    );
    assert!(report.unreadable.is_empty());
    let mut kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    kinds.sort_by_key(|k| k.id());
    assert_eq!(
        kinds,
        [
            CredentialKind::GitHub,
            CredentialKind::Keygate(KeyKind::User)
        ]
    );
    let found = report
        .findings
        .iter()
        .find(|f| f.path.ends_with("config.env"))
        .unwrap();
    assert_eq!((found.line, found.column), (2, 17));
    assert_eq!(found.redacted, kg.to_string());

    let mut text = Vec::new();
    report.write_text(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.lines().count(), 2);
    for printed in [text, report.to_json(), report.to_sarif("1.2.3")] {
        assert!(!printed.contains(kg.expose()), "a secret was printed");
        assert!(!printed.contains(&github_token()), "a secret was printed");
    }
    let sarif: Value = serde_json::from_str(&report.to_sarif("1.2.3")).unwrap();
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["semanticVersion"], "1.2.3");
    assert_eq!(
        driver["rules"].as_array().unwrap().len(),
        CredentialKind::ALL.len()
    );
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["files_scanned"], 4);
    assert_eq!(json["skipped"]["too_large"], 1);
}

#[test]
fn an_empty_report_prints_nothing_but_its_shape() {
    let report = Report::default();
    let mut text = Vec::new();
    report.write_text(&mut text).unwrap();
    assert!(text.is_empty());
    assert_eq!(
        report.to_json(),
        r#"{"files_scanned":0,"findings":[],"skipped":{"binary":0,"too_large":0,"unreadable":0}}"#
    );
}

#[test]
fn a_missing_root_is_an_error_before_any_walk() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let mut called = false;
    let err = Scanner::new()
        .scan_paths_with(&[dir.path(), missing.as_path()], |_| called = true)
        .unwrap_err();
    assert!(matches!(err, Error::ScanRoot { .. }), "{err:?}");
    assert!(chain(&err).starts_with(&format!("cannot scan {}: ", missing.display())));
    assert!(!called);
}

#[test]
fn the_doctor_maps_a_directory_and_takes_introspection_answers() {
    let dir = tempfile::tempdir().unwrap();
    let kg = key("kg", KeyKind::User);
    let other = key("kg", KeyKind::Tenant);
    fs::write(
        dir.path().join(".mcp.json"),
        format!(
            r#"{{"mcpServers":{{"z":{{"command":"zcli","env":{{"ZEROPS_TOKEN":"{}","EMPTY":""}}}}}}}}"#,
            github_token()
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join(".env"),
        format!(
            "KEYGATE_API_KEY={}\nREF=${{KEYGATE_API_KEY}}\n",
            kg.expose()
        ),
    )
    .unwrap();

    let env = [("OTHER_KEYGATE_KEY".to_owned(), other.expose().to_owned())];
    let mut map: CredentialMap = Doctor::new().environment(env).run(dir.path()).unwrap();
    assert!(map.mcp_json);
    let mut codes: Vec<&str> = map.problems.iter().map(|p| p.code).collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "empty_value",
            "env_file_not_ignored",
            "mcp_json_not_ignored",
            "wrong_kind"
        ]
    );
    let sources: Vec<(&str, Field)> = map
        .entries
        .iter()
        .map(|e| (e.source.as_str(), e.field))
        .collect();
    assert_eq!(
        sources,
        [
            (".mcp.json", Field::Env),
            (".mcp.json", Field::Env),
            (".env", Field::Variable),
            ("environment", Field::Variable),
        ]
    );
    assert_eq!(map.entries[0].holds, Holds::Empty);
    // The keys to introspect, each once, in the order found.
    let ids: Vec<_> = map.keys().iter().map(Token::id).collect();
    assert_eq!(ids, [kg.id(), other.id()]);

    map.key_active(&kg, "acme", 1);
    map.key_rejected(&other, "key_revoked", "the key was revoked");
    assert_eq!(
        map.entries[2].status.as_deref(),
        Some("active: tenant acme, 1 project(s)")
    );
    assert_eq!(
        map.entries[3].status.as_deref(),
        Some("rejected: key_revoked")
    );
    let rejected = map.problems.last().unwrap();
    assert_eq!(rejected.code, "key_rejected");
    assert_eq!(
        rejected.message,
        format!(
            "keygate key {}: the key was revoked (key_revoked)",
            other.id()
        )
    );

    let mut text = Vec::new();
    map.write_text(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("Problems (5):"), "{text}");
    assert!(
        text.contains("[active: tenant acme, 1 project(s)]"),
        "{text}"
    );
    let json: Value = serde_json::from_str(&map.to_json()).unwrap();
    assert_eq!(json["entries"][1]["field"], "env");
    for printed in [text, map.to_json()] {
        assert!(!printed.contains(kg.expose()), "a secret was printed");
        assert!(!printed.contains(other.expose()), "a secret was printed");
        assert!(!printed.contains(&github_token()), "a secret was printed");
    }
}

#[test]
fn doctor_errors_read_as_the_cli_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, "").unwrap();
    let err = Doctor::new().run(&file).unwrap_err();
    assert_eq!(
        chain(&err),
        format!("{} is not a directory", file.display())
    );

    let mcp = dir.path().join(".mcp.json");
    fs::write(&mcp, "{ not json").unwrap();
    let err = Doctor::new().run(dir.path()).unwrap_err();
    assert!(matches!(err, Error::McpJson { .. }), "{err:?}");
    assert!(chain(&err).starts_with(&format!("parsing {}: key must be a string", mcp.display())));

    fs::write(&mcp, r#"{"mcpServers":[]}"#).unwrap();
    let err = read_mcp_json(&mcp).unwrap_err();
    assert_eq!(
        chain(&err),
        format!("parsing {}: `mcpServers` is not an object", mcp.display())
    );

    let err = read_mcp_json(&dir.path().join("absent.json")).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
}
