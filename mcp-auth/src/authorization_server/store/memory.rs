//! The in-memory store: for tests and throwaway servers (everything is lost
//! on restart).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::{
    AccessTokenRecord, AuthStore, ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LocalRevocations,
    LoginSession, PendingAuthorization, RefreshTokenRecord, RevocationEvent, RevocationFeed, StoreError,
    StoreResult, StoredSigningKey, Succession, UnixTime, Used,
};

/// Keeps everything in memory, behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    revocations: LocalRevocations,
}

/// A record with its use count.
#[derive(Debug)]
struct Counted<T> {
    record: T,
    uses: u32,
    first_used_at: Option<UnixTime>,
}

impl<T: Clone> Counted<T> {
    fn new(record: T) -> Self {
        Self { record, uses: 0, first_used_at: None }
    }

    fn peek(&self) -> Used<T> {
        Used { record: self.record.clone(), previous_uses: self.uses, first_used_at: self.first_used_at }
    }

    fn use_once(&mut self, now: UnixTime) -> Used<T> {
        let seen = self.peek();
        self.uses = self.uses.saturating_add(1);
        self.first_used_at.get_or_insert(now);
        seen
    }
}

#[derive(Debug, Default)]
struct Tables {
    clients: HashMap<String, ClientRecord>,
    codes: HashMap<String, Counted<CodeRecord>>,
    grants: HashMap<String, GrantRecord>,
    refresh_tokens: HashMap<String, Counted<RefreshTokenRecord>>,
    access_tokens: HashMap<String, AccessTokenRecord>,
    consents: HashMap<(String, String, String, String), ConsentRecord>,
    sessions: HashMap<String, LoginSession>,
    pending: HashMap<String, PendingAuthorization>,
    keys: Vec<StoredSigningKey>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tables) -> Result<T, StoreError>,
    ) -> StoreResult<'_, T> {
        let result = f(&mut self.tables());
        Box::pin(std::future::ready(result))
    }

    /// Revokes a grant and its tokens, and with `forget_approvals` the
    /// approvals its user remembered for its client.
    fn end_grant<'a>(&'a self, grant_id: &'a str, forget_approvals: bool) -> StoreResult<'a, ()> {
        let revoked = self.run(|t| {
            if let Some(grant) = t.grants.get_mut(grant_id) {
                grant.revoked = true;
                if forget_approvals {
                    let (subject, client_id) = (grant.subject.clone(), grant.client_id.clone());
                    t.consents.retain(|_, c| c.subject != subject || c.client_id != client_id);
                }
            }
            t.refresh_tokens.retain(|_, r| r.record.grant_id != grant_id);
            for token in t.access_tokens.values_mut().filter(|a| a.grant_id == grant_id) {
                token.revoked = true;
            }
            Ok(())
        });
        self.revocations.tell(RevocationEvent::Grant(grant_id.to_owned()));
        revoked
    }
}

