//! Upstream answers the gateway edits or watches on their way to the client, kept in
//! the form they came in: an event stream stays an event stream (each event reaches
//! the client as it arrives; only the one answering the request is edited), a JSON
//! answer stays JSON. An upstream's own error answer (any status that is not 2xx)
//! passes untouched with its status, and so does a 202.
//!
//! Nothing here has a timeout: the upstream has already started answering, and an
//! open stream lives until an end closes it.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, header};
use http_body_util::{BodyExt, BodyStream};
use keygate_mcp::sse;
use serde_json::Value;

use crate::upstream::UpstreamError;

/// Largest JSON answer the gateway reads in full to edit or watch it.
const MAX_JSON_ANSWER: usize = 8 * 1024 * 1024;

/// Whether `message` is the JSON-RPC response (result or error) to request `id`.
pub(crate) fn is_answer(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// Whether `resp` is an event stream (by its `Content-Type`).
pub(crate) fn is_event_stream(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(sse::is_event_stream)
}

/// Whether the gateway leaves this answer alone: the upstream's own refusal or
/// failure (404 for an ended session, 415, 500, …), or a 202 without a message.
fn passes_untouched(resp: &Response) -> bool {
    !resp.status().is_success() || resp.status() == http::StatusCode::ACCEPTED
}

/// A JSON answer read in full, with the message answering `id` found in it.
struct JsonAnswer {
    parts: http::response::Parts,
    body: Value,
}

impl JsonAnswer {
    async fn read(resp: Response) -> Result<Self, UpstreamError> {
        let (parts, body) = resp.into_parts();
        let bytes = http_body_util::Limited::new(body, MAX_JSON_ANSWER)
            .collect()
            .await
            .map_err(|e| UpstreamError::BadResponse(e.to_string()))?
            .to_bytes();
        let body = serde_json::from_slice::<Value>(&bytes).map_err(|e| {
            UpstreamError::BadResponse(format!(
                "HTTP {} with a body that is not JSON ({e})",
                parts.status.as_u16()
            ))
        })?;
        Ok(Self { parts, body })
    }

    fn answer_mut(&mut self, id: &Value) -> Option<&mut Value> {
        match &mut self.body {
            Value::Array(items) => items.iter_mut().find(|m| is_answer(m, id)),
            m if is_answer(m, id) => Some(m),
            _ => None,
        }
    }

    fn into_response(self) -> Response {
        let bytes = Bytes::from(serde_json::to_vec(&self.body).unwrap_or_default());
        let mut resp = Response::from_parts(self.parts, Body::from(bytes));
        resp.headers_mut().remove(header::CONTENT_LENGTH);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// Edits the message answering `id` with `edit`, wherever it is: the event that
/// carries it in an event stream (rewritten in place, the stream kept), or the JSON
/// body. Other events pass unchanged.
///
/// # Errors
///
/// [`UpstreamError::BadResponse`] for a 2xx JSON answer that is not JSON or holds
/// no answer to `id`: there is nothing the gateway could safely pass on.
pub(crate) async fn edit_answer<F>(
    resp: Response,
    id: Value,
    mut edit: F,
) -> Result<Response, UpstreamError>
where
    F: FnMut(&mut Value) + Send + 'static,
{
    if passes_untouched(&resp) {
        return Ok(resp);
    }
    if is_event_stream(&resp) {
        let (parts, body) = resp.into_parts();
        let body = sse::rewrite(body, move |message| {
            if is_answer(message, &id) {
                edit(message);
                return true;
            }
            false
        });
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let mut json = JsonAnswer::read(resp).await?;
    let Some(answer) = json.answer_mut(&id) else {
        return Err(UpstreamError::BadResponse(format!(
            "HTTP {} without an answer to the request",
            json.parts.status.as_u16()
        )));
    };
    edit(answer);
    Ok(json.into_response())
}

/// Runs `on_answer` with the message answering `id` before that message reaches
/// the client (so that what it records is in place once the client has the
/// answer), and otherwise passes the answer on as it came: an event stream event by
/// event, a JSON body unchanged. A JSON body that cannot be read is passed on as
/// the upstream sent it, without `on_answer`.
pub(crate) async fn watch_answer<F, Fut>(resp: Response, id: Value, on_answer: F) -> Response
where
    F: FnOnce(Value) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if passes_untouched(&resp) {
        return resp;
    }
    if is_event_stream(&resp) {
        let (parts, body) = resp.into_parts();
        let seen: Arc<Mutex<Option<Value>>> = Arc::default();
        let noted = seen.clone();
        let body = sse::rewrite(body, move |message| {
            if is_answer(message, &id) {
                *noted.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
            }
            false
        });
        // The callback above runs before its event is encoded into a frame, so the
        // frame that carries the answer is held until `on_answer` is done.
        let mut hook = Some(on_answer);
        let frames = BodyStream::new(body).then(move |frame| {
            let answer = seen.lock().unwrap_or_else(PoisonError::into_inner).take();
            let run = answer.and_then(|a| hook.take().map(|h| h(a)));
            async move {
                if let Some(run) = run {
                    run.await;
                }
                frame.map(|f| f.into_data().unwrap_or_default())
            }
        });
        return Response::from_parts(parts, Body::from_stream(frames));
    }
    let (parts, body) = resp.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_JSON_ANSWER)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "upstream answer could not be read");
            let mut resp = Response::from_parts(parts, Body::empty());
            *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
            return resp;
        }
    };
    let answer = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => items.into_iter().find(|m| is_answer(m, &id)),
        Ok(m) if is_answer(&m, &id) => Some(m),
        _ => None,
    };
    if let Some(answer) = answer {
        on_answer(answer).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sse_answer(events: &'static str) -> Response {
        let mut resp = Response::new(Body::from(events));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp
    }

    async fn text(resp: Response) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn only_the_answering_event_is_edited_and_the_stream_stays_a_stream() {
        let resp = sse_answer(
            "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"tools\":[1]}}\n\n\
             id: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[1,2]}}\n\n",
        );
        let out = edit_answer(resp, json!(7), |m| {
            m["result"]["tools"] = json!([2]);
        })
        .await
        .unwrap();
        assert!(is_event_stream(&out));
        let msgs = sse::messages(out.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(msgs[0]["params"]["tools"], json!([1]));
        assert_eq!(msgs[1]["result"]["tools"], json!([2]));
    }

    #[tokio::test]
    async fn json_answers_are_edited_as_json_and_errors_pass_untouched() {
        let resp = Response::new(Body::from(r#"{"jsonrpc":"2.0","id":"a","result":{"n":1}}"#));
        let out = edit_answer(resp, json!("a"), |m| m["result"]["n"] = json!(2))
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&text(out).await).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": "a", "result": {"n": 2}})
        );

        let mut gone = Response::new(Body::from("session not found"));
        *gone.status_mut() = http::StatusCode::NOT_FOUND;
        let out = edit_answer(gone, json!(1), |_| unreachable!())
            .await
            .unwrap();
        assert_eq!(out.status(), 404);
        assert_eq!(text(out).await, "session not found");

        let no_answer = Response::new(Body::from(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#));
        assert!(edit_answer(no_answer, json!(1), |_| {}).await.is_err());
    }

    #[tokio::test]
    async fn the_watcher_sees_the_answer_before_the_client_does() {
        let resp = sse_answer("data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"ok\":true}}\n\n");
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let out = watch_answer(resp, json!(3), move |m| async move {
            *s.lock().unwrap() = Some(m);
        })
        .await;
        assert!(seen.lock().unwrap().is_none(), "nothing read yet");
        let body = text(out).await;
        assert!(body.contains("\"ok\":true"), "{body}");
        assert_eq!(seen.lock().unwrap().as_ref().unwrap()["result"]["ok"], true);

        let resp = Response::new(Body::from(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#));
        let hit = Arc::new(Mutex::new(false));
        let h = hit.clone();
        let out = watch_answer(
            resp,
            json!(3),
            move |_| async move { *h.lock().unwrap() = true },
        )
        .await;
        assert!(*hit.lock().unwrap());
        assert_eq!(text(out).await, r#"{"jsonrpc":"2.0","id":3,"result":{}}"#);
    }
}
