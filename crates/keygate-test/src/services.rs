//! The URLs of the services tests run against.

/// Whether the tests run under CI (`CI` set and not empty), where a test that needs
/// a missing service fails instead of skipping.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The URL in the environment variable `var`, trimmed; `None` (with a note on stderr)
/// when it is unset or empty, so the test can return early and pass.
///
/// # Panics
///
/// When `var` is unset under CI ([`under_ci`]): CI never skips a service test.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            assert!(
                !under_ci(),
                "{var} must be set under CI (this test needs the service)"
            );
            eprintln!("note: {var} is not set; skipping a test that needs it");
            None
        }
    }
}

/// The PostgreSQL URL for tests (`KEYGATE_TEST_POSTGRES`); see [`service_url`].
pub fn postgres_url() -> Option<String> {
    service_url("KEYGATE_TEST_POSTGRES")
}

/// The Redis URL for tests (`KEYGATE_TEST_REDIS`); see [`service_url`].
pub fn redis_url() -> Option<String> {
    service_url("KEYGATE_TEST_REDIS")
}
