//! Parsing and validating policy files.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::PolicyError;
use crate::names::{fold_name, hidden_char};
use crate::policy::{
    ADMIN_SCOPE, ADMIN_SCOPE_DESCRIPTION, APPROVE_SCOPE, APPROVE_SCOPE_DESCRIPTION, ApprovalBy,
    DEFAULT_EVIDENCE_WINDOW, GateSpec, MAX_EVIDENCE_WINDOW, METHOD_FAMILIES, POLICED_METHODS,
    Policy, Protected, ToolPolicy, always_allowed,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    scopes: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    tools: BTreeMap<String, Spanned<RawTool>>,
    #[serde(default)]
    methods: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    #[serde(default)]
    description: Option<String>,
    scopes: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    mutating: bool,
    #[serde(default)]
    user_only: bool,
    #[serde(default)]
    project_arg: Option<Spanned<String>>,
    #[serde(default)]
    gate: Option<Spanned<RawGate>>,
}

/// Both gate kinds in one shape, so that every field keeps its span; which fields a
/// kind accepts is checked after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    kind: Spanned<String>,
    #[serde(default)]
    target_arg: Option<Spanned<String>>,
    #[serde(default)]
    protect: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    status_tool: Option<Spanned<String>>,
    #[serde(default)]
    failure_field: Option<Spanned<String>>,
    #[serde(default)]
    evidence_tools: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    evidence_window: Option<Spanned<toml::Value>>,
    #[serde(default)]
    approval: Option<Spanned<String>>,
}

pub(crate) fn parse(src: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        PolicyError::invalid(src, offset, e.message().trim_end().to_owned())
    })?;
    Validator { src }.validate(raw)
}

struct Validator<'a> {
    src: &'a str,
}

