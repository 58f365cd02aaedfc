//! keygate-client from synchronous commands.

use std::future::Future;

use anyhow::Context;

/// Runs `future` to its end on a current-thread runtime.
pub(crate) fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(future))
}
