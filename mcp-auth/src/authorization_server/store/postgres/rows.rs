//! Statements on the one table of records, shared by the store's operations,
//! and how their failures map to [`StoreError`].

use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_postgres::error::SqlState;

use crate::authorization_server::store::{StoreError, Succession, UnixTime, Used};

// The `kind` column of each record type (the SQLite store's names).
pub(super) const CLIENT: &str = "client";
pub(super) const CODE: &str = "code";
pub(super) const GRANT: &str = "grant";
pub(super) const REFRESH: &str = "refresh_token";
pub(super) const ACCESS: &str = "access_token";
pub(super) const CONSENT: &str = "consent";
pub(super) const PENDING: &str = "pending";
pub(super) const SESSION: &str = "login_session";
pub(super) const KEY: &str = "signing_key";

/// A failed statement: the connection's loss means "unavailable"; anything
/// else is the database refusing the statement.
pub(super) fn db(error: tokio_postgres::Error) -> StoreError {
    let connection_lost = error.is_closed()
        || error.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-57P03: shutting down or starting up.
            code.code().starts_with("08")
                || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW]
                    .contains(code)
        })
        || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>());
    if connection_lost { StoreError::Unavailable(error.to_string()) } else { StoreError::Postgres(error) }
}

pub(super) fn to_sql_time(t: UnixTime) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn from_sql_time(t: i64) -> UnixTime {
    UnixTime::try_from(t).unwrap_or(0)
}

/// The queried columns of a record.
pub(super) struct Row<'a> {
    pub(super) kind: &'static str,
    pub(super) key: &'a str,
    pub(super) grant_id: Option<&'a str>,
    pub(super) expires_at: Option<UnixTime>,
}

/// Stores a record; an existing one of the same kind and key is replaced
/// (use count reset) when `replace`, else refused as [`StoreError::Duplicate`].
pub(super) async fn put<T: Serialize>(
    c: &impl GenericClient,
    row: Row<'_>,
    record: &T,
    replace: bool,
) -> Result<(), StoreError> {
    let data = serde_json::to_value(record)?;
    let on_conflict = if replace {
        "ON CONFLICT (kind, key) DO UPDATE SET grant_id = EXCLUDED.grant_id, data = EXCLUDED.data,
         expires_at = EXCLUDED.expires_at, uses = 0, first_used_at = NULL"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO mcp_auth_records (kind, key, grant_id, data, expires_at) VALUES ($1, $2, $3, $4, $5) \
         {on_conflict}"
    );
    let expires = row.expires_at.map(to_sql_time);
    match c.execute(&sql, &[&row.kind, &row.key, &row.grant_id, &data, &expires]).await {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Duplicate(row.kind)),
        other => other.map(drop).map_err(db),
    }
}

pub(super) async fn get<T: DeserializeOwned>(
    c: &impl GenericClient,
    kind: &str,
    key: &str,
    now: UnixTime,
) -> Result<Option<T>, StoreError> {
    let row = c
        .query_opt(
            "SELECT data FROM mcp_auth_records
             WHERE kind = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
            &[&kind, &key, &to_sql_time(now)],
        )
        .await
        .map_err(db)?;
    row.map(|row| decode(&row, 0)).transpose()
}

pub(super) fn decode<T: DeserializeOwned>(row: &tokio_postgres::Row, column: usize) -> Result<T, StoreError> {
    let data: Value = row.try_get(column).map_err(db)?;
    Ok(serde_json::from_value(data)?)
}

/// A record with its use count, counting this use when `count` is set. The
/// count is one `UPDATE`: its row lock orders concurrent uses from any
/// instance, so exactly one sees `previous_uses == 0`. `first_used_at` is
/// set by the first use only, so before the use it was NULL exactly when
/// the count is now 1.
pub(super) async fn use_once<T: DeserializeOwned>(
    c: &impl GenericClient,
    kind: &str,
    key: &str,
    now: UnixTime,
    count: bool,
) -> Result<Option<Used<T>>, StoreError> {
    let sql = if count {
        "UPDATE mcp_auth_records SET uses = uses + 1, first_used_at = COALESCE(first_used_at, $3)
         WHERE kind = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)
         RETURNING data, uses - 1, CASE WHEN uses = 1 THEN NULL ELSE first_used_at END"
    } else {
        "SELECT data, uses, first_used_at FROM mcp_auth_records
         WHERE kind = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)"
    };
    let Some(row) = c.query_opt(sql, &[&kind, &key, &to_sql_time(now)]).await.map_err(db)? else {
        return Ok(None);
    };
    let uses: i32 = row.try_get(1).map_err(db)?;
    let first_used_at: Option<i64> = row.try_get(2).map_err(db)?;
    Ok(Some(Used {
        record: decode(&row, 0)?,
        previous_uses: u32::try_from(uses).unwrap_or(0),
        first_used_at: first_used_at.map(from_sql_time),
    }))
}

/// Inside a transaction holding the rotation lock of `parent`: marks its
/// live successors superseded and revokes their access tokens, unless one
/// of them was used already. The successors are locked first, so a
/// concurrent use of one either comes before (and is seen) or after (and
/// finds it superseded).
pub(super) async fn supersede_successors(
    c: &impl GenericClient,
    parent: &str,
) -> Result<Succession, StoreError> {
    let earlier = c
        .query(
            "SELECT key, uses, data->>'access_jti' FROM mcp_auth_records
             WHERE kind = $1 AND data->>'rotated_from' = $2
             AND NOT COALESCE((data->>'superseded')::boolean, false)
             ORDER BY key FOR UPDATE",
            &[&REFRESH, &parent],
        )
        .await
        .map_err(db)?;
    let mut successors = Vec::with_capacity(earlier.len());
    for row in &earlier {
        let key: String = row.try_get(0).map_err(db)?;
        let uses: i32 = row.try_get(1).map_err(db)?;
        let access_jti: Option<String> = row.try_get(2).map_err(db)?;
        if uses > 0 {
            return Ok(Succession::EarlierSuccessorUsed);
        }
        successors.push((key, access_jti));
    }
    for (key, access_jti) in &successors {
        c.execute(
            "UPDATE mcp_auth_records SET data = jsonb_set(data, '{superseded}', 'true')
             WHERE kind = $1 AND key = $2",
            &[&REFRESH, key],
        )
        .await
        .map_err(db)?;
        if let Some(jti) = access_jti {
            c.execute(
                "UPDATE mcp_auth_records SET data = jsonb_set(data, '{revoked}', 'true')
                 WHERE kind = $1 AND key = $2",
                &[&ACCESS, jti],
            )
            .await
            .map_err(db)?;
        }
    }
    Ok(if successors.is_empty() { Succession::First } else { Succession::Replaced })
}

/// The data of every row of `kind` matching `filter` (placeholders from `$2`).
pub(super) async fn all<T: DeserializeOwned>(
    c: &impl GenericClient,
    kind: &str,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<T>, StoreError> {
    let sql = format!("SELECT data FROM mcp_auth_records WHERE kind = $1 {filter}");
    let mut all_params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&kind];
    all_params.extend_from_slice(params);
    let rows = c.query(&sql, &all_params).await.map_err(db)?;
    rows.iter().map(|row| decode(row, 0)).collect()
}
