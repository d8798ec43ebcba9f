//! Legacy sessions, by `Mcp-Session-Id`, and their lifecycle: an idle timeout,
//! a cap on how many are open in all and per principal, and a background
//! task that reaps idle ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_core::{Identity, ProtocolVersion};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::backplane::{Backplane, BackplaneError, Note, Owner, SessionRecord, SharedChange, SharedSetting};
use super::common::{OwnerCounts, is_session_id, new_session_id, same_principal};
use super::event_store::{EventStore, InMemoryEventStore, new_stream_id};
use crate::changes::ChangeFeed;
use crate::config::ResponseMode;
use crate::connection::Connection;
use crate::server::Server;
use crate::session::SettingChange;

/// How the Streamable HTTP transport runs legacy sessions and their streams.
///
/// Build one from [`HttpOptions::default`] with the setters and hand it to
/// [`StreamableHttp::with_options`](super::StreamableHttp::with_options):
///
/// ```
/// use std::time::Duration;
/// use mcp_server::Server;
/// use mcp_server::transport::http::{HttpOptions, StreamableHttp};
///
/// let options = HttpOptions::default()
///     .idle_timeout(Duration::from_secs(120))
///     .max_sessions(1_000)
///     .close_streams_after(Some(Duration::ZERO));
/// let endpoint = StreamableHttp::with_options(Server::new("demo", "1.0.0"), options);
/// assert_eq!(endpoint.session_count(), 0);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// A session with no request, stream or running handler for this long is
    /// ended; its id then gets 404. Ten minutes by default.
    pub idle_timeout: Duration,
    /// The most legacy sessions open at once; 10,000 by default. An
    /// `initialize` at the cap ends the least recently used idle session to
    /// make room, the caller's own first; when every session is busy it is
    /// refused with 503 and a JSON-RPC error.
    pub max_sessions: usize,
    /// The most legacy sessions one authenticated principal (issuer and
    /// subject) holds at once; 100 by default. Past it, the caller's own
    /// least recently used idle session makes room, never anyone else's;
    /// when all of them are busy, `initialize` gets 429 and a JSON-RPC
    /// error. Anonymous sessions are bounded by `max_sessions` alone.
    pub max_sessions_per_principal: usize,
    /// The `retry:` sent with the priming event of 2025-11-25 streams: how long
    /// a client waits before reconnecting. One second by default.
    pub retry_interval: Duration,
    /// How long a request of a 2025-11-25 session may run and still be
    /// answered with a single JSON body. Past it the answer becomes an SSE
    /// stream that opens with a priming event, so a client whose connection
    /// breaks can resume it. 50 ms by default.
    pub json_window: Duration,
    /// Polling (2025-11-25 sessions): close a request's SSE connection this
    /// long after it opened when the response has not been sent yet; the
    /// client reconnects with `GET` + `Last-Event-ID` after `retry_interval`
    /// and gets the rest. `Some(Duration::ZERO)` closes right after the
    /// priming event and whatever is already there. `None` (the default)
    /// keeps connections open until the response.
    pub close_streams_after: Option<Duration>,
    /// How often a silent SSE stream gets a `:` comment line, so proxies keep
    /// it open and a vanished client is noticed. 15 s by default; `None` for never.
    pub keep_alive: Option<Duration>,
    /// Largest accepted POST body, in bytes; larger ones get 413. 4 MiB by default.
    pub max_body_bytes: usize,
    /// JSON or SSE answers; by default JSON when the handler sends nothing first.
    pub response_mode: ResponseMode,
    /// Where events of legacy streams are kept for resumption. An
    /// [`InMemoryEventStore`] with its default bounds unless replaced.
    pub event_store: Arc<dyn EventStore>,
    /// Where sessions are shared with the other servers behind one load
    /// balancer, if anywhere: the Redis URL and key prefix.
    #[cfg(feature = "redis")]
    shared: Option<RedisAt>,
}

