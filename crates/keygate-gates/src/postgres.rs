//! Gate state in PostgreSQL, so a challenge issued by one server can be confirmed
//! through another.
//!
//! Like keys, challenges are stored only as their SHA-256: someone reading the table
//! learns which key, session and target a challenge is for, never the challenge. The
//! arguments a challenge is bound to are kept as the SHA-256 of their canonical form.
//! Session bindings likewise keep the SHA-256 of the `Mcp-Session-Id`, never the id.

use crate::approval::{Approval, ApprovalQuery, ApprovalStatus, Claimed, DecidedBy};
use crate::arguments::Arguments;
use crate::error::GateError;
use crate::store::{
    Challenge, EvidenceQuery, EvidenceRead, GateStore, SessionBinding, SessionTouch, Taken,
    session_digest,
};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

/// What the table keeps of a challenge.
fn digest(challenge: &str) -> Vec<u8> {
    Sha256::digest(challenge.as_bytes()).to_vec()
}

/// The table as it was before challenges were bound to arguments; kept for the test
/// of the migration.
#[cfg(test)]
const SCHEMA_BEFORE_ARGUMENTS: &str = "
CREATE TABLE gate_challenges (
    challenge_sha256 BYTEA PRIMARY KEY,
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
";

/// The tables as they were before session bindings; kept for the test of the
/// migration.
#[cfg(test)]
const SCHEMA_BEFORE_SESSIONS: &str = "
CREATE TABLE gate_challenges (
    challenge_sha256 BYTEA PRIMARY KEY,
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    arguments_sha256 BYTEA NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX gate_challenges_expires_at ON gate_challenges (expires_at);
CREATE TABLE gate_evidence (
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    read_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, session_id, tool, target)
);
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gate_challenges (
    challenge_sha256 BYTEA PRIMARY KEY,
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    arguments_sha256 BYTEA NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
-- Tables made before challenges were bound to arguments: their challenges could
-- confirm any arguments, so they go, and the column is added. A keygated that does
-- not know the column can then issue no challenge at all (NOT NULL), rather than one
-- that ignores arguments.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name = 'gate_challenges'
          AND column_name = 'arguments_sha256'
    ) THEN
        LOCK TABLE gate_challenges IN ACCESS EXCLUSIVE MODE;
        DELETE FROM gate_challenges;
        ALTER TABLE gate_challenges ADD COLUMN arguments_sha256 BYTEA NOT NULL;
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS gate_challenges_expires_at ON gate_challenges (expires_at);
CREATE TABLE IF NOT EXISTS gate_evidence (
    key_id     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    read_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, session_id, tool, target)
);
-- Added with stateless evidence reads (requests without a session): a new table
-- only, so gate_evidence keeps its NOT NULL session_id and an older keygated on the
-- same database keeps working (its stateless clients simply cannot read evidence).
CREATE TABLE IF NOT EXISTS gate_evidence_stateless (
    key_id     TEXT NOT NULL,
    tool       TEXT NOT NULL,
    target     TEXT NOT NULL,
    read_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, tool, target)
);
-- Added with session binding: a new table only, so a database made before it needs
-- no change to its tables, and an older keygated on the same database keeps working
-- (without checking bindings).
CREATE TABLE IF NOT EXISTS gate_sessions (
    session_sha256 BYTEA PRIMARY KEY,
    key_id     TEXT NOT NULL,
    bound_at   TIMESTAMPTZ NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS gate_sessions_expires_at ON gate_sessions (expires_at);
-- Added with person approvals: a new table only, like gate_sessions.
CREATE TABLE IF NOT EXISTS gate_approvals (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    user_id     TEXT,
    user_name   TEXT,
    tool        TEXT NOT NULL,
    target      TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    arguments_sha256 BYTEA NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    decided_by_key  TEXT,
    decided_by_user TEXT,
    decided_by_name TEXT,
    decided_at  TIMESTAMPTZ,
    closed_at   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS gate_approvals_call ON gate_approvals (key_id, tool, arguments_sha256);
CREATE INDEX IF NOT EXISTS gate_approvals_tenant ON gate_approvals (tenant_id, status);
CREATE INDEX IF NOT EXISTS gate_approvals_expires_at ON gate_approvals (expires_at);
-- Added with the MRTR channel: a new table only. The one-time nonces of requestStates
-- that were presented (their SHA-256), kept until the state expires.
CREATE TABLE IF NOT EXISTS gate_mrtr_nonces (
    nonce_sha256 BYTEA PRIMARY KEY,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS gate_mrtr_nonces_expires_at ON gate_mrtr_nonces (expires_at);
-- Added with elicitation on the stream: one column with a default, so rows bound
-- before it read as clients that did not declare elicitation.
ALTER TABLE gate_sessions ADD COLUMN IF NOT EXISTS elicitation BOOLEAN NOT NULL DEFAULT false;
-- Added with URL-mode approval: the same, for clients that declared URL elicitation.
ALTER TABLE gate_sessions ADD COLUMN IF NOT EXISTS elicitation_url BOOLEAN NOT NULL DEFAULT false;
";

/// The columns of `gate_approvals` in the order [`approval_from_row`] reads them.
const APPROVAL_COLUMNS: &str = "id, tenant_id, key_id, user_id, user_name, tool, target, arguments, status, created_at, expires_at, decided_by_key, decided_by_user, decided_by_name, decided_at, closed_at";

/// An approval from a row of [`APPROVAL_COLUMNS`].
fn approval_from_row(r: &tokio_postgres::Row) -> Result<Approval, GateError> {
    let arguments: String = r.get(7);
    let arguments: serde_json::Value =
        serde_json::from_str(&arguments).map_err(GateError::store)?;
    let status: String = r.get(8);
    let status = ApprovalStatus::parse(&status)
        .ok_or_else(|| GateError::store(format!("unknown approval status {status:?}")))?;
    let decided_by = match (r.get(11), r.get(12), r.get(13), r.get(14)) {
        (Some(key_id), Some(user_id), Some(name), Some(at)) => Some(DecidedBy {
            key_id,
            user_id,
            name,
            at,
        }),
        _ => None,
    };
    Ok(Approval {
        id: r.get(0),
        tenant_id: r.get(1),
        key_id: r.get(2),
        user_id: r.get(3),
        user_name: r.get(4),
        tool: r.get(5),
        target: r.get(6),
        arguments: Arguments::from_args(&arguments),
        status,
        created_at: r.get(9),
        expires_at: r.get(10),
        decided_by,
        closed_at: r.get(15),
    })
}

/// A [`GateStore`] in PostgreSQL, on a connection pool (the key store's: keygate-keys'
/// `PostgresStore::pool`), so every server sharing the database shares gate state.
///
/// Tables `gate_challenges`, `gate_evidence`, `gate_sessions` and `gate_approvals`,
/// created at
/// [`PgGateStore::new`] in the pool's `search_path`. A challenge is kept as its
/// SHA-256 only, its arguments as the SHA-256 of their canonical form, a session id
/// (a capability: whoever presents it speaks in the session) as its SHA-256.
pub struct PgGateStore {
    pool: Pool,
}

impl std::fmt::Debug for PgGateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgGateStore").finish_non_exhaustive()
    }
}

impl PgGateStore {
    /// Creates the tables if missing (idempotent; concurrent starts are serialized by
    /// an advisory lock) and migrates older ones.
    ///
    /// # Errors
    ///
    /// [`GateError`] when the database cannot be reached or the tables cannot be made.
    pub async fn new(pool: Pool) -> Result<Self, GateError> {
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

    /// `sql` with `params` on a pooled connection: the rows.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, GateError> {
        let client = self.client().await?;
        client.query(sql, params).await.map_err(GateError::store)
    }

    /// `sql` with `params` on a pooled connection: the row, if any.
    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, GateError> {
        let client = self.client().await?;
        client
            .query_opt(sql, params)
            .await
            .map_err(GateError::store)
    }

    /// `sql` with `params` on a pooled connection: the one row.
    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, GateError> {
        let client = self.client().await?;
        client
            .query_one(sql, params)
            .await
            .map_err(GateError::store)
    }

    /// `sql` with `params` on a pooled connection: the rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, GateError> {
        let client = self.client().await?;
        client.execute(sql, params).await.map_err(GateError::store)
    }
}

