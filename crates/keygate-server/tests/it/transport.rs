//! `App::serve` over real loopback sockets: the header timeout, the connection cap,
//! and the failed-authentication limit keyed by the peer address it records.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_demo::Platform;
use keygate_gates::MemoryGateStore;
use keygate_keys::{KeyKind, KeyStore, MemoryStore, TokenFormat, Verifier};
use keygate_server::{App, Config, Upstream};
use keygate_test::CountingVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any step here waits for the server.
const BOUND: Duration = Duration::from_secs(20);

/// A running `App::serve`; stops (gracefully) on drop.
struct Served {
    addr: SocketAddr,
    owner: Option<String>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(config: Config, store: Arc<dyn KeyStore>) -> Served {
    let verifier: Arc<dyn Verifier> = store.clone();
    serve_verified(config, store, verifier).await
}

/// As [`serve`], with tokens verified by `verifier` and everything else by `store`.
async fn serve_verified(
    config: Config,
    store: Arc<dyn KeyStore>,
    verifier: Arc<dyn Verifier>,
) -> Served {
    let gates = Arc::new(MemoryGateStore::new());
    let app = App::with_verifier(config, store, verifier, gates)
        .await
        .unwrap();
    let owner = crate::util::take_demo_owner(&app)
        .await
        .map(|o| o.key.token.expose().to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Served {
        addr,
        owner,
        _stop: stop,
    }
}

/// Reads until the server closes the connection; `None` when it did not within `wait`.
async fn closed_within(sock: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(wait, sock.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

async fn healthz(sock: &mut TcpStream) {
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
}

#[tokio::test]
async fn headers_that_do_not_arrive_in_time_close_the_connection() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.header_timeout = Duration::from_secs(1);
    let served = serve(config, Arc::new(MemoryStore::new())).await;

    // Half a request line; nothing at all; a kept-alive connection gone idle.
    let mut half = TcpStream::connect(served.addr).await.unwrap();
    half.write_all(b"GET /healthz HT").await.unwrap();
    let mut silent = TcpStream::connect(served.addr).await.unwrap();
    let mut idle = TcpStream::connect(served.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 15];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");

    for (name, sock) in [
        ("half", &mut half),
        ("silent", &mut silent),
        ("idle", &mut idle),
    ] {
        let read = closed_within(sock, BOUND).await;
        assert!(read.is_some(), "{name}: still open after {BOUND:?}");
    }
    // A prompt client on a fresh connection is served as before.
    let mut sock = TcpStream::connect(served.addr).await.unwrap();
    healthz(&mut sock).await;
    let answer = closed_within(&mut sock, BOUND).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.max_connections = NonZeroU32::new(2).unwrap();
    let served = serve(config, Arc::new(MemoryStore::new())).await;

    let mut held = Vec::new();
    for _ in 0..2 {
        let mut sock = TcpStream::connect(served.addr).await.unwrap();
        sock.write_all(b"GET /healthz HT").await.unwrap();
        held.push(sock);
    }
    // The third connection is made (the kernel queues it) but not served...
    let mut third = TcpStream::connect(served.addr).await.unwrap();
    healthz(&mut third).await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "answered while both slots were taken");
    // ...until a slot is free.
    drop(held.pop());
    let answer = closed_within(&mut third, BOUND)
        .await
        .expect("served once a slot is free");
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(byte, [0u8], "nothing was read early");
}

/// `GET url` presenting a freshly forged key.
async fn forged(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let forged = TokenFormat::default().generate(KeyKind::User).unwrap();
    client
        .get(url)
        .bearer_auth(forged.expose())
        .send()
        .await
        .unwrap()
}

fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(ip))
        .timeout(BOUND)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_forged_token_flood_stops_reaching_the_store() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.auth_failure_rate = NonZeroU32::new(5);
    let store = Arc::new(MemoryStore::new());
    let counting = Arc::new(CountingVerifier::new(store.clone()));
    let served = serve_verified(config, store, counting.clone()).await;
    let owner = served.owner.clone().unwrap();
    let url = format!("http://{}/api/v1/token", served.addr);
    let attacker = client_from(Ipv4Addr::LOCALHOST);

    let started = Instant::now();
    let (mut refused, mut limited) = (0usize, 0usize);
    for _ in 0..200 {
        let resp = forged(&attacker, &url).await;
        match resp.status().as_u16() {
            401 => refused += 1,
            429 => {
                let retry: u64 = resp.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=12).contains(&retry), "Retry-After {retry}");
                assert_eq!(resp.text().await.unwrap(), r#"{"error":"rate_limited"}"#);
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // Five at once, then one every 12 s: more only if the loop took that long.
    let refills = usize::try_from(started.elapsed().as_secs() / 12).unwrap();
    assert!(
        refused >= 5 && refused <= 5 + refills,
        "{refused} reached the store"
    );
    assert_eq!(refused + limited, 200);
    assert_eq!(
        counting.calls(),
        refused,
        "every 429 was answered without a store read"
    );

    // The owner's valid key from the same address waits too; from another it does not.
    let resp = attacker.get(&url).bearer_auth(&owner).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let resp = client_from(Ipv4Addr::new(127, 0, 0, 2))
        .get(&url)
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn with_the_limit_off_every_token_is_verified() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.auth_failure_rate = None;
    let store = Arc::new(MemoryStore::new());
    let counting = Arc::new(CountingVerifier::new(store.clone()));
    let served = serve_verified(config, store, counting.clone()).await;
    let url = format!("http://{}/api/v1/token", served.addr);
    let client = client_from(Ipv4Addr::LOCALHOST);
    for _ in 0..100 {
        assert_eq!(forged(&client, &url).await.status(), 401);
    }
    assert_eq!(counting.calls(), 100);
}

#[tokio::test]
async fn a_zero_header_timeout_is_a_configuration_error() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.header_timeout = Duration::ZERO;
    let err = App::with_store(config, Arc::new(MemoryStore::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, keygate_server::ServerError::Config(_)),
        "{err}"
    );
}

#[tokio::test]
async fn an_mcp_body_framed_wrongly_is_a_json_rpc_400() {
    let served = serve(
        Config::new(Upstream::in_process(Platform::new())),
        Arc::new(MemoryStore::new()),
    )
    .await;
    let owner = served.owner.clone().unwrap();
    let mut sock = TcpStream::connect(served.addr).await.unwrap();
    // A chunk size that is not hexadecimal: hyper fails the body, not the head.
    let request = format!(
        "POST /api/mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {owner}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n"
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let answer = closed_within(&mut sock, BOUND)
        .await
        .expect("answered and closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
            "message": "Invalid Request: the request body could not be read"}})
    );
}
