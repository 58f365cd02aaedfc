//! Random interleavings of sessions, keys, tools, targets and calls.

use std::collections::HashSet;

use keygate_gates::{Confirm, GateCall, InvalidReason, Outcome};
use keygate_scopes::GateSpec;
use proptest::prelude::*;
use time::Duration;

use crate::util::{delete_gate, fixture};

const KEYS: [&str; 2] = ["k1", "k2"];
const SESSIONS: [Option<&str>; 3] = [Some("s1"), Some("s2"), None];
const TOOLS: [&str; 2] = ["service.delete", "db.delete"];
const TARGETS: [&str; 4] = ["worker", "api", "Worker", "keygate"];

#[derive(Debug, Clone)]
enum Confirmation {
    None,
    /// The n-th challenge issued so far (modulo), with a target choice.
    Issued(usize, usize),
    Made,
    /// The n-th challenge issued so far (modulo), presented exactly as issued.
    Replay(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Call {
        key: usize,
        session: usize,
        tool: usize,
        target: usize,
        confirm: Confirmation,
    },
    Wait(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..2usize, 0..3usize, 0..2usize, 0..4usize, prop_oneof![
            1 => Just(Confirmation::None),
            4 => (any::<usize>(), 0..4usize).prop_map(|(i, t)| Confirmation::Issued(i, t)),
            1 => Just(Confirmation::Made),
            4 => any::<usize>().prop_map(Confirmation::Replay),
        ])
            .prop_map(|(key, session, tool, target, confirm)| Step::Call { key, session, tool, target, confirm }),
        1 => (1..200i64).prop_map(Step::Wait),
    ]
}

/// A challenge as issued: its binding and when it expires.
struct Issued {
    challenge: String,
    key: &'static str,
    session: &'static str,
    tool: &'static str,
    target: &'static str,
    expires_at: time::OffsetDateTime,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Nothing passes without a challenge issued in the same session for the same key,
    /// tool and target, still unexpired, and no challenge passes twice.
    #[test]
    fn only_a_fresh_matching_challenge_passes_and_only_once(steps in prop::collection::vec(step(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let f = fixture();
            let spec: GateSpec = delete_gate();
            let mut issued: Vec<Issued> = Vec::new();
            let mut used: HashSet<String> = HashSet::new();
            // Challenges taken from the store: every presentation that got past the
            // local checks (session, confirm.target) spends it, whatever the outcome.
            let mut spent: HashSet<String> = HashSet::new();
            for step in steps {
                let (key, session, tool, target, confirm) = match step {
                    Step::Wait(s) => { f.clock.advance(Duration::seconds(s)); continue; }
                    Step::Call { key, session, tool, target, confirm } =>
                        (KEYS[key], SESSIONS[session], TOOLS[tool], TARGETS[target], confirm),
                };
                // A replay re-presents a challenge with exactly its binding.
                let replay = match confirm {
                    Confirmation::Replay(i) if !issued.is_empty() => Some(i % issued.len()),
                    _ => None,
                };
                let (key, session, tool, target) = match replay {
                    Some(i) => (issued[i].key, Some(issued[i].session), issued[i].tool, issued[i].target),
                    None => (key, session, tool, target),
                };
                let mut call = GateCall::new(key, session, tool, target);
                let presented = match confirm {
                    Confirmation::None => None,
                    Confirmation::Made => Some("0".repeat(32)),
                    Confirmation::Issued(i, t) if !issued.is_empty() => {
                        let c = issued[i % issued.len()].challenge.clone();
                        call = call.with_confirm(Confirm::new(c.clone(), TARGETS[t]));
                        Some(c)
                    }
                    Confirmation::Replay(_) => replay.map(|i| {
                        let c = issued[i].challenge.clone();
                        call = call.clone().with_confirm(Confirm::new(c.clone(), issued[i].target));
                        c
                    }),
                    Confirmation::Issued(..) => None,
                };
                if let (Some(c), keygate_gates::ConfirmArg::Absent) = (&presented, &call.confirm) {
                    call = call.with_confirm(Confirm::new(c.clone(), target));
                }
                let now = keygate_gates::Clock::now(&*f.clock);
                let d = f.gates.decide(&spec, &call, None).await.expect("decide");
                // Liveness: an exact replay of a fresh, unused challenge passes.
                if let Some(i) = replay {
                    let fresh = now < issued[i].expires_at && !spent.contains(&issued[i].challenge);
                    prop_assert_eq!(d.is_allowed(), fresh, "{:?}", d.outcome());
                }
                if let Some(c) = &presented {
                    let taken = match d.outcome() {
                        Outcome::Allow { .. } => true,
                        Outcome::ConfirmationInvalid { reason } => !matches!(
                            reason,
                            InvalidReason::NoSession | InvalidReason::TargetMismatch { .. }
                        ),
                        _ => false,
                    };
                    if taken {
                        spent.insert(c.clone());
                    }
                }
                match d.outcome() {
                    Outcome::Allow { confirmed } => {
                        prop_assert!(*confirmed);
                        let c = presented.expect("allowed only with a confirm");
                        let i = issued.iter().find(|i| i.challenge == c).expect("allowed only with an issued challenge");
                        prop_assert_eq!(Some(i.session), session);
                        prop_assert_eq!(i.key, key);
                        prop_assert_eq!(i.tool, tool);
                        prop_assert_eq!(i.target, target);
                        prop_assert!(now < i.expires_at, "expired challenge passed");
                        prop_assert!(used.insert(c), "a challenge passed twice");
                        prop_assert!(!target.eq_ignore_ascii_case("keygate"));
                    }
                    Outcome::ConfirmationRequired { challenge, expires_at } => {
                        prop_assert!(presented.is_none());
                        prop_assert!(issued.iter().all(|i| i.challenge != *challenge), "challenge reissued");
                        issued.push(Issued {
                            challenge: challenge.clone(),
                            key,
                            session: session.expect("issued only within a session"),
                            tool,
                            target,
                            expires_at: *expires_at,
                        });
                    }
                    Outcome::SelfServiceBlocked => prop_assert!(target.eq_ignore_ascii_case("keygate")),
                    Outcome::ConfirmationInvalid { .. } => {}
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            Ok(())
        })?;
    }
}
