//! Elicitation on the stream: a stateful session's client that declared `elicitation`
//! is sent an `elicitation/create` on the SSE answer of its gated `tools/call`, and
//! answers it with a separate POST in the same session.
//!
//! The request's JSON-RPC id says which approval it asks for and is sealed to the
//! session (HMAC-SHA256 under the secret of [`Gates::with_mrtr_secret`], shared by
//! instances): the answer's POST must come in that session, by the approval's key.
//! The answer decides the approval in the gate store ([`Gates::answer_elicitation`]),
//! which is where the instance holding the stream reads it
//! ([`Gates::elicitation_outcome`]), so the POST may reach any instance sharing the
//! store. Deciding needs the approval to be pending, so an answer counts once.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::approval::{APPROVAL_ID_LEN, Approval, ApprovalStatus, DecidedBy};
use crate::decision::Decision;
use crate::error::GateError;
use crate::gates::Gates;
use crate::mrtr::{CLIENT_PERSON, MrtrAnswer};

/// What every gateway-chosen elicitation request id starts with; answers carrying such
/// an id are the gateway's, never forwarded upstream.
pub const ELICITATION_ID_PREFIX: &str = "keygate-approval-";

/// Length of the random part of an elicitation request id, in base62 characters.
const ELICITATION_NONCE_LEN: usize = 16;

/// Domain separation from MRTR states sealed under the same secret.
const DOMAIN: &[u8] = b"kge1";

/// What to send the client on the stream: an `elicitation/create` (form) with this id
/// and message, whose schema asks for the target's exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElicitationAsk {
    /// The JSON-RPC request id ([`ELICITATION_ID_PREFIX`] + approval id + nonce + seal).
    pub request_id: String,
    /// The approval the answer decides.
    pub approval_id: String,
    /// The message naming operation, target and arguments.
    pub message: String,
    /// The exact target the person must type.
    pub target: String,
    /// The gate's target argument, such as `service`.
    pub target_arg: String,
    /// When the approval (and so the wait) ends.
    pub expires_at: time::OffsetDateTime,
}

/// Where an approval asked for on the stream stands, as the waiting stream reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElicitationOutcome {
    /// Nobody decided yet.
    Pending,
    /// Approved (on the stream or the page): claim it with [`Gates::decide`].
    Approved,
    /// Denied (declined, cancelled or a wrong name, or denied on the page).
    Denied,
    /// Expired, used or gone.
    Over,
}

/// Why an answer to an elicitation request was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElicitationRefusal {
    /// Not an id this gateway issued for this session, or the approval is another
    /// key's or gone: answer as for an unknown session.
    #[error("no such elicitation request in this session")]
    NotFound,
    /// The approval was decided, used or expired already: nothing changed.
    #[error("the approval is no longer pending")]
    NotPending,
    /// The gate store failed.
    #[error(transparent)]
    Store(#[from] GateError),
}

