//! The validated policy and the decisions made on it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use keygate_keys::{KeyKind, Principal};
use serde_json::Value;

use crate::authorized::{Authorized, ProjectAccess, project_access};
use crate::denied::Denied;
use crate::error::PolicyError;
use crate::names::fold_name;

/// The built-in scope for owner administration of keys and projects. It is always
/// in the catalogue and is never required by a tool.
pub const ADMIN_SCOPE: &str = "keys:admin";

/// The catalogue description of [`ADMIN_SCOPE`].
pub const ADMIN_SCOPE_DESCRIPTION: &str = "Manage API keys and projects (owners only)";

/// The built-in scope a person's user key needs to approve or deny an agent's gated
/// call (`approval = "person"` gates). Like [`ADMIN_SCOPE`] it is always in the
/// catalogue, an owner may grant it, and no tool or method ever requires it.
pub const APPROVE_SCOPE: &str = "gates:approve";

/// The catalogue description of [`APPROVE_SCOPE`].
pub const APPROVE_SCOPE_DESCRIPTION: &str =
    "Approve or deny an agent's gated calls (a person's own user key)";

/// Who approves a gated call (`approval = "person" | "page" | "agent"` in a gate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApprovalBy {
    /// `"person"` (the default): a person approves, asked through the calling client
    /// when it can ask its person (MRTR, elicitation: the MCP host shows the form to its
    /// user; the model never sees it), else on the approval page, signed in with their
    /// own key. The client channels trust the MCP host: a program holding the calling
    /// key can answer them itself.
    #[default]
    Person,
    /// `"page"`: a person approves on the approval page only, signed in with their own
    /// key (`gates:approve`, never the calling key). Nothing sent with the calling key
    /// alone runs the call, whatever runs the client.
    Page,
    /// `"agent"`: the agent relays a one-time challenge back. Not person-verified: the
    /// platform accepts the agent's word that its person agreed.
    Agent,
}

impl ApprovalBy {
    /// `person`, `page` or `agent`, as written in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Page => "page",
            Self::Agent => "agent",
        }
    }

    /// Whether a person approves (`person` or `page`): the gate answers
    /// `APPROVAL_REQUIRED` and never reads an agent's `confirm`.
    pub fn is_person(self) -> bool {
        matches!(self, Self::Person | Self::Page)
    }

    /// Whether the calling client may ask its person (MRTR, elicitation): `person` only.
    pub fn asks_through_client(self) -> bool {
        self == Self::Person
    }
}

/// The method families `[methods]` maps to scopes: every method `<family>/…` is
/// allowed with the family's scopes, unless the method has an entry of its own.
pub const METHOD_FAMILIES: [&str; 3] = ["resources", "prompts", "completion"];

/// The methods of [`METHOD_FAMILIES`] that `[methods]` may also name one by one, to
/// require other scopes than their family (`"resources/subscribe" = [...]`).
pub const POLICED_METHODS: [&str; 8] = [
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Whether `method` is a lifecycle or utility message, which always passes:
/// `initialize`, `ping`, every `notifications/…`, `server/discover` and
/// `logging/setLevel`. (Answers to server requests carry no method and pass too.)
///
/// ```
/// assert!(keygate_scopes::always_allowed("notifications/initialized"));
/// assert!(!keygate_scopes::always_allowed("resources/read"));
/// ```
pub fn always_allowed(method: &str) -> bool {
    matches!(
        method,
        "initialize" | "ping" | "server/discover" | "logging/setLevel"
    ) || method.starts_with("notifications/")
}

/// A validated tool policy: the scope catalogue, every tool an agent may call and the
/// scopes the other MCP methods need.
///
/// Tools not in the policy are denied, and so are methods `[methods]` does not map
/// (see [`Policy::authorize_method`]). Build one with [`Policy::from_toml_str`] or
/// [`Policy::load`].
///
/// ```
/// use keygate_scopes::Policy;
///
/// let policy = Policy::from_toml_str(r#"
///     [scopes]
///     "services:read" = "Read services"
///
///     [tools."service.list"]
///     scopes = ["services:read"]
/// "#)?;
/// assert!(policy.tool("service.list").is_some());
/// assert!(policy.tool("service.delete").is_none());
/// # Ok::<(), keygate_scopes::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) scopes: BTreeMap<String, String>,
    pub(crate) tools: BTreeMap<String, ToolPolicy>,
    /// `[methods]`: a family (`resources`) or one method (`resources/read`) → the
    /// scopes it requires, all of them.
    pub(crate) methods: BTreeMap<String, Vec<String>>,
    /// Evidence tool name → the target arguments of the evidence gates listing it.
    pub(crate) evidence: BTreeMap<String, Vec<String>>,
}

