//! An in-process store for tests and examples.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use keygate_token::{KeyId, TokenFormat};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::{StoreError, VerifyError};
use crate::hash::TokenHash;
use crate::last_used::LastUsed;
use crate::model::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, NewAuditEvent, NewKey, Principal,
    Project, ProjectId, ProjectRef, RevokeReason, Role, Tenant, TenantId, TenantRef, User, UserId,
    UserRef,
};
use crate::records::{self, PreparedKey};
use crate::store::{KeyChange, KeyStore, Verifier};
use crate::verify::{KeyRow, Usage, verify_with};

/// A [`KeyStore`] in process memory: nothing survives the process.
///
/// Meant for tests and examples. It follows exactly the same rules as the durable
/// stores (the same conformance suite runs against it) and, like them, stores only
/// the hash of each token.
#[derive(Debug)]
pub struct MemoryStore {
    state: RwLock<State>,
    last_used: LastUsed,
    clock: Arc<dyn Clock>,
    /// Write-lock acquisitions, for [`MemoryStore::writes_for_test`].
    writes: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            last_used: LastUsed::default(),
            clock: crate::clock::system(),
            writes: AtomicU64::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    users: HashMap<UserId, User>,
    projects: HashMap<ProjectId, Project>,
    keys: HashMap<KeyId, StoredKey>,
    /// Insertion order of keys, for "newest first".
    next_seq: u64,
    audit: Vec<AuditEvent>,
}

#[derive(Debug, Clone)]
struct StoredKey {
    seq: u64,
    key: ApiKey,
    hash: TokenHash,
    /// What `verify` returns, built once at insert: tenants and users never change
    /// once created, so only `expires_at` (set fresh from `key`) can differ. Saves
    /// two map lookups and a sort of the scopes on every verification.
    principal: Principal,
    /// The refill period of the last refill (or of creation), with a refill.
    refill_period: Option<i64>,
}

impl StoredKey {
    /// The record as shown at `now`: a due refill counted in `remaining`.
    fn shown(&self, now: OffsetDateTime) -> ApiKey {
        let mut key = self.key.clone();
        key.remaining =
            crate::verify::remaining_at(key.remaining, key.refill, self.refill_period, now);
        key
    }

