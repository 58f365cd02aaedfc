//! MCP's HTTP headers: their names, which of them are transport headers a gateway
//! passes on, and the check that the routing headers of the 2026-07-28 revision
//! (`Mcp-Method`, `Mcp-Name`) agree with the body they travel with.
//!
//! Pure: no I/O. A client of the stateless revision mirrors the JSON-RPC `method` in
//! `Mcp-Method` and, for `tools/call`, `prompts/get` and `resources/read`, the named
//! tool, prompt or resource in `Mcp-Name`, so that proxies can route on headers alone.
//! A gateway that reads the body must refuse a request whose headers say something
//! else (HTTP 400, JSON-RPC error [`HEADER_MISMATCH`]): otherwise the policy would
//! judge one call while an upstream routing on headers ran another.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use keygate_mcp::headers::{self, HeaderError};
//! use serde_json::json;
//!
//! let mut h = HeaderMap::new();
//! h.insert(headers::MCP_METHOD, HeaderValue::from_static("tools/call"));
//! h.insert(headers::MCP_NAME, HeaderValue::from_static("=?base64?w6ljaG8=?="));
//! let params = json!({"name": "écho"});
//! assert_eq!(headers::check_routing(&h, Some("tools/call"), Some(&params)), Ok(()));
//! let other = json!({"name": "delete"});
//! assert!(matches!(
//!     headers::check_routing(&h, Some("tools/call"), Some(&other)),
//!     Err(HeaderError::NameMismatch { .. })
//! ));
//! ```

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};
use serde_json::Value;

/// `Mcp-Session-Id`: the session of the stateful revisions.
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`: the revision a request speaks.
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Mcp-Method`: the JSON-RPC method of the body (2026-07-28).
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name`: the tool, prompt or resource a request names (2026-07-28).
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
/// `Last-Event-ID`: where a resumed event stream continues.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// The prefix of every MCP header, lowercase (`Mcp-Param-*` and those above).
pub const MCP_PREFIX: &str = "mcp-";
/// The prefix of the per-argument headers a tool's schema declares
/// (`x-mcp-header`), lowercase.
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";

/// JSON-RPC error code for a request whose MCP headers disagree with its body.
pub const HEADER_MISMATCH: i64 = -32020;

/// Whether `name` is an MCP header: any `Mcp-*` (`Mcp-Session-Id`,
/// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, …).
pub fn is_mcp_header(name: &HeaderName) -> bool {
    // Header names are stored lowercase.
    name.as_str().starts_with(MCP_PREFIX)
}

/// Whether a client's request header belongs to the MCP transport, so that a
/// gateway passes it to the upstream: every MCP header ([`is_mcp_header`]),
/// `Last-Event-ID`, `Content-Type` and `Accept`. Never `Authorization`, cookies or
/// anything else.
pub fn is_transport_request_header(name: &HeaderName) -> bool {
    is_mcp_header(name)
        || name == LAST_EVENT_ID
        || name == http::header::CONTENT_TYPE
        || name == http::header::ACCEPT
}

/// Whether an upstream's response header belongs to the MCP transport, so that a
/// gateway passes it back to the client: every MCP header, `Content-Type` and
/// `Cache-Control`.
pub fn is_transport_response_header(name: &HeaderName) -> bool {
    is_mcp_header(name) || name == http::header::CONTENT_TYPE || name == http::header::CACHE_CONTROL
}

/// The `params` member a method's `Mcp-Name` mirrors: `name` for `tools/call` and
/// `prompts/get`, `uri` for `resources/read`; `None` for other methods.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Why a request's MCP headers do not fit its body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A routing header (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`) was sent
    /// more than once: readers of the first and of the last copy would disagree.
    #[error("the {0} header is sent more than once")]
    Duplicated(HeaderName),
    /// `Mcp-Method` is not the body's `method` (or not readable text).
    #[error("the Mcp-Method header does not match the request body's method")]
    MethodMismatch,
    /// `Mcp-Name` is not the body's name-bearing parameter (see [`name_param`]), or
    /// its `=?base64?…?=` form does not decode.
    #[error("the Mcp-Name header does not match the request body's {param:?} parameter")]
    NameMismatch {
        /// The `params` member compared (`name` or `uri`).
        param: &'static str,
    },
}

impl HeaderError {
    /// The JSON-RPC error code to answer with: always [`HEADER_MISMATCH`].
    pub fn code(&self) -> i64 {
        HEADER_MISMATCH
    }
}

