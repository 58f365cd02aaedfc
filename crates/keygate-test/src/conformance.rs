//! The one conformance suite every key store runs.
//!
//! Each case takes a [`Harness`]; [`conformance_tests!`](crate::conformance_tests)
//! turns every case into a `#[tokio::test]` per backend. A case panics when the store
//! does not behave as [`KeyStore`] says.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use keygate_keys::{
    Bootstrap, KeyChange, KeyId, KeyKind, KeyStore, NameError, NewAuditEvent, NewKey, ProjectRef,
    Refill, RefillInterval, RevokeReason, Role, StoreError, TenantId, TokenFormat, VerifyError,
};
use time::{Duration, OffsetDateTime};

/// What a backend offers beyond the trait, for tests only.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// Sets a key's expiry (possibly in the past) behind the store's back.
    async fn set_expires_at(&self, id: &KeyId, at: OffsetDateTime);
    /// Every stored value of every table as text, or `None` when the backend keeps
    /// nothing outside the process.
    async fn dump(&self) -> Option<String>;
    /// A value that changes whenever key `id` (or, coarser, anything) is written:
    /// how a case sees that a verification wrote nothing.
    async fn write_mark(&self, id: &KeyId) -> String;
}

/// A store under test and its [`Hooks`].
pub struct Harness {
    /// The store.
    pub store: Arc<dyn KeyStore>,
    /// What the backend offers beyond the trait.
    pub hooks: Box<dyn Hooks>,
    /// The store's clock (given to it with `with_clock`).
    pub clock: Arc<crate::ManualClock>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

/// The token format every case uses (the default one).
pub fn format() -> TokenFormat {
    TokenFormat::default()
}

/// A tenant with an owner and projects `shop` and `ops`.
#[derive(Debug)]
pub struct Setup {
    /// The tenant's id.
    pub tenant: TenantId,
    /// The owner.
    pub owner: keygate_keys::User,
    /// The owner's raw key.
    pub owner_token: String,
}

/// Bootstraps `tenant` (owner `alice`, projects `shop` and `ops`) in `store`.
pub async fn setup(store: &dyn KeyStore, tenant: &str) -> Setup {
    let b = store
        .bootstrap(
            &format(),
            Bootstrap::new(
                tenant.to_owned(),
                "alice",
                &["shop", "ops"],
                vec!["keys:admin".to_owned(), "services:read".to_owned()],
                "owner key",
            ),
        )
        .await
        .unwrap();
    Setup {
        tenant: b.tenant.id,
        owner: b.owner,
        owner_token: b.key.token.expose().to_owned(),
    }
}

/// A request for a user key of `s`'s owner with `scopes` and `projects`.
pub fn user_key(s: &Setup, scopes: &[&str], projects: Option<&[&str]>) -> NewKey {
    NewKey {
        tenant_id: s.tenant.clone(),
        kind: KeyKind::User,
        user_id: Some(s.owner.id.clone()),
        name: "ci".to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        projects: projects.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
        expires_at: None,
        remaining: None,
        refill: None,
    }
}

/// A request for a tenant key of `s` restricted to `shop`, expiring in 30 days.
pub fn tenant_key(s: &Setup) -> NewKey {
    NewKey {
        tenant_id: s.tenant.clone(),
        kind: KeyKind::Tenant,
        user_id: None,
        name: "agent".to_owned(),
        scopes: vec!["services:read".to_owned()],
        projects: Some(vec!["shop".to_owned()]),
        expires_at: Some(OffsetDateTime::now_utc() + Duration::days(30)),
        remaining: None,
        refill: None,
    }
}

use crate::forge::with_checksum;

/// The replacement of key `id` of `tenant`, rotated by actor `u`.
async fn rotated(h: &Harness, tenant: &TenantId, id: &KeyId) -> keygate_keys::CreatedKey {
    h.store
        .rotate_key(
            &format(),
            KeyChange {
                tenant,
                id,
                actor: "u",
            },
        )
        .await
        .unwrap()
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, VerifyError>) -> bool {
    matches!(r, Err(VerifyError::NotFound))
}

/// Case: create then verify.
pub async fn create_then_verify(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let owner = h.store.verify(&s.owner_token).await.unwrap();
    assert_eq!(owner.tenant.name, "acme");
    assert_eq!(owner.kind, KeyKind::User);
    assert!(owner.is_owner());
    assert_eq!(owner.user.as_ref().unwrap().name, "alice");
    assert_eq!(owner.user.as_ref().unwrap().role, Role::Owner);
    assert!(owner.has_scope("keys:admin"));
    assert_eq!(owner.projects, None);

    let created = h
        .store
        .create_key(&format(), tenant_key(&s), "test")
        .await
        .unwrap();
    assert_eq!(created.key.kind, KeyKind::Tenant);
    assert_eq!(created.key.prefix, "kg_tk_");
    assert_eq!(created.key.id, created.token.id());
    let p = h.store.verify(created.token.expose()).await.unwrap();
    assert_eq!(p.key_id, created.key.id);
    assert_eq!(p.kind, KeyKind::Tenant);
    assert_eq!(p.user, None);
    assert_eq!(p.tenant.id, s.tenant);
    assert_eq!(p.expires_at, created.key.expires_at);
    // A second verify (no cache) answers the same.
    assert_eq!(h.store.verify(created.token.expose()).await.unwrap(), p);
    h.store.ping().await.unwrap();
}

/// Case: wrong secret garbage and bad checksum are not found.
pub async fn wrong_secret_garbage_and_bad_checksum_are_not_found(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let raw = s.owner_token.clone();
    // Same id, different secret, valid checksum.
    let body_start = raw.len() - 48;
    let mut secret: Vec<u8> = raw.as_bytes()[body_start + 12..body_start + 42].to_vec();
    secret[0] = if secret[0] == b'a' { b'b' } else { b'a' };
    let forged = with_checksum(&format!(
        "{}{}",
        &raw[..body_start + 12],
        std::str::from_utf8(&secret).unwrap()
    ));
    assert_eq!(forged.len(), raw.len());
    assert!(
        keygate_keys::Token::parse(&forged).is_ok(),
        "forged token is well-formed"
    );
    assert!(is_not_found(h.store.verify(&forged).await));
    // Same secret under another brand (valid checksum): the hash differs.
    let rebrand = with_checksum(&format!("zz{}", &raw[2..raw.len() - 6]));
    assert!(is_not_found(h.store.verify(&rebrand).await));
    // Bad checksum.
    let mut bad = raw.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
    assert!(is_not_found(
        h.store.verify(std::str::from_utf8(&bad).unwrap()).await
    ));
    // Garbage and an unknown id.
    for g in ["", "Bearer x", "kg_uk_", "hello world", &"x".repeat(5000)] {
        assert!(is_not_found(h.store.verify(g).await), "{g:?}");
    }
    let unknown = format().generate(KeyKind::User).unwrap();
    assert!(is_not_found(h.store.verify(unknown.expose()).await));
    // The real one still works.
    h.store.verify(&raw).await.unwrap();
}

/// Case: revoke then revoked and idempotent.
pub async fn revoke_then_revoked_and_idempotent(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let k = create(h, user_key(&s, &["a"], None)).await;
    h.store.verify(k.token.expose()).await.unwrap();
    let first = h.store.revoke_key(&s.tenant, &k.key.id, "u").await.unwrap();
    let at = first.revoked_at.expect("revoked_at set");
    assert!(matches!(
        h.store.verify(k.token.expose()).await,
        Err(VerifyError::Revoked)
    ));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = h.store.revoke_key(&s.tenant, &k.key.id, "u").await.unwrap();
    assert_eq!(again.revoked_at, Some(at), "first revoked_at kept");
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(got.revoked_at, Some(at));
    assert_eq!(
        got.status(OffsetDateTime::now_utc()),
        keygate_keys::KeyStatus::Revoked
    );
    let audit = h.store.list_audit(&s.tenant, 100).await.unwrap();
    let revokes = audit
        .iter()
        .filter(|e| e.action == "key.revoked" && e.target == k.key.id.as_str())
        .count();
    assert_eq!(revokes, 1, "only the first revoke is audited");
    // Other keys are unaffected.
    h.store.verify(&s.owner_token).await.unwrap();
}

/// Case: a revocation with a reason (a leak report) records it on the key and in the
/// audit event; a revoked key keeps its first reason (none, here) and gets no second
/// event.
pub async fn revoke_reason_is_kept_with_the_first_revocation(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let leaked = RevokeReason::Leaked {
        url: "https://github.com/o/r/blob/main/.env".to_owned(),
    };
    let k = create(h, user_key(&s, &["a"], None)).await;
    assert_eq!(k.key.revoked_reason, None);
    let got = revoke_as_leaked(h, &s.tenant, &k.key.id, &leaked).await;
    assert!(got.revoked_at.is_some());
    assert_eq!(got.revoked_reason.as_deref(), Some("leaked"));
    let listed = h.store.list_keys(&s.tenant).await.unwrap();
    let listed = listed.iter().find(|x| x.id == k.key.id).unwrap();
    assert_eq!(listed.revoked_reason.as_deref(), Some("leaked"));
    assert!(matches!(
        h.store.verify(k.token.expose()).await,
        Err(VerifyError::Revoked)
    ));
    // Reported again: nothing changes, no second event.
    let again = revoke_as_leaked(h, &s.tenant, &k.key.id, &leaked).await;
    assert_eq!(again.revoked_at, got.revoked_at);
    let audit = h.store.list_audit(&s.tenant, 100).await.unwrap();
    let events: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "key.revoked" && e.target == k.key.id.as_str())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor, "leak-report:github");
    assert_eq!(
        events[0].detail,
        serde_json::json!({"reason": "leaked", "url": "https://github.com/o/r/blob/main/.env"})
    );
    // Revoked on request first: a later leak report keeps that (no reason).
    let m = create(h, user_key(&s, &["a"], None)).await;
    h.store.revoke_key(&s.tenant, &m.key.id, "u").await.unwrap();
    let kept = revoke_as_leaked(h, &s.tenant, &m.key.id, &leaked).await;
    assert_eq!(kept.revoked_reason, None);
    let audit = h.store.list_audit(&s.tenant, 100).await.unwrap();
    let manual = audit
        .iter()
        .find(|e| e.action == "key.revoked" && e.target == m.key.id.as_str())
        .unwrap();
    assert_eq!(manual.detail, serde_json::json!({}));
}