/// A Redis URL and key prefix. Its `Debug` shows the prefix only: the URL
/// may hold a password.
#[cfg(feature = "redis")]
#[derive(Clone)]
struct RedisAt {
    url: String,
    prefix: String,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAt").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A Redis URL that [`HttpOptions::redis`] could not take.
#[cfg(feature = "redis")]
#[derive(Debug, thiserror::Error)]
#[error("invalid redis url: {0}")]
pub struct InvalidRedisUrl(pub(super) String);

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_sessions: 10_000,
            max_sessions_per_principal: 100,
            retry_interval: Duration::from_secs(1),
            json_window: Duration::from_millis(50),
            close_streams_after: None,
            keep_alive: Some(Duration::from_secs(15)),
            max_body_bytes: super::MAX_BODY_BYTES,
            response_mode: ResponseMode::Auto,
            event_store: Arc::new(InMemoryEventStore::default()),
            #[cfg(feature = "redis")]
            shared: None,
        }
    }
}

impl HttpOptions {
    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`max_sessions`](Self::max_sessions) (at least 1).
    #[must_use]
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// Sets [`max_sessions_per_principal`](Self::max_sessions_per_principal) (at least 1).
    ///
    /// ```
    /// use mcp_server::transport::http::HttpOptions;
    ///
    /// let options = HttpOptions::default().max_sessions_per_principal(0);
    /// assert_eq!(options.max_sessions_per_principal, 1);
    /// ```
    #[must_use]
    pub fn max_sessions_per_principal(mut self, max: usize) -> Self {
        self.max_sessions_per_principal = max.max(1);
        self
    }

    /// Sets [`retry_interval`](Self::retry_interval).
    #[must_use]
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Sets [`json_window`](Self::json_window).
    #[must_use]
    pub fn json_window(mut self, window: Duration) -> Self {
        self.json_window = window;
        self
    }

    /// Sets [`close_streams_after`](Self::close_streams_after).
    #[must_use]
    pub fn close_streams_after(mut self, after: Option<Duration>) -> Self {
        self.close_streams_after = after;
        self
    }

    /// Sets [`keep_alive`](Self::keep_alive).
    #[must_use]
    pub fn keep_alive(mut self, every: Option<Duration>) -> Self {
        self.keep_alive = every;
        self
    }

    /// Sets [`response_mode`](Self::response_mode).
    #[must_use]
    pub fn response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }

    /// Sets [`max_body_bytes`](Self::max_body_bytes).
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit.max(1);
        self
    }

    /// Sets [`event_store`](Self::event_store).
    #[must_use]
    pub fn event_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.event_store = store;
        self
    }

    /// Shares legacy sessions with every server using the same Redis and
    /// `key_prefix`, so that any of them serves any request of any session,
    /// behind a load balancer without sticky routing.
    ///
    /// The server that gets a request for a session opened elsewhere reads
    /// the session's record from Redis and serves it from a local copy.
    /// Events of SSE streams are kept in Redis too, so a `GET` with
    /// `Last-Event-ID` resumes a stream on any server, following it while
    /// another server still writes it. Answers to server requests,
    /// cancellations, settings (`logging/setLevel`, resource subscriptions),
    /// the end of a session and the server's list changes reach the other
    /// servers over Redis pub/sub. Records and events expire one
    /// [`idle_timeout`](Self::idle_timeout) after their last use on any
    /// server. The session caps stay per server.
    ///
    /// Connects on first use; while Redis is unreachable, sessions a server
    /// holds go on working there, and requests for sessions it does not hold
    /// get 503.
    ///
    /// ```
    /// use mcp_server::transport::http::HttpOptions;
    ///
    /// let options = HttpOptions::default().redis("redis://:s3cret@127.0.0.1:6379/", "mcp").unwrap();
    /// assert!(!format!("{options:?}").contains("s3cret"));
    /// assert!(HttpOptions::default().redis("http://not-redis", "mcp").is_err());
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: &str, key_prefix: &str) -> Result<Self, InvalidRedisUrl> {
        redis::Client::open(url).map_err(|e| InvalidRedisUrl(e.to_string()))?;
        self.shared = Some(RedisAt { url: url.to_owned(), prefix: key_prefix.to_owned() });
        Ok(self)
    }

    /// The backplane [`redis`](Self::redis) asked for, if any.
    fn backplane(&self) -> Option<Arc<dyn Backplane>> {
        #[cfg(feature = "redis")]
        if let Some(RedisAt { url, prefix }) = &self.shared {
            match super::redis_backplane::RedisBackplane::new(url, prefix, self.idle_timeout) {
                Ok(backplane) => return Some(Arc::new(backplane)),
                Err(error) => tracing::error!(%error, "sessions are not shared"),
            }
        }
        None
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The largest session record shared with other servers: what the client
/// declared in `initialize` (capabilities, client info) beyond this is refused.
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Why a new session could not be shared.
#[derive(Debug)]
pub(super) enum ShareError {
    /// Its record is larger than [`MAX_RECORD_BYTES`].
    TooLarge,
    /// The shared state is out of reach.
    Unreachable(BackplaneError),
}

/// Milliseconds since the Unix epoch.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One open legacy session.
#[derive(Debug)]
pub(super) struct OpenSession {
    pub(super) id: Arc<str>,
    pub(super) connection: Connection,
    /// Fires when the session ends, closing its streams.
    pub(super) ended: CancellationToken,
    store: Arc<dyn EventStore>,
    /// Where the session is shared with other servers, if it is.
    shared: Option<Arc<dyn Backplane>>,
    /// Milliseconds since `epoch` when the shared record was last kept alive.
    kept: AtomicU64,
    /// How often the shared record is kept alive while in use.
    keep_every: u64,
    /// `false` once the session ended: nothing more is stored for it.
    storing: Mutex<bool>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last activity.
    last_active: AtomicU64,
    /// Requests running and streams open.
    busy: AtomicUsize,
    /// The session's standalone (GET) stream and its last sequence number.
    pub(super) standalone: u64,
    pub(super) standalone_seq: AtomicU64,
    /// The GET connection carrying the standalone stream now, if any.
    attached: Mutex<Option<CancellationToken>>,
    /// When (milliseconds since the Unix epoch) it was attached.
    attached_at: AtomicU64,
    /// Request streams still being written: the last sequence number written.
    live: Mutex<HashMap<u64, watch::Receiver<u64>>>,
}

impl OpenSession {
    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        let now = self.millis();
        self.last_active.store(now, Ordering::Relaxed);
        if let Some(shared) = &self.shared {
            let kept = self.kept.load(Ordering::Relaxed);
            if now.saturating_sub(kept) >= self.keep_every
                && self.kept.compare_exchange(kept, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                shared.keep(&self.id, self.standalone);
            }
        }
    }

    /// Where the session is shared with other servers, if it is.
    pub(super) fn shared(&self) -> Option<&Arc<dyn Backplane>> {
        self.shared.as_ref()
    }

    /// The session as the other servers see it.
    fn record(&self) -> Option<SessionRecord> {
        let negotiated = self.connection.session.negotiated()?;
        Some(SessionRecord {
            version: negotiated.version.as_str().to_owned(),
            capabilities: (*negotiated.client_capabilities).clone(),
            client_info: (*negotiated.client_info).clone(),
            owner: self.owner().map(Owner::of),
            standalone: self.standalone,
            log_level: self.connection.session.log_level(),
            subscriptions: self.connection.session.subscriptions(),
        })
    }

    /// Stores the shared record, for a session just opened.
    pub(super) async fn share(&self) -> Result<(), ShareError> {
        let (Some(shared), Some(record)) = (&self.shared, self.record()) else { return Ok(()) };
        let record = serde_json::to_vec(&record)
            .map_err(|e| ShareError::Unreachable(BackplaneError(e.to_string())))?;
        if record.len() > MAX_RECORD_BYTES {
            return Err(ShareError::TooLarge);
        }
        shared.save(&self.id, record).await.map_err(ShareError::Unreachable)
    }

    /// Applies another server's note about this session.
    fn hear(&self, note: &Note) {
        match note {
            Note::Answer { message, .. } => {
                self.connection.handle_answer(message.clone());
            }
            Note::Cancel { request, .. } => self.connection.session.cancel_request(request),
            Note::Setting { change, .. } => self.connection.session.apply(&change.clone().into()),
            Note::Attached { at, .. } => {
                // A note older than this server's own attach is stale.
                if *at >= self.attached_at.load(Ordering::Acquire)
                    && let Some(previous) = lock(&self.attached).take()
                {
                    previous.cancel();
                }
            }
            Note::Ended { .. }
            | Note::Change { .. }
            | Note::Written { .. }
            | Note::Posted { .. }
            | Note::Missed => {}
        }
    }

    /// Marks the session busy (not idle) until the guard drops.
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self.clone())
    }

    /// Who opened the session, if the caller was authenticated.
    pub(super) fn owner(&self) -> Option<&Identity> {
        self.connection.identity.as_deref()
    }

    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// The negotiated version, once `initialize` succeeded.
    pub(super) fn version(&self) -> Option<ProtocolVersion> {
        self.connection.session.negotiated().map(|n| n.version)
    }

    /// Whether streams of this session open with a priming event and may be
    /// closed before their end (2025-11-25 polling).
    pub(super) fn primes(&self) -> bool {
        self.version().is_some_and(|v| v >= ProtocolVersion::V2025_11_25)
    }

    pub(super) fn store(&self) -> &dyn EventStore {
        &*self.store
    }

    /// Stores an event, unless the session has ended.
    pub(super) fn append(&self, stream: u64, seq: u64, data: Bytes) {
        let storing = lock(&self.storing);
        if *storing {
            if let Some(shared) = &self.shared {
                shared.append(&self.id, stream, seq, data.clone());
            }
            self.store.append(&self.id, stream, seq, data);
        }
    }

    /// Registers a request stream that is being written.
    pub(super) fn open_request_stream(&self) -> (u64, watch::Sender<u64>) {
        let stream = new_stream_id(false);
        let (tx, rx) = watch::channel(0);
        lock(&self.live).insert(stream, rx);
        (stream, tx)
    }

    /// The request stream is complete: everything is in the store.
    pub(super) fn close_request_stream(&self, stream: u64) {
        lock(&self.live).remove(&stream);
        if let Some(shared) = &self.shared
            && *lock(&self.storing)
        {
            shared.complete(&self.id, stream);
        }
    }

    /// Follows a request stream still being written; `None` once it is complete.
    pub(super) fn follow(&self, stream: u64) -> Option<watch::Receiver<u64>> {
        lock(&self.live).get(&stream).cloned()
    }

    /// Makes the caller's connection the one carrying the standalone stream;
    /// the previous one, if any, is closed (a message goes on one stream only).
    pub(super) fn attach(&self) -> CancellationToken {
        let token = self.ended.child_token();
        if let Some(previous) = lock(&self.attached).replace(token.clone()) {
            previous.cancel();
        }
        let at = wall_clock_ms();
        self.attached_at.store(at, Ordering::Release);
        if let Some(shared) = &self.shared {
            shared.tell(Note::Attached { session: self.id.to_string(), at });
        }
        token
    }

    fn end(&self) {
        *lock(&self.storing) = false;
        self.store.remove_session(&self.id);
        self.connection.close();
        self.ended.cancel();
        lock(&self.live).clear();
    }
}

