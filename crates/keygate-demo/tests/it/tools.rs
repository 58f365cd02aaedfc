//! Each tool of the demo platform, through `tools/call`.

use keygate_demo::Platform;
use serde_json::json;

use crate::{app, call_as, call_err, call_ok, names};

#[tokio::test]
async fn service_status_reports_failure_history() {
    let app = app();
    let worker = call_ok(&app, "service.status", json!({"service": "worker"})).await;
    assert_eq!(worker["service"], "worker");
    assert_eq!(worker["project"], "shop");
    assert_eq!(worker["state"], "failed");
    assert_eq!(worker["failed_deploys"], 2);
    assert_eq!(worker["has_failure_history"], true);

    let web = call_ok(
        &app,
        "service.status",
        json!({"service": "web", "project": "shop"}),
    )
    .await;
    assert_eq!(web["state"], "waiting_for_first_deploy");
    assert_eq!(web["failed_deploys"], 0);
    assert_eq!(web["has_failure_history"], false);

    for (service, project) in [("api", "shop"), ("keygate", "ops")] {
        let s = call_ok(&app, "service.status", json!({"service": service})).await;
        assert_eq!(s["state"], "running", "{service}");
        assert_eq!(s["project"], project, "{service}");
        assert_eq!(s["has_failure_history"], false, "{service}");
    }
}

#[tokio::test]
async fn the_failed_worker_has_evidence_to_read() {
    let app = app();
    let events = call_ok(&app, "service.events", json!({"service": "worker"})).await;
    let events = events["events"].as_array().unwrap();
    let failures = events
        .iter()
        .filter(|e| {
            e.as_str()
                .unwrap()
                .contains("failed: exit code 137 (OOMKilled)")
        })
        .count();
    assert_eq!(failures, 2);
    assert!(events.contains(&json!("deploy #41 failed: exit code 137 (OOMKilled)")));

    let build = call_ok(&app, "service.logs.build", json!({"service": "worker"})).await;
    assert_eq!(build["kind"], "build");
    assert!(!build["lines"].as_array().unwrap().is_empty());
    let runtime = call_ok(
        &app,
        "service.logs.runtime",
        json!({"service": "worker", "project": "shop"}),
    )
    .await;
    assert_eq!(runtime["kind"], "runtime");
    let lines = runtime["lines"].to_string();
    assert!(lines.contains("OOMKilled"), "{lines}");

    let web = call_ok(&app, "service.logs.runtime", json!({"service": "web"})).await;
    assert_eq!(web["lines"], json!([]));
}

#[tokio::test]
async fn unknown_services_and_wrong_projects_are_tool_errors() {
    let app = app();
    let (code, message) = call_err(&app, None, "service.status", json!({"service": "db"})).await;
    assert_eq!(code, "UNKNOWN_SERVICE");
    assert_eq!(message, "unknown service db");

    let (code, message) = call_err(
        &app,
        None,
        "service.delete",
        json!({"service": "keygate", "project": "shop"}),
    )
    .await;
    assert_eq!(code, "PROJECT_MISMATCH");
    assert_eq!(message, "service keygate is not in project shop");

    let (code, _) = call_err(
        &app,
        None,
        "service.deploy",
        json!({"service": "api", "project": "nope"}),
    )
    .await;
    assert_eq!(code, "UNKNOWN_PROJECT");
    let (code, _) = call_err(&app, None, "invoices.list", json!({"project": "nope"})).await;
    assert_eq!(code, "UNKNOWN_PROJECT");

    // Nothing was deleted by the refused call.
    let s = call_ok(
        &app,
        "service.status",
        json!({"service": "keygate", "project": "ops"}),
    )
    .await;
    assert_eq!(s["state"], "running");
}

#[tokio::test]
async fn service_list_filters_by_project() {
    let app = app();
    let all = call_ok(&app, "service.list", json!({})).await;
    let names = names(&all["services"]);
    assert_eq!(names, ["api", "keygate", "web", "worker"]);
    let ops = call_ok(&app, "service.list", json!({"project": "ops"})).await;
    assert_eq!(ops["services"].as_array().unwrap().len(), 1);
    assert_eq!(ops["services"][0]["name"], "keygate");
    assert_eq!(ops["services"][0]["state"], "running");
}

