//! `keygate doctor`: the credential map of a project directory and its environment.

use std::io::Write;
use std::process::ExitCode;

use keygate_scan::{CredentialMap, Doctor};

use crate::cli::DoctorArgs;
use crate::runtime::block_on;

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
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks the server about each keygate key of the map.
fn introspect(server: &str, map: &mut CredentialMap) -> anyhow::Result<()> {
    for token in map.keys().to_vec() {
        let client = keygate_client::Client::new(server, token.clone())?;
        match block_on(client.introspect())? {
            Ok(Ok(info)) => map.key_active(&token, &info.tenant.name, info.projects.len()),
            Ok(Err(reason)) => map.key_rejected(&token, reason.as_str(), reason.explain()),
            Err(keygate_client::Error::Rejected { status, .. }) => anyhow::bail!(
                "the keygate server at {} answered {status} to token introspection",
                server.trim_end_matches('/'),
            ),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
