//! A bare HTTP/1.1 reverse proxy on the libraries keygated is built on (tokio, hyper's
//! server connection) with hyper-util's ordinary pooled client (keygated has had its own
//! pool of hyper connections since issue 19's fifth pass), and nothing else: no key, no
//! MCP, no policy, no router. The load benchmark runs it in front of the same
//! demo platform as nginx and keygated, so that keygated's gap to nginx splits into what
//! the stack costs and what keygate's own work costs.
//!
//! ```sh
//! cargo run --release -p keygate-examples --example demo-platform -- --listen 127.0.0.1:9002 &
//! cargo run --release -p keygate-examples --example proxy -- \
//!     --listen 127.0.0.1:9003 --upstream http://127.0.0.1:9002/mcp
//! curl -s http://127.0.0.1:9003/ -H 'content-type: application/json' \
//!     -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
//! ```
//!
//! Every request, whatever its path, is read in full and sent to the upstream URL with
//! its method, body and MCP transport headers (`Content-Type`, `Accept`, `Last-Event-ID`
//! and every `Mcp-*`), as keygated forwards an MCP POST; the answer streams back with its
//! status, `Content-Type`, `Cache-Control` and `Mcp-*` headers, so MCP sessions work
//! through it. Sockets get TCP_NODELAY, as keygated's do. Ctrl-C or SIGTERM stops it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

/// Forward every request to one HTTP upstream, and do nothing else.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9003")]
    listen: SocketAddr,
    /// The upstream every request is sent to (http:// only).
    #[arg(long)]
    upstream: Uri,
}

type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// The pooled client and the upstream's URI.
struct Proxy {
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Uri,
}

impl Proxy {
    async fn forward(&self, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let Ok(body) = body.collect().await else {
            return status(StatusCode::BAD_REQUEST);
        };
        let mut out = Request::new(Full::new(body.to_bytes()));
        *out.method_mut() = parts.method;
        *out.uri_mut() = self.upstream.clone();
        for (name, value) in &parts.headers {
            if name == header::CONTENT_TYPE
                || name == header::ACCEPT
                || name == "last-event-id"
                || name.as_str().starts_with("mcp-")
            {
                out.headers_mut().append(name.clone(), value.clone());
            }
        }
        let Ok(resp) = self.client.request(out).await else {
            return status(StatusCode::BAD_GATEWAY);
        };
        let (parts, body) = resp.into_parts();
        let mut back = Response::new(body.boxed_unsync());
        *back.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if name == header::CONTENT_TYPE
                || name == header::CACHE_CONTROL
                || name.as_str().starts_with("mcp-")
            {
                back.headers_mut().append(name.clone(), value.clone());
            }
        }
        back
    }
}

/// An empty answer of `code`.
fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::new())
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.upstream.scheme_str() == Some("http") && args.upstream.authority().is_some(),
        "--upstream must be an http:// URL with a host (got {})",
        args.upstream
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // keygated's client settings that matter per request: TCP_NODELAY and a pool of idle
    // connections large enough for every client connection.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .pool_timer(TokioTimer::new())
        .build(connector);
    let proxy = std::sync::Arc::new(Proxy {
        client,
        upstream: args.upstream,
    });
    eprintln!(
        "proxy serving at http://{}/ -> {}",
        listener.local_addr()?,
        proxy.upstream
    );
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    let mut stop = std::pin::pin!(keygate_examples::shutdown());
    loop {
        let (stream, _) = tokio::select! {
            () = &mut stop => return Ok(()),
            accepted = listener.accept() => accepted.context("accept failed")?,
        };
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let proxy = proxy.clone();
        let service = hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(proxy.forward(req).await) }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            // A client that resets its connection is its own business.
            let _ = conn.await;
        });
    }
}