    /// Spends one of a usage-limited key's requests, refilling first when the refill
    /// period `period` is past the stored one; `false` when none is left.
    fn spend(&mut self, period: Option<i64>) -> bool {
        let Some(left) = self.key.remaining else {
            return true;
        };
        let refill = match (self.key.refill, period, self.refill_period) {
            (Some(refill), Some(now), Some(last)) if now > last => Some((refill.amount, now)),
            _ => None,
        };
        let left = refill.map_or(left, |(amount, _)| amount);
        if left == 0 {
            return false;
        }
        self.key.remaining = Some(left - 1);
        if let Some((_, now)) = refill {
            self.refill_period = Some(now);
        }
        true
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// This store, reading the time of verification (expiry, usage refills) from
    /// `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Test hook: sets the expiry of a key, bypassing the "must be in the future"
    /// rule, so tests can see an expired key without waiting.
    #[doc(hidden)]
    pub fn set_expires_at_for_test(&self, id: &KeyId, at: Option<OffsetDateTime>) {
        if let Some(k) = self.write().keys.get_mut(id) {
            k.key.expires_at = at.map(records::truncate);
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Test hook: how many times the store took its write lock (every change does),
    /// so tests can see that verifying a key without a usage limit writes nothing.
    #[doc(hidden)]
    pub fn writes_for_test(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn tenant(&self, id: &TenantId) -> Result<&Tenant, StoreError> {
        self.tenants.get(id).ok_or(StoreError::NotFound)
    }

    fn key_of(&self, tenant: &TenantId, id: &KeyId) -> Result<&StoredKey, StoreError> {
        self.keys
            .get(id)
            .filter(|k| &k.key.tenant_id == tenant)
            .ok_or(StoreError::NotFound)
    }

    fn insert_tenant(&mut self, name: &str) -> Result<Tenant, StoreError> {
        let name = records::check_name("tenant", name)?;
        if self.tenants.values().any(|t| t.name == name) {
            return Err(StoreError::Conflict(format!("tenant `{name}`")));
        }
        let tenant = records::new_tenant(name)?;
        self.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(tenant)
    }

    /// Checks `name` for a new `what` of `tenant`: the tenant exists, the name is
    /// valid and no entry of `existing` (tenant, name) in that tenant has it.
    fn free_name<'a>(
        &'a self,
        tenant: &TenantId,
        what: &'static str,
        name: &str,
        mut existing: impl Iterator<Item = (&'a TenantId, &'a str)>,
    ) -> Result<String, StoreError> {
        self.tenant(tenant)?;
        let name = records::check_name(what, name)?;
        if existing.any(|(t, n)| t == tenant && n == name) {
            return Err(StoreError::Conflict(format!("{what} `{name}`")));
        }
        Ok(name)
    }

    fn insert_user(
        &mut self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let users = self.users.values().map(|u| (&u.tenant_id, u.name.as_str()));
        let name = self.free_name(tenant, "user", name, users)?;
        let user = records::new_user(tenant, name, role)?;
        self.users.insert(user.id.clone(), user.clone());
        Ok(user)
    }

    fn insert_project(&mut self, tenant: &TenantId, name: &str) -> Result<Project, StoreError> {
        let projects = self
            .projects
            .values()
            .map(|p| (&p.tenant_id, p.name.as_str()));
        let name = self.free_name(tenant, "project", name, projects)?;
        let project = records::new_project(tenant, name)?;
        self.projects.insert(project.id.clone(), project.clone());
        Ok(project)
    }

    /// Checks the tenant, user and projects of `key` and inserts it with its audit
    /// event. Nothing is changed on error.
    fn insert_key(
        &mut self,
        key: PreparedKey,
        actor: &str,
        extra_audit: Option<NewAuditEvent>,
    ) -> Result<CreatedKey, StoreError> {
        self.tenant(&key.tenant_id)?;
        if let Some(user) = &key.user_id
            && self
                .users
                .get(user)
                .is_none_or(|u| u.tenant_id != key.tenant_id)
        {
            return Err(records::foreign_user());
        }
        let projects = records::resolve_projects(key.projects.as_deref(), |name| {
            Ok(self
                .projects
                .values()
                .find(|p| p.tenant_id == key.tenant_id && p.name == name)
                .map(|p| p.id.clone()))
        })?;
        let record = key.record(projects);
        let refill_period = key.refill_period;
        if self.keys.contains_key(&record.id) {
            return Err(StoreError::Conflict(format!("key `{}`", record.id)));
        }
        let principal = self.principal_of(&record)?;
        self.next_seq += 1;
        self.keys.insert(
            record.id,
            StoredKey {
                seq: self.next_seq,
                key: record.clone(),
                hash: key.hash,
                principal,
                refill_period,
            },
        );
        let detail = records::created_detail(&record);
        self.push_audit(NewAuditEvent {
            tenant_id: record.tenant_id.clone(),
            actor: actor.to_owned(),
            action: "key.created".to_owned(),
            target: record.id.to_string(),
            detail,
        });
        if let Some(event) = extra_audit {
            self.push_audit(event);
        }
        Ok(CreatedKey {
            key: record,
            token: key.token,
        })
    }

    fn push_audit(&mut self, event: NewAuditEvent) {
        let id = i64::try_from(self.audit.len()).unwrap_or(i64::MAX - 1) + 1;
        self.audit.push(AuditEvent {
            id,
            at: records::now(),
            tenant_id: event.tenant_id,
            actor: event.actor,
            action: event.action,
            target: event.target,
            detail: event.detail,
        });
    }

    /// The principal `key` stands for (its tenant and user must exist).
    fn principal_of(&self, key: &ApiKey) -> Result<Principal, StoreError> {
        let tenant = self.tenant(&key.tenant_id)?;
        let user = match &key.user_id {
            None => None,
            Some(uid) => {
                let u = self.users.get(uid).ok_or(StoreError::NotFound)?;
                Some(UserRef {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    role: u.role,
                })
            }
        };
        Ok(Principal {
            key_id: key.id,
            tenant: TenantRef {
                id: tenant.id.clone(),
                name: tenant.name.clone(),
            },
            kind: key.kind,
            user,
            scopes: Arc::new(key.scopes.iter().cloned().collect::<BTreeSet<_>>()),
            projects: key.projects.clone(),
            expires_at: key.expires_at,
        })
    }

    fn key_row(&self, id: &KeyId) -> Option<KeyRow> {
        let stored = self.keys.get(id)?;
        let mut principal = stored.principal.clone();
        principal.expires_at = stored.key.expires_at;
        Some(KeyRow {
            hash: stored.hash,
            revoked: stored.key.revoked_at.is_some(),
            principal,
            usage: stored.key.remaining.map(|_| Usage {
                refill: stored.key.refill,
            }),
        })
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn bootstrap(
        &self,
        format: &TokenFormat,
        request: Bootstrap,
    ) -> Result<Bootstrapped, StoreError> {
        let mut state = self.write();
        // Work on a copy: all of it or none of it.
        let mut next = State {
            tenants: state.tenants.clone(),
            users: state.users.clone(),
            projects: state.projects.clone(),
            keys: state.keys.clone(),
            next_seq: state.next_seq,
            audit: state.audit.clone(),
        };
        let tenant = next.insert_tenant(&request.tenant)?;
        let owner = next.insert_user(&tenant.id, &request.owner, Role::Owner)?;
        let mut projects = Vec::new();
        for name in records::normalise(request.projects) {
            projects.push(next.insert_project(&tenant.id, &name)?);
        }
        let prepared = records::prepare_key(
            format,
            records::bootstrap_key(&tenant.id, &owner.id, request.key_name, request.scopes),
        )?;
        let key = next.insert_key(prepared, "bootstrap", None)?;
        *state = next;
        Ok(Bootstrapped {
            tenant,
            owner,
            projects,
            key,
        })
    }

    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        self.write().insert_tenant(name)
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self
            .read()
            .tenants
            .values()
            .find(|t| t.name == name)
            .cloned())
    }

    async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        self.write().insert_user(tenant, name, role)
    }

    async fn create_project(&self, tenant: &TenantId, name: &str) -> Result<Project, StoreError> {
        self.write().insert_project(tenant, name)
    }

    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<Project>, StoreError> {
        let state = self.read();
        state.tenant(tenant)?;
        let mut list: Vec<Project> = state
            .projects
            .values()
            .filter(|p| &p.tenant_id == tenant)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn find_project(
        &self,
        tenant: &TenantId,
        project: &str,
    ) -> Result<Option<ProjectRef>, StoreError> {
        let state = self.read();
        let of_tenant = |p: &&Project| &p.tenant_id == tenant;
        let found = state
            .projects
            .get(&ProjectId::new(project))
            .filter(of_tenant)
            .or_else(|| {
                state
                    .projects
                    .values()
                    .filter(of_tenant)
                    .find(|p| p.name == project)
            });
        Ok(found.map(|p| ProjectRef {
            id: p.id.clone(),
            name: p.name.clone(),
        }))
    }

    async fn create_key(
        &self,
        format: &TokenFormat,
        request: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        let prepared = records::prepare_key(format, request)?;
        self.write().insert_key(prepared, actor, None)
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError> {
        Ok(self.read().key_of(tenant, id)?.shown(self.clock.now()))
    }

    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let state = self.read();
        state.tenant(tenant)?;
        let mut list: Vec<&StoredKey> = state
            .keys
            .values()
            .filter(|k| &k.key.tenant_id == tenant)
            .collect();
        list.sort_by_key(|k| std::cmp::Reverse(k.seq));
        let now = self.clock.now();
        Ok(list.into_iter().map(|k| k.shown(now)).collect())
    }

    async fn revoke_key_for(
        &self,
        change: KeyChange<'_>,
        reason: Option<&RevokeReason>,
    ) -> Result<ApiKey, StoreError> {
        let KeyChange { tenant, id, .. } = change;
        let mut state = self.write();
        state.key_of(tenant, id)?;
        let first = {
            let stored = state.keys.get_mut(id).ok_or(StoreError::NotFound)?;
            if stored.key.revoked_at.is_none() {
                stored.key.revoked_at = Some(records::now());
                stored.key.revoked_reason = reason.map(|r| r.as_str().to_owned());
                true
            } else {
                false
            }
        };
        if first {
            state.push_audit(records::revoked_event(change, reason));
        }
        Ok(state.key_of(tenant, id)?.shown(self.clock.now()))
    }

    async fn rotate_key(
        &self,
        format: &TokenFormat,
        change: KeyChange<'_>,
    ) -> Result<CreatedKey, StoreError> {
        let KeyChange { tenant, id, actor } = change;
        let mut state = self.write();
        let old = state.key_of(tenant, id)?.shown(self.clock.now());
        let prepared = records::prepare_rotation(format, &old)?;
        let new_id = prepared.token.id();
        let rotated = records::rotated_event(change, new_id);
        state.insert_key(prepared, actor, Some(rotated))
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        let mut state = self.write();
        state.tenant(&event.tenant_id)?;
        state.push_audit(event);
        Ok(())
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self
            .read()
            .audit
            .iter()
            .rev()
            .filter(|e| &e.tenant_id == tenant)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl Verifier for MemoryStore {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let principal = verify_with(
            token,
            &*self.clock,
            |id| async move { Ok(self.read().key_row(&id)) },
            // Under the map's write lock: the check and the decrement are one step.
            |id, period| async move {
                Ok(self
                    .write()
                    .keys
                    .get_mut(&id)
                    .is_some_and(|k| k.spend(period)))
            },
        )
        .await?;
        if self.last_used.due(principal.key_id)
            && let Some(stored) = self.write().keys.get_mut(&principal.key_id)
        {
            stored.key.last_used_at = Some(records::now());
        }
        Ok(principal)
    }
}
