//! A key's refill as a command line writes it: `INTERVAL:AMOUNT`, such as
//! `daily:1000` (`keygate keys create --refill`, and the listings that show it).

use keygate_keys::{Refill, RefillInterval, RefillIntervalError};

/// Why a text is not a refill `INTERVAL:AMOUNT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefillSpecError {
    /// There is no `:` (the text is in the error).
    #[error("`{0}`: expected INTERVAL:AMOUNT, such as daily:1000")]
    Shape(String),
    /// The interval is not `daily`, `monthly` or a duration.
    #[error(transparent)]
    Interval(#[from] RefillIntervalError),
    /// The amount is not a whole number above zero that fits an `i64` (the amount is
    /// in the error).
    #[error("refill amount `{0}`: expected a whole number above zero")]
    Amount(String),
}

/// `text` as a refill: `daily:1000`, `monthly:50000`, `6h:100` (the interval as
/// [`RefillInterval`] reads it, the amount above zero), the form [`refill_spec`] writes.
///
/// ```
/// use keygate_client::{parse_refill, refill_spec};
///
/// let refill = parse_refill("6h:100")?;
/// assert_eq!(refill.amount, 100);
/// assert_eq!(refill_spec(&refill), "6h:100");
/// assert!(parse_refill("daily").is_err());
/// assert!(parse_refill("daily:0").is_err());
/// # Ok::<(), keygate_client::RefillSpecError>(())
/// ```
///
/// # Errors
///
/// [`RefillSpecError::Shape`] without a `:`, [`RefillSpecError::Interval`] or
/// [`RefillSpecError::Amount`] for the part that does not parse.
pub fn parse_refill(text: &str) -> Result<Refill, RefillSpecError> {
    let (interval, amount) = text
        .rsplit_once(':')
        .ok_or_else(|| RefillSpecError::Shape(text.to_owned()))?;
    let interval = interval.parse::<RefillInterval>()?;
    let amount = amount
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && i64::try_from(*n).is_ok())
        .ok_or_else(|| RefillSpecError::Amount(amount.to_owned()))?;
    Ok(Refill::new(interval, amount))
}

/// `refill` as [`parse_refill`] reads it: `daily:1000`.
pub fn refill_spec(refill: &Refill) -> String {
    format!("{}:{}", refill.interval, refill.amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        for text in ["daily:1000", "monthly:50000", "6h:100", "30m:1"] {
            assert_eq!(refill_spec(&parse_refill(text).unwrap()), text, "{text}");
        }
    }

    #[test]
    fn refuses_each_part() {
        assert_eq!(
            parse_refill("daily").unwrap_err().to_string(),
            "`daily`: expected INTERVAL:AMOUNT, such as daily:1000"
        );
        assert!(matches!(
            parse_refill("fortnightly:5"),
            Err(RefillSpecError::Interval(_))
        ));
        for amount in ["0", "-1", "x", "9223372036854775808"] {
            assert_eq!(
                parse_refill(&format!("daily:{amount}")),
                Err(RefillSpecError::Amount(amount.to_owned())),
                "{amount}"
            );
        }
    }
}
