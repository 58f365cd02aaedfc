//! The MCP server behind the gateway: over HTTP, on stdio (a child process, see
//! `stdio_bridge`), or in-process (an [`InProcessUpstream`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use keygate_mcp::jsonrpc;
use serde_json::Value;

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
    /// sent (every `Mcp-*` header such as `Mcp-Session-Id`, `MCP-Protocol-Version`,
    /// `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`, plus `Content-Type`, `Accept` and
    /// `Last-Event-ID`) and the identity headers the gateway set (`X-Keygate-Tenant`,
    /// `X-Keygate-Project`, …); never `Authorization`. The response's status, its
    /// `Mcp-*` headers, `Content-Type` and `Cache-Control` reach the client; its body
    /// may stream.
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
    Unreachable(#[source] hyper_util::client::legacy::Error),
    #[error("the upstream MCP server sent an unreadable response: {0}")]
    BadResponse(String),
}

/// The pooled HTTP/1.1 client of an HTTP upstream: hyper's own, with the upstream's URI
/// parsed once, so a forwarded request costs no URL parsing, no redirect policy and no
/// header-map copies (reqwest did all three per request; see BENCHMARKS.md).
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An upstream over HTTP: its client, its URI (without credentials) and the
/// `Authorization` the URL's credentials make (marked sensitive).
#[derive(Debug)]
struct HttpTarget {
    client: HttpClient,
    uri: Uri,
    basic: Option<HeaderValue>,
}

#[derive(Debug, Clone)]
enum Target {
    Http(Arc<HttpTarget>),
    /// Called directly: no second router, no copy of the body.
    InProcess(Arc<dyn InProcessUpstream>),
    /// A child process on stdio, bridged (see `stdio_bridge`).
    Stdio(Arc<crate::stdio_bridge::StdioUpstream>),
    /// Several upstreams as one (see `federation`).
    Federated(Arc<crate::federation::Federation>),
}

/// The MCP server tool calls are forwarded to.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    target: Target,
    timeout: Duration,
}

