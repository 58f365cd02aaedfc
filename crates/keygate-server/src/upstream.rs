//! The MCP server behind the gateway: over HTTP, or in-process (an [`InProcessUpstream`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;

/// Request headers passed through to the upstream (identity headers are added apart;
/// `Authorization`, cookies and everything else stay here).
const FORWARD_REQUEST: [&str; 5] = [
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// Response headers passed back to the client.
const FORWARD_RESPONSE: [&str; 4] = [
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "cache-control",
];

/// Largest upstream response the gateway reads in full (tools/list filtering, status
/// look-ups, evidence recording). Streamed responses are not limited.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// An MCP server running in the gateway's own process, which the gateway calls
/// directly: no socket, no second router, no copy of the request body.
///
/// The binary hands one to [`Upstream::InProcess`](crate::Upstream::InProcess) (the demo
/// platform is one); keygate-server knows no particular upstream. It is called with
/// POST requests only, once the key, the policy and the gates have let them through;
/// other methods (the GET stream, DELETE of a session) are answered 405 with
/// `Allow: POST` by the gateway.
#[async_trait::async_trait]
pub trait InProcessUpstream: fmt::Debug + Send + Sync + 'static {
    /// Answers one MCP POST. `headers` holds the MCP transport headers the client
    /// sent (`Content-Type`, `Accept`, `Mcp-Session-Id`, `MCP-Protocol-Version`,
    /// `Last-Event-ID`) and the identity headers the gateway set (`X-Keygate-Tenant`,
    /// `X-Keygate-Project`, …); never `Authorization`. The response's status and its
    /// `Content-Type`, `Mcp-Session-Id`, `MCP-Protocol-Version` and `Cache-Control`
    /// headers reach the client; its body may stream.
    async fn respond(&self, headers: &HeaderMap, body: Bytes) -> Response<Body>;

    /// The tool policy (TOML, in the keygate policy file format) this upstream ships
    /// with, used when [`Config::policy`](crate::Config::policy) is `None`. Default:
    /// none, so a policy file is required.
    fn policy_toml(&self) -> Option<&str> {
        None
    }
}

/// Why the upstream could not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("the upstream MCP server did not answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("the upstream MCP server is unreachable")]
    Unreachable(#[source] reqwest::Error),
    #[error("the upstream MCP server sent an unreadable response: {0}")]
    BadResponse(String),
}

#[derive(Debug, Clone)]
enum Target {
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
    },
    /// Called directly: no second router, no copy of the body.
    InProcess(Arc<dyn InProcessUpstream>),
}

/// The MCP server tool calls are forwarded to.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    target: Target,
    timeout: Duration,
}

impl Upstream {
    /// An upstream over HTTP, with a pooled client.
    pub(crate) fn http(url: &str, timeout: Duration) -> Result<Self, String> {
        let url =
            reqwest::Url::parse(url).map_err(|e| format!("invalid upstream URL {url:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "upstream URL must be http:// or https:// (got {}://)",
                url.scheme()
            ));
        }
        // reqwest is built with rustls and no default provider; installing ring is
        // idempotent (an already installed provider is kept).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            // reqwest's default, stated: streamed answers are many small writes.
            .tcp_nodelay(true)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .read_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none());
        if url.scheme() == "http" {
            // The platform verifier refuses to start without a CA store, which a plain
            // HTTP upstream does not need (a container without ca-certificates).
            builder = builder.tls_certs_only(Vec::new());
        }
        let client = builder.build().map_err(|e| {
            format!(
                "cannot build the upstream HTTP client: {e} (an https:// upstream needs the \
                 system's CA certificates, or SSL_CERT_FILE naming a PEM file of them)"
            )
        })?;
        Ok(Self {
            target: Target::Http { client, url },
            timeout,
        })
    }

    /// An in-process upstream.
    pub(crate) fn in_process(upstream: Arc<dyn InProcessUpstream>, timeout: Duration) -> Self {
        Self {
            target: Target::InProcess(upstream),
            timeout,
        }
    }

    /// Sends one MCP request and returns the response with its body still streaming.
    ///
    /// Only the MCP transport headers of `client` are forwarded; `identity` is added.
    pub(crate) async fn send(
        &self,
        method: Method,
        client: &HeaderMap,
        identity: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut forwarded = forward_headers(client, method == Method::POST);
        for (name, value) in identity {
            forwarded.insert(name.clone(), value.clone());
        }
        let timeout = self.timeout;
        match &self.target {
            Target::Http { client, url } => {
                let send = client
                    .request(method, url.clone())
                    .headers(forwarded)
                    .body(body)
                    .send();
                let resp = tokio::time::timeout(timeout, send)
                    .await
                    .map_err(|_| UpstreamError::Timeout(timeout))?
                    .map_err(|e| {
                        if e.is_timeout() {
                            UpstreamError::Timeout(timeout)
                        } else {
                            UpstreamError::Unreachable(e)
                        }
                    })?;
                let mut out = Response::new(Body::empty());
                *out.status_mut() = resp.status();
                copy_response_headers(resp.headers(), out.headers_mut());
                let stream = resp.bytes_stream().map_err(axum::Error::new);
                *out.body_mut() = Body::from_stream(stream);
                Ok(out)
            }
            Target::InProcess(upstream) => {
                // No timeout to arm: an in-process upstream answers in the gateway's own
                // time (the request timeout still bounds it). It serves POST only.
                let resp = if method == Method::POST {
                    upstream.respond(&forwarded, body).await
                } else {
                    let mut resp = Response::new(Body::empty());
                    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                    resp.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                    return Ok(resp);
                };
                let (parts, body) = resp.into_parts();
                let mut out = Response::new(body);
                *out.status_mut() = parts.status;
                copy_response_headers(&parts.headers, out.headers_mut());
                Ok(out)
            }
        }
    }

    /// Sends one MCP POST and reads the whole answer as JSON-RPC messages (from a JSON
    /// body, or from the `data:` lines of an event stream).
    pub(crate) async fn post_buffered(
        &self,
        client: &HeaderMap,
        identity: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Buffered, UpstreamError> {
        let resp = self.send(Method::POST, client, identity, body).await?;
        Buffered::read(resp, self.timeout).await
    }
}

