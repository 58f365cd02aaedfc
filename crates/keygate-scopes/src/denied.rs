//! Why a tool call or another MCP method is not authorized.

/// Why a verified key may not make a tool call or send a method. Every variant answers HTTP 403
/// `{"error":"insufficient_scope"}`; the detail is for logs and audit, and is
/// safe to show to the key's own holder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The tool is not in the policy: tools not listed are denied.
    #[error("tool `{tool}` is not allowed")]
    UnknownTool {
        /// The tool asked for.
        tool: String,
    },
    /// The key lacks a scope the tool requires.
    #[error("tool `{tool}` requires scope `{scope}`")]
    MissingScope {
        /// The tool asked for.
        tool: String,
        /// The first required scope the key lacks.
        scope: String,
    },
    /// The tool may only be called with a user key.
    #[error("tool `{tool}` may only be called with a user key")]
    UserOnly {
        /// The tool asked for.
        tool: String,
    },
    /// The project named in the call is outside the key's projects.
    #[error("tool `{tool}`: project `{project}` is outside this key's projects")]
    ProjectNotAllowed {
        /// The tool asked for.
        tool: String,
        /// The project named by the call.
        project: String,
    },
    /// The tool names a project argument but the call has none (or not a string),
    /// and the key is restricted to some projects.
    #[error("tool `{tool}` needs argument `{arg}` naming one of this key's projects")]
    ProjectMissing {
        /// The tool asked for.
        tool: String,
        /// The argument that must name a project.
        arg: String,
    },
    /// The method is not a lifecycle or utility message, and `[methods]` maps
    /// neither it nor its family: methods not listed are denied.
    #[error("method `{method}` is not allowed")]
    UnknownMethod {
        /// The method asked for.
        method: String,
    },
    /// The key lacks a scope `[methods]` requires for the method.
    #[error("method `{method}` requires scope `{scope}`")]
    MethodMissingScope {
        /// The method asked for.
        method: String,
        /// The first required scope the key lacks.
        scope: String,
    },
}
