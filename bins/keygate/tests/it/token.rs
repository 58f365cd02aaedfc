//! `keygate token check`.

use keygate_token::KeyKind;

use crate::{assert_exit_saying, github_token, key, keygate, look_alike, stderr, stdout};

#[test]
fn valid_token_prints_kind_and_id_but_not_the_secret() {
    let token = key("zoop", KeyKind::Tenant);
    let out = keygate()
        .args(["token", "check", token.expose()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("tenant"), "{text}");
    assert!(text.contains("zoop"), "{text}");
    assert!(text.contains(token.id().as_str()), "{text}");
    assert!(!text.contains(token.expose()), "the secret was printed");
}

#[test]
fn json_output() {
    let token = key("kg", KeyKind::User);
    let out = keygate()
        .args(["token", "check", "--json", token.expose()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "user");
    assert_eq!(doc["brand"], "kg");
    assert_eq!(doc["id"], token.id().as_str());
}

#[test]
fn reads_one_token_from_stdin() {
    let token = key("kg", KeyKind::User);
    let out = keygate()
        .args(["token", "check", "-"])
        .write_stdin(format!("{}\n", token.expose()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(token.id().as_str()));
}

#[test]
fn bad_checksum_is_refused_without_echoing_the_token() {
    let bad = look_alike("kg");
    let out = keygate().args(["token", "check", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("invalid token: token checksum does not match"),
        "{err}"
    );
    assert!(!err.contains(&bad[6..]), "the token was echoed");
    assert!(stdout(&out).is_empty());
}

#[test]
fn precise_errors() {
    for (input, message) in [
        (
            "kg_uk_short",
            "token body is 5 characters long; expected 48",
        ),
        ("kg_xx_abc", "token kind \"xx\" is unknown"),
        ("nothing", "does not start with a `<brand>_<kind>_` prefix"),
    ] {
        let out = keygate().args(["token", "check", input]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{input}");
        assert!(stderr(&out).contains(message), "{input}: {}", stderr(&out));
    }
    let out = keygate()
        .args(["token", "check", "-"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_exit_saying(&out, 1, "token is empty");
}

#[test]
fn a_foreign_credential_is_named() {
    let gh = github_token();
    let out = keygate().args(["token", "check", &gh]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("looks like a GitHub token"), "{err}");
    assert!(!err.contains(&gh), "the token was echoed");
}
