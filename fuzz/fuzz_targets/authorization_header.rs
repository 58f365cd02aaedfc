//! `parse_authorization` on arbitrary header values, and the real `AuthLayer` over them.
//!
//! Input: the bytes, split at `\n` (never valid inside a header value), are the values of
//! the `Authorization` headers, in order; an empty input sends none. `$VALID` in a value
//! is replaced by the raw token of a key that exists in the store, so the fuzzer can
//! reach the accepted path and mutate around it.
//!
//! Properties:
//! - `parse_authorization` never panics; an accepted token comes from the only
//!   `Authorization` header, which is at most `MAX_AUTHORIZATION_LEN` bytes and is
//!   `bearer` (any case), exactly one space, then the token; the token is non-empty and
//!   RFC 6750 `b64token` (`[A-Za-z0-9-._~+/]+=*`);
//! - a value over `MAX_AUTHORIZATION_LEN` bytes is refused as `invalid_request`, and
//!   `missing_token` is answered only with no header or a scheme other than bearer;
//! - through `AuthLayer` over a store that records its `verify` calls: a refused header
//!   never reaches the store and answers exactly its error; an accepted one reaches it
//!   exactly once, with exactly the parsed token; a token that `Token::parse` refuses
//!   gets `key_not_found` from the store, like an unknown key; and the inner service is
//!   reached only by the one valid token, with its identity and without the
//!   `Authorization` header.

#![no_main]

mod support;

use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use keygate_http::{AuthError, AuthLayer, MAX_AUTHORIZATION_LEN, parse_authorization};
use keygate_keys::{
    Bootstrap, KeyStore, MemoryStore, Principal, Token, TokenFormat, Verifier, VerifyError,
};
use libfuzzer_sys::fuzz_target;
use tower::{Service, ServiceExt};

/// What the store saw: one entry per `verify` call.
#[derive(Default)]
struct Seen {
    calls: Vec<(String, Outcome)>,
}

/// The outcome of one `verify` call, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Verified,
    NotFound,
    Other,
}

/// A `Verifier` that records every `verify` call and delegates to a `MemoryStore`.
struct Recording {
    inner: MemoryStore,
    seen: Mutex<Seen>,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: Arc<Recording>,
    valid: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = support::runtime();
    let store = Arc::new(Recording {
        inner: MemoryStore::new(),
        seen: Mutex::new(Seen::default()),
    });
    let scopes = vec!["keys:admin".to_owned()];
    let request = Bootstrap::new("acme", "alice", &["shop"], scopes, "owner");
    let boot = runtime
        .block_on(store.inner.bootstrap(&TokenFormat::default(), request))
        .expect("bootstrap");
    Fixture {
        runtime,
        store,
        valid: boot.key.token.expose().to_owned(),
    }
});

fuzz_target!(|data: &[u8]| {
    let fx = &*FIXTURE;
    let values = header_values(data, fx.valid.as_bytes());
    let mut headers = HeaderMap::new();
    for v in &values {
        headers.append(AUTHORIZATION, v.clone());
    }
    let parsed = parse_authorization(&headers);
    check_parse(&values, &parsed);
    let parsed = parsed.map(str::to_owned);

    let mut req = Request::get("/").body(Body::empty()).expect("request");
    *req.headers_mut() = headers;
    fx.store.seen.lock().expect("lock").calls.clear();
    let (status, body, reached) = fx.runtime.block_on(async {
        let inner = tower::service_fn(|req: Request<Body>| async move {
            let principal = req.extensions().get::<Principal>().cloned();
            let forwarded = req.headers().contains_key(AUTHORIZATION);
            let key_id = req
                .headers()
                .get("x-keygate-key-id")
                .map(|v| v.as_bytes().to_vec());
            Ok::<_, std::convert::Infallible>(
                axum::response::Response::builder()
                    .status(StatusCode::IM_A_TEAPOT)
                    .extension(Reached {
                        principal,
                        forwarded,
                        key_id,
                    })
                    .body(Body::empty())
                    .expect("response"),
            )
        });
        let mut svc = tower::Layer::layer(&AuthLayer::new(fx.store.clone()), inner);
        let res = svc
            .ready()
            .await
            .expect("ready")
            .call(req)
            .await
            .expect("infallible");
        let status = res.status();
        let reached = res.extensions().get::<Reached>().cloned();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, body, reached)
    });
    let calls = std::mem::take(&mut fx.store.seen.lock().expect("lock").calls);

    match parsed {
        Err(err) => {
            assert!(calls.is_empty(), "a refused header reached the store");
            assert!(reached.is_none(), "a refused header reached the service");
            assert_eq!(status, err.status());
            assert_eq!(&body[..], err.body());
        }
        Ok(token) => {
            assert_eq!(calls.len(), 1, "verify must run exactly once");
            let (seen, result) = &calls[0];
            assert_eq!(
                *seen, token,
                "the store saw another token than the header's"
            );
            if Token::parse(&token).is_err() {
                assert_eq!(*result, Outcome::NotFound);
            }
            if token == fx.valid {
                assert_eq!(*result, Outcome::Verified);
                let reached = reached.expect("the valid key reaches the service");
                assert_eq!(status, StatusCode::IM_A_TEAPOT);
                assert!(!reached.forwarded, "Authorization forwarded upstream");
                let principal = reached.principal.expect("principal in extensions");
                assert_eq!(
                    reached.key_id.as_deref(),
                    Some(principal.key_id.as_str().as_bytes())
                );
            } else {
                assert_eq!(*result, Outcome::NotFound, "the store holds one key only");
                assert!(reached.is_none(), "an invalid token reached the service");
                assert_eq!(status, AuthError::KeyNotFound.status());
                assert_eq!(&body[..], AuthError::KeyNotFound.body());
            }
        }
    }
});

