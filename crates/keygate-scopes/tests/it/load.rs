//! Loading and validating policy files.

use keygate_scopes::{ADMIN_SCOPE, APPROVE_SCOPE, ApprovalBy, GateSpec, Policy, PolicyError};

use crate::util::{POLICY, policy};

/// The error message of an invalid policy, with its position.
fn invalid(src: &str) -> String {
    match Policy::from_toml_str(src) {
        Ok(_) => panic!("policy unexpectedly valid:\n{src}"),
        Err(e @ PolicyError::Invalid { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

const SCOPES: &str = "[scopes]\n\"s:read\" = \"Read\"\n\"s:write\" = \"Write\"\n";

fn with_scopes(rest: &str) -> String {
    format!("{SCOPES}{rest}")
}

/// [`invalid`] for a policy of [`SCOPES`] and one tool `t` whose table holds `body`.
fn invalid_tool(body: &str) -> String {
    invalid(&with_scopes(&format!("[tools.\"t\"]\n{body}")))
}

#[test]
fn example_policy_loads_with_every_field() {
    let p = policy();
    let names: Vec<&str> = p.tools().map(keygate_scopes::ToolPolicy::name).collect();
    assert_eq!(names.len(), 12);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");

    let search = p.tool("customers.search").expect("listed");
    assert_eq!(search.description(), Some("Search customers by name"));
    assert_eq!(search.scopes(), ["customers:read"]);
    assert!(!search.mutating() && !search.user_only());
    assert_eq!(search.project_arg(), Some("project"));
    assert!(search.gate().is_none());

    let create = p.tool("customers.create").expect("listed");
    assert!(create.mutating() && create.user_only());
    assert_eq!(create.description(), None);

    assert_eq!(
        p.tool("service.delete").and_then(|t| t.gate()),
        Some(&GateSpec::approval("service", vec!["keygate".to_owned()]))
    );
    assert_eq!(
        p.tool("service.replace").and_then(|t| t.gate()),
        Some(&GateSpec::evidence(
            "service",
            "service.status",
            "has_failure_history",
            vec![
                "service.events".to_owned(),
                "service.logs.build".to_owned(),
                "service.logs.runtime".to_owned()
            ]
        ))
    );
}

#[test]
fn catalogue_is_sorted_and_includes_the_admin_scope() {
    let p = policy();
    let scopes: Vec<(&str, &str)> = p.scopes().collect();
    assert_eq!(scopes.len(), 8);
    assert!(scopes.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(p.scope(APPROVE_SCOPE).is_some());
    assert_eq!(
        p.scope(ADMIN_SCOPE),
        Some("Manage API keys and projects (owners only)")
    );
    assert_eq!(p.scope("invoices:read"), Some("List invoices"));
    assert_eq!(p.scope("nope"), None);
    let all = p.all_scopes();
    assert_eq!(all.len(), 8);
    assert!(all.iter().any(|s| s == ADMIN_SCOPE));
    assert!(all.iter().any(|s| s == APPROVE_SCOPE));
    assert!(all.iter().any(|s| s == "services:write"));
}

#[test]
fn empty_policy_has_only_the_built_in_scopes() {
    let p = Policy::from_toml_str("").expect("empty is valid");
    assert_eq!(p.all_scopes(), [APPROVE_SCOPE, ADMIN_SCOPE]);
    assert_eq!(p.tools().count(), 0);
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("policy.toml");
    std::fs::write(&good, POLICY).expect("write");
    assert_eq!(Policy::load(&good).expect("loads"), policy());

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, with_scopes("[tools.\"t\"]\nscopes = [\"s:nope\"]\n")).expect("write");
    let err = Policy::load(&bad).expect_err("invalid");
    let loc = err.location().expect("has a location");
    assert_eq!(loc.path(), Some(bad.as_path()));
    assert_eq!((loc.line(), loc.column()), (5, 11));
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5:11: tool `t` requires scope `s:nope`, which is not declared in [scopes]",
            bad.display()
        )
    );

    let missing = dir.path().join("missing.toml");
    let err = Policy::load(&missing).expect_err("missing");
    assert!(matches!(err, PolicyError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn syntax_errors_have_a_position() {
    let msg = invalid("[scopes]\n\"a\" = \"b\"\n[tools.\"t\"\n");
    assert!(msg.starts_with("line 3, column "), "{msg}");
}

#[test]
fn unknown_fields_are_rejected_with_position() {
    let msg = invalid_tool("scopes = [\"s:read\"]\nmutatin = true\n");
    assert!(
        msg.starts_with("line 6, column 1: unknown field `mutatin`"),
        "{msg}"
    );

    let msg = invalid("[scope]\n");
    assert!(msg.contains("unknown field `scope`"), "{msg}");

    let msg = invalid_tool(
        "scopes = [\"s:write\"]\nmutating = true\ngate = { kind = \"approval\", target_arg = \"x\", protekt = [] }\n",
    );
    assert!(msg.starts_with("line 7, "), "{msg}");
    assert!(msg.contains("unknown field `protekt`"), "{msg}");
}

#[test]
fn mistyped_fields_are_rejected() {
    let msg = invalid_tool("scopes = [\"s:read\"]\nmutating = \"yes\"\n");
    assert!(msg.starts_with("line 6, column 12: "), "{msg}");
    let msg = invalid_tool("mutating = true\n");
    assert!(msg.contains("missing field `scopes`"), "{msg}");
}

#[test]
fn undeclared_scope_is_rejected_at_the_scope() {
    let msg = invalid_tool("scopes = [\"s:read\", \"s:delete\"]\n");
    assert_eq!(
        msg,
        "line 5, column 21: tool `t` requires scope `s:delete`, which is not declared in [scopes]"
    );
}

#[test]
fn duplicate_scope_in_a_list_is_rejected() {
    let msg = invalid_tool("scopes = [\"s:read\", \"s:read\"]\n");
    assert_eq!(msg, "line 5, column 21: scope `s:read` is listed twice");
}

#[test]
fn duplicate_tool_is_rejected_by_toml() {
    let msg = invalid_tool("scopes = []\n[tools.\"t\"]\nscopes = []\n");
    assert!(msg.starts_with("line 6, "), "{msg}");
}

#[test]
fn admin_scope_is_built_in_and_never_required() {
    let msg = invalid("[scopes]\n\"keys:admin\" = \"mine\"\n");
    assert!(msg.contains("built in"), "{msg}");
    let msg = invalid_tool("scopes = [\"keys:admin\"]\n");
    assert!(msg.starts_with("line 5, column 11: "), "{msg}");
    assert!(msg.contains("never required by a tool"), "{msg}");
}

#[test]
fn approve_scope_is_built_in_and_never_required() {
    let msg = invalid("[scopes]\n\"gates:approve\" = \"mine\"\n");
    assert_eq!(
        msg,
        "line 2, column 19: scope `gates:approve` is built in; remove it from [scopes]"
    );
    let msg = invalid_tool("scopes = [\"gates:approve\"]\n");
    assert_eq!(
        msg,
        "line 5, column 11: tool `t` requires `gates:approve`, which is reserved for a person approving gated calls and is never required by a tool"
    );
    let msg = invalid(&with_scopes("[methods]\nprompts = [\"gates:approve\"]\n"));
    assert!(msg.contains("never required by a method"), "{msg}");
}

#[test]
fn gates_are_approved_by_a_person_unless_they_say_agent() {
    let gate = |extra: &str| {
        let src = with_scopes(&format!(
            "[tools.\"d\"]\nscopes = []\nmutating = true\ngate = {{ kind = \"approval\", target_arg = \"service\"{extra} }}\n"
        ));
        Policy::from_toml_str(&src).map(|p| {
            p.tool("d")
                .and_then(|t| t.gate())
                .map(GateSpec::approval_by)
        })
    };
    assert_eq!(gate("").expect("valid"), Some(ApprovalBy::Person));
    assert_eq!(
        gate(", approval = \"person\"").expect("valid"),
        Some(ApprovalBy::Person)
    );
    assert_eq!(
        gate(", approval = \"agent\"").expect("valid"),
        Some(ApprovalBy::Agent)
    );
    assert_eq!(
        gate(", approval = \"page\"").expect("valid"),
        Some(ApprovalBy::Page)
    );
    assert!(ApprovalBy::Page.is_person() && !ApprovalBy::Page.asks_through_client());
    assert!(ApprovalBy::Person.is_person() && ApprovalBy::Person.asks_through_client());
    assert!(!ApprovalBy::Agent.is_person());
    let msg = gate(", approval = \"robot\"")
        .expect_err("invalid")
        .to_string();
    assert_eq!(
        msg,
        "line 7, column 64: unknown approval `robot` for the gate of tool `d`; expected `person` (a person approves, the default), `page` (a person approves on the approval page only) or `agent` (the agent relays a challenge; not person-verified)"
    );
    let src = with_scopes(
        "[tools.\"st\"]\nscopes = []\n[tools.\"r\"]\nscopes = []\nmutating = true\ngate = { kind = \"evidence\", target_arg = \"service\", status_tool = \"st\", failure_field = \"f\", evidence_tools = [\"st\"], approval = \"agent\" }\n",
    );
    let p = Policy::from_toml_str(&src).expect("valid");
    assert_eq!(
        p.tool("r")
            .and_then(|t| t.gate())
            .map(GateSpec::approval_by),
        Some(ApprovalBy::Agent)
    );
    assert_eq!(ApprovalBy::Agent.as_str(), "agent");
    assert_eq!(ApprovalBy::default(), ApprovalBy::Person);
    assert_eq!(
        GateSpec::approval("service", vec![])
            .with_approval_by(ApprovalBy::Agent)
            .approval_by(),
        ApprovalBy::Agent
    );
}

#[test]
fn gate_on_a_non_mutating_tool_is_rejected() {
    let msg =
        invalid_tool("scopes = [\"s:read\"]\ngate = { kind = \"approval\", target_arg = \"x\" }\n");
    assert_eq!(
        msg,
        "line 6, column 8: tool `t` has a gate but is not mutating; gates guard mutating tools only (set `mutating = true` or remove the gate)"
    );
}

#[test]
fn gate_without_target_arg_is_rejected() {
    let msg =
        invalid_tool("scopes = [\"s:write\"]\nmutating = true\ngate = { kind = \"approval\" }\n");
    assert!(msg.starts_with("line 7, column 8: "), "{msg}");
    assert!(msg.contains("has no `target_arg`"), "{msg}");
}

#[test]
fn unknown_gate_kind_is_rejected() {
    let msg = invalid_tool(
        "scopes = [\"s:write\"]\nmutating = true\ngate = { kind = \"vote\", target_arg = \"x\" }\n",
    );
    assert!(
        msg.starts_with("line 7, column 17: unknown gate kind `vote`"),
        "{msg}"
    );
}

const READERS: &str =
    "[tools.\"status\"]\nscopes = [\"s:read\"]\n[tools.\"logs\"]\nscopes = [\"s:read\"]\n";

fn evidence_gate(status: &str, evidence: &str) -> String {
    with_scopes(&format!(
        "{READERS}[tools.\"replace\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = {{ kind = \"evidence\", target_arg = \"service\", status_tool = \"{status}\", failure_field = \"failed\", evidence_tools = [{evidence}] }}\n"
    ))
}

#[test]
fn evidence_gate_needs_its_tools_in_the_policy() {
    assert!(Policy::from_toml_str(&evidence_gate("status", "\"logs\"")).is_ok());

    let msg = invalid(&evidence_gate("stat", "\"logs\""));
    assert!(msg.starts_with("line 11, column "), "{msg}");
    assert!(
        msg.ends_with("the gate of tool `replace` names tool `stat`, which is not in the policy"),
        "{msg}"
    );

    let msg = invalid(&evidence_gate("status", "\"logs\", \"events\""));
    assert!(
        msg.ends_with("names tool `events`, which is not in the policy"),
        "{msg}"
    );

    let msg = invalid(&evidence_gate("status", "\"logs\", \"logs\""));
    assert!(
        msg.ends_with("evidence tool `logs` is listed twice"),
        "{msg}"
    );

    let msg = invalid(&evidence_gate("status", ""));
    assert!(msg.ends_with("lists no evidence tools"), "{msg}");

    let msg = invalid(&evidence_gate("replace", "\"logs\""));
    assert!(msg.contains("which is mutating"), "{msg}");
}

#[test]
fn gate_fields_of_the_other_kind_are_rejected() {
    let msg = invalid_tool(
        "scopes = [\"s:write\"]\nmutating = true\ngate = { kind = \"approval\", target_arg = \"x\", status_tool = \"t\" }\n",
    );
    assert!(
        msg.ends_with("`status_tool` is not a field of `approval` gates (tool `t`)"),
        "{msg}"
    );
    let msg = invalid(&with_scopes(&format!(
        "{READERS}[tools.\"t\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = {{ kind = \"evidence\", target_arg = \"x\", status_tool = \"status\", evidence_tools = [\"logs\"] }}\n"
    )));
    assert!(msg.contains("has no `failure_field`"), "{msg}");
}

#[test]
fn empty_and_padded_names_are_rejected() {
    let msg = invalid_tool("scopes = [\"s:read\"]\nproject_arg = \"\"\n");
    assert!(msg.ends_with("project_arg must not be empty"), "{msg}");
    let msg = invalid_tool(
        "scopes = [\"s:write\"]\nmutating = true\ngate = { kind = \"approval\", target_arg = \"x\", protect = [\" keygate\"] }\n",
    );
    assert!(msg.contains("must not start or end with spaces"), "{msg}");
    let msg = invalid("[scopes]\n\"a b\" = \"x\"\n");
    assert!(msg.contains("no spaces"), "{msg}");
}

#[test]
fn protected_targets_compare_trimmed_and_case_insensitively() {
    let gate = GateSpec::approval("service", vec!["keygate".to_owned(), "Ärger".to_owned()]);
    for t in ["keygate", "KeyGate", "  KEYGATE\t", "ärger", "ÄRGER "] {
        assert!(gate.is_protected(t), "{t}");
    }
    for t in ["keygate2", "worker", "", "key gate"] {
        assert!(!gate.is_protected(t), "{t}");
    }
    assert_eq!(gate.protected_as("ÄRGER"), Some("Ärger"));
    let evidence = GateSpec::evidence("service", "s", "f", vec![]);
    assert!(!evidence.is_protected("keygate"));
    let evidence = evidence.with_protect(vec!["keygate".to_owned()]);
    assert!(evidence.is_protected("KeyGate"));
    assert_eq!(evidence.protect(), ["keygate"]);
}

#[test]
fn protected_targets_catch_look_alikes() {
    let gate = GateSpec::approval("service", vec!["keygate".to_owned()]);
    for t in keygate_test::LOOK_ALIKES {
        assert_eq!(gate.protected_as(t), Some("keygate"), "{t:?}");
    }
    for t in ["keygates", "key-gate", "gatekey", "api"] {
        assert!(!gate.is_protected(t), "{t:?}");
    }
}

#[test]
fn evidence_gates_take_protect() {
    let p = Policy::from_toml_str(&with_scopes(&format!(
        "{READERS}[tools.\"replace\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = {{ kind = \"evidence\", target_arg = \"service\", protect = [\"keygate\"], status_tool = \"status\", failure_field = \"failed\", evidence_tools = [\"logs\"] }}\n"
    )))
    .expect("protect is a field of evidence gates");
    let gate = p.tool("replace").and_then(|t| t.gate()).expect("gated");
    assert_eq!(gate.kind(), "evidence");
    assert_eq!(gate.protect(), ["keygate"]);
    assert!(gate.is_protected("ｋｅｙｇａｔｅ"));
}

#[test]
fn protected_targets_must_be_plain_and_distinct() {
    let gate = |protect: &str| {
        with_scopes(&format!(
            "[tools.\"t\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = {{ kind = \"approval\", target_arg = \"x\", protect = [{protect}] }}\n"
        ))
    };
    let msg = invalid(&gate("\"keygate\\u200b\""));
    assert!(
        msg.starts_with("line 7, column 58: ")
            && msg.contains("protected target \"keygate\\u{200b}\" contains U+200B"),
        "{msg}"
    );
    let msg = invalid(&gate("\"keygate\", \"KeyGate\""));
    assert!(
        msg.contains("protected target `KeyGate` is the same name as `keygate`"),
        "{msg}"
    );
    let msg = invalid(&gate("\"keygate\", \"ｋｅｙｇａｔｅ\""));
    assert!(msg.contains("is the same name as `keygate`"), "{msg}");
    let msg = invalid(&gate("\"\\u0301\""));
    assert!(msg.contains("is empty once accents"), "{msg}");
    let msg = invalid(&with_scopes(&format!(
        "{READERS}[tools.\"r\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = {{ kind = \"evidence\", target_arg = \"x\", protect = [\"a\\u0000\"], status_tool = \"status\", failure_field = \"f\", evidence_tools = [\"logs\"] }}\n"
    )));
    assert!(msg.contains("contains U+0000"), "{msg}");
}

#[test]
fn gate_target_reads_the_target_argument() {
    let gate = GateSpec::approval("service", vec![]);
    assert_eq!(gate.target_arg(), "service");
    assert_eq!(gate.kind(), "approval");
    assert_eq!(
        gate.target(&serde_json::json!({"service": "api"})),
        Some("api")
    );
    assert_eq!(gate.target(&serde_json::json!({"service": 3})), None);
    assert_eq!(gate.target(&serde_json::json!(null)), None);
}

#[test]
fn evidence_target_names_what_an_evidence_read_is_for() {
    let p = policy();
    let args = serde_json::json!({"service": "api", "project": "shop"});
    assert_eq!(p.evidence_target("service.events", &args), Some("api"));
    assert_eq!(
        p.evidence_target("service.logs.runtime", &args),
        Some("api")
    );
    assert_eq!(p.evidence_target("service.status", &args), None);
    assert_eq!(p.evidence_target("service.deploy", &args), None);
    assert_eq!(
        p.evidence_target("service.events", &serde_json::json!({})),
        None
    );
}

#[test]
fn methods_map_families_and_single_methods_to_declared_scopes() {
    let p = Policy::from_toml_str(&with_scopes(
        "[methods]\nresources = [\"s:read\"]\nprompts = []\n\"resources/subscribe\" = [\"s:read\", \"s:write\"]\n\"completion/complete\" = [\"s:write\"]\n",
    ))
    .expect("valid");
    let entries: Vec<(&str, Vec<&str>)> = p
        .methods()
        .map(|(m, s)| (m, s.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        entries,
        [
            ("completion/complete", vec!["s:write"]),
            ("prompts", vec![]),
            ("resources", vec!["s:read"]),
            ("resources/subscribe", vec!["s:read", "s:write"]),
        ]
    );
    assert_eq!(p.method_scopes("prompts/get"), Some(&[][..]));
    assert_eq!(p.method_scopes("completion/other"), None);
    // Every method a policy may name loads.
    for name in keygate_scopes::METHOD_FAMILIES
        .iter()
        .chain(keygate_scopes::POLICED_METHODS.iter())
    {
        let src = with_scopes(&format!("[methods]\n\"{name}\" = [\"s:read\"]\n"));
        assert!(Policy::from_toml_str(&src).is_ok(), "{name}");
    }
    // No [methods]: nothing mapped.
    assert_eq!(policy().methods().count(), 0);
}

#[test]
fn methods_need_declared_scopes() {
    let msg = invalid(&with_scopes(
        "[methods]\nresources = [\"s:read\", \"s:nope\"]\n",
    ));
    assert_eq!(
        msg,
        "line 5, column 24: method family `resources` requires scope `s:nope`, which is not declared in [scopes]"
    );
    let msg = invalid(&with_scopes("[methods]\n\"prompts/get\" = [\"s:nope\"]\n"));
    assert_eq!(
        msg,
        "line 5, column 18: method `prompts/get` requires scope `s:nope`, which is not declared in [scopes]"
    );
    let msg = invalid(&with_scopes(
        "[methods]\nresources = [\"s:read\", \"s:read\"]\n",
    ));
    assert_eq!(msg, "line 5, column 24: scope `s:read` is listed twice");
    let msg = invalid(&with_scopes("[methods]\nresources = [\"keys:admin\"]\n"));
    assert_eq!(
        msg,
        "line 5, column 14: method family `resources` requires `keys:admin`, which is reserved for key administration and is never required by a method"
    );
}

#[test]
fn unknown_lifecycle_and_tool_methods_are_rejected_in_methods() {
    for (name, expected) in [
        ("tasks", "unknown method `tasks` in [methods]"),
        ("foo/bar", "unknown method `foo/bar` in [methods]"),
        ("resource", "unknown method `resource` in [methods]"),
        (
            "resources/write",
            "unknown method `resources/write` in [methods]",
        ),
        ("ping", "lifecycle and utility messages always pass"),
        ("initialize", "lifecycle and utility messages always pass"),
        (
            "notifications",
            "lifecycle and utility messages always pass",
        ),
        (
            "notifications/initialized",
            "lifecycle and utility messages always pass",
        ),
        (
            "logging/setLevel",
            "lifecycle and utility messages always pass",
        ),
        (
            "server/discover",
            "lifecycle and utility messages always pass",
        ),
        ("tools", "tools are policed one by one in [tools]"),
        ("tools/call", "tools are policed one by one in [tools]"),
    ] {
        let msg = invalid(&with_scopes(&format!("[methods]\n\"{name}\" = []\n")));
        let column = name.len() + 6;
        assert!(
            msg.starts_with(&format!("line 5, column {column}: ")),
            "{name}: {msg}"
        );
        assert!(msg.contains(expected), "{name}: {msg}");
    }
    let msg = invalid(&with_scopes("[methods]\nfoo = []\n"));
    assert!(
        msg.ends_with("expected a family (`resources`, `prompts`, `completion`) or one of its methods (`resources/list`, `resources/templates/list`, `resources/read`, `resources/subscribe`, `resources/unsubscribe`, `prompts/list`, `prompts/get`, `completion/complete`); methods not listed are denied"),
        "{msg}"
    );
}

#[test]
fn methods_entries_are_lists_of_scopes() {
    let msg = invalid(&with_scopes("[methods]\nresources = \"s:read\"\n"));
    assert!(msg.starts_with("line 5, column 13: "), "{msg}");
    let msg = invalid(&with_scopes("[methods.resources]\nscopes = [\"s:read\"]\n"));
    assert!(msg.starts_with("line 4, "), "{msg}");
    let msg = invalid(&with_scopes("[methods]\nresources = [\" s:read\"]\n"));
    assert!(msg.contains("must not start or end with spaces"), "{msg}");
}

fn window_gate(window: &str) -> Result<Policy, keygate_scopes::PolicyError> {
    Policy::from_toml_str(&with_scopes(&format!(
        "{READERS}[tools.\"replace\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = {{ kind = \"evidence\", target_arg = \"service\", status_tool = \"status\", failure_field = \"failed\", evidence_tools = [\"logs\"]{window} }}\n"
    )))
}

fn window_of(p: &Policy) -> Option<std::time::Duration> {
    p.tool("replace")
        .and_then(|t| t.gate())
        .and_then(keygate_scopes::GateSpec::evidence_window)
}

#[test]
fn evidence_window_defaults_to_15_minutes_and_reads_seconds_or_durations() {
    use std::time::Duration;
    let p = window_gate("").expect("no window is fine");
    assert_eq!(window_of(&p), Some(Duration::from_secs(900)));
    assert_eq!(
        keygate_scopes::DEFAULT_EVIDENCE_WINDOW,
        Duration::from_secs(900)
    );
    let p = window_gate(", evidence_window = 300").expect("seconds");
    assert_eq!(window_of(&p), Some(Duration::from_secs(300)));
    let p = window_gate(", evidence_window = \"10m\"").expect("a duration");
    assert_eq!(window_of(&p), Some(Duration::from_secs(600)));
    let p = window_gate(", evidence_window = \"120\"").expect("seconds as text");
    assert_eq!(window_of(&p), Some(Duration::from_secs(120)));
    let p = window_gate(", evidence_window = \"1h\"").expect("the longest");
    assert_eq!(window_of(&p), Some(Duration::from_secs(3600)));
}

#[test]
fn evidence_window_must_be_a_positive_duration_of_at_most_an_hour() {
    for bad in [
        "0", "-5", "\"0s\"", "\"soon\"", "\"2h\"", "3601", "true", "1.5",
    ] {
        let err = window_gate(&format!(", evidence_window = {bad}"))
            .expect_err(bad)
            .to_string();
        assert!(err.contains("evidence_window"), "{bad}: {err}");
    }
    let err = Policy::from_toml_str(&with_scopes(
        "[tools.\"t\"]\nscopes = [\"s:write\"]\nmutating = true\ngate = { kind = \"approval\", target_arg = \"x\", evidence_window = 60 }\n",
    ))
    .expect_err("approval gates read no evidence")
    .to_string();
    assert!(err.contains("evidence_window"), "{err}");
}
