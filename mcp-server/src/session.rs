//! Legacy-era session state: what `initialize` negotiated, the session-wide
//! log level, resource subscriptions, in-flight requests (for
//! `notifications/cancelled`) and server→client requests awaiting an answer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mcp_core::ProtocolVersion;
use mcp_core::jsonrpc::{ErrorObject, RequestId};
use mcp_core::types::{ClientCapabilities, Implementation, LoggingLevel};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// What `initialize` settled.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    pub(crate) version: ProtocolVersion,
    pub(crate) client_capabilities: Arc<ClientCapabilities>,
    pub(crate) client_info: Arc<Implementation>,
}

type PendingReply = oneshot::Sender<Result<Value, ErrorObject>>;

/// A change of a session's settings made by a client request, for a
/// transport that keeps copies of the session on several servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SettingChange {
    /// `logging/setLevel`.
    LogLevel(LoggingLevel),
    /// `resources/subscribe` (`true`) or `resources/unsubscribe` (`false`).
    Subscription(String, bool),
}

/// Told each [`SettingChange`] a request makes.
pub(crate) type SettingsObserver = Arc<dyn Fn(&SettingChange) + Send + Sync>;

/// One legacy session (a stdio process, or one `Mcp-Session-Id`).
#[derive(Debug, Default)]
pub(crate) struct Session {
    negotiated: OnceLock<Negotiated>,
    initialized: AtomicBool,
    /// `NO_LEVEL` until `logging/setLevel`; then the index of the level.
    log_level: AtomicU8,
    subscriptions: Mutex<HashSet<String>>,
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    pending: Mutex<HashMap<RequestId, PendingReply>>,
    next_request_id: AtomicI64,
    observer: OnceLock<Observer>,
}

struct Observer(SettingsObserver);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

const NO_LEVEL: u8 = u8::MAX;