impl Validator<'_> {
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, PolicyError> {
        Err(PolicyError::invalid(self.src, offset, message))
    }

    /// A string that must not be empty or padded with spaces.
    fn name(&self, value: Spanned<String>, what: &str) -> Result<String, PolicyError> {
        let start = value.span().start;
        let value = value.into_inner();
        if value.trim().is_empty() {
            return self.err(start, format!("{what} must not be empty"));
        }
        if value.trim() != value {
            return self.err(
                start,
                format!("{what} `{value}` must not start or end with spaces"),
            );
        }
        Ok(value)
    }

    /// A list of distinct names.
    /// A list of distinct names, each with its offset.
    fn names(
        &self,
        list: Vec<Spanned<String>>,
        what: &str,
    ) -> Result<Vec<(String, usize)>, PolicyError> {
        let mut out: Vec<(String, usize)> = Vec::with_capacity(list.len());
        for item in list {
            let start = item.span().start;
            let name = self.name(item, what)?;
            if out.iter().any(|(n, _)| *n == name) {
                return self.err(start, format!("{what} `{name}` is listed twice"));
            }
            out.push((name, start));
        }
        Ok(out)
    }

    fn validate(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        let mut scopes = BTreeMap::new();
        for (name, description) in raw.scopes {
            let start = description.span().start;
            if name == ADMIN_SCOPE || name == APPROVE_SCOPE {
                return self.err(
                    start,
                    format!("scope `{name}` is built in; remove it from [scopes]"),
                );
            }
            if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
                return self.err(
                    start,
                    format!("scope name `{name}` must be non-empty and contain no spaces"),
                );
            }
            scopes.insert(name, description.into_inner());
        }

        let tool_names: BTreeSet<String> = raw.tools.keys().cloned().collect();
        let mutating_tools: BTreeSet<String> = raw
            .tools
            .iter()
            .filter(|(_, t)| t.get_ref().mutating)
            .map(|(n, _)| n.clone())
            .collect();

        let mut tools = BTreeMap::new();
        let mut evidence: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, tool) in raw.tools {
            let tool_start = tool.span().start;
            if name.trim().is_empty() || name.trim() != name {
                return self.err(
                    tool_start,
                    format!("tool name `{name}` must be non-empty without surrounding spaces"),
                );
            }
            let raw_tool = tool.into_inner();
            let scope_list = self.required_scopes(
                &format!("tool `{name}`"),
                "a tool",
                raw_tool.scopes.into_inner(),
                &scopes,
            )?;
            let project_arg = raw_tool
                .project_arg
                .map(|a| self.name(a, "project_arg"))
                .transpose()?;
            let gate = match raw_tool.gate {
                None => None,
                Some(gate) => {
                    let gate_start = gate.span().start;
                    if !raw_tool.mutating {
                        return self.err(
                            gate_start,
                            format!(
                                "tool `{name}` has a gate but is not mutating; gates guard mutating tools only (set `mutating = true` or remove the gate)"
                            ),
                        );
                    }
                    let spec = self.gate(&name, gate, &tool_names, &mutating_tools)?;
                    if let GateSpec::Evidence {
                        target_arg,
                        evidence_tools,
                        ..
                    } = &spec
                    {
                        for t in evidence_tools {
                            let args = evidence.entry(t.clone()).or_default();
                            if !args.contains(target_arg) {
                                args.push(target_arg.clone());
                            }
                        }
                    }
                    Some(spec)
                }
            };
            tools.insert(
                name.clone(),
                ToolPolicy {
                    name,
                    description: raw_tool.description,
                    scopes: scope_list,
                    user_only: raw_tool.user_only,
                    mutating: raw_tool.mutating,
                    project_arg,
                    gate,
                },
            );
        }
        let mut methods = BTreeMap::new();
        for (name, list) in raw.methods {
            let start = list.span().start;
            self.method_key(&name, start)?;
            let what = if name.contains('/') {
                format!("method `{name}`")
            } else {
                format!("method family `{name}`")
            };
            let required = self.required_scopes(&what, "a method", list.into_inner(), &scopes)?;
            methods.insert(name, required);
        }
        scopes.insert(ADMIN_SCOPE.to_owned(), ADMIN_SCOPE_DESCRIPTION.to_owned());
        scopes.insert(
            APPROVE_SCOPE.to_owned(),
            APPROVE_SCOPE_DESCRIPTION.to_owned(),
        );
        Ok(Policy {
            scopes,
            tools,
            methods,
            evidence,
        })
    }

    /// The scopes a tool or method requires: distinct, declared, never [`ADMIN_SCOPE`]
    /// or [`APPROVE_SCOPE`].
    /// `who` names the tool or method in messages (``tool `t` ``), `kind` its kind
    /// (`a tool`).
    fn required_scopes(
        &self,
        who: &str,
        kind: &str,
        list: Vec<Spanned<String>>,
        declared: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, PolicyError> {
        let list = self.names(list, "scope")?;
        for (scope, start) in &list {
            if scope == ADMIN_SCOPE {
                return self.err(
                    *start,
                    format!(
                        "{who} requires `{ADMIN_SCOPE}`, which is reserved for key administration and is never required by {kind}"
                    ),
                );
            }
            if scope == APPROVE_SCOPE {
                return self.err(
                    *start,
                    format!(
                        "{who} requires `{APPROVE_SCOPE}`, which is reserved for a person approving gated calls and is never required by {kind}"
                    ),
                );
            }
            if !declared.contains_key(scope) {
                return self.err(
                    *start,
                    format!("{who} requires scope `{scope}`, which is not declared in [scopes]"),
                );
            }
        }
        Ok(list.into_iter().map(|(s, _)| s).collect())
    }

    /// A key of `[methods]` must be a family of [`METHOD_FAMILIES`] or one of
    /// [`POLICED_METHODS`]: lifecycle and utility messages always pass, tools are
    /// policed by `[tools]`, and any other name would be a typo or a method the
    /// gateway denies whatever the policy says.
    fn method_key(&self, name: &str, start: usize) -> Result<(), PolicyError> {
        if METHOD_FAMILIES.contains(&name) || POLICED_METHODS.contains(&name) {
            return Ok(());
        }
        if always_allowed(name) || matches!(name, "notifications" | "logging") {
            return self.err(
                start,
                format!(
                    "`{name}` in [methods]: lifecycle and utility messages always pass and are not policed; remove it"
                ),
            );
        }
        if name == "tools" || name.starts_with("tools/") {
            return self.err(
                start,
                format!(
                    "`{name}` in [methods]: tools are policed one by one in [tools]; remove it"
                ),
            );
        }
        self.err(
            start,
            format!(
                "unknown method `{name}` in [methods]; expected a family ({}) or one of its methods ({}); methods not listed are denied",
                quoted(&METHOD_FAMILIES),
                quoted(&POLICED_METHODS),
            ),
        )
    }

    /// An evidence gate's `evidence_window`: whole seconds or a duration such as
    /// `"15m"`, above zero and at most [`MAX_EVIDENCE_WINDOW`].
    fn evidence_window(
        &self,
        tool: &str,
        w: Spanned<toml::Value>,
    ) -> Result<Duration, PolicyError> {
        let start = w.span().start;
        let window = match w.into_inner() {
            toml::Value::Integer(secs) => u64::try_from(secs).ok().map(Duration::from_secs),
            toml::Value::String(text) => {
                let text = text.trim();
                match text.parse::<u64>() {
                    Ok(secs) => Some(Duration::from_secs(secs)),
                    Err(_) => humantime::parse_duration(text).ok(),
                }
            }
            _ => None,
        };
        match window {
            Some(d) if !d.is_zero() && d <= MAX_EVIDENCE_WINDOW => Ok(d),
            _ => self.err(
                start,
                format!(
                    "the `evidence_window` of the gate of tool `{tool}` must be whole seconds or a duration such as \"15m\", above zero and at most 1h"
                ),
            ),
        }
    }

    fn gate(
        &self,
        tool: &str,
        gate: Spanned<RawGate>,
        tool_names: &BTreeSet<String>,
        mutating_tools: &BTreeSet<String>,
    ) -> Result<GateSpec, PolicyError> {
        let gate_start = gate.span().start;
        let raw = gate.into_inner();
        let kind_start = raw.kind.span().start;
        let kind = raw.kind.into_inner();
        let Some(target_arg) = raw.target_arg else {
            return self.err(
                gate_start,
                format!(
                    "the gate of tool `{tool}` has no `target_arg` (the argument naming what the call acts on)"
                ),
            );
        };
        let target_arg = self.name(target_arg, "target_arg")?;
        let approval = match raw.approval {
            None => ApprovalBy::Person,
            Some(by) => {
                let start = by.span().start;
                match by.into_inner().as_str() {
                    "person" => ApprovalBy::Person,
                    "page" => ApprovalBy::Page,
                    "agent" => ApprovalBy::Agent,
                    other => {
                        return self.err(
                            start,
                            format!(
                                "unknown approval `{other}` for the gate of tool `{tool}`; expected `person` (a person approves, the default), `page` (a person approves on the approval page only) or `agent` (the agent relays a challenge; not person-verified)"
                            ),
                        );
                    }
                }
            }
        };
        let not_for = |field: &str, start: usize| {
            self.err::<GateSpec>(
                start,
                format!("`{field}` is not a field of `{kind}` gates (tool `{tool}`)"),
            )
        };
        match kind.as_str() {
            "approval" => {
                for (field, span) in [
                    ("status_tool", raw.status_tool.as_ref().map(Spanned::span)),
                    ("failure_field", raw.failure_field.as_ref().map(Spanned::span)),
                    (
                        "evidence_tools",
                        raw.evidence_tools.as_ref().map(Spanned::span),
                    ),
                    (
                        "evidence_window",
                        raw.evidence_window.as_ref().map(Spanned::span),
                    ),
                ] {
                    if let Some(span) = span {
                        return not_for(field, span.start);
                    }
                }
                let protect = self.protect(raw.protect)?;
                Ok(GateSpec::Approval {
                    target_arg,
                    protect,
                    approval,
                })
            }
            "evidence" => {
                let protect = self.protect(raw.protect)?;
                let Some(status_tool) = raw.status_tool else {
                    return self.err(
                        gate_start,
                        format!("the evidence gate of tool `{tool}` has no `status_tool`"),
                    );
                };
                let status_start = status_tool.span().start;
                let status_tool = self.name(status_tool, "status_tool")?;
                self.known_reader(tool, &status_tool, status_start, tool_names, mutating_tools)?;
                let Some(failure_field) = raw.failure_field else {
                    return self.err(
                        gate_start,
                        format!("the evidence gate of tool `{tool}` has no `failure_field`"),
                    );
                };
                let failure_field = self.name(failure_field, "failure_field")?;
                let Some(list) = raw.evidence_tools else {
                    return self.err(
                        gate_start,
                        format!("the evidence gate of tool `{tool}` has no `evidence_tools`"),
                    );
                };
                let list_start = list.span().start;
                let list = list.into_inner();
                if list.is_empty() {
                    return self.err(
                        list_start,
                        format!("the evidence gate of tool `{tool}` lists no evidence tools"),
                    );
                }
                let mut evidence_tools = Vec::with_capacity(list.len());
                for (t, start) in self.names(list, "evidence tool")? {
                    self.known_reader(tool, &t, start, tool_names, mutating_tools)?;
                    evidence_tools.push(t);
                }
                let evidence_window = match raw.evidence_window {
                    None => DEFAULT_EVIDENCE_WINDOW,
                    Some(w) => self.evidence_window(tool, w)?,
                };
                Ok(GateSpec::Evidence {
                    target_arg,
                    status_tool,
                    failure_field,
                    evidence_tools,
                    protect,
                    approval,
                    evidence_window,
                })
            }
            other => self.err(
                kind_start,
                format!(
                    "unknown gate kind `{other}` for tool `{tool}`; expected `approval` or `evidence`"
                ),
            ),
        }
    }

    /// The `protect` list of a gate: names without hidden characters, none looking
    /// like another (same folded form).
    fn protect(
        &self,
        list: Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Protected, PolicyError> {
        let Some(list) = list else {
            return Ok(Protected::default());
        };
        let mut names: Vec<String> = Vec::new();
        for (name, start) in self.names(list.into_inner(), "protected target")? {
            if let Some(c) = hidden_char(&name) {
                return self.err(
                    start,
                    format!(
                        "protected target {name:?} contains U+{:04X}, a control, format or invisible character; write the plain name",
                        u32::from(c)
                    ),
                );
            }
            let folded = fold_name(&name);
            if folded.is_empty() {
                return self.err(
                    start,
                    format!("protected target {name:?} is empty once accents and white space are removed"),
                );
            }
            if let Some(earlier) = names.iter().find(|n| fold_name(n) == folded) {
                return self.err(
                    start,
                    format!(
                        "protected target `{name}` is the same name as `{earlier}` (names are compared after NFKC, case folding and removing accents and invisible characters)"
                    ),
                );
            }
            names.push(name);
        }
        Ok(Protected::new(names))
    }

    /// A status or evidence tool must be in the policy and must not mutate.
    fn known_reader(
        &self,
        gated: &str,
        tool: &str,
        start: usize,
        tool_names: &BTreeSet<String>,
        mutating_tools: &BTreeSet<String>,
    ) -> Result<(), PolicyError> {
        if !tool_names.contains(tool) {
            return self.err(
                start,
                format!(
                    "the gate of tool `{gated}` names tool `{tool}`, which is not in the policy"
                ),
            );
        }
        if mutating_tools.contains(tool) {
            return self.err(
                start,
                format!(
                    "the gate of tool `{gated}` reads evidence from `{tool}`, which is mutating; status and evidence tools must only read"
                ),
            );
        }
        Ok(())
    }
}

/// `` `a`, `b`, `c` ``.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
