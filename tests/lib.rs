//! Harness for keygate's end-to-end tests: build the real `keygated`, `keygate` and
//! example binaries once, spawn them on loopback, and talk to them over HTTP and MCP.
//!
//! Every server runs on `127.0.0.1` (a free port chosen by the OS) with its own temporary
//! SQLite file or its own PostgreSQL schema, and is killed when its [`Server`] is dropped,
//! also when a test panics. Every request, process start and CLI run is bounded in time,
//! so a hung binary fails the test instead of hanging it.
//!
//! # Binaries
//!
//! Cargo builds only a package's own binaries for its integration tests, so this package
//! cannot rely on `cargo test` having built `keygated` and `keygate`. [`binary`] and
//! [`example`] therefore run `cargo build -p keygated -p keygate -p keygate-examples
//! --bins --examples` (with `$CARGO`, the cargo running the tests) once per test process
//! before the first spawn. When everything is fresh that is a no-op taking well under a
//! second; it also means the tests never run a stale binary. The binaries are found next
//! to the test executable (`target/<profile>/`), and a release test build builds release
//! binaries.
//!
//! # Environment
//!
//! Spawned processes get no inherited `KEYGATE_*` variables, so a developer's shell
//! settings (`KEYGATE_API_KEY`, `KEYGATE_DATABASE`, …) never leak into a test.
//! `KEYGATE_TEST_POSTGRES` and `KEYGATE_TEST_REDIS` name the services ([`postgres_url`],
//! [`redis_url`]); unset, those tests print a note and pass, unless `CI` is set.
//! `KEYGATE_E2E_LOG` sets the servers' log filter (default `info`).
//!
//! # Features
//!
//! None.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a server may take from spawn to answering `/healthz`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one CLI run may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory cargo puts this profile's binaries in (`target/<profile>`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/e2e-HASH → target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// Builds the binaries and examples once per process (see the crate docs).
fn build_once() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "keygated",
            "-p",
            "keygate",
            "-p",
            "keygate-examples",
            "--bins",
            "--examples",
        ]);
        if bin_dir().file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        cmd.current_dir(workspace_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let status = cmd.status().expect("cargo runs");
        assert!(
            status.success(),
            "building keygated, keygate and the examples failed ({status})"
        );
    });
}

/// The workspace root (the parent of this package's directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The path of a workspace binary (`keygated` or `keygate`), built and fresh.
pub fn binary(name: &str) -> PathBuf {
    build_once();
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The path of an example of `keygate-examples`, built and fresh.
pub fn example(name: &str) -> PathBuf {
    build_once();
    let path = bin_dir().join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A command with every inherited `KEYGATE_*` variable removed.
pub fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KEYGATE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

pub use keygate_test::{PgSchema, postgres_url, redis_url, under_ci};

/// A random lowercase alphanumeric string of `len` characters (not for secrets).
pub fn random_name(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(out.len());
        let mut v = h.finish();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[(v % 36) as usize]));
            v /= 36;
        }
    }
    out
}

/// Text a child process wrote, collected by a reader thread.
#[derive(Debug, Default)]
struct Collected {
    text: Mutex<String>,
    changed: Condvar,
}

impl Collected {
    fn push_line(&self, line: &str) {
        let mut text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        text.push_str(line);
        text.push('\n');
        self.changed.notify_all();
    }

