//! `keygate`, the command line of the keygate toolkit.
//!
//! It sets up a tenant in a key store (`bootstrap`), checks tokens offline (`token check`), finds leaked keygate keys and foreign
//! credentials in files (`scan`), maps the credentials an agent would start with
//! (`doctor`), runs the start-up validation of an agent bridge (`check`), and
//! administers keys and projects through a running `keygated` (`keys`, `projects`,
//! `audit`), and lets a person decide gated tool calls (`approvals`).
//!
//! Secrets go to standard output alone, on one line, so `$(keygate keys create …)`
//! captures exactly the key; everything else goes to standard error. Exit codes: 0 ok,
//! 1 a check failed or something was found, 2 a usage or I/O error.

mod admin;
mod bootstrap;
mod cli;
mod doctor;
mod refusal;
mod runtime;
mod scan;
mod startup_check;
mod token_check;
mod wrap;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::refusal::Refused;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors exit 2; --help and --version exit 0.
            let code = err.exit_code();
            let _ = err.print();
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if let Some(refused) = err.downcast_ref::<Refused>() {
                eprintln!("{refused}");
                return ExitCode::FAILURE;
            }
            if is_broken_pipe(&err) {
                // The reader went away (`keygate scan | head`): not an error of ours.
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            // Usage or I/O error.
            ExitCode::from(2)
        }
    }
}

/// Writes a raw key alone on stdout, one line, for `$(…)`.
fn print_secret(secret: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{secret}")?;
    out.flush()?;
    Ok(())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bootstrap(args) => bootstrap::run(&args),
        Command::Token(cmd) => token_check::run(&cmd),
        Command::Scan(args) => scan::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Check(args) => startup_check::run(&args),
        Command::Keys(cmd) => admin::keys(&cmd),
        Command::Projects(cmd) => admin::projects(&cmd),
        Command::Audit(args) => admin::audit(&args),
        Command::Approvals(cmd) => admin::approvals(&cmd),
        Command::Wrap(args) => wrap::run(args),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "keygate", &mut out);
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