/// What the policy says about one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPolicy {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) user_only: bool,
    pub(crate) mutating: bool,
    pub(crate) project_arg: Option<String>,
    pub(crate) gate: Option<GateSpec>,
}

impl ToolPolicy {
    /// The tool's name, such as `service.delete`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A description for people, when the policy gives one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The scopes a key must hold, all of them, in policy order.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether only user keys (not tenant keys) may call the tool.
    pub fn user_only(&self) -> bool {
        self.user_only
    }

    /// Whether the tool changes state. A key that reaches no mutating tool is read-only.
    pub fn mutating(&self) -> bool {
        self.mutating
    }

    /// The argument that names a project, if the tool takes one.
    pub fn project_arg(&self) -> Option<&str> {
        self.project_arg.as_deref()
    }

    /// The confirmation gate guarding the tool, if any.
    pub fn gate(&self) -> Option<&GateSpec> {
        self.gate.as_ref()
    }
}

/// Targets a gate never lets through, such as the gateway's own service: kept as
/// written and in their folded form ([`fold_name`]), computed once at load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    names: Vec<String>,
    folded: Vec<String>,
}

impl Protected {
    /// Protects `names`.
    pub fn new(names: Vec<String>) -> Self {
        let folded = names.iter().map(|n| fold_name(n)).collect();
        Self { names, folded }
    }

    /// The protected names as written in the policy.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether nothing is protected.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The protected name `target` looks like (same [`fold_name`] form), as written in
    /// the policy.
    pub fn matching(&self, target: &str) -> Option<&str> {
        if self.names.is_empty() {
            return None;
        }
        let target = fold_name(target);
        self.folded
            .iter()
            .position(|f| *f == target)
            .map(|i| self.names[i].as_str())
    }
}

/// A confirmation gate, as the policy file declares it (`gate = { kind = ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GateSpec {
    /// `kind = "approval"`: every call needs a one-time challenge echoed back with the
    /// exact target; targets in `protect` are never allowed.
    Approval {
        /// The argument naming the target, such as `service`.
        target_arg: String,
        /// Targets that are never allowed (compared in their [`fold_name`] form),
        /// such as the gateway's own service.
        protect: Protected,
        /// Who approves a call: a person (default) or the agent's relayed challenge.
        approval: ApprovalBy,
    },
    /// `kind = "evidence"`: when the target has failure history, the evidence tools
    /// must have been read for it in the session (or, for a stateless request, by the
    /// key within `evidence_window`) before approval is asked for;
    /// targets in `protect` are never allowed, history or not.
    Evidence {
        /// The argument naming the target, such as `service`.
        target_arg: String,
        /// The tool that answers whether the target has failure history.
        status_tool: String,
        /// The boolean field of the status tool's `structuredContent` saying so.
        failure_field: String,
        /// The tools whose output is the evidence (events, build logs, runtime logs).
        evidence_tools: Vec<String>,
        /// Targets that are never allowed, as for approval gates.
        protect: Protected,
        /// Who approves a call once the evidence is read, as for approval gates.
        approval: ApprovalBy,
        /// How long an evidence read by a stateless request (one without a session)
        /// counts for the same key's later calls (`evidence_window`, default
        /// [`DEFAULT_EVIDENCE_WINDOW`]). Reads in a session count for that session.
        evidence_window: Duration,
    },
}

/// Default `evidence_window` of evidence gates: 15 minutes.
pub const DEFAULT_EVIDENCE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Longest `evidence_window` a policy may set: one hour, the lifetime of evidence
/// reads in the gate store.
pub const MAX_EVIDENCE_WINDOW: Duration = Duration::from_secs(60 * 60);

impl GateSpec {
    /// An approval gate on `target_arg`, never allowing the targets in `protect`,
    /// approved by a person (see [`GateSpec::with_approval_by`]).
    pub fn approval(target_arg: impl Into<String>, protect: Vec<String>) -> Self {
        Self::Approval {
            target_arg: target_arg.into(),
            protect: Protected::new(protect),
            approval: ApprovalBy::Person,
        }
    }