/// Case: expiry and revoked wins.
pub async fn expiry_and_revoked_wins(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let mut req = user_key(&s, &["a"], None);
    req.expires_at = Some(OffsetDateTime::now_utc() - Duration::seconds(1));
    assert!(matches!(
        h.store.create_key(&format(), req.clone(), "u").await,
        Err(StoreError::Invalid(_))
    ));
    req.expires_at = Some(OffsetDateTime::now_utc() + Duration::hours(1));
    let k = create(h, req).await;
    h.store.verify(k.token.expose()).await.unwrap();
    h.hooks
        .set_expires_at(&k.key.id, OffsetDateTime::now_utc() - Duration::seconds(1))
        .await;
    assert!(matches!(
        h.store.verify(k.token.expose()).await,
        Err(VerifyError::Expired)
    ));
    // A wrong secret for an expired key is still "not found".
    h.store.revoke_key(&s.tenant, &k.key.id, "u").await.unwrap();
    assert!(matches!(
        h.store.verify(k.token.expose()).await,
        Err(VerifyError::Revoked)
    ));
}

/// Case: scopes and projects round trip.
pub async fn scopes_and_projects_round_trip(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let k = create(
        h,
        user_key(
            &s,
            &["z:w", "a:r", "a:r", " m "],
            Some(&["shop", "ops", "shop"]),
        ),
    )
    .await;
    assert_eq!(k.key.scopes, vec!["a:r", "m", "z:w"]);
    let names: Vec<_> = k
        .key
        .projects
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, vec!["ops", "shop"]);
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(got, k.key);
    let p = h.store.verify(k.token.expose()).await.unwrap();
    assert_eq!(
        *p.scopes,
        ["a:r", "m", "z:w"]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(p.projects, k.key.projects);
    assert_eq!(p.restricted_project("shop").unwrap().name, "shop");
    assert!(p.restricted_project("billing").is_none());
    let all = h.store.list_projects(&s.tenant).await.unwrap();
    let shop = all.iter().find(|p| p.name == "shop").unwrap();
    assert_eq!(p.restricted_project(shop.id.as_str()).unwrap().id, shop.id);
    // Empty project list = no project at all (not "all").
    let none = create(h, user_key(&s, &[], Some(&[]))).await;
    assert_eq!(none.key.projects, Some(vec![]));
    let pn = h.store.verify(none.token.expose()).await.unwrap();
    assert_eq!(pn.projects, Some(vec![]));
    assert!(pn.scopes.is_empty());
    // Unknown project.
    assert!(matches!(
        h.store.create_key(&format(), user_key(&s, &[], Some(&["nope"])), "u").await,
        Err(StoreError::Invalid(m)) if m.contains("nope")
    ));
}

