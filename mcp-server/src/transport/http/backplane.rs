//! What the servers behind one load balancer share about legacy sessions, so
//! that any of them serves any request of any session.
//!
//! - A **session record** ([`SessionRecord`]), written when `initialize`
//!   succeeds: a server that gets a request for a session it does not hold
//!   makes a local copy from it (what was negotiated, who opened it, its
//!   settings).
//! - **Events of streams**, appended as they are written, so a `GET` +
//!   `Last-Event-ID` on any server resumes a stream another server wrote,
//!   and follows it while it is still being written.
//! - **Notes** ([`Note`]) from one server to the others: a client's answer
//!   to a server request that is waiting elsewhere, a cancellation, a
//!   setting, the session's end, a server change for the standalone streams.
//!
//! [`Backplane`] is the interface; the Redis one lives in `redis_backplane`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use mcp_core::identity::SubjectKind;
use mcp_core::jsonrpc::{Message, RequestId};
use mcp_core::types::{ClientCapabilities, Implementation, LoggingLevel};
use mcp_core::{Identity, ProtocolVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::event_store::StoredEvent;
use crate::BoxFuture;
use crate::server::Change;
use crate::session::{Negotiated, SettingChange};

/// Why the shared state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("shared session state unavailable: {0}")]
pub(crate) struct BackplaneError(pub(crate) String);

/// A session as the other servers see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    /// The negotiated protocol version.
    pub(crate) version: String,
    pub(crate) capabilities: ClientCapabilities,
    pub(crate) client_info: Implementation,
    /// Who opened it; `None` when auth is off.
    pub(crate) owner: Option<Owner>,
    /// The number of its standalone (`GET`) stream.
    pub(crate) standalone: u64,
    pub(crate) log_level: Option<LoggingLevel>,
    #[serde(default)]
    pub(crate) subscriptions: Vec<String>,
}

/// The principal who opened a session: all a copy needs to answer only them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub(crate) issuer: Option<String>,
    /// `true` when the subject is an OAuth client acting for itself.
    pub(crate) client: bool,
    pub(crate) subject: String,
}

impl Owner {
    pub(crate) fn of(identity: &Identity) -> Self {
        Self {
            issuer: identity.issuer.clone(),
            client: identity.subject_kind == SubjectKind::Client,
            subject: identity.subject.clone(),
        }
    }

    /// An identity of the same principal, with nothing else.
    pub(crate) fn identity(&self) -> Identity {
        let mut identity = Identity::new(self.subject.clone());
        identity.issuer = self.issuer.clone();
        if self.client {
            identity.subject_kind = SubjectKind::Client;
        }
        identity
    }
}

impl SessionRecord {
    /// What `negotiated` settled, for a copy to negotiate the same.
    pub(crate) fn negotiated(&self) -> Option<Negotiated> {
        Some(Negotiated {
            version: self.version.parse::<ProtocolVersion>().ok()?,
            client_capabilities: Arc::new(self.capabilities.clone()),
            client_info: Arc::new(self.client_info.clone()),
        })
    }
}

/// A server change, as it travels between servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "list", rename_all = "snake_case")]
pub(crate) enum SharedChange {
    Tools,
    Prompts,
    Resources,
    ResourceUpdated { uri: String },
}

impl From<&Change> for SharedChange {
    fn from(change: &Change) -> Self {
        match change {
            Change::Tools => Self::Tools,
            Change::Prompts => Self::Prompts,
            Change::Resources => Self::Resources,
            Change::ResourceUpdated(uri) => Self::ResourceUpdated { uri: uri.clone() },
        }
    }
}

impl From<SharedChange> for Change {
    fn from(change: SharedChange) -> Self {
        match change {
            SharedChange::Tools => Self::Tools,
            SharedChange::Prompts => Self::Prompts,
            SharedChange::Resources => Self::Resources,
            SharedChange::ResourceUpdated { uri } => Self::ResourceUpdated(uri),
        }
    }
}

/// What one server tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub(crate) enum Note {
    /// The client ended the session (`DELETE`).
    Ended { session: String },
    /// The client's answer to a server request, for the server waiting for it.
    Answer { session: String, message: Message },
    /// `notifications/cancelled` for a request running on some server.
    Cancel { session: String, request: RequestId },
    /// A request changed a setting of the session.
    Setting { session: String, change: SharedSetting },
    /// A client's `GET` took the session's standalone stream at `at`
    /// (milliseconds since the Unix epoch): any other server's connection
    /// carrying it since before then closes.
    Attached { session: String, at: u64 },
    /// A server change, for every standalone stream.
    Change { change: SharedChange },
    /// Events were appended to one stream of the session.
    Written { session: String, stream: u64 },
    /// A message POSTed for an HTTP+SSE session to a server other than the
    /// one holding its stream, with the scopes and client of the caller's
    /// token (the caller is the session's owner: checked where it was POSTed).
    Posted { session: String, message: Message, caller: Option<Caller> },
    /// Never sent: told to this server's listeners when notes may have been
    /// lost (the subscription was down), so they read again what they follow.
    #[serde(skip)]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Missed,
}

