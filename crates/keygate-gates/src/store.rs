//! Where challenges and evidence reads live: a trait and an in-memory store.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::approval::{Approval, ApprovalQuery, ApprovalStatus, Claimed, DecidedBy};
use crate::error::GateError;

/// A one-time challenge, bound to the key, session, tool, target and arguments it was
/// issued for.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The challenge itself (32 base62 characters from the OS CSPRNG).
    pub challenge: String,
    /// The key it was issued to.
    pub key_id: String,
    /// The `Mcp-Session-Id` it was issued in.
    pub session_id: String,
    /// The gated tool, such as `service.delete`.
    pub tool: String,
    /// The exact target, such as `worker`.
    pub target: String,
    /// SHA-256 of the call's canonical arguments without `confirm`
    /// ([`Arguments::digest`](crate::Arguments::digest)).
    pub arguments_sha256: [u8; 32],
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field(
                "challenge",
                &format_args!("{}…", self.challenge.get(..4).unwrap_or_default()),
            )
            .field("key_id", &self.key_id)
            .field("session_id", &self.session_id)
            .field("tool", &self.tool)
            .field("target", &self.target)
            .field(
                "arguments_sha256",
                &format_args!("{}", Hex(&self.arguments_sha256)),
            )
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Lower-case hex, for `Debug`.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What [`GateStore::take_challenge`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Taken {
    /// The challenge was issued to the presenting key in the presenting session; it is
    /// removed and can never be taken again.
    Taken(Challenge),
    /// The challenge exists but was issued to another key or in another session; it is
    /// left in place for its owner.
    NotYours(Challenge),
    /// No such challenge (never issued, already taken, or purged).
    Unknown,
}

/// A successful call of an evidence tool for a target, by a key, in a session or in a
/// stateless request (no session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRead {
    /// The key that made the call.
    pub key_id: String,
    /// The session it was made in; `None` for a stateless request. A stateless read
    /// is its own record: it never counts for a session, nor a session's read for
    /// stateless calls.
    pub session_id: Option<String>,
    /// The evidence tool, such as `service.logs.build`.
    pub tool: String,
    /// The target it was read for, such as `api`.
    pub target: String,
    /// When it was read.
    pub at: OffsetDateTime,
}

/// What [`GateStore::evidence_read`] looks for: a read by `key_id` of `tool` for
/// `target`, in `session_id` (`None`: in a stateless request), at or after `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceQuery<'a> {
    /// The key that must have read.
    pub key_id: &'a str,
    /// The session it must have read in; `None` for a stateless read.
    pub session_id: Option<&'a str>,
    /// The evidence tool.
    pub tool: &'a str,
    /// The target it must have been read for.
    pub target: &'a str,
    /// The earliest read that counts.
    pub since: OffsetDateTime,
}

/// A refresh of a session's binding ([`GateStore::touch_session`]): by `key_id`, seen
/// at `seen_at`, live until `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch<'a> {
    /// The key the session must be bound to.
    pub key_id: &'a str,
    /// When the key was seen; the binding must be live then.
    pub seen_at: OffsetDateTime,
    /// The binding's new expiry.
    pub expires_at: OffsetDateTime,
}

/// A stateful MCP session's binding to the key whose `initialize` opened it.
///
/// The session id itself is not part of the record: it is a capability (whoever
/// presents it speaks in the session), so stores keep only its SHA-256
/// ([`session_digest`]) and someone reading them learns which key holds a session,
/// never how to join it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBinding {
    /// The key that opened the session; no other key may use it.
    pub key_id: String,
    /// When it was bound (the `initialize` answer).
    pub bound_at: OffsetDateTime,
    /// When the binding was last refreshed by a request of its key.
    pub seen_at: OffsetDateTime,
    /// When it stops counting, unless refreshed first ([`GateStore::touch_session`]).
    pub expires_at: OffsetDateTime,
    /// Whether the client declared form elicitation in its `initialize` capabilities,
    /// so that a person gate may ask its person on the call's stream. `false` for
    /// bindings recorded before this was kept.
    pub elicitation: bool,
    /// Whether the client declared URL-mode elicitation (`elicitation.url`) in its
    /// `initialize` capabilities, so that a person gate may offer the approval page as
    /// a URL elicitation. `false` for bindings recorded before this was kept.
    pub elicitation_url: bool,
}

impl SessionBinding {
    /// A binding of `key_id` made, and last seen, at `at`, live for `ttl`, of a client
    /// that declared no elicitation.
    pub fn new(key_id: impl Into<String>, at: OffsetDateTime, ttl: time::Duration) -> Self {
        Self {
            key_id: key_id.into(),
            bound_at: at,
            seen_at: at,
            expires_at: at + ttl,
            elicitation: false,
            elicitation_url: false,
        }
    }
}

