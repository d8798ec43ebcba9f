//! The PostgreSQL store (feature `postgres`): one database shared by several
//! instances of the server, so a code issued by one can be redeemed at another.
//!
//! The layout is the SQLite store's: one table holds every kind of record as
//! `jsonb` beside the columns the store queries on (kind, key, grant, expiry,
//! use count), so adding a field to a record needs no migration. Keys of
//! credentials are their SHA-256.
//!
//! Single-use operations hold across instances: a use is one
//! `UPDATE … SET uses = uses + 1 … RETURNING` (row locks order concurrent
//! uses, so exactly one sees no earlier use), and storing a rotated refresh
//! token's successor is one transaction holding a lock on the rotated token
//! and row locks on its earlier successors.
//!
//! Migrations run before the first statement of each store: a short
//! numbered list applied by a runner of a few lines, in one transaction that
//! first takes `pg_advisory_xact_lock`, so instances starting together take
//! turns and the later ones find nothing left to do (tested with four
//! instances on one empty database). Why not a migration crate: `refinery`
//! (0.10) takes no lock, so two instances migrating an empty database at
//! once could both create the same table; it needs Rust 1.92 (we support
//! 1.88); and it always brings `regex`, `time`, `walkdir`, `url` and a
//! proc-macro crate, for one table and a few indexes.
//!
//! Revocations reach every instance: from version 2 a trigger notifies
//! (`pg_notify`, delivered at commit) every update or deletion of an
//! access-token or grant row, and each store's first
//! [`revocation_feed`](AuthStore::revocation_feed) subscription starts a
//! listener on a connection of its own (see `listener.rs`), so the
//! authorization server can cache revocation checks and still refuse a
//! token revoked elsewhere within milliseconds.
//!
//! Connections come from a `deadpool-postgres` pool with bounded waits (2 s
//! to connect unless the URL says otherwise, 5 s for a free connection,
//! 10 s for a whole operation), so a database that is down gives
//! [`StoreError::Unavailable`] promptly instead of hanging, and the store
//! recovers by itself when the database is back. There is no TLS: use a
//! Unix socket or a trusted network, or put the connection through a local
//! proxy that adds it.

mod listener;
mod rows;
mod schema;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, Object, Pool, PoolError, Runtime};
use tokio_postgres::NoTls;

use self::listener::Listener;
use self::rows::{
    ACCESS, CLIENT, CODE, CONSENT, GRANT, KEY, PENDING, REFRESH, Row, SESSION, all, db, decode, get, put,
    supersede_successors, to_sql_time, use_once,
};
use super::{
    AccessTokenRecord, AuthStore, ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LoginSession,
    PendingAuthorization, RefreshTokenRecord, RevocationFeed, StoreError, StoreResult, StoredSigningKey,
    Succession, UnixTime, Used, consent_key,
};

/// The first half of the advisory locks serializing the rotation of one
/// refresh token (the second is a hash of the token's key).
const ROTATION_LOCK: i32 = 0x6d63_7072;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 16;

/// A PostgreSQL database, shared by every instance of the server that names it.
/// Cheap to clone (clones share the pool).
///
/// ```no_run
/// use mcp_auth::authorization_server::store::{AuthStore, PostgresStore};
///
/// # async fn run() -> Result<(), mcp_auth::authorization_server::StoreError> {
/// let store = PostgresStore::connect("postgres://mcp@127.0.0.1/mcp_auth").await?;
/// assert!(store.client("unknown", 0).await?.is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: Pool,
    migrated: Arc<AtomicBool>,
    /// For the revocation listener's own connection.
    config: tokio_postgres::Config,
    /// The revocation listener, started by the first subscription and
    /// stopped with the last clone of the store.
    listener: Arc<OnceLock<Listener>>,
}

