//! `keygate wrap`: the start-up check when asked, then keygate-server's `Wrap` on stdio.

use std::process::ExitCode;

use crate::cli::WrapArgs;

pub(crate) fn run(args: WrapArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        crate::startup_check::run(&args.lookup)?;
    }
    let filter = std::env::var("KEYGATE_LOG").unwrap_or_else(|_| "info".to_owned());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    logs.with_writer(std::io::stderr).with_ansi(false).init();
    let runtime = tokio::runtime::Runtime::new()?;
    let end = runtime.block_on(async {
        let wrap = keygate_server::Wrap::new(args.command, &args.policy).await?;
        wrap.run(tokio::io::stdin(), tokio::io::stdout()).await
    });
    // A read of stdin may still block a thread: do not wait for it.
    runtime.shutdown_background();
    Ok(ExitCode::from(end?.exit_code()))
}
