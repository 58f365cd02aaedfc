//! `keygate check`: the start-up validation an agent bridge runs (keygate-client's
//! [`Check`]), rendered.

use std::process::ExitCode;

use keygate_client::{Check, Lookup, Outcome, Refusal};

use crate::cli::CheckArgs;
use crate::refusal::Refused;
use crate::runtime::block_on;

pub(crate) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let lookup = Lookup::new()
        .env_var(&args.env_var)
        .mcp_json(args.mcp_json.clone())
        .mcp_server(args.mcp_server.clone());
    let check = Check::new(&args.server.server).lookup(lookup);
    let ready = match block_on(check.run())?? {
        Outcome::Ready(ready) => ready,
        Outcome::Refused(refusal) => return Err(refused(&refusal, &args.env_var).into()),
        other => anyhow::bail!("the start-up check answered {other:?}"),
    };
    eprintln!(
        "ok: {} key {} ({}), tenant {}, project {}",
        ready.info().kind,
        ready.token().id(),
        ready.source(),
        ready.info().tenant.name,
        ready.project().name,
    );
    if ready.read_only() {
        eprintln!("warning: this key is read-only: mutations will fail");
        eprintln!("hint: ask for a key with write scopes if the agent must change anything");
    }
    Ok(ExitCode::SUCCESS)
}

/// The refusal and the fix to show under it.
fn refused(refusal: &Refusal, name: &str) -> Refused {
    let one_project = "hint: create a key for exactly one project: \
                       keygate keys create --kind user --project <name> --scope … --name <name>";
    let hint = match refusal {
        Refusal::NoCredential { .. } => format!(
            "hint: export {name}=<your key>, or add \"{name}\": \"<your key>\" to the env \
             block of your server in .mcp.json (and keep .mcp.json out of git)"
        ),
        Refusal::Malformed { origin, .. } => format!(
            "hint: the {origin} does not hold a whole keygate key; copy the key again \
             (it is shown once when created or rotated)"
        ),
        Refusal::Rejected { origin, .. } => format!(
            "hint: ask your tenant's owner for a new key (keygate keys create or keys rotate) \
             and put it in the {origin}"
        ),
        _ => one_project.to_owned(),
    };
    Refused::new(refusal.to_string(), hint)
}
