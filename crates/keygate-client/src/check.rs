//! The start-up check an agent bridge runs before it serves (`keygate check`).

use keygate_keys::ProjectRef;
use keygate_token::{ParseError, Token};

use crate::api::{RejectReason, TokenInfo};
use crate::client::Client;
use crate::credential::{Lookup, Source};
use crate::error::Error;

/// The start-up check: find the credential, check its shape offline, introspect it,
/// and refuse unless it reaches exactly one project.
///
/// ```no_run
/// use keygate_client::{Check, Lookup, Outcome};
///
/// # async fn demo() -> Result<(), keygate_client::Error> {
/// let check = Check::new("http://127.0.0.1:8080").lookup(Lookup::new());
/// match check.run().await? {
///     Outcome::Ready(ready) => println!("project {}", ready.project().name),
///     Outcome::Refused(refusal) => eprintln!("{refusal}"),
///     _ => {}
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Check {
    server: String,
    lookup: Lookup,
}

impl Check {
    /// A check against the server at `server_url`, with the key from
    /// [`Lookup::new`] (the variable `KEYGATE_API_KEY`).
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            server: server_url.into(),
            lookup: Lookup::new(),
        }
    }

    /// Where to look for the key.
    #[must_use]
    pub fn lookup(mut self, lookup: Lookup) -> Self {
        self.lookup = lookup;
        self
    }

    /// Runs the check. `Err` means it could not be done (an unreadable `.mcp.json`, a
    /// server that cannot be asked), not that the key is bad: that is
    /// [`Outcome::Refused`].
    pub async fn run(&self) -> Result<Outcome, Error> {
        let Some(credential) = self.lookup.find()? else {
            return Ok(Outcome::Refused(Refusal::NoCredential {
                env_var: self.lookup.var().to_owned(),
            }));
        };
        let source = credential.source().clone();
        let token = match Token::parse(credential.expose().trim()) {
            Ok(token) => token,
            Err(error) => {
                return Ok(Outcome::Refused(Refusal::Malformed {
                    origin: source,
                    error,
                }));
            }
        };
        let client = Client::new(&self.server, token.clone())?;
        let info = match client.token().await {
            Ok(info) => info,
            Err(Error::Rejected {
                status: 401, body, ..
            }) => {
                return Ok(Outcome::Refused(Refusal::Rejected {
                    origin: source,
                    token,
                    reason: RejectReason::of_unauthorized(&body),
                }));
            }
            Err(Error::Rejected {
                server,
                status,
                body,
            }) => {
                return Err(Error::Introspection {
                    server,
                    status,
                    body,
                });
            }
            Err(other) => return Err(other),
        };
        let project = match info.projects.as_slice() {
            [] => {
                return Ok(Outcome::Refused(Refusal::NoProject {
                    origin: source,
                    token,
                }));
            }
            [only] => only.clone(),
            many => {
                return Ok(Outcome::Refused(Refusal::ManyProjects {
                    origin: source,
                    token,
                    count: many.len(),
                }));
            }
        };
        Ok(Outcome::Ready(Box::new(Ready {
            token,
            source,
            info,
            project,
        })))
    }
}

/// The verdict of the start-up check.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// The key reaches exactly one project: start.
    Ready(Box<Ready>),
    /// Do not start.
    Refused(Refusal),
}

/// A key that passed the start-up check.
#[derive(Debug, Clone)]
pub struct Ready {
    token: Token,
    source: Source,
    info: TokenInfo,
    project: ProjectRef,
}

impl Ready {
    /// The key.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Where it was found.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// What introspection said about it.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// The one project it reaches.
    pub fn project(&self) -> &ProjectRef {
        &self.project
    }

    /// Whether it can call no mutating tool (it passes, but mutations will fail).
    pub fn read_only(&self) -> bool {
        self.info.read_only
    }
}

/// Why the start-up check says "do not start". `Display` is the message of
/// `keygate check`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Neither the variable nor `.mcp.json` holds a key.
    #[error("No authentication found: set {env_var} or add it to the env block in .mcp.json")]
    NoCredential {
        /// The variable looked at.
        env_var: String,
    },
    /// What was found is not a whole keygate key (checked offline).
    #[error("Token is malformed: {error}")]
    Malformed {
        /// Where it was found.
        origin: Source,
        /// What is wrong with its shape (never the secret).
        error: ParseError,
    },
    /// The server refused the key (401).
    #[error("AUTH_TOKEN_EXPIRED: {reason} ({})", reason.explain())]
    Rejected {
        /// Where it was found.
        origin: Source,
        /// The key.
        token: Token,
        /// Expired, revoked or unknown.
        reason: RejectReason,
    },
    /// The key reaches no project.
    #[error("Token has no project access")]
    NoProject {
        /// Where it was found.
        origin: Source,
        /// The key.
        token: Token,
    },
    /// The key reaches several projects.
    #[error("Token accesses {count} projects; use project-scoped token")]
    ManyProjects {
        /// Where it was found.
        origin: Source,
        /// The key.
        token: Token,
        /// How many.
        count: usize,
    },
}

impl Refusal {
    /// Where the refused key was found (none when there was none).
    pub fn origin(&self) -> Option<&Source> {
        match self {
            Self::NoCredential { .. } => None,
            Self::Malformed { origin, .. }
            | Self::Rejected { origin, .. }
            | Self::NoProject { origin, .. }
            | Self::ManyProjects { origin, .. } => Some(origin),
        }
    }

    /// The refused key, when it had a keygate key's shape.
    pub fn token(&self) -> Option<&Token> {
        match self {
            Self::NoCredential { .. } | Self::Malformed { .. } => None,
            Self::Rejected { token, .. }
            | Self::NoProject { token, .. }
            | Self::ManyProjects { token, .. } => Some(token),
        }
    }
}
