//! Authorizing calls, listing tools, read-only keys.

use keygate_keys::{KeyKind, ProjectId, ProjectRef};
use keygate_scopes::{Denied, ProjectAccess};
use proptest::prelude::*;
use serde_json::json;

use keygate_scopes::Policy;

use crate::util::{policy, principal};

const ALL: &[&str] = &[
    "customers:read",
    "customers:write",
    "invoices:read",
    "jobs:write",
    "services:read",
    "services:write",
];

#[test]
fn unknown_tool_is_denied() {
    let p = policy();
    let key = principal(KeyKind::User, ALL, None);
    assert_eq!(
        p.authorize(&key, "service.nuke", &json!({})),
        Err(Denied::UnknownTool {
            tool: "service.nuke".to_owned()
        })
    );
}

#[test]
fn every_required_scope_is_needed() {
    let p = policy();
    let key = principal(KeyKind::User, &["services:read"], None);
    assert!(p.authorize(&key, "service.status", &json!({})).is_ok());
    assert_eq!(
        p.authorize(&key, "service.delete", &json!({"service": "a"})),
        Err(Denied::MissingScope {
            tool: "service.delete".to_owned(),
            scope: "services:write".to_owned()
        })
    );
    let none = principal(KeyKind::User, &[], None);
    assert!(matches!(
        p.authorize(&none, "service.status", &json!({})),
        Err(Denied::MissingScope { .. })
    ));
}

#[test]
fn user_only_tools_refuse_tenant_keys() {
    let p = policy();
    let tenant = principal(KeyKind::Tenant, ALL, None);
    assert_eq!(
        p.authorize(&tenant, "customers.create", &json!({"name": "x"})),
        Err(Denied::UserOnly {
            tool: "customers.create".to_owned()
        })
    );
    assert!(p.authorize(&tenant, "customers.search", &json!({})).is_ok());
    let user = principal(KeyKind::User, ALL, None);
    let args = json!({"name": "x"});
    let tool = p
        .authorize(&user, "customers.create", &args)
        .expect("allowed");
    assert_eq!(tool.tool().name(), "customers.create");
}

#[test]
fn project_argument_must_be_one_of_the_keys_projects() {
    let p = policy();
    let key = principal(KeyKind::User, ALL, Some(&["shop"]));
    assert!(
        p.authorize(&key, "service.list", &json!({"project": "shop"}))
            .is_ok()
    );
    assert!(
        p.authorize(&key, "service.list", &json!({"project": "pj_shop"}))
            .is_ok(),
        "project ids work as well as names"
    );
    assert_eq!(
        p.authorize(&key, "service.list", &json!({"project": "ops"})),
        Err(Denied::ProjectNotAllowed {
            tool: "service.list".to_owned(),
            project: "ops".to_owned()
        })
    );
    for args in [
        json!({}),
        json!({"project": 7}),
        json!({"project": null}),
        json!(null),
    ] {
        assert_eq!(
            p.authorize(&key, "service.list", &args),
            Err(Denied::ProjectMissing {
                tool: "service.list".to_owned(),
                arg: "project".to_owned()
            }),
            "{args}"
        );
    }
}

#[test]
fn unrestricted_keys_may_leave_the_project_out() {
    let p = policy();
    let key = principal(KeyKind::User, ALL, None);
    assert!(p.authorize(&key, "service.list", &json!({})).is_ok());
    assert!(
        p.authorize(&key, "service.list", &json!({"project": "anything"}))
            .is_ok()
    );
}

#[test]
fn a_named_project_of_an_unrestricted_key_is_left_to_the_tenant_check() {
    let p = policy();
    let key = principal(KeyKind::User, ALL, None);
    let args = json!({"project": "shop"});
    let allowed = p.authorize(&key, "service.list", &args).unwrap();
    assert_eq!(allowed.project(), ProjectAccess::InTenant("shop"));
    assert_eq!(allowed.tool().name(), "service.list");
    // The tenant has no such project: the same denial as a project outside a key's list.
    assert_eq!(
        allowed.outside_tenant(),
        Denied::ProjectNotAllowed {
            tool: "service.list".to_owned(),
            project: "shop".to_owned()
        }
    );
    for args in [json!({}), json!({"project": 7}), json!({"project": null})] {
        let allowed = p.authorize(&key, "service.list", &args).unwrap();
        assert_eq!(allowed.project(), ProjectAccess::None, "{args}");
    }
}

