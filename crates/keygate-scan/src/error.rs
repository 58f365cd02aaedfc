//! The crate's error type.

use std::path::PathBuf;

/// What can stop a scan or a doctor run. Files that cannot be read in the middle of a
/// scan are not errors (they are counted as unreadable); these are.
///
/// Each variant's message names the file; the underlying cause, where there is one, is
/// its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path given to scan does not exist or cannot be looked at.
    #[error("cannot scan {}", path.display())]
    ScanRoot {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be looked at.
        #[source]
        source: std::io::Error,
    },
    /// The directory given to the doctor is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A directory or file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An `.mcp.json` that is too large or not of the expected shape, as
    /// [`keygate_client::read_mcp_json`] (the one reader of these files) says.
    #[error(transparent)]
    McpJson(keygate_client::Error),
}
