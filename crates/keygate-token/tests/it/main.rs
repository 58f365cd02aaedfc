//! Recognition of credentials in a mixed text corpus.

use keygate_token::{CredentialKind, KeyKind, TokenFormat, recognise, recognise_whole};

fn kinds(text: &str) -> Vec<(CredentialKind, &str)> {
    recognise(text)
        .into_iter()
        .map(|f| (f.kind, &text[f.span]))
        .collect()
}

#[test]
fn finds_keygate_tokens_of_any_brand_with_exact_spans() {
    let kg = TokenFormat::default().generate(KeyKind::User).unwrap();
    let zoop = TokenFormat::new("zoop_io")
        .unwrap()
        .generate(KeyKind::Tenant)
        .unwrap();
    let text = format!(
        "export KEYGATE_API_KEY={}\n{{\"env\": {{\"ZOOP\": \"{}\"}}}}\n",
        kg.expose(),
        zoop.expose()
    );
    assert_eq!(
        kinds(&text),
        vec![
            (CredentialKind::Keygate(KeyKind::User), kg.expose()),
            (CredentialKind::Keygate(KeyKind::Tenant), zoop.expose()),
        ]
    );
}

#[test]
fn a_credential_is_recognised_whole_only_when_it_is_all_the_text() {
    let github = format!("ghp_{}", "a".repeat(36));
    assert_eq!(recognise_whole(&github), Some(CredentialKind::GitHub));
    assert_eq!(recognise_whole(&format!("token {github}")), None);
    let kg = TokenFormat::default().generate(KeyKind::User).unwrap();
    assert_eq!(
        recognise_whole(kg.expose()),
        Some(CredentialKind::Keygate(KeyKind::User))
    );
    assert_eq!(recognise_whole("not a credential"), None);
}

#[test]
fn random_strings_of_keygate_shape_do_not_match() {
    let text = format!("kg_uk_{}", "a1B2c3D4e5F6".repeat(4));
    assert!(recognise(&text).is_empty());
}

#[test]
fn a_keygate_token_glued_to_a_word_prefix_is_still_found() {
    let kg = TokenFormat::default().generate(KeyKind::Tenant).unwrap();
    let text = format!("TOKEN=xx{}", kg.expose());
    let found = kinds(&text);
    assert_eq!(
        found,
        vec![(CredentialKind::Keygate(KeyKind::Tenant), kg.expose())]
    );
}

#[test]
fn finds_each_foreign_kind() {
    let cases = [
        (
            concat!("ghp_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
            CredentialKind::GitHub,
        ),
        (
            concat!("gho_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
            CredentialKind::GitHub,
        ),
        (
            concat!("ghu_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
            CredentialKind::GitHub,
        ),
        (
            concat!("ghs_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
            CredentialKind::GitHub,
        ),
        (
            concat!("ghr_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
            CredentialKind::GitHub,
        ),
        (
            concat!(
                "github_pat_",
                "11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
            ),
            CredentialKind::GitHub,
        ),
        (
            concat!("glpat-", "xYz123AbC456dEf789gh"),
            CredentialKind::GitLab,
        ),
        (
            concat!("xoxb-", "123456789012-abcdefABCDEF"),
            CredentialKind::Slack,
        ),
        (
            concat!("xoxp-", "123456789012-abcdefABCDEF"),
            CredentialKind::Slack,
        ),
        (
            concat!("AKIA", "IOSFODNN7EXAMPLE"),
            CredentialKind::AwsAccessKeyId,
        ),
        (
            concat!("ASIA", "IOSFODNN7EXAMPLE"),
            CredentialKind::AwsAccessKeyId,
        ),
        (
            concat!("sk_live_", "abcdefghijklmnop1234"),
            CredentialKind::Stripe,
        ),
        (
            concat!("rk_live_", "abcdefghijklmnop1234"),
            CredentialKind::Stripe,
        ),
        (
            concat!("sk-ant-", "api03-abcdefghijklmnopqrstuvwxyz"),
            CredentialKind::Anthropic,
        ),
        (
            concat!("sk-proj-", "abcdefghijklmnopqrstuvwxyz012345"),
            CredentialKind::OpenAi,
        ),
        (
            concat!("sk-", "abcdefghijklmnopqrstuvwxyz012345"),
            CredentialKind::OpenAi,
        ),
    ];
    for (secret, kind) in cases {
        let text = format!("line one\nVAR=\"{secret}\" # comment\n");
        assert_eq!(kinds(&text), vec![(kind, secret)], "{secret}");
    }
}

#[test]
fn look_alikes_are_not_credentials() {
    let text = "\
        ghp_short\n\
        AKIAIOSFODNN7EXAMPL\n\
        XAKIAIOSFODNN7EXAMPLE\n\
        sk_test_abcdefghijklmnop1234\n\
        sk-short\n\
        the skeleton task-runner is fine\n\
        glpat-tooshort\n";
    assert_eq!(kinds(text), vec![]);
}

#[test]
fn mixed_corpus_is_reported_in_order() {
    let kg = TokenFormat::default().generate(KeyKind::User).unwrap();
    let text = format!(
        "# config\nAWS={}\nKEY={}\nGH={}\nANT={}\n",
        concat!("AKIA", "IOSFODNN7EXAMPLE"),
        kg.expose(),
        concat!("ghp_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
        concat!("sk-ant-", "api03-abcdefghijklmnopqrstuvwxyz"),
    );
    let found: Vec<CredentialKind> = kinds(&text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        found,
        vec![
            CredentialKind::AwsAccessKeyId,
            CredentialKind::Keygate(KeyKind::User),
            CredentialKind::GitHub,
            CredentialKind::Anthropic,
        ]
    );
}

#[test]
fn every_kind_has_a_name_and_id() {
    // `all_lists_every_kind_once` checks that ALL holds every kind.
    for kind in CredentialKind::ALL {
        assert!(!kind.name().is_empty());
        assert!(
            kind.id()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
        );
        assert_eq!(kind.to_string(), kind.name());
    }
}

#[test]
fn all_lists_every_kind_once() {
    let kinds = CredentialKind::ALL;
    for (i, kind) in kinds.iter().enumerate() {
        assert!(!kinds[..i].contains(kind), "{kind:?} listed twice");
        assert!(
            !kinds[..i].iter().any(|k| k.id() == kind.id()),
            "{kind:?}: id not unique"
        );
    }
    // Everything recognise reports is listed.
    let user = TokenFormat::default().generate(KeyKind::User).unwrap();
    for found in recognise(user.expose()) {
        assert!(kinds.contains(&found.kind));
    }
    assert_eq!(kinds.len(), 9);
}
