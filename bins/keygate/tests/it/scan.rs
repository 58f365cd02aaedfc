//! `keygate scan` on fixture trees.

use std::fs;
use std::path::Path;

use keygate_test::utf16_with_bom as utf16;
use keygate_token::KeyKind;
use serde_json::Value;

use crate::{assert_said, github_token, key, keygate, keygate_within, look_alike, stderr, stdout};

/// A tree with: a committed keygate key, a look-alike with a bad checksum, a GitHub
/// token in `.env`, a key in an ignored file, a key in a binary file, and a key in `.git/`.
struct Fixture {
    dir: tempfile::TempDir,
    key: String,
    ignored_key: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let committed = key("zoop", KeyKind::Tenant);
    let ignored = key("kg", KeyKind::User);
    fs::create_dir_all(root.join("src")).unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(
        root.join("src/config.rs"),
        format!(
            "// settings\nconst KEY: &str = \"{}\";\nconst FAKE: &str = \"{}\";\n",
            committed.expose(),
            look_alike("kg")
        ),
    )
    .unwrap();
    fs::write(
        root.join(".env"),
        format!("GITHUB_TOKEN={}\n", github_token()),
    )
    .unwrap();
    fs::write(root.join(".gitignore"), "secrets.txt\n").unwrap();
    fs::write(root.join("secrets.txt"), ignored.expose()).unwrap();
    // An executable's header: NULs and control bytes, as binaries start.
    let mut binary = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0".to_vec();
    binary.extend_from_slice(ignored.expose().as_bytes());
    fs::write(root.join("blob.bin"), binary).unwrap();
    fs::write(root.join(".git/config"), ignored.expose()).unwrap();
    fs::write(root.join("clean.txt"), "nothing to see\n").unwrap();
    Fixture {
        dir,
        key: committed.expose().to_owned(),
        ignored_key: ignored.expose().to_owned(),
    }
}

fn scan(root: &Path, args: &[&str]) -> std::process::Output {
    keygate()
        .current_dir(root)
        .arg("scan")
        .args(args)
        .output()
        .unwrap()
}

/// `keygate scan --format FORMAT` of the fixture, which finds its keys (exit 1): the
/// output, and the document on stdout.
fn scan_document(f: &Fixture, format: &str) -> (std::process::Output, Value) {
    let out = scan(f.dir.path(), &["--format", format]);
    assert_eq!(out.status.code(), Some(1));
    let doc = serde_json::from_slice(&out.stdout).unwrap();
    (out, doc)
}

#[test]
fn finds_keys_and_foreign_tokens_redacted() {
    let f = fixture();
    let out = scan(f.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(".env:1:14: GitHub token ghp_…"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("src/config.rs:2:20: keygate tenant key zoop_tk_"),
        "{text}"
    );
    // Redacted: no secret, no look-alike, nothing from ignored, binary or .git files.
    assert!(!text.contains(&f.key));
    assert!(!text.contains(&github_token()));
    assert!(!text.contains(&f.ignored_key[..20]));
}

#[test]
fn no_ignore_includes_ignored_files() {
    let f = fixture();
    let out = scan(f.dir.path(), &["--no-ignore"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("secrets.txt:1:1: keygate user key kg_uk_"),
        "{text}"
    );
    // .git/ and binary files stay skipped.
    assert!(!text.contains(".git/config"), "{text}");
    assert!(!text.contains("blob.bin"), "{text}");
}

#[test]
fn clean_tree_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
    // A random look-alike with a bad checksum is not a key.
    fs::write(dir.path().join("b.txt"), look_alike("kg")).unwrap();
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("0 credentials found"));
}

