//! Two scripted stdio servers (see `stdio_bridge_tests`) as one upstream.

use std::time::Duration;

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::stdio_bridge::bridge_tests::{bodiless, messages, next_event, post, scripted};
use crate::upstream::Upstream;

fn federation() -> Option<Upstream> {
    let timeout = Duration::from_secs(10);
    let members = ["a", "b"]
        .into_iter()
        .map(|name| {
            Some((
                name.to_owned(),
                Upstream::stdio(scripted()?, name.to_owned(), timeout),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Upstream::federated(members, timeout))
}

async fn session(u: &Upstream) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"0"}}});
    let resp = post(u, None, &init).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let got = messages(resp).await;
    assert_eq!(got[0]["result"]["serverInfo"]["name"], "keygate");
    assert_eq!(got[0]["result"]["instructions"], "a: be kind\n\nb: be kind");
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(
        post(u, Some(&id), &note).await.status(),
        StatusCode::ACCEPTED
    );
    id
}

#[tokio::test]
async fn tools_are_listed_prefixed_and_calls_routed_with_the_prefix_off() {
    let Some(u) = federation() else { return };
    for session in [None, Some(session(&u).await)] {
        let s = session.as_deref();
        let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}});
        let got = messages(post(&u, s, &list).await).await;
        let names: Vec<&str> = got[0]["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["a.echo", "a.ask", "b.echo", "b.ask"], "{s:?}");
        let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b.echo","arguments":{"k":"v"}}});
        let got = messages(post(&u, s, &call).await).await;
        let answer = got.last().unwrap();
        assert_eq!(answer["id"], 2);
        let seen: Value =
            serde_json::from_str(answer["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(seen["name"], "echo", "the prefix is taken off: {seen}");
        let unknown =
            json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"c.echo"}});
        let got = messages(post(&u, s, &unknown).await).await;
        assert_eq!(got[0]["error"]["code"], -32602, "{got:?}");
    }
}

#[tokio::test]
async fn a_members_request_is_tagged_and_the_answer_finds_its_way_back() {
    let Some(u) = federation() else { return };
    let s = session(&u).await;
    let call = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"b.ask","arguments":{}}});
    let resp = post(&u, Some(&s), &call).await;
    let mut body = resp.into_body();
    let asked = next_event(&mut body).await;
    assert_eq!(asked[0]["id"], r#"b."srv-1""#, "{asked:?}");
    let answer = json!({"jsonrpc":"2.0","id":asked[0]["id"],"result":{"text":"sampled"}});
    assert_eq!(
        post(&u, Some(&s), &answer).await.status(),
        StatusCode::ACCEPTED
    );
    let rest = keygate_mcp::sse::messages(body.collect().await.unwrap().to_bytes()).unwrap();
    let last = rest.last().unwrap();
    assert_eq!(last["id"], 9);
    // The member got its own id back.
    assert!(last.to_string().contains(r#"\"id\": \"srv-1\""#), "{last}");
}

#[tokio::test]
async fn delete_ends_the_session_everywhere() {
    let Some(u) = federation() else { return };
    let s = session(&u).await;
    bodiless(&u, Method::DELETE, &s, StatusCode::OK).await;
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    assert_eq!(
        post(&u, Some(&s), &list).await.status(),
        StatusCode::NOT_FOUND
    );
}
