//! Integration tests of the `keygate` binary: each runs the real program.
//!
//! `keygate check` and the admin verbs against a running `keygated` are exercised by the
//! end-to-end tests (package `keygate-e2e`), which spawn both binaries.

mod approvals;
mod bootstrap;
mod check;
mod cli;
mod doctor;
mod fake;
mod http;
mod scan;
mod token;

use assert_cmd::Command;
use keygate_token::{KeyKind, Token, TokenFormat};

/// The binary with an empty environment, so the caller's keys never leak into a test.
fn keygate() -> Command {
    let mut cmd = Command::cargo_bin("keygate").expect("the keygate binary is built");
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// The binary under `ulimit -v` (address space, in MiB) and with an empty environment:
/// a program that reads a whole large file into memory fails to allocate, so a test
/// can tell bounded memory from unbounded without measuring anything. A debug build
/// maps about 24 MiB before it does any work.
fn keygate_within(mib: u64) -> Command {
    let bin = assert_cmd::cargo::cargo_bin("keygate");
    let mut cmd = Command::new("sh");
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024))
        .arg(bin);
    cmd
}

fn key(brand: &str, kind: KeyKind) -> Token {
    TokenFormat::new(brand)
        .expect("valid brand")
        .generate(kind)
        .expect("randomness")
}

/// A GitHub-shaped token built at run time, so no literal credential sits in the repo.
fn github_token() -> String {
    format!("{}{}", concat!("gh", "p_"), "A1b2C3d4".repeat(5))[..40].to_owned()
}

/// A string shaped like a keygate key whose checksum is wrong.
fn look_alike(brand: &str) -> String {
    let real = key(brand, KeyKind::User);
    let raw = real.expose();
    let (head, checksum) = raw.split_at(raw.len() - 6);
    let flipped: String = checksum
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    format!("{head}{flipped}")
}

/// The 401 body of a revoked key.
const KEY_REVOKED: &str = r#"{"error":"invalid_token","reason":"key_revoked"}"#;

/// `out` exited with `code`, and its stderr holds `said`.
#[track_caller]
fn assert_exit_saying(out: &std::process::Output, code: i32, said: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    assert_said(out, said);
}

/// The stderr of `out` holds `said`.
#[track_caller]
fn assert_said(out: &std::process::Output, said: &str) {
    assert!(stderr(out).contains(said), "{}", stderr(out));
}

/// `text` holds every one of `parts`.
#[track_caller]
fn assert_contains_all(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{text}");
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback URL nothing listens on: a port bound and released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
