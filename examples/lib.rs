//! Example programs for keygate.
//!
//! Each `[[example]]` in this package's manifest is a small program that shows one way
//! to use keygate, built by CI and run by a test. Run one with
//! `cargo run -p keygate-examples --example NAME`. The library holds only what the
//! benchmark peers share.

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
