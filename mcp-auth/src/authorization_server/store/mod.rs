//! Storage of the authorization server: registered clients, authorization
//! codes, grants, refresh tokens, issued access tokens, consents, pending
//! authorization requests and signing keys.
//!
//! Every code, token, secret and browser transaction is stored only as its
//! SHA-256 (the `*_hash` fields); the plain value exists only in the
//! response that hands it out. Signing keys are the exception: a private key
//! cannot be hashed, so the store must be protected like a key file.
//!
//! The trait is object-safe (boxed futures) so `Arc<dyn AuthStore>` can be a
//! [`MemoryStore`], a [`SqliteStore`], or a database shared by several
//! instances (`PostgresStore`, with the `postgres` feature).

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;
pub use super::error::StoreError;
use crate::layer::BoxFuture;

/// What a store call returns.
pub type StoreResult<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Seconds since the Unix epoch, as records keep time.
pub type UnixTime = u64;

pub(crate) fn unix_now(time: SystemTime) -> UnixTime {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenEndpointAuthMethod {
    /// A public client: no secret, PKCE only.
    None,
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl TokenEndpointAuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A registered client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientRecord {
    /// The client identifier.
    pub client_id: String,
    /// SHA-256 of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    /// When the secret expires (`None`: never).
    pub secret_expires_at: Option<UnixTime>,
    /// How it authenticates at the token endpoint.
    pub auth_method: TokenEndpointAuthMethod,
    /// Registered redirect URIs, compared exactly (plus the loopback port rule).
    pub redirect_uris: Vec<String>,
    /// `native` or `web` (OpenID Connect Registration §2).
    pub application_type: String,
    /// Display name for the consent page.
    pub client_name: Option<String>,
    /// Scopes the client may ask for (space-separated), if limited.
    pub scope: Option<String>,
    /// Grant types it registered.
    pub grant_types: Vec<String>,
    /// When it was registered.
    pub issued_at: UnixTime,
    /// When the registration lapses (`None`: never).
    pub expires_at: Option<UnixTime>,
}

/// An issued authorization code (RFC 6749 §4.1.2), bound to everything the
/// token request must repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The grant it belongs to; replaying the code revokes it.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI used at `/authorize`.
    pub redirect_uri: String,
    /// Whether the client named it (then the token request must repeat it,
    /// RFC 6749 §4.1.3).
    #[serde(default)]
    pub redirect_uri_explicit: bool,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// When it expires (at most 10 minutes after issue).
    pub expires_at: UnixTime,
}

/// What the user approved for a client: the root of every token issued from
/// one authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GrantRecord {
    /// Random identifier.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The user (`sub`).
    pub subject: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience) the tokens are for.
    pub resource: String,
    /// The registered redirect URI it was approved for (a re-authorization
    /// for the same user, client and redirect URI revokes it).
    #[serde(default)]
    pub redirect_uri: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it lapses (the refresh-token lifetime).
    pub expires_at: UnixTime,
    /// Revoked grants issue nothing and their tokens are refused.
    pub revoked: bool,
    /// Profile claims of the user from an upstream login (such as
    /// `preferred_username`), copied into every access token.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
    /// The upstream provider's access token, sealed (AES-256-GCM, bound to
    /// this grant) under the sealing key, which is not in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_token: Option<String>,
}

/// An issued refresh token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// The grant.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The scope it carries (never wider than the grant's).
    pub scope: String,
    /// When it expires.
    pub expires_at: UnixTime,
    /// SHA-256 of the refresh token this one replaced by rotation (`None`
    /// for the first one of a grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// The `jti` of the access token issued with it: revoked with it when
    /// it is superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_jti: Option<String>,
    /// Set when a retry of the token it replaced (in the grace window)
    /// got a new successor instead of this one: presenting it afterwards
    /// means two parties hold the family.
    #[serde(default)]
    pub superseded: bool,
}