/// Case: rotation copies and keeps old.
pub async fn rotation_copies_and_keeps_old(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let old = create(h, tenant_key(&s)).await;
    let new = rotated(h, &s.tenant, &old.key.id).await;
    assert_ne!(new.key.id, old.key.id);
    assert_eq!(new.key.kind, old.key.kind);
    assert_eq!(new.key.user_id, old.key.user_id);
    assert_eq!(new.key.scopes, old.key.scopes);
    assert_eq!(new.key.projects, old.key.projects);
    assert_eq!(new.key.expires_at, old.key.expires_at);
    assert_eq!(new.key.prefix, "kg_tk_");
    h.store.verify(old.token.expose()).await.unwrap();
    let p = h.store.verify(new.token.expose()).await.unwrap();
    assert_eq!(p.kind, KeyKind::Tenant);
    let audit = h.store.list_audit(&s.tenant, 100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "key.rotated" && e.target == old.key.id.as_str())
    );
    // Rotating a revoked key is refused.
    h.store
        .revoke_key(&s.tenant, &old.key.id, "u")
        .await
        .unwrap();
    assert!(matches!(
        h.store
            .rotate_key(
                &format(),
                KeyChange {
                    tenant: &s.tenant,
                    id: &old.key.id,
                    actor: "u",
                },
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    h.store.verify(new.token.expose()).await.unwrap();
    // Newest first.
    let list = h.store.list_keys(&s.tenant).await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].id, new.key.id);
    assert_eq!(list[1].id, old.key.id);
}

