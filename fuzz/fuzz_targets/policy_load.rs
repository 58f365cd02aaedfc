//! `Policy::from_toml_str` on arbitrary text.
//!
//! Properties:
//! - loading never panics and is deterministic (the same text gives an equal policy);
//! - an accepted policy is consistent: `keys:admin` is in the catalogue and no tool
//!   requires it; every scope a tool requires is in the catalogue, listed once; tool
//!   names and project arguments are non-empty without surrounding spaces; gates guard
//!   mutating tools only and name a target argument; an evidence gate's status tool and
//!   evidence tools are tools of the policy that do not mutate; every `[methods]` entry
//!   is a method family or one of its methods and requires declared scopes, listed once;
//!   protected targets hold no hidden characters, are distinct once folded, and each
//!   protects itself and its ASCII upper-case form and its form padded with invisible
//!   and ideographic spaces;
//! - decisions on an accepted policy agree with it: a user key holding every scope may
//!   call every tool (no project restriction), a tenant key holding every scope exactly
//!   the tools that are not user-only, a key with no scopes exactly the tools that
//!   require none; tools outside the policy are denied; `read_only` agrees with
//!   `visible_tools`; lifecycle methods pass for every key, a policed method passes
//!   for the owner exactly when `[methods]` maps it and for the scopeless key exactly
//!   when it maps it to no scope, and methods of unmapped families are denied;
//! - an error has a location inside the input: line 1 ..= number of lines, column
//!   1 ..= length of that line + 1, and a non-empty message.

#![no_main]

use std::collections::BTreeSet;

use keygate_keys::{KeyId, KeyKind, Principal, TenantId, TenantRef, UserId, UserRef};
use keygate_scopes::{
    ADMIN_SCOPE, GateSpec, METHOD_FAMILIES, POLICED_METHODS, Policy, PolicyError, fold_name,
    hidden_char,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_toml_str(src) {
        Ok(policy) => {
            assert_eq!(
                Policy::from_toml_str(src).ok().as_ref(),
                Some(&policy),
                "not deterministic"
            );
            check_policy(&policy);
            check_decisions(&policy);
        }
        Err(err) => check_error(src, &err),
    }
});

fn check_policy(policy: &Policy) {
    assert!(policy.scope(ADMIN_SCOPE).is_some(), "keys:admin missing");
    let all = policy.all_scopes();
    assert_eq!(all.len(), policy.scopes().count());
    for tool in policy.tools() {
        let name = tool.name();
        assert!(
            !name.is_empty() && name.trim() == name,
            "tool name {name:?}"
        );
        assert!(std::ptr::eq(policy.tool(name).expect("by name"), tool));
        let mut seen = BTreeSet::new();
        for scope in tool.scopes() {
            assert!(
                policy.scope(scope).is_some(),
                "{name}: undeclared {scope:?}"
            );
            assert_ne!(scope, ADMIN_SCOPE, "{name} requires keys:admin");
            assert!(seen.insert(scope), "{name}: {scope:?} listed twice");
        }
        if let Some(arg) = tool.project_arg() {
            assert!(!arg.is_empty() && arg.trim() == arg, "project_arg {arg:?}");
        }
        let Some(gate) = tool.gate() else { continue };
        assert!(tool.mutating(), "{name}: gate on a non-mutating tool");
        let target = gate.target_arg();
        assert!(
            !target.is_empty() && target.trim() == target,
            "target_arg {target:?}"
        );
        let mut folded = BTreeSet::new();
        for p in gate.protect() {
            assert!(
                hidden_char(p).is_none(),
                "{name}: protect {p:?} hides characters"
            );
            assert!(folded.insert(fold_name(p)), "{name}: protect {p:?} twice");
            for look_alike in [
                p.clone(),
                p.to_ascii_uppercase(),
                format!("\u{200b}{p}\u{3000}"),
            ] {
                assert_eq!(
                    gate.protected_as(&look_alike),
                    Some(p.as_str()),
                    "{name}: {look_alike:?} is not protected as {p:?}"
                );
            }
        }
        if let GateSpec::Evidence {
            status_tool,
            failure_field,
            evidence_tools,
            ..
        } = gate
        {
            assert!(!failure_field.is_empty());
            assert!(!evidence_tools.is_empty(), "{name}: no evidence tools");
            for reader in std::iter::once(status_tool).chain(evidence_tools) {
                let reader = policy
                    .tool(reader)
                    .unwrap_or_else(|| panic!("{name}: gate names unknown tool {reader:?}"));
                assert!(!reader.mutating(), "{name}: evidence from a mutating tool");
            }
        }
    }
    for (method, scopes) in policy.methods() {
        assert!(
            METHOD_FAMILIES.contains(&method) || POLICED_METHODS.contains(&method),
            "[methods] holds {method:?}"
        );
        let mut seen = BTreeSet::new();
        for scope in scopes {
            assert!(
                policy.scope(scope).is_some(),
                "{method}: undeclared {scope:?}"
            );
            assert_ne!(scope, ADMIN_SCOPE, "{method} requires keys:admin");
            assert!(seen.insert(scope), "{method}: {scope:?} listed twice");
        }
    }
}

