//! A canned HTTP server on loopback: answers a fixed list of requests, then stops.
//!
//! It stands in for keygated to test how the CLI reads the answers of the HTTP
//! contract; the real server is exercised by the end-to-end tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// A request as the fake saw it.
#[derive(Debug)]
pub(crate) struct Seen {
    /// `GET /api/v1/token`.
    pub(crate) line: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: String,
}

impl Seen {
    /// The request was `line` (`GET /api/v1/token HTTP/1.1`), presenting `token`.
    #[track_caller]
    pub(crate) fn assert_sent(&self, line: &str, token: &keygate_token::Token) {
        assert_eq!(self.line, line);
        assert_eq!(
            self.authorization.as_deref(),
            Some(format!("Bearer {}", token.expose()).as_str())
        );
    }
}

pub(crate) struct Fake {
    pub(crate) url: String,
    seen: mpsc::Receiver<Seen>,
    expected: usize,
}

impl Fake {
    /// Serves `answers` (status, JSON body) in order, one per connection.
    pub(crate) fn serve(answers: Vec<(u16, String)>) -> Self {
        Self::start("http", answers, Ok)
    }

    /// The same over TLS, with the certificate of `tls/server.pem` (for `127.0.0.1` and
    /// `localhost`, issued by `tls/ca.pem`). A connection whose handshake fails is
    /// dropped and the next one gets the same answer.
    pub(crate) fn serve_tls(answers: Vec<(u16, String)>) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let certs = CertificateDer::pem_slice_iter(include_bytes!("tls/server.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("tls/server.key")).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = std::sync::Arc::new(config);
        Self::start("https", answers, move |tcp| {
            let conn =
                rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
            Ok(rustls::StreamOwned::new(conn, tcp))
        })
    }

    fn start<S: Read + Write>(
        scheme: &str,
        answers: Vec<(u16, String)>,
        wrap: impl Fn(TcpStream) -> std::io::Result<S> + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (tx, seen) = mpsc::channel();
        let expected = answers.len();
        // Detached: if the CLI never connects, the thread ends with the test process.
        std::thread::spawn(move || {
            let mut answers = answers.into_iter().peekable();
            while let Some((status, body)) = answers.peek() {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                let answered = wrap(tcp).and_then(|stream| answer(stream, *status, body));
                if let Ok(request) = answered {
                    let _ = tx.send(request);
                    answers.next();
                }
            }
        });
        Self {
            url,
            seen,
            expected,
        }
    }

    /// `keygate ARGS…` against this server (`KEYGATE_SERVER`), presenting `key`.
    pub(crate) fn run(&self, key: &keygate_token::Token, args: &[&str]) -> std::process::Output {
        crate::keygate()
            .args(args)
            .env("KEYGATE_SERVER", &self.url)
            .env("KEYGATE_API_KEY", key.expose())
            .output()
            .unwrap()
    }

    /// Every request seen; fails when the CLI sent fewer than there were answers.
    pub(crate) fn finish(self) -> Vec<Seen> {
        (0..self.expected)
            .map(|i| {
                // A liveness bound, not a timing assertion: the requests were sent already.
                self.seen
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("request {i} never reached the fake server"))
            })
            .collect()
    }
}

/// Reads one request from `stream` and writes the answer.
fn answer(stream: impl Read + Write, status: u16, body: &str) -> std::io::Result<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (mut authorization, mut length) = (None, 0usize);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().unwrap(),
            _ => {}
        }
    }
    let mut request_body = vec![0; length];
    reader.read_exact(&mut request_body)?;
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    Ok(Seen {
        line: line.trim_end().to_owned(),
        authorization,
        body: String::from_utf8(request_body).unwrap(),
    })
}