/// Case: tenant isolation.
pub async fn tenant_isolation(h: &Harness) {
    let a = setup(&*h.store, "acme").await;
    let b = setup(&*h.store, "globex").await;
    let ka = create(h, tenant_key(&a)).await;
    let id = ka.key.id;
    assert!(matches!(
        h.store.get_key(&b.tenant, &id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        h.store.revoke_key(&b.tenant, &id, "x").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        h.store
            .rotate_key(
                &format(),
                KeyChange {
                    tenant: &b.tenant,
                    id: &id,
                    actor: "x",
                },
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let listed = h.store.list_keys(&b.tenant).await.unwrap();
    assert!(listed.iter().all(|k| k.tenant_id == b.tenant));
    assert_eq!(listed.len(), 1);
    h.store.verify(ka.token.expose()).await.unwrap();
    // Projects are per tenant: b has its own `shop`, a key of b cannot name a's.
    let pa = h.store.list_projects(&a.tenant).await.unwrap();
    let pb = h.store.list_projects(&b.tenant).await.unwrap();
    assert_eq!(pa.len(), 2);
    assert!(pa.iter().all(|p| pb.iter().all(|q| q.id != p.id)));
    // Audit logs are per tenant.
    let audit_b = h.store.list_audit(&b.tenant, 100).await.unwrap();
    assert!(audit_b.iter().all(|e| e.tenant_id == b.tenant));
    assert!(audit_b.iter().all(|e| e.target != id.as_str()));
    // Unknown tenant.
    let ghost = TenantId::new("tn_ghost");
    assert!(matches!(
        h.store.get_key(&ghost, &id).await,
        Err(StoreError::NotFound)
    ));
}

/// Case: bootstrap refuses existing and is atomic.
pub async fn bootstrap_refuses_existing_and_is_atomic(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let again = h
        .store
        .bootstrap(
            &format(),
            Bootstrap::new("acme", "mallory", &[], vec!["keys:admin".to_owned()], "k"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(h.store.list_keys(&s.tenant).await.unwrap().len(), 1);
    // Fails half-way (an empty key name is invalid after tenant, user and projects were
    // written): nothing is left behind, and the name stays free.
    let failed = h
        .store
        .bootstrap(
            &format(),
            Bootstrap::new("initech", "bob", &["p"], vec![], "  "),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Invalid(_))), "{failed:?}");
    assert!(h.store.tenant_by_name("initech").await.unwrap().is_none());
    let ok = setup(&*h.store, "initech").await;
    assert_eq!(h.store.list_projects(&ok.tenant).await.unwrap().len(), 2);
    let t = h.store.tenant_by_name("acme").await.unwrap().unwrap();
    assert_eq!(t.id, s.tenant);
    // Plain creates conflict too.
    assert!(matches!(
        h.store.create_tenant("acme").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        h.store.create_project(&s.tenant, "shop").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        h.store.create_user(&s.tenant, "alice", Role::Member).await,
        Err(StoreError::Conflict(_))
    ));
}

/// Case: user key needs user of same tenant.
pub async fn user_key_needs_user_of_same_tenant(h: &Harness) {
    let a = setup(&*h.store, "acme").await;
    let b = setup(&*h.store, "globex").await;
    let mut req = user_key(&a, &[], None);
    req.user_id = Some(b.owner.id.clone());
    assert!(matches!(
        h.store.create_key(&format(), req.clone(), "u").await,
        Err(StoreError::Invalid(_))
    ));
    req.user_id = None;
    assert!(matches!(
        h.store.create_key(&format(), req, "u").await,
        Err(StoreError::Invalid(_))
    ));
    let mut tk = tenant_key(&a);
    tk.user_id = Some(a.owner.id.clone());
    assert!(matches!(
        h.store.create_key(&format(), tk, "u").await,
        Err(StoreError::Invalid(_))
    ));
    // A member's key.
    let bob = h
        .store
        .create_user(&a.tenant, "bob", Role::Member)
        .await
        .unwrap();
    let mut req = user_key(&a, &["x"], None);
    req.user_id = Some(bob.id.clone());
    let k = create(h, req).await;
    let p = h.store.verify(k.token.expose()).await.unwrap();
    assert_eq!(p.user.unwrap().role, Role::Member);
    assert!(!h.store.list_keys(&a.tenant).await.unwrap().is_empty());
}

/// Case: concurrent creates and verifies.
pub async fn concurrent_creates_and_verifies(h: &Harness) {
    let s = Arc::new(setup(&*h.store, "acme").await);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = h.store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut req = user_key(&s, &["a"], Some(&["shop"]));
            req.name = format!("k{i}");
            let k = store.create_key(&format(), req, "u").await.unwrap();
            for _ in 0..10 {
                let p = store.verify(k.token.expose()).await.unwrap();
                assert_eq!(p.key_id, k.key.id);
                store.verify(&s.owner_token).await.unwrap();
            }
            if i % 4 == 0 {
                store.revoke_key(&s.tenant, &k.key.id, "u").await.unwrap();
                assert!(matches!(
                    store.verify(k.token.expose()).await,
                    Err(VerifyError::Revoked)
                ));
            }
            k.key.id
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 32);
    let list = h.store.list_keys(&s.tenant).await.unwrap();
    assert_eq!(list.len(), 33);
    assert_eq!(list.iter().filter(|k| k.revoked_at.is_some()).count(), 8);
}

/// Case: raw token never stored.
pub async fn raw_token_never_stored(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let k = create(h, tenant_key(&s)).await;
    let r = rotated(h, &s.tenant, &k.key.id).await;
    h.store.verify(k.token.expose()).await.unwrap();
    h.store.revoke_key(&s.tenant, &k.key.id, "u").await.unwrap();
    let Some(dump) = h.hooks.dump().await else {
        return;
    };
    assert!(dump.contains(k.key.id.as_str()), "dump sees the key rows");
    for raw in [s.owner_token.as_str(), k.token.expose(), r.token.expose()] {
        let body = &raw[raw.len() - 48..];
        let secret = &body[12..42];
        assert!(!dump.contains(raw), "raw token stored");
        assert!(!dump.contains(secret), "secret stored");
        assert!(!dump.contains(&body[12..]), "secret+checksum stored");
    }
}

/// Case: audit events recorded.
pub async fn audit_events_recorded(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let k = h
        .store
        .create_key(&format(), tenant_key(&s), "key:owner")
        .await
        .unwrap();
    h.store
        .revoke_key(&s.tenant, &k.key.id, "key:owner")
        .await
        .unwrap();
    h.store
        .append_audit(NewAuditEvent {
            tenant_id: s.tenant.clone(),
            actor: format!("key:{}", k.key.id),
            action: "gate.confirmation_required".to_owned(),
            target: "service.delete:worker".to_owned(),
            detail: serde_json::json!({"challenge_expires_in": 300}),
        })
        .await
        .unwrap();
    let audit = h.store.list_audit(&s.tenant, 100).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "gate.confirmation_required",
            "key.revoked",
            "key.created",
            "key.created"
        ]
    );
    assert!(
        audit
            .windows(2)
            .all(|w| w[0].id > w[1].id && w[0].at >= w[1].at)
    );
    assert_eq!(
        audit[0].detail,
        serde_json::json!({"challenge_expires_in": 300})
    );
    assert_eq!(audit[1].actor, "key:owner");
    assert_eq!(audit[2].target, k.key.id.as_str());
    assert_eq!(audit[2].detail["kind"], "tenant");
    assert_eq!(audit[3].actor, "bootstrap");
    assert_eq!(h.store.list_audit(&s.tenant, 2).await.unwrap().len(), 2);
    // No raw token in any detail.
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains(k.token.expose()));
}

