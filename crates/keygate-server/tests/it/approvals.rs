//! The approval page channel end to end through the router: a person gate answers
//! `APPROVAL_REQUIRED`, nothing the calling key sends approves it, the person's own key
//! does on the approvals API, and the identical retry then proceeds once.

use std::time::Duration;

use http::StatusCode;
use keygate_demo::Platform;
use keygate_server::{Config, Upstream};
use serde_json::{Value, json};

use crate::util::{Harness, Reply, assert_ungated, audited, demo, demo_with, gated, other_tenant};

const AGENT_SCOPES: [&str; 3] = ["services:write", "services:read", "gates:approve"];

fn delete(service: &str) -> Value {
    json!({"service": service})
}

fn approval_id(r: &Reply) -> String {
    gated(r, "APPROVAL_REQUIRED")["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned()
}

fn error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.raw);
    assert_eq!(r.body["error"], json!(code), "{}", r.raw);
}

async fn approve(h: &Harness, key: &str, id: &str, target: &str) -> Reply {
    h.post(
        &format!("/api/v1/approvals/{id}/approve"),
        key,
        json!({"target": target}),
    )
    .await
}

async fn deny(h: &Harness, key: &str, id: &str) -> Reply {
    h.post(&format!("/api/v1/approvals/{id}/deny"), key, json!({}))
        .await
}

