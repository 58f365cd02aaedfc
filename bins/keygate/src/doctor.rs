//! `keygate doctor`: the credential map of a project directory and its environment.

use std::io::Write;
use std::process::ExitCode;

use keygate_scan::{CredentialMap, Doctor};
use serde_json::Value;

use crate::cli::DoctorArgs;
use crate::client::{Client, explain_reason, rejection_reason};
use crate::exit;

pub(crate) fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut doctor = Doctor::new();
    if !args.no_env {
        doctor = doctor.environment(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        );
    }
    let mut map = doctor.run(&args.dir)?;
    if let Some(server) = &args.server {
        introspect(server, &mut map)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", map.to_json())?;
    } else {
        map.write_text(&mut out)?;
    }
    out.flush()?;
    Ok(if map.has_problems() {
        exit::failed()
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks the server about each keygate key of the map.
fn introspect(server: &str, map: &mut CredentialMap) -> anyhow::Result<()> {
    if map.keys().is_empty() {
        return Ok(());
    }
    let client = Client::new(server)?;
    for token in map.keys().to_vec() {
        let answer = client.get("/api/v1/token", token.expose())?;
        if answer.ok() {
            let n = answer
                .body
                .get("projects")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let tenant = answer
                .body
                .pointer("/tenant/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            map.key_active(&token, tenant, n);
        } else if answer.status == 401 {
            let reason = rejection_reason(&answer);
            map.key_rejected(&token, reason, explain_reason(reason));
        } else {
            anyhow::bail!(
                "the keygate server at {} answered {} to token introspection",
                client.base(),
                answer.status
            );
        }
    }
    Ok(())
}
