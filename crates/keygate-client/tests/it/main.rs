//! keygate-client against a canned HTTP server on loopback: what it sends, how it reads
//! answers and refusals, and the start-up check's outcomes. The real server is
//! exercised by the end-to-end tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use keygate_client::{
    Check, Client, CreateKey, Error, Lookup, Outcome, Refusal, RejectReason, TokenInfo,
};
use keygate_token::{KeyKind, Token, TokenFormat};
use serde_json::json;

/// A request as the fake saw it: request line, `Authorization`, body.
type Seen = (String, Option<String>, String);

/// Serves `answers` (status, body) in order, one per connection, on `127.0.0.1:0`.
fn fake(answers: Vec<(u16, String)>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let (mut auth, mut len) = (None, 0);
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(": ").unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "authorization" => auth = Some(value.to_owned()),
                    "content-length" => len = value.parse().unwrap(),
                    _ => {}
                }
            }
            let mut sent = vec![0; len];
            reader.read_exact(&mut sent).unwrap();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let sent = String::from_utf8(sent).unwrap();
            tx.send((line.trim_end().to_owned(), auth, sent)).unwrap();
        }
    });
    (url, rx)
}

fn key(kind: KeyKind) -> Token {
    TokenFormat::default().generate(kind).unwrap()
}

fn introspection(token: &Token, projects: usize) -> String {
    let projects: Vec<_> = (0..projects)
        .map(|i| json!({"id": format!("p{i}"), "name": format!("project{i}")}))
        .collect();
    json!({
        "id": token.id().to_string(), "kind": "user", "tenant": {"id": "t1", "name": "acme"},
        "user": {"id": "u1", "name": "ada"}, "scopes": ["services:read"],
        "projects": projects, "read_only": true, "expires_at": null,
    })
    .to_string()
}

/// A check reading the key from the env block of an `.mcp.json` (the process
/// environment is shared by the tests; the variable is one no one sets).
fn check_from_file(server: &str, token: &Token) -> (tempfile::TempDir, Check) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".mcp.json");
    let var = "KEYGATE_CLIENT_TEST_NEVER_SET";
    let doc = json!({"mcpServers": {"shop": {"env": {var: token.expose()}}}});
    std::fs::write(&path, doc.to_string()).unwrap();
    let lookup = Lookup::new().env_var(var).mcp_json(Some(path));
    (dir, Check::new(server).lookup(lookup))
}

#[tokio::test]
async fn token_introspection_is_read_typed_with_the_key_as_bearer() {
    let token = key(KeyKind::User);
    let (url, seen) = fake(vec![(200, introspection(&token, 2))]);
    let client = Client::new(&format!("{url}/"), token.clone()).unwrap();
    assert_eq!(client.server(), url);
    let info: TokenInfo = client.token().await.unwrap();
    assert_eq!(info.tenant.name, "acme");
    assert_eq!(info.projects.len(), 2);
    assert!(info.read_only);
    let (line, auth, _) = seen.recv().unwrap();
    assert_eq!(line, "GET /api/v1/token HTTP/1.1");
    assert_eq!(auth, Some(format!("Bearer {}", token.expose())));
}

#[tokio::test]
async fn introspect_is_the_info_or_the_reason_a_401_gives() {
    let token = key(KeyKind::User);
    let (url, _seen) = fake(vec![
        (200, introspection(&token, 1)),
        (401, r#"{"error":"expired"}"#.to_owned()),
        (500, String::new()),
    ]);
    let client = Client::new(&url, token.clone()).unwrap();
    let info = client.introspect().await.unwrap().unwrap();
    assert_eq!(info.tenant.name, "acme");
    let refused = client.introspect().await.unwrap().unwrap_err();
    assert_eq!(refused, RejectReason::Expired);
    let err = client.introspect().await.unwrap_err();
    assert!(matches!(err, Error::Rejected { status: 500, .. }), "{err}");
}

#[tokio::test]
async fn refusals_carry_the_status_body_and_reason() {
    let token = key(KeyKind::User);
    let (url, seen) = fake(vec![
        (
            401,
            r#"{"error":"invalid_token","reason":"key_revoked"}"#.to_owned(),
        ),
        (403, r#"{"error":"insufficient_scope"}"#.to_owned()),
        (404, String::new()),
    ]);
    let client = Client::new(&url, token.clone()).unwrap();
    let err = client.projects().await.unwrap_err();
    assert_eq!(err.reason(), Some(RejectReason::KeyRevoked));
    assert!(!err.to_string().contains(token.expose()));
    let err = client
        .create_key(&CreateKey::new("ci", KeyKind::Tenant, vec!["a".to_owned()]))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some(RejectReason::InsufficientScope));
    assert_eq!(
        err.to_string(),
        format!("the keygate server at {url} answered 403 (insufficient_scope)")
    );
    let err = client.revoke_key(&token.id()).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { status: 404, .. }), "{err}");
    let seen: Vec<Seen> = seen.iter().take(3).collect();
    assert_eq!(seen[1].2, r#"{"name":"ci","kind":"tenant","scopes":["a"]}"#);
    assert_eq!(
        seen[2].0,
        format!("POST /api/v1/keys/{}/revoke HTTP/1.1", token.id())
    );
    assert_eq!(seen[2].2, "{}");
}

