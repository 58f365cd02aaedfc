//! The in-memory platform state and the tools that read and change it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

/// The demo platform: projects, services, customers, invoices and jobs, held in memory.
///
/// Cloning is cheap and every clone shares the same state, so a clone handed to
/// [`router`](crate::router) and one kept by a test see the same changes.
/// [`Platform::new`] seeds the state described in the crate documentation.
#[derive(Clone)]
pub struct Platform {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Platform")
            .field("services", &state.services.len())
            .field("customers", &state.customers.len())
            .field("jobs", &state.jobs.len())
            .finish_non_exhaustive()
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::new()
    }
}

impl Platform {
    /// A platform with the seeded demo state: projects `shop` and `ops`; services `api`
    /// (shop, running), `worker` (shop, two failed deploys), `web` (shop, waiting for its
    /// first deploy) and `keygate` (ops, running); customers Acme Corp, Globex and
    /// Initech; one invoice each.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State::seed())),
        }
    }

    /// Whether a service of this name exists (it may have been deleted by `service.delete`).
    #[must_use]
    pub fn has_service(&self, name: &str) -> bool {
        self.lock().services.contains_key(name)
    }

    /// Locks the state. A poisoned lock is recovered: every tool leaves the state
    /// consistent before it can panic, so the data is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls a tool with its JSON arguments object. `user` is the calling person's id, if any.
    pub(crate) fn call(
        &self,
        tool: &str,
        args: &str,
        user: Option<&str>,
    ) -> Result<ToolResult, CallError> {
        let mut state = self.lock();
        let state = &mut *state;
        match tool {
            "customers.search" => {
                let a: SearchArgs<'_> = parse(args)?;
                Ok(state.customers_search(&a))
            }
            "customers.create" => {
                let a: NameArgs<'_> = parse(args)?;
                Ok(state.customers_create(&a, user))
            }
            "invoices.list" => {
                let a: ProjectArgs<'_> = parse(args)?;
                Ok(state.invoices_list(&a))
            }
            "jobs.create" => {
                let a: TitleArgs<'_> = parse(args)?;
                Ok(state.jobs_create(&a, user))
            }
            "service.list" => {
                let a: ProjectArgs<'_> = parse(args)?;
                Ok(state.service_list(&a))
            }
            "service.status" => Ok(state.service_status(&parse(args)?)),
            "service.events" => Ok(state.service_events(&parse(args)?)),
            "service.logs.build" => Ok(state.service_logs(&parse(args)?, LogKind::Build)),
            "service.logs.runtime" => Ok(state.service_logs(&parse(args)?, LogKind::Runtime)),
            "service.deploy" => Ok(state.service_deploy(&parse(args)?)),
            "service.restart" => Ok(state.service_restart(&parse(args)?)),
            "service.scale" => {
                let a: ScaleArgs<'_> = parse(args)?;
                if a.replicas > MAX_REPLICAS {
                    return Err(CallError::InvalidParams(format!(
                        "replicas must be between 0 and {MAX_REPLICAS}"
                    )));
                }
                Ok(state.service_scale(&a))
            }
            "service.env.set" => {
                let a: EnvArgs<'_> = parse(args)?;
                if !valid_env_key(&a.key) {
                    return Err(CallError::InvalidParams(
                        "key must be letters, digits and `_`, not starting with a digit".to_owned(),
                    ));
                }
                Ok(state.service_env_set(&a))
            }
            "service.delete" => Ok(state.service_delete(&parse(args)?)),
            "service.replace" => Ok(state.service_replace(&parse(args)?)),
            _ => Err(CallError::UnknownTool),
        }
    }
}

/// The most replicas `service.scale` accepts.
const MAX_REPLICAS: u32 = 100;

/// Events and log lines kept per service: the oldest are dropped, so a long load test
/// against the demo does not grow it without bound.
const MAX_LINES: usize = 100;

/// Customers, jobs, and environment variables per service, that the demo keeps at most.
const MAX_RECORDS: usize = 10_000;
const MAX_ENV_VARS: usize = 100;

