//! What every [`AuthStore`] must do, checked the same way for each
//! implementation: `as_store.rs` runs it on the memory and SQLite stores,
//! `as_store_postgres.rs` on PostgreSQL. Each check gets a fresh store from
//! the caller's factory.

// Helpers may unwrap: a panic is the report.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use mcp_auth::authorization_server::StoreError;
use mcp_auth::authorization_server::store::{
    AccessTokenRecord, AuthStore, ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LoginSession,
    PendingAuthorization, RefreshTokenRecord, StoredSigningKey, Succession,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Runs every check, each on a store from `fresh`.
pub(crate) async fn run_all<F, Fut>(mut fresh: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn AuthStore>>,
{
    clients_are_unique_and_expire(fresh().await.as_ref()).await;
    codes_count_uses_and_expire(fresh().await.as_ref()).await;
    revoking_a_grant_reaches_its_tokens_and_consents(fresh().await.as_ref()).await;
    a_superseded_grant_keeps_the_remembered_approval(fresh().await.as_ref()).await;
    grants_are_found_by_user_and_client(fresh().await.as_ref()).await;
    refresh_rotation_keeps_one_live_successor(fresh().await.as_ref()).await;
    access_tokens_are_revoked_one_by_one(fresh().await.as_ref()).await;
    sessions_and_consents_round_trip_and_expire(fresh().await.as_ref()).await;
    pending_authorizations_are_taken_once(fresh().await.as_ref()).await;
    signing_keys_are_replaced_by_kid(fresh().await.as_ref()).await;
    purge_deletes_exactly_the_expired_records(fresh().await.as_ref()).await;
}

fn record<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

pub(crate) fn client(id: &str, expires_at: Option<u64>) -> ClientRecord {
    record(json!({
        "client_id": id, "secret_hash": null, "secret_expires_at": null, "auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/cb"], "application_type": "native", "client_name": null,
        "scope": null, "grant_types": ["authorization_code"], "issued_at": 1, "expires_at": expires_at,
    }))
}

pub(crate) fn code(hash: &str, grant_id: &str, expires_at: u64) -> CodeRecord {
    record(json!({
        "code_hash": hash, "grant_id": grant_id, "client_id": "c", "redirect_uri": "https://app.example/cb",
        "redirect_uri_explicit": true, "code_challenge": "x", "expires_at": expires_at,
    }))
}

pub(crate) fn grant(id: &str, subject: &str, client_id: &str, expires_at: u64) -> GrantRecord {
    record(json!({
        "grant_id": id, "client_id": client_id, "subject": subject, "scope": "a",
        "resource": "https://mcp.example/mcp", "redirect_uri": "https://app.example/cb",
        "created_at": 1, "expires_at": expires_at, "revoked": false,
    }))
}

pub(crate) fn refresh(
    hash: &str,
    grant_id: &str,
    rotated_from: Option<&str>,
    access_jti: Option<&str>,
) -> RefreshTokenRecord {
    record(json!({
        "token_hash": hash, "grant_id": grant_id, "client_id": "c", "scope": "a", "expires_at": 1000,
        "rotated_from": rotated_from, "access_jti": access_jti, "superseded": false,
    }))
}

pub(crate) fn access(jti: &str, grant_id: &str, expires_at: u64) -> AccessTokenRecord {
    record(
        json!({"jti": jti, "grant_id": grant_id, "client_id": "c", "expires_at": expires_at, "revoked": false}),
    )
}

fn consent(subject: &str, client_id: &str, browser: &str, expires_at: u64) -> ConsentRecord {
    record(json!({
        "subject": subject, "client_id": client_id, "redirect_uri": "http://127.0.0.1/cb",
        "browser_hash": browser, "scope": "notes:read", "expires_at": expires_at,
    }))
}

fn pending(txn: &str, state: &str, expires_at: u64) -> PendingAuthorization {
    record(json!({
        "txn_hash": txn, "csrf_hash": "csrf", "client_id": "c", "redirect_uri": "http://127.0.0.1/cb",
        "state": state, "code_challenge": "x", "scope": "a", "resource": "https://mcp.example/mcp",
        "subject": null, "expires_at": expires_at,
    }))
}

pub(crate) fn signing_key(kid: &str, pkcs8: &[u8], retire_at: Option<u64>) -> StoredSigningKey {
    record(json!({"kid": kid, "alg": "ES256", "pkcs8": pkcs8, "created_at": 1, "retire_at": retire_at}))
}

async fn clients_are_unique_and_expire(store: &dyn AuthStore) {
    store.put_client(client("forever", None)).await.unwrap();
    store.put_client(client("lapsing", Some(100))).await.unwrap();
    let again = store.put_client(client("forever", Some(5))).await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
    assert_eq!(store.client("forever", u64::MAX / 2).await.unwrap(), Some(client("forever", None)));
    assert_eq!(store.client("lapsing", 99).await.unwrap(), Some(client("lapsing", Some(100))));
    assert_eq!(store.client("lapsing", 100).await.unwrap(), None);
    assert_eq!(store.client("unknown", 1).await.unwrap(), None);
}

async fn codes_count_uses_and_expire(store: &dyn AuthStore) {
    store.put_code(code("h", "g", 100)).await.unwrap();
    // Looking does not count.
    let peek = store.code("h", 5).await.unwrap().unwrap();
    assert_eq!((peek.previous_uses, peek.first_used_at), (0, None));
    assert_eq!(peek.record, code("h", "g", 100));
    let first = store.use_code("h", 10).await.unwrap().unwrap();
    assert_eq!((first.previous_uses, first.first_used_at), (0, None));
    let second = store.use_code("h", 20).await.unwrap().unwrap();
    assert_eq!((second.previous_uses, second.first_used_at), (1, Some(10)));
    let peek = store.code("h", 30).await.unwrap().unwrap();
    assert_eq!((peek.previous_uses, peek.first_used_at), (2, Some(10)));
    assert!(store.use_code("h", 100).await.unwrap().is_none(), "expired");
    assert!(store.code("h", 100).await.unwrap().is_none(), "expired");
    assert!(store.use_code("other", 10).await.unwrap().is_none());
    assert_eq!(store.purge_expired(100).await.unwrap(), 1);
}

async fn revoking_a_grant_reaches_its_tokens_and_consents(store: &dyn AuthStore) {
    store.put_grant(grant("g", "alice", "c", 1000)).await.unwrap();
    store.put_grant(grant("other", "alice", "d", 1000)).await.unwrap();
    store.put_access_token(access("j", "g", 1000)).await.unwrap();
    store.put_access_token(access("j-other", "other", 1000)).await.unwrap();
    store.put_refresh_token(refresh("r", "g", None, Some("j"))).await.unwrap();
    store.put_refresh_token(refresh("r-other", "other", None, None)).await.unwrap();
    store.put_consent(consent("alice", "c", "b1", 1000)).await.unwrap();
    store.put_consent(consent("alice", "d", "b1", 1000)).await.unwrap();
    store.put_consent(consent("bob", "c", "b1", 1000)).await.unwrap();

    store.revoke_grant("g").await.unwrap();
    assert!(store.grant("g", 2).await.unwrap().unwrap().revoked);
    assert!(store.access_token("j", 2).await.unwrap().unwrap().revoked);
    assert!(store.refresh_token("r", 2).await.unwrap().is_none());
    let cb = "http://127.0.0.1/cb";
    assert_eq!(store.consent("alice", "c", cb, "b1", 2).await.unwrap(), None, "the user's approval goes");
    // Another client's grant, and another user's approval, stay.
    assert!(!store.grant("other", 2).await.unwrap().unwrap().revoked);
    assert!(!store.access_token("j-other", 2).await.unwrap().unwrap().revoked);
    assert!(store.refresh_token("r-other", 2).await.unwrap().is_some());
    assert!(store.consent("alice", "d", cb, "b1", 2).await.unwrap().is_some());
    assert!(store.consent("bob", "c", cb, "b1", 2).await.unwrap().is_some());

    // A later upstream refresh replaces the sealed token only: the grant stays revoked.
    store.set_upstream_token("g", "sealed-2").await.unwrap();
    let revoked = store.grant("g", 2).await.unwrap().unwrap();
    assert!(revoked.revoked);
    assert_eq!(revoked.upstream_token.as_deref(), Some("sealed-2"));
    assert_eq!(store.grant("g", 1000).await.unwrap(), None, "expired");
}

async fn a_superseded_grant_keeps_the_remembered_approval(store: &dyn AuthStore) {
    store.put_grant(grant("g", "alice", "c", 1000)).await.unwrap();
    store.put_access_token(access("j", "g", 1000)).await.unwrap();
    store.put_refresh_token(refresh("r", "g", None, Some("j"))).await.unwrap();
    store.put_consent(consent("alice", "c", "b1", 1000)).await.unwrap();

    store.supersede_grant("g").await.unwrap();
    assert!(store.grant("g", 2).await.unwrap().unwrap().revoked);
    assert!(store.access_token("j", 2).await.unwrap().unwrap().revoked);
    assert!(store.refresh_token("r", 2).await.unwrap().is_none());
    let approval = store.consent("alice", "c", "http://127.0.0.1/cb", "b1", 2).await.unwrap();
    assert!(approval.is_some(), "the approval the later authorization may have used stays");
}

async fn grants_are_found_by_user_and_client(store: &dyn AuthStore) {
    assert!(!store.client_has_grants("c", 1).await.unwrap());
    store.put_grant(grant("g1", "alice", "c", 100)).await.unwrap();
    store.put_grant(grant("g2", "alice", "c", 200)).await.unwrap();
    store.put_grant(grant("g3", "bob", "c", 300)).await.unwrap();
    store.put_grant(grant("g4", "alice", "d", 300)).await.unwrap();
    store.revoke_grant("g2").await.unwrap();
    let mut found: Vec<String> =
        store.grants_of("alice", "c", 50).await.unwrap().into_iter().map(|g| g.grant_id).collect();
    found.sort();
    assert_eq!(found, ["g1", "g2"], "revoked ones too");
    let found = store.grants_of("alice", "c", 150).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].revoked && found[0].grant_id == "g2");
    assert!(store.client_has_grants("c", 250).await.unwrap());
    assert!(!store.client_has_grants("c", 300).await.unwrap());
    assert!(!store.client_has_grants("e", 1).await.unwrap());
    // A grant stored again replaces the earlier one.
    let mut replaced = grant("g1", "alice", "c", 100);
    replaced.scope = "a b".into();
    store.put_grant(replaced.clone()).await.unwrap();
    assert_eq!(store.grant("g1", 1).await.unwrap(), Some(replaced));
}

