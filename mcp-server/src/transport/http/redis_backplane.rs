//! The [`Backplane`] of servers sharing one Redis (`[redis] url`).
//!
//! Keys, under the configured prefix:
//! - `<prefix>:session:<id>`: the [`SessionRecord`] as JSON, expiring a
//!   quarter of an idle timeout after the idle timeout that follows its last
//!   use on any server (servers keep the records of the sessions in use
//!   alive at least every quarter of an idle timeout);
//! - `<prefix>:events:<id>:<stream>`: a sorted set of the stream's events,
//!   scored by sequence number (each member is the sequence number as 8
//!   big-endian bytes, then the data; an empty member scored above any
//!   event marks the stream complete), trimmed to the newest events, expiring
//!   like the record, so a reader asks for exactly the events after its own;
//! - `<prefix>:streams:<id>`: the keys of the session's event sets, so that
//!   ending the session deletes them all;
//! - the channel `<prefix>:notes`, on which every server publishes its
//!   [`Note`]s and hears the others'.
//!
//! Writes the request path does not wait for go through one queue, sent in
//! order, many per round trip, the queue bounded in bytes. If Redis is
//! unreachable they are dropped (with a warning) and the sessions go on
//! serving on the server holding them. After a failure to connect, every
//! use fails at once for [`DOWN_FOR`] rather than waiting on another attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

use super::backplane::{Backplane, BackplaneError, Note, SharedEvents};
use super::event_store::StoredEvent;
use crate::BoxFuture;

/// How long one Redis command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long after a failed connection every use fails at once.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Writes queued ahead of the writer; past this, writes are dropped.
const QUEUE_CAPACITY: usize = 16_384;
/// Bytes of queued writes; past this, writes are dropped.
const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// How often the subscription is checked with a `PING`.
const PING_EVERY: Duration = Duration::from_secs(10);
/// Deletes a session's record (`KEYS[1]`), its event lists (the members of
/// `KEYS[2]`) and that set.
const FORGET_SCRIPT: &str = r"
local lists = redis.call('SMEMBERS', KEYS[2])
for _, list in ipairs(lists) do redis.call('DEL', list) end
redis.call('DEL', KEYS[1], KEYS[2])
return #lists
";
/// Most writes sent in one round trip.
const BATCH: usize = 256;
/// Notes queued for the local listeners before the slowest misses some.
const NOTES_CAPACITY: usize = 1_024;
/// Events kept per stream.
const EVENTS_PER_STREAM: u64 = 256;
/// The score of the member marking a stream complete: above any sequence
/// number, and exact as a Redis score (a double).
const END_SCORE: u64 = (1 << 53) - 1;
/// The members of `KEYS[1]` scored above `ARGV[1]` (`(after`), or nil when
/// the key does not exist.
const EVENTS_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
";
/// The longest wait between two attempts to reach Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One queued write.
#[derive(Debug)]
enum Write {
    /// The session and its standalone stream.
    Keep(String, u64),
    Forget(String),
    Update(String, Vec<u8>),
    Publish(Vec<u8>),
    /// Event `seq` of a stream, `entry` encoded; `END_SCORE` with an empty
    /// entry marks the stream complete.
    Append {
        session: String,
        stream: u64,
        seq: u64,
        entry: Vec<u8>,
    },
}

/// An event's sequence number (its score) and encoded entry.
type ScoredEvent = (u64, Vec<u8>);

/// A note on the wire, with the server that sent it.
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: u64,
    note: Note,
}

