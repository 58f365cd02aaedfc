//! Random interleavings of sessions, keys, tools, targets, arguments and calls,
//! checked against a model of what the gate must decide.

use std::collections::HashSet;

use keygate_gates::{Confirm, GateCall, Outcome};
use keygate_scopes::GateSpec;
use proptest::prelude::*;
use serde_json::json;
use time::Duration;

use crate::util::{delete_gate, fixture};

const KEYS: [&str; 2] = ["k1", "k2"];
const SESSIONS: [Option<&str>; 3] = [Some("s1"), Some("s2"), None];
const TOOLS: [&str; 2] = ["service.delete", "db.delete"];
const TARGETS: [&str; 5] = ["worker", "api", "Worker", "keygate", "ｋｅｙｇａｔｅ"];
/// The targets the gate must block: `keygate` and its look-alike here.
const PROTECTED: [&str; 2] = ["keygate", "ｋｅｙｇａｔｅ"];
/// The image argument of a call: none, or one of two.
const IMAGES: [Option<&str>; 3] = [None, Some("shop/worker:A"), Some("shop/worker:B")];

#[derive(Debug, Clone)]
enum Confirmation {
    None,
    /// The n-th challenge issued so far (modulo), with a target choice.
    Issued(usize, usize),
    Made,
    /// The n-th challenge issued so far (modulo), presented with its binding, except
    /// for the one part [`Vary`] names, which comes from the step.
    Replay(usize, Vary),
}

/// What a replay takes from the step instead of the challenge's binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vary {
    Nothing,
    Key,
    Session,
    Tool,
    Target,
    Image,
}

