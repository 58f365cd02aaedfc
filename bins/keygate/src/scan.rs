//! `keygate scan`: find keygate keys and foreign credentials in files.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keygate_scan::{Progress, Scanner};

use crate::cli::{Format, ScanArgs};

pub(crate) fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let scanner = Scanner::new()
        .ignore_files(!args.no_ignore)
        .skip_hidden(args.no_hidden)
        .max_filesize(args.max_filesize);
    // Started with the walk, once the paths are known to exist.
    let mut spinner = None;
    let report = scanner.scan_paths_with(&args.paths, |progress| {
        let spinner = spinner.get_or_insert_with(spinner_on_stderr);
        match progress {
            Progress::File { files, .. } if files % 64 == 0 => {
                spinner.set_message(format!("{files} files"));
            }
            Progress::Unreadable(unreadable) => {
                spinner.suspend(|| eprintln!("warning: {unreadable}"));
            }
            _ => {}
        }
    })?;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }

    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => report.write_text(&mut out)?,
        Format::Json => writeln!(out, "{}", report.to_json())?,
        Format::Sarif => writeln!(out, "{}", report.to_sarif(env!("CARGO_PKG_VERSION")))?,
    }
    out.flush()?;
    let too_large = match args.max_filesize {
        Some(max) => format!(" and {} over {max} bytes", report.too_large),
        None => String::new(),
    };
    eprintln!(
        "scanned {} files ({} binary{too_large} skipped, {} unreadable): {} credentials found",
        report.files,
        report.binary,
        report.unreadable.len(),
        report.findings.len()
    );
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A spinner on stderr, drawn only when stderr is a terminal.
fn spinner_on_stderr() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} scanning: {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
