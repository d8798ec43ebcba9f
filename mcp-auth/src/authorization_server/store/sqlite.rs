//! The SQLite store: one file, nothing lost on restart. Blocking calls run on
//! tokio's blocking pool.
//!
//! One table holds every kind of record as JSON beside the columns the store
//! queries on (kind, key, grant, expiry, use count), so adding a field to a
//! record needs no migration. Keys of credentials are their SHA-256.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AccessTokenRecord, AuthStore, ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LocalRevocations,
    LoginSession, PendingAuthorization, RefreshTokenRecord, RevocationEvent, RevocationFeed, StoreError,
    StoreResult, StoredSigningKey, Succession, UnixTime, Used, consent_key,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mcp_auth_records (
    kind          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    grant_id      TEXT,
    data          TEXT    NOT NULL,
    expires_at    INTEGER,
    uses          INTEGER NOT NULL DEFAULT 0,
    first_used_at INTEGER,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS mcp_auth_records_grant ON mcp_auth_records (grant_id);
CREATE INDEX IF NOT EXISTS mcp_auth_records_expiry ON mcp_auth_records (expires_at);
";

const CLIENT: &str = "client";
const CODE: &str = "code";
const GRANT: &str = "grant";
const REFRESH: &str = "refresh_token";
const ACCESS: &str = "access_token";
const CONSENT: &str = "consent";
const PENDING: &str = "pending";
const SESSION: &str = "login_session";
const KEY: &str = "signing_key";

/// A SQLite database file (or `:memory:`).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    /// This process's revocations, told to its revocation cache (one
    /// process writes the file; several instances use PostgreSQL).
    revocations: LocalRevocations,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, a file path
    /// (SQLite URIs are not interpreted; `:memory:` is a private in-memory
    /// database).
    ///
    /// The file holds the signing key: on Unix it is created readable by its
    /// owner only (mode 0600) before SQLite opens it, so the `-wal` and
    /// `-shm` files SQLite creates beside it, which hold the same data, get
    /// that mode too whatever the umask. An existing file (and its `-wal`
    /// and `-shm`) readable by others is narrowed to 0600.
    ///
    /// ```
    /// use mcp_auth::authorization_server::store::SqliteStore;
    ///
    /// let dir = std::env::temp_dir().join(format!("mcp-auth-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let store = SqliteStore::open(dir.join("auth.db"))?;
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt as _;
    /// let mode = std::fs::metadata(dir.join("auth.db"))?.permissions().mode();
    /// assert_eq!(mode & 0o777, 0o600);
    /// # }
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if path != Path::new(":memory:") {
            owner_only_files(path)?;
        }
        // The default flags without SQLITE_OPEN_URI: the path is the file
        // just created, never reinterpreted as a `file:` URI.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::with_connection(Connection::open_with_flags(path, flags)?)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(connection: Connection) -> Result<Self, StoreError> {
        // WAL: readers do not block the writer; a busy database waits rather than failing.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self { connection: Arc::new(Mutex::new(connection)), revocations: LocalRevocations::default() })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreResult<'_, T> {
        let connection = self.connection.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut guard = connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                f(&mut guard)
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }

    /// Revokes a grant and its tokens, and with `forget_approvals` the
    /// approvals its user remembered for its client, so that the next
    /// authorization asks again.
    fn end_grant<'a>(&'a self, grant_id: &'a str, forget_approvals: bool) -> StoreResult<'a, ()> {
        let grant_id = grant_id.to_owned();
        let revocations = self.revocations.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            if forget_approvals {
                tx.execute(
                    "DELETE FROM mcp_auth_records WHERE kind = ?1 AND EXISTS (
                         SELECT 1 FROM mcp_auth_records AS g WHERE g.kind = ?2 AND g.grant_id = ?3
                         AND json_extract(g.data, '$.subject') = json_extract(mcp_auth_records.data, '$.subject')
                         AND json_extract(g.data, '$.client_id') = json_extract(mcp_auth_records.data, '$.client_id'))",
                    params![CONSENT, GRANT, grant_id],
                )?;
            }
            tx.execute(
                "UPDATE mcp_auth_records SET data = json_set(data, '$.revoked', json('true'))
                 WHERE grant_id = ?1 AND kind IN (?2, ?3)",
                params![grant_id, GRANT, ACCESS],
            )?;
            tx.execute(
                "DELETE FROM mcp_auth_records WHERE grant_id = ?1 AND kind = ?2",
                params![grant_id, REFRESH],
            )?;
            tx.commit()?;
            revocations.tell(RevocationEvent::Grant(grant_id));
            Ok(())
        })
    }
}