#[test]
fn a_restricted_keys_project_is_resolved_from_the_key() {
    let p = policy();
    let key = principal(KeyKind::User, ALL, Some(&["shop", "ops"]));
    let shop = ProjectRef {
        id: ProjectId::new("pj_shop"),
        name: "shop".to_owned(),
    };
    for named in ["shop", "pj_shop"] {
        let args = json!({ "project": named });
        let allowed = p.authorize(&key, "service.list", &args).unwrap();
        assert_eq!(allowed.project(), ProjectAccess::Resolved(&shop), "{named}");
    }
    // Another tenant's project id is just a project outside the key.
    assert!(matches!(
        p.authorize(
            &key,
            "service.list",
            &json!({"project": "pj_7Hq2otherTenant"})
        ),
        Err(Denied::ProjectNotAllowed { .. })
    ));
    // An id wins over a project named like it.
    let mut tricky = principal(KeyKind::User, ALL, Some(&["ops"]));
    if let Some(list) = tricky.projects.as_mut() {
        list.push(ProjectRef {
            id: ProjectId::new("pj_decoy"),
            name: "pj_ops".to_owned(),
        });
    }
    let args = json!({"project": "pj_ops"});
    let allowed = p.authorize(&tricky, "service.list", &args).unwrap();
    assert!(
        matches!(allowed.project(), ProjectAccess::Resolved(r) if r.name == "ops"),
        "{allowed:?}"
    );
}

#[test]
fn tools_without_a_project_argument_name_no_project() {
    let p = Policy::from_toml_str(
        r#"
        [scopes]
        "s" = "s"
        [tools."ping"]
        scopes = ["s"]
        "#,
    )
    .unwrap();
    for projects in [None, Some(&["shop"][..])] {
        let key = principal(KeyKind::User, &["s"], projects);
        let args = json!({"project": "elsewhere"});
        let allowed = p.authorize(&key, "ping", &args).unwrap();
        assert_eq!(allowed.project(), ProjectAccess::None);
    }
}

#[test]
fn key_with_no_projects_reaches_no_project_tool() {
    let p = policy();
    let key = principal(KeyKind::User, ALL, Some(&[]));
    assert!(matches!(
        p.authorize(&key, "service.list", &json!({"project": "shop"})),
        Err(Denied::ProjectNotAllowed { .. })
    ));
}

#[test]
fn visible_tools_follow_scopes_and_key_kind() {
    let p = policy();
    let reader = principal(KeyKind::Tenant, &["services:read", "jobs:write"], None);
    assert_eq!(
        p.visible_tools(&reader),
        [
            "service.events",
            "service.list",
            "service.logs.build",
            "service.logs.runtime",
            "service.status"
        ]
    );
    assert!(p.read_only(&reader), "jobs.create is user-only");

    let user = principal(KeyKind::User, &["services:read", "jobs:write"], None);
    assert!(p.visible_tools(&user).contains(&"jobs.create"));
    assert!(!p.read_only(&user));

    let all = principal(KeyKind::User, ALL, None);
    assert_eq!(p.visible_tools(&all).len(), 12);
    assert!(
        p.visible_tools(&principal(KeyKind::User, &[], None))
            .is_empty()
    );
}

proptest! {
    /// A tool is visible exactly when some call to it (with an allowed project) passes,
    /// and `read_only` agrees with `authorize` on every mutating tool.
    #[test]
    fn visibility_agrees_with_authorize(
        mask in 0u8..64,
        user in any::<bool>(),
        restricted in any::<bool>(),
    ) {
        let p = policy();
        let scopes: Vec<&str> = ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| *s)
            .collect();
        let kind = if user { KeyKind::User } else { KeyKind::Tenant };
        let key = principal(kind, &scopes, restricted.then_some(&["shop"][..]));
        let visible = p.visible_tools(&key);
        let mut any_mutating = false;
        for tool in p.tools() {
            let args = json!({"project": "shop", "service": "api"});
            let ok = p.authorize(&key, tool.name(), &args).is_ok();
            prop_assert_eq!(ok, visible.contains(&tool.name()));
            any_mutating |= ok && tool.mutating();
            if ok {
                let outside = json!({"project": "ops"});
                prop_assert_eq!(
                    p.authorize(&key, tool.name(), &outside).is_err(),
                    restricted
                );
            }
        }
        prop_assert_eq!(p.read_only(&key), !any_mutating);
    }
}