/// What a message's own token says beyond the principal, for the server
/// that runs the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Caller {
    pub(crate) scopes: Vec<String>,
    pub(crate) client_id: Option<String>,
    /// The token's claims: the handler sees the same ones whichever server
    /// took the POST. Carried in the note only, never stored.
    #[serde(default)]
    pub(crate) claims: serde_json::Map<String, serde_json::Value>,
}

impl Caller {
    pub(crate) fn of(identity: &Identity) -> Self {
        Self {
            scopes: identity.scopes.clone(),
            client_id: identity.client_id.clone(),
            claims: identity.claims.clone(),
        }
    }

    /// The caller's identity: `owner`'s principal (the identity that opened
    /// the session, which the caller was checked to share) with this
    /// caller's scopes, client and claims.
    pub(crate) fn applied_to(&self, owner: &Identity) -> Identity {
        let mut identity = owner.clone();
        identity.scopes.clone_from(&self.scopes);
        identity.client_id.clone_from(&self.client_id);
        identity.claims.clone_from(&self.claims);
        identity
    }
}

/// A [`SettingChange`] as it travels between servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub(crate) enum SharedSetting {
    LogLevel { level: LoggingLevel },
    Subscription { uri: String, on: bool },
}

impl From<&SettingChange> for SharedSetting {
    fn from(change: &SettingChange) -> Self {
        match change {
            SettingChange::LogLevel(level) => Self::LogLevel { level: *level },
            SettingChange::Subscription(uri, on) => Self::Subscription { uri: uri.clone(), on: *on },
        }
    }
}

impl From<SharedSetting> for SettingChange {
    fn from(change: SharedSetting) -> Self {
        match change {
            SharedSetting::LogLevel { level } => Self::LogLevel(level),
            SharedSetting::Subscription { uri, on } => Self::Subscription(uri, on),
        }
    }
}

/// The stored events of a stream, as another server reads them.
#[derive(Debug, Default)]
pub(crate) struct SharedEvents {
    /// The events after the one asked for, oldest first.
    pub(crate) events: Vec<StoredEvent>,
    /// Whether the stream is complete: nothing more will be written.
    pub(crate) complete: bool,
}

/// The state several servers share about their legacy sessions.
///
/// Writes that the request path must not wait for ([`keep`](Self::keep),
/// [`append`](Self::append), [`complete`](Self::complete),
/// [`tell`](Self::tell)) are queued and sent in order by a task of the
/// implementation; reads are awaited.
pub(crate) trait Backplane: Send + Sync + fmt::Debug {
    /// Starts the tasks that send queued writes and receive the other
    /// servers' notes, unless they run already. Inside the runtime.
    fn start(&self);

    /// The other servers' notes, as they arrive.
    fn notes(&self) -> broadcast::Receiver<Arc<Note>>;

    /// Stores a new session's record (a serialized [`SessionRecord`], or for
    /// HTTP+SSE sessions an [`Owner`]).
    fn save(&self, session: &str, record: Vec<u8>) -> BoxFuture<'static, Result<(), BackplaneError>>;

    /// The record of a session, `None` when no server holds it (never
    /// opened, ended, or expired).
    fn load(&self, session: &str) -> BoxFuture<'static, Result<Option<Vec<u8>>, BackplaneError>>;

    /// The session is in use: its record, its standalone stream's events
    /// and the list of its streams live another idle timeout.
    fn keep(&self, session: &str, standalone: u64);

    /// Replaces the record of a session still stored (its settings changed).
    fn update(&self, session: &str, record: Vec<u8>);

    /// Forgets the session: its record and its events.
    fn forget(&self, session: &str);

    /// Tells the other servers.
    fn tell(&self, note: Note);

    /// Stores event `seq` of `stream`, and tells the others it was written.
    fn append(&self, session: &str, stream: u64, seq: u64, data: Bytes);

    /// Marks `stream` complete.
    fn complete(&self, session: &str, stream: u64);

    /// The stored events of `stream` after `after`; `None` when nothing of
    /// that stream is stored.
    fn events_after(
        &self,
        session: &str,
        stream: u64,
        after: u64,
    ) -> BoxFuture<'static, Result<Option<SharedEvents>, BackplaneError>>;
}
