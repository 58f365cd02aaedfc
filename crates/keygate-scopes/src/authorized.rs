//! What [`Policy::authorize`](crate::Policy::authorize) answers for an allowed call.

use keygate_keys::{Principal, ProjectRef};

use crate::denied::Denied;
use crate::policy::ToolPolicy;

/// A tool call the policy allows, and what is left to check about its project.
///
/// The policy decides everything it can from the key alone. What it cannot decide is
/// whether a project named by a key that is **not** restricted to projects belongs to
/// the key's tenant: only the store knows the tenant's projects. That case is
/// [`ProjectAccess::InTenant`], and the call must be refused unless the name resolves
/// within the key's tenant (see [`Authorized::project`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a call naming a project may still have to be checked against the key's tenant"]
pub struct Authorized<'a> {
    pub(crate) tool: &'a ToolPolicy,
    pub(crate) project: ProjectAccess<'a>,
}

/// The project a call names, as far as the key tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectAccess<'a> {
    /// The call names no project: the tool has no project argument, or the call leaves
    /// it out (or gives a non-string) and the key is not restricted to projects.
    None,
    /// One of a restricted key's own projects, resolved from the key itself (no store
    /// access): forward its id.
    Resolved(&'a ProjectRef),
    /// A key not restricted to projects names this project (a name or an id). It is
    /// allowed **only** if it is a project of the key's tenant: look it up within
    /// `principal.tenant.id` (`KeyStore::find_project`) and refuse the call with
    /// [`Authorized::outside_tenant`] when the tenant has no such project.
    InTenant(&'a str),
}

impl<'a> Authorized<'a> {
    /// The tool's policy (scopes, gate, project argument).
    pub fn tool(&self) -> &'a ToolPolicy {
        self.tool
    }

    /// The project the call names. [`ProjectAccess::InTenant`] still has to be
    /// resolved within the key's tenant before the call may go on.
    pub fn project(&self) -> ProjectAccess<'a> {
        self.project
    }

    /// The denial for an [`ProjectAccess::InTenant`] project the key's tenant does not
    /// have: [`Denied::ProjectNotAllowed`], the very answer a restricted key gets for a
    /// project outside its list, so a caller learns nothing about other tenants.
    pub fn outside_tenant(&self) -> Denied {
        Denied::ProjectNotAllowed {
            tool: self.tool.name().to_owned(),
            project: match self.project {
                ProjectAccess::InTenant(p) => p.to_owned(),
                ProjectAccess::Resolved(p) => p.name.clone(),
                ProjectAccess::None => String::new(),
            },
        }
    }
}

/// The project argument `project` of a call to `tool` by `principal`, decided from the
/// key alone.
pub(crate) fn project_access<'a>(
    principal: &'a Principal,
    tool: &ToolPolicy,
    project: Option<&'a str>,
) -> Result<ProjectAccess<'a>, Denied> {
    match (project, &principal.projects) {
        (Some(name), Some(_)) => principal
            .restricted_project(name)
            .map(ProjectAccess::Resolved)
            .ok_or_else(|| Denied::ProjectNotAllowed {
                tool: tool.name().to_owned(),
                project: name.to_owned(),
            }),
        (Some(name), None) => Ok(ProjectAccess::InTenant(name)),
        (None, Some(_)) => Err(Denied::ProjectMissing {
            tool: tool.name().to_owned(),
            arg: tool.project_arg().unwrap_or_default().to_owned(),
        }),
        (None, None) => Ok(ProjectAccess::None),
    }
}