#[test]
fn size_cap_and_explicit_paths() {
    let f = fixture();
    let out = scan(f.dir.path(), &["--max-filesize", "10", "src"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_said(&out, "1 over 10 bytes skipped");
    let out = scan(f.dir.path(), &["src/config.rs", ".env"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[test]
fn json_output_parses() {
    let f = fixture();
    let (out, doc) = scan_document(&f, "json");
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    let key = findings
        .iter()
        .find(|f| f["kind"] == "keygate-tenant-key")
        .unwrap();
    assert_eq!(key["path"], "src/config.rs");
    assert_eq!(key["line"], 2);
    assert_eq!(key["column"], 20);
    assert!(doc["skipped"]["binary"].as_u64().unwrap() >= 1);
    assert!(!stdout(&out).contains(&f.key));
}

#[test]
fn sarif_output_is_a_valid_2_1_0_log() {
    let f = fixture();
    let (out, doc) = scan_document(&f, "sarif");
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "keygate");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"github") && ids.contains(&"keygate-user-key"));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        let rule = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], rule);
        let loc = &result["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].is_string());
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
    }
    assert!(!stdout(&out).contains(&f.key));
}

#[test]
fn hidden_files_can_be_skipped() {
    let f = fixture();
    let out = scan(f.dir.path(), &["--no-hidden"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains(".env"), "{}", stdout(&out));
}

#[test]
fn utf16_files_with_a_byte_order_mark_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let le = key("kg", KeyKind::User);
    let be = key("zoop", KeyKind::Tenant);
    // As PowerShell's `>` writes: UTF-16 with a BOM and CRLF line ends.
    let text = |k: &str| format!("# d\u{e9}j\u{e0} vu \u{1F511}\r\nKEYGATE_API_KEY={k}\r\n");
    fs::write(dir.path().join("le.env"), utf16(&text(le.expose()), false)).unwrap();
    fs::write(dir.path().join("be.env"), utf16(&text(be.expose()), true)).unwrap();
    let out = scan(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, u64, u64, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
                f["redacted"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("be.env".to_owned(), 2, 17, be.to_string()),
            ("le.env".to_owned(), 2, 17, le.to_string()),
        ]
    );
    assert_eq!(doc["skipped"]["binary"], 0);
    assert!(!stdout(&out).contains(le.expose()) && !stdout(&out).contains(be.expose()));
}

#[test]
fn one_nul_does_not_make_a_text_file_binary() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("kg", KeyKind::User);
    // A NUL that slipped into a config file, well inside the first 8 KiB.
    let text = format!(
        "name = \"x\0\"\n{}token = \"{}\"\n",
        "# padding\n".repeat(50),
        k.expose()
    );
    fs::write(dir.path().join("settings.toml"), text).unwrap();
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim_end(),
        format!("settings.toml:52:10: keygate user key {k}")
    );
    assert_said(&out, "0 binary skipped");
}

#[test]
fn keys_past_10_mib_are_found_in_bounded_memory() {
    use std::io::{Seek, SeekFrom, Write};

    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.log");
    let mut file = fs::File::create(&path).unwrap();
    let header = "a log line\n".repeat(1000);
    file.write_all(header.as_bytes()).unwrap();
    // Keys across every power-of-two boundary from 64 KiB to 8 MiB (where reads and
    // windows end, whatever their size), just under the old 10 MiB cap, and far past it,
    // each on a line of its own; the file is sparse around them (read as NULs).
    let mut places: Vec<u64> = (16..=23).map(|bit| (1u64 << bit) - 30).collect();
    places.extend([10 * MIB - 40, 10 * MIB + 100, 20 * MIB, 47 * MIB]);
    places.extend((16..=23).map(|bit| (1u64 << bit) - 4096 - 7));
    places.sort_unstable();
    let keys: Vec<_> = places.iter().map(|_| key("kg", KeyKind::User)).collect();
    for (at, k) in places.iter().zip(&keys) {
        file.seek(SeekFrom::Start(*at)).unwrap();
        write!(file, "\n{}\n", k.expose()).unwrap();
    }
    file.set_len(48 * MIB).unwrap();
    drop(file);

    // Each key's line: the header's lines and two per key before it (holes hold no newline).
    let mut want = Vec::new();
    let mut newlines_before = header.matches('\n').count();
    for k in &keys {
        newlines_before += 1;
        want.push(format!(
            "huge.log:{}:1: keygate user key {k}",
            newlines_before + 1
        ));
        newlines_before += 1;
    }

    // 64 MiB of address space: a scan that read the 48 MiB file whole could not.
    let out = keygate_within(64)
        .current_dir(dir.path())
        .args(["scan", "huge.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got, want);
    assert!(stderr(&out).contains(&format!("{} credentials found", keys.len())));
}