/// What [`AuthStore::put_successor_refresh_token`] found: a rotated refresh
/// token keeps at most one live successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Succession {
    /// The token had no successor yet; the new one is stored.
    First,
    /// An unused earlier successor was marked superseded and the access
    /// token issued with it revoked; the new one is stored.
    Replaced,
    /// An earlier successor had already been used: the family has forked.
    /// Nothing is stored; the caller revokes the grant.
    EarlierSuccessorUsed,
}

/// An issued access token, remembered so it can be revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenRecord {
    /// The JWT `jti`.
    pub jti: String,
    /// The grant.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// When it expires.
    pub expires_at: UnixTime,
    /// Set by revocation.
    pub revoked: bool,
}

/// A remembered approval, per (user, client, redirect URI, browser).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConsentRecord {
    /// The user.
    pub subject: String,
    /// The client.
    pub client_id: String,
    /// The redirect URI it was given for.
    pub redirect_uri: String,
    /// SHA-256 of the browser cookie of the browser that gave it: the
    /// approval is remembered for that browser only.
    #[serde(default)]
    pub browser_hash: String,
    /// Approved scopes, space-separated.
    pub scope: String,
    /// When it lapses.
    pub expires_at: UnixTime,
}

/// An authorization request between `/authorize` and the user's decision,
/// bound to one browser by a cookie holding the transaction secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// SHA-256 of the browser cookie and the page's CSRF token (one per open page).
    pub txn_hash: String,
    /// SHA-256 of the CSRF token in the page's forms.
    pub csrf_hash: String,
    /// The client.
    pub client_id: String,
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// Whether the client named it in the request.
    #[serde(default)]
    pub redirect_uri_explicit: bool,
    /// The client's `state`, echoed back.
    pub state: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// Requested scopes, space-separated.
    pub scope: String,
    /// The resource.
    pub resource: String,
    /// The user, once logged in.
    pub subject: Option<String>,
    /// When the transaction lapses.
    pub expires_at: UnixTime,
    /// Set while the user logs in at an upstream provider: this
    /// transaction is then keyed by the upstream `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamLeg>,
}

/// The part of a transaction out at an upstream provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpstreamLeg {
    /// SHA-256 of the transaction cookie of the browser that approved:
    /// the callback must come from the same browser.
    pub browser_hash: String,
}

/// A login session: the user signed in in one browser, recently. It spares
/// a second password prompt, never the consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoginSession {
    /// SHA-256 of the session cookie's value.
    pub session_hash: String,
    /// The user.
    pub subject: String,
    /// When the user logged in.
    pub created_at: UnixTime,
    /// When the session lapses (absolute, never extended).
    pub expires_at: UnixTime,
}

/// A signing key, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredSigningKey {
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// The private key, PKCS#8 DER.
    pub pkcs8: Vec<u8>,
    /// When it was made; the newest key signs.
    pub created_at: UnixTime,
    /// When it stops being published (`None`: current key).
    pub retire_at: Option<UnixTime>,
    /// When it starts signing (`None`: at once). A rotated-in key is
    /// published first, so that every instance sharing the store serves it
    /// before any instance signs with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signs_from: Option<UnixTime>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retire_at", &self.retire_at)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

/// A record fetched by a single-use operation, with how often it had been
/// used before this call (0 the first time). The count is incremented
/// atomically, so two concurrent uses never both see 0.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Used<T> {
    /// The record.
    pub record: T,
    /// Uses before this one.
    pub previous_uses: u32,
    /// When it was first used (`None` when this is the first use).
    pub first_used_at: Option<UnixTime>,
}

/// A change another instance made that a cache of revocation checks must
/// hear of (see [`AuthStore::revocation_feed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationEvent {
    /// The access token with this `jti` changed (revoked, replaced or deleted).
    AccessToken(String),
    /// The grant with this id changed (revoked, replaced or deleted).
    Grant(String),
    /// The feed is (again) connected: events may have been missed before,
    /// so anything cached must go; caching may start.
    Connected,
    /// The feed lost its connection: events may be missed until
    /// [`Connected`](Self::Connected), so nothing may be cached meanwhile.
    Disconnected,
}