/// What stores keep of an `Mcp-Session-Id`: its SHA-256, never the id (a capability).
pub fn session_digest(session_id: &str) -> [u8; 32] {
    Sha256::digest(session_id.as_bytes()).into()
}

/// Storage for challenges, evidence reads and session bindings.
///
/// Object-safe (`Arc<dyn GateStore>`); [`MemoryGateStore`] serves one process, a
/// shared database lets several gateway instances honour each other's challenges and
/// session bindings.
#[async_trait]
pub trait GateStore: Send + Sync + fmt::Debug {
    /// Stores a freshly issued challenge.
    async fn put_challenge(&self, challenge: &Challenge) -> Result<(), GateError>;

    /// Removes and returns the challenge when it was issued to `key_id` in
    /// `session_id`, atomically: of concurrent callers presenting the same challenge,
    /// at most one gets [`Taken::Taken`]. A challenge of another key or session is
    /// left in place ([`Taken::NotYours`]), so presenting it cannot burn it. Expired
    /// challenges may be returned (the caller checks expiry) or not.
    async fn take_challenge(
        &self,
        challenge: &str,
        key_id: &str,
        session_id: &str,
    ) -> Result<Taken, GateError>;

    /// Records an evidence read (a later read of the same thing replaces it).
    async fn record_evidence(&self, read: &EvidenceRead) -> Result<(), GateError>;

