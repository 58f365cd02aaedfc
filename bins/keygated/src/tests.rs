//! Settings resolution: flag over file over default.

use std::time::Duration;

use super::*;

fn resolved(args: &[&str]) -> Config {
    let args = Args::try_parse_from(std::iter::once("keygated").chain(args.iter().copied()))
        .expect("the arguments parse");
    resolve(args).expect("the settings resolve").0
}

#[test]
fn connection_settings_flag_over_file_over_default() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("keygate.toml");
    std::fs::write(
        &path,
        "demo = true\nmax-connections = 7\nheader-timeout = 9\nauth-failure-rate = 0\n",
    )
    .expect("the file is written");
    let file = path.to_str().expect("a UTF-8 path");
    let config = resolved(&["--config", file, "--max-connections", "3"]);
    assert_eq!(config.max_connections.get(), 3, "the flag wins");
    assert_eq!(
        config.header_timeout,
        Duration::from_secs(9),
        "from the file"
    );
    assert_eq!(config.auth_failure_rate, None, "0 turns the limit off");

    let config = resolved(&["--config", file, "--auth-failure-rate", "5"]);
    assert_eq!(config.auth_failure_rate.map(NonZeroU32::get), Some(5));
    assert_eq!(config.max_connections.get(), 7);

    let config = resolved(&["--demo"]);
    assert_eq!(config.header_timeout, Duration::from_secs(30));
    assert_eq!(config.auth_failure_rate.map(NonZeroU32::get), Some(60));
    assert_eq!(
        config.max_connections,
        keygate_server::default_max_connections()
    );
}
