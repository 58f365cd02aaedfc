//! Arguments, usage errors and completions.

use crate::{assert_exit_saying, keygate, stderr, stdout};

#[test]
fn usage_errors_exit_2_with_help() {
    for args in [
        &["frobnicate"][..],
        &["token"],
        &["scan", "--format", "xml"],
        &["keys", "create", "--kind", "robot", "--name", "x"],
        &["keys", "create", "--kind", "user", "--name", "x"],
        &[
            "keys",
            "create",
            "--kind",
            "user",
            "--name",
            "x",
            "--expires-in",
            "30 days",
        ],
        &["completions", "tcsh"],
    ] {
        let out = keygate().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        // Either the usage itself, or an error naming the problem and pointing at --help.
        let helpful =
            err.contains("Usage:") || (err.starts_with("error: ") && err.contains("'--help'"));
        assert!(helpful, "{args:?}: {err}");
    }
}

#[test]
fn help_exits_0() {
    let out = keygate().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("scan"));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = keygate().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = stdout(&out);
        assert!(script.contains("keygate"), "{shell}");
        assert!(script.contains("doctor"), "{shell}");
    }
}

#[test]
fn io_errors_exit_2() {
    let out = keygate()
        .args(["scan", "definitely/not/here"])
        .output()
        .unwrap();
    assert_exit_saying(&out, 2, "cannot scan definitely/not/here");
    let out = keygate()
        .args(["doctor", "definitely/not/here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn admin_verbs_need_the_key_in_the_environment() {
    let out = keygate().args(["keys", "list"]).output().unwrap();
    assert_exit_saying(&out, 2, "KEYGATE_API_KEY is not set");
    let out = keygate()
        .args(["keys", "list"])
        .env("KEYGATE_API_KEY", "not-a-key")
        .output()
        .unwrap();
    assert_exit_saying(&out, 2, "KEYGATE_API_KEY does not hold a keygate key");
    assert!(!stderr(&out).contains("not-a-key"));
    // A key id is checked before any request, so nothing odd reaches a URL.
    let out = keygate()
        .args(["keys", "revoke", "../../x"])
        .output()
        .unwrap();
    assert_exit_saying(&out, 2, "is not a key id");
}

#[test]
fn an_unreachable_server_is_named() {
    let url = crate::closed_port_url();
    let key = crate::key("kg", keygate_token::KeyKind::User);
    let out = keygate()
        .args(["projects", "list", "--server", &url])
        .env("KEYGATE_API_KEY", key.expose())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the keygate server at {url}")),
        "{err}"
    );
    assert!(!err.contains(key.expose()));
}
