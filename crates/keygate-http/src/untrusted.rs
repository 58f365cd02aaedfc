//! Client-supplied text made safe for a log line.

use std::fmt::{self, Write as _};

/// How many characters of a client-supplied value [`untrusted`] keeps.
pub const LOG_MAX_CHARS: usize = 64;

/// A client-supplied value (a tool name, a session id, a method, a policy denial
/// naming them) as it may appear in a log line: cut to its first characters, with
/// control and other invisible characters escaped, so that a request can neither
/// forge log lines (`\n2026-… INFO …`), send escape sequences to an operator's
/// terminal, nor fill the disk with a 500 kB name.
///
/// Build one with [`untrusted`]. `Display` writes the escaped prefix as is, `Debug`
/// in double quotes (escaping `"` too, so that a value cannot fake the next field);
/// a cut value ends with `…` and its length in characters. Characters are escaped as
/// [`char::escape_debug`] does (`\n`, `\u{1b}`, `\u{202e}`, `\\`); quotes are left as
/// they are except `"` inside `Debug`'s quotes. Formatting allocates nothing.
///
/// ```
/// use keygate_http::untrusted;
///
/// let forged = "service.list\n2026-01-01T00:00:00Z  INFO forged line\u{1b}[31m";
/// assert_eq!(
///     untrusted(forged).to_string(),
///     r"service.list\n2026-01-01T00:00:00Z  INFO forged line\u{1b}[31m"
/// );
/// let long = "x".repeat(500_000);
/// assert_eq!(
///     format!("{:?}", untrusted(&long)),
///     format!("\"{}…[500000 chars]\"", "x".repeat(64))
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Untrusted<T> {
    value: T,
    max_chars: usize,
}

/// Wraps a client-supplied value for a log line: at most [`LOG_MAX_CHARS`] characters,
/// escaped. See [`Untrusted`].
///
/// ```
/// # let tool = "service.list";
/// tracing::info!(tool = ?keygate_http::untrusted(tool), "tool call denied by policy");
/// ```
pub fn untrusted<T: fmt::Display>(value: T) -> Untrusted<T> {
    Untrusted {
        value,
        max_chars: LOG_MAX_CHARS,
    }
}

impl<T: fmt::Display> Untrusted<T> {
    /// Keeps up to `max_chars` characters instead of [`LOG_MAX_CHARS`]: for a message
    /// that embeds a client-supplied value in fixed text, such as a policy denial.
    #[must_use]
    pub fn max_chars(mut self, max_chars: usize) -> Self {
        self.max_chars = max_chars;
        self
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, quoted: bool) -> fmt::Result {
        if quoted {
            f.write_char('"')?;
        }
        let mut out = Escaper {
            f,
            quoted,
            left: self.max_chars,
            total: 0,
        };
        write!(out, "{}", self.value)?;
        let total = out.total;
        if total > self.max_chars {
            write!(f, "…[{total} chars]")?;
        }
        if quoted {
            f.write_char('"')?;
        }
        Ok(())
    }
}

impl<T: fmt::Display> fmt::Display for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl<T: fmt::Display> fmt::Debug for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

/// Writes the first `left` characters escaped and counts all of them.
struct Escaper<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    quoted: bool,
    left: usize,
    total: usize,
}

impl fmt::Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            self.total += 1;
            if self.left == 0 {
                continue;
            }
            self.left -= 1;
            match c {
                '\'' => self.f.write_char(c)?,
                '"' if !self.quoted => self.f.write_char(c)?,
                _ => write!(self.f, "{}", c.escape_debug())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_values_are_unchanged() {
        assert_eq!(untrusted("service.list").to_string(), "service.list");
        assert_eq!(format!("{:?}", untrusted("a b")), "\"a b\"");
        assert_eq!(untrusted("").to_string(), "");
        assert_eq!(
            untrusted("ünïcode ✓ 'q' \"d\"").to_string(),
            "ünïcode ✓ 'q' \"d\""
        );
        let exactly = "y".repeat(LOG_MAX_CHARS);
        assert_eq!(untrusted(&exactly).to_string(), exactly);
    }

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(
            untrusted("a\nb\r\tc\u{1b}[31m\u{7}\u{0}").to_string(),
            r"a\nb\r\tc\u{1b}[31m\u{7}\0"
        );
        // Bidirectional overrides and zero-width characters hide text on screen.
        assert_eq!(
            untrusted("ab\u{202e}cd\u{200b}").to_string(),
            r"ab\u{202e}cd\u{200b}"
        );
        // C1 controls (an 8-bit CSI) too.
        assert_eq!(untrusted("\u{9b}2J").to_string(), r"\u{9b}2J");
        // A backslash is escaped, so `\n` typed by a client stays distinguishable.
        assert_eq!(untrusted(r"a\nb").to_string(), r"a\\nb");
        // Inside quotes a quote is escaped, so a value cannot close them.
        assert_eq!(
            format!("{:?}", untrusted("x\" key_id=\"forged")),
            r#""x\" key_id=\"forged""#
        );
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary_with_their_length() {
        let long = "é".repeat(1000);
        let shown = untrusted(&long).to_string();
        assert_eq!(shown, format!("{}…[1000 chars]", "é".repeat(LOG_MAX_CHARS)));
        // Escapes count as one character of the original.
        let newlines = "\n".repeat(100);
        assert_eq!(
            untrusted(&newlines).to_string(),
            format!("{}…[100 chars]", r"\n".repeat(LOG_MAX_CHARS))
        );
        assert_eq!(
            untrusted("abcdef").max_chars(3).to_string(),
            "abc…[6 chars]"
        );
        assert_eq!(
            format!("{:?}", untrusted("abcdef").max_chars(0)),
            "\"…[6 chars]\""
        );
    }

    #[test]
    fn any_display_value_is_escaped_and_cut() {
        struct Two<'a>(&'a str, &'a str);
        impl fmt::Display for Two<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "tool `{}` {}", self.0, self.1)
            }
        }
        let name = format!("x\n{}", "z".repeat(100));
        let shown = untrusted(Two(&name, "is not allowed"))
            .max_chars(10)
            .to_string();
        assert_eq!(shown, r"tool `x\nzz…[124 chars]");
    }
}
