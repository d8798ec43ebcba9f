//! Legacy sessions, by `Mcp-Session-Id`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::connection::Connection;

/// One open legacy session.
#[derive(Debug, Clone)]
pub(super) struct OpenSession {
    pub(super) connection: Connection,
    /// Fires when the session ends, closing its GET streams.
    pub(super) ended: CancellationToken,
}

/// The open legacy sessions.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    map: Mutex<HashMap<String, OpenSession>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OpenSession>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new session and returns its id.
    pub(super) fn insert(&self, connection: Connection) -> String {
        let id = new_session_id();
        let session = OpenSession { connection, ended: CancellationToken::new() };
        self.lock().insert(id.clone(), session);
        id
    }

    pub(super) fn get(&self, id: &str) -> Option<OpenSession> {
        self.lock().get(id).cloned()
    }

    /// Ends a session: in-flight requests and GET streams are cancelled.
    pub(super) fn end(&self, id: &str) -> bool {
        let Some(session) = self.lock().remove(id) else { return false };
        session.connection.close();
        session.ended.cancel();
        true
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// 32 random bytes as lowercase hex: visible ASCII, unguessable.
fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_visible_ascii_and_distinct() {
        let a = new_session_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_ne!(a, new_session_id());
    }
}