async fn refresh_rotation_keeps_one_live_successor(store: &dyn AuthStore) {
    store.put_access_token(access("a1", "g", 1000)).await.unwrap();
    assert_eq!(
        store.put_successor_refresh_token(refresh("p", "g", None, None)).await.unwrap(),
        Succession::First
    );
    let used = store.use_refresh_token("p", 10).await.unwrap().unwrap();
    assert_eq!((used.previous_uses, used.first_used_at), (0, None));
    let again = store.use_refresh_token("p", 11).await.unwrap().unwrap();
    assert_eq!((again.previous_uses, again.first_used_at), (1, Some(10)));
    let peek = store.refresh_token("p", 12).await.unwrap().unwrap();
    assert_eq!(peek.previous_uses, 2);

    let first = store.put_successor_refresh_token(refresh("s1", "g", Some("p"), Some("a1"))).await.unwrap();
    assert_eq!(first, Succession::First);
    // A retry in the grace window: the unused s1 is superseded, its access token revoked.
    let retry = store.put_successor_refresh_token(refresh("s2", "g", Some("p"), None)).await.unwrap();
    assert_eq!(retry, Succession::Replaced);
    assert!(store.refresh_token("s1", 12).await.unwrap().unwrap().record.superseded);
    assert!(store.access_token("a1", 12).await.unwrap().unwrap().revoked);
    assert!(!store.refresh_token("s2", 12).await.unwrap().unwrap().record.superseded);
    // Once s2 is used, another successor of p means the family forked: nothing is stored.
    store.use_refresh_token("s2", 13).await.unwrap().unwrap();
    let forked = store.put_successor_refresh_token(refresh("s3", "g", Some("p"), None)).await.unwrap();
    assert_eq!(forked, Succession::EarlierSuccessorUsed);
    assert!(store.refresh_token("s3", 13).await.unwrap().is_none());
    assert!(store.use_refresh_token("p", 1000).await.unwrap().is_none(), "expired");
}

