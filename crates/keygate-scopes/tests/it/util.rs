//! Shared fixtures.

use std::collections::BTreeSet;

use keygate_keys::{
    KeyId, KeyKind, Principal, ProjectId, ProjectRef, Role, TenantId, TenantRef, UserId, UserRef,
};
use keygate_scopes::Policy;

/// The agreed example policy.
pub(crate) const POLICY: &str = include_str!("data/policy.toml");

pub(crate) fn policy() -> Policy {
    Policy::from_toml_str(POLICY).expect("the example policy is valid")
}

/// A key of `kind` with `scopes`, restricted to `projects` when given.
pub(crate) fn principal(kind: KeyKind, scopes: &[&str], projects: Option<&[&str]>) -> Principal {
    Principal {
        key_id: KeyId::random().expect("randomness"),
        tenant: TenantRef {
            id: TenantId::new("tn_test"),
            name: "acme".to_owned(),
        },
        kind,
        user: (kind == KeyKind::User).then(|| UserRef {
            id: UserId::new("us_test"),
            name: "ada".to_owned(),
            role: Role::Owner,
        }),
        scopes: std::sync::Arc::new(
            scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>(),
        ),
        projects: projects.map(|ps| {
            ps.iter()
                .map(|p| ProjectRef {
                    id: ProjectId::new(format!("pj_{p}")),
                    name: (*p).to_owned(),
                })
                .collect()
        }),
        expires_at: None,
    }
}
