//! Secret scanning and the credential doctor of keygate.
//!
//! Use it to run what `keygate scan` and `keygate doctor` run, from your own program (a
//! pre-commit hook, a CI step, an agent's launcher):
//!
//! - [`Scanner`] walks files and directories and finds every keygate key (of any brand,
//!   checksum-verified) and foreign credential (GitHub, GitLab, Slack, AWS, Stripe,
//!   Anthropic, OpenAI) in them, redacted, with line and column. It honours
//!   `.gitignore`, skips binary files, reads files of any size in bounded pieces, and
//!   reads UTF-16 files that carry a byte-order mark. Its [`Report`] prints as text,
//!   JSON or SARIF 2.1.0.
//! - [`Doctor`] maps the credentials a project directory and an environment hand an
//!   agent (`.mcp.json`, `.env*`, environment variables) and lists the [`Problem`]s:
//!   files with keys that git would commit, empty entries, and credentials whose
//!   variable name says they are for another service (a GitHub token in
//!   `ZEROPS_TOKEN`). Its [`CredentialMap`] prints as text or JSON and takes the
//!   answers of a key introspection.
//! - [`read_mcp_json`], [`parse_dotenv`] and [`reference()`] read those files on their own.
//!
//! Nothing here prints, exits or talks to a network: reports are written to any
//! [`std::io::Write`] or returned as strings, and errors are [`Error`].
//!
//! ```
//! use keygate_scan::Scanner;
//! use keygate_token::{KeyKind, TokenFormat};
//!
//! let key = TokenFormat::default().generate(KeyKind::User)?;
//! let text = format!("KEYGATE_API_KEY={}\n", key.expose());
//! let found = Scanner::new().scan_text("config.env".as_ref(), &text);
//! assert_eq!((found[0].line, found[0].column), (1, 17));
//! assert!(!found[0].redacted.contains(key.expose()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! None: the crate always has the scanner, the doctor and every report format.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod doctor;
mod error;
mod names;
mod project;
mod scan;
mod text;

pub use crate::doctor::{CredentialMap, Doctor, Entry, Field, Holds, Problem, Warning};
pub use crate::error::Error;
pub use crate::project::{MAX_PROJECT_FILE, McpServer, parse_dotenv, read_mcp_json, reference};
pub use crate::scan::{Finding, Progress, Report, Scanner, Unreadable};
