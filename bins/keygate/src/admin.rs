//! `keygate keys|projects|audit|approvals`: the owner admin API and the approvals API
//! over HTTP.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use keygate_client::{Api, ApprovalInfo, Client, CreateKey, Declined, IssuedKey, KeyInfo};
use keygate_token::{KeyId, KeyKind, Token};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{
    ApprovalsCommand, AuditArgs, KeyIdArgs, KeysCommand, KindArg, ListArgs, ProjectsCommand,
};
use crate::refusal::Refused;
use crate::runtime::block_on;

/// The only place the admin key comes from: never a flag, which would land in shell
/// history and the process list.
const KEY_VAR: &str = "KEYGATE_API_KEY";

struct Admin {
    client: Client,
    api: Api,
}

impl Admin {
    fn new(server: &str) -> anyhow::Result<Self> {
        Self::of(server, Api::Admin)
    }

    fn of(server: &str, api: Api) -> anyhow::Result<Self> {
        let raw = std::env::var(KEY_VAR).unwrap_or_default();
        if raw.trim().is_empty() {
            match api {
                Api::Approvals => {
                    bail!("{KEY_VAR} is not set: export your own user key with gates:approve first")
                }
                _ => bail!(
                    "{KEY_VAR} is not set: export the owner key (from keygate bootstrap) first"
                ),
            }
        }
        let token = Token::parse(raw.trim())
            .map_err(|err| anyhow::anyhow!("{KEY_VAR} does not hold a keygate key: {err}"))?;
        let client = Client::new(server, token)?;
        Ok(Self { client, api })
    }

    /// The answer of a request; a refusal by the server becomes a clear one (exit 1).
    fn call<T>(
        &self,
        request: impl Future<Output = Result<T, keygate_client::Error>>,
    ) -> anyhow::Result<T> {
        block_on(request)?.map_err(|err| self.refusal(err))
    }

    fn refusal(&self, err: keygate_client::Error) -> anyhow::Error {
        let keygate_client::Error::Rejected { status, body, .. } = err else {
            return err.into();
        };
        let declined = Declined::of(self.api, KEY_VAR, self.client.server(), status, &body);
        match declined.hint() {
            Some(hint) => Refused::new(declined.to_string(), hint),
            None => Refused::bare(declined.to_string()),
        }
        .into()
    }
}

fn key_id(id: &str) -> anyhow::Result<KeyId> {
    id.parse::<KeyId>()
        .map_err(|err| anyhow::anyhow!("{id:?} is not a key id: {err}"))
}

