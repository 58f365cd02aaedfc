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
        }
    }

    /// Whether the upstream is the in-process demo platform.
    pub fn is_demo(&self) -> bool {
        self.upstream == Upstream::Demo
    }
}
