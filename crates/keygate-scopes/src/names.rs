//! Names as a person reads them: the folded form protected targets are compared in,
//! and the characters a target must not hide.
//!
//! The Unicode data comes from ICU4X (normalization, case folding and character
//! properties from one Unicode version), not from tables of our own.

use icu_casemap::CaseMapper;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::CodePointMapData;
use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};

/// How many folding rounds at most; every name in practice is stable after two.
const MAX_ROUNDS: usize = 4;

pub use keygate_keys::is_hidden_char;

/// The first character of `name` for which [`is_hidden_char`] holds, if any. A gated
/// target holding one is refused: what a person reads would not be what is called.
///
/// ```
/// use keygate_scopes::hidden_char;
///
/// assert_eq!(hidden_char("worker"), None);
/// assert_eq!(hidden_char("keygate\u{200b}"), Some('\u{200b}'));
/// assert_eq!(hidden_char("keygate\0"), Some('\0'));
/// ```
pub fn hidden_char(name: &str) -> Option<char> {
    if name.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) {
        return None;
    }
    name.chars().find(|&c| is_hidden_char(c))
}

/// The form in which names are compared with protected targets: NFKC, full case
/// folding, and without default-ignorable code points, controls, format characters
/// or combining marks (accents), trimmed of white space; repeated until stable.
///
/// Two names with the same folded form look alike to a person (`ｋｅｙｇａｔｅ`,
/// `KeyGate`, `keygate\u{200b}`, `keygaté` all fold to `keygate`), so a protected
/// name protects all of them.
///
/// ```
/// use keygate_scopes::fold_name;
///
/// assert_eq!(fold_name(" KeyGate "), "keygate");
/// assert_eq!(fold_name("\u{feff}ｋｅｙｇａｔｅ"), "keygate");
/// assert_eq!(fold_name("Straße"), "strasse");
/// ```
pub fn fold_name(name: &str) -> String {
    if name.is_ascii() {
        return fold_ascii(name);
    }
    let mut folded = fold_round(name);
    for _ in 1..MAX_ROUNDS {
        let next = fold_round(&folded);
        if next == folded {
            break;
        }
        folded = next;
    }
    folded
}

/// [`fold_name`] of ASCII text: NFKC, case folding and marks change nothing there,
/// and controls are the only hidden characters.
fn fold_ascii(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| !c.is_ascii_control())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let trimmed = kept.trim();
    if trimmed.len() == kept.len() {
        kept
    } else {
        trimmed.to_owned()
    }
}

/// One round: NFKC, case folding, compatibility decomposition with hidden characters
/// and marks dropped, NFKC again, trimmed.
fn fold_round(name: &str) -> String {
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let composed = nfkc.normalize(name);
    let folded = CaseMapper::new().fold_string(&composed);
    let decomposed = DecomposingNormalizerBorrowed::new_nfkd().normalize(&folded);
    let marks = GeneralCategoryGroup::Mark;
    let gc = CodePointMapData::<GeneralCategory>::new();
    let kept: String = decomposed
        .chars()
        .filter(|&c| !marks.contains(gc.get(c)) && !is_hidden_char(c))
        .collect();
    nfkc.normalize(&kept).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::{fold_name, fold_round, hidden_char, is_hidden_char};

    #[test]
    fn look_alikes_of_a_name_fold_to_it() {
        for name in [
            "keygate",
            "KEYGATE",
            "KeyGate",
            " keygate ",
            "keygate\u{200b}",
            "\u{feff}keygate",
            "key\u{200d}gate",
            "keygate\u{00ad}",
            "ｋｅｙｇａｔｅ",
            "ＫＥＹＧＡＴＥ",
            "keygate\0",
            "keygate\n",
            "keygate\u{0301}",
            "kéygate",
            "ke\u{0301}ygate",
            "keygate\u{fe0f}",
            "keygate\u{e0001}",
            "keygate\u{00a0}",
            "\u{2028}keygate",
            "keygate\u{202e}",
            "ǩeygate",
            "𝐤𝐞𝐲𝐠𝐚𝐭𝐞",
        ] {
            assert_eq!(fold_name(name), "keygate", "{name:?}");
        }
        for other in [
            "keygates", "key-gate", "key gate", "gatekey", "keygat", "worker",
        ] {
            assert_ne!(fold_name(other), "keygate", "{other:?}");
        }
    }

    #[test]
    fn full_case_folding_is_used() {
        assert_eq!(fold_name("Straße"), fold_name("STRASSE"));
        assert_eq!(fold_name("ΣΊΣΥΦΟΣ"), fold_name("σίσυφος"));
        assert_eq!(fold_name("ς"), fold_name("σ"));
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_full_fold() {
        let ascii: String = (0u8..=127).map(char::from).collect();
        for c in ascii.chars() {
            let name = format!(" a{c}B ");
            let mut full = fold_round(&name);
            full = fold_round(&full);
            assert_eq!(fold_name(&name), full, "{name:?}");
            assert_eq!(hidden_char(&name).is_some(), is_hidden_char(c), "{c:?}");
        }
        assert_eq!(fold_name(&ascii), fold_round(&ascii));
    }

    #[test]
    fn folding_is_idempotent() {
        for name in ["ｋｅｙｇａｔｅ\u{200b}", "Straße", "ﬁ\u{0301}", "㎒", "Å"] {
            let once = fold_name(name);
            assert_eq!(fold_name(&once), once, "{name:?}");
        }
    }

    #[test]
    fn hidden_characters_are_controls_formats_separators_and_ignorables() {
        for c in [
            '\0',
            '\t',
            '\n',
            '\u{7f}',
            '\u{85}',
            '\u{ad}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{202e}',
            '\u{2028}',
            '\u{2029}',
            '\u{2060}',
            '\u{feff}',
            '\u{fe0f}',
            '\u{3164}',
            '\u{115f}',
            '\u{e0001}',
            '\u{1d173}',
        ] {
            assert!(is_hidden_char(c), "{c:?}");
            assert_eq!(hidden_char(&format!("a{c}b")), Some(c));
        }
        for c in [
            'a', ' ', '\u{a0}', 'é', '\u{0301}', 'ｋ', '-', '_', '.', '😀',
        ] {
            assert!(!is_hidden_char(c), "{c:?}");
        }
        assert_eq!(hidden_char("shop/worker:2.3.1"), None);
        assert_eq!(hidden_char("kéygate"), None);
    }
}