impl AuthStore for MemoryStore {
    fn put_client(&self, client: ClientRecord) -> StoreResult<'_, ()> {
        self.run(|t| {
            if t.clients.contains_key(&client.client_id) {
                return Err(StoreError::Duplicate("client_id"));
            }
            t.clients.insert(client.client_id.clone(), client);
            Ok(())
        })
    }

    fn client<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<ClientRecord>> {
        self.run(|t| Ok(t.clients.get(client_id).filter(|c| c.expires_at.is_none_or(|e| e > now)).cloned()))
    }

    fn put_code(&self, code: CodeRecord) -> StoreResult<'_, ()> {
        self.run(|t| {
            t.codes.insert(code.code_hash.clone(), Counted::new(code));
            Ok(())
        })
    }

    fn use_code<'a>(
        &'a self,
        code_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        self.run(|t| {
            Ok(t.codes.get_mut(code_hash).filter(|c| c.record.expires_at > now).map(|c| c.use_once(now)))
        })
    }

    fn code<'a>(&'a self, code_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<Used<CodeRecord>>> {
        self.run(|t| Ok(t.codes.get(code_hash).filter(|c| c.record.expires_at > now).map(Counted::peek)))
    }

    fn put_grant(&self, grant: GrantRecord) -> StoreResult<'_, ()> {
        let revoked = grant.revoked.then(|| grant.grant_id.clone());
        let stored = self.run(|t| {
            t.grants.insert(grant.grant_id.clone(), grant);
            Ok(())
        });
        if let Some(grant_id) = revoked {
            self.revocations.tell(RevocationEvent::Grant(grant_id));
        }
        stored
    }

    fn grant<'a>(&'a self, grant_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<GrantRecord>> {
        self.run(|t| Ok(t.grants.get(grant_id).filter(|g| g.expires_at > now).cloned()))
    }

    fn grants_of<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Vec<GrantRecord>> {
        self.run(|t| {
            Ok(t.grants
                .values()
                .filter(|g| g.subject == subject && g.client_id == client_id && g.expires_at > now)
                .cloned()
                .collect())
        })
    }

    fn client_has_grants<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, bool> {
        self.run(|t| Ok(t.grants.values().any(|g| g.client_id == client_id && g.expires_at > now)))
    }

    fn set_upstream_token<'a>(&'a self, grant_id: &'a str, sealed: &'a str) -> StoreResult<'a, ()> {
        self.run(|t| {
            if let Some(grant) = t.grants.get_mut(grant_id) {
                grant.upstream_token = Some(sealed.to_owned());
            }
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
        self.run(|t| {
            t.refresh_tokens.insert(token.token_hash.clone(), Counted::new(token));
            Ok(())
        })
    }

    fn refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        self.run(|t| {
            Ok(t.refresh_tokens.get(token_hash).filter(|r| r.record.expires_at > now).map(Counted::peek))
        })
    }

    fn use_refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>> {
        self.run(|t| {
            Ok(t.refresh_tokens
                .get_mut(token_hash)
                .filter(|r| r.record.expires_at > now)
                .map(|r| r.use_once(now)))
        })
    }

    fn put_successor_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, Succession> {
        self.run(|t| {
            let Some(parent) = token.rotated_from.clone() else {
                t.refresh_tokens.insert(token.token_hash.clone(), Counted::new(token));
                return Ok(Succession::First);
            };
            let mut earlier: Vec<&mut Counted<RefreshTokenRecord>> = t
                .refresh_tokens
                .values_mut()
                .filter(|r| r.record.rotated_from.as_deref() == Some(parent.as_str()) && !r.record.superseded)
                .collect();
            if earlier.iter().any(|r| r.uses > 0) {
                return Ok(Succession::EarlierSuccessorUsed);
            }
            let succession = if earlier.is_empty() { Succession::First } else { Succession::Replaced };
            let mut revoke = Vec::new();
            for r in &mut earlier {
                r.record.superseded = true;
                revoke.extend(r.record.access_jti.clone());
            }
            for jti in &revoke {
                if let Some(access) = t.access_tokens.get_mut(jti) {
                    access.revoked = true;
                }
            }
            for jti in revoke {
                self.revocations.tell(RevocationEvent::AccessToken(jti));
            }
            t.refresh_tokens.insert(token.token_hash.clone(), Counted::new(token));
            Ok(succession)
        })
    }

    fn put_access_token(&self, token: AccessTokenRecord) -> StoreResult<'_, ()> {
        let revoked = token.revoked.then(|| token.jti.clone());
        let stored = self.run(|t| {
            t.access_tokens.insert(token.jti.clone(), token);
            Ok(())
        });
        if let Some(jti) = revoked {
            self.revocations.tell(RevocationEvent::AccessToken(jti));
        }
        stored
    }

    fn access_token<'a>(&'a self, jti: &'a str, now: UnixTime) -> StoreResult<'a, Option<AccessTokenRecord>> {
        self.run(|t| Ok(t.access_tokens.get(jti).filter(|a| a.expires_at > now).cloned()))
    }

    fn revoke_access_token<'a>(&'a self, jti: &'a str) -> StoreResult<'a, ()> {
        let revoked = self.run(|t| {
            if let Some(token) = t.access_tokens.get_mut(jti) {
                token.revoked = true;
            }
            Ok(())
        });
        self.revocations.tell(RevocationEvent::AccessToken(jti.to_owned()));
        revoked
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreResult<'_, ()> {
        self.run(|t| {
            let key = (
                consent.subject.clone(),
                consent.client_id.clone(),
                consent.redirect_uri.clone(),
                consent.browser_hash.clone(),
            );
            t.consents.insert(key, consent);
            Ok(())
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
        self.run(|t| {
            let key =
                (subject.to_owned(), client_id.to_owned(), redirect_uri.to_owned(), browser_hash.to_owned());
            Ok(t.consents.get(&key).filter(|c| c.expires_at > now).cloned())
        })
    }

    fn put_session(&self, session: LoginSession) -> StoreResult<'_, ()> {
        self.run(|t| {
            t.sessions.insert(session.session_hash.clone(), session);
            Ok(())
        })
    }

    fn session<'a>(&'a self, session_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<LoginSession>> {
        self.run(|t| Ok(t.sessions.get(session_hash).filter(|s| s.expires_at > now).cloned()))
    }

    fn put_pending(&self, pending: PendingAuthorization) -> StoreResult<'_, ()> {
        self.run(|t| {
            t.pending.insert(pending.txn_hash.clone(), pending);
            Ok(())
        })
    }

    fn pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        self.run(|t| Ok(t.pending.get(txn_hash).filter(|p| p.expires_at > now).cloned()))
    }

    fn take_pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>> {
        self.run(|t| Ok(t.pending.remove(txn_hash).filter(|p| p.expires_at > now)))
    }

    fn signing_keys(&self) -> StoreResult<'_, Vec<StoredSigningKey>> {
        self.run(|t| Ok(t.keys.clone()))
    }

    fn put_signing_key(&self, key: StoredSigningKey) -> StoreResult<'_, ()> {
        self.run(|t| {
            t.keys.retain(|k| k.kid != key.kid);
            t.keys.push(key);
            Ok(())
        })
    }

    fn revocation_feed(&self) -> Option<RevocationFeed> {
        Some(self.revocations.feed())
    }

    fn purge_expired(&self, now: UnixTime) -> StoreResult<'_, u64> {
        self.run(|t| {
            let before = t.len();
            t.clients.retain(|_, c| c.expires_at.is_none_or(|e| e > now));
            t.codes.retain(|_, c| c.record.expires_at > now);
            t.grants.retain(|_, g| g.expires_at > now);
            t.refresh_tokens.retain(|_, r| r.record.expires_at > now);
            t.access_tokens.retain(|_, a| a.expires_at > now);
            t.consents.retain(|_, c| c.expires_at > now);
            t.sessions.retain(|_, s| s.expires_at > now);
            t.pending.retain(|_, p| p.expires_at > now);
            t.keys.retain(|k| k.retire_at.is_none_or(|r| r > now));
            Ok((before - t.len()) as u64)
        })
    }
}

impl Tables {
    fn len(&self) -> usize {
        self.clients.len()
            + self.codes.len()
            + self.grants.len()
            + self.refresh_tokens.len()
            + self.access_tokens.len()
            + self.consents.len()
            + self.sessions.len()
            + self.pending.len()
            + self.keys.len()
    }
}
