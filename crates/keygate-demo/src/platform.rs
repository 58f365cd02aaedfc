//! The in-memory platform state and the tools that read and change it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

/// The demo platform: projects, services, customers, invoices and jobs, held in memory,
/// one data set per tenant.
///
/// Behind the gateway every request carries `X-Keygate-Tenant`, and each tenant gets a
/// data set of its own, seeded with the state described in the crate documentation on
/// its first request: one tenant can never read or change another's services. A request
/// without the header (the platform served directly, as the load-test baseline or the
/// standalone example) uses a data set of its own that no tenant shares. At most
/// [`Platform::MAX_TENANTS`] tenant data sets are kept; the one used longest ago makes
/// room for a new tenant, which finds the seeded state again on its next request.
///
/// Cloning is cheap and every clone shares the same state, so a clone handed to
/// [`router`](crate::router) and one kept by a test see the same changes.
#[derive(Clone)]
pub struct Platform {
    /// The data set of requests that name no tenant.
    direct: Arc<Mutex<State>>,
    tenants: Arc<Mutex<Tenants>>,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenants = lock(&self.tenants).sets.len();
        let state = lock(&self.direct);
        f.debug_struct("Platform")
            .field("tenants", &tenants)
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

/// Who a request comes from, as the gateway's identity headers say.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Caller<'a> {
    /// `X-Keygate-Tenant`: whose data set the call reads and changes.
    pub(crate) tenant: Option<&'a str>,
    /// `X-Keygate-Project`: the project id the gateway resolved the call's project to.
    pub(crate) project: Option<&'a str>,
    /// `X-Keygate-User`: the calling person, for user keys.
    pub(crate) user: Option<&'a str>,
}

/// The tenant data sets, with when each was last used.
struct Tenants {
    sets: HashMap<String, Slot>,
    /// Incremented on every use: a logical clock for "used longest ago".
    clock: u64,
    max: usize,
}

struct Slot {
    state: Arc<Mutex<State>>,
    used: u64,
}

impl Tenants {
    /// The data set of `tenant`, seeded on first use; when `max` are held, the one
    /// used longest ago is dropped first.
    fn get(&mut self, tenant: &str) -> Arc<Mutex<State>> {
        self.clock += 1;
        let now = self.clock;
        if let Some(slot) = self.sets.get_mut(tenant) {
            slot.used = now;
            return slot.state.clone();
        }
        if self.sets.len() >= self.max {
            let oldest = self
                .sets
                .iter()
                .min_by_key(|(_, slot)| slot.used)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.sets.remove(&id);
            }
        }
        let state = Arc::new(Mutex::new(State::seed()));
        self.sets.insert(
            tenant.to_owned(),
            Slot {
                state: state.clone(),
                used: now,
            },
        );
        state
    }
}

/// Locks `m`. A poisoned lock is recovered: every tool leaves the state consistent
/// before it can panic, so the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Platform {
    /// Most tenant data sets kept at once.
    pub const MAX_TENANTS: usize = 100;

    /// A platform whose every data set starts as the seeded demo state: projects `shop`
    /// and `ops`; services `api` (shop, running), `worker` (shop, two failed deploys),
    /// `web` (shop, waiting for its first deploy) and `keygate` (ops, running);
    /// customers Acme Corp, Globex and Initech; one invoice each.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_tenants(Self::MAX_TENANTS)
    }

    fn with_max_tenants(max: usize) -> Self {
        Self {
            direct: Arc::new(Mutex::new(State::seed())),
            tenants: Arc::new(Mutex::new(Tenants {
                sets: HashMap::new(),
                clock: 0,
                max: max.max(1),
            })),
        }
    }

    /// Whether a service of this name exists in the data set of requests that name no
    /// tenant (it may have been deleted by `service.delete`).
    #[must_use]
    pub fn has_service(&self, name: &str) -> bool {
        lock(&self.direct).services.contains_key(name)
    }

    /// Whether a service of this name exists in the data set of `tenant` (the value of
    /// `X-Keygate-Tenant`), seeding it if the tenant had none yet.
    #[must_use]
    pub fn has_tenant_service(&self, tenant: &str, name: &str) -> bool {
        let state = lock(&self.tenants).get(tenant);
        lock(&state).services.contains_key(name)
    }

    /// Calls a tool with its JSON arguments object, on the caller's data set.
    pub(crate) fn call(
        &self,
        caller: &Caller<'_>,
        tool: &str,
        args: &str,
    ) -> Result<ToolResult, CallError> {
        match caller.tenant {
            None => lock(&self.direct).call(caller, tool, args),
            Some(tenant) => {
                let state = lock(&self.tenants).get(tenant);
                let mut state = lock(&state);
                state.call(caller, tool, args)
            }
        }
    }
}

