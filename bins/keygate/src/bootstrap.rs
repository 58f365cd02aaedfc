//! `keygate bootstrap`: a tenant, its owner and the owner's admin key, straight in the store.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use keygate_demo::DEMO_PROJECTS;
use keygate_keys::{Bootstrap, StoreError, TokenFormat};
use keygate_scopes::{ADMIN_SCOPE, Policy};

use crate::cli::BootstrapArgs;
use crate::exit::Refused;

pub(crate) fn run(args: &BootstrapArgs) -> anyhow::Result<ExitCode> {
    let format = TokenFormat::new(&args.brand)
        .with_context(|| format!("--brand {:?} is not a valid brand", args.brand))?;
    let policy = if args.demo {
        Some(Policy::from_toml_str(keygate_demo::POLICY_TOML).context("the demo policy")?)
    } else if let Some(path) = &args.policy {
        Some(Policy::load(path)?)
    } else {
        None
    };
    let mut scopes = policy.map(|p| p.all_scopes()).unwrap_or_default();
    if !scopes.iter().any(|s| s == ADMIN_SCOPE) {
        scopes.insert(0, ADMIN_SCOPE.to_owned());
    }
    let projects: Vec<String> = if args.demo {
        DEMO_PROJECTS.iter().map(|p| (*p).to_owned()).collect()
    } else {
        Vec::new()
    };
    let request = Bootstrap {
        tenant: args.tenant.clone(),
        owner: args.owner.clone(),
        projects,
        scopes,
        key_name: format!("{} (bootstrap)", args.owner),
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let done = rt.block_on(async {
        let store = keygate_keys::connect(&args.database)
            .await
            .context("opening the key store")?;
        match store.bootstrap(&format, request).await {
            Ok(done) => Ok(done),
            Err(StoreError::Conflict(_)) => Err(Refused::new(
                format!(
                    "tenant {:?} already exists: nothing was changed",
                    args.tenant
                ),
                "hint: choose another tenant name, or create keys with `keygate keys create` \
                 using that tenant's owner key",
            )
            .into()),
            Err(err) => Err(anyhow::Error::new(err).context("bootstrapping the tenant")),
        }
    })?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", done.key.token.expose())?;
    out.flush()?;
    let projects: Vec<&str> = done.projects.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "bootstrapped tenant {} with owner {}{}",
        done.tenant.name,
        done.owner.name,
        if projects.is_empty() {
            String::new()
        } else {
            format!(" and projects {}", projects.join(", "))
        }
    );
    eprintln!(
        "owner key {} with scopes [{}]: shown this once, store it now \
         (for example: export KEYGATE_API_KEY=$(keygate bootstrap …))",
        done.key.token,
        done.key.key.scopes.join(",")
    );
    Ok(ExitCode::SUCCESS)
}