    /// An evidence gate on `target_arg`, protecting nothing (see
    /// [`GateSpec::with_protect`]).
    pub fn evidence(
        target_arg: impl Into<String>,
        status_tool: impl Into<String>,
        failure_field: impl Into<String>,
        evidence_tools: Vec<String>,
    ) -> Self {
        Self::Evidence {
            target_arg: target_arg.into(),
            status_tool: status_tool.into(),
            failure_field: failure_field.into(),
            evidence_tools,
            protect: Protected::default(),
            approval: ApprovalBy::Person,
            evidence_window: DEFAULT_EVIDENCE_WINDOW,
        }
    }

    /// The same gate with `evidence_window` set to `window` (evidence gates only;
    /// approval gates are returned unchanged).
    #[must_use]
    pub fn with_evidence_window(mut self, window: Duration) -> Self {
        if let Self::Evidence {
            evidence_window, ..
        } = &mut self
        {
            *evidence_window = window;
        }
        self
    }

    /// The `evidence_window` of an evidence gate; `None` for approval gates.
    pub fn evidence_window(&self) -> Option<Duration> {
        match self {
            Self::Evidence {
                evidence_window, ..
            } => Some(*evidence_window),
            Self::Approval { .. } => None,
        }
    }

    /// The same gate, approved by `by` instead.
    #[must_use]
    pub fn with_approval_by(mut self, by: ApprovalBy) -> Self {
        match &mut self {
            Self::Approval { approval, .. } | Self::Evidence { approval, .. } => *approval = by,
        }
        self
    }

    /// Who approves a call of the gate.
    pub fn approval_by(&self) -> ApprovalBy {
        match self {
            Self::Approval { approval, .. } | Self::Evidence { approval, .. } => *approval,
        }
    }

    /// The same gate, protecting `protect` instead.
    #[must_use]
    pub fn with_protect(mut self, protect: Vec<String>) -> Self {
        match &mut self {
            Self::Approval { protect: p, .. } | Self::Evidence { protect: p, .. } => {
                *p = Protected::new(protect);
            }
        }
        self
    }

    /// `approval` or `evidence`, as written in the policy file.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Approval { .. } => "approval",
            Self::Evidence { .. } => "evidence",
        }
    }

    /// The argument naming the target.
    pub fn target_arg(&self) -> &str {
        match self {
            Self::Approval { target_arg, .. } | Self::Evidence { target_arg, .. } => target_arg,
        }
    }

    /// The target named by a call's arguments: the target argument, when it is a string.
    pub fn target<'a>(&self, args: &'a Value) -> Option<&'a str> {
        args.get(self.target_arg()).and_then(Value::as_str)
    }

    /// Targets that are never allowed, as written in the policy.
    pub fn protect(&self) -> &[String] {
        self.protected().names()
    }

    /// The protected targets of the gate.
    pub fn protected(&self) -> &Protected {
        match self {
            Self::Approval { protect, .. } | Self::Evidence { protect, .. } => protect,
        }
    }

    /// The protected target `target` names or looks like, as written in the policy:
    /// equal once both are in their [`fold_name`] form (NFKC, case folded, without
    /// default-ignorable code points, controls, format characters or accents,
    /// trimmed).
    pub fn protected_as(&self, target: &str) -> Option<&str> {
        self.protected().matching(target)
    }

    /// Whether `target` is protected (see [`GateSpec::protected_as`]).
    pub fn is_protected(&self, target: &str) -> bool {
        self.protected_as(target).is_some()
    }
}

impl Policy {
    /// Parses and validates a policy from TOML text. Errors give the line and column.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Invalid`] for bad TOML, unknown or mistyped fields, a tool or
    /// method requiring an undeclared scope, a duplicate scope in a list, a gate on a
    /// non-mutating tool, a gate without `target_arg`, a gate naming a status or
    /// evidence tool that is not in the policy, or a `[methods]` entry that is not a
    /// family of [`METHOD_FAMILIES`] or one of [`POLICED_METHODS`].
    pub fn from_toml_str(src: &str) -> Result<Self, PolicyError> {
        crate::load::parse(src)
    }