/// Keeps a session from being idle while alive.
#[derive(Debug)]
pub(super) struct Busy(Arc<OpenSession>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why `initialize` opened no session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// Every session is busy at the cap.
    Full,
    /// The caller holds its quota of sessions, all of them busy.
    Quota,
}

/// The open legacy sessions. Dropping this ends them all and stops the reaper.
#[derive(Debug)]
pub(super) struct Sessions {
    shared: Arc<Shared>,
    /// The reaper task, once started.
    reaper: Mutex<Option<AbortHandle>>,
    stop: CancellationToken,
}

#[derive(Debug)]
struct Shared {
    table: Mutex<Table>,
    epoch: Instant,
    idle_timeout: Duration,
    max: usize,
    per_principal: usize,
    store: Arc<dyn EventStore>,
    backplane: Option<Arc<dyn Backplane>>,
    /// Shared sessions ended lately (by `DELETE` here or on another server)
    /// and when, so that a copy made from a record read just before cannot
    /// outlive the end.
    ended: Mutex<HashMap<Arc<str>, Instant>>,
}

/// Most ids [`Shared::ended`] remembers; past it, the oldest half is forgotten.
const MAX_ENDED: usize = 100_000;

/// The open sessions by id, and how many each principal holds.
#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<Arc<str>, Arc<OpenSession>>,
    owners: OwnerCounts,
}