#[tokio::test]
async fn the_start_up_check_passes_one_project_and_refuses_the_rest() {
    let token = key(KeyKind::User);
    let (url, _seen) = fake(vec![
        (200, introspection(&token, 1)),
        (200, introspection(&token, 0)),
        (200, introspection(&token, 3)),
        (401, r#"{"error":"expired"}"#.to_owned()),
        (500, r#"{"error":"internal"}"#.to_owned()),
    ]);
    let (_dir, check) = check_from_file(&url, &token);
    let Outcome::Ready(ready) = check.run().await.unwrap() else {
        panic!("one project passes");
    };
    assert_eq!(ready.project().name, "project0");
    assert!(ready.read_only());
    assert!(
        ready
            .source()
            .to_string()
            .starts_with("server \"shop\" of ")
    );
    let refusal = |outcome| match outcome {
        Outcome::Refused(refusal) => refusal,
        other => panic!("{other:?}"),
    };
    let r = refusal(check.run().await.unwrap());
    assert!(matches!(r, Refusal::NoProject { .. }));
    assert_eq!(r.to_string(), "Token has no project access");
    let r = refusal(check.run().await.unwrap());
    assert_eq!(
        r.to_string(),
        "Token accesses 3 projects; use project-scoped token"
    );
    let r = refusal(check.run().await.unwrap());
    assert_eq!(
        r.to_string(),
        "AUTH_TOKEN_EXPIRED: expired (the key has expired)"
    );
    let err = check.run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("the keygate server at {url} answered 500 to token introspection (internal)")
    );
}

#[tokio::test]
async fn no_key_and_a_malformed_key_are_refused_offline() {
    let lookup = Lookup::new().env_var("KEYGATE_CLIENT_TEST_NEVER_SET");
    // Port 9 (discard) would fail the request: nothing is asked.
    let check = Check::new("http://127.0.0.1:9").lookup(lookup);
    let Outcome::Refused(r) = check.run().await.unwrap() else {
        panic!("no key, no start");
    };
    assert_eq!(
        r.to_string(),
        "No authentication found: set KEYGATE_CLIENT_TEST_NEVER_SET or add it to the env block in .mcp.json"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".mcp.json");
    let doc = json!({"mcpServers": {"a": {"env": {"KG_CLIENT_TEST_X": "kg_uk_short"}}}});
    std::fs::write(&path, doc.to_string()).unwrap();
    let lookup = Lookup::new()
        .env_var("KG_CLIENT_TEST_X")
        .mcp_json(Some(path));
    let Outcome::Refused(r) = check.clone().lookup(lookup).run().await.unwrap() else {
        panic!("a malformed key does not start");
    };
    assert!(r.to_string().starts_with("Token is malformed: "), "{r}");
    assert!(r.origin().is_some());
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_verdict() {
    let token = key(KeyKind::User);
    let (_dir, check) = check_from_file("http://127.0.0.1:9", &token);
    let err = check.run().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot reach the keygate server at http://127.0.0.1:9: "),
        "{err}"
    );
    let err = Client::new("ftp://x", token).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server address \"ftp://x\" has scheme \"ftp\"; use https:// (or http:// on loopback)"
    );
}
