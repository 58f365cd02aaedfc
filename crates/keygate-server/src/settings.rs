//! `keygated`'s settings (feature `cli`): one struct that is both its command line (clap,
//! with the `KEYGATE_*` environment variables) and its TOML file (serde), resolved into
//! a [`Config`] with the precedence flag > env > file > default.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::str::FromStr;

use keygate_keys::{DatabaseUrl, TokenFormat};
use keygate_limits::{Backend, FailMode};
use serde::{Deserialize, Deserializer};

use crate::config::{Config, Timeout, Upstream, read_settings_file};
use crate::error::ServerError;

/// The address `keygated` listens on when no setting names one.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));

/// Declares [`Settings`] once: each field is a flag (its doc is the `--help` text), an
/// environment variable and a file key at the same time. `=> field` after a setting
/// writes its value, when one is given, into that [`Config`] field (through `Apply`).
macro_rules! settings {
    (
        $(#[$outer:meta])*
        pub struct $name:ident {
            $( $(#[$meta:meta])* $field:ident: $ty:ty $(=> $target:ident)?, )*
        }
    ) => {
        $(#[$outer])*
        pub struct $name {
            $( $(#[$meta])* $field: $ty, )*
        }

        impl $name {
            /// Each setting as given by flag or env, else as the file gives it.
            fn or_file(self, file: Self) -> Self {
                Self { $( $field: Merge::or_file(self.$field, file.$field), )* }
            }

            /// Moves the settings that name a [`Config`] field into `config`.
            fn apply(&mut self, config: &mut Config) {
                $( $( Apply::apply(std::mem::take(&mut self.$field), &mut config.$target); )? )*
            }
        }
    };
}

settings! {
    /// The settings of `keygated`, from flags, `KEYGATE_*` environment variables and
    /// a TOML file (`--config`), resolved by [`Settings::resolve`]. Flatten it into the
    /// binary's parser with `#[command(flatten)]`.
    ///
    /// # Adding a setting
    ///
    /// One field in this struct, nothing else here: its doc comment (the `--help`
    /// text, with its default), `#[arg(long, env = "KEYGATE_NAME", value_name = …)]`
    /// (the file key is the flag's name: `kebab-case`), and its type: `Option<T>` for a
    /// value (`T: FromStr` for the flag; a file value is a string parsed the same way
    /// with `#[serde(deserialize_with = "parsed")]`, or any serde type), `bool` for a
    /// switch, `Vec<T>` for a repeatable flag (a file array). Then `=> config_field`
    /// writes a given value into that [`Config`] field (`T: Into` the field's type);
    /// a setting without an arrow is read by hand in [`Settings::resolve`]. The flag or
    /// env value wins over the file's, field by field (`Merge`: a given `Option`, a
    /// `true`, a non-empty `Vec`); a file-only setting, such as a table of named
    /// entries (a `BTreeMap`), is `#[arg(skip)]`.
    #[derive(Debug, Default, clap::Args, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    pub struct Settings {
        /// TOML file with any of these settings, as `listen = "…"`, `key-rate = 50`, ….
        #[arg(long, env = "KEYGATE_CONFIG", value_name = "FILE")]
        #[serde(skip)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "KEYGATE_LISTEN", value_name = "ADDR")]
        #[serde(deserialize_with = "parsed")]
        listen: Option<SocketAddr>,
        /// Key store: sqlite://PATH or postgres://… [default: sqlite://keygate.db].
        #[arg(long, env = "KEYGATE_DATABASE", value_name = "URL")]
        #[serde(deserialize_with = "parsed")]
        database: Option<DatabaseUrl> => database,
        /// The MCP server to protect: Streamable HTTP, such as http://127.0.0.1:9000/mcp, or
        /// stdio:COMMAND LINE (split as a shell would, never run by one), such as
        /// 'stdio:npx -y @modelcontextprotocol/server-everything stdio'.
        #[arg(
            long,
            env = "KEYGATE_UPSTREAM",
            value_name = "URL",
            conflicts_with = "demo"
        )]
        #[serde(deserialize_with = "parsed")]
        upstream: Option<Upstream>,
        /// Several MCP servers behind this gateway (file only): `[upstreams.NAME]`
        /// tables with `url`, or `command = [..]`, `env = {..}` (values may hold `${VAR}`
        /// of keygated's own environment) and `cwd`; tools are then `NAME.<tool>`.
        #[arg(skip)]
        upstreams: std::collections::BTreeMap<String, crate::UpstreamSpec>,
        /// Serve the built-in demo platform and its policy; on an empty database, create
        /// tenant `demo` and print its owner key once on stdout.
        #[arg(long, env = "KEYGATE_DEMO")]
        demo: bool,
        /// Tool policy file (TOML); required with --upstream.
        #[arg(long, env = "KEYGATE_POLICY", value_name = "FILE")]
        policy: Option<PathBuf> => policy,
        /// Requests per second, and burst, per key [default: 1000]. Sized so one busy
        /// agent calling back to back (no think time, over loopback: several hundred
        /// calls a second) is never refused, while a runaway loop over many connections is.
        #[arg(long, env = "KEYGATE_KEY_RATE", value_name = "N")]
        key_rate: Option<NonZeroU32> => key_rate,
        /// Requests per second, and burst, per tenant [default: 5000]: five such agents.
        #[arg(long, env = "KEYGATE_TENANT_RATE", value_name = "N")]
        tenant_rate: Option<NonZeroU32> => tenant_rate,
        /// Largest MCP request body in bytes; larger ones get 413 with a JSON-RPC error
        /// [default: 4194304, 4 MiB, what the official SDKs' servers take].
        #[arg(long, env = "KEYGATE_MAX_BODY", value_name = "BYTES")]
        #[serde(alias = "max_body")]
        max_body: Option<NonZeroUsize> => max_body,
        /// The URL people and browsers reach this gateway at (such as `https://keys.example.com`);
        /// its origin may call /api/* from a browser.
        #[arg(long, env = "KEYGATE_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String> => public_url,
        /// A browser origin (`scheme://host` with an optional `:port`) allowed to call /api/* besides the
        /// gateway's own, answered with CORS; repeat the flag, or separate with commas in
        /// KEYGATE_ALLOWED_ORIGIN. Any other Origin gets 403 forbidden_origin (DNS
        /// rebinding); requests without Origin pass.
        #[arg(
            long = "allowed-origin",
            env = "KEYGATE_ALLOWED_ORIGIN",
            value_name = "ORIGIN",
            value_delimiter = ','
        )]
        #[serde(alias = "allowed-origins", alias = "allowed_origin")]
        allowed_origin: Vec<String> => allowed_origins,
        /// Where rate-limit budgets live: memory, or redis://HOST:PORT to share them
        /// between instances [default: memory].
        #[arg(long, env = "KEYGATE_RATE_LIMIT_BACKEND", value_name = "BACKEND")]
        #[serde(deserialize_with = "parsed")]
        rate_limit_backend: Option<Backend> => rate_limit_backend,
        /// While the Redis rate-limit backend is unreachable, let requests through
        /// uncounted instead of refusing them with 503 [default: refuse].
        #[arg(long, env = "KEYGATE_RATE_LIMIT_FAIL_OPEN")]
        rate_limit_fail_open: bool,
        /// Seconds (or a duration such as 1m30s) to wait for the upstream to start
        /// answering (its response head; a tool answered in one JSON body starts answering
        /// when it is done); an open stream is never cut [default: 300].
        #[arg(long, env = "KEYGATE_UPSTREAM_TIMEOUT", value_name = "SECONDS")]
        upstream_timeout: Option<Timeout> => upstream_timeout,
        /// Seconds (or a duration) any request may take to produce its response head; an
        /// MCP request, to be sent by the client [default: 30].
        #[arg(long, env = "KEYGATE_REQUEST_TIMEOUT", value_name = "SECONDS")]
        request_timeout: Option<Timeout> => request_timeout,
        /// Token brand: keys look like BRAND_uk_… [default: kg].
        #[arg(long, env = "KEYGATE_BRAND", value_name = "BRAND")]
        #[serde(deserialize_with = "parsed")]
        brand: Option<TokenFormat> => format,
        /// Seconds (or a duration) a client may take to send a request's headers (from
        /// connecting, or from the previous answer on a kept-alive connection) before the
        /// connection is closed [default: 30].
        #[arg(long, env = "KEYGATE_HEADER_TIMEOUT", value_name = "SECONDS")]
        header_timeout: Option<Timeout> => header_timeout,
        /// Most client connections held at once; more wait until one closes [default:
        /// half of what the open-file limit leaves after 64, at most 4096].
        #[arg(long, env = "KEYGATE_MAX_CONNECTIONS", value_name = "N")]
        max_connections: Option<NonZeroU32> => max_connections,
        /// Failed authentications a minute, and burst, per client address (IPv6: per
        /// /64) before its requests get 429 without being verified; 0 turns it off.
        /// Behind a proxy every client shares the proxy's address [default: 60].
        #[arg(long, env = "KEYGATE_AUTH_FAILURE_RATE", value_name = "N")]
        auth_failure_rate: Option<u32>,
        /// Seconds (or a duration such as 10m) a person approval lives, from the agent's
        /// call that asks for it to the identical retry that uses it [default: 300].
        #[arg(long, env = "KEYGATE_APPROVAL_TTL", value_name = "SECONDS")]
        approval_ttl: Option<Timeout> => approval_ttl,
        /// Secret (at least 32 bytes) that MRTR requestStates are sealed with (HMAC);
        /// every instance sharing a database must be given the same one [default: a random
        /// secret for this process].
        #[arg(
            long,
            env = "KEYGATE_MRTR_SECRET",
            value_name = "SECRET",
            hide_env_values = true
        )]
        #[serde(deserialize_with = "parsed")]
        mrtr_secret: Option<SecretText>,
        /// GitHub's secret-scanning key file (`{"public_keys":[…]}`, saved as GitHub
        /// serves it): POST /api/v1/leaks/github then takes reports signed with these
        /// keys and revokes every live key they name [default: none; the route is 404].
        #[arg(long, env = "KEYGATE_LEAK_REPORT_KEYS", value_name = "FILE")]
        leak_report_keys: Option<PathBuf> => leak_report_keys,
    }
}

