//! The official MCP Python SDK (`mcp` 2.3) through keygated in front of a server on the
//! same SDK (`tests/peers/conformance_server.py`), in both of the client's modes:
//! `mode="legacy"` (initialize handshake, 2025-11-25) and `mode="auto"` (probes
//! `server/discover`, 2026-07-28 when the path carries it). The client is
//! `tests/peers/sdk_client.py`; where a check needs a request no SDK sends (another key
//! presenting a session id, a foreign `Origin`) it is made over raw HTTP.
//!
//! keygated runs with its defaults (`--upstream-timeout` 300 s, 4 MiB bodies, default rate
//! limits), as a new user runs it: the 12 s silent tool (an event stream in 2025-11-25,
//! one JSON body only when done in 2026-07-28) and the 13 s idle GET stream outlast the
//! 10 s bound that used to cut them. That a stream outlives even a short upstream
//! timeout is shown in keygate-server's `streams` tests.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use keygate_e2e::{Mcp, client, send};
use serde_json::{Value, json};

use crate::peers::{Gateway, Need, PeerServer, available, python_script, script_json, tail};

/// The longest one client run may take (the slow scenarios wait 12-13 s).
const RUN_BUDGET: Duration = Duration::from_secs(60);

/// Runs `sdk_client.py --url URL --mode MODE SCENARIO ARG` with `key`; the JSON it printed.
fn sdk(url: &str, key: &str, mode: &str, scenario: &str, arg: &str) -> Result<Value, String> {
    sdk_with(url, key, mode, scenario, arg, &[])
}

/// [`sdk`] with more environment variables (the other keys a scenario uses).
fn sdk_with(
    url: &str,
    key: &str,
    mode: &str,
    scenario: &str,
    arg: &str,
    env: &[(&str, &str)],
) -> Result<Value, String> {
    let mut cmd: Command = python_script(Path::new("sdk_client.py"));
    cmd.args(["--url", url, "--mode", mode, scenario, arg])
        .env("KEYGATE_PEER_KEY", key)
        .envs(env.iter().copied());
    let what = format!("{mode} {scenario} {arg}");
    script_json(cmd, RUN_BUDGET, "sdk_client.py", &what)
}

fn setup(test: &str) -> Option<(PeerServer, Gateway)> {
    if !available(test, Need::Python) {
        return None;
    }
    let upstream = PeerServer::start();
    let gateway = Gateway::start(&upstream.url, &[]);
    Some((upstream, gateway))
}

/// How many requests of `method` the client sent, and how many carried `Last-Event-ID`.
fn requests(out: &Value, method: &str) -> (usize, usize) {
    let list = out["requests"].as_array().cloned().unwrap_or_default();
    let of_method = list.iter().filter(|r| r["method"] == method).count();
    let resumed = list.iter().filter(|r| r["last_event_id"] == true).count();
    (of_method, resumed)
}

#[test]
fn legacy_negotiates_2025_11_25_and_auto_negotiates_2026_07_28() {
    let Some((upstream, gateway)) = setup("the Python SDK negotiation test") else {
        return;
    };
    let url = gateway.mcp_url();
    // Directly, the SDK server speaks both (the baseline for the gateway).
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let direct = sdk(&upstream.url, "unused", mode, "negotiate", "0").unwrap();
        assert_eq!(
            direct["protocol_version"], version,
            "direct, {mode}: {direct}"
        );
        let through = sdk(&url, &gateway.key, mode, "negotiate", "0")
            .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.server.logs()));
        assert_eq!(
            through["protocol_version"], version,
            "through keygated, mode={mode}: {through}"
        );
    }
}

/// Another tenant's key presenting the first key's `Mcp-Session-Id` gets 404 for every
/// method (POST, GET, DELETE), and the session still works for its own key afterwards.
#[tokio::test]
async fn a_session_answers_404_to_any_other_key() {
    let Some((_upstream, gateway)) = setup("the session-binding test") else {
        return;
    };
    let url = gateway.mcp_url();
    let other = gateway.other_tenant_key();
    let mut owner = Mcp::new(&url, &gateway.key);
    owner.initialize().await;
    let session = owner.session.clone().expect("a session id");
    assert_eq!(owner.tool_names().await.len(), 17);

    let mut intruder = Mcp::new(&url, &other).with_session(Some(&session));
    let a = intruder.rpc("tools/list", json!({})).await;
    assert_eq!(
        a.status, 404,
        "another key's tools/list on the session: {}",
        a.text
    );
    let a = intruder.call("test_simple_text", json!({})).await;
    assert_eq!(
        a.status, 404,
        "another key's tools/call on the session: {}",
        a.text
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let a = send(
            client()
                .request(method.clone(), &url)
                .bearer_auth(&other)
                .header("accept", "text/event-stream")
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-06-18")
                .timeout(Duration::from_secs(5)),
        )
        .await;
        assert_eq!(
            a.status, 404,
            "another key's {method} on the session: {}",
            a.text
        );
    }
    // Still A's.
    assert_eq!(owner.tool_names().await.len(), 17);
}