    /// Whether the read `query` describes was recorded.
    async fn evidence_read(&self, query: EvidenceQuery<'_>) -> Result<bool, GateError>;

    /// Binds `session_id` (kept as its SHA-256 only, see [`SessionBinding`]) to
    /// `binding.key_id`, atomically. `Ok(true)` when the session is now bound to that
    /// key: it was unbound, its binding had expired at `binding.bound_at`, or it was
    /// bound to the same key already (then the binding is replaced by `binding`).
    /// `Ok(false)` when a live binding of another key holds it; that binding is left
    /// in place, so an upstream handing out a session id twice cannot move a session
    /// from one key to another.
    async fn bind_session(
        &self,
        session_id: &str,
        binding: &SessionBinding,
    ) -> Result<bool, GateError>;

    /// The binding of `session_id` live at `now` (`expires_at` after `now`); `None`
    /// when it was never bound, was ended, or has expired.
    async fn session_binding(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionBinding>, GateError>;

    /// Refreshes the binding of `session_id` when it is bound to `touch.key_id` and
    /// live at `touch.seen_at`: sets `seen_at` and `expires_at`. Returns whether it did.
    async fn touch_session(
        &self,
        session_id: &str,
        touch: SessionTouch<'_>,
    ) -> Result<bool, GateError>;

    /// Ends the binding of `session_id` when it is bound to `key_id` (a binding of
    /// another key is left in place). Returns whether one went.
    async fn end_session(&self, session_id: &str, key_id: &str) -> Result<bool, GateError>;

    /// Stores a new approval (status [`ApprovalStatus::Pending`]).
    async fn put_approval(&self, approval: &Approval) -> Result<(), GateError>;

    /// The approval with id `id`, whatever its status.
    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, GateError>;

    /// The approvals of `tenant_id` pending at `now` (not expired), oldest first.
    async fn pending_approvals(
        &self,
        tenant_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, GateError>;

    /// How many approvals of `key_id` are pending at `now`.
    async fn count_pending_approvals(
        &self,
        key_id: &str,
        now: OffsetDateTime,
    ) -> Result<u64, GateError>;

    /// For a call of `key_id` on `tool` and `target` with canonical arguments
    /// `arguments_sha256`, in this order: an approved approval unexpired at `now` is
    /// marked [`ApprovalStatus::Used`] (closed at `now`) and returned as
    /// [`Claimed::Approved`], atomically: of concurrent claims at most one gets it; else
    /// a denied one not yet closed is closed and returned ([`Claimed::Denied`]),
    /// atomically likewise; else a pending one unexpired at `now`
    /// ([`Claimed::Pending`]); else [`Claimed::Nothing`].
    async fn claim_approval(&self, query: ApprovalQuery<'_>) -> Result<Claimed, GateError>;

    /// Sets approval `id` to `status` ([`ApprovalStatus::Approved`] or
    /// [`ApprovalStatus::Denied`]) decided by `by`, atomically and only while it is
    /// pending and unexpired at `by.at`: the updated approval, or `None` when it was not
    /// pending (or does not exist, or `status` is neither).
    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &DecidedBy,
    ) -> Result<Option<Approval>, GateError>;

    /// Records that the one-time nonce `nonce` (of an MRTR `requestState`, see
    /// [`Gates::answer_mrtr`](crate::Gates::answer_mrtr)) is used, atomically: `Ok(true)`
    /// for the first caller, `Ok(false)` when it was recorded before (a replay). Stores
    /// keep its SHA-256, and may forget it once `expires_at` has passed (the state it
    /// came in has expired by then, so it can never be presented again).
    async fn spend_nonce(&self, nonce: &str, expires_at: OffsetDateTime)
    -> Result<bool, GateError>;

    /// Forgets challenges, session bindings and spent nonces expired at `now`, evidence
    /// read before `evidence_before` and approvals that expired before `evidence_before` (kept a
    /// while after expiry so people see them as expired); returns how many went.
    async fn purge(
        &self,
        now: OffsetDateTime,
        evidence_before: OffsetDateTime,
    ) -> Result<u64, GateError>;
}

/// Key id, session id (`None`: stateless), tool, target.
type EvidenceKey = (String, Option<String>, String, String);

/// An in-memory [`GateStore`] for one process and for tests.
///
/// Expired challenges are dropped whenever a new one is stored, so the map stays
/// bounded by the challenges issued within one time-to-live. Evidence reads and
/// expired session bindings stay until [`GateStore::purge`]. Sessions are keyed by
/// the SHA-256 of their id, as in a database.
#[derive(Debug, Default)]
pub struct MemoryGateStore {
    challenges: Mutex<HashMap<String, Challenge>>,
    evidence: Mutex<HashMap<EvidenceKey, OffsetDateTime>>,
    sessions: Mutex<HashMap<[u8; 32], SessionBinding>>,
    approvals: Mutex<HashMap<String, Approval>>,
    nonces: Mutex<HashMap<[u8; 32], OffsetDateTime>>,
}

impl MemoryGateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn challenges(&self) -> MutexGuard<'_, HashMap<String, Challenge>> {
        self.challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn evidence(&self) -> MutexGuard<'_, HashMap<EvidenceKey, OffsetDateTime>> {
        self.evidence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<[u8; 32], SessionBinding>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nonces(&self) -> MutexGuard<'_, HashMap<[u8; 32], OffsetDateTime>> {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn approvals(&self) -> MutexGuard<'_, HashMap<String, Approval>> {
        self.approvals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl GateStore for MemoryGateStore {
    async fn put_challenge(&self, challenge: &Challenge) -> Result<(), GateError> {
        let mut map = self.challenges();
        // Whatever expired before this one was issued can never pass again.
        map.retain(|_, c| c.expires_at > challenge.issued_at);
        map.insert(challenge.challenge.clone(), challenge.clone());
        Ok(())
    }

    async fn take_challenge(
        &self,
        challenge: &str,
        key_id: &str,
        session_id: &str,
    ) -> Result<Taken, GateError> {
        let mut map = self.challenges();
        Ok(match map.get(challenge) {
            None => Taken::Unknown,
            Some(c) if c.key_id != key_id || c.session_id != session_id => {
                Taken::NotYours(c.clone())
            }
            Some(_) => map.remove(challenge).map_or(Taken::Unknown, Taken::Taken),
        })
    }

    async fn record_evidence(&self, read: &EvidenceRead) -> Result<(), GateError> {
        self.evidence().insert(
            (
                read.key_id.clone(),
                read.session_id.clone(),
                read.tool.clone(),
                read.target.clone(),
            ),
            read.at,
        );
        Ok(())
    }

    async fn evidence_read(&self, query: EvidenceQuery<'_>) -> Result<bool, GateError> {
        let key = (
            query.key_id.to_owned(),
            query.session_id.map(str::to_owned),
            query.tool.to_owned(),
            query.target.to_owned(),
        );
        Ok(self
            .evidence()
            .get(&key)
            .is_some_and(|at| *at >= query.since))
    }

    async fn bind_session(
        &self,
        session_id: &str,
        binding: &SessionBinding,
    ) -> Result<bool, GateError> {
        let mut map = self.sessions();
        let digest = session_digest(session_id);
        let taken = map.get(&digest).is_some_and(|held| {
            held.key_id != binding.key_id && held.expires_at > binding.bound_at
        });
        if !taken {
            map.insert(digest, binding.clone());
        }
        Ok(!taken)
    }

    async fn session_binding(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionBinding>, GateError> {
        Ok(self
            .sessions()
            .get(&session_digest(session_id))
            .filter(|b| b.expires_at > now)
            .cloned())
    }

    async fn touch_session(
        &self,
        session_id: &str,
        touch: SessionTouch<'_>,
    ) -> Result<bool, GateError> {
        let mut map = self.sessions();
        match map.get_mut(&session_digest(session_id)) {
            Some(b) if b.key_id == touch.key_id && b.expires_at > touch.seen_at => {
                b.seen_at = touch.seen_at;
                b.expires_at = touch.expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn end_session(&self, session_id: &str, key_id: &str) -> Result<bool, GateError> {
        let mut map = self.sessions();
        let digest = session_digest(session_id);
        if map.get(&digest).is_some_and(|b| b.key_id == key_id) {
            map.remove(&digest);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn put_approval(&self, approval: &Approval) -> Result<(), GateError> {
        self.approvals()
            .insert(approval.id.clone(), approval.clone());
        Ok(())
    }

    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, GateError> {
        Ok(self.approvals().get(id).cloned())
    }

    async fn pending_approvals(
        &self,
        tenant_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, GateError> {
        let mut list: Vec<Approval> = self
            .approvals()
            .values()
            .filter(|a| a.tenant_id == tenant_id && a.is_pending(now))
            .cloned()
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    async fn count_pending_approvals(
        &self,
        key_id: &str,
        now: OffsetDateTime,
    ) -> Result<u64, GateError> {
        let n = self
            .approvals()
            .values()
            .filter(|a| a.key_id == key_id && a.is_pending(now))
            .count();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn claim_approval(&self, query: ApprovalQuery<'_>) -> Result<Claimed, GateError> {
        let now = query.now;
        let mut map = self.approvals();
        let mine = |a: &&mut Approval| query.matches(a);
        if let Some(a) = map.values_mut().filter(mine).find(|a| {
            a.status == ApprovalStatus::Approved && a.expires_at > now && a.closed_at.is_none()
        }) {
            a.status = ApprovalStatus::Used;
            a.closed_at = Some(now);
            return Ok(Claimed::Approved(a.clone()));
        }
        if let Some(a) = map
            .values_mut()
            .filter(mine)
            .find(|a| a.status == ApprovalStatus::Denied && a.closed_at.is_none())
        {
            a.closed_at = Some(now);
            return Ok(Claimed::Denied(a.clone()));
        }
        Ok(map
            .values_mut()
            .filter(mine)
            .filter(|a| a.is_pending(now))
            .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .map_or(Claimed::Nothing, |a| Claimed::Pending(a.clone())))
    }

    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &DecidedBy,
    ) -> Result<Option<Approval>, GateError> {
        if !matches!(status, ApprovalStatus::Approved | ApprovalStatus::Denied) {
            return Ok(None);
        }
        let mut map = self.approvals();
        Ok(match map.get_mut(id) {
            Some(a) if a.is_pending(by.at) => {
                a.status = status;
                a.decided_by = Some(by.clone());
                Some(a.clone())
            }
            _ => None,
        })
    }

    async fn spend_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, GateError> {
        let digest: [u8; 32] = Sha256::digest(nonce.as_bytes()).into();
        let mut map = self.nonces();
        if map.contains_key(&digest) {
            return Ok(false);
        }
        map.insert(digest, expires_at);
        Ok(true)
    }

    async fn purge(
        &self,
        now: OffsetDateTime,
        evidence_before: OffsetDateTime,
    ) -> Result<u64, GateError> {
        // One statement a map: each lock is released before the next is taken.
        let mut gone = retain_counted(&mut self.nonces(), |_, expires_at| *expires_at > now);
        gone += retain_counted(&mut self.approvals(), |_, a| a.expires_at > evidence_before);
        gone += retain_counted(&mut self.challenges(), |_, c| c.expires_at > now);
        gone += retain_counted(&mut self.sessions(), |_, b| b.expires_at > now);
        gone += retain_counted(&mut self.evidence(), |_, at| *at >= evidence_before);
        Ok(u64::try_from(gone).unwrap_or(u64::MAX))
    }
}

/// Keeps the entries of `map` that `keep` accepts; returns how many went.
fn retain_counted<K, V>(map: &mut HashMap<K, V>, keep: impl FnMut(&K, &mut V) -> bool) -> usize {
    let before = map.len();
    map.retain(keep);
    before - map.len()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::MemoryGateStore;

    #[tokio::test]
    async fn the_memory_store_conforms() {
        crate::conformance::run(Arc::new(MemoryGateStore::new())).await;
    }
}