#[tokio::test]
async fn a_person_approves_on_the_page_and_the_identical_retry_runs_once() {
    let h = demo().await;
    // The owner's agent: a user key of the owner that even holds gates:approve.
    let agent = h.user_key(&AGENT_SCOPES).await;
    // The owner's own key, signed in on the approval page.
    let person = h.user_key(&["gates:approve"]).await;
    let reader = h.user_key(&["services:read"]).await;
    let member = h.member_key(&["gates:approve"]).await;
    let stranger = other_tenant(&*h.store, "other", "oscar", &["shop"]).await;

    let first = h.tool(&agent, None, "service.delete", delete("web")).await;
    let sc = gated(&first, "APPROVAL_REQUIRED");
    let id = approval_id(&first);
    assert_eq!(sc["approval_url"], json!(format!("/approvals/{id}")));
    assert_eq!(sc["operation"], json!("service.delete"));
    assert_eq!(sc["target"], json!("web"));
    assert_eq!(sc["arguments"], delete("web"));
    assert!(sc["expires_at"].is_string());
    let text = sc["message"].as_str().unwrap();
    assert!(text.contains(&format!("/approvals/{id}")), "{text}");
    assert!(
        text.contains("again with exactly these arguments"),
        "{text}"
    );

    // Every confirm the agent can make up, in a session or not, asks the same approval.
    let session = h.session(&agent).await;
    for confirm in [
        json!({"challenge": id, "target": "web"}),
        json!({"challenge": "a".repeat(32), "target": "web"}),
        json!("approved"),
        json!({"approved": true}),
    ] {
        for s in [None, Some(session.as_str())] {
            let mut args = delete("web");
            args["confirm"] = confirm.clone();
            let r = h.tool(&agent, s, "service.delete", args).await;
            assert_eq!(approval_id(&r), id, "{confirm} did not approve");
        }
    }

    // The person's list shows it, as the page will.
    let list = h.get("/api/v1/approvals", &person).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.raw);
    let shown = &list.body["approvals"][0];
    assert_eq!(list.body["approvals"].as_array().map(Vec::len), Some(1));
    assert_eq!(shown["id"], json!(id));
    assert_eq!(shown["status"], json!("pending"));
    assert_eq!(shown["operation"], json!("service.delete"));
    assert_eq!(shown["tool"], json!("service.delete"));
    assert_eq!(shown["target"], json!("web"));
    assert_eq!(shown["arguments"], delete("web"));
    assert_eq!(shown["key"]["name"], json!("person"));
    assert_eq!(shown["user"]["id"], json!(h.owner_id.as_str()));
    assert!(shown["user"]["name"].is_string());
    assert_eq!(shown["decided_by"], Value::Null);
    assert!(shown["created_at"].is_string() && shown["expires_at"].is_string());
    let one = h.get(&format!("/api/v1/approvals/{id}"), &person).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.raw);
    assert_eq!(&one.body, shown);

    // Not the calling key, not a key without gates:approve, not another tenant, not
    // another person.
    error(
        &approve(&h, &agent, &id, "web").await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    error(
        &approve(&h, &reader, &id, "web").await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    error(
        &h.get("/api/v1/approvals", &reader).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    error(
        &approve(&h, &stranger, &id, "web").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &h.get(&format!("/api/v1/approvals/{id}"), &stranger).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &approve(&h, &member, &id, "web").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &approve(&h, &person, "nosuchapproval00000000000", "web").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &deny(&h, &agent, &id).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    // The wrong name changes nothing.
    for typed in ["Web", "web ", "api"] {
        let r = approve(&h, &person, &id, typed).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.raw);
        assert_eq!(r.body, json!({"error": "target_mismatch"}));
    }
    let r = h
        .post(
            &format!("/api/v1/approvals/{id}/approve"),
            &person,
            json!({}),
        )
        .await;
    error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = h.tool(&agent, None, "service.delete", delete("web")).await;
    assert_eq!(approval_id(&r), id, "still pending");

    let ok = approve(&h, &person, &id, "web").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    assert_eq!(ok.body["status"], json!("approved"));
    assert_eq!(ok.body["decided_by"]["id"], json!(h.owner_id.as_str()));
    let again = approve(&h, &person, &id, "web").await;
    error(&again, StatusCode::CONFLICT, "conflict");
    assert!(again.body["message"].as_str().unwrap().contains("approved"));

    // Other arguments are another call.
    let other = h
        .tool(
            &agent,
            None,
            "service.delete",
            json!({"service": "web", "project": "shop"}),
        )
        .await;
    assert_ne!(approval_id(&other), id);
    // Another key of the same person is another caller.
    let second_agent = h.user_key(&AGENT_SCOPES).await;
    let r = h
        .tool(&second_agent, None, "service.delete", delete("web"))
        .await;
    assert_ne!(approval_id(&r), id);

    // The identical retry runs, once.
    let ran = h.tool(&agent, None, "service.delete", delete("web")).await;
    assert_ungated(&ran);
    assert_ne!(ran.body["result"]["isError"], json!(true), "{}", ran.raw);
    let next = h.tool(&agent, None, "service.delete", delete("web")).await;
    let next_id = approval_id(&next);
    assert_ne!(next_id, id, "a second retry needs a new approval");
    let used = h.get(&format!("/api/v1/approvals/{id}"), &person).await;
    assert_eq!(used.body["status"], json!("used"), "{}", used.raw);
    error(
        &deny(&h, &person, &id).await,
        StatusCode::CONFLICT,
        "conflict",
    );

    let events = h.audit().await;
    let approved = h.assert_owner_approved(&events, "page");
    assert_eq!(approved["detail"]["approval_id"], json!(id));
    let used = audited(&events, "gate.approval_used");
    assert_eq!(used["detail"]["approval_id"], json!(id));
}

#[tokio::test]
async fn a_denied_call_is_declined_and_a_tenant_keys_call_is_an_owners_to_decide() {
    let h = demo().await;
    let agent = h.tenant_key(&["services:write", "services:read"]).await;
    let member = h.member_key(&["gates:approve"]).await;
    let tenant_approver = h.stored_tenant_key(&["gates:approve"]).await;
    let first = h.tool(&agent, None, "service.delete", delete("api")).await;
    let id = approval_id(&first);
    error(
        &deny(&h, &member, &id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &deny(&h, &tenant_approver, &id).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let list = h.get("/api/v1/approvals", &member).await;
    assert_eq!(list.body, json!({"approvals": []}), "{}", list.raw);

    // The owner's key holds gates:approve (bootstrap gives every scope).
    let denied = deny(&h, &h.owner, &id).await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.raw);
    assert_eq!(denied.body["status"], json!("denied"));
    assert_eq!(denied.body["user"], Value::Null, "a tenant key has no user");
    let r = h.tool(&agent, None, "service.delete", delete("api")).await;
    assert_eq!(gated(&r, "CONFIRMATION_DECLINED")["approval_id"], json!(id));
    let r = h.tool(&agent, None, "service.delete", delete("api")).await;
    let fresh = approval_id(&r);
    assert_ne!(fresh, id, "after the decline the person is asked anew");
    let ok = approve(&h, &h.owner, &fresh, "api").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    let ran = h.tool(&agent, None, "service.delete", delete("api")).await;
    assert_ungated(&ran);

    let declined = audited(&h.audit().await, "gate.declined").clone();
    assert_eq!(declined["detail"]["channel"], json!("page"));
}

#[tokio::test]
async fn approvals_expire_and_the_page_route_serves_the_settings_page() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.approval_ttl = Duration::from_secs(1);
    config.public_url = Some("https://keys.example.com".to_owned());
    let h = demo_with(config).await;
    let agent = h.user_key(&["services:write", "services:read"]).await;
    let r = h.tool(&agent, None, "service.delete", delete("web")).await;
    let id = approval_id(&r);
    assert_eq!(
        gated(&r, "APPROVAL_REQUIRED")["approval_url"],
        json!(format!("https://keys.example.com/approvals/{id}"))
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = approve(&h, &h.owner, &id, "web").await;
    error(&late, StatusCode::CONFLICT, "conflict");
    assert!(late.body["message"].as_str().unwrap().contains("expired"));
    let shown = h.get(&format!("/api/v1/approvals/{id}"), &h.owner).await;
    assert_eq!(shown.body["status"], json!("expired"), "{}", shown.raw);
    let r = h.tool(&agent, None, "service.delete", delete("web")).await;
    assert_ne!(
        approval_id(&r),
        id,
        "an expired approval is not asked again"
    );

    let page = h
        .call(http::Method::GET, &format!("/approvals/{id}"), None, None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.raw.contains("/settings/api/app.js"), "{}", page.raw);
    assert_eq!(page.headers["content-security-policy"], keygate_server::CSP);
}

#[tokio::test]
async fn the_approvals_api_needs_a_key() {
    let h = demo().await;
    let r = h
        .call(http::Method::GET, "/api/v1/approvals", None, None)
        .await;
    error(&r, StatusCode::UNAUTHORIZED, "missing_token");
}