    /// Reads, parses and validates a policy file. Errors name the file.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Read`] when the file cannot be read, otherwise as
    /// [`Policy::from_toml_str`], with the file's path in the location.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&src).map_err(|e| e.with_path(path))
    }

    /// The scope catalogue as `(name, description)`, sorted by name, [`ADMIN_SCOPE`]
    /// and [`APPROVE_SCOPE`] included.
    pub fn scopes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.scopes.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The description of a scope, if it is in the catalogue.
    pub fn scope(&self, name: &str) -> Option<&str> {
        self.scopes.get(name).map(String::as_str)
    }

    /// Every scope of the catalogue, sorted, [`ADMIN_SCOPE`] and [`APPROVE_SCOPE`]
    /// included: what a bootstrapped owner key receives.
    pub fn all_scopes(&self) -> Vec<String> {
        self.scopes.keys().cloned().collect()
    }

    /// The policy of one tool, if the tool is in the policy.
    pub fn tool(&self, name: &str) -> Option<&ToolPolicy> {
        self.tools.get(name)
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> impl Iterator<Item = &ToolPolicy> {
        self.tools.values()
    }

    /// Decides whether `principal` may call `tool` with `args`. Allocates nothing
    /// unless it denies.
    ///
    /// Checks, in order: the tool is in the policy; the key holds every required
    /// scope; a user-only tool is called with a user key; and, when the tool has a
    /// project argument, the project it names (a string). A key restricted to projects
    /// must name one of them (by name or id; [`ProjectAccess::Resolved`]). A key not
    /// restricted to projects may leave the argument out ([`ProjectAccess::None`]);
    /// when it names a project, the answer is [`ProjectAccess::InTenant`]: the caller
    /// **must** resolve the name within the key's tenant and refuse the call
    /// ([`Authorized::outside_tenant`]) when the tenant has no such project, since an
    /// unrestricted key reaches every project of its own tenant and of no other.
    ///
    /// ```
    /// use keygate_scopes::{Policy, ProjectAccess};
    /// # use keygate_keys::{KeyId, KeyKind, Principal, TenantId, TenantRef};
    /// # let principal = Principal {
    /// #     key_id: "a1b2c3d4e5f6".parse::<KeyId>()?,
    /// #     tenant: TenantRef { id: TenantId::new("tn_1"), name: "acme".to_owned() },
    /// #     kind: KeyKind::Tenant,
    /// #     user: None,
    /// #     scopes: std::sync::Arc::new(["services:read".to_owned()].into()),
    /// #     projects: None,
    /// #     expires_at: None,
    /// # };
    ///
    /// let policy = Policy::from_toml_str(r#"
    ///     [scopes]
    ///     "services:read" = "Read services"
    ///
    ///     [tools."service.list"]
    ///     scopes = ["services:read"]
    ///     project_arg = "project"
    /// "#)?;
    /// let args = serde_json::json!({"project": "shop"});
    /// let allowed = policy.authorize(&principal, "service.list", &args)?;
    /// // An unrestricted key: `shop` must be a project of the key's own tenant.
    /// assert_eq!(allowed.project(), ProjectAccess::InTenant("shop"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`Denied`] reason found.
    pub fn authorize<'a>(
        &'a self,
        principal: &'a Principal,
        tool: &str,
        args: &'a Value,
    ) -> Result<Authorized<'a>, Denied> {
        let Some(policy) = self.tools.get(tool) else {
            return Err(Denied::UnknownTool {
                tool: tool.to_owned(),
            });
        };
        if let Some(scope) = policy.scopes.iter().find(|s| !principal.has_scope(s)) {
            return Err(Denied::MissingScope {
                tool: tool.to_owned(),
                scope: scope.clone(),
            });
        }
        if policy.user_only && principal.kind != KeyKind::User {
            return Err(Denied::UserOnly {
                tool: tool.to_owned(),
            });
        }
        let project = match &policy.project_arg {
            Some(arg) => project_access(
                principal,
                policy,
                args.get(arg.as_str()).and_then(Value::as_str),
            )?,
            None => ProjectAccess::None,
        };
        Ok(Authorized {
            tool: policy,
            project,
        })
    }

    /// The scopes `[methods]` requires for `method`: its own entry, else its family's
    /// (the part before the first `/`); `None` when neither is listed. A method
    /// without a `/` has no family.
    pub fn method_scopes(&self, method: &str) -> Option<&[String]> {
        let (family, _) = method.split_once('/')?;
        self.methods
            .get(method)
            .or_else(|| self.methods.get(family))
            .map(Vec::as_slice)
    }

    /// Every `[methods]` entry (a family or one method) with the scopes it requires,
    /// sorted by name.
    pub fn methods(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.methods.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Decides whether `principal` may send a JSON-RPC request or notification with
    /// `method`. Allocates nothing unless it denies.
    ///
    /// - Lifecycle and utility messages ([`always_allowed`]) pass.
    /// - `tools/list` and `tools/call` pass: tools are policed one by one by
    ///   `[tools]`, so every call must still pass [`Policy::authorize`] with its tool,
    ///   and a list answer is filtered with [`Policy::visible_tools`].
    /// - Every other method needs the scopes [`Policy::method_scopes`] names, all of
    ///   them. A method `[methods]` does not map, itself or by its family, is denied:
    ///   families not listed (`prompts` in a policy that maps only `resources`),
    ///   families no policy can map (`tasks/…`, `sampling/…`) and made-up names alike.
    ///
    /// ```
    /// # use std::collections::BTreeSet;
    /// # use keygate_keys::{KeyId, KeyKind, Principal, TenantId, TenantRef};
    /// use keygate_scopes::{Denied, Policy};
    ///
    /// let policy = Policy::from_toml_str(r#"
    ///     [scopes]
    ///     "docs:read" = "Read the documentation"
    ///
    ///     [methods]
    ///     resources = ["docs:read"]
    /// "#)?;
    /// # let key = Principal {
    /// #     key_id: "abcdefghijkl".parse::<KeyId>().expect("an id"),
    /// #     tenant: TenantRef { id: TenantId::new("tn_1"), name: "acme".to_owned() },
    /// #     kind: KeyKind::Tenant,
    /// #     user: None,
    /// #     scopes: std::sync::Arc::new(BTreeSet::new()),
    /// #     projects: None,
    /// #     expires_at: None,
    /// # };
    /// // `key` holds no scope.
    /// assert!(policy.authorize_method(&key, "ping").is_ok());
    /// assert!(matches!(
    ///     policy.authorize_method(&key, "resources/read"),
    ///     Err(Denied::MethodMissingScope { .. })
    /// ));
    /// assert!(matches!(
    ///     policy.authorize_method(&key, "prompts/get"),
    ///     Err(Denied::UnknownMethod { .. })
    /// ));
    /// # Ok::<(), keygate_scopes::PolicyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Denied::UnknownMethod`] for a method the policy does not map,
    /// [`Denied::MethodMissingScope`] naming the first required scope the key lacks.
    pub fn authorize_method(&self, principal: &Principal, method: &str) -> Result<(), Denied> {
        if always_allowed(method) || matches!(method, "tools/list" | "tools/call") {
            return Ok(());
        }
        let Some(scopes) = self.method_scopes(method) else {
            return Err(Denied::UnknownMethod {
                method: method.to_owned(),
            });
        };
        match scopes.iter().find(|s| !principal.has_scope(s)) {
            Some(scope) => Err(Denied::MethodMissingScope {
                method: method.to_owned(),
                scope: scope.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `principal` passes the scope and user-only checks of `tool` (the
    /// project argument aside): whether the tool should be listed for the key.
    pub fn can_see(&self, principal: &Principal, tool: &ToolPolicy) -> bool {
        tool.scopes.iter().all(|s| principal.has_scope(s))
            && (!tool.user_only || principal.kind == KeyKind::User)
    }

    /// The tools `principal` may call (scopes and user-only checks pass), sorted by
    /// name: what `tools/list` answers.
    pub fn visible_tools(&self, principal: &Principal) -> Vec<&str> {
        self.tools
            .values()
            .filter(|t| self.can_see(principal, t))
            .map(ToolPolicy::name)
            .collect()
    }

    /// Whether `principal` can call no mutating tool.
    pub fn read_only(&self, principal: &Principal) -> bool {
        !self
            .tools
            .values()
            .any(|t| t.mutating && self.can_see(principal, t))
    }

    /// When `tool` is an evidence tool of some evidence gate, the target its call
    /// reads evidence for: the value of the gate's target argument in `args`. The
    /// gateway records the read (after the call succeeded) under this target.
    pub fn evidence_target<'a>(&self, tool: &str, args: &'a Value) -> Option<&'a str> {
        self.evidence
            .get(tool)?
            .iter()
            .find_map(|arg| args.get(arg.as_str()).and_then(Value::as_str))
    }
}
