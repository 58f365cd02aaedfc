//! Settings resolution: every setting lands in its `Config` field, flag over
//! environment over file over default.

use std::num::NonZeroU32;
use std::time::Duration;

use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

fn resolved(args: &[&str]) -> (Config, SocketAddr) {
    let cli = Cli::try_parse_from(std::iter::once("keygated").chain(args.iter().copied()))
        .expect("the arguments parse");
    cli.settings
        .resolve(|| Upstream::Http("http://127.0.0.1:9/demo".to_owned()))
        .expect("the settings resolve")
}

#[test]
fn every_setting_lands_in_its_config_field() {
    let (_dir, file) = config_file(
        "upstream = \"http://127.0.0.1:9/mcp\"\npolicy = \"p.toml\"\nbrand = \"acme\"\n\
         listen = \"127.0.0.1:9999\"\nrate-limit-fail-open = true\nkey-rate = 7\n",
    );
    let (config, listen) = resolved(&[
        "--config",
        &file,
        "--database",
        "sqlite::memory:",
        "--tenant-rate",
        "8",
        "--public-url",
        "https://keys.example.com",
        "--upstream-timeout",
        "1m",
        "--request-timeout",
        "2",
        "--rate-limit-backend",
        "redis://127.0.0.1:6379",
    ]);
    assert!(matches!(&config.upstream, Upstream::Http(url) if url.ends_with(":9/mcp")));
    assert_eq!(
        config.policy.as_deref(),
        Some(std::path::Path::new("p.toml"))
    );
    assert_eq!(config.format.brand(), "acme");
    assert_eq!(listen, "127.0.0.1:9999".parse().expect("an address"));
    assert_eq!(config.rate_limit_fail_mode, FailMode::Open);
    assert_eq!((config.key_rate.get(), config.tenant_rate.get()), (7, 8));
    assert_eq!(config.database.as_str(), "sqlite::memory:");
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://keys.example.com")
    );
    assert_eq!(config.upstream_timeout, Duration::from_secs(60));
    assert_eq!(config.request_timeout, Duration::from_secs(2));
    assert!(matches!(config.rate_limit_backend, Backend::Redis(_)));

    let (config, listen) = resolved(&["--demo"]);
    assert!(matches!(&config.upstream, Upstream::Http(url) if url.ends_with("/demo")));
    assert_eq!(listen, DEFAULT_LISTEN);
    assert_eq!(config.rate_limit_fail_mode, FailMode::Closed);
}

#[test]
fn an_upstream_comes_from_one_place() {
    let (_dir, file) = config_file("demo = true\nupstream = \"http://127.0.0.1:9/mcp\"\n");
    let cli = Cli::try_parse_from(["keygated", "--config", &file]).expect("the arguments parse");
    let err = cli
        .settings
        .resolve(|| unreachable!("no demo is made"))
        .expect_err("both in one file")
        .to_string();
    assert!(err.contains("not both"), "{err}");
    let cli = Cli::try_parse_from(["keygated"]).expect("the arguments parse");
    let err = cli
        .settings
        .resolve(|| unreachable!())
        .expect_err("no upstream");
    assert!(err.to_string().contains("nothing to protect"), "{err}");
}

/// The `Config` that `args` resolve to (`--demo` stands for any in-process upstream).
fn config_of(args: &[&str]) -> Config {
    resolved(args).0
}

/// A settings file holding `text`: the temporary directory that keeps it, and its path.
fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("keygate.toml");
    std::fs::write(&path, text).expect("the file is written");
    let file = path.to_str().expect("a UTF-8 path").to_owned();
    (dir, file)
}

#[test]
fn connection_settings_flag_over_file_over_default() {
    let (_dir, file) = config_file(
        "demo = true\nmax-connections = 7\nheader-timeout = 9\nauth-failure-rate = 0\n",
    );
    let config = config_of(&["--config", &file, "--max-connections", "3"]);
    assert_eq!(config.max_connections.get(), 3, "the flag wins");
    assert_eq!(
        config.header_timeout,
        Duration::from_secs(9),
        "from the file"
    );
    assert_eq!(config.auth_failure_rate, None, "0 turns the limit off");

    let config = config_of(&["--config", &file, "--auth-failure-rate", "5"]);
    assert_eq!(config.auth_failure_rate.map(NonZeroU32::get), Some(5));
    assert_eq!(config.max_connections.get(), 7);

    let config = config_of(&["--demo"]);
    assert_eq!(config.header_timeout, Duration::from_secs(30));
    assert_eq!(config.auth_failure_rate.map(NonZeroU32::get), Some(60));
    assert_eq!(config.max_connections, crate::default_max_connections());
}

