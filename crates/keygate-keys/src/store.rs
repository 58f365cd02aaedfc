//! The traits every key store implements: [`Verifier`] (the request path) and
//! [`KeyStore`] (everything else).

use async_trait::async_trait;
use keygate_token::{KeyId, TokenFormat};

use crate::error::{StoreError, VerifyError};
use crate::model::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, NewAuditEvent, NewKey, Principal,
    Project, ProjectRef, RevokeReason, Role, Tenant, TenantId, User,
};

/// Verification of presented tokens: the one store method the authentication layer
/// calls on every request.
///
/// Every [`KeyStore`] is a `Verifier`. The layer (`keygate-http`'s `AuthLayer`) takes
/// an `Arc<dyn Verifier>`, so something that changes only how a token is verified
/// (timing it, counting calls, failing it in a test) implements this one method and
/// wraps another `Verifier`, rather than the whole store:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use keygate_keys::{Principal, Verifier, VerifyError};
///
/// struct Counting {
///     inner: Arc<dyn Verifier>,
///     calls: AtomicUsize,
/// }
///
/// #[async_trait::async_trait]
/// impl Verifier for Counting {
///     async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
///         self.calls.fetch_add(1, Ordering::Relaxed);
///         self.inner.verify(token).await
///     }
/// }
/// ```
#[async_trait]
pub trait Verifier: Send + Sync + 'static {
    /// Verifies a presented token: shape and checksum (no store access when they
    /// fail), row by public id, constant-time hash comparison, revoked, expired.
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError>;
}

/// The key of a tenant a change (a revocation, a rotation) is made to, and who makes
/// it: the `actor` of its audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChange<'a> {
    /// The tenant the key must belong to ([`StoreError::NotFound`] otherwise).
    pub tenant: &'a TenantId,
    /// The key.
    pub id: &'a KeyId,
    /// Who makes the change, as the audit log names them.
    pub actor: &'a str,
}

/// Storage and verification of tenants, users, projects, keys and the audit log.
///
/// Every method that names a tenant only ever sees that tenant's records: asking for
/// another tenant's key answers [`StoreError::NotFound`], exactly as for a key that
/// does not exist. Writes are atomic: a failed write changes nothing.
///
/// Verification is the supertrait [`Verifier`]: [`Verifier::verify`] runs on every
/// request with no cache, so a revocation is effective on the very next request on
/// every server sharing the store.
#[async_trait]
pub trait KeyStore: Verifier {
    /// Creates a tenant, its owner, its projects and the owner's user key in one
    /// transaction. Refuses with [`StoreError::Conflict`] if the tenant exists.
    async fn bootstrap(
        &self,
        format: &TokenFormat,
        request: Bootstrap,
    ) -> Result<Bootstrapped, StoreError>;

    /// Creates a tenant; [`StoreError::Conflict`] if the name is taken.
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError>;

    /// Finds a tenant by name.
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError>;

    /// Creates a user in a tenant; [`StoreError::Conflict`] if the name is taken there.
    async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError>;

    /// Creates a project in a tenant; [`StoreError::Conflict`] if the name is taken there.
    async fn create_project(&self, tenant: &TenantId, name: &str) -> Result<Project, StoreError>;

    /// Lists a tenant's projects, by name.
    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<Project>, StoreError>;

    /// The project of `tenant` whose id or name is `project`, in one indexed look-up;
    /// `None` when the tenant has none (whether or not another tenant has one, and for
    /// an unknown tenant). An id wins over a name, should a project be named like
    /// another's id.
    ///
    /// This is how a call naming a project with a key unrestricted to projects is
    /// checked against the key's tenant, so it sits on the request path: stores answer
    /// it as fast as [`Verifier::verify`].
    async fn find_project(
        &self,
        tenant: &TenantId,
        project: &str,
    ) -> Result<Option<ProjectRef>, StoreError>;

    /// Creates a key and returns its raw token, once. Only the SHA-256 hash of the
    /// token is stored. Appends a `key.created` audit event by `actor` in the same
    /// transaction.
    ///
    /// Refuses with [`StoreError::Invalid`] a user key without a user (or with a user
    /// of another tenant), a tenant key with a user, an unknown project name, or an
    /// expiry in the past.
    async fn create_key(
        &self,
        format: &TokenFormat,
        request: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError>;

    /// One key of a tenant (never its hash).
    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError>;

    /// All keys of a tenant, newest first (never a hash).
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a key on an owner's request. Idempotent: revoking a revoked key keeps
    /// the first `revoked_at` and succeeds. Appends `key.revoked` on the first
    /// revocation. [`KeyStore::revoke_key_for`] with no reason.
    async fn revoke_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        actor: &str,
    ) -> Result<ApiKey, StoreError> {
        self.revoke_key_for(KeyChange { tenant, id, actor }, None)
            .await
    }

    /// Revokes a key, recording `reason` (if any) on the key and in the detail of its
    /// `key.revoked` audit event. Idempotent: a revoked key keeps its first
    /// `revoked_at` and reason, and gets no second audit event.
    async fn revoke_key_for(
        &self,
        change: KeyChange<'_>,
        reason: Option<&RevokeReason>,
    ) -> Result<ApiKey, StoreError>;

    /// Issues a new key with the same kind, user, scopes, projects and expiry as `id`;
    /// the old key stays valid until revoked. Appends `key.rotated`.
    async fn rotate_key(
        &self,
        format: &TokenFormat,
        change: KeyChange<'_>,
    ) -> Result<CreatedKey, StoreError>;

    /// Appends an audit event.
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError>;

    /// The newest `limit` audit events of a tenant, newest first.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Checks that the store answers (for health checks).
    async fn ping(&self) -> Result<(), StoreError>;
}