/// Servers sharing legacy sessions through one Redis.
#[derive(Debug)]
pub(crate) struct RedisBackplane {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Write>,
    /// The queue's receiving end, held by the writer task while it runs.
    pending: Arc<tokio::sync::Mutex<mpsc::Receiver<Write>>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

struct Shared {
    client: redis::Client,
    prefix: String,
    server_id: u64,
    ttl_ms: u64,
    connection: tokio::sync::Mutex<Link>,
    /// Bytes of the writes queued.
    queued: AtomicUsize,
    notes: broadcast::Sender<Arc<Note>>,
}

/// The connection to Redis, as far as this server knows.
enum Link {
    /// None yet, or the last failure is old enough: connect.
    Idle,
    Up(MultiplexedConnection),
    /// Connecting failed; every use fails at once until then.
    Down(Instant),
}

impl Write {
    /// About how many bytes the write holds.
    fn size(&self) -> usize {
        match self {
            Self::Keep(session, _) | Self::Forget(session) => session.len(),
            Self::Update(session, bytes) | Self::Append { session, entry: bytes, .. } => {
                session.len() + bytes.len()
            }
            Self::Publish(bytes) => bytes.len(),
        }
    }
}

impl RedisBackplane {
    /// A backplane on the Redis at `url`, its keys under `prefix`; sessions
    /// and events expire `idle_timeout` after their last use. Connects on
    /// first use.
    pub(crate) fn new(url: &str, prefix: &str, idle_timeout: Duration) -> Result<Self, BackplaneError> {
        let client = redis::Client::open(url).map_err(|e| BackplaneError(format!("redis url: {e}")))?;
        let (queue, pending) = mpsc::channel(QUEUE_CAPACITY);
        let shared = Shared {
            client,
            prefix: prefix.to_owned(),
            server_id: rand::random(),
            ttl_ms: u64::try_from((idle_timeout + idle_timeout / 4).as_millis()).unwrap_or(u64::MAX).max(1),
            connection: tokio::sync::Mutex::new(Link::Idle),
            queued: AtomicUsize::new(0),
            notes: broadcast::channel(NOTES_CAPACITY).0,
        };
        Ok(Self {
            shared: Arc::new(shared),
            queue,
            pending: Arc::new(tokio::sync::Mutex::new(pending)),
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn enqueue(&self, write: Write) {
        let size = write.size();
        let queued = &self.shared.queued;
        if queued.fetch_add(size, Ordering::AcqRel) + size > QUEUE_BYTES
            || self.queue.try_send(write).is_err()
        {
            queued.fetch_sub(size, Ordering::AcqRel);
            tracing::warn!("redis write queue full or closed: a shared session write was dropped");
        }
    }
}

impl Drop for RedisBackplane {
    fn drop(&mut self) {
        lock(&self.tasks).iter().for_each(AbortHandle::abort);
    }
}

/// Shows the prefix only: the client's URL may hold a password.
impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl Shared {
    fn session_key(&self, session: &str) -> String {
        format!("{}:session:{session}", self.prefix)
    }

    fn events_key(&self, session: &str, stream: u64) -> String {
        format!("{}:events:{session}:{stream:016x}", self.prefix)
    }

    fn streams_key(&self, session: &str) -> String {
        format!("{}:streams:{session}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:notes", self.prefix)
    }

    fn envelope(&self, note: Note) -> Vec<u8> {
        serde_json::to_vec(&Envelope { from: self.server_id, note }).unwrap_or_default()
    }

    /// The shared connection, connecting when there is none; failing at
    /// once for [`DOWN_FOR`] after a failed attempt.
    async fn connection(&self) -> Result<MultiplexedConnection, BackplaneError> {
        let mut link = self.connection.lock().await;
        match &*link {
            Link::Up(connection) => return Ok(connection.clone()),
            Link::Down(until) if Instant::now() < *until => {
                return Err(BackplaneError("redis: unreachable, retrying shortly".into()));
            }
            Link::Idle | Link::Down(_) => {}
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        match self.client.get_multiplexed_async_connection_with_config(&config).await {
            Ok(connection) => {
                *link = Link::Up(connection.clone());
                Ok(connection)
            }
            Err(e) => {
                *link = Link::Down(Instant::now() + DOWN_FOR);
                Err(BackplaneError(format!("redis: {e}")))
            }
        }
    }

    /// Drops the connection after a failure, so the next use reconnects.
    async fn broken(&self) {
        let mut link = self.connection.lock().await;
        if matches!(*link, Link::Up(_)) {
            *link = Link::Idle;
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, BackplaneError> {
        let mut connection = self.connection().await?;
        match command.query_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(e) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    self.broken().await;
                }
                Err(BackplaneError(format!("redis: {e}")))
            }
        }
    }

    /// Sends queued writes in order, many per round trip, until the queue closes.
    async fn write_all(self: Arc<Self>, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Write>>>) {
        let mut queue = queue.lock().await;
        let mut batch = Vec::with_capacity(BATCH);
        let mut warned = false;
        while queue.recv_many(&mut batch, BATCH).await > 0 {
            let mut pipe = redis::pipe();
            let size: usize = batch.iter().map(Write::size).sum();
            self.add_all(&mut pipe, batch.drain(..));
            self.queued.fetch_sub(size, Ordering::AcqRel);
            let sent = match self.connection().await {
                Ok(mut connection) => pipe.exec_async(&mut connection).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.0),
            };
            match sent {
                Ok(()) => warned = false,
                Err(error) => {
                    self.broken().await;
                    if !warned {
                        tracing::warn!(%error, "shared session writes dropped: redis is unreachable");
                        warned = true;
                    }
                }
            }
        }
    }

    /// Adds `writes` to `pipe`, in their order. The events of one stream
    /// that follow each other go in one `ZADD`, followed by one trim, one
    /// expiry and one note that the stream was written; events of different
    /// streams need no order between them. Any other write first flushes the
    /// events before it, so that (say) a `Forget` never comes before the
    /// events it should delete.
    fn add_all(&self, pipe: &mut redis::Pipeline, writes: impl Iterator<Item = Write>) {
        let mut streams: Vec<(String, u64, Vec<ScoredEvent>)> = Vec::new();
        for write in writes {
            match write {
                Write::Append { session, stream, seq, entry } => {
                    match streams.iter_mut().find(|(s, n, _)| *n == stream && *s == session) {
                        Some((_, _, entries)) => entries.push((seq, entry)),
                        None => streams.push((session, stream, vec![(seq, entry)])),
                    }
                }
                other => {
                    self.add_events(pipe, std::mem::take(&mut streams));
                    self.add(pipe, other);
                }
            }
        }
        self.add_events(pipe, streams);
    }

    /// The events of each stream, as [`Self::add_all`] writes them.
    fn add_events(&self, pipe: &mut redis::Pipeline, streams: Vec<(String, u64, Vec<ScoredEvent>)>) {
        for (session, stream, entries) in streams {
            let key = self.events_key(&session, stream);
            let newest = entries.iter().map(|(seq, _)| *seq).filter(|seq| *seq != END_SCORE).max();
            pipe.cmd("ZADD").arg(&key).arg(entries).ignore();
            // The newest events stay, and the end marker (scored above them all).
            if let Some(oldest_dropped) = newest.and_then(|newest| newest.checked_sub(EVENTS_PER_STREAM)) {
                pipe.cmd("ZREMRANGEBYSCORE").arg(&key).arg("-inf").arg(oldest_dropped).ignore();
            }
            pipe.cmd("PEXPIRE").arg(&key).arg(self.ttl_ms).ignore();
            let streams = self.streams_key(&session);
            pipe.cmd("SADD").arg(&streams).arg(&key).ignore();
            pipe.cmd("PEXPIRE").arg(&streams).arg(self.ttl_ms).ignore();
            let written = self.envelope(Note::Written { session, stream });
            pipe.cmd("PUBLISH").arg(self.channel()).arg(written).ignore();
        }
    }

    fn add(&self, pipe: &mut redis::Pipeline, write: Write) {
        let ttl = self.ttl_ms;
        match write {
            Write::Keep(session, standalone) => {
                pipe.cmd("PEXPIRE").arg(self.session_key(&session)).arg(ttl).ignore();
                pipe.cmd("PEXPIRE").arg(self.events_key(&session, standalone)).arg(ttl).ignore();
                pipe.cmd("PEXPIRE").arg(self.streams_key(&session)).arg(ttl).ignore();
            }
            Write::Forget(session) => {
                let (record, streams) = (self.session_key(&session), self.streams_key(&session));
                pipe.cmd("EVAL").arg(FORGET_SCRIPT).arg(2).arg(record).arg(streams).ignore();
            }
            Write::Update(session, record) => {
                // XX: a session forgotten meanwhile stays forgotten.
                let key = self.session_key(&session);
                pipe.cmd("SET").arg(key).arg(record).arg("PX").arg(ttl).arg("XX").ignore();
            }
            Write::Publish(payload) => {
                pipe.cmd("PUBLISH").arg(self.channel()).arg(payload).ignore();
            }
            Write::Append { session, stream, seq, entry } => {
                self.add_events(pipe, vec![(session, stream, vec![(seq, entry)])]);
            }
        }
    }

    /// Hears the other servers' notes until dropped, reconnecting with
    /// back-off. The subscription is checked with a `PING` every
    /// [`PING_EVERY`], so a connection that died silently is noticed. After
    /// a reconnection, the local listeners hear [`Note::Missed`].
    async fn listen(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        let mut first = true;
        loop {
            match self.subscribe().await {
                Ok(pubsub) => {
                    backoff = Duration::from_millis(50);
                    if !std::mem::take(&mut first) {
                        let _ = self.notes.send(Arc::new(Note::Missed));
                    }
                    self.hear(pubsub).await;
                    // Readers hear `Missed` once subscribed again (above): what
                    // they re-read then includes what came meanwhile.
                    tracing::warn!("lost the redis subscription to shared session notes; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "cannot subscribe to shared session notes"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Delivers the notes of one subscription until it fails.
    async fn hear(&self, pubsub: redis::aio::PubSub) {
        let (mut sink, mut messages) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => self.deliver(message.get_payload_bytes()),
                    None => return,
                },
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }
    }

    async fn subscribe(&self) -> Result<redis::aio::PubSub, BackplaneError> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(self.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, connect).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(e)) => Err(BackplaneError(format!("redis: {e}"))),
            Err(_) => Err(BackplaneError("redis: timed out".into())),
        }
    }

    fn deliver(&self, payload: &[u8]) {
        match serde_json::from_slice::<Envelope>(payload) {
            Ok(envelope) if envelope.from != self.server_id => {
                // No listener simply means nothing follows shared state here yet.
                let _ = self.notes.send(Arc::new(envelope.note));
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "ignored a malformed shared session note"),
        }
    }
}

/// A stored event: the sequence number as 8 big-endian bytes, then the data.
fn encode_event(seq: u64, data: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(8 + data.len());
    entry.extend_from_slice(&seq.to_be_bytes());
    entry.extend_from_slice(data);
    entry
}

/// The events of `entries` after `after`; an empty entry marks the end.
fn decode_events(entries: Vec<Vec<u8>>, after: u64) -> SharedEvents {
    let mut shared = SharedEvents::default();
    for entry in entries {
        let Some((seq, data)) = entry.split_first_chunk::<8>() else {
            shared.complete = true;
            continue;
        };
        let seq = u64::from_be_bytes(*seq);
        if seq > after {
            shared.events.push(StoredEvent::new(seq, Bytes::copy_from_slice(data)));
        }
    }
    shared
}

impl Backplane for RedisBackplane {
    fn start(&self) {
        let mut tasks = lock(&self.tasks);
        if tasks.iter().any(|task| !task.is_finished()) {
            return;
        }
        tasks.clear();
        // The writer holds the queue while it runs; a writer started again
        // (the runtime of the previous one is gone) takes it over.
        let queue = self.pending.clone();
        tasks.push(tokio::spawn(self.shared.clone().write_all(queue)).abort_handle());
        tasks.push(tokio::spawn(self.shared.clone().listen()).abort_handle());
    }

    fn notes(&self) -> broadcast::Receiver<Arc<Note>> {
        self.shared.notes.subscribe()
    }

    fn save(&self, session: &str, record: Vec<u8>) -> BoxFuture<'static, Result<(), BackplaneError>> {
        let shared = self.shared.clone();
        let key = shared.session_key(session);
        Box::pin(async move {
            let command = redis::cmd("SET").arg(key).arg(record).arg("PX").arg(shared.ttl_ms).to_owned();
            shared.query::<()>(&command).await
        })
    }

    fn load(&self, session: &str) -> BoxFuture<'static, Result<Option<Vec<u8>>, BackplaneError>> {
        let shared = self.shared.clone();
        let key = shared.session_key(session);
        Box::pin(async move { shared.query(&redis::cmd("GET").arg(key).to_owned()).await })
    }

