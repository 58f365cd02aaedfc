//! DNS-rebinding protection and CORS for `/api/*`.
//!
//! A browser sends `Origin` with every cross-origin request and every POST. A request
//! to `/api/*` whose `Origin` is present and is neither the gateway's own nor listed
//! in [`Config::allowed_origins`](crate::Config::allowed_origins) is refused with 403
//! `{"error":"forbidden_origin"}`, before authentication. Requests without `Origin`
//! (non-browser clients) pass.
//!
//! The gateway's own origins: the origin of [`Config::public_url`](crate::Config::public_url),
//! and the origin the request itself addresses (`Origin` equal to `http(s)://` +
//! `Host`) when that `Host` cannot have been rebound: an IP literal, `localhost`
//! (or a name under `.localhost`), or the host of the public URL or of a listed
//! origin. A page at `http://evil.example:8080` whose name was rebound to
//! 127.0.0.1 sends `Host: evil.example:8080` and that `Origin`: the name is none of
//! these, so it is refused.
//!
//! CORS: a preflight (`OPTIONS`) from a listed origin is answered 204 with the
//! methods and headers MCP clients use; answers to listed origins carry
//! `Access-Control-Allow-Origin` (the origin itself) and `Vary: Origin`. No
//! credentials mode: keys travel in `Authorization`, never in cookies.

use std::future::Future;
use std::net::IpAddr;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header, uri::Authority};

use crate::error::ServerError;

/// Methods a preflight allows.
const ALLOW_METHODS: &str = "GET, POST, DELETE";
/// Request headers a preflight allows (and any `Mcp-Param-*` it is asked for).
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, Mcp-Session-Id, \
     MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID";
/// Response headers a listed origin's scripts may read.
const EXPOSE_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate";
/// How long a browser may cache a preflight, in seconds.
const MAX_AGE: &str = "600";

/// A parsed web origin: lowercase scheme and host, and the port (the scheme's
/// default when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

impl Origin {
    /// `scheme://host[:port]`, with at most a `/` path when `allow_path` is false,
    /// any path when it is true (a public URL may have one).
    fn parse(text: &str, allow_path: bool) -> Option<Self> {
        let uri: http::Uri = text.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        if !allow_path && (!matches!(uri.path(), "" | "/") || uri.query().is_some()) {
            return None;
        }
        Some(Self {
            port: authority
                .port_u16()
                .unwrap_or_else(|| default_port(&scheme)),
            host: authority.host().to_ascii_lowercase(),
            scheme,
        })
    }
}

/// Which origins may call `/api/*`.
#[derive(Debug)]
pub(crate) struct Origins {
    public: Option<Origin>,
    listed: Vec<Origin>,
}

/// How a request's `Origin` is judged.
enum Verdict {
    Own,
    Listed,
    Foreign,
}