    fn get(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `pred` holds for the text, up to `timeout`.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if pred(&text) {
                return Some(text.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            text = self
                .changed
                .wait_timeout(text, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Collected> {
    let out = Arc::new(Collected::default());
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.push_line(&line);
        }
    });
    out
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    stdout: Arc<Collected>,
    stderr: Arc<Collected>,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr captured line by line.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the process starts");
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.get()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.get()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit, up to `timeout`; kills it and panics after that.
    pub fn wait_timeout(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "process did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The address this process (a server called `name`) announces on stderr after
    /// `marker` (as in "… serving at http://ADDR/…", `marker` ending in `http://`), waited
    /// for at most 30 s; panics with its stderr when it exits or stays silent.
    pub async fn announced(&mut self, name: &str, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = self.stderr();
            if let Some(addr) = logs
                .split(marker)
                .nth(1)
                .and_then(|rest| rest.split_once('/'))
                .map(|(addr, _)| addr.to_owned())
            {
                return addr;
            }
            assert!(self.try_wait().is_none(), "{name} exited; stderr:\n{logs}");
            assert!(
                Instant::now() < deadline,
                "{name} did not announce its address; stderr:\n{logs}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a server is started with; see [`Server::start`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--demo` (else give `--upstream` and `--policy` in `args`).
    pub demo: bool,
    /// The `--database` URL; `None`: a fresh SQLite file in a temporary directory.
    pub database: Option<String>,
    /// Further arguments (`--key-rate 2`, …).
    pub args: Vec<String>,
    /// Environment variables for the server (after the harness's own, so
    /// `KEYGATE_LOG` here wins over `KEYGATE_E2E_LOG`).
    pub env: Vec<(String, String)>,
    /// Run the server under this open-file limit (`ulimit -n`, soft and hard).
    pub max_open_files: Option<u32>,
    /// With `--demo`: the demo policy with its gates set to the agent-relayed challenge
    /// (`approval = "agent"`), for the tests of the challenge's mechanics.
    pub agent_gates: bool,
}

impl ServerOptions {
    /// `--demo` on a fresh SQLite database.
    pub fn demo() -> Self {
        Self {
            demo: true,
            ..Self::default()
        }
    }

    /// The demo policy with `approval = "agent"` on its gates (see
    /// [`ServerOptions::agent_gates`]).
    #[must_use]
    pub fn agent_gates(mut self) -> Self {
        self.agent_gates = true;
        self
    }

    /// Uses this database URL.
    #[must_use]
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_owned());
        self
    }

    /// Sets an environment variable of the server (`KEYGATE_LOG=trace`, …).
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Runs the server under an open-file limit of `files` (through `sh -c 'ulimit -n
    /// FILES && exec keygated …'`, so the process id is still the server's).
    #[must_use]
    pub fn max_open_files(mut self, files: u32) -> Self {
        self.max_open_files = Some(files);
        self
    }
}

/// A running `keygated` on a loopback port, killed on drop.
#[derive(Debug)]
pub struct Server {
    process: Process,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The `--database` URL it was started with.
    pub database: String,
    /// The SQLite file, when the harness made one.
    pub sqlite_path: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    _policy_dir: Option<tempfile::TempDir>,
}

impl Server {
    /// `keygated --demo` on a fresh SQLite database.
    pub fn demo() -> Self {
        Self::start(ServerOptions::demo())
    }

    /// `keygated --demo` on a fresh SQLite database, with more arguments.
    pub fn demo_with(args: &[&str]) -> Self {
        Self::start(ServerOptions::demo().args(args))
    }

    /// Starts `keygated` with `options` on `127.0.0.1:0` and waits until `/healthz`
    /// answers 200 (at most [`START_TIMEOUT`]).
    pub fn start(options: ServerOptions) -> Self {
        let (dir, database, sqlite_path) = match options.database {
            Some(url) => (None, url, None),
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path = dir.path().join("keygate.db");
                let url = format!("sqlite://{}", path.display());
                (Some(dir), url, Some(path))
            }
        };
        let mut cmd = match options.max_open_files {
            None => clean_command(&binary("keygated")),
            Some(files) => {
                let mut cmd = clean_command(Path::new("sh"));
                cmd.arg("-c")
                    .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
                    .arg(binary("keygated"));
                cmd
            }
        };
        cmd.args(["--listen", "127.0.0.1:0", "--database", &database]);
        if options.demo {
            cmd.arg("--demo");
        }
        let policy_dir = options.agent_gates.then(|| {
            let (dir, path) = demo_policy_with("agent");
            cmd.arg("--policy").arg(&path);
            dir
        });
        cmd.args(&options.args);
        cmd.env(
            "KEYGATE_LOG",
            std::env::var("KEYGATE_E2E_LOG").unwrap_or_else(|_| "info".to_owned()),
        );
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &dir {
            cmd.current_dir(dir.path());
        }
        let mut process = Process::spawn(cmd);
        let addr = Self::wait_listening(&mut process);
        let server = Self {
            process,
            addr,
            base: format!("http://{addr}"),
            database,
            sqlite_path,
            _dir: dir,
            _policy_dir: policy_dir,
        };
        server.wait_healthy();
        server
    }

    fn wait_listening(process: &mut Process) -> SocketAddr {
        const LINE: &str = "keygated: listening on http://";
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(text) = process
                .stderr
                .wait_for(Duration::from_millis(100), |t| t.contains(LINE))
            {
                let addr = text
                    .lines()
                    .find_map(|l| l.strip_prefix(LINE))
                    .expect("the listening line");
                return addr
                    .trim()
                    .parse()
                    .expect("the listening line names an address");
            }
            if let Some(status) = process.try_wait() {
                // Let the reader thread catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "keygated exited ({status}) before listening; stderr:\n{}",
                    process.stderr()
                );
            }
            if Instant::now() >= deadline {
                process.kill();
                panic!(
                    "keygated did not listen within {START_TIMEOUT:?}; stderr:\n{}",
                    process.stderr()
                );
            }
        }
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if raw_get(self.addr, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "keygated /healthz did not answer 200 within {START_TIMEOUT:?}; stderr:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The demo owner key `--demo` printed on stdout (waits up to 5 s for it).
    ///
    /// # Panics
    ///
    /// When nothing was printed: the database was not empty, or the server is not a demo.
    pub fn owner_key(&self) -> String {
        let text = self
            .process
            .stdout
            .wait_for(Duration::from_secs(5), |t| t.contains('\n'))
            .expect("keygated --demo on an empty database prints the owner key");
        let mut lines = text.lines();
        let key = lines.next().unwrap_or_default().trim().to_owned();
        assert!(!key.is_empty(), "the owner key line is empty");
        key
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.process.stdout()
    }

    /// Everything the server logged (stderr) so far.
    pub fn logs(&self) -> String {
        self.process.stderr()
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// A bearer-authenticated client for this server.
    pub fn api<'a>(&'a self, key: &str) -> Api<'a> {
        Api {
            server: self,
            key: key.to_owned(),
        }
    }
}

/// One `GET` over a plain socket, bounded; the whole response, or `None`.
fn raw_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

/// An HTTP client for loopback tests: no proxy, every request bounded.
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // reqwest is built with rustls and no default provider (see the root manifest).
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .no_proxy()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("the client builds")
        })
        .clone()
}

