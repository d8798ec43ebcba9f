//! A store around another that counts the lookups a revocation check makes
//! (`access_token` and `grant`) and, when asked, fails the writes that
//! follow a spent code or refresh token (the new access token, the rotated
//! refresh token) as an unavailable database would. Everything else is
//! passed through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mcp_auth::authorization_server::StoreError;
use mcp_auth::authorization_server::store::{
    AccessTokenRecord, AuthStore, ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LoginSession,
    PendingAuthorization, RefreshTokenRecord, RevocationFeed, StoreResult, StoredSigningKey, Succession,
    UnixTime, Used,
};

#[derive(Debug)]
pub(crate) struct WatchedStore {
    inner: Arc<dyn AuthStore>,
    lookups: AtomicUsize,
    /// While set, the two writes above fail with [`StoreError::Unavailable`].
    pub(crate) fail_writes: AtomicBool,
}

impl WatchedStore {
    pub(crate) fn new(inner: Arc<dyn AuthStore>) -> Self {
        Self { inner, lookups: AtomicUsize::new(0), fail_writes: AtomicBool::new(false) }
    }

    /// The lookups revocation checks made so far.
    pub(crate) fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    fn failing(&self) -> bool {
        self.fail_writes.load(Ordering::SeqCst)
    }
}

fn unavailable<'a, T: Send + 'a>() -> StoreResult<'a, T> {
    Box::pin(async { Err(StoreError::Unavailable("stopped by the test".into())) })
}

impl AuthStore for WatchedStore {
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
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.grant(grant_id, now)
    }
    fn revoke_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()> {
        self.inner.revoke_grant(grant_id)
    }
    fn supersede_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()> {
        self.inner.supersede_grant(grant_id)
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
            return unavailable();
        }
        self.inner.put_successor_refresh_token(token)
    }
    fn put_access_token(&self, token: AccessTokenRecord) -> StoreResult<'_, ()> {
        if self.failing() {
            return unavailable();
        }
        self.inner.put_access_token(token)
    }
    fn access_token<'a>(&'a self, jti: &'a str, now: UnixTime) -> StoreResult<'a, Option<AccessTokenRecord>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
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