impl Table {
    fn insert(&mut self, session: Arc<OpenSession>) {
        self.owners.add(session.owner());
        self.by_id.insert(session.id.clone(), session);
    }

    fn remove(&mut self, id: &str) -> Option<Arc<OpenSession>> {
        let session = self.by_id.remove(id)?;
        self.owners.remove(session.owner());
        Some(session)
    }

    /// The least recently used idle session that `eligible` accepts.
    fn least_recent_idle(&self, eligible: impl Fn(&OpenSession) -> bool) -> Option<Arc<str>> {
        self.by_id
            .values()
            .filter(|s| s.idle() && eligible(s))
            .min_by_key(|s| s.last_active.load(Ordering::Relaxed))
            .map(|s| s.id.clone())
    }

    /// The session to end so `owner` may open one more, `None` when there
    /// is room already. The principal's quota comes first and makes room
    /// only among its own sessions, so no caller can end another's; at the
    /// overall cap the caller's own idle sessions go before anyone else's.
    fn make_room_for(
        &self,
        owner: Option<&Identity>,
        max: usize,
        per_principal: usize,
    ) -> Result<Option<Arc<str>>, Refused> {
        let own = |s: &OpenSession| same_principal(s.owner(), owner);
        if owner.is_some() && self.owners.of(owner) >= per_principal {
            return self.least_recent_idle(own).map(Some).ok_or(Refused::Quota);
        }
        if self.by_id.len() >= max {
            let victim = self.least_recent_idle(own).or_else(|| self.least_recent_idle(|_| true));
            return victim.map(Some).ok_or(Refused::Full);
        }
        Ok(None)
    }
}

