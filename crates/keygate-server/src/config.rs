//! Server configuration, as values; the binary parses flags, env and files into it.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use keygate_keys::{DatabaseUrl, TokenFormat};
use keygate_limits::{Backend, FailMode};
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, Visitor};

use crate::error::ServerError;

use crate::upstream::InProcessUpstream;

/// Where checked tool calls go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Upstream {
    /// An MCP server in this process (such as the demo platform), called directly;
    /// its [`InProcessUpstream::policy_toml`] is the policy unless a policy file is
    /// given.
    InProcess(Arc<dyn InProcessUpstream>),
    /// An MCP server over Streamable HTTP, such as `http://127.0.0.1:9000/mcp`.
    Http(String),
    /// An MCP server the gateway runs as child processes, speaking on their stdin and
    /// stdout (one child per session, a small pool for stateless requests).
    Stdio(crate::stdio::StdioCommand),
    /// Several MCP servers behind one gateway (a settings file's `[upstreams.NAME]`
    /// tables, see [`named_upstreams`](crate::named_upstreams)): their tools, prompts
    /// and resource templates are exposed as `NAME.<name>`, and the policy names them
    /// so. Names are checked by [`check_upstream_name`](crate::check_upstream_name);
    /// none of the upstreams is itself `Named` or in-process.
    Named(Vec<(String, Upstream)>),
}

impl Upstream {
    /// An in-process upstream.
    pub fn in_process(upstream: impl InProcessUpstream) -> Self {
        Self::InProcess(Arc::new(upstream))
    }
}

impl FromStr for Upstream {
    type Err = ServerError;

    /// An upstream as `--upstream` takes it (surrounding whitespace ignored): an
    /// [`Upstream::Http`] from an `http://` or `https://` URL, or an
    /// [`Upstream::Stdio`] from `stdio:` and a command line, split as a shell would
    /// ([`StdioCommand::parse`](crate::StdioCommand::parse)).
    ///
    /// ```
    /// use keygate_server::Upstream;
    /// assert!(matches!("http://127.0.0.1:9000/mcp".parse(), Ok(Upstream::Http(_))));
    /// let Ok(Upstream::Stdio(cmd)) = "stdio:npx -y '@scope/server'".parse() else { panic!() };
    /// assert_eq!(cmd.args, ["-y", "@scope/server"]);
    /// assert!("stdio:".parse::<Upstream>().is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for any other scheme, or none, and for a `stdio:`
    /// command line that is empty or badly quoted.
    fn from_str(s: &str) -> Result<Self, ServerError> {
        const EXPECTED: &str = "expected an http:// or https:// URL such as http://127.0.0.1:9000/mcp, \
             or stdio: and a command line such as stdio:npx -y @modelcontextprotocol/server-everything";
        let s = s.trim();
        if let Some(line) = s.strip_prefix("stdio:") {
            return crate::stdio::StdioCommand::parse(line)
                .map(Self::Stdio)
                .map_err(|e| ServerError::Config(format!("--upstream stdio: {e}")));
        }
        match s.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(Self::Http(s.to_owned())),
            Some((scheme, _)) if scheme != "http" && scheme != "https" => {
                Err(ServerError::Config(format!("{EXPECTED}, not {scheme}://")))
            }
            _ => Err(ServerError::Config(EXPECTED.to_owned())),
        }
    }
}

/// Reads a TOML settings file into `T` (a binary's settings, such as `keygated`'s),
/// with errors that name the file, the key whose value is wrong, and its line.
///
/// # Errors
///
/// [`ServerError::Config`] when the file cannot be read or does not fit `T`.
pub fn read_settings_file<T: DeserializeOwned>(path: &Path) -> Result<T, ServerError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("cannot read config file {shown}: {e}")))?;
    toml::from_str(&text).map_err(|e| {
        // A value's error points at the value: the text before it on its line is `key =`.
        let key = e.span().and_then(|span| {
            let line = text.get(..span.start)?.rsplit('\n').next()?;
            let key = line.split_once('=')?.0.trim().trim_matches('"');
            (!key.is_empty()).then(|| key.to_owned())
        });
        match key {
            Some(key) => ServerError::Config(format!("config file {shown}: `{key}`: {e}")),
            None => ServerError::Config(format!("config file {shown}: {e}")),
        }
    })
}

