//! `keygate token check`: shape and checksum, offline.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use keygate_token::{Token, recognise_whole};

use crate::cli::TokenCommand;
use crate::refusal::Refused;

pub(crate) fn run(cmd: &TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Check { token, json } = cmd;
    let raw = if token == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the token from stdin")?;
        line
    } else {
        token.clone()
    };
    let raw = raw.trim();
    match Token::parse(raw) {
        Ok(token) => {
            let mut out = std::io::stdout().lock();
            if *json {
                let doc = serde_json::json!({
                    "valid": true,
                    "brand": token.brand(),
                    "kind": token.kind().actor(),
                    "id": token.id().as_str(),
                    "prefix": token.prefix(),
                });
                writeln!(out, "{doc}")?;
            } else {
                writeln!(
                    out,
                    "valid keygate {} key: brand {}, id {}",
                    token.kind().actor(),
                    token.brand(),
                    token.id()
                )?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            // Say what it looks like instead, when it is a known foreign credential.
            let fix = match recognise_whole(raw) {
                Some(kind) => format!(
                    "this looks like a {kind}, not a keygate key; use the key keygate issued"
                ),
                None => {
                    "copy the whole key again: it is shown once when created or rotated".to_owned()
                }
            };
            Err(Refused::new(format!("invalid token: {err}"), fix).into())
        }
    }
}
