//! Two app instances on one PostgreSQL database share keys and gate state.

use http::StatusCode;
use keygate_demo::Platform;
use keygate_server::{App, Config, Upstream};
use serde_json::json;

use keygate_test::{PgSchema, postgres_url};

use crate::elicitation::{answer, code, delete, session};
use crate::mrtr::{ask, retry, web};
use crate::util::{
    Harness, accept, assert_approval_required, assert_ungated, exists, gated, harnesses, invalid,
    stored_rows, structured, take_demo_owner,
};

/// A fresh schema `prefix` on the test database, or `None` (the test passes) without one.
async fn fresh_schema(prefix: &str) -> Option<PgSchema> {
    Some(PgSchema::create(&postgres_url()?, prefix).await)
}

/// The MRTR secret the instances of a test share.
const SECRET: &str = "a shared MRTR secret of 32 bytes or more";

/// An instance on `url`; `agent`: with the demo policy's gates set to the
/// agent-relayed challenge.
async fn instance(url: &str, agent: bool) -> App {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.database = url.parse().unwrap();
    if agent {
        let (config, _dir) = crate::util::with_agent_policy(config);
        return App::new(config).await.unwrap();
    }
    App::new(config).await.unwrap()
}

/// Two instances on a fresh schema `prefix` (`agent`: see [`instance`]) and their
/// harnesses, or `None` (the test passes) without PostgreSQL.
async fn two_instances(prefix: &str, agent: bool) -> Option<(PgSchema, [App; 2], [Harness; 2])> {
    let schema = fresh_schema(prefix).await?;
    let apps = [
        instance(&schema.url, agent).await,
        instance(&schema.url, agent).await,
    ];
    let harnesses = harnesses([&apps[0], &apps[1]]).await;
    Some((schema, apps, harnesses))
}