impl PostgresStore {
    /// A store for the database at `url` (`postgres://` or `postgresql://`,
    /// as libpq takes it), without connecting: connections are made when
    /// needed, and the schema is brought up to date before the first
    /// statement. `connect_timeout` defaults to 2 s.
    ///
    /// ```
    /// use mcp_auth::authorization_server::store::PostgresStore;
    ///
    /// // Nothing is contacted yet.
    /// let store = PostgresStore::new("postgresql://mcp@127.0.0.1:5432/mcp_auth?application_name=notes")?;
    /// # drop(store);
    /// assert!(PostgresStore::new("postgres://mcp@127.0.0.1:notaport/db").is_err());
    /// # Ok::<(), mcp_auth::authorization_server::StoreError>(())
    /// ```
    pub fn new(url: &str) -> Result<Self, StoreError> {
        // The parser's messages describe the syntax, never the password.
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StoreError::PostgresConfig(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("mcp-auth");
        }
        // Connections whose server went away are dropped when next taken from the
        // pool (deadpool's default `Fast` recycling); a dead one not yet noticed
        // fails its statement as `Unavailable`, once.
        let manager = Manager::new(config.clone(), NoTls);
        let pool = Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(WAIT_TIMEOUT))
            .recycle_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::PostgresConfig(e.to_string()))?;
        Ok(Self { pool, migrated: Arc::new(AtomicBool::new(false)), config, listener: Arc::default() })
    }

    /// [`new`](Self::new), then connects and brings the schema up to date
    /// now, so a wrong URL or a database that is down shows at startup.
    ///
    /// ```no_run
    /// use mcp_auth::authorization_server::store::PostgresStore;
    ///
    /// # async fn run() -> Result<(), mcp_auth::authorization_server::StoreError> {
    /// let store = PostgresStore::connect("postgres://mcp@%2Frun%2Fpostgresql/mcp_auth").await?;
    /// # drop(store);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::new(url)?;
        drop(bounded(store.client()).await?); // back to the pool
        Ok(store)
    }

    /// A pooled connection, the schema migrated.
    async fn client(&self) -> Result<Object, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        if !self.migrated.load(Ordering::Acquire) {
            schema::migrate(&mut client).await?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(client)
    }

    /// Revokes a grant and its tokens, and with `forget_approvals` the
    /// approvals its user remembered for its client, so that the next
    /// authorization asks again.
    fn end_grant<'a>(&'a self, grant_id: &'a str, forget_approvals: bool) -> StoreResult<'a, ()> {
        self.run(move |mut c| async move {
            let tx = c.transaction().await.map_err(db)?;
            if forget_approvals {
                tx.execute(
                    "DELETE FROM mcp_auth_records AS c WHERE c.kind = $1 AND EXISTS (
                         SELECT 1 FROM mcp_auth_records AS g WHERE g.kind = $2 AND g.key = $3
                         AND g.data->>'subject' = c.data->>'subject'
                         AND g.data->>'client_id' = c.data->>'client_id')",
                    &[&CONSENT, &GRANT, &grant_id],
                )
                .await
                .map_err(db)?;
            }
            // Refresh tokens before access tokens, each in key order, as a rotation
            // locks them: the two never wait for each other in a circle.
            tx.execute(
                "SELECT key FROM mcp_auth_records WHERE grant_id = $1 AND kind = $2 ORDER BY key FOR UPDATE",
                &[&grant_id, &REFRESH],
            )
            .await
            .map_err(db)?;
            tx.execute(
                "DELETE FROM mcp_auth_records WHERE grant_id = $1 AND kind = $2",
                &[&grant_id, &REFRESH],
            )
            .await
            .map_err(db)?;
            tx.execute(
                "UPDATE mcp_auth_records SET data = jsonb_set(data, '{revoked}', 'true')
                 WHERE grant_id = $1 AND kind IN ($2, $3)",
                &[&grant_id, &GRANT, &ACCESS],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    /// Runs `f` on a pooled connection, within the operation time limit.
    fn run<'a, T, F>(&'a self, f: impl FnOnce(Object) -> F + Send + 'a) -> StoreResult<'a, T>
    where
        T: Send + 'a,
        F: Future<Output = Result<T, StoreError>> + Send + 'a,
    {
        Box::pin(bounded(async move { f(self.client().await?).await }))
    }
}

/// `operation`, or [`StoreError::Unavailable`] when it takes too long (a
/// database that stopped answering without closing the connection).
async fn bounded<T>(operation: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, operation).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!("no answer within {} s", OPERATION_TIMEOUT.as_secs())))
    })
}