/// Everything [`App::new`](crate::App::new) needs. Build it with [`Config::new`] and
/// set the fields that differ from the defaults.
///
/// ```
/// use keygate_server::{Config, Upstream};
///
/// let mut config = Config::new(Upstream::Http("http://127.0.0.1:9000/mcp".to_owned()));
/// config.database = "sqlite://keygate.db".parse()?;
/// assert_eq!(config.key_rate.get(), 1000);
/// assert_eq!(config.max_body, 4 * 1024 * 1024);
/// assert_eq!(config.header_timeout.as_secs(), 30);
/// assert_eq!(config.auth_failure_rate.map(|n| n.get()), Some(60));
/// # Ok::<(), keygate_keys::StoreError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Key store: `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
    /// Default `sqlite://keygate.db`.
    pub database: DatabaseUrl,
    /// The MCP server to protect.
    pub upstream: Upstream,
    /// Tool policy file. Required unless the upstream is in-process and ships a
    /// policy ([`InProcessUpstream::policy_toml`]), which is used when this is absent.
    pub policy: Option<PathBuf>,
    /// Requests per second (and burst) per key. Default [`DEFAULT_KEY_RATE`]: one busy
    /// agent calling back to back is never refused; a runaway loop or a flood over
    /// many connections is.
    pub key_rate: NonZeroU32,
    /// Requests per second (and burst) per tenant. Default [`DEFAULT_TENANT_RATE`]:
    /// a handful of busy agents of one tenant.
    pub tenant_rate: NonZeroU32,
    /// Largest MCP request body, in bytes; a larger one is answered 413 with a
    /// JSON-RPC error. Default [`MCP_BODY_LIMIT`](crate::MCP_BODY_LIMIT) (4 MiB, what
    /// the official SDKs' servers accept).
    pub max_body: usize,
    /// The URL people and browsers reach this gateway at, such as
    /// `https://keys.example.com`; its origin is the gateway's own (see
    /// [`allowed_origins`](Self::allowed_origins)). Default none.
    pub public_url: Option<String>,
    /// Browser origins (`scheme://host[:port]`) besides the gateway's own that may
    /// call `/api/*`; they get CORS answers. A request whose `Origin` is neither is
    /// refused with 403 `{"error":"forbidden_origin"}` (DNS rebinding). Default none.
    pub allowed_origins: Vec<String>,
    /// Rate-limit backend: in memory (default) or Redis.
    pub rate_limit_backend: Backend,
    /// While a Redis backend is unreachable: refuse with 503 (`Closed`, the default) or
    /// let requests through uncounted (`Open`).
    pub rate_limit_fail_mode: FailMode,
    /// Token format (brand) of the keys this server issues. Default `kg`.
    pub format: TokenFormat,
    /// How long the upstream may take to start answering (its response head; a tool
    /// answered in one JSON body starts answering when it is done). Default 300 s, the
    /// official Python SDK client's own bound on a silent answer. Connecting is bounded
    /// by 5 s apart, so a stopped upstream is found at once.
    pub upstream_timeout: Duration,
    /// How long any request may take to produce its response head; for an MCP request,
    /// how long the client may take to send it (then [`Config::upstream_timeout`]
    /// applies). Default 30 s.
    pub request_timeout: Duration,
    /// How long a confirmation challenge lives. Default 300 s.
    pub challenge_ttl: Duration,
    /// How long a person approval lives, from the agent's call that asked for it to
    /// the retry that uses it (`--approval-ttl`). Default 300 s.
    pub approval_ttl: Duration,
    /// The secret MRTR `requestState`s are sealed with (HMAC-SHA256; `--mrtr-secret`).
    /// Default none: a random secret for this process, so that a state sealed by one
    /// instance is refused by another; instances behind one address must share one.
    pub mrtr_secret: Option<keygate_gates::MrtrSecret>,
    /// How long a client may take to send a request's headers, counted from the moment
    /// the connection is ready to read them (accepted, or idle after an answer): a
    /// connection whose headers have not all arrived by then is closed, so a client
    /// that sends them slowly (or keeps an idle connection) cannot hold a connection
    /// slot longer. Must not be zero. Default 30 s.
    pub header_timeout: Duration,
    /// Most client connections held at once. At the cap no more are accepted: new
    /// ones wait in the kernel's listen queue until one closes. Default
    /// [`default_max_connections`].
    pub max_connections: NonZeroU32,
    /// Failed authentications a minute, and burst, per client address (IPv6 per /64):
    /// a client over this budget is answered 429 before its token is verified, so a
    /// flood of forged tokens does not become a flood of key-store reads (see
    /// [`keygate_http::AuthLayer::with_failure_limiter`]). `None` turns it off.
    /// Default 60.
    pub auth_failure_rate: Option<NonZeroU32>,
    /// GitHub's secret-scanning key file (`{"public_keys":[…]}`, as GitHub serves it):
    /// with it, `POST /api/v1/leaks/github` takes signed leak reports and revokes every
    /// live key they name. Default none: the route answers 404.
    pub leak_report_keys: Option<PathBuf>,
}

/// Default [`Config::key_rate`]: requests per second, and burst, per key. One SDK
/// client calling a tool back to back over loopback, with no think time, makes
/// several hundred requests a second (a Python client's 200 sequential calls took
/// about a quarter of a second); the default lets that through and still stops a
/// loop running away over many connections.
pub const DEFAULT_KEY_RATE: u32 = 1000;
/// Default [`Config::tenant_rate`]: five such agents of one tenant at full speed.
pub const DEFAULT_TENANT_RATE: u32 = 5000;

