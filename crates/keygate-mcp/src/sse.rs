//! Server-Sent Events, as MCP's Streamable HTTP transport uses them.
//!
//! A server may answer a POST with `Content-Type: text/event-stream`: a stream of
//! events whose `data` is one JSON-RPC message each (requests and notifications the
//! server sends first, then the response), and the GET stream is one too. Events may
//! carry an `id` (for `Last-Event-ID` resumption) and a `retry` delay, and a server may
//! send "priming" events with empty data. Parsing is [`sse_stream`]'s, which follows
//! the WHATWG event-stream grammar (CR, LF and CRLF line ends, multi-line data, split
//! chunks).
//!
//! ```
//! # fn main() -> Result<(), keygate_mcp::sse::SseError> {
//! use bytes::Bytes;
//! let body = Bytes::from_static(b"id: 1\nretry: 500\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n");
//! let messages = keygate_mcp::sse::messages(body)?;
//! assert_eq!(messages.len(), 1);
//! assert_eq!(messages[0]["id"], 1);
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt, stream};
use serde_json::Value;

/// One event: `event`, `data`, `id` and `retry` as they were sent.
pub use sse_stream::Sse as Event;

/// The media type of an event stream.
pub const CONTENT_TYPE: &str = "text/event-stream";

/// Why an event stream could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// The bytes are not an event stream (a field value that is not UTF-8).
    #[error("the event stream cannot be read: {0}")]
    Decode(#[source] sse_stream::Error),
    /// An event's data is not one JSON value.
    #[error("event data is not JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Whether a `Content-Type` value names an event stream (parameters allowed, case
/// ignored, as media types are compared).
pub fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(CONTENT_TYPE)
}

/// The events of a complete, buffered event stream, in order. An incomplete last
/// event (no blank line after it) is dropped, as a browser drops it.
pub fn events(body: Bytes) -> Result<Vec<Event>, SseError> {
    let chunks = stream::iter([Ok::<_, Infallible>(body)]);
    let decoder = sse_stream::SseByteStream::new(chunks);
    // The only input is already in memory, so the stream never waits.
    let collected = decoder
        .collect::<Vec<_>>()
        .now_or_never()
        .unwrap_or_default();
    collected
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(SseError::Decode)
}

/// The JSON payloads of a buffered event stream: one per event with non-empty data,
/// in order (priming and other data-less events are skipped).
pub fn messages(body: Bytes) -> Result<Vec<Value>, SseError> {
    events(body)?
        .iter()
        .filter_map(|e| e.data.as_deref().filter(|d| !d.trim().is_empty()))
        .map(|d| serde_json::from_str(d).map_err(SseError::Json))
        .collect()
}

/// The JSON payloads of a live event stream, each as soon as its event has arrived:
/// one per event with non-empty data (priming and other data-less events skipped), in
/// order. The stream ends with the body, or after its first error (bytes that are not
/// an event stream, data that is not JSON, a failing body).
pub fn message_stream<B>(
    body: B,
) -> impl futures_util::Stream<Item = Result<Value, SseError>> + Send + 'static
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut failed = false;
    sse_stream::SseStream::new(body)
        .filter_map(|event| async move {
            match event {
                Ok(event) => {
                    let data = event.data.filter(|d| !d.trim().is_empty())?;
                    Some(serde_json::from_str(&data).map_err(SseError::Json))
                }
                Err(e) => Some(Err(SseError::Decode(e))),
            }
        })
        .take_while(move |item| {
            let go = !failed;
            failed |= item.is_err();
            std::future::ready(go)
        })
}