#[derive(Clone)]
struct Reached {
    principal: Option<Principal>,
    forwarded: bool,
    key_id: Option<Vec<u8>>,
}

/// The header values of an input: split at `\n`, `$VALID` replaced, values that are
/// not valid header values dropped.
fn header_values(data: &[u8], valid: &[u8]) -> Vec<HeaderValue> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|b| *b == b'\n')
        .filter_map(|part| HeaderValue::from_bytes(&replace(part, b"$VALID", valid)).ok())
        .collect()
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn is_b64token(token: &[u8]) -> bool {
    let body = token
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
        .count();
    body > 0 && token[body..].iter().all(|b| *b == b'=')
}

fn check_parse(values: &[HeaderValue], parsed: &Result<&str, AuthError>) {
    let long = values
        .iter()
        .any(|v| v.as_bytes().len() > MAX_AUTHORIZATION_LEN);
    match parsed {
        Ok(token) => {
            assert_eq!(values.len(), 1, "accepted with {} headers", values.len());
            let value = values[0].as_bytes();
            assert!(value.len() <= MAX_AUTHORIZATION_LEN);
            assert!(value.len() > 7);
            assert!(value[..7].eq_ignore_ascii_case(b"bearer "));
            assert_eq!(&value[7..], token.as_bytes());
            assert!(!token.is_empty());
            assert!(is_b64token(token.as_bytes()), "not a b64token: {token:?}");
        }
        Err(AuthError::MissingToken) => {
            assert!(!long, "an oversized header must be invalid_request");
            if let [value] = values {
                let value = value.as_bytes();
                let scheme_end = value
                    .iter()
                    .position(|b| *b == b' ' || *b == b'\t')
                    .unwrap_or(value.len());
                assert!(scheme_end > 0, "empty scheme must be invalid_request");
                assert!(
                    !value[..scheme_end].eq_ignore_ascii_case(b"bearer"),
                    "a bearer header answered missing_token"
                );
            } else {
                assert!(values.is_empty(), "several headers answered missing_token");
            }
        }
        Err(AuthError::InvalidRequest) => {
            // A single well-formed bearer header is never refused as malformed.
            if let [value] = values {
                let value = value.as_bytes();
                let well_formed = value.len() <= MAX_AUTHORIZATION_LEN
                    && value.len() > 7
                    && value[..7].eq_ignore_ascii_case(b"bearer ")
                    && is_b64token(&value[7..]);
                assert!(!well_formed, "a well-formed bearer header was refused");
            }
        }
        Err(other) => panic!("parse_authorization answered {other:?}"),
    }
    if long {
        assert_eq!(*parsed, Err(AuthError::InvalidRequest));
    }
}

#[async_trait]
impl Verifier for Recording {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let result = self.inner.verify(token).await;
        let summary = match &result {
            Ok(_) => Outcome::Verified,
            Err(VerifyError::NotFound) => Outcome::NotFound,
            Err(_) => Outcome::Other,
        };
        self.seen
            .lock()
            .expect("lock")
            .calls
            .push((token.to_owned(), summary));
        result
    }
}