/// Connections [`default_max_connections`] never goes over.
const MAX_CONNECTIONS_CEILING: u32 = 4096;
/// Descriptors [`default_max_connections`] leaves for the store, the listener, logs
/// and the upstream's idle pool.
const RESERVED_FILES: u64 = 64;

/// The default of [`Config::max_connections`]: half of what the process's open-file
/// limit (soft `RLIMIT_NOFILE`) leaves after 64 descriptors for the store, the
/// listener and the upstream's idle pool, at most 4096 and at least 1 (1024 where the
/// limit cannot be read).
///
/// Half, because a client connection may hold a second descriptor, its request to
/// the upstream. A cap under the open-file limit means the cap is reached before the
/// process runs out of descriptors: new connections then wait in the listen queue
/// instead of failing `accept` with `EMFILE`, and the store and the upstream can still
/// open theirs. The ceiling keeps memory for connection buffers and tasks modest on
/// hosts with a very high limit; raise the cap (and `ulimit -n`) for more.
///
/// ```
/// let cap = keygate_server::default_max_connections();
/// assert!(cap.get() >= 1 && cap.get() <= 4096);
/// ```
pub fn default_max_connections() -> NonZeroU32 {
    let cap = open_file_limit().map_or(1024, |files| {
        let usable = files.saturating_sub(RESERVED_FILES) / 2;
        u32::try_from(usable.min(u64::from(MAX_CONNECTIONS_CEILING)))
            .unwrap_or(MAX_CONNECTIONS_CEILING)
    });
    NonZeroU32::new(cap).unwrap_or(NonZeroU32::MIN)
}

/// The soft open-file limit; `None` when it cannot be read. Unlimited is `u64::MAX`.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    Some(limit.current.unwrap_or(u64::MAX))
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

impl Config {
    /// A configuration with every default and the given upstream.
    pub fn new(upstream: Upstream) -> Self {
        Self {
            database: DatabaseUrl::default(),
            upstream,
            policy: None,
            key_rate: NonZeroU32::new(DEFAULT_KEY_RATE).unwrap_or(NonZeroU32::MIN),
            tenant_rate: NonZeroU32::new(DEFAULT_TENANT_RATE).unwrap_or(NonZeroU32::MIN),
            max_body: crate::MCP_BODY_LIMIT,
            public_url: None,
            allowed_origins: Vec::new(),
            rate_limit_backend: Backend::Memory,
            rate_limit_fail_mode: FailMode::Closed,
            format: TokenFormat::default(),
            upstream_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            challenge_ttl: Duration::from_secs(300),
            approval_ttl: Duration::from_secs(300),
            mrtr_secret: None,
            header_timeout: Duration::from_secs(30),
            max_connections: default_max_connections(),
            auth_failure_rate: NonZeroU32::new(60),
            leak_report_keys: None,
        }
    }
}

/// A duration setting above zero, such as [`Config::header_timeout`], as a binary reads
/// it: whole seconds (`30`, the form these settings have always taken) or a duration
/// such as `30s`, `1m 30s` or `2h` (humantime's grammar). From a settings file, an
/// integer or a string.
///
/// ```
/// use std::time::Duration;
/// use keygate_server::Timeout;
///
/// assert_eq!("30".parse::<Timeout>()?.get(), Duration::from_secs(30));
/// assert_eq!("1m 30s".parse::<Timeout>()?.get(), Duration::from_secs(90));
/// assert!("0".parse::<Timeout>().is_err());
/// assert!("0s".parse::<Timeout>().is_err());
/// assert!("soon".parse::<Timeout>().is_err());
/// # Ok::<(), keygate_server::ServerError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(Duration);

impl Timeout {
    /// `duration`, unless it is zero.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for zero.
    pub fn new(duration: Duration) -> Result<Self, ServerError> {
        if duration.is_zero() {
            return Err(ServerError::Config("must be above zero".to_owned()));
        }
        Ok(Self(duration))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Timeout> for Duration {
    fn from(t: Timeout) -> Self {
        t.0
    }
}

impl FromStr for Timeout {
    type Err = ServerError;

    /// # Errors
    ///
    /// [`ServerError::Config`] for zero and for text that is neither.
    fn from_str(s: &str) -> Result<Self, ServerError> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<u64>() {
            return Self::new(Duration::from_secs(secs));
        }
        let duration = humantime::parse_duration(s).map_err(|e| {
            ServerError::Config(format!(
                "{e} (expected whole seconds such as 30, or a duration such as 30s or 1m 30s)"
            ))
        })?;
        Self::new(duration)
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeoutVisitor;
        impl Visitor<'_> for TimeoutVisitor {
            type Value = Timeout;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("whole seconds above zero, or a duration such as \"30s\"")
            }
            fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Timeout, E> {
                Timeout::new(Duration::from_secs(secs)).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Timeout, E> {
                let secs = u64::try_from(secs).map_err(|_| E::custom("must be above zero"))?;
                self.visit_u64(secs)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timeout, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(TimeoutVisitor)
    }
}
