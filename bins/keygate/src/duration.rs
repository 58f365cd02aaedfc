//! Durations such as `30d`, `12h`, `90m`, `45s`.

use std::time::Duration;

/// Parses a whole number followed by one unit: `s`, `m`, `h`, `d` or `w`.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit; use s, m, h, d or w, as in 30d"))?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number, as in 30d"))?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h, d or w")),
    };
    if n == 0 {
        return Err("a lifetime must be longer than zero".to_owned());
    }
    // Ten years is more than any key should live; it also keeps the sum in range.
    let secs = n
        .checked_mul(unit_secs)
        .filter(|secs| *secs <= 10 * 366 * 86_400)
        .ok_or_else(|| format!("{s:?} is longer than ten years"))?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(1_209_600)));
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
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