impl Sessions {
    pub(super) fn new(options: &HttpOptions) -> Self {
        let shared = Shared {
            table: Mutex::new(Table::default()),
            epoch: Instant::now(),
            idle_timeout: options.idle_timeout,
            max: options.max_sessions.max(1),
            per_principal: options.max_sessions_per_principal.max(1),
            store: options.event_store.clone(),
            backplane: options.backplane(),
            ended: Mutex::new(HashMap::new()),
        };
        Self { shared: Arc::new(shared), reaper: Mutex::new(None), stop: CancellationToken::new() }
    }

    /// Starts the task that ends idle sessions, from inside the runtime, unless
    /// it runs already (again if the runtime it ran on is gone). It holds
    /// only a weak reference and stops when this is dropped. `true` when
    /// it started now.
    pub(super) fn start_reaper(&self) -> bool {
        let mut reaper = lock(&self.reaper);
        if reaper.as_ref().is_some_and(|task| !task.is_finished()) {
            return false;
        }
        let shared = Arc::downgrade(&self.shared);
        let every = (self.shared.idle_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(30));
        *reaper = Some(tokio::spawn(reap_every(shared, every, self.stop.clone())).abort_handle());
        true
    }

    /// Starts the background tasks, unless they run already: the reaper
    /// and, when sessions are shared, those exchanging notes with the other
    /// servers (`server`'s changes go out, their notes come in).
    pub(super) fn start(&self, server: &Server) {
        if !self.start_reaper() {
            return;
        }
        if let Some(backplane) = &self.shared.backplane {
            backplane.start();
            let shared = Arc::downgrade(&self.shared);
            tokio::spawn(hear_notes(shared, backplane.notes(), self.stop.clone()));
            tokio::spawn(tell_changes(backplane.clone(), server.change_feed(), self.stop.clone()));
        }
    }

    /// Stores a new session, making room at the caps by ending the least
    /// recently used idle session (see [`Table::make_room_for`]).
    pub(super) fn insert(&self, connection: Connection) -> Result<Arc<OpenSession>, Refused> {
        let session = self.open(new_session_id().into(), connection, new_stream_id(true));
        self.admit(session, false)
    }

