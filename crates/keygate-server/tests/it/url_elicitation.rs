//! URL-mode elicitation: a client that declared `elicitation.url` and is not asked by
//! form (a page-only gate, or no form to ask with) is offered the approval page of the
//! approval its call opened: the error `-32042` in a 2025-11-25 session, an
//! `input_required` naming a URL elicitation on 2026-07-28. The person approves on the
//! page with their own key; the identical retry runs once.

use http::StatusCode;
use keygate_demo::Platform;
use keygate_server::{Config, Upstream};
use serde_json::{Value, json};

use crate::mrtr::{delete as stateless_delete, web};
use crate::util::{
    Harness, Reply, assert_approval_required, assert_ungated, demo_with, exists,
    policy_approving_by, structured, with_policy,
};

const SCOPES: [&str; 2] = ["services:write", "services:read"];

const PUBLIC: &str = "https://keys.example.test";

/// The demo with `approval = "<by>"` on its gates (`person`: the demo's own policy)
/// and, with `public`, a public URL.
async fn demo_approving_by(by: &str, public: bool) -> (Harness, tempfile::TempDir) {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    if public {
        config.public_url = Some(PUBLIC.to_owned());
    }
    let policy = match by {
        "person" => keygate_demo::POLICY_TOML.to_owned(),
        by => policy_approving_by(by),
    };
    let (config, dir) = with_policy(config, &policy);
    (demo_with(config).await, dir)
}

/// Opens a 2025-11-25 session whose client declares `capabilities`.
async fn session(h: &Harness, key: &str, capabilities: Value) -> String {
    crate::elicitation::session_declaring(h, key, "2025-11-25", capabilities).await
}

fn url_only() -> Value {
    json!({"elicitation": {"url": {}}})
}

/// The one URL elicitation of a `-32042` answer, checked to be in the spec's shape.
fn required_elicitation(r: &Reply) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.body.get("result").is_none(), "{}", r.raw);
    let error = &r.body["error"];
    assert_eq!(error["code"], json!(-32042), "{}", r.raw);
    let list = error["data"]["elicitations"]
        .as_array()
        .expect("data.elicitations");
    assert_eq!(list.len(), 1, "{}", r.raw);
    let e = list[0].clone();
    assert_eq!(e["mode"], json!("url"), "{}", r.raw);
    assert!(e["elicitationId"].is_string(), "{}", r.raw);
    e
}

/// The approval `id` as the approval page's API shows it to the owner.
async fn page_shows(h: &Harness, id: &str) -> Value {
    let r = h.get(&format!("/api/v1/approvals/{id}"), &h.owner).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.body
}

async fn approve(h: &Harness, key: &str, id: &str, target: &str) -> StatusCode {
    let path = format!("/api/v1/approvals/{id}/approve");
    h.post(&path, key, json!({"target": target})).await.status
}

