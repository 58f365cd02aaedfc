//! Which characters a tenant, user, project or key name may hold.
//!
//! Names are shown to people (the settings page, `keygate keys list`, audit logs) and
//! compared by machines. A name holding a bidirectional override (U+202E) can show
//! `shop` while being `\u{202E}pohs`, and one holding a zero-width character looks
//! exactly like another name: both are refused, as are control characters.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};

/// Why a name is refused for the characters it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// A control character (general category `Cc`: newline, tab, escape, …).
    #[error("must not contain control characters (found U+{:04X})", u32::from(*.0))]
    Control(char),
    /// An invisible or bidirectional formatting character: general category `Cf`
    /// (bidirectional overrides, embeddings and isolates, zero-width space and joiners,
    /// the byte order mark, soft hyphen, tags, …), a line or paragraph separator, or
    /// another default-ignorable code point (variation selectors, Hangul fillers, …).
    #[error(
        "must not contain invisible or bidirectional formatting characters (found U+{:04X})",
        u32::from(*.0)
    )]
    Invisible(char),
}

impl NameError {
    /// The refused character.
    pub fn character(&self) -> char {
        match self {
            Self::Control(c) | Self::Invisible(c) => *c,
        }
    }
}

/// Checks that `name` holds no control character and no invisible or bidirectional
/// formatting character; the first one found is the error.
///
/// Every store applies it to tenant, user, project and key names; the admin API applies
/// it first to answer with a precise 400.
///
/// ```
/// use keygate_keys::{NameError, check_name_characters};
///
/// assert_eq!(check_name_characters("deploy bot (shop)"), Ok(()));
/// assert_eq!(
///     check_name_characters("shop\u{202E}"),
///     Err(NameError::Invisible('\u{202E}'))
/// );
/// assert_eq!(check_name_characters("a\nb"), Err(NameError::Control('\n')));
/// ```
///
/// # Errors
///
/// [`NameError::Control`] or [`NameError::Invisible`] with the first refused character.
pub fn check_name_characters(name: &str) -> Result<(), NameError> {
    for c in name.chars() {
        if c.is_control() {
            return Err(NameError::Control(c));
        }
        if is_hidden_char(c) {
            return Err(NameError::Invisible(c));
        }
    }
    Ok(())
}

/// Control (Cc), format (Cf), line separator (Zl) and paragraph separator (Zp).
const HIDDEN_CATEGORIES: GeneralCategoryGroup = GeneralCategoryGroup::Control
    .union(GeneralCategoryGroup::Format)
    .union(GeneralCategoryGroup::LineSeparator)
    .union(GeneralCategoryGroup::ParagraphSeparator);

/// Whether `c` is invisible or controls layout rather than being text: a control or
/// format character, a line or paragraph separator, or a default-ignorable code point
/// (zero-width spaces and joiners, the byte order mark, variation selectors, Hangul
/// fillers, tags, ...).
///
/// The one rule for hidden characters: names refuse them ([`check_name_characters`])
/// and gated targets holding them are refused by the gates. The Unicode data is
/// ICU4X's (`Default_Ignorable_Code_Point` and `General_Category`), not a table of ours.
///
/// ```
/// use keygate_keys::is_hidden_char;
///
/// assert!(is_hidden_char('\u{202E}'));
/// assert!(is_hidden_char('\u{FE0F}'));
/// assert!(is_hidden_char('\0'));
/// assert!(!is_hidden_char('é'));
/// ```
pub fn is_hidden_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    HIDDEN_CATEGORIES.contains(CodePointMapData::<GeneralCategory>::new().get(c))
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "shop",
            "deploy bot (ops)",
            "Zürich Café",
            "東京",
            "موقع",
            "ci-2026_01.x",
            "🚀",
        ] {
            assert_eq!(check_name_characters(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn bidi_zero_width_and_other_invisible_characters_are_refused() {
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}', // embeddings, overrides
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}', // isolates
            '\u{200E}',
            '\u{200F}',
            '\u{061C}', // marks
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}', // zero width
            '\u{00AD}',
            '\u{180E}',
            '\u{E0041}', // soft hyphen, Mongolian vowel separator, tag
            '\u{2028}',
            '\u{2029}', // line and paragraph separators
            '\u{034F}',
            '\u{115F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{2065}',
        ] {
            let name = format!("sh{c}op");
            assert_eq!(
                check_name_characters(&name),
                Err(NameError::Invisible(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn control_characters_are_refused() {
        for c in [
            '\0', '\t', '\n', '\r', '\u{1B}', '\u{7F}', '\u{85}', '\u{9B}',
        ] {
            assert_eq!(
                check_name_characters(&format!("a{c}b")),
                Err(NameError::Control(c))
            );
        }
    }

    #[test]
    fn the_message_names_the_code_point() {
        let e = check_name_characters("x\u{202E}").unwrap_err();
        assert_eq!(e.character(), '\u{202E}');
        assert_eq!(
            e.to_string(),
            "must not contain invisible or bidirectional formatting characters (found U+202E)"
        );
    }
}
