//! The shipped policy file matches the tools the server serves.

use std::collections::BTreeSet;

use keygate_demo::{POLICY_TOML, TOOL_NAMES};
use serde_json::json;

use crate::{app, rpc};

fn policy() -> toml::Table {
    POLICY_TOML.parse::<toml::Table>().unwrap()
}

#[tokio::test]
async fn the_policy_lists_exactly_the_served_tools() {
    let v = rpc(&app(), "tools/list", json!({})).await.json();
    let served: BTreeSet<String> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let policy = policy();
    let listed: BTreeSet<String> = policy["tools"]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(listed, served);
    assert_eq!(listed.len(), TOOL_NAMES.len());
}

#[test]
fn every_tool_is_described_in_the_agreed_format() {
    let policy = policy();
    let allowed_keys = [
        "description",
        "scopes",
        "mutating",
        "user_only",
        "project_arg",
        "gate",
    ];
    assert_eq!(
        policy.keys().collect::<Vec<_>>(),
        ["scopes", "tools"],
        "only a scope catalogue and tools"
    );
    let catalogue = policy["scopes"].as_table().unwrap();
    assert_eq!(catalogue.len(), 6);
    for description in catalogue.values() {
        assert!(!description.as_str().unwrap().is_empty());
    }
    for (name, tool) in policy["tools"].as_table().unwrap() {
        let tool = tool.as_table().unwrap();
        for key in tool.keys() {
            assert!(allowed_keys.contains(&key.as_str()), "{name}: {key}");
        }
        assert_eq!(tool["project_arg"].as_str(), Some("project"), "{name}");
        let scopes = tool["scopes"].as_array().unwrap();
        assert!(!scopes.is_empty(), "{name}");
        for scope in scopes {
            assert!(catalogue.contains_key(scope.as_str().unwrap()), "{name}");
        }
        let mutating = tool["mutating"].as_bool().unwrap();
        let user_only = tool["user_only"].as_bool().unwrap();
        let expect_mutating = name.ends_with(".create")
            || !(name.ends_with(".list")
                || name.ends_with(".search")
                || name.ends_with(".status")
                || name.ends_with(".events")
                || name.contains(".logs."));
        assert_eq!(mutating, expect_mutating, "{name}");
        assert_eq!(user_only, name.ends_with(".create"), "{name}");
        let gated = name == "service.delete" || name == "service.replace";
        assert_eq!(tool.contains_key("gate"), gated, "{name}");
    }
}

#[test]
fn the_gates_are_as_agreed() {
    let policy = policy();
    let tools = policy["tools"].as_table().unwrap();
    let delete = tools["service.delete"]["gate"].as_table().unwrap();
    assert_eq!(delete["kind"].as_str(), Some("approval"));
    assert_eq!(delete["target_arg"].as_str(), Some("service"));
    assert_eq!(delete["protect"].as_array().unwrap().len(), 1);
    assert_eq!(delete["protect"][0].as_str(), Some("keygate"));

    let replace = tools["service.replace"]["gate"].as_table().unwrap();
    assert_eq!(replace["kind"].as_str(), Some("evidence"));
    assert_eq!(replace["target_arg"].as_str(), Some("service"));
    assert_eq!(replace["status_tool"].as_str(), Some("service.status"));
    assert_eq!(
        replace["failure_field"].as_str(),
        Some("has_failure_history")
    );
    let evidence: Vec<&str> = replace["evidence_tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        evidence,
        [
            "service.events",
            "service.logs.build",
            "service.logs.runtime"
        ]
    );
    for tool in [&evidence[..], &["service.status"]].concat() {
        assert!(tools.contains_key(tool), "{tool}");
    }
}