#[tokio::test]
async fn a_session_declaring_url_mode_is_sent_to_the_page_of_its_approval_and_the_retry_runs_once()
{
    let (h, _dir) = demo_approving_by("page", true).await;
    let agent = h.user_key(&SCOPES).await;
    // The SDK's capabilities: form and URL. A page gate never asks by form.
    let s = session(&h, &agent, json!({"elicitation": {"form": {}, "url": {}}})).await;
    let first = h.tool_in(&agent, &s, "service.delete", web()).await;
    let e = required_elicitation(&first);
    let id = e["elicitationId"].as_str().unwrap().to_owned();
    assert_eq!(e["url"], json!(format!("{PUBLIC}/approvals/{id}")));
    let message = e["message"].as_str().unwrap();
    for part in ["service.delete", "`web`", r#"{"service":"web"}"#, "own key"] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
    // The page shows this very approval, pending, for exactly this call.
    let shown = page_shows(&h, &id).await;
    assert_eq!(shown["status"], json!("pending"), "{shown}");
    assert_eq!(shown["target"], json!("web"));
    assert_eq!(shown["arguments"], web());
    assert!(exists(&h, "web").await);

    // The calling key cannot approve it, the person's own key does.
    assert_eq!(approve(&h, &agent, &id, "web").await, StatusCode::FORBIDDEN);
    assert_eq!(approve(&h, &h.owner, &id, "web").await, StatusCode::OK);
    // Other arguments: not this approval (a new one is offered).
    let other = h
        .tool_in(&agent, &s, "service.delete", json!({"service": "api"}))
        .await;
    assert_ne!(required_elicitation(&other)["elicitationId"], json!(id));
    assert!(exists(&h, "api").await);
    // The identical retry runs once.
    let ran = h.tool_in(&agent, &s, "service.delete", web()).await;
    assert_ungated(&ran);
    assert!(ran.raw.contains("deleted"), "{}", ran.raw);
    assert!(!exists(&h, "web").await);
    let again = h.tool_in(&agent, &s, "service.delete", web()).await;
    let next = required_elicitation(&again);
    assert_ne!(next["elicitationId"], json!(id), "a new approval");
}

#[tokio::test]
async fn a_person_gate_offers_the_url_only_to_clients_it_cannot_ask_by_form() {
    let (h, _dir) = demo_approving_by("person", true).await;
    let agent = h.user_key(&SCOPES).await;
    // Form and URL declared: asked by form on the stream, as before.
    let both = session(&h, &agent, json!({"elicitation": {"form": {}, "url": {}}})).await;
    let (parts, mut stream) = crate::elicitation::delete(&h, &agent, &both, "web").await;
    assert_eq!(
        parts.headers["content-type"],
        keygate_mcp::sse::CONTENT_TYPE
    );
    let asked = stream.next().await.expect("an elicitation/create");
    assert_eq!(asked["method"], json!("elicitation/create"), "{asked}");
    assert_eq!(asked["params"]["mode"], json!("form"), "{asked}");
    drop(stream);
    // URL only: the page as a URL elicitation.
    let url = session(&h, &agent, url_only()).await;
    let r = h.tool_in(&agent, &url, "service.delete", web()).await;
    let e = required_elicitation(&r);
    let id = e["elicitationId"].as_str().unwrap();
    assert_eq!(page_shows(&h, id).await["status"], json!("pending"));
    // Neither: APPROVAL_REQUIRED, with the absolute page URL.
    let plain = session(&h, &agent, json!({})).await;
    let r = h.tool_in(&agent, &plain, "service.delete", web()).await;
    assert_approval_required(&r);
    let content = structured(&r);
    let id = content["approval_id"].as_str().unwrap();
    assert_eq!(
        content["approval_url"],
        json!(format!("{PUBLIC}/approvals/{id}"))
    );
    assert!(exists(&h, "web").await);
}

#[tokio::test]
async fn without_a_public_url_no_url_is_offered() {
    let (h, _dir) = demo_approving_by("page", false).await;
    let agent = h.user_key(&SCOPES).await;
    let s = session(&h, &agent, url_only()).await;
    let r = h.tool_in(&agent, &s, "service.delete", web()).await;
    assert_approval_required(&r);
    let r = stateless_delete(&h, &agent, web(), url_only(), json!({})).await;
    assert_approval_required(&r);
    assert_eq!(r.body["result"]["resultType"], json!("complete"));
}

#[tokio::test]
async fn a_2026_client_declaring_url_mode_gets_input_required_with_the_page() {
    let (h, _dir) = demo_approving_by("page", true).await;
    let agent = h.user_key(&SCOPES).await;
    let ask = |extra: Value| stateless_delete(&h, &agent, web(), url_only(), extra);
    let first = ask(json!({})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.raw);
    let result = &first.body["result"];
    assert_eq!(
        result["resultType"],
        json!("input_required"),
        "{}",
        first.raw
    );
    assert!(
        result.get("requestState").is_none(),
        "the page decides, no state to carry: {}",
        first.raw
    );
    let request = &result["inputRequests"]["approval"];
    assert_eq!(request["method"], json!("elicitation/create"));
    let params = &request["params"];
    assert_eq!(params["mode"], json!("url"));
    assert!(
        params.get("elicitationId").is_none(),
        "2026-07-28 has no elicitationId: {params}"
    );
    let url = params["url"].as_str().unwrap();
    let id = url
        .strip_prefix(&format!("{PUBLIC}/approvals/"))
        .expect("the page of an approval");
    assert_eq!(page_shows(&h, id).await["status"], json!("pending"));
    assert!(
        params["message"]
            .as_str()
            .unwrap()
            .contains(r#"{"service":"web"}"#)
    );

    // The client's own "accept" approves nothing: the retry, still pending, is told
    // APPROVAL_REQUIRED (a final result, so the client's loop ends).
    let accepted = json!({"inputResponses": {"approval": {"action": "accept"}}});
    let early = ask(accepted.clone()).await;
    assert_approval_required(&early);
    assert_eq!(early.body["result"]["resultType"], json!("complete"));
    // A made-up requestState on a page gate is ignored like any made-up answer.
    let made_up = ask(json!({"inputResponses": {"approval": {"action": "accept", "content": {"target": "web"}}}, "requestState": "kgm1.x.y"})).await;
    assert_approval_required(&made_up);
    assert!(exists(&h, "web").await);

    assert_eq!(approve(&h, &h.owner, id, "web").await, StatusCode::OK);
    let other = stateless_delete(
        &h,
        &agent,
        json!({"service": "api"}),
        url_only(),
        accepted.clone(),
    )
    .await;
    assert_approval_required(&other);
    let ran = ask(accepted.clone()).await;
    assert_ungated(&ran);
    assert!(ran.raw.contains("deleted"), "{}", ran.raw);
    assert!(!exists(&h, "web").await);
    assert!(exists(&h, "api").await);
    // Used: the identical retry is asked anew.
    let again = ask(json!({})).await;
    assert_eq!(
        again.body["result"]["resultType"],
        json!("input_required"),
        "{}",
        again.raw
    );
    assert_ne!(
        again.body["result"]["inputRequests"]["approval"]["params"]["url"],
        json!(url)
    );
}