#[tokio::test]
async fn customers_create_records_the_calling_user() {
    let app = app();
    let (code, message) =
        call_err(&app, None, "customers.create", json!({"name": "Umbrella"})).await;
    assert_eq!(code, "USER_REQUIRED");
    assert_eq!(message, "customers.create needs a user");

    let created = call_as(
        &app,
        Some("usr_alice"),
        "customers.create",
        json!({"name": "Umbrella"}),
    )
    .await;
    assert_eq!(created["isError"], false, "{created}");
    let customer = &created["structuredContent"]["customer"];
    assert_eq!(customer["name"], "Umbrella");
    assert_eq!(customer["created_by"], "usr_alice");
    assert_eq!(customer["id"], "cus_4");

    let found = call_ok(&app, "customers.search", json!({"q": "umbr"})).await;
    assert_eq!(found["customers"], json!([customer]));

    let (code, _) = call_err(
        &app,
        Some("usr_bob"),
        "customers.create",
        json!({"name": "umbrella"}),
    )
    .await;
    assert_eq!(code, "ALREADY_EXISTS");
    let (code, _) = call_err(
        &app,
        Some("usr_bob"),
        "customers.create",
        json!({"name": "  "}),
    )
    .await;
    assert_eq!(code, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn customers_search_and_invoices_list_read_the_seed() {
    let app = app();
    let all = call_ok(&app, "customers.search", json!({"q": ""})).await;
    let names = names(&all["customers"]);
    assert_eq!(names, ["Acme Corp", "Globex", "Initech"]);
    let acme = call_ok(
        &app,
        "customers.search",
        json!({"q": "ACME", "project": "shop"}),
    )
    .await;
    assert_eq!(acme["customers"][0]["id"], "cus_1");
    assert_eq!(acme["customers"][0]["created_by"], serde_json::Value::Null);

    let invoices = call_ok(&app, "invoices.list", json!({})).await;
    let invoices = invoices["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 3);
    assert!(
        invoices
            .iter()
            .all(|i| i["amount_cents"].as_u64().unwrap() > 0)
    );
    // `arguments` may be omitted for a tool without required arguments.
    let reply = crate::rpc(&app, "tools/call", json!({"name": "invoices.list"})).await;
    assert_eq!(reply.json()["result"]["isError"], false);
}

#[tokio::test]
async fn jobs_create_records_the_calling_user() {
    let app = app();
    let (code, message) =
        call_err(&app, None, "jobs.create", json!({"title": "Rotate logs"})).await;
    assert_eq!(code, "USER_REQUIRED");
    assert_eq!(message, "jobs.create needs a user");
    let (code, _) = call_err(
        &app,
        Some(" "),
        "jobs.create",
        json!({"title": "Rotate logs"}),
    )
    .await;
    assert_eq!(code, "USER_REQUIRED", "a blank user header is no user");

    let created = call_as(
        &app,
        Some("usr_alice"),
        "jobs.create",
        json!({"title": "Rotate logs"}),
    )
    .await;
    assert_eq!(created["isError"], false);
    assert_eq!(
        created["structuredContent"]["job"],
        json!({"id": "job_1", "title": "Rotate logs", "created_by": "usr_alice"})
    );
}

#[tokio::test]
async fn deploy_restart_scale_and_env_change_state() {
    let app = app();
    let deployed = call_ok(&app, "service.deploy", json!({"service": "web"})).await;
    assert_eq!(deployed["previous_state"], "waiting_for_first_deploy");
    assert_eq!(deployed["state"], "running");
    assert_eq!(deployed["deploy"], 1);

    let (code, _) = call_err(&app, None, "service.restart", json!({"service": "db"})).await;
    assert_eq!(code, "UNKNOWN_SERVICE");
    let restarted = call_ok(&app, "service.restart", json!({"service": "web"})).await;
    assert_eq!(restarted["restarted"], true);

    let scaled = call_ok(
        &app,
        "service.scale",
        json!({"service": "api", "replicas": 5}),
    )
    .await;
    assert_eq!(scaled["previous_replicas"], 2);
    assert_eq!(scaled["replicas"], 5);
    let status = call_ok(&app, "service.status", json!({"service": "api"})).await;
    assert_eq!(status["replicas"], 5);

    let set = call_ok(
        &app,
        "service.env.set",
        json!({"service": "api", "key": "DATABASE_PASSWORD", "value": "hunter2-secret"}),
    )
    .await;
    assert_eq!(set["key"], "DATABASE_PASSWORD");
    assert_eq!(set["created"], true);
    assert_eq!(set["changed"], true);
    assert!(
        !set.to_string().contains("hunter2"),
        "values are never echoed"
    );
    let again = call_ok(
        &app,
        "service.env.set",
        json!({"service": "api", "key": "DATABASE_PASSWORD", "value": "hunter2-secret"}),
    )
    .await;
    assert_eq!(again["created"], false);
    assert_eq!(again["changed"], false);

    // A deploy of the failed worker succeeds but keeps its failure history.
    let deployed = call_ok(&app, "service.deploy", json!({"service": "worker"})).await;
    assert_eq!(deployed["deploy"], 43);
    let status = call_ok(&app, "service.status", json!({"service": "worker"})).await;
    assert_eq!(status["state"], "running");
    assert_eq!(status["has_failure_history"], true);
}

#[tokio::test]
async fn restart_before_the_first_deploy_is_a_tool_error() {
    let (code, _) = call_err(&app(), None, "service.restart", json!({"service": "web"})).await;
    assert_eq!(code, "INVALID_STATE");
}

#[tokio::test]
async fn replace_resets_failure_history() {
    let app = app();
    let replaced = call_ok(
        &app,
        "service.replace",
        json!({"service": "worker", "image": "shop/worker:2.3.1", "project": "shop"}),
    )
    .await;
    assert_eq!(replaced["previous_image"], "shop/worker:2.3.0");
    assert_eq!(replaced["image"], "shop/worker:2.3.1");
    assert_eq!(replaced["discarded_failed_deploys"], 2);
    let status = call_ok(&app, "service.status", json!({"service": "worker"})).await;
    assert_eq!(status["state"], "running");
    assert_eq!(status["image"], "shop/worker:2.3.1");
    assert_eq!(status["failed_deploys"], 0);
    assert_eq!(status["has_failure_history"], false);
    let (code, _) = call_err(
        &app,
        None,
        "service.replace",
        json!({"service": "worker", "image": " "}),
    )
    .await;
    assert_eq!(code, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn delete_removes_the_service_from_every_clone() {
    let platform = Platform::new();
    let app = keygate_demo::router(platform.clone());
    assert!(platform.has_service("api"));
    let deleted = call_ok(&app, "service.delete", json!({"service": "api"})).await;
    assert_eq!(
        deleted,
        json!({"service": "api", "project": "shop", "deleted": true})
    );
    assert!(!platform.has_service("api"));
    let (code, _) = call_err(&app, None, "service.status", json!({"service": "api"})).await;
    assert_eq!(code, "UNKNOWN_SERVICE");
    let (code, _) = call_err(&app, None, "service.delete", json!({"service": "api"})).await;
    assert_eq!(code, "UNKNOWN_SERVICE");
    // The platform itself does no gating: it deletes its own gateway when asked.
    call_ok(&app, "service.delete", json!({"service": "keygate"})).await;
    assert!(!platform.has_service("keygate"));
    // Another platform is unaffected.
    assert!(Platform::new().has_service("api"));
}

#[tokio::test]
async fn every_tool_can_be_called() {
    let app = app();
    for tool in keygate_demo::TOOL_NAMES {
        let args = match *tool {
            "customers.search" => json!({"q": "a"}),
            "customers.create" => json!({"name": "Hooli"}),
            "jobs.create" => json!({"title": "Backfill"}),
            "invoices.list" | "service.list" => json!({}),
            "service.scale" => json!({"service": "api", "replicas": 3}),
            "service.env.set" => json!({"service": "api", "key": "K", "value": "v"}),
            "service.replace" => json!({"service": "worker", "image": "shop/worker:3"}),
            "service.delete" => json!({"service": "web"}),
            _ => json!({"service": "api"}),
        };
        let result = call_as(&app, Some("usr_alice"), tool, args).await;
        assert_eq!(result["isError"], false, "{tool}: {result}");
    }
}

#[tokio::test]
async fn history_and_env_stay_bounded_under_load() {
    let app = app();
    for _ in 0..150 {
        call_ok(&app, "service.restart", json!({"service": "api"})).await;
    }
    let events = call_ok(&app, "service.events", json!({"service": "api"})).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 100);
    assert_eq!(events[99], "restarted 2 replica(s)");
    let runtime = call_ok(&app, "service.logs.runtime", json!({"service": "api"})).await;
    assert_eq!(runtime["lines"].as_array().unwrap().len(), 100);

    // `api` starts with one variable (LOG_LEVEL): 99 more fit, the 100th new one does not.
    for i in 0..99 {
        let args = json!({"service": "api", "key": format!("K{i}"), "value": "v"});
        call_ok(&app, "service.env.set", args).await;
    }
    let args = json!({"service": "api", "key": "ONE_TOO_MANY", "value": "v"});
    let (code, _) = call_err(&app, None, "service.env.set", args).await;
    assert_eq!(code, "LIMIT_REACHED");
    // Changing an existing variable still works at the limit.
    let args = json!({"service": "api", "key": "K0", "value": "w"});
    assert_eq!(
        call_ok(&app, "service.env.set", args).await["changed"],
        true
    );
}