    fn keep(&self, session: &str, standalone: u64) {
        self.enqueue(Write::Keep(session.to_owned(), standalone));
    }

    fn update(&self, session: &str, record: Vec<u8>) {
        self.enqueue(Write::Update(session.to_owned(), record));
    }

    fn forget(&self, session: &str) {
        self.enqueue(Write::Forget(session.to_owned()));
    }

    fn tell(&self, note: Note) {
        self.enqueue(Write::Publish(self.shared.envelope(note)));
    }

    fn append(&self, session: &str, stream: u64, seq: u64, data: Bytes) {
        let entry = encode_event(seq, &data);
        self.enqueue(Write::Append { session: session.to_owned(), stream, seq, entry });
    }

    fn complete(&self, session: &str, stream: u64) {
        let session = session.to_owned();
        self.enqueue(Write::Append { session, stream, seq: END_SCORE, entry: Vec::new() });
    }

    fn events_after(
        &self,
        session: &str,
        stream: u64,
        after: u64,
    ) -> BoxFuture<'static, Result<Option<SharedEvents>, BackplaneError>> {
        let shared = self.shared.clone();
        let key = shared.events_key(session, stream);
        Box::pin(async move {
            let after_arg = format!("({after}");
            let command = redis::cmd("EVAL").arg(EVENTS_SCRIPT).arg(1).arg(key).arg(after_arg).to_owned();
            let entries: Option<Vec<Vec<u8>>> = shared.query(&command).await?;
            Ok(entries.map(|entries| decode_events(entries, after)))
        })
    }
}

