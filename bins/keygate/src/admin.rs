//! `keygate keys|projects|audit`: the owner admin API over HTTP.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use keygate_token::{KeyId, Token};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{AuditArgs, KeysCommand, KindArg, ProjectsCommand};
use crate::client::{Answer, Client, explain_reason, rejection_reason};
use crate::exit::Refused;

/// The only place the admin key comes from: never a flag, which would land in shell
/// history and the process list.
const KEY_VAR: &str = "KEYGATE_API_KEY";

struct Admin {
    client: Client,
    token: Token,
}

impl Admin {
    fn new(server: &str) -> anyhow::Result<Self> {
        let raw = std::env::var(KEY_VAR).unwrap_or_default();
        if raw.trim().is_empty() {
            bail!("{KEY_VAR} is not set: export the owner key (from keygate bootstrap) first");
        }
        let token = Token::parse(raw.trim())
            .map_err(|err| anyhow::anyhow!("{KEY_VAR} does not hold a keygate key: {err}"))?;
        Ok(Self {
            client: Client::new(server)?,
            token,
        })
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let answer = self.client.get(path, self.token.expose())?;
        self.body(answer)
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self.client.post(path, self.token.expose(), body)?;
        self.body(answer)
    }

    /// The body of a 2xx answer; anything else becomes a clear refusal (exit 1).
    fn body(&self, answer: Answer) -> anyhow::Result<Value> {
        if answer.ok() {
            return Ok(answer.body);
        }
        let error = answer.error().unwrap_or("").to_owned();
        let refused = match answer.status {
            401 => {
                let reason = rejection_reason(&answer);
                Refused::new(
                    format!(
                        "the key in {KEY_VAR} was refused: {} ({reason})",
                        explain_reason(reason)
                    ),
                    "hint: use a current owner key",
                )
            }
            403 => Refused::new(
                "refused: this key is not an owner key with keys:admin",
                "hint: use a user key of a tenant owner that holds the keys:admin scope",
            ),
            404 => Refused::bare(format!(
                "not found{}",
                if error.is_empty() {
                    String::new()
                } else {
                    format!(": {error}")
                }
            )),
            429 => Refused::bare("rate limited by the server; try again shortly"),
            status if status >= 500 => Refused::bare(format!(
                "the keygate server at {} failed ({status}); see its logs",
                self.client.base()
            )),
            status => {
                let message = answer
                    .body
                    .get("message")
                    .and_then(Value::as_str)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                Refused::bare(format!(
                    "the server refused the request ({status} {}){message}",
                    if error.is_empty() { "error" } else { &error }
                ))
            }
        };
        Err(refused.into())
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
            name,
        } => {
            let admin = Admin::new(&server.server)?;
            let mut body = json!({
                "name": name,
                "kind": match kind { KindArg::User => "user", KindArg::Tenant => "tenant" },
                "scopes": scopes,
            });
            if !projects.is_empty() {
                body["projects"] = json!(projects);
            }
            if let Some(lifetime) = expires_in {
                // Seconds from now, counted by the server's clock, not ours.
                body["expires_in"] = json!(lifetime.as_secs());
            }
            let created = admin.post("/api/v1/keys", &body)?;
            print_new_key(&created)?;
            eprintln!("created {}", describe(&created));
            eprintln!("the key is shown this once: store it now");
        }
        KeysCommand::List { server, json } => {
            let admin = Admin::new(&server.server)?;
            let listing = admin.get("/api/v1/keys")?;
            let keys = array(&listing, "keys")?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", Value::Array(keys.to_vec()))?;
            } else {
                let now = OffsetDateTime::now_utc();
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            text(k, "id"),
                            text(k, "name"),
                            text(k, "kind"),
                            list(k, "scopes"),
                            when(k, "created_at"),
                            when(k, "expires_at"),
                            when(k, "last_used_at"),
                            status(k, now),
                        ]
                    })
                    .collect();
                table(
                    &mut out,
                    &[
                        "ID",
                        "NAME",
                        "KIND",
                        "SCOPES",
                        "CREATED",
                        "EXPIRES",
                        "LAST USED",
                        "STATUS",
                    ],
                    &rows,
                )?;
            }
            out.flush()?;
        }
        KeysCommand::Show { server, id, json } => {
            let id = key_id(id)?;
            let admin = Admin::new(&server.server)?;
            let key = admin.get(&format!("/api/v1/keys/{id}"))?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{key}")?;
            } else {
                let now = OffsetDateTime::now_utc();
                let projects = match key.get("projects") {
                    Some(Value::Array(p)) => p
                        .iter()
                        .map(|p| p.get("name").and_then(Value::as_str).unwrap_or("?"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => "all".to_owned(),
                };
                for (label, value) in [
                    ("id", text(&key, "id")),
                    ("name", text(&key, "name")),
                    ("kind", text(&key, "kind")),
                    ("prefix", text(&key, "prefix")),
                    ("scopes", list(&key, "scopes")),
                    ("projects", projects),
                    ("created", when(&key, "created_at")),
                    ("expires", when(&key, "expires_at")),
                    ("last used", when(&key, "last_used_at")),
                    ("revoked", when(&key, "revoked_at")),
                    ("status", status(&key, now)),
                ] {
                    writeln!(out, "{label:<10} {value}")?;
                }
            }
            out.flush()?;
        }
        KeysCommand::Revoke { server, id } => {
            let id = key_id(id)?;
            let admin = Admin::new(&server.server)?;
            admin.post(&format!("/api/v1/keys/{id}/revoke"), &json!({}))?;
            eprintln!("revoked key {id}: it is refused from the next request on");
        }
        KeysCommand::Rotate { server, id } => {
            let id = key_id(id)?;
            let admin = Admin::new(&server.server)?;
            let created = admin.post(&format!("/api/v1/keys/{id}/rotate"), &json!({}))?;
            print_new_key(&created)?;
            eprintln!("created {} to replace key {id}", describe(&created));
            eprintln!("the key is shown this once: store it now");
            eprintln!(
                "the old key {id} stays active: once the new key works, run `keygate keys revoke {id}`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the raw key alone on stdout, one line.
fn print_new_key(created: &Value) -> anyhow::Result<()> {
    let key = created
        .get("key")
        .and_then(Value::as_str)
        .context("the server's answer has no key")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{key}")?;
    out.flush()?;
    Ok(())
}

fn describe(key: &Value) -> String {
    let mut s = format!(
        "{} key {} ({}) with scopes [{}]",
        text(key, "kind"),
        text(key, "id"),
        text(key, "name"),
        list(key, "scopes")
    );
    if let Some(at) = key.get("expires_at").and_then(Value::as_str) {
        s.push_str(&format!(", expiring {at}"));
    }
    s
}

pub(crate) fn projects(cmd: &ProjectsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectsCommand::Create { server, name } => {
            let admin = Admin::new(&server.server)?;
            let project = admin.post("/api/v1/projects", &json!({ "name": name }))?;
            eprintln!(
                "created project {} (id {})",
                text(&project, "name"),
                text(&project, "id")
            );
        }
        ProjectsCommand::List { server, json } => {
            let admin = Admin::new(&server.server)?;
            let listing = admin.get("/api/v1/projects")?;
            let projects = array(&listing, "projects")?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", Value::Array(projects.to_vec()))?;
            } else {
                let rows: Vec<Vec<String>> = projects
                    .iter()
                    .map(|p| vec![text(p, "id"), text(p, "name"), when(p, "created_at")])
                    .collect();
                table(&mut out, &["ID", "NAME", "CREATED"], &rows)?;
            }
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(&args.server.server)?;
    let listing = admin.get(&format!("/api/v1/audit?limit={}", args.limit))?;
    let events = array(&listing, "events")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", Value::Array(events.to_vec()))?;
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    when(e, "at"),
                    text(e, "actor"),
                    text(e, "action"),
                    text(e, "target"),
                ]
            })
            .collect();
        table(&mut out, &["AT", "ACTOR", "ACTION", "TARGET"], &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A listing: a bare array, or an object holding one under `field`.
fn array<'a>(listing: &'a Value, field: &str) -> anyhow::Result<&'a [Value]> {
    listing
        .as_array()
        .or_else(|| listing.get(field).and_then(Value::as_array))
        .map(Vec::as_slice)
        .with_context(|| format!("the server's answer is not a list of {field}"))
}