fn principal(kind: KeyKind, scopes: BTreeSet<String>) -> Principal {
    Principal {
        key_id: "fuzzfuzzfuzz".parse::<KeyId>().expect("a key id"),
        tenant: TenantRef {
            id: TenantId::new("tn_fuzz"),
            name: "acme".to_owned(),
        },
        kind,
        user: (kind == KeyKind::User).then(|| UserRef {
            id: UserId::new("us_fuzz"),
            name: "alice".to_owned(),
            role: keygate_keys::Role::Owner,
        }),
        scopes,
        projects: None,
        expires_at: None,
    }
}

fn check_decisions(policy: &Policy) {
    let every: BTreeSet<String> = policy.all_scopes().into_iter().collect();
    let user = principal(KeyKind::User, every.clone());
    let tenant = principal(KeyKind::Tenant, every);
    let nothing = principal(KeyKind::User, BTreeSet::new());
    let args = serde_json::json!({});
    for tool in policy.tools() {
        let name = tool.name();
        assert!(
            policy.authorize(&user, name, &args).is_ok(),
            "{name}: owner denied"
        );
        assert_eq!(
            policy.authorize(&tenant, name, &args).is_ok(),
            !tool.user_only(),
            "{name}: tenant key decision"
        );
        assert_eq!(
            policy.authorize(&nothing, name, &args).is_ok(),
            tool.scopes().is_empty(),
            "{name}: scopeless key decision"
        );
    }
    // A name no policy in TOML can hold in this form is never in the policy.
    let unknown = "\u{0}not a tool";
    if policy.tool(unknown).is_none() {
        assert!(policy.authorize(&user, unknown, &args).is_err());
    }
    for method in [
        "initialize",
        "ping",
        "notifications/initialized",
        "tools/list",
    ] {
        for p in [&user, &tenant, &nothing] {
            assert!(
                policy.authorize_method(p, method).is_ok(),
                "{method} denied"
            );
        }
    }
    for method in POLICED_METHODS {
        let scopes = policy.method_scopes(method);
        assert_eq!(
            policy.authorize_method(&user, method).is_ok(),
            scopes.is_some(),
            "{method}: owner decision"
        );
        assert_eq!(
            policy.authorize_method(&nothing, method).is_ok(),
            scopes.is_some_and(<[String]>::is_empty),
            "{method}: scopeless key decision"
        );
    }
    for method in [
        "tasks/get",
        "foo/bar",
        "resources",
        "sampling/createMessage",
    ] {
        assert!(
            policy.authorize_method(&user, method).is_err(),
            "{method} allowed"
        );
    }
    for p in [&user, &tenant, &nothing] {
        let visible = policy.visible_tools(p);
        let any_mutating = visible
            .iter()
            .any(|t| policy.tool(t).is_some_and(|t| t.mutating()));
        assert_eq!(policy.read_only(p), !any_mutating);
    }
}

fn check_error(src: &str, err: &PolicyError) {
    let message = err.to_string();
    assert!(!message.is_empty());
    let location = err.location().expect("from a string: always Invalid");
    assert!(location.path().is_none());
    let lines: Vec<&str> = src.split('\n').collect();
    let line = location.line();
    assert!(
        (1..=lines.len()).contains(&line),
        "line {line} outside 1..={}: {message}",
        lines.len()
    );
    let width = lines[line - 1].chars().count();
    let column = location.column();
    assert!(
        (1..=width + 1).contains(&column),
        "column {column} outside 1..={} on line {line}: {message}",
        width + 1
    );
}