impl State {
    fn call(
        &mut self,
        caller: &Caller<'_>,
        tool: &str,
        args: &str,
    ) -> Result<ToolResult, CallError> {
        let user = caller.user;
        let header = caller.project;
        // Resolves the call's project, then runs the tool on it; given the arguments'
        // type, parses them first (as `a`).
        macro_rules! scoped {
            ($args:ident, |$p:pat_param| $then:expr) => {
                Ok(
                    match self.resolve_project($args.project.as_deref(), header) {
                        Ok($p) => $then,
                        Err(e) => Err(e),
                    },
                )
            };
            ($ty:ident, |$a:ident, $p:pat_param| $then:expr) => {{
                let $a: $ty<'_> = parse(args)?;
                scoped!($a, |$p| $then)
            }};
        }
        match tool {
            "customers.search" => scoped!(SearchArgs, |a, _| self.customers_search(&a)),
            "customers.create" => scoped!(NameArgs, |a, _| self.customers_create(&a, user)),
            "invoices.list" => scoped!(ProjectArgs, |a, _| self.invoices_list()),
            "jobs.create" => scoped!(TitleArgs, |a, _| self.jobs_create(&a, user)),
            "service.list" => scoped!(ProjectArgs, |a, p| self.service_list(p)),
            "service.status" => scoped!(ServiceArgs, |a, p| self.service_status(&a, p)),
            "service.events" => scoped!(ServiceArgs, |a, p| self.service_events(&a, p)),
            "service.logs.build" => {
                scoped!(ServiceArgs, |a, p| self.service_logs(&a, p, LogKind::Build))
            }
            "service.logs.runtime" => {
                let kind = LogKind::Runtime;
                scoped!(ServiceArgs, |a, p| self.service_logs(&a, p, kind))
            }
            "service.deploy" => scoped!(ServiceArgs, |a, p| self.service_deploy(&a, p)),
            "service.restart" => scoped!(ServiceArgs, |a, p| self.service_restart(&a, p)),
            "service.scale" => {
                let a: ScaleArgs<'_> = parse(args)?;
                if a.replicas > MAX_REPLICAS {
                    return Err(CallError::InvalidParams(format!(
                        "replicas must be between 0 and {MAX_REPLICAS}"
                    )));
                }
                scoped!(a, |p| self.service_scale(&a, p))
            }
            "service.env.set" => {
                let a: EnvArgs<'_> = parse(args)?;
                if !valid_env_key(&a.key) {
                    return Err(CallError::InvalidParams(
                        "key must be letters, digits and `_`, not starting with a digit".to_owned(),
                    ));
                }
                scoped!(a, |p| self.service_env_set(&a, p))
            }
            "service.delete" => scoped!(ServiceArgs, |a, p| self.service_delete(&a, p)),
            "service.replace" => scoped!(ReplaceArgs, |a, p| self.service_replace(&a, p)),
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

/// What `tool` records: the calling user and its trimmed `field`, `text`; without a
/// user `USER_REQUIRED`, and `INVALID_ARGUMENT` when the text is empty.
fn created_by<'a>(
    tool: &str,
    user: Option<&'a str>,
    field: &str,
    text: &'a str,
) -> Result<(&'a str, &'a str), ToolError> {
    let Some(user) = user else {
        return Err(ToolError {
            code: "USER_REQUIRED",
            message: format!("{tool} needs a user"),
        });
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(ToolError {
            code: "INVALID_ARGUMENT",
            message: format!("{field} must not be empty"),
        });
    }
    Ok((user, text))
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

/// The arguments of the tools: the named text fields (borrowed from the request),
/// after `;` any others, and the optional `project` every tool takes.
macro_rules! tool_args {
    ($($name:ident { $($text:ident),* $(; $($field:ident: $ty:ty),*)? })*) => {$(
        #[derive(Deserialize)]
        struct $name<'a> {
            $(
                #[serde(borrow)]
                $text: Cow<'a, str>,
            )*
            $($($field: $ty,)*)?
            #[serde(borrow, default)]
            project: Option<Cow<'a, str>>,
        }
    )*};
}

tool_args! {
    ProjectArgs {}
    SearchArgs { q }
    NameArgs { name }
    TitleArgs { title }
    ServiceArgs { service }
    ScaleArgs { service; replicas: u32 }
    EnvArgs { service, key, value }
    ReplaceArgs { service, image }
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
    /// Project ids the gateway sent (`X-Keygate-Project`) with the project name each
    /// was first sent for: at most one per project.
    bound: Vec<(String, &'static str)>,
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
            bound: Vec::new(),
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

    /// The demo project named `name`.
    fn project_named(&self, name: &str) -> Result<&'static str, ToolError> {
        self.projects
            .iter()
            .find(|p| **p == name)
            .copied()
            .ok_or_else(|| ToolError {
                code: "UNKNOWN_PROJECT",
                message: format!("unknown project {name}"),
            })
    }

    /// The project a call is scoped to, from its `project` argument and the project id
    /// the gateway resolved it to (`X-Keygate-Project`), which is what an upstream should
    /// trust. A demo data set does not know its tenant's project ids in advance: an id
    /// is bound to the demo project it is first sent with by name, and must agree with
    /// the argument from then on.
    fn resolve_project(
        &mut self,
        arg: Option<&str>,
        id: Option<&str>,
    ) -> Result<Option<&'static str>, ToolError> {
        let Some(id) = id else {
            // Served directly, or by a gateway whose policy names no project argument.
            return arg.map(|name| self.project_named(name)).transpose();
        };
        let bound = self
            .bound
            .iter()
            .find(|(bound_id, _)| bound_id == id)
            .map(|(_, name)| *name);
        let named = match arg {
            // The call named the project by its id (or named none).
            None => None,
            Some(a) if a == id => None,
            Some(a) => Some(self.project_named(a)?),
        };
        match (named, bound) {
            (None, Some(name)) => Ok(Some(name)),
            (None, None) => Err(ToolError {
                code: "UNKNOWN_PROJECT",
                message: format!(
                    "project {id} is not known to this demo platform yet: name it once (`shop` or `ops`)"
                ),
            }),
            (Some(name), Some(bound)) if name == bound => Ok(Some(name)),
            (Some(name), None) if !self.bound.iter().any(|(_, n)| *n == name) => {
                self.bound.push((id.to_owned(), name));
                Ok(Some(name))
            }
            (Some(name), _) => Err(ToolError {
                code: "PROJECT_MISMATCH",
                message: format!(
                    "the gateway resolved this call to project {id}, which is not project {name} here"
                ),
            }),
        }
    }

    /// Finds a service, checking it belongs to the call's project (when it names one).
    fn service_mut(
        &mut self,
        name: &str,
        project: Option<&'static str>,
    ) -> Result<&mut Service, ToolError> {
        let Some(service) = self.services.get_mut(name) else {
            return Err(ToolError {
                code: "UNKNOWN_SERVICE",
                message: format!("unknown service {name}"),
            });
        };
        match project {
            Some(p) if p != service.project => Err(ToolError {
                code: "PROJECT_MISMATCH",
                message: format!("service {name} is not in project {p}"),
            }),
            _ => Ok(service),
        }
    }

    fn customers_search(&self, a: &SearchArgs<'_>) -> ToolResult {
        let q = a.q.to_lowercase();
        let found: Vec<&Customer> = self
            .customers
            .iter()
            .filter(|c| c.name.to_lowercase().contains(&q))
            .collect();
        ok(&json!({ "customers": found }))
    }

    fn customers_create(&mut self, a: &NameArgs<'_>, user: Option<&str>) -> ToolResult {
        let (user, name) = created_by("customers.create", user, "name", &a.name)?;
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

    fn invoices_list(&self) -> ToolResult {
        ok(&json!({ "invoices": &self.invoices }))
    }

    fn jobs_create(&mut self, a: &TitleArgs<'_>, user: Option<&str>) -> ToolResult {
        let (user, title) = created_by("jobs.create", user, "title", &a.title)?;
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

    fn service_list(&self, project: Option<&'static str>) -> ToolResult {
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
            .filter(|(_, s)| project.is_none_or(|p| p == s.project))
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

    fn service_status(&mut self, a: &ServiceArgs<'_>, project: Option<&'static str>) -> ToolResult {
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
        let s = self.service_mut(&a.service, project)?;
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

    fn service_events(&mut self, a: &ServiceArgs<'_>, project: Option<&'static str>) -> ToolResult {
        let s = self.service_mut(&a.service, project)?;
        ok(&json!({ "service": a.service, "events": s.events }))
    }

    fn service_logs(
        &mut self,
        a: &ServiceArgs<'_>,
        project: Option<&'static str>,
        kind: LogKind,
    ) -> ToolResult {
        let s = self.service_mut(&a.service, project)?;
        let (kind, lines) = match kind {
            LogKind::Build => ("build", &s.build_log),
            LogKind::Runtime => ("runtime", &s.runtime_log),
        };
        ok(&json!({ "service": a.service, "kind": kind, "lines": lines }))
    }

    fn service_deploy(&mut self, a: &ServiceArgs<'_>, project: Option<&'static str>) -> ToolResult {
        let s = self.service_mut(&a.service, project)?;
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

    fn service_restart(
        &mut self,
        a: &ServiceArgs<'_>,
        project: Option<&'static str>,
    ) -> ToolResult {
        let s = self.service_mut(&a.service, project)?;
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

    fn service_scale(&mut self, a: &ScaleArgs<'_>, project: Option<&'static str>) -> ToolResult {
        let s = self.service_mut(&a.service, project)?;
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

    fn service_env_set(&mut self, a: &EnvArgs<'_>, project: Option<&'static str>) -> ToolResult {
        let s = self.service_mut(&a.service, project)?;
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

    fn service_delete(&mut self, a: &ServiceArgs<'_>, project: Option<&'static str>) -> ToolResult {
        let project = self.service_mut(&a.service, project)?.project;
        self.services.remove(a.service.as_ref());
        ok(&json!({ "service": a.service, "project": project, "deleted": true }))
    }

    fn service_replace(
        &mut self,
        a: &ReplaceArgs<'_>,
        project: Option<&'static str>,
    ) -> ToolResult {
        let image = a.image.trim();
        if image.is_empty() {
            return tool_error("INVALID_ARGUMENT", "image must not be empty".to_owned());
        }
        let s = self.service_mut(&a.service, project)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(platform: &Platform, tenant: &str) -> u32 {
        let state = lock(&platform.tenants).get(tenant);
        lock(&state).services["api"].replicas
    }

    fn scale(platform: &Platform, tenant: &str, replicas: u32) {
        let caller = Caller {
            tenant: Some(tenant),
            ..Caller::default()
        };
        let args = format!(r#"{{"service":"api","replicas":{replicas}}}"#);
        let result = platform.call(&caller, "service.scale", &args);
        assert!(matches!(result, Ok(Ok(_))));
    }

    #[test]
    fn the_data_set_used_longest_ago_makes_room_for_a_new_tenant() {
        let platform = Platform::with_max_tenants(2);
        scale(&platform, "tn_a", 5);
        scale(&platform, "tn_b", 6);
        // `a` used again: `b` is now the one used longest ago.
        scale(&platform, "tn_a", 7);
        scale(&platform, "tn_c", 8);
        assert_eq!(lock(&platform.tenants).sets.len(), 2);
        assert!(lock(&platform.tenants).sets.contains_key("tn_a"));
        assert!(!lock(&platform.tenants).sets.contains_key("tn_b"));
        assert_eq!(replicas(&platform, "tn_a"), 7);
        // `b` comes back seeded (and `c`, now the oldest, makes room for it).
        assert_eq!(replicas(&platform, "tn_b"), 2);
        assert!(!lock(&platform.tenants).sets.contains_key("tn_c"));
        assert_eq!(lock(&platform.tenants).sets.len(), 2);
        // The direct data set is never evicted.
        assert_eq!(lock(&platform.direct).services["api"].replicas, 2);
    }

    #[test]
    fn at_most_max_tenants_are_held() {
        let platform = Platform::new();
        for i in 0..Platform::MAX_TENANTS * 3 {
            scale(&platform, &format!("tn_{i}"), 3);
        }
        assert_eq!(lock(&platform.tenants).sets.len(), Platform::MAX_TENANTS);
    }
}
