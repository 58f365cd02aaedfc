//! Server configuration, as values; the binary parses flags, env and files into it.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use keygate_keys::TokenFormat;
use keygate_limits::FailMode;

/// Where checked tool calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upstream {
    /// The in-process demo platform (`keygate_demo`), with its policy unless another
    /// policy file is given.
    Demo,
    /// An MCP server over Streamable HTTP, such as `http://127.0.0.1:9000/mcp`.
    Http(String),
}

/// Everything [`App::new`](crate::App::new) needs. Build it with [`Config::new`] and
/// set the fields that differ from the defaults.
///
/// ```
/// use keygate_server::{Config, Upstream};
///
/// let mut config = Config::new(Upstream::Demo);
/// config.database = "sqlite://keygate.db".to_owned();
/// assert_eq!(config.key_rate.get(), 20);
/// assert_eq!(config.header_timeout.as_secs(), 30);
/// assert_eq!(config.auth_failure_rate.map(|n| n.get()), Some(60));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Key store URL: `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
    /// Default `sqlite://keygate.db`.
    pub database: String,
    /// The MCP server to protect.
    pub upstream: Upstream,
    /// Tool policy file. Required with [`Upstream::Http`]; with [`Upstream::Demo`] the
    /// demo policy is used when absent.
    pub policy: Option<PathBuf>,
    /// Requests per second (and burst) per key. Default 20.
    pub key_rate: NonZeroU32,
    /// Requests per second (and burst) per tenant. Default 100.
    pub tenant_rate: NonZeroU32,
    /// Rate-limit backend: `memory` (default) or a `redis://` URL.
    pub rate_limit_backend: String,
    /// While a Redis backend is unreachable: refuse with 503 (`Closed`, the default) or
    /// let requests through uncounted (`Open`).
    pub rate_limit_fail_mode: FailMode,
    /// Token format (brand) of the keys this server issues. Default `kg`.
    pub format: TokenFormat,
    /// How long the upstream may take to start answering. Default 10 s.
    pub upstream_timeout: Duration,
    /// How long any request may take to produce its response head. Default 30 s.
    pub request_timeout: Duration,
    /// How long a confirmation challenge lives. Default 300 s.
    pub challenge_ttl: Duration,
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
}

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
            database: "sqlite://keygate.db".to_owned(),
            upstream,
            policy: None,
            key_rate: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            tenant_rate: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            rate_limit_backend: "memory".to_owned(),
            rate_limit_fail_mode: FailMode::Closed,
            format: TokenFormat::default(),
            upstream_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            challenge_ttl: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            max_connections: default_max_connections(),
            auth_failure_rate: NonZeroU32::new(60),
        }
    }

    /// Whether the upstream is the in-process demo platform.
    pub fn is_demo(&self) -> bool {
        self.upstream == Upstream::Demo
    }
}
