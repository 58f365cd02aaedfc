//! The raw token never reaches the logs, whatever the outcome.

use std::io::Write;
use std::sync::{Arc, Mutex};

use keygate_keys::{KeyStore, Verifier};
use tracing_subscriber::fmt::MakeWriter;

use keygate_test::DownVerifier;

use crate::support::{Fixture, bearer, protected, send};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_outcome_logs_the_token() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fx = Fixture::new().await;
    let user = fx.user_token().to_owned();
    let down: Arc<dyn Verifier> = Arc::new(DownVerifier::new());
    let revoked = fx.tenant_token().to_owned();
    fx.store
        .revoke_key(&fx.boot.tenant.id, &fx.tenant_key.key.id, "test")
        .await
        .unwrap();

    send(fx.app(), "/echo", &[&bearer(&user)], &[]).await;
    send(fx.app(), "/echo", &[&bearer(&revoked)], &[]).await;
    send(
        fx.app(),
        "/echo",
        &[format!("Bearer  {user}").as_bytes()],
        &[],
    )
    .await;
    let a = send(protected(down), "/echo", &[&bearer(&user)], &[]).await;
    assert_eq!(a.status, http::StatusCode::SERVICE_UNAVAILABLE);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The store failure was logged, with its detail …
    assert!(logs.contains("key store unavailable"), "{logs}");
    assert!(logs.contains("connection refused"), "{logs}");
    // … and no secret part of any token appears anywhere.
    for token in [&user, &revoked] {
        let secret = &token[token.len() - 36..token.len() - 6];
        assert!(!logs.contains(secret), "{logs}");
    }
}

/// A policy denial names what the client asked for; its log line is cut short and
/// escaped, so a tool name can neither forge a line nor color the terminal.
#[test]
fn a_denial_logs_client_names_escaped_and_cut() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // With exactly one dispatcher registered, tracing computes a callsite's interest
    // from the default of whichever thread hits it first (another test's, which has
    // none, for `deny`); a second one makes it decide per event.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);

    let forged = format!(
        "x\n2026-01-01T00:00:00.000000Z  INFO forged: key revoked\u{1b}[31m{}",
        "a".repeat(500_000)
    );
    let denied = keygate_scopes::Denied::UnknownTool { tool: forged };
    let length = denied.to_string().chars().count();
    let resp = keygate_http::deny(&denied);
    assert_eq!(resp.status(), http::StatusCode::FORBIDDEN);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs}");
    assert!(
        logs.contains(r"x\n2026-01-01T00:00:00.000000Z  INFO forged"),
        "{logs}"
    );
    assert!(logs.contains(&format!("…[{length} chars]")), "{logs}");
    assert!(logs.len() < 1024, "{} bytes logged", logs.len());
}