fn record(lines: &mut Vec<String>, line: String) {
    if lines.len() >= MAX_LINES {
        lines.drain(..=lines.len() - MAX_LINES);
    }
    lines.push(line);
}

fn limit_reached(what: &str) -> ToolResult {
    tool_error(
        "LIMIT_REACHED",
        format!("the demo platform holds no more {what}"),
    )
}

/// Why a `tools/call` could not run (protocol errors, answered as JSON-RPC errors).
#[derive(Debug)]
pub(crate) enum CallError {
    /// No tool of that name.
    UnknownTool,
    /// The arguments do not match the tool's input schema.
    InvalidParams(String),
}

/// A tool failure, answered as a result with `isError: true`.
#[derive(Debug)]
pub(crate) struct ToolError {
    /// Machine-readable code, e.g. `UNKNOWN_SERVICE`.
    pub(crate) code: &'static str,
    /// Human-readable message.
    pub(crate) message: String,
}

/// A tool's structured result, or its failure.
pub(crate) type ToolResult = Result<Box<RawValue>, ToolError>;

fn tool_error(code: &'static str, message: String) -> ToolResult {
    Err(ToolError { code, message })
}

fn ok<T: Serialize>(value: &T) -> ToolResult {
    serde_json::value::to_raw_value(value).map_err(|e| ToolError {
        code: "INTERNAL",
        message: format!("could not encode the result: {e}"),
    })
}

fn parse<'a, T: Deserialize<'a>>(args: &'a str) -> Result<T, CallError> {
    serde_json::from_str(args).map_err(|e| CallError::InvalidParams(format!("arguments: {e}")))
}

fn valid_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Deserialize)]
struct ProjectArgs<'a> {
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SearchArgs<'a> {
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct NameArgs<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TitleArgs<'a> {
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ServiceArgs<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ScaleArgs<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    replicas: u32,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EnvArgs<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ReplaceArgs<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    image: Cow<'a, str>,
    #[serde(borrow, default)]
    project: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum ServiceState {
    Running,
    Failed,
    WaitingForFirstDeploy,
}

#[derive(Clone, Copy)]
enum LogKind {
    Build,
    Runtime,
}

struct Service {
    project: &'static str,
    image: String,
    state: ServiceState,
    replicas: u32,
    env: BTreeMap<String, String>,
    /// Number of the latest deploy (0: never deployed).
    last_deploy: u32,
    failed_deploys: u32,
    events: Vec<String>,
    build_log: Vec<String>,
    runtime_log: Vec<String>,
}

#[derive(Serialize)]
struct Customer {
    id: String,
    name: String,
    created_by: Option<String>,
}

#[derive(Serialize)]
struct Invoice {
    id: &'static str,
    customer: &'static str,
    amount_cents: u64,
    currency: &'static str,
    status: &'static str,
}

#[derive(Serialize)]
struct Job {
    id: String,
    title: String,
    created_by: String,
}

struct State {
    projects: [&'static str; 2],
    services: BTreeMap<String, Service>,
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    jobs: Vec<Job>,
}

fn lines(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| (*l).to_owned()).collect()
}