#[tokio::test]
async fn a_person_approval_given_through_one_instance_lets_the_retry_through_another_once() {
    let Some((_schema, _apps, [ha, hb])) = two_instances("kga", false).await else {
        return;
    };
    let agent = ha.user_key(&["services:read", "services:write"]).await;
    let first = ha
        .tool(&agent, None, "service.delete", json!({"service": "web"}))
        .await;
    assert_approval_required(&first);
    let id = structured(&first)["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Asked again through B: the same approval, listed on B.
    let again = hb
        .tool(&agent, None, "service.delete", json!({"service": "web"}))
        .await;
    assert_eq!(structured(&again)["approval_id"], json!(id));
    let list = hb.get("/api/v1/approvals", &hb.owner).await;
    assert_eq!(list.body["approvals"][0]["id"], json!(id), "{}", list.raw);
    let ok = hb
        .post(
            &format!("/api/v1/approvals/{id}/approve"),
            &hb.owner,
            json!({"target": "web"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    let ran = ha
        .tool(&agent, None, "service.delete", json!({"service": "web"}))
        .await;
    assert_ungated(&ran);
    let twice = hb
        .tool(&agent, None, "service.delete", json!({"service": "web"}))
        .await;
    gated(&twice, "APPROVAL_REQUIRED");
    assert_ne!(
        structured(&twice)["approval_id"],
        json!(id),
        "used once, on whichever instance"
    );
    let shown = ha.get(&format!("/api/v1/approvals/{id}"), &ha.owner).await;
    assert_eq!(shown.body["status"], json!("used"), "{}", shown.raw);
}

#[tokio::test]
async fn a_challenge_from_one_instance_is_honoured_once_by_another() {
    // The challenge's mechanics: `approval = "agent"`.
    let Some((schema, [_a, b], [ha, hb])) = two_instances("kgs", true).await else {
        return;
    };
    assert!(
        take_demo_owner(&b).await.is_none(),
        "the second finds the tenant"
    );
    let key = ha.owner.clone();
    let (s, e) = (ha.session(&key).await, ha.session(&key).await);

    // Keys are shared: created on A, revoked on B, refused on A.
    let (temp, view) = ha
        .create_key(json!({"name": "t", "kind": "tenant", "scopes": ["services:read"]}))
        .await;
    assert_eq!(hb.get("/api/v1/token", &temp).await.status, StatusCode::OK);
    let id = view["id"].as_str().unwrap();
    let r = hb
        .post(&format!("/api/v1/keys/{id}/revoke"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        ha.get("/api/v1/token", &temp).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A challenge issued by A confirms on B, once.
    let first = ha
        .tool_in(&key, &s, "service.delete", json!({"service": "api"}))
        .await;
    gated(&first, "CONFIRMATION_REQUIRED");
    let challenge = structured(&first)["challenge"].clone();
    // The table keeps the challenge's SHA-256 only.
    let rows = stored_rows(&schema.url, "gate_challenges").await;
    assert!(rows.contains("\\x"), "a stored challenge row: {rows}");
    assert!(!rows.contains(challenge.as_str().unwrap()), "{rows}");
    let confirm = json!({"service": "api", "confirm": {"challenge": challenge, "target": "api"}});
    let ok = hb
        .tool_in(&key, &s, "service.delete", confirm.clone())
        .await;
    assert_ungated(&ok);
    let again = ha.tool_in(&key, &s, "service.delete", confirm).await;
    gated(&again, "CONFIRMATION_INVALID");

    // Evidence read through A counts on B.
    ha.read_evidence(&key, &e, "worker").await;
    let r = hb
        .tool_in(
            &key,
            &e,
            "service.replace",
            json!({"service": "worker", "image": "x:1"}),
        )
        .await;
    gated(&r, "CONFIRMATION_REQUIRED");

    // Health reflects the database.
    let h = ha.call(http::Method::GET, "/healthz", None, None).await;
    assert_eq!(h.status, StatusCode::OK);
}

/// An instance on `url` whose MRTR secret is `secret` (random when `None`).
async fn instance_with_secret(url: &str, secret: Option<&str>) -> App {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.database = url.parse().unwrap();
    config.mrtr_secret = secret.map(|s| keygate_server::MrtrSecret::new(s.as_bytes()).unwrap());
    App::new(config).await.unwrap()
}

/// Two instances on a fresh schema `prefix` that share the MRTR secret [`SECRET`], or
/// `None` (the test passes) without PostgreSQL.
async fn sharing_the_secret(prefix: &str) -> Option<(PgSchema, [App; 2])> {
    let schema = fresh_schema(prefix).await?;
    let a = instance_with_secret(&schema.url, Some(SECRET)).await;
    let b = instance_with_secret(&schema.url, Some(SECRET)).await;
    Some((schema, [a, b]))
}

#[tokio::test]
async fn an_mrtr_state_from_one_instance_is_honoured_once_by_another_with_the_same_secret() {
    let Some((schema, [a, b])) = sharing_the_secret("kgr").await else {
        return;
    };
    let lone = instance_with_secret(&schema.url, None).await;
    let [ha, hb, hl] = harnesses([&a, &b, &lone]).await;
    let agent = ha.user_key(&["services:read", "services:write"]).await;

    // Sealed by A, refused by an instance with its own secret, honoured by B once.
    let state = ask(&ha, &agent, web()).await;
    let r = retry(&hl, &agent, web(), &state, accept("web")).await;
    assert_eq!(invalid(&r), "invalid_request_state");
    let ran = retry(&hb, &agent, web(), &state, accept("web")).await;
    assert_ungated(&ran);
    // The nonce is spent in the shared store: A refuses the replay.
    let again = retry(&ha, &agent, web(), &state, accept("web")).await;
    assert_eq!(invalid(&again), "request_state_used");
    // A decline through B closes the approval asked through A.
    let state = ask(&ha, &agent, web()).await;
    let r = retry(&hb, &agent, web(), &state, json!({"action": "decline"})).await;
    gated(&r, "CONFIRMATION_DECLINED");
}

#[tokio::test]
async fn an_elicitation_answered_at_another_instance_reaches_the_waiting_stream() {
    let Some((_schema, [a, b])) = sharing_the_secret("kge").await else {
        return;
    };
    let [ha, hb] = harnesses([&a, &b]).await;
    let agent = ha.user_key(&["services:read", "services:write"]).await;
    let s = session(&ha, &agent, true).await;

    // Asked on A's stream, declined through B: A's stream ends declined.
    let (_, mut stream) = delete(&ha, &agent, &s, "web").await;
    let ask = stream.next().await.expect("an elicitation request");
    assert_eq!(
        answer(&hb, &agent, &s, &ask["id"], json!({"action": "decline"})).await,
        StatusCode::ACCEPTED
    );
    let rest = stream.rest().await;
    assert_eq!(code(&rest[0]), Some("CONFIRMATION_DECLINED"), "{}", rest[0]);
    assert!(exists(&ha, "web").await);

    // Asked on A's stream, accepted through B: A's stream carries the delete.
    let (_, mut stream) = delete(&ha, &agent, &s, "web").await;
    let ask = stream.next().await.expect("an elicitation request");
    assert_eq!(
        answer(&hb, &agent, &s, &ask["id"], accept("web")).await,
        StatusCode::ACCEPTED
    );
    let rest = stream.rest().await;
    assert_eq!(code(&rest[0]), None, "{}", rest[0]);
    assert_eq!(rest[0]["id"], json!(41));
    assert!(!exists(&ha, "web").await, "web was deleted through A");
}