/// A pool that cannot hand out a connection: the database is unreachable
/// (or refuses us), or every connection stayed busy too long.
fn pool_error(error: PoolError) -> StoreError {
    StoreError::Unavailable(match error {
        PoolError::Backend(e) => e.to_string(),
        other => other.to_string(),
    })
}

impl AuthStore for PostgresStore {
    fn put_client(&self, client: ClientRecord) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row =
                Row { kind: CLIENT, key: &client.client_id, grant_id: None, expires_at: client.expires_at };
            put(&c, row, &client, false).await
        })
    }

    fn client<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<ClientRecord>> {
        self.run(move |c| async move { get(&c, CLIENT, client_id, now).await })
    }

    fn put_code(&self, code: CodeRecord) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row = Row {
                kind: CODE,
                key: &code.code_hash,
                grant_id: Some(&code.grant_id),
                expires_at: Some(code.expires_at),
            };
            put(&c, row, &code, false).await
        })
    }

    fn use_code<'a>(
        &'a self,
        code_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        self.run(move |c| async move { use_once(&c, CODE, code_hash, now, true).await })
    }

    fn code<'a>(&'a self, code_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        self.run(move |c| async move { use_once(&c, CODE, code_hash, now, false).await })
    }

    fn put_grant(&self, grant: GrantRecord) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row = Row {
                kind: GRANT,
                key: &grant.grant_id,
                grant_id: Some(&grant.grant_id),
                expires_at: Some(grant.expires_at),
            };
            put(&c, row, &grant, true).await
        })
    }

    fn grant<'a>(&'a self, grant_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<GrantRecord>> {
        self.run(move |c| async move { get(&c, GRANT, grant_id, now).await })
    }

    fn client_has_grants<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, bool> {
        self.run(move |c| async move {
            let found = c
                .query_opt(
                    "SELECT 1 FROM mcp_auth_records WHERE kind = $1 AND data->>'client_id' = $2
                     AND (expires_at IS NULL OR expires_at > $3) LIMIT 1",
                    &[&GRANT, &client_id, &to_sql_time(now)],
                )
                .await
                .map_err(db)?;
            Ok(found.is_some())
        })
    }

    fn grants_of<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Vec<GrantRecord>> {
        self.run(move |c| async move {
            let filter = "AND data->>'subject' = $2 AND data->>'client_id' = $3
                          AND (expires_at IS NULL OR expires_at > $4)";
            all(&c, GRANT, filter, &[&subject, &client_id, &to_sql_time(now)]).await
        })
    }

    fn set_upstream_token<'a>(&'a self, grant_id: &'a str, sealed: &'a str) -> StoreResult<'a, ()> {
        self.run(move |c| async move {
            c.execute(
                "UPDATE mcp_auth_records SET data = jsonb_set(data, '{upstream_token}', to_jsonb($1::text))
                 WHERE kind = $2 AND key = $3",
                &[&sealed, &GRANT, &grant_id],
            )
            .await
            .map_err(db)?;
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
        self.run(move |c| async move {
            let row = Row {
                kind: REFRESH,
                key: &token.token_hash,
                grant_id: Some(&token.grant_id),
                expires_at: Some(token.expires_at),
            };
            put(&c, row, &token, false).await
        })
    }

    fn refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        self.run(move |c| async move { use_once(&c, REFRESH, token_hash, now, false).await })
    }

    fn use_refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        self.run(move |c| async move { use_once(&c, REFRESH, token_hash, now, true).await })
    }

    fn put_successor_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, Succession> {
        self.run(move |mut c| async move {
            let tx = c.transaction().await.map_err(db)?;
            let succession = match &token.rotated_from {
                None => Succession::First,
                Some(parent) => {
                    // Two rotations of one token, from any instances, take turns here (until
                    // commit), so at most one of them finds no earlier successor.
                    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&ROTATION_LOCK, parent])
                        .await
                        .map_err(db)?;
                    supersede_successors(&tx, parent).await?
                }
            };
            if succession != Succession::EarlierSuccessorUsed {
                let row = Row {
                    kind: REFRESH,
                    key: &token.token_hash,
                    grant_id: Some(&token.grant_id),
                    expires_at: Some(token.expires_at),
                };
                put(&tx, row, &token, false).await?;
            }
            tx.commit().await.map_err(db)?;
            Ok(succession)
        })
    }

    fn put_access_token(&self, token: AccessTokenRecord) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row = Row {
                kind: ACCESS,
                key: &token.jti,
                grant_id: Some(&token.grant_id),
                expires_at: Some(token.expires_at),
            };
            put(&c, row, &token, true).await
        })
    }

    fn access_token<'a>(&'a self, jti: &'a str, now: UnixTime) -> StoreResult<'a, Option<AccessTokenRecord>> {
        self.run(move |c| async move { get(&c, ACCESS, jti, now).await })
    }

    fn revoke_access_token<'a>(&'a self, jti: &'a str) -> StoreResult<'a, ()> {
        self.run(move |c| async move {
            c.execute(
                "UPDATE mcp_auth_records SET data = jsonb_set(data, '{revoked}', 'true')
                 WHERE kind = $1 AND key = $2",
                &[&ACCESS, &jti],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let key = consent_key(
                &consent.subject,
                &consent.client_id,
                &consent.redirect_uri,
                &consent.browser_hash,
            )?;
            let row = Row { kind: CONSENT, key: &key, grant_id: None, expires_at: Some(consent.expires_at) };
            put(&c, row, &consent, true).await
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
        self.run(move |c| async move {
            let key = consent_key(subject, client_id, redirect_uri, browser_hash)?;
            get(&c, CONSENT, &key, now).await
        })
    }

    fn put_session(&self, session: LoginSession) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row = Row {
                kind: SESSION,
                key: &session.session_hash,
                grant_id: None,
                expires_at: Some(session.expires_at),
            };
            put(&c, row, &session, true).await
        })
    }

    fn session<'a>(&'a self, session_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<LoginSession>> {
        self.run(move |c| async move { get(&c, SESSION, session_hash, now).await })
    }

    fn put_pending(&self, pending: PendingAuthorization) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row = Row {
                kind: PENDING,
                key: &pending.txn_hash,
                grant_id: None,
                expires_at: Some(pending.expires_at),
            };
            put(&c, row, &pending, true).await
        })
    }

    fn pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        self.run(move |c| async move { get(&c, PENDING, txn_hash, now).await })
    }

    fn take_pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        self.run(move |c| async move {
            // One statement: of two concurrent takes, one gets the row. An expired
            // one is removed all the same, and not returned.
            let row = c
                .query_opt(
                    "DELETE FROM mcp_auth_records WHERE kind = $1 AND key = $2
                     RETURNING data, (expires_at IS NULL OR expires_at > $3)",
                    &[&PENDING, &txn_hash, &to_sql_time(now)],
                )
                .await
                .map_err(db)?;
            let Some(row) = row else { return Ok(None) };
            let live: bool = row.try_get(1).map_err(db)?;
            if live { decode(&row, 0).map(Some) } else { Ok(None) }
        })
    }

    fn signing_keys(&self) -> StoreResult<'_, Vec<StoredSigningKey>> {
        self.run(move |c| async move { all(&c, KEY, "", &[]).await })
    }

    fn put_signing_key(&self, key: StoredSigningKey) -> StoreResult<'_, ()> {
        self.run(move |c| async move {
            let row = Row { kind: KEY, key: &key.kid, grant_id: None, expires_at: key.retire_at };
            put(&c, row, &key, true).await
        })
    }

    fn purge_expired(&self, now: UnixTime) -> StoreResult<'_, u64> {
        self.run(move |c| async move {
            c.execute(
                "DELETE FROM mcp_auth_records WHERE expires_at IS NOT NULL AND expires_at <= $1",
                &[&to_sql_time(now)],
            )
            .await
            .map_err(db)
        })
    }

    /// Every change to an access-token or grant row, by any instance: a
    /// trigger notifies it at commit, and a connection of this store's own
    /// (started by the first call, on the current runtime; `None` outside
    /// one) listens, reconnecting after a failure.
    fn revocation_feed(&self) -> Option<RevocationFeed> {
        if let Some(listener) = self.listener.get() {
            return Some(listener.subscribe());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.listener.get_or_init(|| Listener::start(&runtime, self.config.clone())).subscribe())
    }
}
