//! The MRTR channel through the router, on the demo and its person-gated
//! `service.delete`: a 2026-07-28 client that declares form elicitation is answered
//! `input_required` with a form naming the call and a sealed `requestState`; its retry
//! with the exact name runs the call once; nothing else does.

use http::StatusCode;
use serde_json::{Value, json};

use keygate_server::{Config, Upstream};

use crate::util::{
    EVIDENCE, Harness, Reply, accept, assert_approval_required, assert_ungated, audited, demo,
    demo_with, exists, gate_code, gated, invalid, policy_approving_by, structured, with_policy,
};

const SCOPES: [&str; 2] = ["services:write", "services:read"];

/// `_meta` of a 2026-07-28 request with these client capabilities.
fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// A 2026-07-28 `tools/call` of `service.delete` from a client with `capabilities`,
/// with `extra` members in `params` (an MRTR retry's).
pub(crate) async fn delete(
    h: &Harness,
    key: &str,
    args: Value,
    capabilities: Value,
    extra: Value,
) -> Reply {
    let mut params =
        json!({"name": "service.delete", "arguments": args, "_meta": meta(capabilities)});
    if let (Some(p), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    h.mcp(
        key,
        None,
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}),
    )
    .await
}

pub(crate) fn elicits() -> Value {
    json!({"elicitation": {"form": {}}})
}

pub(crate) fn web() -> Value {
    json!({"service": "web"})
}