async fn access_tokens_are_revoked_one_by_one(store: &dyn AuthStore) {
    store.put_access_token(access("j1", "g", 100)).await.unwrap();
    store.put_access_token(access("j2", "g", 100)).await.unwrap();
    store.revoke_access_token("j1").await.unwrap();
    store.revoke_access_token("unknown").await.unwrap();
    assert!(store.access_token("j1", 1).await.unwrap().unwrap().revoked);
    assert_eq!(store.access_token("j2", 1).await.unwrap(), Some(access("j2", "g", 100)));
    assert_eq!(store.access_token("j2", 100).await.unwrap(), None, "expired");
}

async fn sessions_and_consents_round_trip_and_expire(store: &dyn AuthStore) {
    let session: LoginSession =
        record(json!({"session_hash": "h", "subject": "alice", "created_at": 1, "expires_at": 100}));
    store.put_session(session.clone()).await.unwrap();
    assert_eq!(store.session("h", 50).await.unwrap(), Some(session));
    assert_eq!(store.session("h", 100).await.unwrap(), None);
    assert_eq!(store.session("other", 50).await.unwrap(), None);

    let approval = consent("alice", "c", "b1", 100);
    store.put_consent(approval.clone()).await.unwrap();
    let cb = "http://127.0.0.1/cb";
    assert_eq!(store.consent("alice", "c", cb, "b1", 50).await.unwrap(), Some(approval));
    // Another browser, user or redirect URI: nothing remembered.
    assert_eq!(store.consent("alice", "c", cb, "b2", 50).await.unwrap(), None);
    assert_eq!(store.consent("bob", "c", cb, "b1", 50).await.unwrap(), None);
    assert_eq!(store.consent("alice", "c", "http://127.0.0.1/x", "b1", 50).await.unwrap(), None);
    assert_eq!(store.consent("alice", "c", cb, "b1", 100).await.unwrap(), None);
    assert_eq!(store.purge_expired(100).await.unwrap(), 2);
}

