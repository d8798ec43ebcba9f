//! A store that fails after a code or refresh token was spent (its
//! successor or the new access token cannot be written): the token endpoint
//! answers `server_error`, never the retryable `temporarily_unavailable`,
//! whose retry would present the spent credential again and be taken for a
//! replay that revokes the grant.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use as_support::{assert_oauth_error, start_with};
use mcp_auth::authorization_server::StoreError;
use mcp_auth::authorization_server::store::{
    AccessTokenRecord, AuthStore, ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LoginSession,
    MemoryStore, PendingAuthorization, RefreshTokenRecord, RevocationFeed, StoreResult, StoredSigningKey,
    Succession, UnixTime, Used,
};
use serde_json::Value;

/// The memory store, whose writes of access tokens and rotated refresh
/// tokens fail with [`StoreError::Unavailable`] while `fail` is set.
#[derive(Debug, Default)]
struct FailingStore {
    inner: MemoryStore,
    fail: AtomicBool,
}

impl FailingStore {
    fn failing(&self) -> bool {
        self.fail.load(Ordering::SeqCst)
    }
}

impl AuthStore for FailingStore {
    fn put_client(&self, client: ClientRecord) -> StoreResult<'_, ()> {
        self.inner.put_client(client)
    }
    fn client<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<ClientRecord>> {
        self.inner.client(client_id, now)
    }
    fn put_code(&self, code: CodeRecord) -> StoreResult<'_, ()> {
        self.inner.put_code(code)
    }
    fn use_code<'a>(
        &'a self,
        code_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        self.inner.use_code(code_hash, now)
    }
    fn code<'a>(&'a self, code_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        self.inner.code(code_hash, now)
    }
    fn put_grant(&self, grant: GrantRecord) -> StoreResult<'_, ()> {
        self.inner.put_grant(grant)
    }
    fn grant<'a>(&'a self, grant_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<GrantRecord>> {
        self.inner.grant(grant_id, now)
    }
    fn revoke_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()> {
        self.inner.revoke_grant(grant_id)
    }
    fn set_upstream_token<'a>(&'a self, grant_id: &'a str, sealed: &'a str) -> StoreResult<'a, ()> {
        self.inner.set_upstream_token(grant_id, sealed)
    }
    fn grants_of<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Vec<GrantRecord>> {
        self.inner.grants_of(subject, client_id, now)
    }
    fn client_has_grants<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, bool> {
        self.inner.client_has_grants(client_id, now)
    }
    fn put_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, ()> {
        self.inner.put_refresh_token(token)
    }
    fn refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        self.inner.refresh_token(token_hash, now)
    }
    fn use_refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        self.inner.use_refresh_token(token_hash, now)
    }
    fn put_successor_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, Succession> {
        if self.failing() {
            return Box::pin(async { Err(StoreError::Unavailable("the test stopped it".into())) });
        }
        self.inner.put_successor_refresh_token(token)
    }
    fn put_access_token(&self, token: AccessTokenRecord) -> StoreResult<'_, ()> {
        if self.failing() {
            return Box::pin(async { Err(StoreError::Unavailable("the test stopped it".into())) });
        }
        self.inner.put_access_token(token)
    }
    fn access_token<'a>(&'a self, jti: &'a str, now: UnixTime) -> StoreResult<'a, Option<AccessTokenRecord>> {
        self.inner.access_token(jti, now)
    }
    fn revoke_access_token<'a>(&'a self, jti: &'a str) -> StoreResult<'a, ()> {
        self.inner.revoke_access_token(jti)
    }
    fn put_consent(&self, consent: ConsentRecord) -> StoreResult<'_, ()> {
        self.inner.put_consent(consent)
    }
    fn consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        redirect_uri: &'a str,
        browser_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<ConsentRecord>> {
        self.inner.consent(subject, client_id, redirect_uri, browser_hash, now)
    }
    fn put_session(&self, session: LoginSession) -> StoreResult<'_, ()> {
        self.inner.put_session(session)
    }
    fn session<'a>(&'a self, session_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<LoginSession>> {
        self.inner.session(session_hash, now)
    }
    fn put_pending(&self, pending: PendingAuthorization) -> StoreResult<'_, ()> {
        self.inner.put_pending(pending)
    }
    fn pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        self.inner.pending(txn_hash, now)
    }
    fn take_pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        self.inner.take_pending(txn_hash, now)
    }
    fn signing_keys(&self) -> StoreResult<'_, Vec<StoredSigningKey>> {
        self.inner.signing_keys()
    }
    fn put_signing_key(&self, key: StoredSigningKey) -> StoreResult<'_, ()> {
        self.inner.put_signing_key(key)
    }
    fn purge_expired(&self, now: UnixTime) -> StoreResult<'_, u64> {
        self.inner.purge_expired(now)
    }
    fn revocation_feed(&self) -> Option<RevocationFeed> {
        self.inner.revocation_feed()
    }
}

#[tokio::test]
async fn a_failure_after_the_code_was_spent_is_a_server_error_not_a_retry() {
    let store = Arc::new(FailingStore::default());
    let s = start_with(|c| c, store.clone(), "").await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    store.fail.store(true, Ordering::SeqCst);
    assert_oauth_error(s.exchange(&client, &code, &verifier).await, 500, "server_error").await;
}

#[tokio::test]
async fn a_failure_after_the_refresh_token_was_spent_is_a_server_error_not_a_retry() {
    let store = Arc::new(FailingStore::default());
    let s = start_with(|c| c, store.clone(), "").await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let tokens: Value = s.exchange(&client, &code, &verifier).await.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    store.fail.store(true, Ordering::SeqCst);
    assert_oauth_error(s.refresh(&client, refresh).await, 500, "server_error").await;
}