/// A throwaway Redis server for the tests below (shared with the end-to-end tests).
#[cfg(test)]
#[allow(unreachable_pub, dead_code)]
#[path = "../../../../tests/src/redis.rs"]
mod test_redis;

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_redis;

    /// Reads `stream` after `after` until `done` holds (the writer task sends asynchronously).
    async fn read_until(
        backplane: &RedisBackplane,
        stream: u64,
        after: u64,
        done: impl Fn(&Option<SharedEvents>) -> bool,
    ) -> Option<SharedEvents> {
        for _ in 0..200 {
            let read = backplane.events_after("s", stream, after).await.unwrap();
            if done(&read) {
                return read;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the writes did not land");
    }

    #[tokio::test]
    async fn a_reader_gets_exactly_the_newest_events_after_its_own_and_the_end() {
        let redis = test_redis::TestRedis::start().unwrap();
        let backplane = RedisBackplane::new(&redis.url(), "t", Duration::from_secs(60)).unwrap();
        backplane.start();
        assert!(backplane.events_after("s", 2, 0).await.unwrap().is_none(), "nothing stored yet");
        for seq in 1..=300 {
            backplane.append("s", 2, seq, Bytes::from(format!("event {seq}")));
        }
        let read = read_until(&backplane, 2, 0, |r| r.as_ref().is_some_and(|r| r.events.len() == 256)).await;
        let read = read.unwrap();
        assert!(!read.complete);
        let seqs: Vec<u64> = read.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (45..=300).collect::<Vec<_>>(), "the newest 256, in order");
        backplane.complete("s", 2);
        let read = read_until(&backplane, 2, 290, |r| r.as_ref().is_some_and(|r| r.complete)).await.unwrap();
        assert_eq!(read.events.iter().map(|e| e.seq).collect::<Vec<_>>(), (291..=300).collect::<Vec<_>>());
        assert_eq!(read.events[9].data, Bytes::from_static(b"event 300"));
        // More events after the end marker are trimmed before it, never it.
        for seq in 301..=600 {
            backplane.append("s", 2, seq, Bytes::from_static(b"late"));
        }
        let read = read_until(&backplane, 2, 599, |r| r.as_ref().is_some_and(|r| r.events.len() == 1)).await;
        assert!(read.unwrap().complete, "the end marker outlives the trim");
    }

    #[test]
    fn events_round_trip_and_the_end_marker_completes() {
        let entries = vec![encode_event(1, b"a"), encode_event(2, b"{}"), Vec::new()];
        let read = decode_events(entries, 1);
        assert!(read.complete);
        assert_eq!(read.events, vec![StoredEvent::new(2, Bytes::from_static(b"{}"))]);
        let open = decode_events(vec![encode_event(7, b"")], 0);
        assert!(!open.complete, "an event with empty data is not the end marker");
        assert_eq!(open.events.len(), 1);
    }
}
