//! Revocation under concurrent load: no request sent after the revoke call returned
//! succeeds with the revoked key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_e2e::{KEY_REVOKED, Mcp, Server};
use serde_json::json;
use tokio::sync::Mutex;

const CLIENTS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_sent_after_the_revoke_returned_succeeds() {
    // Limits far above what 8 clients can send, so no 429 muddies the outcome; the
    // revoked key's 401s all come from one address, so no failure limit either.
    let server = Server::demo_with(&[
        "--key-rate",
        "1000000",
        "--tenant-rate",
        "1000000",
        "--auth-failure-rate",
        "0",
    ]);
    let admin = server.api(&server.owner_key());
    let (id, key) = admin
        .new_key(json!({"name":"hammered","kind":"tenant","scopes":["services:read"]}))
        .await;
    let url = server.url("/api/mcp");
    let start = Instant::now();
    // (sent at, status, body) of every request.
    let log: Arc<Mutex<Vec<(Instant, u16, String)>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let mcp = Mcp::new(&url, &key);
        let log = Arc::clone(&log);
        clients.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut n = 0u64;
            while start.elapsed() < RUN_FOR {
                n += 1;
                let message = json!({"jsonrpc":"2.0","id":format!("{c}-{n}"),"method":"tools/call",
                    "params":{"name":"service.list","arguments":{}}});
                let request = mcp.request(&message);
                // Taken before the request leaves: a request counted as sent after the
                // revoke really was.
                let sent = Instant::now();
                let a = keygate_e2e::send(request).await;
                mine.push((sent, a.status, a.text));
            }
            log.lock().await.extend(mine);
        }));
    }
    tokio::time::sleep(RUN_FOR / 3).await;
    admin.revoke(&id).await;
    let revoked = Instant::now();
    for c in clients {
        c.await.expect("a client task finishes");
    }
    assert!(
        server.api(&key).introspect().await.status == 401,
        "the key is revoked"
    );

    let log = log.lock().await;
    let (mut before_ok, mut after) = (0, 0);
    for (sent, status, body) in log.iter() {
        match status {
            200 => assert!(
                body.contains("\"result\""),
                "a 200 is a JSON-RPC result: {body}"
            ),
            401 => assert_eq!(body, KEY_REVOKED),
            other => panic!("unexpected status {other}: {body}"),
        }
        if *sent > revoked {
            after += 1;
            assert_eq!(
                *status,
                401,
                "a request sent {:?} after the revoke returned succeeded",
                sent.duration_since(revoked)
            );
        } else if *status == 200 {
            before_ok += 1;
        }
    }
    assert!(before_ok > 0, "requests succeeded before the revoke");
    assert!(after > 0, "requests were sent after the revoke");
}
