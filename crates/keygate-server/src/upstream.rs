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
use hyper_util::client::legacy::connect::HttpConnector;
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
    Unreachable(#[source] crate::http_pool::SendError),
    #[error("the upstream MCP server sent an unreadable response: {0}")]
    BadResponse(String),
}

/// An upstream over HTTP: its pooled HTTP/1.1 connections (hyper's, see `http_pool`),
/// its URI in origin form and the `Host` it is sent with (both made once, so a forwarded
/// request costs no URL parsing; reqwest, then hyper-util's client, did it per request),
/// and the `Authorization` the URL's credentials make (marked sensitive).
#[derive(Debug)]
struct HttpTarget {
    pool: crate::http_pool::Pool,
    origin: Uri,
    host: HeaderValue,
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
        let (origin, host) = origin_and_host(&uri)?;
        // No read timeout: it would apply between any two bytes of a streamed answer and
        // cut idle GET streams and silent tools. `send` bounds the wait for the response
        // head instead; buffered reads bound themselves. No redirects are followed.
        // hyper-util's pool settings, kept: 64 idle connections, 90 s each at most.
        let pool = crate::http_pool::Pool::new(connector, uri, 64, Duration::from_secs(90));
        Ok(Self {
            target: Target::Http(Arc::new(HttpTarget {
                pool,
                origin,
                host,
                basic,
            })),
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
        // Room for what is added below (identity, `Accept`, `Host`, `Authorization`):
        // the map is allocated once, never grown.
        let mut forwarded = forward_headers(client, method == Method::POST, identity.len() + 3);
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
                forwarded.insert(header::HOST, http.host.clone());
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.uri_mut() = http.origin.clone();
                *request.headers_mut() = forwarded;
                let resp = tokio::time::timeout(timeout, http.pool.send(request))
                    .await
                    .map_err(|_| UpstreamError::Timeout(timeout))?
                    .map_err(|e| {
                        if timed_out(&*e) {
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
fn forward_headers(incoming: &HeaderMap, has_body: bool, room: usize) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len() + 1 + room);
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

/// The origin-form request target of `uri` (its path and query) and the `Host` header
/// it is sent with (the port only when it is not the scheme's default), as hyper-util's
/// client made them.
fn origin_and_host(uri: &Uri) -> Result<(Uri, HeaderValue), String> {
    let origin = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .parse::<Uri>()
        .map_err(|e| format!("invalid upstream URL path: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| "the upstream URL has no host".to_owned())?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let host = match uri.port_u16() {
        Some(port) if port != default_port => HeaderValue::from_str(&format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    }
    .map_err(|_| "the upstream URL's host cannot be sent as a Host header".to_owned())?;
    Ok((origin, host))
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
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
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
    to.reserve(from.len());
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
        let out = forward_headers(&h, true, 0);
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

    /// A plain HTTP/1.1 server on loopback answering every request `{"n":N}` (N counts
    /// the requests), keeping each connection open for `keep` requests, then closing it
    /// after a pause. Returns its URL and the number of connections it accepted.
    async fn counting_upstream(keep: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp?x=1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for _ in 0..keep {
                        // A request: its head, then as many body bytes as it announced.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        assert!(head.starts_with("post /mcp?x=1 http/1.1\r\n"), "{head}");
                        assert!(head.contains("\r\nhost: 127.0.0.1:"), "{head}");
                        let length: usize = head
                            .split("\r\n")
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < head_end + length {
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..head_end + length);
                        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                        let body = format!("{{\"n\":{n}}}");
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                });
            }
        });
        (url, accepted)
    }

    /// The upstream's answer to an empty JSON POST, its body not read.
    async fn posted(upstream: &Upstream) -> Response<Body> {
        let resp = upstream
            .send(
                Method::POST,
                &HeaderMap::new(),
                &[],
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp
    }

    /// The upstream's answer to an empty JSON POST, read.
    async fn post(upstream: &Upstream) -> String {
        let resp = posted(upstream).await;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_upstream_connection() {
        let (url, accepted) = counting_upstream(usize::MAX).await;
        let upstream = Upstream::http(&url, Duration::from_secs(5)).unwrap();
        for n in 1..=5 {
            assert_eq!(post(&upstream).await, format!("{{\"n\":{n}}}"));
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Concurrent requests each get a connection, and all of them are kept.
        let answers = futures_util::future::join_all((0..4).map(|_| post(&upstream))).await;
        assert_eq!(answers.len(), 4);
        let opened = accepted.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=4).contains(&opened), "{opened}");
        for _ in 0..8 {
            post(&upstream).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), opened);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_not_used_again() {
        // Every connection serves one request, then the upstream closes it.
        let (url, accepted) = counting_upstream(1).await;
        let upstream = Upstream::http(&url, Duration::from_secs(5)).unwrap();
        for n in 1..=3 {
            assert_eq!(post(&upstream).await, format!("{{\"n\":{n}}}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_takes_its_connection_with_it() {
        let (url, accepted) = counting_upstream(usize::MAX).await;
        let upstream = Upstream::http(&url, Duration::from_secs(5)).unwrap();
        drop(posted(&upstream).await);
        post(&upstream).await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn the_request_target_is_the_path_and_the_host_names_a_port_only_when_needed() {
        for (url, target, host) in [
            (
                "http://127.0.0.1:9000/mcp?a=1",
                "/mcp?a=1",
                "127.0.0.1:9000",
            ),
            ("http://example.com:80/", "/", "example.com"),
            ("https://example.com:443/x", "/x", "example.com"),
            ("https://example.com:80/x", "/x", "example.com:80"),
            ("http://[::1]:8080/mcp", "/mcp", "[::1]:8080"),
        ] {
            let (origin, made) = origin_and_host(&url.parse().unwrap()).unwrap();
            assert_eq!(
                (origin.to_string().as_str(), made.to_str().unwrap()),
                (target, host),
                "{url}"
            );
        }
    }

    #[test]
    fn only_http_upstreams_are_accepted() {
        assert!(Upstream::http("http://127.0.0.1:9000/mcp", Duration::from_secs(1)).is_ok());
        assert!(Upstream::http("ftp://x", Duration::from_secs(1)).is_err());
        assert!(Upstream::http("not a url", Duration::from_secs(1)).is_err());
    }
}