/// The first call: `input_required`; returns its `requestState`.
pub(crate) async fn ask(h: &Harness, key: &str, args: Value) -> String {
    let r = delete(h, key, args, elicits(), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(
        r.body["result"]["resultType"],
        json!("input_required"),
        "{}",
        r.raw
    );
    r.body["result"]["requestState"]
        .as_str()
        .expect("a requestState")
        .to_owned()
}

/// The retry with `answer` under `approval` and `state`.
pub(crate) async fn retry(
    h: &Harness,
    key: &str,
    args: Value,
    state: &str,
    answer: Value,
) -> Reply {
    delete(
        h,
        key,
        args,
        elicits(),
        json!({"inputResponses": {"approval": answer}, "requestState": state}),
    )
    .await
}

/// Asks for the delete of `web` with `key`, then retries with the client's person
/// accepting: the `requestState` and the retry's answer, which ran the call.
async fn accepted(h: &Harness, key: &str) -> (String, Reply) {
    let state = ask(h, key, web()).await;
    let ran = retry(h, key, web(), &state, accept("web")).await;
    assert_ungated(&ran);
    (state, ran)
}

#[tokio::test]
async fn a_form_client_is_asked_by_input_required_naming_the_call() {
    let h = demo().await;
    let agent = h.user_key(&SCOPES).await;
    let r = delete(&h, &agent, web(), elicits(), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let result = &r.body["result"];
    assert_eq!(result["resultType"], json!("input_required"), "{}", r.raw);
    assert!(result.get("isError").is_none(), "{}", r.raw);
    let form = &result["inputRequests"]["approval"];
    assert_eq!(form["method"], json!("elicitation/create"));
    assert_eq!(form["params"]["mode"], json!("form"));
    let message = form["params"]["message"].as_str().unwrap();
    for part in ["service.delete", "`web`", r#"{"service":"web"}"#] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
    let schema = &form["params"]["requestedSchema"];
    assert_eq!(schema["type"], json!("object"));
    assert_eq!(schema["required"], json!(["target"]));
    assert_eq!(schema["properties"]["target"]["type"], json!("string"));
    assert!(
        schema["properties"]["target"]["description"]
            .as_str()
            .unwrap()
            .contains("type the exact name of web to approve")
    );
    assert_eq!(
        result.as_object().unwrap().len(),
        3,
        "resultType, inputRequests, requestState: {}",
        r.raw
    );
    assert!(
        result["requestState"]
            .as_str()
            .is_some_and(|s| s.len() > 64)
    );
    // The approval is pending, as on the page.
    assert!(exists(&h, "web").await);
    // An elicitation capability without modes means form, as before modes existed.
    let bare = delete(&h, &agent, web(), json!({"elicitation": {}}), json!({})).await;
    assert_eq!(bare.body["result"]["resultType"], json!("input_required"));
}

#[tokio::test]
async fn the_exact_name_runs_the_call_once_and_a_replay_is_refused() {
    let h = demo().await;
    let agent = h.user_key(&SCOPES).await;
    let (state, ran) = accepted(&h, &agent).await;
    assert_ne!(ran.body["result"]["isError"], json!(true), "{}", ran.raw);
    assert!(ran.raw.contains("deleted"), "{}", ran.raw);
    assert!(!exists(&h, "web").await, "web was deleted");

    // The same requestState again: refused, nothing runs (web is gone anyway; the
    // refusal comes from the gate, not the upstream).
    let again = retry(&h, &agent, web(), &state, accept("web")).await;
    assert_eq!(invalid(&again), "request_state_used");

    let events = h.audit().await;
    let approved = h.assert_owner_approved(&events, "mrtr");
    let used = audited(&events, "gate.approval_used");
    assert_eq!(used["detail"]["channel"], json!("mrtr"));
    assert_eq!(
        used["detail"]["approval_id"],
        approved["detail"]["approval_id"]
    );
}

#[tokio::test]
async fn decline_cancel_and_a_wrong_name_are_declined_and_delete_nothing() {
    let h = demo().await;
    let agent = h.user_key(&SCOPES).await;
    for answer in [
        json!({"action": "decline"}),
        json!({"action": "cancel"}),
        accept("Web"),
        accept("web "),
        accept("api"),
        json!({"action": "accept", "content": {}}),
        json!({"action": "accept", "content": {"target": 1}}),
        json!("approved"),
    ] {
        let state = ask(&h, &agent, web()).await;
        let r = retry(&h, &agent, web(), &state, answer.clone()).await;
        assert_eq!(
            gate_code(&r).as_deref(),
            Some("CONFIRMATION_DECLINED"),
            "{answer}: {}",
            r.raw
        );
        assert!(exists(&h, "web").await, "{answer} deleted web");
        // The approval is closed: the plain retry asks anew (a new approval).
        let plain = h.tool(&agent, None, "service.delete", web()).await;
        gated(&plain, "APPROVAL_REQUIRED");
    }
    // No inputResponses at all is no approval either.
    let state = ask(&h, &agent, web()).await;
    let r = delete(&h, &agent, web(), elicits(), json!({"requestState": state})).await;
    gated(&r, "CONFIRMATION_DECLINED");
    assert!(exists(&h, "web").await);
    h.assert_declined(9, "mrtr").await;
}

#[tokio::test]
async fn made_up_altered_and_borrowed_states_run_nothing() {
    let h = demo().await;
    let agent = h.user_key(&SCOPES).await;
    let other = h.user_key(&SCOPES).await;
    let state = ask(&h, &agent, web()).await;

    // Made up, and every single altered character.
    for made_up in ["", "approved", "kgm1.x.y", &format!("{state}0")] {
        let r = retry(&h, &agent, web(), made_up, accept("web")).await;
        assert_eq!(invalid(&r), "invalid_request_state", "{made_up}");
    }
    let r = delete(
        &h,
        &agent,
        web(),
        elicits(),
        json!({"inputResponses": {"approval": accept("web")}, "requestState": 7}),
    )
    .await;
    assert_eq!(invalid(&r), "invalid_request_state");
    for i in (0..state.len()).step_by(7) {
        let mut bytes = state.clone().into_bytes();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(bytes).unwrap();
        if altered == state {
            continue;
        }
        let r = retry(&h, &agent, web(), &altered, accept("web")).await;
        assert_eq!(invalid(&r), "invalid_request_state", "position {i}");
    }
    assert!(exists(&h, "web").await);

    // Another key presenting it: refused, and the owner's state still works after.
    let r = retry(&h, &other, web(), &state, accept("web")).await;
    assert_eq!(invalid(&r), "request_state_other_key");
    // A tenant key of the same tenant too.
    let tenant = h.tenant_key(&SCOPES).await;
    let r = retry(&h, &tenant, web(), &state, accept("web")).await;
    assert_eq!(invalid(&r), "request_state_other_key");
    assert!(exists(&h, "web").await);

    // Other arguments with this state: refused (and the state is spent).
    let r = retry(&h, &agent, json!({"service": "api"}), &state, accept("api")).await;
    assert_eq!(invalid(&r), "request_state_other_arguments");
    let r = retry(
        &h,
        &agent,
        json!({"service": "web", "project": "shop"}),
        &state,
        accept("web"),
    )
    .await;
    assert_eq!(invalid(&r), "request_state_used");
    assert!(exists(&h, "web").await && exists(&h, "api").await);

    // A fresh state for other arguments is another approval: it runs only those.
    let state = ask(&h, &agent, web()).await;
    let r = retry(&h, &other, web(), &state, accept("web")).await;
    assert_eq!(invalid(&r), "request_state_other_key");
    let ran = retry(&h, &agent, web(), &state, accept("web")).await;
    assert_ungated(&ran);
    assert!(!exists(&h, "web").await);
    assert!(exists(&h, "api").await);
}

#[tokio::test]
async fn clients_without_form_elicitation_and_stateful_requests_get_the_approval_page() {
    let h = demo().await;
    let agent = h.user_key(&SCOPES).await;
    for capabilities in [
        json!({}),
        json!({"sampling": {}}),
        json!({"elicitation": {"url": {}}}),
    ] {
        let r = delete(&h, &agent, web(), capabilities.clone(), json!({})).await;
        assert_eq!(
            gate_code(&r).as_deref(),
            Some("APPROVAL_REQUIRED"),
            "{capabilities}: {}",
            r.raw
        );
        // A 2026-07-28 result says it is final, as that revision's clients require.
        assert_eq!(
            r.body["result"]["resultType"],
            json!("complete"),
            "{}",
            r.raw
        );
    }
    // A stateful request whose client declared elicitation in `_meta` the 2025 way.
    let session = h.session(&agent).await;
    let r = h
        .mcp(
            &agent,
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "service.delete", "arguments": web(),
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2025-06-18",
                          "io.modelcontextprotocol/clientCapabilities": elicits()}}}),
        )
        .await;
    assert_approval_required(&r);
    assert!(r.body["result"].get("resultType").is_none(), "{}", r.raw);
    assert!(exists(&h, "web").await);
}