/// The revocation feed of a store only one process writes (memory, SQLite):
/// always connected, its events sent by the store itself as it revokes, so
/// this process's revocation checks may be cached.
#[derive(Debug, Clone)]
pub(crate) struct LocalRevocations {
    events: tokio::sync::broadcast::Sender<RevocationEvent>,
    connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Default for LocalRevocations {
    fn default() -> Self {
        Self {
            events: tokio::sync::broadcast::Sender::new(1024),
            connected: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

impl LocalRevocations {
    /// A new subscription.
    pub(crate) fn feed(&self) -> RevocationFeed {
        RevocationFeed::new(self.events.subscribe(), self.connected.clone())
    }

    /// Tells subscribers that `event` happened (nobody listening is fine).
    pub(crate) fn tell(&self, event: RevocationEvent) {
        let _ = self.events.send(event);
    }
}

/// A subscription to a store's revocation events.
#[derive(Debug)]
#[non_exhaustive]
pub struct RevocationFeed {
    /// The events from the moment of subscription on.
    pub events: tokio::sync::broadcast::Receiver<RevocationEvent>,
    connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RevocationFeed {
    /// A subscription whose source sets `connected` before it sends
    /// [`RevocationEvent::Connected`] and clears it before it sends
    /// [`RevocationEvent::Disconnected`].
    pub fn new(
        events: tokio::sync::broadcast::Receiver<RevocationEvent>,
        connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        Self { events, connected }
    }

    /// Whether the source is connected now: read when subscribing (its
    /// `Connected` may have been sent before) and after missing events.
    pub fn is_connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The key of a remembered approval in the SQL stores: unambiguous whatever
/// the parts contain.
pub(crate) fn consent_key(
    subject: &str,
    client_id: &str,
    redirect_uri: &str,
    browser_hash: &str,
) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&[subject, client_id, redirect_uri, browser_hash])?)
}

/// Storage for the authorization server. Implementations must make
/// [`use_code`](Self::use_code), [`use_refresh_token`](Self::use_refresh_token)
/// and [`put_successor_refresh_token`](Self::put_successor_refresh_token)
/// atomic and must not return expired records.
pub trait AuthStore: Send + Sync + std::fmt::Debug + 'static {
    /// Registers a client (fails with [`StoreError::Duplicate`] if the id exists).
    fn put_client(&self, client: ClientRecord) -> StoreResult<'_, ()>;
    /// A registered, unexpired client.
    fn client<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<ClientRecord>>;

    /// Stores an authorization code.
    fn put_code(&self, code: CodeRecord) -> StoreResult<'_, ()>;
    /// Uses a code: returns it with its previous use count, and counts this use.
    fn use_code<'a>(&'a self, code_hash: &'a str, now: UnixTime)
    -> StoreResult<'a, Option<Used<CodeRecord>>>;
    /// A code with its use count, without using it: the token request is
    /// checked (client, redirect URI, PKCE) before the code is spent.
    fn code<'a>(&'a self, code_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<Used<CodeRecord>>>;

    /// Stores a grant (or replaces it).
    fn put_grant(&self, grant: GrantRecord) -> StoreResult<'_, ()>;
    /// A grant, revoked or not, unless expired.
    fn grant<'a>(&'a self, grant_id: &'a str, now: UnixTime) -> StoreResult<'a, Option<GrantRecord>>;
    /// Revokes a grant, every refresh token and every access token issued from
    /// it, and the approvals its user remembered for its client (so the next
    /// authorization shows the consent page again).
    fn revoke_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()>;
    /// Revokes a grant that a later authorization of the same user, client
    /// and redirect URI replaces: its refresh and access tokens go as with
    /// [`revoke_grant`](Self::revoke_grant), but the approvals the user
    /// remembered for the client stay, since the later authorization may
    /// have been made with one of them.
    ///
    /// The default is [`revoke_grant`](Self::revoke_grant), which forgets
    /// those approvals too (the consent page is shown again): stores of this
    /// crate keep them; a store of your own should too.
    fn supersede_grant<'a>(&'a self, grant_id: &'a str) -> StoreResult<'a, ()> {
        self.revoke_grant(grant_id)
    }
    /// Replaces the sealed upstream token of a grant (after an upstream
    /// refresh), changing nothing else: a concurrent revocation stays.
    fn set_upstream_token<'a>(&'a self, grant_id: &'a str, sealed: &'a str) -> StoreResult<'a, ()>;
    /// The unexpired grants of one user to one client (revoked ones too), so
    /// a re-authorization can revoke the earlier ones. The default finds
    /// none: a store without it keeps earlier grants alive.
    fn grants_of<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Vec<GrantRecord>> {
        let _ = (subject, client_id, now);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Whether any user has ever approved `client_id`: a grant of it exists
    /// (revoked or not) that has not expired.
    fn client_has_grants<'a>(&'a self, client_id: &'a str, now: UnixTime) -> StoreResult<'a, bool>;

    /// Stores a refresh token.
    fn put_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, ()>;
    /// A refresh token without using it (revocation, introspection).
    fn refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>>;
    /// Uses a refresh token: returns it with its previous use count, and counts this use.
    fn use_refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<Used<RefreshTokenRecord>>>;
    /// Stores the refresh token issued by rotating the one named by
    /// `token.rotated_from`, atomically, so that a rotated token has at most
    /// one live successor. An unused earlier successor (from the first use,
    /// when this is the grace-window retry) is marked `superseded` and the
    /// access token issued with it revoked; a used one means the family has
    /// forked ([`Succession::EarlierSuccessorUsed`], nothing stored).
    /// Without `rotated_from` it is [`put_refresh_token`](Self::put_refresh_token).
    fn put_successor_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<'_, Succession>;

    /// Remembers an issued access token.
    fn put_access_token(&self, token: AccessTokenRecord) -> StoreResult<'_, ()>;
    /// An issued access token, unless expired.
    fn access_token<'a>(&'a self, jti: &'a str, now: UnixTime) -> StoreResult<'a, Option<AccessTokenRecord>>;
    /// Revokes one access token.
    fn revoke_access_token<'a>(&'a self, jti: &'a str) -> StoreResult<'a, ()>;

    /// Remembers an approval.
    fn put_consent(&self, consent: ConsentRecord) -> StoreResult<'_, ()>;
    /// A remembered approval for exactly this user, client, redirect URI and
    /// browser (`browser_hash`).
    fn consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        redirect_uri: &'a str,
        browser_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<ConsentRecord>>;

    /// Stores a login session.
    fn put_session(&self, session: LoginSession) -> StoreResult<'_, ()>;
    /// A login session, unless expired.
    fn session<'a>(&'a self, session_hash: &'a str, now: UnixTime) -> StoreResult<'a, Option<LoginSession>>;

    /// Stores or replaces a pending authorization.
    fn put_pending(&self, pending: PendingAuthorization) -> StoreResult<'_, ()>;
    /// A pending authorization, unless expired.
    fn pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>>;
    /// Removes a pending authorization and returns it (single use).
    fn take_pending<'a>(
        &'a self,
        txn_hash: &'a str,
        now: UnixTime,
    ) -> StoreResult<'a, Option<PendingAuthorization>>;

    /// Every stored signing key.
    fn signing_keys(&self) -> StoreResult<'_, Vec<StoredSigningKey>>;
    /// Stores or replaces a signing key (by `kid`).
    fn put_signing_key(&self, key: StoredSigningKey) -> StoreResult<'_, ()>;

    /// Deletes every expired record; returns how many.
    fn purge_expired(&self, now: UnixTime) -> StoreResult<'_, u64>;

    /// Changes to access tokens and grants made by any instance sharing
    /// this store, so that revocation checks may be cached. `None` (the
    /// default): no feed, so every check reads the store. The memory and
    /// SQLite stores, written by one process, tell of their own
    /// revocations; the PostgreSQL store relays the database's
    /// notifications of every instance's.
    fn revocation_feed(&self) -> Option<RevocationFeed> {
        None
    }
}