    /// A session object for `connection`, shared if sessions are.
    fn open(&self, id: Arc<str>, connection: Connection, standalone: u64) -> Arc<OpenSession> {
        let shared = &self.shared;
        let keep_every = u64::try_from(shared.idle_timeout.as_millis() / 4).unwrap_or(u64::MAX);
        let session = Arc::new(OpenSession {
            id,
            connection,
            ended: CancellationToken::new(),
            store: shared.store.clone(),
            shared: shared.backplane.clone(),
            kept: AtomicU64::new(0),
            keep_every,
            storing: Mutex::new(true),
            epoch: shared.epoch,
            last_active: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            standalone,
            standalone_seq: AtomicU64::new(0),
            attached: Mutex::new(None),
            attached_at: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        });
        if let Some(backplane) = &shared.backplane {
            // Ids of requests to the client start at a random multiple of
            // 2^32 (below 2^52, exact in JSON numbers everywhere), so that
            // copies of the session on other servers all but never reuse one.
            let base = i64::from(rand::random::<u32>() & 0xF_FFFF) << 32;
            session.connection.session.number_requests_from(base);
            let (backplane, weak) = (backplane.clone(), Arc::downgrade(&session));
            session.connection.session.observe_settings(Arc::new(move |change: &SettingChange| {
                let Some(session) = weak.upgrade() else { return };
                if let Some(record) = session.record().and_then(|r| serde_json::to_vec(&r).ok()) {
                    backplane.update(&session.id, record);
                }
                let change = SharedSetting::from(change);
                backplane.tell(Note::Setting { session: session.id.to_string(), change });
            }));
        }
        session
    }

    /// Puts `session` in the table, making room at the caps; with
    /// `existing`, a session of the same id already there is kept and returned.
    fn admit(&self, session: Arc<OpenSession>, existing: bool) -> Result<Arc<OpenSession>, Refused> {
        let shared = &self.shared;
        session.touch();
        let evicted = {
            let mut table = lock(&shared.table);
            if existing && let Some(present) = table.by_id.get(&session.id) {
                return Ok(present.clone());
            }
            let victim = table.make_room_for(session.owner(), shared.max, shared.per_principal)?;
            let evicted = victim.and_then(|victim| table.remove(&victim));
            table.insert(session.clone());
            evicted
        };
        if let Some(evicted) = evicted {
            let own = same_principal(evicted.owner(), session.owner());
            tracing::info!(
                max = shared.max,
                per_principal = shared.per_principal,
                own,
                "session cap reached: ended the least recently used idle session"
            );
            evicted.end();
        }
        Ok(session)
    }

    /// The session with this id, marked as active now.
    pub(super) fn get(&self, id: &str) -> Option<Arc<OpenSession>> {
        // Touching under the map lock orders this with the reaper: a session
        // handed out here is not reaped as idle at the same moment.
        let table = lock(&self.shared.table);
        let session = table.by_id.get(id)?.clone();
        session.touch();
        Some(session)
    }

    /// Ends the copy of a session held here only.
    pub(super) fn end_here(&self, id: &str) {
        self.shared.end_here(id);
    }

    /// The session with this id, here or, when sessions are shared, opened
    /// on another server (a local copy is made from its record).
    /// `Err` when the shared record could not be read.
    /// A session of another principal is not copied here: `None`.
    pub(super) async fn find(
        &self,
        id: &str,
        server: &Server,
        who: Option<&Identity>,
    ) -> Result<Option<Arc<OpenSession>>, BackplaneError> {
        if let Some(session) = self.get(id) {
            return Ok(Some(session));
        }
        let Some(backplane) = &self.shared.backplane else { return Ok(None) };
        // Only ids this framework could have issued are looked up.
        if !is_session_id(id) || lock(&self.shared.ended).contains_key(id) {
            return Ok(None);
        }
        let Some(record) = backplane.load(id).await? else { return Ok(None) };
        let Ok(record) = serde_json::from_slice::<SessionRecord>(&record) else {
            tracing::debug!("a malformed shared session record is taken for no session");
            return Ok(None);
        };
        let Some(negotiated) = record.negotiated() else { return Ok(None) };
        let owner = record.owner.as_ref().map(|owner| Arc::new(owner.identity()));
        if !same_principal(owner.as_deref(), who) {
            return Ok(None);
        }
        let connection = Connection::new(server.clone(), owner);
        connection.session.negotiate(negotiated);
        connection.session.mark_initialized();
        if let Some(level) = record.log_level {
            connection.session.apply(&SettingChange::LogLevel(level));
        }
        for uri in record.subscriptions {
            connection.session.apply(&SettingChange::Subscription(uri, true));
        }
        let session = self.open(id.into(), connection, record.standalone);
        match self.admit(session, true) {
            Ok(session) if lock(&self.shared.ended).contains_key(id) => {
                // Ended while the record was being read.
                self.end_here(id);
                drop(session);
                Ok(None)
            }
            Ok(session) => Ok(Some(session)),
            Err(refused) => {
                tracing::warn!(?refused, "no room here for a copy of a shared session");
                Err(BackplaneError("no room for the session on this server".into()))
            }
        }
    }

