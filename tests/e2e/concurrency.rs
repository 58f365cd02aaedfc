//! Revocation under concurrent load: no request sent after the revoke call returned
//! succeeds with the revoked key.

use std::time::{Duration, Instant};

use keygate_e2e::{KEY_REVOKED, Mcp, NO_RATE_LIMITS, Server, hammer};

const CLIENTS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_sent_after_the_revoke_returned_succeeds() {
    let server = Server::demo_with(&NO_RATE_LIMITS);
    let admin = server.api(&server.owner_key());
    let (id, key) = admin.new_tenant_key("hammered", &["services:read"]).await;
    let url = server.url("/api/mcp");
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| hammer(c, Mcp::new(&url, &key), start, RUN_FOR))
        .collect();
    tokio::time::sleep(RUN_FOR / 3).await;
    admin.revoke(&id).await;
    let revoked = Instant::now();
    // (sent at, status, body) of every request.
    let mut log = Vec::new();
    for c in clients {
        log.extend(c.await.expect("a client task finishes"));
    }
    assert!(
        server.api(&key).introspect().await.status == 401,
        "the key is revoked"
    );

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
