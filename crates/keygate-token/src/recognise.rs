//! Recognising credentials in arbitrary text.

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::format::{KeyKind, MAX_BRAND_LEN};
use crate::token::{BODY_LEN, Token};

/// The kind of a credential found in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A keygate key of any brand, checksum-verified.
    Keygate(KeyKind),
    /// A GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GitHub,
    /// A GitLab personal access token (`glpat-`).
    GitLab,
    /// A Slack token (`xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`).
    Slack,
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKeyId,
    /// A Stripe live secret or restricted key (`sk_live_`, `rk_live_`).
    Stripe,
    /// An Anthropic API key (`sk-ant-`).
    Anthropic,
    /// An OpenAI API key (`sk-`).
    OpenAi,
}

impl CredentialKind {
    /// Every kind [`recognise`] can report, in the order its rules are tried: keygate
    /// user and tenant keys first, then the foreign credentials. Reports that list one
    /// rule per kind (SARIF) index into this list.
    pub const ALL: &'static [CredentialKind] = &[
        Self::Keygate(KeyKind::User),
        Self::Keygate(KeyKind::Tenant),
        Self::GitHub,
        Self::GitLab,
        Self::Slack,
        Self::AwsAccessKeyId,
        Self::Stripe,
        Self::Anthropic,
        Self::OpenAi,
    ];

    /// A short human-readable name, such as `GitHub token`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Keygate(KeyKind::User) => "keygate user key",
            Self::Keygate(KeyKind::Tenant) => "keygate tenant key",
            Self::GitHub => "GitHub token",
            Self::GitLab => "GitLab token",
            Self::Slack => "Slack token",
            Self::AwsAccessKeyId => "AWS access key id",
            Self::Stripe => "Stripe live key",
            Self::Anthropic => "Anthropic API key",
            Self::OpenAi => "OpenAI API key",
        }
    }

    /// A stable machine-readable identifier, such as `github`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Keygate(KeyKind::User) => "keygate-user-key",
            Self::Keygate(KeyKind::Tenant) => "keygate-tenant-key",
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Slack => "slack",
            Self::AwsAccessKeyId => "aws-access-key-id",
            Self::Stripe => "stripe",
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A credential found in text: its kind and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// What kind of credential it is.
    pub kind: CredentialKind,
    /// Its byte range in the text searched. Print it redacted, never as is.
    pub span: Range<usize>,
}

/// Patterns of foreign credentials. Boundaries are checked by hand (see
/// [`is_word_byte`]) because the `regex` crate has no look-around.
static FOREIGN: LazyLock<Vec<(CredentialKind, Regex)>> = LazyLock::new(|| {
    [
        (CredentialKind::GitHub, r"gh[pousr]_[A-Za-z0-9]{36,255}"),
        (CredentialKind::GitHub, r"github_pat_[A-Za-z0-9_]{22,255}"),
        (CredentialKind::GitLab, r"glpat-[A-Za-z0-9_\-]{20,255}"),
        (CredentialKind::Slack, r"xox[abpr]-[A-Za-z0-9\-]{10,255}"),
        (CredentialKind::AwsAccessKeyId, r"(?:AKIA|ASIA)[A-Z0-9]{16}"),
        (CredentialKind::Stripe, r"[sr]k_live_[A-Za-z0-9]{16,255}"),
        (CredentialKind::Anthropic, r"sk-ant-[A-Za-z0-9_\-]{20,255}"),
        (CredentialKind::OpenAi, r"sk-[A-Za-z0-9_\-]{20,255}"),
    ]
    .into_iter()
    .map(|(kind, pattern)| {
        let re = Regex::new(pattern).expect("credential patterns are valid regexes");
        (kind, re)
    })
    .collect()
});

/// The kind code and body of a keygate token; the brand is found by walking back.
static KEYGATE_TAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"_(?:uk|tk)_[0-9A-Za-z]{{{BODY_LEN}}}"))
        .expect("the keygate token pattern is a valid regex")
});

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn bounded(text: &[u8], span: &Range<usize>) -> bool {
    let before = span.start == 0 || !is_word_byte(text[span.start - 1]);
    let after = span.end == text.len() || !is_word_byte(text[span.end]);
    before && after
}

/// Finds every keygate token (of any brand, checksum-verified) and every foreign
/// credential in `text`, in order of position, without overlaps.
///
/// A keygate token is only reported when its checksum is valid, so random strings of
/// the right shape do not match. Foreign credentials are matched by their documented
/// prefixes and lengths, bounded by non-word characters.
pub fn recognise(text: &str) -> Vec<Finding> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for m in KEYGATE_TAIL.find_iter(text) {
        if let Some(finding) = keygate_at(text, m.start(), m.end()) {
            found.push(finding);
        }
    }
    for (kind, re) in FOREIGN.iter() {
        for m in re.find_iter(text) {
            let span = m.range();
            if !bounded(bytes, &span) {
                continue;
            }
            if *kind == CredentialKind::OpenAi && m.as_str().starts_with("sk-ant-") {
                continue;
            }
            found.push(Finding { kind: *kind, span });
        }
    }
    // Earliest first; at one start the longest wins; overlapping later ones go.
    found.sort_by_key(|f| (f.span.start, std::cmp::Reverse(f.span.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        if out.last().is_none_or(|last| f.span.start >= last.span.end) {
            out.push(f);
        }
    }
    out
}

/// The kind of credential `text` is as a whole (one finding spanning all of it), such
/// as a GitHub token given where a keygate key was expected.
pub fn recognise_whole(text: &str) -> Option<CredentialKind> {
    recognise(text)
        .into_iter()
        .find(|f| f.span.start == 0 && f.span.end == text.len())
        .map(|f| f.kind)
}

/// Tries every brand that could end at `tail_start` (longest first) and returns the
/// first that makes a token with a valid checksum.
fn keygate_at(text: &str, tail_start: usize, end: usize) -> Option<Finding> {
    let bytes = text.as_bytes();
    if end < bytes.len() && is_word_byte(bytes[end]) {
        return None;
    }
    let earliest = tail_start.saturating_sub(MAX_BRAND_LEN);
    let mut start = tail_start;
    while start > earliest && {
        let b = bytes[start - 1];
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
    } {
        start -= 1;
    }
    // The checksum covers the brand, so at most one candidate verifies (bar a
    // 1-in-2^32 accident); a key glued to other text is still a leaked key.
    (start..tail_start).find_map(|s| {
        let token = Token::parse(&text[s..end]).ok()?;
        Some(Finding {
            kind: CredentialKind::Keygate(token.kind()),
            span: s..end,
        })
    })
}