/// An upstream answer read in full.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Bytes,
    pub(crate) messages: Vec<serde_json::Value>,
}

impl Buffered {
    async fn read(resp: Response<Body>, timeout: Duration) -> Result<Self, UpstreamError> {
        let (parts, body) = resp.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_BUFFERED);
        let bytes = tokio::time::timeout(timeout, limited.collect())
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
            .map_err(|e| UpstreamError::BadResponse(e.to_string()))?
            .to_bytes();
        let is_sse = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let messages = if bytes.is_empty() {
            Vec::new()
        } else if is_sse {
            sse_messages(&bytes)?
        } else {
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Array(items)) => items,
                Ok(v) => vec![v],
                Err(e) => {
                    return Err(UpstreamError::BadResponse(format!(
                        "HTTP {} with a body that is not JSON ({e})",
                        parts.status.as_u16()
                    )));
                }
            }
        };
        Ok(Self {
            status: parts.status,
            headers: parts.headers,
            bytes,
            messages,
        })
    }

    /// The JSON-RPC response answering request `id`, if any.
    pub(crate) fn response_to(&self, id: &serde_json::Value) -> Option<&serde_json::Value> {
        self.messages.iter().find(|m| {
            m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some())
        })
    }

    /// The answer as the client gets it, byte for byte.
    pub(crate) fn into_response(self) -> axum::response::Response {
        let mut resp = axum::response::Response::new(Body::from(self.bytes));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }
}

/// The JSON payloads of an event stream's `data:` lines, one per event.
fn sse_messages(bytes: &[u8]) -> Result<Vec<serde_json::Value>, UpstreamError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| UpstreamError::BadResponse("event stream is not UTF-8".to_owned()))?;
    let mut out = Vec::new();
    let mut data = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                let v = serde_json::from_str(&data).map_err(|e| {
                    UpstreamError::BadResponse(format!("event data is not JSON: {e}"))
                })?;
                out.push(v);
                data.clear();
            }
        } else if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    Ok(out)
}

fn forward_headers(incoming: &HeaderMap, has_body: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in FORWARD_REQUEST {
        for v in incoming.get_all(name) {
            out.append(HeaderName::from_static(name), v.clone());
        }
    }
    if has_body && !out.contains_key(header::CONTENT_TYPE) {
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    out
}

fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in FORWARD_RESPONSE {
        if let Some(v) = from.get(name) {
            to.insert(HeaderName::from_static(name), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_streams_are_split_into_messages() {
        let body = b"event: message\ndata: {\"a\":1}\n\ndata: {\"b\":\ndata: 2}\n\n";
        let msgs = sse_messages(body).unwrap();
        assert_eq!(
            msgs,
            vec![serde_json::json!({"a":1}), serde_json::json!({"b":2})]
        );
        assert!(sse_messages(b"data: nope\n\n").is_err());
    }

    #[test]
    fn only_transport_headers_are_forwarded() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("mcp-session-id", HeaderValue::from_static("s1"));
        h.insert("cookie", HeaderValue::from_static("c=1"));
        h.insert("x-keygate-tenant", HeaderValue::from_static("spoofed"));
        let out = forward_headers(&h, true);
        assert!(out.get("authorization").is_none());
        assert!(out.get("cookie").is_none());
        assert_eq!(out.get("mcp-session-id").unwrap(), "s1");
        assert!(out.get("x-keygate-tenant").is_none());
        assert_eq!(out.get("content-type").unwrap(), "application/json");
    }

    #[test]
    fn only_http_upstreams_are_accepted() {
        assert!(Upstream::http("http://127.0.0.1:9000/mcp", Duration::from_secs(1)).is_ok());
        assert!(Upstream::http("ftp://x", Duration::from_secs(1)).is_err());
        assert!(Upstream::http("not a url", Duration::from_secs(1)).is_err());
    }
}