/// Whether a request carries any of the 2026-07-28 routing headers (`Mcp-Method`,
/// `Mcp-Name`), i.e. whether [`check_routing`] has anything to compare.
pub fn has_routing_headers(headers: &HeaderMap) -> bool {
    headers.contains_key(MCP_METHOD) || headers.contains_key(MCP_NAME)
}

/// Checks the routing headers of a request against its body: `method` is the
/// body's `method` (`None` for a message without one, such as an answer to a server
/// request), `params` its `params`.
///
/// - `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` may each be sent once.
/// - A present `Mcp-Method` must equal `method`.
/// - For a method with a name-bearing parameter ([`name_param`]) that the body
///   carries, a present `Mcp-Name` must equal it, after decoding the
///   `=?base64?…?=` form ([`decode_value`]). A parameter that is not a string never
///   matches.
///
/// Absent headers are not required here: whether a revision requires them is the
/// upstream's to say.
///
/// # Errors
///
/// The first [`HeaderError`] found.
pub fn check_routing(
    headers: &HeaderMap,
    method: Option<&str>,
    params: Option<&Value>,
) -> Result<(), HeaderError> {
    for name in [MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION] {
        if headers.get_all(&name).iter().nth(1).is_some() {
            return Err(HeaderError::Duplicated(name));
        }
    }
    if let Some(sent) = headers.get(MCP_METHOD)
        && (sent.to_str().ok() != method || method.is_none())
    {
        return Err(HeaderError::MethodMismatch);
    }
    let Some(sent) = headers.get(MCP_NAME) else {
        return Ok(());
    };
    let Some(param) = method.and_then(name_param) else {
        return Ok(());
    };
    let Some(body) = params.and_then(|p| p.get(param)).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let decoded = sent.to_str().ok().and_then(decode_value);
    match (decoded, body.as_str()) {
        (Some(header), Some(body)) if header == body => Ok(()),
        _ => Err(HeaderError::NameMismatch { param }),
    }
}

/// [`check_routing`] on the raw `params` of a request, as a gateway holds them: only
/// the name-bearing member is read (borrowed), never the arguments, so a large call
/// costs no second parse. `params` that cannot be read as an object compare nothing
/// (whoever reads the call refuses them).
///
/// # Errors
///
/// The first [`HeaderError`] found.
pub fn check_routing_raw(
    headers: &HeaderMap,
    method: Option<&str>,
    params: Option<&serde_json::value::RawValue>,
) -> Result<(), HeaderError> {
    /// The members `Mcp-Name` may mirror, borrowed.
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow, default)]
        name: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, default)]
        uri: Option<&'a serde_json::value::RawValue>,
    }
    let named = match (method.and_then(name_param), params) {
        (Some(param), Some(raw)) if headers.contains_key(MCP_NAME) => {
            serde_json::from_str::<Named<'_>>(raw.get())
                .ok()
                .and_then(|n| if param == "uri" { n.uri } else { n.name })
                .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
                .map(|v| serde_json::json!({ param: v }))
        }
        _ => None,
    };
    check_routing(headers, method, named.as_ref())
}

const B64_OPEN: &str = "=?base64?";
const B64_CLOSE: &str = "?=";

/// A header value as MCP encodes it: verbatim when it is printable ASCII without
/// surrounding spaces (and does not itself look encoded), else
/// `=?base64?<standard base64 of the UTF-8 bytes>?=`.
///
/// ```
/// use keygate_mcp::headers::{decode_value, encode_value};
/// assert_eq!(encode_value("weather"), "weather");
/// assert_eq!(encode_value("météo"), "=?base64?bcOpdMOpbw==?=");
/// assert_eq!(decode_value(&encode_value(" x\n")).as_deref(), Some(" x\n"));
/// ```
pub fn encode_value(value: &str) -> Cow<'_, str> {
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !looks_encoded(value);
    if plain {
        return Cow::Borrowed(value);
    }
    Cow::Owned(format!(
        "{B64_OPEN}{}{B64_CLOSE}",
        base64_encode(value.as_bytes())
    ))
}

fn looks_encoded(value: &str) -> bool {
    value.len() >= B64_OPEN.len() + B64_CLOSE.len()
        && value.starts_with(B64_OPEN)
        && value.ends_with(B64_CLOSE)
}