fn vary() -> impl Strategy<Value = Vary> {
    prop_oneof![
        3 => Just(Vary::Nothing),
        1 => Just(Vary::Key),
        1 => Just(Vary::Session),
        1 => Just(Vary::Tool),
        1 => Just(Vary::Target),
        1 => Just(Vary::Image),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Call {
        key: usize,
        session: usize,
        tool: usize,
        target: usize,
        image: usize,
        confirm: Confirmation,
    },
    Wait(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..2usize, 0..3usize, 0..2usize, 0..5usize, 0..3usize, prop_oneof![
            2 => Just(Confirmation::None),
            4 => (any::<usize>(), 0..5usize).prop_map(|(i, t)| Confirmation::Issued(i, t)),
            1 => Just(Confirmation::Made),
            5 => (any::<usize>(), vary()).prop_map(|(i, v)| Confirmation::Replay(i, v)),
        ])
            .prop_map(|(key, session, tool, target, image, confirm)| Step::Call { key, session, tool, target, image, confirm }),
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
    image: Option<&'static str>,
    expires_at: time::OffsetDateTime,
}

fn arguments(target: &str, image: Option<&str>) -> serde_json::Value {
    match image {
        Some(image) => json!({"service": target, "image": image}),
        None => json!({"service": target}),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A call passes exactly when it presents a challenge issued in the same session
    /// to the same key for the same tool, target and arguments, unexpired and not yet
    /// spent, with the exact target in `confirm`. A challenge is spent only by its own
    /// key and session presenting it (whatever else differs), so nobody else can burn
    /// it; protected targets and their look-alikes never pass.
    #[test]
    fn only_a_fresh_matching_challenge_passes_and_only_once(steps in prop::collection::vec(step(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let f = fixture();
            let spec: GateSpec = delete_gate();
            let mut issued: Vec<Issued> = Vec::new();
            let mut used: HashSet<String> = HashSet::new();
            // Challenges the model says are gone from the store.
            let mut spent: HashSet<String> = HashSet::new();
            for step in steps {
                let (key, session, tool, target, image, confirm) = match step {
                    Step::Wait(s) => { f.clock.advance(Duration::seconds(s)); continue; }
                    Step::Call { key, session, tool, target, image, confirm } =>
                        (KEYS[key], SESSIONS[session], TOOLS[tool], TARGETS[target], IMAGES[image], confirm),
                };
                // A replay re-presents a challenge with its binding, but for one part.
                let replay = match confirm {
                    Confirmation::Replay(i, _) if !issued.is_empty() => Some(i % issued.len()),
                    _ => None,
                };
                let (key, session, tool, target, image) = match (replay, &confirm) {
                    (Some(i), Confirmation::Replay(_, v)) => {
                        let i = &issued[i];
                        (
                            if *v == Vary::Key { key } else { i.key },
                            if *v == Vary::Session { session } else { Some(i.session) },
                            if *v == Vary::Tool { tool } else { i.tool },
                            if *v == Vary::Target { target } else { i.target },
                            if *v == Vary::Image { image } else { i.image },
                        )
                    }
                    _ => (key, session, tool, target, image),
                };
                // (challenge, confirm.target) presented, if any.
                let presented: Option<(String, &str)> = match confirm {
                    Confirmation::None => None,
                    Confirmation::Made => Some(("0".repeat(32), target)),
                    Confirmation::Issued(i, t) if !issued.is_empty() => {
                        Some((issued[i % issued.len()].challenge.clone(), TARGETS[t]))
                    }
                    Confirmation::Issued(..) => None,
                    Confirmation::Replay(..) => replay.map(|i| (issued[i].challenge.clone(), target)),
                };
                let mut call = GateCall::new(key, session, tool, target)
                    .with_arguments(&arguments(target, image));
                if let Some((c, t)) = &presented {
                    call = call.with_confirm(Confirm::new(c.clone(), *t));
                }
                let now = keygate_gates::Clock::now(&*f.clock);
                let d = f.decide(&spec, &call).await;

                // The model.
                let protected = PROTECTED.contains(&target);
                let owner = |i: &Issued| Some(i.session) == session && i.key == key;
                let found = presented
                    .as_ref()
                    .and_then(|(c, _)| issued.iter().find(|i| i.challenge == *c));
                let reaches_store = !protected
                    && session.is_some()
                    && presented.as_ref().is_some_and(|(_, t)| *t == target);
                let expected_allow = reaches_store
                    && found.is_some_and(|i| {
                        owner(i)
                            && !spent.contains(&i.challenge)
                            && now < i.expires_at
                            && i.tool == tool
                            && i.target == target
                            && i.image == image
                    });
                // Safety and liveness at once: an exact replay of a fresh challenge by
                // its owner passes; nothing else does.
                prop_assert_eq!(d.is_allowed(), expected_allow, "{:?} for {:?}", d.outcome(), call);
                if reaches_store && let Some(i) = found.filter(|i| owner(i)) {
                    spent.insert(i.challenge.clone());
                }
                match d.outcome() {
                    Outcome::Allow { confirmed } => {
                        prop_assert!(*confirmed);
                        let i = found.expect("allowed only with an issued challenge");
                        prop_assert_eq!(Some(i.session), session);
                        prop_assert_eq!(i.key, key);
                        prop_assert_eq!(i.tool, tool);
                        prop_assert_eq!(i.target, target);
                        prop_assert_eq!(i.image, image);
                        prop_assert!(now < i.expires_at, "expired challenge passed");
                        prop_assert!(used.insert(i.challenge.clone()), "a challenge passed twice");
                        prop_assert!(!protected);
                    }
                    Outcome::ConfirmationRequired { challenge, expires_at } => {
                        prop_assert!(presented.is_none());
                        prop_assert!(!protected);
                        prop_assert!(issued.iter().all(|i| i.challenge != *challenge), "challenge reissued");
                        issued.push(Issued {
                            challenge: challenge.clone(),
                            key,
                            session: session.expect("issued only within a session"),
                            tool,
                            target,
                            image,
                            expires_at: *expires_at,
                        });
                    }
                    Outcome::SelfServiceBlocked => prop_assert!(protected),
                    Outcome::ConfirmationInvalid { .. } => prop_assert!(!protected),
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            Ok(())
        })?;
    }
}