/// An HTTP answer: status, headers and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON; for an SSE body, the data of
    /// its last event).
    pub json: Value,
    /// The raw body.
    pub text: String,
}

impl Answer {
    /// Reads a response to the end.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("the body arrives in time");
        let sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let json = if sse {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .next_back()
                .unwrap_or(Value::Null)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Self {
            status,
            headers,
            json,
            text,
        }
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC `result.structuredContent.code` of a tool answer, if any.
    pub fn tool_code(&self) -> Option<&str> {
        self.json["result"]["structuredContent"]["code"].as_str()
    }

    /// `result.isError` of a tool answer is `true`.
    pub fn is_tool_error(&self) -> bool {
        self.json["result"]["isError"].as_bool() == Some(true)
    }
}

/// Sends a request built on [`client`], failing the test on a transport error.
pub async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("the request is answered in time");
    Answer::read(resp).await
}

/// The admin API and introspection with one key.
#[derive(Debug, Clone)]
pub struct Api<'a> {
    server: &'a Server,
    key: String,
}

impl Api<'_> {
    // The request helpers build the request at once and return a future that borrows
    // nothing, so `|| server.api(&key).introspect()` works as a retry closure.

    /// `GET path`.
    pub fn get(&self, path: &str) -> impl Future<Output = Answer> + Send + 'static {
        send(client().get(self.server.url(path)).bearer_auth(&self.key))
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> impl Future<Output = Answer> + Send + 'static {
        send(
            client()
                .post(self.server.url(path))
                .bearer_auth(&self.key)
                .json(body),
        )
    }

    /// `GET /api/v1/token`.
    pub fn introspect(&self) -> impl Future<Output = Answer> + Send + 'static {
        self.get("/api/v1/token")
    }

    /// `POST /api/v1/keys`, which must answer 201; returns the body (`id`, `key`, …).
    pub async fn create_key(&self, body: Value) -> Value {
        let a = self.post("/api/v1/keys", &body).await;
        assert_eq!(a.status, 201, "create key {body}: {}", a.text);
        a.json
    }

    /// Creates a key and returns `(id, raw key)`.
    pub async fn new_key(&self, body: Value) -> (String, String) {
        let v = self.create_key(body).await;
        (
            v["id"].as_str().expect("an id").to_owned(),
            v["key"].as_str().expect("a key").to_owned(),
        )
    }

    /// Creates a tenant key named `name` holding `scopes`, for every project; returns
    /// `(id, raw key)`.
    pub async fn new_tenant_key(&self, name: &str, scopes: &[&str]) -> (String, String) {
        self.new_key(json!({"name": name, "kind": "tenant", "scopes": scopes}))
            .await
    }

    /// Creates a user key named `name` holding `scopes` for `projects` only (none: no
    /// project at all); returns `(id, raw key)`.
    pub async fn new_user_key(
        &self,
        name: &str,
        scopes: &[&str],
        projects: &[&str],
    ) -> (String, String) {
        let body = json!({"name": name, "kind": "user", "scopes": scopes, "projects": projects});
        self.new_key(body).await
    }

    /// `POST /api/v1/keys/{id}/revoke`, which must answer 200.
    pub async fn revoke(&self, id: &str) -> Value {
        self.key_action(id, "revoke", 200).await
    }

    /// `POST /api/v1/keys/{id}/rotate`, which must answer 201; returns the body.
    pub async fn rotate(&self, id: &str) -> Value {
        self.key_action(id, "rotate", 201).await
    }

    /// `POST /api/v1/keys/{id}/{action}` with an empty body, which must answer
    /// `status`; returns the body.
    async fn key_action(&self, id: &str, action: &str, status: u16) -> Value {
        let a = self
            .post(&format!("/api/v1/keys/{id}/{action}"), &json!({}))
            .await;
        assert_eq!(a.status, status, "{action} {id}: {}", a.text);
        a.json
    }

    /// An MCP session with this key, initialized.
    pub async fn session(&self) -> Mcp {
        let mut mcp = self.mcp();
        mcp.initialize().await;
        mcp
    }

    /// An MCP session with this key (not yet initialized).
    pub fn mcp(&self) -> Mcp {
        Mcp::new(&self.server.url("/api/mcp"), &self.key)
    }
}

