//! Key lifetimes: a whole number and a unit, read by one function for the admin API's
//! `expires_in` (bare seconds too; `s`, `m`, `h`, `d`) and for
//! `keygate keys create --expires-in` (a unit required; `w` too).

use std::time::Duration;

/// The longest lifetime a key may be given: ten years of 366 days.
pub const MAX_LIFETIME: Duration = Duration::from_secs(10 * 366 * 86_400);

/// The units of `expires_in`, in seconds; the empty unit is bare seconds.
const API_UNITS: &[(&str, u64)] = &[("", 1), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)];
/// The units of `--expires-in`, in seconds.
const CLI_UNITS: &[(&str, u64)] = &[
    ("s", 1),
    ("m", 60),
    ("h", 3600),
    ("d", 86_400),
    ("w", 7 * 86_400),
];

/// Why a text is not a key lifetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// Digits alone, where [`parse_lifetime`] wants a unit.
    #[error("{0:?} has no unit; use s, m, h, d or w, as in 30d")]
    NoUnit(String),
    /// The text does not start with a whole number (or one beyond 64 bits).
    #[error("{0:?} does not start with a whole number, as in 30d")]
    NoNumber(String),
    /// A unit the grammar does not have (the unit is in the error).
    #[error("unknown unit {0:?}; use s, m, h, d or w")]
    UnknownUnit(String),
    /// Zero, where [`parse_lifetime`] wants a lifetime.
    #[error("a lifetime must be longer than zero")]
    Zero,
    /// Longer than [`MAX_LIFETIME`], or more seconds than 64 bits hold.
    #[error("{0:?} is longer than ten years")]
    TooLong(String),
}

/// `text` in seconds, as `expires_in` takes it: whole seconds (`3600`) or a whole
/// number and a unit (`45s`, `90m`, `12h`, `30d`), nothing around them.
///
/// ```
/// use keygate_client::parse_seconds;
///
/// assert_eq!(parse_seconds("90"), Ok(90));
/// assert_eq!(parse_seconds("12h"), Ok(43_200));
/// assert!(parse_seconds("1h30m").is_err());
/// ```
///
/// # Errors
///
/// [`LifetimeError::NoNumber`], [`LifetimeError::UnknownUnit`], or
/// [`LifetimeError::TooLong`] when the seconds overflow.
pub fn parse_seconds(text: &str) -> Result<u64, LifetimeError> {
    seconds(text, API_UNITS)
}

/// A lifetime as `--expires-in` takes it: a whole number and a unit (`45s`, `90m`,
/// `12h`, `30d`, `2w`; surrounding whitespace ignored), above zero and at most
/// [`MAX_LIFETIME`].
///
/// ```
/// use std::time::Duration;
/// use keygate_client::parse_lifetime;
///
/// assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(1_209_600)));
/// assert!(parse_lifetime("30").is_err());
/// assert!(parse_lifetime("0d").is_err());
/// ```
///
/// # Errors
///
/// A [`LifetimeError`] saying what is wrong with `text`.
pub fn parse_lifetime(text: &str) -> Result<Duration, LifetimeError> {
    let text = text.trim();
    if !text.contains(|c: char| !c.is_ascii_digit()) {
        return Err(LifetimeError::NoUnit(text.to_owned()));
    }
    match seconds(text, CLI_UNITS)? {
        0 => Err(LifetimeError::Zero),
        secs if secs > MAX_LIFETIME.as_secs() => Err(LifetimeError::TooLong(text.to_owned())),
        secs => Ok(Duration::from_secs(secs)),
    }
}

/// A whole number and one of `units`, in seconds.
fn seconds(text: &str, units: &[(&str, u64)]) -> Result<u64, LifetimeError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| LifetimeError::NoNumber(text.to_owned()))?;
    let (_, unit_secs) = units
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(|| LifetimeError::UnknownUnit(unit.to_owned()))?;
    n.checked_mul(*unit_secs)
        .ok_or_else(|| LifetimeError::TooLong(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_lifetime("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_lifetime("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_lifetime("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(1_209_600)));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "30",
            "d",
            "0d",
            "3x",
            "-1d",
            "1.5h",
            "99999999999999999999d",
            "5000d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn durations_parse() {
        let parse_duration = |text| parse_seconds(text).ok();
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("45s"), Some(45));
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("30d"), Some(2_592_000));
        assert_eq!(parse_duration("7y"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration(" 1s"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }
}
