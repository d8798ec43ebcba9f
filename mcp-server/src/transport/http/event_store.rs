//! Resumable SSE for legacy sessions (SPEC §3.2): the events of every legacy
//! stream are kept, per session and per stream, so a client whose connection
//! broke can come back with `GET` + `Last-Event-ID` and get what it missed
//! **on that stream only**.
//!
//! An event id is `<stream>-<seq>`: the stream as 16 hex digits, unique and
//! unguessable within the session, and the event's sequence number within the
//! stream (`0` is the priming event, which carries no message and is never
//! stored). The transport allocates both numbers; an [`EventStore`] only keeps
//! the events, within bounds.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

/// How many events [`InMemoryEventStore::default`] keeps per stream.
pub const DEFAULT_EVENTS_PER_STREAM: usize = 256;
/// How many streams [`InMemoryEventStore::default`] keeps per session.
pub const DEFAULT_STREAMS_PER_SESSION: usize = 16;
/// How many bytes of event data [`InMemoryEventStore::default`] keeps per session.
pub const DEFAULT_BYTES_PER_SESSION: usize = 256 * 1024;

/// One stored SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredEvent {
    /// Its sequence number within its stream (1, 2, …).
    pub seq: u64,
    /// Its data: one serialized JSON-RPC message, on a single line.
    pub data: Bytes,
}

impl StoredEvent {
    /// An event with sequence number `seq` carrying `data`.
    pub fn new(seq: u64, data: Bytes) -> Self {
        Self { seq, data }
    }
}

/// Where the events of legacy SSE streams are kept for resumption.
///
/// Streams are numbered by the transport: a `u64` that is unique within its
/// session. Sequence numbers grow by one from 1 within a stream; an
/// implementation may drop old events (it is a bounded buffer), but must
/// never give back an event of another stream or another session.
///
/// [`InMemoryEventStore`] is the default. To resume streams on any of several
/// servers behind a load balancer, share the sessions instead
/// (`HttpOptions::redis`, with the `redis` feature): their events are then
/// also kept in Redis, beside this store.
pub trait EventStore: Send + Sync + fmt::Debug {
    /// Stores event `seq` of `stream` in `session`.
    fn append(&self, session: &str, stream: u64, seq: u64, data: Bytes);

    /// The events of `stream` in `session` whose sequence number is above
    /// `after`, oldest first; `None` when the store holds nothing of that
    /// stream (never stored, dropped, or not a stream of this session).
    fn events_after(&self, session: &str, stream: u64, after: u64) -> Option<Vec<StoredEvent>>;

    /// Forgets everything stored for `session`: it ended.
    fn remove_session(&self, session: &str);
}

/// The default [`EventStore`]: bounded buffers in memory.
///
/// Per session it keeps at most `streams_per_session` streams (the streams
/// written to least recently are dropped first), at most `events_per_stream`
/// events per stream (the oldest are dropped first) and about
/// `bytes_per_session` bytes of event data (the oldest events of the least
/// recently written streams are dropped first; the newest event is always
/// kept, however large). Worst case, the store holds
/// `max_sessions × bytes_per_session` bytes plus bookkeeping.
///
/// ```
/// use mcp_server::transport::http::{EventStore, InMemoryEventStore};
///
/// let store = InMemoryEventStore::new(2, 4, 1 << 20);
/// for seq in 1..=3 {
///     store.append("session", 7, seq, format!("{seq}").into());
/// }
/// let kept = store.events_after("session", 7, 0).unwrap();
/// assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
/// assert!(store.events_after("session", 8, 0).is_none());
/// assert!(store.events_after("other", 7, 0).is_none());
/// store.remove_session("session");
/// assert_eq!(store.session_count(), 0);
/// ```
#[derive(Debug)]
pub struct InMemoryEventStore {
    events_per_stream: usize,
    streams_per_session: usize,
    bytes_per_session: usize,
    sessions: Mutex<HashMap<Box<str>, SessionEvents>>,
}

#[derive(Debug, Default)]
struct SessionEvents {
    /// Least recently written first.
    streams: VecDeque<StreamEvents>,
    bytes: usize,
}

#[derive(Debug)]
struct StreamEvents {
    id: u64,
    events: VecDeque<StoredEvent>,
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self::new(DEFAULT_EVENTS_PER_STREAM, DEFAULT_STREAMS_PER_SESSION, DEFAULT_BYTES_PER_SESSION)
    }
}

