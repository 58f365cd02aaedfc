//! Why a policy file could not be loaded.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a policy could not be loaded. Its `Display` names the file (when there is
/// one) and the line and column of the offending value, so a person can fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The policy is not valid TOML, has an unknown or mistyped field, or breaks a
    /// rule of the policy format (undeclared scope, gate on a non-mutating tool, ...).
    #[error("{location}: {message}")]
    Invalid {
        /// Where the problem is.
        location: Location,
        /// What is wrong, for a person.
        message: String,
    },
}

impl PolicyError {
    /// Where in the policy the problem is, for [`PolicyError::Invalid`].
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Invalid { location, .. } => Some(location),
            Self::Read { .. } => None,
        }
    }

    pub(crate) fn invalid(src: &str, offset: usize, message: impl Into<String>) -> Self {
        Self::Invalid {
            location: Location::at(src, offset),
            message: message.into(),
        }
    }

    pub(crate) fn with_path(self, path: &Path) -> Self {
        match self {
            Self::Invalid {
                mut location,
                message,
            } => {
                location.path = Some(path.to_path_buf());
                Self::Invalid { location, message }
            }
            other => other,
        }
    }
}

/// A position in a policy: the file (when loaded from one), line and column.
///
/// Displays as `path:line:column`, or `line L, column C` without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    path: Option<PathBuf>,
    line: usize,
    column: usize,
}

impl Location {
    /// The position of byte `offset` of `src` (clamped to its length).
    fn at(src: &str, offset: usize) -> Self {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            path: None,
            line,
            column,
        }
    }

    /// The file, when the policy was loaded from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The line, counting from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column in characters, counting from 1.
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}:{}:{}", path.display(), self.line, self.column),
            None => write!(f, "line {}, column {}", self.line, self.column),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Location;

    #[test]
    fn location_counts_lines_and_characters() {
        let src = "a = 1\nbé = 2\n";
        let l = Location::at(src, 0);
        assert_eq!((l.line(), l.column()), (1, 1));
        let l = Location::at(src, src.find('=').unwrap_or(0));
        assert_eq!((l.line(), l.column()), (1, 3));
        let second = src.rfind('=').unwrap_or(0);
        let l = Location::at(src, second);
        assert_eq!((l.line(), l.column()), (2, 4));
        assert_eq!(l.to_string(), "line 2, column 4");
        let l = Location::at(src, 10_000);
        assert_eq!(l.line(), 3);
    }
}