#[tokio::test]
async fn a_tenant_keys_call_is_approved_by_the_clients_person() {
    let h = demo().await;
    let agent = h.tenant_key(&SCOPES).await;
    accepted(&h, &agent).await;
    assert!(!exists(&h, "web").await);
    let events = h.audit().await;
    let approved = audited(&events, "gate.approved");
    assert_eq!(approved["detail"]["channel"], json!("mrtr"));
    assert_eq!(approved["detail"]["approver_user_id"], Value::Null);
    assert_eq!(approved["detail"]["approver"], json!("the client's person"));
}

#[tokio::test]
async fn a_page_only_gate_never_asks_the_client_and_ignores_its_answers() {
    let config = Config::new(Upstream::in_process(keygate_demo::Platform::new()));
    let (config, _dir) = with_policy(config, &policy_approving_by("page"));
    let h = demo_with(config).await;
    let agent = h.user_key(&SCOPES).await;
    // A form-rendering 2026-07-28 client is sent to the page, not asked itself.
    let r = delete(&h, &agent, web(), elicits(), json!({})).await;
    assert_approval_required(&r);
    assert_eq!(
        r.body["result"]["resultType"],
        json!("complete"),
        "{}",
        r.raw
    );
    // An answer the client makes up with the calling key, with any state, runs nothing.
    let state = "x".repeat(96);
    let made_up = retry(&h, &agent, web(), &state, accept("web")).await;
    assert_approval_required(&made_up);
    assert!(exists(&h, "web").await, "web was not deleted");
}

/// A 2026-07-28 (stateless) `tools/call` of `name` from a client with `capabilities`.
async fn call_stateless(
    h: &Harness,
    key: &str,
    name: &str,
    args: Value,
    capabilities: Value,
) -> Reply {
    h.mcp(
        key,
        None,
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": name, "arguments": args, "_meta": meta(capabilities)}}),
    )
    .await
}

#[tokio::test]
async fn a_stateless_client_reads_the_evidence_then_a_person_approves() {
    let h = demo().await;
    let agent = h.user_key(&SCOPES).await;
    let other = h.user_key(&SCOPES).await;
    let replace = json!({"service": "worker", "image": "shop/worker:2.3.1"});
    let evidence = EVIDENCE;
    let r = call_stateless(&h, &agent, "service.replace", replace.clone(), json!({})).await;
    gated(&r, "DIAGNOSIS_REQUIRED");
    assert_eq!(structured(&r)["evidence_missing"], json!(evidence));
    // Another key's stateless reads do not count for this one.
    for tool in evidence {
        let r = call_stateless(&h, &other, tool, json!({"service": "worker"}), json!({})).await;
        assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    }
    let r = call_stateless(&h, &agent, "service.replace", replace.clone(), json!({})).await;
    gated(&r, "DIAGNOSIS_REQUIRED");
    for tool in evidence {
        let r = call_stateless(&h, &agent, tool, json!({"service": "worker"}), json!({})).await;
        assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    }
    let r = call_stateless(&h, &agent, "service.replace", replace.clone(), json!({})).await;
    assert_approval_required(&r);
    // A form-eliciting client is asked on the call instead.
    let r = call_stateless(&h, &agent, "service.replace", replace, elicits()).await;
    assert_eq!(
        r.body["result"]["resultType"],
        json!("input_required"),
        "{}",
        r.raw
    );
}