/// Case: last used is recorded.
pub async fn last_used_is_recorded(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let k = create(h, tenant_key(&s)).await;
    assert_eq!(k.key.last_used_at, None);
    h.store.verify(k.token.expose()).await.unwrap();
    // The write happens off the request path: poll for it (bounded).
    let mut seen = None;
    for _ in 0..200 {
        seen = h
            .store
            .get_key(&s.tenant, &k.key.id)
            .await
            .unwrap()
            .last_used_at;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let at = seen.expect("last_used_at written within 2 s");
    assert!(at >= k.key.created_at);
}

/// Case: find project stays within the tenant.
pub async fn find_project_stays_within_the_tenant(h: &Harness) {
    let a = setup(&*h.store, "acme").await;
    let b = setup(&*h.store, "globex").await;
    let projects_a = h.store.list_projects(&a.tenant).await.unwrap();
    let projects_b = h.store.list_projects(&b.tenant).await.unwrap();
    let as_ref = |p: &keygate_keys::Project| ProjectRef {
        id: p.id.clone(),
        name: p.name.clone(),
    };
    let shop_a = as_ref(projects_a.iter().find(|p| p.name == "shop").unwrap());
    let shop_b = as_ref(projects_b.iter().find(|p| p.name == "shop").unwrap());
    let ops_a = as_ref(projects_a.iter().find(|p| p.name == "ops").unwrap());
    assert_ne!(shop_a.id, shop_b.id);
    // By name and by id, within the tenant.
    let find = |t: &TenantId, p: &str| {
        let (store, t, p) = (h.store.clone(), t.clone(), p.to_owned());
        async move { store.find_project(&t, &p).await.unwrap() }
    };
    assert_eq!(find(&a.tenant, "shop").await, Some(shop_a.clone()));
    assert_eq!(
        find(&a.tenant, shop_a.id.as_str()).await,
        Some(shop_a.clone())
    );
    assert_eq!(find(&b.tenant, "shop").await, Some(shop_b.clone()));
    // Another tenant's project, by id, is not found: the same answer as for no project.
    assert_eq!(find(&a.tenant, shop_b.id.as_str()).await, None);
    assert_eq!(find(&b.tenant, ops_a.id.as_str()).await, None);
    assert_eq!(find(&a.tenant, "billing").await, None);
    h.store.create_project(&b.tenant, "billing").await.unwrap();
    assert_eq!(find(&a.tenant, "billing").await, None);
    assert!(find(&b.tenant, "billing").await.is_some());
    // Exact: no trimming, no case folding, nothing for an empty name.
    assert_eq!(find(&a.tenant, " shop").await, None);
    assert_eq!(find(&a.tenant, "SHOP").await, None);
    assert_eq!(find(&a.tenant, "").await, None);
    // An unknown tenant has no projects.
    assert_eq!(find(&TenantId::new("tn_ghost"), "shop").await, None);
    // An id wins over a project named like it.
    let decoy = h
        .store
        .create_project(&a.tenant, ops_a.id.as_str())
        .await
        .unwrap();
    assert_eq!(
        find(&a.tenant, ops_a.id.as_str()).await,
        Some(ops_a.clone())
    );
    assert_eq!(
        find(&a.tenant, decoy.id.as_str()).await.map(|p| p.name),
        Some(ops_a.id.to_string())
    );
}

/// Case: names with invisible characters are refused.
pub async fn names_with_invisible_characters_are_refused(h: &Harness) {
    fn invalid<T>(r: &Result<T, StoreError>, what: &str, c: char) -> bool {
        matches!(r, Err(StoreError::InvalidName { what: w, reason })
            if *w == what && reason.character() == c)
    }
    let r = h.store.create_tenant("acme\u{202E}").await;
    assert!(invalid(&r, "tenant", '\u{202E}'), "{r:?}");
    let r = h.store.create_tenant("ac\u{0007}me").await;
    assert!(
        matches!(
            &r,
            Err(StoreError::InvalidName {
                reason: NameError::Control('\u{0007}'),
                ..
            })
        ),
        "{r:?}"
    );
    // Bootstrap refuses a tenant, owner or project name, atomically.
    for (tenant, owner, project, what, c) in [
        ("ac\u{200B}me", "alice", "shop", "tenant", '\u{200B}'),
        ("acme", "ali\u{202E}ce", "shop", "user", '\u{202E}'),
        ("acme", "alice", "sh\u{2066}op", "project", '\u{2066}'),
    ] {
        let r = h
            .store
            .bootstrap(
                &format(),
                Bootstrap::new(tenant, owner, &[project], vec![], "k"),
            )
            .await;
        assert!(invalid(&r, what, c), "{r:?}");
        assert!(h.store.tenant_by_name("acme").await.unwrap().is_none());
    }
    let s = setup(&*h.store, "acme").await;
    let r = h.store.create_project(&s.tenant, "sh\u{200D}op").await;
    assert!(invalid(&r, "project", '\u{200D}'), "{r:?}");
    let r = h
        .store
        .create_user(&s.tenant, "bob\u{FEFF}", Role::Member)
        .await;
    assert!(invalid(&r, "user", '\u{FEFF}'), "{r:?}");
    let mut req = tenant_key(&s);
    req.name = "deploy\u{202E}kcab".to_owned();
    let r = h.store.create_key(&format(), req, "u").await;
    assert!(invalid(&r, "key", '\u{202E}'), "{r:?}");
    let r = StoreError::InvalidName {
        what: "key",
        reason: NameError::Invisible('\u{202E}'),
    };
    assert_eq!(
        r.to_string(),
        "a key name must not contain invisible or bidirectional formatting characters (found U+202E)"
    );
    // Nothing of it was stored; ordinary non-ASCII names are fine.
    assert_eq!(h.store.list_projects(&s.tenant).await.unwrap().len(), 2);
    assert_eq!(h.store.list_keys(&s.tenant).await.unwrap().len(), 1);
    h.store
        .create_project(&s.tenant, "Zürich café")
        .await
        .unwrap();
}

/// A user key of `s`'s owner limited to `remaining` verified requests.
fn limited_key(s: &Setup, remaining: u64, refill: Option<Refill>) -> NewKey {
    NewKey {
        remaining: Some(remaining),
        refill,
        ..user_key(s, &["a"], None)
    }
}

/// Creates the key `req` asks for (actor `u`).
/// Revokes key `id` of `tenant` as a leak report does, for `reason`.
async fn revoke_as_leaked(
    h: &Harness,
    tenant: &TenantId,
    id: &KeyId,
    reason: &RevokeReason,
) -> keygate_keys::ApiKey {
    let change = KeyChange {
        tenant,
        id,
        actor: "leak-report:github",
    };
    h.store.revoke_key_for(change, Some(reason)).await.unwrap()
}

async fn create(h: &Harness, req: NewKey) -> keygate_keys::CreatedKey {
    h.store.create_key(&format(), req, "u").await.unwrap()
}

fn is_usage_exceeded<T: std::fmt::Debug>(r: &Result<T, VerifyError>) -> bool {
    matches!(r, Err(VerifyError::UsageExceeded { .. }))
}

/// Case: a usage-limited key passes exactly `remaining` times; revoked and expired
/// keys are refused as before and spend nothing; a rotation keeps what is left.
pub async fn usage_limited_key_passes_exactly_remaining_times(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    for (remaining, refill, why) in [
        (Some(0), None, "remaining must be above zero"),
        (
            None,
            Some(Refill::new(RefillInterval::Daily, 5)),
            "a refill needs remaining",
        ),
        (
            Some(3),
            Some(Refill::new(RefillInterval::Daily, 0)),
            "amount must be above zero",
        ),
        (Some(u64::MAX), None, "at most"),
    ] {
        let req = NewKey {
            remaining,
            refill,
            ..user_key(&s, &["a"], None)
        };
        match h.store.create_key(&format(), req, "u").await {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains(why), "{msg}"),
            other => panic!("{remaining:?} {refill:?}: {other:?}"),
        }
    }
    let k = create(h, limited_key(&s, 3, None)).await;
    assert_eq!(k.key.remaining, Some(3));
    assert_eq!(k.key.refill, None);
    for left in [2, 1, 0] {
        let p = h.store.verify(k.token.expose()).await.unwrap();
        assert_eq!(p.key_id, k.key.id);
        let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
        assert_eq!(got.remaining, Some(left));
    }
    for _ in 0..3 {
        match h.store.verify(k.token.expose()).await {
            Err(VerifyError::UsageExceeded {
                principal,
                retry_after,
            }) => {
                assert_eq!(principal.key_id, k.key.id);
                assert_eq!(retry_after, None, "never refilled");
            }
            other => panic!("{other:?}"),
        }
    }
    let listed = h.store.list_keys(&s.tenant).await.unwrap();
    let listed = listed.iter().find(|l| l.id == k.key.id).unwrap();
    assert_eq!(listed.remaining, Some(0), "never below zero");
    // The owner's key has no limit and shows none.
    assert_eq!(
        h.store.verify(&s.owner_token).await.unwrap().tenant.id,
        s.tenant
    );
    assert!(listed.remaining.is_some());
    assert!(
        h.store
            .list_keys(&s.tenant)
            .await
            .unwrap()
            .iter()
            .any(|l| l.remaining.is_none())
    );

    // Revoked and expired keys are refused as before, and spend nothing.
    let revoked = create(h, limited_key(&s, 2, None)).await;
    h.store
        .revoke_key(&s.tenant, &revoked.key.id, "u")
        .await
        .unwrap();
    let expired = create(h, limited_key(&s, 2, None)).await;
    h.hooks
        .set_expires_at(
            &expired.key.id,
            OffsetDateTime::now_utc() - Duration::hours(1),
        )
        .await;
    for _ in 0..3 {
        assert!(matches!(
            h.store.verify(revoked.token.expose()).await,
            Err(VerifyError::Revoked)
        ));
        assert!(matches!(
            h.store.verify(expired.token.expose()).await,
            Err(VerifyError::Expired)
        ));
    }
    for key in [&revoked, &expired] {
        let got = h.store.get_key(&s.tenant, &key.key.id).await.unwrap();
        assert_eq!(got.remaining, Some(2), "a refused key spent nothing");
    }
    // A wrong secret for the key's id spends nothing either.
    let other = create(h, limited_key(&s, 1, None)).await;
    let raw = other.token.expose();
    let body = raw.len() - 48;
    let forged = crate::with_checksum(&format!("{}{}", &raw[..body + 12], "z".repeat(30)));
    assert!(is_not_found(h.store.verify(&forged).await));
    h.store.verify(raw).await.unwrap();
    assert!(is_usage_exceeded(&h.store.verify(raw).await));

    // A rotation keeps the limit: the new key starts with what the old one has left.
    let refill = Refill::new(RefillInterval::Monthly, 7);
    let old = create(h, limited_key(&s, 3, Some(refill))).await;
    assert_eq!(old.key.refill, Some(refill));
    h.store.verify(old.token.expose()).await.unwrap();
    let new = rotated(h, &s.tenant, &old.key.id).await;
    assert_eq!(new.key.remaining, Some(2));
    assert_eq!(new.key.refill, Some(refill));
    let got = h.store.get_key(&s.tenant, &new.key.id).await.unwrap();
    assert_eq!((got.remaining, got.refill), (Some(2), Some(refill)));
    h.store.verify(new.token.expose()).await.unwrap();
    h.store.verify(new.token.expose()).await.unwrap();
    assert!(is_usage_exceeded(&h.store.verify(new.token.expose()).await));
    // The old key keeps its own count until it is revoked.
    let got = h.store.get_key(&s.tenant, &old.key.id).await.unwrap();
    assert_eq!(got.remaining, Some(2));
}