impl State {
    fn seed() -> Self {
        let mut services = BTreeMap::new();
        services.insert(
            "api".to_owned(),
            Service {
                project: "shop",
                image: "shop/api:1.8.2".to_owned(),
                state: ServiceState::Running,
                replicas: 2,
                env: BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]),
                last_deploy: 17,
                failed_deploys: 0,
                events: lines(&[
                    "deploy #16 succeeded (image shop/api:1.8.1)",
                    "deploy #17 succeeded (image shop/api:1.8.2)",
                    "scaled to 2 replicas",
                ]),
                build_log: lines(&[
                    "step 1/4: FROM rust:1.88-slim",
                    "step 2/4: cargo build --release",
                    "step 3/4: copy target/release/api",
                    "step 4/4: image shop/api:1.8.2 built",
                ]),
                runtime_log: lines(&[
                    "listening on 0.0.0.0:8080",
                    "GET /healthz 200 (1 ms)",
                    "POST /orders 201 (12 ms)",
                ]),
            },
        );
        services.insert(
            "worker".to_owned(),
            Service {
                project: "shop",
                image: "shop/worker:2.3.0".to_owned(),
                state: ServiceState::Failed,
                replicas: 1,
                env: BTreeMap::from([("BATCH_SIZE".to_owned(), "50000".to_owned())]),
                last_deploy: 42,
                failed_deploys: 2,
                events: lines(&[
                    "deploy #40 succeeded (image shop/worker:2.2.1)",
                    "deploy #41 started (image shop/worker:2.3.0)",
                    "deploy #41 failed: exit code 137 (OOMKilled)",
                    "deploy #42 started (image shop/worker:2.3.0)",
                    "deploy #42 failed: exit code 137 (OOMKilled)",
                ]),
                build_log: lines(&[
                    "step 1/4: FROM python:3.12-slim",
                    "step 2/4: pip install -r requirements.txt",
                    "step 3/4: copy worker/",
                    "step 4/4: image shop/worker:2.3.0 built",
                ]),
                runtime_log: lines(&[
                    "worker 2.3.0 starting, BATCH_SIZE=50000",
                    "loading 50000 invoices into memory",
                    "memory usage 498Mi of 512Mi limit",
                    "Killed (exit code 137: OOMKilled)",
                ]),
            },
        );
        services.insert(
            "web".to_owned(),
            Service {
                project: "shop",
                image: "shop/web:0.1.0".to_owned(),
                state: ServiceState::WaitingForFirstDeploy,
                replicas: 1,
                env: BTreeMap::new(),
                last_deploy: 0,
                failed_deploys: 0,
                events: lines(&["service created, waiting for its first deploy"]),
                build_log: Vec::new(),
                runtime_log: Vec::new(),
            },
        );
        services.insert(
            "keygate".to_owned(),
            Service {
                project: "ops",
                image: "keygate/keygated:0.1.0".to_owned(),
                state: ServiceState::Running,
                replicas: 2,
                env: BTreeMap::from([("KEYGATE_LISTEN".to_owned(), "0.0.0.0:8080".to_owned())]),
                last_deploy: 3,
                failed_deploys: 0,
                events: lines(&["deploy #3 succeeded (image keygate/keygated:0.1.0)"]),
                build_log: lines(&[
                    "step 1/2: cargo build --release -p keygated",
                    "step 2/2: image keygate/keygated:0.1.0 built",
                ]),
                runtime_log: lines(&["keygated listening on 0.0.0.0:8080"]),
            },
        );
        let customer = |id: &str, name: &str| Customer {
            id: id.to_owned(),
            name: name.to_owned(),
            created_by: None,
        };
        Self {
            projects: ["shop", "ops"],
            services,
            customers: vec![
                customer("cus_1", "Acme Corp"),
                customer("cus_2", "Globex"),
                customer("cus_3", "Initech"),
            ],
            invoices: vec![
                Invoice {
                    id: "inv_1001",
                    customer: "cus_1",
                    amount_cents: 120_000,
                    currency: "EUR",
                    status: "paid",
                },
                Invoice {
                    id: "inv_1002",
                    customer: "cus_2",
                    amount_cents: 45_000,
                    currency: "EUR",
                    status: "open",
                },
                Invoice {
                    id: "inv_1003",
                    customer: "cus_3",
                    amount_cents: 9_900,
                    currency: "EUR",
                    status: "overdue",
                },
            ],
            jobs: Vec::new(),
        }
    }

    /// Checks an optional project argument names a known project.
    fn check_project(&self, project: Option<&Cow<'_, str>>) -> Result<(), ToolError> {
        match project {
            Some(p) if !self.projects.contains(&p.as_ref()) => Err(ToolError {
                code: "UNKNOWN_PROJECT",
                message: format!("unknown project {p}"),
            }),
            _ => Ok(()),
        }
    }

    /// Finds a service, checking the optional project argument matches it.
    fn service_mut(
        &mut self,
        name: &str,
        project: Option<&Cow<'_, str>>,
    ) -> Result<&mut Service, ToolError> {
        self.check_project(project)?;
        let Some(service) = self.services.get_mut(name) else {
            return Err(ToolError {
                code: "UNKNOWN_SERVICE",
                message: format!("unknown service {name}"),
            });
        };
        match project {
            Some(p) if p.as_ref() != service.project => Err(ToolError {
                code: "PROJECT_MISMATCH",
                message: format!("service {name} is not in project {p}"),
            }),
            _ => Ok(service),
        }
    }

    fn customers_search(&self, a: &SearchArgs<'_>) -> ToolResult {
        self.check_project(a.project.as_ref())?;
        let q = a.q.to_lowercase();
        let found: Vec<&Customer> = self
            .customers
            .iter()
            .filter(|c| c.name.to_lowercase().contains(&q))
            .collect();
        ok(&json!({ "customers": found }))
    }

    fn customers_create(&mut self, a: &NameArgs<'_>, user: Option<&str>) -> ToolResult {
        let Some(user) = user else {
            return tool_error("USER_REQUIRED", "customers.create needs a user".to_owned());
        };
        self.check_project(a.project.as_ref())?;
        let name = a.name.trim();
        if name.is_empty() {
            return tool_error("INVALID_ARGUMENT", "name must not be empty".to_owned());
        }
        if self
            .customers
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
        {
            return tool_error("ALREADY_EXISTS", format!("customer {name} already exists"));
        }
        let customer = Customer {
            id: format!("cus_{}", self.customers.len() + 1),
            name: name.to_owned(),
            created_by: Some(user.to_owned()),
        };
        let result = ok(&json!({ "customer": &customer }));
        self.customers.push(customer);
        result
    }

    fn invoices_list(&self, a: &ProjectArgs<'_>) -> ToolResult {
        self.check_project(a.project.as_ref())?;
        ok(&json!({ "invoices": &self.invoices }))
    }

    fn jobs_create(&mut self, a: &TitleArgs<'_>, user: Option<&str>) -> ToolResult {
        let Some(user) = user else {
            return tool_error("USER_REQUIRED", "jobs.create needs a user".to_owned());
        };
        self.check_project(a.project.as_ref())?;
        let title = a.title.trim();
        if title.is_empty() {
            return tool_error("INVALID_ARGUMENT", "title must not be empty".to_owned());
        }
        if self.jobs.len() >= MAX_RECORDS {
            return limit_reached("jobs");
        }
        let job = Job {
            id: format!("job_{}", self.jobs.len() + 1),
            title: title.to_owned(),
            created_by: user.to_owned(),
        };
        let result = ok(&json!({ "job": &job }));
        self.jobs.push(job);
        result
    }

    fn service_list(&self, a: &ProjectArgs<'_>) -> ToolResult {
        self.check_project(a.project.as_ref())?;
        #[derive(Serialize)]
        struct Row<'s> {
            name: &'s str,
            project: &'s str,
            state: ServiceState,
            image: &'s str,
            replicas: u32,
        }
        let services: Vec<Row<'_>> = self
            .services
            .iter()
            .filter(|(_, s)| a.project.as_deref().is_none_or(|p| p == s.project))
            .map(|(name, s)| Row {
                name,
                project: s.project,
                state: s.state,
                image: &s.image,
                replicas: s.replicas,
            })
            .collect();
        ok(&json!({ "services": services }))
    }

    fn service_status(&mut self, a: &ServiceArgs<'_>) -> ToolResult {
        #[derive(Serialize)]
        struct Status<'s> {
            service: &'s str,
            project: &'s str,
            state: ServiceState,
            image: &'s str,
            replicas: u32,
            failed_deploys: u32,
            has_failure_history: bool,
        }
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        ok(&Status {
            service: &a.service,
            project: s.project,
            state: s.state,
            image: &s.image,
            replicas: s.replicas,
            failed_deploys: s.failed_deploys,
            has_failure_history: s.failed_deploys > 0,
        })
    }

    fn service_events(&mut self, a: &ServiceArgs<'_>) -> ToolResult {
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        ok(&json!({ "service": a.service, "events": s.events }))
    }

    fn service_logs(&mut self, a: &ServiceArgs<'_>, kind: LogKind) -> ToolResult {
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        let (kind, lines) = match kind {
            LogKind::Build => ("build", &s.build_log),
            LogKind::Runtime => ("runtime", &s.runtime_log),
        };
        ok(&json!({ "service": a.service, "kind": kind, "lines": lines }))
    }

    fn service_deploy(&mut self, a: &ServiceArgs<'_>) -> ToolResult {
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        let previous = s.state;
        s.last_deploy += 1;
        let deploy = s.last_deploy;
        s.state = ServiceState::Running;
        record(
            &mut s.events,
            format!("deploy #{deploy} started (image {})", s.image),
        );
        record(
            &mut s.events,
            format!("deploy #{deploy} succeeded (image {})", s.image),
        );
        s.build_log = vec![
            format!("deploy #{deploy}: building image {}", s.image),
            format!("deploy #{deploy}: image {} built", s.image),
        ];
        record(
            &mut s.runtime_log,
            format!("deploy #{deploy}: {} replica(s) started", s.replicas),
        );
        ok(&json!({
            "service": a.service,
            "deploy": deploy,
            "image": s.image,
            "previous_state": previous,
            "state": s.state,
        }))
    }

    fn service_restart(&mut self, a: &ServiceArgs<'_>) -> ToolResult {
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        if s.state == ServiceState::WaitingForFirstDeploy {
            return tool_error(
                "INVALID_STATE",
                format!(
                    "service {} has never been deployed; deploy it first",
                    a.service
                ),
            );
        }
        record(
            &mut s.events,
            format!("restarted {} replica(s)", s.replicas),
        );
        record(&mut s.runtime_log, "restarted".to_owned());
        ok(&json!({
            "service": a.service,
            "restarted": true,
            "replicas": s.replicas,
            "state": s.state,
        }))
    }

    fn service_scale(&mut self, a: &ScaleArgs<'_>) -> ToolResult {
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        let previous = s.replicas;
        s.replicas = a.replicas;
        record(
            &mut s.events,
            format!("scaled from {previous} to {} replicas", a.replicas),
        );
        ok(&json!({
            "service": a.service,
            "previous_replicas": previous,
            "replicas": a.replicas,
        }))
    }

    fn service_env_set(&mut self, a: &EnvArgs<'_>) -> ToolResult {
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        if s.env.len() >= MAX_ENV_VARS && !s.env.contains_key(a.key.as_ref()) {
            return limit_reached("environment variables on this service");
        }
        let previous = s.env.insert(a.key.to_string(), a.value.to_string());
        let changed = previous.as_deref() != Some(a.value.as_ref());
        record(&mut s.events, format!("environment variable {} set", a.key));
        // The value may be a secret: report what changed, never the value itself.
        ok(&json!({
            "service": a.service,
            "key": a.key,
            "created": previous.is_none(),
            "changed": changed,
        }))
    }

    fn service_delete(&mut self, a: &ServiceArgs<'_>) -> ToolResult {
        let project = self.service_mut(&a.service, a.project.as_ref())?.project;
        self.services.remove(a.service.as_ref());
        ok(&json!({ "service": a.service, "project": project, "deleted": true }))
    }

    fn service_replace(&mut self, a: &ReplaceArgs<'_>) -> ToolResult {
        let image = a.image.trim();
        if image.is_empty() {
            return tool_error("INVALID_ARGUMENT", "image must not be empty".to_owned());
        }
        let s = self.service_mut(&a.service, a.project.as_ref())?;
        let previous_image = std::mem::replace(&mut s.image, image.to_owned());
        let discarded = s.failed_deploys;
        s.last_deploy += 1;
        let deploy = s.last_deploy;
        s.failed_deploys = 0;
        s.state = ServiceState::Running;
        s.events = vec![format!(
            "replaced image {previous_image} with {image}; deploy #{deploy} succeeded"
        )];
        s.build_log = vec![format!("deploy #{deploy}: image {image} pulled")];
        s.runtime_log = vec![format!(
            "deploy #{deploy}: {} replica(s) started",
            s.replicas
        )];
        ok(&json!({
            "service": a.service,
            "previous_image": previous_image,
            "image": image,
            "deploy": deploy,
            "discarded_failed_deploys": discarded,
            "state": s.state,
        }))
    }
}