/// An MCP client through the gateway: one key, one `Mcp-Session-Id`.
#[derive(Debug, Clone)]
pub struct Mcp {
    url: String,
    key: String,
    /// The session id sent with every request (set by [`Mcp::initialize`]).
    pub session: Option<String>,
    next_id: u64,
}

impl Mcp {
    /// A client for the MCP endpoint `url` with `key`, no session yet.
    pub fn new(url: &str, key: &str) -> Self {
        Self {
            url: url.to_owned(),
            key: key.to_owned(),
            session: None,
            next_id: 1,
        }
    }

    /// The same session id, another client (as another connection of the agent).
    #[must_use]
    pub fn with_session(mut self, session: Option<&str>) -> Self {
        self.session = session.map(str::to_owned);
        self
    }

    /// Points this client at another gateway, keeping key and session.
    #[must_use]
    pub fn at(mut self, url: &str) -> Self {
        self.url = url.to_owned();
        self
    }

    /// `initialize` (must answer 200 with an `Mcp-Session-Id`), then
    /// `notifications/initialized`.
    pub async fn initialize(&mut self) -> Answer {
        let a = self
            .rpc(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": { "name": "keygate-e2e", "version": "0" }
                }),
            )
            .await;
        assert_eq!(a.status, 200, "initialize: {}", a.text);
        let session = a
            .header("mcp-session-id")
            .expect("initialize assigns an Mcp-Session-Id");
        self.session = Some(session.to_owned());
        let n = self
            .send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        assert_eq!(n.status, 202, "notifications/initialized: {}", n.text);
        a
    }

    /// The request for one raw JSON-RPC message, with the headers MCP needs.
    pub fn request(&self, message: &Value) -> reqwest::RequestBuilder {
        let mut req = client()
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .json(message);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        req
    }

    /// Sends one raw JSON-RPC message.
    pub async fn send(&self, message: &Value) -> Answer {
        send(self.request(message)).await
    }

    /// Calls `method` with `params`.
    pub async fn rpc(&mut self, method: &str, params: Value) -> Answer {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await
    }

    /// `tools/call`; the JSON-RPC result is in `json["result"]`.
    pub async fn call(&mut self, tool: &str, args: Value) -> Answer {
        self.rpc("tools/call", json!({ "name": tool, "arguments": args }))
            .await
    }

    /// `tools/call` that must succeed (HTTP 200, no `isError`); returns the structured
    /// content.
    pub async fn call_ok(&mut self, tool: &str, args: Value) -> Value {
        let a = self.call(tool, args).await;
        assert_eq!(a.status, 200, "{tool}: {}", a.text);
        assert!(
            a.json["result"].is_object() && !a.is_tool_error(),
            "{tool} failed: {}",
            a.text
        );
        a.json["result"]["structuredContent"].clone()
    }

    /// The names `tools/list` answers, sorted.
    pub async fn tool_names(&mut self) -> Vec<String> {
        let a = self.rpc("tools/list", json!({})).await;
        assert_eq!(a.status, 200, "tools/list: {}", a.text);
        let mut names: Vec<String> = a.json["result"]["tools"]
            .as_array()
            .expect("a tools array")
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }
}