/// Creates the database file with mode 0600 if it does not exist, and
/// narrows an existing one and its `-wal` and `-shm` files to 0600. SQLite
/// creates the `-wal` and `-shm` files with the database file's mode, so
/// they are owner-only from the start.
#[cfg(unix)]
fn owner_only_files(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    for file in [path.to_owned(), sidecar(path, "-wal"), sidecar(path, "-shm")] {
        let Ok(metadata) = std::fs::metadata(&file) else { continue };
        if metadata.permissions().mode() & 0o077 != 0
            && let Err(error) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(%error, "mcp-auth: cannot restrict the authorization store's file permissions");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only_files(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// `PATH-wal`, `PATH-shm`: the files SQLite keeps beside the database.
#[cfg(unix)]
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

struct Row<'a> {
    kind: &'static str,
    key: &'a str,
    grant_id: Option<&'a str>,
    expires_at: Option<UnixTime>,
}

fn put<T: Serialize>(c: &Connection, row: Row<'_>, record: &T, replace: bool) -> Result<(), StoreError> {
    let data = serde_json::to_string(record)?;
    let verb = if replace { "INSERT OR REPLACE" } else { "INSERT" };
    let sql = format!(
        "{verb} INTO mcp_auth_records (kind, key, grant_id, data, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    );
    let expires = row.expires_at.map(to_sql_time);
    match c.execute(&sql, params![row.kind, row.key, row.grant_id, data, expires]) {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(StoreError::Duplicate(row.kind))
        }
        other => other.map(drop).map_err(Into::into),
    }
}

fn get<T: DeserializeOwned>(
    c: &Connection,
    kind: &str,
    key: &str,
    now: UnixTime,
) -> Result<Option<T>, StoreError> {
    let data: Option<String> = c
        .query_row(
            "SELECT data FROM mcp_auth_records WHERE kind = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            params![kind, key, to_sql_time(now)],
            |row| row.get(0),
        )
        .optional()?;
    data.map(|d| serde_json::from_str(&d)).transpose().map_err(Into::into)
}

/// Reads a record with its use count, counting this use when `count` is set,
/// in one transaction.
fn use_once<T: DeserializeOwned>(
    c: &mut Connection,
    kind: &str,
    key: &str,
    now: UnixTime,
    count: bool,
) -> Result<Option<Used<T>>, StoreError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let row: Option<(String, u32, Option<i64>)> = tx
        .query_row(
            "SELECT data, uses, first_used_at FROM mcp_auth_records
             WHERE kind = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            params![kind, key, to_sql_time(now)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((data, uses, first_used_at)) = row else { return Ok(None) };
    if count {
        tx.execute(
            "UPDATE mcp_auth_records SET uses = uses + 1, first_used_at = COALESCE(first_used_at, ?3)
             WHERE kind = ?1 AND key = ?2",
            params![kind, key, to_sql_time(now)],
        )?;
    }
    tx.commit()?;
    Ok(Some(Used {
        record: serde_json::from_str(&data)?,
        previous_uses: uses,
        first_used_at: first_used_at.map(from_sql_time),
    }))
}

/// Inside a transaction: marks the live successors of `parent` superseded
/// and revokes their access tokens, unless one of them was used already;
/// also returns the `jti`s of the access tokens revoked.
fn supersede_successors(c: &Connection, parent: &str) -> Result<(Succession, Vec<String>), StoreError> {
    let mut statement = c.prepare(
        "SELECT key, uses, json_extract(data, '$.access_jti') FROM mcp_auth_records
         WHERE kind = ?1 AND json_extract(data, '$.rotated_from') = ?2
         AND NOT COALESCE(json_extract(data, '$.superseded'), 0)",
    )?;
    let rows = statement.query_map(params![REFRESH, parent], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?, row.get::<_, Option<String>>(2)?))
    })?;
    let earlier = rows.collect::<Result<Vec<_>, _>>()?;
    if earlier.iter().any(|(_, uses, _)| *uses > 0) {
        return Ok((Succession::EarlierSuccessorUsed, Vec::new()));
    }
    for (key, _, access_jti) in &earlier {
        c.execute(
            "UPDATE mcp_auth_records SET data = json_set(data, '$.superseded', json('true'))
             WHERE kind = ?1 AND key = ?2",
            params![REFRESH, key],
        )?;
        if let Some(jti) = access_jti {
            c.execute(
                "UPDATE mcp_auth_records SET data = json_set(data, '$.revoked', json('true'))
                 WHERE kind = ?1 AND key = ?2",
                params![ACCESS, jti],
            )?;
        }
    }
    let succession = if earlier.is_empty() { Succession::First } else { Succession::Replaced };
    Ok((succession, earlier.into_iter().filter_map(|(_, _, jti)| jti).collect()))
}

