//! Command-line behaviour of `keygated`: configuration errors, help, and a demo start.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use assert_cmd::cargo::cargo_bin;

const ENV: [&str; 15] = [
    "KEYGATE_CONFIG",
    "KEYGATE_LISTEN",
    "KEYGATE_DATABASE",
    "KEYGATE_UPSTREAM",
    "KEYGATE_DEMO",
    "KEYGATE_POLICY",
    "KEYGATE_KEY_RATE",
    "KEYGATE_TENANT_RATE",
    "KEYGATE_RATE_LIMIT_BACKEND",
    "KEYGATE_UPSTREAM_TIMEOUT",
    "KEYGATE_BRAND",
    "KEYGATE_LOG",
    "KEYGATE_HEADER_TIMEOUT",
    "KEYGATE_MAX_CONNECTIONS",
    "KEYGATE_AUTH_FAILURE_RATE",
];

fn keygated() -> Command {
    let mut cmd = Command::cargo_bin("keygated").unwrap();
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs and returns (exit code, stderr).
fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for a failed start"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let out = keygated().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--database",
        "--upstream",
        "--demo",
        "--policy",
        "--key-rate",
        "--tenant-rate",
        "--rate-limit-backend",
        "--header-timeout",
        "--max-connections",
        "--auth-failure-rate",
        "KEYGATE_LISTEN",
        "KEYGATE_HEADER_TIMEOUT",
        "KEYGATE_MAX_CONNECTIONS",
        "KEYGATE_AUTH_FAILURE_RATE",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    keygated().arg("--version").assert().success();
}

#[test]
fn bad_values_exit_2_with_a_precise_message() {
    let cases: [(&[&str], &str); 11] = [
        (&["--demo", "--listen", "localhost"], "--listen"),
        (&["--demo", "--key-rate", "0"], "--key-rate"),
        (&["--demo", "--tenant-rate", "many"], "--tenant-rate"),
        (
            &["--demo", "--database", "mysql://x"],
            "sqlite://PATH or postgres://",
        ),
        (
            &["--demo", "--rate-limit-backend", "memcached"],
            "`memory` or a redis:// URL",
        ),
        (&["--upstream", "ftp://x/mcp"], "http://"),
        (
            &["--demo", "--upstream", "http://x/mcp"],
            "cannot be used with",
        ),
        (&[], "give --upstream URL"),
        (&["--demo", "--header-timeout", "0"], "--header-timeout"),
        (&["--demo", "--max-connections", "0"], "--max-connections"),
        (
            &["--demo", "--auth-failure-rate", "many"],
            "--auth-failure-rate",
        ),
    ];
    for (args, needle) in cases {
        let (code, err) = run(keygated().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, err) = run(keygated().env("KEYGATE_KEY_RATE", "0").arg("--demo"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--key-rate"), "{err}");
}

#[test]
fn config_file_errors_name_the_file_key_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.toml");

    std::fs::write(&path, "demo = true\nlisten_addr = \"x\"\n").unwrap();
    let (code, err) = run(keygated().arg("--config").arg(&path));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("keygate.toml"), "{err}");
    assert!(err.contains("unknown field `listen_addr`"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    std::fs::write(&path, "demo = true\ndatabase = \"oracle://x\"\n").unwrap();
    let (code, err) = run(keygated().arg("--config").arg(&path));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`database`"), "{err}");

    std::fs::write(&path, "demo = true\nkey-rate = 0\n").unwrap();
    let (code, err) = run(keygated().arg("--config").arg(&path));
    assert_eq!(code, 2, "{err}");

    for bad in [
        "max-connections = 0",
        "header-timeout = 0",
        "auth-failure-rate = -1",
    ] {
        std::fs::write(&path, format!("demo = true\n{bad}\n")).unwrap();
        let (code, err) = run(keygated().arg("--config").arg(&path));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("line 2"), "{bad}: {err}");
    }

    let (code, err) = run(keygated()
        .arg("--config")
        .arg(dir.path().join("missing.toml")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read config file"), "{err}");
}

#[test]
fn an_upstream_without_a_policy_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let (code, err) = run(keygated().args([
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--database",
        &db,
        "--listen",
        "127.0.0.1:0",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("policy file"), "{err}");
    let (code, err) = run(keygated().args([
        "--demo",
        "--policy",
        "/nonexistent/policy.toml",
        "--database",
        &db,
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("policy.toml"), "{err}");
}

/// GET `path` on `addr` over a raw loopback connection; the whole answer.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn demo_prints_the_owner_key_once_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let config = dir.path().join("keygate.toml");
    // The file says one port; the flag wins.
    std::fs::write(&config, "demo = true\nlisten = \"127.0.0.1:1\"\n").unwrap();
    let start = || {
        let mut cmd = StdCommand::new(cargo_bin("keygated"));
        for var in ENV {
            cmd.env_remove(var);
        }
        cmd.arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--database", &db])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..2 {
        let mut child = start();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let mut line = String::new();
        while stderr.read_line(&mut line).unwrap() > 0 {
            if let Some(a) = line.trim().strip_prefix("keygated: listening on http://") {
                addr = Some(a.to_owned());
                break;
            }
            line.clear();
        }
        let addr = addr.expect("the listening line");
        let health = http_get(&addr, "/healthz");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        child.kill().unwrap();
        child.wait().unwrap();
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        if round == 0 {
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines.len(), 1, "{stdout}");
            assert!(
                lines[0].starts_with("kg_uk_") && lines[0].len() == 54,
                "{stdout}"
            );
            assert!(!rest.contains(lines[0]), "the key never reaches the logs");
        } else {
            assert!(
                stdout.is_empty(),
                "the key is printed only on an empty database"
            );
        }
    }
}

/// Spawns `keygated --demo` on a fresh database with `args` and `env`; the child and
/// its address, once it listens.
fn spawn_demo(
    dir: &std::path::Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (Child, String) {
    let db = format!("sqlite://{}", dir.join("k.db").display());
    let mut cmd = StdCommand::new(cargo_bin("keygated"));
    for var in ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .args(["--demo", "--listen", "127.0.0.1:0", "--database", &db])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(a) = line.trim().strip_prefix("keygated: listening on http://") {
            let addr = a.to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return (child, addr);
        }
        line.clear();
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("keygated exited before listening: {status:?}");
}

/// `header-timeout` from the file and `KEYGATE_MAX_CONNECTIONS` from the environment
/// both apply: with one slot, a second connection is served only once the server has
/// closed the first, stalled one, after the one-second header timeout.
#[test]
fn header_timeout_from_the_file_and_connection_cap_from_the_env() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keygate.toml");
    std::fs::write(&config, "header-timeout = 1\n").unwrap();
    let (mut child, addr) = spawn_demo(
        dir.path(),
        &["--config".as_ref(), config.as_os_str()],
        &[("KEYGATE_MAX_CONNECTIONS", "1")],
    );
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled.write_all(b"GET /healthz HT").unwrap();
    let mut second = std::net::TcpStream::connect(&addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        second,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    second.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // By then the stalled connection was closed (else the only slot was still taken).
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = stalled.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the stalled connection is still open: {closed:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
