//! `keygate check`: the start-up validation an agent bridge runs (keygate-client's
//! [`Check`]), rendered.

use std::process::ExitCode;

use keygate_client::{Check, Lookup, Outcome};

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
        Outcome::Refused(refusal) => {
            return Err(Refused::new(refusal.to_string(), refusal.hint()).into());
        }
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