#[test]
fn origin_and_body_settings_flag_over_file() {
    let (_dir, file) = config_file(
        "demo = true\nmax-body = 1000\npublic-url = \"https://keys.example.com\"\n\
         allowed-origin = [\"https://a.example.com\", \"http://localhost:5173\"]\n",
    );
    let config = config_of(&["--config", &file]);
    assert_eq!(config.max_body, 1000);
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://keys.example.com")
    );
    assert_eq!(
        config.allowed_origins,
        ["https://a.example.com", "http://localhost:5173"]
    );
    let config = config_of(&[
        "--config",
        &file,
        "--max-body",
        "5000",
        "--allowed-origin",
        "https://b.example.com",
        "--allowed-origin",
        "https://c.example.com",
    ]);
    assert_eq!(config.max_body, 5000);
    assert_eq!(
        config.allowed_origins,
        ["https://b.example.com", "https://c.example.com"]
    );
    let config = config_of(&["--demo"]);
    assert_eq!(config.max_body, 4 * 1024 * 1024);
    assert_eq!(config.key_rate.get(), crate::DEFAULT_KEY_RATE);
    assert!(config.allowed_origins.is_empty());
    std::fs::write(&file, "demo = true\nmax_body = 77\n").expect("the file is written");
    assert_eq!(config_of(&["--config", &file]).max_body, 77);
}

#[test]
fn approval_ttl_flag_env_or_file_over_default() {
    let (_dir, file) = config_file("demo = true\napproval-ttl = \"10m\"\n");
    assert_eq!(
        config_of(&["--config", &file]).approval_ttl,
        Duration::from_secs(600),
        "from the file"
    );
    assert_eq!(
        config_of(&["--config", &file, "--approval-ttl", "90"]).approval_ttl,
        Duration::from_secs(90),
        "the flag wins"
    );
    assert_eq!(
        config_of(&["--demo"]).approval_ttl,
        Duration::from_secs(300),
        "300 s by default"
    );
    let zero = Cli::try_parse_from(["keygated", "--demo", "--approval-ttl", "0"]);
    assert!(zero.is_err(), "a zero lifetime is refused");
}

#[test]
fn mrtr_secret_flag_or_file_and_too_short_refused() {
    let secret = "s".repeat(32);
    let (_dir, file) = config_file(&format!("demo = true\nmrtr-secret = \"{secret}\"\n"));
    assert!(
        config_of(&["--config", &file]).mrtr_secret.is_some(),
        "from the file"
    );
    assert!(
        config_of(&["--demo"]).mrtr_secret.is_none(),
        "none by default"
    );
    let flag = config_of(&["--demo", "--mrtr-secret", &"f".repeat(40)]);
    assert_eq!(
        format!("{:?}", flag.mrtr_secret),
        "Some(MrtrSecret(..))",
        "never shown"
    );
    let short = Cli::try_parse_from(["keygated", "--demo", "--mrtr-secret", "shortsecret"])
        .expect("the arguments parse");
    let err = short
        .settings
        .resolve(|| Upstream::Http("http://127.0.0.1:9/demo".to_owned()))
        .expect_err("a short secret is refused")
        .to_string();
    assert!(err.contains("at least 32 bytes"), "{err}");
    assert!(
        !err.contains("shortsecret"),
        "the secret is not repeated: {err}"
    );
}

#[test]
fn leak_report_keys_flag_or_file_and_off_by_default() {
    let (_dir, file) = config_file("demo = true\nleak-report-keys = \"github-keys.json\"\n");
    assert_eq!(
        config_of(&["--config", &file]).leak_report_keys,
        Some(std::path::PathBuf::from("github-keys.json")),
        "from the file"
    );
    assert_eq!(
        config_of(&["--config", &file, "--leak-report-keys", "other.json"]).leak_report_keys,
        Some(std::path::PathBuf::from("other.json")),
        "the flag wins"
    );
    assert_eq!(
        config_of(&["--demo"]).leak_report_keys,
        None,
        "off by default"
    );
}