impl Origins {
    /// From the public URL and the `--allowed-origin` list.
    pub(crate) fn new(public_url: Option<&str>, allowed: &[String]) -> Result<Self, ServerError> {
        let public = public_url
            .map(|url| {
                Origin::parse(url, true).ok_or_else(|| {
                    ServerError::Config(format!(
                        "the public URL {url:?} is not an http:// or https:// URL"
                    ))
                })
            })
            .transpose()?;
        let listed = allowed
            .iter()
            .map(|o| {
                Origin::parse(o, false).ok_or_else(|| {
                    ServerError::Config(format!(
                        "allowed origin {o:?} is not an origin such as https://app.example.com \
                         or http://localhost:5173 (scheme, host and port only)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { public, listed })
    }

    /// Whether `host` (from a `Host` header) cannot be a rebound name.
    fn trusted_host(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.public.as_ref().is_some_and(|o| o.host == host)
            || self.listed.iter().any(|o| o.host == host)
    }

    fn judge(&self, origin: &HeaderValue, headers: &HeaderMap, uri: &http::Uri) -> Verdict {
        let Some(origin) = origin.to_str().ok().and_then(|o| Origin::parse(o, false)) else {
            // `null` (sandboxed frames, file: pages) and anything unreadable.
            return Verdict::Foreign;
        };
        if self.listed.contains(&origin) {
            return Verdict::Listed;
        }
        if self.public.as_ref() == Some(&origin) {
            return Verdict::Own;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<Authority>().ok())
            .or_else(|| uri.authority().cloned());
        if let Some(host) = host {
            let name = host.host().to_ascii_lowercase();
            let port = host
                .port_u16()
                .unwrap_or_else(|| default_port(&origin.scheme));
            if name == origin.host && port == origin.port && self.trusted_host(&name) {
                return Verdict::Own;
            }
        }
        Verdict::Foreign
    }
}

fn forbidden() -> Response {
    let mut resp = (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error": "forbidden_origin"})),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The preflight answer to a listed origin.
fn preflight(origin: HeaderValue, requested: Option<&HeaderValue>) -> Response {
    let mut allow = ALLOW_HEADERS.to_owned();
    // `Mcp-Param-*` names depend on the tool; allow the ones asked for.
    for name in requested
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        if name.len() > keygate_mcp::headers::MCP_PARAM_PREFIX.len()
            && name
                .get(..keygate_mcp::headers::MCP_PARAM_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(keygate_mcp::headers::MCP_PARAM_PREFIX))
            && http::HeaderName::from_bytes(name.as_bytes()).is_ok()
        {
            allow.push_str(", ");
            allow.push_str(name);
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    if let Ok(v) = HeaderValue::from_str(&allow) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// The check itself, called by the request log middleware (`front`) around
/// everything inside it: see the module documentation.
pub(crate) async fn guard<F>(
    origins: &Origins,
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    if !req.uri().path().starts_with("/api/") {
        return next(req).await;
    }
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next(req).await;
    };
    match origins.judge(&origin, req.headers(), req.uri()) {
        Verdict::Foreign => {
            tracing::info!(
                origin = ?keygate_http::untrusted(origin.to_str().unwrap_or("(not text)")).max_chars(80),
                "request from a foreign origin refused"
            );
            forbidden()
        }
        Verdict::Own => next(req).await,
        Verdict::Listed if req.method() == Method::OPTIONS => preflight(
            origin,
            req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS),
        ),
        Verdict::Listed => {
            let mut resp = next(req).await;
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
            h.append(header::VARY, HeaderValue::from_static("Origin"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(origins: &Origins, origin: &str, host: &str) -> &'static str {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        match origins.judge(
            &HeaderValue::from_str(origin).unwrap(),
            &headers,
            &http::Uri::from_static("/api/mcp"),
        ) {
            Verdict::Own => "own",
            Verdict::Listed => "listed",
            Verdict::Foreign => "foreign",
        }
    }

    #[test]
    fn own_listed_and_foreign_origins() {
        let o = Origins::new(
            Some("https://keys.example.com/base"),
            &["http://localhost:5173".to_owned()],
        )
        .unwrap();
        assert_eq!(judge(&o, "https://keys.example.com", "proxy:8080"), "own");
        assert_eq!(judge(&o, "https://KEYS.example.com:443", "x"), "own");
        assert_eq!(
            judge(&o, "http://localhost:5173", "127.0.0.1:8080"),
            "listed"
        );
        assert_eq!(judge(&o, "http://127.0.0.1:8080", "127.0.0.1:8080"), "own");
        assert_eq!(judge(&o, "http://[::1]:8080", "[::1]:8080"), "own");
        assert_eq!(judge(&o, "http://localhost:8080", "localhost:8080"), "own");
        // Rebinding: a foreign name in both Host and Origin.
        assert_eq!(
            judge(&o, "http://evil.example.com", "evil.example.com"),
            "foreign"
        );
        assert_eq!(
            judge(&o, "http://127.0.0.1:9999", "127.0.0.1:8080"),
            "foreign"
        );
        assert_eq!(judge(&o, "null", "127.0.0.1:8080"), "foreign");
        assert_eq!(judge(&o, "http://localhost:5174", "localhost:5174"), "own");
    }

    #[test]
    fn listed_origins_must_be_origins() {
        assert!(Origins::new(None, &["https://app.example.com/path".to_owned()]).is_err());
        assert!(Origins::new(None, &["app.example.com".to_owned()]).is_err());
        assert!(Origins::new(None, &["ftp://app.example.com".to_owned()]).is_err());
        assert!(Origins::new(Some("not a url"), &[]).is_err());
        assert!(Origins::new(None, &["https://app.example.com/".to_owned()]).is_ok());
    }
}