fn text(v: &Value, field: &str) -> String {
    match v.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn list(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM` UTC, or `-`.
fn when(v: &Value, field: &str) -> String {
    let Some(s) = v.get(field).and_then(Value::as_str) else {
        return "-".to_owned();
    };
    let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) else {
        return s.to_owned();
    };
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// The server's `status`, or one derived from `revoked_at` and `expires_at`.
fn status(v: &Value, now: OffsetDateTime) -> String {
    if let Some(s) = v.get("status").and_then(Value::as_str) {
        return s.to_owned();
    }
    if v.get("revoked_at").is_some_and(|r| !r.is_null()) {
        return "revoked".to_owned();
    }
    let expired = v
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .is_some_and(|at| at <= now);
    if expired { "expired" } else { "active" }.to_owned()
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
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        let rows = vec![vec!["abc".to_owned(), "x".to_owned()]];
        table(&mut out, &["ID", "NAME"], &rows).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "ID   NAME\nabc  x\n");
    }

    #[test]
    fn statuses() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            status(&json!({"revoked_at": "2020-01-01T00:00:00Z"}), now),
            "revoked"
        );
        assert_eq!(
            status(&json!({"expires_at": "2020-01-01T00:00:00Z"}), now),
            "expired"
        );
        assert_eq!(status(&json!({"expires_at": null}), now), "active");
        assert_eq!(status(&json!({"status": "revoked"}), now), "revoked");
        assert_eq!(
            when(&json!({"at": "2024-05-06T07:08:09+02:00"}), "at"),
            "2024-05-06 05:08Z"
        );
    }
}