/// Case: an exhausted key with a refill says when it refills, and passes again once
/// the store's clock is past that, with `remaining` set back to the refill's amount.
pub async fn usage_limited_key_refills_after_its_interval(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let hour = std::num::NonZeroU64::new(3600).unwrap();
    let refill = Refill::new(RefillInterval::Every(hour), 5);
    let k = create(h, limited_key(&s, 2, Some(refill))).await;
    h.store.verify(k.token.expose()).await.unwrap();
    h.store.verify(k.token.expose()).await.unwrap();
    let wait = match h.store.verify(k.token.expose()).await {
        Err(VerifyError::UsageExceeded { retry_after, .. }) => retry_after.unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(
        wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(3600),
        "{wait:?}"
    );
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(got.remaining, Some(0));
    // Just before the next period nothing changes; just after, the refill is due.
    h.clock
        .advance(Duration::try_from(wait).unwrap() - Duration::seconds(1));
    assert!(is_usage_exceeded(&h.store.verify(k.token.expose()).await));
    h.clock.advance(Duration::seconds(1));
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(
        got.remaining,
        Some(5),
        "a due refill is shown before it is spent"
    );
    h.store.verify(k.token.expose()).await.unwrap();
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(
        got.remaining,
        Some(4),
        "set back to the amount, then one spent"
    );
    // Within the same period no second refill: four more pass, then none.
    for _ in 0..4 {
        h.store.verify(k.token.expose()).await.unwrap();
    }
    assert!(is_usage_exceeded(&h.store.verify(k.token.expose()).await));
    // A refill sets `remaining` to the amount, whatever was left.
    h.clock.advance(Duration::hours(1));
    h.store.verify(k.token.expose()).await.unwrap();
    h.clock.advance(Duration::hours(1));
    h.store.verify(k.token.expose()).await.unwrap();
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(got.remaining, Some(4), "refills are not added up");
}

/// Polls until `id`'s `last_used_at` is written (bounded): after that, verifying it
/// again within a minute writes nothing of its own.
async fn wait_for_last_used(h: &Harness, tenant: &TenantId, id: &KeyId) {
    for _ in 0..200 {
        let key = h.store.get_key(tenant, id).await.unwrap();
        if key.last_used_at.is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("last_used_at not written within 2 s");
}

/// Case: verifying a key without a usage limit writes nothing (its read path stays a
/// read); verifying a usage-limited key does write.
pub async fn key_without_a_usage_limit_writes_nothing_on_verify(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let unlimited = create(h, user_key(&s, &["a"], None)).await;
    let limited = create(h, limited_key(&s, 100, None)).await;
    for k in [&unlimited, &limited] {
        h.store.verify(k.token.expose()).await.unwrap();
        wait_for_last_used(h, &s.tenant, &k.key.id).await;
    }
    let before = h.hooks.write_mark(&unlimited.key.id).await;
    for _ in 0..20 {
        h.store.verify(unlimited.token.expose()).await.unwrap();
    }
    let after = h.hooks.write_mark(&unlimited.key.id).await;
    assert_eq!(
        before, after,
        "a verification of a key without a limit wrote"
    );
    let got = h.store.get_key(&s.tenant, &unlimited.key.id).await.unwrap();
    assert_eq!(got.remaining, None);

    let before = h.hooks.write_mark(&limited.key.id).await;
    h.store.verify(limited.token.expose()).await.unwrap();
    let after = h.hooks.write_mark(&limited.key.id).await;
    assert_ne!(before, after, "the mark sees a spend");
}

/// Case: 64 concurrent verifications of a key with 10 left: exactly 10 pass.
pub async fn concurrent_verifies_spend_exactly_what_is_left(h: &Harness) {
    let s = setup(&*h.store, "acme").await;
    let k = create(h, limited_key(&s, 10, None)).await;
    let token = Arc::new(k.token.expose().to_owned());
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, token, start) = (h.store.clone(), token.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            store.verify(&token).await
        }));
    }
    let (mut passed, mut exceeded) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => passed += 1,
            Err(VerifyError::UsageExceeded { .. }) => exceeded += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((passed, exceeded), (10, 54));
    let got = h.store.get_key(&s.tenant, &k.key.id).await.unwrap();
    assert_eq!(got.remaining, Some(0));
}