/// What a finished CLI run produced.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that standard output holds `part`.
    #[track_caller]
    pub fn expect_stdout(&self, part: &str) -> &Self {
        assert!(self.stdout.contains(part), "{}", self.stdout);
        self
    }

    /// Asserts that standard error holds `part`.
    #[track_caller]
    pub fn expect_stderr(&self, part: &str) -> &Self {
        assert!(self.stderr.contains(part), "{}", self.stderr);
        self
    }
}

/// `keygate bootstrap --database DATABASE --tenant TENANT --owner OWNER EXTRA…`: a
/// tenant in the same database as a running server (or a fresh one).
pub fn bootstrap(database: &str, tenant: &str, owner: &str, extra: &[&str]) -> CliOutput {
    let mut args = vec![
        "bootstrap",
        "--database",
        database,
        "--tenant",
        tenant,
        "--owner",
        owner,
    ];
    args.extend_from_slice(extra);
    keygate(&args, &[], None)
}

/// Runs `keygate` with `args` and `env` (no inherited `KEYGATE_*`) in `dir` (or a fresh
/// empty temporary directory), bounded by [`CLI_TIMEOUT`].
pub fn keygate(args: &[&str], env: &[(&str, &str)], dir: Option<&Path>) -> CliOutput {
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().expect("a temporary directory");
            tmp.path()
        }
    };
    let mut cmd = clean_command(&binary("keygate"));
    cmd.args(args).envs(env.iter().copied()).current_dir(dir);
    let mut process = Process::spawn(cmd);
    let status = process.wait_timeout(CLI_TIMEOUT);
    // Wait for both pipes to close: the readers stop when the writer (the child) is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&process.stdout) > 1 || Arc::strong_count(&process.stderr) > 1 {
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    CliOutput {
        code: status.code().unwrap_or(-1),
        stdout: process.stdout(),
        stderr: process.stderr(),
    }
}

/// `keygate bootstrap --database DB --tenant TENANT --owner OWNER --demo`, which must
/// succeed; returns the owner key it printed.
pub fn bootstrap_tenant(database: &str, tenant: &str, owner: &str) -> String {
    let out = bootstrap(database, tenant, owner, &["--demo"]);
    out.expect_code(0);
    let key = out.stdout.trim().to_owned();
    assert_eq!(key.lines().count(), 1, "one key line: {}", out.stdout);
    key
}

/// Appends a valid CRC32/base62 checksum to a token without one, to forge tokens that
/// pass the offline check but name no key.
pub use keygate_test::with_checksum as with_valid_checksum;

/// The exact 401 body for a revoked key.
pub const KEY_REVOKED: &str = r#"{"error":"invalid_token","reason":"key_revoked"}"#;

/// The demo policy with its gates' `approval = "person"` set to `approval` (`agent`,
/// `page`), written to `policy.toml` in a new temporary directory: the directory (which
/// keeps the file) and the file's path.
pub fn demo_policy_with(approval: &str) -> (tempfile::TempDir, PathBuf) {
    let demo = std::fs::read_to_string(workspace_dir().join("crates/keygate-demo/policy.toml"))
        .expect("the demo policy");
    let changed = demo.replace(
        "approval = \"person\"",
        &format!("approval = \"{approval}\""),
    );
    assert_ne!(changed, demo, "the demo gates name their approval");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, changed).expect("the policy is written");
    (dir, path)
}

/// The `keygated` flags of a load test: rate limits far above what its clients can
/// send, and no auth-failure limit (the revoked keys' 401s all come from one address),
/// so that nothing but 200 and the expected 401s comes back.
pub const NO_RATE_LIMITS: [&str; 6] = [
    "--key-rate",
    "1000000",
    "--tenant-rate",
    "1000000",
    "--auth-failure-rate",
    "0",
];

/// A client task that calls `service.list` through `mcp` as fast as it can until
/// `run_for` after `start`, naming its requests `{client}-{n}`; it returns (sent at,
/// status, body) of every request, sent at taken before the request leaves (so a
/// request counted as sent after a revoke really was).
pub fn hammer(
    client: usize,
    mcp: Mcp,
    start: Instant,
    run_for: Duration,
) -> tokio::task::JoinHandle<Vec<(Instant, u16, String)>> {
    tokio::spawn(async move {
        let mut log = Vec::new();
        let mut n = 0u64;
        while start.elapsed() < run_for {
            n += 1;
            let message = json!({"jsonrpc":"2.0","id":format!("{client}-{n}"),"method":"tools/call",
                "params":{"name":"service.list","arguments":{}}});
            let request = mcp.request(&message);
            let sent = Instant::now();
            let answer = send(request).await;
            log.push((sent, answer.status, answer.text));
        }
        log
    })
}

/// Polls `check` every 50 ms until it returns `Some`, up to `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
