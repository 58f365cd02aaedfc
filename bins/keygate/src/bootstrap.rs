//! `keygate bootstrap`: a tenant, its owner and the owner's admin key, straight in the store.

use std::process::ExitCode;

use anyhow::Context;
use keygate_demo::DEMO_PROJECTS;
use keygate_keys::{Bootstrap, StoreError, TokenFormat};
use keygate_scopes::{ADMIN_SCOPE, Policy};

use crate::cli::BootstrapArgs;
use crate::refusal::Refused;
use crate::runtime::block_on;

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
    // Every policy's scopes include keys:admin; without a policy it is the only one.
    let scopes = policy.map_or_else(|| vec![ADMIN_SCOPE.to_owned()], |p| p.all_scopes());
    let projects: &[&str] = if args.demo { &DEMO_PROJECTS } else { &[] };
    let key_name = format!("{} (bootstrap)", args.owner);
    let request = Bootstrap::new(&args.tenant, &args.owner, projects, scopes, key_name);

    let done = block_on(async {
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
    })??;

    crate::print_secret(done.key.token.expose())?;
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
