//! A canned HTTP server on loopback: answers a fixed list of requests, then stops.
//!
//! It stands in for keygated to test how the CLI reads the answers of the HTTP
//! contract; the real server is exercised by the end-to-end tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
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

pub(crate) struct Fake {
    pub(crate) url: String,
    seen: mpsc::Receiver<Seen>,
    expected: usize,
}

impl Fake {
    /// Serves `answers` (status, JSON body) in order, one per connection.
    pub(crate) fn serve(answers: Vec<(u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, seen) = mpsc::channel();
        let expected = answers.len();
        // Detached: if the CLI never connects, the thread ends with the test process.
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let (mut authorization, mut length) = (None, 0usize);
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
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
                reader.read_exact(&mut request_body).unwrap();
                let _ = tx.send(Seen {
                    line: line.trim_end().to_owned(),
                    authorization,
                    body: String::from_utf8(request_body).unwrap(),
                });
                let mut stream = reader.into_inner();
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        Self {
            url,
            seen,
            expected,
        }
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