impl Settings {
    /// These settings (flags and env) over those of the `--config` file over the
    /// defaults of [`Config::new`]: the configuration and the address to listen on.
    /// `demo` makes the upstream of `--demo` (or `demo = true`), only when asked for.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] when the file cannot be read or holds a wrong value,
    /// when there is no upstream or the file names two, and for a short MRTR secret
    /// (the error does not repeat it).
    pub fn resolve(
        mut self,
        demo: impl FnOnce() -> Upstream,
    ) -> Result<(Config, SocketAddr), ServerError> {
        let mut file: Self = match &self.config {
            Some(path) => read_settings_file(path)?,
            None => Self::default(),
        };
        let named = std::mem::take(&mut file.upstreams);
        let file_upstream = match (file.upstream.take(), named.is_empty()) {
            (Some(_), false) => {
                return Err(ServerError::Config(format!(
                    "config file {}: give `upstream` or [upstreams.NAME] tables, not both",
                    self.config.unwrap_or_default().display()
                )));
            }
            (upstream, true) => upstream,
            (None, false) => Some(
                crate::named_upstreams(named, |var| std::env::var(var).ok()).map_err(|e| {
                    ServerError::Config(format!(
                        "config file {}: {e}",
                        self.config.clone().unwrap_or_default().display()
                    ))
                })?,
            ),
        };
        let upstream = match (self.demo, self.upstream.take(), file.demo, file_upstream) {
            (true, _, _, _) | (false, None, true, None) => demo(),
            (false, Some(url), _, _) | (false, None, false, Some(url)) => url,
            (false, None, true, Some(_)) => {
                return Err(ServerError::Config(format!(
                    "config file {}: give `upstream` or `demo = true`, not both",
                    self.config.unwrap_or_default().display()
                )));
            }
            (false, None, false, None) => {
                return Err(ServerError::Config(
                    "nothing to protect: give --upstream URL (an MCP server, with --policy FILE) or --demo"
                        .to_owned(),
                ));
            }
        };
        let mut config = Config::new(upstream);
        let mut settings = self.or_file(file);
        settings.apply(&mut config);
        if let Some(secret) = settings.mrtr_secret {
            let secret = keygate_gates::MrtrSecret::new(secret.0.into_bytes())
                .map_err(|e| ServerError::Config(format!("--mrtr-secret: {e}")))?;
            config.mrtr_secret = Some(secret);
        }
        if settings.rate_limit_fail_open {
            config.rate_limit_fail_mode = FailMode::Open;
        }
        if let Some(rate) = settings.auth_failure_rate {
            config.auth_failure_rate = NonZeroU32::new(rate);
        }
        Ok((config, settings.listen.unwrap_or(DEFAULT_LISTEN)))
    }
}