/// Most resources one session may subscribe to.
const MAX_SUBSCRIPTIONS: usize = 1_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked mid-update of a plain
    // collection; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    pub(crate) fn new() -> Self {
        Self { log_level: AtomicU8::new(NO_LEVEL), ..Self::default() }
    }

    /// Records the outcome of `initialize`; `false` if the session was already initialized.
    pub(crate) fn negotiate(&self, negotiated: Negotiated) -> bool {
        self.negotiated.set(negotiated).is_ok()
    }

    pub(crate) fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.get()
    }

    pub(crate) fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
    }

    pub(crate) fn set_log_level(&self, level: LoggingLevel) {
        self.apply(&SettingChange::LogLevel(level));
        self.tell(&SettingChange::LogLevel(level));
    }

    /// Has `observer` told each setting a request changes from now on.
    pub(crate) fn observe_settings(&self, observer: SettingsObserver) {
        let _ = self.observer.set(Observer(observer));
    }

    fn tell(&self, change: &SettingChange) {
        if let Some(Observer(observer)) = self.observer.get() {
            observer(change);
        }
    }

    /// Applies a setting changed elsewhere (another copy of this session),
    /// without telling the observer.
    pub(crate) fn apply(&self, change: &SettingChange) {
        match change {
            SettingChange::LogLevel(level) => self.log_level.store(*level as u8, Ordering::Relaxed),
            SettingChange::Subscription(uri, true) => {
                lock(&self.subscriptions).insert(uri.clone());
            }
            SettingChange::Subscription(uri, false) => {
                lock(&self.subscriptions).remove(uri);
            }
        }
    }

    /// The level set with `logging/setLevel`, if any.
    pub(crate) fn log_level(&self) -> Option<LoggingLevel> {
        let index = self.log_level.load(Ordering::Relaxed);
        LoggingLevel::ALL.get(usize::from(index)).copied()
    }

    /// The resources subscribed to.
    pub(crate) fn subscriptions(&self) -> Vec<String> {
        lock(&self.subscriptions).iter().cloned().collect()
    }

    /// Numbers this session's requests to the client from `first` on, so
    /// that copies of one session on several servers never reuse an id.
    pub(crate) fn number_requests_from(&self, first: i64) {
        self.next_request_id.store(first, Ordering::Relaxed);
    }

    /// Whether a message at `level` should reach the client.
    pub(crate) fn wants_log(&self, level: LoggingLevel) -> bool {
        match self.log_level.load(Ordering::Relaxed) {
            NO_LEVEL => true,
            min => level as u8 >= min,
        }
    }

    /// Subscribes to a resource; `false` when the session holds too many
    /// subscriptions already.
    pub(crate) fn subscribe(&self, uri: String) -> bool {
        let mut subscriptions = lock(&self.subscriptions);
        if subscriptions.len() >= MAX_SUBSCRIPTIONS && !subscriptions.contains(&uri) {
            return false;
        }
        let added = subscriptions.insert(uri.clone());
        drop(subscriptions);
        if added {
            self.tell(&SettingChange::Subscription(uri, true));
        }
        true
    }

    pub(crate) fn unsubscribe(&self, uri: &str) {
        if lock(&self.subscriptions).remove(uri) {
            self.tell(&SettingChange::Subscription(uri.to_owned(), false));
        }
    }

    pub(crate) fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    /// Registers an incoming request so `notifications/cancelled` can reach
    /// it; `None` when a request with this id is still running (ids must be
    /// unique among outstanding requests).
    pub(crate) fn begin_request(&self, id: RequestId) -> Option<CancellationToken> {
        let mut in_flight = lock(&self.in_flight);
        if in_flight.contains_key(&id) {
            return None;
        }
        let token = CancellationToken::new();
        in_flight.insert(id, token.clone());
        Some(token)
    }

    pub(crate) fn end_request(&self, id: &RequestId) {
        lock(&self.in_flight).remove(id);
    }

    /// Cancels an in-flight request; unknown ids are ignored, as the spec allows.
    pub(crate) fn cancel_request(&self, id: &RequestId) {
        if let Some(token) = lock(&self.in_flight).remove(id) {
            token.cancel();
        }
    }

    /// Cancels everything in flight (the connection is gone).
    pub(crate) fn cancel_all(&self) {
        for (_, token) in lock(&self.in_flight).drain() {
            token.cancel();
        }
        lock(&self.pending).clear();
    }

    /// Allocates an id for a server→client request and a slot for its answer.
    pub(crate) fn register_outgoing(&self) -> (RequestId, oneshot::Receiver<Result<Value, ErrorObject>>) {
        let id = RequestId::Number(self.next_request_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        (id, rx)
    }

    pub(crate) fn forget_outgoing(&self, id: &RequestId) {
        lock(&self.pending).remove(id);
    }

    /// Delivers the client's answer to a server→client request. Returns
    /// `false` when no request with that id is waiting.
    pub(crate) fn complete_outgoing(&self, id: &RequestId, answer: Result<Value, ErrorObject>) -> bool {
        match lock(&self.pending).remove(id) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_filters_after_set_level() {
        let s = Session::new();
        assert!(s.wants_log(LoggingLevel::Debug));
        s.set_log_level(LoggingLevel::Warning);
        assert!(!s.wants_log(LoggingLevel::Info));
        assert!(s.wants_log(LoggingLevel::Error));
    }

    #[test]
    fn cancel_reaches_only_the_named_request() {
        let s = Session::new();
        let a = s.begin_request(RequestId::Number(1)).unwrap();
        let b = s.begin_request(RequestId::Number(2)).unwrap();
        assert!(s.begin_request(RequestId::Number(2)).is_none(), "duplicate in-flight id");
        s.cancel_request(&RequestId::Number(1));
        s.cancel_request(&RequestId::String("unknown".into()));
        assert!(a.is_cancelled());
        assert!(!b.is_cancelled());
    }
}