/// The value an MCP header carries: verbatim, or decoded from its
/// `=?base64?…?=` form. `None` for a malformed encoded form (bad or non-canonical
/// base64, or bytes that are not UTF-8), so that a corrupt header never matches.
///
/// ```
/// use keygate_mcp::headers::decode_value;
/// assert_eq!(decode_value("get_weather").as_deref(), Some("get_weather"));
/// assert_eq!(decode_value("=?base64?5pel5pys?=").as_deref(), Some("日本"));
/// assert_eq!(decode_value("=?base64?!!?="), None);
/// ```
pub fn decode_value(value: &str) -> Option<Cow<'_, str>> {
    if !looks_encoded(value) {
        return Some(Cow::Borrowed(value));
    }
    let payload = value.get(B64_OPEN.len()..value.len() - B64_CLOSE.len())?;
    let bytes = base64_decode(payload)?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Strict, canonical standard base64: padded to a multiple of four, no whitespace,
/// no bits set past the data (so each byte string has exactly one accepted form, as
/// the encoder writes it).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, quad) in bytes.chunks(4).enumerate() {
        let last = q + 1 == quads;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        let data = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pad;
        // Canonical: the bits below the kept bytes are zero.
        if data[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&data[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn transport_headers_are_every_mcp_header_and_the_stream_headers() {
        for name in [
            "mcp-session-id",
            "mcp-protocol-version",
            "mcp-method",
            "mcp-name",
            "mcp-param-region",
            "last-event-id",
            "content-type",
            "accept",
        ] {
            assert!(
                is_transport_request_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in [
            "authorization",
            "cookie",
            "x-keygate-tenant",
            "host",
            "mcpx",
        ] {
            assert!(
                !is_transport_request_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in ["mcp-session-id", "mcp-protocol-version", "mcp-whatever"] {
            assert!(is_transport_response_header(&HeaderName::from_static(name)));
        }
        assert!(is_transport_response_header(&http::header::CACHE_CONTROL));
        assert!(!is_transport_response_header(&http::header::SET_COOKIE));
        assert!(!is_transport_response_header(&http::header::CONTENT_LENGTH));
    }

    #[test]
    fn base64_round_trips_and_refuses_non_canonical_forms() {
        for s in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "é",
            "日本語",
            " x ",
        ] {
            let enc = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&enc).unwrap(), s.as_bytes(), "{s:?}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        // Non-zero trailing bits, missing padding, stray padding, wrong alphabet.
        for bad in ["Zm9=", "Zm8", "Zg=a", "Z===", "Zm8=Zm8=", "Zm-v", "Zm 8="] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn values_decode_verbatim_or_from_base64() {
        assert_eq!(decode_value("plain").as_deref(), Some("plain"));
        assert_eq!(decode_value("=?base64?w6k=?=").as_deref(), Some("é"));
        assert_eq!(decode_value("=?base64??=").as_deref(), Some(""));
        // Not UTF-8; not base64; not canonical.
        assert_eq!(decode_value("=?base64?/w==?="), None);
        assert_eq!(decode_value("=?base64?***?="), None);
        assert_eq!(decode_value("=?base64?w6l=?="), None);
        // Only the whole-value sentinel counts.
        assert_eq!(
            decode_value("x=?base64?w6k=?=").as_deref(),
            Some("x=?base64?w6k=?=")
        );
        for s in ["café", "a\tb", " lead", "=?base64?x?=", "ok"] {
            assert_eq!(decode_value(&encode_value(s)).as_deref(), Some(s));
        }
        assert_eq!(encode_value("=?base64?x?="), "=?base64?PT9iYXNlNjQ/eD89?=");
    }

    #[test]
    fn method_header_must_equal_the_body() {
        let h = headers(&[("mcp-method", "tools/list")]);
        assert_eq!(check_routing(&h, Some("tools/list"), None), Ok(()));
        assert_eq!(
            check_routing(&h, Some("tools/call"), None),
            Err(HeaderError::MethodMismatch)
        );
        assert_eq!(
            check_routing(&h, None, None),
            Err(HeaderError::MethodMismatch)
        );
        // No headers: nothing to compare.
        assert_eq!(check_routing(&HeaderMap::new(), Some("x"), None), Ok(()));
        let twice = headers(&[("mcp-method", "ping"), ("mcp-method", "ping")]);
        assert_eq!(
            check_routing(&twice, Some("ping"), None),
            Err(HeaderError::Duplicated(MCP_METHOD))
        );
        let versions = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-protocol-version", "2025-11-25"),
        ]);
        assert!(matches!(
            check_routing(&versions, Some("ping"), None),
            Err(HeaderError::Duplicated(_))
        ));
    }

    #[test]
    fn raw_params_are_checked_on_their_name_bearing_member_alone() {
        let raw = |v: serde_json::Value| serde_json::value::to_raw_value(&v).unwrap();
        let call = raw(json!({"name": "get_weather", "arguments": {"deep": [[[1]]]}}));
        let h = headers(&[("mcp-method", "tools/call"), ("mcp-name", "get_weather")]);
        assert_eq!(
            check_routing_raw(&h, Some("tools/call"), Some(&call)),
            Ok(())
        );
        let other = raw(json!({"name": "delete_everything"}));
        assert_eq!(
            check_routing_raw(&h, Some("tools/call"), Some(&other)),
            Err(HeaderError::NameMismatch { param: "name" })
        );
        let read = raw(json!({"uri": "file:///a", "name": "ignored"}));
        let h = headers(&[("mcp-name", "file:///b")]);
        assert_eq!(
            check_routing_raw(&h, Some("resources/read"), Some(&read)),
            Err(HeaderError::NameMismatch { param: "uri" })
        );
        // Params that are no object compare nothing; Mcp-Method is still checked.
        let list = raw(json!([1, 2]));
        let h = headers(&[("mcp-method", "tools/list"), ("mcp-name", "x")]);
        assert_eq!(
            check_routing_raw(&h, Some("tools/call"), Some(&list)),
            Err(HeaderError::MethodMismatch)
        );
        assert_eq!(
            check_routing_raw(&h, Some("tools/list"), Some(&list)),
            Ok(())
        );
    }

    #[test]
    fn name_header_must_equal_the_name_bearing_param() {
        let call = json!({"name": "get_weather", "arguments": {}});
        let h = headers(&[("mcp-method", "tools/call"), ("mcp-name", "get_weather")]);
        assert_eq!(check_routing(&h, Some("tools/call"), Some(&call)), Ok(()));
        let other = json!({"name": "delete_everything"});
        let err = check_routing(&h, Some("tools/call"), Some(&other)).unwrap_err();
        assert_eq!(err, HeaderError::NameMismatch { param: "name" });
        assert_eq!(err.code(), -32020);
        assert!(err.to_string().contains("Mcp-Name"));

        let read = json!({"uri": "file:///tmp/é.txt"});
        let encoded = format!(
            "=?base64?{}?=",
            base64_encode("file:///tmp/é.txt".as_bytes())
        );
        let h = headers(&[("mcp-name", &encoded)]);
        assert_eq!(
            check_routing(&h, Some("resources/read"), Some(&read)),
            Ok(())
        );
        let raw = headers(&[("mcp-name", "file:///tmp/x.txt")]);
        assert_eq!(
            check_routing(&raw, Some("resources/read"), Some(&read)),
            Err(HeaderError::NameMismatch { param: "uri" })
        );
        let prompt = json!({"name": "greet"});
        let h = headers(&[("mcp-name", "greet")]);
        assert_eq!(
            check_routing(&h, Some("prompts/get"), Some(&prompt)),
            Ok(())
        );
        // A parameter that is not a string, a corrupt encoding, a second copy.
        let number = json!({"name": 7});
        let h = headers(&[("mcp-name", "7")]);
        assert!(check_routing(&h, Some("tools/call"), Some(&number)).is_err());
        let h = headers(&[("mcp-name", "=?base64?Zm9=?=")]);
        assert!(check_routing(&h, Some("tools/call"), Some(&json!({"name": "fo"}))).is_err());
        let h = headers(&[("mcp-name", "a"), ("mcp-name", "a")]);
        assert_eq!(
            check_routing(&h, Some("tools/call"), Some(&json!({"name": "a"}))),
            Err(HeaderError::Duplicated(MCP_NAME))
        );
        // Methods without a name-bearing param, and bodies without it, are not compared.
        let h = headers(&[("mcp-name", "x")]);
        assert_eq!(check_routing(&h, Some("tools/list"), None), Ok(()));
        assert_eq!(
            check_routing(&h, Some("tools/call"), Some(&json!({}))),
            Ok(())
        );
    }

    #[test]
    fn non_ascii_header_bytes_never_match() {
        let mut h = HeaderMap::new();
        h.insert(MCP_NAME, HeaderValue::from_bytes("é".as_bytes()).unwrap());
        assert!(check_routing(&h, Some("tools/call"), Some(&json!({"name": "é"}))).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            MCP_METHOD,
            HeaderValue::from_bytes(b"tools/\xffcall").unwrap(),
        );
        assert_eq!(
            check_routing(&h, Some("tools/call"), None),
            Err(HeaderError::MethodMismatch)
        );
    }
}
