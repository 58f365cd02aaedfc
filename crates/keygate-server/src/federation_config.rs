//! `[upstreams.NAME]` tables of a settings file: each an MCP server over HTTP (`url`) or
//! on stdio (`command`, `env`, `cwd`), resolved into an [`Upstream`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::Upstream;
use crate::error::ServerError;
use crate::stdio::StdioCommand;

/// Longest upstream name, in characters.
pub const MAX_UPSTREAM_NAME: usize = 64;

/// One `[upstreams.NAME]` table: `url = "http://…"`, or `command = ["prog", "arg", …]`
/// with optional `env = { NAME = "value" }` (a value may hold `${VAR}`, taken from the
/// gateway's own environment when it starts) and `cwd = "dir"`.
///
/// ```
/// use keygate_server::{UpstreamSpec, Upstream};
///
/// let spec: UpstreamSpec = toml::from_str(r#"
///     command = ["zcp", "serve"]
///     env = { ZCP_API_KEY = "${PLATFORM_TOKEN}" }
/// "#)?;
/// let env = |name: &str| (name == "PLATFORM_TOKEN").then(|| "t0k3n".to_owned());
/// let Upstream::Stdio(cmd) = spec.resolve("zcp", env)? else { panic!() };
/// assert_eq!(cmd.env["ZCP_API_KEY"], "t0k3n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamSpec {
    /// A Streamable HTTP server's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// A stdio server's program and arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A stdio server's environment (its only one, besides `PATH` and `HOME`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A stdio server's working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

impl UpstreamSpec {
    /// The upstream this table names, `${VAR}`s in `env` replaced by `gateway(VAR)`.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`], naming `[upstreams.NAME]` and the key: a bad name (see
    /// [`check_upstream_name`]), both or neither of `url` and `command`, an empty
    /// `command`, `env` or `cwd` with `url`, a bad URL, and a `${VAR}` that is unset
    /// or unclosed.
    pub fn resolve(
        self,
        name: &str,
        gateway: impl Fn(&str) -> Option<String>,
    ) -> Result<Upstream, ServerError> {
        check_upstream_name(name)?;
        let at = |why: String| ServerError::Config(format!("[upstreams.{name}]: {why}"));
        match (self.url, self.command) {
            (Some(_), Some(_)) => Err(at("give `url` or `command`, not both".to_owned())),
            (None, None) => Err(at(
                "give `url` (an MCP server over HTTP) or `command` (one on stdio)".to_owned(),
            )),
            (Some(url), None) => {
                if !self.env.is_empty() || self.cwd.is_some() {
                    return Err(at(
                        "`env` and `cwd` are for `command` upstreams; an HTTP upstream has its own"
                            .to_owned(),
                    ));
                }
                match url.parse::<Upstream>() {
                    Ok(upstream @ Upstream::Http(_)) => Ok(upstream),
                    _ => Err(at(format!(
                        "`url`: expected an http:// or https:// URL, not {url:?}"
                    ))),
                }
            }
            (None, Some(words)) => {
                let mut command = StdioCommand::from_words(words).map_err(|_| {
                    at("`command` must name a program: [\"prog\", \"arg\", …]".to_owned())
                })?;
                for (key, value) in self.env {
                    let value = expand(&value, &gateway)
                        .map_err(|why| at(format!("`env.{key}`: {why}")))?;
                    command.env.insert(key, value);
                }
                command.cwd = self.cwd;
                Ok(Upstream::Stdio(command))
            }
        }
    }
}

/// The upstream of a settings file's `[upstreams.NAME]` tables: with one, that upstream
/// (its tools keep their names); with several, all of them behind the gateway, their
/// tools, prompts and resource templates as `NAME.<name>`.
///
/// # Errors
///
/// [`ServerError::Config`] for no table, and for any table's error (see
/// [`UpstreamSpec::resolve`]).
pub fn named_upstreams(
    specs: BTreeMap<String, UpstreamSpec>,
    gateway: impl Fn(&str) -> Option<String>,
) -> Result<Upstream, ServerError> {
    let mut named = Vec::with_capacity(specs.len());
    for (name, spec) in specs {
        let upstream = spec.resolve(&name, &gateway)?;
        named.push((name, upstream));
    }
    if named.len() > 1 {
        return Ok(Upstream::Named(named));
    }
    named.pop().map(|(_, u)| u).ok_or_else(|| {
        ServerError::Config(
            "[upstreams]: name at least one upstream, as [upstreams.NAME]".to_owned(),
        )
    })
}