impl InMemoryEventStore {
    /// A store with these bounds (each at least 1).
    pub fn new(events_per_stream: usize, streams_per_session: usize, bytes_per_session: usize) -> Self {
        Self {
            events_per_stream: events_per_stream.max(1),
            streams_per_session: streams_per_session.max(1),
            bytes_per_session: bytes_per_session.max(1),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, SessionEvents>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sessions have events stored.
    pub fn session_count(&self) -> usize {
        self.lock().len()
    }

    /// How many bytes of event data are stored, over all sessions.
    pub fn stored_bytes(&self) -> usize {
        self.lock().values().map(|s| s.bytes).sum()
    }
}

impl SessionEvents {
    fn append(&mut self, store: &InMemoryEventStore, stream: u64, event: StoredEvent) {
        let mut current = match self.streams.iter().position(|s| s.id == stream) {
            Some(i) => self.streams.remove(i).unwrap_or_else(|| StreamEvents::new(stream)),
            None => StreamEvents::new(stream),
        };
        self.bytes += event.data.len();
        current.events.push_back(event);
        while current.events.len() > store.events_per_stream {
            if let Some(old) = current.events.pop_front() {
                self.bytes -= old.data.len();
            }
        }
        while self.streams.len() >= store.streams_per_session {
            if let Some(old) = self.streams.pop_front() {
                self.bytes -= old.events.iter().map(|e| e.data.len()).sum::<usize>();
            }
        }
        // Over the byte budget: drop the oldest events of the least recently
        // written streams, then of the current one, but never its newest event.
        while self.bytes > store.bytes_per_session {
            if let Some(oldest) = self.streams.front_mut() {
                if let Some(old) = oldest.events.pop_front() {
                    self.bytes -= old.data.len();
                }
                if oldest.events.is_empty() {
                    self.streams.pop_front();
                }
            } else if current.events.len() > 1 {
                if let Some(old) = current.events.pop_front() {
                    self.bytes -= old.data.len();
                }
            } else {
                break;
            }
        }
        self.streams.push_back(current);
    }
}

impl StreamEvents {
    fn new(id: u64) -> Self {
        Self { id, events: VecDeque::new() }
    }
}

impl EventStore for InMemoryEventStore {
    fn append(&self, session: &str, stream: u64, seq: u64, data: Bytes) {
        let event = StoredEvent::new(seq, data);
        let mut sessions = self.lock();
        match sessions.get_mut(session) {
            Some(events) => events.append(self, stream, event),
            None => {
                let mut events = SessionEvents::default();
                events.append(self, stream, event);
                sessions.insert(session.into(), events);
            }
        }
    }

    fn events_after(&self, session: &str, stream: u64, after: u64) -> Option<Vec<StoredEvent>> {
        let sessions = self.lock();
        let events = &sessions.get(session)?.streams.iter().find(|s| s.id == stream)?.events;
        Some(events.iter().filter(|e| e.seq > after).cloned().collect())
    }

    fn remove_session(&self, session: &str) {
        let mut sessions = self.lock();
        sessions.remove(session);
        // A map emptied after a crowd of sessions left gives its memory back.
        if sessions.capacity() > 64 && sessions.len() < sessions.capacity() / 4 {
            sessions.shrink_to_fit();
        }
    }
}

/// The id of one event: which stream, which place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EventId {
    pub(super) stream: u64,
    pub(super) seq: u64,
}

impl EventId {
    /// Reads a `Last-Event-ID` value; `None` when it is not one of ours.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let (stream, seq) = text.trim().split_once('-')?;
        if stream.len() != 16 {
            return None;
        }
        Some(Self { stream: u64::from_str_radix(stream, 16).ok()?, seq: seq.parse().ok()? })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.stream, self.seq)
    }
}

/// A new random stream number. The low bit tells the kinds apart: set for a
/// session's standalone (GET) stream, clear for a request's stream.
pub(super) fn new_stream_id(standalone: bool) -> u64 {
    let random: u64 = rand::random();
    if standalone { random | 1 } else { random & !1 }
}

/// Whether a stream number is that of a standalone (GET) stream.
pub(super) fn is_standalone(stream: u64) -> bool {
    stream & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(store: &InMemoryEventStore, stream: u64) -> Option<Vec<u64>> {
        store.events_after("s", stream, 0).map(|events| events.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn event_ids_round_trip_and_reject_foreign_ones() {
        let id = EventId { stream: 0xabc, seq: 42 };
        assert_eq!(id.to_string(), "0000000000000abc-42");
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
        for foreign in ["", "42", "abc-1", "zzzzzzzzzzzzzzzz-1", "0000000000000abc-x", "0000000000000abc-"] {
            assert_eq!(EventId::parse(foreign), None, "{foreign:?}");
        }
        assert!(is_standalone(new_stream_id(true)));
        assert!(!is_standalone(new_stream_id(false)));
    }

    #[test]
    fn events_after_an_id_come_from_that_stream_only() {
        let store = InMemoryEventStore::default();
        store.append("s", 2, 1, "a".into());
        store.append("s", 4, 1, "x".into());
        store.append("s", 2, 2, "b".into());
        let after = store.events_after("s", 2, 1).unwrap();
        assert_eq!(after, [StoredEvent::new(2, "b".into())]);
        assert_eq!(seqs(&store, 4), Some(vec![1]));
        assert_eq!(store.events_after("t", 2, 0), None);
    }

    #[test]
    fn streams_per_session_are_bounded_least_recently_written_first() {
        let store = InMemoryEventStore::new(10, 2, 1 << 20);
        store.append("s", 2, 1, "a".into());
        store.append("s", 4, 1, "b".into());
        store.append("s", 2, 2, "c".into());
        store.append("s", 6, 1, "d".into());
        assert_eq!(seqs(&store, 4), None, "stream 4 was written least recently");
        assert_eq!(seqs(&store, 2), Some(vec![1, 2]));
        assert_eq!(seqs(&store, 6), Some(vec![1]));
    }

    #[test]
    fn bytes_per_session_are_bounded_but_the_newest_event_stays() {
        let store = InMemoryEventStore::new(10, 10, 10);
        store.append("s", 2, 1, "12345".into());
        store.append("s", 4, 1, "1234".into());
        store.append("s", 4, 2, "12".into());
        assert_eq!(seqs(&store, 2), None);
        assert_eq!(seqs(&store, 4), Some(vec![1, 2]));
        store.append("s", 4, 3, Bytes::from(vec![b'x'; 50]));
        assert_eq!(seqs(&store, 4), Some(vec![3]));
        assert_eq!(store.stored_bytes(), 50);
        store.remove_session("s");
        assert_eq!(store.stored_bytes(), 0);
    }
}
