//! The crate's one error type.

use std::path::PathBuf;

use crate::api::{ErrorBody, RejectReason};

/// Why a request, the credential lookup or the start-up check could not be done.
///
/// A refusal of the start-up check is not an error: it is
/// [`Outcome::Refused`](crate::Outcome::Refused).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server address does not parse as a URL.
    #[error("the server address {server:?} is not a URL")]
    BadUrl {
        /// The address as given.
        server: String,
        /// Why it does not parse.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server address is not `http://` or `https://`.
    #[error(
        "the server address {server:?} has scheme {scheme:?}; use https:// (or http:// on loopback)"
    )]
    Scheme {
        /// The address as given.
        server: String,
        /// Its scheme.
        scheme: String,
    },
    /// The HTTP client could not be built.
    #[cfg(feature = "http")]
    #[error(
        "setting up the HTTP client for {server} (an https:// server needs the system's CA \
         certificates, or SSL_CERT_FILE naming a PEM file of them)"
    )]
    Setup {
        /// The server's base URL.
        server: String,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// The server could not be reached, or did not answer in time.
    #[error("cannot reach the keygate server at {server}: {why} ({cause})")]
    Unreachable {
        /// The server's base URL.
        server: String,
        /// `connection failed (…)`, `timed out` or `request failed`.
        why: &'static str,
        /// The innermost cause (an I/O or TLS error: no URL, no header).
        cause: String,
    },
    /// The answer's body could not be read.
    #[cfg(feature = "http")]
    #[error("reading the answer of {server}")]
    Read {
        /// The server's base URL.
        server: String,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// The server refused the request: a status outside 2xx, with its error body.
    #[error(
        "the keygate server at {server} answered {status}{}",
        error_suffix(body)
    )]
    Rejected {
        /// The server's base URL.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The error body (empty when the answer had none).
        body: ErrorBody,
    },
    /// A 2xx answer whose body is not what the endpoint returns.
    #[error("the keygate server at {server} sent an answer that is not {what}")]
    Decode {
        /// The server's base URL.
        server: String,
        /// What was expected, such as `a token introspection`.
        what: &'static str,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Token introspection during the start-up check answered neither 2xx nor 401.
    #[error(
        "the keygate server at {server} answered {status} to token introspection{}",
        error_suffix(body)
    )]
    Introspection {
        /// The server's base URL.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The error body (empty when the answer had none).
        body: ErrorBody,
    },
    /// The environment variable holding the key is not UTF-8.
    #[error("{name} is not valid UTF-8")]
    NotUtf8 {
        /// The variable.
        name: String,
    },
    /// A file could not be read.
    #[error("reading {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An `.mcp.json` is larger than [`MAX_MCP_JSON`](crate::MAX_MCP_JSON).
    #[error("{} is larger than {max} bytes; an .mcp.json is a few lines", path.display())]
    McpJsonTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// An `.mcp.json` is not JSON of the expected shape.
    #[error("parsing {}", path.display())]
    McpJson {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: McpJsonError,
    },
    /// The `.mcp.json` has no server of the wanted name.
    #[error("{} has no server {wanted:?} (servers: {})", path.display(), servers.join(", "))]
    NoSuchServer {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        wanted: String,
        /// The names it has.
        servers: Vec<String>,
    },
    /// The `.mcp.json` has no servers, and none was named.
    #[error("{} has no servers under mcpServers", path.display())]
    NoServers {
        /// The file.
        path: PathBuf,
    },
    /// The `.mcp.json` has several servers, and none was named.
    #[error(
        "{} has several servers ({}); say which with --mcp-server",
        path.display(),
        servers.join(", ")
    )]
    SeveralServers {
        /// The file.
        path: PathBuf,
        /// The names it has.
        servers: Vec<String>,
    },
}

impl Error {
    /// For [`Rejected`](Self::Rejected) and [`Introspection`](Self::Introspection):
    /// why the server refused.
    pub fn reason(&self) -> Option<RejectReason> {
        match self {
            Self::Rejected { status, body, .. } | Self::Introspection { status, body, .. } => {
                Some(RejectReason::of(*status, body))
            }
            _ => None,
        }
    }
}

fn error_suffix(body: &ErrorBody) -> String {
    if body.error.is_empty() {
        String::new()
    } else {
        format!(" ({})", body.error)
    }
}

/// What is wrong with the text of an `.mcp.json`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpJsonError {
    /// It is not JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `mcpServers` is there but not an object.
    #[error("`mcpServers` is not an object")]
    NotAnObject,
}