    /// Ends a session at the client's request: in-flight requests and
    /// streams are cancelled, its stored events dropped, here and on every
    /// server sharing it.
    pub(super) fn end(&self, id: &str) -> bool {
        let Some(session) = lock(&self.shared.table).remove(id) else { return false };
        if let Some(backplane) = &self.shared.backplane {
            self.shared.remember_ended(id);
            backplane.forget(id);
            backplane.tell(Note::Ended { session: id.to_owned() });
        }
        session.end();
        true
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.shared.table).by_id.len()
    }
}

impl Shared {
    fn remember_ended(&self, id: &str) {
        let mut ended = lock(&self.ended);
        if ended.len() >= MAX_ENDED {
            let mut times: Vec<Instant> = ended.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            ended.retain(|_, at| *at > cut);
        }
        ended.insert(id.into(), Instant::now());
    }

    /// Keeps the shared records of the sessions held here alive while they
    /// are busy or were used since the last round, `every` ago; forgets
    /// ended ids older than the idle timeout (their records are gone).
    fn keep_shared(&self, every: Duration) {
        let Some(backplane) = &self.backplane else { return };
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let recent = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        let kept: Vec<(Arc<str>, u64)> = lock(&self.table)
            .by_id
            .values()
            .filter(|s| !s.idle() || now.saturating_sub(s.last_active.load(Ordering::Relaxed)) <= recent)
            .map(|s| (s.id.clone(), s.standalone))
            .collect();
        for (id, standalone) in kept {
            backplane.keep(&id, standalone);
        }
        lock(&self.ended).retain(|_, at| at.elapsed() < self.idle_timeout * 2);
    }

    fn end_here(&self, id: &str) {
        let ended = lock(&self.table).remove(id);
        ended.inspect(|ended| ended.end());
    }

    /// Ends the sessions idle for longer than the timeout.
    fn reap(&self) {
        let expired: Vec<Arc<OpenSession>> = {
            let mut table = lock(&self.table);
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            let timeout = u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX);
            let ids: Vec<Arc<str>> = table
                .by_id
                .values()
                .filter(|s| s.idle() && now.saturating_sub(s.last_active.load(Ordering::Relaxed)) >= timeout)
                .map(|s| s.id.clone())
                .collect();
            let expired = ids.iter().filter_map(|id| table.remove(id)).collect();
            let map = &mut table.by_id;
            if map.capacity() > 64 && map.len() < map.capacity() / 4 {
                map.shrink_to_fit();
            }
            expired
        };
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "ended idle sessions");
        }
        for session in expired {
            session.end();
        }
    }

    fn end_all(&self) {
        let all: Vec<Arc<OpenSession>> = {
            let mut table = lock(&self.table);
            table.owners = OwnerCounts::default();
            table.by_id.drain().map(|(_, s)| s).collect()
        };
        for session in all {
            session.end();
        }
    }
}

