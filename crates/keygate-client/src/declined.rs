//! Why the owner admin API or the approvals API declined a request, read from the
//! status and error body of a [`Error::Rejected`](crate::Error::Rejected).

use crate::api::{ErrorBody, RejectReason};

/// Which API a request went to: the same status means different things on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Api {
    /// The owner admin API (`keys:admin`): keys, projects, the audit log.
    Admin,
    /// The approvals API (`gates:approve`, never the key that asked).
    Approvals,
}

/// Why the admin API or the approvals API declined a request. `Display` is the
/// message of `keygate keys|projects|audit|approvals`, [`hint`](Self::hint) the fix
/// to show under it; neither holds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Declined {
    /// 401: the key is unknown, revoked or expired.
    #[error("the key in {var} was refused: {} ({reason})", reason.explain())]
    Unauthorized {
        /// The environment variable the key came from.
        var: String,
        /// Why it was refused.
        reason: RejectReason,
    },
    /// 403 from the admin API: not an owner key with `keys:admin`.
    #[error("refused: this key is not an owner key with keys:admin")]
    NotOwner,
    /// 403 from the approvals API: no `gates:approve`, or the key that asked.
    #[error(
        "refused: this key cannot approve: it needs gates:approve and must not be the key \
         that asked"
    )]
    CannotApprove,
    /// 404 from the approvals API: no approval of that id this key may decide.
    #[error("not found: no such approval for this key")]
    NoSuchApproval,
    /// 409 from the approvals API: decided, used or expired before.
    #[error(
        "this approval is closed: it was already decided, used, or it expired{}",
        suffix(" (", message.as_deref(), ")")
    )]
    Closed {
        /// The server's `message`, if it sent one.
        message: Option<String>,
    },
    /// 422 `target_mismatch`: the typed target is not the approval's.
    #[error("refused: the name does not match the approval's target exactly")]
    TargetMismatch,
    /// 404 from the admin API.
    #[error("not found{}", suffix(": ", Some(code.as_str()).filter(|c| !c.is_empty()), ""))]
    NotFound {
        /// The error code (may be empty).
        code: String,
    },
    /// 429.
    #[error("rate limited by the server; try again shortly")]
    RateLimited,
    /// 5xx.
    #[error("the keygate server at {server} failed ({status}); see its logs")]
    ServerFailed {
        /// The server's base URL.
        server: String,
        /// The HTTP status.
        status: u16,
    },
    /// Any other status.
    #[error(
        "the server refused the request ({status} {}){}",
        if code.is_empty() { "error" } else { code },
        suffix(": ", message.as_deref(), "")
    )]
    Other {
        /// The HTTP status.
        status: u16,
        /// The error code (may be empty).
        code: String,
        /// The server's `message`, if it sent one.
        message: Option<String>,
    },
}

impl Declined {
    /// Why `api` at `server` answered `status` with `body` to a request presenting the
    /// key from the environment variable `var`.
    pub fn of(api: Api, var: &str, server: &str, status: u16, body: &ErrorBody) -> Self {
        let code = body.error.as_str();
        let approvals = api == Api::Approvals;
        match status {
            401 => Self::Unauthorized {
                var: var.to_owned(),
                reason: RejectReason::of_unauthorized(body),
            },
            403 if approvals => Self::CannotApprove,
            403 => Self::NotOwner,
            404 if approvals => Self::NoSuchApproval,
            409 if approvals => Self::Closed {
                message: body.message.clone(),
            },
            422 if code == "target_mismatch" => Self::TargetMismatch,
            404 => Self::NotFound {
                code: code.to_owned(),
            },
            429 => Self::RateLimited,
            status if status >= 500 => Self::ServerFailed {
                server: server.to_owned(),
                status,
            },
            status => Self::Other {
                status,
                code: code.to_owned(),
                message: body.message.clone(),
            },
        }
    }

    /// The fix to show under the message, when there is one a person can act on.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::Unauthorized { .. } => "hint: use a current owner key",
            Self::NotOwner => {
                "hint: use a user key of a tenant owner that holds the keys:admin scope"
            }
            Self::CannotApprove => {
                "hint: use your own user key with gates:approve (the calling key's user, or a \
                 tenant owner for tenant keys)"
            }
            Self::NoSuchApproval => {
                "hint: `keygate approvals list` shows the approvals you may decide"
            }
            Self::TargetMismatch => {
                "hint: type the target exactly as `keygate approvals list` shows it"
            }
            _ => return None,
        })
    }
}

/// `text` between `before` and `after`, or nothing without it.
fn suffix(before: &str, text: Option<&str>, after: &str) -> String {
    text.map(|t| format!("{before}{t}{after}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: &str, message: Option<&str>) -> ErrorBody {
        ErrorBody {
            error: error.to_owned(),
            reason: None,
            message: message.map(str::to_owned),
        }
    }

    fn said(api: Api, status: u16, body: &ErrorBody) -> String {
        Declined::of(api, "KEY", "http://s", status, body).to_string()
    }

    #[test]
    fn the_api_decides_what_a_status_means() {
        let none = body("", None);
        assert_eq!(
            said(Api::Admin, 403, &none),
            "refused: this key is not an owner key with keys:admin"
        );
        assert!(said(Api::Approvals, 403, &none).contains("cannot approve"));
        assert_eq!(
            said(Api::Admin, 404, &body("not_found", None)),
            "not found: not_found"
        );
        assert_eq!(said(Api::Admin, 404, &none), "not found");
        assert_eq!(
            said(Api::Approvals, 404, &none),
            "not found: no such approval for this key"
        );
        assert_eq!(
            said(Api::Admin, 409, &body("conflict", Some("name taken"))),
            "the server refused the request (409 conflict): name taken"
        );
        assert_eq!(
            said(Api::Approvals, 409, &body("conflict", Some("denied"))),
            "this approval is closed: it was already decided, used, or it expired (denied)"
        );
    }

    #[test]
    fn the_rest_by_status() {
        let none = body("", None);
        let revoked = ErrorBody {
            reason: Some("key_revoked".to_owned()),
            ..body("key_not_found", None)
        };
        assert_eq!(
            said(Api::Admin, 401, &revoked),
            "the key in KEY was refused: the key was revoked (key_revoked)"
        );
        assert_eq!(
            said(Api::Approvals, 422, &body("target_mismatch", None)),
            "refused: the name does not match the approval's target exactly"
        );
        assert_eq!(
            said(Api::Admin, 429, &none),
            "rate limited by the server; try again shortly"
        );
        assert_eq!(
            said(Api::Admin, 503, &none),
            "the keygate server at http://s failed (503); see its logs"
        );
        assert_eq!(
            said(Api::Admin, 400, &none),
            "the server refused the request (400 error)"
        );
    }
}
