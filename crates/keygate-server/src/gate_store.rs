//! Gate state in PostgreSQL, so a challenge issued by one `keygated` instance can be
//! confirmed through another.
//!
//! Like keys, challenges are stored only as their SHA-256: someone reading the table
//! learns which key, session and target a challenge is for, never the challenge.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use keygate_gates::{Challenge, EvidenceRead, GateError, GateStore};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What the table keeps of a challenge.
fn digest(challenge: &str) -> Vec<u8> {
    Sha256::digest(challenge.as_bytes()).to_vec()
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gate_challenges (
    challenge_sha256 BYTEA PRIMARY KEY,
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS gate_challenges_expires_at ON gate_challenges (expires_at);
CREATE TABLE IF NOT EXISTS gate_evidence (
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    read_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, session_id, tool, target)
);
";

/// A [`GateStore`] on the PostgreSQL pool of the key store.
pub(crate) struct PgGateStore {
    pool: Pool,
}

impl std::fmt::Debug for PgGateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgGateStore").finish_non_exhaustive()
    }
}

impl PgGateStore {
    /// Creates the tables if missing (idempotent; concurrent starts are serialized by
    /// an advisory lock).
    pub(crate) async fn new(pool: Pool) -> Result<Self, GateError> {
        let mut client = pool.get().await.map_err(GateError::store)?;
        let tx = client.transaction().await.map_err(GateError::store)?;
        tx.execute("SELECT pg_advisory_xact_lock(7254015001)", &[])
            .await
            .map_err(GateError::store)?;
        tx.batch_execute(SCHEMA).await.map_err(GateError::store)?;
        tx.commit().await.map_err(GateError::store)?;
        drop(client);
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, GateError> {
        self.pool.get().await.map_err(GateError::store)
    }
}

#[async_trait]
impl GateStore for PgGateStore {
    async fn put_challenge(&self, c: &Challenge) -> Result<(), GateError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO gate_challenges (challenge_sha256, key_id, session_id, tool, target, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&digest(&c.challenge), &c.key_id, &c.session_id, &c.tool, &c.target, &c.issued_at, &c.expires_at],
            )
            .await
            .map_err(GateError::store)?;
        Ok(())
    }

    async fn take_challenge(&self, challenge: &str) -> Result<Option<Challenge>, GateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM gate_challenges WHERE challenge_sha256 = $1 RETURNING key_id, session_id, tool, target, issued_at, expires_at",
                &[&digest(challenge)],
            )
            .await
            .map_err(GateError::store)?;
        Ok(row.map(|r| Challenge {
            challenge: challenge.to_owned(),
            key_id: r.get(0),
            session_id: r.get(1),
            tool: r.get(2),
            target: r.get(3),
            issued_at: r.get(4),
            expires_at: r.get(5),
        }))
    }

    async fn record_evidence(&self, read: &EvidenceRead) -> Result<(), GateError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO gate_evidence (key_id, session_id, tool, target, read_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, session_id, tool, target) DO UPDATE SET read_at = EXCLUDED.read_at",
                &[&read.key_id, &read.session_id, &read.tool, &read.target, &read.at],
            )
            .await
            .map_err(GateError::store)?;
        Ok(())
    }

    async fn evidence_read(
        &self,
        key_id: &str,
        session_id: &str,
        tool: &str,
        target: &str,
        since: OffsetDateTime,
    ) -> Result<bool, GateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM gate_evidence WHERE key_id = $1 AND session_id = $2 AND tool = $3 AND target = $4 AND read_at >= $5",
                &[&key_id, &session_id, &tool, &target, &since],
            )
            .await
            .map_err(GateError::store)?;
        Ok(row.is_some())
    }

    async fn purge(
        &self,
        now: OffsetDateTime,
        evidence_before: OffsetDateTime,
    ) -> Result<u64, GateError> {
        let client = self.client().await?;
        let a = client
            .execute(
                "DELETE FROM gate_challenges WHERE expires_at <= $1",
                &[&now],
            )
            .await
            .map_err(GateError::store)?;
        let b = client
            .execute(
                "DELETE FROM gate_evidence WHERE read_at < $1",
                &[&evidence_before],
            )
            .await
            .map_err(GateError::store)?;
        Ok(a + b)
    }
}