/// The legacy client closes with DELETE; after that the session id answers 404 (the
/// upstream's own answer, passed through), which tells clients to initialize again.
#[tokio::test]
async fn after_delete_the_session_answers_404() {
    let Some((_upstream, gateway)) = setup("the DELETE test") else {
        return;
    };
    let url = gateway.mcp_url();
    let out = sdk(&url, &gateway.key, "legacy", "negotiate", "0")
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.server.logs()));
    assert_eq!(
        requests(&out, "DELETE").0,
        1,
        "the client sent DELETE: {out}"
    );
    let session = out["session_id"].as_str().expect("a session id").to_owned();
    let mut mcp = Mcp::new(&url, &gateway.key).with_session(Some(&session));
    let a = mcp.rpc("tools/list", json!({})).await;
    assert_eq!(a.status, 404, "tools/list on a deleted session: {}", a.text);
}

/// A request with a foreign `Origin` is refused (DNS rebinding); the gateway's own
/// origin is served.
#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let Some((_upstream, gateway)) = setup("the Origin test") else {
        return;
    };
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"keygate-e2e","version":"0"}}});
    let post = |origin: &str| {
        client()
            .post(gateway.mcp_url())
            .bearer_auth(&gateway.key)
            .header("accept", "application/json, text/event-stream")
            .header("origin", origin)
            .json(&init)
    };
    let a = send(post("http://evil.example.com")).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(a.text, r#"{"error":"forbidden_origin"}"#);
    let a = send(post(&gateway.server.base)).await;
    assert_eq!(a.status, 200, "the gateway's own origin: {}", a.text);
}

/// A 2 MiB tool argument reaches the upstream in both revisions (SDK servers take 4 MB).
#[test]
fn a_two_mebibyte_call_passes_in_both_modes() {
    let Some((_upstream, gateway)) = setup("the 2 MiB test") else {
        return;
    };
    let size = 2 * 1024 * 1024;
    for mode in ["legacy", "auto"] {
        let out = sdk(
            &gateway.mcp_url(),
            &gateway.key,
            mode,
            "big",
            &size.to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.server.logs()));
        assert_eq!(out["is_error"], false, "{mode}: {out}");
        assert_eq!(out["text"], size.to_string(), "{mode}: {out}");
    }
}