/// Applies the other servers' notes to the sessions held here, until the
/// sessions go.
async fn hear_notes(
    shared: Weak<Shared>,
    mut notes: tokio::sync::broadcast::Receiver<Arc<Note>>,
    stop: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let note = tokio::select! {
            () = stop.cancelled() => return,
            note = notes.recv() => note,
        };
        let note = match note {
            Ok(note) => note,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "missed notes of other servers about shared sessions");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(shared) = shared.upgrade() else { return };
        let session = match &*note {
            Note::Ended { session } => {
                shared.remember_ended(session);
                shared.end_here(session);
                continue;
            }
            Note::Answer { session, .. }
            | Note::Cancel { session, .. }
            | Note::Setting { session, .. }
            | Note::Attached { session, .. } => session,
            Note::Change { .. } | Note::Written { .. } | Note::Posted { .. } | Note::Missed => continue,
        };
        let held = lock(&shared.table).by_id.get(session.as_str()).cloned();
        if let Some(held) = held {
            held.hear(&note);
        }
    }
}

/// Tells the other servers each change of this one, for their standalone streams.
async fn tell_changes(backplane: Arc<dyn Backplane>, mut feed: ChangeFeed, stop: CancellationToken) {
    loop {
        let changed = tokio::select! {
            () = stop.cancelled() => return,
            changed = feed.next() => changed,
        };
        let Some(changed) = changed else { return };
        for change in changed.changes() {
            backplane.tell(Note::Change { change: SharedChange::from(&change) });
        }
    }
}

async fn reap_every(shared: Weak<Shared>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(shared) = shared.upgrade() else { return };
        shared.reap();
        shared.keep_shared(every);
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        self.stop.cancel();
        self.shared.end_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;

    #[test]
    fn session_ids_are_visible_ascii_and_distinct() {
        let a = new_session_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_ne!(a, new_session_id());
    }

    fn connection() -> Connection {
        Connection::new(Server::new("t", "0"), None)
    }

    #[test]
    fn the_cap_evicts_the_least_recently_used_idle_session_or_refuses() {
        let sessions = Sessions::new(&HttpOptions::default().max_sessions(2));
        let a = sessions.insert(connection()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = sessions.insert(connection()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(sessions.get(&a.id).is_some(), "a is now the most recently used");
        let c = sessions.insert(connection()).unwrap();
        assert!(sessions.get(&b.id).is_none(), "b was the least recently used");
        assert!(b.ended.is_cancelled());
        assert_eq!(sessions.len(), 2);

        let _busy_a = a.busy();
        let _busy_c = c.busy();
        assert_eq!(sessions.insert(connection()).err(), Some(Refused::Full));
        assert_eq!(sessions.len(), 2);
    }

    #[test]
    fn idle_sessions_are_reaped_but_busy_ones_are_not() {
        let sessions = Sessions::new(&HttpOptions::default().idle_timeout(Duration::from_millis(10)));
        let idle = sessions.insert(connection()).unwrap();
        let working = sessions.insert(connection()).unwrap();
        let busy = working.busy();
        std::thread::sleep(Duration::from_millis(20));
        sessions.shared.reap();
        assert!(sessions.get(&idle.id).is_none());
        assert!(idle.ended.is_cancelled());
        assert!(sessions.get(&working.id).is_some());
        drop(busy);
        std::thread::sleep(Duration::from_millis(20));
        sessions.shared.reap();
        assert_eq!(sessions.len(), 0);
    }

    #[tokio::test]
    async fn the_reaper_stops_when_the_sessions_go() {
        let sessions = Sessions::new(&HttpOptions::default().idle_timeout(Duration::from_millis(40)));
        let session = sessions.insert(connection()).unwrap();
        assert!(sessions.start_reaper());
        assert!(!sessions.start_reaper());
        let task = lock(&sessions.reaper).clone().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(session.ended.is_cancelled(), "the reaper ended the idle session");
        assert!(!task.is_finished());
        drop(sessions);
        for _ in 0..100 {
            if task.is_finished() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the reaper outlived its sessions");
    }

    #[test]
    fn an_ended_session_stores_nothing_more() {
        let store = Arc::new(InMemoryEventStore::default());
        let sessions = Sessions::new(&HttpOptions::default().event_store(store.clone()));
        let session = sessions.insert(connection()).unwrap();
        session.append(2, 1, "a".into());
        assert_eq!(store.session_count(), 1);
        assert!(sessions.end(&session.id));
        session.append(2, 2, "b".into());
        assert_eq!(store.session_count(), 0);
    }
}
