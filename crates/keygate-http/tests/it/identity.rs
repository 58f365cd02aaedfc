//! Identity headers: spoofed ones removed, verified ones set, the token not forwarded.

use http::StatusCode;
use keygate_http::{X_KEYGATE_PROJECT, apply_identity, identity_headers, project_header};

use crate::support::{Fixture, bearer, send};

/// What `/echo` answers `token` with: asserts a 200.
async fn echoed(fx: &Fixture, token: &str) -> String {
    let a = fx.echo(token).await;
    assert_eq!(a.status, StatusCode::OK);
    a.text().to_owned()
}

#[tokio::test]
async fn user_key_identity_reaches_the_handler() {
    let fx = Fixture::new().await;
    let expected = format!(
        "x-keygate-actor: user\nx-keygate-key-id: {}\nx-keygate-tenant: {}\nx-keygate-user: {}\nprincipal: true",
        fx.boot.key.key.id, fx.boot.tenant.id, fx.boot.owner.id
    );
    assert_eq!(echoed(&fx, fx.user_token()).await, expected);
}

#[tokio::test]
async fn tenant_key_has_no_user_header() {
    let fx = Fixture::new().await;
    let expected = format!(
        "x-keygate-actor: tenant\nx-keygate-key-id: {}\nx-keygate-tenant: {}\nprincipal: true",
        fx.tenant_key.key.id, fx.boot.tenant.id
    );
    assert_eq!(echoed(&fx, fx.tenant_token()).await, expected);
}

#[tokio::test]
async fn spoofed_identity_headers_are_stripped() {
    let fx = Fixture::new().await;
    let spoofed = [
        ("X-Keygate-Tenant", "tn_someone_else"),
        ("x-keygate-user", "us_admin"),
        ("X-KEYGATE-ACTOR", "user"),
        ("X-Keygate-Role", "owner"),
        ("x-keygate-key-id", "AAAAAAAAAAAA"),
    ];
    // A tenant key: the spoofed X-Keygate-User must not survive.
    let a = send(fx.app(), "/echo", &[&bearer(fx.tenant_token())], &spoofed).await;
    assert_eq!(a.status, StatusCode::OK);
    let body = a.text();
    assert!(!body.contains("tn_someone_else"), "{body}");
    assert!(!body.contains("us_admin"), "{body}");
    assert!(!body.contains("x-keygate-role"), "{body}");
    assert!(!body.contains("x-keygate-user"), "{body}");
    assert!(!body.contains("AAAAAAAAAAAA"), "{body}");
    assert!(body.contains("x-keygate-actor: tenant"), "{body}");
    assert!(!body.contains("authorization"), "{body}");
}

#[tokio::test]
async fn authorization_is_not_forwarded() {
    let fx = Fixture::new().await;
    let text = echoed(&fx, fx.user_token()).await;
    assert!(!text.contains("authorization"));
    assert!(!text.contains(fx.user_token()));
}

#[tokio::test]
async fn apply_identity_replaces_headers() {
    let fx = Fixture::new().await;
    let principal = fx.store_principal().await;
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer x".parse().unwrap());
    headers.insert("x-keygate-tenant", "evil".parse().unwrap());
    headers.append("x-keygate-tenant", "evil2".parse().unwrap());
    headers.insert("x-other", "kept".parse().unwrap());
    apply_identity(&mut headers, &principal).unwrap();
    assert!(headers.get("authorization").is_none());
    assert_eq!(headers.get_all("x-keygate-tenant").iter().count(), 1);
    assert_eq!(headers["x-keygate-tenant"], principal.tenant.id.as_str());
    assert_eq!(headers["x-other"], "kept");
    assert_eq!(identity_headers(&principal).unwrap().len(), 4);
}

#[tokio::test]
async fn the_layer_keeps_the_identity_it_set_for_handlers_that_forward_it() {
    let fx = Fixture::new().await;
    let principal = fx.store_principal().await;
    let expected: Vec<String> = identity_headers(&principal)
        .unwrap()
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
        .collect();
    let a = send(
        fx.app(),
        "/forwarded",
        &[&bearer(fx.user_token())],
        &[("x-keygate-user", "spoofed")],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), expected.join("\n"));
}

#[tokio::test]
async fn a_spoofed_project_header_is_stripped_and_only_set_for_a_resolved_project() {
    let fx = Fixture::new().await;
    let spoofed = [("X-Keygate-Project", "pj_someone_else")];
    let a = send(fx.app(), "/echo", &[&bearer(fx.user_token())], &spoofed).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.text().contains("x-keygate-project"), "{}", a.text());
    let principal = fx.store_principal().await;
    assert!(
        identity_headers(&principal)
            .unwrap()
            .iter()
            .all(|(name, _)| name != X_KEYGATE_PROJECT),
        "the project is per call, not per key"
    );
    let (name, value) = project_header(&keygate_keys::ProjectId::new("pj_abc")).unwrap();
    assert_eq!(name.as_str(), "x-keygate-project");
    assert_eq!(value, "pj_abc");
    assert!(project_header(&keygate_keys::ProjectId::new("pj_\n")).is_err());
}

impl Fixture {
    async fn store_principal(&self) -> keygate_keys::Principal {
        use keygate_keys::Verifier;
        self.store.verify(self.user_token()).await.unwrap()
    }
}

#[tokio::test]
async fn identity_in_extensions_only_sets_none_on_the_request_and_still_strips() {
    let fx = Fixture::new().await;
    let layer = keygate_http::AuthLayer::new(fx.store.clone()).identity_in_extensions_only();
    let app = crate::support::routes().layer(layer);
    let spoofed = [
        ("X-Keygate-Tenant", "tn_someone_else"),
        ("x-keygate-user", "us_admin"),
    ];
    // The handler sees no X-Keygate-* header and no Authorization: the client's are
    // removed and the verified ones are not set.
    let echoed = send(app.clone(), "/echo", &[&bearer(fx.user_token())], &spoofed).await;
    assert_eq!(echoed.status, StatusCode::OK);
    assert_eq!(echoed.text(), "principal: true");
    // The verified ones are in the extensions, for the handler to send on.
    let kept = send(app, "/forwarded", &[&bearer(fx.user_token())], &spoofed).await;
    assert_eq!(kept.status, StatusCode::OK);
    let expected = format!(
        "x-keygate-key-id: {}\nx-keygate-tenant: {}\nx-keygate-actor: user\nx-keygate-user: {}",
        fx.boot.key.key.id, fx.boot.tenant.id, fx.boot.owner.id
    );
    assert_eq!(kept.text(), expected);
}