fn to_sql_time(t: UnixTime) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn from_sql_time(t: i64) -> UnixTime {
    UnixTime::try_from(t).unwrap_or(0)
}

impl AuthStore for SqliteStore {
    fn put_client(&self, client: ClientRecord) -> StoreResult<'_, ()> {
        self.run(move |c| {
            let row =
                Row { kind: CLIENT, key: &client.client_id, grant_id: None, expires_at: client.expires_at };
            put(c, row, &client, false)
        })
    }

    fn client<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<ClientRecord>> {
        let key = client_id.to_owned();
        self.run(move |c| get(c, CLIENT, &key, now))
    }

    fn put_code(&self, code: CodeRecord) -> StoreResult<'_, ()> {
        self.run(move |c| {
            let row = Row {
                kind: CODE,
                key: &code.code_hash,
                grant_id: Some(&code.grant_id),
                expires_at: Some(code.expires_at),
            };
            put(c, row, &code, false)
        })
    }

    fn use_code<'a>(
        &'a self,
        code_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        let key = code_hash.to_owned();
        self.run(move |c| use_once(c, CODE, &key, now, true))
    }

    fn code<'a>(&'a self, code_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        let key = code_hash.to_owned();
        self.run(move |c| use_once(c, CODE, &key, now, false))
    }

    fn put_grant(&self, grant: GrantRecord) -> StoreResult<'_, ()> {
        let revocations = self.revocations.clone();
        self.run(move |c| {
            let row = Row {
                kind: GRANT,
                key: &grant.grant_id,
                grant_id: Some(&grant.grant_id),
                expires_at: Some(grant.expires_at),
            };
            put(c, row, &grant, true)?;
            if grant.revoked {
                revocations.tell(RevocationEvent::Grant(grant.grant_id.clone()));
            }
            Ok(())
        })
    }

    fn grant<'a>(&'a self, grant_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<GrantRecord>> {
        let key = grant_id.to_owned();
        self.run(move |c| get(c, GRANT, &key, now))
    }

    fn client_has_grants<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, bool> {
        let client_id = client_id.to_owned();
        self.run(move |c| {
            let found: Option<i64> = c
                .query_row(
                    "SELECT 1 FROM mcp_auth_records WHERE kind = ?1 AND json_extract(data, '$.client_id') = ?2
                     AND (expires_at IS NULL OR expires_at > ?3) LIMIT 1",
                    params![GRANT, client_id, to_sql_time(now)],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(found.is_some())
        })
    }

    fn grants_of<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Vec<GrantRecord>> {
        let (subject, client_id) = (subject.to_owned(), client_id.to_owned());
        self.run(move |c| {
            let mut statement = c.prepare(
                "SELECT data FROM mcp_auth_records WHERE kind = ?1
                 AND json_extract(data, '$.subject') = ?2 AND json_extract(data, '$.client_id') = ?3
                 AND (expires_at IS NULL OR expires_at > ?4)",
            )?;
            let rows = statement.query_map(params![GRANT, subject, client_id, to_sql_time(now)], |row| {
                row.get::<_, String>(0)
            })?;
            let mut grants = Vec::new();
            for data in rows {
                grants.push(serde_json::from_str(&data?)?);
            }
            Ok(grants)
        })
    }

    fn set_upstream_token<'a>(&'a self, grant_id: &'a str, sealed: &'a str) -> StoreResult<'a, ()> {
        let (grant_id, sealed) = (grant_id.to_owned(), sealed.to_owned());
        self.run(move |c| {
            c.execute(
                "UPDATE mcp_auth_records SET data = json_set(data, '$.upstream_token', ?1)
                 WHERE kind = ?2 AND key = ?3",
                params![sealed, GRANT, grant_id],
            )?;
            Ok(())
        })
    }

    fn revoke_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()> {
        self.end_grant(grant_id, true)
    }

    fn supersede_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()> {
        self.end_grant(grant_id, false)
    }

    fn put_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, ()> {
        self.run(move |c| {
            let row = Row {
                kind: REFRESH,
                key: &token.token_hash,
                grant_id: Some(&token.grant_id),
                expires_at: Some(token.expires_at),
            };
            put(c, row, &token, false)
        })
    }

    fn refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        let key = token_hash.to_owned();
        self.run(move |c| use_once(c, REFRESH, &key, now, false))
    }

    fn use_refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        let key = token_hash.to_owned();
        self.run(move |c| use_once(c, REFRESH, &key, now, true))
    }

    fn put_successor_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, Succession> {
        let revocations = self.revocations.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (succession, revoked) = match &token.rotated_from {
                None => (Succession::First, Vec::new()),
                Some(parent) => supersede_successors(&tx, parent)?,
            };
            if succession != Succession::EarlierSuccessorUsed {
                let row = Row {
                    kind: REFRESH,
                    key: &token.token_hash,
                    grant_id: Some(&token.grant_id),
                    expires_at: Some(token.expires_at),
                };
                put(&tx, row, &token, false)?;
            }
            tx.commit()?;
            for jti in revoked {
                revocations.tell(RevocationEvent::AccessToken(jti));
            }
            Ok(succession)
        })
    }

    fn put_access_token(&self, token: AccessTokenRecord) -> StoreResult<'_, ()> {
        let revocations = self.revocations.clone();
        self.run(move |c| {
            let row = Row {
                kind: ACCESS,
                key: &token.jti,
                grant_id: Some(&token.grant_id),
                expires_at: Some(token.expires_at),
            };
            put(c, row, &token, true)?;
            if token.revoked {
                revocations.tell(RevocationEvent::AccessToken(token.jti.clone()));
            }
            Ok(())
        })
    }

    fn access_token<'a>(&'a self, jti: &'a str, now: UnixTime) -> StoreResult<'a, Option<AccessTokenRecord>> {
        let key = jti.to_owned();
        self.run(move |c| get(c, ACCESS, &key, now))
    }

    fn revoke_access_token<'a>(&'a self, jti: &'a str) -> StoreResult<'a, ()> {
        let key = jti.to_owned();
        let revocations = self.revocations.clone();
        self.run(move |c| {
            c.execute(
                "UPDATE mcp_auth_records SET data = json_set(data, '$.revoked', json('true')) WHERE kind = ?1 AND key = ?2",
                params![ACCESS, key],
            )?;
            revocations.tell(RevocationEvent::AccessToken(key));
            Ok(())
        })
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreResult<'_, ()> {
        self.run(move |c| {
            let key = consent_key(
                &consent.subject,
                &consent.client_id,
                &consent.redirect_uri,
                &consent.browser_hash,
            )?;
            put(
                c,
                Row { kind: CONSENT, key: &key, grant_id: None, expires_at: Some(consent.expires_at) },
                &consent,
                true,
            )
        })
    }

    fn consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        redirect_uri: &'a str,
        browser_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<ConsentRecord>> {
        let key = consent_key(subject, client_id, redirect_uri, browser_hash);
        self.run(move |c| get(c, CONSENT, &key?, now))
    }

    fn put_session(&self, session: LoginSession) -> StoreResult<'_, ()> {
        self.run(move |c| {
            let row = Row {
                kind: SESSION,
                key: &session.session_hash,
                grant_id: None,
                expires_at: Some(session.expires_at),
            };
            put(c, row, &session, true)
        })
    }

    fn session<'a>(&'a self, session_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<LoginSession>> {
        let key = session_hash.to_owned();
        self.run(move |c| get(c, SESSION, &key, now))
    }

    fn put_pending(&self, pending: PendingAuthorization) -> StoreResult<'_, ()> {
        self.run(move |c| {
            let row = Row {
                kind: PENDING,
                key: &pending.txn_hash,
                grant_id: None,
                expires_at: Some(pending.expires_at),
            };
            put(c, row, &pending, true)
        })
    }

    fn pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        let key = txn_hash.to_owned();
        self.run(move |c| get(c, PENDING, &key, now))
    }

    fn take_pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        let key = txn_hash.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found = get(&tx, PENDING, &key, now)?;
            tx.execute("DELETE FROM mcp_auth_records WHERE kind = ?1 AND key = ?2", params![PENDING, key])?;
            tx.commit()?;
            Ok(found)
        })
    }

    fn signing_keys(&self) -> StoreResult<'_, Vec<StoredSigningKey>> {
        self.run(|c| {
            let mut statement = c.prepare("SELECT data FROM mcp_auth_records WHERE kind = ?1")?;
            let rows = statement.query_map(params![KEY], |row| row.get::<_, String>(0))?;
            let mut keys = Vec::new();
            for data in rows {
                keys.push(serde_json::from_str(&data?)?);
            }
            Ok(keys)
        })
    }

    fn put_signing_key(&self, key: StoredSigningKey) -> StoreResult<'_, ()> {
        self.run(move |c| {
            put(c, Row { kind: KEY, key: &key.kid, grant_id: None, expires_at: key.retire_at }, &key, true)
        })
    }

    fn revocation_feed(&self) -> Option<RevocationFeed> {
        Some(self.revocations.feed())
    }

    fn purge_expired(&self, now: UnixTime) -> StoreResult<'_, u64> {
        self.run(move |c| {
            let n = c.execute(
                "DELETE FROM mcp_auth_records WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![to_sql_time(now)],
            )?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(hash: &str, expires_at: UnixTime) -> CodeRecord {
        CodeRecord {
            code_hash: hash.into(),
            grant_id: "g".into(),
            client_id: "c".into(),
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_explicit: true,
            code_challenge: "x".into(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn codes_count_uses_and_expire() {
        let store = SqliteStore::in_memory().unwrap();
        store.put_code(code("h", 100)).await.unwrap();
        let first = store.use_code("h", 10).await.unwrap().unwrap();
        assert_eq!((first.previous_uses, first.first_used_at), (0, None));
        let second = store.use_code("h", 20).await.unwrap().unwrap();
        assert_eq!((second.previous_uses, second.first_used_at), (1, Some(10)));
        assert!(store.use_code("h", 100).await.unwrap().is_none());
        assert_eq!(store.purge_expired(100).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn revoking_a_grant_reaches_its_tokens() {
        let store = SqliteStore::in_memory().unwrap();
        let grant = GrantRecord {
            grant_id: "g".into(),
            client_id: "c".into(),
            subject: "alice".into(),
            scope: "a".into(),
            resource: "https://mcp.example/mcp".into(),
            redirect_uri: "https://app.example/cb".into(),
            created_at: 1,
            expires_at: 1000,
            revoked: false,
            claims: serde_json::Map::new(),
            upstream_token: None,
        };
        store.put_grant(grant).await.unwrap();
        let access = AccessTokenRecord {
            jti: "j".into(),
            grant_id: "g".into(),
            client_id: "c".into(),
            expires_at: 1000,
            revoked: false,
        };
        store.put_access_token(access).await.unwrap();
        let refresh = RefreshTokenRecord {
            token_hash: "r".into(),
            grant_id: "g".into(),
            client_id: "c".into(),
            scope: "a".into(),
            expires_at: 1000,
            rotated_from: None,
            access_jti: None,
            superseded: false,
        };
        store.put_refresh_token(refresh).await.unwrap();
        store.revoke_grant("g").await.unwrap();
        assert!(store.grant("g", 2).await.unwrap().unwrap().revoked);
        assert!(store.access_token("j", 2).await.unwrap().unwrap().revoked);
        assert!(store.refresh_token("r", 2).await.unwrap().is_none());
        // A later upstream refresh replaces the sealed token only: the grant stays revoked.
        store.set_upstream_token("g", "sealed-2").await.unwrap();
        let grant = store.grant("g", 2).await.unwrap().unwrap();
        assert!(grant.revoked);
        assert_eq!(grant.upstream_token.as_deref(), Some("sealed-2"));
    }

    #[tokio::test]
    async fn sessions_and_consents_round_trip_and_expire() {
        let store = SqliteStore::in_memory().unwrap();
        let session = LoginSession {
            session_hash: "h".into(),
            subject: "alice".into(),
            created_at: 1,
            expires_at: 100,
        };
        store.put_session(session.clone()).await.unwrap();
        assert_eq!(store.session("h", 50).await.unwrap(), Some(session));
        assert_eq!(store.session("h", 100).await.unwrap(), None);
        assert_eq!(store.session("other", 50).await.unwrap(), None);

        let consent = ConsentRecord {
            subject: "alice".into(),
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            browser_hash: "b1".into(),
            scope: "notes:read".into(),
            expires_at: 100,
        };
        store.put_consent(consent.clone()).await.unwrap();
        assert_eq!(
            store.consent("alice", "c", "http://127.0.0.1/cb", "b1", 50).await.unwrap(),
            Some(consent)
        );
        // Another browser, user or redirect URI: nothing remembered.
        assert_eq!(store.consent("alice", "c", "http://127.0.0.1/cb", "b2", 50).await.unwrap(), None);
        assert_eq!(store.consent("bob", "c", "http://127.0.0.1/cb", "b1", 50).await.unwrap(), None);
        assert_eq!(store.consent("alice", "c", "http://127.0.0.1/x", "b1", 50).await.unwrap(), None);
        assert_eq!(store.consent("alice", "c", "http://127.0.0.1/cb", "b1", 100).await.unwrap(), None);
        assert_eq!(store.purge_expired(100).await.unwrap(), 2);
    }
}
