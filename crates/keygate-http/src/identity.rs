//! Identity headers handed to the upstream in place of the raw token.

use bytes::BytesMut;
use http::header::{AUTHORIZATION, InvalidHeaderValue};
use http::{HeaderMap, HeaderName, HeaderValue};
use keygate_keys::{Principal, ProjectId};

/// `X-Keygate-Key-Id`: the verified key's public id.
pub const X_KEYGATE_KEY_ID: HeaderName = HeaderName::from_static("x-keygate-key-id");
/// `X-Keygate-Tenant`: the key's tenant id.
pub const X_KEYGATE_TENANT: HeaderName = HeaderName::from_static("x-keygate-tenant");
/// `X-Keygate-Actor`: `user` or `tenant`.
pub const X_KEYGATE_ACTOR: HeaderName = HeaderName::from_static("x-keygate-actor");
/// `X-Keygate-User`: the issuing user's id (user keys only).
pub const X_KEYGATE_USER: HeaderName = HeaderName::from_static("x-keygate-user");
/// `X-Keygate-Project`: the id of the project a call names, once the gateway has
/// resolved it within the key's tenant (only on calls that name one).
pub const X_KEYGATE_PROJECT: HeaderName = HeaderName::from_static("x-keygate-project");

/// Header names are stored lowercase, so this catches every spelling a client used.
const PREFIX: &str = "x-keygate-";

/// The identity headers for `principal`: key id, tenant id, actor, and the user id
/// for user keys.
///
/// # Errors
///
/// Fails only if an id holds a control character, which no keygate store produces;
/// callers should refuse the request rather than forward it without identity.
pub fn identity_headers(
    principal: &Principal,
) -> Result<Vec<(HeaderName, HeaderValue)>, InvalidHeaderValue> {
    let key = principal.key_id.as_str();
    let tenant = principal.tenant.id.as_str();
    let user = principal.user.as_ref().map_or("", |u| u.id.as_str());
    // The values are slices of one buffer: one allocation for all of them (and one
    // when the buffer is first shared), where a value each would cost two, once made
    // and once cloned onto the request. This runs on every authenticated request.
    let mut buf = BytesMut::with_capacity(key.len() + tenant.len() + user.len());
    for id in [key, tenant, user] {
        buf.extend_from_slice(id.as_bytes());
    }
    let buf = buf.freeze();
    let value =
        |start: usize, id: &str| HeaderValue::from_maybe_shared(buf.slice(start..start + id.len()));
    let mut out = Vec::with_capacity(4);
    out.push((X_KEYGATE_KEY_ID, value(0, key)?));
    out.push((X_KEYGATE_TENANT, value(key.len(), tenant)?));
    out.push((
        X_KEYGATE_ACTOR,
        HeaderValue::from_static(principal.kind.actor()),
    ));
    if principal.user.is_some() {
        out.push((X_KEYGATE_USER, value(key.len() + tenant.len(), user)?));
    }
    Ok(out)
}

/// The `X-Keygate-Project` header naming `project`, for a call that names a project of
/// the key's tenant. Set it beside [`identity_headers`] only once the project was
/// resolved (a restricted key's own project, or one found in the key's tenant).
///
/// # Errors
///
/// As [`identity_headers`]: only an id holding a control character fails.
pub fn project_header(
    project: &ProjectId,
) -> Result<(HeaderName, HeaderValue), InvalidHeaderValue> {
    Ok((X_KEYGATE_PROJECT, HeaderValue::from_str(project.as_str())?))
}

/// The identity headers [`AuthLayer`](crate::AuthLayer) set on a request, kept in the
/// request's extensions beside the [`Principal`]: for a handler that forwards them
/// (the MCP gateway does), so that they are built once per request, by the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders(Vec<(HeaderName, HeaderValue)>);

impl IdentityHeaders {
    /// The headers, in the order [`identity_headers`] gives them.
    #[must_use]
    pub fn as_slice(&self) -> &[(HeaderName, HeaderValue)] {
        &self.0
    }

    /// The headers, taken.
    #[must_use]
    pub fn into_vec(self) -> Vec<(HeaderName, HeaderValue)> {
        self.0
    }
}

/// [`strip_identity`], then the [`identity_headers`] of `principal`, returned as
/// [`IdentityHeaders`] (for the request's extensions) and set on `headers` as well when
/// `on_request` ([`apply_identity`]).
pub(crate) fn apply_identity_kept(
    headers: &mut HeaderMap,
    principal: &Principal,
    on_request: bool,
) -> Result<IdentityHeaders, InvalidHeaderValue> {
    strip_identity(headers);
    let identity = identity_headers(principal)?;
    if on_request {
        for (name, value) in &identity {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(IdentityHeaders(identity))
}

/// Removes every client-supplied `X-Keygate-*` header (any case) and the
/// `Authorization` header from `headers`.
pub fn strip_identity(headers: &mut HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(PREFIX))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
    headers.remove(AUTHORIZATION);
}

/// Replaces whatever identity the client claimed with the verified one: first
/// [`strip_identity`] (every `X-Keygate-*` header and `Authorization`), then the
/// [`identity_headers`] of `principal`.
///
/// # Errors
///
/// As [`identity_headers`]; on error the headers are already stripped and no
/// identity header is set.
pub fn apply_identity(
    headers: &mut HeaderMap,
    principal: &Principal,
) -> Result<(), InvalidHeaderValue> {
    apply_identity_kept(headers, principal, true).map(drop)
}
