//! The schema of the PostgreSQL store and the runner that brings a database
//! up to date, one instance at a time.

use deadpool_postgres::Object;

use super::rows::db;
use crate::authorization_server::store::StoreError;

/// The schema, one entry per version; applied in order, never edited once
/// released (a change is a new entry).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE mcp_auth_records (
    kind          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    grant_id      TEXT,
    data          JSONB   NOT NULL,
    expires_at    BIGINT,
    uses          INTEGER NOT NULL DEFAULT 0,
    first_used_at BIGINT,
    PRIMARY KEY (kind, key)
);
CREATE INDEX mcp_auth_records_grant ON mcp_auth_records (grant_id);
CREATE INDEX mcp_auth_records_expiry ON mcp_auth_records (expires_at);
CREATE INDEX mcp_auth_records_rotated_from ON mcp_auth_records ((data->>'rotated_from'))
    WHERE kind = 'refresh_token';
CREATE INDEX mcp_auth_records_grant_client ON mcp_auth_records ((data->>'client_id'))
    WHERE kind = 'grant';
",
    "
CREATE FUNCTION mcp_auth_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mcp_auth_revocations', OLD.kind || ':' || OLD.key);
    RETURN NULL;
END
$$;
CREATE TRIGGER mcp_auth_revocations AFTER UPDATE ON mcp_auth_records
    FOR EACH ROW WHEN (OLD.kind IN ('access_token', 'grant'))
    EXECUTE FUNCTION mcp_auth_notify_revocation();
",
];

/// The channel the trigger of version 2 notifies on every change of an
/// access token or grant row, with `kind:key` as payload (delivered at
/// commit, to every session listening). Deletes are not told: only the
/// purge deletes those rows, once expired, and the cache never serves an
/// entry past its token's or grant's expiry.
pub(super) const REVOCATION_CHANNEL: &str = "mcp_auth_revocations";

/// The advisory lock serializing migrations: "mcp-auth" in ASCII.
const MIGRATION_LOCK: i64 = 0x6d63_702d_6175_7468;

/// Applies the migrations this database lacks, one instance at a time.
pub(super) async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    // Held until commit: a second instance waits here, then finds every version applied.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mcp_auth_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let row =
        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM mcp_auth_migrations", &[]).await.map_err(db)?;
    let applied: i32 = row.try_get(0).map_err(db)?;
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version > applied {
            tx.batch_execute(sql).await.map_err(db)?;
            tx.execute("INSERT INTO mcp_auth_migrations (version) VALUES ($1)", &[&version])
                .await
                .map_err(db)?;
        }
    }
    tx.commit().await.map_err(db)
}