#[async_trait]
impl GateStore for PgGateStore {
    async fn put_challenge(&self, c: &Challenge) -> Result<(), GateError> {
        self
            .execute(
                "INSERT INTO gate_challenges (challenge_sha256, key_id, session_id, tool, target, arguments_sha256, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&digest(&c.challenge), &c.key_id, &c.session_id, &c.tool, &c.target, &c.arguments_sha256.as_slice(), &c.issued_at, &c.expires_at],
            )
            .await?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        challenge: &str,
        key_id: &str,
        session_id: &str,
    ) -> Result<Taken, GateError> {
        // One statement: delete the row when it is the caller's, otherwise read it.
        // Both parts see the same snapshot, so a row is reported at most once, and of
        // concurrent deletes of one row only one returns it.
        let row = self
            .query_opt(
                "WITH taken AS (
                    DELETE FROM gate_challenges
                    WHERE challenge_sha256 = $1 AND key_id = $2 AND session_id = $3
                    RETURNING key_id, session_id, tool, target, arguments_sha256, issued_at, expires_at
                )
                SELECT true, * FROM taken
                UNION ALL
                SELECT false, key_id, session_id, tool, target, arguments_sha256, issued_at, expires_at
                FROM gate_challenges
                WHERE challenge_sha256 = $1 AND NOT (key_id = $2 AND session_id = $3)",
                &[&digest(challenge), &key_id, &session_id],
            )
            .await?;
        let Some(r) = row else {
            return Ok(Taken::Unknown);
        };
        let arguments: Vec<u8> = r.get(5);
        let found = Challenge {
            challenge: challenge.to_owned(),
            key_id: r.get(1),
            session_id: r.get(2),
            tool: r.get(3),
            target: r.get(4),
            // A digest of another length matches no call's arguments.
            arguments_sha256: arguments.try_into().unwrap_or([0; 32]),
            issued_at: r.get(6),
            expires_at: r.get(7),
        };
        Ok(if r.get(0) {
            Taken::Taken(found)
        } else {
            Taken::NotYours(found)
        })
    }

    async fn record_evidence(&self, read: &EvidenceRead) -> Result<(), GateError> {
        match &read.session_id {
            Some(session_id) => self
                .execute(
                    "INSERT INTO gate_evidence (key_id, session_id, tool, target, read_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, session_id, tool, target) DO UPDATE SET read_at = EXCLUDED.read_at",
                    &[&read.key_id, session_id, &read.tool, &read.target, &read.at],
                )
                .await?,
            None => self
                .execute(
                    "INSERT INTO gate_evidence_stateless (key_id, tool, target, read_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key_id, tool, target) DO UPDATE SET read_at = EXCLUDED.read_at",
                    &[&read.key_id, &read.tool, &read.target, &read.at],
                )
                .await?,
        };
        Ok(())
    }

    async fn evidence_read(&self, query: EvidenceQuery<'_>) -> Result<bool, GateError> {
        let EvidenceQuery {
            key_id,
            session_id,
            tool,
            target,
            since,
        } = query;
        let row = match session_id {
            Some(session_id) => self
                .query_opt(
                    "SELECT 1 FROM gate_evidence WHERE key_id = $1 AND session_id = $2 AND tool = $3 AND target = $4 AND read_at >= $5",
                    &[&key_id, &session_id, &tool, &target, &since],
                )
                .await?,
            None => self
                .query_opt(
                    "SELECT 1 FROM gate_evidence_stateless WHERE key_id = $1 AND tool = $2 AND target = $3 AND read_at >= $4",
                    &[&key_id, &tool, &target, &since],
                )
                .await?,
        };
        Ok(row.is_some())
    }

    async fn bind_session(&self, session_id: &str, b: &SessionBinding) -> Result<bool, GateError> {
        // One statement: a row of another key that is still live at `bound_at` is left
        // alone (and no row comes back).
        let row = self
            .query_opt(
                "INSERT INTO gate_sessions (session_sha256, key_id, bound_at, seen_at, expires_at, elicitation, elicitation_url)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (session_sha256) DO UPDATE
                 SET key_id = EXCLUDED.key_id, bound_at = EXCLUDED.bound_at,
                     seen_at = EXCLUDED.seen_at, expires_at = EXCLUDED.expires_at,
                     elicitation = EXCLUDED.elicitation, elicitation_url = EXCLUDED.elicitation_url
                 WHERE gate_sessions.key_id = EXCLUDED.key_id
                    OR gate_sessions.expires_at <= EXCLUDED.bound_at
                 RETURNING 1",
                &[
                    &session_digest(session_id).as_slice(),
                    &b.key_id,
                    &b.bound_at,
                    &b.seen_at,
                    &b.expires_at,
                    &b.elicitation,
                    &b.elicitation_url,
                ],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn session_binding(
        &self,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionBinding>, GateError> {
        let row = self
            .query_opt(
                "SELECT key_id, bound_at, seen_at, expires_at, elicitation, elicitation_url FROM gate_sessions
                 WHERE session_sha256 = $1 AND expires_at > $2",
                &[&session_digest(session_id).as_slice(), &now],
            )
            .await?;
        Ok(row.map(|r| SessionBinding {
            key_id: r.get(0),
            bound_at: r.get(1),
            seen_at: r.get(2),
            expires_at: r.get(3),
            elicitation: r.get(4),
            elicitation_url: r.get(5),
        }))
    }

    async fn touch_session(
        &self,
        session_id: &str,
        touch: SessionTouch<'_>,
    ) -> Result<bool, GateError> {
        let n = self
            .execute(
                "UPDATE gate_sessions SET seen_at = $3, expires_at = $4
                 WHERE session_sha256 = $1 AND key_id = $2 AND expires_at > $3",
                &[
                    &session_digest(session_id).as_slice(),
                    &touch.key_id,
                    &touch.seen_at,
                    &touch.expires_at,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn end_session(&self, session_id: &str, key_id: &str) -> Result<bool, GateError> {
        let n = self
            .execute(
                "DELETE FROM gate_sessions WHERE session_sha256 = $1 AND key_id = $2",
                &[&session_digest(session_id).as_slice(), &key_id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn put_approval(&self, a: &Approval) -> Result<(), GateError> {
        self
            .execute(
                "INSERT INTO gate_approvals (id, tenant_id, key_id, user_id, user_name, tool, target, arguments, arguments_sha256, status, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[&a.id, &a.tenant_id, &a.key_id, &a.user_id, &a.user_name, &a.tool, &a.target, &a.arguments.canonical(), &a.arguments.digest().as_slice(), &a.status.as_str(), &a.created_at, &a.expires_at],
            )
            .await?;
        Ok(())
    }

    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, GateError> {
        let row = self
            .query_opt(
                &format!("SELECT {APPROVAL_COLUMNS} FROM gate_approvals WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(approval_from_row).transpose()
    }

    async fn pending_approvals(
        &self,
        tenant_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, GateError> {
        let rows = self
            .query(
                &format!("SELECT {APPROVAL_COLUMNS} FROM gate_approvals WHERE tenant_id = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at, id"),
                &[&tenant_id, &now],
            )
            .await?;
        rows.iter().map(approval_from_row).collect()
    }

    async fn count_pending_approvals(
        &self,
        key_id: &str,
        now: OffsetDateTime,
    ) -> Result<u64, GateError> {
        let row = self
            .query_one(
                "SELECT count(*) FROM gate_approvals WHERE key_id = $1 AND status = 'pending' AND expires_at > $2",
                &[&key_id, &now],
            )
            .await?;
        let n: i64 = row.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn claim_approval(&self, query: ApprovalQuery<'_>) -> Result<Claimed, GateError> {
        let client = self.client().await?;
        let args = query.arguments_sha256.as_slice();
        let call: [&(dyn ToSql + Sync); 5] =
            [&query.key_id, &query.tool, &query.target, &args, &query.now];
        if let Some(approval) = close_oldest(&client, Closing::Use, &call).await? {
            return Ok(Claimed::Approved(approval));
        }
        if let Some(approval) = close_oldest(&client, Closing::Denial, &call).await? {
            return Ok(Claimed::Denied(approval));
        }
        let pending = client
            .query_opt(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM gate_approvals
                     WHERE key_id = $1 AND tool = $2 AND target = $3 AND arguments_sha256 = $4
                       AND status = 'pending' AND expires_at > $5
                     ORDER BY created_at, id LIMIT 1"
                ),
                &call,
            )
            .await
            .map_err(GateError::store)?;
        match pending {
            Some(r) => Ok(Claimed::Pending(approval_from_row(&r)?)),
            None => Ok(Claimed::Nothing),
        }
    }

    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &DecidedBy,
    ) -> Result<Option<Approval>, GateError> {
        if !matches!(status, ApprovalStatus::Approved | ApprovalStatus::Denied) {
            return Ok(None);
        }
        let row = self
            .query_opt(
                &format!(
                    "UPDATE gate_approvals
                     SET status = $2, decided_by_key = $3, decided_by_user = $4, decided_by_name = $5, decided_at = $6
                     WHERE id = $1 AND status = 'pending' AND expires_at > $6
                     RETURNING {APPROVAL_COLUMNS}"
                ),
                &[&id, &status.as_str(), &by.key_id, &by.user_id, &by.name, &by.at],
            )
            .await?;
        row.as_ref().map(approval_from_row).transpose()
    }

    async fn spend_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, GateError> {
        // The primary key makes the insert the one-time check: of concurrent spends of
        // one nonce, one inserts a row.
        let inserted = self
            .execute(
                "INSERT INTO gate_mrtr_nonces (nonce_sha256, expires_at) VALUES ($1, $2)
                 ON CONFLICT (nonce_sha256) DO NOTHING",
                &[&digest(nonce), &expires_at],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn purge(
        &self,
        now: OffsetDateTime,
        evidence_before: OffsetDateTime,
    ) -> Result<u64, GateError> {
        let client = self.client().await?;
        let mut purged = 0;
        for (sql, before) in [
            ("DELETE FROM gate_mrtr_nonces WHERE expires_at <= $1", &now),
            (
                "DELETE FROM gate_approvals WHERE expires_at <= $1",
                &evidence_before,
            ),
            ("DELETE FROM gate_sessions WHERE expires_at <= $1", &now),
            ("DELETE FROM gate_challenges WHERE expires_at <= $1", &now),
            (
                "DELETE FROM gate_evidence WHERE read_at < $1",
                &evidence_before,
            ),
            (
                "DELETE FROM gate_evidence_stateless WHERE read_at < $1",
                &evidence_before,
            ),
        ] {
            purged += client
                .execute(sql, &[before])
                .await
                .map_err(GateError::store)?;
        }
        Ok(purged)
    }
}

/// Which open approval of a call [`close_oldest`] closes.
#[derive(Clone, Copy)]
enum Closing {
    /// An approved, unexpired one, which becomes `used`.
    Use,
    /// A denied one (expired or not), which stays `denied`.
    Denial,
}

/// Closes the oldest open approval of one call (`call`: key id, tool, target, argument
/// digest, now) in the state `closing` names, and returns it. Of concurrent closings of
/// one row only one updates it: the others re-check the `WHERE` clause after the first
/// commits.
async fn close_oldest(
    client: &deadpool_postgres::Client,
    closing: Closing,
    call: &[&(dyn ToSql + Sync); 5],
) -> Result<Option<Approval>, GateError> {
    let (status, set, unexpired) = match closing {
        Closing::Use => (
            "approved",
            "status = 'used', closed_at = $5",
            "AND expires_at > $5",
        ),
        Closing::Denial => ("denied", "closed_at = $5", ""),
    };
    let row = client
        .query_opt(
            &format!(
                "UPDATE gate_approvals SET {set}
                 WHERE id = (SELECT id FROM gate_approvals
                             WHERE key_id = $1 AND tool = $2 AND target = $3 AND arguments_sha256 = $4
                               AND status = '{status}' AND closed_at IS NULL {unexpired}
                             ORDER BY created_at, id LIMIT 1)
                   AND status = '{status}' AND closed_at IS NULL
                 RETURNING {APPROVAL_COLUMNS}"
            ),
            call,
        )
        .await
        .map_err(GateError::store)?;
    row.as_ref().map(approval_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{
        CONFIRMATION_INVALID, Confirm, GateCall, Gates, InvalidReason, Outcome, SystemClock,
    };
    use keygate_keys::PostgresStore;
    use keygate_scopes::GateSpec;
    use keygate_test::PgSchema;
    use serde_json::json;

    use super::{PgGateStore, SCHEMA_BEFORE_ARGUMENTS, SCHEMA_BEFORE_SESSIONS};
    use crate::{EvidenceQuery, GateStore, SessionBinding, SessionTouch};

    /// A PostgreSQL schema of its own for one test, dropped at the end (with the
    /// admin client of the test database); `None` when PostgreSQL tests are off.
    struct Schema {
        pg: PgSchema,
        admin: tokio_postgres::Client,
    }

    impl Schema {
        async fn create(prefix: &str) -> Option<Self> {
            let base = keygate_test::postgres_url()?;
            let pg = PgSchema::create(&base, prefix).await;
            let admin = pg.admin().await;
            Some(Self { pg, admin })
        }

        async fn gate_store(&self) -> PgGateStore {
            let keys = PostgresStore::connect_with_schema(self.pg.base(), &self.pg.name)
                .await
                .unwrap();
            PgGateStore::new(keys.pool().clone()).await.unwrap()
        }

        async fn drop(self) {
            drop(self.pg);
        }
    }

    #[tokio::test]
    async fn the_postgres_store_conforms() {
        let Some(schema) = Schema::create("kgg").await else {
            return;
        };
        crate::conformance::run(Arc::new(schema.gate_store().await)).await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn an_older_table_is_migrated_and_its_unbound_challenges_dropped() {
        let Some(schema) = Schema::create("kgm").await else {
            return;
        };
        let s = &schema.pg.name;
        schema
            .admin
            .batch_execute(&format!(
                "SET search_path = {s}; {SCHEMA_BEFORE_ARGUMENTS}
                 INSERT INTO gate_challenges VALUES ('\\x00', 'k1', 's1', 'service.delete', 'worker', now(), now() + interval '5 minutes');
                 RESET search_path;"
            ))
            .await
            .unwrap();
        let store = schema.gate_store().await;
        let count = |sql: String| {
            let admin = &schema.admin;
            async move { admin.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
        };
        assert_eq!(
            count(format!("SELECT count(*) FROM {s}.gate_challenges")).await,
            0,
            "challenges not bound to arguments are dropped"
        );
        assert_eq!(
            count(format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{s}' AND table_name = 'gate_challenges' AND column_name = 'arguments_sha256' AND is_nullable = 'NO'"
            ))
            .await,
            1,
            "the argument digest is a required column"
        );
        // A keygated that does not know the column can issue no challenge.
        let old_insert = schema
            .admin
            .execute(
                &format!("INSERT INTO {s}.gate_challenges (challenge_sha256, key_id, session_id, tool, target, issued_at, expires_at) VALUES ('\\x01', 'k', 's', 't', 'w', now(), now())"),
                &[],
            )
            .await;
        assert!(old_insert.is_err(), "an unbound challenge was stored");
        // Starting again changes nothing, and the migrated table works.
        drop(store);
        let store = Arc::new(schema.gate_store().await);
        crate::conformance::run(store).await;
        schema.drop().await;
    }

    /// A database made before session bindings gains the table and keeps its gate
    /// state: challenges and evidence recorded by an older server still count.
    #[tokio::test]
    async fn a_session_bound_before_elicitation_was_kept_reads_as_not_declaring_it() {
        let Some(schema) = Schema::create("kgx").await else {
            return;
        };
        let s = &schema.pg.name;
        let digest: String = crate::session_digest("older-session")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        schema
            .admin
            .batch_execute(&format!(
                "SET search_path = {s};
                 CREATE TABLE gate_sessions (session_sha256 BYTEA PRIMARY KEY, key_id TEXT NOT NULL, bound_at TIMESTAMPTZ NOT NULL, seen_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
                 INSERT INTO gate_sessions VALUES ('\\x{digest}', 'kOld', now(), now(), now() + interval '1 hour');
                 RESET search_path;"
            ))
            .await
            .unwrap();
        let store = schema.gate_store().await;
        let b = store
            .session_binding("older-session", time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .expect("the older row still binds its session");
        assert_eq!(b.key_id, "kOld");
        assert!(!b.elicitation, "an older row did not declare elicitation");
        assert!(!b.elicitation_url, "nor URL elicitation");
        schema.drop().await;
    }

    #[tokio::test]
    async fn a_database_from_before_session_bindings_gains_the_table_only() {
        let Some(schema) = Schema::create("kgn").await else {
            return;
        };
        let s = &schema.pg.name;
        let challenge = "c".repeat(32);
        let digest: String = super::digest(&challenge)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        schema
            .admin
            .batch_execute(&format!(
                "SET search_path = {s}; {SCHEMA_BEFORE_SESSIONS}
                 INSERT INTO gate_challenges VALUES ('\\x{digest}', 'k1', 's1', 'service.delete', 'worker', '\\x00', now(), now() + interval '5 minutes');
                 INSERT INTO gate_evidence VALUES ('k1', 's1', 'service.events', 'api', now());
                 RESET search_path;"
            ))
            .await
            .unwrap();
        let store = schema.gate_store().await;
        let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
        assert!(
            store
                .evidence_read(EvidenceQuery {
                    key_id: "k1",
                    session_id: Some("s1"),
                    tool: "service.events",
                    target: "api",
                    since,
                })
                .await
                .unwrap(),
            "an older server's evidence read still counts"
        );
        assert!(
            matches!(
                store.take_challenge(&challenge, "k1", "s1").await.unwrap(),
                crate::Taken::Taken(_)
            ),
            "an older server's challenge still counts"
        );
        store
            .purge(
                time::OffsetDateTime::now_utc() + time::Duration::days(1),
                since + time::Duration::days(1),
            )
            .await
            .unwrap();
        // Starting again changes nothing, and the new table works.
        drop(store);
        crate::conformance::run(Arc::new(schema.gate_store().await)).await;
        schema.drop().await;
    }

    /// Two store handles (as two servers) on one database see one binding; the table
    /// keeps the session id's SHA-256, never the id.
    #[tokio::test]
    async fn two_handles_on_one_database_share_session_bindings() {
        let Some(schema) = Schema::create("kgb").await else {
            return;
        };
        let (a, b) = (schema.gate_store().await, schema.gate_store().await);
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let session = "session-of-A-0123456789";
        let binding = SessionBinding {
            elicitation: true,
            elicitation_url: true,
            ..SessionBinding::new("kA", now, time::Duration::hours(1))
        };
        assert!(a.bind_session(session, &binding).await.unwrap());
        assert_eq!(
            b.session_binding(session, now).await.unwrap(),
            Some(binding.clone()),
            "bound through A, seen through B"
        );
        let theirs = SessionBinding {
            key_id: "kD".to_owned(),
            ..binding.clone()
        };
        assert!(
            !b.bind_session(session, &theirs).await.unwrap(),
            "another key cannot take A's session through B"
        );
        let later = now + time::Duration::minutes(10);
        assert!(
            b.touch_session(
                session,
                SessionTouch {
                    key_id: "kA",
                    seen_at: later,
                    expires_at: later + time::Duration::hours(1),
                },
            )
            .await
            .unwrap()
        );
        assert_eq!(
            a.session_binding(session, later)
                .await
                .unwrap()
                .map(|b| b.seen_at),
            Some(later),
            "a refresh through B is seen through A"
        );
        let s = &schema.pg.name;
        let rows: String = schema
            .admin
            .query_one(
                &format!("SELECT string_agg(row_to_json(t)::text, '') FROM {s}.gate_sessions t"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!rows.contains(session), "the session id is stored: {rows}");
        let hex: String = crate::session_digest(session)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(rows.contains(&hex), "its SHA-256 is stored: {rows}");
        assert!(a.end_session(session, "kA").await.unwrap());
        assert_eq!(b.session_binding(session, later).await.unwrap(), None);
        schema.drop().await;
    }

    /// The gate on the PostgreSQL store: a challenge covers the call's arguments, and
    /// another session presenting it does not burn it.
    #[tokio::test]
    async fn gates_on_postgres_bind_arguments_and_keep_challenges_from_others() {
        let Some(schema) = Schema::create("kgd").await else {
            return;
        };
        let gates = Gates::new(Arc::new(schema.gate_store().await), Arc::new(SystemClock));
        let spec = GateSpec::approval("service", vec!["keygate".to_owned()])
            .with_approval_by(keygate_scopes::ApprovalBy::Agent);
        let tool = "service.replace";
        let a = json!({"service": "worker", "image": "A"});
        let call = |session, args| GateCall::from_args(&spec, "k1", Some(session), tool, args);
        let issue = || async {
            match gates
                .decide(&spec, &call("s1", &a), None)
                .await
                .unwrap()
                .outcome()
            {
                Outcome::ConfirmationRequired { challenge, .. } => challenge.clone(),
                other => panic!("expected a challenge, got {other:?}"),
            }
        };
        let with = |args: &serde_json::Value, c: &str| {
            let mut args = args.clone();
            args["confirm"] = json!({"challenge": c, "target": "worker"});
            args
        };

        let c = issue().await;
        let b = with(&json!({"service": "worker", "image": "B"}), &c);
        let d = gates.decide(&spec, &call("s1", &b), None).await.unwrap();
        assert_eq!(d.code(), Some(CONFIRMATION_INVALID));
        assert_eq!(
            d.outcome(),
            &Outcome::ConfirmationInvalid {
                reason: InvalidReason::OtherArguments
            }
        );
        let exact = with(&a, &c);
        let d = gates
            .decide(&spec, &call("s1", &exact), None)
            .await
            .unwrap();
        assert!(!d.is_allowed(), "a challenge spent on other arguments");

        let c = issue().await;
        let exact = with(&a, &c);
        let d = gates
            .decide(&spec, &call("s2", &exact), None)
            .await
            .unwrap();
        assert_eq!(
            d.outcome(),
            &Outcome::ConfirmationInvalid {
                reason: InvalidReason::OtherSession
            }
        );
        let other_key = GateCall::from_args(&spec, "k2", Some("s1"), tool, &exact)
            .with_confirm(Confirm::new(c.clone(), "worker"));
        assert!(
            !gates
                .decide(&spec, &other_key, None)
                .await
                .unwrap()
                .is_allowed()
        );
        let d = gates
            .decide(&spec, &call("s1", &exact), None)
            .await
            .unwrap();
        assert!(d.is_allowed(), "{:?}", d.outcome());
        schema.drop().await;
    }
}