/// The slow ones, concurrently (about 15 s in all): a tool silent for 12 s answers, in
/// both modes, without the client having to resume the stream; a GET stream idle for
/// 13 s still delivers the notification sent at its end, without a reconnect.
#[test]
fn long_silences_outlast_the_upstream_timeout() {
    let Some((_upstream, gateway)) = setup("the long-silence test") else {
        return;
    };
    let url = gateway.mcp_url();
    let key = gateway.key.clone();
    let runs: Vec<(&str, std::thread::JoinHandle<Result<Value, String>>)> = [
        ("legacy", "silent", "12"),
        ("auto", "silent", "12"),
        ("legacy", "notify", "13"),
    ]
    .into_iter()
    .map(|(mode, scenario, arg)| {
        let (url, key) = (url.clone(), key.clone());
        (
            scenario,
            std::thread::spawn(move || {
                sdk(&url, &key, mode, scenario, arg).map(|v| json!({"mode": mode, "out": v}))
            }),
        )
    })
    .collect();
    let mut failures = Vec::new();
    for (scenario, run) in runs {
        let result = run.join().expect("a client thread");
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let (mode, out) = (out["mode"].clone(), &out["out"]);
        let (gets, resumed) = requests(out, "GET");
        let ok = match scenario {
            "silent" => out["is_error"] == false && out["text"] == "slept 12" && resumed == 0,
            _ => out["updates"] == json!(["test://watched-resource"]) && gets == 1 && resumed == 0,
        };
        if !ok {
            failures.push(format!(
                "{scenario} ({mode}): {out} (GET requests {gets}, resumed with Last-Event-ID {resumed})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\ngateway log (tail):\n{}",
        failures.join("\n"),
        tail(&gateway.server.logs(), 30)
    );
}

/// `mode="auto"` (2026-07-28) against `keygated --demo`: the person-gated
/// `service.delete` asks the SDK's `elicitation_callback` (MRTR `input_required`) with a
/// message naming the call; declining or a wrong name deletes nothing, the exact name
/// deletes.
#[test]
fn auto_mode_asks_the_elicitation_callback_and_only_the_exact_name_deletes() {
    if !available("the Python SDK MRTR test", Need::Python) {
        return;
    }
    the_callback_is_asked_and_only_the_exact_name_deletes("auto", "2026-07-28");
}

/// `mode="legacy"` (2025-11-25, a session whose client declared elicitation) against
/// `keygated --demo`: the same, through an `elicitation/create` on the call's stream
/// whose answer the SDK posts in the session.
#[test]
fn legacy_mode_asks_the_elicitation_callback_on_the_stream_and_only_the_exact_name_deletes() {
    if !available(
        "the Python SDK elicitation-on-the-stream test",
        Need::Python,
    ) {
        return;
    }
    the_callback_is_asked_and_only_the_exact_name_deletes("legacy", "2025-11-25");
}

fn the_callback_is_asked_and_only_the_exact_name_deletes(mode: &str, version: &str) {
    let server = keygate_e2e::Server::demo();
    let key = server.owner_key();
    let url = server.url("/api/mcp");
    let run = |arg: &str| {
        sdk(&url, &key, mode, "approve", arg)
            .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", server.logs()))
    };
    for (arg, code) in [
        ("web:decline", "CONFIRMATION_DECLINED"),
        ("web:cancel", "CONFIRMATION_DECLINED"),
        ("web:accept=Web", "CONFIRMATION_DECLINED"),
    ] {
        let out = run(arg);
        assert_eq!(out["protocol_version"], version, "{arg}: {out}");
        let asked = out["asked"].as_array().expect("the callback's record");
        assert_eq!(asked.len(), 1, "{arg}: asked once: {out}");
        let message = asked[0]["message"].as_str().unwrap_or_default();
        for part in ["service.delete", "`web`", r#"{"service":"web"}"#] {
            assert!(message.contains(part), "{arg}: {part} not in {message}");
        }
        assert_eq!(asked[0]["schema"]["required"], json!(["target"]), "{out}");
        assert_eq!(out["is_error"], true, "{arg}: {out}");
        assert_eq!(out["structured"]["code"], code, "{arg}: {out}");
        assert_eq!(out["still_listed"], true, "{arg} deleted web: {out}");
    }
    let out = run("web:accept=web");
    assert_eq!(out["asked"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(out["is_error"], false, "{out}");
    assert!(
        out["text"].as_str().unwrap_or_default().contains("deleted"),
        "{out}"
    );
    assert_eq!(out["still_listed"], false, "web was not deleted: {out}");
}

/// The calling key (a user key of the demo owner, with `gates:approve` even) and a key
/// without `gates:approve`, made with the owner's key.
async fn agent_keys(server: &keygate_e2e::Server, owner: &str) -> (String, String) {
    let api = server.api(owner);
    let (_, agent) = api
        .new_key(json!({"name": "agent", "kind": "user", "scopes": ["services:read", "services:write", "gates:approve"]}))
        .await;
    let (_, unscoped) = api
        .new_key(json!({"name": "reader", "kind": "user", "scopes": ["services:read"]}))
        .await;
    (agent, unscoped)
}

/// A client without elicitation callback, in both modes, against `keygated --demo`:
/// `service.delete` answers `APPROVAL_REQUIRED` with the approval's id and page; every
/// `confirm` the agent can make up is refused the same way; the calling key and a key
/// without `gates:approve` cannot approve (403); the person's own key approves (200);
/// a retry with other arguments does not run, the SDK's identical retry runs once,
/// and a second identical retry needs a new approval.
#[tokio::test]
async fn without_elicitation_the_person_approves_on_the_page_and_the_identical_retry_runs_once() {
    if !available("the Python SDK approval-page test", Need::Python) {
        return;
    }
    let server = keygate_e2e::Server::demo();
    let owner = server.owner_key();
    let (agent, unscoped) = agent_keys(&server, &owner).await;
    let url = server.url("/api/mcp");
    for (mode, service) in [("legacy", "web"), ("auto", "worker")] {
        let env = [
            ("KEYGATE_PERSON_KEY", owner.as_str()),
            ("KEYGATE_UNSCOPED_KEY", unscoped.as_str()),
        ];
        let out = sdk_with(&url, &agent, mode, "page", service, &env)
            .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", server.logs()));
        let first = &out["first"];
        assert_eq!(first["code"], "APPROVAL_REQUIRED", "{mode}: {out}");
        let id = first["approval_id"].as_str().expect("an approval id");
        assert_eq!(
            first["approval_url"],
            json!(format!("/approvals/{id}")),
            "{mode}: {out}"
        );
        for made_up in out["made_up"].as_array().expect("the made-up confirms") {
            assert_eq!(made_up["code"], "APPROVAL_REQUIRED", "{mode}: {made_up}");
            assert_eq!(
                made_up["approval_id"],
                json!(id),
                "{mode}: the same approval: {made_up}"
            );
        }
        assert_eq!(out["approve_by_caller"], 403, "{mode}: {out}");
        assert_eq!(out["approve_unscoped"], 403, "{mode}: {out}");
        assert_eq!(out["listed_before"], true, "{mode}: {out}");
        assert_eq!(out["approve_by_person"], 200, "{mode}: {out}");
        // Other arguments, and the retry after the one that ran: each a new approval.
        for asked_anew in ["other_arguments", "second_retry"] {
            let answer = &out[asked_anew];
            assert_eq!(
                answer["code"], "APPROVAL_REQUIRED",
                "{mode} {asked_anew}: {out}"
            );
            assert_ne!(
                answer["approval_id"],
                json!(id),
                "{mode} {asked_anew}: {out}"
            );
        }
        assert_eq!(out["retry"]["is_error"], false, "{mode}: {out}");
        assert!(
            out["retry"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("deleted"),
            "{mode}: {out}"
        );
        assert_eq!(out["still_listed"], false, "{mode}: {out}");
        used_approval(&server, &owner, id).await;
    }
}

/// Approval `id` as the page shows it to `person`, checked to be used (by the retry).
async fn used_approval(server: &keygate_e2e::Server, person: &str, id: &str) -> Value {
    let a = server
        .api(person)
        .get(&format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["status"], "used", "{}", a.text);
    a.json
}

/// The public URL the URL-mode test's gateway names its approval pages under.
const PUBLIC_URL: &str = "https://keys.example.test";

/// A client on the SDK with an `elicitation_callback` (it declares form and URL
/// elicitation) against `keygated --demo` whose gates are `approval = "page"`: it is
/// offered the approval page as a URL elicitation (legacy: the error -32042; auto: a
/// URL elicitation the SDK hands the callback). The URL is the page of the pending
/// approval of exactly this call; once the person approved it there with their own key,
/// the identical retry runs once.
#[tokio::test]
async fn a_client_declaring_url_elicitation_is_offered_the_approval_page() {
    if !available("the Python SDK URL-elicitation test", Need::Python) {
        return;
    }
    let (_dir, policy) = keygate_e2e::demo_policy_with("page");
    let server = keygate_e2e::Server::start(keygate_e2e::ServerOptions::demo().args(&[
        "--policy",
        policy.to_str().expect("a UTF-8 path"),
        "--public-url",
        PUBLIC_URL,
    ]));
    let owner = server.owner_key();
    let (agent, _) = agent_keys(&server, &owner).await;
    let url = server.url("/api/mcp");
    for (mode, service, via) in [("legacy", "web", "error"), ("auto", "worker", "callback")] {
        let env = [("KEYGATE_PERSON_KEY", owner.as_str())];
        let out = sdk_with(&url, &agent, mode, "url", service, &env)
            .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", server.logs()));
        let asked = out["asked"].as_array().expect("the URL elicitations");
        assert_eq!(asked.len(), 1, "{mode}: offered once: {out}");
        let offered = &asked[0];
        assert_eq!(offered["via"], via, "{mode}: {out}");
        let page_url = offered["url"].as_str().expect("a URL");
        let id = page_url
            .strip_prefix(&format!("{PUBLIC_URL}/approvals/"))
            .unwrap_or_else(|| panic!("{mode}: not an approval page: {page_url}"));
        if mode == "legacy" {
            assert_eq!(out["error"]["code"], -32042, "{out}");
            assert_eq!(offered["elicitation_id"], json!(id), "{out}");
        }
        let message = offered["message"].as_str().unwrap_or_default();
        for part in ["service.delete", &format!("`{service}`")] {
            assert!(message.contains(part), "{mode}: {part} not in {message}");
        }
        assert_eq!(
            offered["approved"], 200,
            "{mode}: the person approved: {out}"
        );
        // The approval the URL named is the one the call opened, now used by the retry.
        let a = used_approval(&server, &owner, id).await;
        assert_eq!(a["target"], service, "{mode}: {a}");
        assert_eq!(a["arguments"], json!({"service": service}), "{a}");
        assert_eq!(out["result"]["is_error"], false, "{mode}: {out}");
        assert_eq!(out["still_listed"], false, "{mode}: {out}");
    }
}