/// Rewrites a live event stream event by event, keeping it a stream: each event
/// whose data is JSON is handed to `edit`, and re-encoded only when `edit` returns
/// `true`; other events (priming events, data that is not JSON) pass unchanged, with
/// their `event`, `id` and `retry`. Events reach the client as soon as they arrive.
/// Comment lines are not carried over (the parser drops them).
///
/// The body ends with an error once the upstream's body fails or sends bytes that are
/// not an event stream.
pub fn rewrite<B, F>(
    body: B,
    mut edit: F,
) -> impl http_body::Body<Data = Bytes, Error = sse_stream::BodyError> + Send + 'static
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
    F: FnMut(&mut Value) -> bool + Send + 'static,
{
    let events = sse_stream::SseStream::new(body).map(move |event| {
        let mut event = event?;
        if let Some(data) = event.data.as_deref()
            && let Ok(mut value) = serde_json::from_str::<Value>(data)
            && edit(&mut value)
        {
            event.data = Some(value.to_string());
        }
        Ok::<_, sse_stream::Error>(event)
    });
    sse_stream::SseBody::new(events)
}

/// One event carrying a JSON message, encoded as it goes on the wire
/// (`event: message`, as MCP servers send; serialized JSON holds no line break, so
/// one `data` line carries it).
pub fn message_event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    #[test]
    fn buffered_streams_are_split_into_messages() {
        let body = Bytes::from_static(
            b"event: message\ndata: {\"a\":1}\n\ndata: {\"b\":\ndata: 2}\r\n\r\nid: 7\ndata: \n\n",
        );
        assert_eq!(
            messages(body).unwrap(),
            vec![json!({"a": 1}), json!({"b": 2})]
        );
        assert!(matches!(
            messages(Bytes::from_static(b"data: nope\n\n")),
            Err(SseError::Json(_))
        ));
        assert_eq!(events(Bytes::from_static(b"data: cut")).unwrap(), vec![]);
    }

    #[tokio::test]
    async fn live_streams_yield_each_message_and_stop_at_the_first_error() {
        let body = http_body_util::Full::new(Bytes::from_static(
            b"id: 1\ndata: \n\nevent: message\ndata: {\"a\":1}\n\ndata: nope\n\ndata: {\"b\":2}\n\n",
        ));
        let items: Vec<_> = message_stream(body).collect().await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].as_ref().unwrap(), &json!({"a": 1}));
        assert!(matches!(items[1], Err(SseError::Json(_))));
    }

    #[test]
    fn a_message_event_reads_back_as_that_message() {
        let message = json!({"jsonrpc": "2.0", "id": 1, "result": {"text": "two\nlines"}});
        let encoded = message_event(&message);
        assert!(encoded.starts_with(b"event: message\ndata: "));
        assert_eq!(messages(encoded).unwrap(), vec![message]);
    }

    #[test]
    fn content_types_are_compared_as_media_types() {
        assert!(is_event_stream("text/event-stream"));
        assert!(is_event_stream("Text/Event-Stream; charset=utf-8"));
        assert!(!is_event_stream("application/json"));
        assert!(!is_event_stream("text/event-streams"));
    }

    #[tokio::test]
    async fn rewriting_keeps_the_stream_and_its_event_fields() {
        let chunks: Vec<Result<_, Infallible>> = vec![
            Ok(http_body::Frame::data(Bytes::from_static(
                b"id: p1\nretry: 500\ndata: \n\nevent: mess",
            ))),
            Ok(http_body::Frame::data(Bytes::from_static(
                b"age\nid: e2\ndata: {\"tools\":[1,2,3]}\n\ndata: {\"keep\":true}\n\n",
            ))),
        ];
        let body = http_body_util::StreamBody::new(stream::iter(chunks));
        let out = rewrite(body, |v| {
            if let Some(tools) = v.get_mut("tools").and_then(Value::as_array_mut) {
                tools.retain(|t| t != 2);
                return true;
            }
            false
        });
        let bytes = out.collect().await.unwrap().to_bytes();
        let events = events(bytes).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].id.as_deref(), Some("p1"));
        assert_eq!(events[0].retry, Some(500));
        assert_eq!(events[1].event.as_deref(), Some("message"));
        assert_eq!(events[1].id.as_deref(), Some("e2"));
        assert_eq!(events[1].data.as_deref(), Some(r#"{"tools":[1,3]}"#));
        assert_eq!(events[2].data.as_deref(), Some(r#"{"keep":true}"#));
    }
}