impl Gates {
    fn elicitation_mac(
        &self,
        session_id: &str,
        approval_id: &str,
        nonce: &str,
    ) -> Option<Hmac<Sha256>> {
        let secret = self.mrtr_secret()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.bytes()).ok()?;
        for part in [
            DOMAIN,
            session_id.as_bytes(),
            approval_id.as_bytes(),
            nonce.as_bytes(),
        ] {
            // Length-prefixed, so no two splits of the same bytes seal alike.
            mac.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(part);
        }
        Some(mac)
    }

    /// The `elicitation/create` to send for an `APPROVAL_REQUIRED` decision in session
    /// `session_id`; `None` for any other decision or without a secret.
    ///
    /// # Errors
    ///
    /// [`GateError`] when the OS random source fails.
    pub fn elicitation_ask(
        &self,
        decision: &Decision,
        session_id: &str,
    ) -> Result<Option<ElicitationAsk>, GateError> {
        let Some(ask) = decision.person_ask() else {
            return Ok(None);
        };
        let nonce = keygate_token::random_base62(ELICITATION_NONCE_LEN)?;
        let Some(mac) = self.elicitation_mac(session_id, &ask.approval_id, &nonce) else {
            return Ok(None);
        };
        let seal = hex::encode(mac.finalize().into_bytes());
        Ok(Some(ElicitationAsk {
            request_id: format!("{ELICITATION_ID_PREFIX}{}-{nonce}-{seal}", ask.approval_id),
            approval_id: ask.approval_id,
            message: ask.message,
            target: ask.target,
            target_arg: decision.target_arg().to_owned(),
            expires_at: ask.expires_at,
        }))
    }

    /// The approval id an elicitation request id `request_id` was sealed for in
    /// `session_id`, or `None` when this gateway did not issue it for that session.
    pub fn elicitation_approval_id(&self, session_id: &str, request_id: &str) -> Option<String> {
        let rest = request_id.strip_prefix(ELICITATION_ID_PREFIX)?;
        let (approval_id, rest) = rest.split_once('-')?;
        let (nonce, seal) = rest.split_once('-')?;
        if approval_id.len() != APPROVAL_ID_LEN || nonce.len() != ELICITATION_NONCE_LEN {
            return None;
        }
        let given = hex::decode(seal).ok()?;
        // `verify_slice` compares in constant time: the seal makes the id unforgeable.
        self.elicitation_mac(session_id, approval_id, nonce)?
            .verify_slice(&given)
            .ok()?;
        Some(approval_id.to_owned())
    }

    /// The client's answer to elicitation request `request_id`, posted in
    /// `session_id` by key `key_id` (of user `user_id`/`user_name`, when a user key):
    /// accept with exactly the target approves the approval, anything else (decline,
    /// cancel, a wrong or missing name) denies it. Returns the decided approval.
    ///
    /// # Errors
    ///
    /// [`ElicitationRefusal::NotFound`] for an id not sealed to this session, or an
    /// approval of another key; [`ElicitationRefusal::NotPending`] when the approval
    /// was decided (an answer counts once), used or expired.
    pub async fn answer_elicitation(
        &self,
        session_id: &str,
        request_id: &str,
        key_id: &str,
        user: Option<(&str, &str)>,
        answer: &MrtrAnswer,
    ) -> Result<Approval, ElicitationRefusal> {
        let Some(approval_id) = self.elicitation_approval_id(session_id, request_id) else {
            return Err(ElicitationRefusal::NotFound);
        };
        let Some(approval) = self.store().get_approval(&approval_id).await? else {
            return Err(ElicitationRefusal::NotFound);
        };
        if approval.key_id != key_id {
            return Err(ElicitationRefusal::NotFound);
        }
        let now = self.clock().now();
        if !approval.is_pending(now) {
            return Err(ElicitationRefusal::NotPending);
        }
        let accepted =
            matches!(answer, MrtrAnswer::Accept(Some(typed)) if *typed == approval.target);
        let status = if accepted {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Denied
        };
        let by = DecidedBy {
            key_id: key_id.to_owned(),
            user_id: user.map(|(id, _)| id.to_owned()).unwrap_or_default(),
            name: user.map_or(CLIENT_PERSON, |(_, name)| name).to_owned(),
            at: now,
        };
        self.store()
            .decide_approval(&approval.id, status, &by)
            .await?
            .ok_or(ElicitationRefusal::NotPending)
    }

    /// Where approval `approval_id` stands now, for the stream waiting on it.
    ///
    /// # Errors
    ///
    /// [`GateError`] when the store fails.
    pub async fn elicitation_outcome(
        &self,
        approval_id: &str,
    ) -> Result<ElicitationOutcome, GateError> {
        let now = self.clock().now();
        Ok(match self.store().get_approval(approval_id).await? {
            Some(a) => match a.status_at(now) {
                Some(ApprovalStatus::Pending) => ElicitationOutcome::Pending,
                Some(ApprovalStatus::Approved) => ElicitationOutcome::Approved,
                Some(ApprovalStatus::Denied) => ElicitationOutcome::Denied,
                _ => ElicitationOutcome::Over,
            },
            None => ElicitationOutcome::Over,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keygate_scopes::GateSpec;

    use crate::{
        Caller, ElicitationOutcome, ElicitationRefusal, GateCall, Gates, MemoryGateStore,
        MrtrAnswer, MrtrSecret, SystemClock,
    };

    fn gates() -> Gates {
        Gates::new(Arc::new(MemoryGateStore::new()), Arc::new(SystemClock))
            .with_mrtr_secret(MrtrSecret::new(vec![7; 32]).unwrap())
    }

    async fn ask(g: &Gates, session: &str) -> crate::ElicitationAsk {
        let spec = GateSpec::approval("service", vec!["keygate".to_owned()]);
        let call = GateCall::new("agentkey0001", Some(session), "service.delete", "web")
            .with_caller(Caller::user_key("tn_1", "us_ann", "ann"));
        let d = g.decide(&spec, &call, None).await.unwrap();
        g.elicitation_ask(&d, session).unwrap().unwrap()
    }

    #[tokio::test]
    async fn an_elicitation_id_is_sealed_to_its_session_and_answered_once() {
        let g = gates();
        let a = ask(&g, "s1").await;
        assert!(a.request_id.starts_with(super::ELICITATION_ID_PREFIX));
        assert_eq!(
            g.elicitation_approval_id("s1", &a.request_id).as_deref(),
            Some(a.approval_id.as_str())
        );
        assert_eq!(g.elicitation_approval_id("s2", &a.request_id), None);
        let mut forged = a.request_id.clone();
        forged.pop();
        forged.push('0');
        if forged != a.request_id {
            assert_eq!(g.elicitation_approval_id("s1", &forged), None);
        }
        let other = Gates::new(g.store().clone(), Arc::new(SystemClock))
            .with_mrtr_secret(MrtrSecret::new(vec![8; 32]).unwrap());
        assert_eq!(other.elicitation_approval_id("s1", &a.request_id), None);

        let yes = MrtrAnswer::Accept(Some("web".to_owned()));
        for (session, key) in [("s2", "agentkey0001"), ("s1", "otherkey0001")] {
            assert!(matches!(
                g.answer_elicitation(session, &a.request_id, key, None, &yes)
                    .await,
                Err(ElicitationRefusal::NotFound)
            ));
        }
        assert_eq!(
            g.elicitation_outcome(&a.approval_id).await.unwrap(),
            ElicitationOutcome::Pending
        );
        let decided = g
            .answer_elicitation("s1", &a.request_id, "agentkey0001", None, &yes)
            .await
            .unwrap();
        assert_eq!(decided.decided_by.unwrap().name, crate::CLIENT_PERSON);
        assert_eq!(
            g.elicitation_outcome(&a.approval_id).await.unwrap(),
            ElicitationOutcome::Approved
        );
        assert!(matches!(
            g.answer_elicitation(
                "s1",
                &a.request_id,
                "agentkey0001",
                None,
                &MrtrAnswer::Decline
            )
            .await,
            Err(ElicitationRefusal::NotPending)
        ));
    }

    #[tokio::test]
    async fn only_the_exact_name_approves() {
        for answer in [
            MrtrAnswer::Accept(Some("Web".to_owned())),
            MrtrAnswer::Accept(None),
            MrtrAnswer::Decline,
            MrtrAnswer::Cancel,
        ] {
            let g = gates();
            let a = ask(&g, "s1").await;
            g.answer_elicitation(
                "s1",
                &a.request_id,
                "agentkey0001",
                Some(("us_ann", "ann")),
                &answer,
            )
            .await
            .unwrap();
            assert_eq!(
                g.elicitation_outcome(&a.approval_id).await.unwrap(),
                ElicitationOutcome::Denied,
                "{answer:?}"
            );
        }
    }
}