async fn pending_authorizations_are_taken_once(store: &dyn AuthStore) {
    store.put_pending(pending("t", "one", 100)).await.unwrap();
    store.put_pending(pending("t", "two", 100)).await.unwrap();
    assert_eq!(store.pending("t", 50).await.unwrap(), Some(pending("t", "two", 100)), "replaced");
    assert_eq!(store.pending("t", 100).await.unwrap(), None, "expired");
    assert_eq!(store.take_pending("t", 50).await.unwrap(), Some(pending("t", "two", 100)));
    assert_eq!(store.take_pending("t", 50).await.unwrap(), None, "single use");
    assert_eq!(store.pending("t", 50).await.unwrap(), None);
    // An expired one is not handed out, and is gone.
    store.put_pending(pending("old", "x", 100)).await.unwrap();
    assert_eq!(store.take_pending("old", 100).await.unwrap(), None);
    assert_eq!(store.pending("old", 50).await.unwrap(), None);
}

async fn signing_keys_are_replaced_by_kid(store: &dyn AuthStore) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    store.put_signing_key(signing_key("k1", &[1, 2, 3], None)).await.unwrap();
    store.put_signing_key(signing_key("k2", &[4, 5], None)).await.unwrap();
    store.put_signing_key(signing_key("k1", &[1, 2, 3], Some(500))).await.unwrap();
    let mut keys = store.signing_keys().await.unwrap();
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    assert_eq!(keys, [signing_key("k1", &[1, 2, 3], Some(500)), signing_key("k2", &[4, 5], None)]);
}

async fn purge_deletes_exactly_the_expired_records(store: &dyn AuthStore) {
    store.put_client(client("lapsed", Some(10))).await.unwrap();
    store.put_client(client("kept", None)).await.unwrap();
    store.put_code(code("c1", "g", 10)).await.unwrap();
    store.put_grant(grant("g", "alice", "c", 10)).await.unwrap();
    store.put_grant(grant("g-live", "alice", "c", 1000)).await.unwrap();
    store.put_access_token(access("j", "g", 10)).await.unwrap();
    store.put_pending(pending("t", "s", 10)).await.unwrap();
    store.put_signing_key(signing_key("retired", &[1], Some(10))).await.unwrap();
    store.put_signing_key(signing_key("current", &[2], None)).await.unwrap();
    assert_eq!(store.purge_expired(10).await.unwrap(), 6);
    assert_eq!(store.purge_expired(10).await.unwrap(), 0);
    assert!(store.client("kept", 10).await.unwrap().is_some());
    assert!(store.grant("g-live", 10).await.unwrap().is_some());
    let kids: Vec<String> = store.signing_keys().await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["current"]);
}
