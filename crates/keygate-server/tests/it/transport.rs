//! `App::serve` over real loopback sockets: the header timeout, the connection cap,
//! and the failed-authentication limit keyed by the peer address it records.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use keygate_demo::Platform;
use keygate_keys::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, KeyId, KeyKind, KeyStore, MemoryStore,
    NewAuditEvent, NewKey, Principal, Project, ProjectRef, Role, StoreError, Tenant, TenantId,
    TokenFormat, User, VerifyError,
};
use keygate_server::{App, Config, Upstream};
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
    let app = App::with_store(config, store).await.unwrap();
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

/// A memory store that counts `verify` calls.
struct CountingStore {
    inner: MemoryStore,
    verifies: AtomicUsize,
}

#[async_trait]
impl KeyStore for CountingStore {
    async fn bootstrap(&self, f: &TokenFormat, r: Bootstrap) -> Result<Bootstrapped, StoreError> {
        self.inner.bootstrap(f, r).await
    }
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        self.inner.create_tenant(name).await
    }
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        self.inner.tenant_by_name(name).await
    }
    async fn create_user(&self, t: &TenantId, name: &str, role: Role) -> Result<User, StoreError> {
        self.inner.create_user(t, name, role).await
    }
    async fn create_project(&self, t: &TenantId, name: &str) -> Result<Project, StoreError> {
        self.inner.create_project(t, name).await
    }
    async fn list_projects(&self, t: &TenantId) -> Result<Vec<Project>, StoreError> {
        self.inner.list_projects(t).await
    }
    async fn find_project(&self, t: &TenantId, p: &str) -> Result<Option<ProjectRef>, StoreError> {
        self.inner.find_project(t, p).await
    }
    async fn create_key(
        &self,
        f: &TokenFormat,
        r: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        self.inner.create_key(f, r, actor).await
    }
    async fn get_key(&self, t: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError> {
        self.inner.get_key(t, id).await
    }
    async fn list_keys(&self, t: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.list_keys(t).await
    }
    async fn revoke_key(&self, t: &TenantId, id: &KeyId, a: &str) -> Result<ApiKey, StoreError> {
        self.inner.revoke_key(t, id, a).await
    }
    async fn rotate_key(
        &self,
        f: &TokenFormat,
        t: &TenantId,
        id: &KeyId,
        a: &str,
    ) -> Result<CreatedKey, StoreError> {
        self.inner.rotate_key(f, t, id, a).await
    }
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(token).await
    }
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.inner.append_audit(event).await
    }
    async fn list_audit(&self, t: &TenantId, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.list_audit(t, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
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
    let store = Arc::new(CountingStore {
        inner: MemoryStore::new(),
        verifies: AtomicUsize::new(0),
    });
    let served = serve(config, store.clone()).await;
    let owner = served.owner.clone().unwrap();
    let url = format!("http://{}/api/v1/token", served.addr);
    let attacker = client_from(Ipv4Addr::LOCALHOST);

    let started = Instant::now();
    let (mut refused, mut limited) = (0usize, 0usize);
    for _ in 0..200 {
        let forged = TokenFormat::default().generate(KeyKind::User).unwrap();
        let resp = attacker
            .get(&url)
            .bearer_auth(forged.expose())
            .send()
            .await
            .unwrap();
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
        store.verifies.load(Ordering::SeqCst),
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
    let store = Arc::new(CountingStore {
        inner: MemoryStore::new(),
        verifies: AtomicUsize::new(0),
    });
    let served = serve(config, store.clone()).await;
    let url = format!("http://{}/api/v1/token", served.addr);
    let client = client_from(Ipv4Addr::LOCALHOST);
    for _ in 0..100 {
        let forged = TokenFormat::default().generate(KeyKind::User).unwrap();
        let resp = client
            .get(&url)
            .bearer_auth(forged.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(store.verifies.load(Ordering::SeqCst), 100);
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