/// A secret setting as given (`--mrtr-secret`): never shown, in errors or `Debug`.
#[derive(Clone)]
pub struct SecretText(String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

impl FromStr for SecretText {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// How a setting given by flag or env combines with the file's: the first wins.
trait Merge {
    /// `self` when given, else `file`.
    fn or_file(self, file: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn or_file(self, file: Self) -> Self {
        self.or(file)
    }
}

impl Merge for bool {
    fn or_file(self, file: Self) -> Self {
        self || file
    }
}

impl<T> Merge for Vec<T> {
    fn or_file(self, file: Self) -> Self {
        if self.is_empty() { file } else { self }
    }
}

impl<K, V> Merge for std::collections::BTreeMap<K, V> {
    fn or_file(self, file: Self) -> Self {
        if self.is_empty() { file } else { self }
    }
}

/// How a setting lands in its [`Config`] field: only when given.
trait Apply<T> {
    /// Writes the setting into `target` when it has a value.
    fn apply(self, target: &mut T);
}

impl<V: Into<T>, T> Apply<T> for Option<V> {
    fn apply(self, target: &mut T) {
        if let Some(value) = self {
            *target = value.into();
        }
    }
}

impl<T> Apply<Vec<T>> for Vec<T> {
    fn apply(self, target: &mut Vec<T>) {
        if !self.is_empty() {
            *target = self;
        }
    }
}

/// A file value, parsed with the rules of its flag.
fn parsed<'de, D: Deserializer<'de>, T: FromStr<Err: std::fmt::Display>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
