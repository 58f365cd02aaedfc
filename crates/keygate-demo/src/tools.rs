//! The tool catalogue: names, descriptions and input schemas, as `tools/list` answers them.

use std::sync::LazyLock;

use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The names of every tool the demo platform serves, in `tools/list` order.
pub const TOOL_NAMES: &[&str] = &[
    "customers.search",
    "customers.create",
    "invoices.list",
    "jobs.create",
    "service.list",
    "service.status",
    "service.events",
    "service.logs.build",
    "service.logs.runtime",
    "service.deploy",
    "service.restart",
    "service.scale",
    "service.env.set",
    "service.delete",
    "service.replace",
];

/// How a tool behaves, for the MCP `annotations` hints.
#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
    Destructive,
}

fn project_property() -> Value {
    json!({
        "type": "string",
        "description": "Project the call is scoped to (`shop` or `ops`); when given it must be the project the target belongs to"
    })
}

fn service_property() -> Value {
    json!({"type": "string", "description": "Service name, e.g. `api` or `worker`", "minLength": 1})
}

fn schema(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let mut props = serde_json::Map::new();
    for (name, prop) in properties {
        props.insert((*name).to_owned(), prop.clone());
    }
    props.insert("project".to_owned(), project_property());
    json!({"type": "object", "properties": props, "required": required})
}

fn tool(name: &str, title: &str, description: &str, kind: Kind, input_schema: Value) -> Value {
    let (read_only, destructive) = match kind {
        Kind::Read => (true, false),
        Kind::Write => (false, false),
        Kind::Destructive => (false, true),
    };
    json!({
        "name": name,
        "title": title,
        "description": description,
        "inputSchema": input_schema,
        "annotations": {
            "readOnlyHint": read_only,
            "destructiveHint": destructive,
            "openWorldHint": false,
        },
    })
}

fn catalogue() -> Vec<Value> {
    let service = || ("service", service_property());
    let service_only = || schema(&[service()], &["service"]);
    vec![
        tool(
            "customers.search",
            "Search customers",
            "Search customers by name (case-insensitive substring; empty `q` lists all).",
            Kind::Read,
            schema(
                &[(
                    "q",
                    json!({"type": "string", "description": "Text to look for in customer names"}),
                )],
                &["q"],
            ),
        ),
        tool(
            "customers.create",
            "Create a customer",
            "Create a customer, recorded as created by the calling person. Needs a person's key.",
            Kind::Write,
            schema(
                &[(
                    "name",
                    json!({"type": "string", "description": "Customer name", "minLength": 1}),
                )],
                &["name"],
            ),
        ),
        tool(
            "invoices.list",
            "List invoices",
            "List all invoices with their customer, amount and status.",
            Kind::Read,
            schema(&[], &[]),
        ),
        tool(
            "jobs.create",
            "Create a job",
            "Create a job, recorded as created by the calling person. Needs a person's key.",
            Kind::Write,
            schema(
                &[(
                    "title",
                    json!({"type": "string", "description": "What the job is for", "minLength": 1}),
                )],
                &["title"],
            ),
        ),
        tool(
            "service.list",
            "List services",
            "List services with their project, state, image and replicas (only the given project's when `project` is set).",
            Kind::Read,
            schema(&[], &[]),
        ),
        tool(
            "service.status",
            "Service status",
            "Show a service's state, image, replicas and failure history (`failed_deploys`, `has_failure_history`).",
            Kind::Read,
            service_only(),
        ),
        tool(
            "service.events",
            "Service events",
            "Read a service's events: deploys, failures, restarts and changes, oldest first.",
            Kind::Read,
            service_only(),
        ),
        tool(
            "service.logs.build",
            "Build logs",
            "Read the build logs of a service's latest deploy.",
            Kind::Read,
            service_only(),
        ),
        tool(
            "service.logs.runtime",
            "Runtime logs",
            "Read a service's runtime logs.",
            Kind::Read,
            service_only(),
        ),
        tool(
            "service.deploy",
            "Deploy a service",
            "Deploy a service's current image.",
            Kind::Write,
            service_only(),
        ),
        tool(
            "service.restart",
            "Restart a service",
            "Restart a deployed service.",
            Kind::Write,
            service_only(),
        ),
        tool(
            "service.scale",
            "Scale a service",
            "Set a service's number of replicas (0 to 100).",
            Kind::Write,
            schema(
                &[
                    service(),
                    (
                        "replicas",
                        json!({"type": "integer", "minimum": 0, "maximum": 100, "description": "Number of replicas"}),
                    ),
                ],
                &["service", "replicas"],
            ),
        ),
        tool(
            "service.env.set",
            "Set an environment variable",
            "Set an environment variable on a service; the value is never echoed back.",
            Kind::Write,
            schema(
                &[
                    service(),
                    (
                        "key",
                        json!({"type": "string", "description": "Variable name: letters, digits and `_`, not starting with a digit", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}),
                    ),
                    (
                        "value",
                        json!({"type": "string", "description": "Variable value"}),
                    ),
                ],
                &["service", "key", "value"],
            ),
        ),
        tool(
            "service.delete",
            "Delete a service",
            "Delete a service and everything it runs. Cannot be undone.",
            Kind::Destructive,
            service_only(),
        ),
        tool(
            "service.replace",
            "Replace a service",
            "Replace a service's image wholesale, discarding its deploy history. Cannot be undone.",
            Kind::Destructive,
            schema(
                &[
                    service(),
                    (
                        "image",
                        json!({"type": "string", "description": "New image reference", "minLength": 1}),
                    ),
                ],
                &["service", "image"],
            ),
        ),
    ]
}

/// The `tools/list` result, serialized once.
pub(crate) static TOOLS_LIST: LazyLock<Box<RawValue>> = LazyLock::new(|| {
    let tools = catalogue();
    debug_assert_eq!(tools.len(), TOOL_NAMES.len());
    // Serializing a `Value` built from string keys cannot fail.
    serde_json::value::to_raw_value(&json!({ "tools": tools }))
        .unwrap_or_else(|_| RawValue::NULL.to_owned())
});

/// The `tools/list` result for 2026-07-28 clients: the same tools, with the caching
/// hints and `resultType` that revision requires. The list is private to the caller
/// (the gateway in front filters it per key), and may not be cached.
pub(crate) static STATELESS_TOOLS_LIST: LazyLock<Box<RawValue>> = LazyLock::new(|| {
    serde_json::value::to_raw_value(&json!({
        "tools": catalogue(),
        "ttlMs": 0,
        "cacheScope": "private",
        "resultType": keygate_mcp::mrtr::ResultType::Complete.as_str(),
    }))
    .unwrap_or_else(|_| RawValue::NULL.to_owned())
});
