//! Forward-auth through a real nginx: `examples/forward-auth/nginx.conf` as shipped
//! (only its three addresses replaced) in front of a small echo service, with a real
//! `keygated --demo` answering its auth requests.
//!
//! Needs nginx with the auth_request module (Debian `nginx-light`, `/usr/sbin/nginx`,
//! or `KEYGATE_NGINX`); without it the test prints a note and passes, except under CI.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use keygate_e2e::{Answer, Process, Server, ServerOptions, client, send, under_ci, workspace_dir};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(10);

fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("KEYGATE_NGINX")
        .map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from);
    path.is_file().then_some(path)
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// The service behind nginx: answers every request with what it received (method,
/// URI, headers) as JSON.
async fn echo_service() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    async fn echo(
        method: axum::http::Method,
        uri: axum::http::Uri,
        headers: HeaderMap,
    ) -> axum::Json<Value> {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
                )
            })
            .collect();
        axum::Json(json!({"method": method.as_str(), "uri": uri.to_string(), "headers": headers}))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let app = axum::Router::new().fallback(echo);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// nginx running the example config in its own prefix directory; killed on drop.
struct Nginx {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(binary: &PathBuf, keygate: SocketAddr, api: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let prefix = dir.path();
        let example =
            std::fs::read_to_string(workspace_dir().join("examples/forward-auth/nginx.conf"))
                .expect("the example config");
        let port = free_port();
        let mut site = example.clone();
        for (from, to) in [
            ("127.0.0.1:8000", format!("127.0.0.1:{port}")),
            ("127.0.0.1:8080", keygate.to_string()),
            ("127.0.0.1:9000", api.to_string()),
        ] {
            assert!(site.contains(from), "the example names {from}");
            site = site.replace(from, &to);
        }
        std::fs::write(prefix.join("keygate.conf"), site).expect("the site config is written");
        let p = prefix.display();
        // The main config: only what a system's nginx.conf holds around the include.
        let main = format!(
            "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log stderr info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n  \
             proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  \
             uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  \
             include {p}/keygate.conf;\n}}\n"
        );
        std::fs::write(prefix.join("nginx.conf"), main).expect("the main config is written");
        let mut cmd = Command::new(binary);
        cmd.arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"));
        let mut process = Process::spawn(cmd);
        let deadline = Instant::now() + START;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if let Some(status) = process.try_wait() {
                panic!("nginx exited ({status}); stderr:\n{}", process.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within {START:?}; stderr:\n{}",
                process.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            process,
            port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn get(&self, path: &str, key: Option<&str>) -> Answer {
        let mut req = client().get(self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        send(req).await
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.process.kill();
    }
}

fn assert_refused(answer: &Answer, status: u16, body: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.text, body, "keygated's own body reaches the client");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(
        answer.json["headers"].is_null(),
        "the service was not reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_in_front_of_a_service() {
    let Some(nginx_binary) = nginx_binary() else {
        assert!(
            !under_ci(),
            "the forward-auth test needs nginx (nginx-light) at /usr/sbin/nginx under CI"
        );
        eprintln!("note: skipping the nginx forward-auth test; no nginx at /usr/sbin/nginx");
        return;
    };
    let server = Server::start(
        ServerOptions::demo()
            .args(&["--key-rate", "5"])
            .env("KEYGATE_LOG", "info,keygate_server::forward_auth=debug"),
    );
    let owner = server.owner_key();
    let api = server.api(&owner);
    let (echo, echo_task) = echo_service().await;
    let nginx = Nginx::start(&nginx_binary, server.addr, echo);

    // No key: 401 with the table's body and challenge, the service never reached.
    let r = nginx.get("/things", None).await;
    assert_refused(&r, 401, r#"{"error":"missing_token"}"#);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="keygate""#)
    );
    assert_eq!(r.headers.get_all("www-authenticate").iter().count(), 1);

    // A good key: the service sees the key id, and never the key.
    let (id, key) = api.new_tenant_key("reader", &["services:read"]).await;
    let r = send(
        client()
            .get(nginx.url("/things?page=2"))
            .bearer_auth(&key)
            .header("x-keygate-user", "us_spoofed")
            .header("x-keygate-key-id", "spoofed"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = &r.json["headers"];
    assert_eq!(seen["x-keygate-key-id"], id.as_str(), "{seen}");
    assert_eq!(seen["x-keygate-actor"], "tenant");
    assert_eq!(seen["x-keygate-scopes"], "services:read");
    assert!(
        seen["x-keygate-tenant"]
            .as_str()
            .is_some_and(|t| t.starts_with("tn_"))
    );
    assert!(
        seen.get("x-keygate-user").is_none(),
        "a spoofed header is dropped: {seen}"
    );
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert!(!r.text.contains(&key), "the key never reaches the service");
    assert_eq!(r.json["uri"], "/things?page=2");

    // A missing scope: 403.
    let r = nginx.get("/write/things", Some(&key)).await;
    assert_refused(&r, 403, r#"{"error":"insufficient_scope"}"#);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="keygate", error="insufficient_scope""#)
    );

    // Revoked: refused on the very next request.
    api.revoke(&id).await;
    let r = nginx.get("/things", Some(&key)).await;
    assert_refused(
        &r,
        401,
        r#"{"error":"invalid_token","reason":"key_revoked"}"#,
    );

    // Rate limited: nginx would make a 429 of the auth request a 500; the example's
    // mapping hands the client keygated's 429, body and Retry-After.
    let (_, busy) = api.new_tenant_key("busy", &["services:read"]).await;
    let mut limited = None;
    for _ in 0..20 {
        let r = nginx.get("/things", Some(&busy)).await;
        assert!(
            r.status == 200 || r.status == 429,
            "{} {}",
            r.status,
            r.text
        );
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a key over its budget of 5 a second is refused");
    assert_refused(&r, 429, r#"{"error":"rate_limited"}"#);
    let secs: u64 = r
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!(secs >= 1);

    // keygated logged each decision with the original method and URI, never a key.
    let logs = server.logs();
    assert!(logs.contains("forward-auth decision"), "{logs}");
    assert!(logs.contains(r#"uri=Some("/write/things")"#), "{logs}");
    assert!(logs.contains(r#"method=Some("GET")"#), "{logs}");
    for secret in [&key, &busy, &owner] {
        assert!(!logs.contains(secret.as_str()), "a key in keygated's log");
    }
    // keygated gone: nginx would answer 500; the mapping says 503 unavailable.
    let mut server = server;
    server.kill();
    let r = nginx.get("/things", Some(&busy)).await;
    assert_refused(&r, 503, r#"{"error":"unavailable"}"#);
    drop(nginx);
    echo_task.abort();
}
