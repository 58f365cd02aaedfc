//! [`Refused`], the error that means "checked, and refused" (exit 1).

use std::fmt;

/// A refusal: the command worked, and the answer is no (exit 1).
///
/// Printed as the message, then the fix on the next line.
#[derive(Debug)]
pub(crate) struct Refused {
    message: String,
    fix: Option<String>,
}

impl Refused {
    /// A refusal with a message and the fix to show under it.
    pub(crate) fn new(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// A refusal with a message alone.
    pub(crate) fn bare(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fix: None,
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n{fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}
