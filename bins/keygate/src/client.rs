//! A small HTTP client for the keygate API, on a current-thread tokio runtime.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// The keygate API of one server.
#[derive(Debug)]
pub(crate) struct Client {
    base: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// An answer: status and JSON body (`Null` when the body is empty or not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `error` field of an error body.
    pub(crate) fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// The `reason` field of an error body.
    pub(crate) fn reason(&self) -> Option<&str> {
        self.body.get("reason").and_then(Value::as_str)
    }
}

impl Client {
    /// A client for the server at `server` (such as `http://127.0.0.1:8080`).
    pub(crate) fn new(server: &str) -> anyhow::Result<Self> {
        let base = server.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .with_context(|| format!("the server address {server:?} is not a URL"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => bail!(
                "the server address {server:?} has scheme {other:?}; use https:// (or http:// on loopback)"
            ),
        }
        // TLS is rustls with the ring provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("keygate-cli/", env!("CARGO_PKG_VERSION")));
        if url.scheme() == "http" {
            // The platform verifier refuses to start without a CA store, which plain
            // HTTP does not need (a container without ca-certificates). With no roots at
            // all, a redirect to https:// fails closed.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().with_context(|| {
            format!(
                "setting up the HTTP client for {base} (an https:// server needs the \
                 system's CA certificates, or SSL_CERT_FILE naming a PEM file of them)"
            )
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Self { base, http, rt })
    }

    /// The server's base URL, for messages.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` with the bearer token.
    pub(crate) fn get(&self, path: &str, bearer: &str) -> anyhow::Result<Answer> {
        self.send(self.http.get(self.url(path)), bearer)
    }

    /// `POST path` with a JSON body and the bearer token.
    pub(crate) fn post(&self, path: &str, bearer: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(self.http.post(self.url(path)).json(body), bearer)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, request: reqwest::RequestBuilder, bearer: &str) -> anyhow::Result<Answer> {
        // `bearer_auth` marks the header sensitive; the token is never in our errors.
        let request = request.bearer_auth(bearer);
        self.rt.block_on(async {
            let response = request.send().await.map_err(|err| {
                let why = if err.is_connect() {
                    "connection failed (is keygated running there?)"
                } else if err.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                // Only the innermost cause (an I/O or TLS error, which carries no URL and
                // no header) is shown next to the server address.
                let mut cause: &dyn std::error::Error = &err;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                anyhow::anyhow!(
                    "cannot reach the keygate server at {}: {why} ({cause})",
                    self.base
                )
            })?;
            let status = response.status().as_u16();
            let bytes = response
                .bytes()
                .await
                .with_context(|| format!("reading the answer of {}", self.base))?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Answer { status, body })
        })
    }
}

/// Why a 401 answer refused the key, in the words of the HTTP contract.
pub(crate) fn rejection_reason(answer: &Answer) -> &str {
    match (answer.error(), answer.reason()) {
        (Some("expired"), _) => "expired",
        (_, Some(reason)) => reason,
        (Some("missing_token"), None) => "missing_token",
        _ => "key_not_found",
    }
}

/// A readable sentence for a rejection reason.
pub(crate) fn explain_reason(reason: &str) -> &'static str {
    match reason {
        "expired" => "the key has expired",
        "key_revoked" => "the key was revoked",
        "key_not_found" => "the server does not know this key",
        "missing_token" => "the server received no key",
        _ => "the server refused the key",
    }
}