const METHODS: &str = r#"
[scopes]
"docs:read" = "Read documentation resources"
"docs:watch" = "Subscribe to documentation changes"
"prompts:use" = "Use prompts"

[methods]
resources = ["docs:read"]
"resources/subscribe" = ["docs:read", "docs:watch"]
"completion/complete" = []
"#;

fn methods_policy() -> keygate_scopes::Policy {
    keygate_scopes::Policy::from_toml_str(METHODS).expect("valid")
}

#[test]
fn lifecycle_and_tool_methods_always_pass() {
    let none = principal(KeyKind::Tenant, &[], None);
    for p in [policy(), methods_policy()] {
        for method in [
            "initialize",
            "ping",
            "notifications/initialized",
            "notifications/cancelled",
            "server/discover",
            "logging/setLevel",
            "tools/list",
            "tools/call",
        ] {
            assert_eq!(p.authorize_method(&none, method), Ok(()), "{method}");
        }
    }
}

#[test]
fn methods_need_the_scopes_of_their_entry_or_family() {
    let p = methods_policy();
    let reader = principal(KeyKind::Tenant, &["docs:read"], None);
    for method in [
        "resources/list",
        "resources/read",
        "resources/templates/list",
    ] {
        assert_eq!(p.authorize_method(&reader, method), Ok(()), "{method}");
    }
    // The exact entry replaces the family's scopes.
    assert_eq!(
        p.authorize_method(&reader, "resources/subscribe"),
        Err(Denied::MethodMissingScope {
            method: "resources/subscribe".to_owned(),
            scope: "docs:watch".to_owned()
        })
    );
    let watcher = principal(KeyKind::User, &["docs:read", "docs:watch"], None);
    assert_eq!(p.authorize_method(&watcher, "resources/subscribe"), Ok(()));

    let none = principal(KeyKind::User, &[], None);
    assert_eq!(
        p.authorize_method(&none, "resources/read"),
        Err(Denied::MethodMissingScope {
            method: "resources/read".to_owned(),
            scope: "docs:read".to_owned()
        })
    );
    // An entry with no scopes lets every key through.
    assert_eq!(p.authorize_method(&none, "completion/complete"), Ok(()));
    assert_eq!(
        p.method_scopes("resources/unsubscribe"),
        Some(&["docs:read".to_owned()][..])
    );
    assert_eq!(p.method_scopes("completion/complete"), Some(&[][..]));
    let entries: Vec<&str> = p.methods().map(|(m, _)| m).collect();
    assert_eq!(
        entries,
        ["completion/complete", "resources", "resources/subscribe"]
    );
}

#[test]
fn methods_the_policy_does_not_map_are_denied() {
    let every = principal(
        KeyKind::User,
        &["docs:read", "docs:watch", "prompts:use", "services:read"],
        None,
    );
    let unknown = |method: &str| Denied::UnknownMethod {
        method: method.to_owned(),
    };
    let p = methods_policy();
    for method in [
        // A family the policy does not list, and a method of a family listed one by one.
        "prompts/list",
        "prompts/get",
        "completion/other",
        // Families no policy can map, and made-up names.
        "tasks/get",
        "tasks/result",
        "sampling/createMessage",
        "foo/bar",
        "tools/other",
        // A family name alone, other case, empty.
        "resources",
        "Resources/list",
        "",
        "notifications",
    ] {
        assert_eq!(
            p.authorize_method(&every, method),
            Err(unknown(method)),
            "{method:?}"
        );
    }
    // A policy without [methods] denies every such method.
    let tools_only = policy();
    let owner = principal(KeyKind::User, ALL, None);
    for method in keygate_scopes::POLICED_METHODS {
        assert_eq!(
            tools_only.authorize_method(&owner, method),
            Err(unknown(method)),
            "{method}"
        );
    }
    assert_eq!(tools_only.methods().count(), 0);
}