/// An upstream name: 1-[`MAX_UPSTREAM_NAME`] characters, no `.` (it separates the
/// name from a tool's), no whitespace or control characters.
///
/// ```
/// assert!(keygate_server::check_upstream_name("zcp").is_ok());
/// assert!(keygate_server::check_upstream_name("a.b").is_err());
/// assert!(keygate_server::check_upstream_name("").is_err());
/// ```
///
/// # Errors
///
/// [`ServerError::Config`] saying which rule the name breaks.
pub fn check_upstream_name(name: &str) -> Result<(), ServerError> {
    let bad = |why: &str| {
        Err(ServerError::Config(format!(
            "upstream name {:?}: {why}",
            name.chars().take(MAX_UPSTREAM_NAME + 1).collect::<String>()
        )))
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.chars().count() > MAX_UPSTREAM_NAME {
        return bad(&format!("must be at most {MAX_UPSTREAM_NAME} characters"));
    }
    if name.contains('.') {
        return bad("must not contain `.` (tools are exposed as NAME.<tool>)");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain whitespace or control characters");
    }
    Ok(())
}

/// `value` with every `${VAR}` replaced by `gateway(VAR)`.
fn expand(value: &str, gateway: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without its closing `}`".to_owned());
        };
        let var = &after[..end];
        if var.is_empty() {
            return Err("`${}` names no variable".to_owned());
        }
        let Some(v) = gateway(var) else {
            return Err(format!("${{{var}}} is not set in keygated's environment"));
        };
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn spec(text: &str) -> UpstreamSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn variables_come_from_the_gateway_and_an_unset_one_is_named() {
        assert_eq!(expand("Bearer ${TOKEN}!", &env).unwrap(), "Bearer s3cret!");
        assert_eq!(expand("${TOKEN}${EMPTY}$x", &env).unwrap(), "s3cret$x");
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.contains("${NOPE}") && e.contains("not set"), "{e}");
        assert!(expand("${TOKEN", &env).is_err());
        assert!(expand("${}", &env).is_err());
        let e = spec("command = [\"s\"]\nenv = { K = \"${NOPE}\" }")
            .resolve("zcp", env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "[upstreams.zcp]: `env.K`: ${NOPE} is not set in keygated's environment"
        );
    }

    #[test]
    fn a_table_names_one_kind_of_upstream() {
        let cases = [
            ("url = \"http://h/mcp\"\ncommand = [\"s\"]", "not both"),
            ("", "give `url`"),
            ("command = []", "must name a program"),
            ("url = \"http://h/mcp\"\ncwd = \"/\"", "`env` and `cwd`"),
            ("url = \"stdio:x\"", "`url`: expected an http://"),
        ];
        for (text, want) in cases {
            let e = spec(text).resolve("a", env).unwrap_err().to_string();
            assert!(
                e.starts_with("[upstreams.a]: ") && e.contains(want),
                "{text}: {e}"
            );
        }
        assert!(toml::from_str::<UpstreamSpec>("urls = \"x\"").is_err());
        assert!(matches!(
            spec("url = \"http://h/mcp\"").resolve("a", env),
            Ok(Upstream::Http(_))
        ));
        let Ok(Upstream::Stdio(cmd)) =
            spec("command = [\"s\", \"a b\"]\ncwd = \"/tmp\"").resolve("a", env)
        else {
            panic!("a stdio upstream");
        };
        assert_eq!(
            (cmd.program.as_str(), cmd.args.as_slice()),
            ("s", &["a b".to_owned()][..])
        );
        assert_eq!(cmd.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "a.b", "a b", "tab\t", &"x".repeat(65)] {
            assert!(check_upstream_name(bad).is_err(), "{bad:?}");
        }
        for good in ["zcp", "my-server_2", "ÿ"] {
            assert!(check_upstream_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn one_table_keeps_names_and_several_are_named() {
        let mut specs = BTreeMap::new();
        specs.insert("a".to_owned(), spec("url = \"http://h/mcp\""));
        assert!(matches!(
            named_upstreams(specs.clone(), env),
            Ok(Upstream::Http(_))
        ));
        specs.insert("b".to_owned(), spec("command = [\"s\"]"));
        let Ok(Upstream::Named(named)) = named_upstreams(specs.clone(), env) else {
            panic!("several");
        };
        assert_eq!(
            named.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        specs.insert("c.d".to_owned(), spec("command = [\"s\"]"));
        assert!(
            named_upstreams(specs, env)
                .unwrap_err()
                .to_string()
                .contains("`.`")
        );
        assert!(named_upstreams(BTreeMap::new(), env).is_err());
    }
}
