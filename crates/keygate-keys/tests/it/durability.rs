//! An acknowledged write survives the process being killed with SIGKILL.
//!
//! The test re-executes its own binary as a child (selected by an env var) that
//! bootstraps a tenant, creates and revokes a key, prints the acknowledgement and is
//! killed right after; the parent then reopens the file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use keygate_keys::{KeyId, KeyStore, SqliteStore, TenantId, Verifier, VerifyError};

const CHILD_ENV: &str = "KEYGATE_DURABILITY_CHILD_DB";
const TEST_NAME: &str = "durability::acknowledged_revoke_survives_sigkill";

#[test]
fn acknowledged_revoke_survives_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut ack = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print "test … ... " on the same line first.
        if let Some(at) = line.find("ACK ") {
            ack = Some(line[at + 4..].to_owned());
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let ack = ack.expect("child acknowledged");
    let mut parts = ack.split(' ');
    let (tenant, key, token) = (
        TenantId::new(parts.next().unwrap()),
        parts.next().unwrap().parse::<KeyId>().unwrap(),
        parts.next().unwrap().to_owned(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let got = store.get_key(&tenant, &key).await.unwrap();
        assert!(got.revoked_at.is_some(), "acknowledged revoke lost");
        assert!(matches!(
            store.verify(&token).await,
            Err(VerifyError::Revoked)
        ));
    });
}

/// The child: acknowledges a revoke, then waits (bounded) to be killed.
fn child(path: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(path).unwrap();
        let s = crate::conformance::setup(&store, "acme").await;
        let k = store
            .create_key(
                &crate::conformance::format(),
                crate::conformance::tenant_key(&s),
                "t",
            )
            .await
            .unwrap();
        store.revoke_key(&s.tenant, &k.key.id, "t").await.unwrap();
        // The token is a test key in a temporary database, printed only to the parent.
        println!("\nACK {} {} {}", s.tenant, k.key.id, k.token.expose());
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
}