impl Upstream {
    /// An upstream over HTTP, with a pooled client.
    ///
    /// Credentials in the URL (`https://user:pass@host/mcp`) are sent to the upstream as
    /// `Authorization: Basic` on every request, as reqwest did; errors never repeat them.
    pub(crate) fn http(url: &str, timeout: Duration) -> Result<Self, String> {
        let mut parsed = url::Url::parse(url).map_err(|e| {
            format!(
                "invalid upstream URL {:?}: {e}",
                keygate_limits::redact_url(url)
            )
        })?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(format!(
                    "upstream URL must be http:// or https:// (got {other}://)"
                ));
            }
        };
        let basic = take_credentials(&mut parsed)?;
        let uri: Uri = parsed.as_str().parse().map_err(|e| {
            format!(
                "invalid upstream URL {:?}: {e}",
                keygate_limits::redact_url(parsed.as_str())
            )
        })?;
        let mut connector = HttpConnector::new();
        // Streamed answers are many small writes.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        // reqwest's keepalive, kept: with no read timeout (below), a dead upstream under
        // an idle event stream or a silent tool is noticed in about a minute, not hours.
        connector.set_keepalive(Some(Duration::from_secs(15)));
        connector.set_keepalive_interval(Some(Duration::from_secs(15)));
        connector.set_keepalive_retries(Some(3));
        // The TLS connector below takes https:// URIs to this connector too.
        connector.enforce_http(false);
        // rustls is built with ring and no default provider; installing it is idempotent
        // (an already installed provider is kept).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = if https {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier().map_err(|e| {
                format!(
                    "cannot build the upstream HTTP client: {e} (an https:// upstream needs the \
                     system's CA certificates, or SSL_CERT_FILE naming a PEM file of them)"
                )
            })?
        } else {
            // A plain HTTP upstream needs no CA store (a container without
            // ca-certificates): the connector is never asked for TLS.
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        // No read timeout: it would apply between any two bytes of a streamed answer and
        // cut idle GET streams and silent tools. `send` bounds the wait for the response
        // head instead; buffered reads bound themselves. No redirects are followed.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            target: Target::Http(Arc::new(HttpTarget { client, uri, basic })),
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

    /// An upstream on stdio: children of `command`, started as sessions need them.
    pub(crate) fn stdio(
        command: crate::stdio::StdioCommand,
        label: String,
        timeout: Duration,
    ) -> Self {
        Self {
            target: Target::Stdio(Arc::new(crate::stdio_bridge::StdioUpstream::new(
                command, label, timeout,
            ))),
            timeout,
        }
    }

    /// Several named upstreams as one (names checked, see `federation`).
    pub(crate) fn federated(members: Vec<(String, Upstream)>, timeout: Duration) -> Self {
        Self {
            target: Target::Federated(Arc::new(crate::federation::Federation::new(members))),
            timeout,
        }
    }

    /// How long it may take to start answering.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The stdio bridge, when this upstream is one (`keygate wrap` watches its session).
    pub(crate) fn stdio_bridge(&self) -> Option<&crate::stdio_bridge::StdioUpstream> {
        match &self.target {
            Target::Stdio(bridge) => Some(bridge),
            Target::Http(_) | Target::InProcess(_) | Target::Federated(_) => None,
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
            Target::Http(http) => {
                if let Some(basic) = &http.basic {
                    forwarded.insert(header::AUTHORIZATION, basic.clone());
                }
                // reqwest's default when the client sent none.
                forwarded
                    .entry(header::ACCEPT)
                    .or_insert(HeaderValue::from_static("*/*"));
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.uri_mut() = http.uri.clone();
                *request.headers_mut() = forwarded;
                let resp = tokio::time::timeout(timeout, http.client.request(request))
                    .await
                    .map_err(|_| UpstreamError::Timeout(timeout))?
                    .map_err(|e| {
                        if timed_out(&e) {
                            UpstreamError::Timeout(timeout)
                        } else {
                            UpstreamError::Unreachable(e)
                        }
                    })?;
                let (parts, body) = resp.into_parts();
                let mut out = Response::new(Body::new(body));
                *out.status_mut() = parts.status;
                copy_response_headers(&parts.headers, out.headers_mut());
                Ok(out)
            }
            // Bounded by the bridge (each answer's first message); the identity headers
            // have no place on stdio.
            Target::Stdio(bridge) => Ok(bridge.respond(&method, &forwarded, body).await),
            // Boxed: each member is an `Upstream` again. The members add the identity
            // themselves (the gateway's copy in `forwarded` is not passed on).
            Target::Federated(federation) => {
                Box::pin(federation.respond(method, &forwarded, identity, body)).await
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

    /// Sends one MCP POST the gateway makes for itself (the gates' status look-up)
    /// and reads the whole answer as JSON-RPC messages (from a JSON body, or from the
    /// events of an event stream), the read bounded by the upstream timeout too.
    pub(crate) async fn post_buffered(
        &self,
        client: &HeaderMap,
        identity: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Buffered, UpstreamError> {
        let resp = self.send(Method::POST, client, identity, body).await?;
        Buffered::read_response(resp, self.timeout).await
    }
}

/// An upstream answer read in full.
#[derive(Debug)]
pub(crate) struct Buffered {
    messages: Vec<serde_json::Value>,
}

impl Buffered {
    /// Reads `resp` in full (at most 8 MiB, within `timeout`).
    pub(crate) async fn read_response(
        resp: Response<Body>,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
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
            .is_some_and(keygate_mcp::sse::is_event_stream);
        let messages = if bytes.is_empty() {
            Vec::new()
        } else if is_sse {
            keygate_mcp::sse::messages(bytes)
                .map_err(|e| UpstreamError::BadResponse(e.to_string()))?
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
        Ok(Self { messages })
    }

    /// The JSON-RPC response answering request `id`, if any.
    pub(crate) fn response_to(&self, id: &serde_json::Value) -> Option<&serde_json::Value> {
        self.messages
            .iter()
            .find(|m| crate::answers::is_answer(m, id))
    }
}

/// An answer of `status` without a body.
pub(crate) fn status_only(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

/// One JSON-RPC message as a JSON answer.
pub(crate) fn json_response(status: StatusCode, message: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(serde_json::to_vec(message).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An event stream answer of `body`.
pub(crate) fn sse_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(keygate_mcp::sse::CONTENT_TYPE),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// A JSON-RPC error as a JSON answer with `status`.
pub(crate) fn rpc_error(
    status: StatusCode,
    id: Value,
    code: i64,
    message: impl Into<String>,
) -> Response<Body> {
    json_response(status, &jsonrpc::error_response(id, code, message))
}

/// The answer the official SDKs give an unknown session (404, -32600).
pub(crate) fn not_found(id: Value) -> Response<Body> {
    rpc_error(
        StatusCode::NOT_FOUND,
        id,
        jsonrpc::INVALID_REQUEST,
        "Session not found",
    )
}

/// The client's MCP transport headers ([`keygate_mcp::headers::is_transport_request_header`]:
/// every `Mcp-*`, `Last-Event-ID`, `Content-Type`, `Accept`), all copies of each;
/// `Authorization`, cookies, client-sent `X-Keygate-*` and everything else stay here.
fn forward_headers(incoming: &HeaderMap, has_body: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        if keygate_mcp::headers::is_transport_request_header(name) {
            out.append(name.clone(), value.clone());
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

/// Removes the credentials from `url` and returns them as an `Authorization: Basic`
/// value (user and password percent-decoded, as reqwest did), marked sensitive so that
/// no trace shows it.
fn take_credentials(url: &mut url::Url) -> Result<Option<HeaderValue>, String> {
    use base64::Engine as _;
    if url.username().is_empty() && url.password().is_none() {
        return Ok(None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| {
                "the credentials in the upstream URL are not UTF-8 once percent-decoded".to_owned()
            })
    };
    let user = decode(url.username())?;
    let password = url.password().map(decode).transpose()?;
    let pair = format!("{user}:{}", password.unwrap_or_default());
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| "the credentials in the upstream URL cannot be sent".to_owned())?;
    value.set_sensitive(true);
    // Both succeed on a URL with a host, which an http(s) URL always has.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(Some(value))
}

/// Whether the client's error is the connect timeout (an `io::Error` of kind `TimedOut`
/// somewhere in its sources): answered like the response timeout, 504.
fn timed_out(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// The upstream's MCP transport headers ([`keygate_mcp::headers::is_transport_response_header`]:
/// every `Mcp-*`, `Content-Type`, `Cache-Control`).
fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if keygate_mcp::headers::is_transport_response_header(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_headers_are_forwarded() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("mcp-session-id", HeaderValue::from_static("s1"));
        h.insert("cookie", HeaderValue::from_static("c=1"));
        h.insert("x-keygate-tenant", HeaderValue::from_static("spoofed"));
        h.insert("mcp-method", HeaderValue::from_static("tools/call"));
        h.insert("mcp-name", HeaderValue::from_static("get_weather"));
        h.insert("mcp-param-region", HeaderValue::from_static("eu"));
        h.insert("last-event-id", HeaderValue::from_static("e7"));
        h.insert("host", HeaderValue::from_static("gateway"));
        let out = forward_headers(&h, true);
        for name in [
            "mcp-method",
            "mcp-name",
            "mcp-param-region",
            "last-event-id",
        ] {
            assert!(out.contains_key(name), "{name}");
        }
        assert!(out.get("host").is_none());
        assert!(out.get("authorization").is_none());
        assert!(out.get("cookie").is_none());
        assert_eq!(out.get("mcp-session-id").unwrap(), "s1");
        assert!(out.get("x-keygate-tenant").is_none());
        assert_eq!(out.get("content-type").unwrap(), "application/json");
    }

    #[test]
    fn every_mcp_response_header_reaches_the_client() {
        let mut from = HeaderMap::new();
        from.insert("mcp-session-id", HeaderValue::from_static("s"));
        from.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2026-07-28"),
        );
        from.insert("mcp-something-new", HeaderValue::from_static("x"));
        from.insert("cache-control", HeaderValue::from_static("no-cache"));
        from.insert("set-cookie", HeaderValue::from_static("a=b"));
        from.insert("content-length", HeaderValue::from_static("3"));
        let mut to = HeaderMap::new();
        copy_response_headers(&from, &mut to);
        assert_eq!(to.len(), 4, "{to:?}");
        assert_eq!(to["mcp-something-new"], "x");
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_uri() {
        let mut url = url::Url::parse("https://al%20ice:p%40ss@mcp.example.com:8443/mcp").unwrap();
        let basic = take_credentials(&mut url).unwrap().unwrap();
        // base64("al ice:p@ss")
        assert_eq!(basic, "Basic YWwgaWNlOnBAc3M=");
        assert!(basic.is_sensitive());
        assert_eq!(url.as_str(), "https://mcp.example.com:8443/mcp");
        let mut plain = url::Url::parse("http://127.0.0.1:9/mcp").unwrap();
        assert!(take_credentials(&mut plain).unwrap().is_none());
        let err = Upstream::http("http://u:secret@[::1/mcp", Duration::from_secs(1)).unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn only_http_upstreams_are_accepted() {
        assert!(Upstream::http("http://127.0.0.1:9000/mcp", Duration::from_secs(1)).is_ok());
        assert!(Upstream::http("ftp://x", Duration::from_secs(1)).is_err());
        assert!(Upstream::http("not a url", Duration::from_secs(1)).is_err());
    }
}