pub(crate) fn keys(cmd: &KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create {
            server,
            kind,
            scopes,
            projects,
            expires_in,
            remaining,
            refill,
            name,
        } => {
            let admin = Admin::new(&server.server)?;
            let kind = match kind {
                KindArg::User => KeyKind::User,
                KindArg::Tenant => KeyKind::Tenant,
            };
            let body = CreateKey::new(name, kind, scopes.clone())
                .with_projects(projects.clone())
                .with_lifetime(*expires_in)
                .with_usage(*remaining, *refill);
            let created = admin.call(admin.client.create_key(&body))?;
            show_issued(&created, "")?;
        }
        KeysCommand::List(ListArgs { server, json }) => {
            let admin = Admin::new(&server.server)?;
            let keys = admin.call(admin.client.keys())?;
            let now = OffsetDateTime::now_utc();
            let header = [
                "ID",
                "NAME",
                "KIND",
                "SCOPES",
                "CREATED",
                "EXPIRES",
                "LAST USED",
                "REMAINING",
                "REFILL",
                "STATUS",
            ];
            print_list(*json, &keys, &header, |k| {
                vec![
                    k.id.to_string(),
                    k.name.clone(),
                    k.kind.to_string(),
                    k.scopes.join(","),
                    when(k.created_at),
                    when(k.expires_at),
                    when(k.last_used_at),
                    k.remaining
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    refill(k),
                    k.status_at(now).as_str().to_owned(),
                ]
            })?;
        }
        KeysCommand::Show { list, id } => {
            let id = key_id(id)?;
            let admin = Admin::new(&list.server.server)?;
            let key = admin.call(admin.client.key_info(&id))?;
            let mut out = std::io::stdout().lock();
            if list.json {
                writeln!(out, "{}", serde_json::to_value(&key)?)?;
            } else {
                let now = OffsetDateTime::now_utc();
                let projects = match &key.projects {
                    Some(p) => p
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => "all".to_owned(),
                };
                for (label, value) in [
                    ("id", key.id.to_string()),
                    ("name", key.name.clone()),
                    ("kind", key.kind.to_string()),
                    ("prefix", key.prefix.clone()),
                    ("scopes", key.scopes.join(",")),
                    ("projects", projects),
                    ("created", when(key.created_at)),
                    ("expires", when(key.expires_at)),
                    ("last used", when(key.last_used_at)),
                    ("revoked", when(key.revoked_at)),
                    ("status", key.status_at(now).as_str().to_owned()),
                    (
                        "remaining",
                        key.remaining
                            .map_or_else(|| "no limit".to_owned(), |n| n.to_string()),
                    ),
                    ("refill", refill(&key)),
                ] {
                    writeln!(out, "{label:<10} {value}")?;
                }
            }
            out.flush()?;
        }
        KeysCommand::Revoke(KeyIdArgs { server, id }) => {
            let id = key_id(id)?;
            let admin = Admin::new(&server.server)?;
            admin.call(admin.client.revoke_key(&id))?;
            eprintln!("revoked key {id}: it is refused from the next request on");
        }
        KeysCommand::Rotate(KeyIdArgs { server, id }) => {
            let id = key_id(id)?;
            let admin = Admin::new(&server.server)?;
            let created = admin.call(admin.client.rotate_key(&id))?;
            show_issued(&created, &format!(" to replace key {id}"))?;
            eprintln!(
                "the old key {id} stays active: once the new key works, run `keygate keys revoke {id}`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A new key alone on stdout, then what it is (and what it replaces) on stderr.
fn show_issued(issued: &IssuedKey, replacing: &str) -> anyhow::Result<()> {
    crate::print_secret(issued.key.expose())?;
    eprintln!("created {}{replacing}", describe(&issued.info));
    eprintln!("the key is shown this once: store it now");
    Ok(())
}

/// A key's refill as `--refill` takes it (`daily:1000`), `-` without one.
fn refill(key: &KeyInfo) -> String {
    key.refill
        .as_ref()
        .map_or_else(|| "-".to_owned(), keygate_client::refill_spec)
}

fn describe(key: &KeyInfo) -> String {
    let mut s = format!(
        "{} key {} ({}) with scopes [{}]",
        key.kind,
        key.id,
        key.name,
        key.scopes.join(",")
    );
    if let Some(at) = key.expires_at.and_then(|at| at.format(&Rfc3339).ok()) {
        s.push_str(&format!(", expiring {at}"));
    }
    if let Some(n) = key.remaining {
        s.push_str(&format!(", {n} requests left"));
        if key.refill.is_some() {
            s.push_str(&format!(" (refill {})", refill(key)));
        }
    }
    s
}

pub(crate) fn projects(cmd: &ProjectsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectsCommand::Create { server, name } => {
            let admin = Admin::new(&server.server)?;
            let project = admin.call(admin.client.create_project(name))?;
            eprintln!("created project {} (id {})", project.name, project.id);
        }
        ProjectsCommand::List(ListArgs { server, json }) => {
            let admin = Admin::new(&server.server)?;
            let projects = admin.call(admin.client.projects())?;
            print_list(*json, &projects, &["ID", "NAME", "CREATED"], |p| {
                vec![p.id.to_string(), p.name.clone(), when(Some(p.created_at))]
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(&args.server.server)?;
    let events = admin.call(admin.client.audit(args.limit))?;
    let header = ["AT", "ACTOR", "ACTION", "TARGET"];
    print_list(args.json, &events, &header, |e| {
        let at = when(Some(e.at));
        vec![at, e.actor.clone(), e.action.clone(), e.target.clone()]
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn approvals(cmd: &ApprovalsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApprovalsCommand::List(ListArgs { server, json }) => {
            let admin = Admin::of(&server.server, Api::Approvals)?;
            let approvals = admin.call(admin.client.approvals())?;
            let header = ["ID", "OPERATION", "TARGET", "KEY", "EXPIRES"];
            print_list(*json, &approvals, &header, |a| {
                vec![
                    printable(&a.id),
                    printable(&a.operation),
                    printable(&a.target),
                    format!("{} ({})", printable(&a.key.name), a.key.id),
                    when(Some(a.expires_at)),
                ]
            })?;
            if approvals.is_empty() {
                eprintln!("no pending approvals for this key");
            }
        }
        ApprovalsCommand::Approve { server, id, target } => {
            let admin = Admin::of(&server.server, Api::Approvals)?;
            let approval = admin.call(admin.client.approve(id, target))?;
            eprintln!(
                "approved {}: the agent's identical retry now proceeds once (until {})",
                summary(&approval),
                when(Some(approval.expires_at))
            );
        }
        ApprovalsCommand::Deny { server, id } => {
            let admin = Admin::of(&server.server, Api::Approvals)?;
            let approval = admin.call(admin.client.deny(id))?;
            eprintln!(
                "denied {}: the agent's retry is refused",
                summary(&approval)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ID (OPERATION TARGET, asked by KEY)`.
fn summary(a: &ApprovalInfo) -> String {
    format!(
        "{} ({} {}, asked by key {} ({}))",
        printable(&a.id),
        printable(&a.operation),
        printable(&a.target),
        printable(&a.key.name),
        a.key.id
    )
}

/// A string from the server (an agent's target, a key name) with control characters
/// escaped, so it cannot move the cursor or recolour the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A time as `YYYY-MM-DD HH:MM` UTC, or `-`.
fn when(at: Option<OffsetDateTime>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]Z");
    at.and_then(|at| at.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// `items` on stdout: one JSON line with `json`, else a table of `header` and a row
/// per item.
fn print_list<T: Serialize>(
    json: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_value(items)?)?;
    } else {
        table(&mut out, header, &items.iter().map(row).collect::<Vec<_>>())?;
    }
    out.flush()?;
    Ok(())
}

/// Left-aligned columns separated by two spaces.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
